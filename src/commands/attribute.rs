//! `saescope attribute`: which features move the next-token prediction.

use super::{setup, text_arg};
use color_eyre::eyre::Result;
use saescope::cli::{CardFormat, Common};
use saescope::progress::ProgressSink;

/// `saescope attribute`: the whole model and the SAEs of `--layers`, with gradients.
pub fn attribute(c: &Common, prompt: &str, target: Option<&str>, top: usize, format: CardFormat, output: Option<std::path::PathBuf>) -> Result<()> {
    let prompt = text_arg(prompt, "the prompt")?;
    let (device, opts, _) = setup(c)?;
    let progress = ProgressSink::stderr();
    let layers = saescope::config::normalize_layers(&c.layers);
    let engine = saescope::pipeline::Resolved::new(&c.model_source(), &c.sae_source(), &layers, &progress)?.load_full(device, &opts, &progress)?;
    progress.stage("attributing");
    let out = saescope::attribute::attribute(&engine, &prompt, target, top)?;
    super::emit(&out, format, |x| x.text(), output)
}
