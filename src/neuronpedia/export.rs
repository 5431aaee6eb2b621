//! saescope's index written in Neuronpedia's dump layout (`index --export-neuronpedia DIR`),
//! so a team can load it into their own Neuronpedia instance (which imports these dumps) or
//! share it, and `--neuronpedia DIR` reads it back (src/neuronpedia_dump.rs).
//!
//! Per SAE: `DIR/v1/{modelId}/{sourceId}/features/batch-N.jsonl.gz` (one row per feature,
//! 1024 a file, in the text order of `index` as Neuronpedia's export-data.py selects them)
//! and `activations/batch-N.jsonl.gz` (the rows of features N*1024 .. N*1024+1023: the top
//! contexts, then the interval samples with their range in `binMin`/`binMax`). The model
//! and source ids are the SAE's Neuronpedia id where known, else `local` and
//! `{layer}-saescope-{width}`. Every token's value in each context is computed here (the
//! index keeps each context's max only): each referenced window once, through the model
//! and every SAE, batch by batch. The logit lists (`pos_str`/`neg_str` and their values)
//! are the logit lens of the decoder row, 10 each way, and `topkCosSimIndices`/`Values` the
//! 10 decoder rows of the same SAE nearest by cosine (the feature itself first), as
//! Neuronpedia fills them. The histograms are Neuronpedia's (histogram.rs): the
//! activations' over every positive activation in the corpus but BOS, which the index does
//! not keep, so two more passes over the corpus find each feature's range and then count
//! it; the logits' over the whole vocabulary's logit-lens row. Values are the SAE's own
//! activations: sae_dashboard first scales each feature by its decoder row's norm, which
//! changes nothing for the unit-norm decoders of most releases.

use crate::dashboard::build::Job;
use crate::dashboard::{ContextWindow, Index};
use crate::neuronpedia::histogram::{self, Histogram, Range};
use crate::pipeline::{pack_to, Engine};
use crate::runtime::progress::{Progress, ProgressSink};
use crate::sae::key::SaeKey;
use color_eyre::eyre::{eyre, Result};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use tch::{Device, Kind};

/// Rows per file, as Neuronpedia's exports batch them.
const BATCH: usize = 1024;
/// Windows per model batch while computing the contexts' values.
const WINDOWS_PER_BATCH: usize = 8;
/// Tokens each way in `pos_str`/`neg_str`, and features in `topkCosSimIndices`.
const TOP: usize = 10;
/// The logit lens's [features, vocab] block stays near this many floats.
const LENS_FLOATS: usize = 1 << 24;

/// The creator id Neuronpedia's public exports carry.
const CREATOR: &str = "clkht01d40000jv08hvalcvly";

/// Neuronpedia's model and source ids for `key`.
fn names(engine: &Engine, key: SaeKey) -> (String, String) {
    match engine.neuronpedia.sae(key) {
        Some(id) => (id.model.clone(), id.source.clone()),
        None => ("local".into(), format!("{}-saescope-{}", key.hook.layer, key.width)),
    }
}

/// Each referenced window's values for the (SAE, feature) pairs whose lists name it:
/// [sae][feature] -> window -> values (BOS left out).
type FeatureValues = Vec<BTreeMap<u32, BTreeMap<u32, Vec<f32>>>>;

fn context_values(index: &Index, engine: &Engine, keys: &[SaeKey], progress: &ProgressSink) -> Result<FeatureValues> {
    let _guard = tch::no_grad_guard();
    // Which features of which SAE want each window.
    let mut wants: BTreeMap<u32, Vec<(usize, u32)>> = BTreeMap::new();
    for (si, key) in keys.iter().enumerate() {
        let s = index.of(*key).ok_or_else(|| eyre!("the index has no SAE {key}"))?;
        for f in 0..s.d_sae {
            let windows: BTreeSet<u32> = s.top[f].iter().map(|h| h.window).chain(s.samples[f].iter().map(|x| x.hit.window)).collect();
            for w in windows {
                wants.entry(w).or_default().push((si, f as u32));
            }
        }
    }
    let positions: Vec<usize> = keys.iter().map(|k| engine.keys().iter().position(|l| l == k).unwrap_or(usize::MAX)).collect();
    if let Some(k) = keys.iter().zip(&positions).find(|(_, &p)| p == usize::MAX) {
        return Err(eyre!("SAE {} is not loaded", k.0));
    }
    let mut out: FeatureValues = keys.iter().map(|_| BTreeMap::new()).collect();
    let windows: Vec<(&u32, &Vec<(usize, u32)>)> = wants.iter().collect();
    let total = windows.len() as u64;
    let label = "computing every token's value in the contexts".to_string();
    for (done, chunk) in windows.chunks(WINDOWS_PER_BATCH).enumerate() {
        crate::runtime::interrupt::check()?;
        let rows: Vec<&[u32]> = chunk
            .iter()
            .map(|(w, _)| index.contexts.get(w).map(|c| c.tokens.as_slice()).ok_or_else(|| eyre!("the index lacks window {w}")))
            .collect::<Result<_>>()?;
        let packed = pack_to(rows.iter().copied(), index.context, crate::pipeline::Frame::default(), engine.tokenizer.bos);
        let resid = engine.inputs(&packed)?;
        for (si, &p) in positions.iter().enumerate() {
            let acts = engine.saes[p].1.encode(&resid[p]).to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
            let (_, t, d) = acts.size3()?;
            let flat = Vec::<f32>::try_from(acts.view([-1]))?;
            for (r, (w, pairs)) in chunk.iter().enumerate() {
                let n = rows[r].len();
                for &(_, f) in pairs.iter().filter(|(s, _)| *s == si) {
                    let at = |pos: usize| flat[(r * t as usize + pos) * d as usize + f as usize];
                    out[si].entry(f).or_default().insert(**w, (1..n).map(at).collect());
                }
            }
        }
        progress.send(Progress::Fraction { label: label.clone(), done: ((done + 1) * WINDOWS_PER_BATCH).min(total as usize) as u64, total });
    }
    Ok(out)
}

