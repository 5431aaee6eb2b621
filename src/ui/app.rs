//! The explorer's state and how actions change it. No drawing, no terminal, no files and
//! no processes here: `update` returns the effects an action asks for (work for the model
//! thread, an export, a browser), and the event loop carries them out (`ui::perform`), so
//! every key sequence is testable on plain data.

use crate::activations::SparseVec;
use crate::analysis::analyze;
use crate::interp::card::Card;
use crate::interp::lens::TokenActivations;
pub use crate::ui::action::{Action, Effect, Input, InputKind, Mode, Pane, Reply, Results, RunInfo, WorkerRequest};
use crate::ui::context::Asked;
use crate::ui::context::Context;
use crate::ui::hits::HitMap;
use crate::ui::screens::{AttributeScreen, CardScreen, FindingsScreen, GraphScreen, MainScreen, Screen, ScreenStep, SearchScreen, TokensScreen};
use std::path::PathBuf;

pub struct App {
    /// What every screen shares (results, labels, layer, focus...); `App` derefs to it.
    pub ctx: Context,
    /// Never empty: the main screen at the bottom, the open views above it.
    screens: Vec<Screen>,
    pub input: Option<Input>,
    pub help: bool,
    /// The help overlay's first row shown.
    pub help_scroll: usize,
    pub quit: bool,
    /// Where the last frame drew what, for clicks (hits.rs).
    pub hits: HitMap,
    /// Effects of the action being applied, handed back by `update`.
    out: Vec<Effect>,
}

impl std::ops::Deref for App {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl std::ops::DerefMut for App {
    fn deref_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }
}

impl App {
    pub fn new(categories: Vec<(String, usize)>, saes: Vec<crate::sae::key::SaeKey>, info: RunInfo, export_dir: PathBuf) -> Self {
        Self {
            ctx: Context::new(categories, saes, info, export_dir),
            screens: vec![Screen::Main(MainScreen::default())],
            input: None,
            help: false,
            help_scroll: 0,
            quit: false,
            hits: HitMap::default(),
            out: Vec::new(),
        }
    }

    /// The screen on top.
    pub fn screen(&self) -> &Screen {
        self.screens.last().unwrap_or(&self.screens[0])
    }

    pub fn mode(&self) -> Mode {
        self.screen().mode()
    }

    /// The main screen (always at the bottom).
    pub fn main(&self) -> &MainScreen {
        match &self.screens[0] {
            Screen::Main(m) => m,
            _ => unreachable!("the main screen is at the bottom"),
        }
    }

    fn main_mut(&mut self) -> &mut MainScreen {
        match &mut self.screens[0] {
            Screen::Main(m) => m,
            _ => unreachable!("the main screen is at the bottom"),
        }
    }

    /// The card on top, if a card is on top.
    pub fn card(&self) -> Option<&Card> {
        match self.screen() {
            Screen::Card(c) => Some(&c.card),
            _ => None,
        }
    }

    pub fn card_screen(&self) -> Option<&CardScreen> {
        match self.screen() {
            Screen::Card(c) => Some(c),
            _ => None,
        }
    }

    pub fn tokens_view(&self) -> Option<&TokensScreen> {
        match self.screen() {
            Screen::Tokens(t) => Some(t),
            _ => None,
        }
    }

    pub fn search_view(&self) -> Option<&SearchScreen> {
        match self.screen() {
            Screen::Search(s) => Some(s),
            _ => None,
        }
    }

    pub fn findings_view(&self) -> Option<&FindingsScreen> {
        match self.screen() {
            Screen::Findings(s) => Some(s),
            _ => None,
        }
    }

    /// The feature selected in the main screen's focused table.
    pub fn selected_feature(&self) -> Option<u32> {
        self.main().selected_feature(&self.ctx)
    }

    /// The text the token view on top shows, if any.
    pub fn token_text(&self) -> Option<&str> {
        self.tokens_view().and_then(|t| t.text(&self.ctx))
    }

    /// Features whose label matches the search on top, then those whose top contexts peak
    /// on the query's token.
    pub fn search_hits(&self) -> Vec<(crate::sae::key::SaeKey, u32, String)> {
        self.search_view().map_or_else(Vec::new, |s| s.hits(&self.ctx))
    }

