//! What the rotary decoders (gemma.rs, llama.rs) compute alike, as HF transformers computes
//! it for each: RoPE's frequencies (the default and Llama 3's scaling) and rotation, causal
//! and sliding-window masks, and grouped-query attention with the replacement model's frozen
//! patterns (graph/). Each family composes these in its own order with its own norms; none
//! of them knows which family called.

use crate::model::hooks::{HookPoint, Processing, Site};
use crate::model::{blocks_for, check_generation, collect_hooks, Family, Freeze, HookEdit, KvCache};
use color_eyre::eyre::{bail, eyre, Result};
use tch::{Device, Kind, Tensor};

/// What the forward loops below ask of a rotary decoder family beyond the seam's `Family`.
pub(crate) trait Blocks: Family {
    /// The RoPE tables of a run (one per base the family uses).
    type Rope;
    /// Layer `i`'s sliding window; None where it attends to every earlier position.
    fn window(&self, i: usize) -> Option<usize>;
    fn scores(&self) -> Scores;
    /// What tokens `ids` (any shape) put into the residual stream, [.., d_model].
    fn embed(&self, ids: &Tensor) -> Tensor;
    /// The tables for positions `from..from + n`.
    fn rope(&self, from: i64, n: i64) -> Self::Rope;
    /// Layer `i` over `h` [.., t, d_model], every hook inside it through `edit`; `attend(q,
    /// k, v)` takes the heads after their norms and RoPE ([.., heads, t, head_dim]) and
    /// returns the weighted values in q's layout. Where `frozen`, every norm's scale is the
    /// freeze's.
    fn layer_forward(
        &self,
        i: usize,
        h: Tensor,
        rope: &Self::Rope,
        attend: &mut dyn FnMut(Tensor, Tensor, Tensor) -> Result<Tensor>,
        frozen: Option<&Freeze>,
        edit: &mut HookEdit,
    ) -> Result<Tensor>;
}

/// One mask per distinct window among `windows`, looked up by window.
struct Masks(Vec<(Option<usize>, Tensor)>);

impl Masks {
    fn new(windows: impl Iterator<Item = Option<usize>>, make: impl Fn(Option<usize>) -> Result<Tensor>) -> Result<Self> {
        let mut masks: Vec<(Option<usize>, Tensor)> = Vec::new();
        for w in windows {
            if !masks.iter().any(|(have, _)| *have == w) {
                masks.push((w, make(w)?));
            }
        }
        Ok(Self(masks))
    }

    fn get(&self, window: Option<usize>) -> Result<&Tensor> {
        self.0.iter().find(|(w, _)| *w == window).map(|(_, m)| m).ok_or_else(|| eyre!("internal: no mask for window {window:?}"))
    }
}

/// The residual after the first `blocks` layers of a right-padded batch (`tokens` [b, t],
/// `mask` [b, t] true on real tokens), every hook point on the way through `edit`; where
/// `frozen`, the replacement model's (every norm's scale and attention pattern detached).
pub(crate) fn batch_forward<M: Blocks>(m: &M, tokens: &Tensor, mask: &Tensor, blocks: usize, frozen: Option<&Freeze>, edit: &mut HookEdit) -> Result<Tensor> {
    let t = tokens.size2()?.1;
    let tokens = tokens.to_device(m.device());
    if tokens.max().int64_value(&[]) >= m.vocab_size() as i64 {
        bail!("a token id is past the vocabulary of {}", m.vocab_size());
    }
    let mask = mask.to_device(m.device());
    let masks = Masks::new((0..blocks).map(|i| m.window(i)), |w| padded(&mask, w))?;
    let rope = m.rope(0, t);
    let mut h = m.embed(&tokens);
    for i in 0..blocks {
        h = edit.apply(HookPoint::new(i, Site::ResidPre), h)?;
        let allowed = masks.get(m.window(i))?;
        h = m.layer_forward(i, h, &rope, &mut |q, k, v| attention(&q, &k, &v, allowed, m.scores(), frozen), frozen, edit)?;
    }
    Ok(h)
}

/// `Family::hooks_each` of a rotary decoder: one pass to the deepest block `requested` needs.
pub(crate) fn hooks_each<M: Blocks>(m: &M, tokens: &Tensor, mask: &Tensor, requested: &[(HookPoint, Processing)]) -> Result<Vec<Tensor>> {
    let needed = blocks_for(requested, m.n_blocks(), tokens.size2()?.1 as usize, m.n_ctx())?;
    collect_hooks(m, requested, |take| {
        let h = batch_forward(m, tokens, mask, needed, None, take)?;
        take.apply(HookPoint::new(needed, Site::ResidPre), h).map(drop)
    })
}

