//! The category list: texts per category, which are marked, which is focused.

use super::{frame, selected};
use crate::ui::action::Pane;
use crate::ui::context::Context;
use crate::ui::hits::HitMap;
use crate::ui::screens::MainScreen;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn draw(f: &mut Frame, app: &Context, main: &MainScreen, hits: &HitMap, area: Rect) {
    let lines: Vec<Line> = app
        .categories
        .iter()
        .enumerate()
        .map(|(i, (name, n))| {
            let mark = if app.marked.contains(&i) { "[x]" } else { "[ ]" };
            let focus = if i == app.focused { "▶" } else { " " };
            let mut style = Style::new();
            if i == main.cursor && main.pane == Pane::Categories {
                style = selected();
            } else if i == main.cursor {
                style = style.add_modifier(Modifier::UNDERLINED);
            }
            if i == app.focused {
                style = style.add_modifier(Modifier::BOLD);
            }
            Line::styled(format!("{focus}{mark} {name:<12.12}{n:>3}"), style)
        })
        .collect();
    let block = frame(main.pane == Pane::Categories, " Categories ".into());
    hits.rows(block.inner(area), 0, lines.len(), crate::ui::hits::Target::Category);
    f.render_widget(Paragraph::new(lines).block(block), area);
}
