//! Gemma 3 text models against HF transformers' Gemma3ForCausalLM (fixture
//! tests/fixtures/gemma3_tiny/ from scripts/reference_gemma3.py) and against
//! TransformerLens's HookedTransformer on the same weights (tl.json, from
//! scripts/reference_gemma3_tl.py): HF is what the hub's checkpoints are made for, and TL
//! is what the hook names and SAEs (Gemma Scope 2 through SAELens) are defined in, so
//! saescope must agree with both. A tiny model of the hub's layout with sliding-window and
//! global layers, grouped-query attention and a head size other than hidden/heads; every
//! hidden state, hook point and the logits over a sequence that crosses the sliding window
//! agree within 1e-4 relative (f32 on all sides; the sums run in another order, so not bit
//! for bit).

use crate::common;
use common::families::{self, compare};

use saescope::model::config::ModelConfig;
use saescope::model::gemma::{Gemma, GemmaConfig};
use saescope::model::{Family, HookEdit, KvCache};
use saescope::weights::checkpoint::Checkpoint;
use tch::{Device, Kind, Tensor};

fn tiny() -> (Gemma, serde_json::Value) {
    let dir = common::fixture("gemma3_tiny");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).expect("fixture")).expect("json");
    let cfg = GemmaConfig::from_file(&dir.join("config.json")).expect("config");
    assert_eq!(cfg.sliding, vec![true, true, true, true, true, false, true]);
    assert_eq!((cfg.rope_local, cfg.rope_global, cfg.sliding_window), (10_000.0, 1_000_000.0, 4));
    let n = cfg.num_hidden_layers;
    let model = Gemma::load(cfg, Checkpoint::open(&dir.join("model.safetensors")).expect("weights"), n, Device::Cpu, Kind::Float).expect("model");
    (model, r)
}

/// Every hook point, in one batch of the reference sequence and a shorter one padded to its
/// length: each layer's input (HF's hidden states), and per layer TransformerLens's
/// attn.hook_z, hook_attn_out and hook_mlp_out (Gemma Scope 2 reads resid_post, z and
/// mlp_out). The shorter row, past the sliding window too, equals the reference's prefix.
#[test]
fn every_hook_point_in_a_padded_batch_equals_transformers() {
    let (model, r) = tiny();
    families::every_hook_in_a_padded_batch(&model, &r, 9, 3, "Gemma 3");
}

/// Every hook point TransformerLens caches for the blocks (resid_pre, attn.hook_z,
/// hook_attn_out, hook_mlp_out, resid_post), and the logits, as its HookedTransformer
/// computes them from the same weights (its own Gemma 3 270M config with the tiny sizes,
/// weights unprocessed), so the hook names mean in saescope what they mean in TL.
#[test]
fn every_hook_point_equals_transformer_lens() {
    let (model, _) = tiny();
    let tl: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(common::fixture("gemma3_tiny").join("tl.json")).expect("tl.json")).expect("json");
    families::every_hook_against_tl(&model, &tl, 5, "Gemma 3");
}

/// Logits over the whole sequence at once, and a token at a time through the KV cache
/// (the sequence crosses the window of 4, so sliding layers must drop old keys).
#[test]
fn logits_at_once_and_through_the_kv_cache_equal_transformers() {
    let (model, r) = tiny();
    let toks = common::ids_of(&r["tokens"]);
    let mut none = HookEdit::observe(Vec::new(), |_, _| Ok(()));
    let whole = model.forward_cached(&toks, &mut KvCache::default(), &mut none).expect("forward");
    compare(&whole, &r["logits"], "logits");
    let mut cache = KvCache::default();
    let mut rows = vec![model.forward_cached(&toks[..3], &mut cache, &mut none).expect("prompt")];
    for &t in &toks[3..] {
        rows.push(model.forward_cached(&[t], &mut cache, &mut none).expect("step"));
    }
    assert_eq!(cache.len(), toks.len());
    compare(&Tensor::cat(&rows, 0), &r["logits"], "logits, a token at a time");
    let short = model.forward_cached(&toks[..6], &mut KvCache::default(), &mut none).expect("prefix");
    compare(&short, &r["logits"], "a prefix's logits");
}

