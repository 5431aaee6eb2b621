//! `o` on a card: the Neuronpedia page in the system's browser, when there is a way to
//! open one. The URL is always on screen to copy, so no opener is a message, not an error.

use std::process::{Command, Stdio};

/// Tries the platform's opener; returns the status line to show.
pub fn open_url(url: &str) -> String {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(target_os = "windows") {
        "explorer"
    } else {
        "xdg-open"
    };
    // Detached and silent: its output would land in the middle of the drawn screen.
    match Command::new(opener).arg(url).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn() {
        Ok(_) => format!("opened {url}"),
        Err(_) => format!("no {opener} here to open a browser; copy the URL from the card"),
    }
}
