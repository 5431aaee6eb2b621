//! The feature card: URL, label, the feature's activation in every text as a histogram,
//! the texts and tokens where it fires most (left); the logit lens and its nearest
//! features in the adjacent loaded layers (right). Weight-derived parts show once the
//! model thread has filled them in.

use super::{num, view_frame};
use crate::card::excerpt;
use crate::ui::screens::CardScreen;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

fn bold(s: impl Into<String>) -> Line<'static> {
    Line::styled(s.into(), Style::new().add_modifier(Modifier::BOLD))
}

pub fn draw(f: &mut Frame, view: &CardScreen, area: Rect) {
    let c = &view.card;
    let block = view_frame(format!(" Feature #{} · layer {} · {} ", c.feature, c.layer, crate::ui::keys::hints(crate::ui::action::Mode::Card, " · ")));
    let inner = block.inner(area);
    f.render_widget(block, area);
    // URL and label across the whole width: the URL is there to be copied whole.
    let [head, body] = Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(inner);
    let label = match &c.label {
        Some(label) => Line::from(vec![Span::styled("label: ", Style::new().add_modifier(Modifier::BOLD)), Span::raw(label.clone())]),
        None => Line::raw("label: none (load Neuronpedia explanations with --labels FILE)"),
    };
    f.render_widget(Paragraph::new(vec![Line::raw(c.neuronpedia_url.clone().unwrap_or_else(|| crate::card::NO_PAGE.into())), label]), head);
    let [left, right] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).spacing(1).areas(body);
    let w = left.width.saturating_sub(2) as usize;

    let mut l: Vec<Line> = Vec::new();
    let fired = c.texts.iter().filter(|t| t.exact && t.activation > 0.0).count();
    let bounds = c.texts.iter().filter(|t| !t.exact).count();
    l.push(bold(format!(
        "Activation in {} texts ({fired} fire{})",
        c.texts.len(),
        if bounds > 0 { format!(", {bounds} pruned below a bound") } else { String::new() }
    )));
    let peak = c.histogram.counts.iter().copied().max().unwrap_or(0).max(1) as usize;
    let bar_w = w.saturating_sub(22).max(4);
    let mut lo = 0.0;
    for (edge, count) in c.histogram.edges.iter().zip(&c.histogram.counts) {
        let bar = "█".repeat((*count as usize * bar_w).div_ceil(peak));
        l.push(Line::raw(format!("{lo:>6.2}-{edge:<6.2} {bar} {count}")));
        lo = *edge;
    }
    l.push(Line::raw(""));
    l.push(bold("Where it fires most (text mean, strongest token)"));
    if c.top_texts.is_empty() {
        l.push(Line::raw("  no text activates it"));
    }
    for t in &c.top_texts {
        let token = match &t.top_token {
            Some(k) => format!(" · {:?} {}", k.token, num(k.activation)),
            None => String::new(),
        };
        let head = format!("{:>6} {}{token}", num(t.activation), t.category);
        l.push(Line::raw(head));
        l.push(Line::styled(format!("       {}", excerpt(&t.content, w.saturating_sub(7))), Style::new().add_modifier(Modifier::DIM)));
    }
    f.render_widget(Paragraph::new(l).scroll((view.scroll as u16, 0)), left);

    if let (None, Some(why)) = (&c.logits, &view.failed) {
        f.render_widget(Paragraph::new(format!("failed: {why}")).wrap(ratatui::widgets::Wrap { trim: true }), right);
        return;
    }
    let mut r: Vec<Line> = Vec::new();
    match &c.logits {
        None => r.push(Line::raw("computing the logit lens and neighbours…")),
        Some(lg) => {
            // Promoted and suppressed side by side, so both neighbour lists fit below from 100x30 (smaller terminals scroll with ↑/↓).
            let tw = (right.width as usize).saturating_sub(17) / 2;
            let token = |t: &crate::lens::TokenLogit| excerpt(&format!("{:?}", t.token), tw);
            r.push(bold(format!("{:<w$}  suppresses", "Logit lens: promotes", w = tw + 7)));
            for (p, s) in lg.promoted.iter().zip(&lg.suppressed) {
                r.push(Line::raw(format!("{:+6.2} {:<tw$}  {:+6.2} {}", p.logit, token(p), s.logit, token(s))));
            }
        }
    }
    for n in &c.neighbours {
        r.push(bold(format!("Nearest in layer {} (decoder cosine)", n.layer)));
        for x in &n.features {
            let label = x.label.as_deref().map(|s| excerpt(s, right.width.saturating_sub(18) as usize)).unwrap_or_default();
            r.push(Line::raw(format!("  #{:<6} {:.3} {label}", x.feature, x.cosine)));
        }
    }
    f.render_widget(Paragraph::new(r).scroll((view.scroll as u16, 0)), right);
}