/// A gzipped JSON Lines file, written whole (atomically) once its rows are in.
fn write_rows(path: &Path, rows: &[serde_json::Value]) -> Result<()> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(5));
    for r in rows {
        serde_json::to_writer(&mut gz, r)?;
        gz.write_all(b"\n")?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| eyre!("cannot create {} ({}); pass another --export-neuronpedia DIR", dir.display(), crate::runtime::fsio::describe(dir, &e)))?;
    }
    crate::runtime::fsio::write_atomic(path, &gz.finish()?)
}

/// One context as an activations row.
fn activation_row(model: &str, source: &str, feature: u32, corpus: &str, c: &ContextWindow, values: &[f32], bin: Option<(f64, f64)>) -> serde_json::Value {
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    json!({
        "id": format!("{source}-{feature}-{}", c.window),
        "modelId": model,
        "layer": source,
        "index": feature.to_string(),
        "creatorId": CREATOR,
        "dataSource": corpus,
        "dataIndex": c.window.to_string(),
        "tokens": c.tokens,
        "values": values,
        "maxValue": c.max_value,
        "maxValueTokenIndex": c.max_index,
        "minValue": if min.is_finite() { min } else { 0.0 },
        "dfaValues": [],
        "dfaMaxValue": null,
        "dfaTargetIndex": null,
        "binMin": bin.map(|b| b.0),
        "binMax": bin.map(|b| b.1),
        "binContains": null,
    })
}

/// A token and its logit.
type Named = (String, f32);

/// What the weights say of each feature: its logit lens (promoted, suppressed; named
/// tokens), the histogram of its whole logit-lens row, and its nearest decoder rows in its
/// own SAE.
struct FromWeights {
    lens: Vec<(Vec<Named>, Vec<Named>)>,
    logit_hist: Vec<Histogram>,
    nearest: Vec<Vec<(u32, f32)>>,
}

/// `FromWeights` of every feature of `key`, a block of features at a time.
fn from_weights(engine: &Engine, key: SaeKey, d_sae: usize, progress: &ProgressSink) -> Result<FromWeights> {
    let _guard = tch::no_grad_guard();
    let sae = engine.sae(key)?;
    let block = (LENS_FLOATS / engine.model.vocab_size().max(1)).clamp(1, 1024);
    let mut out = FromWeights { lens: Vec::with_capacity(d_sae), logit_hist: Vec::with_capacity(d_sae), nearest: Vec::with_capacity(d_sae) };
    progress.stage(format!("logit lens and nearest features of {key}"));
    for start in (0..d_sae).step_by(block) {
        crate::runtime::interrupt::check()?;
        let features: Vec<u32> = (start as u32..(start + block).min(d_sae) as u32).collect();
        for [pos, neg] in engine.logit_lens(key, &features, TOP)? {
            let named = |list: crate::pipeline::TokenLogits| list.into_iter().map(|(_, token, logit)| (token, logit)).collect::<Vec<_>>();
            out.lens.push((named(pos), named(neg)));
        }
        let rows = engine.logit_lens_rows(key, &features)?.contiguous();
        let vocab = rows.size()[1] as usize;
        let flat = Vec::<f32>::try_from(rows.view([-1]))?;
        out.logit_hist.extend(flat.chunks(vocab.max(1)).map(histogram::of));
        let rows = sae.decoder()?.narrow(0, start as i64, features.len() as i64);
        out.nearest.extend(sae.nearest_each(&rows, TOP)?);
    }
    Ok(out)
}

