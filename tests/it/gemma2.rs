//! Gemma 2 against HF transformers' Gemma2ForCausalLM (fixture tests/fixtures/gemma2_tiny/
//! from scripts/reference_gemma2.py): a tiny model of the hub's layout alternating
//! sliding-window and global layers, with soft-caps small enough to bend the scores and the
//! logits; every hidden state, hook point and the logits, at once, padded and through the KV
//! cache, agree within 1e-4 of the values' scale.

use crate::common;
use common::families::{self, compare};

use saescope::model::config::ModelConfig;
use saescope::model::gemma::{Gemma, GemmaConfig, Generation};
use saescope::model::{Family, HookEdit, KvCache};
use saescope::weights::checkpoint::Checkpoint;
use tch::{Device, Kind, Tensor};

fn tiny() -> (Gemma, serde_json::Value) {
    let dir = common::fixture("gemma2_tiny");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).expect("fixture")).expect("json");
    let ModelConfig::Gemma(cfg) = ModelConfig::from_file(&dir.join("config.json")).expect("config") else { panic!("not read as Gemma") };
    assert_eq!(cfg.generation, Generation::Gemma2);
    assert_eq!(cfg.sliding, vec![true, false, true, false, true]);
    assert_eq!((cfg.attn_logit_softcapping, cfg.final_logit_softcapping), (Some(4.0), Some(3.0)));
    let n = cfg.num_hidden_layers;
    let model = Gemma::load(cfg, Checkpoint::open(&dir.join("model.safetensors")).expect("weights"), n, Device::Cpu, Kind::Float).expect("model");
    assert_eq!(model.name(), "Gemma 2");
    (model, r)
}

#[test]
fn every_hook_point_in_a_padded_batch_equals_transformers() {
    let (model, r) = tiny();
    families::every_hook_in_a_padded_batch(&model, &r, 9, 4, "Gemma 2");
}

#[test]
fn soft_capped_logits_at_once_and_through_the_kv_cache_equal_transformers() {
    let (model, r) = tiny();
    let toks = common::ids_of(&r["tokens"]);
    let mut none = HookEdit::observe(Vec::new(), |_, _| Ok(()));
    let whole = model.forward_cached(&toks, &mut KvCache::default(), &mut none).expect("forward");
    compare(&whole, &r["logits"], "logits");
    assert!(whole.abs().max().double_value(&[]) < 3.0, "the final cap holds the logits under 3");
    let mut cache = KvCache::default();
    let mut rows = vec![model.forward_cached(&toks[..3], &mut cache, &mut none).expect("prompt")];
    for &t in &toks[3..] {
        rows.push(model.forward_cached(&[t], &mut cache, &mut none).expect("step"));
    }
    compare(&Tensor::cat(&rows, 0), &r["logits"], "logits, a token at a time");
    // The caps are in play: without the one on the scores, the logits move.
    let dir = common::fixture("gemma2_tiny");
    let ModelConfig::Gemma(cfg) = ModelConfig::from_file(&dir.join("config.json")).expect("config") else { panic!("not Gemma") };
    let uncapped = GemmaConfig { attn_logit_softcapping: None, ..cfg };
    let n = uncapped.num_hidden_layers;
    let uncapped = Gemma::load(uncapped, Checkpoint::open(&dir.join("model.safetensors")).expect("weights"), n, Device::Cpu, Kind::Float).expect("model");
    let moved = uncapped.forward_cached(&toks, &mut KvCache::default(), &mut none).expect("forward");
    assert!((moved - &whole).abs().max().double_value(&[]) > 1e-2, "the score cap changes the logits");
}

/// The hub's Gemma 2 2B config.json as it ships (older keys: no layer_types, rope_theta,
/// caps given) and one without the caps, which take HF's defaults.
#[test]
fn the_hubs_gemma_2_config_reads_with_its_defaults() {
    let hub = serde_json::json!({"architectures": ["Gemma2ForCausalLM"], "attention_bias": false, "attn_logit_softcapping": 50.0,
        "bos_token_id": 2, "cache_implementation": "hybrid", "eos_token_id": 1, "final_logit_softcapping": 30.0, "head_dim": 256,
        "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 2304, "intermediate_size": 9216,
        "max_position_embeddings": 8192, "model_type": "gemma2", "num_attention_heads": 8, "num_hidden_layers": 26,
        "num_key_value_heads": 4, "pad_token_id": 0, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
        "sliding_window": 4096, "vocab_size": 256000});
    let c = GemmaConfig::from_json(&hub).expect("gemma 2 2b");
    assert_eq!((c.generation, c.rope_local, c.rope_global, c.sliding_window), (Generation::Gemma2, 10_000.0, 10_000.0, 4096));
    assert_eq!(c.sliding.iter().filter(|s| **s).count(), 13, "every other layer, from the first");
    assert!(c.sliding[0] && !c.sliding[1]);
    let mut bare = hub.clone();
    for k in ["attn_logit_softcapping", "final_logit_softcapping", "query_pre_attn_scalar"] {
        bare.as_object_mut().expect("object").remove(k);
    }
    let c = GemmaConfig::from_json(&bare).expect("defaults");
    assert_eq!((c.attn_logit_softcapping, c.final_logit_softcapping, c.query_pre_attn_scalar), (Some(50.0), Some(30.0), 256.0));
}

