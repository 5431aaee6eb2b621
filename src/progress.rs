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
            for p in rx {
                match p {
                    Progress::Stage(s) => {
                        let _ = writeln!(err, "{}{s}", if open_bar { "\n" } else { "" });
                        open_bar = false;
                    }
                    Progress::Fraction { label, done, total } => {
                        let pct = if total == 0 { 100 } else { done * 100 / total };
                        if tty {
                            let filled = (pct / 5) as usize;
                            let _ = write!(err, "\r{label} [{}{}] {pct:>3}% ({done}/{total})", "#".repeat(filled), " ".repeat(20 - filled.min(20)));
                            open_bar = done < total;
                            if !open_bar {
                                let _ = writeln!(err);
                            }
                        } else if pct != last_pct && (pct % 10 == 0 || done == total) {
                            let _ = writeln!(err, "{label}: {done}/{total} ({pct}%)");
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
