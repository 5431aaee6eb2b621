//! A stand-in for the Hugging Face hub on 127.0.0.1, serving folders as repos with the
//! headers the real hub sends: `GET /{org}/{name}/resolve/main/{file}` answers LFS files
//! (`.safetensors`) with a 302 to `/cdn/{sha256}` carrying `x-repo-commit`,
//! `x-linked-etag` (the sha256) and `x-linked-size`, and small files itself with a git
//! etag and `content-range`. Byte ranges are honoured. Faults are set per file name, to
//! show how a client copes with a stalling, failing or lying server. A repo may be gated:
//! without its token (`authorization: Bearer ...`) it answers 401 with the hub's
//! `x-error-code: GatedRepo`. It stops when dropped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// What goes wrong with one file (matched on the last path segment, e.g. `model.safetensors`).
#[derive(Debug, Clone, Default)]
pub struct Fault {
    /// Answer this many requests for the file with 500 first.
    pub errors_first: u32,
    /// Send the body only up to this absolute offset, then hold the connection open, silent.
    pub stall_at: Option<u64>,
    /// On the first body response, send up to this offset, then reset the connection.
    pub reset_at: Option<u64>,
    /// Announce one byte less than the file has.
    pub wrong_size: bool,
    /// Announce the sha256 of something else as the etag.
    pub wrong_hash: bool,
}

struct File {
    bytes: Vec<u8>,
    sha: String,
}

#[derive(Default)]
struct State {
    /// "org/name/path/in/repo" -> file.
    files: HashMap<String, Arc<File>>,
    faults: HashMap<String, Fault>,
    /// Gated repo -> the token it takes.
    gated: HashMap<String, String>,
    /// Every request: "GET path range".
    log: Vec<String>,
}

pub struct Hub {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl Hub {
    pub fn start() -> Hub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            // Bounded: the server ends with its test, or after five minutes at most.
            let t0 = Instant::now();
            while !sp.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(300) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (st, sp) = (st.clone(), sp.clone());
                        std::thread::spawn(move || serve(conn, &st, &sp));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Hub { endpoint, state, stop }
    }

