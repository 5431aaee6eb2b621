//! What inference hands to analysis: per text and layer, the text's mean SAE activation
//! vector. Plain Rust data (no libtorch), stored sparse because a 24576-wide vector of
//! ReLU features is mostly zeros.

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

    pub fn sum(&self) -> f32 {
        self.val.iter().sum()
    }

    /// The `k` largest entries, descending (ties: lower feature id first).
    pub fn top(&self, k: usize) -> Vec<(u32, f32)> {
        top_k(self.iter(), k)
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextActivations {
    pub category: usize,
    pub text: String,
    /// Tokens averaged over (BOS only when it was asked for).
    pub n_tokens: usize,
    /// One vector per entry of `ActivationSet::layers`.
    pub layers: Vec<SparseVec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationSet {
    pub layers: Vec<usize>,
    pub d_sae: usize,
    pub include_bos: bool,
    pub categories: Vec<String>,
    pub texts: Vec<TextActivations>,
}

impl ActivationSet {
    pub fn layer_index(&self, layer: usize) -> Option<usize> {
        self.layers.iter().position(|&l| l == layer)
    }

    pub fn texts_of(&self, category: usize) -> impl Iterator<Item = &TextActivations> {
        self.texts.iter().filter(move |t| t.category == category)
    }
}
