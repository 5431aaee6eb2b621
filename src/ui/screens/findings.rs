//! The study's findings checked on the current data, and its open questions; it scrolls, no
//! further than its last line.

use super::ScreenStep;
use crate::ui::action::Action;
use crate::ui::context::Context;
use crate::ui::panes;
use ratatui::layout::Rect;
use ratatui::Frame;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FindingsScreen {
    pub scroll: usize,
    /// The furthest scroll that still shows the last line, as last drawn (the text wraps
    /// to the terminal's width and grows when the open questions arrive).
    pub last: std::cell::Cell<Option<usize>>,
}

impl FindingsScreen {
    pub fn update(&mut self, action: &Action) -> ScreenStep {
        let last = self.last.get().unwrap_or(usize::MAX);
        if *action == Action::End {
            self.scroll = self.last.get().unwrap_or(self.scroll);
            return ScreenStep::Done;
        }
        if super::scroll(&mut self.scroll, action) {
            self.scroll = self.scroll.min(last);
            ScreenStep::Done
        } else {
            ScreenStep::Pass
        }
    }

    pub fn draw(&self, f: &mut Frame, area: Rect, ctx: &Context) {
        panes::findings::draw(f, self, ctx, area);
    }
}
