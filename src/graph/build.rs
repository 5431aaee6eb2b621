//! A prompt to a pruned graph, the way `saescope graph` and the explorer's graph view both
//! make one: the replacement model of the prompt, circuit-tracer's attribution, its pruning
//! and scores, and the file in its JSON.

use super::json::{self, File};
use super::replacement::Replacement;
use super::transcoders::Transcoders;
use super::{attribute, prune, Graph, Options};
use crate::pipeline::Engine;
use color_eyre::eyre::Result;

/// What pruning keeps (`--node-threshold`, `--edge-threshold`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prune {
    pub node_threshold: f64,
    pub edge_threshold: f64,
}

impl Default for Prune {
    /// circuit-tracer's defaults.
    fn default() -> Self {
        Self { node_threshold: 0.8, edge_threshold: 0.98 }
    }
}

/// A graph made, with what it took.
pub struct Built {
    pub graph: Graph,
    pub file: File,
    pub replacement_score: f32,
    pub completeness_score: f32,
    pub seconds: f64,
}

impl Built {
    /// The graph view's short form: scores first.
    pub fn short_line(&self) -> String {
        format!(
            "replacement {:.2} · completeness {:.2} · {} of {} features' rows in {:.1} s",
            self.replacement_score,
            self.completeness_score,
            self.graph.selected.len(),
            self.graph.active.len(),
            self.seconds
        )
    }

    /// The line a graph is reported with.
    pub fn line(&self) -> String {
        format!(
            "{} active features, {} feature rows in {:.1} s; replacement score {:.3}, completeness score {:.3}",
            self.graph.active.len(),
            self.graph.selected.len(),
            self.seconds,
            self.replacement_score,
            self.completeness_score
        )
    }
}

/// The graph of the prediction after `ids` over `transcoders` (one per layer); `scan` names
/// the transcoders in the file.
pub fn build(engine: &Engine, transcoders: &Transcoders, ids: &[u32], opts: &Options, p: Prune, slug: &str, scan: &str) -> Result<Built> {
    let start = std::time::Instant::now();
    let text_of = |t: u32| engine.tokenizer.token_strings(&[t]).concat();
    // `attribute` drops the replacement model (its frozen forward, every active feature's
    // write: 1.3 GB over the weights at 1,024 tokens on Gemma 3 270M) before it assembles
    // the adjacency.
    let r = Replacement::new(engine.model.as_ref(), transcoders, ids, opts.skip_positions)?;
    let graph = attribute(r, opts, text_of, scan, engine.tokenizer.token_strings(ids))?;
    let seconds = start.elapsed().as_secs_f64();
    let probs = graph.probs();
    // Scores before pruning: each needs a copy of the adjacency besides the graph's own, and
    // on a long prompt three at once would be past the memory a graph is allowed.
    let (replacement_score, completeness_score) = prune::scores(&graph.adjacency, &probs);
    let pruned = prune::prune(&graph.adjacency, &probs, p.node_threshold as f32, p.edge_threshold as f32);
    let file = json::file(&graph, &pruned, slug, p.node_threshold);
    Ok(Built { graph, file, replacement_score, completeness_score, seconds })
}
