//! Attribution graphs: how the features of per-layer transcoders compose into one
//! prediction, as circuit-tracer 0.5 computes them (its `attribution/attribute.py`, whose
//! phases `attribute` follows step for step so the same prompt gives the same graph).
//!
//! The graph's nodes, in circuit-tracer's order: the selected active features (by layer,
//! position, feature), an error node per layer and position (layer-major), a token node
//! per position, and the logit nodes. Its adjacency has a row per target and a column per
//! source; only features and logits have rows.

pub mod build;
pub mod cross;
pub mod intervene;
pub mod json;
pub mod prune;
pub mod reading;
pub mod replacement;
pub mod rows;
pub mod transcoders;

use color_eyre::eyre::{bail, Result};
use replacement::{Active, Replacement, Target};

/// How a graph is computed.
#[derive(Debug, Clone)]
pub struct Options {
    /// The logits to explain: None picks circuit-tracer's salient set (the most probable
    /// tokens until their probabilities sum to `desired_logit_prob`, at most `max_logits`).
    pub targets: Option<Vec<u32>>,
    pub max_logits: usize,
    pub desired_logit_prob: f32,
    /// Feature rows to compute; None computes every active feature's.
    pub max_features: Option<usize>,
    /// Rows per backward pass.
    pub batch: usize,
    /// Batches between re-rankings of the features still to compute.
    pub update_interval: usize,
    /// Leading positions whose features are not nodes: BOS, or `leading_positions`'.
    pub skip_positions: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { targets: None, max_logits: 10, desired_logit_prob: 0.95, max_features: None, batch: 64, update_interval: 4, skip_positions: 1 }
    }
}

/// A logit node: the token, its text and its probability.
#[derive(Debug, Clone, PartialEq)]
pub struct Logit {
    pub token: u32,
    pub text: String,
    pub prob: f32,
}

/// An attribution graph, unpruned, as plain data.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// The prompt's tokens (BOS first) and each one's text.
    pub tokens: Vec<u32>,
    pub token_texts: Vec<String>,
    pub n_layers: usize,
    /// Every active feature; `selected` indexes the ones that are nodes, ascending.
    pub active: Vec<Active>,
    pub selected: Vec<usize>,
    pub logits: Vec<Logit>,
    /// Rows targets (features and logits), columns sources, in node order.
    pub adjacency: prune::Adjacency,
    /// Which transcoders made it (circuit-tracer's `scan`).
    pub scan: String,
}

impl Graph {
    pub fn layout(&self) -> prune::Layout {
        prune::Layout { features: self.selected.len(), errors: self.n_layers * self.tokens.len(), tokens: self.tokens.len(), logits: self.logits.len() }
    }

    pub fn n_nodes(&self) -> usize {
        self.layout().nodes()
    }

    pub fn probs(&self) -> Vec<f32> {
        self.logits.iter().map(|l| l.prob).collect()
    }
}

/// Under `--chat` the model's template opens the prompt: its opening tokens are skipped,
/// whatever the model's name (circuit-tracer's 4 for Gemma 3 `-it` are those tokens).
pub fn skip_positions(engine: &crate::pipeline::Engine) -> usize {
    if engine.tokenizer.is_chat() {
        engine.tokenizer.frame(false).lead
    } else {
        leading_positions(&engine.model_label)
    }
}

/// The leading positions a graph of `model`'s (its hub name or folder) has no feature or
/// error nodes at: BOS, and for an instruction-tuned Gemma 3 the chat prefix after it
/// (`<bos><start_of_turn>user\n`, 4 tokens), as circuit-tracer decides it by the model's
/// name (its `replacement_model/common.py`: "gemma-3" in the name, ending in "-it").
pub fn leading_positions(model: &str) -> usize {
    let name = model.trim_end_matches('/');
    if name.contains("gemma-3") && name.ends_with("-it") {
        4
    } else {
        1
    }
}

/// circuit-tracer's salient logits: by probability, the fewest whose probabilities reach
/// `desired` (the first that does included), at most `max`.
pub fn salient_logits(probs: &[f32], max: usize, desired: f32) -> Vec<u32> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    order.truncate(max);
    let mut running = 0f32;
    let mut cut = order.len();
    for (i, &t) in order.iter().enumerate() {
        running += probs[t];
        if running >= desired {
            cut = i + 1;
            break;
        }
    }
    order[..cut].iter().map(|&t| t as u32).collect()
}

