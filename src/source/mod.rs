//! Where weights come from: the Hugging Face hub (through its standard cache), a local
//! folder in the same layout, or the synthetic generator. Each resolves to plain paths;
//! loading is the model's and SAE's job.

pub mod download;
pub mod hub;
pub mod local;
pub mod synth;

use crate::progress::ProgressSink;
use color_eyre::eyre::Result;
use std::path::PathBuf;

pub const DEFAULT_MODEL: &str = "openai-community/gpt2";
pub const DEFAULT_SAE_RELEASE: &str = "jbloom/GPT2-Small-SAEs-Reformatted";

#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub config: PathBuf,
    pub weights: PathBuf,
    /// A tokenizer.json beside the model wins over the bundled GPT-2 one.
    pub tokenizer: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct SaeFiles {
    pub cfg: PathBuf,
    pub weights: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Hub(String),
    Dir(PathBuf),
}

impl Source {
    /// What the user sees in the status bar and the report's `model`/`sae_release` fields.
    pub fn label(&self) -> String {
        match self {
            Source::Hub(repo) => repo.clone(),
            Source::Dir(dir) => dir.display().to_string(),
        }
    }

    pub fn model_files(&self, progress: &ProgressSink) -> Result<ModelFiles> {
        match self {
            Source::Hub(repo) => hub::model_files(repo, progress),
            Source::Dir(dir) => local::model_files(dir),
        }
    }

    /// The cfg and weights of the SAE at `path` if they are on disk already (a local
    /// folder, or the hub cache), without the network.
    pub fn sae_on_disk(&self, path: &str, single_file: bool) -> Option<SaeFiles> {
        let [cfg, weights] = sae_names(path, single_file);
        let find = |f: &str| match self {
            Source::Dir(d) => Some(d.join(f)).filter(|p| p.is_file()),
            Source::Hub(repo) => hub::RepoCache::new(&hub::cache_dir(), repo).get(f),
        };
        Some(SaeFiles { cfg: find(&cfg)?, weights: find(&weights)? })
    }

    /// The SAE at `path` in this repo or folder (see `sae_names`), downloaded if need be.
    pub fn sae_files(&self, path: &str, single_file: bool, progress: &ProgressSink) -> Result<SaeFiles> {
        let names = sae_names(path, single_file);
        match self {
            Source::Hub(repo) => hub::sae_files(repo, &names, progress),
            Source::Dir(dir) => local::sae_files(dir, &names),
        }
    }
}

/// An SAE's two files in its repo: a SAELens folder's `cfg.json` and
/// `sae_weights.safetensors`, or a single `.pt` state dict and the `{stem}_cfg.json` beside
/// it (SAELens's `connor_rob_hook_z` loader).
pub fn sae_names(path: &str, single_file: bool) -> [String; 2] {
    if single_file {
        let stem = path.strip_suffix(".pt").unwrap_or(path);
        [format!("{stem}_cfg.json"), path.to_string()]
    } else {
        SAE_FILES.map(|f| format!("{}/{f}", path.trim_end_matches('/')))
    }
}

pub(crate) const MODEL_FILES: [&str; 2] = ["config.json", "model.safetensors"];
pub(crate) const SAE_FILES: [&str; 2] = ["cfg.json", "sae_weights.safetensors"];
