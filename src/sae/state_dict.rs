//! SAEs shipped as one torch state dict with no config beside it, whose config SAELens's
//! loaders write from the repository's and the file's names
//! (`sae_lens/loading/pretrained_sae_loaders.py`):
//!
//! - Qwen Scope (`qwen_scope`, Qwen's own TopK SAEs on Qwen 3's residual stream): a repo
//!   `Qwen/SAE-Res-{model}-W{N}K-L0_{k}` of `layer{L}.sae.pt`, each `W_enc` [d_sae, d_in],
//!   `W_dec` [d_in, d_sae], `b_enc`, `b_dec`; TopK with the k in the repo's name, reading
//!   `blocks.L.hook_resid_post`, nothing subtracted from the input.
//! - Goodfire's (`goodfire`, Llama 3.1 8B and 3.3 70B Instruct): one
//!   `{model}-SAE-l{L}.pt(h)`, an `nn.Linear` pair (`encoder_linear.weight` [d_sae, d_in],
//!   `decoder_linear.weight` [d_in, d_sae] and their biases); a standard ReLU SAE reading
//!   `blocks.L.hook_resid_post`, nothing subtracted from the input.
//! - qresearch's for DeepSeek R1's distilled Llama 8B (`deepseek_r1`): one
//!   `DeepSeek-R1-...-SAE-l{L}.pt`, as Goodfire's but its pair named `encoder.*`, `decoder.*`.
//!
//! All are read without running code (weights/torch_pt.rs) and turned into SAELens's
//! names and orientation. Sizes come from the arrays (SAELens takes Qwen's d_in from a
//! table of its models and d_sae from the repo's name; the arrays are those numbers).

use crate::model::hooks::{HookPoint, Processing, Site};
use crate::sae::SaeConfig;
use crate::source::SaeFiles;
use crate::weights::arrays::Arrays;
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use std::path::Path;
use tch::{Kind, Tensor};

/// Which of them a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    QwenScope,
    Goodfire,
    DeepSeekR1,
}

impl Made {
    /// Which one a file of this name is (`layer12.sae.pt`, `...-SAE-l19.pth`,
    /// `DeepSeek-R1-...-SAE-l19.pt`), if any.
    pub fn of(path: &Path) -> Option<Self> {
        if qwen_scope_layer(path).is_some() {
            Some(Self::QwenScope)
        } else if goodfire_layer(path).is_some() {
            let deepseek = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("DeepSeek-R1"));
            Some(if deepseek { Self::DeepSeekR1 } else { Self::Goodfire })
        } else {
            None
        }
    }

    /// Its tensors' names in the file: encoder, decoder, their biases (synth/llama.rs
    /// writes them so).
    pub fn names(self) -> [&'static str; 4] {
        match self {
            Self::QwenScope => ["W_enc", "W_dec", "b_enc", "b_dec"],
            Self::Goodfire => ["encoder_linear.weight", "decoder_linear.weight", "encoder_linear.bias", "decoder_linear.bias"],
            Self::DeepSeekR1 => ["encoder.weight", "decoder.weight", "encoder.bias", "decoder.bias"],
        }
    }
}

/// The layer in a Qwen Scope file's name (`layer12.sae.pt`).
fn qwen_scope_layer(path: &Path) -> Option<usize> {
    path.file_name()?.to_str()?.strip_suffix(".sae.pt")?.strip_prefix("layer")?.parse().ok()
}

/// The layer in a Goodfire or qresearch file's name (`Llama-3.1-8B-Instruct-SAE-l19.pth`).
fn goodfire_layer(path: &Path) -> Option<usize> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".pth").or_else(|| name.strip_suffix(".pt"))?;
    stem.rsplit_once("-SAE-l")?.1.parse().ok()
}

fn made(files: &SaeFiles) -> Option<Made> {
    (files.cfg == files.weights).then(|| Made::of(&files.weights)).flatten()
}

/// `made`, where the caller has checked `is`.
fn made_checked(files: &SaeFiles) -> Result<Made> {
    made(files).ok_or_else(|| eyre!("internal: {} is not a Qwen Scope, Goodfire or DeepSeek R1 SAE", files.weights.display()))
}

/// Whether `files` are one of these (a `.pt` standing in for its own config, named so).
pub fn is(files: &SaeFiles) -> bool {
    made(files).is_some()
}

/// The hook a file of any of these kinds reads, from its name: the residual after its layer.
pub fn reads(files: &SaeFiles) -> Option<HookPoint> {
    made(files)?;
    let layer = qwen_scope_layer(&files.weights).or_else(|| goodfire_layer(&files.weights))?;
    Some(HookPoint::new(layer, Site::ResidPost))
}

