//! SAEs trained with the `dictionary_learning` library (SAEBench's sweeps on Pythia 70M and
//! Gemma 2 2B, its Matryoshka suites, andyrdt's Llama 3.1 8B Instruct SAEs), as SAELens's
//! `dictionary_learning_1` loader reads them: a folder of `config.json` (the trainer's
//! settings: `dict_class`, `activation_dim`, `dict_size`, `layer`, `k`) and `ae.pt` (the
//! module's state dict, torch.save'd; read without running code, weights/torch_pt.rs).
//!
//! Each `dict_class` in SAELens's terms: `AutoEncoder` (and the p-anneal sweep's) standard
//! ReLU; `AutoEncoderTopK` TopK with the trainer's k (its saved threshold unused, as SAELens
//! leaves it); `BatchTopKSAE` and `MatryoshkaBatchTopKSAE` JumpReLU at their one scalar
//! threshold; `JumpReluAutoEncoder` JumpReLU without `- b_dec` on the input; `GatedAutoEncoder`
//! gated (sae/gated.rs turns it into the JumpReLU it equals). Every one reads
//! `blocks.{layer}.hook_resid_post`.
//!
//! Processing: these were trained on the HF model's own residual (the library's nnsight
//! buffer), and SAEBench evaluates them on `from_pretrained_no_processing`; so they read the
//! uncentred stream (for Pythia, unlike TransformerLens's default; RMSNorm families have no
//! processing to differ by).

use crate::model::hooks::Processing;
use crate::sae::SaeConfig;
use crate::source::SaeFiles;
use crate::weights::arrays::Arrays;
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use serde_json::Value;
use std::path::Path;
use tch::{Kind, Tensor};

/// Whether `files` are a dictionary_learning SAE's (`ae.pt` beside `config.json`).
pub fn is(files: &SaeFiles) -> bool {
    files.weights.file_name().is_some_and(|n| n == "ae.pt")
}

/// The trainer's settings: `config.json`'s `trainer` object.
fn trainer(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
    let v: Value = serde_json::from_str(&text).wrap_err_with(|| format!("{} is not valid JSON", path.display()))?;
    v.get("trainer").cloned().ok_or_else(|| eyre!("{}: no trainer settings (is it dictionary_learning's config.json?)", path.display()))
}

fn uint(t: &Value, path: &Path, key: &str) -> Result<usize> {
    t.get(key).and_then(Value::as_u64).map(|n| n as usize).ok_or_else(|| eyre!("{}: trainer.{key} is not a whole number", path.display()))
}

/// Which of the library's classes the SAE is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Standard,
    TopK(usize),
    BatchTopK,
    JumpRelu,
    Gated,
}

fn class(t: &Value, path: &Path) -> Result<Class> {
    Ok(match t.get("dict_class").and_then(Value::as_str).unwrap_or("AutoEncoder") {
        "AutoEncoder" | "AutoEncoderNew" => Class::Standard,
        // SAELens 6.11 allows k saved as a float.
        "AutoEncoderTopK" => Class::TopK(t.get("k").and_then(Value::as_f64).ok_or_else(|| eyre!("{}: a TopK SAE without trainer.k", path.display()))? as usize),
        "BatchTopKSAE" | "MatryoshkaBatchTopKSAE" => Class::BatchTopK,
        "JumpReluAutoEncoder" => Class::JumpRelu,
        "GatedAutoEncoder" => Class::Gated,
        other => bail!("{}: dict_class {other:?} is not one saescope reads (AutoEncoder, AutoEncoderTopK, BatchTopKSAE, MatryoshkaBatchTopKSAE, JumpReluAutoEncoder, GatedAutoEncoder)", path.display()),
    })
}

