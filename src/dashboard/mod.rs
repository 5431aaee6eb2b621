//! What a feature means, from the user's own corpus: per-feature statistics and
//! max-activating contexts over every window of a corpus (`saescope index`), as
//! Neuronpedia's feature pages and SAELens's dashboards show them, local and offline.
//! By job: `stats` (the pure accumulator, which is also what is stored), `build` (the
//! model and SAEs over the corpus, resumable), `store` (the index on disk, keyed by
//! weights, corpus and options), and here the stored `Index` and the views read from it.

pub mod build;
pub mod screen;
pub mod shade;
pub mod shard;
pub mod stats;
pub mod store;
pub mod text;

pub use text::Summary;

use crate::corpus::Window;
use crate::sae::key::SaeKey;
use serde::{Deserialize, Serialize};
use stats::{Hit, LayerStats};
use std::collections::BTreeMap;

/// A finished index: the statistics of every loaded SAE and the windows their lists
/// refer to, with the text of every token those windows hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub corpus: String,
    pub model: String,
    pub sae: String,
    /// Tokens per window, BOS included.
    pub context: usize,
    pub documents: u64,
    pub windows: u64,
    /// Counted tokens (BOS excluded).
    pub tokens: u64,
    pub skipped_binary: usize,
    pub rows_without_text: usize,
    /// Seconds of compute it took, over all runs that built it. Kept beside the index file
    /// (`store.rs`), not in it: it differs between any two runs, and the file's bytes are
    /// what one run, a resumed run and merged shards all write alike.
    #[serde(skip)]
    pub seconds: f64,
    pub layers: Vec<LayerStats>,
    /// The windows any top list or sample refers to, by number.
    pub contexts: BTreeMap<u32, Window>,
    /// Each token id those windows hold, as text.
    pub vocab: BTreeMap<u32, String>,
}

/// Density histogram bins: log10 of frac_nonzero in quarter decades from 10^-8 to 1.
pub const DENSITY_BINS: usize = 32;
pub const DENSITY_BINS_PER_DECADE: usize = 4;
pub const DENSITY_FROM: f64 = -8.0;

/// One SAE at a glance: how its features' firing rates spread, and how many never fire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    pub sae: SaeKey,
    pub d_sae: usize,
    pub tokens: u64,
    /// Features that never fired on this corpus.
    pub dead: usize,
    /// Mean number of features firing per token.
    pub l0: f64,
    /// Lower edge (log10 frac_nonzero) of each density bin.
    pub density_edges: Vec<f64>,
    pub density_counts: Vec<u32>,
}

pub fn density_bin(frac: f64) -> usize {
    (((frac.log10() - DENSITY_FROM) * DENSITY_BINS_PER_DECADE as f64).floor() as i64).clamp(0, DENSITY_BINS as i64 - 1) as usize
}

/// A context as the views show it: its tokens (BOS left out) and where it peaks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextWindow {
    pub window: u32,
    pub source: String,
    /// Of its document's tokens, where the window starts.
    pub offset: u32,
    pub tokens: Vec<String>,
    pub token_ids: Vec<u32>,
    /// Index into `tokens` of the max token.
    pub max_index: usize,
    pub max_value: f32,
    /// Every token's activation, once computed (the index keeps only the max).
    pub values: Option<Vec<f32>>,
}

impl ContextWindow {
    pub fn text(&self) -> String {
        self.tokens.concat()
    }
}

/// A weaker activation range of a feature and a few contexts from it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    pub from: f64,
    pub to: f64,
    /// Contexts whose peak falls in this range.
    pub contexts: Vec<ContextWindow>,
}

/// Everything the corpus says of one feature: the card's corpus sections and
/// `feature --format json`'s `corpus` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureCorpus {
    pub corpus: String,
    pub tokens: u64,
    pub count: u64,
    pub frac_nonzero: f64,
    /// Share of this SAE's features that fire less often than this one.
    pub density_percentile: f64,
    pub max: f32,
    pub mean_when_firing: f64,
    /// Lower edge of each histogram bin from the first to the last nonempty one.
    pub histogram_edges: Vec<f64>,
    pub histogram_counts: Vec<u32>,
    pub top: Vec<ContextWindow>,
    /// Strongest range first; in each, strongest context first.
    pub intervals: Vec<Interval>,
}

impl Index {
    pub fn of(&self, key: SaeKey) -> Option<&LayerStats> {
        self.layers.iter().find(|l| l.key() == Some(key))
    }

    pub fn overview(&self, key: SaeKey) -> Option<Overview> {
        let s = self.of(key)?;
        let mut counts = vec![0u32; DENSITY_BINS];
        for f in 0..s.d_sae {
            if s.count[f] > 0 {
                counts[density_bin(s.frac_nonzero(f))] += 1;
            }
        }
        Some(Overview {
            sae: key,
            d_sae: s.d_sae,
            tokens: s.tokens,
            dead: s.count.iter().filter(|&&c| c == 0).count(),
            l0: if s.tokens == 0 { 0.0 } else { s.firings as f64 / s.tokens as f64 },
            density_edges: (0..DENSITY_BINS).map(|b| DENSITY_FROM + b as f64 / DENSITY_BINS_PER_DECADE as f64).collect(),
            density_counts: counts,
        })
    }

