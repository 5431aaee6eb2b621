//! The forwards the first open question needs beyond the run's per-text means: each probed
//! feature's values at every token of the samples, at its strongest token with only the
//! last few tokens before it, and over seeded shuffles of every text. Everything else the
//! open questions read is already computed (the category vectors, eval.rs's norms).
//!
//! Batches go through `Engine::inputs` (one forward for every SAE's hook, stopping at the
//! deepest) and only the probed features' encoder columns (`Sae::encode_some`), so a probe
//! costs forwards, not SAE widths.

use crate::pipeline::{pack, plan, Engine};
use crate::runtime::progress::{Progress, ProgressSink};
use color_eyre::eyre::Result;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;
use std::collections::HashMap;
use tch::{Device, Kind};

/// Tokens before the strongest token that the context test keeps (0: the token alone after BOS).
pub const CONTEXTS: [usize; 6] = [0, 1, 2, 4, 8, 16];
/// Seeded shuffles of every text.
pub const SHUFFLES: u64 = 8;

/// A text of the samples: its category and token ids, BOS first.
pub struct Text {
    pub category: usize,
    pub ids: Vec<u32>,
}

/// One feature to probe: of the engine's SAE `sae` (an index into `Engine::saes`), for
/// category `category`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Probe {
    pub sae: usize,
    pub category: usize,
    pub feature: u32,
}

/// A text's tokens with one feature's value at each, as the token view shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Strip {
    pub tokens: Vec<String>,
    pub values: Vec<f32>,
}

/// What the forwards measured of one probed feature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    /// Its strongest token over the category's texts (BOS left out): the text (an index
    /// into the texts given) and the position; None when it never fires there.
    pub strongest: Option<(usize, usize)>,
    /// Its value there, in full context.
    pub full: f32,
    /// Its value there with `CONTEXTS[i]` tokens before it.
    pub context: Vec<f32>,
    /// The category's mean of the feature (per-text means over counted tokens, averaged).
    pub mean: f32,
    /// The same with every text shuffled, per seed.
    pub shuffled: Vec<f32>,
    /// The strongest text as it is, and its first shuffle.
    pub original: Option<Strip>,
    pub shuffle: Option<Strip>,
}

/// Per text, per SAE: the SAE's probed features at every token, row-major [tokens × features].
type Values = Vec<Vec<Vec<f32>>>;

/// Every probed feature's values on `texts`, batch by batch.
fn values(engine: &Engine, texts: &[&[u32]], features: &[Vec<u32>], batch_tokens: usize) -> Result<Values> {
    let mut out: Values = vec![Vec::new(); texts.len()];
    for batch in plan(texts, batch_tokens) {
        crate::runtime::interrupt::check()?;
        let p = pack(batch.iter().map(|&i| texts[i]), true, engine.tokenizer.bos);
        let inputs = engine.inputs(&p)?;
        let per_sae: Vec<Option<(Vec<f32>, usize)>> = inputs
            .iter()
            .zip(&engine.saes)
            .zip(features)
            .map(|((x, (_, sae)), feats)| -> Result<Option<(Vec<f32>, usize)>> {
                if feats.is_empty() {
                    return Ok(None);
                }
                let v = sae.encode_some(x, feats).to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
                Ok(Some((Vec::<f32>::try_from(v.view([-1]))?, feats.len())))
            })
            .collect::<Result<_>>()?;
        let t = p.ids.size()[1] as usize;
        for (r, &i) in batch.iter().enumerate() {
            let n = texts[i].len();
            out[i] = per_sae.iter().map(|v| v.as_ref().map_or_else(Vec::new, |(flat, k)| flat[r * t * k..(r * t + n) * k].to_vec())).collect();
        }
    }
    Ok(out)
}

/// The mean over a text's counted tokens of feature slot `j` of `k`.
fn text_mean(vals: &[f32], k: usize, j: usize, first: usize) -> f64 {
    let n = vals.len() / k.max(1);
    if n <= first {
        return 0.0;
    }
    (first..n).map(|p| f64::from(vals[p * k + j])).sum::<f64>() / (n - first) as f64
}

/// Per probe, the category's mean of its feature over `vals`.
fn category_means(texts: &[Text], vals: &Values, slots: &HashMap<Probe, (usize, usize)>, widths: &[usize], first: usize) -> HashMap<Probe, f32> {
    let n_categories = texts.iter().map(|t| t.category + 1).max().unwrap_or(0);
    let mut count = vec![0usize; n_categories];
    texts.iter().for_each(|t| count[t.category] += 1);
    slots
        .iter()
        .map(|(probe, &(sae, j))| {
            let k = widths[sae];
            let sum: f64 = texts.iter().zip(vals).filter(|(t, _)| t.category == probe.category).map(|(_, v)| text_mean(&v[sae], k, j, first)).sum();
            (*probe, (sum / count[probe.category].max(1) as f64) as f32)
        })
        .collect()
}

/// `ids` with every token after BOS in a seeded order.
pub fn shuffled(ids: &[u32], seed: u64, text: usize) -> Vec<u32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ text as u64);
    let mut out = ids.to_vec();
    if out.len() > 2 {
        out[1..].shuffle(&mut rng);
    }
    out
}

