//! What long-running work tells its watcher. The report prints it to stderr; the explorer
//! turns it into a gauge. Senders never block on a slow or absent watcher.

use std::sync::mpsc::Sender;

#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// A step with no measurable size: "loading layer 8 SAE".
    Stage(String),
    /// A step with a size: bytes downloaded, texts encoded.
    Fraction { label: String, done: u64, total: u64 },
}

/// Estimates the time left of a `Fraction` from how fast it has gone since its label first
/// appeared (a new label restarts the clock).
#[derive(Debug, Default, Clone)]
pub struct Eta {
    label: String,
    start: Option<(std::time::Instant, u64)>,
    left: Option<std::time::Duration>,
}

impl Eta {
    pub fn observe(&mut self, p: &Progress) {
        let Progress::Fraction { label, done, total } = p else { return };
        if *label != self.label || self.start.is_none() {
            self.label = label.clone();
            self.start = Some((std::time::Instant::now(), *done));
            self.left = None;
            return;
        }
        if let Some((t0, d0)) = self.start {
            let (rate_done, elapsed) = (done.saturating_sub(d0), t0.elapsed().as_secs_f64());
            self.left = (rate_done > 0 && elapsed > 0.0)
                .then(|| std::time::Duration::from_secs_f64(elapsed * total.saturating_sub(*done) as f64 / rate_done as f64));
        }
    }

    /// " · ETA 1m05s", or nothing before there is a rate to go by.
    pub fn suffix(&self) -> String {
        match self.left {
            Some(d) if d.as_secs() >= 60 => format!(" · ETA {}m{:02}s", d.as_secs() / 60, d.as_secs() % 60),
            Some(d) => format!(" · ETA {}s", d.as_secs()),
            None => String::new(),
        }
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
                match p {
                    Progress::Stage(s) => {
                        let _ = writeln!(err, "{}{s}", if open_bar { "\n" } else { "" });
                        open_bar = false;
                    }
                    Progress::Fraction { label, done, total } => {
                        let pct = if total == 0 { 100 } else { done * 100 / total };
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

/// Bridges hf-hub's download callbacks to a sink.
pub(crate) struct DownloadProgress {
    pub sink: ProgressSink,
    pub label: String,
    pub done: u64,
    pub total: u64,
}

impl hf_hub::api::Progress for DownloadProgress {
    fn init(&mut self, size: usize, filename: &str) {
        self.total = size as u64;
        self.done = 0;
        self.label = format!("downloading {filename}");
        self.sink.send(Progress::Fraction { label: self.label.clone(), done: 0, total: self.total });
    }
    fn update(&mut self, size: usize) {
        let before = self.done * 50 / self.total.max(1);
        self.done += size as u64;
        // Throttle to ~50 messages a file: updates arrive per network chunk.
        if self.done * 50 / self.total.max(1) != before {
            self.sink.send(Progress::Fraction { label: self.label.clone(), done: self.done, total: self.total });
        }
    }
    fn finish(&mut self) {
        self.sink.send(Progress::Fraction { label: self.label.clone(), done: self.total, total: self.total });
    }
}
