//! One layer of a cross-layer transcoder opened as a per-layer SAE: its encoder as it is,
//! its decoder the sum of what each feature writes to every layer from its own on. That is
//! SAELens's `mntss_clt_layer_transcoder` conversion (`W_dec_L.sum(dim=1)`), which its
//! loader says is for finding activations and reading directions, not for reconstruction:
//! it is how a CLT feature of a graph gets a card, a token view and dashboards. The graph
//! itself reads the decoders layer by layer (graph/cross.rs).
//!
//! Two layouts: circuit-tracer's (`config.yaml`, `W_enc_L.safetensors`, `W_dec_L.safetensors`
//! with `W_dec_L` [d_tc, n - L, d]) and Gemma Scope 2's (`params_layer_L.safetensors`, its
//! `w_dec` [d_sae, n, d] holding every layer, of which L.. are read).

use super::{CircuitTracerConfig, Sae};
use crate::model::hooks::{HookPoint, Site};
use crate::source::SaeFiles;
use crate::weights::tensors::SafeFile;
use color_eyre::eyre::{bail, eyre, Result};
use std::path::Path;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// Features whose decoder rows are read at once while summing (bounds the memory a real
/// CLT's tens-of-GB decoders take to a few hundred MB).
const CHUNK: usize = 2048;

/// The layer `files.weights` holds, if it is a CLT layer's encoder file.
pub fn layer_of(files: &SaeFiles) -> Option<usize> {
    let name = files.weights.file_name()?.to_str()?;
    let num = name.strip_prefix("W_enc_").or_else(|| name.strip_prefix("params_layer_"))?.strip_suffix(".safetensors")?;
    num.parse().ok()
}

pub fn is(files: &SaeFiles) -> bool {
    layer_of(files).is_some()
}

/// Whether `dir` holds a cross-layer transcoder (circuit-tracer's or Gemma Scope 2's).
pub fn is_dir(dir: &Path) -> bool {
    dir.join("params_layer_0.safetensors").is_file() || (dir.join("W_enc_0.safetensors").is_file() && dir.join("config.yaml").is_file())
}

/// Where layer `layer`'s decoder is: its file, tensor, and the first layer its rows hold.
fn decoder_of(files: &SaeFiles, layer: usize) -> Result<LayerDecoder> {
    if files.weights.file_name().is_some_and(|n| n.to_string_lossy().starts_with("params_layer_")) {
        LayerDecoder::open(&files.weights, "w_dec", 0)
    } else {
        let dir = files.weights.parent().unwrap_or(Path::new("."));
        LayerDecoder::open(&dir.join(format!("W_dec_{layer}.safetensors")), &format!("W_dec_{layer}"), layer)
    }
}

/// A CLT layer's decoder in its file: feature f's rows to layers `first..` (circuit-tracer's
/// `W_dec_i` [d_tc, n - i, d] starts at layer i; Gemma Scope 2's `w_dec` [d_sae, n, d] at 0).
/// Read row by row: a real one is tens of GB. The graph (graph/cross.rs) reads the rows of
/// the features a prompt activates; a layer opened as an SAE sums them all.
pub struct LayerDecoder {
    pub file: Arc<SafeFile>,
    pub name: String,
    pub shape: Vec<usize>,
    pub first: usize,
}

impl LayerDecoder {
    pub fn open(path: &Path, name: &str, first: usize) -> Result<Self> {
        let file = SafeFile::open(path)?;
        let shape = file.shape(name).ok_or_else(|| eyre!("{} has no tensor {name}: a cross-layer transcoder's decoder", path.display()))?;
        Ok(Self { file, name: name.to_string(), shape, first })
    }

    /// Whether this can be layer `layer`'s decoder of `d_sae` features into width `d_model`.
    pub fn fits(&self, layer: usize, d_sae: usize, d_model: usize) -> bool {
        let s = &self.shape;
        s.len() == 3 && s[0] == d_sae && s[2] == d_model && self.first <= layer && layer - self.first < s[1]
    }

