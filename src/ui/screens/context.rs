//! One corpus context whole (Enter on a card's context): every token shaded by the
//! feature's activation, its max marked, `v` for the values. Its activations come with
//! the card's (the model thread shades a card's contexts); until then the tokens show
//! unshaded with the max from the index.

use super::ScreenStep;
use crate::dashboard::ContextWindow as CorpusContext;
use crate::ui::action::{Action, Effect};
use crate::ui::context::Context;
use crate::ui::panes;
use ratatui::layout::Rect;
use ratatui::Frame;

#[derive(Debug, Clone, PartialEq)]
pub struct ContextScreen {
    pub sae: crate::sae::key::SaeKey,
    pub feature: u32,
    pub context: CorpusContext,
    pub values: bool,
    pub scroll: usize,
}

impl ContextScreen {
    pub fn update(&mut self, action: &Action, _ctx: &mut Context, _out: &mut [Effect]) -> ScreenStep {
        if super::scroll(&mut self.scroll, action) {
            return ScreenStep::Done;
        }
        match action {
            Action::ToggleValues => self.values = !self.values,
            // A context is of one SAE: the tab keys do nothing here.
            Action::NextLayer | Action::PrevLayer | Action::Layer(_) => {}
            _ => return ScreenStep::Pass,
        }
        ScreenStep::Done
    }

    pub fn draw(&self, f: &mut Frame, area: Rect) {
        panes::context::draw(f, self, area);
    }
}
