//! Llama 3 and Qwen 3 (`model_type: llama`, meta-llama/Llama-3.2-1B, -3.1-8B; `qwen3`,
//! Qwen/Qwen3-0.6B, -1.7B...): config, weight loading and the forward, as HF transformers'
//! `modeling_llama.py` and `modeling_qwen3.py` compute them (tests/it/llama.rs holds both to
//! that on tiny models). One file for both because Qwen 3 is Llama's block with one
//! addition, an RMSNorm on each head's q and k before RoPE (HF writes modeling_qwen3.py from
//! Llama's through its modular files); a second file would repeat every other line.
//!
//! What differs from Gemma 3 (gemma.rs): RMSNorm multiplies by `w` (not `1 + w`) after
//! casting back to the input's dtype; no embedding scale; one norm before attention and one
//! before the MLP (HF names it `post_attention_layernorm`), none after; a SiLU-gated MLP;
//! scores scaled by head_dim^-0.5; one RoPE base, with Llama 3.1's frequency scaling where
//! the config asks; the unembedding tied to the embeddings only where the config says.

use crate::model::hooks::{HookPoint, Processing, Site};
use crate::model::rope::{self, Blocks, RopeScaling, Scores};
use crate::model::{Family, Freeze, HookEdit, KvCache};
use crate::weights::checkpoint::Checkpoint;
use color_eyre::eyre::{bail, eyre, Result};
use serde_json::Value;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// Which of the two the checkpoint is: its name in messages, and whether heads are normed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Llama,
    Qwen3,
}

/// What the forward needs of HF's LlamaConfig / Qwen3Config.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub variant: Variant,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    /// The longest sequence the model takes (`max_position_embeddings`).
    pub n_ctx: usize,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub tie_word_embeddings: bool,
    /// Biases on q, k, v and o (`attention_bias`).
    pub attention_bias: bool,
    /// Biases on the MLP's three projections (Llama's `mlp_bias`).
    pub mlp_bias: bool,
}

impl LlamaConfig {
    /// The hub's config.json: transformers 5's `rope_parameters` or the older `rope_theta`
    /// and `rope_scaling`.
    pub fn from_json(v: &Value) -> Result<Self> {
        let variant = match v.get("model_type").and_then(Value::as_str) {
            Some("llama") => Variant::Llama,
            Some("qwen3") => Variant::Qwen3,
            other => bail!("model_type {other:?} is neither llama nor qwen3"),
        };
        let uint = |k: &str| v.get(k).and_then(Value::as_u64).map(|n| n as usize).ok_or_else(|| eyre!("missing {k}"));
        let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        let (d, heads) = (uint("hidden_size")?, uint("num_attention_heads")?);
        if heads == 0 {
            bail!("num_attention_heads is 0");
        }
        let rope = v.get("rope_parameters").filter(|p| !p.is_null());
        let rope_theta = rope.and_then(|p| p.get("rope_theta")).or_else(|| v.get("rope_theta")).and_then(Value::as_f64).unwrap_or(10_000.0);
        let rope_scaling = RopeScaling::from_json(rope.or_else(|| v.get("rope_scaling")))?;
        if let Some(act) = v.get("hidden_act").and_then(Value::as_str).filter(|a| *a != "silu") {
            bail!("hidden_act {act:?} is not supported (Llama and Qwen 3 use silu)");
        }
        let sliding = flag("use_sliding_window")
            || v.get("layer_types").and_then(Value::as_array).is_some_and(|t| t.iter().any(|t| t.as_str() != Some("full_attention")));
        if sliding {
            bail!("sliding-window layers are not supported for {variant:?} (the released Qwen 3 and Llama 3 models have none)");
        }
        let cfg = Self {
            variant,
            vocab_size: uint("vocab_size")?,
            hidden_size: d,
            intermediate_size: uint("intermediate_size")?,
            num_hidden_layers: uint("num_hidden_layers")?,
            num_attention_heads: heads,
            num_key_value_heads: v.get("num_key_value_heads").and_then(Value::as_u64).map_or(heads, |n| n as usize),
            head_dim: v.get("head_dim").and_then(Value::as_u64).map_or(d / heads, |n| n as usize),
            rms_norm_eps: v.get("rms_norm_eps").and_then(Value::as_f64).unwrap_or(1e-6),
            n_ctx: uint("max_position_embeddings")?,
            rope_theta,
            rope_scaling,
            tie_word_embeddings: flag("tie_word_embeddings"),
            attention_bias: flag("attention_bias"),
            mlp_bias: flag("mlp_bias"),
        };
        if cfg.num_key_value_heads == 0 || !cfg.num_attention_heads.is_multiple_of(cfg.num_key_value_heads) {
            bail!("{} query heads do not share {} key-value heads evenly", cfg.num_attention_heads, cfg.num_key_value_heads);
        }
        if cfg.attention_bias {
            // TransformerLens folds value biases into the output's, which moves attn.hook_z
            // off HF's values; no released Llama 3 or Qwen 3 has them.
            bail!("attention_bias is not supported (no released Llama 3 or Qwen 3 has attention biases)");
        }
        if rope.and_then(|p| p.get("partial_rotary_factor")).and_then(Value::as_f64).is_some_and(|f| f != 1.0) {
            bail!("partial_rotary_factor is not supported (Llama 3 and Qwen 3 rotate every dimension)");
        }
        if cfg.head_dim == 0 || !cfg.head_dim.is_multiple_of(2) {
            bail!("head_dim {} is not a positive even number (RoPE rotates pairs)", cfg.head_dim);
        }
        Ok(cfg)
    }