/// The residual after every block of a right-padded batch (`Family::logits_each`'s, before
/// the family's final norm and unembedding).
pub(crate) fn all_blocks<M: Blocks>(m: &M, tokens: &Tensor, mask: &Tensor, edit: &mut HookEdit) -> Result<Tensor> {
    check_generation(m, tokens.size2()?.1 as usize)?;
    batch_forward(m, tokens, mask, m.n_layers(), None, edit)
}

/// The replacement model's residual after every block (`Family::frozen_forward`'s, before
/// the family's frozen final norm).
pub(crate) fn frozen_blocks<M: Blocks>(m: &M, tokens: &Tensor, freeze: &Freeze, edit: &mut HookEdit) -> Result<Tensor> {
    check_generation(m, tokens.size2()?.1 as usize)?;
    freeze.begin();
    let mask = tokens.ones_like().to_kind(Kind::Bool);
    batch_forward(m, tokens, &mask, m.n_layers(), Some(freeze), edit)
}

/// FLOPs a grouped-query block with a gated MLP spends on one token of a `t`-token
/// sequence (`Family::block_flops`): 2 per weight of Q and the output projection, K and V
/// on the shared heads and the MLP's three, and 4 t per query dimension for attention's
/// scores and mix.
pub(crate) fn block_flops(d: usize, heads: usize, kv_heads: usize, head_dim: usize, ff: usize, t: usize) -> f64 {
    let (d, q, kv) = (d as f64, (heads * head_dim) as f64, (kv_heads * head_dim) as f64);
    let weights = 2.0 * d * q + 2.0 * d * kv + 3.0 * d * ff as f64;
    2.0 * weights + 4.0 * t as f64 * q
}

/// The residual after every layer for `tokens`, which continue the positions in `cache`.
/// Keys and values are cached per layer for every position, sliding layers included (their
/// mask, not the cache, keeps them to the window), [kv_heads, positions, head_dim].
pub(crate) fn cached_forward<M: Blocks>(m: &M, tokens: &[u32], cache: &mut KvCache, edit: &mut HookEdit) -> Result<Tensor> {
    check_generation(m, cache.len() + tokens.len())?;
    let n_layers = m.n_layers();
    let (p0, n) = (cache.len, tokens.len() as i64);
    if tokens.iter().any(|&t| t as usize >= m.vocab_size()) {
        bail!("a token id is past the vocabulary of {}", m.vocab_size());
    }
    let ids = Tensor::from_slice(&tokens.iter().map(|&t| i64::from(t)).collect::<Vec<_>>()).to_device(m.device());
    let mut h = m.embed(&ids);
    let rope = m.rope(p0, n);
    let masks = Masks::new((0..n_layers).map(|i| m.window(i)), |w| Ok(allowed(p0, n, w, m.device())))?;
    for i in 0..n_layers {
        h = edit.apply(HookPoint::new(i, Site::ResidPre), h)?;
        let past = cache.past(i).map(|(k, v)| (k.shallow_clone(), v.shallow_clone()));
        let allowed = masks.get(m.window(i))?;
        let mut stored = None;
        let mut attend = |q: Tensor, mut k: Tensor, mut v: Tensor| {
            if let Some((kp, vp)) = &past {
                k = Tensor::cat(&[kp, &k], -2);
                v = Tensor::cat(&[vp, &v], -2);
            }
            let a = attention(&q, &k, &v, allowed, m.scores(), None)?;
            stored = Some((k, v));
            Ok(a)
        };
        h = m.layer_forward(i, h, &rope, &mut attend, None, edit)?;
        let (k, v) = stored.ok_or_else(|| eyre!("internal: layer {i} did not attend"))?;
        cache.store(i, k, v);
    }
    cache.len = p0 + n;
    Ok(h)
}

/// How a config scales RoPE's frequencies.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// `rope_type: default`: `base^(-2i/d)`.
    Default,
    /// `rope_type: llama3` (Llama 3.1 and 3.2): long wavelengths divided by `factor`, short
    /// ones kept, the band between blended (HF's `_compute_llama3_parameters`).
    Llama3 { factor: f64, low_freq_factor: f64, high_freq_factor: f64, original_max_position_embeddings: f64 },
    /// `rope_type: linear` (Gemma 3 4B and larger, on their global layers): every frequency
    /// divided by `factor`.
    Linear { factor: f64 },
}

