//! A table's first visible row, kept from one frame to the next. ratatui's `TableState`
//! scrolls only as far as the selection needs, so moving up from the bottom of a long table
//! keeps the rows still until the selection reaches the top edge. A state made afresh each
//! frame starts at row 0 and scrolls just enough to show the selection, which pins the
//! selection to the bottom edge whenever it is below the first page.

use ratatui::widgets::TableState;
use std::cell::Cell;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Offset(Cell<usize>);

impl Offset {
    /// The state to draw with: last frame's offset and this frame's selection.
    pub fn state(&self, selected: usize) -> TableState {
        TableState::default().with_offset(self.0.get()).with_selected(Some(selected))
    }

    /// Remembers where the drawn table scrolled to.
    pub fn keep(&self, state: &TableState) {
        self.0.set(state.offset());
    }
}
