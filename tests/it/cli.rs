//! The binary as scripts use it.

use crate::common;

use common::{saescope, tiny, tiny_args};
use std::process::Command;

#[test]
fn unreachable_hub_fails_fast_with_advice() {
    let home = tempfile::tempdir().expect("tmp");
    // Loopback port 9 (discard) is closed here: a refused connection, never outside traffic.
    // A refusal is not a stall: the run gives up on it rather than waiting out the stall
    // timeout, set here past the test harness's patience.
    let out = saescope()
        .args(["report", "--download-timeout", "3600"])
        .env("HF_HOME", home.path())
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env_remove("HF_HUB_OFFLINE")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("openai-community/gpt2") && err.contains("--model-dir") && err.contains("127.0.0.1:9"), "{err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "{err}");
}

#[test]
fn hf_hub_offline_is_honoured_without_network() {
    // A hub that would answer: the run must fail for want of a cache, having asked it nothing.
    let hub = common::hub::Hub::start();
    hub.repo("openai-community/gpt2", &tiny().join("model"), &[]);
    let home = tempfile::tempdir().expect("tmp");
    let out = saescope().args(["report"]).env("HF_HOME", home.path()).env("HF_ENDPOINT", &hub.endpoint).env("HF_HUB_OFFLINE", "1").output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("HF_HUB_OFFLINE is set") && err.contains("not in the cache"), "{err}");
    assert_eq!(hub.log(), Vec::<String>::new(), "HF_HUB_OFFLINE=1 must not touch the network");
}

/// An HF cache under `home` (`hub/models--org--name/{refs/main, snapshots/REV/...}`) holding
/// each (repo, folder) pair's files, as Python's huggingface_hub lays it out.
fn hub_cache(home: &std::path::Path, repos: &[(&str, std::path::PathBuf)]) {
    let rev = "a".repeat(40);
    for (repo, src) in repos {
        let dir = home.join("hub").join(format!("models--{}", repo.replace('/', "--")));
        std::fs::create_dir_all(dir.join("refs")).expect("mkdir");
        std::fs::write(dir.join("refs/main"), &rev).expect("ref");
        std::fs::create_dir_all(dir.join("snapshots")).expect("mkdir");
        assert!(Command::new("cp").arg("-r").arg(src).arg(dir.join("snapshots").join(&rev)).status().expect("cp").success());
    }
}

#[test]
fn cached_hub_files_are_used_offline() {
    // The standard HF cache layout: models--org--name/{refs/main, snapshots/<rev>/...}.
    let home = tempfile::tempdir().expect("tmp");
    hub_cache(home.path(), &[("org/tiny", tiny().join("model")), ("org/tiny-saes", tiny().join("saes"))]);
    let out = saescope()
        .args(["report", "--model", "org/tiny", "--sae-release", "org/tiny-saes", "--format", "csv"])
        .env("HF_HOME", home.path())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("category,layer,sae,hook,width,rank,feature,activation,specialist"));
}

