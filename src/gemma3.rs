//! Gemma 3 text models (`model_type: gemma3_text`, google/gemma-3-270m, -1b-pt and their
//! -it): config, weight loading and the forward, as HF transformers' `modeling_gemma3.py`
//! computes it (tests/gemma3.rs holds it to that on a tiny model). The second model family:
//! a file of its own beside gpt2.rs, behind the seam in family.rs.
//!
//! What differs from GPT-2: RMSNorm with `(1 + w)`, computed in f32; embeddings scaled by
//! sqrt(hidden); grouped-query attention with RMSNorm on each head's q and k; RoPE with a
//! local base on sliding-window layers and a global base on full-attention layers; scores
//! scaled by `query_pre_attn_scalar^-0.5` (not head_dim's); norms before and after both
//! attention and MLP; a gated MLP with tanh-GELU; a final norm; the unembedding tied to the
//! embeddings; optional logit soft-caps.

use crate::hooks::{HookPoint, Site};
use crate::tensors::SafeFile;
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// What the forward needs of HF's Gemma3TextConfig.
#[derive(Debug, Clone, PartialEq)]
pub struct Gemma3Config {
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
    /// Per layer: true where attention is sliding-window (local).
    pub sliding: Vec<bool>,
    pub rope_local: f64,
    pub rope_global: f64,
    pub final_logit_softcapping: Option<f64>,
    pub attn_logit_softcapping: Option<f64>,
}

impl Gemma3Config {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read model config {}", path.display()))?;
        let v: Value = serde_json::from_str(&text).wrap_err_with(|| format!("{} is not valid JSON", path.display()))?;
        Self::from_json(&v).wrap_err_with(|| format!("in {}", path.display()))
    }

    /// The hub's config.json: today's keys (`layer_types`, `rope_parameters`) or the older
    /// ones (`sliding_window_pattern`, `rope_theta`, `rope_local_base_freq`).
    pub fn from_json(v: &Value) -> Result<Self> {
        match v.get("model_type").and_then(Value::as_str) {
            Some("gemma3_text") => {}
            Some("gemma3") => bail!("a multimodal Gemma 3 checkpoint (Gemma3ForConditionalGeneration, 4B and up): only the text models (270M, 1B) load"),
            other => bail!("model_type {other:?} is not gemma3_text"),
        }
        let uint = |k: &str| v.get(k).and_then(Value::as_u64).map(|n| n as usize).ok_or_else(|| eyre!("missing {k}"));
        let float = |k: &str| v.get(k).and_then(Value::as_f64);
        let n_layers = uint("num_hidden_layers")?;
        let sliding = match v.get("layer_types").and_then(Value::as_array) {
            Some(types) => types.iter().map(|t| t.as_str() == Some("sliding_attention")).collect(),
            None => {
                let pattern = v.get("sliding_window_pattern").and_then(Value::as_u64).unwrap_or(6) as usize;
                (0..n_layers).map(|i| (i + 1) % pattern.max(1) != 0).collect()
            }
        };
        let rope = |layer_type: &str, old_key: &str, default: f64| -> Result<f64> {
            if let Some(p) = v.get("rope_parameters").and_then(|r| r.get(layer_type)) {
                if let Some(kind) = p.get("rope_type").and_then(Value::as_str).filter(|k| *k != "default") {
                    bail!("rope_type {kind:?} for {layer_type} layers is not supported (the 270M and 1B models use the default)");
                }
                return p.get("rope_theta").and_then(Value::as_f64).ok_or_else(|| eyre!("rope_parameters.{layer_type} without rope_theta"));
            }
            if v.get("rope_scaling").is_some_and(|s| !s.is_null()) && layer_type == "full_attention" {
                bail!("rope_scaling is not supported (the 270M and 1B models have none)");
            }
            Ok(float(old_key).unwrap_or(default))
        };
        let cfg = Self {
            vocab_size: uint("vocab_size")?,
            hidden_size: uint("hidden_size")?,
            intermediate_size: uint("intermediate_size")?,
            num_hidden_layers: n_layers,
            num_attention_heads: uint("num_attention_heads")?,
            num_key_value_heads: uint("num_key_value_heads")?,
            head_dim: uint("head_dim")?,
            rms_norm_eps: float("rms_norm_eps").unwrap_or(1e-6),
            query_pre_attn_scalar: float("query_pre_attn_scalar").ok_or_else(|| eyre!("missing query_pre_attn_scalar"))?,
            sliding_window: uint("sliding_window")?,
            sliding,
            rope_local: rope("sliding_attention", "rope_local_base_freq", 10_000.0)?,
            rope_global: rope("full_attention", "rope_theta", 1_000_000.0)?,
            final_logit_softcapping: float("final_logit_softcapping"),
            attn_logit_softcapping: float("attn_logit_softcapping"),
        };
        if cfg.sliding.len() != n_layers {
            bail!("layer_types has {} entries for {n_layers} layers", cfg.sliding.len());
        }
        if !cfg.num_attention_heads.is_multiple_of(cfg.num_key_value_heads.max(1)) {
            bail!("{} query heads do not share {} key-value heads evenly", cfg.num_attention_heads, cfg.num_key_value_heads);
        }
        if let Some(act) = v.get("hidden_activation").and_then(Value::as_str).filter(|a| *a != "gelu_pytorch_tanh") {
            bail!("hidden_activation {act:?} is not supported (Gemma 3 uses gelu_pytorch_tanh)");
        }
        Ok(cfg)
    }
}

