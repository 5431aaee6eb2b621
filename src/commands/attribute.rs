//! `saescope attribute`: which features move the next-token prediction.

use super::{setup, text_arg};
use crate::commands::cli::{CardFormat, Common};
use color_eyre::eyre::Result;
use saescope::runtime::progress::ProgressSink;

/// `saescope attribute`: the whole model and the run's SAEs, with gradients.
pub fn attribute(c: &Common, prompt: &str, target: Option<&str>, top: usize, format: CardFormat, output: Option<std::path::PathBuf>) -> Result<()> {
    let prompt = text_arg(prompt, "the prompt")?;
    let (run, _) = setup(c)?;
    let progress = ProgressSink::stderr();
    let engine = saescope::pipeline::Resolved::new(&run.model, &run.saes, &progress)?.load_full(run.device, &run.opts, &progress)?;
    progress.stage("attributing");
    let out = saescope::interp::attribute::attribute(&engine, &prompt, target, top)?;
    super::emit(&out, format, |x| x.text(), output)
}
