//! The explorer's state and how actions change it. No drawing and no terminal here, so
//! every key sequence is testable on plain data.

use crate::activations::ActivationSet;
use crate::analysis::{Analysis, CategoryLayer, LayerAnalysis};
use crate::progress::Progress;
use crate::ui::layout::{areas, Areas};
use ratatui::layout::{Position, Rect};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Categories,
    Features,
    Charts,
    Matrix,
}

impl Pane {
    const ORDER: [Pane; 4] = [Pane::Categories, Pane::Features, Pane::Charts, Pane::Matrix];
    fn step(self, by: isize) -> Pane {
        let i = Self::ORDER.iter().position(|&p| p == self).unwrap_or(0) as isize;
        Self::ORDER[(i + by).rem_euclid(Self::ORDER.len() as isize) as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    NextLayer,
    PrevLayer,
    /// Index into the layer tabs.
    Layer(usize),
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    ToggleMark,
    FocusCategory,
    NextPane,
    PrevPane,
    ToggleHelp,
    /// Esc: closes the help overlay if open, else quits.
    Back,
    Export,
    Click { column: u16, row: u16 },
}

/// What the background worker hands over when it is done.
pub struct Results {
    pub set: ActivationSet,
    pub analysis: Analysis,
    pub elapsed: Duration,
    /// Texts read back from the result cache instead of computed.
    pub from_cache: usize,
}

pub struct RunInfo {
    pub model: String,
    pub sae: String,
    pub device: String,
}

pub struct App {
    pub layers: Vec<usize>,
    pub layer_idx: usize,
    /// (name, number of texts), known from the samples before any result.
    pub categories: Vec<(String, usize)>,
    /// Highlighted row of the category list.
    pub cursor: usize,
    /// The category whose feature table is shown (Enter).
    pub focused: usize,
    pub marked: BTreeSet<usize>,
    pub pane: Pane,
    /// Selected row of the feature table; kept across layers.
    pub row: usize,
    /// First visible row of the matrix.
    pub matrix_row: usize,
    pub results: Option<Results>,
    pub progress: Option<Progress>,
    pub eta: crate::progress::Eta,
    pub error: Option<String>,
    /// One-line status message (export path, export error).
    pub message: Option<String>,
    pub help: bool,
    pub quit: bool,
    pub info: RunInfo,
    pub export_dir: PathBuf,
    /// The terminal's size at the last draw: mouse clicks are resolved against it.
    pub size: Rect,
}

impl App {
    pub fn new(categories: Vec<(String, usize)>, layers: Vec<usize>, info: RunInfo, export_dir: PathBuf) -> Self {
        Self {
            layers,
            layer_idx: 0,
            categories,
            cursor: 0,
            focused: 0,
            marked: BTreeSet::new(),
            pane: Pane::Categories,
            row: 0,
            matrix_row: 0,
            results: None,
            progress: None,
            eta: Default::default(),
            error: None,
            message: None,
            help: false,
            quit: false,
            info,
            export_dir,
            size: Rect::new(0, 0, 80, 24),
        }
    }

    pub fn layer(&self) -> usize {
        self.layers.get(self.layer_idx).copied().unwrap_or(0)
    }

    pub fn layer_analysis(&self) -> Option<&LayerAnalysis> {
        self.results.as_ref()?.analysis.layer(self.layer())
    }

    pub fn metrics(&self, category: usize) -> Option<&CategoryLayer> {
        self.layer_analysis()?.categories.get(category)
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
        self.chart_categories()
            .iter()
            .filter_map(|&c| self.metrics(c))
            .flat_map(|m| m.top.iter().map(|t| t.feature))
            .filter(|f| seen.insert(*f))
            .collect()
    }

    /// Features listed in the tables of at least two compared categories.
    pub fn shared_features(&self) -> BTreeSet<u32> {
        let cats = self.table_categories();
        if cats.len() < 2 {
            return BTreeSet::new();
        }
        let mut count = std::collections::HashMap::new();
        for m in cats.iter().filter_map(|&c| self.metrics(c)) {
            for t in &m.ranked {
                *count.entry(t.feature).or_insert(0) += 1;
            }
        }
        count.into_iter().filter(|&(_, n)| n >= 2).map(|(f, _)| f).collect()
    }

    fn table_len(&self) -> usize {
        self.table_categories().iter().filter_map(|&c| self.metrics(c)).map(|m| m.ranked.len()).max().unwrap_or(0)
    }

    pub fn elapsed(&self) -> Option<Duration> {
        self.results.as_ref().map(|r| r.elapsed)
    }

    fn areas(&self) -> Areas {
        areas(self.size)
    }

    fn move_by(&mut self, by: isize) {
        let clamp = |v: usize, len: usize| -> usize { (v as isize + by).clamp(0, len.saturating_sub(1) as isize) as usize };
        match self.pane {
            Pane::Categories => self.cursor = clamp(self.cursor, self.categories.len()),
            Pane::Features => self.row = clamp(self.row, self.table_len()),
            Pane::Matrix => self.matrix_row = clamp(self.matrix_row, self.matrix_features().len()),
            Pane::Charts => {}
        }
    }

    pub fn update(&mut self, action: Action) {
        if self.help && !matches!(action, Action::ToggleHelp | Action::Back | Action::Quit) {
            return;
        }
        let n_layers = self.layers.len().max(1);
        match action {
            Action::Quit => self.quit = true,
            Action::Back if self.help => self.help = false,
            Action::Back => self.quit = true,
            Action::ToggleHelp => self.help = !self.help,
            Action::NextLayer => self.layer_idx = (self.layer_idx + 1) % n_layers,
            Action::PrevLayer => self.layer_idx = (self.layer_idx + n_layers - 1) % n_layers,
            Action::Layer(i) if i < self.layers.len() => self.layer_idx = i,
            Action::Layer(_) => {}
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-10),
            Action::PageDown => self.move_by(10),
            Action::Home => self.move_by(-(1 << 20)),
            Action::End => self.move_by(1 << 20),
            Action::ToggleMark => {
                if !self.marked.remove(&self.cursor) {
                    self.marked.insert(self.cursor);
                }
            }
            Action::FocusCategory => {
                self.focused = self.cursor;
                self.marked.clear();
            }
            Action::NextPane => self.pane = self.pane.step(1),
            Action::PrevPane => self.pane = self.pane.step(-1),
            Action::Export => self.message = Some(match crate::ui::export::export(self) {
                Ok(path) => format!("exported {}", path.display()),
                Err(e) => format!("export failed: {e}"),
            }),
            Action::Click { column, row } => self.click(column, row),
        }
        // Rows stay put across layers, but never point past the end.
        self.row = self.row.min(self.table_len().saturating_sub(1));
        self.matrix_row = self.matrix_row.min(self.matrix_features().len().saturating_sub(1));
    }

    fn click(&mut self, column: u16, row: u16) {
        let a = self.areas();
        let p = Position { x: column, y: row };
        if a.tabs.contains(p) {
            if let Some(i) = crate::ui::panes::tabs::hit(self, a.tabs, column) {
                self.layer_idx = i;
            }
        } else if a.categories.contains(p) {
            self.pane = Pane::Categories;
            // Inside the border, one row per category.
            let i = row.saturating_sub(a.categories.y + 1) as usize;
            if row > a.categories.y && i < self.categories.len() {
                self.cursor = i;
            }
        } else if a.features.contains(p) {
            self.pane = Pane::Features;
            // Border, metrics line, column header, then rows.
            let first = a.features.y + 3;
            if row >= first && ((row - first) as usize) < self.table_len() {
                self.row = (row - first) as usize;
            }
        } else if a.charts.contains(p) {
            self.pane = Pane::Charts;
        } else if a.matrix.contains(p) {
            self.pane = Pane::Matrix;
        }
    }
}