/// The k in a Qwen Scope repository's name (`Qwen/SAE-Res-Qwen3-1.7B-Base-W32K-L0_50`: 50),
/// found anywhere in `text` (a path holding the hub cache's `models--Qwen--SAE-Res-...` or a
/// clone's folder), as SAELens's `_parse_qwen_scope_repo_id` reads it.
pub fn qwen_scope_k(text: &str) -> Option<usize> {
    text.match_indices("SAE-Res-")
        .filter_map(|(i, _)| {
            let rest = &text[i..];
            let at = rest.find("-L0_")?;
            // The width before it, as SAELens's pattern has (`-W32K-L0_50`).
            let w = rest[..at].rsplit_once("-W")?.1;
            let w = w.strip_suffix('K')?;
            (!w.is_empty() && w.bytes().all(|b| b.is_ascii_digit())).then_some(())?;
            let digits: String = rest[at + 4..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .last()
}

/// The config SAELens's loader makes; sizes left to the arrays (`d_in` 0, as for `.npz`).
/// A Qwen Scope SAE's k is `k` (its release's, by name), else the one in its path.
pub fn config(files: &SaeFiles, k: Option<usize>) -> Result<SaeConfig> {
    let path = &files.weights;
    let (architecture, k) = match made_checked(files)? {
        Made::QwenScope => {
            let k = k.or_else(|| qwen_scope_k(&path.to_string_lossy())).ok_or_else(|| {
                eyre!(
                    "{}: a Qwen Scope SAE's k is in its repository's name (Qwen/SAE-Res-<model>-W<N>K-L0_<k>); open it by release name (--sae-release qwen-scope-...) or keep it in a folder named as its repository",
                    path.display()
                )
            })?;
            ("topk", Some(k))
        }
        Made::Goodfire | Made::DeepSeekR1 => ("standard", None),
    };
    let hook = reads(files).ok_or_else(|| eyre!("internal: no layer in {}", path.display()))?;
    let mut cfg = SaeConfig::from_json(&serde_json::json!({
        "architecture": architecture, "k": k, "d_in": 0,
        "hook_name": hook.to_string(),
        "apply_b_dec_to_input": false,
    }))
    .wrap_err_with(|| format!("in {}", path.display()))?;
    // Trained on the HF model's hidden states; RMSNorm families have no processing besides.
    cfg.processing = Processing::NONE;
    Ok(cfg)
}

/// `[d_sae, d_in]` of the encoder as the file holds it.
fn sizes(sd: &Arrays, m: Made) -> Result<(usize, usize)> {
    let [enc, ..] = m.names();
    match sd.shape(enc).as_deref() {
        Some(&[d_sae, d_in]) => Ok((d_sae, d_in)),
        _ => bail!("{}: no 2-D tensor {enc} (it has {}); is it a {m:?} SAE?", sd.path().display(), sd.names().join(", ")),
    }
}

/// The weights in SAELens's names and orientation (W_enc [d_in, d_sae], W_dec [d_sae, d_in]), f32.
pub fn arrays(files: &SaeFiles) -> Result<Arrays> {
    let m = made_checked(files)?;
    let sd = crate::weights::torch_pt::open(&files.weights)?;
    let (d_sae, d_in) = sizes(&sd, m)?;
    let [enc, dec, b_enc, b_dec] = m.names();
    let get = |n: &str, shape: &[usize]| -> Result<Tensor> { Ok(sd.tensor(n, shape)?.to_kind(Kind::Float)) };
    let tensors = [
        ("W_enc", get(enc, &[d_sae, d_in])?.tr().contiguous()),
        ("W_dec", get(dec, &[d_in, d_sae])?.tr().contiguous()),
        ("b_enc", get(b_enc, &[d_sae])?),
        ("b_dec", get(b_dec, &[d_in])?),
    ];
    Ok(Arrays::new(&files.weights, tensors.into_iter().map(|(n, t)| (n.to_string(), t)).collect()))
}

/// Its feature count, from the file.
pub fn width(files: &SaeFiles) -> Result<usize> {
    let m = made_checked(files)?;
    Ok(sizes(&crate::weights::torch_pt::open(&files.weights)?, m)?.0)
}

/// Bytes its tensors take in f32 (the memory planner's figure).
pub fn bytes(files: &SaeFiles, with_decoder: bool) -> Result<u64> {
    let m = made_checked(files)?;
    let (d_sae, d_in) = sizes(&crate::weights::torch_pt::open(&files.weights)?, m)?;
    let (d_sae, d_in) = (d_sae as u64, d_in as u64);
    Ok(4 * (d_in * d_sae * if with_decoder { 2 } else { 1 } + d_sae + d_in))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_layers_and_k() {
        assert_eq!(qwen_scope_layer(Path::new("/c/models--Qwen--SAE-Res-Qwen3-1.7B-Base-W32K-L0_50/snapshots/abc/layer12.sae.pt")), Some(12));
        assert_eq!(qwen_scope_layer(Path::new("layer12.pt")), None);
        assert_eq!(goodfire_layer(Path::new("x/Llama-3.1-8B-Instruct-SAE-l19.pth")), Some(19));
        assert_eq!(goodfire_layer(Path::new("Llama-3.3-70B-Instruct-SAE-l50.pt")), Some(50));
        assert_eq!(qwen_scope_k("/c/models--Qwen--SAE-Res-Qwen3-1.7B-Base-W32K-L0_50/snapshots/abc/layer0.sae.pt"), Some(50));
        assert_eq!(qwen_scope_k("Qwen/SAE-Res-Qwen3-8B-Base-W64K-L0_100"), Some(100));
        assert_eq!(qwen_scope_k("/x/saes/layer3.sae.pt"), None);
        assert_eq!(qwen_scope_k("/x/SAE-Res-Qwen3-8B-L0_100/layer3.sae.pt"), None, "no width before it");
        let file = Path::new("/x/saes/layer3.sae.pt");
        let files = SaeFiles { cfg: file.into(), weights: file.into() };
        let err = config(&files, None).expect_err("no k");
        assert!(err.to_string().contains("--sae-release"), "{err}");
        assert_eq!(config(&files, Some(50)).expect("k from the release").architecture, crate::sae::Architecture::TopK(50));
    }
}