    /// The text of the token a hit peaks on.
    pub fn token_at(&self, hit: &Hit) -> Option<&str> {
        let id = self.contexts.get(&hit.window)?.tokens.get(hit.position as usize)?;
        self.vocab.get(id).map(String::as_str)
    }

    /// A stored window as a context peaking at `hit`.
    pub fn context(&self, hit: &Hit) -> Option<ContextWindow> {
        let w = self.contexts.get(&hit.window)?;
        let ids = w.tokens.get(1..)?.to_vec();
        let tokens = ids.iter().map(|id| self.vocab.get(id).cloned().unwrap_or_else(|| format!("<{id}>"))).collect();
        Some(ContextWindow {
            window: hit.window,
            source: w.source.clone(),
            offset: w.offset,
            tokens,
            token_ids: ids,
            max_index: (hit.position as usize).saturating_sub(1),
            max_value: hit.value,
            values: None,
        })
    }

    pub fn feature(&self, key: SaeKey, feature: u32) -> Option<FeatureCorpus> {
        let s = self.of(key)?;
        let f = feature as usize;
        if f >= s.d_sae {
            return None;
        }
        let below = s.count.iter().filter(|&&c| c < s.count[f]).count();
        let hist = s.histogram(f);
        let (lo, hi) = match (hist.iter().position(|&n| n > 0), hist.iter().rposition(|&n| n > 0)) {
            (Some(lo), Some(hi)) => (lo, hi + 1),
            _ => (0, 0),
        };
        // Sampled uniformly (by priority), listed strongest first, as the top contexts are.
        let mut samples = s.samples_of(f);
        samples.sort_by(|a, b| a.interval.cmp(&b.interval).then(stats::strongest_first(&a.hit, &b.hit)));
        let mut intervals: Vec<(u8, Interval)> = Vec::new();
        for sample in samples {
            let Some(c) = self.context(&sample.hit) else { continue };
            match intervals.last_mut() {
                Some((i, last)) if *i == sample.interval => last.contexts.push(c),
                _ => {
                    let i = sample.interval as usize;
                    // The first and last intervals also hold everything below and above them.
                    let from = if i == 0 { 0.0 } else { stats::interval_edge(i) };
                    let to = if i + 1 == stats::INTERVALS { f64::from(s.max[f]) } else { stats::interval_edge(i + 1) };
                    intervals.push((sample.interval, Interval { from, to, contexts: vec![c] }));
                }
            }
        }
        let intervals = intervals.into_iter().rev().map(|(_, iv)| iv).collect();
        Some(FeatureCorpus {
            corpus: self.corpus.clone(),
            tokens: s.tokens,
            count: s.count[f],
            frac_nonzero: s.frac_nonzero(f),
            density_percentile: below as f64 / s.d_sae.max(1) as f64,
            max: s.max[f],
            mean_when_firing: s.mean_when_firing(f),
            histogram_edges: (lo..hi).map(stats::hist_edge).collect(),
            histogram_counts: hist[lo..hi].to_vec(),
            top: s.top[f].iter().filter_map(|h| self.context(h)).collect(),
            intervals,
        })
    }
}

impl FeatureCorpus {
    /// The top contexts, then the interval samples: the order the card lists them in.
    pub fn contexts(&self) -> Vec<&ContextWindow> {
        self.top.iter().chain(self.intervals.iter().flat_map(|i| &i.contexts)).collect()
    }

    /// The same, to fill in their values.
    pub fn contexts_mut(&mut self) -> Vec<&mut ContextWindow> {
        self.top.iter_mut().chain(self.intervals.iter_mut().flat_map(|i| i.contexts.iter_mut())).collect()
    }
}

impl Index {
    /// Features of SAE `key` whose top contexts peak on a token matching `query` (trimmed,
    /// case-insensitive, ` def` matches "def"), most such contexts first, then by max:
    /// "features that fire on this token".
    pub fn features_peaking_on(&self, key: SaeKey, query: &str) -> Vec<(u32, usize)> {
        let Some(s) = self.of(key) else { return Vec::new() };
        let want = query.trim().to_lowercase();
        if want.is_empty() {
            return Vec::new();
        }
        let matches = |h: &Hit| self.token_at(h).is_some_and(|t| t.trim().to_lowercase() == want);
        let mut out: Vec<(u32, usize)> = (0..s.d_sae).map(|f| (f as u32, s.top[f].iter().filter(|h| matches(h)).count())).filter(|&(_, n)| n > 0).collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(s.max[b.0 as usize].total_cmp(&s.max[a.0 as usize])).then(a.0.cmp(&b.0)));
        out
    }
}
