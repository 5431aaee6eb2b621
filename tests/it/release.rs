//! SAEs named as SAELens names them, fetched from a stand-in hub on loopback that serves
//! synthetic weights in each release's real repo layout (`saescope synth --sae-release`):
//! OpenAI's v5 resid_post SAEs (TopK, folders named like `.pt` files), feature splitting
//! (three widths at one hook), the kk attention SAEs on `hook_z` (`.pt` state dicts), and a
//! mixed run of resid_pre, attn_out and mlp_out SAEs at layer 8 from three releases, which
//! must equal TransformerLens + SAELens (tests/fixtures/mixed_tiny.json, from
//! scripts/gen-fixtures).

use crate::common;

use common::hub::Hub;
use common::releases::{hub, FS, FS_IDS, KK, MIXED, V5};
use common::{close, fixture};
use std::path::Path;
use std::process::Command;

/// saescope against the stand-in hub, with its own empty cache.
fn via(hub: &Hub, hf: &Path) -> Command {
    let mut c = common::via_hub(hub, hf);
    c.args(["--model", "org/tiny", "--no-cache"]);
    c
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn labels(v: &serde_json::Value) -> Vec<String> {
    v["saes"].as_array().expect("saes").iter().map(|s| s["label"].as_str().expect("label").to_string()).collect()
}

#[test]
fn a_mixed_run_of_three_releases_equals_transformer_lens_and_saelens() {
    let (hub, hf) = (hub(), tempfile::tempdir().expect("tmp"));
    let samples = fixture("reference_samples.toml");
    let out =
        via(&hub, hf.path()).args(["report", "--format", "json", "--sae-release", MIXED, "--layers", "8", "--samples"]).arg(&samples).output().expect("run");
    let ours = json(&out);
    assert_eq!(labels(&ours), ["8 res 512", "8 att 4k", "8 mlp 4k"], "ordered by position in the block");
    let fetched = hub.log().join("\n");
    for path in ["blocks.8.hook_resid_pre/cfg.json", "v5_32k_layer_8/sae_weights.safetensors", "sae_group_gpt2_blocks.8.hook_mlp_out_24576:v1/cfg.json"] {
        assert!(fetched.contains(path), "{path} fetched from its repo\n{fetched}");
    }
    let theirs: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("mixed_tiny.json")).expect("fixture")).expect("json");
    for (c, (o, r)) in ours["categories"].as_array().expect("c").iter().zip(theirs["categories"].as_array().expect("c")).enumerate() {
        for (i, (ol, rl)) in o["layers"].as_array().expect("l").iter().zip(rl_of(r)).enumerate() {
            let what = format!("category {c} SAE {i}");
            for k in ["peak", "gini", "top_sum", "top_share"] {
                let (a, b) = (ol[k].as_f64().expect("num"), rl[k].as_f64().expect("num"));
                assert!(close(a, b, 1e-4), "{what}: {k} {a} vs {b}");
            }
            let ids = |l: &serde_json::Value| l["top"].as_array().expect("top").iter().map(|t| t["feature"].as_u64().expect("f")).collect::<Vec<_>>();
            assert_eq!(ids(ol), ids(rl), "{what}: top features");
            assert_eq!(ol["spec"], rl["spec"], "{what}: specialist score");
        }
    }
    let mut compared = 0;
    for (o, r) in ours["texts"].as_array().expect("t").iter().zip(theirs["texts"].as_array().expect("t")) {
        assert_eq!(o["text"], r["text"]);
        for (ol, rl) in o["layers"].as_array().expect("l").iter().zip(rl_of(r)) {
            // Features above float noise (TopK's ties at zero trade places below it).
            let theirs: Vec<(u64, f64)> = rl["top"]
                .as_array()
                .expect("top")
                .iter()
                .map(|t| (t["feature"].as_u64().expect("f"), t["activation"].as_f64().expect("a")))
                .filter(|x| x.1 > 1e-3)
                .collect();
            for (f, want) in theirs {
                let got =
                    ol["top"].as_array().expect("top").iter().find(|t| t["feature"].as_u64() == Some(f)).and_then(|t| t["activation"].as_f64()).unwrap_or(0.0);
                assert!(close(got, want, 1e-3), "{:?} SAE {}: feature {f} {got} vs {want}", o["text"], ol["sae"]);
                compared += 1;
            }
        }
    }
    assert!(compared > 1000, "{compared} features compared");
}

