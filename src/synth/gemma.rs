//! Synthetic Gemma 3 and Gemma 2 in the hub's layout (config.json `gemma3_text` or `gemma2`,
//! model.safetensors and a tokenizer.json of Gemma's kind) with SAEs in Gemma Scope's
//! layouts (Gemma Scope 2's `params.safetensors` folders; the first Gemma Scope's
//! `params.npz`), calibrated on the synthetic model's own activations as synth/gpt2.rs
//! calibrates GPT-2's: for tests (tiny) and for benchmarks in Gemma 3 270M's exact shape
//! (262,144-token embedding, 18 layers), 4B's and 12B's (bf16 shards, synth/shards.rs).
//!
//! The tokenizer is synth/tokenizer.rs's with `<pad>` 0, `<eos>` 1, `<bos>` 2 and `<unk>` 3.

use super::gpt2::{build_sae, calibration_at, normal, owned, write_json, write_safetensors, Owned, Size};
use super::shards::{Planned, Stored};
use crate::corpus::samples::Samples;
use crate::model::gemma::{Gemma, GemmaConfig, Generation};
use crate::model::hooks::{HookPoint, Processing, Site};
use crate::model::tokenizer::Tokenizer;
use crate::runtime::progress::ProgressSink;
use crate::sae::selection::{Selection, Wanted};
use crate::weights::checkpoint::Checkpoint;
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// google/gemma-3-270m-it's chat template (its tokenizer_config.json's `chat_template`).
pub const GEMMA3_CHAT_TEMPLATE: &str = "{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = \"\" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = \"model\" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception(\"Invalid content type\") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
";

/// The SAEs' width at `Size::Tiny` (their names say 16k or more; tests want seconds).
const TINY_WIDTH: usize = 512;
/// JumpReLU's threshold on the calibrated pre-activations (which fire from about 0.5 up).
const THRESHOLD: f32 = 0.3;

/// Gemma 2's tiny config.json, in the keys the hub's google/gemma-2-2b ships (rope_theta, no
/// layer_types: every other layer slides, from the first; the soft-caps of 50 and 30): 26
/// layers as the 2B has, so Gemma Scope's canonical layers exist, a window of 16 that the
/// samples cross.
fn config_gemma2(size: Size, vocab: usize) -> Result<serde_json::Value> {
    match size {
        Size::Tiny => {}
        Size::Small => return Ok(config_gemma2_2b()),
        _ => bail!("synth writes Gemma 2 at --size tiny or small (Gemma 2 2B's shape)"),
    }
    Ok(serde_json::json!({
        "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "vocab_size": vocab, "hidden_size": 64,
        "intermediate_size": 128, "num_hidden_layers": 26, "num_attention_heads": 2, "num_key_value_heads": 1,
        "head_dim": 32, "query_pre_attn_scalar": 32, "sliding_window": 16, "max_position_embeddings": 512,
        "rms_norm_eps": 1e-6, "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh", "rope_theta": 10000.0,
        "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0, "cache_implementation": "hybrid",
        "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0,
    }))
}

