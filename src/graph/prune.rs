//! What a graph keeps and how much of the model it explains: circuit-tracer's influence,
//! pruning and scores (its `graph.py`), as pure functions on the adjacency (rows are
//! targets, columns sources) in its node order: features, errors, tokens, logits.
//!
//! A node's influence is what it contributes to the logits, weighted by their
//! probabilities, through every path: with `N` the adjacency's absolute values normalised
//! to sum to 1 per row, `w (N + N^2 + ...)`. The graph is acyclic, so the series ends.
//!
//! Only features and logits have inputs, so only their rows are kept (`Adjacency`): on a
//! long prompt the error and token nodes outnumber the features many times (18,432 errors
//! at 1,024 tokens on Gemma 3 270M), and their rows are all zeros.

use fixedbitset::FixedBitSet;

/// The shape of a graph's node list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub features: usize,
    pub errors: usize,
    pub tokens: usize,
    pub logits: usize,
}

impl Layout {
    pub fn nodes(&self) -> usize {
        self.features + self.errors + self.tokens + self.logits
    }

    /// Nodes with a row: the features, then the logits.
    pub fn rows(&self) -> usize {
        self.features + self.logits
    }

    /// The node of row `i`.
    pub fn node_of_row(&self, i: usize) -> usize {
        if i < self.features {
            i
        } else {
            self.nodes() - self.logits + (i - self.features)
        }
    }

    /// The row of `node`; None for errors and tokens, which have no inputs.
    pub fn row_of_node(&self, node: usize) -> Option<usize> {
        let first_logit = self.nodes() - self.logits;
        if node < self.features {
            Some(node)
        } else if node >= first_logit && node < self.nodes() {
            Some(self.features + node - first_logit)
        } else {
            None
        }
    }
}

/// A graph's adjacency: a row per feature and logit (targets) over every node (sources),
/// row-major; the rows of errors and tokens, all zero, are not stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Adjacency {
    pub layout: Layout,
    pub data: Vec<f32>,
}

impl Adjacency {
    pub fn zeros(layout: Layout) -> Self {
        Self { layout, data: vec![0f32; layout.rows() * layout.nodes()] }
    }

    /// From a full `n * n` matrix whose error and token rows are zero.
    pub fn from_dense(dense: &[f32], layout: Layout) -> Self {
        let n = layout.nodes();
        let mut a = Self::zeros(layout);
        for i in 0..layout.rows() {
            let node = layout.node_of_row(i);
            a.data[i * n..(i + 1) * n].copy_from_slice(&dense[node * n..(node + 1) * n]);
        }
        a
    }

    pub fn n(&self) -> usize {
        self.layout.nodes()
    }

    /// The edge `source -> target`'s weight (0 into an error or token).
    pub fn get(&self, target: usize, source: usize) -> f32 {
        self.row(target).map_or(0.0, |r| r[source])
    }

    /// The row of `node`, if it has one.
    pub fn row(&self, node: usize) -> Option<&[f32]> {
        let n = self.n();
        self.layout.row_of_node(node).map(|i| &self.data[i * n..(i + 1) * n])
    }

    pub fn row_mut(&mut self, node: usize) -> Option<&mut [f32]> {
        let n = self.n();
        self.layout.row_of_node(node).map(move |i| &mut self.data[i * n..(i + 1) * n])
    }

    /// Every stored row with its node.
    pub fn rows(&self) -> impl Iterator<Item = (usize, &[f32])> {
        let n = self.n().max(1);
        self.data.chunks(n).enumerate().map(|(i, r)| (self.layout.node_of_row(i), r))
    }
}

/// What pruning keeps: nodes, edges (a flag per stored adjacency entry) and each node's
/// cumulative influence (the share of all influence held by the nodes at least as
/// influential as it: lower is more important).
#[derive(Debug, Clone, PartialEq)]
pub struct Pruned {
    pub layout: Layout,
    pub nodes: Vec<bool>,
    /// A bit per stored adjacency entry: a long prompt's adjacency has hundreds of millions.
    edges: FixedBitSet,
    pub cumulative: Vec<f32>,
    /// Each edge's influence in the graph of the kept nodes, and the score an edge needed:
    /// an edge within float rounding of the cut may go either way between two
    /// implementations of the same sums.
    edge_scores: Vec<f32>,
    pub edge_cut: f32,
}

impl Pruned {
    /// Whether the edge `source -> target` is kept.
    pub fn edge(&self, target: usize, source: usize) -> bool {
        self.layout.row_of_node(target).is_some_and(|i| self.edges.contains(i * self.layout.nodes() + source))
    }

    pub fn edge_score(&self, target: usize, source: usize) -> f32 {
        self.layout.row_of_node(target).map_or(0.0, |i| self.edge_scores[i * self.layout.nodes() + source])
    }

    /// Every kept edge as (target, source), by target then source.
    pub fn edge_list(&self) -> Vec<(usize, usize)> {
        let n = self.layout.nodes();
        self.edges.ones().map(|k| (self.layout.node_of_row(k / n), k % n)).collect()
    }
}