/// The graph of `r`'s prompt: logit rows first, then feature rows in order of estimated
/// influence, as circuit-tracer's `attribute` computes them. `r` is dropped once the rows
/// are computed, before the adjacency is assembled: on a long prompt the two are most of a
/// graph's memory.
pub fn attribute(mut r: Replacement, opts: &Options, text_of: impl Fn(u32) -> String, scan: &str, token_texts: Vec<String>) -> Result<Graph> {
    let probs = r.probabilities()?;
    let chosen = match &opts.targets {
        Some(t) if t.is_empty() => bail!("no target token given"),
        Some(t) => t.clone(),
        None => salient_logits(&probs, opts.max_logits.max(1), opts.desired_logit_prob),
    };
    if let Some(&bad) = chosen.iter().find(|&&t| t as usize >= probs.len()) {
        bail!("target token {bad} is past the vocabulary of {}", probs.len());
    }
    let logit_nodes: Vec<Logit> = chosen.iter().map(|&t| Logit { token: t, text: text_of(t), prob: probs[t as usize] }).collect();
    let total = r.active.len();
    let n_sources = r.n_sources();
    let n_logits = logit_nodes.len();
    let n_all = n_sources + n_logits;
    let max_features = opts.max_features.unwrap_or(total).min(total);
    let batch = opts.batch.max(1);
    let mut rows = rows::Rows::new()?;
    let logit_targets: Vec<Target> = chosen.iter().map(|&t| Target::Logit(t)).collect();
    for (i, row) in r.rows(&logit_targets, batch)?.iter().enumerate() {
        rows.push(n_sources + i, row)?;
    }
    let probs_chosen: Vec<f32> = logit_nodes.iter().map(|l| l.prob).collect();
    let mut visited = vec![false; total];
    let mut n_visited = 0;
    while n_visited < max_features {
        // Rows go in passes of at most `batch` (fewer on long prompts: `Replacement::rows`);
        // the ranking still refreshes every `update_interval` batches of `batch` rows, as
        // circuit-tracer's, so the same features are chosen. A row does not depend on its
        // pass, so each queue goes by the prompt length its rows need, then in layer order:
        // a pass of low layers runs backward through low layers only.
        let mut pending: Vec<usize> = if max_features == total {
            (0..total).collect()
        } else {
            let infl = rows.partial_influence(n_all, &probs_chosen)?;
            let mut rank: Vec<usize> = (0..total).collect();
            rank.sort_by(|&a, &b| infl[b].total_cmp(&infl[a]).then(a.cmp(&b)));
            let queue = (opts.update_interval.max(1) * batch).min(max_features - n_visited);
            rank.into_iter().filter(|&f| !visited[f]).take(queue).collect()
        };
        pending.sort_unstable_by_key(|&f| (r.prefix_len(Target::Feature(f)), f));
        for chunk in pending.chunks(batch) {
            let targets: Vec<Target> = chunk.iter().map(|&f| Target::Feature(f)).collect();
            for (row, &f) in r.rows(&targets, batch)?.iter().zip(chunk) {
                rows.push(f, row)?;
                visited[f] = true;
            }
            n_visited += chunk.len();
        }
    }
    let (tokens, n_layers, n_pos) = (r.tokens(), r.n_layers(), r.n_pos());
    let active = std::mem::take(&mut r.active);
    drop(r);
    // The adjacency over the selected features: their columns and every non-feature one.
    let selected: Vec<usize> = (0..total).filter(|&f| visited[f]).collect();
    let columns: Vec<usize> = selected.iter().copied().chain(total..n_sources).collect();
    let n = columns.len() + n_logits;
    let mut position = vec![usize::MAX; n_all];
    for (i, &f) in selected.iter().enumerate() {
        position[f] = i;
    }
    for i in 0..n_logits {
        position[n_sources + i] = n - n_logits + i;
    }
    // Where each source's column lands (unselected features' nowhere).
    let mut column_at = vec![usize::MAX; n_sources];
    for (j, &c) in columns.iter().enumerate() {
        column_at[c] = j;
    }
    let layout = prune::Layout { features: selected.len(), errors: n_layers * n_pos, tokens: n_pos, logits: n_logits };
    debug_assert_eq!(layout.nodes(), n);
    let mut adjacency = prune::Adjacency::zeros(layout);
    rows.for_each(|_, node, cols, values| {
        let Some(i) = layout.row_of_node(position[node]) else { return };
        let at = i * n;
        for (&c, &v) in cols.iter().zip(values) {
            if let Some(&j) = column_at.get(c as usize).filter(|&&j| j != usize::MAX) {
                adjacency.data[at + j] = v;
            }
        }
    })?;
    Ok(Graph { tokens, token_texts, n_layers, active, selected, logits: logit_nodes, adjacency, scan: scan.to_string() })
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_instruction_tuned_gemma_3_skips_its_chat_prefix() {
        assert_eq!(super::leading_positions("google/gemma-3-270m-it"), 4);
        assert_eq!(super::leading_positions("/models/gemma-3-1b-it/"), 4);
        assert_eq!(super::leading_positions("google/gemma-3-270m"), 1);
        assert_eq!(super::leading_positions("gpt2"), 1);
    }
}
