//! Llama 3 and Qwen 3 against HF transformers' LlamaForCausalLM and Qwen3ForCausalLM
//! (fixtures tests/fixtures/llama_tiny/ and qwen3_tiny/ from scripts/reference_llama.py):
//! tiny models in the hub's layout, Llama's with Llama 3's RoPE scaling past its original
//! context, grouped-query attention and an untied lm_head, Qwen's with per-head q/k norms,
//! a head size other than hidden/heads and tied embeddings. Every hidden state, hook point
//! and the logits agree within 1e-4 of the values' scale (f32 on both sides; the sums run in
//! another order, so not bit for bit); and with TransformerLens's HookedTransformer on the
//! same weights (tl.json, scripts/reference_llama_tl.py), whose hook names saescope uses.

use crate::common;
use common::families;

use saescope::model::config::ModelConfig;
use saescope::model::hooks::{HookPoint, Site};
use saescope::model::llama::{Llama, LlamaConfig};
use saescope::weights::checkpoint::Checkpoint;
use tch::{Device, Kind};

fn load(name: &str, kind: Kind) -> (Llama, serde_json::Value) {
    let dir = common::fixture(name);
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).expect("fixture")).expect("json");
    let ModelConfig::Llama(cfg) = ModelConfig::from_file(&dir.join("config.json")).expect("config") else { panic!("{name} is not read as Llama's family") };
    let n = cfg.num_hidden_layers;
    let model = Llama::load(cfg, Checkpoint::open(&dir.join("model.safetensors")).expect("weights"), n, Device::Cpu, kind).expect("model");
    (model, r)
}

#[test]
fn llama_every_hook_point_in_a_padded_batch_equals_transformers() {
    let (model, r) = load("llama_tiny", Kind::Float);
    families::every_hook_in_a_padded_batch(&model, &r, 7, 4, "llama_tiny");
}

#[test]
fn qwen3_every_hook_point_in_a_padded_batch_equals_transformers() {
    let (model, r) = load("qwen3_tiny", Kind::Float);
    families::every_hook_in_a_padded_batch(&model, &r, 7, 4, "qwen3_tiny");
}

#[test]
fn llama_logits_at_once_through_the_kv_cache_and_frozen_equal_transformers() {
    let (model, r) = load("llama_tiny", Kind::Float);
    families::logits_three_ways(&model, &r, "llama_tiny");
}

#[test]
fn qwen3_logits_at_once_through_the_kv_cache_and_frozen_equal_transformers() {
    let (model, r) = load("qwen3_tiny", Kind::Float);
    families::logits_three_ways(&model, &r, "qwen3_tiny");
}

/// The checkpoint as bf16 (as the hub ships Llama 3 and Qwen 3) loads into f32 compute with
/// the same numbers as the f32 one holding those bf16 values, and into bf16 compute near
/// HF's f32 logits (bf16's 8 bits of mantissa).
#[test]
fn bf16_compute_stays_near_the_f32_logits() {
    let (model, r) = load("qwen3_tiny", Kind::BFloat16);
    families::bf16_logits_near_f32(&model, &r);
}

