//! Inputs -> activation set, through the result cache: what `report`, the explorer, the
//! benchmark and the tests all run. Texts found in the cache are read back; only the rest
//! go through the model, which is not even loaded when nothing is missing. `run`
//! (an engine already loaded, no cache) is the same fold over the same batches.

use crate::activations::cache::{text_key, Cache, CacheEntry, HashKey, ReadOutcome, Writer};
use crate::activations::{ActivationSet, TextActivations};
use crate::corpus::samples::Samples;
use crate::pipeline::{Engine, Resolved, Run, RunOptions};
use crate::runtime::progress::{Progress, ProgressSink};
use color_eyre::eyre::{eyre, Result};
use std::collections::HashMap;

pub struct SamplesRequest<'a> {
    pub run: &'a Run,
    pub samples: &'a Samples,
    /// None: `--no-cache`.
    pub cache: Option<&'a Cache>,
    /// Called with the texts folded so far, at most every `PARTIAL_EVERY` while the
    /// model computes: the explorer fills its panes in as results arrive.
    pub partial: Option<&'a dyn Fn(ActivationSet)>,
}

/// How often `SamplesRequest::partial` hears of progress.
const PARTIAL_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

pub struct Computed {
    pub set: ActivationSet,
    pub model_label: String,
    pub sae_label: String,
    /// Texts read from the cache.
    pub from_cache: usize,
    /// The engine, when the model had to be loaded.
    pub engine: Option<Engine>,
}

/// The samples' texts on their way into a set: each text's slot, filled from the cache or
/// the model, and the texts by key (a text repeated in two categories is computed once).
struct Fold<'a> {
    texts: Vec<(usize, usize, &'a String)>,
    wanted: HashMap<HashKey, Vec<usize>>,
    slots: Vec<Option<TextActivations>>,
    set: ActivationSet,
}

impl<'a> Fold<'a> {
    fn new(samples: &'a Samples, set: ActivationSet) -> Self {
        let texts: Vec<(usize, usize, &String)> = samples.texts().collect();
        let mut wanted: HashMap<HashKey, Vec<usize>> = HashMap::new();
        for (i, (_, _, t)) in texts.iter().enumerate() {
            wanted.entry(text_key(t)).or_default().push(i);
        }
        let slots = vec![None; texts.len()];
        Self { texts, wanted, slots, set }
    }

    /// Every empty slot of this text gets its vectors (a key seen twice is folded once).
    fn put(&mut self, key: &HashKey, n_tokens: usize, vectors: &[crate::activations::SparseVec]) {
        for &i in self.wanted.get(key).map(Vec::as_slice).unwrap_or_default() {
            if self.slots[i].is_none() {
                let (ci, _, t) = self.texts[i];
                self.slots[i] = Some(self.set.fold(ci, t.clone(), n_tokens, vectors));
            }
        }
    }

