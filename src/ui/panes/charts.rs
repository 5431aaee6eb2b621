//! The study's Figure 2a as charts: Peak and Sum of each charted category across the loaded
//! layers (a line chart: x the layers, y the value, one line per category and metric), and
//! the current layer's top-k activations as bars labelled with their feature ids.
//! Lines differ by marker as well as colour (Peak dots, Sum braille), so NO_COLOR loses
//! nothing.

use super::{frame, num};
use crate::ui::action::Pane;
use crate::ui::context::Context;
use crate::ui::screens::MainScreen;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::canvas::{Canvas, Line as CanvasLine, Points as CanvasPoints};
use ratatui::widgets::{Bar, BarChart, BarGroup, Paragraph};
use ratatui::Frame;

/// (x, value): x is the SAE's layer where every SAE has a layer of its own, else its place.
type Points = Vec<(f64, f64)>;

/// A colour per charted category, in mark order.
const PALETTE: [Color; 6] = [Color::Cyan, Color::Yellow, Color::Magenta, Color::Green, Color::LightRed, Color::LightBlue];

pub fn draw(f: &mut Frame, app: &Context, main: &MainScreen, area: Rect) {
    let block = frame(main.pane == Pane::Charts, format!(" Trend across SAEs · top-k of {} ", app.sae()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(res) = &app.results else {
        f.render_widget(Paragraph::new(super::not_ready(app)).wrap(ratatui::widgets::Wrap { trim: true }), inner);
        return;
    };
    let [trend, bars] = Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).spacing(1).areas(inner);
    let [legend, trend] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(trend);
    let cats = app.chart_categories();

    // Peak and Sum per SAE, per charted category.
    let ticks = ticks(&app.saes);
    let series: Vec<(usize, Points, Points)> = cats
        .iter()
        .map(|&c| {
            let at = |pick: fn(&crate::analysis::CategoryLayer) -> f32| -> Vec<(f64, f64)> {
                res.analysis.saes.iter().zip(&ticks).filter_map(|(l, (x, ..))| l.categories.get(c).map(|m| (*x, pick(m) as f64))).collect()
            };
            (c, at(|m| m.peak), at(|m| m.top_sum))
        })
        .collect();
    let y_max = series.iter().flat_map(|(_, p, s)| p.iter().chain(s)).map(|&(_, y)| y).fold(0.0f64, f64::max).max(1e-6) * 1.1;
    // The legend sits above the chart, where it hides no line.
    let mut key = vec![Span::raw("⣀Sum •Peak ")];
    let mut lines = Vec::new();
    for (i, (c, peak, sum)) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        key.push(Span::styled(format!("■{} ", short(&app.categories[*c].0, if series.len() > 1 { 5 } else { 12 })), Style::new().fg(colour)));
        lines.push((Marker::Braille, colour, sum));
        lines.push((Marker::Dot, colour, peak));
    }
    f.render_widget(Line::from(key), legend);
    trend_chart(f, trend, &ticks, y_max, &lines);

    // The current layer's top-k as horizontal bars, a row each: the feature ids stay whole
    // at any width. One group per charted category, each bar named with its category's
    // first letters when there are several.
    let groups: Vec<BarGroup> = cats
        .iter()
        .enumerate()
        .filter_map(|(i, &c)| {
            let m = app.metrics(c)?;
            let colour = PALETTE[i % PALETTE.len()];
            let bars: Vec<Bar> = m
                .top
                .iter()
                .map(|t| {
                    let label = if cats.len() > 1 { format!("{} #{}", short(&app.categories[c].0, 3), t.feature) } else { format!("#{}", t.feature) };
                    Bar::default()
                        .value((t.activation.max(0.0) * 100.0) as u64)
                        .text_value(num(t.activation))
                        .label(Line::raw(label))
                        .style(Style::new().fg(colour))
                })
                .collect();
            Some(BarGroup::default().bars(&bars))
        })
        .collect();
    let mut chart = BarChart::default().direction(Direction::Horizontal).bar_width(1).bar_gap(0).group_gap(1);
    for g in groups {
        chart = chart.data(g);
    }
    f.render_widget(chart, bars);
}

/// Where a trend chart draws what: the y labels' gutter, the plot, the x axis and the tick
/// labels under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrendLayout {
    pub plot: Rect,
    /// The row of the x axis line (its ticks `┴` stand at the layers' columns).
    pub axis_row: u16,
    /// The row of the layer numbers.
    pub label_row: u16,
}

