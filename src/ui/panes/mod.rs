//! One file per pane or view: each draws from the shared context and its screen's state.

pub mod attribute;
pub mod card;
pub mod categories;
pub mod charts;
pub mod context;
pub mod features;
pub mod findings;
pub mod graph;
pub mod help;
pub mod input;
pub mod matrix;
pub mod overview;
pub mod search;
pub mod status;
pub mod steer;
pub mod tabs;
pub mod tokens;

use crate::ui::context::Context;
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, BorderType, Borders};

/// A pane's frame; the focused pane gets a thick border and a bold title, which read
/// without colour (NO_COLOR).
pub fn frame<'a>(focused: bool, title: String) -> Block<'a> {
    Block::default().borders(Borders::ALL).border_type(if focused { BorderType::Thick } else { BorderType::Plain }).title(title).title_style(if focused {
        Style::new().add_modifier(Modifier::BOLD)
    } else {
        Style::new()
    })
}

/// Selection is shown by reversing, never by colour alone.
pub fn selected() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

/// Compact number for narrow cells: 12.3, 0.08, 145.
pub fn num(x: f32) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// What a pane that needs results says before they exist: why, if the run failed.
pub fn not_ready(app: &Context) -> String {
    app.error.as_deref().map_or_else(|| "computing… (the gauge below says what is happening)".to_string(), |e| format!("failed: {e}"))
}

/// A view's frame titled with `head` and as many of the view's key hints as fit in the
/// frame's `width` (keys.rs `hints_within`).
pub fn view_frame_hinted<'a>(head: String, mode: crate::ui::action::Mode, width: u16) -> Block<'a> {
    // Two corners, the spaces around the title and " · " between head and hints.
    let room = (width as usize).saturating_sub(head.chars().count() + 2 + 2 + 3);
    let hints = crate::ui::keys::hints_within(mode, " · ", room);
    view_frame(if hints.is_empty() { format!(" {head} ") } else { format!(" {head} · {hints} ") })
}

/// A view's frame (card, tokens, findings, search): always the focused thing on screen.
pub fn view_frame<'a>(title: String) -> Block<'a> {
    Block::default().borders(Borders::ALL).border_type(BorderType::Thick).title(title).title_style(Style::new().add_modifier(Modifier::BOLD))
}

/// Width of a table's SAE column: its longest label (`8 res 24k`, `11 post 32k`), at least
/// the header's.
pub fn sae_column<S: AsRef<str>>(labels: impl IntoIterator<Item = S>) -> u16 {
    labels.into_iter().map(|l| l.as_ref().chars().count()).max().unwrap_or(0).max(3) as u16
}