/// google/gemma-2-2b's config.json as the hub ships it.
fn config_gemma2_2b() -> serde_json::Value {
    serde_json::json!({
        "architectures": ["Gemma2ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "attn_logit_softcapping": 50.0,
        "bos_token_id": 2, "cache_implementation": "hybrid", "eos_token_id": 1, "final_logit_softcapping": 30.0, "head_dim": 256,
        "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 2304, "initializer_range": 0.02,
        "intermediate_size": 9216, "max_position_embeddings": 8192, "model_type": "gemma2", "num_attention_heads": 8,
        "num_hidden_layers": 26, "num_key_value_heads": 4, "pad_token_id": 0, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0, "sliding_window": 4096, "torch_dtype": "float32", "use_cache": true, "vocab_size": 256000,
    })
}

/// The config.json of each size: `Tiny` has 10 layers so Gemma Scope's layers 5 and 9 exist,
/// a sliding window of 16 that the samples cross; `M270` is google/gemma-3-270m's.
fn config(size: Size, vocab: usize) -> Result<serde_json::Value> {
    let (vocab, d, ff, layers, heads, kv, hd, window, ctx) = match size {
        Size::Tiny => (vocab, 64, 128, 10, 2, 1, 32, 16, 512),
        Size::M270 => (262_144, 640, 2048, 18, 4, 1, 256, 512, 32_768),
        Size::Small => bail!("--size small is GPT-2 small's shape; for Gemma 3 use --size tiny, 270m, 4b or 12b"),
        Size::B4 => return Ok(config_multimodal(serde_json::json!({"hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": 34}))),
        Size::B12 => {
            return Ok(config_multimodal(serde_json::json!({"hidden_size": 3840, "intermediate_size": 15360, "num_hidden_layers": 48,
                                                           "num_attention_heads": 16, "num_key_value_heads": 8})))
        }
    };
    let types: Vec<&str> = (0..layers).map(|i| if (i + 1) % 6 == 0 { "full_attention" } else { "sliding_attention" }).collect();
    Ok(serde_json::json!({
        "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "vocab_size": vocab, "hidden_size": d,
        "intermediate_size": ff, "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv,
        "head_dim": hd, "query_pre_attn_scalar": hd, "sliding_window": window, "max_position_embeddings": ctx,
        "rms_norm_eps": 1e-6, "hidden_activation": "gelu_pytorch_tanh", "layer_types": types,
        "rope_parameters": {"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                            "full_attention": {"rope_type": "default", "rope_theta": 1000000.0}},
        "final_logit_softcapping": null, "attn_logit_softcapping": null, "tie_word_embeddings": true,
        "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0,
    }))
}

/// google/gemma-3-4b-pt's and -12b-pt's config.json as the hub ships them: multimodal, the
/// `text_config` sparse (each size's own keys, `sized`; the rest are transformers'
/// Gemma3TextConfig defaults, which src/model/gemma.rs fills in), the vision tower's config
/// left out as saescope never reads it.
fn config_multimodal(sized: serde_json::Value) -> serde_json::Value {
    let mut text = serde_json::json!({"model_type": "gemma3_text", "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024});
    if let (Some(text), serde_json::Value::Object(sized)) = (text.as_object_mut(), sized) {
        text.extend(sized);
    }
    serde_json::json!({
        "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
        "boi_token_index": 255_999, "eoi_token_index": 256_000, "image_token_index": 262_144, "mm_tokens_per_image": 256,
        "eos_token_id": [1, 106], "torch_dtype": "bfloat16", "text_config": text,
    })
}

/// Writes DIR/model and DIR/saes: the SAEs `selection` names (Gemma Scope releases of the
/// generation's layout), each in its folder and calibrated at its hook.
pub fn write(out: &Path, generation: Generation, size: Size, seed: u64, selection: &Selection, progress: &ProgressSink) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let _guard = tch::no_grad_guard();
    let model_dir = out.join("model");
    std::fs::create_dir_all(&model_dir).wrap_err_with(|| format!("cannot create {}", model_dir.display()))?;
    // An instruction-tuned release's model (`gemma-scope-2-270m-it-res`) reads chat: its
    // turn tokens and template, as google/gemma-3-270m-it ships them.
    let it = generation == Generation::Gemma3 && selection.release.as_deref().is_some_and(|r| r.split(',').any(|r| r.contains("-it-")));
    let turns: &[&str] = if it { &["<start_of_turn>", "<end_of_turn>"] } else { &[] };
    let (tok_json, tok_vocab) = super::tokenizer::json_with(&["<pad>", "<eos>", "<bos>", "<unk>"], turns);
    write_json(&model_dir.join("tokenizer.json"), &tok_json)?;
    if it {
        let config = serde_json::json!({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
                                        "unk_token": "<unk>", "chat_template": GEMMA3_CHAT_TEMPLATE});
        write_json(&model_dir.join("tokenizer_config.json"), &config)?;
    }
    let (cfg_json, layout) = match generation {
        Generation::Gemma3 => (config(size, tok_vocab)?, crate::source::SaeLayout::GemmaScope),
        Generation::Gemma2 => (config_gemma2(size, tok_vocab)?, crate::source::SaeLayout::GemmaScopeNpz),
    };
    write_json(&model_dir.join("config.json"), &cfg_json)?;
    let cfg = GemmaConfig::from_json(&cfg_json)?;
    progress.stage(format!("writing synthetic {} ({} layers) to {}", cfg.family(), cfg.num_hidden_layers, model_dir.display()));
    // The real shapes, as the hub ships them: Gemma 3 4B's and 12B's multimodal checkpoints'
    // text weights in bf16 under their `language_model.model.` names (the vision tower is
    // left out: never read); Gemma 2 2B's in f32, three shards.
    let multimodal = matches!(size, Size::B4 | Size::B12);
    let big = multimodal || (size == Size::Small && generation == Generation::Gemma2);
    let weights = if big {
        let (prefix, stored) = if multimodal { ("language_model.model.", Stored::Bf16) } else { ("model.", Stored::F32) };
        super::shards::write(&model_dir, &planned(&cfg, prefix), stored, &mut rng)?;
        model_dir.join("model.safetensors.index.json")
    } else {
        write_weights(&model_dir.join("model.safetensors"), &cfg, &mut rng)?;
        model_dir.join("model.safetensors")
    };
    // Calibration runs the blocks up to the deepest SAE only, and a bf16 checkpoint in bf16
    // (views of the mapped file): 12B widened to f32 would need 47 GB.
    let deepest = selection.wanted.iter().filter_map(|w| if let Wanted::Named(n) = w { Some(n.hook.layer) } else { None }).max().unwrap_or(0);
    let kind = if multimodal { Kind::BFloat16 } else { Kind::Float };
    let model = Gemma::load(cfg.clone(), Checkpoint::open(&weights)?, (deepest + 1).min(cfg.num_hidden_layers), Device::Cpu, kind)?;
    let tok = Tokenizer::load(Some(&model_dir.join("tokenizer.json")), "<bos>")?;
    // The billion-parameter shapes calibrate on every fifth text: an f32 forward of all of
    // them would take minutes per SAE here.
    let step = if big { 5 } else { 1 };
    let seqs: Vec<Vec<u32>> = Samples::bundled()?.texts().step_by(step).map(|(_, _, t)| tok.encode_with_bos(t)).collect::<Result<_>>()?;
    for wanted in &selection.wanted {
        let Wanted::Named(n) = wanted else { bail!("synth --family gemma2|gemma3 takes a Gemma Scope release name (`saescope saes --of google/gemma-2-2b`)") };
        // Gemma 2's temporal SAEs (temporal-sae-gemma-2-2b) too.
        let temporal = n.layout == crate::source::SaeLayout::Temporal && generation == Generation::Gemma2;
        if n.layout != layout && !temporal {
            bail!("{} is not a release in {}'s Gemma Scope layout", n.id, cfg.family());
        }
        let crate::source::Source::Dir(base) = &n.source else { bail!("internal: synth writes to a folder") };
        let x = calibration_at(&model, &seqs, n.hook, Processing::NONE)?.to_kind(Kind::Float);
        let width = n.width.unwrap_or(16_384);
        let width = if size == Size::Tiny { width.min(TINY_WIDTH) } else { width };
        progress.stage(format!("writing synthetic SAE {} ({width} features)", n.path));
        if temporal {
            write_temporal_folder(&base.join(&n.path), &x, width, &mut rng)?;
        } else if n.hook.site == Site::MlpIn {
            // A transcoder: fitted to the MLP it stands in for.
            let y = calibration_at(&model, &seqs, HookPoint::new(n.hook.layer, Site::MlpOut), Processing::NONE)?.to_kind(Kind::Float);
            super::transcoders::write_scope_one(&base.join(&n.path), &x, &y, n.hook.layer, width, n.path.ends_with("_affine"), &mut rng)?;
        } else if layout == crate::source::SaeLayout::GemmaScopeNpz {
            write_npz_folder(&base.join(&n.path), &x, width, &mut rng)?;
        } else {
            let dir = base.join(&n.path);
            write_scope_folder(&dir, &x, width, n.hook, &mut rng)?;
            // Gemma Scope 2's folders ship their own dashboards beside the weights.
            let files = crate::source::SaeFiles { cfg: dir.join("config.json"), weights: dir.join("params.safetensors") };
            super::scope_examples::write(&dir, &files, n.hook, &model, &seqs, &x)?;
        }
    }
    Ok(())
}

/// Random weights in the hub's names under `prefix`: projections scaled by 1/sqrt(fan-in),
/// norm weights near 0 (Gemma's norms multiply by `1 + w`).
fn planned(c: &GemmaConfig, prefix: &str) -> Vec<Planned> {
    let (d, ff, hd) = (c.hidden_size, c.intermediate_size, c.head_dim);
    let (q, kv) = (c.num_attention_heads * hd, c.num_key_value_heads * hd);
    let inv = |n: usize| (1.0 / (n as f64).sqrt()) as f32;
    let mut t = Vec::new();
    let mut put = |name: String, shape: Vec<usize>, std: f32| t.push(Planned { name: format!("{prefix}{name}"), shape, std });
    put("embed_tokens.weight".into(), vec![c.vocab_size, d], inv(d));
    put("norm.weight".into(), vec![d], 0.1);
    for i in 0..c.num_hidden_layers {
        let p = format!("layers.{i}");
        for n in ["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"] {
            put(format!("{p}.{n}.weight"), vec![d], 0.1);
        }
        if c.generation == Generation::Gemma3 {
            put(format!("{p}.self_attn.q_norm.weight"), vec![hd], 0.1);
            put(format!("{p}.self_attn.k_norm.weight"), vec![hd], 0.1);
        }
        put(format!("{p}.self_attn.q_proj.weight"), vec![q, d], inv(d));
        put(format!("{p}.self_attn.k_proj.weight"), vec![kv, d], inv(d));
        put(format!("{p}.self_attn.v_proj.weight"), vec![kv, d], inv(d));
        put(format!("{p}.self_attn.o_proj.weight"), vec![d, q], inv(q));
        put(format!("{p}.mlp.gate_proj.weight"), vec![ff, d], inv(d));
        put(format!("{p}.mlp.up_proj.weight"), vec![ff, d], inv(d));
        put(format!("{p}.mlp.down_proj.weight"), vec![d, ff], inv(ff));
    }
    t
}

/// The text model's weights in f32, one file.
fn write_weights(path: &Path, c: &GemmaConfig, rng: &mut ChaCha8Rng) -> Result<()> {
    let t: BTreeMap<String, Owned> =
        planned(c, "model.").into_iter().map(|p| (p.name, owned(&p.shape, &normal(rng, p.shape.iter().product(), 0.0, p.std)))).collect();
    write_safetensors(path, &t)
}

/// A JumpReLU SAE as the first Gemma Scope ships it: `params.npz` alone (`W_enc`, `W_dec`,
/// `b_enc`, `b_dec`, `threshold`), nothing subtracted from the input, so the calibrated SAE's
/// `b_dec @ W_enc` moves into b_enc.
fn write_npz_folder(dir: &Path, x: &Tensor, width: usize, rng: &mut ChaCha8Rng) -> Result<()> {
    let sae = build_sae(x, width, 40.0, rng)?;
    let mut arrays: Vec<(&str, Vec<usize>, Vec<f32>)> = Vec::new();
    let (mut w_enc, mut b_enc, mut b_dec) = (None, None, None);
    for (name, shape, v) in &sae.tensors {
        let t = Tensor::from_slice(v).view(shape.iter().map(|&s| s as i64).collect::<Vec<_>>().as_slice());
        match *name {
            "W_enc" => w_enc = Some(t),
            "b_enc" => b_enc = Some(t),
            "b_dec" => b_dec = Some(t),
            _ => {}
        }
        if *name != "b_enc" {
            arrays.push((name, shape.clone(), v.clone()));
        }
    }
    let (Some(w_enc), Some(b_enc), Some(b_dec)) = (w_enc, b_enc, b_dec) else { bail!("internal: the built SAE lacks a tensor") };
    let folded = Vec::<f32>::try_from((b_enc - b_dec.matmul(&w_enc)).contiguous().view([-1]))?;
    arrays.push(("b_enc", vec![width], folded));
    arrays.push(("threshold", vec![width], vec![THRESHOLD; width]));
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    crate::weights::npz::write(&dir.join("params.npz"), &arrays)
}

/// A temporal SAE as canrager/temporalSAEs ships one and sae/temporal.rs reads it:
/// `conf.yaml` and `latest_ckpt.safetensors`, untied, TopK novel codes (k 16), one attention
/// layer of 4 heads. The encoder is the calibrated SAE's in the codes' units (times
/// 4 d_in, the inverse of the codes' input scale), inputs scaled to norm sqrt(d_in) on
/// average, the decoder fitted to its codes; the attention's weights are random and small,
/// so predictions take a part of each input without taking it all.
fn write_temporal_folder(dir: &Path, x: &Tensor, width: usize, rng: &mut ChaCha8Rng) -> Result<()> {
    const HEADS: usize = 4;
    const BOTTLENECK: usize = 4;
    const K: i64 = 16;
    let (_, d) = x.size2()?;
    let d = d as usize;
    if !width.is_multiple_of(HEADS * BOTTLENECK) || !width.is_multiple_of(d) {
        bail!("a temporal SAE's width {width} must split into {HEADS} heads at bottleneck {BOTTLENECK} and be a multiple of d_in {d}");
    }
    let mean_norm = x.norm_scalaropt_dim(2, [-1i64].as_slice(), false).mean(Kind::Float).double_value(&[]);
    let scale = (d as f64).sqrt() / mean_norm.max(1e-6);
    let sae = build_sae(&(x * scale), width, 40.0, rng)?;
    let get = |n: &str| sae.tensors.iter().find(|(k, ..)| *k == n).map(|(_, _, v)| v.clone()).ok_or_else(|| eyre!("internal: no {n}"));
    let codes_scale = (4 * d) as f32;
    // The codes have no bias (the calibrated SAE's b_enc is dropped) and keep the top K,
    // so the decoder is fitted to them by least squares on the calibration rows: the novel
    // codes then rebuild the inputs (an eval's explained variance means something).
    let w_enc = get("W_enc")?;
    let b_dec = get("b_dec")?;
    let centred = x.shallow_clone() * scale - Tensor::from_slice(&b_dec);
    let pre = centred.matmul(&Tensor::from_slice(&w_enc).view([d as i64, width as i64])).relu();
    let (vals, idx) = pre.topk(K, -1, true, false);
    let codes = pre.zeros_like().scatter(-1, &idx, &vals);
    let (fitted, ..) = codes.f_linalg_lstsq(&centred, None::<f64>, "gelsd")?;
    let w_dec = Vec::<f32>::try_from(fitted.contiguous().view([-1]))?;
    let mut t: BTreeMap<String, Owned> = BTreeMap::new();
    t.insert("E".into(), owned(&[d, width], &w_enc.iter().map(|v| v * codes_scale).collect::<Vec<_>>()));
    t.insert("D".into(), owned(&[width, d], &w_dec));
    t.insert("b".into(), owned(&[d], &b_dec));
    let e = width / BOTTLENECK;
    let std = (0.5 / (width as f64).sqrt()) as f32;
    for (name, rows) in [("k_ctx", e), ("q_target", e), ("v_ctx", width), ("c_proj", width)] {
        t.insert(format!("attn_layers.0.{name}.weight"), owned(&[rows, width], &normal(rng, rows * width, 0.0, std)));
        t.insert(format!("attn_layers.0.{name}.bias"), owned(&[rows], &normal(rng, rows, 0.0, 0.01)));
    }
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    write_safetensors(&dir.join("latest_ckpt.safetensors"), &t)?;
    let conf = format!(
        "llm:\n  dimin: {d}\ndata:\n  dtype: float32\nsae:\n  exp_factor: {}\n  n_heads: {HEADS}\n  n_attn_layers: 1\n  bottleneck_factor: {BOTTLENECK}\n  sae_diff_type: topk\n  kval_topk: {K}\n  tied_weights: false\n  scaling_factor: {scale}\n",
        width / d
    );
    crate::runtime::fsio::write_atomic(&dir.join("conf.yaml"), conf.as_bytes())
}

/// A JumpReLU SAE in Gemma Scope's folder: `params.safetensors` (w_enc, w_dec, b_enc, b_dec,
/// threshold) and `config.json`. Gemma Scope subtracts no b_dec from the input, so the
/// calibrated SAE's `b_dec @ W_enc` moves into b_enc.
fn write_scope_folder(dir: &Path, x: &Tensor, width: usize, hook: HookPoint, rng: &mut ChaCha8Rng) -> Result<()> {
    let sae = build_sae(x, width, 40.0, rng)?;
    let get = |n: &str| sae.tensors.iter().find(|(k, ..)| *k == n).ok_or_else(|| eyre!("internal: no {n}"));
    let tensor = |n: &str| -> Result<Tensor> {
        let (_, shape, v) = get(n)?;
        Ok(Tensor::from_slice(v).view(shape.iter().map(|&s| s as i64).collect::<Vec<_>>().as_slice()))
    };
    let (w_enc, b_enc, b_dec) = (tensor("W_enc")?, tensor("b_enc")?, tensor("b_dec")?);
    let folded = b_enc - b_dec.matmul(&w_enc);
    let to_vec = |t: &Tensor| -> Result<Vec<f32>> { Ok(Vec::<f32>::try_from(t.contiguous().view([-1]))?) };
    let mut t: BTreeMap<String, Owned> = BTreeMap::new();
    for (name, src) in [("w_enc", "W_enc"), ("w_dec", "W_dec"), ("b_dec", "b_dec")] {
        let (_, shape, v) = get(src)?;
        t.insert(name.into(), owned(shape, v));
    }
    t.insert("b_enc".into(), owned(&[width], &to_vec(&folded)?));
    t.insert("threshold".into(), owned(&[width], &vec![THRESHOLD; width]));
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    write_safetensors(&dir.join("params.safetensors"), &t)?;
    let point = match hook.site {
        crate::model::hooks::Site::ResidPost => format!("model.layers.{}.output", hook.layer),
        crate::model::hooks::Site::MlpOut => format!("model.layers.{}.post_feedforward_layernorm.output", hook.layer),
        _ => format!("model.layers.{}.self_attn.o_proj.input", hook.layer),
    };
    write_json(
        &dir.join("config.json"),
        &serde_json::json!({"architecture": "jump_relu", "model_name": "gemma-v3-270m-pt", "hf_hook_point_in": point, "hf_hook_point_out": point,
                            "width": width, "l0": 40, "affine_connection": false, "type": "sae"}),
    )
}