struct Layer {
    input_norm: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    o: Tensor,
    q_norm: Tensor,
    k_norm: Tensor,
    post_attn_norm: Tensor,
    pre_ff_norm: Tensor,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
    post_ff_norm: Tensor,
}

pub struct Gemma3 {
    pub cfg: Gemma3Config,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    _file: Arc<SafeFile>,
}

/// What one forward returns: HF's `hidden_states` (the scaled embeddings, then each layer's
/// output, the last after the final norm), the logits [seq, vocab], and what the hook points
/// SAEs read hold (`at`).
pub struct Forward {
    pub hidden_states: Vec<Tensor>,
    pub logits: Tensor,
    /// The residual entering each layer, and after the last (before the final norm).
    resid: Vec<Tensor>,
    /// Per layer: the heads' output before o_proj [seq, heads * head_dim], and what
    /// attention and the MLP add to the residual (after their post-norms).
    z: Vec<Tensor>,
    attn_out: Vec<Tensor>,
    mlp_out: Vec<Tensor>,
}

impl Forward {
    /// The value at `point` as TransformerLens names Gemma's hooks: resid_pre/post, attn.hook_z,
    /// hook_attn_out and hook_mlp_out (after the post-attention and post-MLP norms),
    /// hook_resid_mid (between them). None past the last layer or for a hook Gemma lacks.
    pub fn at(&self, point: HookPoint) -> Option<Tensor> {
        let l = point.layer;
        let v = match point.site {
            Site::ResidPre => self.resid.get(l)?,
            Site::ResidPost => self.resid.get(l + 1)?,
            Site::AttnZ => self.z.get(l)?,
            Site::AttnOut => self.attn_out.get(l)?,
            Site::MlpOut => self.mlp_out.get(l)?,
            Site::ResidMid => return Some(self.resid.get(l)? + self.attn_out.get(l)?),
            Site::Ln2Normalized => return None,
        };
        Some(v.shallow_clone())
    }
}

