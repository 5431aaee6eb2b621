//! The result cache as a user meets it: a second run reads everything back, a changed text
//! recomputes only itself, damage is ignored and rebuilt, an unwritable folder only warns,
//! and changed weights are never served stale numbers.

use crate::common;

use common::{saescope, tiny_args};
use std::path::Path;
use std::process::Output;

fn samples(dir: &Path, last: &str) -> std::path::PathBuf {
    let p = dir.join("s.toml");
    let body = format!(
        "[[category]]\nname = \"A\"\ntexts = [\"def f(x): return x\", \"import os\"]\n[[category]]\nname = \"B\"\ntexts = [\"hello there\", {last:?}]\n"
    );
    std::fs::write(&p, body).expect("write samples");
    p
}

fn report(cache: &Path, samples: &Path, extra: &[&str]) -> (String, String) {
    let out: Output = tiny_args(&mut saescope())
        .args(["report", "--format", "json", "--layers", "2,5"])
        .arg("--samples")
        .arg(samples)
        .arg("--cache-dir")
        .arg(cache)
        .args(extra)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), err)
}

/// Equal JSON up to float rounding: a text computed alone and in a padded batch differ in
/// the last bits.
fn same(a: &str, b: &str) -> bool {
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).expect("json");
    common::json_close(&parse(a), &parse(b), 1e-4)
}

/// The files of texts' vectors (`.bin`) in the cache folder, and whether anything else
/// but the JSON report's `.quality` files lies there (temporary files left behind).
fn cache_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir).map(|r| r.map(|e| e.expect("entry").path()).collect()).unwrap_or_default();
    v.retain(|p| p.extension().is_none_or(|x| x != "quality"));
    v.sort();
    v
}

#[test]
fn second_run_is_read_back_and_changed_text_alone_recomputes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cache = tmp.path().join("cache");
    let s = samples(tmp.path(), "good morning");
    let (fresh, err) = report(&cache, &s, &[]);
    assert!(err.contains("encoding texts: 4/4"), "{err}");
    assert_eq!(cache_files(&cache).len(), 1, "one cache file, no temporary ones");

    let (again, err) = report(&cache, &s, &[]);
    assert!(fresh == again, "cached numbers are the computed ones, to the bit");
    assert!(err.contains("texts from the cache: 4/4") && !err.contains("loading model"), "{err}");

    let s = samples(tmp.path(), "good evening");
    let (changed, err) = report(&cache, &s, &[]);
    assert!(err.contains("3 texts from the cache; computing 1") && err.contains("encoding texts: 1/1"), "{err}");
    let (uncached, _) = report(&cache, &s, &["--no-cache"]);
    assert!(same(&changed, &uncached));
    assert_eq!(cache_files(&cache).len(), 1);
}

#[test]
fn damaged_cache_is_ignored_and_rebuilt() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cache = tmp.path().join("cache");
    let s = samples(tmp.path(), "good morning");
    let (fresh, _) = report(&cache, &s, &[]);
    let file = cache_files(&cache).remove(0);
    let mut bytes = std::fs::read(&file).expect("read cache");
    let n = bytes.len();
    // Flip one byte of the last entry's payload: its checksum must catch it.
    bytes[n - 3] ^= 0x55;
    std::fs::write(&file, &bytes).expect("damage");
    let (after, err) = report(&cache, &s, &[]);
    assert!(same(&fresh, &after));
    assert!(err.contains("is damaged after 3 entries (checksum mismatch); recomputing the rest"), "{err}");
    let (_, err) = report(&cache, &s, &[]);
    assert!(err.contains("texts from the cache: 4/4"), "rebuilt: {err}");

    std::fs::write(&file, &bytes[..n / 2]).expect("truncate");
    let (after, err) = report(&cache, &s, &[]);
    assert!(same(&fresh, &after));
    assert!(err.contains("is damaged"), "{err}");

    std::fs::write(&file, b"not a cache").expect("garbage");
    let (after, err) = report(&cache, &s, &[]);
    assert!(same(&fresh, &after));
    assert!(err.contains("bad header"), "{err}");
}

#[test]
fn unwritable_cache_folder_warns_and_still_reports() {
    let tmp = tempfile::tempdir().expect("tmp");
    let blocker = tmp.path().join("a-file");
    std::fs::write(&blocker, "x").expect("write");
    let s = samples(tmp.path(), "good morning");
    let (out, err) = report(&blocker.join("cache"), &s, &[]);
    assert!(out.contains("\"categories\""));
    assert!(err.contains("warning: cannot write the result cache in") && err.contains("--no-cache"), "{err}");
    assert_eq!(std::fs::read_to_string(&blocker).expect("read"), "x", "the user's file is untouched");
}

#[test]
fn changed_weights_are_never_served_from_the_cache() {
    let tmp = tempfile::tempdir().expect("tmp");
    let copy = tmp.path().join("w");
    let ok = std::process::Command::new("cp").arg("-r").arg(common::tiny()).arg(&copy).status().expect("cp");
    assert!(ok.success());
    let cache = tmp.path().join("cache");
    let s = samples(tmp.path(), "good morning");
    let run = || {
        let out = saescope()
            .args(["report", "--format", "json", "--layers", "2"])
            .arg("--model-dir")
            .arg(copy.join("model"))
            .arg("--sae-dir")
            .arg(copy.join("saes"))
            .arg("--samples")
            .arg(&s)
            .arg("--cache-dir")
            .arg(&cache)
            .output()
            .expect("run");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    run();
    assert!(run().contains("texts from the cache: 4/4"));
    let sae = copy.join("saes/blocks.2.hook_resid_pre/sae_weights.safetensors");
    let f = std::fs::File::options().write(true).open(&sae).expect("open");
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5)).expect("touch");
    let err = run();
    assert!(err.contains("encoding texts: 4/4"), "a newer SAE file recomputes: {err}");
}
