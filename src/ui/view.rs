//! Draws the whole screen from `App`.

use crate::ui::app::App;
use crate::ui::layout::{areas, too_small, MIN_HEIGHT, MIN_WIDTH};
use crate::ui::panes;
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, app: &App) {
    let size = f.area();
    if too_small(size) {
        let msg = format!("Terminal too small: {}x{}. saescope needs at least {MIN_WIDTH}x{MIN_HEIGHT}; enlarge the window (q quits).", size.width, size.height);
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), size);
        return;
    }
    let a = areas(size);
    panes::tabs::draw(f, app, a.tabs);
    panes::categories::draw(f, app, a.categories);
    panes::features::draw(f, app, a.features);
    panes::charts::draw(f, app, a.charts);
    panes::matrix::draw(f, app, a.matrix);
    panes::status::draw(f, app, a.status);
    if app.help {
        panes::help::draw(f, size);
    }
}
