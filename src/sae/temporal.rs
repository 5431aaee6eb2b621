//! Temporal SAEs (canrager/temporalSAEs, SAELens's `temporal` releases for Gemma 2 2B and
//! Llama 3.1 8B): a feature's code at position t is what attention over the codes of
//! positions before t does not already predict. Read as SAELens's
//! `temporal_sae_huggingface_loader` reads a folder (`layer_L/temporal/conf.yaml`,
//! `latest_ckpt.safetensors`: `D` [d_sae, d_in], `b` [d_in], `E` [d_in, d_sae] where the
//! weights are untied, `attn_layers.N.{k_ctx,q_target,v_ctx,c_proj}.{weight,bias}`) and
//! encoded as `sae_lens/saes/temporal_sae.py`'s `encode_with_predictions` computes:
//!
//! - inputs scaled by the conf's `scaling_factor`, less `b` (SAELens's
//!   `constant_scalar_rescale` and `apply_b_dec_to_input`);
//! - per attention layer: codes `relu(lam x_res W_enc)` (`lam` = 1 / (4 d_in)), the
//!   context one position behind them, causal multi-head attention in code space (queries
//!   from the codes, keys and values from the context), `relu(c_proj(.))` the predicted
//!   codes; their decoding projected onto the residual and removed from it;
//! - the novel codes `relu(lam x_res W_enc)` (TopK with `kval_topk` where the conf says
//!   `topk`): the features saescope reports, as SAELens's `encode` returns them.
//!
//! So a feature's value depends on the text before it: inputs are sequences `[.., t, d_in]`,
//! never positions from different texts side by side (`Sae::sequential`).

use crate::sae::SaeConfig;
use crate::source::SaeFiles;
use crate::weights::arrays::Arrays;
use crate::weights::tensors::SafeFile;
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The conf.yaml's numbers SAELens reads (`get_temporal_sae_config_from_hf`).
#[derive(Debug, Clone, PartialEq)]
pub struct Conf {
    pub d_in: usize,
    pub d_sae: usize,
    pub n_heads: usize,
    pub n_attn_layers: usize,
    pub bottleneck_factor: usize,
    /// TopK's k for the novel codes; None for ReLU (`sae_diff_type: relu`).
    pub k: Option<usize>,
    pub tied: bool,
    pub scaling_factor: f64,
}

/// Whether `files` are a temporal SAE's (its `conf.yaml` beside the checkpoint).
pub fn is(files: &SaeFiles) -> bool {
    files.cfg.file_name().is_some_and(|n| n == "conf.yaml")
}

impl Conf {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
        let docs = yaml_rust2::YamlLoader::load_from_str(&text).map_err(|e| eyre!("{}: not YAML ({e})", path.display()))?;
        let doc = docs.first().ok_or_else(|| eyre!("{} is empty", path.display()))?;
        let (llm, sae) = (&doc["llm"], &doc["sae"]);
        let missing = |k: &str| eyre!("{}: no {k} (is it a temporal SAE's conf.yaml?)", path.display());
        let int = |v: &yaml_rust2::Yaml, k: &str| v[k].as_i64().and_then(|n| usize::try_from(n).ok()).ok_or_else(|| missing(k));
        let float = |v: &yaml_rust2::Yaml, k: &str| v[k].as_f64().or_else(|| v[k].as_i64().map(|n| n as f64)).ok_or_else(|| missing(k));
        let d_in = int(llm, "dimin")?;
        let k = match sae["sae_diff_type"].as_str() {
            Some("topk") => sae["kval_topk"].as_i64().and_then(|n| usize::try_from(n).ok()),
            Some("relu") => None,
            other => bail!("{}: sae_diff_type {other:?} is neither topk nor relu", path.display()),
        };
        let conf = Self {
            d_in,
            d_sae: (d_in as f64 * float(sae, "exp_factor")?) as usize,
            n_heads: int(sae, "n_heads")?,
            n_attn_layers: int(sae, "n_attn_layers")?,
            bottleneck_factor: int(sae, "bottleneck_factor")?,
            k,
            tied: sae["tied_weights"].as_bool().ok_or_else(|| missing("tied_weights"))?,
            scaling_factor: float(sae, "scaling_factor")?,
        };
        if conf.n_heads == 0 || conf.bottleneck_factor == 0 || !conf.d_sae.is_multiple_of(conf.bottleneck_factor * conf.n_heads) {
            bail!("{}: d_sae {} does not split into {} heads at bottleneck {}", path.display(), conf.d_sae, conf.n_heads, conf.bottleneck_factor);
        }
        Ok(conf)
    }
}

