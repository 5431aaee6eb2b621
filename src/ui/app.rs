//! The explorer's state and how actions change it. No drawing, no terminal, no files and
//! no processes here: `update` returns the effects an action asks for (work for the model
//! thread, an export, a browser), and the event loop carries them out (`ui::perform`), so
//! every key sequence is testable on plain data.

use crate::activations::{ActivationSet, SparseVec};
use crate::analysis::{analyze, Analysis, CategoryLayer, LayerAnalysis};
use crate::card::Card;
use crate::labels::Labels;
use crate::lens::TokenActivations;
use crate::progress::Progress;
use ratatui::layout::Rect;
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

/// How many texts' per-token activations the token view keeps.
const TOKEN_CACHE: usize = 64;

/// What fills the body of the screen. `Main` is the four panes; the others are views of
/// one thing, opened from the main panes and closed with Esc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Main,
    /// One feature's card (Enter on a feature).
    Card,
    /// The focused category's texts token by token for one feature (`t`).
    Tokens,
    /// The seed's findings on the current data (`f`).
    Findings,
    /// Features found by label (`/`).
    Search,
}

/// The input line: what the typed text is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Search,
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub kind: InputKind,
    pub text: String,
}

/// Work for the model thread, queued by `update` and sent by the event loop, so actions
/// stay testable without a model.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Fill in a card's weight-derived parts.
    Card(Box<Card>),
    /// Per-token activations of a text.
    Tokens(String),
    /// Run a text typed by the user as a new category.
    AdHoc(String),
}

/// What an action asks of the world outside the state; the event loop carries it out.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Work for the model thread.
    Worker(Request),
    /// Write the current view's CSV to the export folder.
    Export,
    /// Open this URL in the system's browser.
    OpenUrl(String),
    Quit,
}

/// What the model thread answers.
pub enum Reply {
    Card(Box<Card>),
    Tokens(String, TokenActivations),
    AdHoc(String, TokenActivations),
    Failed(String),
}

/// State of the token view: which of the focused category's texts, which feature.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenView {
    /// Row in the focused category's texts.
    pub row: usize,
    pub feature: u32,
    /// Show each token's value next to it.
    pub values: bool,
}

#[derive(Debug, Clone, PartialEq)]
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
    Click {
        column: u16,
        row: u16,
    },
    /// The mouse wheel over a point: scrolls what is there.
    Wheel {
        column: u16,
        row: u16,
        down: bool,
    },
    /// Enter on a feature: its card.
    OpenCard,
    /// `t`: the token view of the selected feature.
    Tokens,
    /// `f`: the findings.
    Findings,
    /// `/`: search features by label.
    Search,
    /// `i`: type a text of your own.
    InputText,
    /// `o`: open the card's Neuronpedia page.
    OpenUrl,
    /// `v`: token values on or off.
    ToggleValues,
    /// `n` / `p`: next / previous feature of the focused category (token view).
    NextFeature,
    PrevFeature,
    /// Typing on the input line.
    Type(char),
    Paste(String),
    Erase,
    Submit,
}

/// What the background worker hands over when it is done.
pub struct Results {
    pub set: ActivationSet,
    pub analysis: Analysis,
    pub elapsed: Duration,
    /// Texts read back from the result cache instead of computed.
    pub from_cache: usize,
    /// Only the texts computed so far: the panes fill in while the rest computes.
    pub partial: bool,
}

