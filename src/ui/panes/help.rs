//! The help overlay: every key of the table, its description wrapped under it rather than
//! cut at the frame, scrolled with the keys that scroll everything else when it does not
//! fit (37 bindings are more rows than 80x24 has).

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Scrollbar, ScrollbarOrientation, ScrollbarState};
use ratatui::Frame;

/// Columns of the keys column, with the space after it.
const KEY_COLUMN: usize = 19;
/// The overlay's widest: wider reads worse than it fits.
const MAX_WIDTH: u16 = 96;

/// Every binding of the key table (keys.rs), one line each.
pub fn lines() -> Vec<String> {
    crate::ui::keys::KEYS.iter().map(|b| format!(" {:<17} {}", b.label, b.help)).collect()
}

/// The lines the overlay shows in `width` inner columns: each binding's description
/// wrapped at word boundaries, continued under itself.
pub fn wrapped(width: u16) -> Vec<String> {
    let room = (width as usize).saturating_sub(KEY_COLUMN).max(12);
    let mut out = Vec::new();
    for b in crate::ui::keys::KEYS {
        let mut line = format!(" {:<17} ", b.label);
        let mut used = 0;
        for word in b.help.split(' ') {
            let w = word.chars().count();
            if used > 0 && used + 1 + w > room {
                out.push(std::mem::replace(&mut line, " ".repeat(KEY_COLUMN)));
                used = 0;
            }
            if used > 0 {
                line.push(' ');
                used += 1;
            }
            line.push_str(word);
            used += w;
        }
        out.push(line);
    }
    out
}

/// The text's width inside the overlay: the borders, and a column before the scrollbar.
fn text_width(area: Rect) -> u16 {
    area.width.saturating_sub(3)
}

/// Where the overlay stands on a screen of `size`: centred, as tall as its lines or the
/// screen.
fn area(size: Rect) -> Rect {
    let [area] = Layout::horizontal([Constraint::Length(MAX_WIDTH.min(size.width))]).flex(Flex::Center).areas(size);
    let rows = wrapped(text_width(area)).len() as u16 + 2;
    let [area] = Layout::vertical([Constraint::Length(rows.min(size.height))]).flex(Flex::Center).areas(area);
    area
}

/// How far the overlay can scroll on a screen of `size`: 0 when every line shows.
pub fn max_scroll(size: Rect) -> usize {
    let a = area(size);
    wrapped(text_width(a)).len().saturating_sub(a.height.saturating_sub(2) as usize)
}

pub fn draw(f: &mut Frame, size: Rect, scroll: usize) {
    let area = area(size);
    let text = wrapped(text_width(area));
    let visible = area.height.saturating_sub(2) as usize;
    let scroll = scroll.min(text.len().saturating_sub(visible));
    let title = if text.len() > visible {
        format!(" Keys · rows {}-{} of {} · ↑/↓ PgUp/PgDn scroll · ? or Esc close ", scroll + 1, (scroll + visible).min(text.len()), text.len())
    } else {
        " Keys · ? or Esc to close ".to_string()
    };
    f.render_widget(Clear, area);
    let lines: Vec<Line> = text.into_iter().map(Line::raw).collect();
    let total = lines.len();
    f.render_widget(Paragraph::new(lines).scroll((scroll as u16, 0)).block(Block::default().borders(Borders::ALL).title(title)), area);
    if total > visible {
        let mut state = ScrollbarState::new(total.saturating_sub(visible)).position(scroll);
        f.render_stateful_widget(
            Scrollbar::new(ScrollbarOrientation::VerticalRight),
            area.inner(ratatui::layout::Margin { horizontal: 0, vertical: 1 }),
            &mut state,
        );
    }
}
