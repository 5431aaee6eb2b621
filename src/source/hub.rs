//! Weights from the Hugging Face hub, kept in the standard cache so Python's
//! huggingface_hub and saescope share downloads.
//!
//! Files already cached are used without touching the network, HF_HUB_OFFLINE forbids
//! it, and otherwise a bounded reachability check runs before any download so an offline
//! machine gets an answer in seconds instead of a hang. The transfer itself is
//! `download.rs`'s: timeouts, retries, resume and verification.

use super::download::{download, NotOnHub, Task};
use super::{ModelFiles, SaeFiles};
use crate::runtime::progress::ProgressSink;
use crate::weights::checkpoint::WEIGHT_FILES;
use color_eyre::eyre::{bail, eyre, Result};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Name resolution and connect each get this long; together they stay under the
/// 10-second promise for an unreachable hub.
const REACH_TIMEOUT: Duration = Duration::from_secs(4);

/// The cache folder Python's huggingface_hub uses: HF_HUB_CACHE, else HF_HOME/hub,
/// else ~/.cache/huggingface/hub.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
        return dir.into();
    }
    if let Some(home) = std::env::var_os("HF_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join("hub");
    }
    directories::BaseDirs::new().map(|b| b.home_dir().join(".cache")).unwrap_or_else(|| PathBuf::from(".cache")).join("huggingface").join("hub")
}

fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")).unwrap_or(false)
}

fn endpoint() -> String {
    let e = std::env::var("HF_ENDPOINT").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
    e.trim_end_matches('/').to_string()
}

const LOCAL_HINT: &str = "point saescope at local folders with --model-dir DIR and --sae-dir DIR \
    (`saescope synth --out DIR` writes synthetic ones), or run once with network to fill the cache";

/// One repo in the cache: `models--org--name` with `refs/main` naming the snapshot.
pub struct RepoCache {
    pub dir: PathBuf,
}

impl RepoCache {
    pub fn new(cache: &Path, repo: &str) -> Self {
        Self { dir: cache.join(format!("models--{}", repo.replace('/', "--"))) }
    }

    /// The snapshot file of `main`, if complete (a link to a missing blob is not).
    pub fn get(&self, file: &str) -> Option<PathBuf> {
        let commit = std::fs::read_to_string(self.dir.join("refs").join("main")).ok()?;
        let path = self.dir.join("snapshots").join(commit.trim()).join(file);
        path.is_file().then_some(path)
    }
}

/// Paths of `files` inside `repo`, downloading what the cache lacks.
pub(crate) fn fetch(repo: &str, files: &[String], progress: &ProgressSink) -> Result<Vec<PathBuf>> {
    let dir = cache_dir();
    let cached = RepoCache::new(&dir, repo);
    let missing: Vec<&String> = files.iter().filter(|f| cached.get(f).is_none()).collect();
    if !missing.is_empty() {
        if offline() {
            bail!("HF_HUB_OFFLINE is set and {repo}/{} is not in the cache {}; unset it, or {LOCAL_HINT}", missing[0], dir.display());
        }
        let endpoint = endpoint();
        check_reachable(&endpoint)
            .map_err(|why| eyre!("cannot download {repo}/{} from {endpoint} ({why}); looked in the cache {} first; {LOCAL_HINT}", missing[0], dir.display()))?;
        for f in &missing {
            let task = Task { endpoint: endpoint.clone(), repo: repo.to_string(), file: f.to_string(), cache: dir.clone(), repo_dir: cached.dir.clone() };
            download(task, progress)?;
        }
    }
    files.iter().map(|f| cached.get(f).ok_or_else(|| eyre!("{repo}/{f} is still missing from the cache {} after download", dir.display()))).collect()
}

/// Resolve and connect to the endpoint's host (or the proxy's) within a bounded time.
fn check_reachable(endpoint: &str) -> std::result::Result<(), String> {
    let proxy = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"].iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
    let target = proxy.as_deref().unwrap_or(endpoint);
    let without_scheme = target.split("://").last().unwrap_or(target);
    let authority = without_scheme.split('/').next().unwrap_or(without_scheme);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let default_port = if target.starts_with("http://") { 80 } else { 443 };
    let host_port = if authority.contains(':') { authority.to_string() } else { format!("{authority}:{default_port}") };

    // Name resolution cannot be given a timeout directly, so it runs on a thread we stop waiting for.
    let (tx, rx) = mpsc::channel();
    let hp = host_port.clone();
    std::thread::spawn(move || {
        let _ = tx.send(hp.to_socket_addrs().map(|a| a.collect::<Vec<_>>()));
    });
    let addrs = match rx.recv_timeout(REACH_TIMEOUT) {
        Ok(Ok(addrs)) if !addrs.is_empty() => addrs,
        Ok(Ok(_)) => return Err(format!("{host_port} resolves to no address")),
        Ok(Err(e)) => return Err(format!("cannot resolve {host_port}: {e}")),
        Err(_) => return Err(format!("resolving {host_port} timed out")),
    };
    let mut last = String::new();
    for addr in addrs.iter().take(2) {
        match TcpStream::connect_timeout(addr, REACH_TIMEOUT / 2) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("cannot connect to {host_port}: {e}"),
        }
    }
    Err(last)
}

pub fn model_files(repo: &str, progress: &ProgressSink) -> Result<ModelFiles> {
    let config = one(repo, "config.json", progress)?;
    let weights = checkpoint(repo, progress)?;
    // tokenizer.json is optional: the bundled GPT-2 tokenizer covers its absence, so a
    // failed attempt to fetch it must not fail the run.
    let tokenizer = fetch(repo, &["tokenizer.json".to_string()], progress).ok().and_then(|v| v.into_iter().next());
    Ok(ModelFiles { config, weights, tokenizer })
}

fn one(repo: &str, file: &str, progress: &ProgressSink) -> Result<PathBuf> {
    fetch(repo, &[file.to_string()], progress)?.pop().ok_or_else(|| eyre!("internal: hub returned no file for {repo}/{file}"))
}

/// The checkpoint's entry file: `model.safetensors`, or, where the repo has none (404), the
/// sharded checkpoint's index with every shard it names fetched beside it, as
/// transformers' loader falls back.
fn checkpoint(repo: &str, progress: &ProgressSink) -> Result<PathBuf> {
    let [single, index] = WEIGHT_FILES;
    let cached = RepoCache::new(&cache_dir(), repo);
    if cached.get(single).is_none() && cached.get(index).is_some() {
        return sharded(repo, progress);
    }
    match one(repo, single, progress) {
        Err(e) if e.downcast_ref::<NotOnHub>().is_some() => sharded(repo, progress).map_err(|e2| e2.wrap_err(format!("{repo} has no {single} ({e})"))),
        other => other,
    }
}

fn sharded(repo: &str, progress: &ProgressSink) -> Result<PathBuf> {
    let index = one(repo, WEIGHT_FILES[1], progress)?;
    let shards = crate::weights::checkpoint::shard_files(&index)?;
    fetch(repo, &shards, progress)?;
    Ok(index)
}

/// `names`: the cfg and weights in the repo (`super::sae_names`).
pub fn sae_files(repo: &str, names: &[String; 2], progress: &ProgressSink) -> Result<SaeFiles> {
    let mut paths = fetch(repo, names, progress)?.into_iter();
    match (paths.next(), paths.next()) {
        (Some(cfg), Some(weights)) => Ok(SaeFiles { cfg, weights }),
        _ => bail!("internal: hub returned too few files for {repo}/{}", names[1]),
    }
}
