//! Sparkline histograms: each charted category's top-k activations at this layer, and the
//! focused category's Peak and Sum across layers (the seed's Figure 2a).

use super::{frame, num};
use crate::ui::app::{App, Pane};
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Sparkline};
use ratatui::Frame;

fn row(f: &mut Frame, area: Rect, y: u16, label: &str, values: &[f32], caption: String) {
    if y >= area.y + area.height {
        return;
    }
    // Labels shrink on narrow screens so the bars and numbers keep their room.
    let label_w: u16 = (area.width / 3).clamp(5, 15);
    let line = Rect { x: area.x, y, width: area.width, height: 1 };
    f.render_widget(Line::raw(format!("{label:<w$.w$}", w = label_w as usize - 1)), line);
    let width = (values.len() as u16).min(area.width.saturating_sub(label_w));
    let data: Vec<u64> = values.iter().map(|&v| (v.max(0.0) * 100.0) as u64).collect();
    f.render_widget(Sparkline::default().data(&data), Rect { x: area.x + label_w, y, width, height: 1 });
    let cap_x = area.x + label_w + width + 1;
    if cap_x < area.x + area.width {
        f.render_widget(Line::raw(caption), Rect { x: cap_x, y, width: area.x + area.width - cap_x, height: 1 });
    }
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let block = frame(app, Pane::Charts, format!(" Top-k · layer {} / trend ", app.layer()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(res) = &app.results else {
        f.render_widget(Paragraph::new("waiting for results"), inner);
        return;
    };
    let mut y = inner.y;
    for c in app.chart_categories() {
        if let Some(m) = app.metrics(c) {
            let v: Vec<f32> = m.top.iter().map(|t| t.activation).collect();
            let cap = format!("{}…{}", num(v.first().copied().unwrap_or(0.0)), num(v.last().copied().unwrap_or(0.0)));
            row(f, inner, y, &app.categories[c].0, &v, cap);
            y += 1;
        }
    }
    y += 1;
    let focused = &app.categories[app.focused].0;
    let per_layer =
        |pick: fn(&crate::analysis::CategoryLayer) -> f32| -> Vec<f32> { res.analysis.layers.iter().map(|l| pick(&l.categories[app.focused])).collect() };
    let layers = app.layers.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(",");
    if y < inner.y + inner.height {
        f.render_widget(Line::raw(format!("{focused} · layers {layers}")), Rect { x: inner.x, y, width: inner.width, height: 1 });
        y += 1;
    }
    for (name, v) in [("Peak", per_layer(|m| m.peak)), ("Sum", per_layer(|m| m.top_sum))] {
        let cap = format!("{}→{}", num(v.first().copied().unwrap_or(0.0)), num(v.last().copied().unwrap_or(0.0)));
        row(f, inner, y, name, &v, cap);
        y += 1;
    }
}