    /// Serves every file under `dir` as `repo` (e.g. "openai-community/gpt2"), but those named in `skip`.
    pub fn repo(&self, repo: &str, dir: &Path, skip: &[&str]) -> &Self {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
            for e in std::fs::read_dir(dir).expect("read dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    let rel = p.strip_prefix(base).expect("rel").to_string_lossy().replace('\\', "/");
                    out.push((rel, std::fs::read(&p).expect("read")));
                }
            }
        }
        let mut files = Vec::new();
        walk(dir, dir, &mut files);
        let mut st = self.state.lock().expect("lock");
        for (rel, bytes) in files.into_iter().filter(|(r, _)| !skip.contains(&r.as_str())) {
            let sha = sha256(&bytes);
            st.files.insert(format!("{repo}/{rel}"), Arc::new(File { bytes, sha }));
        }
        self
    }

    /// Serves `repo` only to requests carrying `token`, as the hub serves a gated model.
    pub fn gate(&self, repo: &str, token: &str) -> &Self {
        self.state.lock().expect("lock").gated.insert(repo.to_string(), token.to_string());
        self
    }

    pub fn fault(&self, file: &str, f: Fault) {
        self.state.lock().expect("lock").faults.insert(file.to_string(), f);
    }

    pub fn clear_faults(&self) {
        self.state.lock().expect("lock").faults.clear();
    }

    pub fn log(&self) -> Vec<String> {
        self.state.lock().expect("lock").log.clone()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn respond(conn: &mut TcpStream, status: &str, headers: &[(String, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
}

fn serve(mut conn: TcpStream, state: &Mutex<State>, stop: &AtomicBool) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range: Option<(u64, Option<u64>)> = None;
    let mut auth = String::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("authorization") {
                auth = v.trim().to_string();
            }
            if k.trim().eq_ignore_ascii_case("range") {
                let v = v.trim().trim_start_matches("bytes=");
                let (a, b) = v.split_once('-').unwrap_or((v, ""));
                range = a.parse().ok().map(|a| (a, b.parse().ok()));
            }
        }
    }
    let mut st = state.lock().expect("lock");
    st.log.push(format!("GET {path} {}", range.map_or("-".into(), |(a, b)| format!("{a}-{}", b.map_or(String::new(), |b| b.to_string())))));
    let (file, key, lfs_body) = if let Some(sha) = path.strip_prefix("/cdn/") {
        let sha = sha.split('?').next().unwrap_or("");
        match st.files.iter().find(|(_, f)| f.sha == sha) {
            Some((k, f)) => (f.clone(), k.clone(), true),
            None => return respond(&mut conn, "404 Not Found", &[], b"no such blob"),
        }
    } else {
        let key = path.trim_start_matches('/').replacen("/resolve/main/", "/", 1);
        let locked = st.gated.iter().find(|(repo, _)| key.starts_with(&format!("{repo}/"))).map(|(_, t)| format!("Bearer {t}"));
        if locked.is_some_and(|want| want != auth) {
            return respond(&mut conn, "401 Unauthorized", &[("x-error-code".into(), "GatedRepo".into())], b"Access to this model is restricted");
        }
        match st.files.get(&key) {
            Some(f) => (f.clone(), key, false),
            None => {
                return respond(
                    &mut conn,
                    "404 Not Found",
                    &[("x-repo-commit".into(), COMMIT.into()), ("x-error-code".into(), "EntryNotFound".into())],
                    b"Entry not found",
                )
            }
        }
    };
    let name = key.rsplit('/').next().unwrap_or("").to_string();
    let mut fault = st.faults.get(&name).cloned().unwrap_or_default();
    if fault.errors_first > 0 {
        st.faults.entry(name.clone()).or_default().errors_first -= 1;
        drop(st);
        return respond(&mut conn, "500 Internal Server Error", &[], b"try again");
    }
    let lfs = name.ends_with(".safetensors");
    let is_body = lfs_body || (!lfs && range != Some((0, Some(0))));
    let reset_once = if is_body { fault.reset_at.take() } else { None };
    if reset_once.is_some() {
        st.faults.entry(name.clone()).or_default().reset_at = None;
    }
    drop(st);
    let size = file.bytes.len() as u64;
    let announced = if fault.wrong_size { size - 1 } else { size };
    let etag = if fault.wrong_hash { sha256(b"something else") } else { file.sha.clone() };
    if lfs && !lfs_body {
        // The hub's answer for an LFS file: metadata here, bytes at the storage.
        let headers = vec![
            ("location".to_string(), format!("/cdn/{}?f={name}", file.sha)),
            ("x-repo-commit".into(), COMMIT.into()),
            ("x-linked-etag".into(), format!("\"{etag}\"")),
            ("x-linked-size".into(), announced.to_string()),
            ("etag".into(), "\"0000000000000000000000000000000000000000\"".into()),
        ];
        return respond(&mut conn, "302 Found", &headers, b"");
    }
    let (start, end) = match range {
        Some((a, b)) => (a.min(size), b.map_or(size, |b| (b + 1).min(size))),
        None => (0, size),
    };
    if start >= size && size > 0 {
        return respond(&mut conn, "416 Range Not Satisfiable", &[("content-range".into(), format!("bytes */{announced}"))], b"");
    }
    let mut headers = vec![("x-repo-commit".to_string(), COMMIT.to_string())];
    if !lfs {
        // A git blob's etag is its sha1, not the content's sha256: nothing to check it against.
        headers.push(("etag".into(), format!("\"{}\"", &file.sha[..40])));
    }
    let status = if range.is_some() {
        headers.push(("content-range".into(), format!("bytes {start}-{}/{announced}", end.saturating_sub(1))));
        "206 Partial Content"
    } else {
        "200 OK"
    };
    let body = &file.bytes[start as usize..end as usize];
    let mut head = format!("HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    if conn.write_all(head.as_bytes()).is_err() {
        return;
    }
    let cut = [fault.stall_at, reset_once].into_iter().flatten().min().map(|c| c.clamp(start, end));
    let upto = cut.unwrap_or(end);
    let _ = conn.write_all(&file.bytes[start as usize..upto as usize]);
    let _ = conn.flush();
    if cut.is_some() && upto < end {
        if reset_once.is_some_and(|r| r <= fault.stall_at.unwrap_or(u64::MAX)) {
            // An abrupt reset, as a dropped network gives.
            let _ = conn.shutdown(Shutdown::Both);
            return;
        }
        // Stalled: connection open, nothing sent, until the test ends.
        let t0 = Instant::now();
        while !stop.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(50));
        }
        return;
    }
    let _ = conn.write_all(&file.bytes[upto as usize..end as usize]);
}
