//! `saescope steer`: generation with features steered, beside the same prompt unsteered.

use super::text_arg;
use crate::commands::cli::{CardFormat, Common};
use color_eyre::eyre::Result;
use saescope::runtime::progress::ProgressSink;

/// `saescope steer`: the whole model and the SAEs of the steered features.
pub fn steer(
    c: &Common,
    prompt: &str,
    features: &[saescope::interp::steer::Steer],
    sampling: saescope::interp::steer::Sampling,
    mode: saescope::interp::steer::Edit,
    format: CardFormat,
    output: Option<std::path::PathBuf>,
) -> Result<()> {
    let prompt = text_arg(prompt, "the prompt")?;
    // Features named by layer number load those layers' SAEs; others name SAEs of the run.
    let mut layers: Vec<usize> = features.iter().filter_map(|f| f.sae.trim().parse().ok()).collect();
    if layers.len() < features.len() {
        layers.extend(c.layers());
    }
    let (run, _) = super::setup_layers(c, &layers)?;
    let progress = ProgressSink::stderr();
    let engine = saescope::pipeline::Resolved::new(&run.model, &run.saes, &progress)?.load_full(run.device, &run.opts, &progress)?;
    progress.stage("generating");
    let out = saescope::interp::steer::steer(&engine, &prompt, features, mode, sampling)?;
    super::emit(&out, format, |x| x.text(), output)
}
