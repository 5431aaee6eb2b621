//! The steer view: the steering set with strengths (selected reversed), the prompt, the
//! default and steered continuations side by side, and per step each one's top token and
//! the KL divergence between them.

use super::selected;
use crate::ui::action::Mode;
use crate::ui::context::Context;
use crate::ui::screens::SteerScreen;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, view: &SteerScreen, ctx: &Context, area: Rect) {
    let mode = if ctx.steer_mode == crate::interp::steer::Edit::Add { "adding" } else { "clamping" };
    let block = super::view_frame_hinted(format!("Steer · {mode}"), Mode::Steer, area.width);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let set_h = (ctx.steering.len() as u16 + 1).clamp(2, 6);
    let [set, prompt, texts, steps] =
        Layout::vertical([Constraint::Length(set_h), Constraint::Length(1), Constraint::Percentage(40), Constraint::Min(3)]).areas(inner);
    let rows = ctx.steering.iter().enumerate().map(|(i, s)| {
        let label = crate::sae::key::pick(&ctx.saes, &s.sae).ok().and_then(|k| ctx.labels.get(k, s.feature)).unwrap_or("").to_string();
        let how = if s.mode_or(ctx.steer_mode) == crate::interp::steer::Edit::Clamp { "=" } else { "" };
        let row = Row::new([s.sae.clone(), format!("#{}", s.feature), format!("{how}{:+}", s.strength), label]);
        if i == view.row {
            row.style(selected())
        } else {
            row
        }
    });
    let bold = Style::new().add_modifier(Modifier::UNDERLINED);
    f.render_widget(
        Table::new(
            rows,
            [Constraint::Length(super::sae_column(ctx.steering.iter().map(|s| &s.sae))), Constraint::Length(7), Constraint::Length(8), Constraint::Min(0)],
        )
        .header(Row::new(["SAE", "feature", "strength", "label"]).style(bold)),
        set,
    );
    let p =
        if view.prompt.is_empty() { "prompt: (none yet: i or Enter to type one)".to_string() } else { format!("prompt: {}", view.prompt.replace('\n', "↵")) };
    f.render_widget(Line::raw(p), prompt);
    let [left, right] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).spacing(1).areas(texts);
    // The continuations grow as the model thread streams its steps.
    let (default, steered) = match (&view.result, &view.failed) {
        (_, Some(why)) => (format!("failed: {why}"), format!("failed: {why}")),
        (Some(r), None) => {
            let more = if view.running { " …" } else { "" };
            (format!("{}{}{more}", r.prompt, r.default.text), format!("{}{}{more}", r.prompt, r.steered.text))
        }
        (None, None) if view.running => ("generating…".to_string(), "generating…".to_string()),
        (None, None) => (String::new(), String::new()),
    };
    for (area, title, text) in [(left, " default ", default), (right, " steered ", steered)] {
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }).block(Block::default().borders(Borders::TOP).title(title)), area);
    }
    let Some(r) = &view.result else { return };
    let widths = [Constraint::Length(5), Constraint::Fill(1), Constraint::Fill(1), Constraint::Length(8)];
    // The top tokens of each step, as many of the five as the column holds whole.
    let [_, col, _, _] = Layout::horizontal(widths).spacing(1).areas(steps);
    let top = |t: &[crate::interp::steer::TokenProb]| fit_tokens(t, col.width as usize);
    let rows = r.steps.iter().enumerate().map(|(i, s)| Row::new([format!("{}", i + 1), top(&s.default_top), top(&s.steered_top), format!("{:.4}", s.kl)]));
    f.render_widget(
        Table::new(rows, widths)
            .header(Row::new(["step", "default: top tokens, p", "steered: top tokens, p", "KL"]).style(bold))
            .block(Block::default().borders(Borders::TOP)),
        steps,
    );
}

/// `"tok" 0.123` for as many of a step's top tokens as fit in `width` columns, best first.
fn fit_tokens(top: &[crate::interp::steer::TokenProb], width: usize) -> String {
    let mut out = String::new();
    for t in top {
        let item = format!("{:?} {}", t.token, crate::interp::steer::prob_text(t.prob));
        let sep = if out.is_empty() { "" } else { "  " };
        if out.chars().count() + sep.len() + item.chars().count() > width && !out.is_empty() {
            break;
        }
        out.push_str(sep);
        out.push_str(&item);
    }
    out
}
