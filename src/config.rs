//! GPT-2 hyper-parameters, read from a Hugging Face `config.json`.

use color_eyre::eyre::{bail, Result, WrapErr};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The subset of HF's GPT2Config the forward pass needs. Field names are HF's own, so the
/// hub's file and `save_pretrained`'s both parse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpt2Config {
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    /// Context length. The hub's gpt2 config has both `n_positions` and `n_ctx`; older
    /// ones only `n_ctx` (so a serde alias would reject the common case as a duplicate).
    #[serde(default)]
    pub n_positions: usize,
    #[serde(default, skip_serializing)]
    pub n_ctx: Option<usize>,
    pub vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_act")]
    pub activation_function: String,
}

fn default_eps() -> f64 {
    1e-5
}
fn default_act() -> String {
    "gelu_new".into()
}

impl Gpt2Config {
    pub fn gpt2_small() -> Self {
        Self {
            n_embd: 768,
            n_layer: 12,
            n_head: 12,
            n_positions: 1024,
            vocab_size: 50257,
            layer_norm_epsilon: 1e-5,
            activation_function: "gelu_new".into(),
            n_ctx: None,
        }
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read model config {}", path.display()))?;
        let mut cfg: Self = serde_json::from_str(&text).wrap_err_with(|| format!("{} is not a GPT-2 config.json", path.display()))?;
        if cfg.n_positions == 0 {
            cfg.n_positions = cfg.n_ctx.unwrap_or(0);
        }
        cfg.validate().wrap_err_with(|| format!("in {}", path.display()))?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        if self.n_embd == 0 || self.n_layer == 0 || self.n_head == 0 || !self.n_embd.is_multiple_of(self.n_head) {
            bail!("n_embd {} must be a positive multiple of n_head {}", self.n_embd, self.n_head);
        }
        if self.n_positions == 0 || self.vocab_size == 0 {
            bail!("n_positions (or n_ctx) and vocab_size must be positive");
        }
        if !matches!(self.activation_function.as_str(), "gelu_new" | "gelu_pytorch_tanh") {
            bail!("activation_function {:?} is not supported (GPT-2 uses gelu_new)", self.activation_function);
        }
        Ok(())
    }

    pub fn d_head(&self) -> usize {
        self.n_embd / self.n_head
    }
}

/// The folders an SAE of layer `layer` may be in before the model's n_layer is known: its
/// `blocks.L.hook_resid_pre`, or `blocks.(L-1).hook_resid_post`, which holds the same
/// residual (the only one for the layer after the last block, see `hook_name`).
pub fn layer_folders(layer: usize) -> Vec<String> {
    let mut folders = vec![format!("blocks.{layer}.hook_resid_pre")];
    if layer > 0 {
        folders.push(format!("blocks.{}.hook_resid_post", layer - 1));
    }
    folders
}

/// The TransformerLens hook an SAE of layer `layer` reads: the residual entering block
/// `layer`, or after the last block for `layer == n_layer`.
pub fn hook_name(layer: usize, n_layer: usize) -> String {
    if layer >= n_layer {
        format!("blocks.{}.hook_resid_post", n_layer - 1)
    } else {
        format!("blocks.{layer}.hook_resid_pre")
    }
}

/// Requested layers in the order every view shows them: ascending, each once.
pub fn normalize_layers(layers: &[usize]) -> Vec<usize> {
    let mut v = layers.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}
