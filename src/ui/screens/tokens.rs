//! The token view: the focused category's texts with one feature's mean activation, and
//! the selected text token by token; it steps texts and features and asks the model thread
//! for the per-token activations it does not have yet.

use super::{distance, step, ScreenStep};
use crate::ui::action::{Action, Effect, WorkerRequest};
use crate::ui::context::Context;
use crate::ui::hits::{HitMap, Target};
use crate::ui::panes;
use ratatui::layout::Rect;
use ratatui::Frame;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokensScreen {
    /// Row in the focused category's texts.
    pub row: usize,
    pub feature: u32,
    /// Show each token's value next to it.
    pub values: bool,
    /// The token `a` explains the prediction after (`<`/`>`); None: the text's end.
    pub cursor: Option<usize>,
    pub scroll: crate::ui::offset::Offset,
}

impl TokensScreen {
    /// The view of `feature`, on the focused category's first text, asking for its tokens.
    pub fn open(feature: u32, ctx: &mut Context, out: &mut Vec<Effect>) -> Self {
        let s = Self { row: 0, feature, values: false, cursor: None, scroll: Default::default() };
        s.want(ctx, out);
        s
    }

    /// The text on view.
    pub fn text<'a>(&self, ctx: &'a Context) -> Option<&'a str> {
        ctx.focused_text(self.row)
    }

    /// Asks for the current text's per-token activations unless they are known or asked.
    fn want(&self, ctx: &mut Context, out: &mut Vec<Effect>) {
        if let Some(t) = self.text(ctx).map(String::from) {
            if ctx.ask_tokens(&t) {
                out.push(Effect::Worker(WorkerRequest::Tokens(t)));
            }
        }
    }

    fn step_feature(&mut self, by: isize, ctx: &Context) {
        let Some(m) = ctx.metrics(ctx.focused) else { return };
        let ranked: Vec<u32> = m.ranked.iter().map(|t| t.feature).collect();
        let i = ranked.iter().position(|&f| f == self.feature).map_or(0, |i| step(i, by, ranked.len()));
        if let Some(&f) = ranked.get(i) {
            self.feature = f;
        }
    }

    pub fn update(&mut self, action: &Action, ctx: &mut Context, out: &mut Vec<Effect>) -> ScreenStep {
        if let Some(by) = distance(action) {
            self.row = step(self.row, by, ctx.focused_texts().len());
            self.cursor = None;
            self.want(ctx, out);
            return ScreenStep::Done;
        }
        match action {
            Action::NextFeature => self.step_feature(1, ctx),
            Action::PrevFeature => self.step_feature(-1, ctx),
            Action::ToggleValues => self.values = !self.values,
            Action::TokenLeft | Action::TokenRight => self.move_cursor(action == &Action::TokenRight, ctx),
            Action::OpenCard | Action::FocusCategory => {
                return super::card::open(ctx, ctx.sae(), self.feature, out);
            }
            // Why this next token? The text on view, attributed after its last token, or
            // after the cursor's.
            Action::Attribute => {
                if let Some(t) = self.text(ctx).map(String::from) {
                    match self.upto(ctx) {
                        Ok(upto) => return ScreenStep::Open(super::Screen::Attribute(super::AttributeScreen::open_at(t, upto, out))),
                        Err(why) => ctx.message = Some(why.into()),
                    }
                }
            }
            _ => return ScreenStep::Pass,
        }
        ScreenStep::Done
    }

    pub fn click(&mut self, target: Target, ctx: &mut Context, out: &mut Vec<Effect>) {
        if let Target::TokenText(i) = target {
            self.row = i;
            self.cursor = None;
            self.want(ctx, out);
        }
    }

    /// The prediction the cursor asks about, as the count of the text's own tokens up to
    /// it (None: after the whole text), which is how the attribution and the graph count:
    /// the cursor counts the tokens on view, BOS among them with --include-bos (and under
    /// --chat the template's opening), which are not the text's.
    pub fn upto(&self, ctx: &Context) -> Result<Option<usize>, &'static str> {
        let framing = self.text(ctx).and_then(|t| ctx.token_cache.get(t)).map_or(0, |a| a.framing);
        match self.cursor {
            // One token before the text is BOS; more are a chat template's opening (--chat). Each
            // message fits an 80-column status line whole.
            Some(c) if c < framing && framing == 1 => Err("the cursor is on BOS, before the text: > moves it onto the text"),
            Some(c) if c < framing => Err("the cursor is on the chat template's opening: > moves it onto the text"),
            Some(c) => Ok(Some(c + 1 - framing)),
            None => Ok(None),
        }
    }

    /// The cursor one token right (off the last token: the text's end, None) or left (from
    /// the end: the last token), over the tokens on view once they are in.
    fn move_cursor(&mut self, right: bool, ctx: &Context) {
        let Some(n) = self.text(ctx).and_then(|t| ctx.token_cache.get(t)).map(|a| a.tokens.len()).filter(|&n| n > 0) else { return };
        self.cursor = match (self.cursor, right) {
            (None, false) => Some(n - 1),
            (None, true) => None,
            (Some(c), false) => Some(c.saturating_sub(1)),
            (Some(c), true) if c + 1 >= n => None,
            (Some(c), true) => Some(c + 1),
        };
    }

    pub fn draw(&self, f: &mut Frame, area: Rect, ctx: &Context, hits: &HitMap) {
        panes::tokens::draw(f, self, ctx, hits, area);
    }
}
