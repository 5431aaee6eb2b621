//! The graph view: a line of what the graph is, the grid (logits on top, layers from the
//! last down, token embeddings, the prompt's tokens along the bottom; a glyph per node, a
//! group's number in place of its members' glyphs), then the selected node with its
//! strongest edges in and out, the groups' edges, and the last ablation's logits.

use super::selected;
use crate::graph::reading::{Kind, Reading};
use crate::ui::action::Mode;
use crate::ui::context::{Asked, Context};
use crate::ui::hits::{HitMap, Target};
use crate::ui::screens::GraphScreen;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// Columns of the lane names (`logits`, `L17`, `emb`) and the rule after them.
const LANE_NAME: u16 = 7;
/// Edges listed each way, at most.
const EDGES: usize = 12;

pub fn draw(f: &mut Frame, view: &GraphScreen, ctx: &Context, hits: &HitMap, area: Rect) {
    let upto = view.upto.map_or_else(String::new, |u| format!(" (first {u} tokens)"));
    let head = format!("Graph · {}{upto}", one_line(&view.prompt, 40));
    let block = super::view_frame_hinted(head, Mode::Graph, area.width);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(r) = view.reading.as_deref() else {
        let why = view.failed.as_ref().map_or_else(
            || "computing the graph… (the replacement model, then a row per feature, the most influential first; the gauge below says how far)".to_string(),
            |w| format!("failed: {w}"),
        );
        f.render_widget(Paragraph::new(format!("prompt: {}\n{why}", one_line(&view.prompt, 400))).wrap(Wrap { trim: true }), inner);
        return;
    };
    let shown: Vec<usize> = (0..r.len()).filter(|&i| r.shown(i, view.threshold)).collect();
    let count = |k: Kind| shown.iter().filter(|&&i| r.kinds[i] == k).count();
    let summary = format!(
        "{} features, {} errors, {} edges at threshold {:.2} · {}",
        count(Kind::Feature),
        count(Kind::Error),
        r.edges(view.threshold).len(),
        view.threshold,
        view.line
    );
    let grid_h = (r.lanes() as u16 + 1).min((inner.height.saturating_sub(1) * 11 / 20).max(5));
    let head_h = if summary.chars().count() > inner.width as usize { 2 } else { 1 };
    let [top, grid, details] = Layout::vertical([Constraint::Length(head_h), Constraint::Length(grid_h), Constraint::Min(0)]).areas(inner);
    f.render_widget(Paragraph::new(summary).wrap(Wrap { trim: true }), top);
    draw_grid(f, view, r, hits, grid);
    draw_details(f, view, r, ctx, details);
}

/// A text on one line, cut to `max` characters with an ellipsis.
fn one_line(s: &str, max: usize) -> String {
    let s = s.replace('\n', "↵");
    if s.chars().count() <= max {
        s
    } else {
        s.chars().take(max.saturating_sub(1)).chain(['…']).collect()
    }
}

