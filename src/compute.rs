//! Inputs -> activation set, through the result cache: what `report`, the explorer and the
//! benchmark all call. Texts found in the cache are read back; only the rest go through
//! the model, which is not even loaded when nothing is missing.

use crate::activations::ActivationSet;
use crate::cache::{text_key, Cache, Entry, Key, ReadOutcome};
use crate::pipeline::{Engine, Resolved, RunOptions};
use crate::progress::{Progress, ProgressSink};
use crate::samples::Samples;
use crate::source::Source;
use color_eyre::eyre::{eyre, Result};
use std::collections::HashMap;
use tch::Device;

pub struct Request<'a> {
    pub model: &'a Source,
    pub saes: &'a Source,
    pub samples: &'a Samples,
    pub layers: &'a [usize],
    pub device: Device,
    pub opts: &'a RunOptions,
    /// None: `--no-cache`.
    pub cache: Option<&'a Cache>,
}

pub struct Computed {
    pub set: ActivationSet,
    pub model_label: String,
    pub sae_label: String,
    /// Texts read from the cache and texts run through the model.
    pub from_cache: usize,
    /// The engine, when the model had to be loaded.
    pub engine: Option<Engine>,
}

pub fn activations(req: &Request, progress: &ProgressSink) -> Result<Computed> {
    let resolved = Resolved::new(req.model, req.saes, req.layers, progress)?;
    let (model_label, sae_label) = (resolved.model_label.clone(), resolved.sae_label.clone());
    let texts: Vec<(usize, usize, &String)> = req.samples.texts().collect();
    let mut set = ActivationSet::new(resolved.layers(), resolved.d_sae, req.opts.include_bos, req.samples.names(), req.opts.keep);
    set.neuronpedia = crate::neuronpedia::Ids::resolve(req.saes, req.layers);
    let mut slots = vec![None; texts.len()];

    // Texts by key; a text repeated in two categories is computed once.
    let mut wanted: HashMap<Key, Vec<usize>> = HashMap::new();
    for (i, (_, _, t)) in texts.iter().enumerate() {
        wanted.entry(text_key(t)).or_default().push(i);
    }
    let id = resolved.identity(req.opts)?;
    let mut writer = None;
    let mut dirty = false;
    if let Some(cache) = req.cache {
        progress.stage("reading the result cache");
        let swept = cache.sweep();
        if swept > 0 {
            progress.stage(format!("removed {swept} partial cache files left by interrupted runs"));
        }
        writer = match cache.writer(&id) {
            Ok(w) => Some(w),
            Err(e) => {
                progress.stage(format!("warning: {e}; results will not be cached (pass --cache-dir DIR or --no-cache)"));
                None
            }
        };
        let n_layers = set.layers.len();
        let outcome = cache.read(&id, |e, raw| {
            if let Some(w) = writer.as_mut() {
                if w.raw(raw).is_err() {
                    writer = None;
                }
            }
            if e.layers.len() != n_layers || e.layers.iter().any(|v| v.idx.last().is_some_and(|&f| f as usize >= set.d_sae)) {
                return;
            }
            if let Some(indices) = wanted.remove(&e.key) {
                for i in indices {
                    let (ci, _, t) = texts[i];
                    slots[i] = Some(set.fold(ci, t.clone(), e.n_tokens as usize, &e.layers));
                }
            }
        });
        if let ReadOutcome::Corrupt { entries, why } = outcome {
            dirty = true;
            progress.stage(format!("warning: the result cache {} is damaged after {entries} entries ({why}); recomputing the rest", cache.path(&id).display()));
        }
    }
    let from_cache = slots.iter().filter(|s| s.is_some()).count();
    // In sample order: batches (and so the last bits of every sum) are the same on every run.
    let mut missing: Vec<usize> = wanted.values().map(|v| v[0]).collect();
    missing.sort_unstable();
    let mut engine = None;
    if !missing.is_empty() {
        if from_cache > 0 {
            progress.stage(format!("{from_cache} texts from the cache; computing {}", slots.len() - from_cache));
        }
        let e = resolved.load(req.device, false, req.opts, progress)?;
        let which: Vec<(usize, usize)> = missing.iter().map(|&i| (texts[i].0, texts[i].1)).collect();
        let tokens = e.tokenize_some(req.samples, &which, req.opts, progress)?;
        e.each_text_vector(&tokens, req.opts, progress, |m, n, v| {
            let key = text_key(texts[missing[m]].2);
            if let Some(w) = writer.as_mut() {
                w.entry(&Entry { key, n_tokens: n as u32, layers: v.clone() })?;
            }
            for &i in wanted.get(&key).map(Vec::as_slice).unwrap_or_default() {
                let (ci, _, t) = texts[i];
                slots[i] = Some(set.fold(ci, t.clone(), n, &v));
            }
            Ok(())
        })?;
        engine = Some(e);
        dirty = true;
    } else {
        progress.send(Progress::Fraction { label: "texts from the cache".into(), done: from_cache as u64, total: slots.len() as u64 });
    }
    if let (Some(w), true) = (writer, dirty) {
        if let Err(e) = w.commit() {
            progress.stage(format!("warning: {e}; results will not be cached"));
        }
    }
    set.texts = slots.into_iter().collect::<Option<Vec<_>>>().ok_or_else(|| eyre!("internal: a text was neither cached nor computed"))?;
    Ok(Computed { set, model_label, sae_label, from_cache, engine })
}
