//! A synthetic Pythia in the hub's layout (config.json `gpt_neox` with the hub's own keys,
//! `rotary_pct` and `rotary_emb_base`; model.safetensors with `embed_out`; a tokenizer.json
//! from synth/tokenizer.rs with Pythia's two special tokens first) and SAEs of a SAELens
//! release in its repo layout (`pythia-70m-deduped-res-sm`'s folders by default), calibrated
//! on the model's own activations under TransformerLens's default processing, as Pythia's
//! SAEs were trained. Tiny: Pythia 70M's depth and quarter-turned heads at width 64; small:
//! Pythia 70M's shape.

use super::gpt2::{normal, owned, write_json, write_named, write_safetensors, Owned, Size, Widths};
use crate::corpus::samples::Samples;
use crate::model::config::ModelConfig;
use crate::model::neox::{Neox, NeoxConfig};
use crate::model::tokenizer::Tokenizer;
use crate::runtime::progress::ProgressSink;
use crate::sae::selection::Selection;
use crate::weights::checkpoint::Checkpoint;
use color_eyre::eyre::{bail, Result, WrapErr};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind};

/// The release `synth --family pythia` writes, and the layers `--model-dir` alone opens it at
/// (Registry::residual_default: four of its six residual layers).
pub const RELEASE: &str = "pythia-70m-deduped-res-sm";
pub const LAYERS: [usize; 4] = [1, 3, 4, 5];

/// Writes DIR/model and DIR/saes (the SAEs of `selection`): tiny, 512 features each; or at
/// `--size small` Pythia 70M's own shape with res-sm's 32,768 features (for benchmarks).
pub fn write(out: &Path, size: Size, seed: u64, selection: &Selection, progress: &ProgressSink) -> Result<()> {
    let (d, layers, heads, ff, vocab_rows, n_ctx, width) = match size {
        Size::Tiny => (64, 6, 4, 256, None, 512, 512),
        Size::Small => (512, 6, 8, 2048, Some(50_304), 2048, 32_768),
        Size::M270 | Size::B4 | Size::B12 => bail!("--size 270m, 4b and 12b are Gemma 3's shapes; Pythia takes tiny or small (Pythia 70M's)"),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let _guard = tch::no_grad_guard();
    let model_dir = out.join("model");
    std::fs::create_dir_all(&model_dir).wrap_err_with(|| format!("cannot create {}", model_dir.display()))?;
    let (tok_json, vocab) = super::tokenizer::json(&["<|endoftext|>", "<|padding|>"]);
    write_json(&model_dir.join("tokenizer.json"), &tok_json)?;
    write_json(
        &model_dir.join("tokenizer_config.json"),
        &serde_json::json!({"tokenizer_class": "GPTNeoXTokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "add_bos_token": false}),
    )?;
    // Pythia's embedding has rows past its tokenizer's ids (50,304 against 50,277); so does
    // the full-shape synthetic one.
    let cfg_json = serde_json::json!({
        "architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "vocab_size": vocab_rows.unwrap_or(vocab), "hidden_size": d,
        "intermediate_size": ff, "num_hidden_layers": layers, "num_attention_heads": heads, "max_position_embeddings": n_ctx,
        "layer_norm_eps": 1e-5, "hidden_act": "gelu", "rotary_pct": 0.25, "rotary_emb_base": 10000,
        "use_parallel_residual": true, "tie_word_embeddings": false, "bos_token_id": 0, "eos_token_id": 0,
    });
    write_json(&model_dir.join("config.json"), &cfg_json)?;
    let cfg = NeoxConfig::from_json(&cfg_json)?;
    progress.stage(format!("writing synthetic Pythia ({} layers) to {}", cfg.num_hidden_layers, model_dir.display()));
    write_weights(&model_dir.join("model.safetensors"), &cfg, &mut rng)?;
    let family = ModelConfig::Neox(cfg.clone());
    let model = Neox::load(cfg.clone(), Checkpoint::open(&model_dir.join("model.safetensors"))?, cfg.num_hidden_layers, Device::Cpu, Kind::Float)?;
    let tok = Tokenizer::load(Some(&model_dir.join("tokenizer.json")), family.bos_token())?;
    let seqs: Vec<Vec<u32>> = Samples::bundled()?.texts().map(|(_, _, t)| tok.encode_with_bos(t)).collect::<Result<_>>()?;
    write_named(&model, &seqs, selection, Widths { default: width, max: Some(width) }, 24.0, "pythia-70m-deduped", &mut rng, progress)
}

/// Random weights in the hub's names: projections scaled by 1/sqrt(fan-in), LayerNorm
/// weights near 1 and biases near 0, small biases everywhere else.
fn write_weights(path: &Path, c: &NeoxConfig, rng: &mut ChaCha8Rng) -> Result<()> {
    let (d, ff) = (c.hidden_size, c.intermediate_size);
    let mut t: BTreeMap<String, Owned> = BTreeMap::new();
    let mut put = |name: String, shape: &[usize], mean: f32, std: f32, rng: &mut ChaCha8Rng| {
        t.insert(name, owned(shape, &normal(rng, shape.iter().product(), mean, std)));
    };
    let inv = |n: usize| (1.0 / (n as f64).sqrt()) as f32;
    put("gpt_neox.embed_in.weight".into(), &[c.vocab_size, d], 0.0, 1.0, rng);
    put("embed_out.weight".into(), &[c.vocab_size, d], 0.0, inv(d), rng);
    let mut ln = |name: String, rng: &mut ChaCha8Rng| {
        put(format!("{name}.weight"), &[d], 1.0, 0.1, rng);
        put(format!("{name}.bias"), &[d], 0.0, 0.05, rng);
    };
    ln("gpt_neox.final_layer_norm".into(), rng);
    for i in 0..c.num_hidden_layers {
        let p = format!("gpt_neox.layers.{i}");
        ln(format!("{p}.input_layernorm"), rng);
        ln(format!("{p}.post_attention_layernorm"), rng);
    }
    for i in 0..c.num_hidden_layers {
        let p = format!("gpt_neox.layers.{i}");
        for (name, out, inp) in [("attention.query_key_value", 3 * d, d), ("attention.dense", d, d), ("mlp.dense_h_to_4h", ff, d), ("mlp.dense_4h_to_h", d, ff)]
        {
            put(format!("{p}.{name}.weight"), &[out, inp], 0.0, inv(inp), rng);
            put(format!("{p}.{name}.bias"), &[out], 0.0, 0.02, rng);
        }
    }
    write_safetensors(path, &t)
}
