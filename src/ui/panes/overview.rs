//! The SAE overview: the layer's firing-rate (density) histogram over the corpus, dead
//! features and L0 on top; every feature below, sorted as chosen, with the token its top
//! context peaks on.

use super::{num, selected};
use crate::dashboard::{DENSITY_BINS, DENSITY_BINS_PER_DECADE, DENSITY_FROM};
use crate::interp::card::excerpt;
use crate::ui::context::{Asked, Context};
use crate::ui::hits::{HitMap, Target};
use crate::ui::screens::OverviewScreen;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Sparkline, Table, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, view: &OverviewScreen, ctx: &Context, hits: &HitMap, area: Rect) {
    let layer = ctx.sae();
    let block = super::view_frame_hinted(format!("SAE overview · {layer} · by {}", view.sort.name()), crate::ui::action::Mode::Overview, area.width);
    let inner = block.inner(area);
    f.render_widget(block, area);
    // Neuronpedia's numbers (`--neuronpedia`), labelled as theirs, above saescope's own.
    let np = ctx.neuronpedia.get(&layer).map(|o| {
        let head = format!("{} {}: {} features · {} dead", o.origin, o.source, o.features, o.dead);
        // The density as a sparkline where it fits, neighbouring bins summed to make it fit.
        let room = (inner.width as usize).saturating_sub(head.chars().count() + " · density ".len());
        let mut counts = o.density_counts.clone();
        while counts.len() > room && counts.len() > 8 {
            counts = counts.chunks(2).map(|p| p.iter().sum()).collect();
        }
        if counts.len() <= room {
            Line::raw(format!("{head} · density {}", crate::dashboard::text::sparkline(&counts)))
        } else {
            Line::raw(head)
        }
    });
    // The SAE's quality on the samples (eval.rs), measured when the overview first shows it.
    let quality = match ctx.quality.get(&layer) {
        Some(Asked::Ready(q)) => [vec!["On the samples:".to_string()], q.parts()].concat(),
        Some(Asked::Failed(why)) => vec![format!("Quality on the samples failed: {why}")],
        _ => vec!["Quality on the samples: measuring (L0, explained variance, CE and KL with the reconstruction spliced in)…".into()],
    };
    let head: Vec<Line> = fit(&quality, inner.width as usize).into_iter().map(Line::raw).chain(np).collect();
    let [top, inner] = Layout::vertical([Constraint::Length(head.len() as u16), Constraint::Min(0)]).areas(inner);
    f.render_widget(Paragraph::new(head), top);
    let Some(index) = ctx.index.as_ref() else {
        let why = match (&ctx.corpus, &ctx.index_note) {
            (None, _) => "No corpus. Start saescope with --corpus PATH (a text file, a folder, or JSON Lines) to index one (docs/dashboards.md).".into(),
            (Some(_), Some(note)) => note.clone(),
            (Some(c), None) => format!("{c} is not indexed yet."),
        };
        f.render_widget(Paragraph::new(why).wrap(Wrap { trim: true }), inner);
        return;
    };
    let Some(o) = index.overview(layer) else {
        f.render_widget(
            Paragraph::new(format!(
                "SAE {layer} is not in the index (indexed: {:?})",
                index.layers.iter().filter_map(|l| l.key()).map(|k| k.to_string()).collect::<Vec<_>>()
            )),
            inner,
        );
        return;
    };
    let [stats, chart, axis, table] = Layout::vertical([Constraint::Length(1), Constraint::Length(3), Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    f.render_widget(
        Line::raw(format!("{}: {} tokens · {} features · {} dead · L0 {:.1} per token", excerpt(&index.corpus, 40), o.tokens, o.d_sae, o.dead, o.l0)),
        stats,
    );
    let bins = o.density_counts.len() as u16;
    let [label, spark] = Layout::horizontal([Constraint::Length(AXIS_LABEL as u16), Constraint::Length(bins * COLS_PER_BIN as u16)]).areas(chart);
    f.render_widget(Paragraph::new(vec![Line::raw("density"), Line::raw("(features"), Line::raw(" per bin)")]), label);
    let data: Vec<u64> = o.density_counts.iter().flat_map(|&c| std::iter::repeat_n(u64::from(c), COLS_PER_BIN)).collect();
    f.render_widget(Sparkline::default().data(&data), spark);
    f.render_widget(Line::styled(density_axis(), Style::new().add_modifier(Modifier::DIM)), axis);

    let rows = view.rows(ctx, index);
    let w = table.width.saturating_sub(48) as usize;
    let shown = rows.iter().enumerate().map(|(i, r)| {
        let style = if i == view.row { selected() } else { Style::new() };
        let peak = r.peak_token.as_deref().map(|t| excerpt(&format!("{t:?}"), 12)).unwrap_or_default();
        Row::new([
            format!("#{}", r.feature),
            num(r.max),
            format!("{:.2e}", r.frac),
            format!("{:.2}", r.mean),
            peak,
            r.label.as_deref().map(|l| excerpt(l, w)).unwrap_or_default(),
        ])
        .style(style)
    });
    let table_widget = Table::new(
        shown,
        [Constraint::Length(7), Constraint::Length(6), Constraint::Length(9), Constraint::Length(6), Constraint::Length(13), Constraint::Min(0)],
    )
    .header(Row::new(["feature", "max", "frac", "mean", "peaks on", "label"]).style(Style::new().add_modifier(Modifier::UNDERLINED)));
    let mut state = view.scroll.state(view.row);
    f.render_stateful_widget(table_widget, table, &mut state);
    view.scroll.keep(&state);
    let body = Rect { y: table.y + 1, height: table.height.saturating_sub(1), ..table };
    hits.rows(body, state.offset(), rows.len(), Target::OverviewRow);
}

/// Columns left of the density chart (its label), and columns a density bin takes.
const AXIS_LABEL: usize = 11;
const COLS_PER_BIN: usize = 2;

/// The density chart's x axis: a tick every two decades at the left edge of its bin, from
/// DENSITY_FROM to 1 at the chart's right edge.
fn density_axis() -> String {
    const DECADES_PER_TICK: usize = 2;
    let per_tick = DECADES_PER_TICK * DENSITY_BINS_PER_DECADE * COLS_PER_BIN;
    let mut axis = format!("{:<AXIS_LABEL$}", "frac (log)");
    for t in 0..=DENSITY_BINS / (DECADES_PER_TICK * DENSITY_BINS_PER_DECADE) {
        let exp = DENSITY_FROM as i64 + (DECADES_PER_TICK * t) as i64;
        let tick = if exp == 0 { "1".to_string() } else { format!("1e{exp}") };
        axis.push_str(&format!("{tick:<per_tick$}"));
    }
    axis.trim_end().to_string()
}

/// `parts` joined by " · " into as few lines of `width` as they fill, a part never split
/// (the first part and the second on one line: "On the samples: L0 …").
fn fit(parts: &[String], width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let sep = if i == 1 { " " } else { " · " };
        match lines.last_mut() {
            Some(l) if l.chars().count() + sep.chars().count() + p.chars().count() <= width => {
                l.push_str(sep);
                l.push_str(p);
            }
            _ => lines.push(p.clone()),
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::{density_axis, AXIS_LABEL, COLS_PER_BIN};
    use crate::dashboard::{density_bin, DENSITY_BINS};

    /// A tick stands above the bin its value falls in, and "1" at the chart's right edge.
    #[test]
    fn ticks_stand_at_the_bins_of_their_values() {
        let axis = density_axis();
        for (tick, frac) in [("1e-8", 1.5e-8), ("1e-6", 1.5e-6), ("1e-4", 1.5e-4), ("1e-2", 1.5e-2)] {
            let col = AXIS_LABEL + COLS_PER_BIN * density_bin(frac);
            assert!(axis[col..].starts_with(tick), "{tick} not at column {col}: {axis:?}");
        }
        assert_eq!(&axis[AXIS_LABEL + COLS_PER_BIN * DENSITY_BINS..], "1");
    }
}
