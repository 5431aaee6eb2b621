//! Scale: a generated 5,000-text corpus, all 13 hook points at once, and the memory check
//! that refuses a load the machine cannot hold.

mod common;

use common::{saescope, tiny_args};

#[test]
fn five_thousand_generated_texts_run_with_progress() {
    let tmp = tempfile::tempdir().expect("tmp");
    let samples = tmp.path().join("big.toml");
    let ok = saescope().args(["synth-samples", "--texts", "5000", "--out"]).arg(&samples).status().expect("gen");
    assert!(ok.success());
    let parsed = saescope::samples::Samples::load(&samples).expect("generated file parses");
    assert_eq!(parsed.n_texts(), 5000);
    assert_eq!(parsed.categories.len(), 7);
    let again = tmp.path().join("again.toml");
    saescope().args(["synth-samples", "--texts", "5000", "--out"]).arg(&again).status().expect("gen");
    assert_eq!(std::fs::read(&samples).ok(), std::fs::read(&again).ok(), "same seed, same file");

    let out =
        tiny_args(&mut saescope()).args(["report", "--format", "json", "--no-cache", "--layers", "3,6"]).arg("--samples").arg(&samples).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("encoding texts: 5000/5000 (100%)") && err.contains("ETA"), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["texts"].as_array().map(Vec::len), Some(5000));
    let per_cat: u64 = r["categories"].as_array().expect("cats").iter().map(|c| c["n_texts"].as_u64().unwrap_or(0)).sum();
    assert_eq!(per_cat, 5000);
}

#[test]
fn all_thirteen_hooks_load_at_once() {
    let out = tiny_args(&mut saescope()).args(["report", "--format", "json", "--no-cache", "--layers", "0,1,2,3,4,5,6,7,8,9,10,11,12"]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["layers"].as_array().map(Vec::len), Some(13));
}

#[test]
fn too_little_memory_is_refused_with_the_amount_needed() {
    let out =
        tiny_args(&mut saescope()).args(["report", "--no-cache", "--layers", "0,1,2,3,4,5,6,7,8,9,10,11,12", "--max-memory", "0.01"]).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("13 SAEs (0 res 512 to 11 post 512) need about")
            && err.contains("GiB (weights")
            && err.contains("0.01 GiB is available")
            && err.contains("fewer --layers"),
        "{err}"
    );
    assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "{err}");
}
