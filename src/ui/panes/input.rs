//! The input line, over the status line while open: `/` search queries and `i` texts.

use crate::ui::action::{Input, InputKind};
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;

pub fn draw(f: &mut Frame, input: &Input, area: Rect) {
    let (prompt, hint) = match input.kind {
        InputKind::Search => ("search (label, #id, token): ", "  Enter done · Esc cancel"),
        InputKind::Text => ("your text: ", "  Enter runs it · Esc cancels"),
        InputKind::SteerPrompt => ("prompt to steer: ", "  Enter generates · Esc cancels"),
        InputKind::AttributePrompt => ("explain the next token after: ", "  Enter runs it · Esc cancels"),
        InputKind::GraphPrompt => ("graph the next token after: ", "  Enter runs it · Esc cancels"),
        InputKind::AttributeTarget => ("target token (with its leading space; empty: the top one): ", "  Enter runs it · Esc cancels"),
    };
    // Newlines from a paste show as ↵; a long text shows its end, where the cursor is.
    let text: String = input.text.replace('\n', "↵");
    let room = (area.width as usize).saturating_sub(prompt.len() + hint.len() + 2);
    let n = text.chars().count();
    let shown: String = if n > room { std::iter::once('…').chain(text.chars().skip(n - room.saturating_sub(1))).collect() } else { text };
    let line = Line::from(vec![
        Span::styled(prompt, Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(shown),
        Span::styled("█", Style::new().add_modifier(Modifier::SLOW_BLINK)),
        Span::styled(hint, Style::new().add_modifier(Modifier::DIM)),
    ]);
    f.render_widget(line, area);
}
