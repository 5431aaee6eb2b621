//! Draws the whole screen: the tabs, the screen on top, the status or input line, help.

use crate::ui::app::App;
use crate::ui::layout::{frame, too_small, MIN_HEIGHT, MIN_WIDTH};
use crate::ui::panes;
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, app: &App) {
    app.hits.clear();
    let size = f.area();
    if too_small(size) {
        let msg =
            format!("Terminal too small: {}x{}. saescope needs at least {MIN_WIDTH}x{MIN_HEIGHT}; enlarge the window (q quits).", size.width, size.height);
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), size);
        return;
    }
    let a = frame(size);
    panes::tabs::draw(f, app, a.tabs);
    app.draw_screen(f, a.body);
    match &app.input {
        Some(input) => panes::input::draw(f, input, a.status),
        None => panes::status::draw(f, app, a.status),
    }
    if app.help {
        panes::help::draw(f, size, app.help_scroll);
    }
}
