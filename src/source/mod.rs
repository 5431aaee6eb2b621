//! Where weights come from: the Hugging Face hub (through its standard cache), a local
//! folder in the same layout, or the synthetic generator. Each resolves to plain paths;
//! loading is the model's and SAE's job.

pub mod download;
pub mod hub;
pub mod local;
pub mod synth;

use crate::config::hook_name;
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

#[derive(Debug, Clone)]
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

    /// Layer `layer`'s cfg.json if it is on disk already (a local folder, or the hub
    /// cache), without the model's config or the network: `blocks.L.hook_resid_pre`, or for
    /// the layer after the last block `blocks.(L-1).hook_resid_post` (config::hook_name).
    pub fn cfg_on_disk(&self, layer: usize) -> Option<PathBuf> {
        crate::config::layer_folders(layer).into_iter().find_map(|f| {
            let file = format!("{f}/cfg.json");
            match self {
                Source::Dir(d) => Some(d.join(file)).filter(|p| p.is_file()),
                Source::Hub(repo) => hub::RepoCache::new(&hub::cache_dir(), repo).get(&file),
            }
        })
    }

    /// The SAE of `layer`; `n_layer` decides whether that is a resid_pre or the final resid_post.
    pub fn sae_files(&self, layer: usize, n_layer: usize, progress: &ProgressSink) -> Result<SaeFiles> {
        let folder = hook_name(layer, n_layer);
        match self {
            Source::Hub(repo) => hub::sae_files(repo, &folder, progress),
            Source::Dir(dir) => local::sae_files(dir, &folder),
        }
    }
}

pub(crate) const MODEL_FILES: [&str; 2] = ["config.json", "model.safetensors"];
pub(crate) const SAE_FILES: [&str; 2] = ["cfg.json", "sae_weights.safetensors"];
