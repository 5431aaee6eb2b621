//! How many cores are free right now, so a laptop that is busy with something else gets
//! as many libtorch threads as it has idle cores instead of a thread per core.
//!
//! libtorch's OpenMP threads spin while they wait, and a barrier waits for its slowest
//! thread: with one of two cores taken by another process, two threads ran a job in 4.1 s
//! that one thread runs in 3.1 s (scripts/bench-contention, BENCHMARKS.md). This picks the
//! thread count. libgomp reads OMP_WAIT_POLICY before `main` runs, so the threads' waiting
//! can only be changed by starting again: `passive_beside_another` does that when another
//! saescope shares the machine (two of them starting together each see idle cores and take
//! them all; spinning against each other, they took 5.4 s where passive waits took 3.5 s).

use std::time::Duration;

/// How long the other processes' CPU use is watched: /proc/stat counts in 10 ms ticks.
const WINDOW: Duration = Duration::from_millis(50);

/// Busy and total ticks of all CPUs (the `cpu` line of /proc/stat).
fn system_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// This process's own user + system ticks, all threads.
fn own_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Cores not used by other processes, measured over `WINDOW`, from a thread started early
/// so the wait overlaps the start-up.
pub struct CoreProbe(Option<std::thread::JoinHandle<Option<usize>>>);

impl CoreProbe {
    pub fn start() -> Self {
        Self(std::thread::Builder::new().name("saescope-cpu".into()).spawn(free_cores).ok())
    }

    /// The free cores (at least 1), or None where /proc says nothing.
    pub fn free(self) -> Option<usize> {
        self.0.and_then(|h| h.join().ok().flatten())
    }
}

fn free_cores() -> Option<usize> {
    let cores = std::thread::available_parallelism().ok()?.get();
    let (b0, t0) = system_ticks()?;
    let o0 = own_ticks()?;
    std::thread::sleep(WINDOW);
    let (b1, t1) = system_ticks()?;
    let o1 = own_ticks()?;
    let total = t1.saturating_sub(t0);
    if total == 0 {
        return None;
    }
    let others = b1.saturating_sub(b0).saturating_sub(o1.saturating_sub(o0));
    let busy = others as f64 / total as f64 * cores as f64;
    // A core counts as taken when another process used most of it.
    Some(cores.saturating_sub((busy + 0.3).floor() as usize).max(1))
}

/// Whether another saescope process is running (by /proc/PID/comm).
pub fn another_saescope() -> bool {
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else { return false };
    dir.filter_map(Result::ok).any(|e| {
        let name = e.file_name();
        let pid = name.to_string_lossy();
        pid.bytes().all(|b| b.is_ascii_digit()) && pid != me && std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim_end() == "saescope")
    })
}

/// Starts this program again with OMP_WAIT_POLICY=PASSIVE when another saescope is running
/// and the variable is unset; returns when there is nothing to do or the exec failed (the
/// run then goes on as it is). Call it before anything reads standard input or touches the
/// terminal. Costs one more start of the binary (libtorch's load, ~0.2 s) only then.
pub fn passive_beside_another() {
    if std::env::var_os("OMP_WAIT_POLICY").is_some() || !another_saescope() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    use std::os::unix::process::CommandExt;
    let _ = std::process::Command::new(exe).arg0(arg0).args(args).env("OMP_WAIT_POLICY", "PASSIVE").exec();
}

/// What kind of CPU this is, as far as float results go: its model and the vector kernels
/// libtorch's ATen picks on it (`ATEN_CPU_CAPABILITY` where set, else the widest the CPU
/// has), since AVX2 and AVX-512 kernels round sums differently in the last bit.
pub fn kind() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| info.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string());
    let model = field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let flags = field("flags").unwrap_or_default();
    let widest = if flags.split_whitespace().any(|f| f == "avx512f") {
        "avx512"
    } else if flags.split_whitespace().any(|f| f == "avx2") {
        "avx2"
    } else {
        "default"
    };
    let kernels = std::env::var("ATEN_CPU_CAPABILITY").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| widest.to_string());
    format!("{model}, {kernels} kernels")
}
