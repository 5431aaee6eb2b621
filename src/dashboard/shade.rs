//! Every token's activation in a feature's contexts, computed when a card asks: the index
//! keeps only each context's max, since all tokens of all contexts of all features would
//! be gigabytes. One batch through the model and the feature's SAE.

use super::ContextWindow;
use crate::pipeline::{pack, Engine};
use crate::sae::key::SaeKey;
use color_eyre::eyre::{eyre, Result};
use tch::{Device, Kind};

/// Fills `values` of each context (BOS left out, as its tokens are) with `feature`'s
/// activation in SAE `key`.
pub fn shade(engine: &Engine, key: SaeKey, feature: u32, contexts: &mut [&mut ContextWindow]) -> Result<()> {
    if contexts.is_empty() {
        return Ok(());
    }
    let _guard = tch::no_grad_guard();
    let li = engine.keys().iter().position(|&l| l == key).ok_or_else(|| eyre!("SAE {key} is not loaded"))?;
    let rows: Vec<Vec<u32>> = contexts.iter().map(|c| std::iter::once(engine.tokenizer.bos).chain(c.token_ids.iter().copied()).collect()).collect();
    let packed = pack(rows.iter().map(Vec::as_slice), true, engine.tokenizer.bos);
    let resid = engine.inputs(&packed)?;
    let sae = &engine.saes[li].1;
    let acts = sae.encode_feature(&resid[li], feature).to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
    let (b, t) = acts.size2()?;
    let flat = Vec::<f32>::try_from(acts.view([-1]))?;
    for (r, c) in contexts.iter_mut().enumerate().take(b as usize) {
        let row = &flat[r * t as usize..(r + 1) * t as usize];
        c.values = Some(row[1..rows[r].len()].to_vec());
    }
    Ok(())
}
