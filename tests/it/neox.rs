//! GPT-NeoX (Pythia) against HF transformers' GPTNeoXForCausalLM and TransformerLens
//! (fixtures tests/fixtures/pythia_tiny/, attention and MLP in parallel as every Pythia has
//! them, and neox_seq_tiny/, one after the other; both from scripts/reference_neox.py):
//! RoPE on the first quarter of each head, the fused q/k/v projection, LayerNorm biases.
//! Every hidden state, hook point and the logits equal HF's within 1e-4 of the values' scale;
//! every hook under TransformerLens's default processing (centred writes, folded value
//! biases: what Pythia's SAELens SAEs read) equals TL's.

use crate::common;
use common::families;

use saescope::model::config::ModelConfig;
use saescope::model::hooks::{HookPoint, Processing, Site};
use saescope::model::neox::{Neox, NeoxConfig};
use saescope::model::Family;
use saescope::weights::checkpoint::Checkpoint;
use tch::{Device, Kind, Tensor};

fn load(name: &str, kind: Kind) -> (Neox, serde_json::Value) {
    let dir = common::fixture(name);
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).expect("fixture")).expect("json");
    let ModelConfig::Neox(cfg) = ModelConfig::from_file(&dir.join("config.json")).expect("config") else { panic!("{name} is not read as GPT-NeoX") };
    let n = cfg.num_hidden_layers;
    let model = Neox::load(cfg, Checkpoint::open(&dir.join("model.safetensors")).expect("weights"), n, Device::Cpu, kind).expect("model");
    (model, r)
}

fn tl(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture(name).join("tl.json")).expect("tl.json")).expect("json")
}

#[test]
fn every_hook_point_in_a_padded_batch_equals_transformers() {
    for name in ["pythia_tiny", "neox_seq_tiny"] {
        let (model, r) = load(name, Kind::Float);
        families::every_hook_in_a_padded_batch(&model, &r, 7, 4, name);
    }
}

#[test]
fn logits_at_once_through_the_kv_cache_and_frozen_equal_transformers() {
    for name in ["pythia_tiny", "neox_seq_tiny"] {
        let (model, r) = load(name, Kind::Float);
        families::logits_three_ways(&model, &r, name);
    }
}

/// resid_pre and resid_post, attn.hook_z, hook_attn_out, hook_mlp_out and
/// ln2.hook_normalized as TransformerLens's `from_pretrained` holds them (fold_ln,
/// center_writing_weights, center_unembed, fold_value_biases), and the logits.
#[test]
fn every_hook_point_under_default_processing_equals_transformer_lens() {
    for name in ["pythia_tiny", "neox_seq_tiny"] {
        let (model, _) = load(name, Kind::Float);
        families::every_hook_against_tl(&model, &tl(name), 6, name);
    }
}

/// A value seen through TL's processing and written back (a splice, steering) is the model's
/// own again: the centred residual gets its mean back, z its folded value bias.
#[test]
fn unview_undoes_view() {
    let (model, r) = load("pythia_tiny", Kind::Float);
    let toks = common::ids_of(&r["tokens"]);
    let t = toks.len() as i64;
    let ids = Tensor::from_slice(&toks.iter().map(|&x| i64::from(x)).collect::<Vec<_>>()).view([1, t]);
    let mask = Tensor::ones([1, t], (Kind::Bool, Device::Cpu));
    for site in [Site::ResidPre, Site::AttnZ, Site::AttnOut, Site::MlpOut, Site::ResidPost] {
        let hook = HookPoint::new(2, site);
        let raw = model.hooks_each(&ids, &mask, &[(hook, Processing::NONE)]).expect("hooks").remove(0);
        let seen = model.view(hook, &raw, Processing::DEFAULT).expect("view");
        assert!((&seen - &raw).abs().max().double_value(&[]) > 1e-3, "{hook}: the default processing changes the value");
        let back = model.unview(hook, &raw, &seen, Processing::DEFAULT).expect("unview");
        let diff = (back - &raw).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{hook}: {diff}");
    }
}

/// The checkpoint in bf16 compute stays near HF's f32 logits (bf16's 8 bits of mantissa).
#[test]
fn bf16_compute_stays_near_the_f32_logits() {
    let (model, r) = load("pythia_tiny", Kind::BFloat16);
    families::bf16_logits_near_f32(&model, &r);
}

/// The hub's config keys (`rotary_pct`, `rotary_emb_base`) read as transformers 5's; what it
/// cannot run is refused by name; a parallel block has no resid_mid to read.
#[test]
fn configs_and_hooks_it_cannot_run_are_refused_with_the_reason() {
    let base: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(common::fixture("pythia_tiny/config.json")).expect("cfg")).expect("json");
    let mut old = base.clone();
    let rope = old.as_object_mut().expect("object").remove("rope_parameters").expect("rope");
    old["rotary_pct"] = rope["partial_rotary_factor"].clone();
    old["rotary_emb_base"] = rope["rope_theta"].clone();
    let cfg = NeoxConfig::from_json(&old).expect("hub keys");
    assert_eq!(cfg, NeoxConfig::from_json(&base).expect("new keys"));
    assert_eq!((cfg.rotary_dim, cfg.parallel), (4, true));
    let with = |k: &str, v: serde_json::Value| {
        let mut c = base.clone();
        c[k] = v;
        NeoxConfig::from_json(&c).err().map(|e| e.to_string()).unwrap_or_default()
    };
    assert!(with("hidden_act", "relu".into()).contains("not supported"));
    assert!(with("attention_bias", false.into()).contains("attention_bias"));
    assert!(with("num_attention_heads", 3.into()).contains("multiple"));
    let model = ModelConfig::from_file(&common::fixture("pythia_tiny/config.json")).expect("config");
    assert_eq!((model.family(), model.bos_token(), model.hub_model()), ("Pythia", "<|endoftext|>", Some("EleutherAI/pythia-70m-deduped")));
    let (model, r) = load("pythia_tiny", Kind::Float);
    let t = r["tokens"].as_array().expect("tokens").len() as i64;
    let ids = Tensor::from_slice(&common::ids_of(&r["tokens"]).iter().map(|&x| i64::from(x)).collect::<Vec<_>>()).view([1, t]);
    let err = model.hooks_each(&ids, &Tensor::ones([1, t], (Kind::Bool, Device::Cpu)), &[(HookPoint::new(1, Site::ResidMid), Processing::DEFAULT)]);
    assert!(err.is_err_and(|e| e.to_string().contains("use_parallel_residual")));
}

/// `synth --family pythia` writes the hub's layout with pythia-70m-deduped-res-sm's folders,
/// and the command it prints opens them with no more flags (the family from config.json, the
/// release from the folders); the SAEs fire, and `tokens` reads one of them.
#[test]
fn synthetic_pythia_opens_with_the_command_synth_prints() {
    families::synthetic_opens_with_the_command_synth_prints("pythia", "Pythia", &["1-res-sm", "3-res-sm", "4-res-sm", "5-res-sm"], 3);
}
