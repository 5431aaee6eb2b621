//! A cross-layer transcoder's decoders: feature f of layer i writes row `W_dec_i[f, j - i]`
//! to layer j's MLP output, for every j from i to the last layer (circuit-tracer's
//! `CrossLayerTranscoder`). They are read from their files row by row, only for the
//! features a prompt activates: a real one is tens of GB, a graph touches megabytes.

use crate::weights::tensors::SafeFile;
use color_eyre::eyre::{bail, Result};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// Where layer i's decoder is: its file, its tensor, and the first output layer its rows
/// hold (circuit-tracer's `W_dec_i` [d_tc, n - i, d] starts at layer i; Gemma Scope 2's
/// `w_dec` [d_sae, n, d] at layer 0, of which layers i.. are read).
pub struct LayerDecoder {
    pub file: Arc<SafeFile>,
    pub name: String,
    pub shape: Vec<usize>,
    pub first: usize,
}

pub struct Cross {
    layers: Vec<LayerDecoder>,
    n_layers: usize,
    device: Device,
    kind: Kind,
}

impl Cross {
    /// Checks every layer's decoder shape against `d_sae` [i] and `d_model`.
    pub fn new(layers: Vec<LayerDecoder>, d_sae: &[usize], d_model: usize, device: Device, kind: Kind) -> Result<Self> {
        let n_layers = layers.len();
        for (i, l) in layers.iter().enumerate() {
            let spans = n_layers - l.first;
            if l.shape.len() != 3 || l.shape[0] != d_sae[i] || l.shape[1] != spans || l.shape[2] != d_model || l.first > i {
                bail!(
                    "{}: {} has shape {:?}; layer {i}'s decoder of a cross-layer transcoder over {n_layers} layers should be [{}, {spans}, {d_model}]",
                    l.file.path().display(),
                    l.name,
                    l.shape,
                    d_sae[i]
                );
            }
        }
        Ok(Self { layers, n_layers, device, kind })
    }

    /// Layer `i`'s decoder rows of `features` to layers i.. [n, n_layers - i, d].
    pub fn rows(&self, i: usize, features: &[i64]) -> Result<Tensor> {
        let l = &self.layers[i];
        let rows = l.file.rows(&l.name, &l.shape, features)?;
        Ok(rows.narrow(1, (i - l.first) as i64, (self.n_layers - i) as i64).to_device(self.device).to_kind(self.kind))
    }
}