/// `|a|` with each row divided by its sum (at least 1e-10).
pub fn normalize(a: &Adjacency) -> Adjacency {
    let mut out = Adjacency { layout: a.layout, data: a.data.iter().map(|x| x.abs()).collect() };
    divide_rows_by_sums(&mut out);
    out
}

/// Each row of `m` divided by its sum (at least 1e-10).
fn divide_rows_by_sums(m: &mut Adjacency) {
    let n = m.n().max(1);
    for row in m.data.chunks_mut(n) {
        let sum: f32 = row.iter().sum::<f32>().max(1e-10);
        row.iter_mut().for_each(|x| *x /= sum);
    }
}

/// `w N + w N^2 + ...` for a row-normalised `m` and weights `w` (a node each).
pub fn influence(m: &Adjacency, w: &[f32]) -> Vec<f32> {
    let n = m.n();
    let step = |v: &[f32]| -> Vec<f32> {
        let mut out = vec![0f32; n];
        for (node, row) in m.rows() {
            let vr = v[node];
            if vr != 0.0 {
                out.iter_mut().zip(row).for_each(|(o, &x)| *o += vr * x);
            }
        }
        out
    };
    let mut current = step(w);
    let mut total = current.clone();
    // An acyclic graph of n nodes has no path longer than n.
    for _ in 0..=n {
        if current.iter().all(|&x| x == 0.0) {
            break;
        }
        current = step(&current);
        total.iter_mut().zip(&current).for_each(|(t, c)| *t += c);
    }
    total
}

/// The score that keeps `threshold` of the total: the largest score whose running share,
/// from the top, reaches it (the last score when none does).
pub fn find_threshold(scores: &[f32], threshold: f32) -> f32 {
    find_threshold_among(scores, threshold, false)
}

/// `find_threshold` over `scores` and, where `more_zeros`, zeros besides them (the rows an
/// `Adjacency` does not store): a zero score is then the answer where none reaches it.
fn find_threshold_among(scores: &[f32], threshold: f32, more_zeros: bool) -> f32 {
    // Zeros add nothing to the running share: sort only the rest.
    let mut sorted: Vec<f32> = scores.iter().copied().filter(|&s| s != 0.0).collect();
    if sorted.is_empty() {
        return 0.0;
    }
    sorted.sort_by(|a, b| b.total_cmp(a));
    let total: f32 = sorted.iter().sum();
    let mut running = 0f32;
    for &s in &sorted {
        running += s;
        if running / total >= threshold {
            return s;
        }
    }
    if more_zeros || sorted.len() < scores.len() {
        0.0
    } else {
        sorted[sorted.len() - 1]
    }
}

/// Each logit's weight (its probability) over all `n` nodes, zero elsewhere.
fn logit_weights(layout: &Layout, probs: &[f32]) -> Vec<f32> {
    let mut w = vec![0f32; layout.nodes()];
    let first = layout.nodes() - layout.logits;
    w[first..].copy_from_slice(&probs[..layout.logits]);
    w
}

/// Every node's influence on the logits.
pub fn node_influence(a: &Adjacency, probs: &[f32]) -> Vec<f32> {
    influence(&normalize(a), &logit_weights(&a.layout, probs))
}

/// Keeps the nodes holding `node_threshold` of all influence (tokens and logits always),
/// then the edges holding `edge_threshold` of the kept graph's edge influence, then drops,
/// until none is left, every feature or error without an edge out and every feature
/// without an edge in.
pub fn prune(a: &Adjacency, probs: &[f32], node_threshold: f32, edge_threshold: f32) -> Pruned {
    let layout = a.layout;
    let n = layout.nodes();
    let w = logit_weights(&layout, probs);
    let infl = influence(&normalize(a), &w);
    let cut = find_threshold(&infl, node_threshold);
    let mut nodes: Vec<bool> = infl.iter().map(|&x| x >= cut).collect();
    let always = n - layout.logits - layout.tokens;
    nodes[always..].iter_mut().for_each(|k| *k = true);
    // The kept graph normalised, in one copy of the adjacency (on a long prompt each copy is
    // most of a graph's memory); then each entry scaled in place into its edge's score.
    let mut m = Adjacency { layout, data: a.data.iter().map(|x| x.abs()).collect() };
    for i in 0..layout.rows() {
        let r = layout.node_of_row(i);
        for c in 0..n {
            if !nodes[r] || !nodes[c] {
                m.data[i * n + c] = 0.0;
            }
        }
    }
    divide_rows_by_sums(&mut m);
    let mut through = influence(&m, &w);
    through.iter_mut().zip(&w).for_each(|(t, x)| *t += x);
    for (k, x) in m.data.iter_mut().enumerate() {
        *x *= through[layout.node_of_row(k / n)];
    }
    let scores = m.data;
    let edge_cut = find_threshold_among(&scores, edge_threshold, layout.errors + layout.tokens > 0);
    let mut edges = FixedBitSet::with_capacity(scores.len());
    scores.iter().enumerate().filter(|(_, &s)| s >= edge_cut).for_each(|(k, _)| edges.insert(k));
    let drop_unconnected = |nodes: &mut Vec<bool>, edges: &FixedBitSet| {
        let mut has_out = vec![false; n];
        let mut has_in = vec![false; layout.rows()];
        for k in edges.ones() {
            has_out[k % n] = true;
            has_in[k / n] = true;
        }
        for c in 0..always {
            nodes[c] &= has_out[c];
        }
        for r in 0..layout.features {
            nodes[r] &= has_in[r];
        }
    };
    let mut before = nodes.clone();
    drop_unconnected(&mut nodes, &edges);
    while nodes != before {
        before.clone_from(&nodes);
        let gone: Vec<usize> = edges.ones().filter(|&k| !nodes[layout.node_of_row(k / n)] || !nodes[k % n]).collect();
        gone.into_iter().for_each(|k| edges.set(k, false));
        drop_unconnected(&mut nodes, &edges);
    }
    Pruned { layout, nodes, edges, cumulative: cumulative_share(&infl), edge_scores: scores, edge_cut }
}

