//! Where things go: the screen's frame (tabs, body, status line) and the main screen's
//! four panes. Drawing records what went where (hits.rs); nothing re-derives it.

use ratatui::layout::{Constraint, Layout, Rect};

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// The frame every screen shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub tabs: Rect,
    /// Between the tabs and the status line: where the screen on top draws.
    pub body: Rect,
    pub status: Rect,
}

/// The main screen's panes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub categories: Rect,
    pub features: Rect,
    pub charts: Rect,
    pub matrix: Rect,
}

pub fn too_small(size: Rect) -> bool {
    size.width < MIN_WIDTH || size.height < MIN_HEIGHT
}

pub fn frame(size: Rect) -> Frame {
    let [tabs, body, status] = Layout::vertical([Constraint::Length(1), Constraint::Min(0), Constraint::Length(1)]).areas(size);
    Frame { tabs, body, status }
}

/// Space goes where the content is: the category list is as tall as its list (the feature
/// table beside it takes at least 45% of the height), and the charts and the matrix share
/// the whole width below.
pub fn areas(body: Rect, n_categories: usize) -> Areas {
    let list = (n_categories as u16 + 2).min(body.height.saturating_sub(8));
    let top_h = list.max(body.height * 45 / 100);
    let [top, bottom] = Layout::vertical([Constraint::Length(top_h), Constraint::Min(0)]).areas(body);
    let [categories, features] = Layout::horizontal([Constraint::Length(22), Constraint::Min(0)]).areas(top);
    let [charts, matrix] = Layout::horizontal([Constraint::Min(30), Constraint::Length(matrix_width(bottom.width, n_categories))]).areas(bottom);
    Areas { categories, features, charts, matrix }
}

/// The matrix gets what its category columns need (feature label 6 + 4 per category +
/// borders), and never more than half the width: the charts take the rest.
fn matrix_width(total: u16, n_categories: usize) -> u16 {
    (8 + 4 * n_categories as u16).clamp(20, total / 2)
}