impl RopeScaling {
    /// A config's scaling object (`rope_parameters` or the older `rope_scaling`); None or
    /// `default` is no scaling. Any other type is refused by name: its positions would be
    /// silently wrong.
    pub fn from_json(v: Option<&serde_json::Value>) -> Result<Self> {
        let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(Self::Default) };
        let kind = v.get("rope_type").or_else(|| v.get("type")).and_then(serde_json::Value::as_str).unwrap_or("default");
        let num = |k: &str| v.get(k).and_then(serde_json::Value::as_f64).ok_or_else(|| color_eyre::eyre::eyre!("rope scaling {kind} without {k}"));
        match kind {
            "default" => Ok(Self::Default),
            "linear" => Ok(Self::Linear { factor: num("factor")? }),
            "llama3" => Ok(Self::Llama3 {
                factor: num("factor")?,
                low_freq_factor: num("low_freq_factor")?,
                high_freq_factor: num("high_freq_factor")?,
                original_max_position_embeddings: num("original_max_position_embeddings")?,
            }),
            other => bail!("rope_type {other:?} is not supported (saescope runs default, linear and llama3 RoPE)"),
        }
    }

    /// The inverse frequencies of `head_dim` with `base`, [head_dim / 2].
    pub fn inv_freq(&self, head_dim: usize, base: f64) -> Vec<f64> {
        let plain = (0..head_dim / 2).map(|i| (-((2 * i) as f64) / head_dim as f64 * base.ln()).exp());
        match *self {
            Self::Default => plain.collect(),
            Self::Linear { factor } => plain.map(|f| f / factor).collect(),
            Self::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings: old } => {
                let (low_wavelen, high_wavelen) = (old / low_freq_factor, old / high_freq_factor);
                plain
                    .map(|f| {
                        let wavelen = 2.0 * std::f64::consts::PI / f;
                        if wavelen < high_wavelen {
                            f
                        } else if wavelen > low_wavelen {
                            f / factor
                        } else {
                            let smooth = (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                            (1.0 - smooth) * f / factor + smooth * f
                        }
                    })
                    .collect()
            }
        }
    }
}

/// cos and sin [positions, head_dim] of the rotation at `positions` (f32) with `inv_freq`,
/// in `kind`: angles in f32 as HF computes them, the two halves alike.
pub fn cos_sin(positions: &Tensor, inv_freq: &[f64], kind: Kind) -> (Tensor, Tensor) {
    let inv = Tensor::from_slice(inv_freq).to_kind(Kind::Float).to_device(positions.device());
    let freqs = positions.unsqueeze(1) * inv.unsqueeze(0);
    let emb = Tensor::cat(&[&freqs, &freqs], -1);
    (emb.cos().to_kind(kind), emb.sin().to_kind(kind))
}

/// `x` [.., head_dim] rotated: `x cos + rotate_half(x) sin`.
pub fn rotate(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    let half = x.size().last().copied().unwrap_or(0) / 2;
    let rot = Tensor::cat(&[x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], -1);
    x * cos + rot * sin
}

/// Which keys each query may see: [queries, keys] bool for queries at `from..from + n` and
/// keys at `0..from + n`: causal, and within `window` where given (query i sees keys j with
/// i - window < j <= i).
pub fn allowed(from: i64, n: i64, window: Option<usize>, device: Device) -> Tensor {
    let q = Tensor::arange_start(from, from + n, (Kind::Int64, device)).unsqueeze(1);
    let k = Tensor::arange(from + n, (Kind::Int64, device)).unsqueeze(0);
    let causal = k.le_tensor(&q);
    match window {
        Some(w) => causal.logical_and(&k.gt_tensor(&(&q - w as i64))),
        None => causal,
    }
}

/// `allowed` over a right-padded batch: [b, 1, t, t], keys at padding masked out (`mask`
/// [b, t], true on real tokens). Each position also sees itself, so a padding query whose
/// window holds only padding has a row to attend to and no NaN reaches a real token.
pub fn padded(mask: &Tensor, window: Option<usize>) -> Result<Tensor> {
    let (b, t) = mask.size2()?;
    let device = mask.device();
    let keys = mask.view([b, 1, 1, t]);
    let itself = Tensor::eye(t, (Kind::Bool, device)).view([1, 1, t, t]);
    Ok(allowed(0, t, window, device).view([1, 1, t, t]).logical_and(&keys).logical_or(&itself))
}

/// `x` [.., t, heads * head_dim] as [.., t, heads, head_dim].
pub fn split_heads(x: &Tensor, head_dim: usize) -> Tensor {
    let shape = x.size();
    let lead = &shape[..shape.len() - 1];
    let heads = shape.last().copied().unwrap_or(0) / head_dim as i64;
    x.view(&lead.iter().copied().chain([heads, head_dim as i64]).collect::<Vec<_>>()[..])
}