fn rl_of(r: &serde_json::Value) -> &Vec<serde_json::Value> {
    r["layers"].as_array().expect("layers")
}

#[test]
fn v5_feature_splitting_and_hook_z_releases_load_by_name() {
    let (hub, hf) = (hub(), tempfile::tempdir().expect("tmp"));
    let run = |args: &[&str]| via(&hub, hf.path()).args(args).output().expect("run");

    // OpenAI's v5 resid_post SAEs by release name and layers.
    let v = json(&run(&["report", "--format", "json", "--sae-release", V5, "--layers", "6,8,10,11"]));
    assert_eq!(labels(&v), ["6 post 4k", "8 post 4k", "10 post 4k", "11 post 4k"]);
    assert!(v["categories"][0]["layers"].as_array().expect("l").iter().all(|l| l["peak"].as_f64().is_some_and(|p| p > 0.0)), "every SAE fires");
    let csv = run(&["report", "--format", "csv", "--sae-release", V5, "--layers", "6,8,10,11"]);
    assert!(String::from_utf8_lossy(&csv.stdout).contains("https://www.neuronpedia.org/gpt2-small/8-res_post_32k-oai/"), "Neuronpedia ids from the registry");
    let listed = String::from_utf8_lossy(&run(&["saes", V5]).stdout).into_owned();
    let row = listed.lines().find(|l| l.starts_with("blocks.8.hook_resid_post ")).expect("row").to_string();
    assert!(row.ends_with("yes"), "downloaded, so cached: {row}");

    // Feature splitting: three widths at one hook, each a tab, and a feature's children.
    let v = json(&run(&["report", "--format", "json", "--sae-release", FS, "--sae", FS_IDS]));
    assert_eq!(labels(&v), ["8 res 768", "8 res 1.5k", "8 res 3k"]);
    let top = v["categories"][0]["layers"][0]["top"][0]["feature"].as_u64().expect("top").to_string();
    let card = run(&["feature", "--layer", "8 res 768", "--id", &top, "--sae-release", FS, "--sae", FS_IDS]);
    let text = String::from_utf8_lossy(&card.stdout);
    assert!(card.status.success(), "{}", String::from_utf8_lossy(&card.stderr));
    assert!(
        text.contains("nearest in SAE 8 res 1.5k (decoder cosine, wider: its children)")
            && text.contains("nearest in SAE 8 res 3k (decoder cosine, wider: its children)"),
        "{text}"
    );

    // The kk attention SAEs on hook_z: .pt state dicts read without running their pickle.
    let v = json(&run(&["report", "--format", "json", "--sae-release", KK, "--layers", "5,8"]));
    assert_eq!(labels(&v), ["5 z 4k", "8 z 4k"]);
    assert_eq!(v["saes"][0]["hook"], "blocks.5.attn.hook_z");
    let top = v["categories"][0]["layers"][0]["top"][0]["feature"].as_u64().expect("top").to_string();
    let card = run(&["feature", "--layer", "5", "--id", &top, "--sae-release", KK, "--layers", "5,8", "--format", "json"]);
    let c = json(&card);
    assert!(c["logits"]["promoted"].as_array().is_some_and(|p| p.len() == 10), "logit lens through W_O");
    assert_eq!(c["neighbours"][0]["sae"]["label"], "8 z 4k", "neighbours among SAEs of the same space");
    // Steering edits z before W_O (tests/steer_hooks.rs holds it to TransformerLens).
    let steer = json(&run(&[
        "steer",
        "--prompt",
        "hi",
        "--tokens",
        "2",
        "--sae-release",
        KK,
        "--layers",
        "5",
        "--feature",
        &format!("5 z:{top}:=50"),
        "--format",
        "json",
    ]));
    assert_eq!(steer["features"][0]["sae"], "5 z");
    assert!(steer["steps"][0]["kl"].as_f64().is_some_and(|kl| kl > 0.0), "{steer}");
}
