//! The explorer. Events become actions (`keys.rs`), actions change `App` (`app`), and the
//! panes draw `App` (`view`); inference runs on the worker thread and reports over channels.

pub mod app;
pub mod export;
pub mod hits;
pub mod keys;
pub mod layout;
pub mod open;
pub mod panes;
pub mod view;
pub mod worker;

use app::{Action, App};
use color_eyre::eyre::{bail, Result};
pub use keys::keymap;
use ratatui::crossterm::event::{self, Event, MouseButton, MouseEventKind};
use ratatui::crossterm::execute;
use ratatui::layout::Rect;
use std::io::IsTerminal;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

fn restore() {
    let _ = execute!(std::io::stdout(), event::DisableMouseCapture, event::DisableBracketedPaste);
    ratatui::restore();
}

/// Runs the explorer until the user quits. The terminal is restored on every path out:
/// return, error, and panic (the hook below runs before color-eyre's report).
pub fn run(mut app: App, job: worker::Job) -> Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!("the explorer needs a terminal; for scripts use `saescope report`");
    }
    let (ptx, prx) = std::sync::mpsc::channel();
    let (requests, results) = worker::spawn(job, crate::progress::ProgressSink::channel(ptx));
    let mut terminal = ratatui::init();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        hook(info);
    }));
    let _ = execute!(std::io::stdout(), event::EnableMouseCapture);
    let _ = execute!(std::io::stdout(), event::EnableBracketedPaste);
    let outcome = event_loop(&mut terminal, &mut app, &prx, &results, &requests);
    restore();
    outcome?;
    crate::interrupt::check()
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    progress: &Receiver<crate::progress::Progress>,
    results: &Receiver<worker::Msg>,
    requests: &std::sync::mpsc::Sender<app::Request>,
) -> Result<()> {
    let mut worker_gone = false;
    while !app.quit {
        // SIGINT/SIGTERM from outside (the terminal's own Ctrl-C arrives as a key): leave
        // through the normal path so the terminal is restored.
        if crate::interrupt::requested() {
            break;
        }
        while let Ok(p) = progress.try_recv() {
            app.eta.observe(&p);
            app.progress = Some(p);
        }
        if !worker_gone {
            match results.try_recv() {
                Ok(worker::Msg::Done(r)) => app.set_results(r),
                Ok(worker::Msg::Failed(e)) => app.error = Some(e),
                Ok(worker::Msg::Reply(r)) => app.receive(r),
                Err(TryRecvError::Disconnected) => {
                    worker_gone = true;
                    if app.results.is_none() && app.error.is_none() {
                        app.error = Some("the model thread stopped unexpectedly".into());
                    }
                }
                Err(TryRecvError::Empty) => {}
            }
        }
        for r in app.requests.drain(..) {
            // A model thread that has stopped already reported why.
            let _ = requests.send(r);
        }
        let size = terminal.size()?;
        app.size = Rect::new(0, 0, size.width, size.height);
        terminal.draw(|f| view::draw(f, app))?;
        if event::poll(Duration::from_millis(100))? {
            match event::read()? {
                Event::Key(k) => {
                    // The too-small screen hides the input line: its keys are commands (q quits).
                    let typing = app.input.is_some() && !layout::too_small(app.size);
                    if let Some(a) = keymap(k, typing) {
                        app.update(a);
                    }
                }
                Event::Paste(s) if app.input.is_some() && !layout::too_small(app.size) => app.update(Action::Paste(s)),
                Event::Mouse(m) if m.kind == MouseEventKind::Down(MouseButton::Left) => app.update(Action::Click { column: m.column, row: m.row }),
                Event::Mouse(m) if m.kind == MouseEventKind::ScrollDown => app.update(Action::Wheel { column: m.column, row: m.row, down: true }),
                Event::Mouse(m) if m.kind == MouseEventKind::ScrollUp => app.update(Action::Wheel { column: m.column, row: m.row, down: false }),
                _ => {}
            }
        }
    }
    Ok(())
}