    /// The rows of `features` to layers `layer`.. [n, layers, d], f32 on CPU.
    pub fn rows_from(&self, layer: usize, features: &[i64]) -> Result<Tensor> {
        let rows = self.file.rows(&self.name, &self.shape, features)?;
        let from = (layer - self.first) as i64;
        Ok(rows.narrow(1, from, self.shape[1] as i64 - from))
    }
}

/// The encoder's width, from the file's header.
pub fn width(files: &SaeFiles) -> Result<usize> {
    let layer = layer_of(files).ok_or_else(|| eyre!("{}: not a cross-layer transcoder's layer", files.weights.display()))?;
    let file = SafeFile::open(&files.weights)?;
    match (file.shape(&format!("W_enc_{layer}")).as_deref(), file.shape("w_enc").as_deref()) {
        (Some([d_sae, _]), _) | (_, Some([_, d_sae])) => Ok(*d_sae),
        _ => bail!("{}: neither W_enc_{layer} nor w_enc: not a cross-layer transcoder's layer", files.weights.display()),
    }
}

/// Bytes loaded in f32: the encoder, and with the decoder its summed [d_sae, d].
pub fn bytes(files: &SaeFiles, with_decoder: bool) -> Result<u64> {
    let layer = layer_of(files).ok_or_else(|| eyre!("{}: not a cross-layer transcoder's layer", files.weights.display()))?;
    let file = SafeFile::open(&files.weights)?;
    let enc = file.shape(&format!("W_enc_{layer}")).or_else(|| file.shape("w_enc")).ok_or_else(|| eyre!("{}: no encoder", files.weights.display()))?;
    let n: u64 = enc.iter().product::<usize>() as u64;
    Ok(4 * if with_decoder { 2 * n } else { n })
}

/// Layer `hook.layer` of the CLT as an SAE reading `hook` (checked against what the files
/// say it reads) and writing that layer's MLP output.
pub fn load(files: &SaeFiles, hook: HookPoint, d_in: usize, with_decoder: bool, device: Device, kind: Kind) -> Result<Sae> {
    let layer = layer_of(files).ok_or_else(|| eyre!("{}: not a cross-layer transcoder's layer", files.weights.display()))?;
    if layer != hook.layer {
        bail!("{}: layer {layer}'s encoder of a cross-layer transcoder, loaded for {hook}", files.weights.display());
    }
    let reads = if files.cfg.file_name().is_some_and(|n| n == "config.yaml") { CircuitTracerConfig::from_file(&files.cfg)?.reads } else { Site::MlpIn };
    if reads != hook.site {
        bail!("{}: this cross-layer transcoder reads {}, but it was loaded for {hook}", files.weights.display(), HookPoint::new(layer, reads));
    }
    let sae = Sae::load_cross_layer_encoder(&files.weights, layer, hook, HookPoint::new(layer, Site::MlpOut), d_in, device, kind)?;
    let decoder = decoder_of(files, layer)?;
    if !decoder.fits(layer, sae.d_sae, sae.d_out) {
        bail!(
            "{}: {} has shape {:?}; layer {layer}'s decoder should be [{}, layers, {}]",
            decoder.file.path().display(),
            decoder.name,
            decoder.shape,
            sae.d_sae,
            sae.d_out
        );
    }
    let sae = sae.with_summed_decoder(Decoder { decoder, layer });
    if with_decoder {
        sae.decoder()?;
    }
    Ok(sae)
}

/// A CLT layer's decoder as an SAE's: the rows from `layer` on of each feature, summed when
/// first needed.
pub struct Decoder {
    decoder: LayerDecoder,
    layer: usize,
}

impl Decoder {
    /// The summed decoder [d_sae, d_out] in f32 on CPU, read `CHUNK` features at a time.
    pub fn read(&self, d_sae: usize) -> Result<Tensor> {
        let all: Vec<i64> = (0..d_sae as i64).collect();
        let mut parts = Vec::with_capacity(d_sae.div_ceil(CHUNK));
        for chunk in all.chunks(CHUNK) {
            crate::runtime::interrupt::check()?;
            parts.push(self.decoder.rows_from(self.layer, chunk)?.sum_dim_intlist([1i64].as_slice(), false, Kind::Float));
        }
        Ok(Tensor::cat(&parts, 0))
    }
}
