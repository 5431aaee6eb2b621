//! One file from a Hugging Face endpoint into the hub cache, the way Python's
//! huggingface_hub lays it out (`blobs/ETAG`, `snapshots/COMMIT/FILE` -> blob, `refs/main`),
//! so either program reads what the other wrote.
//!
//! A download finishes or fails; it never hangs. No byte for `Policy::stall` is a stall;
//! stalls, resets, 5xx and 429 resume from the bytes on disk (HTTP Range) after a backoff,
//! `Policy::retries` times in a row, then stop with one message that names the file, the
//! bytes received, the endpoint and what to do. 401/403/404 stop at once. What arrived is
//! checked: its size against the hub's, and for LFS files its sha256 against the etag (a
//! mismatch deletes the blob). The bytes go to `blobs/ETAG.incomplete` (Python's name, so
//! each resumes the other's) and only a complete, verified blob is linked into `snapshots/`.
//! The transfer runs on a helper thread (`interrupt::wait_ticking`), so a signal ends the
//! run within a tenth of a second whatever the socket is doing, and progress is reported
//! once a second even while nothing arrives.

use crate::runtime::progress::{Progress, ProgressSink};
use color_eyre::eyre::{bail, eyre, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long to wait for data and how often to try again; `--download-timeout` and
/// `--download-retries` set it once at start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub stall: Duration,
    pub retries: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self { stall: Duration::from_secs(30), retries: 5 }
    }
}

static POLICY: OnceLock<Policy> = OnceLock::new();

/// Sets the policy for every download of this process (first call wins).
pub fn set_policy(p: Policy) {
    let _ = POLICY.set(p);
}

fn policy() -> Policy {
    POLICY.get().copied().unwrap_or_default()
}

/// Backoff before try `n` (1-based): 1, 2, 4, 8 s, never longer than the stall timeout, so a
/// short timeout (tests, impatient users) also means short pauses.
fn backoff(n: u32, p: &Policy) -> Duration {
    Duration::from_secs(1 << n.saturating_sub(1).min(3)).min(p.stall.max(Duration::from_millis(100)))
}

/// A failure either worth another try or final.
enum Fail {
    Retry(String),
    Stop(String),
    /// The hub has no such file (404): final, and a caller may try another name.
    Missing(String),
}

/// The error a download ends with when the hub has no such file, so that a caller with an
/// alternative (a sharded checkpoint's index instead of `model.safetensors`) can tell it
/// from every other failure.
#[derive(Debug)]
pub struct NotOnHub(pub String);

impl std::fmt::Display for NotOnHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotOnHub {}

/// What the hub says about a file before it is fetched.
#[derive(Debug)]
struct Meta {
    commit: String,
    etag: String,
    size: u64,
    /// Where the bytes are: the resolve URL, or the storage it redirects to.
    url: String,
    /// LFS files' etag is their sha256, which is then checked.
    lfs: bool,
}

/// What the transfer thread shares with the one reporting progress.
#[derive(Default)]
struct Shared {
    done: AtomicU64,
    total: AtomicU64,
    note: Mutex<String>,
}

impl Shared {
    fn note(&self, s: impl Into<String>) {
        if let Ok(mut n) = self.note.lock() {
            *n = s.into();
        }
    }
}

/// What one file's download needs to know.
pub struct Task {
    pub endpoint: String,
    pub repo: String,
    pub file: String,
    /// The hub cache's root (HF_HUB_CACHE).
    pub cache: PathBuf,
    /// `models--org--name` inside it.
    pub repo_dir: PathBuf,
}

/// Downloads `task.file` into the cache and returns its snapshot path.
pub fn download(task: Task, progress: &ProgressSink) -> Result<PathBuf> {
    let shared = Arc::new(Shared::default());
    let short = short_name(&task.file);
    let (file, partial) = (task.file.clone(), task.repo_dir.join("blobs"));
    let worker = shared.clone();
    let mut window: std::collections::VecDeque<(Instant, u64)> = Default::default();
    let mut last: Option<Instant> = None;
    let out = crate::runtime::interrupt::wait_ticking(
        move || transfer(&task, &worker),
        || {
            let total = shared.total.load(Ordering::Relaxed);
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) || total == 0 {
                return;
            }
            let now = Instant::now();
            last = Some(now);
            let done = shared.done.load(Ordering::Relaxed);
            // Rate over the last five seconds, so a stall shows as a falling rate.
            window.push_back((now, done));
            while window.len() > 6 {
                window.pop_front();
            }
            let rate = match (window.front(), window.back()) {
                (Some(a), Some(b)) if b.0 > a.0 => b.1.saturating_sub(a.1) as f64 / (b.0 - a.0).as_secs_f64(),
                _ => 0.0,
            };
            let note = shared.note.lock().map(|n| n.clone()).unwrap_or_default();
            progress.send(Progress::Download { file: short.clone(), done, total, rate, note });
        },
    );
    match out {
        Err(e) if crate::runtime::interrupt::requested() => {
            Err(e.wrap_err(format!("stopped downloading {file}; the bytes received are kept in {} for the next run", partial.display())))
        }
        Err(e) => Err(e),
        Ok(path) => {
            let total = shared.total.load(Ordering::Relaxed);
            if total > 0 {
                progress.send(Progress::Download { file: short_name(&file), done: total, total, rate: 0.0, note: "done".into() });
            }
            Ok(path)
        }
    }
}