/// The SAE's config, as SAELens's `get_dictionary_learning_config_1_from_hf` makes it.
pub fn config(path: &Path) -> Result<SaeConfig> {
    let t = trainer(path)?;
    let class = class(&t, path)?;
    let (architecture, k) = match class {
        Class::Standard => ("standard", None),
        Class::TopK(k) => ("topk", Some(k)),
        Class::BatchTopK | Class::JumpRelu | Class::Gated => ("jumprelu", None),
    };
    let mut cfg = SaeConfig::from_json(&serde_json::json!({
        "architecture": architecture, "k": k, "d_in": uint(&t, path, "activation_dim")?, "d_sae": uint(&t, path, "dict_size")?,
        "hook_name": format!("blocks.{}.hook_resid_post", uint(&t, path, "layer")?),
        "apply_b_dec_to_input": class != Class::JumpRelu,
    }))
    .wrap_err_with(|| format!("in {}", path.display()))?;
    cfg.processing = Processing::NONE;
    Ok(cfg)
}

/// The weights in SAELens's names and orientation (W_enc [d, d_sae], W_dec [d_sae, d]), f32.
pub fn arrays(files: &SaeFiles) -> Result<Arrays> {
    let t = trainer(&files.cfg)?;
    let class = class(&t, &files.cfg)?;
    let (d, d_sae) = (uint(&t, &files.cfg, "activation_dim")?, uint(&t, &files.cfg, "dict_size")?);
    let ae = crate::weights::torch_pt::open(&files.weights)?;
    let has = |n: &str| ae.shape(n).is_some();
    let get = |n: &str, shape: &[usize]| -> Result<Tensor> { Ok(ae.tensor(n, shape)?.to_kind(Kind::Float)) };
    let first = |names: &[&str], shape: &[usize]| -> Result<Tensor> {
        let name = names
            .iter()
            .find(|n| has(n))
            .ok_or_else(|| eyre!("{} has none of {} (it has {})", files.weights.display(), names.join(", "), ae.names().join(", ")))?;
        get(name, shape)
    };
    let w_enc = if has("W_enc") { get("W_enc", &[d, d_sae])? } else { get("encoder.weight", &[d_sae, d])?.tr().contiguous() };
    let w_dec = if has("W_dec") { get("W_dec", &[d_sae, d])? } else { get("decoder.weight", &[d, d_sae])?.tr().contiguous() };
    let b_dec = first(&["b_dec", "bias", "decoder_bias"], &[d])?;
    let mut tensors = vec![("W_dec", w_dec), ("b_dec", b_dec)];
    match class {
        Class::Gated => {
            let (w, b, threshold) = super::gated::as_jumprelu(&w_enc, &get("gate_bias", &[d_sae])?, &get("r_mag", &[d_sae])?, &get("mag_bias", &[d_sae])?);
            tensors.extend([("W_enc", w), ("b_enc", b), ("threshold", threshold)]);
        }
        _ => {
            tensors.extend([("W_enc", w_enc), ("b_enc", first(&["b_enc", "encoder.bias"], &[d_sae])?)]);
            if matches!(class, Class::BatchTopK | Class::JumpRelu) {
                // BatchTopK saves one threshold for every feature, as a scalar.
                let th = match ae.shape("threshold").as_deref() {
                    Some([] | [1]) => get("threshold", &ae.shape("threshold").unwrap_or_default())?.reshape([1]).expand([d_sae as i64], false).contiguous(),
                    _ => get("threshold", &[d_sae])?,
                };
                tensors.push(("threshold", th));
            }
        }
    }
    Ok(Arrays::new(&files.weights, tensors.into_iter().map(|(n, t)| (n.to_string(), t)).collect()))
}

/// Bytes its tensors take in f32 (the memory planner's figure), from the config's sizes.
pub fn bytes(files: &SaeFiles, with_decoder: bool) -> Result<u64> {
    let t = trainer(&files.cfg)?;
    let (d, d_sae) = (uint(&t, &files.cfg, "activation_dim")? as u64, uint(&t, &files.cfg, "dict_size")? as u64);
    Ok(4 * (d * d_sae * if with_decoder { 2 } else { 1 } + 2 * d_sae + d))
}
