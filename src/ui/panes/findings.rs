//! The findings view: the study's four findings checked on the current data, each marked
//! HOLDS or DOES NOT HOLD (in words, so it reads without colour) with its numbers, then its
//! open questions, each with its measured answer, charts as block characters in the rows,
//! and token strips of the SAE on view (its strongest text as it is and shuffled); with a
//! second run (`--versus-model`), each claim on both runs, one under the other.

use crate::analysis::findings::{verdict, RunFinding, SideBySide};
use crate::ui::context::{Asked, Context, Versus};
use crate::ui::screens::FindingsScreen;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, view: &FindingsScreen, app: &Context, area: Rect) {
    let head = if app.versus.is_some() { "The GPT-2 small SAE study on two runs" } else { "Findings of the GPT-2 small SAE study" };
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
    let bold = Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
    for (i, x) in list.iter().enumerate() {
        if i == crate::analysis::findings::FINDINGS {
            lines.push(Line::styled("The study's open questions, measured on these texts", bold));
            lines.push(Line::raw(""));
        }
        lines.extend(finding_lines(i, x, inner.width as usize));
        lines.push(Line::raw(""));
    }
    if list.len() <= crate::analysis::findings::FINDINGS {
        lines.push(Line::styled("The study's open questions", bold));
        lines.push(Line::raw(match &app.questions {
            Some(Asked::Failed(why)) => format!("could not be measured: {why}"),
            Some(Asked::Ready(_)) => "measured; they show when the second run has them too".into(),
            _ => "measuring on the model thread (token and context windows, shuffles, reconstructions)…".into(),
        }));
    }
    if let Some(Asked::Ready(q)) = &app.questions {
        lines.extend(strips(q, &app.sae().to_string()));
    }
    let text = Paragraph::new(lines).wrap(Wrap { trim: false });
    let last = text.line_count(inner.width).saturating_sub(inner.height as usize);
    view.last.set(Some(last));
    f.render_widget(text.scroll((view.scroll.min(last) as u16, 0)), inner);
}

fn verdict_span(r: &RunFinding) -> Span<'static> {
    let (text, color) = match &r.answer {
        Some(a) => (a.clone(), Color::Yellow),
        None => (verdict(r.holds).to_string(), if r.holds { Color::Green } else { Color::Red }),
    };
    Span::styled(format!("[{text}]"), Style::new().fg(color).add_modifier(Modifier::BOLD))
}

/// Each category's top feature at `sae`: its strongest text as it is and shuffled, token
/// by token, shaded as the token view shades them, on one scale per feature.
fn strips(q: &crate::analysis::questions::OpenQuestions, sae: &str) -> Vec<Line<'static>> {
    use crate::analysis::questions::syntax::Role;
    let mut lines = vec![Line::styled(
        format!("Token strips at {sae}: each category's top feature, its strongest text as it is and shuffled"),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    for (c, name) in q.categories.iter().enumerate() {
        let Some(r) = q.readings.iter().find(|r| r.category == c && r.sae == sae && r.role == Role::Top(1)) else { continue };
        let (Some(o), Some(sh)) = (&r.original, &r.shuffle) else { continue };
        let max = o.values.iter().chain(&sh.values).copied().fold(0f32, f32::max);
        lines.push(Line::styled(
            format!("  {name} · #{} reads {} · shuffled keeps {:.0}%", r.feature, r.reads.name(), 100.0 * r.shuffle_kept),
            Style::new().add_modifier(Modifier::DIM),
        ));
        for (head, strip) in [("    as it is: ", o), ("    shuffled: ", sh)] {
            let mut row = crate::ui::panes::tokens::token_lines(
                strip.tokens.get(1..).unwrap_or_default(),
                strip.values.get(1..).unwrap_or_default(),
                max,
                false,
                None,
                None,
            );
            if let Some(first) = row.first_mut() {
                first.spans.insert(0, Span::raw(head));
            }
            lines.extend(row);
        }
    }
    lines
}

/// One claim: on one run, the verdict beside it; on two, each run's verdict, name and
/// numbers under it. Summaries and rows wrap under their own text, not at the left edge.
fn finding_lines(i: usize, x: &SideBySide, width: usize) -> Vec<Line<'static>> {
    let claim = Span::styled(format!("{}. {} ", i + 1, x.claim), Style::new().add_modifier(Modifier::BOLD));
    let dim = Style::new().add_modifier(Modifier::DIM);
    let mut lines = Vec::new();
    let numbers = |r: &RunFinding, indent: usize, lines: &mut Vec<Line<'static>>| {
        lines.extend(hanging(indent, 2, &r.summary, width).into_iter().map(Line::raw));
        for (name, detail) in &r.rows {
            lines.extend(hanging(indent + 2, 17, &format!("{name:<16} {detail}"), width).into_iter().map(|l| Line::styled(l, dim)));
        }
    };
    if let [only] = x.runs.as_slice() {
        lines.push(Line::from(vec![claim, verdict_span(only)]));
        numbers(only, 3, &mut lines);
        return lines;
    }
    lines.push(Line::from(claim));
    for r in &x.runs {
        lines.push(Line::from(vec![Span::raw("   "), verdict_span(r), Span::styled(format!(" {}", r.run), Style::new().add_modifier(Modifier::BOLD))]));
        numbers(r, 5, &mut lines);
    }
    lines
}

/// `text` indented by `indent` and wrapped at word boundaries to `width` columns, each
/// later line `hang` columns further in, so a wrapped row stays under its own numbers. A
/// word too long for its line is left whole (the paragraph cuts it).
fn hanging(indent: usize, hang: usize, text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = " ".repeat(indent);
    let mut fresh = true;
    for word in text.split(' ') {
        let len = Span::raw(word).width();
        if !fresh && Span::raw(line.as_str()).width() + 1 + len > width {
            out.push(std::mem::replace(&mut line, " ".repeat(indent + hang)));
            fresh = true;
        }
        if !fresh {
            line.push(' ');
        }
        line.push_str(word);
        fresh = false;
    }
    out.push(line);
    out
}

#[cfg(test)]
mod tests {
    use super::hanging;

    #[test]
    fn wrapped_lines_hang_under_their_text() {
        assert_eq!(hanging(3, 2, "a bb ccc", 80), ["   a bb ccc"]);
        assert_eq!(hanging(3, 2, "aaaa bbbb cccc", 12), ["   aaaa bbbb", "     cccc"]);
        // Runs of spaces inside the text (aligned columns) are kept.
        assert_eq!(hanging(0, 4, "name    x1.2", 80), ["name    x1.2"]);
        assert_eq!(hanging(2, 2, "averyveryverylongword", 8), ["  averyveryverylongword"]);
    }
}
