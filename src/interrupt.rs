//! SIGINT and SIGTERM as a flag. The default action would kill the process mid-write and
//! leave the terminal raw; instead compute loops check the flag between batches and
//! unwind normally (temp files are removed on drop, the explorer restores the terminal).
//! A second SIGINT while the first is pending exits at once, for a stuck download.

use color_eyre::eyre::{bail, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Exit status of a run stopped by a signal (128 + SIGINT, as shells report it).
pub const EXIT_CODE: i32 = 130;

pub const MESSAGE: &str = "interrupted; nothing was written";

pub fn install() -> Result<()> {
    let flag = FLAG.get_or_init(|| Arc::new(AtomicBool::new(false))).clone();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Order matters: the conditional exit sees the flag before this signal sets it.
        signal_hook::flag::register_conditional_shutdown(sig, EXIT_CODE, flag.clone())?;
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(())
}

pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::Relaxed))
}

/// Fails with `MESSAGE` once a signal has arrived.
pub fn check() -> Result<()> {
    if requested() {
        bail!(MESSAGE);
    }
    Ok(())
}