pub struct RunInfo {
    pub model: String,
    pub sae: String,
    pub device: String,
    /// The loaded SAEs' Neuronpedia ids, for links and the tables' column.
    pub ids: crate::neuronpedia::Ids,
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
    /// Neuronpedia explanations (`--labels`).
    pub labels: Labels,
    pub mode: Mode,
    /// Where Esc returns to from the card.
    pub card_from: Mode,
    pub card: Option<Card>,
    /// Scroll offset of the card and findings views.
    pub scroll: usize,
    pub tokens: TokenView,
    /// Per-token activations by text, as the model thread returns them.
    pub token_cache: std::collections::HashMap<String, TokenActivations>,
    pub input: Option<Input>,
    pub search_query: String,
    pub search_row: usize,
    /// Effects of the action being applied, handed back by `update`.
    out: Vec<Effect>,
    /// Texts whose per-token activations were asked for and have not arrived.
    pending_tokens: BTreeSet<String>,
    /// Where the last frame drew what, for clicks (hits.rs).
    pub hits: crate::ui::hits::HitMap,
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
            labels: Labels::default(),
            mode: Mode::Main,
            card_from: Mode::Main,
            card: None,
            scroll: 0,
            tokens: TokenView::default(),
            token_cache: Default::default(),
            input: None,
            search_query: String::new(),
            search_row: 0,
            out: Vec::new(),
            pending_tokens: BTreeSet::new(),
            hits: Default::default(),
        }
    }

    /// The worker's results arrive (partial ones while it computes); labels are checked
    /// against the SAEs' width now known.
    pub fn set_results(&mut self, r: Results) {
        if r.partial {
            if self.results.as_ref().is_none_or(|old| old.partial) {
                self.results = Some(r);
            }
            return;
        }
        let past = self.labels.past(r.set.d_sae);
        if past > 0 {
            self.message = Some(format!("labels: {past} name features past the SAEs' {} features (is the file for these SAEs?)", r.set.d_sae));
        }
        self.results = Some(r);
    }

    /// The feature selected in the focused table (the focused category's row).
    pub fn selected_feature(&self) -> Option<u32> {
        let c = self.table_categories().first().copied()?;
        self.metrics(c)?.ranked.get(self.row).map(|t| t.feature)
    }

    /// Indices (into the set's texts) of the focused category's texts.
    pub fn focused_texts(&self) -> Vec<usize> {
        self.results.as_ref().map_or_else(Vec::new, |r| (0..r.set.texts.len()).filter(|&i| r.set.texts[i].category == self.focused).collect())
    }

    /// The text the token view shows, if any.
    pub fn token_text(&self) -> Option<&str> {
        let i = *self.focused_texts().get(self.tokens.row)?;
        self.results.as_ref().map(|r| r.set.texts[i].text.as_str())
    }

    /// Features whose label matches the search, by layer then id.
    pub fn search_hits(&self) -> Vec<(usize, u32, &str)> {
        self.labels.search(&self.search_query)
    }

    fn open_card(&mut self, layer: usize, feature: u32) {
        let Some(r) = &self.results else {
            self.message = Some("results are still computing".into());
            return;
        };
        match Card::from_set(&r.set, &self.labels, layer, feature) {
            Ok(card) => {
                self.out.push(Effect::Worker(Request::Card(Box::new(card.clone()))));
                self.card = Some(card);
                if self.mode != Mode::Card {
                    self.card_from = self.mode;
                }
                self.mode = Mode::Card;
                self.scroll = 0;
            }
            Err(e) => self.message = Some(e.to_string()),
        }
    }

    /// Asks for the token view's current text unless it is known already.
    fn want_tokens(&mut self) {
        if let Some(t) = self.token_text().map(String::from) {
            if !self.token_cache.contains_key(&t) && self.pending_tokens.insert(t.clone()) {
                self.out.push(Effect::Worker(Request::Tokens(t)));
            }
        }
    }

    fn step_feature(&mut self, by: isize) {
        let Some(m) = self.metrics(self.focused) else { return };
        let ranked: Vec<u32> = m.ranked.iter().map(|t| t.feature).collect();
        let i = ranked.iter().position(|&f| f == self.tokens.feature).map_or(0, |i| (i as isize + by).clamp(0, ranked.len() as isize - 1) as usize);
        if let Some(&f) = ranked.get(i) {
            self.tokens.feature = f;
        }
    }

    /// Per-token activations are held for the texts looked at recently, not for every text
    /// ever stepped through: a long text at 13 layers is megabytes.
    fn keep_tokens(&mut self, text: String, acts: TokenActivations) {
        if self.token_cache.len() >= TOKEN_CACHE {
            let current = self.token_text().map(String::from);
            self.token_cache.retain(|t, _| Some(t) == current.as_ref());
        }
        self.token_cache.insert(text, acts);
    }

    /// Applies what the model thread sent back.
    pub fn receive(&mut self, reply: Reply) {
        match reply {
            Reply::Card(card) => {
                if self.card.as_ref().is_some_and(|c| (c.layer, c.feature) == (card.layer, card.feature)) {
                    self.card = Some(*card);
                }
            }
            Reply::Tokens(text, acts) => {
                self.pending_tokens.remove(&text);
                self.keep_tokens(text, acts)
            }
            Reply::AdHoc(text, acts) => self.add_own_text(text, acts),
            Reply::Failed(e) => self.message = Some(e),
        }
    }

    /// Your text becomes a category of its own: its mean vector per layer (encode-then-
    /// mean over its tokens, as for every sample) joins the set and the analysis is redone;
    /// nothing else is recomputed.
    fn add_own_text(&mut self, text: String, acts: TokenActivations) {
        let Some(r) = self.results.as_mut() else { return };
        let n = self.categories.iter().filter(|c| c.0.starts_with("Your text")).count();
        let name = if n == 0 { "Your text".to_string() } else { format!("Your text {}", n + 1) };
        let means: Vec<SparseVec> = acts.means();
        let c = r.set.add_category(name.clone());
        let n_tokens = acts.tokens.len();
        r.set.push(c, text.clone(), n_tokens, means);
        r.analysis = analyze(&r.set, r.analysis.params);
        self.categories.push((name.clone(), 1));
        self.message = Some(if acts.truncated > 0 {
            format!("{name}: {} tokens were past n_ctx and left out; the first {n_tokens} ran", acts.truncated)
        } else {
            format!("{name}: {n_tokens} tokens")
        });
        self.keep_tokens(text, acts);
        self.focused = c;
        self.cursor = c;
        self.marked.clear();
        self.tokens = TokenView { row: 0, feature: self.metrics(c).and_then(|m| m.top.first()).map_or(0, |t| t.feature), values: self.tokens.values };
        self.mode = Mode::Tokens;
    }

    /// Keys that mean something else outside the main panes; true when handled here.
    fn update_mode(&mut self, action: &Action) -> bool {
        match (self.mode, action) {
            (_, Action::Click { column, row }) => self.click(*column, *row),
            (_, Action::Wheel { column, row, down }) => self.wheel(*column, *row, *down),
            (Mode::Card | Mode::Findings, Action::Up) => self.scroll = self.scroll.saturating_sub(1),
            (Mode::Card | Mode::Findings, Action::Down) => self.scroll += 1,
            (Mode::Card | Mode::Findings, Action::PageUp) => self.scroll = self.scroll.saturating_sub(10),
            (Mode::Card | Mode::Findings, Action::PageDown) => self.scroll += 10,
            (Mode::Card | Mode::Findings, Action::Home) => self.scroll = 0,
            (Mode::Card, Action::OpenUrl) => match self.card.as_ref().map(|c| c.neuronpedia_url.clone()) {
                Some(Some(url)) => self.out.push(Effect::OpenUrl(url)),
                Some(None) => self.message = Some("no Neuronpedia page is known for this SAE (its cfg.json names no neuronpedia_id)".into()),
                None => {}
            },
            (Mode::Card, Action::Tokens) => {
                if let Some(c) = &self.card {
                    if let Some(i) = self.layers.iter().position(|&l| l == c.layer) {
                        self.layer_idx = i;
                    }
                    self.tokens = TokenView { row: 0, feature: c.feature, values: self.tokens.values };
                    self.mode = Mode::Tokens;
                    self.want_tokens();
                }
            }
            (Mode::Card, Action::NextLayer | Action::PrevLayer | Action::Layer(_)) => {}
            (Mode::Tokens, Action::Up | Action::Down | Action::Home | Action::End | Action::PageUp | Action::PageDown) => {
                let n = self.focused_texts().len();
                let by: isize = match action {
                    Action::Up => -1,
                    Action::Down => 1,
                    Action::PageUp => -10,
                    Action::PageDown => 10,
                    Action::Home => -(1 << 20),
                    _ => 1 << 20,
                };
                self.tokens.row = (self.tokens.row as isize + by).clamp(0, n.saturating_sub(1) as isize) as usize;
                self.want_tokens();
            }
            (Mode::Tokens, Action::NextFeature) => self.step_feature(1),
            (Mode::Tokens, Action::PrevFeature) => self.step_feature(-1),
            (Mode::Tokens, Action::ToggleValues) => self.tokens.values = !self.tokens.values,
            (Mode::Tokens, Action::OpenCard | Action::FocusCategory) => self.open_card(self.layer(), self.tokens.feature),
            (Mode::Search, Action::Up) => self.search_row = self.search_row.saturating_sub(1),
            (Mode::Search, Action::Down) => self.search_row = (self.search_row + 1).min(self.search_hits().len().saturating_sub(1)),
            (Mode::Search, Action::OpenCard | Action::FocusCategory) => {
                if let Some(&(layer, f, _)) = self.search_hits().get(self.search_row) {
                    self.open_card(layer, f);
                }
            }
            (Mode::Search, Action::Search) => self.input = Some(Input { kind: InputKind::Search, text: self.search_query.clone() }),
            _ => return false,
        }
        true
    }

    /// Keys while the input line is open.
    fn update_input(&mut self, action: Action) {
        let Some(input) = self.input.as_mut() else { return };
        match action {
            Action::Type(c) => input.text.push(c),
            // Terminals paste line breaks as CR; the model should see the text's newlines.
            Action::Paste(s) => input.text.push_str(&s.replace("\r\n", "\n").replace('\r', "\n")),
            Action::Erase => {
                input.text.pop();
            }
            Action::Back => {
                self.input = None;
                return;
            }
            Action::Submit => {
                let Some(input) = self.input.take() else { return };
                match input.kind {
                    InputKind::Search => self.search_row = 0,
                    InputKind::Text if input.text.trim().is_empty() => self.message = Some("nothing to run: type a text, then Enter".into()),
                    InputKind::Text if self.results.as_ref().is_none_or(|r| r.partial) => {
                        self.message = Some("results are still computing; try again when they are complete".into())
                    }
                    InputKind::Text => {
                        self.message = Some(format!("running your text ({} characters)…", input.text.chars().count()));
                        self.out.push(Effect::Worker(Request::AdHoc(input.text)));
                    }
                }
                return;
            }
            Action::Quit => self.quit(),
            _ => {}
        }
        if let Some(Input { kind: InputKind::Search, text }) = &self.input {
            self.search_query = text.clone();
            self.search_row = 0;
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
        self.chart_categories().iter().filter_map(|&c| self.metrics(c)).flat_map(|m| m.top.iter().map(|t| t.feature)).filter(|f| seen.insert(*f)).collect()
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

    fn move_by(&mut self, by: isize) {
        let clamp = |v: usize, len: usize| -> usize { (v as isize + by).clamp(0, len.saturating_sub(1) as isize) as usize };
        match self.pane {
            Pane::Categories => self.cursor = clamp(self.cursor, self.categories.len()),
            Pane::Features => self.row = clamp(self.row, self.table_len()),
            Pane::Matrix => self.matrix_row = clamp(self.matrix_row, self.matrix_features().len()),
            Pane::Charts => {}
        }
    }

    /// Applies an action; returns what it asks the event loop to do.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        self.apply(action);
        std::mem::take(&mut self.out)
    }

    fn quit(&mut self) {
        self.quit = true;
        self.out.push(Effect::Quit);
    }

    fn apply(&mut self, action: Action) {
        if self.input.is_some() {
            self.update_input(action);
            return;
        }
        if self.help && !matches!(action, Action::ToggleHelp | Action::Back | Action::Quit) {
            return;
        }
        if self.mode != Mode::Main && self.update_mode(&action) {
            return;
        }
        let n_layers = self.layers.len().max(1);
        match action {
            Action::Quit => self.quit(),
            Action::Back if self.help => self.help = false,
            Action::Back if self.mode == Mode::Card => {
                self.mode = self.card_from;
                self.scroll = 0;
            }
            Action::Back if self.mode != Mode::Main => self.mode = Mode::Main,
            Action::Back => self.quit(),
            Action::OpenCard => match self.selected_feature() {
                Some(f) => self.open_card(self.layer(), f),
                None => self.message = Some("no feature selected".into()),
            },
            Action::FocusCategory if self.pane == Pane::Features => self.apply(Action::OpenCard),
            Action::Tokens => match self.selected_feature() {
                Some(f) if self.results.is_some() => {
                    self.tokens = TokenView { row: 0, feature: f, values: self.tokens.values };
                    self.mode = Mode::Tokens;
                    self.want_tokens();
                }
                _ => self.message = Some("no feature selected yet".into()),
            },
            Action::Findings => {
                self.mode = Mode::Findings;
                self.scroll = 0;
            }
            Action::Search => {
                self.mode = Mode::Search;
                if self.labels.is_empty() {
                    self.message = Some("no labels loaded: start saescope with --labels FILE (a Neuronpedia export)".into());
                }
                self.input = Some(Input { kind: InputKind::Search, text: self.search_query.clone() });
            }
            Action::InputText => self.input = Some(Input { kind: InputKind::Text, text: String::new() }),
            Action::OpenUrl | Action::ToggleValues | Action::NextFeature | Action::PrevFeature => {}
            Action::Type(_) | Action::Paste(_) | Action::Erase | Action::Submit => {}
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
            Action::Export => self.out.push(Effect::Export),
            Action::Click { column, row } => self.click(column, row),
            Action::Wheel { column, row, down } => self.wheel(column, row, down),
        }
        // Rows stay put across layers, but never point past the end.
        self.row = self.row.min(self.table_len().saturating_sub(1));
        self.matrix_row = self.matrix_row.min(self.matrix_features().len().saturating_sub(1));
    }

    /// A click selects what the last frame drew under the pointer.
    fn click(&mut self, column: u16, row: u16) {
        use crate::ui::hits::Target;
        let Some(target) = self.hits.at(column, row) else { return };
        if let Some(p) = target.pane() {
            self.pane = p;
        }
        match target {
            Target::Tab(i) => self.layer_idx = i,
            Target::Category(i) => self.cursor = i,
            Target::FeatureRow(i) => self.row = i,
            Target::SearchHit(i) => self.search_row = i,
            Target::TokenText(i) => {
                self.tokens.row = i;
                self.want_tokens();
            }
            Target::Pane(_) => {}
        }
    }

    /// The wheel scrolls the pane under the pointer (the focused view outside the main panes).
    fn wheel(&mut self, column: u16, row: u16, down: bool) {
        if self.mode == Mode::Main {
            match self.hits.at(column, row).and_then(|t| t.pane()) {
                Some(p) => self.pane = p,
                None => return,
            }
        }
        self.apply(if down { Action::Down } else { Action::Up });
    }
}