impl TrendLayout {
    /// `y_label_width` columns for the y labels and one for the y axis, left of the plot,
    /// `right` columns right of it (where the last x label may reach past its tick); two
    /// rows under it for the x axis and its labels.
    pub fn new(area: Rect, y_label_width: u16, right: u16) -> Option<Self> {
        let left = y_label_width.min(area.width / 3) + 1;
        if area.height < 4 || area.width <= left + right + 2 {
            return None;
        }
        let plot = Rect::new(area.x + left, area.y, area.width - left - right, area.height - 2);
        Some(Self { plot, axis_row: plot.bottom(), label_row: plot.bottom() + 1 })
    }

    /// The column a point at `x` (between `x0` and `x1`) is drawn in: the canvas's own
    /// mapping for one dot per cell, so a tick stands exactly under its data (ratatui's
    /// `Axis::labels` spaces labels evenly by index instead, which put "10" ten columns
    /// left of layer 10 when the layers are 6, 8, 10, 11).
    pub fn column(&self, x: f64, x0: f64, x1: f64) -> u16 {
        let w = f64::from(self.plot.width.saturating_sub(1));
        self.plot.x + (((x - x0) * w / (x1 - x0).max(1e-9)).round() as u16).min(self.plot.width.saturating_sub(1))
    }
}

/// A line chart of `lines` (marker, colour, points) over the loaded layers: the plot is a
/// canvas per line, as ratatui's Chart draws them, but the axes and ticks are drawn here so
/// each layer's number stands under its points.
/// Where each SAE stands on the trend's x axis and what its tick says: its layer where the
/// SAEs are one per layer at one site (spacing then follows depth), else its place in the
/// run's order and its tab label, with a compact form (`5z`, `9p`) for when those labels
/// do not all fit under their ticks.
fn ticks(keys: &[crate::sae::key::SaeKey]) -> Vec<(f64, String, String)> {
    let (site, labels) = crate::sae::key::tabs(keys);
    match site {
        Some(_) => keys.iter().zip(labels).map(|(k, l)| (k.hook.layer as f64, l.clone(), l)).collect(),
        None => keys
            .iter()
            .zip(labels)
            .enumerate()
            .map(|(i, (k, l))| (i as f64, l, format!("{}{}", k.hook.layer, k.hook.site.short().chars().next().unwrap_or(' '))))
            .collect(),
    }
}

fn trend_chart(f: &mut Frame, area: Rect, ticks: &[(f64, String, String)], y_max: f64, lines: &[(Marker, Color, &Points)]) {
    let y_labels = [num(y_max as f32), num((y_max / 2.0) as f32), "0".to_string()];
    let label_w = y_labels.iter().map(|l| l.chars().count()).max().unwrap_or(1) as u16;
    // The last tick's label is centred on the plot's last column: half of it past there.
    let last_w = ticks.last().map_or(1, |(_, l, _)| l.chars().count().max(1)) as u16;
    let Some(lay) = TrendLayout::new(area, label_w, (last_w - 1) - (last_w - 1) / 2) else { return };
    let (x0, x1) = (ticks.first().map_or(0.0, |t| t.0), ticks.last().map_or(0.0, |t| t.0));
    // Each label's first column centred on its tick, or None where it would run into the
    // one before: the full labels if all fit, else the compact ones.
    let place = |compact: bool| -> Vec<(u16, Option<(u16, &str)>)> {
        let mut free_from = area.x;
        ticks
            .iter()
            .map(|(x, full, short)| {
                let text = if compact { short.as_str() } else { full.as_str() };
                let col = lay.column(*x, x0, x1.max(x0 + 1.0));
                let w = text.chars().count() as u16;
                let start = col.saturating_sub((w.saturating_sub(1)) / 2).min(area.right().saturating_sub(w));
                let fits = start >= free_from;
                if fits {
                    free_from = start + w + 1;
                }
                (col, fits.then_some((start, text)))
            })
            .collect()
    };
    let full = place(false);
    let placed = if full.iter().all(|(_, p)| p.is_some()) { full } else { place(true) };
    let x1 = x1.max(x0 + 1.0);
    let buf = f.buffer_mut();
    // The y axis with its labels at the top, middle and bottom rows of the plot.
    let axis_col = lay.plot.x - 1;
    for y in lay.plot.top()..lay.plot.bottom() {
        buf[(axis_col, y)].set_symbol("│");
    }
    let (top, bottom) = (lay.plot.top(), lay.plot.bottom() - 1);
    for (label, y) in y_labels.iter().zip([top, top + (bottom - top) / 2, bottom]) {
        let w = label.chars().count() as u16;
        buf.set_string(axis_col.saturating_sub(w).max(area.x), y, label, Style::new());
    }
    // The x axis, a tick under each layer, and the layer's number centred on its tick where
    // it does not run into the one before.
    buf[(axis_col, lay.axis_row)].set_symbol("└");
    for x in lay.plot.left()..lay.plot.right() {
        buf[(x, lay.axis_row)].set_symbol("─");
    }
    for (col, label) in placed {
        buf[(col, lay.axis_row)].set_symbol("┴");
        if let Some((start, text)) = label {
            buf.set_string(start, lay.label_row, text, Style::new());
        }
    }
    for &(marker, colour, points) in lines {
        let canvas = Canvas::default().marker(marker).x_bounds([x0, x1]).y_bounds([0.0, y_max]).paint(|ctx| {
            for pair in points.windows(2) {
                ctx.draw(&CanvasLine { x1: pair[0].0, y1: pair[0].1, x2: pair[1].0, y2: pair[1].1, color: colour });
            }
            ctx.draw(&CanvasPoints { coords: points, color: colour });
        });
        f.render_widget(canvas, lay.plot);
    }
}

