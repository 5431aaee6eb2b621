//! The attribute view: the target and its probability, then every loaded SAE's top
//! features by attribution with the ablation's change beside the estimate.

use super::selected;
use crate::ui::action::Mode;
use crate::ui::context::Context;
use crate::ui::hits::{HitMap, Target};
use crate::ui::screens::AttributeScreen;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Table, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, view: &AttributeScreen, ctx: &Context, hits: &HitMap, area: Rect) {
    let block = super::view_frame_hinted("Attribute the next token".into(), Mode::Attribute, area.width);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [head, list] = Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(inner);
    let Some(r) = &view.result else {
        let why = view.failed.as_ref().map_or_else(|| "attributing… (one backward pass, then an ablation per feature)".to_string(), |w| format!("failed: {w}"));
        let upto = view.upto.map_or_else(String::new, |u| format!(" (its first {u} tokens)"));
        f.render_widget(Paragraph::new(format!("prompt: {}{upto}\n{why}", view.prompt.replace('\n', "↵"))).wrap(Wrap { trim: true }), inner);
        return;
    };
    f.render_widget(
        Paragraph::new(vec![
            Line::raw(format!("prompt: {}", r.context.replace('\n', "↵"))),
            Line::styled(
                format!("next token {:?}: p {:.4}, logit {:.3} (minus the mean logit)", r.target, r.prob, r.logit),
                Style::new().add_modifier(Modifier::BOLD),
            ),
        ]),
        head,
    );
    let mut rows = Vec::new();
    for l in &r.saes {
        for a in &l.features {
            let i = rows.len();
            let label = ctx.labels.get(l.sae, a.feature).unwrap_or("").to_string();
            let row = Row::new([
                l.sae.to_string(),
                format!("#{}", a.feature),
                format!("{:+.4}", a.attribution),
                format!("{:+.4}", a.ablation_logit),
                format!("{:+.5}", a.ablation_prob),
                label,
            ]);
            rows.push(if i == view.row { row.style(selected()) } else { row });
        }
    }
    let n = rows.len();
    let table = Table::new(
        rows,
        [
            Constraint::Length(super::sae_column(r.saes.iter().map(|l| l.sae.to_string()))),
            Constraint::Length(7),
            Constraint::Length(12),
            Constraint::Length(14),
            Constraint::Length(14),
            Constraint::Min(0),
        ],
    )
    .header(Row::new(["SAE", "feature", "attribution", "ablated Δlogit", "ablated Δprob", "label"]).style(Style::new().add_modifier(Modifier::UNDERLINED)));
    let mut state = view.scroll.state(view.row);
    f.render_stateful_widget(table, list, &mut state);
    view.scroll.keep(&state);
    hits.rows(Rect { y: list.y + 1, height: list.height.saturating_sub(1), ..list }, state.offset(), n, Target::AttributeRow);
}
