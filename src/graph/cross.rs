//! A cross-layer transcoder's decoders: feature f of layer i writes row `W_dec_i[f, j - i]`
//! to layer j's MLP output, for every j from i to the last layer (circuit-tracer's
//! `CrossLayerTranscoder`). They are read from their files row by row, only for the
//! features a prompt activates: a real one is tens of GB, a graph touches megabytes.

pub use crate::sae::cross_layer::LayerDecoder;
use color_eyre::eyre::{bail, Result};
use tch::{Device, Kind, Tensor};

pub struct Cross {
    layers: Vec<LayerDecoder>,
    device: Device,
    kind: Kind,
}

impl Cross {
    /// Checks every layer's decoder shape against `d_sae` [i] and `d_model`.
    pub fn new(layers: Vec<LayerDecoder>, d_sae: &[usize], d_model: usize, device: Device, kind: Kind) -> Result<Self> {
        let n_layers = layers.len();
        for (i, l) in layers.iter().enumerate() {
            let spans = n_layers - l.first.min(n_layers);
            if !l.fits(i, d_sae[i], d_model) || l.shape[1] != spans {
                bail!(
                    "{}: {} has shape {:?}; layer {i}'s decoder of a cross-layer transcoder over {n_layers} layers should be [{}, {spans}, {d_model}]",
                    l.file.path().display(),
                    l.name,
                    l.shape,
                    d_sae[i]
                );
            }
        }
        Ok(Self { layers, device, kind })
    }

    /// Layer `i`'s decoder rows of `features` to layers i.. [n, n_layers - i, d].
    pub fn rows(&self, i: usize, features: &[i64]) -> Result<Tensor> {
        Ok(self.layers[i].rows_from(i, features)?.to_device(self.device).to_kind(self.kind))
    }
}
