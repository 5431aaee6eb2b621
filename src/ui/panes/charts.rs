//! The seed's Figure 2a as charts: Peak and Sum of each charted category across the loaded
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
use ratatui::widgets::{Axis, Bar, BarChart, BarGroup, Chart, Dataset, GraphType, Paragraph};
use ratatui::Frame;

/// (layer, value) along the x axis.
type Points = Vec<(f64, f64)>;

/// A colour per charted category, in mark order.
const PALETTE: [Color; 6] = [Color::Cyan, Color::Yellow, Color::Magenta, Color::Green, Color::LightRed, Color::LightBlue];

pub fn draw(f: &mut Frame, app: &Context, main: &MainScreen, area: Rect) {
    let block = frame(main.pane == Pane::Charts, format!(" Trend across layers · top-k at layer {} ", app.layer()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(res) = &app.results else {
        f.render_widget(Paragraph::new(super::not_ready(app)).wrap(ratatui::widgets::Wrap { trim: true }), inner);
        return;
    };
    let [trend, bars] = Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).spacing(1).areas(inner);
    let [legend, trend] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(trend);
    let cats = app.chart_categories();

    // Peak and Sum per layer, per charted category.
    let series: Vec<(usize, Points, Points)> = cats
        .iter()
        .map(|&c| {
            let at = |pick: fn(&crate::analysis::CategoryLayer) -> f32| -> Vec<(f64, f64)> {
                res.analysis.layers.iter().filter_map(|l| l.categories.get(c).map(|m| (l.layer as f64, pick(m) as f64))).collect()
            };
            (c, at(|m| m.peak), at(|m| m.top_sum))
        })
        .collect();
    let y_max = series.iter().flat_map(|(_, p, s)| p.iter().chain(s)).map(|&(_, y)| y).fold(0.0f64, f64::max).max(1e-6) * 1.1;
    let (x0, x1) = (*app.layers.first().unwrap_or(&0) as f64, *app.layers.last().unwrap_or(&0) as f64);
    let mut datasets = Vec::new();
    // The legend sits above the chart, where it hides no line.
    let mut key = vec![Span::raw("⣀Sum •Peak ")];
    for (i, (c, peak, sum)) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        key.push(Span::styled(format!("■{} ", short(&app.categories[*c].0, if series.len() > 1 { 5 } else { 12 })), Style::new().fg(colour)));
        datasets.push(Dataset::default().marker(Marker::Braille).graph_type(GraphType::Line).style(Style::new().fg(colour)).data(sum));
        datasets.push(Dataset::default().marker(Marker::Dot).graph_type(GraphType::Line).style(Style::new().fg(colour)).data(peak));
    }
    f.render_widget(Line::from(key), legend);
    let x_labels: Vec<Line> = app.layers.iter().map(|l| Line::raw(l.to_string())).collect();
    let chart = Chart::new(datasets)
        .x_axis(Axis::default().title("layer").bounds([x0, x1.max(x0 + 1.0)]).labels(x_labels))
        .y_axis(Axis::default().bounds([0.0, y_max]).labels([Line::raw("0"), Line::raw(num((y_max / 2.0) as f32)), Line::raw(num(y_max as f32))]))
        .legend_position(None);
    f.render_widget(chart, trend);

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

/// `name` cut to `n` characters for legends and labels.
fn short(name: &str, n: usize) -> String {
    name.chars().take(n).collect()
}
