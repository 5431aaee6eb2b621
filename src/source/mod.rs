//! Where weights come from: the Hugging Face hub (through its standard cache), a local
//! folder in the same layout, or the synthetic generator. Each resolves to plain paths;
//! loading is the model's and SAE's job.

pub mod download;
pub mod hub;
pub mod local;

use crate::runtime::progress::ProgressSink;
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

    /// The files the model's chat template may be in (model/chat.rs), those it has: a
    /// folder's, or the hub repo's, fetched now (only `--chat` asks; most models have no
    /// `chat_template.jinja`, so a missing one is no error). Where none could be had and a
    /// download failed for another reason than the file's absence (offline, unreachable),
    /// that failure is the error, not "no template".
    pub fn chat_files(&self, progress: &ProgressSink) -> Result<Vec<PathBuf>> {
        let repo = match self {
            Source::Dir(dir) => return Ok(crate::model::chat::files_in(dir)),
            Source::Hub(repo) => repo,
        };
        let mut found = Vec::new();
        let mut failed = None;
        for f in crate::model::chat::TEMPLATE_FILES {
            match hub::fetch(repo, &[f.to_string()], progress) {
                Ok(mut v) => found.extend(v.pop()),
                Err(e) if e.downcast_ref::<download::NotOnHub>().is_some() => {}
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        match failed {
            Some(e) if found.is_empty() => Err(e),
            _ => Ok(found),
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
    pub fn sae_on_disk(&self, path: &str, layout: SaeLayout) -> Option<SaeFiles> {
        let [cfg, weights] = sae_names(path, layout);
        let find = |f: &str| match self {
            Source::Dir(d) => Some(d.join(f)).filter(|p| p.is_file()),
            Source::Hub(repo) => hub::RepoCache::new(&hub::cache_dir(), repo).get(f),
        };
        Some(SaeFiles { cfg: find(&cfg)?, weights: find(&weights)? })
    }

    /// The SAE at `path` in this repo or folder (see `sae_names`), downloaded if need be.
    pub fn sae_files(&self, path: &str, layout: SaeLayout, progress: &ProgressSink) -> Result<SaeFiles> {
        let names = sae_names(path, layout);
        let files = match self {
            Source::Hub(repo) => hub::sae_files(repo, &names, progress)?,
            Source::Dir(dir) => local::sae_files(dir, &names)?,
        };
        // A CLT layer's decoder is a third file, beside the encoder.
        if layout == SaeLayout::CrossLayer {
            let decoder = [format!("W_dec_{}.safetensors", path.trim_end_matches('/'))];
            match self {
                Source::Hub(repo) => drop(hub::fetch(repo, &decoder, progress)?),
                Source::Dir(dir) => drop(local::require(dir, &decoder[0], "--sae-dir")?),
            }
        }
        Ok(files)
    }
}

/// How an SAE's files sit in its repo, as SAELens's loader for its release reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaeLayout {
    /// A SAELens folder: `cfg.json` and `sae_weights.safetensors`.
    #[default]
    Folder,
    /// One `.pt` state dict with the `{stem}_cfg.json` beside it (`connor_rob_hook_z`).
    SinglePt,
    /// A Gemma Scope folder: `config.json` and `params.safetensors` (`gemma_3`).
    GemmaScope,
    /// Gemma Scope's folder for Gemma 2: `params.npz` alone (`gemma_2`; SAELens makes the
    /// config from the release).
    GemmaScopeNpz,
    /// Llama Scope's folder: `hyperparams.json` and `checkpoints/final.safetensors`
    /// (`llama_scope`).
    LlamaScope,
    /// Llama Scope's later folders (`llama_scope_r1_distill`: DeepSeek R1's distilled
    /// Llama 8B): `config.json` and `sae_weights.safetensors` (sae/llama_scope.rs).
    LlamaScopeR1,
    /// circuit-tracer's transcoder set: `layer_L.safetensors` with the repo's `config.yaml`
    /// beside it (`mwhanna_transcoder`: the Qwen 3 transcoders circuit-tracer reads).
    CircuitTracer,
    /// A dictionary_learning trainer's folder: `config.json` and `ae.pt`
    /// (`dictionary_learning_1`: SAEBench's sweeps, andyrdt's SAEs).
    DictionaryLearning,
    /// One layer of circuit-tracer's cross-layer transcoder as a per-layer SAE, `path` its
    /// layer: `config.yaml` and `W_enc_L.safetensors`, with `W_dec_L.safetensors` beside
    /// (`mntss_clt_layer_transcoder`; sae/cross_layer.rs).
    CrossLayer,
    /// One layer of Gemma Scope 2's cross-layer transcoder, `path` its layer:
    /// `params_layer_L.safetensors` alone (sae/cross_layer.rs).
    ScopeCrossLayer,
    /// A temporal SAE's folder: `conf.yaml` and `latest_ckpt.safetensors` (`temporal`;
    /// sae/temporal.rs).
    Temporal,
    /// One torch state dict, its config made from its names (`qwen_scope`, `goodfire`,
    /// `deepseek_r1`; sae/state_dict.rs).
    StateDict,
}

impl SaeLayout {
    /// The layout of a release SAELens converts with `conversion_func`; None for one
    /// saescope does not read.
    pub fn of_conversion(conversion_func: Option<&str>) -> Option<Self> {
        match conversion_func {
            None => Some(Self::Folder),
            Some("connor_rob_hook_z") => Some(Self::SinglePt),
            Some("gemma_3") => Some(Self::GemmaScope),
            Some("mwhanna_transcoder") => Some(Self::CircuitTracer),
            Some("gemma_2" | "gemma_2_transcoder") => Some(Self::GemmaScopeNpz),
            Some("llama_scope") => Some(Self::LlamaScope),
            Some("llama_scope_r1_distill") => Some(Self::LlamaScopeR1),
            Some("temporal") => Some(Self::Temporal),
            Some("dictionary_learning_1") => Some(Self::DictionaryLearning),
            Some("mntss_clt_layer_transcoder") => Some(Self::CrossLayer),
            Some("qwen_scope" | "goodfire" | "deepseek_r1") => Some(Self::StateDict),
            Some(_) => None,
        }
    }
}

/// An SAE's two files (cfg, weights) in its repo at `path`, laid out as `layout` says.
pub fn sae_names(path: &str, layout: SaeLayout) -> [String; 2] {
    let folder = path.trim_end_matches('/');
    match layout {
        SaeLayout::Folder => SAE_FILES.map(|f| format!("{folder}/{f}")),
        SaeLayout::SinglePt => {
            let stem = path.strip_suffix(".pt").unwrap_or(path);
            [format!("{stem}_cfg.json"), path.to_string()]
        }
        SaeLayout::GemmaScope => [format!("{folder}/config.json"), format!("{folder}/params.safetensors")],
        // No config file: the weights stand in its place (sae::config_of makes the config).
        SaeLayout::GemmaScopeNpz => [format!("{folder}/params.npz"), format!("{folder}/params.npz")],
        SaeLayout::StateDict => [path.to_string(), path.to_string()],
        SaeLayout::LlamaScope => [format!("{folder}/hyperparams.json"), format!("{folder}/checkpoints/final.safetensors")],
        SaeLayout::Temporal => [format!("{folder}/conf.yaml"), format!("{folder}/latest_ckpt.safetensors")],
        SaeLayout::LlamaScopeR1 => [format!("{folder}/config.json"), format!("{folder}/{}", SAE_FILES[1])],
        SaeLayout::DictionaryLearning => [format!("{folder}/config.json"), format!("{folder}/ae.pt")],
        SaeLayout::CrossLayer => ["config.yaml".to_string(), format!("W_enc_{folder}.safetensors")],
        SaeLayout::ScopeCrossLayer => [0; 2].map(|_| format!("params_layer_{folder}.safetensors")),
        SaeLayout::CircuitTracer => {
            let config = path.rsplit_once('/').map_or_else(|| "config.yaml".to_string(), |(dir, _)| format!("{dir}/config.yaml"));
            [config, path.to_string()]
        }
    }
}

pub(crate) const SAE_FILES: [&str; 2] = ["cfg.json", "sae_weights.safetensors"];
