//! Every hook point an SAE can read, against TransformerLens's `run_with_cache` (fixture
//! tests/fixtures/hooks_tiny.json from scripts/reference_hooks.py): resid_pre, attn.hook_z
//! (heads concatenated), attn_out, resid_mid, ln2.hook_normalized, mlp_out and resid_post,
//! at the first, a middle and the last block, under TransformerLens's default processing
//! and with none, on the tiny synthetic GPT-2 and on a GPT-2 of another shape (3 layers, 3
//! heads of 16, tests/fixtures/gpt2_other/). 1e-5 absolute, as the issue asks of f32.

use crate::common;

use saescope::model::gpt2::Gpt2;
use saescope::model::gpt2::Gpt2Config;
use saescope::model::hooks::{HookPoint, Processing};
use saescope::weights::checkpoint::Checkpoint;
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn load(dir: &Path) -> Gpt2 {
    let cfg = Gpt2Config::from_file(&dir.join("config.json")).expect("config");
    let n = cfg.n_layer;
    Gpt2::load(cfg, Checkpoint::open(&dir.join("model.safetensors")).expect("weights"), n, Device::Cpu, Kind::Float).expect("model")
}

#[test]
fn every_hook_point_equals_transformer_lens() {
    let fx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(common::fixture("hooks_tiny.json")).expect("fixture")).expect("json");
    let sites: Vec<&str> = fx["sites"].as_array().expect("sites").iter().map(|s| s.as_str().expect("site")).collect();
    assert_eq!(sites.len(), 7);
    let mut compared = 0;
    for (key, dir) in [("tiny", common::tiny().join("model")), ("other", common::fixture("gpt2_other"))] {
        let model = load(&dir);
        let case = &fx[key];
        let tokens: Vec<i64> = case["tokens"].as_array().expect("tokens").iter().map(|t| t.as_i64().expect("id")).collect();
        let t = tokens.len() as i64;
        let ids = Tensor::from_slice(&tokens).view([1, t]);
        let mask = Tensor::ones([1, t], (Kind::Bool, Device::Cpu));
        let points: Vec<HookPoint> = case["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .flat_map(|l| sites.iter().map(move |s| HookPoint::parse(&format!("blocks.{}.{s}", l.as_u64().expect("layer"))).expect("hook name")))
            .collect();
        for (name, processing) in [("default", Processing::DEFAULT), ("none", Processing::NONE)] {
            let got = model.hooks(&ids, &mask, &points, processing).expect("hooks");
            for (point, value) in points.iter().zip(&got) {
                let want: Vec<Vec<f64>> = serde_json::from_value(case[name][point.to_string()].clone()).expect("values");
                let value: Vec<Vec<f64>> =
                    Vec::<Vec<f32>>::try_from(value.squeeze_dim(0)).expect("rows").into_iter().map(|r| r.into_iter().map(f64::from).collect()).collect();
                assert_eq!((value.len(), value[0].len()), (want.len(), want[0].len()), "{key} {name} {point}: shape");
                let worst = value.iter().flatten().zip(want.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
                assert!(worst <= 1e-5, "{key} {name} {point}: off by {worst:e}");
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 2 * 2 * 3 * 7);
}

/// One pass computes several hooks exactly as separate passes do, and stops where the
/// last one needs: hooks of block 2 run with only three blocks loaded.
#[test]
fn hooks_in_one_pass_equal_each_alone_and_need_only_their_blocks() {
    let dir = common::fixture("gpt2_other");
    let cfg = Gpt2Config::from_file(&dir.join("config.json")).expect("config");
    let model = Gpt2::load(cfg, Checkpoint::open(&dir.join("model.safetensors")).expect("weights"), 2, Device::Cpu, Kind::Float).expect("model");
    let ids = Tensor::from_slice(&[511i64, 5, 9, 200]).view([1, 4]);
    let mask = Tensor::ones([1, 4], (Kind::Bool, Device::Cpu));
    let names = ["blocks.1.hook_mlp_out", "blocks.0.attn.hook_z", "blocks.2.hook_resid_pre", "blocks.1.hook_resid_post"];
    let points: Vec<HookPoint> = names.iter().map(|n| HookPoint::parse(n).expect("name")).collect();
    let together = model.hooks(&ids, &mask, &points, Processing::DEFAULT).expect("together");
    for (p, t) in points.iter().zip(&together) {
        let alone = model.hooks(&ids, &mask, &[*p], Processing::DEFAULT).expect("alone");
        assert!(alone[0].equal(t), "{p}");
    }
    assert!(together[2].equal(&together[3]), "resid_pre 2 is resid_post 1");
    let err = model.hooks(&ids, &mask, &[HookPoint::parse("blocks.2.hook_mlp_out").expect("name")], Processing::DEFAULT).expect_err("block 2 not loaded");
    assert!(err.to_string().contains("needs 3 blocks but only 2 are loaded"), "{err}");
}

/// An SAE reads the residual under the processing it was trained with: one whose cfg says
/// `model_from_pretrained_kwargs: {center_writing_weights: false}` (as SAELens writes it)
/// gets the uncentred stream, the others the centred one, in the same run and forward.
#[test]
fn each_sae_reads_the_residual_under_its_own_processing() {
    let fx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(common::fixture("hooks_tiny.json")).expect("fixture")).expect("json");
    let tokens: Vec<u32> = fx["tiny"]["tokens"].as_array().expect("tokens").iter().map(|t| t.as_u64().expect("id") as u32).collect();
    // Layer 6 trained on the uncentred stream, layer 11 as TransformerLens's default.
    let dir = tempfile::tempdir().expect("tmp");
    for layer in [6, 11] {
        let name = format!("blocks.{layer}.hook_resid_pre");
        let (from, to) = (common::tiny().join("saes").join(&name), dir.path().join(&name));
        std::fs::create_dir_all(&to).expect("mkdir");
        std::fs::copy(from.join("sae_weights.safetensors"), to.join("sae_weights.safetensors")).expect("copy");
        let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(from.join("cfg.json")).expect("cfg")).expect("json");
        if layer == 6 {
            cfg["metadata"]["model_from_pretrained_kwargs"] = serde_json::json!({"center_writing_weights": false});
        }
        std::fs::write(to.join("cfg.json"), cfg.to_string()).expect("write");
    }
    let engine = common::engine_with(dir.path(), &[6, 11]);
    assert!(!engine.saes[0].1.cfg.processing.center_writing_weights && engine.saes[1].1.cfg.processing.center_writing_weights);
    let packed = saescope::pipeline::pack([tokens.as_slice()].into_iter(), true, 50256);
    let got = engine.inputs(&packed).expect("residuals");
    for (value, (processing, name)) in got.iter().zip([("none", "blocks.6.hook_resid_pre"), ("default", "blocks.11.hook_resid_pre")]) {
        let want: Vec<Vec<f64>> = serde_json::from_value(fx["tiny"][processing][name].clone()).expect("values");
        let value: Vec<Vec<f32>> = Vec::try_from(value.squeeze_dim(0)).expect("rows");
        let worst = value.iter().flatten().zip(want.iter().flatten()).map(|(a, b)| (f64::from(*a) - b).abs()).fold(0.0, f64::max);
        assert!(worst <= 1e-5, "{name} as TransformerLens {processing}: off by {worst:e}");
    }
}
