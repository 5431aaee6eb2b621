//! A model's config.json, read as the family its `model_type` names: the only file that
//! names every family, so adding one is a file beside gpt2.rs, gemma.rs, llama.rs and neox.rs and an
//! arm here.

use super::Family;
use color_eyre::eyre::Result;
use tch::{Device, Kind};

/// A model's config.json, read as the family its `model_type` names: what a run needs to
/// know of the model before loading it (the SAEs' layers, the memory plan, the tokenizer).
#[derive(Debug, Clone)]
pub enum ModelConfig {
    Gpt2(super::gpt2::Gpt2Config),
    /// Gemma 2 and Gemma 3 (gemma.rs).
    Gemma(super::gemma::GemmaConfig),
    /// Llama 3 and Qwen 3 (llama.rs).
    Llama(super::llama::LlamaConfig),
    /// GPT-NeoX: Pythia (neox.rs).
    Neox(super::neox::NeoxConfig),
}

/// What a checkpoint tensor is to a run that needs `n` blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorUse {
    /// Loaded whatever the depth (embeddings, final norm).
    Always,
    /// Part of this block: loaded when the run reaches it.
    Block(usize),
    /// Never loaded (GPT-2's causal-mask buffers, a multimodal checkpoint's vision tower).
    Never,
}

