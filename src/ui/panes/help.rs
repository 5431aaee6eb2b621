//! The help overlay: every key.

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

pub const KEYS: &[(&str, &str)] = &[
    ("←/→  h/l  [/]", "previous / next layer"),
    ("1-9", "jump to the n-th layer tab"),
    ("↑/↓  k/j", "move in the focused pane"),
    ("PgUp/PgDn  g/G", "page / first / last row"),
    ("Tab / Shift-Tab", "focus the next / previous pane"),
    ("Space", "mark a category for side-by-side comparison"),
    ("Enter", "focus the highlighted category (clears marks)"),
    ("e", "export the current view to CSV"),
    ("mouse click", "focus a pane, select a row or a layer tab"),
    ("?", "this help"),
    ("q  Esc  Ctrl-C", "quit (Esc closes help first)"),
];

pub fn draw(f: &mut Frame, area: Rect) {
    let [area] = Layout::horizontal([Constraint::Length(76)]).flex(Flex::Center).areas(area);
    let [area] = Layout::vertical([Constraint::Length(KEYS.len() as u16 + 4)]).flex(Flex::Center).areas(area);
    let text: Vec<String> = KEYS.iter().map(|(k, what)| format!(" {k:<17} {what}")).collect();
    f.render_widget(Clear, area);
    f.render_widget(Paragraph::new(text.join("\n")).block(Block::default().borders(Borders::ALL).title(" Keys (? or Esc to close) ")), area);
}