/// The SAE's config as SAELens makes it: the residual after block L of its folder's name
/// (`layer_12/temporal`), inputs scaled, `b` subtracted.
pub fn config(path: &Path) -> Result<SaeConfig> {
    let c = Conf::from_file(path)?;
    let folder = path.parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    let layer: usize = folder
        .split('/')
        .find_map(|seg| seg.strip_prefix("layer_")?.parse().ok())
        .ok_or_else(|| eyre!("{}: a temporal SAE's layer is in its folder's name (layer_L/temporal), as its repo has it", path.display()))?;
    let mut cfg = SaeConfig::from_json(&serde_json::json!({
        "architecture": "temporal", "d_in": c.d_in, "d_sae": c.d_sae, "k": c.k,
        "hook_name": format!("blocks.{layer}.hook_resid_post"), "apply_b_dec_to_input": true,
    }))?;
    cfg.normalize = super::Normalize::Scale(c.scaling_factor);
    // Trained on the HF model's hidden states (no TransformerLens processing besides).
    cfg.processing = crate::model::hooks::Processing::NONE;
    Ok(cfg)
}

/// The encoder and decoder in SAELens's names (W_enc [d_in, d_sae], no b_enc: zeros), f32.
pub fn arrays(files: &SaeFiles) -> Result<Arrays> {
    let c = Conf::from_file(&files.cfg)?;
    let file = SafeFile::open(&files.weights)?;
    let get = |n: &str, shape: &[usize]| -> Result<Tensor> { Ok(file.tensor(n, shape)?.to_kind(Kind::Float).copy()) };
    let d = get("D", &[c.d_sae, c.d_in])?;
    let w_enc = if c.tied { d.tr().contiguous() } else { get("E", &[c.d_in, c.d_sae])? };
    let tensors = [("W_enc", w_enc), ("b_enc", Tensor::zeros([c.d_sae as i64], (Kind::Float, Device::Cpu))), ("W_dec", d), ("b_dec", get("b", &[c.d_in])?)];
    Ok(Arrays::new(&files.weights, tensors.into_iter().map(|(n, t)| (n.to_string(), t)).collect()))
}

/// Bytes its tensors take in f32 (the memory planner's figure): every tensor of the file,
/// the decoder twice (the encode measures each prediction with its own copy) and, tied,
/// W_enc a third copy of it; with or without the card's decoder alike.
pub fn bytes(files: &SaeFiles) -> Result<u64> {
    let c = Conf::from_file(&files.cfg)?;
    let file = SafeFile::open(&files.weights)?;
    let all: u64 = file.names().iter().filter_map(|n| file.shape(n)).map(|s| 4 * s.iter().product::<usize>() as u64).sum();
    let dec = 4 * (c.d_in * c.d_sae) as u64;
    Ok(all + dec + if c.tied { dec } else { 0 })
}

/// One attention layer's projections, (weight [out, in], bias [out]) as nn.Linear keeps them.
struct Attention {
    k: (Tensor, Tensor),
    q: (Tensor, Tensor),
    v: (Tensor, Tensor),
    o: (Tensor, Tensor),
}

/// The attention over past codes, and what the novel codes keep.
pub struct Temporal {
    layers: Vec<Attention>,
    n_heads: i64,
    /// The codes' input scale, 1 / (4 d_in).
    lam: f64,
    k: Option<usize>,
    /// The decoder in the encoder's units (the Sae's own is divided by the input scale).
    w_dec: Tensor,
}

