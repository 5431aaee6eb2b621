//! Gemma 2 and Gemma 3 text models (`model_type: gemma2`, google/gemma-2-2b, -9b and their
//! -it; `gemma3_text`, google/gemma-3-270m, -1b-pt and their -it): config, weight loading and
//! the forward, as HF transformers' `modeling_gemma2.py` and `modeling_gemma3.py` compute
//! them (tests/it/gemma2.rs and tests/it/gemma3.rs hold them to that on tiny models). One
//! file for both because Gemma 3's block is Gemma 2's with RMSNorm on each head's q and k
//! and a second RoPE base for its sliding-window layers (HF writes modeling_gemma3.py from
//! Gemma 2's through its modular files).
//!
//! What differs from GPT-2: RMSNorm with `(1 + w)`, computed in f32; embeddings scaled by
//! sqrt(hidden); grouped-query attention (Gemma 3: with RMSNorm on each head's q and k);
//! RoPE (Gemma 3: a local base on sliding-window layers and a global base on full-attention
//! layers); sliding-window layers alternating with global ones; scores scaled by
//! `query_pre_attn_scalar^-0.5` (not head_dim's); norms before and after both attention and
//! MLP; a gated MLP with tanh-GELU; a final norm; the unembedding tied to the embeddings;
//! logit soft-caps on the scores and the output where the config says (Gemma 2's 50 and 30).

use crate::model::hooks::{HookPoint, Processing, Site};
use crate::model::rope::{self, Blocks, RopeScaling, Scores};
use crate::model::{Family, Freeze, HookEdit, KvCache};
use crate::weights::checkpoint::Checkpoint;
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// Which Gemma a checkpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// No head norms, one RoPE base, soft-capped scores and logits.
    Gemma2,
    /// Head norms, a RoPE base for each kind of layer.
    Gemma3,
}

/// What the forward needs of HF's Gemma2Config and Gemma3TextConfig.
#[derive(Debug, Clone, PartialEq)]
pub struct GemmaConfig {
    pub generation: Generation,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub query_pre_attn_scalar: f64,
    pub sliding_window: usize,
    /// The longest sequence the model takes (`max_position_embeddings`).
    pub n_ctx: usize,
    /// Per layer: true where attention is sliding-window (local).
    pub sliding: Vec<bool>,
    pub rope_local: f64,
    pub rope_global: f64,
    /// The global layers' frequency scaling (Gemma 3 4B and larger: linear by 8).
    pub rope_global_scaling: RopeScaling,
    pub final_logit_softcapping: Option<f64>,
    pub attn_logit_softcapping: Option<f64>,
}

