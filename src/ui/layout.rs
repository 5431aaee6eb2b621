//! Where each pane goes. One pure function, used by drawing and by mouse hit-testing
//! alike, so a click always lands on what is drawn there.

use ratatui::layout::{Constraint, Layout, Rect};

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub tabs: Rect,
    pub categories: Rect,
    pub features: Rect,
    pub charts: Rect,
    pub matrix: Rect,
    pub status: Rect,
    /// Everything between the tabs and the status line: where card, token, findings and
    /// search views go.
    pub body: Rect,
}

pub fn too_small(size: Rect) -> bool {
    size.width < MIN_WIDTH || size.height < MIN_HEIGHT
}

pub fn areas(size: Rect) -> Areas {
    let [tabs, body, status] = Layout::vertical([Constraint::Length(1), Constraint::Min(0), Constraint::Length(1)]).areas(size);
    let [categories, right] = Layout::horizontal([Constraint::Length(22), Constraint::Min(0)]).areas(body);
    let [features, bottom] = Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(right);
    let [charts, matrix] = Layout::horizontal([Constraint::Min(20), Constraint::Length(matrix_width(right.width))]).areas(bottom);
    Areas { tabs, categories, features, charts, matrix, status, body }
}

/// The matrix gets what 7 category columns need (feature label 6 + 4 per category + borders)
/// and grows with the screen; the charts take the rest.
fn matrix_width(total: u16) -> u16 {
    (total * 58 / 100).max(36).min(total.saturating_sub(20))
}
