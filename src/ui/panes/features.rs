//! Feature tables: the focused category, or the marked ones side by side with the
//! features they share highlighted.

use super::{frame, num, selected};
use crate::ui::action::Pane;
use crate::ui::context::Context;
use crate::ui::hits::HitMap;
use crate::ui::screens::MainScreen;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};
use ratatui::Frame;

pub fn draw(f: &mut Frame, app: &Context, main: &MainScreen, hits: &HitMap, area: Rect) {
    let cats = app.table_categories();
    let so_far = app.results.as_ref().filter(|r| r.partial).map(|r| format!("· {} texts so far ", r.set.texts.len())).unwrap_or_default();
    let title = if cats.len() > 1 {
        // The long form where it fits between the corners, else a short one: never cut.
        let long = format!(" Features · {} · {} categories side by side (shared in bold) {so_far}", app.sae(), cats.len());
        if long.chars().count() + 2 <= area.width as usize {
            long
        } else {
            format!(" Features · {} · {} side by side, shared bold {so_far}", app.sae(), cats.len())
        }
    } else {
        format!(" Features · {} · {} {so_far}", app.sae(), app.categories.get(cats[0]).map_or("", |c| c.0.as_str()))
    };
    let outer = frame(main.pane == Pane::Features, title);
    let inner = outer.inner(area);
    f.render_widget(outer, area);
    if app.results.is_none() {
        f.render_widget(Paragraph::new(super::not_ready(app)).wrap(ratatui::widgets::Wrap { trim: true }), inner);
        return;
    }
    let columns = Layout::horizontal(cats.iter().map(|_| Constraint::Ratio(1, cats.len() as u32))).split(inner);
    let shared = app.shared_features();
    for (col, &c) in columns.iter().zip(&cats) {
        draw_one(f, app, main, hits, c, *col, &shared, cats.len() > 1);
    }
}

#[allow(clippy::too_many_arguments)]
fn draw_one(
    f: &mut Frame,
    app: &Context,
    main: &MainScreen,
    hits: &HitMap,
    category: usize,
    area: Rect,
    shared: &std::collections::BTreeSet<u32>,
    multi: bool,
) {
    let Some(m) = app.metrics(category) else { return };
    // Columns after the first are separated by a rule; the first sits on the outer border.
    let first = app.table_categories().first() == Some(&category);
    let borders = if multi && !first { Borders::LEFT } else { Borders::NONE };
    let mut block = Block::default().borders(borders);
    if multi {
        block = block.title(app.categories[category].0.clone());
    }
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [head, table] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    let header = if inner.width >= 46 {
        format!("Peak {} Gini {:.2} Sum {} Top5 {:.1}% Spec {}", num(m.peak), m.gini, num(m.top_sum), m.top_share * 100.0, m.spec)
    } else {
        format!("Pk{} G{:.2} Σ{} {:.0}% Sp{}", num(m.peak), m.gini, num(m.top_sum), m.top_share * 100.0, m.spec)
    };
    f.render_widget(Line::styled(header, Style::new().add_modifier(Modifier::BOLD)), head);
    // Columns give way from the right as space shrinks.
    let w = table.width;
    let mid = w >= 40;
    // Labels, when loaded, take the spare width; the Neuronpedia id then needs more room.
    let labelled = mid && !app.labels.is_empty();
    // The Neuronpedia ids whole or not at all (Gemma Scope's `5-gemmascope-2-res-16k/18` is
    // 25 wide): the column shows where the fixed columns, its longest id and a label's
    // minimum fit.
    let ids: Vec<String> = m.ranked.iter().map(|t| app.info.ids.short(app.sae(), t.feature)).collect();
    let id_w = ids.iter().map(|s| s.chars().count()).max().unwrap_or(0).max("neuronpedia".len()) as u16;
    let fixed: u16 = if mid { 3 + 7 + 6 + 5 + 6 + 4 + 6 } else { 3 + 7 + 6 + 5 + 4 };
    let wide = app.info.ids.sae(app.sae()).is_some() && w >= fixed + id_w + if labelled { 11 } else { 0 };
    let mut cols = vec!["#", "feature", "act", "spec"];
    let mut widths = vec![Constraint::Length(3), Constraint::Length(7), Constraint::Length(6), Constraint::Length(5)];
    if mid {
        cols.extend(["share", "n≥θ"]);
        widths.extend([Constraint::Length(6), Constraint::Length(4)]);
    }
    if wide {
        cols.push("neuronpedia");
        widths.push(if labelled { Constraint::Length(id_w) } else { Constraint::Min(id_w) });
    }
    if labelled {
        cols.push("label");
        widths.push(Constraint::Min(10));
    }
    let rows = m.ranked.iter().enumerate().map(|(i, t)| {
        let mut cells = vec![format!("{}", i + 1), format!("#{}", t.feature), num(t.activation), format!("{:+}", t.specialist)];
        if mid {
            cells.extend([format!("{:.1}%", t.share * 100.0), format!("{}", t.n_above)]);
        }
        if wide {
            cells.push(ids[i].clone());
        }
        if labelled {
            cells.push(app.labels.get(app.sae(), t.feature).unwrap_or("").to_string());
        }
        let mut style = Style::new();
        if shared.contains(&t.feature) {
            style = style.add_modifier(Modifier::BOLD).fg(Color::Yellow);
        }
        if i == main.row && main.pane == Pane::Features {
            style = style.patch(selected());
        }
        Row::new(cells).style(style)
    });
    let mut state = main.scroll.state(main.row);
    let t = Table::new(rows, widths).header(Row::new(cols).style(Style::new().add_modifier(Modifier::UNDERLINED))).column_spacing(1);
    f.render_stateful_widget(t, table, &mut state);
    main.scroll.keep(&state);
    let body = Rect { y: table.y + 1, height: table.height.saturating_sub(1), ..table };
    hits.rows(body, state.offset(), m.ranked.len(), crate::ui::hits::Target::FeatureRow);
}