impl GemmaConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read model config {}", path.display()))?;
        let v: Value = serde_json::from_str(&text).wrap_err_with(|| format!("{} is not valid JSON", path.display()))?;
        Self::from_json(&v).wrap_err_with(|| format!("in {}", path.display()))
    }

    /// The hub's config.json: today's keys (`layer_types`, `rope_parameters`) or the older
    /// ones (`sliding_window_pattern`, `rope_theta`, `rope_local_base_freq`).
    pub fn from_json(v: &Value) -> Result<Self> {
        let generation = match v.get("model_type").and_then(Value::as_str) {
            Some("gemma3_text") => Generation::Gemma3,
            Some("gemma2") => Generation::Gemma2,
            Some("gemma3") => return Self::from_json(&multimodal_text_config(v)?),
            other => bail!("model_type {other:?} is neither gemma2 nor gemma3_text"),
        };
        let gemma2 = generation == Generation::Gemma2;
        let uint = |k: &str| v.get(k).and_then(Value::as_u64).map(|n| n as usize).ok_or_else(|| eyre!("missing {k}"));
        let float = |k: &str| v.get(k).and_then(Value::as_f64);
        let n_layers = uint("num_hidden_layers")?;
        let sliding = match v.get("layer_types").and_then(Value::as_array) {
            Some(types) => types.iter().map(|t| t.as_str() == Some("sliding_attention")).collect(),
            None => {
                // Gemma 2 alternates, sliding first; Gemma 3 has five sliding then a global.
                let pattern = v.get("sliding_window_pattern").and_then(Value::as_u64).unwrap_or(if gemma2 { 2 } else { 6 }) as usize;
                (0..n_layers).map(|i| (i + 1) % pattern.max(1) != 0).collect()
            }
        };
        // A layer type's base and scaling: Gemma 3's global layers scale linearly from 4B up
        // (`rope_parameters.full_attention`, or the older `rope_scaling`).
        let rope = |layer_type: &str, old_key: &str, default: f64| -> Result<(f64, RopeScaling)> {
            let (theta, scaling) = match v.get("rope_parameters").and_then(|r| r.get(layer_type)) {
                Some(p) => (
                    p.get("rope_theta").and_then(Value::as_f64).ok_or_else(|| eyre!("rope_parameters.{layer_type} without rope_theta"))?,
                    RopeScaling::from_json(Some(p))?,
                ),
                None if layer_type == "full_attention" => (float(old_key).unwrap_or(default), RopeScaling::from_json(v.get("rope_scaling"))?),
                None => (float(old_key).unwrap_or(default), RopeScaling::Default),
            };
            if !matches!(scaling, RopeScaling::Default | RopeScaling::Linear { .. }) {
                bail!("{scaling:?} RoPE for {layer_type} layers is not supported (Gemma 3 uses the default, or linear scaling on its global layers)");
            }
            Ok((theta, scaling))
        };
        // Gemma 2 has one base for every layer (`rope_parameters.rope_theta`, or `rope_theta`).
        let single = || -> Result<f64> {
            let p = v.get("rope_parameters").filter(|p| !p.is_null());
            if crate::model::rope::RopeScaling::from_json(p)? != RopeScaling::Default {
                bail!("only default RoPE is supported for Gemma 2");
            }
            Ok(p.and_then(|p| p.get("rope_theta")).or_else(|| v.get("rope_theta")).and_then(Value::as_f64).unwrap_or(10_000.0))
        };
        let ((rope_local, local_scaling), (rope_global, rope_global_scaling)) = if gemma2 {
            ((single()?, RopeScaling::Default), (single()?, RopeScaling::Default))
        } else {
            (rope("sliding_attention", "rope_local_base_freq", 10_000.0)?, rope("full_attention", "rope_theta", 1_000_000.0)?)
        };
        if local_scaling != RopeScaling::Default {
            bail!("scaled RoPE on the sliding-window layers is not supported (Gemma 3 scales its global layers only)");
        }
        // An absent cap takes HF's default (Gemma 2's 50 and 30); a null one is none.
        let cap = |k: &str, gemma2_default: f64| match v.get(k) {
            None => gemma2.then_some(gemma2_default),
            Some(x) => x.as_f64(),
        };
        let cfg = Self {
            generation,
            vocab_size: uint("vocab_size")?,
            hidden_size: uint("hidden_size")?,
            intermediate_size: uint("intermediate_size")?,
            num_hidden_layers: n_layers,
            num_attention_heads: uint("num_attention_heads")?,
            num_key_value_heads: uint("num_key_value_heads")?,
            head_dim: uint("head_dim")?,
            rms_norm_eps: float("rms_norm_eps").unwrap_or(1e-6),
            query_pre_attn_scalar: float("query_pre_attn_scalar").or(gemma2.then_some(256.0)).ok_or_else(|| eyre!("missing query_pre_attn_scalar"))?,
            sliding_window: uint("sliding_window")?,
            n_ctx: uint("max_position_embeddings")?,
            sliding,
            rope_local,
            rope_global,
            rope_global_scaling,
            final_logit_softcapping: cap("final_logit_softcapping", 30.0),
            attn_logit_softcapping: cap("attn_logit_softcapping", 50.0),
        };
        if cfg.sliding.len() != n_layers {
            bail!("layer_types has {} entries for {n_layers} layers", cfg.sliding.len());
        }
        if !cfg.num_attention_heads.is_multiple_of(cfg.num_key_value_heads.max(1)) {
            bail!("{} query heads do not share {} key-value heads evenly", cfg.num_attention_heads, cfg.num_key_value_heads);
        }
        if let Some(act) = v.get("hidden_activation").and_then(Value::as_str).filter(|a| *a != "gelu_pytorch_tanh") {
            bail!("hidden_activation {act:?} is not supported (Gemma uses gelu_pytorch_tanh)");
        }
        Ok(cfg)
    }

    /// The family's name in messages.
    pub fn family(&self) -> &'static str {
        match self.generation {
            Generation::Gemma2 => "Gemma 2",
            Generation::Gemma3 => "Gemma 3",
        }
    }
}