    /// The worker's results arrive (partial ones while it computes). The first names the
    /// SAEs as found: the tabs and labels planned from the command line settle on them.
    pub fn set_results(&mut self, r: Results) {
        if r.set.saes != self.ctx.saes {
            let past = self.ctx.labels.settle(&self.ctx.saes, &r.set.saes);
            if past > 0 {
                self.ctx.message = Some(format!("labels: {past} name features past their SAE's width (is the file for these SAEs?)"));
            }
            self.ctx.saes = r.set.saes.clone();
            self.ctx.sae_idx = self.ctx.sae_idx.min(self.ctx.saes.len().saturating_sub(1));
            self.ctx.info.ids = r.set.neuronpedia.clone();
        }
        if r.partial && self.ctx.results.as_ref().is_some_and(|old| !old.partial) {
            return;
        }
        self.ctx.results = Some(r);
    }

    /// The corpus index arrives (or why it could not be built).
    pub fn set_index(&mut self, r: std::result::Result<std::sync::Arc<crate::dashboard::Index>, String>) {
        match r {
            Ok(index) => {
                self.ctx.message = Some(format!("corpus indexed: {} tokens in {} windows; O for the SAE overview", index.tokens, index.windows));
                self.ctx.index = Some(index);
                self.ctx.index_note = None;
            }
            Err(why) => {
                self.ctx.message = Some(format!("corpus index failed: {why}"));
                self.ctx.index_note = Some(format!("the corpus index failed: {why}"));
            }
        }
    }

    /// The second run's findings arrive (or why they could not be computed).
    pub fn set_versus(&mut self, r: std::result::Result<Vec<crate::analysis::findings::Finding>, String>) {
        if let Some(v) = self.ctx.versus.as_mut() {
            self.ctx.message = Some(match &r {
                Ok(_) => "the second run is in: f sets its findings beside this run's".to_string(),
                Err(why) => format!("the second run failed: {why}"),
            });
            v.findings = Some(r);
        }
    }

    /// Applies what the model thread sent back.
    pub fn receive(&mut self, reply: Reply) {
        // Steering streams its steps; only the last reply ends the run.
        let last = !matches!(reply, Reply::SteerProgress(_));
        match reply {
            Reply::Card(card) => {
                // The card may be under another view by now: fill it in wherever it is, and
                // its contexts' shading into any context view opened from it.
                let shaded = card.corpus.as_ref().map_or_else(Vec::new, |c| c.contexts());
                for s in &mut self.screens {
                    match s {
                        Screen::Card(c) if (c.card.sae, c.card.feature) == (card.sae, card.feature) => c.card = (*card).clone(),
                        Screen::Context(v) if (v.sae, v.feature) == (card.sae, card.feature) => {
                            if let Some(c) = shaded.iter().find(|c| c.window == v.context.window) {
                                v.context.values = c.values.clone();
                            }
                        }
                        _ => {}
                    }
                }
            }
            Reply::Tokens(text, acts) => {
                let current = self.token_text().map(String::from);
                self.ctx.keep_tokens(text, acts, current.as_deref());
            }
            Reply::AdHoc(text, acts) => self.add_own_text(text, acts),
            Reply::Steered(r) | Reply::SteerProgress(r) => {
                if let Some(s) = self.screens.iter_mut().rev().find_map(|s| if let Screen::Steer(v) = s { Some(v) } else { None }) {
                    s.result = Some(r);
                    s.running = !last;
                }
            }
            Reply::Attributed(r) => {
                for s in &mut self.screens {
                    if let Screen::Attribute(v) = s {
                        // A late answer for a target since changed is not this view's.
                        if v.prompt == r.prompt && v.upto == r.upto && v.target.as_ref().is_none_or(|t| *t == r.target) {
                            v.result = Some(r.clone());
                        }
                    }
                }
            }
            Reply::Graph { prompt, upto, file, line } => {
                for v in self.graphs(&prompt, upto) {
                    if v.reading.is_none() {
                        v.set((*file).clone(), line.clone());
                    }
                }
            }
            Reply::Intervened { prompt, upto, compared } => {
                for v in self.graphs(&prompt, upto) {
                    if let Some((features, asked @ Asked::Pending)) = v.ablation.as_mut() {
                        if compared.set.iter().map(|s| (s.0.layer, s.0.feature, s.0.pos)).eq(features.iter().map(|f| (f.layer, f.feature, f.pos))) {
                            *asked = Asked::Ready(compared.clone());
                        }
                    }
                }
            }
            Reply::Questions(q) => self.ctx.questions = Some(Asked::Ready(q)),
            Reply::Quality(key, q) => {
                self.ctx.quality.insert(key, Asked::Ready(q));
            }
            Reply::Failed { request, why } => {
                match &request {
                    WorkerRequest::Questions => self.ctx.questions = Some(Asked::Failed(why.clone())),
                    WorkerRequest::Quality(key) => {
                        self.ctx.quality.insert(*key, Asked::Failed(why.clone()));
                    }
                    WorkerRequest::Card(card) => {
                        for s in &mut self.screens {
                            if let Screen::Card(c) = s {
                                if (c.card.sae, c.card.feature) == (card.sae, card.feature) {
                                    c.failed = Some(why.clone());
                                }
                            }
                        }
                    }
                    WorkerRequest::Tokens(text) => {
                        self.ctx.pending_tokens.remove(text);
                        self.ctx.failed_tokens.insert(text.clone(), why.clone());
                    }
                    WorkerRequest::AdHoc(_) => {}
                    WorkerRequest::Steer { .. } => {
                        for s in &mut self.screens {
                            if let Screen::Steer(v) = s {
                                v.running = false;
                                v.failed = Some(why.clone());
                            }
                        }
                    }
                    WorkerRequest::Graph { prompt, upto } => {
                        for v in self.graphs(prompt, *upto) {
                            if v.reading.is_none() {
                                v.failed = Some(why.clone());
                            }
                        }
                    }
                    WorkerRequest::Intervene { prompt, upto, .. } => {
                        for v in self.graphs(prompt, *upto) {
                            if let Some((_, asked @ Asked::Pending)) = v.ablation.as_mut() {
                                *asked = Asked::Failed(why.clone());
                            }
                        }
                    }
                    WorkerRequest::Attribute { prompt, upto, .. } => {
                        for s in &mut self.screens {
                            if let Screen::Attribute(v) = s {
                                if &v.prompt == prompt && v.upto == *upto {
                                    v.failed = Some(why.clone());
                                }
                            }
                        }
                    }
                }
                self.ctx.message = Some(why);
            }
        }
    }

