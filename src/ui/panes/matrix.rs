//! Specialist-score matrix: rows are the charted categories' top features of this SAE,
//! columns every category; cells coloured from negative (red) to positive (green), and the
//! number always printed so NO_COLOR loses nothing.

use super::frame;
use crate::ui::action::Pane;
use crate::ui::context::Context;
use crate::ui::hits::{HitMap, Target};
use crate::ui::screens::MainScreen;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

const CELL: usize = 4;
const ROW_LABEL: usize = 6;

/// Heat colour of a score, scaled by the largest |score| possible (the number of texts).
pub fn heat(score: i64, scale: i64) -> Color {
    let t = (score as f64 / scale.max(1) as f64).clamp(-1.0, 1.0);
    let k = (t.abs() * 200.0) as u8 + 40;
    if t > 0.0 {
        Color::Rgb(0, k, 0)
    } else if t < 0.0 {
        Color::Rgb(k, 0, 0)
    } else {
        Color::Rgb(40, 40, 40)
    }
}

pub fn draw(f: &mut Frame, app: &Context, main: &MainScreen, hits: &HitMap, area: Rect) {
    let block = frame(main.pane == Pane::Matrix, format!(" Specialist scores · {} ", app.sae()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(la) = app.sae_analysis() else {
        f.render_widget(Paragraph::new(super::not_ready(app)).wrap(ratatui::widgets::Wrap { trim: true }), inner);
        return;
    };
    let features = app.matrix_features();
    let matrix = la.above.matrix(&features);
    let n_cols = ((inner.width as usize).saturating_sub(ROW_LABEL) / CELL).min(app.categories.len());
    let scale = app.categories.iter().map(|c| c.1 as i64).sum::<i64>();
    let mut lines = Vec::new();
    let mut header = format!("{:<ROW_LABEL$}", "feat");
    for (name, _) in app.categories.iter().take(n_cols) {
        header.push_str(&format!("{:>CELL$.3}", name));
    }
    if n_cols < app.categories.len() {
        header.push('…');
    }
    lines.push(Line::raw(header));
    let visible = (inner.height as usize).saturating_sub(2).max(1);
    // The selected row stays in view.
    let first = main.matrix_row.saturating_sub(visible - 1);
    for (k, (f_id, row)) in features.iter().zip(&matrix).enumerate().skip(first).take(visible) {
        hits.add(Rect::new(inner.x, inner.y + 1 + (k - first) as u16, inner.width, 1), Target::MatrixRow(k));
        let label = Span::raw(format!("{:<ROW_LABEL$}", format!("#{f_id}")));
        let mut spans = vec![if k == main.matrix_row && main.pane == Pane::Matrix { label.style(super::selected()) } else { label }];
        for &s in row.iter().take(n_cols) {
            spans.push(Span::styled(format!("{:>CELL$}", format!("{s:+}")), Style::new().bg(heat(s, scale)).fg(Color::White)));
        }
        lines.push(Line::from(spans));
    }
    let legend = vec![
        Span::raw("legend "),
        Span::styled(" -max ", Style::new().bg(heat(-scale, scale)).fg(Color::White)),
        Span::styled("  0  ", Style::new().bg(heat(0, scale)).fg(Color::White)),
        Span::styled(" +max ", Style::new().bg(heat(scale, scale)).fg(Color::White)),
        Span::raw(format!(" rows {}-{} of {}", first + 1, (first + visible).min(features.len()), features.len())),
    ];
    while lines.len() < inner.height as usize - 1 {
        lines.push(Line::raw(""));
    }
    lines.push(Line::from(legend));
    f.render_widget(Paragraph::new(lines), inner);
}