#[test]
fn configs_it_cannot_run_are_refused_with_the_reason() {
    let base: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(common::fixture("gemma3_tiny/config.json")).expect("cfg")).expect("json");
    let with = |k: &str, v: serde_json::Value| {
        let mut c = base.clone();
        c[k] = v;
        GemmaConfig::from_json(&c).err().map(|e| e.to_string()).unwrap_or_default()
    };
    assert!(with("model_type", "gemma3".into()).contains("text_config"), "a multimodal config reads its text_config");
    assert!(with("hidden_activation", "relu".into()).contains("not supported"));
    let mut old = base.clone();
    // The older hub keys: a pattern and two bases instead of layer_types and rope_parameters.
    old.as_object_mut().expect("object").remove("layer_types");
    old.as_object_mut().expect("object").remove("rope_parameters");
    old["rope_theta"] = 1_000_000.0.into();
    old["rope_local_base_freq"] = 10_000.0.into();
    let cfg = GemmaConfig::from_json(&old).expect("old keys");
    assert_eq!(cfg.sliding, vec![true, true, true, true, true, false, true]);
    assert_eq!((cfg.rope_local, cfg.rope_global), (10_000.0, 1_000_000.0));
}

/// The layout of Gemma 3 4B, 12B and 27B (Gemma3ForConditionalGeneration: the language model
/// under `model.language_model.` beside a vision tower, config.json `model_type: gemma3` with
/// a sparse `text_config`, the global layers' RoPE scaled linearly by 8), on a tiny model
/// (fixture tests/fixtures/gemma3_mm_tiny/ from scripts/reference_gemma3_mm.py): its text
/// equals HF's forward at every hook and in the logits, and the vision tower is never read.
#[test]
fn a_multimodal_checkpoint_with_scaled_global_rope_equals_transformers() {
    let dir = common::fixture("gemma3_mm_tiny");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).expect("fixture")).expect("json");
    let config = ModelConfig::from_file(&dir.join("config.json")).expect("config");
    assert_eq!(config.tensor_use("model.vision_tower.vision_model.post_layernorm.weight"), saescope::model::config::TensorUse::Never);
    assert_eq!(config.tensor_use("model.language_model.layers.3.mlp.up_proj.weight"), saescope::model::config::TensorUse::Block(3));
    let ModelConfig::Gemma(cfg) = config else { panic!("read as Gemma") };
    assert_eq!(cfg.rope_global_scaling, saescope::model::rope::RopeScaling::Linear { factor: 8.0 });
    assert_eq!((cfg.vocab_size, cfg.rms_norm_eps), (300, 1e-6), "the text_config's own size, a default where it says none");
    let n = cfg.num_hidden_layers;
    let model = Gemma::load(cfg, Checkpoint::open(&dir.join("model.safetensors")).expect("weights"), n, Device::Cpu, Kind::Float).expect("model");
    families::every_hook_in_a_padded_batch(&model, &r, 9, 3, "Gemma 3 (multimodal layout)");
    families::logits_three_ways(&model, &r, "gemma3_mm_tiny");
}

/// Gemma Scope 2's every-layer suites (`-res-all` and the like, folders `resid_post_all/`)
/// are in the bundled registry with their hooks; synth writes one at chosen layers and the
/// command it prints (release and layers) opens exactly those.
#[test]
fn an_every_layer_suite_opens_at_the_layers_synth_wrote() {
    let tmp = tempfile::tempdir().expect("tmp");
    let release = "gemma-scope-2-270m-pt-res-all";
    let out =
        common::saescope().args(["synth", "--family", "gemma3", "--sae-release", release, "--layers", "3,7", "--out"]).arg(tmp.path()).output().expect("synth");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains(&format!("--sae-release {release} --layers 3,7")), "{said}");
    assert!(tmp.path().join("saes/resid_post_all/layer_7_width_16k_l0_big/params.safetensors").is_file(), "{said}");
    let v = common::synth_report(tmp.path(), &["--sae-release", release, "--layers", "3,7"]);
    let layers = v["categories"][0]["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2, "{layers:?}");
    assert!(layers.iter().all(|l| l["peak"].as_f64().is_some_and(|p| p > 0.5)), "{layers:?}");
}
