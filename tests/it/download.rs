//! Downloads against a stand-in hub on loopback (tests/common/hub.rs): a clean download
//! then an offline re-run, stalls, server errors, resets, lying sizes and hashes, a missing
//! optional file, and a signal mid-download. Nothing leaves 127.0.0.1.

use crate::common;

use common::hub::{Fault, Hub, COMMIT};
use common::{saescope, tiny, tiny_args};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const MODEL: &str = "openai-community/gpt2";
const SAES: &str = "jbloom/GPT2-Small-SAEs-Reformatted";

/// A hub serving the tiny weights under the default repo names, without tokenizer.json
/// (so its 404 is exercised on every run).
fn hub() -> Hub {
    let h = Hub::start();
    h.repo(MODEL, &tiny().join("model"), &["tokenizer.json"]).repo(SAES, &tiny().join("saes"), &[]);
    h
}

/// `report` through the hub into the cache `hf`, with short timeouts so faults end fast.
fn report(hub: &Hub, hf: &Path, extra: &[&str]) -> Command {
    let mut c = common::via_hub(hub, hf);
    c.args(["report", "--format", "csv", "--layers", "6", "--no-cache", "--download-retries", "2"]).args(extra).env("SAESCOPE_DOWNLOAD_TIMEOUT", "1");
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The same report from the tiny weights' folders: what a download must reproduce. The
/// last column differs: the hub's release name has known Neuronpedia ids, a folder none.
fn expected() -> String {
    let out = tiny_args(&mut saescope()).args(["report", "--format", "csv", "--layers", "6", "--no-cache"]).output().expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    numbers(&out.stdout)
}

/// The CSV without its neuronpedia column.
fn numbers(csv: &[u8]) -> String {
    text(csv).lines().map(|l| l.rsplit_once(',').map_or(l, |(a, _)| a).to_string() + "\n").collect()
}

fn repo_dir(hf: &Path, repo: &str) -> PathBuf {
    hf.join(format!("models--{}", repo.replace('/', "--")))
}

fn blobs(hf: &Path, repo: &str) -> Vec<String> {
    let dir = repo_dir(hf, repo).join("blobs");
    let mut v: Vec<String> =
        std::fs::read_dir(dir).map(|r| r.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    v.sort();
    v
}

fn sha_of(path: &Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).expect("read")).iter().map(|b| format!("{b:02x}")).collect()
}

fn ok(out: &Output) {
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
}

#[test]
fn clean_download_then_offline_rerun_gives_the_same_numbers() {
    let (hub, hf) = (hub(), tempfile::tempdir().expect("tmp"));
    let out = report(&hub, hf.path(), &[]).output().expect("run");
    ok(&out);
    assert_eq!(numbers(&out.stdout), expected());
    // The layout Python's huggingface_hub reads: refs/main, blobs by etag, relative links.
    let model = repo_dir(hf.path(), MODEL);
    assert_eq!(std::fs::read_to_string(model.join("refs/main")).expect("ref"), COMMIT);
    let snap = model.join("snapshots").join(COMMIT).join("model.safetensors");
    let link = std::fs::read_link(&snap).expect("a link");
    let sha = sha_of(&tiny().join("model/model.safetensors"));
    assert_eq!(link, PathBuf::from(format!("../../blobs/{sha}")));
    let cfg = repo_dir(hf.path(), SAES).join("snapshots").join(COMMIT).join("blocks.6.hook_resid_pre/cfg.json");
    assert_eq!(std::fs::read_link(&cfg).expect("link").components().filter(|c| c.as_os_str() == "..").count(), 3);
    assert!(!blobs(hf.path(), MODEL).iter().any(|b| b.ends_with(".incomplete")));
    assert!(text(&out.stdout).contains(",https://www.neuronpedia.org/gpt2-small/6-res-jb/"), "the release's ids are known");
    // tokenizer.json is not on this hub: its 404 is not an error, the bundled one is used.
    assert!(hub.log().iter().any(|l| l.starts_with(&format!("GET /{MODEL}/resolve/main/tokenizer.json"))), "{:?}", hub.log());
    assert!(!model.join("snapshots").join(COMMIT).join("tokenizer.json").exists());
    // Progress names the file in bytes.
    assert!(text(&out.stderr).contains("downloading model.safetensors"), "{}", text(&out.stderr));

    let offline = report(&hub, hf.path(), &[]).env("HF_HUB_OFFLINE", "1").env("HF_ENDPOINT", "http://127.0.0.1:9").output().expect("run");
    ok(&offline);
    assert_eq!(numbers(&offline.stdout), expected());
}