fn short_name(file: &str) -> String {
    file.rsplit('/').next().unwrap_or(file).to_string()
}

fn agent(p: &Policy, redirects: u32) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(p.stall.min(Duration::from_secs(10)))
        .timeout_read(p.stall)
        .timeout_write(p.stall)
        .redirects(redirects)
        .try_proxy_from_env(true)
        .user_agent(concat!("saescope/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// HF_TOKEN for gated repos, sent to the endpoint only (never to the storage it redirects to).
fn authorized(req: ureq::Request, endpoint: &str, url: &str) -> ureq::Request {
    match std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty()) {
        Some(t) if url.starts_with(endpoint) => req.set("authorization", &format!("Bearer {t}")),
        _ => req,
    }
}

/// The body of the retry loop: what a failed status means for `what`.
fn status_fail(code: u16, task: &Task) -> Fail {
    let what = format!("{}/{}", task.repo, task.file);
    match code {
        401 | 403 => {
            Fail::Stop(format!("{what}: the hub answered {code} (gated or private): accept the repo's terms on the hub and set HF_TOKEN, or use local files"))
        }
        404 => Fail::Missing(format!("{what}: not found at {} (404): check the repo and file name", task.endpoint)),
        408 | 429 | 500..=599 => Fail::Retry(format!("the server answered {code}")),
        _ => Fail::Stop(format!("{what}: the hub answered {code}")),
    }
}

fn transport_fail(e: &ureq::Transport) -> Fail {
    Fail::Retry(e.to_string())
}

fn clean_etag(v: &str) -> String {
    v.trim().trim_start_matches("W/").trim_matches('"').to_string()
}

/// The resolve URL's headers (without following redirects, where the hub puts the
/// commit and the LFS etag), then the size from the storage's `content-range`.
fn metadata(task: &Task, p: &Policy) -> std::result::Result<Meta, Fail> {
    let url = format!("{}/{}/resolve/main/{}", task.endpoint, task.repo, task.file);
    let req = authorized(agent(p, 0).get(&url).set("range", "bytes=0-0"), &task.endpoint, &url);
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, _)) => return Err(status_fail(code, task)),
        Err(ureq::Error::Transport(t)) => return Err(transport_fail(&t)),
    };
    let header = |name: &str| resp.header(name).map(str::to_string);
    let commit =
        header("x-repo-commit").ok_or_else(|| Fail::Stop(format!("{} answered without x-repo-commit: is HF_ENDPOINT a Hugging Face hub?", task.endpoint)))?;
    let linked = header("x-linked-etag");
    let etag = linked.clone().or_else(|| header("etag")).map(|e| clean_etag(&e)).filter(|e| !e.is_empty());
    let etag = etag.ok_or_else(|| Fail::Stop(format!("{} sent no etag for {}/{}", task.endpoint, task.repo, task.file)))?;
    if etag.contains(['/', '\\']) || etag.starts_with('.') {
        return Err(Fail::Stop(format!("{} sent an etag that is not a file name: {etag:?}", task.endpoint)));
    }
    let lfs = linked.is_some() || (etag.len() == 64 && etag.bytes().all(|b| b.is_ascii_hexdigit()));
    let (size, url) = if (300..400).contains(&resp.status()) {
        let loc = header("location").ok_or_else(|| Fail::Retry(format!("a {} redirect without a location", resp.status())))?;
        let loc = if loc.starts_with("http://") || loc.starts_with("https://") { loc } else { format!("{}{}", task.endpoint, loc) };
        let size = match header("x-linked-size").and_then(|s| s.trim().parse().ok()) {
            Some(s) => s,
            None => {
                let probe = authorized(agent(p, 5).get(&loc).set("range", "bytes=0-0"), &task.endpoint, &loc);
                match probe.call() {
                    Ok(r) => range_total(&r).ok_or_else(|| Fail::Retry("the storage sent no content-range".into()))?,
                    Err(ureq::Error::Status(code, _)) => return Err(status_fail(code, task)),
                    Err(ureq::Error::Transport(t)) => return Err(transport_fail(&t)),
                }
            }
        };
        (size, loc)
    } else {
        let size = range_total(&resp)
            .or_else(|| header("x-linked-size").and_then(|s| s.trim().parse().ok()))
            .or_else(|| (resp.status() == 200).then(|| header("content-length").and_then(|s| s.trim().parse().ok())).flatten());
        (size.ok_or_else(|| Fail::Retry("the hub sent no content-range".into()))?, url)
    };
    Ok(Meta { commit: commit.trim().to_string(), etag, size, url, lfs })
}

