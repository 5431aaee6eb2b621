//! Writing user-visible files without ever leaving a half-written one behind, and without
//! replacing what the path really is.
//!
//! A regular file (or a new one) is written to a temporary file beside it and renamed into
//! place, so readers see the old or the new file, never a mix. A symlink is written through,
//! atomically at its target. A device, FIFO or socket (`/dev/null`, `/dev/stdout`, a named
//! pipe) is written directly, as the shell's `>` would, and `-` is standard output. A file
//! without write permission is refused, and new files get the mode the umask gives.

use color_eyre::eyre::{bail, eyre, Result};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// An error about `path` in words: "a symlink loop" instead of the OS's bare "not found".
pub fn describe(path: &Path, e: &std::io::Error) -> String {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return "it is a symlink loop".into();
    }
    if e.kind() == std::io::ErrorKind::NotFound && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return "it is a symlink to nothing".into();
    }
    match e.kind() {
        std::io::ErrorKind::NotFound => "not found".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// The process's umask, read without changing it (Linux reports it in /proc since 4.7).
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Umask:").and_then(|v| u32::from_str_radix(v.trim(), 8).ok())))
        .unwrap_or(0o022)
}

/// Follows a chain of symlinks to the path it ends at (which may not exist yet).
fn final_target(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p).map_err(|e| eyre!("cannot read the link {}: {e}", p.display()))?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(p),
        }
    }
    bail!("cannot write {}: it is a symlink loop; point -o at a file", path.display())
}

/// Where a write to `path` goes: a device or pipe written in place, or a file replaced
/// atomically with these permissions.
enum Destination {
    InPlace(PathBuf),
    File { target: PathBuf, mode: u32 },
}

fn cannot(path: &Path, target: &Path, e: std::io::Error) -> color_eyre::Report {
    eyre!("cannot write {}: {}; choose a writable path", path.display(), describe(target, &e))
}

fn destination(path: &Path) -> Result<Destination> {
    let target = final_target(path)?;
    let mode = match std::fs::metadata(&target) {
        Ok(m) if m.is_dir() => bail!("cannot write {}: it is a folder; give a file name", path.display()),
        Ok(m) if m.file_type().is_char_device() || m.file_type().is_fifo() || m.file_type().is_socket() || m.file_type().is_block_device() => {
            return Ok(Destination::InPlace(target));
        }
        Ok(m) if m.permissions().mode() & 0o200 == 0 => {
            bail!("{} is read-only: nothing was written; make it writable (chmod u+w) or choose another path", path.display())
        }
        // Replacing a file keeps its permissions, as `>` would.
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0o666 & !umask(),
        Err(e) => return Err(cannot(path, &target, e)),
    };
    Ok(Destination::File { target, mode })
}

/// The folder a file's temporary sibling goes in.
fn folder_of(target: &Path) -> &Path {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Whether `write_atomic` can write `path`, asked before a long computation so that a bad
/// `-o` costs nothing: the same refusals, and a temporary file made (and removed) beside it.
pub fn check_writable(path: &Path) -> Result<()> {
    if path.as_os_str() == "-" {
        return Ok(());
    }
    match destination(path)? {
        Destination::InPlace(_) => Ok(()),
        Destination::File { target, .. } => {
            tempfile::Builder::new().prefix(".saescope-").tempfile_in(folder_of(&target)).map(drop).map_err(|e| cannot(path, &target, e))
        }
    }
}

/// Writes `bytes` to `path` by the rules above.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        return out.write_all(bytes).and_then(|_| out.flush()).map_err(|e| eyre!("cannot write to standard output: {e}"));
    }
    let (target, mode) = match destination(path)? {
        Destination::InPlace(target) => {
            let fail = |e| cannot(path, &target, e);
            let mut f = std::fs::OpenOptions::new().write(true).open(&target).map_err(fail)?;
            return f.write_all(bytes).and_then(|_| f.flush()).map_err(|e| cannot(path, &target, e));
        }
        Destination::File { target, mode } => (target, mode),
    };
    let fail = |e: std::io::Error| cannot(path, &target, e);
    let mut tmp = tempfile::Builder::new().prefix(".saescope-").tempfile_in(folder_of(&target)).map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode)).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(&target).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Every file under `dir`, recursively, sorted by path; hidden files and folders skipped (a
/// repository's `.git` is not part of its data). Err: the folder that could not be read
/// and why, as one phrase ("PATH: permission denied") for the caller's message.
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {}", dir.display(), describe(dir, &e)))?;
        let hidden = |p: &Path| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| !hidden(p)).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                walk(&p, out)?;
            } else if p.is_file() {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    Ok(out)
}

/// A file's bytes, gunzipped when they start with gzip's magic (corpora, label files and
/// Neuronpedia's dumps come either way). A damaged gzip stream reads as InvalidData
/// ("damaged gzip data: ..."), the kind a file that is not UTF-8 gives, so callers say
/// the file is damaged rather than unreadable.
pub fn open_maybe_gzip(path: &Path) -> std::io::Result<Box<dyn std::io::BufRead>> {
    use std::io::BufRead;
    let mut f = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(path)?);
    let gz = f.fill_buf().map(|b| b.starts_with(&[0x1f, 0x8b])).unwrap_or(false);
    Ok(if gz { Box::new(std::io::BufReader::with_capacity(1 << 16, Damaged(flate2::bufread::MultiGzDecoder::new(f)))) } else { Box::new(f) })
}

/// A gzip stream whose read errors say the data is damaged.
struct Damaged<R>(R);

impl<R: std::io::Read> std::io::Read for Damaged<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("damaged gzip data: {e}")))
    }
}
