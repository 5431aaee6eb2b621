//! The bottom line: a progress gauge while computing (the samples, then the corpus index),
//! then model, SAEs, device, time taken and the latest message.

use crate::ui::app::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::Gauge;
use ratatui::Frame;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    // The latest message comes first so a narrow screen never cuts it off.
    let info = format!(
        " {}model {} · SAEs {} · {}{}{}",
        app.message.as_deref().map(|m| format!("{m} · ")).unwrap_or_default(),
        app.info.model,
        app.info.sae,
        app.info.device,
        app.elapsed().map(|d| format!(" · {:.1} s", d.as_secs_f64())).unwrap_or_default(),
        app.results.as_ref().filter(|r| r.from_cache > 0).map(|r| format!(" · {} texts from cache", r.from_cache)).unwrap_or_default(),
    );
    if let Some(e) = &app.error {
        f.render_widget(Line::styled(format!(" error: {e} (q quits)"), Style::new().add_modifier(Modifier::BOLD)), area);
        return;
    }
    if app.results.as_ref().is_some_and(|r| !r.partial) && !app.indexing() {
        f.render_widget(Line::raw(info), area);
        return;
    }
    let (label, ratio) = match &app.progress {
        Some(p) => (p.text(&app.eta), p.ratio()),
        None => ("starting".to_string(), 0.0),
    };
    // The gauge is as wide as its line needs (a download's bytes, rate and ETA), up to
    // four fifths of the width, and at least half; the run's details take the rest.
    let want = (label.chars().count() as u16 + 2).clamp(area.width / 2, area.width * 4 / 5);
    let [gauge, rest] = Layout::horizontal([Constraint::Length(want), Constraint::Min(0)]).areas(area);
    f.render_widget(Gauge::default().ratio(ratio).label(label).gauge_style(Style::new().add_modifier(Modifier::REVERSED)), gauge);
    f.render_widget(Line::raw(info), rest);
}
