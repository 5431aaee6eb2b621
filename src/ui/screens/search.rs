//! Features found by label: the query (edited on the input line), the hits, the selected one.

use super::{distance, step, Step};
use crate::ui::action::{Action, Effect};
use crate::ui::context::Context;
use crate::ui::hits::{HitMap, Target};
use crate::ui::panes;
use ratatui::layout::Rect;
use ratatui::Frame;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchScreen {
    pub query: String,
    pub row: usize,
}

impl SearchScreen {
    /// Features whose label matches the query, by layer then id.
    pub fn hits<'a>(&self, ctx: &'a Context) -> Vec<(usize, u32, &'a str)> {
        ctx.labels.search(&self.query)
    }

    pub fn update(&mut self, action: &Action, ctx: &mut Context, out: &mut Vec<Effect>) -> Step {
        if let Some(by) = distance(action) {
            self.row = step(self.row, by, self.hits(ctx).len());
            return Step::Done;
        }
        match action {
            Action::OpenCard | Action::FocusCategory => {
                if let Some(&(layer, f, _)) = self.hits(ctx).get(self.row) {
                    return super::card::open(ctx, layer, f, out);
                }
                Step::Done
            }
            _ => Step::Pass,
        }
    }

    pub fn click(&mut self, target: Target) {
        if let Target::SearchHit(i) = target {
            self.row = i;
        }
    }

    pub fn draw(&self, f: &mut Frame, area: Rect, ctx: &Context, hits: &HitMap) {
        panes::search::draw(f, self, ctx, hits, area);
    }
}
