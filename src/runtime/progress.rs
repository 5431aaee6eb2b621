//! What long-running work tells its watcher. The report prints it to stderr; the explorer
//! turns it into a gauge. Senders never block on a slow or absent watcher.

use std::sync::mpsc::Sender;

#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// A step with no measurable size: "loading layer 8 SAE".
    Stage(String),
    /// A step with a size: texts encoded, texts read.
    Fraction { label: String, done: u64, total: u64 },
    /// Bytes of a download, sent at least once a second even when none arrive, with the
    /// rate over the last seconds and what is going on (stalled, retrying).
    Download { file: String, done: u64, total: u64, rate: f64, note: String },
}

impl Progress {
    /// The one-line text that stderr and the explorer's gauge both show.
    pub fn text(&self, eta: &Eta) -> String {
        match self {
            Progress::Stage(s) => s.clone(),
            Progress::Fraction { label, done, total } => format!("{label} {done} of {total}{}", eta.suffix()),
            Progress::Download { file, done, total, rate, note } => {
                let pct = if *total == 0 { 0 } else { done * 100 / total };
                let mut s = format!("downloading {file}: {} of {} ({pct}%) · {}/s", bytes(*done), bytes(*total), bytes(*rate as u64));
                if *rate > 0.0 && total > done {
                    s.push_str(&duration_suffix(std::time::Duration::from_secs_f64((total - done) as f64 / rate)));
                }
                if !note.is_empty() {
                    s.push_str(" · ");
                    s.push_str(note);
                }
                s
            }
        }
    }

    /// Done over total, for a gauge.
    pub fn ratio(&self) -> f64 {
        match self {
            Progress::Stage(_) => 0.0,
            Progress::Fraction { done, total, .. } | Progress::Download { done, total, .. } => {
                if *total == 0 {
                    0.0
                } else {
                    (*done as f64 / *total as f64).clamp(0.0, 1.0)
                }
            }
        }
    }
}

/// "52.4 MB": decimal units, as download sizes are usually quoted.
pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2} GB", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} kB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

fn duration_suffix(d: std::time::Duration) -> String {
    if d.as_secs() >= 60 {
        format!(" · ETA {}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!(" · ETA {}s", d.as_secs())
    }
}

/// Estimates the time left of a `Fraction` from how fast it has gone since its label first
/// appeared (a new label restarts the clock).
#[derive(Debug, Default, Clone)]
pub struct Eta {
    label: String,
    start: Option<(std::time::Instant, u64)>,
    left: Option<std::time::Duration>,
    /// Units per second since the label appeared.
    rate: Option<f64>,
}

impl Eta {
    pub fn observe(&mut self, p: &Progress) {
        let Progress::Fraction { label, done, total } = p else { return };
        if *label != self.label || self.start.is_none() {
            self.label = label.clone();
            self.start = Some((std::time::Instant::now(), *done));
            self.left = None;
            self.rate = None;
            return;
        }
        if let Some((t0, d0)) = self.start {
            let (rate_done, elapsed) = (done.saturating_sub(d0), t0.elapsed().as_secs_f64());
            self.left =
                (rate_done > 0 && elapsed > 0.0).then(|| std::time::Duration::from_secs_f64(elapsed * total.saturating_sub(*done) as f64 / rate_done as f64));
            self.rate = (rate_done > 0 && elapsed > 0.0).then(|| rate_done as f64 / elapsed);
        }
    }

    /// " · 1234/s · ETA 1m05s", or nothing before there is a rate to go by.
    pub fn suffix(&self) -> String {
        let rate = self.rate.map(|r| if r >= 10.0 { format!(" · {r:.0}/s") } else { format!(" · {r:.1}/s") }).unwrap_or_default();
        rate + &self.left.map(duration_suffix).unwrap_or_default()
    }
}

/// Where progress goes. Cloneable so a download callback and the pipeline can share one.
#[derive(Clone, Default)]
pub struct ProgressSink(Option<Sender<Progress>>);

impl ProgressSink {
    pub fn channel(tx: Sender<Progress>) -> Self {
        Self(Some(tx))
    }

    /// Progress on stderr, for headless commands: a bar redrawn in place on a terminal,
    /// a line every 10% when stderr is a file or pipe.
    pub fn stderr() -> Self {
        use std::io::{IsTerminal, Write};
        let (tx, rx) = std::sync::mpsc::channel::<Progress>();
        let tty = std::io::stderr().is_terminal();
        std::thread::spawn(move || {
            let mut last_pct = u64::MAX;
            let mut open_bar = false;
            let mut err = std::io::stderr();
            let mut eta = Eta::default();
            for p in rx {
                eta.observe(&p);
                match &p {
                    Progress::Stage(s) => {
                        let _ = writeln!(err, "{}{s}", if open_bar { "\n" } else { "" });
                        open_bar = false;
                    }
                    Progress::Download { .. } => {
                        // Once a second: a line each on a file or pipe too, so a log shows a stall.
                        let text = p.text(&eta);
                        if tty {
                            let _ = write!(err, "\r{text}\x1b[K");
                            open_bar = true;
                        } else {
                            let _ = writeln!(err, "{text}");
                        }
                    }
                    Progress::Fraction { label, done, total } => {
                        let (done, total) = (*done, *total);
                        let pct = (done * 100).checked_div(total).unwrap_or(100);
                        if tty {
                            let filled = (pct / 5) as usize;
                            let bar = format!("{}{}", "#".repeat(filled), " ".repeat(20 - filled.min(20)));
                            let _ = write!(err, "\r{label} [{bar}] {pct:>3}% ({done}/{total}){}\x1b[K", eta.suffix());
                            open_bar = done < total;
                            if !open_bar {
                                let _ = writeln!(err);
                            }
                        } else if pct != last_pct && (pct % 10 == 0 || done == total) {
                            let _ = writeln!(err, "{label}: {done}/{total} ({pct}%){}", eta.suffix());
                        }
                        last_pct = pct;
                    }
                }
            }
        });
        Self(Some(tx))
    }

    pub fn none() -> Self {
        Self(None)
    }

    pub fn send(&self, p: Progress) {
        if let Some(tx) = &self.0 {
            // A watcher that went away (the UI quit) is not an error for the worker.
            let _ = tx.send(p);
        }
    }

    pub fn stage(&self, s: impl Into<String>) {
        self.send(Progress::Stage(s.into()));
    }
}