impl ModelConfig {
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        use color_eyre::eyre::WrapErr;
        let text = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read model config {}", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text).wrap_err_with(|| format!("{} is not valid JSON", path.display()))?;
        match v.get("model_type").and_then(serde_json::Value::as_str) {
            None | Some("gpt2") => Ok(Self::Gpt2(super::gpt2::Gpt2Config::from_file(path)?)),
            Some("gemma2" | "gemma3_text" | "gemma3") => {
                Ok(Self::Gemma(super::gemma::GemmaConfig::from_json(&v).wrap_err_with(|| format!("in {}", path.display()))?))
            }
            Some("llama" | "qwen3") => Ok(Self::Llama(super::llama::LlamaConfig::from_json(&v).wrap_err_with(|| format!("in {}", path.display()))?)),
            Some("gpt_neox") => Ok(Self::Neox(super::neox::NeoxConfig::from_json(&v).wrap_err_with(|| format!("in {}", path.display()))?)),
            Some(other) => {
                color_eyre::eyre::bail!(
                    "{}: model_type {other:?} is not a family saescope runs (GPT-2: gpt2; Gemma 2: gemma2; Gemma 3: gemma3_text; Llama 3: llama; Qwen 3: qwen3; Pythia: gpt_neox)",
                    path.display()
                )
            }
        }
    }

    pub fn family(&self) -> &'static str {
        match self {
            Self::Gpt2(_) => "GPT-2",
            Self::Gemma(c) => c.family(),
            Self::Llama(c) => c.family(),
            Self::Neox(_) => "Pythia",
        }
    }

    pub fn n_layer(&self) -> usize {
        match self {
            Self::Gpt2(c) => c.n_layer,
            Self::Gemma(c) => c.num_hidden_layers,
            Self::Llama(c) => c.num_hidden_layers,
            Self::Neox(c) => c.num_hidden_layers,
        }
    }

    pub fn d_model(&self) -> usize {
        match self {
            Self::Gpt2(c) => c.n_embd,
            Self::Gemma(c) => c.hidden_size,
            Self::Llama(c) => c.hidden_size,
            Self::Neox(c) => c.hidden_size,
        }
    }

    pub fn n_ctx(&self) -> usize {
        match self {
            Self::Gpt2(c) => c.n_positions,
            Self::Gemma(c) => c.n_ctx,
            Self::Llama(c) => c.n_ctx,
            Self::Neox(c) => c.n_ctx,
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            Self::Gpt2(c) => c.vocab_size,
            Self::Gemma(c) => c.vocab_size,
            Self::Llama(c) => c.vocab_size,
            Self::Neox(c) => c.vocab_size,
        }
    }

    /// The token every text starts with: GPT-2's `<|endoftext|>` (whatever its id in the
    /// tokenizer), Gemma's `<bos>`, Llama 3's `<|begin_of_text|>`. Qwen's tokenizer has no
    /// BOS: circuit-tracer prepends its pad token, `<|endoftext|>`, in its place (the first of
    /// BOS, pad, EOS its tokenizer has: `ensure_tokenized`), and TransformerLens stands the
    /// same token in where asked to prepend a BOS (its Qwen 3 default is not to); every
    /// pipeline stage here expects a first token to set aside. Pythia's BOS is its
    /// `<|endoftext|>` (id 0), which SAELens's `prepend_bos: true` has TL put first.
    pub fn bos_token(&self) -> &'static str {
        match self {
            Self::Gpt2(_) => super::tokenizer::GPT2_BOS,
            Self::Gemma(_) => "<bos>",
            Self::Llama(c) if c.variant == super::llama::Variant::Qwen3 => "<|endoftext|>",
            Self::Llama(_) => "<|begin_of_text|>",
            Self::Neox(_) => "<|endoftext|>",
        }
    }

    /// The width of the value at `hook`: the residual's, or for `attn.hook_z` the heads'
    /// outputs side by side (Gemma's heads are not d_model / n_heads wide).
    pub fn d_in(&self, hook: super::hooks::HookPoint) -> usize {
        match (self, hook.site) {
            (Self::Gemma(c), super::hooks::Site::AttnZ) => c.num_attention_heads * c.head_dim,
            (Self::Llama(c), super::hooks::Site::AttnZ) => c.num_attention_heads * c.head_dim,
            _ => self.d_model(),
        }
    }

    /// The hub model whose SAE releases fit a local checkpoint of this family, so
    /// `--model-dir` alone takes that family's default SAEs (SAELens's registry names
    /// releases by hub model). None for GPT-2, whose default release is saescope's own
    /// default; Gemma 3 by width, the smallest for a shape the hub does not ship.
    pub fn hub_model(&self) -> Option<&'static str> {
        match self {
            Self::Gpt2(_) => None,
            Self::Gemma(c) if c.generation == super::gemma::Generation::Gemma2 => {
                Some(if c.hidden_size == 3584 { "google/gemma-2-9b" } else { "google/gemma-2-2b" })
            }
            Self::Gemma(c) if c.hidden_size == 1152 => Some("google/gemma-3-1b-pt"),
            Self::Gemma(c) if c.hidden_size == 2560 => Some("google/gemma-3-4b-pt"),
            Self::Gemma(c) if c.hidden_size == 3840 => Some("google/gemma-3-12b-pt"),
            Self::Gemma(c) if c.hidden_size == 5376 => Some("google/gemma-3-27b-pt"),
            Self::Gemma(_) => Some("google/gemma-3-270m"),
            Self::Llama(c) => Some(match (c.variant, c.hidden_size) {
                (super::llama::Variant::Llama, 4096) => "meta-llama/Llama-3.1-8B",
                (super::llama::Variant::Llama, _) => "meta-llama/Llama-3.2-1B",
                (super::llama::Variant::Qwen3, 2048) => "Qwen/Qwen3-1.7B",
                (super::llama::Variant::Qwen3, _) => "Qwen/Qwen3-0.6B",
            }),
            // The one Pythia SAELens's registry has SAEs for.
            Self::Neox(_) => Some("EleutherAI/pythia-70m-deduped"),
        }
    }

    /// Whether the bundled GPT-2 tokenizer may stand in when the model has no tokenizer.json.
    pub fn bundled_tokenizer_fits(&self) -> bool {
        matches!(self, Self::Gpt2(_))
    }

    /// What checkpoint tensor `name` is to a run (the memory plan counts what it loads).
    pub fn tensor_use(&self, name: &str) -> TensorUse {
        let block = |rest: Option<&str>| rest.and_then(|r| r.split('.').next()).and_then(|i| i.parse::<usize>().ok());
        match self {
            Self::Gpt2(_) => {
                let n = name.strip_prefix("transformer.").unwrap_or(name);
                // The hub's checkpoints carry a causal-mask buffer per block (`h.N.attn.bias`,
                // [1, 1, n_ctx, n_ctx]: 4 MiB each), which the model builds itself.
                if n.ends_with(".attn.bias") || n.ends_with(".attn.masked_bias") || n.starts_with("lm_head.") {
                    return TensorUse::Never;
                }
                block(n.strip_prefix("h.")).map_or(TensorUse::Always, TensorUse::Block)
            }
            Self::Gemma(_) => {
                let n = ["model.language_model.", "language_model.model.", "model."].iter().find_map(|p| name.strip_prefix(p)).unwrap_or(name);
                if n.starts_with("vision_tower.") || n.starts_with("multi_modal_projector.") || name.starts_with("lm_head.") {
                    return TensorUse::Never;
                }
                block(n.strip_prefix("layers.")).map_or(TensorUse::Always, TensorUse::Block)
            }
            Self::Llama(c) => {
                if name.starts_with("lm_head.") && c.tie_word_embeddings {
                    return TensorUse::Never;
                }
                block(name.strip_prefix("model.").unwrap_or(name).strip_prefix("layers.")).map_or(TensorUse::Always, TensorUse::Block)
            }
            Self::Neox(c) => {
                // Older checkpoints carry each layer's causal-mask buffers and RoPE table.
                let buffer = [".attention.bias", ".attention.masked_bias", ".rotary_emb.inv_freq"].iter().any(|b| name.ends_with(b));
                if buffer || ((name.starts_with("embed_out.") || name.starts_with("lm_head.")) && c.tie_word_embeddings) {
                    return TensorUse::Never;
                }
                block(name.strip_prefix("gpt_neox.").unwrap_or(name).strip_prefix("layers.")).map_or(TensorUse::Always, TensorUse::Block)
            }
        }
    }

    /// The model with its first `n_blocks` blocks, from its weights `file`.
    pub fn load(&self, file: std::sync::Arc<crate::weights::checkpoint::Checkpoint>, n_blocks: usize, device: Device, kind: Kind) -> Result<Box<dyn Family>> {
        Ok(match self {
            Self::Gpt2(c) => Box::new(super::gpt2::Gpt2::load(c.clone(), file, n_blocks, device, kind)?),
            Self::Gemma(c) => Box::new(super::gemma::Gemma::load(c.clone(), file, n_blocks, device, kind)?),
            Self::Llama(c) => Box::new(super::llama::Llama::load(c.clone(), file, n_blocks, device, kind)?),
            Self::Neox(c) => Box::new(super::neox::Neox::load(c.clone(), file, n_blocks, device, kind)?),
        })
    }
}
