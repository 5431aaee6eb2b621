//! A corpus context whole: where it is from, its peak, and every token shaded.

use super::num;
use crate::ui::panes::tokens::token_lines;
use crate::ui::screens::ContextScreen;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, view: &ContextScreen, area: Rect) {
    let c = &view.context;
    let block = super::view_frame_hinted(format!("Context · feature #{} · {}", view.feature, view.sae), crate::ui::action::Mode::Context, area.width);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [head, body] = Layout::vertical([Constraint::Length(3), Constraint::Min(0)]).areas(inner);
    let peak = c.tokens.get(c.max_index).map(|t| format!("{t:?}")).unwrap_or_default();
    let shading = match &c.values {
        Some(_) => "every token shaded by its activation; the max in [[ ]]".to_string(),
        None => "computing every token's activation… (the max, in [[ ]], is from the index)".to_string(),
    };
    f.render_widget(
        Paragraph::new(vec![
            Line::raw(format!("{} · tokens {}..{} of its document", c.source, c.offset, c.offset as usize + c.tokens.len())),
            Line::styled(format!("max {} at {peak} (token {})", num(c.max_value), c.max_index), Style::new().add_modifier(Modifier::BOLD)),
            Line::styled(shading, Style::new().add_modifier(Modifier::DIM)),
        ]),
        head,
    );
    let zeros = vec![0.0; c.tokens.len()];
    let values = c.values.as_deref().unwrap_or(&zeros);
    let max = values.iter().copied().fold(c.max_value, f32::max);
    let lines = token_lines(&c.tokens, values, max, view.values, Some(c.max_index), None);
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((view.scroll as u16, 0)), body);
}
