//! The findings view: the seed's four findings checked on the current data, each marked
//! HOLDS or DOES NOT HOLD (in words, so it reads without colour) with its numbers.

use crate::findings::findings;
use crate::ui::context::Context;
use crate::ui::screens::FindingsScreen;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, view: &FindingsScreen, app: &Context, area: Rect) {
    let block = super::view_frame_hinted("Findings of the seed analysis, on this data".into(), crate::ui::action::Mode::Findings, area.width);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(r) = &app.results else {
        f.render_widget(Paragraph::new(super::not_ready(app)).wrap(Wrap { trim: true }), inner);
        return;
    };
    let mut lines = Vec::new();
    for (i, x) in findings(&r.analysis, &r.set.categories).iter().enumerate() {
        let color = if x.holds { Color::Green } else { Color::Red };
        lines.push(Line::from(vec![
            Span::styled(format!("{}. {} ", i + 1, x.claim), Style::new().add_modifier(Modifier::BOLD)),
            Span::styled(format!("[{}]", x.verdict()), Style::new().fg(color).add_modifier(Modifier::BOLD)),
        ]));
        lines.push(Line::raw(format!("   {}", x.summary)));
        for (name, detail) in &x.rows {
            lines.push(Line::styled(format!("     {name:<16} {detail}"), Style::new().add_modifier(Modifier::DIM)));
        }
        lines.push(Line::raw(""));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((view.scroll as u16, 0)), inner);
}
