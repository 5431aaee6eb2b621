//! Weights from local folders laid out like the hub repos.

use super::{ModelFiles, SaeFiles};
use crate::weights::checkpoint::WEIGHT_FILES;
use color_eyre::eyre::{bail, Result};
use std::path::{Path, PathBuf};

pub(crate) fn require(dir: &Path, name: &str, what: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    match std::fs::metadata(&p) {
        Ok(m) if m.is_file() => Ok(p),
        Ok(_) => bail!("{what}: {} is not a file", p.display()),
        Err(e) => bail!(
            "{what}: {}: {} (expected the Hugging Face layout; `saescope synth --out DIR` writes one)",
            p.display(),
            crate::runtime::fsio::describe(&p, &e)
        ),
    }
}

pub fn model_files(dir: &Path) -> Result<ModelFiles> {
    let config = require(dir, "config.json", "--model-dir")?;
    // A sharded checkpoint has its index where the single file would be.
    let weights = match WEIGHT_FILES.iter().map(|f| dir.join(f)).find(|p| p.is_file()) {
        Some(p) => p,
        None => require(dir, WEIGHT_FILES[0], "--model-dir")?,
    };
    let tok = dir.join("tokenizer.json");
    Ok(ModelFiles { config, weights, tokenizer: tok.is_file().then_some(tok) })
}

/// `names`: the cfg and weights, relative to `dir` (`super::sae_names`).
pub fn sae_files(dir: &Path, names: &[String; 2]) -> Result<SaeFiles> {
    let [cfg, weights] = names.clone().map(|f| require(dir, &f, "--sae-dir"));
    Ok(SaeFiles { cfg: cfg?, weights: weights? })
}