/// SAELens's release names: `--sae-release gpt2-small-res-jb --sae ID,ID` runs from the hub
/// cache holding that release's repo (tiny weights in its layout), with Neuronpedia ids from
/// the registry; `saes` lists releases and a release's SAEs with what the cache holds;
/// names that do not exist, and releases this version cannot load by layer, are refused
/// with what to do.
#[test]
fn saelens_release_names_resolve_through_the_registry() {
    let home = tempfile::tempdir().expect("tmp");
    hub_cache(home.path(), &[("org/tiny", tiny().join("model")), ("jbloom/GPT2-Small-SAEs-Reformatted", tiny().join("saes"))]);
    let run = |args: &[&str]| saescope().args(args).env("HF_HOME", home.path()).env("HF_HUB_OFFLINE", "1").output().expect("run");
    let report = |format: &str| {
        run(&[
            "report",
            "--model",
            "org/tiny",
            "--sae-release",
            "gpt2-small-res-jb",
            "--sae",
            "blocks.6.hook_resid_pre,blocks.11.hook_resid_post",
            "--format",
            format,
        ])
    };
    let out = report("json");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let hooks: Vec<&str> = v["saes"].as_array().expect("saes").iter().filter_map(|s| s["hook"].as_str()).collect();
    assert_eq!(hooks, ["blocks.6.hook_resid_pre", "blocks.11.hook_resid_post"], "--sae ids name their hooks");
    assert_eq!(v["layers"], serde_json::json!([6, 11]), "each SAE's block");
    assert_eq!(v["sae_release"], "gpt2-small-res-jb");
    let out = report("csv");
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(
        csv.contains("https://www.neuronpedia.org/gpt2-small/6-res-jb/") && csv.contains("https://www.neuronpedia.org/gpt2-small/12-res-jb/"),
        "Neuronpedia links from the registry\n{csv}"
    );

    let out = run(&["saes", "gpt2-small-res-jb"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    let row = |id: &str| table.lines().find(|l| l.starts_with(&format!("{id} "))).unwrap_or_else(|| panic!("{id} missing\n{table}")).to_string();
    assert!(
        row("blocks.6.hook_resid_pre").ends_with("yes") && row("blocks.6.hook_resid_pre").contains(" 512 "),
        "cached, width from its cfg: {}",
        row("blocks.6.hook_resid_pre")
    );
    assert!(row("blocks.6.hook_resid_pre").contains("gpt2-small/6-res-jb"));
    let out = run(&["saes", "--of", "gpt2-small", "--format", "json"]);
    let releases: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<&str> = releases.as_array().expect("list").iter().filter_map(|r| r["release"].as_str()).collect();
    for want in ["gpt2-small-res-jb", "gpt2-small-res-jb-feature-splitting", "gpt2-small-resid-post-v5-32k", "gpt2-small-hook-z-kk", "gpt2-small-mlp-tm"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }

    for (args, says) in [
        (vec!["report", "--sae-release", "gpt2-small-res-jbb"], "no SAELens release named \"gpt2-small-res-jbb\""),
        (vec!["report", "--sae-release", "gpt2-small-res-jb-feature-splitting", "--layers", "6"], "has no SAE at layer 6 (its layers: 8)"),
        (vec!["report", "--sae-release", "gpt2-small-res-jb", "--sae", "blocks.99.hook_resid_pre"], "has no SAE \"blocks.99.hook_resid_pre\""),
        (vec!["report", "--sae-dir", "/nonexistent", "--sae", "layer8"], "--sae names a folder by its hook"),
    ] {
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{args:?}: {err}");
        assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "{err}");
    }
    // SAELens's own YAML, as it ships, in place of the bundled registry.
    let yaml = home.path().join("pretrained_saes.yaml");
    std::fs::write(&yaml, "my-release:\n  repo_id: jbloom/GPT2-Small-SAEs-Reformatted\n  model: gpt2-small\n  conversion_func: null\n  saes:\n  - id: blocks.8.hook_resid_pre\n    path: blocks.8.hook_resid_pre\n    l0: 12.5\n").expect("yaml");
    let out = run(&["saes", "my-release", "--sae-registry", yaml.to_str().expect("utf-8")]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("blocks.8.hook_resid_pre"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&[
        "report",
        "--model",
        "org/tiny",
        "--sae-release",
        "my-release",
        "--layers",
        "8",
        "--sae-registry",
        yaml.to_str().expect("utf-8"),
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn json_report_follows_the_schema() {
    let out = tiny_args(saescope().args(["report", "--format", "json", "--layers", "6,12"])).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let keys = |v: &serde_json::Value| v.as_object().expect("object").keys().cloned().collect::<Vec<_>>();
    let mut top = keys(&v);
    top.sort();
    assert_eq!(top, ["categories", "chat", "include_bos", "layers", "model", "quality", "sae_release", "saes", "texts", "threshold", "top_k"]);
    // Each SAE's reconstruction on the samples; CE and KL are `saescope eval`'s.
    let q = &v["quality"][1];
    assert_eq!((&q["sae"], &q["hook"]), (&serde_json::json!("11 post 512"), &serde_json::json!("blocks.11.hook_resid_post")));
    assert!(q["explained_variance"].is_f64() && q["l0"].as_f64().is_some_and(|l0| l0 > 0.0) && q["ce_loss_score"].is_null(), "{q}");
    assert_eq!(v["layers"], serde_json::json!([6, 11]), "each SAE's block: 12 is the final resid_post");
    assert_eq!(v["saes"][1], serde_json::json!({"label": "11 post 512", "hook": "blocks.11.hook_resid_post", "layer": 11, "width": 512}));
    let c = &v["categories"][0];
    assert_eq!(c["n_texts"], 10);
    let mut l = keys(&c["layers"][0]);
    l.sort();
    assert_eq!(l, ["gini", "hook", "layer", "peak", "sae", "spec", "top", "top_share", "top_sum", "width"]);
    let mut t = keys(&c["layers"][0]["top"][0]);
    t.sort();
    assert_eq!(t, ["activation", "feature", "specialist"]);
    let text = &v["texts"][0];
    let mut tk = keys(text);
    tk.sort();
    assert_eq!(tk, ["category", "layers", "n_tokens", "text"]);
    assert!(text["layers"][0]["top"].as_array().expect("top").len() <= 32);
    assert!(text["layers"][0]["total"].is_f64());
}

/// The quality figures are kept in the result cache beside the texts' vectors: a second
/// JSON report reads them back (a planted value shows through) and a damaged file is
/// measured again.
#[test]
fn json_report_reads_its_quality_back_from_the_result_cache() {
    let cache = tempfile::tempdir().expect("tmp");
    let report = || {
        let out = tiny_args(saescope().args(["report", "--format", "json", "--layers", "6", "--cache-dir"]).arg(cache.path())).output().expect("run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")["quality"].clone()
    };
    let first = report();
    let kept: Vec<_> = std::fs::read_dir(cache.path())
        .expect("cache")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "quality"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    // A CRC-32 of the rest, then postcard.
    let bytes = std::fs::read(&kept[0]).expect("read");
    let mut q: Vec<saescope::analysis::eval::Quality> = postcard::from_bytes(&bytes[4..]).expect("postcard");
    assert_eq!(q.len(), 1);
    assert!((q[0].l0 - first[0]["l0"].as_f64().expect("l0")).abs() < 1e-9 && q[0].sae == first[0]["sae"], "{q:?}");
    q[0].l0 = 12345.0;
    let payload = postcard::to_allocvec(&q).expect("postcard");
    let planted = [crc32fast::hash(&payload).to_le_bytes().as_slice(), &payload].concat();
    std::fs::write(&kept[0], &planted).expect("write");
    assert_eq!(report()[0]["l0"], 12345.0, "read back from the cache");
    // One flipped byte in a number: the checksum catches it, and the figures are measured again.
    let mut damaged = planted.clone();
    let at = damaged.len() - 9;
    damaged[at] ^= 0x55;
    std::fs::write(&kept[0], &damaged).expect("write");
    // Measured again: the same figures up to summation order (the thread count follows the
    // machine's free cores).
    let again = report();
    assert!(again[0]["l0"] != 12345.0 && common::json_close(&again, &first, 1e-6), "{again}");
    std::fs::write(&kept[0], b"xy").expect("write");
    assert!(common::json_close(&report(), &first, 1e-6), "measured again");
}

#[test]
fn table_and_unwritable_output() {
    let out = tiny_args(saescope().args(["report"])).output().expect("run");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("Conversational (10)") && table.contains("peak") && table.contains("spec"), "{table}");
    let out = tiny_args(saescope().args(["report", "-o", "/proc/no-such-dir/report.csv"])).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("cannot write /proc/no-such-dir/report.csv"), "{err}");
}

#[test]
fn synth_is_deterministic_for_a_seed() {
    let (a, b) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    for d in [&a, &b] {
        assert!(saescope().args(["synth", "--size", "tiny", "--seed", "7", "--out"]).arg(d.path()).output().expect("run").status.success());
    }
    for f in ["model/model.safetensors", "saes/blocks.6.hook_resid_pre/sae_weights.safetensors"] {
        assert_eq!(std::fs::read(a.path().join(f)).expect("a"), std::fs::read(b.path().join(f)).expect("b"), "{f}");
    }
}
