//! The numbers of the GPT-2 small SAE study (docs/method.md, "Method"), as pure functions
//! on plain data so every metric is testable without libtorch.

pub mod eval;
pub mod findings;
pub mod questions;

use crate::activations::{top_k, ActivationSet};
use crate::sae::key::SaeKey;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Params {
    pub top_k: usize,
    /// A text "uses" a feature when its mean activation reaches this.
    pub threshold: f32,
}

impl Default for Params {
    fn default() -> Self {
        Self { top_k: 5, threshold: 5.0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopFeature {
    pub feature: u32,
    pub activation: f32,
    pub specialist: i64,
    /// Texts of this category whose mean activation reaches the threshold.
    pub n_above: u32,
    /// activation / sum of the category vector.
    pub share: f32,
}

/// Rows the explorer's feature table lists per category (the metrics use only top_k).
pub const TABLE_ROWS: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryLayer {
    pub peak: f32,
    pub gini: f32,
    pub top_sum: f32,
    pub top_share: f32,
    pub spec: i64,
    pub top: Vec<TopFeature>,
    /// The `max(top_k, TABLE_ROWS)` largest features, for tables.
    pub ranked: Vec<TopFeature>,
}

/// Per feature, how many texts of each category reach the threshold. Features no text
/// reaches are absent, which is what keeps the specialist matrix cheap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AboveCounts {
    counts: HashMap<u32, Vec<u32>>,
    n_categories: usize,
}

impl AboveCounts {
    /// Exact as long as `threshold >= set.keep.above`: texts keep every entry from there up.
    pub fn new(set: &ActivationSet, sae_idx: usize, threshold: f32) -> Self {
        debug_assert!(threshold >= set.keep.above, "texts were pruned below the threshold");
        let n_categories = set.categories.len();
        let mut counts: HashMap<u32, Vec<u32>> = HashMap::new();
        for t in &set.texts {
            for (f, v) in t.vectors[sae_idx].iter() {
                if v >= threshold {
                    counts.entry(f).or_insert_with(|| vec![0; n_categories])[t.category] += 1;
                }
            }
        }
        Self { counts, n_categories }
    }

    pub fn inside(&self, feature: u32, category: usize) -> u32 {
        self.counts.get(&feature).map_or(0, |c| c[category])
    }

    /// `#{texts in C reaching theta} - #{texts outside C reaching theta}`.
    pub fn specialist(&self, feature: u32, category: usize) -> i64 {
        self.counts.get(&feature).map_or(0, |c| {
            let inside = c[category] as i64;
            inside - (c.iter().map(|&x| x as i64).sum::<i64>() - inside)
        })
    }

    /// The category's best specialist: the feature with the highest specialist score
    /// (the lowest number among equals), if any scores above 0.
    pub fn best(&self, category: usize) -> Option<(u32, i64)> {
        self.counts.keys().map(|&f| (f, self.specialist(f, category))).filter(|&(_, s)| s > 0).max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
    }

    /// Rows: `features`; columns: every category.
    pub fn matrix(&self, features: &[u32]) -> Vec<Vec<i64>> {
        features.iter().map(|&f| (0..self.n_categories).map(|c| self.specialist(f, c)).collect()).collect()
    }
}

/// One SAE's numbers: every category's metrics, and the texts above threshold per feature.
#[derive(Debug, Clone, PartialEq)]
pub struct SaeAnalysis {
    pub sae: SaeKey,
    /// Indexed like `ActivationSet::categories`.
    pub categories: Vec<CategoryLayer>,
    pub above: AboveCounts,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub params: Params,
    /// In the set's order of SAEs.
    pub saes: Vec<SaeAnalysis>,
}

impl Analysis {
    pub fn of(&self, key: SaeKey) -> Option<&SaeAnalysis> {
        self.saes.iter().find(|l| l.sae == key)
    }
}

/// Gini coefficient of non-negative values: with x sorted ascending,
/// `2 * sum(i * x_i) / (n * sum(x)) - (n + 1) / n`; 0 for no values or an all-zero sum.
pub fn gini(values: &[f32]) -> f32 {
    let n = values.len();
    let total: f64 = values.iter().map(|&v| v as f64).sum();
    if n == 0 || total <= 0.0 {
        return 0.0;
    }
    let mut x: Vec<f64> = values.iter().map(|&v| v as f64).collect();
    x.sort_by(f64::total_cmp);
    let weighted: f64 = x.iter().enumerate().map(|(i, v)| (i + 1) as f64 * v).sum();
    let n = n as f64;
    (2.0 * weighted / (n * total) - (n + 1.0) / n) as f32
}

/// Metrics of one category at one layer from its mean vector `c`.
pub fn category_metrics(c: &[f32], category: usize, above: &AboveCounts, params: &Params) -> CategoryLayer {
    let total: f64 = c.iter().map(|&v| v as f64).sum();
    let ranked: Vec<TopFeature> = top_k(c.iter().enumerate().map(|(f, &v)| (f as u32, v)), params.top_k.max(TABLE_ROWS))
        .into_iter()
        .map(|(feature, activation)| TopFeature {
            feature,
            activation,
            specialist: above.specialist(feature, category),
            n_above: above.inside(feature, category),
            share: if total > 0.0 { (activation as f64 / total) as f32 } else { 0.0 },
        })
        .collect();
    let top: Vec<TopFeature> = ranked.iter().take(params.top_k).cloned().collect();
    let values: Vec<f32> = top.iter().map(|t| t.activation).collect();
    let top_sum: f32 = values.iter().sum();
    CategoryLayer {
        peak: values.first().copied().unwrap_or(0.0),
        gini: gini(&values),
        top_sum,
        top_share: if total > 0.0 { (top_sum as f64 / total) as f32 } else { 0.0 },
        spec: top.iter().map(|t| t.specialist).max().unwrap_or(0),
        top,
        ranked,
    }
}

pub fn analyze(set: &ActivationSet, params: Params) -> Analysis {
    let saes = set
        .saes
        .iter()
        .enumerate()
        .map(|(li, &sae)| {
            let above = AboveCounts::new(set, li, params.threshold);
            let categories = (0..set.categories.len()).map(|c| category_metrics(&set.category_mean(li, c), c, &above, &params)).collect();
            SaeAnalysis { sae, categories, above }
        })
        .collect();
    Analysis { params, saes }
}
