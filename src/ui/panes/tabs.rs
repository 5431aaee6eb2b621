//! A tab per loaded SAE along the top (sae_key::tabs labels them).

use crate::ui::app::App;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let (site, labels) = crate::sae::key::tabs(&app.saes);
    let prefix = match site {
        Some(s) => format!(" saescope  layer ({s}) "),
        None => " saescope  SAE ".to_string(),
    };
    let mut x = area.x + prefix.chars().count() as u16;
    let widths: Vec<u16> = labels.iter().map(|l| l.chars().count() as u16 + 3).collect();
    // More tabs than the line holds: start late enough that the selected one shows, and
    // say how many are to the left.
    let mut first = 0;
    while first < app.sae_idx && x + 2 + widths[first..=app.sae_idx].iter().sum::<u16>() > area.right() {
        first += 1;
    }
    let mut spans = vec![Span::styled(prefix, Style::new().add_modifier(Modifier::BOLD))];
    if first > 0 {
        spans.push(Span::raw("‹"));
        x += 1;
    }
    for (i, l) in labels.iter().enumerate().skip(first) {
        let style = if i == app.sae_idx { super::selected().add_modifier(Modifier::BOLD) } else { Style::new() };
        let label = format!(" {l} ");
        let w = label.chars().count() as u16;
        app.hits.add(Rect::new(x, area.y, w, 1).intersection(area), crate::ui::hits::Target::Tab(i));
        x += w + 1;
        spans.push(Span::styled(label, style));
        spans.push(Span::raw("│"));
    }
    let room = area.right().saturating_sub(x + 2) as usize;
    spans.push(Span::raw(format!("  {}", crate::ui::keys::hints_within(crate::ui::action::Mode::Main, "  ", room))));
    f.render_widget(Line::from(spans), area);
}
