//! Feature cards: the data-only parts on hand-built sets, and `saescope feature` end to end
//! on the tiny weights.

use crate::common;

/// The one SAE of these sets: 4 features at layer 8's residual.
fn k8() -> saescope::sae::key::SaeKey {
    saescope::sae::key::SaeKey::new(saescope::model::hooks::HookPoint::new(8, saescope::model::hooks::Site::ResidPre), 4)
}

use common::{saescope, tiny_args};
use saescope::activations::{ActivationSet, Keep, SparseVec};
use saescope::interp::card::{histogram, Card};
use saescope::neuronpedia::labels::Labels;

fn set(keep: Keep, budget: usize) -> ActivationSet {
    let mut s = ActivationSet::new(vec![k8()], false, vec!["A".into(), "B".into()], keep).with_whole_budget(budget);
    for (c, text, v) in [(0, "a one", [6.0, 1.0, 0.0, 0.0]), (0, "a two", [8.0, 0.0, 2.0, 0.0]), (1, "b one", [0.0, 3.0, 7.0, 1.0])] {
        s.push(c, text.into(), 3, vec![SparseVec::from_dense(&v)]);
    }
    s.neuronpedia = saescope::sae::neuronpedia_id::Ids::from_pairs([(k8(), "gpt2-small/8-res-jb")]);
    s
}

#[test]
fn histogram_bins_cover_zero_to_max() {
    let h = histogram(&[0.0, 0.5, 1.0, 2.0, 4.0], 4);
    assert_eq!(h.edges, vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(h.counts, vec![3, 1, 0, 1], "bins are (lo, hi]; 0 lands in the first");
    let z = histogram(&[0.0, 0.0], 4);
    assert_eq!((z.edges, z.counts), (vec![0.0], vec![2]));
}

#[test]
fn card_lists_every_text_and_the_top_texts() {
    let c = Card::from_set(&set(Keep::ALL, usize::MAX), &Labels::default(), k8(), 1).expect("card");
    assert_eq!(c.neuronpedia_url.as_deref(), Some("https://www.neuronpedia.org/gpt2-small/8-res-jb/1"));
    assert_eq!(c.texts.iter().map(|t| t.activation).collect::<Vec<_>>(), vec![1.0, 0.0, 3.0]);
    assert!(c.texts.iter().all(|t| t.exact));
    assert_eq!(c.top_texts.iter().map(|t| (t.content.as_str(), t.activation)).collect::<Vec<_>>(), vec![("b one", 3.0), ("a one", 1.0)]);
    assert_eq!(c.histogram.counts.iter().sum::<u32>(), 3);
    assert!(
        Card::from_set(&set(Keep::ALL, usize::MAX), &Labels::default(), saescope::sae::key::SaeKey { width: 4, ..common::key(6) }, 1).is_err(),
        "SAE not loaded"
    );
    assert!(Card::from_set(&set(Keep::ALL, usize::MAX), &Labels::default(), k8(), 4).is_err(), "feature past d_sae");
}

#[test]
fn pruned_values_are_marked_as_bounds_not_shown_as_exact() {
    let s = set(Keep { top: 1, above: 5.0 }, 0);
    let c = Card::from_set(&s, &Labels::default(), k8(), 1).expect("card");
    // Text "a one" kept only feature 0 (6.0, its top and above the 5.0 threshold): its
    // feature 1 is known only to lie below the floor, 5.0.
    assert_eq!((c.texts[0].activation, c.texts[0].exact), (5.0, false));
    assert!(c.top_texts.iter().all(|t| t.content != "a one"));
}

#[test]
fn feature_command_prints_the_whole_card_as_json() {
    let labels = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/labels_sample.jsonl");
    let out = tiny_args(&mut saescope())
        .args(["feature", "--layer", "8", "--id", "17", "--format", "json", "--layers", "6,10"])
        .arg("--labels")
        .arg(&labels)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("labels: 4 labels for 3 features; 1 rows for layers not loaded (3) set aside") || err.contains("labels: 5 labels"), "{err}");
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    // Synthetic SAEs have no Neuronpedia page: no link rather than a wrong one.
    assert!(c["neuronpedia_url"].is_null(), "{}", c["neuronpedia_url"]);
    assert_eq!(c["label"], "closing brackets in code | end of a Python call");
    assert_eq!(c["texts"].as_array().map(Vec::len), Some(70));
    let counts: u64 = c["histogram"]["counts"].as_array().expect("counts").iter().map(|v| v.as_u64().unwrap_or(0)).sum();
    assert_eq!(counts, 70);
    let top = c["top_texts"].as_array().expect("top");
    assert!(!top.is_empty());
    assert!(top.windows(2).all(|w| w[0]["activation"].as_f64() >= w[1]["activation"].as_f64()));
    assert!(top.iter().all(|t| t["top_token"]["token"].is_string()));
    assert_eq!(c["logits"]["promoted"].as_array().map(Vec::len), Some(10));
    assert_eq!(c["logits"]["suppressed"].as_array().map(Vec::len), Some(10));
    let layers: Vec<u64> = c["neighbours"].as_array().expect("n").iter().map(|n| n["sae"]["layer"].as_u64().unwrap_or(0)).collect();
    assert_eq!(layers, vec![6, 10], "the card's layer 8 was added between --layers 6,10");

    let text = tiny_args(&mut saescope()).args(["feature", "--layer", "8", "--id", "17", "--layers", "6,10"]).output().expect("run");
    let s = String::from_utf8_lossy(&text.stdout);
    assert!(s.starts_with("SAE 8 res 512 (blocks.8.hook_resid_pre) feature 17  (no Neuronpedia page known for this SAE)\n"), "{s}");
    assert!(s.contains("logit lens, promoted:") && s.contains("nearest in SAE 10 res 512 (decoder cosine):"), "{s}");

    let bad = tiny_args(&mut saescope()).args(["feature", "--layer", "8", "--id", "99999"]).output().expect("run");
    let e = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && e.contains("feature 99999 does not exist"), "{e}");
}

/// The id SAELens writes into cfg.json wins, whatever the folder or release is called.
#[test]
fn neuronpedia_id_comes_from_the_sae_cfg() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = common::tiny().join("saes/blocks.8.hook_resid_pre");
    let dst = dir.path().join("blocks.8.hook_resid_pre");
    std::fs::create_dir(&dst).expect("mkdir");
    std::os::unix::fs::symlink(src.join("sae_weights.safetensors"), dst.join("sae_weights.safetensors")).expect("link");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(src.join("cfg.json")).expect("cfg")).expect("json");
    cfg["neuronpedia_id"] = "gpt2-small/8-res_fs768-jb".into();
    std::fs::write(dst.join("cfg.json"), cfg.to_string()).expect("write");
    let out = saescope()
        .args(["feature", "--layer", "8", "--id", "17", "--layers", "8", "--format", "json", "--model-dir"])
        .arg(common::tiny().join("model"))
        .arg("--sae-dir")
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(c["neuronpedia_url"], "https://www.neuronpedia.org/gpt2-small/8-res_fs768-jb/17");
}
