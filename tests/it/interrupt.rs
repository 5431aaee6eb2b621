//! SIGINT in the middle of computing: the run stops between batches, says so, exits 130,
//! and leaves neither a partial output nor a partial cache file.

use crate::common;

use common::{saescope, tiny_args};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[test]
fn sigint_mid_compute_leaves_no_partial_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    let samples = tmp.path().join("big.toml");
    assert!(saescope().args(["synth-samples", "--texts", "4000", "--out"]).arg(&samples).status().expect("gen").success());
    let (out_dir, cache) = (tmp.path().join("out"), tmp.path().join("cache"));
    std::fs::create_dir(&out_dir).expect("mkdir");
    let mut child = tiny_args(&mut saescope())
        .args(["report", "--format", "json", "--batch-tokens", "32", "--layers", "11"])
        .arg("--samples")
        .arg(&samples)
        .arg("--cache-dir")
        .arg(&cache)
        .arg("-o")
        .arg(out_dir.join("report.json"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        let started = line.starts_with("encoding texts:");
        seen.push(line);
        if started {
            break;
        }
    }
    assert!(seen.last().is_some_and(|l| l.starts_with("encoding texts:")), "{seen:?}");
    common::signal(child.id(), libc::SIGINT);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(rest.iter().any(|l| l == "error: interrupted; nothing was written"), "{rest:?}");
    assert_eq!(std::fs::read_dir(&out_dir).expect("out").count(), 0, "no report, no temp file");
    let left: Vec<_> = std::fs::read_dir(&cache).map(|r| r.map(|e| e.expect("e").path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "no partial cache file: {left:?}");
}
