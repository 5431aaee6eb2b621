//! The feature card: URL, label, the feature's activation in every text as a histogram,
//! the texts and tokens where it fires most (left); the logit lens and its nearest
//! features in the adjacent loaded SAEs (right). With a corpus index, the corpus
//! sections take the left (firing rate, histogram, top contexts and interval samples, one
//! selectable line each) and the sample sections move right. Weight-derived parts and
//! the contexts' shading show once the model thread has filled them in.

use super::num;
use crate::interp::card::excerpt;
use crate::ui::hits::{HitMap, Target};
use crate::ui::screens::CardScreen;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

fn bold(s: impl Into<String>) -> Line<'static> {
    Line::styled(s.into(), Style::new().add_modifier(Modifier::BOLD))
}

pub fn draw(f: &mut Frame, view: &CardScreen, area: Rect, hits: &HitMap) {
    let c = &view.card;
    let block = super::view_frame_hinted(format!("Feature #{} · {}", c.feature, c.sae), crate::ui::action::Mode::Card, area.width);
    let inner = block.inner(area);
    f.render_widget(block, area);
    // URL and label across the whole width: the URL is there to be copied whole.
    let [head, body] = Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(inner);
    let label = match &c.label {
        Some(label) => Line::from(vec![Span::styled("label: ", Style::new().add_modifier(Modifier::BOLD)), Span::raw(label.clone())]),
        None => Line::raw("label: none (load Neuronpedia explanations with --labels FILE)"),
    };
    f.render_widget(Paragraph::new(vec![Line::raw(c.neuronpedia_url.clone().unwrap_or_else(|| crate::interp::card::NO_PAGE.into())), label]), head);
    let [left, right] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).spacing(1).areas(body);
    let mut r = weight_lines(view, right.width);
    if let Some(np) = &c.neuronpedia {
        r.push(Line::raw(""));
        r.extend(neuronpedia_lines(np, right.width as usize));
    }
    match &c.corpus {
        // The corpus says most about meaning: it takes the left, the samples go right.
        Some(corpus) => {
            r.push(Line::raw(""));
            r.extend(sample_lines(c, right.width as usize));
            let (lines, at) = corpus_lines(view, corpus, left.width as usize);
            // Keep the selected context in view; PgUp/PgDn scroll the right side.
            let sel = at.get(view.row).copied().unwrap_or(0);
            let offset = sel.saturating_sub(left.height.saturating_sub(1) as usize);
            for (i, &line) in at.iter().enumerate() {
                if line >= offset && line < offset + left.height as usize {
                    hits.add(Rect::new(left.x, left.y + (line - offset) as u16, left.width, 1), Target::ContextRow(i));
                }
            }
            f.render_widget(Paragraph::new(lines).scroll((offset as u16, 0)), left);
        }
        None => f.render_widget(Paragraph::new(sample_lines(c, left.width as usize)).scroll((view.scroll as u16, 0)), left),
    }
    if let (None, Some(why)) = (&c.logits, &view.failed) {
        f.render_widget(Paragraph::new(format!("failed: {why}")).wrap(ratatui::widgets::Wrap { trim: true }), right);
        return;
    }
    f.render_widget(Paragraph::new(r).scroll((view.scroll as u16, 0)), right);
}

/// The sample texts' sections: the feature's mean activation in every text as a histogram,
/// and the texts where it fires most.
fn sample_lines(c: &crate::interp::card::Card, width: usize) -> Vec<Line<'static>> {
    let w = width.saturating_sub(2);
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
        l.push(Line::raw(format!("{:>6} {}{token}", num(t.activation), t.category)));
        l.push(Line::styled(format!("       {}", excerpt(&t.content, w.saturating_sub(7))), Style::new().add_modifier(Modifier::DIM)));
    }
    l
}

/// The weight-derived sections: logit lens and nearest features in the adjacent SAEs.
fn weight_lines(view: &CardScreen, width: u16) -> Vec<Line<'static>> {
    let c = &view.card;
    let mut r: Vec<Line> = Vec::new();
    match &c.logits {
        None => r.push(Line::raw("computing the logit lens and neighbours…")),
        Some(lg) => {
            // Promoted and suppressed side by side, so both neighbour lists fit below from 100x30 (smaller terminals scroll with ↑/↓).
            let tw = (width as usize).saturating_sub(17) / 2;
            let token = |t: &crate::interp::lens::TokenLogit| excerpt(&format!("{:?}", t.token), tw);
            r.push(bold(format!("{:<w$}  suppresses", "Logit lens: promotes", w = tw + 7)));
            for (p, s) in lg.promoted.iter().zip(&lg.suppressed) {
                r.push(Line::raw(format!("{:+6.2} {:<tw$}  {:+6.2} {}", p.logit, token(p), s.logit, token(s))));
            }
        }
    }
    for n in &c.neighbours {
        r.push(bold(format!("{}: nearest (cosine)", n.sae)));
        for x in &n.features {
            let label = x.label.as_deref().map(|s| excerpt(s, width.saturating_sub(18) as usize)).unwrap_or_default();
            r.push(Line::raw(format!("  #{:<6} {:.3} {label}", x.feature, x.cosine)));
        }
    }
    r
}