/// Each score's cumulative share of the total, from the largest down.
fn cumulative_share(scores: &[f32]) -> Vec<f32> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let total: f32 = scores.iter().sum();
    let mut out = vec![0f32; scores.len()];
    let mut running = 0f32;
    for i in order {
        running += scores[i];
        out[i] = if total > 0.0 { running / total } else { 0.0 };
    }
    out
}

/// circuit-tracer's two scores: the replacement score (of the influence tokens and errors
/// have on the logits, the tokens' share: 1 when every path runs through features) and
/// the completeness score (each node's inputs' share from features and tokens rather than
/// errors, weighted by the node's influence).
pub fn scores(a: &Adjacency, probs: &[f32]) -> (f32, f32) {
    let layout = a.layout;
    let n = layout.nodes();
    let w = logit_weights(&layout, probs);
    let m = normalize(a);
    let infl = influence(&m, &w);
    let errors = layout.features..layout.features + layout.errors;
    let tokens = errors.end..errors.end + layout.tokens;
    let token_infl: f32 = infl[tokens].iter().sum();
    let error_infl: f32 = infl[errors.clone()].iter().sum();
    let replacement = token_infl / (token_infl + error_infl);
    let mut weighted = 0f32;
    let mut total = 0f32;
    for r in 0..n {
        let from_errors: f32 = m.row(r).map_or(0.0, |row| row[errors.clone()].iter().sum());
        let out = infl[r] + w[r];
        weighted += (1.0 - from_errors) * out;
        total += out;
    }
    (replacement, weighted / total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// token -> feature -> logit, and token -> error -> logit, with known weights.
    fn chain() -> (Adjacency, Layout) {
        let layout = Layout { features: 1, errors: 1, tokens: 1, logits: 1 };
        let n = layout.nodes();
        let mut a = vec![0f32; n * n];
        let set = |a: &mut Vec<f32>, t: usize, s: usize, w: f32| a[t * n + s] = w;
        set(&mut a, 0, 2, 2.0); // token -> feature
        set(&mut a, 3, 0, 3.0); // feature -> logit
        set(&mut a, 3, 1, -1.0); // error -> logit
        set(&mut a, 3, 2, 0.0);
        (Adjacency::from_dense(&a, layout), layout)
    }

    #[test]
    fn influence_follows_every_path() {
        let (a, _) = chain();
        let infl = node_influence(&a, &[1.0]);
        // The logit's row normalises to feature 0.75, error 0.25; the feature's row to token 1.
        assert_eq!(infl, vec![0.75, 0.25, 0.75, 0.0]);
        let (replacement, completeness) = scores(&a, &[1.0]);
        assert!((replacement - 0.75).abs() < 1e-6, "{replacement}");
        // Inputs' non-error shares: feature 1, error 1, token 1, logit 0.75; weights 0.75, 0.25, 0.75, 1.
        assert!((completeness - (0.75 + 0.25 + 0.75 + 0.75) / 2.75).abs() < 1e-6, "{completeness}");
    }

    #[test]
    fn pruning_keeps_tokens_and_logits_and_drops_the_weak() {
        let (a, _) = chain();
        let p = prune(&a, &[1.0], 0.5, 0.98);
        assert_eq!(p.nodes, vec![true, false, true, true]);
        assert!(p.edge(3, 0) && p.edge(0, 2) && !p.edge(3, 1));
        assert_eq!(p.edge_list(), vec![(0, 2), (3, 0)]);
        // Shares from the top: 3/6 = 0.5, then 5/6; the first to reach the threshold sets it.
        assert_eq!(find_threshold(&[3.0, 1.0, 0.0, 2.0], 0.5), 3.0);
        assert_eq!(find_threshold(&[3.0, 1.0, 0.0, 2.0], 0.6), 2.0);
        assert_eq!(find_threshold(&[3.0, 1.0, 0.0, 2.0], 1.0), 1.0);
    }
}
