//! What the LayerNorm families (gpt2.rs, neox.rs) share: the replacement model's LayerNorm
//! with its scale frozen, and TransformerLens's default weight processing read as views of
//! HF's values. RMSNorm families have none of this: TL neither centres their writing
//! weights nor has value biases to fold there.
//!
//! Under `center_writing_weights` every write to the residual is mean-zero over d_model, so
//! TL's stream is HF's hidden state minus its per-token mean; `fold_value_biases` moves each
//! head's value bias (with the first LayerNorm's bias, which `fold_ln` puts there) into the
//! output bias, and attention rows sum to 1, so TL's `hook_z` is HF's z minus that bias.
//! `fold_ln` and `center_unembed` change no hook (hooks.rs, `Processing`).

use crate::model::hooks::{HookPoint, Processing, Site};
use crate::model::{Freeze, HookEdit};
use color_eyre::eyre::Result;
use tch::{Kind, Tensor};

/// `(x - mean) / sqrt(var + eps)` with the scale frozen: the replacement model's LayerNorm,
/// linear in `x` (TransformerLens's `hook_scale`, which circuit-tracer detaches).
pub fn frozen(x: &Tensor, eps: f64, freeze: &Freeze) -> Result<Tensor> {
    let c = x - x.mean_dim(-1, true, x.kind());
    let scale = freeze.scale(|| (c.square().mean_dim(-1, true, x.kind()) + eps).sqrt())?;
    Ok(c / scale)
}

/// LayerNorm with weight `w` and bias `b` over the last dimension; where `frozen`, its scale
/// taken from the freeze.
pub fn apply(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64, frozen: Option<&Freeze>) -> Result<Tensor> {
    Ok(match frozen {
        Some(f) => self::frozen(x, eps, f)? * w + b,
        None => x.layer_norm([w.size()[0]], Some(w), Some(b), eps, false),
    })
}

/// `apply`, with TransformerLens's `hook_normalized` (the value before LayerNorm's affine map)
/// at `point` through `edit`: only an edit there takes the LayerNorm apart, so reading it
/// leaves the fused kernel's numbers as they are.
pub fn with_normalized_hook(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64, frozen: Option<&Freeze>, point: HookPoint, edit: &mut HookEdit) -> Result<Tensor> {
    let normalized = || match frozen {
        Some(f) => self::frozen(x, eps, f),
        None => Ok(x.layer_norm([w.size()[0]], None::<&Tensor>, None::<&Tensor>, eps, false)),
    };
    if edit.changes(point) {
        return edit.apply(point, normalized()?)?.f_mul(w)?.f_add(b).map_err(Into::into);
    }
    if edit.wants(point) {
        edit.apply(point, normalized()?).map(drop)?;
    }
    apply(x, w, b, eps, frozen)
}

/// TransformerLens's residual under center_writing_weights: the HF stream minus its mean over d_model.
pub fn centre(h: &Tensor) -> Tensor {
    h - h.mean_dim(-1, true, h.kind())
}

/// A residual-stream value (or a write to it) as TransformerLens holds it under `p`: the HF
/// value, minus its mean over d_model where writing weights were centred.
pub fn as_written(x: &Tensor, p: Processing) -> Tensor {
    if p.center_writing_weights {
        centre(x)
    } else {
        x.shallow_clone()
    }
}

/// `Family::view` of a LayerNorm family: writes to the residual (and the residual) as
/// written; z minus `value_bias()` (the heads' folded value bias, [n_heads * d_head]) where
/// value biases are folded; the MLP's normalised input as it is.
pub fn view(hook: HookPoint, value: &Tensor, processing: Processing, value_bias: impl FnOnce() -> Result<Tensor>) -> Result<Tensor> {
    Ok(match hook.site {
        Site::AttnZ if processing.fold_value_biases => value.f_sub(&value_bias()?)?,
        Site::AttnZ | Site::Ln2Normalized | Site::MlpIn => value.shallow_clone(),
        _ => as_written(value, processing),
    })
}

/// The inverse of `view`: the folded value bias added back to z; a centred value gets the
/// replaced `value`'s own mean, so a zero stays exactly that token's constant vector.
pub fn unview(hook: HookPoint, value: &Tensor, new: &Tensor, processing: Processing, value_bias: impl FnOnce() -> Result<Tensor>) -> Result<Tensor> {
    Ok(match hook.site {
        Site::AttnZ if processing.fold_value_biases => new.f_add(&value_bias()?)?,
        Site::AttnZ | Site::Ln2Normalized | Site::MlpIn => new.shallow_clone(),
        _ if processing.center_writing_weights => new + value.mean_dim(-1, true, value.kind()),
        _ => new.shallow_clone(),
    })
}

/// Logits residual directions `dirs` [n, d_model] write, as Neuronpedia's "top logits" and
/// TransformerLens's `W_dec[f] @ model.W_U` compute them. TL's default processing builds W_U
/// as `ln_f.w[:, None] * unembed^T` (`fold_ln`), minus its mean over d_model (fold_ln's
/// centring, LayerNorm output being zero-mean), minus its mean over the vocabulary
/// (`center_unembed`). The d_model centring is the same as centring `dirs`, so:
/// `((dirs - mean(dirs)) * ln_f.w) @ unembed^T`, minus its mean over the vocabulary.
/// `unembed` [vocab, d_model].
pub fn logit_lens(dirs: &Tensor, ln_f_w: &Tensor, unembed: &Tensor) -> Tensor {
    let logits = (centre(dirs) * ln_f_w).matmul(&unembed.tr());
    &logits - logits.mean_dim(-1, true, Kind::Float)
}
