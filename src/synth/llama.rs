//! Synthetic Llama 3 and Qwen 3 in the hub's layout (config.json `llama` or `qwen3`,
//! model.safetensors, a tokenizer.json from synth/tokenizer.rs with the family's special
//! tokens) with residual SAEs in SAELens's folder layout, one folder per hook, calibrated on
//! the synthetic model's own activations as synth/gpt2.rs calibrates GPT-2's. Tiny shapes,
//! for tests and trials: Llama's with Llama 3's RoPE scaling and its own lm_head, Qwen's with
//! per-head q/k norms, a head size apart from hidden/heads and tied embeddings, as the real
//! checkpoints have.

use super::gpt2::{calibration_at, normal, owned, write_json, write_sae, write_safetensors, Owned, Size};
use crate::corpus::samples::Samples;
use crate::model::config::ModelConfig;
use crate::model::hooks::{HookPoint, Processing, Site};
use crate::model::llama::{Llama, LlamaConfig, Variant};
use crate::model::tokenizer::Tokenizer;
use crate::runtime::progress::ProgressSink;
use crate::sae::selection::{Selection, Wanted};
use crate::weights::checkpoint::Checkpoint;
use color_eyre::eyre::{bail, Result, WrapErr};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Features per synthetic SAE at `--size tiny`.
const WIDTH: usize = 512;
/// The residual SAEs' layers (`blocks.L.hook_resid_pre`) at `--size tiny`, a third and two
/// thirds down.
pub const SAE_LAYERS: [usize; 2] = [2, 4];

/// The real shapes `--size small` writes: Llama 3.2 1B's and Qwen 3 0.6B's config.json,
/// with the hub's vocabulary and RoPE (the synthetic tokenizer uses its first ids), 16k-wide
/// SAEs at about 25, 50, 65 and 85% of the depth (as Registry::residual_default opens a
/// suite). For benchmarks.
fn small(variant: Variant, bos: usize, eos: usize) -> (serde_json::Value, Vec<usize>, usize) {
    match variant {
        Variant::Llama => (
            serde_json::json!({
                "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128_256, "hidden_size": 2048,
                "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
                "max_position_embeddings": 131_072, "rms_norm_eps": 1e-5, "hidden_act": "silu", "tie_word_embeddings": true,
                "attention_bias": false, "mlp_bias": false, "bos_token_id": bos, "eos_token_id": eos,
                "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                "rope_theta": 500000.0,
                "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
            }),
            vec![4, 8, 10, 14],
            16_384,
        ),
        Variant::Qwen3 => (
            serde_json::json!({
                "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": 151_936, "hidden_size": 1024,
                "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
                "max_position_embeddings": 40_960, "rms_norm_eps": 1e-6, "hidden_act": "silu", "tie_word_embeddings": true,
                "attention_bias": false, "use_sliding_window": false, "bos_token_id": null, "eos_token_id": eos,
                "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}, "rope_theta": 1000000.0,
            }),
            vec![7, 14, 18, 24],
            16_384,
        ),
    }
}

/// The tiny config.json of `variant`: 6 layers, 4 query heads sharing 2 key-value heads.
fn config(variant: Variant, vocab: usize, bos: usize, eos: usize) -> serde_json::Value {
    match variant {
        Variant::Llama => serde_json::json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab, "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 6, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
            "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "hidden_act": "silu", "tie_word_embeddings": false,
            "attention_bias": false, "mlp_bias": false, "bos_token_id": bos, "eos_token_id": eos,
            "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
            "rope_theta": 500000.0,
            "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
        }),
        Variant::Qwen3 => serde_json::json!({
            "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": vocab, "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 6, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32,
            "max_position_embeddings": 512, "rms_norm_eps": 1e-6, "hidden_act": "silu", "tie_word_embeddings": true,
            "attention_bias": false, "use_sliding_window": false, "bos_token_id": null, "eos_token_id": eos,
            // Both spellings: transformers 5 reads rope_parameters, 4.x (circuit-tracer's
            // pinned stack) rope_theta.
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}, "rope_theta": 1000000.0,
        }),
    }
}

