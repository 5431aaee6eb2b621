//! The result cache: each text's full mean vectors (sparse), saved under the user's cache
//! folder so a second launch on the same inputs needs no model at all.
//!
//! One file per *identity*: the weight files (path, size, mtime), the layers and the
//! options that change the numbers. Inside, one framed entry per text, keyed by the
//! SHA-256 of its text, so a changed sample recomputes only itself. Each entry carries a
//! CRC; a corrupt or truncated file is read up to the damage and the rest recomputed,
//! never trusted. Files are replaced atomically, so an interrupted run leaves the old one.
//!
//! A new file is written as `.partial-*` beside the others, and its writer holds an
//! exclusive lock on it. Partials nobody holds (left by SIGKILL, a second Ctrl-C, a crash)
//! are swept at the next start; `remove_partials` deletes this process's own on the exit
//! paths that run code but skip destructors (the explorer quitting while a worker writes).

use crate::activations::SparseVec;
use color_eyre::eyre::{eyre, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// This process's partial files, for `remove_partials`.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Deletes the partial cache files this process is writing; called on the way out.
pub fn remove_partials() {
    if let Ok(mut live) = LIVE.lock() {
        for p in live.drain(..) {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn forget(path: &Path) {
    if let Ok(mut live) = LIVE.lock() {
        live.retain(|p| p != path);
    }
}

/// Tries to take `f`'s exclusive lock without waiting.
fn try_lock(f: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor owned by `f`; the lock goes with the descriptor.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

const MAGIC: &[u8; 8] = b"SAESCACH";
const VERSION: u32 = 1;
/// A single entry larger than this is damage, not data (13 dense 24576-wide layers are ~2.6 MB).
const MAX_ENTRY: usize = 64 << 20;

pub type HashKey = [u8; 32];

pub fn text_key(text: &str) -> HashKey {
    Sha256::digest(text.as_bytes()).into()
}

/// Builds an identity from the parts that decide the numbers.
#[derive(Default)]
pub struct IdentityBuilder {
    hash: Sha256,
    /// Files by their bytes (`by_content`), not by where they are and when they changed.
    content: bool,
}

impl IdentityBuilder {
    /// An identity that names files by their bytes, so it is the same on every machine
    /// that holds the same files wherever they lie (index shards run on many machines,
    /// each with its own copy of the weights and corpus, and the merge checks they agree).
    pub fn by_content() -> Self {
        Self { hash: Sha256::default(), content: true }
    }

    pub fn part(mut self, s: impl AsRef<[u8]>) -> Self {
        let b = s.as_ref();
        self.hash.update((b.len() as u64).to_le_bytes());
        self.hash.update(b);
        self
    }

    /// A file by where it is, how long it is and when it last changed: hashing gigabytes of
    /// weights would cost more than the launch the cache saves. `by_content` hashes its bytes.
    pub fn file(mut self, path: &Path) -> Result<Self> {
        if self.content {
            let read_err = |e: std::io::Error| eyre!("cannot read {}: {e}", path.display());
            let mut f = std::fs::File::open(path).map_err(read_err)?;
            let mut h = Sha256::default();
            let n = std::io::copy(&mut f, &mut h).map_err(read_err)?;
            self.hash.update(n.to_le_bytes());
            self.hash.update(h.finalize());
            return Ok(self);
        }
        let canon = path.canonicalize().map_err(|e| eyre!("cannot read {}: {e}", path.display()))?;
        let meta = std::fs::metadata(&canon).map_err(|e| eyre!("cannot read {}: {e}", path.display()))?;
        let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).unwrap_or_default();
        Ok(self.part(canon.as_os_str().as_encoded_bytes()).part(meta.len().to_le_bytes()).part(mtime.as_nanos().to_le_bytes()))
    }

    pub fn finish(self) -> HashKey {
        self.hash.finalize().into()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    pub key: HashKey,
    pub n_tokens: u32,
    /// One per SAE of the run, in its order (the identity names the SAEs).
    pub vectors: Vec<SparseVec>,
}

#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// How reading a cache file went.
#[derive(Debug, PartialEq)]
pub enum ReadOutcome {
    /// No file (or one for another identity/version): nothing read.
    Missing,
    Complete {
        entries: usize,
    },
    /// Read `entries` good ones, then hit damage; the rest is recomputed.
    Corrupt {
        entries: usize,
        why: String,
    },
}

impl Cache {
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `~/.cache/saescope/activations` on Linux (per the platform's conventions elsewhere).
    pub fn default_dir() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "saescope").map(|d| d.cache_dir().join("activations"))
    }

    pub fn path(&self, id: &HashKey) -> PathBuf {
        self.dir.join(format!("{}.bin", hex(id)))
    }

    /// A whole run's figure kept beside the entries, as `{id}.{what}`: a CRC-32 then
    /// postcard (which keeps NaN, unlike JSON). What `write_extra` wrote under the same
    /// identity, or None when there is none or it is damaged (then the caller measures
    /// again): postcard alone would read a flipped byte as another number.
    pub fn read_extra<T: serde::de::DeserializeOwned>(&self, id: &HashKey, what: &str) -> Option<T> {
        let bytes = std::fs::read(self.dir.join(format!("{}.{what}", hex(id)))).ok()?;
        let (crc, payload) = bytes.split_first_chunk::<4>()?;
        (u32::from_le_bytes(*crc) == crc32fast::hash(payload)).then(|| postcard::from_bytes(payload).ok()).flatten()
    }

    pub fn write_extra<T: Serialize>(&self, id: &HashKey, what: &str, value: &T) -> Result<()> {
        let payload = postcard::to_allocvec(value).map_err(|e| eyre!("cannot encode the cached {what}: {e}"))?;
        let mut bytes = crc32fast::hash(&payload).to_le_bytes().to_vec();
        bytes.extend(payload);
        std::fs::create_dir_all(&self.dir).map_err(|e| eyre!("cannot create the cache folder {}: {e}", self.dir.display()))?;
        crate::runtime::fsio::write_atomic(&self.dir.join(format!("{}.{what}", hex(id))), &bytes)
    }

    /// Calls `each` with every intact entry, in file order, and its raw frame (for copying
    /// into the next file).
    pub fn read(&self, id: &HashKey, mut each: impl FnMut(CacheEntry, &[u8])) -> ReadOutcome {
        let Ok(file) = std::fs::File::open(self.path(id)) else { return ReadOutcome::Missing };
        let mut r = BufReader::new(file);
        let mut head = [0u8; 44];
        if r.read_exact(&mut head).is_err() || &head[..8] != MAGIC || head[8..12] != VERSION.to_le_bytes() || head[12..] != id[..] {
            return ReadOutcome::Corrupt { entries: 0, why: "bad header".into() };
        }
        let mut entries = 0;
        let mut frame = Vec::new();
        loop {
            let mut len = [0u8; 8];
            match r.read(&mut len[..1]) {
                Ok(0) => return ReadOutcome::Complete { entries },
                Ok(_) => {}
                Err(e) => return ReadOutcome::Corrupt { entries, why: e.to_string() },
            }
            if r.read_exact(&mut len[1..]).is_err() {
                return ReadOutcome::Corrupt { entries, why: "truncated frame".into() };
            }
            let n = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let crc = u32::from_le_bytes([len[4], len[5], len[6], len[7]]);
            if n > MAX_ENTRY {
                return ReadOutcome::Corrupt { entries, why: format!("entry of {n} bytes") };
            }
            frame.clear();
            frame.extend_from_slice(&len);
            frame.resize(8 + n, 0);
            if r.read_exact(&mut frame[8..]).is_err() {
                return ReadOutcome::Corrupt { entries, why: "truncated entry".into() };
            }
            if crc32fast::hash(&frame[8..]) != crc {
                return ReadOutcome::Corrupt { entries, why: "checksum mismatch".into() };
            }
            match decode(&frame[8..]) {
                Some(e) => each(e, &frame),
                None => return ReadOutcome::Corrupt { entries, why: "undecodable entry".into() },
            }
            entries += 1;
        }
    }

    /// Removes partial files no running saescope holds; returns how many.
    pub fn sweep(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return 0 };
        let mut removed = 0;
        for p in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            let partial = p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(".partial-"));
            // Opening for read is enough to lock; the lock ends when `f` is dropped.
            if partial && std::fs::File::open(&p).is_ok_and(|f| try_lock(&f)) && std::fs::remove_file(&p).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// A new file for `id`, invisible until `commit`.
    pub fn writer(&self, id: &HashKey) -> Result<Writer> {
        let fail = |e: std::io::Error| eyre!("cannot write the result cache in {}: {e}", self.dir.display());
        std::fs::create_dir_all(&self.dir).map_err(fail)?;
        let tmp = tempfile::Builder::new().prefix(".partial-").tempfile_in(&self.dir).map_err(fail)?;
        if !try_lock(tmp.as_file()) {
            return Err(eyre!("cannot lock {} in the result cache", tmp.path().display()));
        }
        if let Ok(mut live) = LIVE.lock() {
            live.push(tmp.path().to_path_buf());
        }
        let mut w = Writer { out: BufWriter::new(tmp), path: self.path(id) };
        w.raw(MAGIC).and_then(|_| w.raw(&VERSION.to_le_bytes())).and_then(|_| w.raw(id)).map_err(fail)?;
        Ok(w)
    }
}

/// CacheEntry payloads; `None` on anything malformed, never a panic.
pub fn decode(bytes: &[u8]) -> Option<CacheEntry> {
    let e: CacheEntry = postcard::from_bytes(bytes).ok()?;
    let ok = e.vectors.iter().all(|v| v.idx.len() == v.val.len() && v.idx.windows(2).all(|w| w[0] < w[1]) && v.val.iter().all(|x| x.is_finite()));
    ok.then_some(e)
}

pub struct Writer {
    out: BufWriter<tempfile::NamedTempFile>,
    path: PathBuf,
}

impl Writer {
    /// A frame read from an older file, copied as is.
    pub fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)
    }

    pub fn entry(&mut self, e: &CacheEntry) -> Result<()> {
        let payload = postcard::to_allocvec(e).map_err(|err| eyre!("cannot encode a cache entry: {err}"))?;
        let mut head = (payload.len() as u32).to_le_bytes().to_vec();
        head.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        self.raw(&head).and_then(|_| self.raw(&payload)).map_err(|err| eyre!("cannot write the result cache: {err}"))?;
        Ok(())
    }

    /// Moves the finished file into place atomically.
    pub fn commit(self) -> Result<()> {
        let path = self.path.clone();
        let fail = |e: String| eyre!("cannot write the result cache {}: {e}", path.display());
        let tmp = self.out.into_inner().map_err(|e| fail(e.to_string()))?;
        forget(tmp.path());
        tmp.as_file().sync_all().map_err(|e| fail(e.to_string()))?;
        tmp.persist(&path).map_err(|e| fail(e.error.to_string()))?;
        Ok(())
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
