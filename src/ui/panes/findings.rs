//! The findings view: the seed's four findings checked on the current data, each marked
//! HOLDS or DOES NOT HOLD (in words, so it reads without colour) with its numbers; with a
//! second run (`--versus-model`), each claim on both runs, one under the other.

use crate::findings::{verdict, SideBySide};
use crate::ui::context::{Context, Versus};
use crate::ui::screens::FindingsScreen;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, view: &FindingsScreen, app: &Context, area: Rect) {
    let head = if app.versus.is_some() { "Findings of the seed analysis, on two runs" } else { "Findings of the seed analysis, on this data" };
    let block = super::view_frame_hinted(head.into(), crate::ui::action::Mode::Findings, area.width);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(list) = app.findings() else {
        f.render_widget(Paragraph::new(super::not_ready(app)).wrap(Wrap { trim: true }), inner);
        return;
    };
    let mut lines = Vec::new();
    match &app.versus {
        Some(Versus { labels, findings: None }) => lines.push(Line::raw(format!("The second run ({}) is computing; its findings join these.", labels[1]))),
        Some(Versus { labels, findings: Some(Err(why)) }) => lines.push(Line::raw(format!("The second run ({}) failed: {why}", labels[1]))),
        _ => {}
    }
    if !lines.is_empty() {
        lines.push(Line::raw(""));
    }
    for (i, x) in list.iter().enumerate() {
        lines.extend(finding_lines(i, x));
        lines.push(Line::raw(""));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((view.scroll as u16, 0)), inner);
}

fn verdict_span(holds: bool) -> Span<'static> {
    let color = if holds { Color::Green } else { Color::Red };
    Span::styled(format!("[{}]", verdict(holds)), Style::new().fg(color).add_modifier(Modifier::BOLD))
}

/// One claim: on one run, the verdict beside it; on two, each run's verdict, name and
/// numbers under it.
fn finding_lines(i: usize, x: &SideBySide) -> Vec<Line<'static>> {
    let claim = Span::styled(format!("{}. {} ", i + 1, x.claim), Style::new().add_modifier(Modifier::BOLD));
    let dim = Style::new().add_modifier(Modifier::DIM);
    let mut lines = Vec::new();
    if let [only] = x.runs.as_slice() {
        lines.push(Line::from(vec![claim, verdict_span(only.holds)]));
        lines.push(Line::raw(format!("   {}", only.summary)));
        lines.extend(only.rows.iter().map(|(name, detail)| Line::styled(format!("     {name:<16} {detail}"), dim)));
        return lines;
    }
    lines.push(Line::from(claim));
    for r in &x.runs {
        lines.push(Line::from(vec![Span::raw("   "), verdict_span(r.holds), Span::styled(format!(" {}", r.run), Style::new().add_modifier(Modifier::BOLD))]));
        lines.push(Line::raw(format!("     {}", r.summary)));
        lines.extend(r.rows.iter().map(|(name, detail)| Line::styled(format!("       {name:<16} {detail}"), dim)));
    }
    lines
}
