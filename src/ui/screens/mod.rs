//! The explorer's screens. Each owns its selection, scroll and what it last drew, and has
//! the same three parts: `update` (an action, with the shared context), `draw`, and
//! `click` (a target the hit map found under the pointer, hits.rs). The app keeps them on
//! a stack: a view opens on top of the one it was opened from, and Esc closes it, back to
//! exactly where it came from. A new view is a new file here and one arm of `Screen`.

pub mod attribute;
pub mod card;
pub mod context;
pub mod findings;
pub mod graph;
pub mod main;
pub mod overview;
pub mod search;
pub mod steer;
pub mod tokens;

use crate::ui::action::{Action, Effect, InputKind, Mode};
use crate::ui::context::Context;
use crate::ui::hits::{HitMap, Target};
use ratatui::layout::Rect;
use ratatui::Frame;

pub use attribute::AttributeScreen;
pub use card::CardScreen;
pub use context::ContextScreen;
pub use findings::FindingsScreen;
pub use graph::GraphScreen;
pub use main::MainScreen;
pub use overview::OverviewScreen;
pub use search::SearchScreen;
pub use steer::SteerScreen;
pub use tokens::TokensScreen;

/// What a screen made of an action.
pub enum ScreenStep {
    /// Done here.
    Done,
    /// Not this screen's: the app's global keys apply (layers, help, quit...).
    Pass,
    /// Open this screen on top.
    Open(Screen),
    /// Open the input line for this, with this text.
    Input(InputKind, String),
}

pub enum Screen {
    Main(MainScreen),
    /// Boxed: a card is much larger than the other screens.
    Card(Box<CardScreen>),
    Tokens(TokensScreen),
    Search(SearchScreen),
    Findings(FindingsScreen),
    Steer(SteerScreen),
    Attribute(AttributeScreen),
    Overview(OverviewScreen),
    Context(Box<ContextScreen>),
    Graph(Box<GraphScreen>),
}

impl Screen {
    pub fn mode(&self) -> Mode {
        match self {
            Screen::Main(_) => Mode::Main,
            Screen::Card(_) => Mode::Card,
            Screen::Tokens(_) => Mode::Tokens,
            Screen::Search(_) => Mode::Search,
            Screen::Findings(_) => Mode::Findings,
            Screen::Steer(_) => Mode::Steer,
            Screen::Attribute(_) => Mode::Attribute,
            Screen::Overview(_) => Mode::Overview,
            Screen::Context(_) => Mode::Context,
            Screen::Graph(_) => Mode::Graph,
        }
    }

    pub fn update(&mut self, action: &Action, ctx: &mut Context, out: &mut Vec<Effect>) -> ScreenStep {
        match self {
            Screen::Main(s) => s.update(action, ctx, out),
            Screen::Card(s) => s.update(action, ctx, out),
            Screen::Tokens(s) => s.update(action, ctx, out),
            Screen::Search(s) => s.update(action, ctx, out),
            Screen::Findings(s) => s.update(action),
            Screen::Steer(s) => s.update(action, ctx, out),
            Screen::Attribute(s) => s.update(action, ctx, out),
            Screen::Overview(s) => s.update(action, ctx, out),
            Screen::Context(s) => s.update(action, ctx, out),
            Screen::Graph(s) => s.update(action, ctx, out),
        }
    }

    pub fn draw(&self, f: &mut Frame, area: Rect, ctx: &Context, hits: &HitMap) {
        match self {
            Screen::Main(s) => s.draw(f, area, ctx, hits),
            Screen::Card(s) => s.draw(f, area, hits),
            Screen::Tokens(s) => s.draw(f, area, ctx, hits),
            Screen::Search(s) => s.draw(f, area, ctx, hits),
            Screen::Findings(s) => s.draw(f, area, ctx),
            Screen::Steer(s) => s.draw(f, area, ctx),
            Screen::Attribute(s) => s.draw(f, area, ctx, hits),
            Screen::Overview(s) => s.draw(f, area, ctx, hits),
            Screen::Context(s) => s.draw(f, area),
            Screen::Graph(s) => s.draw(f, area, ctx, hits),
        }
    }

    pub fn click(&mut self, target: Target, ctx: &mut Context, out: &mut Vec<Effect>) {
        match self {
            Screen::Main(s) => s.click(target),
            Screen::Tokens(s) => s.click(target, ctx, out),
            Screen::Search(s) => s.click(target),
            Screen::Attribute(s) => s.click(target),
            Screen::Overview(s) => s.click(target),
            Screen::Card(s) => s.click(target),
            Screen::Graph(s) => s.click(target),
            Screen::Findings(_) | Screen::Steer(_) | Screen::Context(_) => {}
        }
    }

    /// The scroll wheel at a target: main scrolls the pane under the pointer, views scroll.
    pub fn wheel(&mut self, target: Option<Target>, down: bool, ctx: &mut Context, out: &mut Vec<Effect>) {
        if let Screen::Main(s) = self {
            match target.and_then(Target::pane) {
                Some(p) => s.pane = p,
                None => return,
            }
        }
        self.update(if down { &Action::Down } else { &Action::Up }, ctx, out);
    }
}

/// Scrolls a view by Up, Down, PgUp, PgDn and Home; false for any other action.
pub fn scroll(offset: &mut usize, a: &Action) -> bool {
    match distance(a) {
        Some(by) if *a != Action::End => *offset = (*offset as isize + by).max(0) as usize,
        _ => return false,
    }
    true
}

/// Moves `v` by `by` within `0..len`.
pub fn step(v: usize, by: isize, len: usize) -> usize {
    (v as isize + by).clamp(0, len.saturating_sub(1) as isize) as usize
}

/// How far Up, Down, PgUp, PgDn, Home and End move.
pub fn distance(a: &Action) -> Option<isize> {
    Some(match a {
        Action::Up => -1,
        Action::Down => 1,
        Action::PageUp => -10,
        Action::PageDown => 10,
        Action::Home => -(1 << 20),
        Action::End => 1 << 20,
        _ => return None,
    })
}