#[test]
fn configs_it_cannot_run_are_refused_with_the_reason() {
    let base: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(common::fixture("llama_tiny/config.json")).expect("cfg")).expect("json");
    let with = |k: &str, v: serde_json::Value| {
        let mut c = base.clone();
        c[k] = v;
        LlamaConfig::from_json(&c).err().map(|e| e.to_string()).unwrap_or_default()
    };
    assert!(with("hidden_act", "gelu".into()).contains("not supported"));
    assert!(with("attention_bias", true.into()).contains("attention_bias"));
    assert!(with("rope_parameters", serde_json::json!({"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0})).contains("yarn"));
    assert!(with("use_sliding_window", true.into()).contains("sliding"));
    assert!(with("num_key_value_heads", 3.into()).contains("evenly"));
    // The older keys: rope_theta and rope_scaling beside the config's other keys.
    let mut old = base.clone();
    let rope = old.as_object_mut().expect("object").remove("rope_parameters").expect("rope");
    old["rope_theta"] = rope["rope_theta"].clone();
    old["rope_scaling"] = rope;
    assert_eq!(LlamaConfig::from_json(&old).expect("old keys"), LlamaConfig::from_json(&base).expect("new keys"));
    let model = ModelConfig::from_file(&common::fixture("qwen3_tiny/config.json")).expect("qwen");
    assert_eq!((model.family(), model.bos_token(), model.d_in(HookPoint::new(0, Site::AttnZ))), ("Qwen 3", "<|endoftext|>", 64));
}

/// `synth --family llama` and `--family qwen3` write a model in the hub's layout with
/// SAELens-folder SAEs that the command synth prints opens with no more flags: the family
/// comes from config.json, the layers from the folder.
#[test]
fn synthetic_llama_and_qwen_open_with_the_command_synth_prints() {
    for (family, name) in [("llama", "Llama 3"), ("qwen3", "Qwen 3")] {
        families::synthetic_opens_with_the_command_synth_prints(family, name, &[], 4);
    }
    let out = common::saescope()
        .args(["synth", "--family", "llama", "--size", "270m", "--out"])
        .arg(tempfile::tempdir().expect("tmp").path())
        .output()
        .expect("synth");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("tiny or small"));
}

/// `synth --family llama --sae-release llama_scope_lxr_8x` writes Llama Scope's own layout
/// (hyperparams.json, checkpoints/final.safetensors) at the layers asked, calibrated on
/// inputs scaled by the registry's norm_scaling_factor; the folder opens as that release with
/// no more flags, and its SAEs fire.
#[test]
fn synthetic_llama_scope_folders_open_as_their_release() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = common::saescope()
        .args(["synth", "--family", "llama", "--sae-release", "llama_scope_lxr_8x", "--layers", "2,4", "--out"])
        .arg(tmp.path())
        .output()
        .expect("synth");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for l in [2, 4] {
        let folder = tmp.path().join(format!("saes/Llama3_1-8B-Base-L{l}R-8x"));
        assert!(folder.join("hyperparams.json").is_file() && folder.join("checkpoints/final.safetensors").is_file(), "{}", folder.display());
    }
    let v = common::synth_report(tmp.path(), &[]);
    assert_eq!(v["sae_release"], "llama_scope_lxr_8x");
    let layers = v["categories"][0]["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2);
    assert!(layers.iter().all(|l| l["peak"].as_f64().is_some_and(|p| p > 0.5)), "the SAEs fire: {layers:?}");
}

/// `synth --family qwen3 --sae-release qwen-scope-3-1.7b-base-w32k-l50` writes Qwen Scope's
/// `layer{L}.sae.pt` state dicts; named by their release they open as TopK SAEs at the k of
/// its repo's name and fire; without the release, a folder that does not name the repo is
/// not taken for one of Qwen Scope's releases (they differ only in k).
#[test]
fn synthetic_qwen_scope_saes_open_by_their_release() {
    let tmp = tempfile::tempdir().expect("tmp");
    let release = "qwen-scope-3-1.7b-base-w32k-l50";
    let out =
        common::saescope().args(["synth", "--family", "qwen3", "--sae-release", release, "--layers", "2,4", "--out"]).arg(tmp.path()).output().expect("synth");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("--sae-release {release}")), "the printed command names the release: {stderr}");
    for l in [2, 4] {
        assert!(tmp.path().join(format!("saes/layer{l}.sae.pt")).is_file());
    }
    let v = common::synth_report(tmp.path(), &["--sae-release", release]);
    assert_eq!(v["sae_release"], release);
    let layers = v["categories"][0]["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2);
    assert!(layers.iter().all(|l| l["peak"].as_f64().is_some_and(|p| p > 0.0)), "the SAEs fire: {layers:?}");
    // TopK at the release's k: 50 of the 512 features a token.
    let selection = saescope::sae::selection::Selection::from_args(release, &[], &[2], Some(&tmp.path().join("saes")), None).expect("selection");
    let saescope::sae::selection::Wanted::Named(n) = &selection.wanted[0] else { panic!("a named SAE") };
    assert_eq!(n.k, Some(50));
    let file = tmp.path().join("saes/layer2.sae.pt");
    let files = saescope::source::SaeFiles { cfg: file.clone(), weights: file };
    let d = ModelConfig::from_file(&tmp.path().join("model/config.json")).expect("config").d_model();
    let overrides = saescope::sae::Overrides { k: n.k, ..Default::default() };
    let sae = saescope::sae::Sae::load(&files, d, n.hook, &overrides, false, tch::Device::Cpu, Kind::Float).expect("load");
    let x = tch::Tensor::randn([3, d as i64], (Kind::Float, tch::Device::Cpu));
    assert_eq!(sae.cfg.architecture, saescope::sae::Architecture::TopK(50));
    let per_token = Vec::<i64>::try_from(sae.encode(&(x * 4.0)).gt(0.0).sum_dim_intlist([-1i64].as_slice(), false, Kind::Int64)).expect("counts");
    assert!(per_token.iter().all(|&n| n > 0 && n <= 50), "at most k = 50 fire a token: {per_token:?}");
    // The folder alone is not taken for a Qwen Scope release: which k would be a guess.
    let reg = saescope::sae::registry::Registry::bundled().expect("registry");
    assert!(reg.release_in_folder(&tmp.path().join("saes"), None).is_none_or(|(r, _)| !r.starts_with("qwen-scope")));
    // Through the stand-in hub, by the release's and the model's names: the same report.
    let (fetched, log) = common::report_via_hub(
        &[("Qwen/Qwen3-1.7B-Base", &tmp.path().join("model")), ("Qwen/SAE-Res-Qwen3-1.7B-Base-W32K-L0_50", &tmp.path().join("saes"))],
        &["--model", "Qwen/Qwen3-1.7B-Base", "--sae-release", release, "--layers", "2,4"],
    );
    assert_eq!(fetched["categories"], v["categories"], "the hub's copy gives the folder's report");
    assert!(log.contains("layer4.sae.pt"), "{log}");
}

/// DeepSeek R1's Llama 8B distillation runs as the Llama 3.1 8B it is built as. `synth
/// --sae-release llama_scope_r1_distill` writes Llama Scope's R1 folders (`config.json`,
/// `sae_weights.safetensors` with a log threshold per feature), `deepseek-r1-...-qresearch`
/// qresearch's one state dict at layer 19 and Goodfire's release its one at 19 (the tiny model
/// then written 21 blocks deep); each folder opens alone as its release, with its Neuronpedia
/// ids, and the R1 folders through the stand-in hub by the model's and release's names.
#[test]
fn deepseek_r1_distill_saes_and_single_file_releases_open_by_name() {
    for (release, file, layers) in [
        ("llama_scope_r1_distill", "800M-Slimpajama-0-OpenR1-Math-220k/L4R/sae_weights.safetensors", 2),
        ("deepseek-r1-distill-llama-8b-qresearch", "DeepSeek-R1-Distill-Llama-8B-SAE-l19.pt", 1),
        ("goodfire-llama-3.1-8b-instruct", "Llama-3.1-8B-Instruct-SAE-l19.pth", 1),
    ] {
        let tmp = tempfile::tempdir().expect("tmp");
        let out = common::saescope().args(["synth", "--family", "llama", "--sae-release", release, "--out"]).arg(tmp.path()).output().expect("synth");
        assert!(out.status.success(), "{release}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(tmp.path().join("saes").join(file).is_file(), "{release}: {file}");
        let v = common::synth_report(tmp.path(), &[]);
        assert_eq!(v["sae_release"], release, "the folder alone opens as its release");
        let got = v["categories"][0]["layers"].as_array().expect("layers");
        assert_eq!(got.len(), layers, "{release}: {got:?}");
        assert!(got.iter().all(|l| l["peak"].as_f64().is_some_and(|p| p > 0.0)), "{release}: the SAEs fire: {got:?}");
        let csv = common::saescope()
            .args(["report", "--format", "csv", "--no-cache", "--model-dir"])
            .arg(tmp.path().join("model"))
            .arg("--sae-dir")
            .arg(tmp.path().join("saes"))
            .output()
            .expect("csv");
        let csv = String::from_utf8_lossy(&csv.stdout);
        let page = if release.starts_with("goodfire") { "llama3.1-8b-it/19-resid-post-gf" } else { "deepseek-r1-distill-llama-8b/" };
        assert!(csv.lines().nth(1).is_some_and(|row| row.contains(page)), "{release}: Neuronpedia's pages: {csv}");
        if release == "llama_scope_r1_distill" {
            let (fetched, log) = common::report_via_hub(
                &[("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", &tmp.path().join("model")), ("fnlp/Llama-Scope-R1-Distill", &tmp.path().join("saes"))],
                &["--model", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "--sae-release", release, "--layers", "2,4"],
            );
            assert_eq!(fetched["categories"], v["categories"], "the hub's copy gives the folder's report");
            assert!(log.contains("L4R/sae_weights.safetensors"), "{log}");
        }
    }
}

/// Every hook point TransformerLens caches for the blocks (resid_pre, attn.hook_z,
/// hook_attn_out, hook_mlp_out, resid_post) and the logits, as its HookedTransformer computes
/// them from the same weights (tl.json, scripts/reference_llama_tl.py: TL's own config of the
/// folder and weight conversion), so the hook names mean in saescope what they mean in TL.
#[test]
fn every_hook_point_equals_transformer_lens() {
    for name in ["llama_tiny", "qwen3_tiny"] {
        let (model, _) = load(name, Kind::Float);
        let tl: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(common::fixture(name).join("tl.json")).expect("tl.json")).expect("json");
        families::every_hook_against_tl(&model, &tl, 5, name);
    }
}