/// `synth --family gemma2` writes a Gemma 2 with the first Gemma Scope's `params.npz` SAEs
/// at the canonical release's folders; the command it prints opens them with no more flags
/// (the folder names its release, the one with Neuronpedia ids, and the four layers it
/// holds); and the same SAEs fetched by release name from a stand-in hub give the same
/// report, the hub model alone defaulting to that release at those layers.
#[test]
fn synthetic_gemma_2_with_gemma_scope_opens_from_its_folder_and_the_hub() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = common::saescope().args(["synth", "--family", "gemma2", "--out"]).arg(tmp.path()).output().expect("synth");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    let (model, saes) = (tmp.path().join("model"), tmp.path().join("saes"));
    let held: Vec<std::path::PathBuf> =
        std::fs::read_dir(saes.join("layer_13/width_16k")).expect("layer 13").map(|e| e.expect("entry").path().join("params.npz")).collect();
    assert!(held.len() == 1 && held[0].is_file(), "one params.npz in Gemma Scope's folder: {held:?}");
    let command = format!("saescope --model-dir {} --sae-dir {}", model.display(), saes.display());
    assert!(said.lines().any(|l| l.trim() == command), "synth prints `{command}`:\n{said}");
    let report = |c: &mut std::process::Command| -> serde_json::Value {
        let out = c.output().expect("report");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let local = report(common::saescope().args(["report", "--format", "json", "--no-cache", "--model-dir"]).arg(&model).arg("--sae-dir").arg(&saes));
    assert_eq!(local["sae_release"], "gemma-scope-2b-pt-res-canonical");
    let labels: Vec<&str> = local["saes"].as_array().expect("saes").iter().map(|s| s["label"].as_str().expect("label")).collect();
    assert_eq!(labels, ["6 post 512", "13 post 512", "16 post 512", "21 post 512"]);
    let layers = local["categories"][0]["layers"].as_array().expect("layers");
    assert!(layers.iter().all(|l| l["peak"].as_f64().is_some_and(|p| p > 0.5)), "the SAEs fire: {layers:?}");
    let hub = common::hub::Hub::start();
    hub.repo("google/gemma-2-2b", &model, &[]).repo("google/gemma-scope-2b-pt-res", &saes, &[]);
    let hf = tempfile::tempdir().expect("hf");
    let fetched = report(common::via_hub(&hub, hf.path()).args(["report", "--format", "json", "--no-cache", "--model", "google/gemma-2-2b"]));
    assert_eq!(fetched["sae_release"], "gemma-scope-2b-pt-res-canonical");
    assert_eq!(fetched["categories"], local["categories"], "the hub's copy gives the folder's report");
    assert!(hub.log().join("\n").contains("layer_21/width_16k/average_l0_"), "{}", hub.log().join("\n"));
}

/// Every hook point TransformerLens caches for the blocks, ln2.hook_normalized among them
/// (what Gemma Scope's transcoders read: x / rms(x), before the norm's `1 + w`), and the
/// soft-capped logits, as its HookedTransformer computes them from the same weights (tl.json,
/// scripts/reference_llama_tl.py).
#[test]
fn every_hook_point_equals_transformer_lens() {
    let (model, _) = tiny();
    let tl: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(common::fixture("gemma2_tiny").join("tl.json")).expect("tl.json")).expect("json");
    families::every_hook_against_tl(&model, &tl, 6, "Gemma 2");
}

