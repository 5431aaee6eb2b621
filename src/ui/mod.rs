//! The explorer. Events become actions (`keys.rs`), actions change `App` (`app`), and the
//! panes draw `App` (`view`); inference runs on the worker thread and reports over channels.

pub mod action;
pub mod app;
pub mod context;
pub mod export;
pub mod hits;
pub mod keys;
pub mod layout;
pub mod offset;
pub mod open;
pub mod panes;
pub mod screens;
pub mod view;
pub mod worker;

use app::{Action, App, Effect, WorkerRequest};
use color_eyre::eyre::{bail, Result};
pub use keys::keymap;
use ratatui::crossterm::event::{self, MouseButton, MouseEventKind};
use ratatui::crossterm::execute;
use ratatui::layout::Rect;
use std::io::IsTerminal;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Duration;

/// Everything the event loop waits for, on one channel: the terminal (a reader thread),
/// the model thread, and progress.
pub enum Event {
    /// A key, mouse, paste or resize event.
    Term(event::Event),
    /// Nothing happened for a while: redraw the clock and the ETA.
    Tick,
    Worker(worker::Msg),
    Progress(crate::runtime::progress::Progress),
    /// The model thread ended (after its work, or by a failure it already reported).
    WorkerGone,
}

/// How often the screen is redrawn when nothing happens (elapsed time, ETA, signals).
const TICK: Duration = Duration::from_millis(250);

fn restore() {
    let _ = execute!(std::io::stdout(), event::DisableMouseCapture, event::DisableBracketedPaste);
    ratatui::restore();
}

/// Carries out what `App::update` asked for: the only place the explorer writes files,
/// starts programs or talks to the model thread.
pub fn perform(app: &mut App, effects: Vec<Effect>, mut send: impl FnMut(WorkerRequest)) {
    for e in effects {
        match e {
            Effect::Worker(r) => send(r),
            Effect::Export => {
                app.message = Some(match export::export(app) {
                    Ok(path) => format!("exported {}", path.display()),
                    Err(e) => format!("export failed: {e}"),
                })
            }
            Effect::OpenUrl(url) => app.message = Some(open::open_url(&url)),
            Effect::Quit => app.quit = true,
        }
    }
}

/// Applies one event to the app; the model thread's requests go to `requests`.
pub fn handle(app: &mut App, ev: Event, requests: &mut Option<Sender<WorkerRequest>>) {
    let action = match ev {
        Event::Term(event::Event::Key(k)) => {
            // The too-small screen hides the input line: its keys are commands (q quits).
            keymap(k, app.input.is_some() && !layout::too_small(app.size))
        }
        Event::Term(event::Event::Paste(s)) if app.input.is_some() && !layout::too_small(app.size) => Some(Action::Paste(s)),
        Event::Term(event::Event::Mouse(m)) => match m.kind {
            MouseEventKind::Down(MouseButton::Left) => Some(Action::Click { column: m.column, row: m.row }),
            MouseEventKind::ScrollDown => Some(Action::Wheel { column: m.column, row: m.row, down: true }),
            MouseEventKind::ScrollUp => Some(Action::Wheel { column: m.column, row: m.row, down: false }),
            _ => None,
        },
        Event::Term(_) | Event::Tick => None,
        Event::Worker(worker::Msg::Done(r) | worker::Msg::Partial(r)) => {
            app.set_results(r);
            None
        }
        Event::Worker(worker::Msg::Failed(e)) => {
            app.error = Some(e);
            None
        }
        Event::Worker(worker::Msg::Reply(r)) => {
            app.receive(r);
            None
        }
        Event::Worker(worker::Msg::Index(r)) => {
            app.set_index(r);
            None
        }
        Event::Worker(worker::Msg::Neuronpedia(r)) => {
            match r {
                Ok((line, overviews)) => {
                    app.message = Some(line);
                    app.neuronpedia = overviews;
                }
                Err(why) => app.message = Some(format!("--neuronpedia: {why}")),
            }
            None
        }
        Event::Worker(worker::Msg::Versus(r)) => {
            app.set_versus(r);
            None
        }
        Event::Progress(p) => {
            app.eta.observe(&p);
            app.progress = Some(p);
            None
        }
        Event::WorkerGone => {
            *requests = None;
            if app.results.is_none() && app.error.is_none() {
                app.error = Some("the model thread stopped unexpectedly".into());
            }
            None
        }
    };
    let effects = match action {
        Some(a) => app.update(a),
        None => app.wants(),
    };
    // After the model thread ended, requests go nowhere: its failure is on screen.
    perform(app, effects, |r| {
        if let Some(tx) = requests {
            let _ = tx.send(r);
        }
    });
}