/// The language model's config of a multimodal Gemma 3 checkpoint (Gemma3ForConditionalGeneration:
/// 4B, 12B, 27B), whose `text_config` the hub writes sparse: what it leaves out takes
/// transformers' Gemma3TextConfig defaults, filled in here (the vision tower is never read).
fn multimodal_text_config(v: &Value) -> Result<Value> {
    let Some(Value::Object(text)) = v.get("text_config") else {
        bail!("a multimodal Gemma 3 config (model_type gemma3) without its text_config");
    };
    let mut text = text.clone();
    let defaults = serde_json::json!({
        "model_type": "gemma3_text", "vocab_size": 262_208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
        "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh",
        "max_position_embeddings": 131_072, "rms_norm_eps": 1e-6, "query_pre_attn_scalar": 256, "sliding_window": 4096,
    });
    if let Value::Object(d) = defaults {
        for (k, x) in d {
            text.entry(k).or_insert(x);
        }
    }
    if text.get("model_type").and_then(Value::as_str) != Some("gemma3_text") {
        bail!("text_config's model_type is {:?}, not gemma3_text", text.get("model_type"));
    }
    Ok(Value::Object(text))
}

struct Layer {
    input_norm: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    o: Tensor,
    /// Gemma 3's per-head norms on q and k.
    qk_norm: Option<(Tensor, Tensor)>,
    post_attn_norm: Tensor,
    pre_ff_norm: Tensor,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
    post_ff_norm: Tensor,
}

pub struct Gemma {
    pub cfg: GemmaConfig,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    device: Device,
    kind: Kind,
    _file: Arc<Checkpoint>,
}

/// RoPE's cos and sin [positions, head_dim] for the sliding-window layers and the global ones.
pub(crate) struct Rope {
    local: (Tensor, Tensor),
    global: (Tensor, Tensor),
}

