//! `saescope steer`: generation with features steered, beside the same prompt unsteered.

use super::{setup, text_arg};
use color_eyre::eyre::Result;
use saescope::cli::{CardFormat, Common};
use saescope::progress::ProgressSink;

/// `saescope steer`: the whole model and the SAEs of the steered layers.
pub fn steer(
    c: &Common,
    prompt: &str,
    features: &[saescope::steer::Steer],
    sampling: saescope::steer::Sampling,
    mode: saescope::steer::Mode,
    format: CardFormat,
    output: Option<std::path::PathBuf>,
) -> Result<()> {
    let prompt = text_arg(prompt, "the prompt")?;
    let (device, opts, _) = setup(c)?;
    let progress = ProgressSink::stderr();
    let layers = saescope::config::normalize_layers(&features.iter().map(|f| f.layer).collect::<Vec<_>>());
    let engine = saescope::pipeline::Resolved::new(&c.model_source(), &c.sae_source(), &layers, &progress)?.load_full(device, &opts, &progress)?;
    progress.stage("generating");
    let out = saescope::steer::steer(&engine, &prompt, features, mode, sampling)?;
    super::emit(&out, format, |x| x.text(), output)
}
