//! What every screen shares and reads: the run, its results and labels, the SAE on view,
//! the focused and marked categories, per-token activations already computed, and the
//! status line. Screens draw from `&Context` and change only their own state, except for
//! the few shared selections an action is about (the SAE, focus, marks).

use crate::analysis::{CategoryLayer, SaeAnalysis};
use crate::interp::lens::TokenActivations;
use crate::neuronpedia::labels::Labels;
use crate::runtime::progress::Progress;
use crate::sae::key::SaeKey;
use crate::ui::action::{Results, RunInfo};
use ratatui::layout::Rect;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

/// How `index_note` starts while the index is being built.
pub const INDEXING: &str = "indexing";

/// How many texts' per-token activations are kept.
const TOKEN_CACHE: usize = 64;

pub struct Context {
    /// The run's SAEs, one tab each: planned from the command line until the results name
    /// them (`App::set_results`).
    pub saes: Vec<SaeKey>,
    pub sae_idx: usize,
    /// (name, number of texts), known from the samples before any result.
    pub categories: Vec<(String, usize)>,
    /// The category whose feature table is shown (Enter).
    pub focused: usize,
    pub marked: BTreeSet<usize>,
    pub results: Option<Results>,
    pub progress: Option<Progress>,
    pub eta: crate::runtime::progress::Eta,
    pub error: Option<String>,
    /// One-line status message (export path, export error).
    pub message: Option<String>,
    pub info: RunInfo,
    pub export_dir: PathBuf,
    /// The terminal's size at the last draw.
    pub size: Rect,
    /// Neuronpedia explanations (`--labels`).
    pub labels: Labels,
    /// Per-token activations by text, as the model thread returns them.
    pub token_cache: HashMap<String, TokenActivations>,
    /// Texts whose per-token activations were asked for and have not arrived.
    pub pending_tokens: BTreeSet<String>,
    /// Texts whose per-token activations the model thread could not compute, and why.
    pub failed_tokens: HashMap<String, String>,
    /// Features to steer generation with (`s` on a card), and how.
    pub steering: Vec<crate::interp::steer::Steer>,
    pub steer_mode: crate::interp::steer::Edit,
    /// `--corpus`, when given: its label.
    pub corpus: Option<String>,
    /// The corpus's index once the model thread has it (docs/dashboards.md).
    pub index: Option<std::sync::Arc<crate::dashboard::Index>>,
    /// Why there is no index: still indexing, or failed.
    pub index_note: Option<String>,
    /// `--versus-model`: the second run the findings view sets beside this one.
    pub versus: Option<Versus>,
    /// `--neuronpedia`: each SAE's numbers at a glance, once the model thread read the dump.
    pub neuronpedia: crate::ui::worker::NpOverviews,
    /// The open questions on the samples, asked for when the findings view first opens.
    pub questions: Option<Asked<Box<crate::analysis::questions::OpenQuestions>>>,
    /// Each SAE's quality on the samples, asked for when the overview shows it.
    pub quality: BTreeMap<SaeKey, Asked<Box<crate::analysis::eval::Quality>>>,
    /// The transcoders graphs are made over (`--transcoders`), by folder name; None: no graphs.
    pub transcoders: Option<String>,
}

/// Something asked of the model thread: on its way, in, or failed and why.
#[derive(Debug, Clone, PartialEq)]
pub enum Asked<T> {
    Pending,
    Ready(T),
    Failed(String),
}

/// A second run (another model, other SAEs, the same samples) whose findings the model
/// thread computes after this run's results.
#[derive(Debug, Clone, PartialEq)]
pub struct Versus {
    /// Each run's name, this run's first.
    pub labels: [String; 2],
    /// The second run's findings once the model thread has them, or why not; None until then.
    pub findings: Option<std::result::Result<Vec<crate::analysis::findings::Finding>, String>>,
}

impl Context {
    pub fn new(categories: Vec<(String, usize)>, saes: Vec<SaeKey>, info: RunInfo, export_dir: PathBuf) -> Self {
        Self {
            saes,
            sae_idx: 0,
            categories,
            focused: 0,
            marked: BTreeSet::new(),
            results: None,
            progress: None,
            eta: Default::default(),
            error: None,
            message: None,
            info,
            export_dir,
            size: Rect::new(0, 0, 80, 24),
            labels: Labels::default(),
            token_cache: HashMap::new(),
            pending_tokens: BTreeSet::new(),
            failed_tokens: HashMap::new(),
            steering: Vec::new(),
            steer_mode: crate::interp::steer::Edit::Add,
            corpus: None,
            index: None,
            index_note: None,
            versus: None,
            neuronpedia: Default::default(),
            questions: None,
            quality: BTreeMap::new(),
            transcoders: None,
        }
    }