impl Gemma {
    /// Loads the embeddings, the final norm and the first `n_blocks` layers, as HF's
    /// Gemma3ForCausalLM saves them (`model.` prefix; the text part of a multimodal
    /// checkpoint under `language_model.model.` too).
    pub fn load(cfg: GemmaConfig, file: Arc<Checkpoint>, n_blocks: usize, device: Device, kind: Kind) -> Result<Self> {
        if n_blocks > cfg.num_hidden_layers {
            bail!("asked for {n_blocks} blocks but the model has {}", cfg.num_hidden_layers);
        }
        let get = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let candidates = [format!("model.{name}"), name.to_string(), format!("language_model.model.{name}"), format!("model.language_model.{name}")];
            let found =
                file.find(&candidates).ok_or_else(|| eyre!("{} has no tensor model.{name}; is it a {} checkpoint?", file.path().display(), cfg.family()))?;
            Ok(file.tensor_as(&found, shape, kind)?.to_device(device))
        };
        let (d, hd, nh, nkv, ff) = (cfg.hidden_size, cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.intermediate_size);
        let layers = (0..n_blocks)
            .map(|i| {
                let p = format!("layers.{i}");
                Ok(Layer {
                    input_norm: get(&format!("{p}.input_layernorm.weight"), &[d])?,
                    q: get(&format!("{p}.self_attn.q_proj.weight"), &[nh * hd, d])?,
                    k: get(&format!("{p}.self_attn.k_proj.weight"), &[nkv * hd, d])?,
                    v: get(&format!("{p}.self_attn.v_proj.weight"), &[nkv * hd, d])?,
                    o: get(&format!("{p}.self_attn.o_proj.weight"), &[d, nh * hd])?,
                    qk_norm: match cfg.generation {
                        Generation::Gemma3 => {
                            Some((get(&format!("{p}.self_attn.q_norm.weight"), &[hd])?, get(&format!("{p}.self_attn.k_norm.weight"), &[hd])?))
                        }
                        Generation::Gemma2 => None,
                    },
                    post_attn_norm: get(&format!("{p}.post_attention_layernorm.weight"), &[d])?,
                    pre_ff_norm: get(&format!("{p}.pre_feedforward_layernorm.weight"), &[d])?,
                    gate: get(&format!("{p}.mlp.gate_proj.weight"), &[ff, d])?,
                    up: get(&format!("{p}.mlp.up_proj.weight"), &[ff, d])?,
                    down: get(&format!("{p}.mlp.down_proj.weight"), &[d, ff])?,
                    post_ff_norm: get(&format!("{p}.post_feedforward_layernorm.weight"), &[d])?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (embed, norm) = (get("embed_tokens.weight", &[cfg.vocab_size, d])?, get("norm.weight", &[d])?);
        file.release_if_copied(device);
        Ok(Self { embed, norm, layers, cfg, device, kind, _file: file })
    }

    /// `(x / rms(x)) * (1 + w)` in f32, back in x's kind, as Gemma3RMSNorm.
    fn rms(&self, x: &Tensor, w: &Tensor) -> Tensor {
        let xf = x.to_kind(Kind::Float);
        let inv = (xf.square().mean_dim(-1, true, Kind::Float) + self.cfg.rms_norm_eps).rsqrt();
        (&xf * inv * (w.to_kind(Kind::Float) + 1.0)).to_kind(x.kind())
    }

    /// `rms`, or where `frozen` with `1 / rms(x)` taken from the freeze: the replacement
    /// model's norm, linear in `x` (graph/).
    fn rms_as(&self, x: &Tensor, w: &Tensor, frozen: Option<&Freeze>) -> Result<Tensor> {
        let Some(f) = frozen else { return Ok(self.rms(x, w)) };
        let xf = x.to_kind(Kind::Float);
        let inv = self.inv_rms(&xf, Some(f))?;
        Ok((&xf * inv * (w.to_kind(Kind::Float) + 1.0)).to_kind(x.kind()))
    }

    /// `x / rms(x)` in f32 (the scale frozen where `frozen`), back in x's kind: the norm
    /// before its weight.
    fn normalized(&self, x: &Tensor, frozen: Option<&Freeze>) -> Result<Tensor> {
        let xf = x.to_kind(Kind::Float);
        Ok((&xf * self.inv_rms(&xf, frozen)?).to_kind(x.kind()))
    }

    /// `1 / rms(xf)` of f32 values, or the freeze's where `frozen`.
    fn inv_rms(&self, xf: &Tensor, frozen: Option<&Freeze>) -> Result<Tensor> {
        let inv = || (xf.square().mean_dim(-1, true, Kind::Float) + self.cfg.rms_norm_eps).rsqrt();
        match frozen {
            Some(f) => f.scale(inv),
            None => Ok(inv()),
        }
    }

    fn layer(&self, i: usize) -> Result<&Layer> {
        self.layers.get(i).ok_or_else(|| eyre!("internal: layer {i} is not loaded"))
    }

    /// The final norm and the tied unembedding, soft-capped where the config says: logits
    /// [.., vocab] in f32.
    fn unembed(&self, h: &Tensor) -> Tensor {
        let mut logits = self.rms(h, &self.norm).matmul(&self.embed.tr()).to_kind(Kind::Float);
        if let Some(cap) = self.cfg.final_logit_softcapping {
            logits = (logits / cap).tanh() * cap;
        }
        logits
    }
}

/// Gemma 3's block: norms before and after attention and the MLP, q and k RMS-normed per
/// head, scaled embeddings.
impl rope::Blocks for Gemma {
    type Rope = Rope;

    /// RoPE for positions `from..from + n`.
    fn rope(&self, from: i64, n: i64) -> Rope {
        let positions = Tensor::arange_start(from, from + n, (Kind::Float, self.device));
        let at = |scaling: &RopeScaling, base| rope::cos_sin(&positions, &scaling.inv_freq(self.cfg.head_dim, base), self.kind);
        Rope { local: at(&RopeScaling::Default, self.cfg.rope_local), global: at(&self.cfg.rope_global_scaling, self.cfg.rope_global) }
    }

    fn window(&self, i: usize) -> Option<usize> {
        self.cfg.sliding.get(i).copied().unwrap_or(false).then_some(self.cfg.sliding_window)
    }

    fn scores(&self) -> Scores {
        Scores { scale: self.cfg.query_pre_attn_scalar.powf(-0.5), softcap: self.cfg.attn_logit_softcapping }
    }

    /// The scaled embeddings of `ids` (any shape), [.., hidden].
    fn embed(&self, ids: &Tensor) -> Tensor {
        let scale = Tensor::from((self.cfg.hidden_size as f64).sqrt()).to_kind(self.kind).to_device(self.device);
        let shape: Vec<i64> = ids.size().into_iter().chain([-1]).collect();
        self.embed.index_select(0, &ids.view([-1])).view(&shape[..]) * scale
    }

    fn layer_forward(
        &self,
        i: usize,
        h: Tensor,
        rope: &Rope,
        attend: &mut dyn FnMut(Tensor, Tensor, Tensor) -> Result<Tensor>,
        frozen: Option<&Freeze>,
        edit: &mut HookEdit,
    ) -> Result<Tensor> {
        let (l, c) = (self.layer(i)?, &self.cfg);
        let at = |site| HookPoint::new(i, site);
        let x = self.rms_as(&h, &l.input_norm, frozen)?;
        let q = rope::split_heads(&x.matmul(&l.q.tr()), c.head_dim);
        let k = rope::split_heads(&x.matmul(&l.k.tr()), c.head_dim);
        let v = rope::split_heads(&x.matmul(&l.v.tr()), c.head_dim).transpose(-3, -2);
        let (cos, sin) = if c.sliding[i] { &rope.local } else { &rope.global };
        let (q, k) = match &l.qk_norm {
            Some((qn, kn)) => (self.rms(&q, qn), self.rms(&k, kn)),
            None => (q, k),
        };
        let (q, k) = (rope::rotate(&q.transpose(-3, -2), cos, sin), rope::rotate(&k.transpose(-3, -2), cos, sin));
        let a = attend(q, k, v)?;
        let z = edit.apply(at(Site::AttnZ), rope::merge_heads(&a))?;
        let attn_out = edit.apply(at(Site::AttnOut), self.rms_as(&z.matmul(&l.o.tr()), &l.post_attn_norm, frozen)?)?;
        let mid = edit.apply(at(Site::ResidMid), h.f_add(&attn_out)?)?;
        let x = if edit.wants(at(Site::Ln2Normalized)) {
            // TransformerLens's ln2.hook_normalized: x / rms(x), before the norm's `1 + w`
            // (what the first Gemma Scope's transcoders read).
            let n = edit.apply(at(Site::Ln2Normalized), self.normalized(&mid, frozen)?)?;
            (n.to_kind(Kind::Float) * (l.pre_ff_norm.to_kind(Kind::Float) + 1.0)).to_kind(mid.kind())
        } else {
            self.rms_as(&mid, &l.pre_ff_norm, frozen)?
        };
        let x = edit.apply(at(Site::MlpIn), x)?;
        let m = (x.matmul(&l.gate.tr()).gelu("tanh") * x.matmul(&l.up.tr())).matmul(&l.down.tr());
        let mlp_out = edit.apply(at(Site::MlpOut), self.rms(&m, &l.post_ff_norm))?;
        edit.apply(at(Site::ResidPost), mid.f_add(&mlp_out)?)
    }
}

impl Family for Gemma {
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
        Ok(self.unembed(&h))
    }

    /// The HF values: Gemma Scope 2 was trained on them, and TransformerLens neither centres
    /// an RMSNorm model's writing weights nor has value biases to fold, so every processing
    /// reads them as they are.
    fn view(&self, _hook: HookPoint, value: &Tensor, _processing: Processing) -> Result<Tensor> {
        Ok(value.shallow_clone())
    }

    fn unview(&self, _hook: HookPoint, _value: &Tensor, new: &Tensor, _processing: Processing) -> Result<Tensor> {
        Ok(new.shallow_clone())
    }

    fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache, edit: &mut HookEdit) -> Result<Tensor> {
        let h = rope::cached_forward(self, tokens, cache, edit)?;
        Ok(self.unembed(&h))
    }

    fn frozen_forward(&self, tokens: &Tensor, freeze: &Freeze, edit: &mut HookEdit) -> Result<Tensor> {
        let h = rope::frozen_blocks(self, tokens, freeze, edit)?;
        self.rms_as(&h, &self.norm, Some(freeze))
    }

    fn final_softcap(&self) -> Option<f64> {
        self.cfg.final_logit_softcapping
    }

    fn unembedding(&self) -> Result<Tensor> {
        Ok(self.embed.shallow_clone())
    }

    /// The embedding row times sqrt(d_model), as Gemma's embedding applies it: what the
    /// token puts into the residual stream.
    fn token_embedding(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(self.embed(&ids.to_device(self.device)))
    }

    /// TransformerLens's reading for Gemma: the final norm's `(1 + w)` folded into the tied
    /// unembedding (`fold_ln`), then the mean over the vocabulary removed (`center_unembed`);
    /// no soft-cap (the lens is linear).
    fn logit_lens(&self, dirs: &Tensor) -> Result<Tensor> {
        let scale = self.norm.to_kind(Kind::Float) + 1.0;
        let logits = super::unembed_f32(&(dirs.to_device(self.device).to_kind(Kind::Float) * scale), &self.embed);
        Ok(&logits - logits.mean_dim(-1, true, Kind::Float))
    }

    /// For `attn.hook_z` through o_proj and the post-attention norm's `(1 + w)`: what the
    /// heads write, up to the norm's per-token 1/rms (a positive factor, so the lens ranks
    /// tokens as the write would).
    fn to_residual(&self, hook: HookPoint, dirs: &Tensor) -> Result<Tensor> {
        match hook.site {
            Site::AttnZ => {
                let l = self.layer(hook.layer)?;
                Ok(dirs.matmul(&l.o.tr()) * (l.post_attn_norm.to_kind(dirs.kind()) + 1.0))
            }
            Site::Ln2Normalized | Site::MlpIn => bail!("{hook} is the MLP's normalised input, which the residual stream does not receive: no logit lens"),
            _ => Ok(dirs.shallow_clone()),
        }
    }
}