/// Neuronpedia's numbers and top activations for the feature (`--neuronpedia`), headed
/// with where they come from, so they are never read as saescope's own.
fn neuronpedia_lines(np: &crate::neuronpedia::dump::FeatureDump, width: usize) -> Vec<Line<'static>> {
    // Origin and source on one line where they fit, else the source under its origin.
    let head = format!("{}: {}", np.origin(), np.source);
    let mut l = if head.chars().count() <= width { vec![bold(head)] } else { vec![bold(format!("{}:", np.origin())), Line::raw(excerpt(&np.source, width))] };
    if !np.data_sources.is_empty() {
        l.push(Line::styled(format!("data: {}", excerpt(&np.data_sources.join(", "), width.saturating_sub(6))), Style::new().add_modifier(Modifier::DIM)));
    }
    match &np.stats {
        Some(st) => {
            l.push(Line::raw(format!("frac {:.2e} · max {}", st.frac_nonzero, num(st.max_act_approx as f32))));
            if !st.hist_heights.is_empty() {
                let mut counts: Vec<u32> = st.hist_heights.iter().map(|&h| h.max(0.0) as u32).collect();
                let (lo, hi) = (st.hist_values.first().copied().unwrap_or(0.0), st.hist_values.last().copied().unwrap_or(0.0));
                let label = format!(" {lo:.2}…{hi:.2}");
                while counts.len() > width.saturating_sub(label.chars().count()).max(8) {
                    counts = counts.chunks(2).map(|p| p.iter().sum()).collect();
                }
                l.push(Line::raw(format!("{}{label}", crate::dashboard::text::sparkline(&counts))));
            }
        }
        None => l.push(Line::raw("no features row for it")),
    }
    l.push(bold(format!("Top activations ({})", np.top.len())));
    if np.top.is_empty() {
        l.push(Line::raw("  none in the dump"));
    }
    for a in &np.top {
        l.push(strip_line(&a.context, width, false, false));
    }
    if !np.intervals.is_empty() {
        l.push(bold("Interval samples"));
        for a in &np.intervals {
            l.push(strip_line(&a.context, width, false, false));
        }
    }
    l
}

/// The corpus sections, and the line each context is on (for scrolling and clicks), in
/// `FeatureCorpus::contexts` order.
fn corpus_lines(view: &CardScreen, c: &crate::dashboard::FeatureCorpus, width: usize) -> (Vec<Line<'static>>, Vec<usize>) {
    let mut l: Vec<Line> = Vec::new();
    l.push(bold(format!("Corpus: fires on {} of {} tokens", c.count, c.tokens)));
    l.push(Line::raw(format!("frac {:.2e} · denser than {:.0}% of features", c.frac_nonzero, c.density_percentile * 100.0)));
    l.push(Line::raw(format!("max {} · mean when firing {}", num(c.max), num(c.mean_when_firing as f32))));
    if let (Some(lo), Some(&hi)) = (c.histogram_edges.first(), c.histogram_edges.last()) {
        let top = hi * 2f64.powf(0.25);
        let label = format!(" {lo:.3}…{top:.2} (log)");
        // Neighbouring bins summed until the sparkline fits beside its range.
        let mut counts = c.histogram_counts.clone();
        while counts.len() > width.saturating_sub(label.chars().count()).max(8) {
            counts = counts.chunks(2).map(|p| p.iter().sum()).collect();
        }
        l.push(Line::raw(format!("{}{label}", crate::dashboard::text::sparkline(&counts))));
    }
    let shading = c.top.first().is_some_and(|t| t.values.is_none()) && view.failed.is_none();
    l.push(bold(format!("Top contexts{}", if shading { " (shading…)" } else { "" })));
    if c.top.is_empty() {
        l.push(Line::raw("  it never fires on this corpus"));
    }
    let mut at = Vec::new();
    let mut add = |l: &mut Vec<Line<'static>>, ctx: &crate::dashboard::ContextWindow| {
        let k = at.len();
        at.push(l.len());
        l.push(strip_line(ctx, width, view.values, k == view.row));
    };
    for ctx in &c.top {
        add(&mut l, ctx);
    }
    if !c.intervals.is_empty() {
        l.push(bold("Interval samples"));
    }
    for iv in &c.intervals {
        l.push(Line::styled(format!(" {:.3} – {:.3}", iv.from, iv.to), Style::new().add_modifier(Modifier::DIM)));
        for ctx in &iv.contexts {
            add(&mut l, ctx);
        }
    }
    (l, at)
}

/// One context on one line of `width` columns: its max, then the tokens around the max
/// token (in [[ ]]), at most `STRIP` a side and as many as fit, the left side getting half
/// the room; each shaded by its activation once known, newlines as ↵.
fn strip_line(c: &crate::dashboard::ContextWindow, width: usize, show_values: bool, selected: bool) -> Line<'static> {
    let zeros = vec![0.0; c.tokens.len()];
    let values = c.values.as_deref().unwrap_or(&zeros);
    let max = values.iter().copied().fold(c.max_value, f32::max);
    let shown: Vec<String> = c.tokens.iter().map(|t| t.replace('\n', "↵")).collect();
    let cols = |i: usize| shown[i].chars().count() + if show_values && values[i] > 0.0 { num(values[i]).len() + 2 } else { 0 };
    let room = width.saturating_sub(8 + 4 + cols(c.max_index));
    let (mut from, mut used) = (c.max_index, 0);
    while from > 0 && c.max_index - from < crate::dashboard::text::STRIP && used + cols(from - 1) <= room / 2 {
        from -= 1;
        used += cols(from);
    }
    let mut to = c.max_index + 1;
    while to < shown.len() && to - c.max_index <= crate::dashboard::text::STRIP && used + cols(to) <= room {
        used += cols(to);
        to += 1;
    }
    let mut spans = vec![Span::raw(format!("{:>6} {}", num(c.max_value), if from > 0 { "…" } else { "" }))];
    for line in super::tokens::token_lines(&shown[from..to], &values[from..to], max, show_values, Some(c.max_index - from), None) {
        spans.extend(line.spans);
    }
    let line = Line::from(spans);
    if selected {
        line.style(super::selected())
    } else {
        line
    }
}