/// A probability in four characters or so, small ones in scientific notation.
fn prob(p: f32) -> String {
    if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

/// Each position's column width: room for its fullest cell and its token (up to 12) where
/// every column fits in `room`, else its token's alone (up to 10), scrolling sideways.
fn column_widths(r: &Reading, threshold: f64, room: u16) -> Vec<u16> {
    let token = |p: usize| one_line(r.token(p), 11).chars().count() as u16 + 1;
    let fullest = |p: usize| (0..r.lanes()).map(|l| r.cell(l, p, threshold).len()).max().unwrap_or(0) as u16 + 1;
    let roomy: Vec<u16> = (0..r.n_pos()).map(|p| token(p).max(fullest(p)).clamp(3, 12)).collect();
    if roomy.iter().sum::<u16>() <= room {
        return roomy;
    }
    (0..r.n_pos()).map(|p| token(p).clamp(3, 10)).collect()
}

/// The first of `widths` to show so that `want` is on screen in `room` columns.
fn first_column(widths: &[u16], want: usize, room: u16) -> usize {
    let mut first = 0;
    while first < want && widths[first..=want].iter().sum::<u16>() > room {
        first += 1;
    }
    first
}

fn glyph(r: &Reading, i: usize) -> char {
    match r.kinds[i] {
        Kind::Feature => '●',
        Kind::Error => '×',
        Kind::Token => '■',
        Kind::Logit => '▲',
    }
}

fn draw_grid(f: &mut Frame, view: &GraphScreen, r: &Reading, hits: &HitMap, area: Rect) {
    if area.height < 2 || area.width <= LANE_NAME + 3 {
        return;
    }
    let room = area.width - LANE_NAME;
    let widths = column_widths(r, view.threshold, room);
    let here = r.places[view.selected];
    let first = first_column(&widths, here.pos.min(widths.len().saturating_sub(1)), room);
    // Lanes on view: the token row stays at the bottom; the rest scroll with the selection.
    let rows = (area.height - 1) as usize;
    let top_lane = here.lane.saturating_sub(rows.saturating_sub(1)).min(r.lanes().saturating_sub(rows));
    let group_of = |i: usize| view.groups.iter().position(|g| g.contains(&i));
    for (row, lane) in (top_lane..r.lanes()).take(rows).enumerate() {
        let y = area.y + row as u16;
        let mut spans = vec![Span::raw(format!("{:<6}│", r.lane_name(lane)))];
        let mut x = area.x + LANE_NAME;
        for (p, &w) in widths.iter().enumerate().skip(first) {
            if x + w > area.right() {
                break;
            }
            let cell = r.cell(lane, p, view.threshold);
            let fit = (w - 1) as usize;
            let mut text = 0;
            // The selection is always drawn, in the cell's last slot if it is further down.
            let chosen: Vec<usize> = if cell.len() > fit && cell.iter().position(|&i| i == view.selected).is_some_and(|k| k >= fit) {
                cell.iter().copied().take(fit - 1).chain([view.selected]).collect()
            } else {
                cell.iter().copied().take(fit).collect()
            };
            for &i in &chosen {
                let g = group_of(i).map_or(glyph(r, i), |g| char::from_digit((g as u32 + 1) % 10, 10).unwrap_or('#'));
                let style = if i == view.selected { selected() } else { Style::new() };
                spans.push(Span::styled(g.to_string(), style));
                hits.add(Rect::new(x + text as u16, y, 1, 1), Target::GraphNode(i));
                text += 1;
            }
            let more = cell.len() > chosen.len();
            let pad = w as usize - text;
            spans.push(Span::raw(if more { format!("+{}", " ".repeat(pad - 1)) } else { " ".repeat(pad) }));
            x += w;
        }
        f.render_widget(Paragraph::new(Line::from(spans)), Rect { y, height: 1, ..area });
    }
    // The prompt's tokens under their columns.
    let mut tokens = format!("{:<6}│", if first > 0 { "◀" } else { "" });
    let mut x = LANE_NAME;
    for (p, &w) in widths.iter().enumerate().skip(first) {
        if x + w > area.width {
            break;
        }
        tokens.push_str(&format!("{:<width$}", one_line(r.token(p), w as usize - 1), width = w as usize));
        x += w;
    }
    f.render_widget(Paragraph::new(tokens).style(Style::new().add_modifier(Modifier::DIM)), Rect { y: area.bottom() - 1, height: 1, ..area });
}

/// A node as a line names it: `L3 #45 @5 " cat"`, with its label or clerp when it has one.
fn node_text(r: &Reading, i: usize, ctx: &Context) -> String {
    let mut s = r.name(i);
    if r.kinds[i] != Kind::Logit {
        s.push_str(&format!(" {:?}", r.token(r.places[i].pos)));
    }
    if let Some(label) = label(r, i, ctx) {
        s.push_str(&format!(" {label}"));
    }
    s
}

fn label(r: &Reading, i: usize, ctx: &Context) -> Option<String> {
    let clerp = &r.file.nodes[i].clerp;
    if !clerp.is_empty() && r.kinds[i] == Kind::Feature {
        return Some(clerp.clone());
    }
    let (layer, feature) = (r.layer[i]?, r.feature[i]?);
    let sae = crate::ui::screens::graph::transcoder_sae(ctx, layer, feature)?;
    ctx.labels.get(sae, feature).map(String::from)
}

fn draw_details(f: &mut Frame, view: &GraphScreen, r: &Reading, ctx: &Context, area: Rect) {
    if area.height == 0 {
        return;
    }
    let i = view.selected;
    let node = &r.file.nodes[i];
    let mut head = format!("▶ {}", node_text(r, i, ctx));
    if let Some(a) = node.activation {
        head.push_str(&format!(" · activation {a:.3}"));
    }
    if let Some(x) = node.influence {
        head.push_str(&format!(" · influence {x:.3}"));
    }
    if r.kinds[i] == Kind::Logit {
        head.push_str(&format!(" · p {}", prob(node.token_prob as f32)));
    }
    let mut tail = Vec::new();
    if !view.groups.is_empty() {
        let sizes: Vec<String> =
            view.groups.iter().enumerate().map(|(k, g)| format!("[{}] {} node{}", k + 1, g.len(), if g.len() == 1 { "" } else { "s" })).collect();
        tail.push(format!("groups: {} (Space adds to [{}])", sizes.join(", "), view.groups.len()));
        let e = r.group_edges(&view.groups, view.threshold);
        if !e.is_empty() {
            tail.push(format!("  {}", e.iter().take(6).map(|(a, b, w)| format!("[{}]→[{}] {w:+.3}", a + 1, b + 1)).collect::<Vec<_>>().join(" · ")));
        }
    }
    if let Some((features, asked)) = &view.ablation {
        let which: Vec<String> = features.iter().map(|x| format!("{}:{}@{}", x.layer, x.feature, x.pos)).collect();
        tail.push(format!("ablated {}:", one_line(&which.join(" "), 60)));
        match asked {
            Asked::Pending => tail.push("  running the model with them off…".into()),
            Asked::Failed(w) => tail.push(format!("  failed: {w}")),
            Asked::Ready(c) => {
                for m in c.tokens.iter().take(3) {
                    tail.push(format!(
                        "  {:<12} p {} → {} frozen attention, {} free",
                        one_line(&format!("{:?}", m.text), 12),
                        prob(m.clean[0]),
                        prob(m.frozen_attention[0]),
                        prob(m.free_attention[0])
                    ));
                }
            }
        }
    }
    let edge_line = |(j, w): (usize, f64)| format!("{w:+9.3}  {}", node_text(r, j, ctx));
    let (ins, outs) = (r.incoming(i, view.threshold), r.outgoing(i, view.threshold));
    let wide = area.width >= 100;
    // What room the edge lists have once the head and the tail are drawn: side by side,
    // or one above the other, each with its title.
    let room = (area.height as usize).saturating_sub(1 + tail.len());
    // Stacked, the lists share the rows: a short one leaves the rest to the other.
    let (n_in, n_out) = if wide {
        let each = room.saturating_sub(1).clamp(1, EDGES);
        (each, each)
    } else {
        let rows = room.saturating_sub(2).max(2);
        let n_out = outs.len().max(1).min(rows / 2).max(1);
        let n_in = (rows - n_out).clamp(1, EDGES);
        (n_in, rows.saturating_sub(ins.len().max(1).min(n_in)).clamp(1, EDGES))
    };
    let side = |title: &str, e: &[(usize, f64)], each: usize| -> Vec<String> {
        let mut v = vec![format!("{title} ({})", e.len())];
        v.extend(e.iter().take(each).map(|&x| edge_line(x)));
        if e.is_empty() {
            v.push("  none above the threshold".into());
        }
        v
    };
    let (left, right) = (side("in, strongest first", &ins, n_in), side("out, strongest first", &outs, n_out));
    let mut lines = vec![Line::styled(head, Style::new().add_modifier(Modifier::BOLD))];
    if wide {
        let half = (area.width / 2) as usize;
        for k in 0..left.len().max(right.len()) {
            let l = left.get(k).map_or("", String::as_str);
            let rr = right.get(k).map_or("", String::as_str);
            lines.push(Line::raw(format!("{:<half$}{}", one_line(l, half - 1), rr)));
        }
    } else {
        lines.extend(left.into_iter().chain(right).map(Line::raw));
    }
    // The groups and the ablation stay in sight: the edge lists give way first.
    lines.truncate((area.height as usize).saturating_sub(tail.len()).max(1));
    lines.extend(tail.into_iter().map(Line::raw));
    f.render_widget(Paragraph::new(lines), area);
}
