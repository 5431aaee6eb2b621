use crate::commands::cli::Cli;
use clap::Parser;

mod commands;

/// Large tensors (the [tokens, d_sae] SAE buffers) get their own mappings, handed back to
/// the OS when freed. glibc's adaptive threshold otherwise moves them onto the heap after
/// the first free, and peak RSS then wandered by up to 250 MB between identical runs
/// (BENCHMARKS.md). Fixing that threshold also fixes the trim threshold at 128 KB, so the
/// heap was handed back after every block and the next block faulted its pages in again:
/// with 12 hooks the forward ran 20% slower. Freed heap up to 64 MB is kept for reuse.
fn steady_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

fn main() {
    saescope::runtime::cpu::passive_beside_another();
    steady_memory();
    if let Ok(mut p) = commands::CPU_PROBE.lock() {
        *p = Some(saescope::runtime::cpu::CoreProbe::start());
    }
    let cli = Cli::parse();
    let explorer = matches!(cli.command, None | Some(commands::cli::Command::Explore { .. }));
    let outcome = color_eyre::install().and_then(|_| saescope::runtime::interrupt::install()).and_then(|_| commands::run(cli));
    // A worker thread may still be writing a cache file; the process ends without its destructors.
    saescope::activations::cache::remove_partials();
    if explorer && outcome.is_ok() {
        // The explorer's worker threads may still be inside libtorch (loading, a card's
        // forward) when the user quits: running libtorch's static destructors under them
        // crashed the process after the terminal was restored (exit 139, seen in
        // tests/it/tui_e2e.rs). Everything the explorer writes is written; end without them.
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        // SAFETY: _exit ends the process at once; nothing after it runs.
        unsafe { libc::_exit(0) };
    }
    if let Err(e) = outcome {
        // One line per cause, no backtrace noise: these are user-facing errors.
        let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
        eprintln!("error: {}", chain.join(": "));
        std::process::exit(if saescope::runtime::interrupt::requested() { saescope::runtime::interrupt::exit_code() } else { 1 });
    }
}