/// Measures every probe on `texts`: one pass for the values at every token, one over the
/// context windows of every strongest token, one per shuffle.
pub fn measure(engine: &Engine, texts: &[Text], probes: &[Probe], include_bos: bool, batch_tokens: usize, progress: &ProgressSink) -> Result<Vec<Measured>> {
    let _guard = tch::no_grad_guard();
    // Per SAE, the features to encode, and each probe's slot among them.
    let mut features: Vec<Vec<u32>> = vec![Vec::new(); engine.saes.len()];
    let mut slots: HashMap<Probe, (usize, usize)> = HashMap::new();
    for p in probes {
        let list = &mut features[p.sae];
        let j = list.iter().position(|&f| f == p.feature).unwrap_or_else(|| {
            list.push(p.feature);
            list.len() - 1
        });
        slots.insert(*p, (p.sae, j));
    }
    let widths: Vec<usize> = features.iter().map(Vec::len).collect();
    let k_of = |sae: usize| widths[sae];
    let first = usize::from(!include_bos);
    let passes = 2 + SHUFFLES;
    let step = |done: u64, what: &str| progress.send(Progress::Fraction { label: format!("open questions: {what}"), done, total: passes });

    step(0, "tokens");
    let ids: Vec<&[u32]> = texts.iter().map(|t| t.ids.as_slice()).collect();
    let vals = values(engine, &ids, &features, batch_tokens)?;
    let means = category_means(texts, &vals, &slots, &widths, first);
    // Each probe's strongest token over its category's texts (BOS never).
    let strongest: HashMap<Probe, (usize, usize, f32)> = slots
        .iter()
        .filter_map(|(probe, &(sae, j))| {
            let k = k_of(sae);
            let mut best: Option<(usize, usize, f32)> = None;
            for (i, t) in texts.iter().enumerate().filter(|(_, t)| t.category == probe.category) {
                for p in 1..t.ids.len() {
                    let v = vals[i][sae][p * k + j];
                    if v > 0.0 && best.is_none_or(|b| v > b.2) {
                        best = Some((i, p, v));
                    }
                }
            }
            best.map(|b| (*probe, b))
        })
        .collect();

    step(1, "context windows");
    let mut windows: Vec<Vec<u32>> = Vec::new();
    let mut window_of: HashMap<Vec<u32>, usize> = HashMap::new();
    let mut want: HashMap<(usize, usize, usize), usize> = HashMap::new();
    for &(i, p, _) in strongest.values() {
        for &n in &CONTEXTS {
            let ids = &texts[i].ids;
            let mut w = vec![engine.tokenizer.bos];
            w.extend_from_slice(&ids[p.saturating_sub(n).max(1)..=p]);
            let next = windows.len();
            let at = *window_of.entry(w.clone()).or_insert(next);
            if at == next {
                windows.push(w);
            }
            want.insert((i, p, n), at);
        }
    }
    let window_ids: Vec<&[u32]> = windows.iter().map(Vec::as_slice).collect();
    let window_vals = values(engine, &window_ids, &features, batch_tokens)?;

    let mut shuffled_means: Vec<HashMap<Probe, f32>> = Vec::new();
    let mut first_shuffle: Option<(Vec<Vec<u32>>, Values)> = None;
    for seed in 0..SHUFFLES {
        step(2 + seed, "shuffles");
        let mixed: Vec<Vec<u32>> = texts.iter().enumerate().map(|(i, t)| shuffled(&t.ids, seed, i)).collect();
        let mixed_ids: Vec<&[u32]> = mixed.iter().map(Vec::as_slice).collect();
        let v = values(engine, &mixed_ids, &features, batch_tokens)?;
        shuffled_means.push(category_means(texts, &v, &slots, &widths, first));
        if seed == 0 {
            first_shuffle = Some((mixed, v));
        }
    }
    step(passes, "done");

    let strip = |ids: &[u32], v: &[f32], k: usize, j: usize| Strip {
        tokens: engine.tokenizer.token_strings(ids),
        values: (0..ids.len()).map(|p| v[p * k + j]).collect(),
    };
    Ok(probes
        .iter()
        .map(|probe| {
            let (sae, j) = slots[probe];
            let k = k_of(sae);
            let best = strongest.get(probe).copied();
            let context = best.map_or_else(Vec::new, |(i, p, _)| {
                CONTEXTS
                    .iter()
                    .map(|&n| {
                        let w = want[&(i, p, n)];
                        let vals = &window_vals[w][sae];
                        vals[(windows[w].len() - 1) * k + j]
                    })
                    .collect()
            });
            let (original, shuffle) = match (best, &first_shuffle) {
                (Some((i, _, _)), Some((mixed, v))) => (Some(strip(&texts[i].ids, &vals[i][sae], k, j)), Some(strip(&mixed[i], &v[i][sae], k, j))),
                _ => (None, None),
            };
            Measured {
                strongest: best.map(|(i, p, _)| (i, p)),
                full: best.map_or(0.0, |b| b.2),
                context,
                mean: means.get(probe).copied().unwrap_or(0.0),
                shuffled: shuffled_means.iter().map(|m| m.get(probe).copied().unwrap_or(0.0)).collect(),
                original,
                shuffle,
            }
        })
        .collect())
}
