//! The token view: the focused category's texts with their mean activation of one
//! feature (left), and the selected text token by token (right), each token's background
//! as bright as its activation. Without colour (NO_COLOR) firing tokens are underlined and
//! the strongest bold; `v` prints every value.

use super::{num, selected, view_frame};
use crate::interp::card::excerpt;
use crate::ui::context::Context;
use crate::ui::hits::HitMap;
use crate::ui::screens::TokensScreen;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, Wrap};
use ratatui::Frame;

/// Background for an activation `a` of a row whose largest is `max`: dark to bright.
pub fn shade(a: f32, max: f32) -> Style {
    if a <= 0.0 || max <= 0.0 {
        return Style::new();
    }
    let t = (a / max).clamp(0.0, 1.0);
    let g = (60.0 + 160.0 * t) as u8;
    let mut s = Style::new().bg(Color::Rgb(20, g, 40)).fg(if t > 0.6 { Color::Black } else { Color::White }).add_modifier(Modifier::UNDERLINED);
    if t >= 0.5 {
        s = s.add_modifier(Modifier::BOLD);
    }
    s
}

/// Tokens as lines of shaded spans: each token's background as bright as its value over
/// `max`, `[value]` after it when `show_values`, and the token at `mark` (a context's max)
/// in `[[ ]]` so it reads without colour, the token at `cursor` reversed. A newline inside
/// a token shows as ↵ and breaks the line; a token that ends in one carries its value before
/// the break.
pub fn token_lines(tokens: &[String], values: &[f32], max: f32, show_values: bool, mark: Option<usize>, cursor: Option<usize>) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut spans: Vec<Span<'static>> = Vec::new();
    for (k, (tok, &v)) in tokens.iter().zip(values.iter().chain(std::iter::repeat(&0.0))).enumerate() {
        let style = if cursor == Some(k) { shade(v, max).add_modifier(Modifier::REVERSED) } else { shade(v, max) };
        let marked = mark == Some(k);
        if marked {
            spans.push(Span::styled("[[", style.add_modifier(Modifier::BOLD)));
        }
        let mut value = (show_values && v > 0.0).then(|| format!("[{}]", num(v)));
        let parts: Vec<&str> = tok.split('\n').collect();
        for (i, part) in parts.iter().enumerate() {
            if !part.is_empty() {
                spans.push(Span::styled(part.to_string(), style));
            }
            if i + 1 < parts.len() {
                spans.push(Span::styled("↵", style));
                if i + 2 == parts.len() && parts[i + 1].is_empty() {
                    spans.extend(value.take().map(|x| Span::styled(x, style)));
                    if marked {
                        spans.push(Span::styled("]]", style.add_modifier(Modifier::BOLD)));
                    }
                }
                lines.push(Line::from(std::mem::take(&mut spans)));
            }
        }
        spans.extend(value.map(|x| Span::styled(x, style)));
        if marked && !tok.ends_with('\n') {
            spans.push(Span::styled("]]", style.add_modifier(Modifier::BOLD)));
        }
    }
    lines.push(Line::from(spans));
    lines
}

pub fn draw(f: &mut Frame, view: &TokensScreen, app: &Context, hits: &HitMap, area: Rect) {
    let feature = view.feature;
    let label = app.labels.get(app.sae(), feature).map(|l| format!(" · {l}")).unwrap_or_default();
    let category = app.categories.get(app.focused).map_or("", |c| c.0.as_str());
    let block = view_frame(format!(" Tokens · feature #{feature} · {} · {category}{label} ", app.sae()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [help, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    f.render_widget(
        Line::styled(crate::ui::keys::hints_within(crate::ui::action::Mode::Tokens, "  ", help.width as usize), Style::new().add_modifier(Modifier::DIM)),
        help,
    );
    let [list, text] = Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).spacing(1).areas(body);
    let Some(r) = &app.results else { return };
    let li = r.set.index_of(app.sae()).unwrap_or(0);
    let texts = app.focused_texts();
    let rows = texts.iter().enumerate().map(|(row, &i)| {
        let t = &r.set.texts[i];
        let value = match t.value(li, feature) {
            crate::activations::Value::Exact(v) => num(v),
            crate::activations::Value::Below(bound) => format!("<{}", num(bound)),
        };
        let style = if row == view.row { selected() } else { Style::new() };
        Row::new([value, excerpt(&t.text, list.width.saturating_sub(8) as usize)]).style(style)
    });
    let table =
        Table::new(rows, [Constraint::Length(6), Constraint::Min(0)]).header(Row::new(["mean", "text"]).style(Style::new().add_modifier(Modifier::UNDERLINED)));
    let mut state = view.scroll.state(view.row);
    f.render_stateful_widget(table, list, &mut state);
    view.scroll.keep(&state);
    let body = Rect { y: list.y + 1, height: list.height.saturating_sub(1), ..list };
    hits.rows(body, state.offset(), texts.len(), crate::ui::hits::Target::TokenText);

    let Some(content) = view.text(app) else { return };
    let Some(acts) = app.token_cache.get(content) else {
        let why = app.failed_tokens.get(content).map_or_else(|| "computing tokens…".to_string(), |w| format!("failed: {w}"));
        f.render_widget(Paragraph::new(why).wrap(Wrap { trim: true }), text);
        return;
    };
    let values = acts.feature(li, feature);
    let max = values.iter().copied().fold(0f32, f32::max);
    let at_cursor = view.cursor.and_then(|c| acts.tokens.get(c)).map_or_else(String::new, |t| format!(" · a: why the token after {t:?}"));
    let mut lines = vec![Line::styled(
        format!(
            "max {} at token {}{at_cursor}",
            num(max),
            values.iter().position(|&v| v == max && max > 0.0).map_or("-".into(), |p| format!("{:?}", acts.tokens[p]))
        ),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    lines.extend(token_lines(&acts.tokens, &values, max, view.values, None, view.cursor));
    if acts.truncated > 0 {
        lines.push(Line::raw(format!("({} tokens past n_ctx not shown)", acts.truncated)));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), text);
}
