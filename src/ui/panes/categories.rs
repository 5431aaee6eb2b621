//! The category list: texts per category, which are marked, which is focused.

use super::{frame, selected};
use crate::ui::app::{App, Pane};
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let lines: Vec<Line> = app
        .categories
        .iter()
        .enumerate()
        .map(|(i, (name, n))| {
            let mark = if app.marked.contains(&i) { "[x]" } else { "[ ]" };
            let focus = if i == app.focused { "▶" } else { " " };
            let mut style = Style::new();
            if i == app.cursor && app.pane == Pane::Categories {
                style = selected();
            } else if i == app.cursor {
                style = style.add_modifier(Modifier::UNDERLINED);
            }
            if i == app.focused {
                style = style.add_modifier(Modifier::BOLD);
            }
            Line::styled(format!("{focus}{mark} {name:<12.12}{n:>3}"), style)
        })
        .collect();
    let block = frame(app, Pane::Categories, " Categories ".into());
    app.hits.rows(block.inner(area), 0, lines.len(), crate::ui::hits::Target::Category);
    f.render_widget(Paragraph::new(lines).block(block), area);
}
