//! What one feature is about, from the engine's weights: the logit lens of its decoder
//! direction, its nearest features in the neighbouring loaded layers, and per-token
//! activations of single texts (the token view, ad-hoc text, a card's top tokens).

use crate::activations::SparseVec;
use crate::pipeline::{pack, Engine};
use color_eyre::eyre::{eyre, Result};
use serde::Serialize;
use tch::{Device, Kind};

/// Tokens whose logits a feature's direction raises most and lowers most.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Logits {
    pub promoted: Vec<TokenLogit>,
    pub suppressed: Vec<TokenLogit>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenLogit {
    pub token_id: u32,
    pub token: String,
    pub logit: f32,
}

/// A feature's closest features by decoder cosine similarity in one other layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Neighbours {
    pub layer: usize,
    pub features: Vec<(u32, f32)>,
}

/// One text, token by token: per loaded layer, each token's feature vector.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenActivations {
    pub tokens: Vec<String>,
    /// [layer index][token]; BOS is left out unless the run counts it.
    pub layers: Vec<Vec<SparseVec>>,
    /// Tokens cut off because the text was longer than n_ctx.
    pub truncated: usize,
}

impl TokenActivations {
    /// Mean over the tokens of each layer's vectors: the text's vector, encode-then-mean
    /// as for every sample.
    pub fn means(&self) -> Vec<SparseVec> {
        self.layers
            .iter()
            .map(|tokens| {
                let mut acc: std::collections::BTreeMap<u32, f64> = Default::default();
                for v in tokens {
                    for (f, x) in v.iter() {
                        *acc.entry(f).or_default() += x as f64;
                    }
                }
                let n = tokens.len().max(1) as f64;
                let (idx, val) = acc.into_iter().map(|(f, x)| (f, (x / n) as f32)).filter(|&(_, x)| x != 0.0).unzip();
                SparseVec { idx, val }
            })
            .collect()
    }

    /// Activation of `feature` at each token of layer index `li`.
    pub fn feature(&self, li: usize, feature: u32) -> Vec<f32> {
        self.layers.get(li).map(|l| l.iter().map(|v| v.get(feature)).collect()).unwrap_or_default()
    }
}

impl Engine {
    fn sae_at(&self, layer: usize) -> Result<&crate::sae::Sae> {
        self.saes.iter().find(|(l, _)| *l == layer).map(|(_, s)| s).ok_or_else(|| eyre!("layer {layer} is not loaded (loaded: {:?})", self.layers()))
    }

    pub fn logit_lens(&self, layer: usize, feature: u32, k: usize) -> Result<Logits> {
        let _guard = tch::no_grad_guard();
        let dir = self.sae_at(layer)?.direction(feature)?;
        let logits = self.model.logit_lens(&dir.unsqueeze(0))?.squeeze_dim(0).to_device(Device::Cpu).to_kind(Kind::Float);
        let k = k.min(logits.size()[0] as usize) as i64;
        let pick = |largest: bool| -> Result<Vec<TokenLogit>> {
            let (vals, idx) = logits.topk(k, 0, largest, true);
            let vals = Vec::<f32>::try_from(vals)?;
            let ids: Vec<u32> = Vec::<i64>::try_from(idx)?.into_iter().map(|i| i as u32).collect();
            let names = self.tokenizer.token_strings(&ids);
            Ok(ids.into_iter().zip(names).zip(vals).map(|((token_id, token), logit)| TokenLogit { token_id, token, logit }).collect())
        };
        Ok(Logits { promoted: pick(true)?, suppressed: pick(false)? })
    }

    /// Nearest features of `feature` (at `layer`) in the previous and next loaded layers.
    pub fn neighbours(&self, layer: usize, feature: u32, k: usize) -> Result<Vec<Neighbours>> {
        let _guard = tch::no_grad_guard();
        let dir = self.sae_at(layer)?.direction(feature)?;
        let layers = self.layers();
        let pos = layers.iter().position(|&l| l == layer).ok_or_else(|| eyre!("layer {layer} is not loaded"))?;
        let around = [pos.checked_sub(1), Some(pos + 1).filter(|&p| p < layers.len())];
        around.into_iter().flatten().map(|p| Ok(Neighbours { layer: layers[p], features: self.saes[p].1.nearest(&dir, k)? })).collect()
    }

    /// Per-token activations of `text` at every loaded layer (cut to n_ctx if longer).
    pub fn token_activations(&self, text: &str, include_bos: bool) -> Result<TokenActivations> {
        let _guard = tch::no_grad_guard();
        let mut ids = self.tokenizer.encode_with_bos(text)?;
        let n_ctx = self.model.cfg.n_positions;
        let truncated = ids.len().saturating_sub(n_ctx);
        ids.truncate(n_ctx);
        let first = usize::from(!include_bos);
        let packed = pack(std::iter::once(ids.as_slice()), include_bos, self.tokenizer.bos);
        let mut layers = Vec::with_capacity(self.saes.len());
        for (r, (_, sae)) in self.residuals(&packed)?.iter().zip(&self.saes) {
            let acts = sae.encode(r).squeeze_dim(0).to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
            let flat = Vec::<f32>::try_from(acts.view([-1]))?;
            layers.push(flat.chunks(sae.d_sae).skip(first).map(SparseVec::from_dense).collect());
        }
        Ok(TokenActivations { tokens: self.tokenizer.token_strings(&ids[first.min(ids.len())..]), layers, truncated })
    }
}
