//! Draws the whole screen from `App`.

use crate::ui::app::{App, Mode, Pane};
use crate::ui::hits::Target;
use crate::ui::layout::{areas, too_small, MIN_HEIGHT, MIN_WIDTH};
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
    let a = areas(size, app.categories.len());
    panes::tabs::draw(f, app, a.tabs);
    match app.mode {
        Mode::Main => {
            for (area, pane) in [(a.categories, Pane::Categories), (a.features, Pane::Features), (a.charts, Pane::Charts), (a.matrix, Pane::Matrix)] {
                app.hits.add(area, Target::Pane(pane));
            }
            panes::categories::draw(f, app, a.categories);
            panes::features::draw(f, app, a.features);
            panes::charts::draw(f, app, a.charts);
            panes::matrix::draw(f, app, a.matrix);
        }
        Mode::Card => panes::card::draw(f, app, a.body),
        Mode::Tokens => panes::tokens::draw(f, app, a.body),
        Mode::Findings => panes::findings::draw(f, app, a.body),
        Mode::Search => panes::search::draw(f, app, a.body),
    }
    match &app.input {
        Some(input) => panes::input::draw(f, input, a.status),
        None => panes::status::draw(f, app, a.status),
    }
    if app.help {
        panes::help::draw(f, size);
    }
}
