//! The seed's findings checked on the current data; it scrolls.

use super::Step;
use crate::ui::action::Action;
use crate::ui::context::Context;
use crate::ui::panes;
use ratatui::layout::Rect;
use ratatui::Frame;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FindingsScreen {
    pub scroll: usize,
}

impl FindingsScreen {
    pub fn update(&mut self, action: &Action) -> Step {
        if super::scroll(&mut self.scroll, action) {
            Step::Done
        } else {
            Step::Pass
        }
    }

    pub fn draw(&self, f: &mut Frame, area: Rect, ctx: &Context) {
        panes::findings::draw(f, self, ctx, area);
    }
}