/// `name` cut to `n` characters for legends and labels.
fn short(name: &str, n: usize) -> String {
    name.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    /// Each tick stands in the column where the canvas draws that layer's point, and its
    /// number is centred on it (ratatui's evenly spaced axis labels put "10" about ten
    /// columns left of layer 10's point at 120 columns).
    #[test]
    fn ticks_stand_under_their_data() {
        let layers = [6usize, 8, 10, 11];
        let ticks: Vec<(f64, String, String)> = layers.iter().map(|&l| (l as f64, l.to_string(), l.to_string())).collect();
        for width in [30u16, 44, 67, 100] {
            let area = Rect::new(3, 1, width, 12);
            let lay = TrendLayout::new(area, 4, 1).expect("layout");
            // Drawn with one layer's point at a time, so the canvas shows where it puts it.
            let draw = |points: Points| {
                let mut t = Terminal::new(TestBackend::new(width + 6, 14)).expect("terminal");
                t.draw(|f| trend_chart(f, area, &ticks, 2.0, &[(Marker::Dot, Color::Reset, &points)])).expect("draw");
                t.backend().buffer().clone()
            };
            let buf = draw(Vec::new());
            let cells = |buf: &ratatui::buffer::Buffer, y: u16| (0..buf.area.width).map(|x| buf[(x, y)].symbol().to_string()).collect::<Vec<_>>();
            let cols: Vec<u16> = cells(&buf, lay.axis_row).iter().enumerate().filter(|(_, s)| *s == "┴").map(|(x, _)| x as u16).collect();
            let labels = cells(&buf, lay.label_row).concat();
            assert_eq!(cols.len(), layers.len(), "width {width}: {labels}");
            for (&l, &col) in layers.iter().zip(&cols) {
                let one = draw(vec![(l as f64, 1.0)]);
                let dot: Vec<u16> = (lay.plot.top()..lay.plot.bottom())
                    .flat_map(|y| cells(&one, y).into_iter().enumerate().filter(|(_, s)| s == "•").map(|(x, _)| x as u16).collect::<Vec<_>>())
                    .collect();
                assert_eq!(dot, vec![col], "width {width}: layer {l}'s point and its tick");
                let text = l.to_string();
                let at = labels.find(&text).expect("label") as u16;
                assert_eq!(at + (text.len() as u16 - 1) / 2, col, "width {width}: {text} centred on its tick\n{labels}");
            }
        }
    }

    /// SAEs at several sites of two layers: their tab labels under the ticks where the plot
    /// is wide enough for all of them, else every one in its compact form, never some cut.
    #[test]
    fn labels_that_do_not_all_fit_turn_compact_together() {
        let keys: Vec<crate::sae::key::SaeKey> = ["blocks.5.attn.hook_z", "blocks.5.hook_resid_post", "blocks.9.attn.hook_z", "blocks.9.hook_resid_post"]
            .iter()
            .map(|h| crate::sae::key::SaeKey::new(crate::model::hooks::HookPoint::parse(h).expect("hook"), 128))
            .collect();
        let ticks = ticks(&keys);
        let row = |width: u16| {
            let area = Rect::new(0, 0, width, 10);
            let lay = TrendLayout::new(area, 4, 3).expect("layout");
            let mut t = Terminal::new(TestBackend::new(width, 10)).expect("terminal");
            t.draw(|f| trend_chart(f, area, &ticks, 2.0, &[])).expect("draw");
            let buf = t.backend().buffer().clone();
            (0..width).map(|x| buf[(x, lay.label_row)].symbol().to_string()).collect::<String>()
        };
        let wide = row(80);
        assert!(["5 z", "5 post", "9 z", "9 post"].iter().all(|l| wide.contains(l)), "{wide}");
        let narrow = row(24);
        let words: Vec<&str> = narrow.split_whitespace().collect();
        assert_eq!(words, ["5z", "5p", "9z", "9p"], "{narrow}");
    }
}