/// SIZE of `content-range: bytes A-B/SIZE`.
fn range_total(r: &ureq::Response) -> Option<u64> {
    r.header("content-range")?.rsplit('/').next()?.trim().parse().ok()
}

/// START of `content-range: bytes START-END/SIZE`.
fn range_start(r: &ureq::Response) -> Option<u64> {
    r.header("content-range")?.trim().strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok()
}

/// Appends to `part` from its current length to `meta.size`.
fn fetch_rest(task: &Task, meta: &Meta, part: &Path, start: u64, p: &Policy, shared: &Shared) -> std::result::Result<(), Fail> {
    let mut req = authorized(agent(p, 5).get(&meta.url), &task.endpoint, &meta.url);
    if start > 0 {
        req = req.set("range", &format!("bytes={start}-"));
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(416, _)) if start == meta.size => return Ok(()),
        Err(ureq::Error::Status(code, _)) => return Err(status_fail(code, task)),
        Err(ureq::Error::Transport(t)) => return Err(transport_fail(&t)),
    };
    let io = |e: std::io::Error| Fail::Stop(format!("cannot write {}: {e}; free some space or set HF_HUB_CACHE to another folder", part.display()));
    // A server that ignores Range sends the whole file: start over rather than append it.
    let from = if resp.status() == 206 { range_start(&resp).unwrap_or(start) } else { 0 };
    if from != start && from != 0 {
        return Err(Fail::Retry(format!("asked for bytes from {start}, got from {from}")));
    }
    if let Some(total) = range_total(&resp).filter(|&t| t != meta.size) {
        return Err(Fail::Stop(format!("the server now says the file has {total} bytes, not {}", meta.size)));
    }
    let mut out = std::fs::OpenOptions::new().create(true).append(from > 0).write(true).truncate(from == 0).open(part).map_err(io)?;
    let mut done = from;
    shared.done.store(done, Ordering::Relaxed);
    let mut body = resp.into_reader();
    let mut buf = vec![0u8; 1 << 18];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
                return Err(Fail::Retry(format!("no data for {} s", p.stall.as_secs_f64())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Fail::Retry(e.to_string())),
        };
        if done + n as u64 > meta.size {
            return Err(Fail::Stop(format!("the server sent more than the {} bytes it announced", meta.size)));
        }
        out.write_all(&buf[..n]).map_err(io)?;
        done += n as u64;
        shared.done.store(done, Ordering::Relaxed);
    }
    if done < meta.size {
        return Err(Fail::Retry(format!("the connection closed after {done} of {} bytes", meta.size)));
    }
    out.sync_all().map_err(io)
}

fn sha256_hex(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf)? {
            0 => break,
            n => h.update(&buf[..n]),
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// An exclusive lock on the blob, at the path Python's huggingface_hub uses
/// (`.locks/models--org--name/ETAG.lock`), so two downloaders never write one file.
struct BlobLock(#[allow(dead_code)] std::fs::File);

fn lock(task: &Task, etag: &str) -> Result<BlobLock> {
    let name = task.repo_dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    let dir = task.cache.join(".locks").join(name);
    std::fs::create_dir_all(&dir).map_err(|e| eyre!("cannot create {}: {e}; set HF_HUB_CACHE to a writable folder", dir.display()))?;
    let path = dir.join(format!("{etag}.lock"));
    let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| eyre!("cannot open {}: {e}", path.display()))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this function owns; it blocks until the other holder ends.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        bail!("cannot lock {}: {}", path.display(), std::io::Error::last_os_error());
    }
    Ok(BlobLock(f))
}

