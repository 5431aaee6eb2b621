//! The help overlay: every key.

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

/// Every binding of the key table (keys.rs), one line each.
pub fn lines() -> Vec<String> {
    crate::ui::keys::KEYS.iter().map(|b| format!(" {:<17} {}", b.label, b.help)).collect()
}

pub fn draw(f: &mut Frame, area: Rect) {
    let [area] = Layout::horizontal([Constraint::Length(76)]).flex(Flex::Center).areas(area);
    let text = lines();
    let [area] = Layout::vertical([Constraint::Length(text.len() as u16 + 2)]).flex(Flex::Center).areas(area);
    f.render_widget(Clear, area);
    f.render_widget(Paragraph::new(text.join("\n")).block(Block::default().borders(Borders::ALL).title(" Keys (? or Esc to close) ")), area);
}