/// Writes DIR/model and DIR/saes (`blocks.L.hook_resid_pre` for `SAE_LAYERS`; at `--size
/// small` the real shape's, see `small`; or the SAEs `release` names, in their release's
/// layout: Llama Scope's, Goodfire's and qresearch's for Llama, Qwen Scope's for Qwen 3).
pub fn write(out: &Path, variant: Variant, size: Size, seed: u64, release: Option<&Selection>, progress: &ProgressSink) -> Result<()> {
    if matches!(size, Size::M270 | Size::B4 | Size::B12) {
        bail!("--size 270m, 4b and 12b are Gemma 3's shapes; Llama 3 and Qwen 3 take tiny or small (Llama 3.2 1B's, Qwen 3 0.6B's)");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let _guard = tch::no_grad_guard();
    let model_dir = out.join("model");
    std::fs::create_dir_all(&model_dir).wrap_err_with(|| format!("cannot create {}", model_dir.display()))?;
    let specials: &[&str] = match variant {
        Variant::Llama => &["<|begin_of_text|>", "<|end_of_text|>"],
        Variant::Qwen3 => &["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    };
    let (tok_json, tok_vocab) = super::tokenizer::json(specials);
    write_json(&model_dir.join("tokenizer.json"), &tok_json)?;
    // What the hub's folders carry beside tokenizer.json, so transformers' AutoTokenizer
    // (circuit-tracer's loader) knows the special tokens instead of adding Llama's old <s>.
    let tok_config = match variant {
        Variant::Llama => serde_json::json!({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}),
        Variant::Qwen3 => {
            serde_json::json!({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": null, "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"})
        }
    };
    write_json(&model_dir.join("tokenizer_config.json"), &tok_config)?;
    let eos = if variant == Variant::Llama { 1 } else { 0 };
    let (mut cfg_json, sae_layers, width) = match size {
        Size::Small => small(variant, 0, eos),
        _ => (config(variant, tok_vocab, 0, eos), SAE_LAYERS.to_vec(), WIDTH),
    };
    // Deep enough for the release's SAEs (Goodfire's and qresearch's one SAE reads layer 19),
    // a block past the deepest.
    let deepest = release.into_iter().flat_map(|s| &s.wanted).filter_map(|w| if let Wanted::Named(n) = w { Some(n.hook.layer + 2) } else { None }).max();
    if let Some(n) = deepest.filter(|&n| cfg_json["num_hidden_layers"].as_u64().is_some_and(|have| (have as usize) < n)) {
        cfg_json["num_hidden_layers"] = n.into();
    }
    write_json(&model_dir.join("config.json"), &cfg_json)?;
    let cfg = LlamaConfig::from_json(&cfg_json)?;
    progress.stage(format!("writing synthetic {} ({} layers) to {}", cfg.family(), cfg.num_hidden_layers, model_dir.display()));
    write_weights(&model_dir.join("model.safetensors"), &cfg, &mut rng)?;
    let family = ModelConfig::Llama(cfg.clone());
    let model = Llama::load(cfg.clone(), Checkpoint::open(&model_dir.join("model.safetensors"))?, cfg.num_hidden_layers, Device::Cpu, Kind::Float)?;
    let tok = Tokenizer::load(Some(&model_dir.join("tokenizer.json")), family.bos_token())?;
    let seqs: Vec<Vec<u32>> = Samples::bundled()?.texts().map(|(_, _, t)| tok.encode_with_bos(t)).collect::<Result<_>>()?;
    let model_name = family.hub_model().unwrap_or("llama");
    if let Some(selection) = release {
        return write_release(&model, variant, &seqs, selection, width, &mut rng, progress);
    }
    for layer in sae_layers {
        let hook = HookPoint::new(layer, Site::ResidPre);
        progress.stage(format!("writing synthetic SAE {hook} ({width} features)"));
        let x = calibration_at(&model, &seqs, hook, Processing::NONE)?;
        write_sae(&out.join("saes").join(hook.to_string()), &hook.to_string(), &x, width, 30.0, model_name, &mut rng)?;
    }
    Ok(())
}

/// The SAEs `selection` names (a release's), each in its release's layout.
fn write_release(
    model: &Llama,
    variant: Variant,
    seqs: &[Vec<u32>],
    selection: &Selection,
    width: usize,
    rng: &mut ChaCha8Rng,
    progress: &ProgressSink,
) -> Result<()> {
    use crate::source::SaeLayout;
    let family = model.cfg.family();
    for wanted in &selection.wanted {
        let Wanted::Named(n) = wanted else { bail!("synth --family llama or qwen3 takes a release name (`saescope saes --of meta-llama/Llama-3.1-8B`)") };
        let crate::source::Source::Dir(base) = &n.source else { bail!("internal: synth writes to a folder") };
        let qwen_scope = crate::sae::state_dict::Made::of(Path::new(&n.path)) == Some(crate::sae::state_dict::Made::QwenScope);
        match n.layout {
            SaeLayout::LlamaScope | SaeLayout::LlamaScopeR1 if variant == Variant::Llama => write_llama_scope(model, seqs, n, base, width, rng, progress)?,
            SaeLayout::StateDict if qwen_scope == (variant == Variant::Qwen3) => write_state_dict(model, seqs, n, base, width, rng, progress)?,
            _ => bail!(
                "{} is not a release synth writes for {family}: Llama 3 takes llama_scope_*, goodfire-* and deepseek-r1-* releases, Qwen 3 qwen-scope-* ones (or SAELens folders without --sae-release)",
                n.id
            ),
        }
    }
    Ok(())
}

/// An SAE for `hook` calibrated on `x`, with nothing subtracted from its input (b_dec @ W_enc
/// moved into the encoder's bias, as the Llama Scope, Qwen Scope and Goodfire files have
/// it): W_enc [d, width], b_enc, W_dec [width, d], b_dec.
fn without_input_bias(x: &Tensor, width: usize, rng: &mut ChaCha8Rng) -> Result<[Tensor; 4]> {
    let sae = super::gpt2::build_sae(x, width, 30.0, rng)?;
    let get = |name: &str| -> Result<Tensor> {
        let (_, shape, v) = sae.tensors.iter().find(|(k, ..)| *k == name).ok_or_else(|| color_eyre::eyre::eyre!("internal: no {name}"))?;
        Ok(Tensor::from_slice(v).view(shape.iter().map(|&s| s as i64).collect::<Vec<_>>().as_slice()))
    };
    let (w_enc, b_enc, w_dec, b_dec) = (get("W_enc")?, get("b_enc")?, get("W_dec")?, get("b_dec")?);
    let folded = &b_enc - b_dec.matmul(&w_enc);
    Ok([w_enc, folded, w_dec, b_dec])
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(t.contiguous().view([-1]))?)
}

/// One Llama Scope SAE as its repos ship it and sae/llama_scope.rs reads it: a
/// `llama_scope_lx{r,a,m}_{8,32}x` entry's `hyperparams.json` and
/// `checkpoints/final.safetensors` with one threshold in units of sqrt(d) / the dataset's
/// average input norm, or a `llama_scope_r1_distill` entry's `config.json` and
/// `sae_weights.safetensors` with a log threshold per feature; both in nn.Linear's
/// orientation, JumpReLU, nothing subtracted from the input, which SAELens scales by the
/// registry's `norm_scaling_factor`; so it is calibrated on its hook's values scaled by that
/// factor, and the average norm written is the factor's.
fn write_llama_scope(
    model: &Llama,
    seqs: &[Vec<u32>],
    n: &crate::sae::selection::Named,
    base: &Path,
    width: usize,
    rng: &mut ChaCha8Rng,
    progress: &ProgressSink,
) -> Result<()> {
    // The threshold sits just above 0 in the loader's units.
    const THRESHOLD: f64 = 0.05;
    let factor = n.norm_scaling_factor.ok_or_else(|| color_eyre::eyre::eyre!("{}: the registry gives no norm_scaling_factor", n.id))?;
    let x = calibration_at(model, seqs, n.hook, Processing::NONE)?.f_mul_scalar(factor)?;
    progress.stage(format!("writing synthetic Llama Scope SAE {} ({width} features)", n.path));
    let [w_enc, b_enc, w_dec, b_dec] = without_input_bias(&x, width, rng)?;
    let d = model.cfg.hidden_size;
    let avg_in = (d as f64).sqrt() / factor;
    let mut t: BTreeMap<String, Owned> = BTreeMap::new();
    t.insert("encoder.weight".into(), owned(&[width, d], &to_vec(&w_enc.tr())?));
    t.insert("encoder.bias".into(), owned(&[width], &to_vec(&b_enc)?));
    t.insert("decoder.weight".into(), owned(&[d, width], &to_vec(&w_dec.tr())?));
    t.insert("decoder.bias".into(), owned(&[d], &to_vec(&b_dec)?));
    let dir = base.join(&n.path);
    let hook = n.hook.to_string();
    let [cfg_name, weights_name] = crate::source::sae_names(&n.path, n.layout);
    let (cfg, weights) = (base.join(cfg_name), base.join(weights_name));
    let config = if n.layout == crate::source::SaeLayout::LlamaScopeR1 {
        if !width.is_multiple_of(d) {
            bail!("{}: the synthetic width {width} is not a multiple of d_model {d}, as this release's expansion_factor needs", n.id);
        }
        t.insert("log_jumprelu_threshold".into(), owned(&[width], &vec![THRESHOLD.ln() as f32; width]));
        serde_json::json!({"d_model": d, "expansion_factor": width / d, "hook_point_in": hook, "hook_point_out": hook, "act_fn": "jumprelu",
                           "norm_activation": "dataset-wise", "dataset_average_activation_norm": {"in": avg_in, "out": avg_in}})
    } else {
        serde_json::json!({"d_model": d, "d_sae": width, "hook_point_in": hook, "hook_point_out": hook, "jump_relu_threshold": THRESHOLD,
                           "dataset_average_activation_norm": {"in": avg_in, "out": avg_in}, "top_k": 50, "act_fn": "jumprelu"})
    };
    for f in [&cfg, &weights] {
        let parent = f.parent().unwrap_or(&dir);
        std::fs::create_dir_all(parent).wrap_err_with(|| format!("cannot create {}", parent.display()))?;
    }
    write_safetensors(&weights, &t)?;
    write_json(&cfg, &config)
}

/// One Qwen Scope (`layer{L}.sae.pt`: W_enc [width, d], W_dec [d, width]), Goodfire
/// (`{model}-SAE-l{L}.pth`: an nn.Linear pair) or qresearch (`DeepSeek-R1-...-SAE-l{L}.pt`)
/// state dict, as their repos ship them and
/// sae/state_dict.rs reads them; Qwen Scope's TopK takes its release's k when opened.
fn write_state_dict(
    model: &Llama,
    seqs: &[Vec<u32>],
    n: &crate::sae::selection::Named,
    base: &Path,
    width: usize,
    rng: &mut ChaCha8Rng,
    progress: &ProgressSink,
) -> Result<()> {
    if let Some(k) = n.k.filter(|&k| k > width) {
        bail!("{}: k = {k} is past the synthetic width of {width}", n.id);
    }
    let x = calibration_at(model, seqs, n.hook, Processing::NONE)?;
    progress.stage(format!("writing synthetic SAE {} ({width} features)", n.path));
    let [w_enc, b_enc, w_dec, b_dec] = without_input_bias(&x, width, rng)?;
    let d = model.cfg.hidden_size;
    let made = crate::sae::state_dict::Made::of(Path::new(&n.path))
        .ok_or_else(|| color_eyre::eyre::eyre!("{}: {} is named as none of Qwen Scope's, Goodfire's or qresearch's files are", n.id, n.path))?;
    let names = made.names();
    let tensors = [
        (names[0], vec![width, d], to_vec(&w_enc.tr())?),
        (names[1], vec![d, width], to_vec(&w_dec.tr())?),
        (names[2], vec![width], to_vec(&b_enc)?),
        (names[3], vec![d], to_vec(&b_dec)?),
    ];
    let path = base.join(&n.path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    }
    crate::weights::torch_pt::write(&path, &tensors)
}

/// Random weights in the hub's names: projections scaled by 1/sqrt(fan-in), norm weights
/// near 1 (these norms multiply by `w`).
fn write_weights(path: &Path, c: &LlamaConfig, rng: &mut ChaCha8Rng) -> Result<()> {
    let (d, ff, hd) = (c.hidden_size, c.intermediate_size, c.head_dim);
    let (q, kv) = (c.num_attention_heads * hd, c.num_key_value_heads * hd);
    let mut t: BTreeMap<String, Owned> = BTreeMap::new();
    let mut put = |name: String, shape: &[usize], mean: f32, std: f32, rng: &mut ChaCha8Rng| {
        t.insert(name, owned(shape, &normal(rng, shape.iter().product(), mean, std)));
    };
    let inv = |n: usize| (1.0 / (n as f64).sqrt()) as f32;
    put("model.embed_tokens.weight".into(), &[c.vocab_size, d], 0.0, 1.0, rng);
    if !c.tie_word_embeddings {
        put("lm_head.weight".into(), &[c.vocab_size, d], 0.0, inv(d), rng);
    }
    put("model.norm.weight".into(), &[d], 1.0, 0.1, rng);
    for i in 0..c.num_hidden_layers {
        let p = format!("model.layers.{i}");
        for n in ["input_layernorm", "post_attention_layernorm"] {
            put(format!("{p}.{n}.weight"), &[d], 1.0, 0.1, rng);
        }
        if c.variant == Variant::Qwen3 {
            put(format!("{p}.self_attn.q_norm.weight"), &[hd], 1.0, 0.1, rng);
            put(format!("{p}.self_attn.k_norm.weight"), &[hd], 1.0, 0.1, rng);
        }
        put(format!("{p}.self_attn.q_proj.weight"), &[q, d], 0.0, inv(d), rng);
        put(format!("{p}.self_attn.k_proj.weight"), &[kv, d], 0.0, inv(d), rng);
        put(format!("{p}.self_attn.v_proj.weight"), &[kv, d], 0.0, inv(d), rng);
        put(format!("{p}.self_attn.o_proj.weight"), &[d, q], 0.0, inv(q), rng);
        put(format!("{p}.mlp.gate_proj.weight"), &[ff, d], 0.0, inv(d), rng);
        put(format!("{p}.mlp.up_proj.weight"), &[ff, d], 0.0, inv(d), rng);
        put(format!("{p}.mlp.down_proj.weight"), &[d, ff], 0.0, inv(ff), rng);
    }
    write_safetensors(path, &t)
}
