//! What one feature is about, from the engine's weights: the logit lens of its decoder
//! direction, its nearest features in the neighbouring loaded SAEs, and per-token
//! activations of single texts (the token view, ad-hoc text, a card's top tokens).

use crate::activations::SparseVec;
use crate::model::hooks::Site;
use crate::pipeline::{pack_framed, Engine};
use crate::sae::key::SaeKey;
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

/// A feature's closest features by decoder cosine similarity in one other SAE.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Neighbours {
    pub sae: SaeKey,
    pub features: Vec<(u32, f32)>,
}

/// One text, token by token: per loaded SAE, each token's feature vector.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenActivations {
    pub tokens: Vec<String>,
    /// [SAE index][token]; BOS is left out unless the run counts it.
    pub saes: Vec<Vec<SparseVec>>,
    /// Tokens cut off because the text was longer than n_ctx.
    pub truncated: usize,
    /// How many of `tokens` come before the text's own: BOS where the run counts it (or the
    /// chat template's opening), which a cursor counting the text's tokens skips.
    pub framing: usize,
}

impl TokenActivations {
    /// Mean over the tokens of each SAE's vectors: the text's vector, encode-then-mean
    /// as for every sample.
    pub fn means(&self) -> Vec<SparseVec> {
        self.saes
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

    /// Activation of `feature` at each token of SAE index `li`.
    pub fn feature(&self, li: usize, feature: u32) -> Vec<f32> {
        self.saes.get(li).map(|l| l.iter().map(|v| v.get(feature)).collect()).unwrap_or_default()
    }
}

/// Which space an SAE's decoder writes into: directions compare (cosine) only within one.
fn space(site: Site) -> u8 {
    match site {
        Site::AttnZ => 1,
        Site::Ln2Normalized => 2,
        _ => 0,
    }
}

/// The tokens a feature's decoder direction promotes and suppresses: through the
/// unembedding for SAEs that write the residual stream, and for an `attn.hook_z` SAE
/// first through the block's W_O (what its heads' output adds to the residual).
pub fn logit_lens(engine: &Engine, key: SaeKey, feature: u32, k: usize) -> Result<Logits> {
    let [promoted, suppressed] = engine.logit_lens(key, &[feature], k)?.pop().ok_or_else(|| eyre!("internal: no logit lens"))?;
    let named = |list: crate::pipeline::TokenLogits| list.into_iter().map(|(token_id, token, logit)| TokenLogit { token_id, token, logit }).collect();
    Ok(Logits { promoted: named(promoted), suppressed: named(suppressed) })
}

/// Nearest features of `feature` of SAE `key`: in every other SAE at the same hook
/// (feature splitting: a wider SAE's "children", a narrower one's "parent"), and in the
/// loaded SAEs just before and after it at other hooks, among those whose decoders
/// write the same space.
pub fn neighbours(engine: &Engine, key: SaeKey, feature: u32, k: usize) -> Result<Vec<Neighbours>> {
    let _guard = tch::no_grad_guard();
    let dir = engine.sae(key)?.direction(feature)?;
    let keys = engine.keys();
    let pos = keys.iter().position(|&l| l == key).ok_or_else(|| eyre!("SAE {key} is not loaded"))?;
    let comparable = |p: &usize| space(keys[*p].hook.site) == space(key.hook.site) && engine.saes[*p].1.cfg.d_in == engine.saes[pos].1.cfg.d_in;
    let same_hook = (0..keys.len()).filter(|&p| p != pos && keys[p].hook == key.hook);
    let before = (0..pos).rev().filter(|&p| keys[p].hook != key.hook).find(comparable);
    let after = (pos + 1..keys.len()).filter(|&p| keys[p].hook != key.hook).find(comparable);
    let mut which: Vec<usize> = same_hook.chain(before).chain(after).filter(comparable).collect();
    which.sort_unstable();
    which.into_iter().map(|p| Ok(Neighbours { sae: keys[p], features: engine.saes[p].1.nearest(&dir, k)? })).collect()
}

/// Per-token activations of `text` for every loaded SAE (cut to n_ctx if longer).
pub fn token_activations(engine: &Engine, text: &str, include_bos: bool) -> Result<TokenActivations> {
    let _guard = tch::no_grad_guard();
    let mut ids = engine.tokenizer.encode_text(text)?;
    let n_ctx = engine.model.n_ctx();
    let truncated = ids.len().saturating_sub(n_ctx);
    engine.tokenizer.truncate(&mut ids, n_ctx);
    let frame = engine.tokenizer.frame(include_bos);
    let own = frame.counted(ids.len());
    let packed = pack_framed(std::iter::once(ids.as_slice()), frame, engine.tokenizer.bos);
    let mut saes = Vec::with_capacity(engine.saes.len());
    for (r, (_, sae)) in engine.inputs(&packed)?.iter().zip(&engine.saes) {
        let acts = sae.encode(r).squeeze_dim(0).to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
        let flat = Vec::<f32>::try_from(acts.view([-1]))?;
        saes.push(flat.chunks(sae.d_sae).skip(own.start).take(own.len()).map(SparseVec::from_dense).collect());
    }
    let framing = engine.tokenizer.frame(false).lead.saturating_sub(frame.lead);
    Ok(TokenActivations { tokens: engine.tokenizer.token_strings(&ids[own]), saes, truncated, framing })
}