/// Runs the explorer until the user quits. The terminal is restored on every path out:
/// return, error, and a panic of the UI thread (the hook below). A panic on the model
/// thread is caught there and shown as its message; the UI goes on.
pub fn run(mut app: App, job: worker::WorkerJob) -> Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!("the explorer needs a terminal; for scripts use `saescope report`");
    }
    let (tx, rx) = channel::<Event>();
    let (ptx, prx) = channel();
    let forward = tx.clone();
    std::thread::spawn(move || {
        for p in prx {
            if forward.send(Event::Progress(p)).is_err() {
                break;
            }
        }
    });
    let mut terminal = ratatui::init();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // The model thread catches its own panics and reports them on screen; printing
        // them here would write over the UI, and restoring the terminal would leave a
        // UI drawing into a cooked terminal.
        if std::thread::current().name() == Some(worker::THREAD) {
            return;
        }
        restore();
        hook(info);
    }));
    let _ = execute!(std::io::stdout(), event::EnableMouseCapture);
    let _ = execute!(std::io::stdout(), event::EnableBracketedPaste);
    // After the hook: a panic at the model thread's very start is caught and shown too.
    let requests = worker::spawn(job, crate::runtime::progress::ProgressSink::channel(ptx), tx.clone());
    spawn_reader(tx);
    let outcome = event_loop(&mut terminal, &mut app, &rx, Some(requests));
    restore();
    if app.indexing() {
        // Quit while indexing: the model thread keeps what it did for the next run.
        eprintln!("keeping what was indexed of {} for the next run…", app.corpus.as_deref().unwrap_or("the corpus"));
        crate::runtime::interrupt::stop_work();
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
            if matches!(rx.recv_timeout(left), Ok(Event::WorkerGone) | Err(_)) {
                break;
            }
        }
    }
    outcome?;
    if crate::runtime::interrupt::requested() {
        bail!(crate::runtime::interrupt::MESSAGE);
    }
    Ok(())
}

/// The terminal's events, and a tick when there are none, into the one channel.
fn spawn_reader(tx: Sender<Event>) {
    std::thread::spawn(move || loop {
        let ev = match event::poll(TICK) {
            Ok(true) => match event::read() {
                Ok(e) => Event::Term(e),
                Err(_) => break,
            },
            Ok(false) => Event::Tick,
            Err(_) => break,
        };
        if tx.send(ev).is_err() {
            break;
        }
    });
}

fn event_loop(terminal: &mut ratatui::DefaultTerminal, app: &mut App, rx: &Receiver<Event>, mut requests: Option<Sender<WorkerRequest>>) -> Result<()> {
    loop {
        let size = terminal.size()?;
        app.size = Rect::new(0, 0, size.width, size.height);
        terminal.draw(|f| view::draw(f, app))?;
        // Block until something happens, then take everything that is waiting before the
        // next frame: every worker message is handled as it arrives.
        let Ok(first) = rx.recv() else { return Ok(()) };
        handle(app, first, &mut requests);
        while let Ok(ev) = rx.try_recv() {
            handle(app, ev, &mut requests);
        }
        // SIGINT/SIGTERM from outside (the terminal's own Ctrl-C arrives as a key): leave
        // through the normal path so the terminal is restored.
        if app.quit || crate::runtime::interrupt::requested() {
            return Ok(());
        }
    }
}