    /// The family's name in messages.
    pub fn family(&self) -> &'static str {
        match self.variant {
            Variant::Llama => "Llama 3",
            Variant::Qwen3 => "Qwen 3",
        }
    }
}

/// A projection's weight [out, in] and its bias where the config has one.
struct Linear {
    w: Tensor,
    b: Option<Tensor>,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Tensor {
        let y = x.matmul(&self.w.tr());
        match &self.b {
            Some(b) => y + b,
            None => y,
        }
    }
}

struct Layer {
    input_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    /// Qwen 3's per-head norms on q and k.
    qk_norm: Option<(Tensor, Tensor)>,
    mlp_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

pub struct Llama {
    pub cfg: LlamaConfig,
    embed: Tensor,
    /// `lm_head.weight`, or the embeddings where they are tied.
    unembed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    inv_freq: Vec<f64>,
    device: Device,
    kind: Kind,
    _file: Arc<Checkpoint>,
}

impl Llama {
    /// Loads the embeddings, the final norm, the unembedding and the first `n_blocks`
    /// layers, as HF's LlamaForCausalLM and Qwen3ForCausalLM save them (`model.` prefix).
    pub fn load(cfg: LlamaConfig, file: Arc<Checkpoint>, n_blocks: usize, device: Device, kind: Kind) -> Result<Self> {
        if n_blocks > cfg.num_hidden_layers {
            bail!("asked for {n_blocks} blocks but the model has {}", cfg.num_hidden_layers);
        }
        let family = cfg.family();
        let get = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let candidates = [format!("model.{name}"), name.to_string()];
            let found = file.find(&candidates).ok_or_else(|| eyre!("{} has no tensor model.{name}; is it a {family} checkpoint?", file.path().display()))?;
            Ok(file.tensor_as(&found, shape, kind)?.to_device(device))
        };
        let (d, hd, nh, nkv, ff) = (cfg.hidden_size, cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.intermediate_size);
        let linear = |name: &str, out: usize, inp: usize, bias: bool| -> Result<Linear> {
            Ok(Linear { w: get(&format!("{name}.weight"), &[out, inp])?, b: if bias { Some(get(&format!("{name}.bias"), &[out])?) } else { None } })
        };
        let layers = (0..n_blocks)
            .map(|i| {
                let p = format!("layers.{i}");
                let (ab, mb) = (cfg.attention_bias, cfg.mlp_bias);
                Ok(Layer {
                    input_norm: get(&format!("{p}.input_layernorm.weight"), &[d])?,
                    q: linear(&format!("{p}.self_attn.q_proj"), nh * hd, d, ab)?,
                    k: linear(&format!("{p}.self_attn.k_proj"), nkv * hd, d, ab)?,
                    v: linear(&format!("{p}.self_attn.v_proj"), nkv * hd, d, ab)?,
                    o: linear(&format!("{p}.self_attn.o_proj"), d, nh * hd, ab)?,
                    qk_norm: match cfg.variant {
                        Variant::Qwen3 => Some((get(&format!("{p}.self_attn.q_norm.weight"), &[hd])?, get(&format!("{p}.self_attn.k_norm.weight"), &[hd])?)),
                        Variant::Llama => None,
                    },
                    mlp_norm: get(&format!("{p}.post_attention_layernorm.weight"), &[d])?,
                    gate: linear(&format!("{p}.mlp.gate_proj"), ff, d, mb)?,
                    up: linear(&format!("{p}.mlp.up_proj"), ff, d, mb)?,
                    down: linear(&format!("{p}.mlp.down_proj"), d, ff, mb)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let embed = get("embed_tokens.weight", &[cfg.vocab_size, d])?;
        let unembed = match file.find(&["lm_head.weight".to_string()]) {
            Some(name) if !cfg.tie_word_embeddings => file.tensor_as(&name, &[cfg.vocab_size, d], kind)?.to_device(device),
            None if !cfg.tie_word_embeddings => bail!("{} has no lm_head.weight, and its config does not tie the embeddings", file.path().display()),
            _ => embed.shallow_clone(),
        };
        let norm = get("norm.weight", &[d])?;
        file.release_if_copied(device);
        let inv_freq = cfg.rope_scaling.inv_freq(hd, cfg.rope_theta);
        Ok(Self { embed, unembed, norm, layers, inv_freq, cfg, device, kind, _file: file })
    }

    /// `w * (x / rms(x))`, the normalising in f32 and back in x's kind before the weight, as
    /// LlamaRMSNorm and Qwen3RMSNorm; where `frozen`, `1 / rms(x)` is the freeze's (the
    /// replacement model's norm, linear in `x`, graph/).
    fn rms(&self, x: &Tensor, w: &Tensor, frozen: Option<&Freeze>) -> Result<Tensor> {
        let xf = x.to_kind(Kind::Float);
        let inv = || (xf.square().mean_dim(-1, true, Kind::Float) + self.cfg.rms_norm_eps).rsqrt();
        let inv = match frozen {
            Some(f) => f.scale(inv)?,
            None => inv(),
        };
        Ok((&xf * inv).to_kind(x.kind()) * w)
    }

    fn layer(&self, i: usize) -> Result<&Layer> {
        self.layers.get(i).ok_or_else(|| eyre!("internal: layer {i} is not loaded"))
    }

    /// The final norm and the unembedding: logits [.., vocab] in f32.
    fn logits(&self, h: &Tensor) -> Result<Tensor> {
        Ok(self.rms(h, &self.norm, None)?.matmul(&self.unembed.tr()).to_kind(Kind::Float))
    }
}

impl rope::Blocks for Llama {
    type Rope = (Tensor, Tensor);

    fn window(&self, _i: usize) -> Option<usize> {
        None
    }

    fn scores(&self) -> Scores {
        Scores { scale: (self.cfg.head_dim as f64).powf(-0.5), softcap: None }
    }

    fn embed(&self, ids: &Tensor) -> Tensor {
        let shape: Vec<i64> = ids.size().into_iter().chain([-1]).collect();
        self.embed.index_select(0, &ids.view([-1])).view(&shape[..])
    }

    fn rope(&self, from: i64, n: i64) -> Self::Rope {
        rope::cos_sin(&Tensor::arange_start(from, from + n, (Kind::Float, self.device)), &self.inv_freq, self.kind)
    }

    fn layer_forward(
        &self,
        i: usize,
        h: Tensor,
        rope: &Self::Rope,
        attend: &mut dyn FnMut(Tensor, Tensor, Tensor) -> Result<Tensor>,
        frozen: Option<&Freeze>,
        edit: &mut HookEdit,
    ) -> Result<Tensor> {
        let (l, c) = (self.layer(i)?, &self.cfg);
        let at = |site| HookPoint::new(i, site);
        if edit.wants(at(Site::Ln2Normalized)) {
            bail!("{} is not a {} hook point (its MLP's input is RMS-normalised, not LayerNormed)", at(Site::Ln2Normalized), c.family());
        }
        let x = self.rms(&h, &l.input_norm, frozen)?;
        let (mut q, mut k) = (rope::split_heads(&l.q.forward(&x), c.head_dim), rope::split_heads(&l.k.forward(&x), c.head_dim));
        if let Some((qn, kn)) = &l.qk_norm {
            // The heads' norms meet q and k only, which frozen patterns make constants.
            (q, k) = (self.rms(&q, qn, None)?, self.rms(&k, kn, None)?);
        }
        let v = rope::split_heads(&l.v.forward(&x), c.head_dim).transpose(-3, -2);
        let (cos, sin) = rope;
        let (q, k) = (rope::rotate(&q.transpose(-3, -2), cos, sin), rope::rotate(&k.transpose(-3, -2), cos, sin));
        let z = edit.apply(at(Site::AttnZ), rope::merge_heads(&attend(q, k, v)?))?;
        let attn_out = edit.apply(at(Site::AttnOut), l.o.forward(&z))?;
        let mid = edit.apply(at(Site::ResidMid), h.f_add(&attn_out)?)?;
        let x = edit.apply(at(Site::MlpIn), self.rms(&mid, &l.mlp_norm, frozen)?)?;
        let mlp_out = edit.apply(at(Site::MlpOut), l.down.forward(&(l.gate.forward(&x).silu() * l.up.forward(&x))))?;
        edit.apply(at(Site::ResidPost), mid.f_add(&mlp_out)?)
    }
}

impl Family for Llama {
    fn name(&self) -> &'static str {
        self.cfg.family()
    }

    fn n_layers(&self) -> usize {
        self.cfg.num_hidden_layers
    }

    fn n_blocks(&self) -> usize {
        self.layers.len()
    }

    fn n_ctx(&self) -> usize {
        self.cfg.n_ctx
    }

    fn d_model(&self) -> usize {
        self.cfg.hidden_size
    }

    fn block_flops(&self, t: usize) -> f64 {
        let c = &self.cfg;
        rope::block_flops(c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.intermediate_size, t)
    }

    fn vocab_size(&self) -> usize {
        self.cfg.vocab_size
    }

    fn device(&self) -> Device {
        self.device
    }

    fn kind(&self) -> Kind {
        self.kind
    }

    fn hooks_each(&self, tokens: &Tensor, mask: &Tensor, requested: &[(HookPoint, Processing)]) -> Result<Vec<Tensor>> {
        rope::hooks_each(self, tokens, mask, requested)
    }

    fn logits_each(&self, tokens: &Tensor, mask: &Tensor, edit: &mut HookEdit) -> Result<Tensor> {
        let h = rope::all_blocks(self, tokens, mask, edit)?;
        self.logits(&h)
    }

    /// The HF values: TransformerLens neither centres an RMSNorm model's writing weights nor
    /// folds anything into the residual stream of a model without value biases, so every
    /// processing reads them as they are.
    fn view(&self, _hook: HookPoint, value: &Tensor, _processing: Processing) -> Result<Tensor> {
        Ok(value.shallow_clone())
    }

    fn unview(&self, _hook: HookPoint, _value: &Tensor, new: &Tensor, _processing: Processing) -> Result<Tensor> {
        Ok(new.shallow_clone())
    }

    fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache, edit: &mut HookEdit) -> Result<Tensor> {
        let h = rope::cached_forward(self, tokens, cache, edit)?;
        self.logits(&h)
    }

    fn frozen_forward(&self, tokens: &Tensor, freeze: &Freeze, edit: &mut HookEdit) -> Result<Tensor> {
        let h = rope::frozen_blocks(self, tokens, freeze, edit)?;
        self.rms(&h, &self.norm, Some(freeze))
    }

    fn unembedding(&self) -> Result<Tensor> {
        Ok(self.unembed.shallow_clone())
    }

    fn token_embedding(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(self.embed(&ids.to_device(self.device)))
    }

    /// TransformerLens's reading: the final norm's `w` folded into the unembedding
    /// (`fold_ln`), then the mean over the vocabulary removed (`center_unembed`).
    fn logit_lens(&self, dirs: &Tensor) -> Result<Tensor> {
        let scaled = dirs.to_device(self.device).to_kind(Kind::Float) * self.norm.to_kind(Kind::Float);
        let logits = super::unembed_f32(&scaled, &self.unembed);
        Ok(&logits - logits.mean_dim(-1, true, Kind::Float))
    }

    /// For `attn.hook_z` through o_proj (its bias is the heads' sum's, not a direction's).
    fn to_residual(&self, hook: HookPoint, dirs: &Tensor) -> Result<Tensor> {
        match hook.site {
            Site::AttnZ => Ok(dirs.matmul(&self.layer(hook.layer)?.o.w.tr())),
            Site::Ln2Normalized => bail!("{hook} is not a {} hook point", self.cfg.family()),
            Site::MlpIn => bail!("{hook} is the MLP's normalised input, which the residual stream does not receive: no logit lens"),
            _ => Ok(dirs.shallow_clone()),
        }
    }
}