impl Gemma3 {
    /// Loads the weights HF's Gemma3ForCausalLM saves (`model.` prefix; the text part of a
    /// multimodal checkpoint under `language_model.model.` too).
    pub fn load(cfg: Gemma3Config, file: Arc<SafeFile>, device: Device, kind: Kind) -> Result<Self> {
        let get = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let candidates = [format!("model.{name}"), name.to_string(), format!("language_model.model.{name}"), format!("model.language_model.{name}")];
            let found =
                file.find(&candidates).ok_or_else(|| eyre!("{} has no tensor model.{name}; is it a Gemma 3 model.safetensors?", file.path().display()))?;
            Ok(file.tensor(&found, shape)?.to_device(device).to_kind(kind))
        };
        let (d, hd, nh, nkv, ff) = (cfg.hidden_size, cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.intermediate_size);
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let p = format!("layers.{i}");
                Ok(Layer {
                    input_norm: get(&format!("{p}.input_layernorm.weight"), &[d])?,
                    q: get(&format!("{p}.self_attn.q_proj.weight"), &[nh * hd, d])?,
                    k: get(&format!("{p}.self_attn.k_proj.weight"), &[nkv * hd, d])?,
                    v: get(&format!("{p}.self_attn.v_proj.weight"), &[nkv * hd, d])?,
                    o: get(&format!("{p}.self_attn.o_proj.weight"), &[d, nh * hd])?,
                    q_norm: get(&format!("{p}.self_attn.q_norm.weight"), &[hd])?,
                    k_norm: get(&format!("{p}.self_attn.k_norm.weight"), &[hd])?,
                    post_attn_norm: get(&format!("{p}.post_attention_layernorm.weight"), &[d])?,
                    pre_ff_norm: get(&format!("{p}.pre_feedforward_layernorm.weight"), &[d])?,
                    gate: get(&format!("{p}.mlp.gate_proj.weight"), &[ff, d])?,
                    up: get(&format!("{p}.mlp.up_proj.weight"), &[ff, d])?,
                    down: get(&format!("{p}.mlp.down_proj.weight"), &[d, ff])?,
                    post_ff_norm: get(&format!("{p}.post_feedforward_layernorm.weight"), &[d])?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { embed: get("embed_tokens.weight", &[cfg.vocab_size, d])?, norm: get("norm.weight", &[d])?, layers, cfg, _file: file })
    }

    /// `(x / rms(x)) * (1 + w)` in f32, back in x's kind, as Gemma3RMSNorm.
    fn rms(&self, x: &Tensor, w: &Tensor) -> Tensor {
        let xf = x.to_kind(Kind::Float);
        let normed = &xf * (xf.square().mean_dim(-1, true, Kind::Float) + self.cfg.rms_norm_eps).rsqrt();
        (normed * (w.to_kind(Kind::Float) + 1.0)).to_kind(x.kind())
    }

    /// cos and sin [seq, head_dim] of RoPE with `base` at positions 0..seq.
    fn rope(&self, seq: i64, base: f64, device: Device) -> (Tensor, Tensor) {
        let hd = self.cfg.head_dim as i64;
        let inv = Tensor::arange_start_step(0, hd, 2, (Kind::Float, device)).to_kind(Kind::Double) / hd as f64;
        let inv_freq = (inv * base.ln()).exp().reciprocal().to_kind(Kind::Float);
        let pos = Tensor::arange(seq, (Kind::Float, device));
        let freqs = pos.unsqueeze(1) * inv_freq.unsqueeze(0);
        let emb = Tensor::cat(&[&freqs, &freqs], -1);
        (emb.cos(), emb.sin())
    }

