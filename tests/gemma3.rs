//! Gemma 3 text models against HF transformers' Gemma3ForCausalLM (fixture
//! tests/fixtures/gemma3_tiny/ from scripts/reference_gemma3.py): a tiny model of the hub's
//! layout with sliding-window and global layers, grouped-query attention and a head size
//! other than hidden/heads; every hidden state and the logits over a sequence that crosses
//! the sliding window agree within 1e-4 relative (f32 on both sides; the sums run in
//! another order, so not bit for bit).

mod common;

use saescope::gemma3::{Gemma3, Gemma3Config};
use saescope::tensors::SafeFile;
use tch::{Device, Kind};

fn rows(v: &serde_json::Value) -> Vec<Vec<f64>> {
    serde_json::from_value(v.clone()).expect("rows")
}

#[test]
fn the_forward_equals_transformers() {
    let dir = common::fixture("gemma3_tiny");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).expect("fixture")).expect("json");
    let cfg = Gemma3Config::from_file(&dir.join("config.json")).expect("config");
    assert_eq!(cfg.sliding, vec![true, true, true, true, true, false, true]);
    assert_eq!((cfg.rope_local, cfg.rope_global, cfg.sliding_window), (10_000.0, 1_000_000.0, 4));
    let model = Gemma3::load(cfg, SafeFile::open(&dir.join("model.safetensors")).expect("weights"), Device::Cpu, Kind::Float).expect("model");
    let tokens: Vec<u32> = r["tokens"].as_array().expect("tokens").iter().map(|t| t.as_u64().expect("id") as u32).collect();
    let out = model.forward(&tokens).expect("forward");
    let want = r["hidden_states"].as_array().expect("hidden");
    assert_eq!(out.hidden_states.len(), want.len());
    let compare = |got: &tch::Tensor, want: &serde_json::Value, what: &str| {
        let got: Vec<Vec<f32>> = Vec::try_from(got.to_kind(Kind::Float)).expect("rows");
        let want = rows(want);
        assert_eq!((got.len(), got[0].len()), (want.len(), want[0].len()), "{what}: shape");
        let scale = want.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
        let worst = got.iter().flatten().zip(want.iter().flatten()).map(|(a, b)| (f64::from(*a) - b).abs()).fold(0.0, f64::max);
        assert!(worst <= 1e-4 * scale.max(1.0), "{what}: off by {worst:e} (values up to {scale})");
    };
    for (i, (g, w)) in out.hidden_states.iter().zip(want).enumerate() {
        compare(g, w, &format!("hidden state {i}"));
    }
    compare(&out.logits, &r["logits"], "logits");
    // The hook points SAEs read, as TransformerLens names them (Gemma Scope 2: resid_post,
    // attn.hook_z for its attention SAEs, hook_mlp_out).
    let hooks = r["hooks"].as_object().expect("hooks");
    assert_eq!(hooks.len(), 7 * 3);
    for (name, want) in hooks {
        let point = saescope::hooks::HookPoint::parse(name).expect("hook name");
        compare(&out.at(point).unwrap_or_else(|| panic!("{name}")), want, name);
    }
    for l in 0..6 {
        let post = out.at(saescope::hooks::HookPoint::parse(&format!("blocks.{l}.hook_resid_post")).expect("name")).expect("post");
        compare(&post, &want[l + 1], &format!("resid_post {l} is hidden state {}", l + 1));
    }
}

#[test]
fn configs_it_cannot_run_are_refused_with_the_reason() {
    let base: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(common::fixture("gemma3_tiny/config.json")).expect("cfg")).expect("json");
    let with = |k: &str, v: serde_json::Value| {
        let mut c = base.clone();
        c[k] = v;
        Gemma3Config::from_json(&c).err().map(|e| e.to_string()).unwrap_or_default()
    };
    assert!(with("model_type", "gemma3".into()).contains("multimodal"));
    assert!(with("hidden_activation", "relu".into()).contains("not supported"));
    let mut old = base.clone();
    // The older hub keys: a pattern and two bases instead of layer_types and rope_parameters.
    old.as_object_mut().expect("object").remove("layer_types");
    old.as_object_mut().expect("object").remove("rope_parameters");
    old["rope_theta"] = 1_000_000.0.into();
    old["rope_local_base_freq"] = 10_000.0.into();
    let cfg = Gemma3Config::from_json(&old).expect("old keys");
    assert_eq!(cfg.sliding, vec![true, true, true, true, true, false, true]);
    assert_eq!((cfg.rope_local, cfg.rope_global), (10_000.0, 1_000_000.0));
}
