//! The bottom line: a progress gauge while computing (the samples, then the corpus index),
//! then model, SAEs, device, time taken and the latest message.

use crate::ui::app::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::Gauge;
use ratatui::Frame;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    if let Some(e) = &app.error {
        let line = keep_ends(&format!("error: {e} (q quits)"), (area.width as usize).saturating_sub(1));
        f.render_widget(Line::styled(format!(" {line}"), Style::new().add_modifier(Modifier::BOLD)), area);
        return;
    }
    if app.results.as_ref().is_some_and(|r| !r.partial) && !app.indexing() {
        f.render_widget(Line::raw(info(app, area.width)), area);
        return;
    }
    let (label, ratio) = match &app.progress {
        Some(p) => (p.text(&app.eta), p.ratio()),
        None => ("starting".to_string(), 0.0),
    };
    // The gauge is as wide as its line needs (a download's bytes, rate and ETA), up to
    // four fifths of the width, and at least half; the run's details take the rest.
    let want = (label.chars().count() as u16 + 2).clamp(area.width / 2, area.width * 4 / 5);
    // A label longer than the gauge (a long release name while indexing) keeps its start
    // and its end, where the counts and the ETA are.
    let label = keep_ends(&label, want.saturating_sub(2) as usize);
    let [gauge, rest] = Layout::horizontal([Constraint::Length(want), Constraint::Min(0)]).areas(area);
    f.render_widget(Gauge::default().ratio(ratio).label(label).gauge_style(Style::new().add_modifier(Modifier::REVERSED)), gauge);
    f.render_widget(Line::raw(info(app, rest.width)), rest);
}

/// The run's line in `width` columns. The latest message comes first so a narrow screen
/// never cuts it off; model and SAE labels (often long paths) give up their beginnings
/// before the device, time and cache figures after them are pushed off the edge.
fn info(app: &App, width: u16) -> String {
    let message = app.message.as_deref().map(|m| format!("{m} · ")).unwrap_or_default();
    let tail = format!(
        " · {}{}{}",
        app.info.device,
        app.elapsed().map(|d| format!(" · {:.1} s", d.as_secs_f64())).unwrap_or_default(),
        app.results.as_ref().filter(|r| r.from_cache > 0).map(|r| format!(" · {} texts from cache", r.from_cache)).unwrap_or_default(),
    );
    // The chat mark ends the model's label, which gives up its beginning first.
    let model = if app.info.chat { format!("{} (chat)", app.info.model) } else { app.info.model.clone() };
    let (model, sae) = (model.as_str(), app.info.sae.as_str());
    let fixed = [" ", &message, "model ", " · SAEs ", &tail].iter().map(|s| s.chars().count()).sum::<usize>();
    let budget = (width as usize).saturating_sub(fixed);
    let (m, s) = (model.chars().count(), sae.chars().count());
    let (model, sae) = if m + s <= budget {
        (model.to_string(), sae.to_string())
    } else {
        let model_room = (budget / 2).max(budget.saturating_sub(s));
        let sae_room = budget.saturating_sub(m.min(model_room));
        (keep_end(model, model_room), keep_end(sae, sae_room))
    };
    format!(" {message}model {model} · SAEs {sae}{tail}")
}

/// `s` in at most `room` characters, its middle given up: an error's first words say what
/// failed and its last words what to do, and both stay on a narrow screen.
fn keep_ends(s: &str, room: usize) -> String {
    let n = s.chars().count();
    if n <= room || room < 8 {
        return s.to_string();
    }
    let head = (room - 1) * 2 / 5;
    let tail = room - 1 - head;
    let start: String = s.chars().take(head).collect();
    let end: String = s.chars().skip(n - tail).collect();
    format!("{start}…{end}")
}

/// `s` in at most `room` characters (at least 24, which a repo name such as
/// google/gemma-3-270m fits whole): its end, after an ellipsis, since a path's last
/// folders say the most.
fn keep_end(s: &str, room: usize) -> String {
    let n = s.chars().count();
    let room = room.max(24);
    if n <= room {
        return s.to_string();
    }
    let tail: String = s.chars().skip(n - (room - 1)).collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::{keep_end, keep_ends};

    #[test]
    fn a_long_error_keeps_what_failed_and_what_to_do() {
        let e = "error: cannot download openai-community/gpt2/config.json from http://127.0.0.1:9: connection refused; pass --model-dir DIR to run offline (q quits)";
        let s = keep_ends(e, 79);
        assert_eq!(s.chars().count(), 79);
        assert!(s.starts_with("error: cannot download") && s.ends_with("pass --model-dir DIR to run offline (q quits)"), "{s}");
        assert_eq!(keep_ends("short", 79), "short");
    }

    #[test]
    fn long_labels_keep_their_end() {
        assert_eq!(keep_end("tiny-model", 20), "tiny-model");
        assert_eq!(keep_end("google/gemma-3-270m", 2), "google/gemma-3-270m");
        assert_eq!(keep_end("/work/main/target/tmp/run-1/model", 30), "…k/main/target/tmp/run-1/model");
        assert_eq!(keep_end("/work/main/target/tmp/run-1/model", 2), "…/target/tmp/run-1/model");
    }
}