/// Each feature's activation histogram, per SAE of `job`'s engine: one pass over the
/// corpus for each feature's range, one to count.
fn activation_histograms(job: &Job, tokens: u64, progress: &ProgressSink) -> Result<Vec<Vec<Histogram>>> {
    let widths: Vec<usize> = job.engine.saes.iter().map(|(_, s)| s.d_sae).collect();
    let mut ranges: Vec<Vec<Option<Range>>> = widths.iter().map(|&d| vec![None; d]).collect();
    job.scan("activation histograms: each feature's range", tokens, progress, &mut |si, f, v| {
        let r = &mut ranges[si][f as usize];
        *r = Some(Range::widened(*r, v));
    })?;
    let mut counts: Vec<Vec<u64>> = widths.iter().map(|&d| vec![0; d * histogram::BINS]).collect();
    job.scan("activation histograms: counting", tokens, progress, &mut |si, f, v| {
        if let Some(r) = ranges[si][f as usize] {
            counts[si][f as usize * histogram::BINS + r.bin(v)] += 1;
        }
    })?;
    Ok(ranges
        .iter()
        .zip(&counts)
        .map(|(rs, cs)| {
            rs.iter()
                .zip(cs.chunks(histogram::BINS))
                .map(|(r, c)| r.map_or_else(Histogram::default, |r| Histogram { heights: c.to_vec(), values: r.centres() }))
                .collect()
        })
        .collect())
}

/// Writes `index`'s SAEs under `dir` in Neuronpedia's layout; returns each SAE's folder.
/// `job` walks the corpus the index was built from, with the same engine.
pub fn write(index: &Index, job: &Job, dir: &Path, progress: &ProgressSink) -> Result<Vec<PathBuf>> {
    let engine = job.engine;
    let keys: Vec<SaeKey> = index.layers.iter().filter_map(|l| l.key()).collect();
    if keys != engine.keys() {
        return Err(eyre!("internal: the export's engine holds other SAEs than the index"));
    }
    let values = context_values(index, engine, &keys, progress)?;
    let act_hist = activation_histograms(job, index.tokens, progress)?;
    let mut folders = Vec::new();
    for (si, &key) in keys.iter().enumerate() {
        let s = index.of(key).ok_or_else(|| eyre!("the index has no SAE {key}"))?;
        let (model, source) = names(engine, key);
        let folder = dir.join("v1").join(&model).join(&source);
        progress.stage(format!("writing {}", folder.display()));
        let FromWeights { lens, logit_hist, nearest } = from_weights(engine, key, s.d_sae, progress)?;
        let mut features: Vec<u32> = (0..s.d_sae as u32).collect();
        // Neuronpedia selects features ORDER BY index, a text column: "0", "1", "10", ...
        features.sort_by_key(|f| f.to_string());
        for (n, chunk) in features.chunks(BATCH).enumerate() {
            let rows: Vec<serde_json::Value> = chunk
                .iter()
                .map(|&f| {
                    let fi = f as usize;
                    let (acts, logits) = (&act_hist[si][fi], &logit_hist[fi]);
                    json!({
                        "modelId": model,
                        "layer": source,
                        "index": f.to_string(),
                        "maxActApprox": s.max[fi],
                        "creatorId": CREATOR,
                        "frac_nonzero": s.frac_nonzero(fi),
                        "freq_hist_data_bar_heights": acts.heights,
                        "freq_hist_data_bar_values": acts.values,
                        "logits_hist_data_bar_heights": logits.heights,
                        "logits_hist_data_bar_values": logits.values,
                        "neg_str": lens[fi].1.iter().map(|x| &x.0).collect::<Vec<_>>(),
                        "neg_values": lens[fi].1.iter().map(|x| x.1).collect::<Vec<_>>(),
                        "pos_str": lens[fi].0.iter().map(|x| &x.0).collect::<Vec<_>>(),
                        "pos_values": lens[fi].0.iter().map(|x| x.1).collect::<Vec<_>>(),
                        "topkCosSimIndices": nearest[fi].iter().map(|x| x.0).collect::<Vec<_>>(),
                        "topkCosSimValues": nearest[fi].iter().map(|x| x.1).collect::<Vec<_>>(),
                        "vector": [], "vectorLabel": null, "hookName": key.hook.to_string(), "hasVector": false,
                    })
                })
                .collect();
            write_rows(&folder.join("features").join(format!("batch-{n}.jsonl.gz")), &rows)?;
        }
        let empty = BTreeMap::new();
        for n in 0..s.d_sae.div_ceil(BATCH) {
            let mut rows = Vec::new();
            for f in (n * BATCH) as u32..((n + 1) * BATCH).min(s.d_sae) as u32 {
                let Some(fc) = index.feature(key, f) else { continue };
                let vals = values[si].get(&f).unwrap_or(&empty);
                let value_of = |c: &ContextWindow| vals.get(&c.window).cloned().unwrap_or_default();
                for c in &fc.top {
                    rows.push(activation_row(&model, &source, f, &index.corpus, c, &value_of(c), None));
                }
                for iv in &fc.intervals {
                    for c in &iv.contexts {
                        rows.push(activation_row(&model, &source, f, &index.corpus, c, &value_of(c), Some((iv.from, iv.to))));
                    }
                }
            }
            write_rows(&folder.join("activations").join(format!("batch-{n}.jsonl.gz")), &rows)?;
        }
        folders.push(folder);
    }
    Ok(folders)
}