/// Attention's output `a` [.., heads, t, head_dim] with the heads side by side, [.., t,
/// heads * head_dim]: TransformerLens's `attn.hook_z` as SAEs read it.
pub fn merge_heads(a: &Tensor) -> Tensor {
    let a = a.transpose(-3, -2).contiguous();
    let shape = a.size();
    let lead = &shape[..shape.len() - 2];
    a.view(&lead.iter().copied().chain([-1]).collect::<Vec<_>>()[..])
}

/// How a family's attention scores are formed.
#[derive(Debug, Clone, Copy)]
pub struct Scores {
    /// What q·k is multiplied by.
    pub scale: f64,
    /// `tanh(s / cap) * cap` on the scores, where the config asks.
    pub softcap: Option<f64>,
}

/// Grouped-query attention as HF's eager path computes it: q [.., n_heads, queries,
/// head_dim], k and v [.., kv_heads, keys, head_dim], `allowed` broadcasting to
/// [.., n_heads, queries, keys]; softmax in f32. Where `frozen`, the pattern is the
/// freeze's (the replacement model's, graph/).
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, allowed: &Tensor, scores: Scores, frozen: Option<&Freeze>) -> Result<Tensor> {
    if scores.softcap.is_none() && frozen.is_none() {
        // libtorch's fused kernel, sharing each key-value head among its query heads.
        return Ok(Tensor::scaled_dot_product_attention(q, k, v, Some(allowed), 0.0, false, Some(scores.scale), true));
    }
    let (heads, kv_heads) = (q.size()[q.dim() - 3], k.size()[k.dim() - 3]);
    if kv_heads == 0 || heads % kv_heads != 0 {
        bail!("{heads} query heads do not share {kv_heads} key-value heads evenly");
    }
    let group = heads / kv_heads;
    let v = v.repeat_interleave_self_int(group, Some(-3), None);
    // The scores only where the pattern is computed: a frozen run replays it.
    let pattern = || {
        let k = k.repeat_interleave_self_int(group, Some(-3), None);
        let mut s = q.matmul(&k.transpose(-1, -2)) * scores.scale;
        if let Some(cap) = scores.softcap {
            s = (s / cap).tanh() * cap;
        }
        s.masked_fill(&allowed.logical_not(), f64::NEG_INFINITY).softmax(-1, Kind::Float).to_kind(v.kind())
    };
    Ok(match frozen {
        Some(f) => f.pattern(pattern)?,
        None => pattern(),
    }
    .matmul(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fused kernel (no soft-cap) and the eager path (soft-capped, as older Gemma
    /// configs set) agree where a cap this large changes nothing.
    #[test]
    fn fused_and_eager_attention_agree() {
        tch::manual_seed(0);
        let (q, k, v) = (
            Tensor::randn([2, 4, 5, 16], (Kind::Float, Device::Cpu)),
            Tensor::randn([2, 2, 5, 16], (Kind::Float, Device::Cpu)),
            Tensor::randn([2, 2, 5, 16], (Kind::Float, Device::Cpu)),
        );
        let allowed = allowed(0, 5, None, Device::Cpu).view([1, 1, 5, 5]);
        let fused = attention(&q, &k, &v, &allowed, Scores { scale: 0.3, softcap: None }, None).expect("fused");
        let eager = attention(&q, &k, &v, &allowed, Scores { scale: 0.3, softcap: Some(1e9) }, None).expect("eager");
        let diff = (fused - eager).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{diff}");
    }

    /// Llama 3.2's scaling (factor 32, 1 and 4, 8192 tokens) keeps the short wavelengths,
    /// divides the long ones by the factor and blends between, as HF's
    /// `_compute_llama3_parameters` does (tests/it/llama.rs holds a scaled model's forward
    /// to transformers'); other types are refused by name.
    #[test]
    fn llama3_scaling() {
        let s = RopeScaling::Llama3 { factor: 32.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192.0 };
        let plain = RopeScaling::Default.inv_freq(64, 500_000.0);
        let scaled = s.inv_freq(64, 500_000.0);
        assert_eq!(scaled[0], plain[0], "the shortest wavelength is kept");
        assert!((scaled[31] - plain[31] / 32.0).abs() < 1e-15, "the longest is divided by the factor");
        let wavelen = |f: f64| 2.0 * std::f64::consts::PI / f;
        for (p, s) in plain.iter().zip(&scaled) {
            assert!(*s <= *p && *s >= p / 32.0 - 1e-18);
            if wavelen(*p) < 8192.0 / 4.0 {
                assert_eq!(s, p);
            }
        }
        assert!(matches!(RopeScaling::from_json(Some(&serde_json::json!({"rope_type": "yarn", "factor": 4.0}))), Err(e) if e.to_string().contains("yarn")));
    }
}
