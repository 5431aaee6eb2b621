//! The explorer's vocabulary: what a user can do (`Action`), what an action asks of the
//! world (`Effect`), what the model thread is asked and answers (`WorkerRequest`, `Reply`), and
//! the data it hands over (`Results`, `RunInfo`). Shared by the app, the screens and the
//! event loop, and depending on none of them.

use crate::activations::ActivationSet;
use crate::analysis::Analysis;
use crate::interp::card::Card;
use crate::interp::lens::TokenActivations;
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
    pub fn step(self, by: isize) -> Pane {
        let i = Self::ORDER.iter().position(|&p| p == self).unwrap_or(0) as isize;
        Self::ORDER[(i + by).rem_euclid(Self::ORDER.len() as isize) as usize]
    }
}

/// Which screen is on top (screens.rs): `Main` is the four panes; the others are views of
/// one thing, opened on top and closed with Esc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Main,
    /// One feature's card (Enter on a feature).
    Card,
    /// The focused category's texts token by token for one feature (`t`).
    Tokens,
    /// The study's findings on the current data (`f`).
    Findings,
    /// Features found by label (`/`).
    Search,
    /// Generation with the steering set (`s` on a card).
    Steer,
    /// A prompt's next token attributed to features (`a`).
    Attribute,
    /// One layer's SAE over the corpus: density, dead features, every feature sortable (`O`).
    Overview,
    /// One corpus context whole, token by token (Enter on a card's context).
    Context,
    /// A prompt's attribution graph over the transcoders (`g`, or `--graph FILE`).
    Graph,
}

/// The input line: what the typed text is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Search,
    Text,
    /// The steer screen's prompt.
    SteerPrompt,
    /// A prompt whose next token to attribute.
    AttributePrompt,
    /// The token to attribute instead of the model's top one.
    AttributeTarget,
    /// A prompt whose attribution graph to compute.
    GraphPrompt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub kind: InputKind,
    pub text: String,
}

/// Work for the model thread, queued by `update` and sent by the event loop, so actions
/// stay testable without a model.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerRequest {
    /// Fill in a card's weight-derived parts.
    Card(Box<Card>),
    /// Per-token activations of a text.
    Tokens(String),
    /// Run a text typed by the user as a new category.
    AdHoc(String),
    /// Generate with and without the steering set.
    Steer { prompt: String, features: Vec<crate::interp::steer::Steer>, mode: crate::interp::steer::Edit, tokens: usize },
    /// Attribute the next token after a prompt (the model's top one, or `target`) to features.
    Attribute { prompt: String, target: Option<String>, upto: Option<usize> },
    /// Measure the open questions on the samples (questions/).
    Questions,
    /// One SAE's quality on the samples, CE and KL included (eval.rs).
    Quality(crate::sae::key::SaeKey),
    /// The attribution graph of the prediction after a prompt, or after its first `upto`
    /// tokens (src/graph/).
    Graph { prompt: String, upto: Option<usize> },
    /// The prompt's top logits with these transcoder features set (graph/intervene.rs).
    Intervene { prompt: String, upto: Option<usize>, features: Vec<crate::graph::intervene::Intervention>, scale: f64 },
}

/// What an action asks of the world outside the state; the event loop carries it out.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Work for the model thread.
    Worker(WorkerRequest),
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
    Steered(Box<crate::interp::steer::Steered>),
    /// The continuations so far, while the model thread generates.
    SteerProgress(Box<crate::interp::steer::Steered>),
    Attributed(Box<crate::interp::attribute::Attribution>),
    Questions(Box<crate::analysis::questions::OpenQuestions>),
    Quality(crate::sae::key::SaeKey, Box<crate::analysis::eval::Quality>),
    /// A prompt's graph, pruned, and the line that says what it took and its scores.
    Graph {
        prompt: String,
        upto: Option<usize>,
        file: Box<crate::graph::json::File>,
        line: String,
    },
    Intervened {
        prompt: String,
        upto: Option<usize>,
        compared: Box<crate::graph::intervene::Compared>,
    },
    /// The request could not be answered, and why: the views waiting on it say so.
    Failed {
        request: WorkerRequest,
        why: String,
    },
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
    /// `<` / `>`: the token view's cursor one token left / right.
    TokenLeft,
    TokenRight,
    /// Typing on the input line.
    Type(char),
    Paste(String),
    Erase,
    Submit,
    /// `s` on a card: steer generation with this feature.
    Steer,
    /// `a`: attribute a prompt's next token (the token view: its text's).
    Attribute,
    /// `+` / `-`: the selected steering feature's strength.
    StrengthUp,
    StrengthDown,
    /// `x`: drop the selected steering feature.
    Remove,
    /// `m`: steer by adding or by clamping.
    ToggleMode,
    /// `T`: the attribute view's target token.
    Target,
    /// `O`: the SAE overview of the layer on view (needs --corpus).
    Overview,
    /// `S`: the overview's next sort order.
    Sort,
    /// `g`: the attribution graph of a prompt (the token view's text, the attribute view's prompt).
    Graph,
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
    /// Texts are read in the model's chat template (`--chat`): said in the status line,
    /// since every figure on screen depends on it.
    pub chat: bool,
    /// The loaded SAEs' Neuronpedia ids, for links and the tables' column.
    pub ids: crate::sae::neuronpedia_id::Ids,
}