    /// The forward over one sequence of token ids.
    pub fn forward(&self, tokens: &[u32]) -> Result<Forward> {
        let c = &self.cfg;
        if tokens.iter().any(|&t| t as usize >= c.vocab_size) {
            bail!("a token id is past the vocabulary of {}", c.vocab_size);
        }
        let device = self.embed.device();
        let t = tokens.len() as i64;
        let ids = Tensor::from_slice(&tokens.iter().map(|&x| i64::from(x)).collect::<Vec<_>>()).to_device(device);
        let scale = Tensor::from((c.hidden_size as f64).sqrt()).to_kind(self.embed.kind()).to_device(device);
        let mut h = self.embed.index_select(0, &ids) * scale;
        let mut resid = vec![h.shallow_clone()];
        let (mut zs, mut attn_outs, mut mlp_outs) = (Vec::new(), Vec::new(), Vec::new());
        let (nh, nkv, hd) = (c.num_attention_heads as i64, c.num_key_value_heads as i64, c.head_dim as i64);
        let (cos_l, sin_l) = self.rope(t, c.rope_local, device);
        let (cos_g, sin_g) = self.rope(t, c.rope_global, device);
        let q_idx = Tensor::arange(t, (Kind::Int64, device)).unsqueeze(1);
        let k_idx = Tensor::arange(t, (Kind::Int64, device)).unsqueeze(0);
        let causal = k_idx.le_tensor(&q_idx);
        // A sliding layer's query i sees keys j with i - window < j <= i.
        let local = causal.logical_and(&k_idx.gt_tensor(&(&q_idx - c.sliding_window as i64)));
        let rotate = |x: &Tensor, cos: &Tensor, sin: &Tensor| {
            let half = hd / 2;
            let rot = Tensor::cat(&[x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], -1);
            x * cos + rot * sin
        };
        for (i, l) in self.layers.iter().enumerate() {
            let x = self.rms(&h, &l.input_norm);
            let q = x.matmul(&l.q.tr()).view([t, nh, hd]);
            let k = x.matmul(&l.k.tr()).view([t, nkv, hd]);
            let v = x.matmul(&l.v.tr()).view([t, nkv, hd]).transpose(0, 1);
            let (cos, sin, mask) = if c.sliding[i] { (&cos_l, &sin_l, &local) } else { (&cos_g, &sin_g, &causal) };
            let (cos, sin) = (cos.unsqueeze(0), sin.unsqueeze(0));
            let q = rotate(&self.rms(&q, &l.q_norm).transpose(0, 1), &cos, &sin);
            let k = rotate(&self.rms(&k, &l.k_norm).transpose(0, 1), &cos, &sin);
            // Grouped-query attention: each key-value head serves nh / nkv query heads.
            let group = nh / nkv;
            let (k, v) = (k.repeat_interleave_self_int(group, Some(0), None), v.repeat_interleave_self_int(group, Some(0), None));
            let mut scores = q.matmul(&k.transpose(-1, -2)) * c.query_pre_attn_scalar.powf(-0.5);
            if let Some(cap) = c.attn_logit_softcapping {
                scores = (scores / cap).tanh() * cap;
            }
            let scores = scores.masked_fill(&mask.logical_not(), f64::NEG_INFINITY);
            let z = scores.softmax(-1, Kind::Float).to_kind(v.kind()).matmul(&v); // [nh, t, hd]
            let z = z.transpose(0, 1).contiguous().view([t, nh * hd]);
            let attn_out = self.rms(&z.matmul(&l.o.tr()), &l.post_attn_norm);
            // Not in place: `resid` holds shallow clones of the earlier `h`.
            h = h.f_add(&attn_out)?;
            let x = self.rms(&h, &l.pre_ff_norm);
            let m = (x.matmul(&l.gate.tr()).gelu("tanh") * x.matmul(&l.up.tr())).matmul(&l.down.tr());
            let mlp_out = self.rms(&m, &l.post_ff_norm);
            h = h.f_add(&mlp_out)?;
            zs.push(z);
            attn_outs.push(attn_out);
            mlp_outs.push(mlp_out);
            resid.push(h.shallow_clone());
        }
        let last = self.rms(&h, &self.norm);
        let mut hidden: Vec<Tensor> = resid.iter().map(Tensor::shallow_clone).collect();
        if let Some(top) = hidden.last_mut() {
            *top = last.shallow_clone();
        }
        let mut logits = last.matmul(&self.embed.tr()).to_kind(Kind::Float);
        if let Some(cap) = c.final_logit_softcapping {
            logits = (logits / cap).tanh() * cap;
        }
        Ok(Forward { hidden_states: hidden, logits, resid, z: zs, attn_out: attn_outs, mlp_out: mlp_outs })
    }
}