    fn filled(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// One text per key still missing, in sample order: batches (and so the last bits of
    /// every sum) are the same on every run.
    fn missing(&self) -> Vec<usize> {
        let mut m: Vec<usize> = self.wanted.values().filter(|v| self.slots[v[0]].is_none()).map(|v| v[0]).collect();
        m.sort_unstable();
        m
    }

    /// Runs the missing texts through the engine, batch by batch, writing each to the
    /// cache as it comes.
    fn compute(
        &mut self,
        engine: &Engine,
        samples: &Samples,
        mut writer: Option<&mut Writer>,
        opts: &RunOptions,
        progress: &ProgressSink,
        partial: Option<&dyn Fn(ActivationSet)>,
    ) -> Result<()> {
        let missing = self.missing();
        let which: Vec<(usize, usize)> = missing.iter().map(|&i| (self.texts[i].0, self.texts[i].1)).collect();
        let tokens = engine.tokenize_some(samples, &which, opts, progress)?;
        let mut told = std::time::Instant::now();
        engine.each_text_vector(&tokens, opts, progress, |m, n, v| {
            let key = text_key(self.texts[missing[m]].2);
            if let Some(w) = writer.as_deref_mut() {
                w.entry(&CacheEntry { key, n_tokens: n as u32, vectors: v.clone() })?;
            }
            self.put(&key, n, &v);
            if let Some(tell) = partial.filter(|_| told.elapsed() >= PARTIAL_EVERY) {
                tell(self.snapshot());
                told = std::time::Instant::now();
            }
            Ok(())
        })
    }

    /// The set with the texts folded so far (sums and counts cover exactly those).
    fn snapshot(&self) -> ActivationSet {
        let mut s = self.set.clone();
        s.texts = self.slots.iter().flatten().cloned().collect();
        s
    }

    fn finish(mut self) -> Result<ActivationSet> {
        self.set.texts = self.slots.into_iter().collect::<Option<Vec<_>>>().ok_or_else(|| eyre!("internal: a text was neither cached nor computed"))?;
        Ok(self.set)
    }
}

/// Mean SAE activations per text and SAE for every sample text, with an engine already
/// loaded and no cache: the same fold `activations` does.
pub fn run(engine: &Engine, samples: &Samples, opts: &RunOptions, progress: &ProgressSink) -> Result<ActivationSet> {
    let mut set = ActivationSet::new(engine.keys(), opts.include_bos, samples.names(), opts.keep);
    set.neuronpedia = engine.neuronpedia.clone();
    let mut fold = Fold::new(samples, set);
    fold.compute(engine, samples, None, opts, progress, None)?;
    fold.finish()
}

pub fn activations(req: &SamplesRequest, progress: &ProgressSink) -> Result<Computed> {
    let run = req.run;
    let resolved = Resolved::new(&run.model, &run.saes, progress)?;
    let (model_label, sae_label) = (resolved.model_label.clone(), resolved.sae_label.clone());
    let mut set = ActivationSet::new(resolved.keys(), run.opts.include_bos, req.samples.names(), run.opts.keep);
    set.neuronpedia = resolved.neuronpedia();
    let mut fold = Fold::new(req.samples, set);
    let id = resolved.identity(&run.opts)?;
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
        let widths: Vec<usize> = fold.set.saes.iter().map(|k| k.width).collect();
        let outcome = cache.read(&id, |e, raw| {
            if let Some(w) = writer.as_mut() {
                if w.raw(raw).is_err() {
                    writer = None;
                }
            }
            if e.vectors.len() != widths.len() || e.vectors.iter().zip(&widths).any(|(v, &w)| v.idx.last().is_some_and(|&f| f as usize >= w)) {
                return;
            }
            fold.put(&e.key, e.n_tokens as usize, &e.vectors);
        });
        if let ReadOutcome::Corrupt { entries, why } = outcome {
            dirty = true;
            progress.stage(format!("warning: the result cache {} is damaged after {entries} entries ({why}); recomputing the rest", cache.path(&id).display()));
        }
    }
    let from_cache = fold.filled();
    let total = fold.slots.len();
    let mut engine = None;
    if from_cache < total {
        if from_cache > 0 {
            progress.stage(format!("{from_cache} texts from the cache; computing {}", total - from_cache));
        }
        let e = resolved.load(run.device, false, &run.opts, progress)?;
        if let Some(tell) = req.partial.filter(|_| from_cache > 0) {
            tell(fold.snapshot());
        }
        fold.compute(&e, req.samples, writer.as_mut(), &run.opts, progress, req.partial)?;
        engine = Some(e);
        dirty = true;
    } else {
        progress.send(Progress::Fraction { label: "texts from the cache".into(), done: from_cache as u64, total: total as u64 });
    }
    if let (Some(w), true) = (writer, dirty) {
        if let Err(e) = w.commit() {
            progress.stage(format!("warning: {e}; results will not be cached"));
        }
    }
    Ok(Computed { set: fold.finish()?, model_label, sae_label, from_cache, engine })
}
