//! What inference hands to analysis, as plain Rust data (no libtorch).
//!
//! Memory stays bounded by the categories, not the corpus: each text's mean vector is
//! folded into dense per-category sums as it arrives (exact category means whatever is
//! pruned). Texts keep their whole vectors (exact feature cards) until `KEEP_WHOLE`
//! entries are held in all; after that a text keeps only what views and reports read: its
//! `keep.top` largest features and every feature at or above `keep.above` (the specialist
//! threshold, so threshold counts stay exact).

pub mod cache;

use crate::sae::key::SaeKey;
use serde::{Deserialize, Serialize};

/// Non-zero entries of a feature vector, ascending by feature id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SparseVec {
    pub idx: Vec<u32>,
    pub val: Vec<f32>,
}

impl SparseVec {
    pub fn from_dense(dense: &[f32]) -> Self {
        let (idx, val) = dense.iter().enumerate().filter(|(_, &v)| v != 0.0).map(|(i, &v)| (i as u32, v)).unzip();
        Self { idx, val }
    }

    pub fn get(&self, feature: u32) -> f32 {
        self.idx.binary_search(&feature).map(|i| self.val[i]).unwrap_or(0.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, f32)> + '_ {
        self.idx.iter().copied().zip(self.val.iter().copied())
    }

    pub fn len(&self) -> usize {
        self.idx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.idx.is_empty()
    }

    pub fn sum(&self) -> f32 {
        self.val.iter().sum()
    }

    /// The `k` largest entries, descending (ties: lower feature id first).
    pub fn top(&self, k: usize) -> Vec<(u32, f32)> {
        top_k(self.iter(), k)
    }

    /// The entries `keep` retains, still ascending by id, and the floor below which
    /// entries were dropped (0 when nothing was).
    pub fn pruned(&self, keep: Keep) -> (Self, f32) {
        if self.len() <= keep.top {
            return (self.clone(), 0.0);
        }
        let floor = self.top(keep.top).last().map_or(f32::INFINITY, |&(_, v)| v).min(keep.above);
        let (idx, val): (Vec<u32>, Vec<f32>) = self.iter().filter(|&(_, v)| v >= floor).unzip();
        let dropped = idx.len() < self.len();
        (Self { idx, val }, if dropped { floor } else { 0.0 })
    }
}

/// The `k` largest positive entries of `(feature, value)` pairs, descending; ties go to
/// the lower feature id so results are stable across runs.
pub fn top_k(items: impl Iterator<Item = (u32, f32)>, k: usize) -> Vec<(u32, f32)> {
    let mut v: Vec<(u32, f32)> = items.filter(|&(_, x)| x > 0.0).collect();
    let cmp = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if v.len() > k {
        v.select_nth_unstable_by(k, cmp);
        v.truncate(k);
    }
    v.sort_by(cmp);
    v
}

/// What each text keeps of its mean vector (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Keep {
    pub top: usize,
    pub above: f32,
}

impl Keep {
    /// Everything: for tests and small hand-built sets.
    pub const ALL: Keep = Keep { top: usize::MAX, above: f32::NEG_INFINITY };

    /// What the report and the explorer need at specialist threshold `threshold`.
    pub fn for_threshold(threshold: f32) -> Self {
        Keep { top: KEEP_TOP, above: threshold }
    }
}

/// Per text and layer, this many largest features survive pruning: more than the report's
/// 32 and the explorer's lists, small enough that 5,000 texts cost a few MB.
pub const KEEP_TOP: usize = 128;

/// Entries (8 bytes each) texts may hold whole before pruning starts: 64 MB, about 5,000
/// texts at four layers of GPT-2-small SAEs.
pub const KEEP_WHOLE: usize = 8 << 20;

/// A text's mean activation of one feature: known, or only bounded because the text kept
/// its largest features and this one was not among them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Exact(f32),
    /// In [0, bound).
    Below(f32),
}

