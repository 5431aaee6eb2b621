//! What the last frame drew where. Panes record their clickable rows as they draw them,
//! after the widgets have scrolled, and a click or wheel event is looked up here, so it
//! lands on what is on screen at that spot: never a row re-derived from a layout guess.

use crate::ui::action::Pane;
use ratatui::layout::{Position, Rect};
use std::cell::RefCell;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A main pane's area (rows inside it are recorded on top).
    Pane(Pane),
    /// The layer tab of this layer index.
    Tab(usize),
    Category(usize),
    /// This rank of the feature table (every table side by side shares the row).
    FeatureRow(usize),
    /// This row of the specialist matrix.
    MatrixRow(usize),
    /// This hit of the search list.
    SearchHit(usize),
    /// This text of the token view's list.
    TokenText(usize),
    /// This row of the attribute screen's list.
    AttributeRow(usize),
    /// This row of the SAE overview's feature table.
    OverviewRow(usize),
    /// This context of a card's corpus section (top contexts, then interval samples).
    ContextRow(usize),
    /// This node of the graph view (its index in the graph file).
    GraphNode(usize),
}

impl Target {
    /// The main pane a target belongs to, for focus and the scroll wheel.
    pub fn pane(self) -> Option<Pane> {
        match self {
            Target::Pane(p) => Some(p),
            Target::Category(_) => Some(Pane::Categories),
            Target::FeatureRow(_) => Some(Pane::Features),
            Target::MatrixRow(_) => Some(Pane::Matrix),
            _ => None,
        }
    }
}

/// Written while drawing (through `&App`, hence the cell), read by `App::click`.
#[derive(Debug, Default)]
pub struct HitMap(RefCell<Vec<(Rect, Target)>>);

impl HitMap {
    pub fn clear(&self) {
        self.0.borrow_mut().clear();
    }

    pub fn add(&self, area: Rect, target: Target) {
        self.0.borrow_mut().push((area, target));
    }

    /// The rows a table drew in `body` (its area below the header), from its first visible
    /// row `offset` on, each as `target(index)`.
    pub fn rows(&self, body: Rect, offset: usize, len: usize, target: impl Fn(usize) -> Target) {
        for (y, i) in (body.y..body.bottom()).zip(offset..len) {
            self.add(Rect::new(body.x, y, body.width, 1), target(i));
        }
    }

    /// The innermost target under a point: the last recorded that contains it.
    pub fn at(&self, column: u16, row: u16) -> Option<Target> {
        let p = Position { x: column, y: row };
        self.0.borrow().iter().rev().find(|(r, _)| r.contains(p)).map(|&(_, t)| t)
    }
}