#[test]
fn a_stall_ends_with_advice_and_a_later_run_resumes() {
    let (hub, hf) = (hub(), tempfile::tempdir().expect("tmp"));
    let at = 3_000_000u64;
    hub.fault("model.safetensors", Fault { stall_at: Some(at), ..Default::default() });
    let t = Instant::now();
    let out = report(&hub, hf.path(), &[]).output().expect("run");
    let took = t.elapsed();
    assert!(!out.status.success());
    // Three tries of 1 s each and two pauses of 1 s, plus start-up: well under 15 s.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let err = text(&out.stderr);
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or_default().to_string();
    println!("what a user sees:\n{err}");
    assert!(line.contains("model.safetensors") && line.contains(&hub.endpoint) && line.contains("no data for 1 s"), "{err}");
    assert!(line.contains(&format!("{at} of 15540040 bytes received")) && line.contains("rerun to resume"), "{line}");
    let sha = sha_of(&tiny().join("model/model.safetensors"));
    let part = repo_dir(hf.path(), MODEL).join("blobs").join(format!("{sha}.incomplete"));
    assert_eq!(std::fs::metadata(&part).expect("partial kept").len(), at);
    assert!(!repo_dir(hf.path(), MODEL).join("snapshots").join(COMMIT).join("model.safetensors").exists(), "no partial file in snapshots");

    hub.clear_faults();
    let again = report(&hub, hf.path(), &[]).output().expect("run");
    ok(&again);
    assert_eq!(numbers(&again.stdout), expected());
    let log = hub.log();
    assert!(log.iter().any(|l| l.starts_with(&format!("GET /cdn/{sha}")) && l.ends_with(&format!(" {at}-"))), "resumed with a Range: {log:?}");
}

#[test]
fn server_errors_and_resets_are_retried_and_resumed() {
    let (hub, hf) = (hub(), tempfile::tempdir().expect("tmp"));
    hub.fault("config.json", Fault { errors_first: 1, ..Default::default() });
    hub.fault("model.safetensors", Fault { reset_at: Some(5_000_000), ..Default::default() });
    let out = report(&hub, hf.path(), &[]).output().expect("run");
    ok(&out);
    assert_eq!(numbers(&out.stdout), expected());
    let log = hub.log();
    let sha = sha_of(&tiny().join("model/model.safetensors"));
    assert!(log.iter().any(|l| l.starts_with(&format!("GET /cdn/{sha}")) && l.ends_with(" 5000000-")), "{log:?}");
    assert_eq!(log.iter().filter(|l| l.starts_with(&format!("GET /{MODEL}/resolve/main/config.json"))).count(), 3, "500, then metadata and body: {log:?}");
}

#[test]
fn a_wrong_size_or_hash_is_refused_and_deleted() {
    for (fault, says) in [
        (Fault { wrong_size: true, ..Default::default() }, "more than the 15540039 bytes it announced"),
        (Fault { wrong_hash: true, ..Default::default() }, "sha256"),
    ] {
        let (hub, hf) = (hub(), tempfile::tempdir().expect("tmp"));
        hub.fault("model.safetensors", fault);
        let out = report(&hub, hf.path(), &[]).output().expect("run");
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(err.contains(says) && err.contains("deleted"), "{err}");
        assert!(blobs(hf.path(), MODEL).iter().all(|b| b.len() == 40), "only the config's blob is left: {:?}", blobs(hf.path(), MODEL));
    }
}

#[test]
fn a_missing_repo_file_is_named_and_not_retried() {
    let (hub, hf) = (hub(), tempfile::tempdir().expect("tmp"));
    let out = report(&hub, hf.path(), &["--sae-release", "org/none"]).output().expect("run");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("org/none/blocks.6.hook_resid_pre/cfg.json: not found") && err.contains("404"), "{err}");
    assert_eq!(hub.log().iter().filter(|l| l.contains("org/none")).count(), 1, "a 404 is not retried");
}

#[test]
fn sigterm_during_a_stalled_download_exits_143_without_waiting_for_the_stall() {
    let (hub, hf) = (hub(), tempfile::tempdir().expect("tmp"));
    hub.fault("model.safetensors", Fault { stall_at: Some(1_000_000), ..Default::default() });
    let child = report(&hub, hf.path(), &[]).args(["--download-timeout", "60"]).stderr(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawn");
    // Wait until the transfer has started and stalled.
    let sha = sha_of(&tiny().join("model/model.safetensors"));
    let part = repo_dir(hf.path(), MODEL).join("blobs").join(format!("{sha}.incomplete"));
    let t0 = Instant::now();
    while std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) < 1_000_000 {
        assert!(t0.elapsed() < Duration::from_secs(20), "the download never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    common::signal(child.id(), libc::SIGTERM);
    let t = Instant::now();
    let out = child.wait_with_output().expect("wait");
    // Behaviour, not speed: the signal ends the wait at once instead of after the 60 s stall.
    assert!(t.elapsed() < Duration::from_secs(30), "waited {:?}, as for the stall timeout", t.elapsed());
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("interrupted") && err.contains("kept"), "{err}");
    assert_eq!(std::fs::metadata(&part).expect("kept").len(), 1_000_000);
    assert!(out.stdout.is_empty(), "no half-written output");
}