/// The whole job, on the helper thread.
fn transfer(task: &Task, shared: &Shared) -> Result<PathBuf> {
    let p = policy();
    let what = format!("{}/{}", task.repo, task.file);
    let advice = "rerun to resume; set HF_ENDPOINT to a mirror, raise --download-timeout, or use local files with --model-dir / --sae-dir";
    let mut failures = 0u32;
    let meta = loop {
        match metadata(task, &p) {
            Ok(m) => break m,
            Err(Fail::Stop(s)) => bail!("{s}"),
            Err(Fail::Missing(s)) => return Err(NotOnHub(s).into()),
            Err(Fail::Retry(s)) => {
                failures += 1;
                if failures > p.retries {
                    bail!("cannot download {what} from {}: {s} ({} tries); {advice}", task.endpoint, failures);
                }
                shared.note(format!("{s}; try {} of {}", failures + 1, p.retries + 1));
                std::thread::sleep(backoff(failures, &p));
            }
        }
    };
    shared.total.store(meta.size.max(1), Ordering::Relaxed);
    let blobs = task.repo_dir.join("blobs");
    std::fs::create_dir_all(&blobs).map_err(|e| eyre!("cannot create {}: {e}; set HF_HUB_CACHE to a writable folder", blobs.display()))?;
    let blob = blobs.join(&meta.etag);
    let _lock = lock(task, &meta.etag)?;
    let have_blob = std::fs::metadata(&blob).is_ok_and(|m| m.is_file() && m.len() == meta.size);
    if !have_blob {
        let part = blobs.join(format!("{}.incomplete", meta.etag));
        failures = 0;
        loop {
            let mut have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
            if have > meta.size {
                let _ = std::fs::remove_file(&part);
                have = 0;
            }
            if have == meta.size && (have > 0 || part.exists()) {
                break;
            }
            shared.done.store(have, Ordering::Relaxed);
            match fetch_rest(task, &meta, &part, have, &p, shared) {
                Ok(()) => shared.note(""),
                Err(Fail::Stop(s) | Fail::Missing(s)) => {
                    let _ = std::fs::remove_file(&part);
                    bail!("downloading {what} from {} failed: {s}; the partial file was deleted; {advice}", task.endpoint);
                }
                Err(Fail::Retry(s)) => {
                    let got = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
                    // A try that moved a megabyte forward is progress, not a failure in a row.
                    if got >= have + (1 << 20) {
                        failures = 0;
                    }
                    failures += 1;
                    if failures > p.retries {
                        bail!(
                            "downloading {what} from {} failed: {s}, {failures} tries in a row; {got} of {} bytes received and kept in {} for the next run; {advice}",
                            task.endpoint,
                            meta.size,
                            part.display()
                        );
                    }
                    shared.note(format!("{s}; resuming at {} (try {} of {})", crate::runtime::progress::bytes(got), failures + 1, p.retries + 1));
                    std::thread::sleep(backoff(failures, &p));
                }
            }
        }
        if meta.lfs {
            shared.note("checking sha256");
            let sum = sha256_hex(&part).map_err(|e| eyre!("cannot read {}: {e}", part.display()))?;
            if !sum.eq_ignore_ascii_case(&meta.etag) {
                let _ = std::fs::remove_file(&part);
                bail!(
                    "downloaded {what} from {} but its sha256 {sum} is not the hub's {}; the file was deleted; rerun to download it again",
                    task.endpoint,
                    meta.etag
                );
            }
        }
        std::fs::rename(&part, &blob).map_err(|e| eyre!("cannot move {} into place: {e}", part.display()))?;
    }
    link(task, &meta, &blob)
}

/// `snapshots/COMMIT/FILE` as a relative link to the blob, and `refs/main`.
fn link(task: &Task, meta: &Meta, blob: &Path) -> Result<PathBuf> {
    let snap = task.repo_dir.join("snapshots").join(&meta.commit).join(&task.file);
    let parent = snap.parent().ok_or_else(|| eyre!("internal: {} has no folder", snap.display()))?;
    std::fs::create_dir_all(parent).map_err(|e| eyre!("cannot create {}: {e}", parent.display()))?;
    let depth = task.file.split('/').count() + 1;
    let target = PathBuf::from("../".repeat(depth)).join("blobs").join(blob.file_name().unwrap_or_default());
    let _ = std::fs::remove_file(&snap);
    std::os::unix::fs::symlink(&target, &snap).map_err(|e| eyre!("cannot link {}: {e}", snap.display()))?;
    let refs = task.repo_dir.join("refs");
    std::fs::create_dir_all(&refs).map_err(|e| eyre!("cannot create {}: {e}", refs.display()))?;
    crate::runtime::fsio::write_atomic(&refs.join("main"), meta.commit.as_bytes())?;
    Ok(snap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stays_under_the_stall_timeout() {
        let p = Policy { stall: Duration::from_secs(30), retries: 5 };
        let got: Vec<u64> = (1..=5).map(|n| backoff(n, &p).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 8]);
        let quick = Policy { stall: Duration::from_millis(500), retries: 5 };
        assert_eq!(backoff(4, &quick), Duration::from_millis(500));
    }

    #[test]
    fn etags_lose_quotes_and_weak_marks() {
        assert_eq!(clean_etag("W/\"abc\""), "abc");
        assert_eq!(clean_etag(" \"d41d8\" "), "d41d8");
    }
}
