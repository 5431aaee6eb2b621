//! The index in words, for the headless commands: `saescope index`'s summary and the
//! corpus sections of `saescope feature`.

use super::build::Timings;
use super::{ContextWindow, FeatureCorpus, Index, Overview};
use crate::runtime::printable::printable;
use serde::Serialize;

/// Tokens shown on each side of a context's max token.
pub const STRIP: usize = 10;

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub corpus: String,
    pub stored: String,
    pub documents: u64,
    pub windows: u64,
    pub context: usize,
    pub tokens: u64,
    pub skipped_binary_files: usize,
    pub rows_without_text: usize,
    /// Seconds of compute the index took (all runs).
    pub seconds: f64,
    /// Of this run, when it computed: where the time went.
    pub this_run: Option<RunFigures>,
    /// When this run merged shards (`index merge`): how many.
    pub merged_shards: Option<u32>,
    pub layers: Vec<Overview>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunFigures {
    pub load_seconds: f64,
    pub forward_seconds: f64,
    pub encode_seconds: f64,
    pub stats_seconds: f64,
    pub tokens_per_second: f64,
    pub resumed_tokens: u64,
}

impl Summary {
    pub fn new(index: &Index, path: &std::path::Path, timings: Option<&Timings>, resumed_tokens: u64) -> Self {
        // What the statistics cover: the corpus, or a shard's slice of it.
        let indexed = index.layers.first().map_or(index.tokens, |l| l.tokens);
        let this_run = timings.map(|t| {
            let compute = t.forward + t.encode + t.stats;
            RunFigures {
                load_seconds: t.load,
                forward_seconds: t.forward,
                encode_seconds: t.encode,
                stats_seconds: t.stats,
                tokens_per_second: if compute > 0.0 { indexed.saturating_sub(resumed_tokens) as f64 / compute } else { 0.0 },
                resumed_tokens,
            }
        });
        Self {
            corpus: index.corpus.clone(),
            stored: path.display().to_string(),
            documents: index.documents,
            windows: index.windows,
            context: index.context,
            tokens: indexed,
            skipped_binary_files: index.skipped_binary,
            rows_without_text: index.rows_without_text,
            seconds: index.seconds,
            this_run,
            merged_shards: None,
            layers: index.layers.iter().filter_map(|l| index.overview(l.key()?)).collect(),
        }
    }

    pub fn text(&self) -> String {
        let mut s = format!(
            "corpus {}: {} documents, {} windows of up to {} tokens, {} tokens indexed\n",
            printable(&self.corpus),
            self.documents,
            self.windows,
            self.context,
            self.tokens
        );
        if self.skipped_binary_files > 0 || self.rows_without_text > 0 {
            let of = |n, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
            s.push_str(&format!(
                "skipped: {}, {} without text\n",
                of(self.skipped_binary_files, "binary file", "binary files"),
                of(self.rows_without_text, "row", "rows")
            ));
        }
        let w = self.layers.iter().map(|o| o.sae.to_string().len()).max().unwrap_or(3).max(3);
        s.push_str(&format!("\n{:>w$}  features  dead      L0  density (log10 frac_nonzero, -8 .. 0)\n", "sae"));
        for o in &self.layers {
            s.push_str(&format!("{:>w$}  {:>8}  {:>4}  {:>6.1}  {}\n", o.sae.to_string(), o.d_sae, o.dead, o.l0, sparkline(&o.density_counts)));
        }
        match &self.this_run {
            Some(r) => s.push_str(&format!(
                "\ncomputed in {:.1} s ({:.0} tokens/s; load {:.1} s, model {:.1} s, SAE encodes {:.1} s, statistics {:.1} s{})\n",
                r.forward_seconds + r.encode_seconds + r.stats_seconds,
                r.tokens_per_second,
                r.load_seconds,
                r.forward_seconds,
                r.encode_seconds,
                r.stats_seconds,
                if r.resumed_tokens > 0 { format!("; {} tokens from an earlier run", r.resumed_tokens) } else { String::new() }
            )),
            None => match self.merged_shards {
                Some(n) => s.push_str(&format!("\nmerged from {n} shards ({:.1} s of compute in all)\n", self.seconds)),
                None => s.push_str(&format!("\nalready indexed ({:.1} s of compute)\n", self.seconds)),
            },
        }
        s.push_str(&format!("stored in {}\n", self.stored));
        s
    }
}

/// Counts as a row of block characters, tallest = full block.
pub fn sparkline(counts: &[u32]) -> String {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    levels(counts.iter().map(|&c| f64::from(c)), f64::from(max))
}

/// Values as block characters on a scale up to `max` (a full block); `·` for 0 or less.
pub fn levels(values: impl IntoIterator<Item = f64>, max: f64) -> String {
    const BARS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    values.into_iter().map(|v| if v <= 0.0 || v.is_nan() { '·' } else { BARS[((v * 8.0 / max.max(f64::MIN_POSITIVE)).ceil() as usize).clamp(1, 8)] }).collect()
}

/// A context's tokens within `STRIP` of its max, with the max token in [[ ]] so it reads
/// without colour, and … where cut.
pub fn strip(c: &ContextWindow) -> String {
    let (from, to) = strip_range(c);
    let mut s = String::from(if from > 0 { "…" } else { "" });
    for i in from..to {
        let t = printable(&c.tokens[i]);
        if i == c.max_index {
            s.push_str(&format!("[[{t}]]"));
        } else {
            s.push_str(&t);
        }
    }
    if to < c.tokens.len() {
        s.push('…');
    }
    s
}

/// The token range `strip` shows.
pub fn strip_range(c: &ContextWindow) -> (usize, usize) {
    let from = c.max_index.saturating_sub(STRIP);
    (from, (c.max_index + STRIP + 1).min(c.tokens.len()))
}

impl FeatureCorpus {
    /// The card's corpus sections as text.
    pub fn text(&self) -> String {
        let mut s = format!(
            "\ncorpus {} ({} tokens): fires on {} tokens, frac_nonzero {:.3e} (denser than {:.0}% of this SAE's features); max {:.3}, mean when firing {:.3}\n",
            printable(&self.corpus),
            self.tokens,
            self.count,
            self.frac_nonzero,
            self.density_percentile * 100.0,
            self.max,
            self.mean_when_firing
        );
        if !self.histogram_counts.is_empty() {
            s.push_str("\nactivations when firing (log-spaced bins):\n");
            let peak = self.histogram_counts.iter().copied().max().unwrap_or(1).max(1);
            for (i, (&lo, &n)) in self.histogram_edges.iter().zip(&self.histogram_counts).enumerate() {
                let hi = self.histogram_edges.get(i + 1).copied().unwrap_or(lo * 2f64.powf(0.25));
                s.push_str(&format!("  {lo:>8.3} - {hi:>8.3} {n:>7} {}\n", "#".repeat((n as usize * 40).div_ceil(peak as usize))));
            }
        }
        s.push_str("\ntop contexts (max token in [[ ]]):\n");
        for c in &self.top {
            s.push_str(&format!("  {:>8.3}  {}\n", c.max_value, strip(c)));
        }
        if !self.intervals.is_empty() {
            s.push_str("\ninterval samples:\n");
            for iv in &self.intervals {
                s.push_str(&format!("  {:.3} - {:.3}:\n", iv.from, iv.to));
                for c in &iv.contexts {
                    s.push_str(&format!("    {:>8.3}  {}\n", c.max_value, strip(c)));
                }
            }
        }
        s
    }
}
