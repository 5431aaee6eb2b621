//! Indexes on disk, beside the result cache (`--cache-dir`, default ~/.cache/saescope):
//! `index-KEY.bin` once finished, `index-KEY.resume` while unfinished, where KEY names the
//! weights, the corpus files and the options (`build::identity`). Both are written
//! atomically with a CRC, so an interrupted write leaves the previous file, and a damaged
//! one is reported and rebuilt instead of trusted.

use super::stats::LayerStats;
use super::Index;
use crate::activations::cache::{hex, HashKey};
use color_eyre::eyre::{bail, eyre, Result};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::path::{Path, PathBuf};

const INDEX_MAGIC: &[u8; 8] = b"SAESIDX1";
const RESUME_MAGIC: &[u8; 8] = b"SAESRES1";

/// Where an unfinished index stands: windows before `windows_done` are in `layers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resume {
    pub windows_done: u64,
    pub tokens_done: u64,
    pub seconds: f64,
    pub layers: Vec<LayerStats>,
}

#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// What reading a stored file found.
pub enum Found<T> {
    Missing,
    Ok(T),
    /// There, but damaged or of another format: why.
    Damaged(String),
}

impl Store {
    /// The index folder for a result-cache folder (its sibling `index`).
    pub fn beside(cache_dir: &Path) -> Self {
        let dir = match cache_dir.file_name() {
            Some(n) if n == "activations" => cache_dir.with_file_name("index"),
            _ => cache_dir.join("index"),
        };
        Self { dir }
    }

    /// Fails with what to do unless an index can be written here: checked before any
    /// compute, so an unwritable folder never costs a run.
    pub fn check_writable(&self) -> Result<()> {
        let fail = |e: std::io::Error| {
            eyre!("cannot write the index folder {} ({}); pass --cache-dir DIR", self.dir.display(), crate::runtime::fsio::describe(&self.dir, &e))
        };
        std::fs::create_dir_all(&self.dir).map_err(fail)?;
        tempfile::NamedTempFile::new_in(&self.dir).map(drop).map_err(fail)
    }

    pub fn path(&self, id: &HashKey) -> PathBuf {
        self.dir.join(format!("index-{}.bin", hex(id)))
    }

    pub fn resume_path(&self, id: &HashKey) -> PathBuf {
        self.dir.join(format!("index-{}.resume", hex(id)))
    }

    /// The compute time beside the index file.
    pub fn seconds_path(&self, id: &HashKey) -> PathBuf {
        self.dir.join(format!("index-{}.seconds", hex(id)))
    }

    pub fn read(&self, id: &HashKey) -> Found<Index> {
        match read::<Index>(&self.path(id), INDEX_MAGIC) {
            Found::Ok(mut index) => {
                index.seconds = std::fs::read_to_string(self.seconds_path(id)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0.0);
                Found::Ok(index)
            }
            other => other,
        }
    }

    pub fn read_resume(&self, id: &HashKey) -> Found<Resume> {
        read(&self.resume_path(id), RESUME_MAGIC)
    }

    /// Stores the finished index and drops the resume file.
    pub fn write(&self, id: &HashKey, index: &Index) -> Result<PathBuf> {
        let path = self.path(id);
        write(&path, INDEX_MAGIC, index)?;
        // Only a figure for the summary: losing it loses nothing of the index.
        let _ = crate::runtime::fsio::write_atomic(&self.seconds_path(id), format!("{}\n", index.seconds).as_bytes());
        let _ = std::fs::remove_file(self.resume_path(id));
        Ok(path)
    }

    pub fn write_resume(&self, id: &HashKey, r: &Resume) -> Result<PathBuf> {
        let path = self.resume_path(id);
        write(&path, RESUME_MAGIC, r)?;
        Ok(path)
    }
}

pub(super) fn write<T: Serialize>(path: &Path, magic: &[u8; 8], value: &T) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| eyre!("cannot create the index folder {} ({}); pass --cache-dir DIR", dir.display(), crate::runtime::fsio::describe(dir, &e)))?;
    }
    // One buffer, sized first: header, then the body in place, then its CRC in the header.
    let size = postcard::experimental::serialized_size(value).map_err(|e| eyre!("internal: cannot size the index: {e}"))?;
    let mut bytes = Vec::with_capacity(size + 12);
    bytes.extend_from_slice(magic);
    bytes.extend_from_slice(&[0; 4]);
    let mut bytes = postcard::to_extend(value, bytes).map_err(|e| eyre!("internal: cannot encode the index: {e}"))?;
    let crc = crc32fast::hash(&bytes[12..]).to_le_bytes();
    bytes[8..12].copy_from_slice(&crc);
    crate::runtime::fsio::write_atomic(path, &bytes)
}

pub(super) fn read<T: DeserializeOwned>(path: &Path, magic: &[u8; 8]) -> Found<T> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Found::Missing,
        Err(e) => return Found::Damaged(crate::runtime::fsio::describe(path, &e)),
    };
    match decode(&bytes, magic) {
        Ok(v) => Found::Ok(v),
        Err(e) => Found::Damaged(e.to_string()),
    }
}

/// A stored index file's bytes, decoded (tests, tools).
pub fn decode_index(bytes: &[u8]) -> Result<Index> {
    decode(bytes, INDEX_MAGIC)
}

fn decode<T: DeserializeOwned>(bytes: &[u8], magic: &[u8; 8]) -> Result<T> {
    if bytes.len() < 12 || &bytes[..8] != magic {
        bail!("not a saescope index of this version");
    }
    let crc = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let body = &bytes[12..];
    if crc32fast::hash(body) != crc {
        bail!("checksum mismatch (truncated or damaged)");
    }
    postcard::from_bytes(body).map_err(|e| eyre!("cannot decode: {e}"))
}