/// `synth --family gemma2 --sae-release temporal-sae-gemma-2-2b` writes a temporal SAE as
/// canrager/temporalSAEs ships it (`gemma-2-2B/layer_12/temporal/`); the folder alone opens as
/// that release and its features fire; the report is the same whatever the texts are batched
/// with (right padding never reaches a text's own positions, whose codes read only the ones
/// before); through the stand-in hub by the model's and release's names it is the same
/// report; `eval` measures its reconstruction with the predicted codes, the same however
/// texts are batched; steering adds its direction and refuses a clamp.
#[test]
fn a_synthetic_temporal_sae_reports_as_its_release() {
    let tmp = tempfile::tempdir().expect("tmp");
    let release = "temporal-sae-gemma-2-2b";
    let out = common::saescope().args(["synth", "--family", "gemma2", "--sae-release", release, "--out"]).arg(tmp.path()).output().expect("synth");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let folder = tmp.path().join("saes/gemma-2-2B/layer_12/temporal");
    assert!(folder.join("conf.yaml").is_file() && folder.join("latest_ckpt.safetensors").is_file(), "{}", folder.display());
    let v = common::synth_report(tmp.path(), &[]);
    assert_eq!(v["sae_release"], release);
    let layers = v["categories"][0]["layers"].as_array().expect("layers");
    assert!(layers.len() == 1 && layers[0]["hook"] == "blocks.12.hook_resid_post", "{layers:?}");
    assert!(layers[0]["peak"].as_f64().is_some_and(|p| p > 0.0), "the SAE fires: {layers:?}");
    let alone = common::synth_report(tmp.path(), &["--batch-tokens", "1"]);
    let close = |a: &serde_json::Value, b: &serde_json::Value| {
        let (a, b) = (a.as_f64().expect("number"), b.as_f64().expect("number"));
        (a - b).abs() <= 1e-4 * a.abs().max(b.abs()).max(1e-3)
    };
    for (c1, c2) in v["categories"].as_array().expect("cats").iter().zip(alone["categories"].as_array().expect("cats")) {
        let (l1, l2) = (&c1["layers"][0], &c2["layers"][0]);
        assert!(close(&l1["peak"], &l2["peak"]) && close(&l1["top_sum"], &l2["top_sum"]), "batched {l1} vs one text a batch {l2}");
    }
    let (fetched, log) = common::report_via_hub(
        &[("google/gemma-2-2b", &tmp.path().join("model")), ("canrager/temporalSAEs", &tmp.path().join("saes"))],
        &["--model", "google/gemma-2-2b", "--sae-release", release],
    );
    assert_eq!(fetched["categories"], v["categories"], "the hub's copy gives the folder's report");
    assert!(log.contains("layer_12/temporal/latest_ckpt.safetensors"), "{log}");
    let eval = |extra: &[&str]| -> serde_json::Value {
        let out = common::saescope()
            .args(["eval", "--format", "json", "--model-dir"])
            .arg(tmp.path().join("model"))
            .arg("--sae-dir")
            .arg(tmp.path().join("saes"))
            .args(extra)
            .output()
            .expect("eval");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let (q, alone) = (eval(&[]), eval(&["--batch-tokens", "1"]));
    let (q, alone) = (&q["saes"][0], &alone["saes"][0]);
    assert_eq!(q["hook"], "blocks.12.hook_resid_post", "{q}");
    for key in ["l0", "explained_variance", "mse", "cossim", "ce_loss_with_sae", "kl_div_with_sae"] {
        assert!(q[key].as_f64().is_some_and(f64::is_finite), "{key}: {q}");
        assert!(close(&q[key], &alone[key]), "{key}: batched {} vs one text a batch {}", q[key], alone[key]);
    }
    // Fitted on these activations: it rebuilds them (0.70 when written), at most k = 16
    // novel codes a token, and the model's predictions with it spliced in stay nearer the
    // clean ones than with the residual zeroed (the random model's cross entropy says
    // nothing: zeroing lowers it).
    assert!(q["explained_variance"].as_f64().is_some_and(|ev| ev > 0.5) && q["l0"].as_f64().is_some_and(|l0| l0 > 0.0 && l0 <= 16.0), "{q}");
    assert!(q["kl_div_with_sae"].as_f64() < q["kl_div_with_ablation"].as_f64(), "{q}");
    // Adding its direction steers; a clamp, which would see a token at a time, is refused.
    let steer = |feature: &str| {
        common::saescope()
            .args(["steer", "--prompt", "def f(x):", "--tokens", "3", "--feature", feature, "--model-dir"])
            .arg(tmp.path().join("model"))
            .arg("--sae-dir")
            .arg(tmp.path().join("saes"))
            .output()
            .expect("steer")
    };
    let added = steer("12:89:4");
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let clamped = steer("12:89:=4");
    let said = String::from_utf8_lossy(&clamped.stderr);
    assert!(!clamped.status.success() && said.contains("temporal SAE") && said.contains("without ="), "{said}");
}