    /// The study's findings by run, claim by claim, then the open questions' answers once
    /// measured: this run's, and beside them the second run's once they are in
    /// (`--versus-model`; answers show when both runs have them); None before any result.
    pub fn findings(&self) -> Option<Vec<crate::analysis::findings::SideBySide>> {
        let r = self.results.as_ref()?;
        let mut mine = crate::analysis::findings::findings(&r.analysis, &r.set.categories);
        if let Some(Asked::Ready(q)) = &self.questions {
            mine.extend(q.answers());
        }
        let mut runs = vec![(self.versus.as_ref().map_or_else(|| self.info.model.clone(), |v| v.labels[0].clone()), mine)];
        if let Some(Versus { labels, findings: Some(Ok(theirs)) }) = &self.versus {
            runs.push((labels[1].clone(), theirs.clone()));
        }
        Some(crate::analysis::findings::side_by_side(&runs))
    }

    /// The model thread is building the corpus index.
    pub fn indexing(&self) -> bool {
        self.corpus.is_some() && self.index.is_none() && self.index_note.as_deref().is_some_and(|n| n.starts_with(INDEXING))
    }

    /// The SAE on view (a zero key before any SAE is known).
    pub fn sae(&self) -> SaeKey {
        self.saes.get(self.sae_idx).copied().unwrap_or(SaeKey::new(crate::model::hooks::HookPoint::new(0, crate::model::hooks::Site::ResidPre), 0))
    }

    pub fn sae_analysis(&self) -> Option<&SaeAnalysis> {
        self.results.as_ref()?.analysis.of(self.sae())
    }

    pub fn metrics(&self, category: usize) -> Option<&CategoryLayer> {
        self.sae_analysis()?.categories.get(category)
    }

    pub fn elapsed(&self) -> Option<Duration> {
        self.results.as_ref().map(|r| r.elapsed)
    }

    /// Categories whose feature tables are shown: the marked ones side by side when two or
    /// more are marked, else the focused one.
    pub fn table_categories(&self) -> Vec<usize> {
        if self.marked.len() >= 2 {
            self.marked.iter().copied().collect()
        } else {
            vec![self.focused]
        }
    }

    /// Categories drawn in the charts and matrix: the marked ones, else the focused one.
    pub fn chart_categories(&self) -> Vec<usize> {
        if self.marked.is_empty() {
            vec![self.focused]
        } else {
            self.marked.iter().copied().collect()
        }
    }

    /// Rows of the specialist matrix: the union of the chart categories' top-k features.
    pub fn matrix_features(&self) -> Vec<u32> {
        let mut seen = BTreeSet::new();
        self.chart_categories().iter().filter_map(|&c| self.metrics(c)).flat_map(|m| m.top.iter().map(|t| t.feature)).filter(|f| seen.insert(*f)).collect()
    }

    /// Features listed in the tables of at least two compared categories.
    pub fn shared_features(&self) -> BTreeSet<u32> {
        let cats = self.table_categories();
        if cats.len() < 2 {
            return BTreeSet::new();
        }
        let mut count = HashMap::new();
        for m in cats.iter().filter_map(|&c| self.metrics(c)) {
            for t in &m.ranked {
                *count.entry(t.feature).or_insert(0) += 1;
            }
        }
        count.into_iter().filter(|&(_, n)| n >= 2).map(|(f, _)| f).collect()
    }

    /// Rows of the longest feature table on view.
    pub fn table_len(&self) -> usize {
        self.table_categories().iter().filter_map(|&c| self.metrics(c)).map(|m| m.ranked.len()).max().unwrap_or(0)
    }

    /// Indices (into the set's texts) of the focused category's texts.
    pub fn focused_texts(&self) -> Vec<usize> {
        self.results.as_ref().map_or_else(Vec::new, |r| (0..r.set.texts.len()).filter(|&i| r.set.texts[i].category == self.focused).collect())
    }

    /// The focused category's text at `row`, if any.
    pub fn focused_text(&self, row: usize) -> Option<&str> {
        let i = *self.focused_texts().get(row)?;
        self.results.as_ref().map(|r| r.set.texts[i].text.as_str())
    }

    /// Per-token activations are held for the texts looked at recently, not for every text
    /// ever stepped through: a long text at 13 layers is megabytes. `current` is kept.
    pub fn keep_tokens(&mut self, text: String, acts: TokenActivations, current: Option<&str>) {
        self.pending_tokens.remove(&text);
        if self.token_cache.len() >= TOKEN_CACHE {
            self.token_cache.retain(|t, _| Some(t.as_str()) == current);
        }
        self.token_cache.insert(text, acts);
    }

    /// Whether the per-token activations of `text` must still be asked for (and notes
    /// that they now are).
    pub fn ask_tokens(&mut self, text: &str) -> bool {
        !self.token_cache.contains_key(text) && self.pending_tokens.insert(text.to_string())
    }
}
