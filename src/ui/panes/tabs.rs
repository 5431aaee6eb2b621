//! Layer tabs along the top.

use crate::ui::app::App;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;

const PREFIX: &str = " saescope  layer ";

fn label(layer: usize) -> String {
    format!(" {layer} ")
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![Span::styled(PREFIX, Style::new().add_modifier(Modifier::BOLD))];
    let mut x = area.x + PREFIX.chars().count() as u16;
    for (i, &l) in app.layers.iter().enumerate() {
        let style = if i == app.layer_idx { super::selected().add_modifier(Modifier::BOLD) } else { Style::new() };
        let w = label(l).chars().count() as u16;
        app.hits.add(Rect::new(x, area.y, w, 1).intersection(area), crate::ui::hits::Target::Tab(i));
        x += w + 1;
        spans.push(Span::styled(label(l), style));
        spans.push(Span::raw("│"));
    }
    let room = area.right().saturating_sub(x + 2) as usize;
    spans.push(Span::raw(format!("  {}", crate::ui::keys::hints_within(crate::ui::action::Mode::Main, "  ", room))));
    f.render_widget(Line::from(spans), area);
}