    /// The open graph views of `prompt` (its first `upto` tokens), wherever they are on the stack.
    fn graphs<'a>(&'a mut self, prompt: &'a str, upto: Option<usize>) -> impl Iterator<Item = &'a mut GraphScreen> + 'a {
        self.screens.iter_mut().filter_map(move |s| match s {
            Screen::Graph(v) if v.prompt == prompt && v.upto == upto => Some(v.as_mut()),
            _ => None,
        })
    }

    /// Opens a graph already made (`--graph FILE`) on top; refused when it does not read as one.
    pub fn open_graph(&mut self, file: crate::graph::json::File, line: String) -> color_eyre::Result<()> {
        let view = GraphScreen::of_file(file, line);
        if let Some(why) = &view.failed {
            color_eyre::eyre::bail!("the graph does not read: {why}");
        }
        self.screens.push(Screen::Graph(Box::new(view)));
        Ok(())
    }

    /// `g`: a graph of what the view on top shows (the token view's text to its cursor, the
    /// attribute view's prompt), else of a prompt typed on the input line (a card offers its
    /// top text to edit).
    fn graph(&mut self) {
        if self.ctx.transcoders.is_none() {
            self.ctx.message = Some("graphs need transcoders: start saescope with --transcoders DIR (saescope synth --transcoders plain writes a set)".into());
            return;
        }
        // The token view's cursor as the attribution takes it: the prediction after it.
        let prompt = match self.screen() {
            Screen::Tokens(t) => match t.upto(&self.ctx) {
                Ok(upto) => t.text(&self.ctx).map(|text| (text.to_string(), upto)),
                Err(why) => {
                    self.ctx.message = Some(why.into());
                    return;
                }
            },
            Screen::Attribute(a) => Some((a.prompt.clone(), a.upto)),
            _ => None,
        };
        match prompt {
            Some((p, upto)) => {
                let view = GraphScreen::open(p, upto, &mut self.out);
                self.screens.push(Screen::Graph(Box::new(view)));
            }
            None => {
                let text = self.card().and_then(|c| c.top_texts.first()).map_or_else(String::new, |t| t.content.clone());
                self.input = Some(Input { kind: InputKind::GraphPrompt, text });
            }
        }
    }

    /// Your text becomes a category of its own: its mean vector per layer (encode-then-
    /// mean over its tokens, as for every sample) joins the set and the analysis is redone;
    /// nothing else is recomputed. Its token view opens.
    fn add_own_text(&mut self, text: String, acts: TokenActivations) {
        let ctx = &mut self.ctx;
        let Some(r) = ctx.results.as_mut() else { return };
        let n = ctx.categories.iter().filter(|c| c.0.starts_with("Your text")).count();
        let name = if n == 0 { "Your text".to_string() } else { format!("Your text {}", n + 1) };
        let means: Vec<SparseVec> = acts.means();
        let c = r.set.add_category(name.clone());
        let n_tokens = acts.tokens.len();
        r.set.push(c, text.clone(), n_tokens, means);
        r.analysis = analyze(&r.set, r.analysis.params);
        ctx.categories.push((name.clone(), 1));
        ctx.message = Some(if acts.truncated > 0 {
            format!("{name}: {} tokens were past n_ctx and left out; the first {n_tokens} ran", acts.truncated)
        } else {
            format!("{name}: {n_tokens} tokens")
        });
        ctx.keep_tokens(text.clone(), acts, Some(&text));
        ctx.focused = c;
        ctx.marked.clear();
        let feature = ctx.metrics(c).and_then(|m| m.top.first()).map_or(0, |t| t.feature);
        self.main_mut().cursor = c;
        let mut out = Vec::new();
        let view = TokensScreen::open(feature, &mut self.ctx, &mut out);
        self.out.extend(out);
        self.screens.truncate(1);
        self.screens.push(Screen::Tokens(view));
    }

    /// Applies an action; returns what it asks the event loop to do.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        self.apply(action);
        // Rows stay put across layers and marks, but never point past the end.
        let ctx = &self.ctx;
        if let Screen::Main(m) = &mut self.screens[0] {
            m.clamp(ctx);
        }
        let mut out = std::mem::take(&mut self.out);
        out.extend(self.wants());
        out
    }

    /// What the view on top needs from the model thread and has not asked for yet, once the
    /// results are final: the open questions under the findings, the SAE's quality under
    /// the overview. Each is asked once; the event loop also calls this after the model
    /// thread's messages, so a view opened early asks when the results arrive.
    pub fn wants(&mut self) -> Vec<Effect> {
        if self.ctx.results.as_ref().is_none_or(|r| r.partial) {
            return Vec::new();
        }
        let ask = match self.screen() {
            Screen::Findings(_) if self.ctx.questions.is_none() => {
                self.ctx.questions = Some(Asked::Pending);
                WorkerRequest::Questions
            }
            Screen::Overview(_) if !self.ctx.quality.contains_key(&self.ctx.sae()) => {
                let key = self.ctx.sae();
                self.ctx.quality.insert(key, Asked::Pending);
                WorkerRequest::Quality(key)
            }
            _ => return Vec::new(),
        };
        vec![Effect::Worker(ask)]
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
            // The overlay takes the scrolling keys (and the wheel); the rest wait behind it.
            let max = crate::ui::panes::help::max_scroll(self.ctx.size);
            let page = (self.ctx.size.height as usize).saturating_sub(4).max(1);
            let s = self.help_scroll.min(max);
            self.help_scroll = match action {
                Action::Up | Action::Wheel { down: false, .. } => s.saturating_sub(1),
                Action::Down | Action::Wheel { down: true, .. } => (s + 1).min(max),
                Action::PageUp => s.saturating_sub(page),
                Action::PageDown => (s + page).min(max),
                Action::Home => 0,
                Action::End => max,
                _ => s,
            };
            return;
        }
        match action {
            Action::Click { column, row } => {
                if let Some(target) = self.hits.at(column, row) {
                    if let crate::ui::hits::Target::Tab(i) = target {
                        self.ctx.sae_idx = i;
                    }
                    let top = self.screens.len() - 1;
                    self.screens[top].click(target, &mut self.ctx, &mut self.out);
                }
                return;
            }
            Action::Wheel { column, row, down } => {
                let target = self.hits.at(column, row);
                let top = self.screens.len() - 1;
                self.screens[top].wheel(target, down, &mut self.ctx, &mut self.out);
                return;
            }
            _ => {}
        }
        let top = self.screens.len() - 1;
        match self.screens[top].update(&action, &mut self.ctx, &mut self.out) {
            ScreenStep::Done => return,
            ScreenStep::Open(s) => {
                self.screens.push(s);
                return;
            }
            ScreenStep::Input(kind, text) => {
                self.input = Some(Input { kind, text });
                return;
            }
            ScreenStep::Pass => {}
        }
        let n_layers = self.ctx.saes.len().max(1);
        match action {
            Action::Quit => self.quit(),
            Action::Back if self.help => self.help = false,
            Action::Back if self.screens.len() > 1 => {
                self.screens.pop();
            }
            Action::Back => self.quit(),
            // Findings and search are places of their own, not steps down from a view: they
            // open over the main screen, and Esc goes back to it.
            Action::Findings => {
                self.screens.truncate(1);
                self.screens.push(Screen::Findings(FindingsScreen::default()));
            }
            Action::Overview => {
                self.screens.truncate(1);
                if self.ctx.corpus.is_none() {
                    self.ctx.message = Some("no corpus: start saescope with --corpus PATH to index one".into());
                }
                self.screens.push(Screen::Overview(crate::ui::screens::OverviewScreen::default()));
            }
            Action::Search => {
                let query = match self.screens.last() {
                    Some(Screen::Search(s)) => s.query.clone(),
                    _ => {
                        self.screens.truncate(1);
                        if self.ctx.labels.is_empty() && self.ctx.corpus.is_none() {
                            self.ctx.message = Some("nothing to search: start saescope with --labels PATH (a Neuronpedia export) or --corpus PATH".into());
                        }
                        self.screens.push(Screen::Search(SearchScreen::default()));
                        String::new()
                    }
                };
                self.input = Some(Input { kind: InputKind::Search, text: query });
            }
            Action::InputText => self.input = Some(Input { kind: InputKind::Text, text: String::new() }),
            Action::Attribute => self.input = Some(Input { kind: InputKind::AttributePrompt, text: String::new() }),
            Action::Graph => self.graph(),
            Action::ToggleHelp => {
                self.help = !self.help;
                self.help_scroll = 0;
            }
            Action::NextLayer => self.ctx.sae_idx = (self.ctx.sae_idx + 1) % n_layers,
            Action::PrevLayer => self.ctx.sae_idx = (self.ctx.sae_idx + n_layers - 1) % n_layers,
            Action::Layer(i) if i < self.ctx.saes.len() => self.ctx.sae_idx = i,
            Action::Export => self.out.push(Effect::Export),
            _ => {}
        }
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
                    InputKind::Search => {}
                    InputKind::Text if input.text.trim().is_empty() => self.ctx.message = Some("nothing to run: type a text, then Enter".into()),
                    InputKind::Text if self.ctx.results.as_ref().is_none_or(|r| r.partial) => {
                        self.ctx.message = Some("results are still computing; try again when they are complete".into())
                    }
                    InputKind::Text => {
                        self.ctx.message = Some(format!("running your text ({} characters)…", input.text.chars().count()));
                        self.out.push(Effect::Worker(WorkerRequest::AdHoc(input.text)));
                    }
                    InputKind::AttributeTarget => {
                        if let Some(Screen::Attribute(v)) = self.screens.last_mut() {
                            v.retarget(input.text, &mut self.out);
                        }
                    }
                    _ if input.text.trim().is_empty() => self.ctx.message = Some("nothing to run: type a prompt, then Enter".into()),
                    InputKind::SteerPrompt => {
                        if let Some(Screen::Steer(s)) = self.screens.last_mut() {
                            s.prompt = input.text;
                            s.run(&mut self.ctx, &mut self.out);
                        }
                    }
                    InputKind::GraphPrompt => {
                        let view = GraphScreen::open(input.text, None, &mut self.out);
                        if let Some(Screen::Graph(_)) = self.screens.last() {
                            self.screens.pop();
                        }
                        self.screens.push(Screen::Graph(Box::new(view)));
                    }
                    InputKind::AttributePrompt => {
                        let view = AttributeScreen::open(input.text, &mut self.out);
                        if let Some(Screen::Attribute(_)) = self.screens.last() {
                            self.screens.pop();
                        }
                        self.screens.push(Screen::Attribute(view));
                    }
                }
                return;
            }
            Action::Quit => self.quit(),
            _ => {}
        }
        // The search follows the query as it is typed.
        if let (Some(Input { kind: InputKind::Search, text }), Some(Screen::Search(s))) = (&self.input, self.screens.last_mut()) {
            s.query = text.clone();
            s.row = 0;
        }
    }

    /// Draws the screen on top into `area` (between the tabs and the status line).
    pub fn draw_screen(&self, f: &mut ratatui::Frame, area: ratatui::layout::Rect) {
        self.screen().draw(f, area, &self.ctx, &self.hits);
    }
}
