//! The main screen: categories, feature tables, charts and the specialist matrix, with the
//! pane that has focus and each pane's selection.

use super::{distance, step, Screen, ScreenStep};
use crate::ui::action::{Action, Effect, Pane};
use crate::ui::context::Context;
use crate::ui::hits::{HitMap, Target};
use crate::ui::layout::areas;
use crate::ui::panes;
use ratatui::layout::Rect;
use ratatui::Frame;

#[derive(Debug, Clone, PartialEq)]
pub struct MainScreen {
    pub pane: Pane,
    /// Highlighted row of the category list.
    pub cursor: usize,
    /// Selected row of the feature table; kept across layers.
    pub row: usize,
    /// Selected row of the specialist matrix (Enter opens its feature's card).
    pub matrix_row: usize,
    /// Where the feature tables scrolled to.
    pub scroll: crate::ui::offset::Offset,
}

impl Default for MainScreen {
    fn default() -> Self {
        Self { pane: Pane::Categories, cursor: 0, row: 0, matrix_row: 0, scroll: Default::default() }
    }
}

impl MainScreen {
    /// The feature selected in the focused table (the first table's row), or in the
    /// matrix when it has focus.
    pub fn selected_feature(&self, ctx: &Context) -> Option<u32> {
        if self.pane == Pane::Matrix {
            return ctx.matrix_features().get(self.matrix_row).copied();
        }
        let c = ctx.table_categories().first().copied()?;
        ctx.metrics(c)?.ranked.get(self.row).map(|t| t.feature)
    }

    pub fn update(&mut self, action: &Action, ctx: &mut Context, out: &mut Vec<Effect>) -> ScreenStep {
        if let Some(by) = distance(action) {
            match self.pane {
                Pane::Categories => self.cursor = step(self.cursor, by, ctx.categories.len()),
                Pane::Features => self.row = step(self.row, by, ctx.table_len()),
                Pane::Matrix => self.matrix_row = step(self.matrix_row, by, ctx.matrix_features().len()),
                Pane::Charts => {}
            }
            return ScreenStep::Done;
        }
        match action {
            Action::OpenCard | Action::FocusCategory if *action == Action::OpenCard || matches!(self.pane, Pane::Features | Pane::Matrix) => {
                match self.selected_feature(ctx) {
                    Some(f) => return super::card::open(ctx, ctx.sae(), f, out),
                    None => ctx.message = Some("no feature selected".into()),
                }
            }
            Action::FocusCategory => {
                ctx.focused = self.cursor;
                ctx.marked.clear();
            }
            Action::ToggleMark => {
                if !ctx.marked.remove(&self.cursor) {
                    ctx.marked.insert(self.cursor);
                }
            }
            Action::Tokens => match self.selected_feature(ctx) {
                Some(f) if ctx.results.is_some() => return ScreenStep::Open(Screen::Tokens(super::TokensScreen::open(f, ctx, out))),
                _ => ctx.message = Some("no feature selected yet".into()),
            },
            Action::NextPane => self.pane = self.pane.step(1),
            Action::PrevPane => self.pane = self.pane.step(-1),
            _ => return ScreenStep::Pass,
        }
        ScreenStep::Done
    }

    /// Rows stay put across layers and marks, but never point past the end.
    pub fn clamp(&mut self, ctx: &Context) {
        self.row = self.row.min(ctx.table_len().saturating_sub(1));
        self.matrix_row = self.matrix_row.min(ctx.matrix_features().len().saturating_sub(1));
        self.cursor = self.cursor.min(ctx.categories.len().saturating_sub(1));
    }

    pub fn click(&mut self, target: Target) {
        if let Some(p) = target.pane() {
            self.pane = p;
        }
        match target {
            Target::Category(i) => self.cursor = i,
            Target::FeatureRow(i) => self.row = i,
            Target::MatrixRow(i) => self.matrix_row = i,
            _ => {}
        }
    }

    pub fn draw(&self, f: &mut Frame, area: Rect, ctx: &Context, hits: &HitMap) {
        let a = areas(area, ctx.categories.len());
        for (area, pane) in [(a.categories, Pane::Categories), (a.features, Pane::Features), (a.charts, Pane::Charts), (a.matrix, Pane::Matrix)] {
            hits.add(area, Target::Pane(pane));
        }
        panes::categories::draw(f, ctx, self, hits, a.categories);
        panes::features::draw(f, ctx, self, hits, a.features);
        panes::charts::draw(f, ctx, self, a.charts);
        panes::matrix::draw(f, ctx, self, hits, a.matrix);
    }
}
