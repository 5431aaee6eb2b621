//! Llama Scope's SAEs (fnlp/Llama3_1-8B-Base-L{X}{R,A,M}-{8,32}x) as SAELens's
//! `llama_scope` loader reads them: `hyperparams.json` (d_model, d_sae, hook_point_in, one
//! scalar jump_relu_threshold, dataset_average_activation_norm) beside
//! `checkpoints/final.safetensors` (`encoder.weight` [d_sae, d], `decoder.weight` [d,
//! d_sae], their biases). JumpReLU on inputs scaled by the registry's norm_scaling_factor
//! (`expected_average_only_in`), with SAELens's threshold: the scalar times
//! sqrt(d) / the dataset's average input norm, the same for every feature.
//!
//! Their later folders (fnlp/Llama-Scope-R1-Distill, SAELens's `llama_scope_r1_distill`
//! loader, on DeepSeek R1's distilled Llama 8B): `config.json` (d_model, expansion_factor,
//! hook_point_in) beside `sae_weights.safetensors`, the same tensors and a threshold per
//! feature, `exp(log_jumprelu_threshold)`, taken as it is; inputs scaled by the registry's
//! norm_scaling_factor as above.

use crate::sae::SaeConfig;
use crate::source::SaeFiles;
use crate::weights::arrays::Arrays;
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use serde_json::Value;
use std::path::Path;
use tch::{Kind, Tensor};

/// Whether `files` are a Llama Scope SAE's, of either kind.
pub fn is(files: &SaeFiles) -> bool {
    files.cfg.file_name().is_some_and(|n| n == "hyperparams.json") || is_r1(files)
}

/// Whether `files` are the later kind: `config.json` beside `sae_weights.safetensors`, a
/// pair no other layout has (SAELens folders say cfg.json, Gemma Scope's params.safetensors).
fn is_r1(files: &SaeFiles) -> bool {
    let name = |p: &Path, n: &str| p.file_name().is_some_and(|f| f == n);
    name(&files.cfg, "config.json") && name(&files.weights, crate::source::SAE_FILES[1])
}

fn hyperparams(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).wrap_err_with(|| format!("{} is not valid JSON", path.display()))
}

/// The number at `key` of `v`, or why not.
fn number(v: &Value, path: &Path, key: &str) -> Result<f64> {
    let mut at = v;
    for k in key.split('.') {
        at = &at[k];
    }
    at.as_f64().ok_or_else(|| eyre!("{}: no number {key} (is it a Llama Scope SAE's config?)", path.display()))
}

/// Its width: the file's `d_sae`, or for the later kind `d_model * expansion_factor`.
fn d_sae(h: &Value, path: &Path) -> Result<usize> {
    match h.get("expansion_factor") {
        Some(_) => Ok((number(h, path, "d_model")? * number(h, path, "expansion_factor")?) as usize),
        None => Ok(number(h, path, "d_sae")? as usize),
    }
}

/// The SAE's config, as SAELens's `get_llama_scope_config_from_hf` (and
/// `get_llama_scope_r1_distill_config_from_hf`) make it.
pub fn config(path: &Path) -> Result<SaeConfig> {
    let h = hyperparams(path)?;
    let d = number(&h, path, "d_model")?;
    if !h["hook_point_in"].is_string() {
        bail!("{}: no hook_point_in (is it Llama Scope's config?)", path.display());
    }
    SaeConfig::from_json(&serde_json::json!({
        "architecture": "jumprelu", "d_in": d as u64, "d_sae": d_sae(&h, path)? as u64,
        "hook_name": h["hook_point_in"], "apply_b_dec_to_input": false, "normalize_activations": "expected_average_only_in",
    }))
    .wrap_err_with(|| format!("in {}", path.display()))
}

/// The weights in SAELens's names and orientation, f32, with the threshold per feature.
pub fn arrays(files: &SaeFiles) -> Result<Arrays> {
    let h = hyperparams(&files.cfg)?;
    let (d, d_sae) = (number(&h, &files.cfg, "d_model")? as usize, d_sae(&h, &files.cfg)?);
    let file = crate::weights::tensors::SafeFile::open(&files.weights)?;
    // Copied out: the file's tensors live in its memory map, which goes with `file`.
    let get = |n: &str, shape: &[usize]| -> Result<Tensor> { Ok(file.tensor(n, shape)?.to_kind(Kind::Float).copy()) };
    let threshold = if is_r1(files) {
        get("log_jumprelu_threshold", &[d_sae])?.exp()
    } else {
        let scale = (d as f64).sqrt() / number(&h, &files.cfg, "dataset_average_activation_norm.in")?;
        Tensor::full([d_sae as i64], number(&h, &files.cfg, "jump_relu_threshold")? * scale, (Kind::Float, tch::Device::Cpu))
    };
    let tensors = [
        ("W_enc", get("encoder.weight", &[d_sae, d])?.tr().contiguous()),
        ("W_dec", get("decoder.weight", &[d, d_sae])?.tr().contiguous()),
        ("b_enc", get("encoder.bias", &[d_sae])?),
        ("b_dec", get("decoder.bias", &[d])?),
        ("threshold", threshold),
    ];
    Ok(Arrays::new(&files.weights, tensors.into_iter().map(|(n, t)| (n.to_string(), t)).collect()))
}

/// Bytes its tensors take in f32 (the memory planner's figure), from the file's header.
pub fn bytes(files: &SaeFiles, with_decoder: bool) -> Result<u64> {
    let file = crate::weights::tensors::SafeFile::open(&files.weights)?;
    let names: &[&str] = if with_decoder {
        &["encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias", "log_jumprelu_threshold"]
    } else {
        &["encoder.weight", "encoder.bias", "decoder.bias", "log_jumprelu_threshold"]
    };
    Ok(names.iter().filter_map(|n| file.shape(n)).map(|s| 4 * s.iter().product::<usize>() as u64).sum())
}
