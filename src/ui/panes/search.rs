//! Search: features whose Neuronpedia label matches the query, in every loaded SAE.

use super::selected;
use crate::ui::context::Context;
use crate::ui::hits::HitMap;
use crate::ui::screens::SearchScreen;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Table};
use ratatui::Frame;

pub fn draw(f: &mut Frame, view: &SearchScreen, app: &Context, drawn: &HitMap, area: Rect) {
    let hits = view.hits(app);
    let block = super::view_frame_hinted(format!("Search · {:?} · {} features", view.query, hits.len()), crate::ui::action::Mode::Search, area.width);
    let inner = block.inner(area);
    f.render_widget(block, area);
    if app.labels.is_empty() && app.index.is_none() {
        let why = match &app.index_note {
            Some(note) => format!("No labels loaded, and the corpus is not indexed yet ({note})."),
            None => "No labels loaded. Start saescope with --labels FILE, a Neuronpedia explanations export (docs/formats.md, \"Labels\"), or with --corpus PATH to find features by the token they peak on.".into(),
        };
        f.render_widget(Paragraph::new(why).wrap(ratatui::widgets::Wrap { trim: true }), inner);
        return;
    }
    let [head, list] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    f.render_widget(
        Line::styled(
            match (app.labels.is_empty(), app.index.is_some()) {
                (true, _) => "features whose top corpus contexts peak on the query as a token, most such contexts first".to_string(),
                (false, false) => format!("{} labelled features: every word of the query must appear (any case), or #id", app.labels.len()),
                (false, true) => format!(
                    "{} labelled features: every word of the query must appear (any case), or #id; then features whose top contexts peak on it as a token",
                    app.labels.len()
                ),
            },
            Style::new().add_modifier(Modifier::DIM),
        ),
        head,
    );
    let rows = hits.iter().enumerate().map(|(i, (layer, feature, label))| {
        let style = if i == view.row { selected() } else { Style::new() };
        Row::new([layer.to_string(), format!("#{feature}"), label.clone()]).style(style)
    });
    let table = Table::new(rows, [Constraint::Length(super::sae_column(hits.iter().map(|h| h.0.to_string()))), Constraint::Length(7), Constraint::Min(0)])
        .header(Row::new(["SAE", "feature", "label"]).style(Style::new().add_modifier(Modifier::UNDERLINED)));
    let mut state = view.scroll.state(view.row);
    f.render_stateful_widget(table, list, &mut state);
    view.scroll.keep(&state);
    let body = Rect { y: list.y + 1, height: list.height.saturating_sub(1), ..list };
    drawn.rows(body, state.offset(), hits.len(), crate::ui::hits::Target::SearchHit);
}
