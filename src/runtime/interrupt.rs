//! SIGINT and SIGTERM as a flag. The default action would kill the process mid-write and
//! leave the terminal raw; instead compute loops check the flag between batches and
//! unwind normally (temp files are removed on drop, the explorer restores the terminal).
//! Blocking work that cannot check the flag (a network read) runs on a helper thread
//! that the caller stops waiting for (`wait`). A second signal while the first is pending
//! exits at once.

use color_eyre::eyre::{bail, Result};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The first signal that arrived (0: none). `signal_hook::flag` wants a bool, so the
/// per-signal flags are folded into this by `requested`.
static SIGNAL: AtomicI32 = AtomicI32::new(0);
static FLAGS: OnceLock<[(i32, Arc<std::sync::atomic::AtomicBool>); 2]> = OnceLock::new();

/// Exit status of a run stopped by SIGINT (128 + 2, as shells report it).
pub const EXIT_CODE: i32 = 130;

pub const MESSAGE: &str = "interrupted; nothing was written";

pub fn install() -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flags = FLAGS.get_or_init(|| [(SIGINT, Default::default()), (SIGTERM, Default::default())]);
    let any = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for (sig, flag) in flags {
        // Order matters: the conditional exit sees the shared flag before this signal sets it,
        // so only a second signal (of either kind) exits at once.
        signal_hook::flag::register_conditional_shutdown(*sig, 128 + sig, any.clone())?;
        signal_hook::flag::register(*sig, any.clone())?;
        signal_hook::flag::register(*sig, flag.clone())?;
    }
    Ok(())
}

pub fn requested() -> bool {
    signal().is_some()
}

/// Set when the explorer quits while the model thread indexes: its loop stops at the next
/// batch and keeps what is done, as on a signal, but the process exits normally.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn stop_work() {
    STOP.store(true, Ordering::Relaxed);
}

/// A signal arrived, or the explorer asked its work to stop.
pub fn stopping() -> bool {
    requested() || STOP.load(Ordering::Relaxed)
}

/// The signal that asked us to stop, if any.
pub fn signal() -> Option<i32> {
    if let Some(s) = Some(SIGNAL.load(Ordering::Relaxed)).filter(|&s| s != 0) {
        return Some(s);
    }
    let flags = FLAGS.get()?;
    let (sig, _) = flags.iter().find(|(_, f)| f.load(Ordering::Relaxed))?;
    let _ = SIGNAL.compare_exchange(0, *sig, Ordering::Relaxed, Ordering::Relaxed);
    Some(SIGNAL.load(Ordering::Relaxed))
}

/// 130 after SIGINT, 143 after SIGTERM: what a shell reports for a process the signal killed.
pub fn exit_code() -> i32 {
    signal().map_or(EXIT_CODE, |s| 128 + s)
}

/// Fails with `MESSAGE` once a signal has arrived.
pub fn check() -> Result<()> {
    if stopping() {
        bail!(MESSAGE);
    }
    Ok(())
}

/// Runs `job` on its own thread and waits for it, checking for a signal and calling `tick`
/// every 100 ms: a job blocked in a read gives control back within that time. On a signal
/// the thread is left behind (the process is about to exit) and the error is `MESSAGE`.
pub fn wait_ticking<T: Send + 'static>(job: impl FnOnce() -> Result<T> + Send + 'static, mut tick: impl FnMut()) -> Result<T> {
    static JOBS: AtomicUsize = AtomicUsize::new(0);
    let name = format!("saescope-io-{}", JOBS.fetch_add(1, Ordering::Relaxed));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new().name(name).spawn(move || {
        let _ = tx.send(job());
    })?;
    loop {
        check()?;
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(out) => return out,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => tick(),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => bail!("internal: a download thread stopped without an answer"),
        }
    }
}