impl Temporal {
    pub fn load(files: &SaeFiles, device: Device, kind: Kind) -> Result<Self> {
        let c = Conf::from_file(&files.cfg)?;
        let file = SafeFile::open(&files.weights)?;
        let get = |n: &str, shape: &[usize]| -> Result<Tensor> { Ok(file.tensor(n, shape)?.to_device(device).to_kind(kind).copy()) };
        let e = c.d_sae / c.bottleneck_factor;
        let linear = |i: usize, name: &str, out: usize| -> Result<(Tensor, Tensor)> {
            let p = format!("attn_layers.{i}.{name}");
            Ok((get(&format!("{p}.weight"), &[out, c.d_sae])?, get(&format!("{p}.bias"), &[out])?))
        };
        let layers = (0..c.n_attn_layers)
            .map(|i| {
                Ok(Attention { k: linear(i, "k_ctx", e)?, q: linear(i, "q_target", e)?, v: linear(i, "v_ctx", c.d_sae)?, o: linear(i, "c_proj", c.d_sae)? })
            })
            .collect::<Result<Vec<_>>>()
            .wrap_err_with(|| format!("{}: a temporal SAE's attention layers", files.weights.display()))?;
        Ok(Self { layers, n_heads: c.n_heads as i64, lam: 1.0 / (4.0 * c.d_in as f64), k: c.k, w_dec: get("D", &[c.d_sae, c.d_in])? })
    }

    /// The novel codes of inputs already normalised (scaled, `b` subtracted) `x` [.., t,
    /// d_in], each row a sequence from its first position; W_enc [d_in, d_sae].
    pub fn encode(&self, x: &Tensor, w_enc: &Tensor) -> Tensor {
        self.encode_with_predictions(x, w_enc).0
    }

    /// The novel codes and the codes predicted from earlier positions (SAELens's
    /// `encode_with_predictions`), both shaped as `encode`'s: the reconstruction decodes
    /// their sum (SAELens's `forward`).
    pub fn encode_with_predictions(&self, x: &Tensor, w_enc: &Tensor) -> (Tensor, Tensor) {
        let shape = x.size();
        let (t, d) = match shape.as_slice() {
            [.., t, d] => (*t, *d),
            [d] => (1, *d),
            [] => (1, 0),
        };
        let x = x.reshape([-1, t, d]);
        let b = x.size()[0];
        let s = w_enc.size()[1];
        let mut res = x.shallow_clone();
        let mut predicted = Tensor::zeros([b, t, s], (x.kind(), x.device()));
        for l in &self.layers {
            let codes = (&res * self.lam).matmul(w_enc).relu();
            let ctx = Tensor::cat(&[codes.zeros_like().narrow(1, 0, 1.min(t)), codes.narrow(1, 0, (t - 1).max(0))], 1);
            let heads = |v: Tensor| -> Tensor {
                let w = v.size()[2];
                v.view([b, t, self.n_heads, w / self.n_heads]).transpose(1, 2)
            };
            let k = heads(ctx.linear(&l.k.0, Some(&l.k.1)));
            let v = heads(ctx.linear(&l.v.0, Some(&l.v.1)));
            let q = heads(codes.linear(&l.q.0, Some(&l.q.1)));
            let att = Tensor::scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, true, None, false);
            let pred = att.transpose(1, 2).contiguous().view([b, t, s]).linear(&l.o.0, Some(&l.o.1)).relu();
            let dz = pred.matmul(&self.w_dec);
            let norm = dz.norm_scalaropt_dim(2, [-1i64].as_slice(), true) + 1e-6;
            let scale = (&dz * &res).sum_dim_intlist([-1i64].as_slice(), true, dz.kind()) / norm.square();
            predicted += &pred * &scale;
            // Not in place: `res` starts as a view of the caller's input.
            res = res.g_sub(&(scale * dz));
        }
        let mut z = (&res * self.lam).matmul(w_enc).relu();
        if let Some(k) = self.k {
            let (vals, idx) = z.topk(k as i64, -1, true, false);
            z = z.zeros_like().scatter(-1, &idx, &vals);
        }
        let mut out = shape.clone();
        if let Some(last) = out.last_mut() {
            *last = s;
        } else {
            out.push(s);
        }
        (z.view(out.as_slice()), predicted.view(out.as_slice()))
    }
}