impl Value {
    /// The value, or the bound; and whether it is exact.
    pub fn or_bound(self) -> (f32, bool) {
        match self {
            Value::Exact(v) => (v, true),
            Value::Below(b) => (b, false),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TextActivations {
    pub category: usize,
    pub text: String,
    /// Tokens averaged over (BOS only when it was asked for).
    pub n_tokens: usize,
    /// One (pruned) vector per entry of `ActivationSet::saes`.
    pub vectors: Vec<SparseVec>,
    /// Per SAE, the sum of the full vector (before pruning).
    pub totals: Vec<f32>,
    /// Per SAE, the value below which pruning dropped entries (0: nothing dropped).
    pub floors: Vec<f32>,
}

impl TextActivations {
    /// Mean activation of `feature` of SAE index `li`, or the bound it lies under when
    /// pruning dropped it.
    pub fn value(&self, li: usize, feature: u32) -> Value {
        let v = &self.vectors[li];
        match v.idx.binary_search(&feature) {
            Ok(i) => Value::Exact(v.val[i]),
            Err(_) if self.floors[li] > 0.0 => Value::Below(self.floors[li]),
            Err(_) => Value::Exact(0.0),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActivationSet {
    /// The SAEs, sorted (by depth, then width); every per-SAE vector follows this order.
    pub saes: Vec<SaeKey>,
    pub include_bos: bool,
    pub categories: Vec<String>,
    pub keep: Keep,
    pub texts: Vec<TextActivations>,
    /// Which Neuronpedia SAE each SAE is (links and label matching), when known.
    pub neuronpedia: crate::sae::neuronpedia_id::Ids,
    /// [SAE index][category] sum of the category's full text vectors, dense over its width.
    sums: Vec<Vec<Vec<f64>>>,
    counts: Vec<usize>,
    /// Entries held by texts so far, and how many may be held whole.
    held: usize,
    whole_budget: usize,
}

impl ActivationSet {
    pub fn new(saes: Vec<SaeKey>, include_bos: bool, categories: Vec<String>, keep: Keep) -> Self {
        let sums = vec![vec![Vec::new(); categories.len()]; saes.len()];
        let counts = vec![0; categories.len()];
        Self { saes, include_bos, categories, keep, texts: Vec::new(), neuronpedia: Default::default(), sums, counts, held: 0, whole_budget: KEEP_WHOLE }
    }

    /// A set holding `texts` whole (nothing pruned).
    pub fn from_texts(saes: Vec<SaeKey>, categories: Vec<String>, texts: Vec<(usize, String, usize, Vec<SparseVec>)>) -> Self {
        let mut set = Self::new(saes, false, categories, Keep::ALL);
        for (category, text, n_tokens, vectors) in texts {
            set.push(category, text, n_tokens, vectors);
        }
        set
    }

    /// Folds one text's full per-SAE vectors into the category sums and appends its pruned form.
    pub fn push(&mut self, category: usize, text: String, n_tokens: usize, full: Vec<SparseVec>) {
        let t = self.fold(category, text, n_tokens, &full);
        self.texts.push(t);
    }

    /// Entries texts may hold whole before `keep` applies (default `KEEP_WHOLE`).
    pub fn with_whole_budget(mut self, entries: usize) -> Self {
        self.whole_budget = entries;
        self
    }

    /// A new, empty category (an ad-hoc text typed into the explorer); returns its index.
    pub fn add_category(&mut self, name: String) -> usize {
        self.categories.push(name);
        self.counts.push(0);
        for l in &mut self.sums {
            l.push(Vec::new());
        }
        self.categories.len() - 1
    }

    /// Folds one text into the category sums and returns its pruned form, for callers that
    /// receive texts out of order and place them into `texts` themselves.
    pub fn fold(&mut self, category: usize, text: String, n_tokens: usize, full: &[SparseVec]) -> TextActivations {
        for (li, v) in full.iter().enumerate() {
            let sum = &mut self.sums[li][category];
            if sum.is_empty() {
                sum.resize(self.saes[li].width, 0.0);
            }
            for (f, x) in v.iter() {
                sum[f as usize] += x as f64;
            }
        }
        self.counts[category] += 1;
        let totals = full.iter().map(SparseVec::sum).collect();
        let nnz: usize = full.iter().map(SparseVec::len).sum();
        let keep = if self.held + nnz <= self.whole_budget { Keep::ALL } else { self.keep };
        let (vectors, floors): (Vec<SparseVec>, Vec<f32>) = full.iter().map(|v| v.pruned(keep)).unzip();
        self.held += vectors.iter().map(SparseVec::len).sum::<usize>();
        TextActivations { category, text, n_tokens, vectors, totals, floors }
    }

    pub fn index_of(&self, key: SaeKey) -> Option<usize> {
        self.saes.iter().position(|&k| k == key)
    }

    pub fn n_texts_of(&self, category: usize) -> usize {
        self.counts.get(category).copied().unwrap_or(0)
    }

    /// Category vector: the mean over the category's texts of their token-averaged
    /// vectors, dense over the SAE's width.
    pub fn category_mean(&self, sae_idx: usize, category: usize) -> Vec<f32> {
        let n = self.n_texts_of(category).max(1) as f64;
        match self.sums.get(sae_idx).and_then(|l| l.get(category)) {
            Some(s) if !s.is_empty() => s.iter().map(|&v| (v / n) as f32).collect(),
            _ => vec![0.0; self.saes.get(sae_idx).map_or(0, |k| k.width)],
        }
    }
}
