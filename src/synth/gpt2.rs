//! Synthetic GPT-2 and SAEs in the real layouts, for tests (tiny) and benchmarks (small,
//! full GPT-2-small shape), because real weights cannot be downloaded everywhere.
//!
//! The SAEs are built to behave like trained ones so that thresholds mean something:
//! unit-norm decoder rows, encoder = scaled decoder transpose, and a negative encoder
//! bias calibrated on the synthetic model's own residual stream so that tens of features
//! fire per token with values from about 0.5 to 30.

use crate::corpus::samples::Samples;
use crate::model::gpt2::Gpt2;
use crate::model::gpt2::Gpt2Config;
use crate::model::hooks::hook_name;
use crate::model::tokenizer::Tokenizer;
use crate::runtime::progress::ProgressSink;
use crate::weights::checkpoint::Checkpoint;
use color_eyre::eyre::{Result, WrapErr};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, StandardNormal};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Size {
    /// 12 layers of width 64, 512-feature SAEs: seconds to build, for tests.
    Tiny,
    /// GPT-2 small's shape with 24576-feature SAEs (Pythia 70M's with `--family pythia`): for benchmarks.
    Small,
    /// Gemma 3 270M's shape (`--family gemma3`) with Gemma Scope's widths: for benchmarks.
    #[value(name = "270m")]
    M270,
    /// Gemma 3 4B's shape (`--family gemma3`), its multimodal checkpoint's text weights in
    /// bf16 shards as the hub ships them: for the bf16 memory benchmark.
    #[value(name = "4b")]
    B4,
    /// Gemma 3 12B's shape, as `4b` (23.5 GB of bf16 text weights), for the same benchmark.
    #[value(name = "12b")]
    B12,
}

struct Shape {
    cfg: Gpt2Config,
    d_sae: usize,
    /// Mean number of features firing per token.
    l0: f64,
}

fn shape(size: Size) -> Result<Shape> {
    Ok(match size {
        Size::Tiny => Shape { cfg: Gpt2Config { n_embd: 64, n_head: 4, ..Gpt2Config::gpt2_small() }, d_sae: 512, l0: 24.0 },
        Size::Small => Shape { cfg: Gpt2Config::gpt2_small(), d_sae: 24576, l0: 40.0 },
        Size::M270 | Size::B4 | Size::B12 => {
            color_eyre::eyre::bail!("--size 270m, 4b and 12b are Gemma 3's shapes: pass --family gemma3 (GPT-2 takes tiny or small)")
        }
    })
}

pub(super) fn normal(rng: &mut ChaCha8Rng, n: usize, mean: f32, std: f32) -> Vec<f32> {
    let dist = Normal::new(mean, std).unwrap_or_else(|_| Normal::new(0.0, 1.0).expect("unit normal"));
    (0..n).map(|_| dist.sample(rng)).collect()
}

pub(super) struct Owned {
    pub(super) shape: Vec<usize>,
    bytes: Vec<u8>,
}

pub(super) fn owned(shape: &[usize], data: &[f32]) -> Owned {
    Owned { shape: shape.to_vec(), bytes: data.iter().flat_map(|v| v.to_le_bytes()).collect() }
}

pub(super) fn write_safetensors(path: &Path, tensors: &BTreeMap<String, Owned>) -> Result<()> {
    let views = tensors
        .iter()
        .map(|(k, o)| Ok((k.clone(), TensorView::new(Dtype::F32, o.shape.clone(), &o.bytes)?)))
        .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| color_eyre::eyre::eyre!("building {}: {e:?}", path.display()))?;
    safetensors::serialize_to_file(views, &None, path).map_err(|e| color_eyre::eyre::eyre!("writing {}: {e:?}", path.display()))
}

pub(super) fn write_json(path: &Path, v: &serde_json::Value) -> Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(v)?).wrap_err_with(|| format!("cannot write {}", path.display()))
}

/// Writes the synthetic model to DIR/model and loads it whole, with the bundled tokenizer:
/// what the SAEs are calibrated on.
fn model_in(out: &Path, cfg: &Gpt2Config, rng: &mut ChaCha8Rng, progress: &ProgressSink) -> Result<(Gpt2, Tokenizer)> {
    let model_dir = out.join("model");
    std::fs::create_dir_all(&model_dir).wrap_err_with(|| format!("cannot create {}", model_dir.display()))?;
    progress.stage(format!("writing synthetic model to {}", model_dir.display()));
    write_model(&model_dir, cfg, rng)?;
    let model = Gpt2::load(cfg.clone(), Checkpoint::open(&model_dir.join("model.safetensors"))?, cfg.n_layer, Device::Cpu, tch::Kind::Float)?;
    Ok((model, Tokenizer::gpt2()?))
}

/// Writes DIR/model (HF layout) and DIR/saes (SAELens layout, every hook 0..=n_layer).
pub fn write(out: &Path, size: Size, seed: u64, progress: &ProgressSink) -> Result<()> {
    let Shape { cfg, d_sae, l0 } = shape(size)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Calibrate the SAEs on the model's own residual stream over realistic text.
    let _guard = tch::no_grad_guard();
    let (model, tok) = model_in(out, &cfg, &mut rng, progress)?;
    let samples = Samples::bundled()?;
    let mut seqs: Vec<Vec<u32>> = samples.texts().map(|(_, _, t)| tok.encode_with_bos(t)).collect::<Result<_>>()?;
    for _ in 0..8 {
        let mut s = vec![tok.bos];
        s.extend((0..64).map(|_| rng.gen_range(0..cfg.vocab_size as u32)));
        seqs.push(s);
    }
    let layers: Vec<usize> = (0..=cfg.n_layer).collect();
    let resid = calibration_residuals(&model, &seqs, &layers)?;
    // Each calibration row's (sequence, position, token), for anchors.json.
    let rows: Vec<Anchor> = seqs
        .iter()
        .enumerate()
        .flat_map(|(s, ids)| ids.iter().enumerate().map(move |(p, &id)| (s, p, id)))
        .map(|(sequence, position, token_id)| Anchor { sequence, position, token_id, token: tok.token_strings(&[token_id]).concat() })
        .collect();
    let n_texts = samples.texts().count();
    for (layer, x) in layers.iter().zip(resid) {
        let hook = hook_name(*layer, cfg.n_layer);
        progress.stage(format!("writing synthetic SAE {hook}"));
        let dir = out.join("saes").join(&hook);
        std::fs::create_dir_all(&dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
        let anchors = write_sae(&dir, &hook, &x, d_sae, l0, "gpt2-small", &mut rng)?;
        let features: Vec<&Anchor> = anchors.iter().map(|&r| &rows[r as usize]).collect();
        write_json(
            &dir.join(ANCHORS),
            &serde_json::json!({
                "about": "per feature, the calibration token its decoder row leans toward: sequences 0..sample_texts are the \
                          bundled samples' texts in order (BOS at position 0), the rest random tokens",
                "sample_texts": n_texts,
                "features": features,
            }),
        )?;
    }
    Ok(())
}

/// The widest SAE `synth --size tiny` writes for a release: names say 24k or 32k, tests
/// want seconds.
const TINY_MAX_WIDTH: usize = 4096;

/// Writes DIR/model (as `write` does) and DIR/saes holding the SAEs of SAELens releases in
/// their own repo layouts and formats (DIR/saes/ORG/NAME each when there are several), each calibrated on the synthetic model at its
/// hook under its processing: SAELens folders (standard; TopK k=32 on inputs normalised per
/// token, uncentred, for OpenAI's v5 releases), the kk release's `.pt` state dicts with
/// their `{stem}_cfg.json`, and for an entry with a `norm_scaling_factor` an SAE trained on
/// inputs scaled by it. What the loopback stand-in hub serves in tests (tests/release.rs).
pub fn write_release(out: &Path, size: Size, seed: u64, selection: &crate::sae::selection::Selection, progress: &ProgressSink) -> Result<()> {
    let Shape { cfg, d_sae, l0 } = shape(size)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let _guard = tch::no_grad_guard();
    let (model, tok) = model_in(out, &cfg, &mut rng, progress)?;
    let seqs: Vec<Vec<u32>> = Samples::bundled()?.texts().map(|(_, _, t)| tok.encode_with_bos(t)).collect::<Result<_>>()?;
    let widths = Widths { default: d_sae, max: if size == Size::Tiny { Some(TINY_MAX_WIDTH) } else { None } };
    write_named(&model, &seqs, selection, widths, l0, "gpt2-small", &mut rng, progress)
}

/// How wide `write_named` builds an SAE: the registry's width, else `default`; at most `max`.
pub(super) struct Widths {
    pub default: usize,
    pub max: Option<usize>,
}

/// The SAEs of `selection` (SAELens release entries) in their repo layouts and formats, each
/// calibrated on `model` over `seqs` at its hook under its processing (`write_release`'s doc).
/// `model_name`: the model as the SAEs' cfgs name it.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_named(
    model: &dyn crate::model::Family,
    seqs: &[Vec<u32>],
    selection: &crate::sae::selection::Selection,
    widths: Widths,
    l0: f64,
    model_name: &str,
    rng: &mut ChaCha8Rng,
    progress: &ProgressSink,
) -> Result<()> {
    use crate::sae::selection::Wanted;
    for wanted in &selection.wanted {
        let Wanted::Named(n) = wanted else { color_eyre::eyre::bail!("synth --sae-release takes a SAELens release name (`saescope saes` lists them)") };
        // Where the selection puts it: OUT/saes, or OUT/saes/ORG/NAME for several releases.
        let crate::source::Source::Dir(base) = &n.source else { color_eyre::eyre::bail!("internal: synth writes to a folder") };
        let v5 = n.path.starts_with("v5_");
        let processing = n.processing.unwrap_or(if v5 { crate::model::hooks::Processing::NONE } else { crate::model::hooks::Processing::DEFAULT });
        let mut x = calibration_at(model, seqs, n.hook, processing)?;
        if let Some(s) = n.norm_scaling_factor {
            x = x.f_mul_scalar(s)?;
        }
        if v5 {
            // OpenAI's SAEs read inputs layer-normalised per token (SAELens `layer_norm`).
            let c = &x - x.mean_dim(-1, true, Kind::Float);
            x = &c / (c.std_dim(-1, true, true) + 1e-5);
        }
        let width = n.width.unwrap_or(widths.default);
        let width = widths.max.map_or(width, |m| width.min(m));
        progress.stage(format!("writing synthetic SAE {} ({} features)", n.path, width));
        let sae = build_sae(&x, width, l0, rng)?;
        let hook = n.hook.to_string();
        let kwargs = serde_json::json!({"center_writing_weights": processing.center_writing_weights, "fold_value_biases": processing.fold_value_biases});
        if n.layout == crate::source::SaeLayout::SinglePt {
            let [cfg_name, weights] = crate::source::sae_names(&n.path, crate::source::SaeLayout::SinglePt);
            std::fs::create_dir_all(base).wrap_err_with(|| format!("cannot create {}", base.display()))?;
            crate::weights::torch_pt::write(&base.join(&weights), &sae.tensors)?;
            write_json(
                &base.join(cfg_name),
                &serde_json::json!({"act_size": sae.d, "dict_size": sae.d_sae, "act_name": hook, "layer": n.hook.layer, "site": "z", "l1_coeff": 1.0, "seed": 0}),
            )?;
        } else {
            let (arch, normalize) = match (v5, n.norm_scaling_factor) {
                (true, _) => ("topk", "layer_norm"),
                // What SAELens folds the registry's factor into (its from_pretrained).
                (false, Some(_)) => ("standard", "expected_average_only_in"),
                (false, None) => ("standard", "none"),
            };
            let mut cfg = serde_json::json!({
                    "architecture": arch, "d_in": sae.d, "d_sae": sae.d_sae, "dtype": "float32", "device": "cpu",
                    "apply_b_dec_to_input": true, "normalize_activations": normalize,
                    "hook_name": hook, "hook_layer": n.hook.layer, "model_name": model_name, "model_from_pretrained_kwargs": kwargs,
                    "metadata": {"model_name": model_name, "hook_name": hook, "prepend_bos": true, "context_size": 64,
                                  "dataset_path": "synthetic", "neuronpedia_id": n.neuronpedia},
            });
            if v5 {
                cfg["k"] = serde_json::json!(32);
            }
            write_folder(&base.join(&n.path), &sae, &cfg)?;
        }
    }
    Ok(())
}

/// Every real token's activation (BOS included) at `hook` under `processing`, stacked [tokens, d].
pub(super) fn calibration_at(
    model: &dyn crate::model::Family,
    seqs: &[Vec<u32>],
    hook: crate::model::hooks::HookPoint,
    processing: crate::model::hooks::Processing,
) -> Result<Tensor> {
    let mut rows = Vec::with_capacity(seqs.len());
    for s in seqs {
        let ids: Vec<i64> = s.iter().map(|&x| x as i64).collect();
        let t = ids.len() as i64;
        let mut x = model.hooks_each(&Tensor::from_slice(&ids).view([1, t]), &Tensor::ones([1, t], (Kind::Bool, Device::Cpu)), &[(hook, processing)])?;
        rows.push(x.remove(0).squeeze_dim(0));
    }
    Ok(Tensor::cat(&rows, 0))
}

/// Beside each synthetic SAE: which calibration token each feature was built to fire on
/// (tests/dashboard.rs checks the index finds them).
pub const ANCHORS: &str = "anchors.json";

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Anchor {
    pub sequence: usize,
    pub position: usize,
    pub token_id: u32,
    pub token: String,
}

fn write_model(dir: &Path, cfg: &Gpt2Config, rng: &mut ChaCha8Rng) -> Result<()> {
    let d = cfg.n_embd;
    let (sd, s4) = ((1.0 / (d as f64).sqrt()) as f32, (1.0 / (4.0 * d as f64).sqrt()) as f32);
    let mut t = BTreeMap::new();
    let mut put = |name: String, shape: &[usize], mean: f32, std: f32, rng: &mut ChaCha8Rng| {
        let n = shape.iter().product();
        t.insert(name, owned(shape, &normal(rng, n, mean, std)));
    };
    put("wte.weight".into(), &[cfg.vocab_size, d], 0.0, 0.1, rng);
    put("wpe.weight".into(), &[cfg.n_positions, d], 0.0, 0.05, rng);
    for i in 0..cfg.n_layer {
        let p = format!("h.{i}");
        for ln in ["ln_1", "ln_2"] {
            put(format!("{p}.{ln}.weight"), &[d], 1.0, 0.1, rng);
            put(format!("{p}.{ln}.bias"), &[d], 0.0, 0.05, rng);
        }
        put(format!("{p}.attn.c_attn.weight"), &[d, 3 * d], 0.0, sd, rng);
        put(format!("{p}.attn.c_attn.bias"), &[3 * d], 0.0, 0.02, rng);
        put(format!("{p}.attn.c_proj.weight"), &[d, d], 0.0, 0.5 * sd, rng);
        put(format!("{p}.attn.c_proj.bias"), &[d], 0.0, 0.02, rng);
        put(format!("{p}.mlp.c_fc.weight"), &[d, 4 * d], 0.0, sd, rng);
        put(format!("{p}.mlp.c_fc.bias"), &[4 * d], 0.0, 0.02, rng);
        put(format!("{p}.mlp.c_proj.weight"), &[4 * d, d], 0.0, s4, rng);
        put(format!("{p}.mlp.c_proj.bias"), &[d], 0.0, 0.02, rng);
    }
    put("ln_f.weight".into(), &[d], 1.0, 0.1, rng);
    put("ln_f.bias".into(), &[d], 0.0, 0.05, rng);
    write_safetensors(&dir.join("model.safetensors"), &t)?;
    write_json(
        &dir.join("config.json"),
        &serde_json::json!({
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
            "n_embd": d, "n_layer": cfg.n_layer, "n_head": cfg.n_head,
            "n_positions": cfg.n_positions, "n_ctx": cfg.n_positions, "vocab_size": cfg.vocab_size,
            "layer_norm_epsilon": cfg.layer_norm_epsilon, "activation_function": "gelu_new",
            "bos_token_id": 50256, "eos_token_id": 50256, "tie_word_embeddings": true,
            "attn_pdrop": 0.0, "embd_pdrop": 0.0, "resid_pdrop": 0.0,
        }),
    )?;
    std::fs::write(dir.join("tokenizer.json"), crate::model::tokenizer::bundled_json()).wrap_err("cannot write tokenizer.json")
}

/// Residuals of every real token (BOS included) at each layer, stacked [tokens, d].
fn calibration_residuals(model: &Gpt2, seqs: &[Vec<u32>], layers: &[usize]) -> Result<Vec<Tensor>> {
    let mut per_layer: Vec<Vec<Tensor>> = layers.iter().map(|_| Vec::new()).collect();
    for s in seqs {
        let ids: Vec<i64> = s.iter().map(|&x| x as i64).collect();
        let t = ids.len() as i64;
        let r = model.residuals(&Tensor::from_slice(&ids).view([1, t]), &Tensor::ones([1, t], (Kind::Bool, Device::Cpu)), layers)?;
        for (acc, x) in per_layer.iter_mut().zip(r) {
            acc.push(x.squeeze_dim(0));
        }
    }
    Ok(per_layer.iter().map(|v| Tensor::cat(v, 0)).collect())
}

/// A synthetic SAE's tensors, row-major f32: W_enc [d, d_sae], b_enc, W_dec [d_sae, d], b_dec.
pub(super) struct Built {
    d: usize,
    d_sae: usize,
    pub(super) tensors: Vec<(&'static str, Vec<usize>, Vec<f32>)>,
    /// Per feature, the calibration row its decoder leans toward.
    anchors: Vec<i64>,
}

/// Builds one SAE calibrated on `x` [rows, d] (see the module's doc).
pub(super) fn build_sae(x: &Tensor, d_sae: usize, l0: f64, rng: &mut ChaCha8Rng) -> Result<Built> {
    let (n, d) = x.size2()?;
    let b_dec = x.mean_dim(0, false, Kind::Float) + Tensor::from_slice(&normal(rng, d as usize, 0.0, 0.01));
    let xc = x - &b_dec;
    // Decoder directions lean towards residuals of real calibration tokens (as trained
    // "token features" do), so firing tokens clear the threshold by a wide margin instead
    // of grazing a Gaussian tail, which would need huge, rounding-amplifying encoder scales.
    let anchors: Vec<i64> = (0..d_sae).map(|_| rng.gen_range(0..n)).collect();
    let noise: Vec<f32> = (0..d_sae * d as usize).map(|_| StandardNormal.sample(rng)).collect();
    let unit = |t: &Tensor| t / t.norm_scalaropt_dim(2, [1i64].as_slice(), true).clamp_min(1e-6);
    let toward = unit(&xc.index_select(0, &Tensor::from_slice(&anchors)));
    let w_dec = unit(&(toward * 0.8 + unit(&Tensor::from_slice(&noise).view([d_sae as i64, d])) * 0.6));
    let proj = xc.matmul(&w_dec.tr()); // [n, d_sae]
    let sorted = proj.sort(0, false).0;
    // Per-feature firing rates spread log-uniformly around l0/d_sae; per-feature scales so
    // the largest calibration activation lands between 2 and 40.
    let base = l0 / d_sae as f64;
    let rates: Vec<f64> = (0..d_sae).map(|_| (base * 10f64.powf(rng.gen_range(-0.7..0.7))).min(0.5)).collect();
    let peaks: Vec<f64> = (0..d_sae).map(|_| 2.0 * 20f64.powf(rng.gen::<f64>())).collect();
    let row = |r: f64| (((1.0 - r) * n as f64).floor() as i64).clamp(0, n - 1);
    let q_idx = Tensor::from_slice(&rates.iter().map(|&r| row(r)).collect::<Vec<i64>>()).view([1, -1]);
    let q = sorted.gather(0, &q_idx, false).squeeze_dim(0);
    let top = sorted.get(n - 1);
    // Never scale by more than peak / (half a standard deviation of the projection).
    let sigma = proj.std_dim(0, true, false);
    let span = (&top - &q).maximum(&(sigma * 0.5)).clamp_min(1e-6);
    let scale = Tensor::from_slice(&peaks.iter().map(|&p| p as f32).collect::<Vec<_>>()) / span;
    let w_enc = (w_dec.tr() * scale.view([1, -1])).contiguous();
    let b_enc = -(&q * &scale);
    let to_vec = |t: &Tensor| -> Result<Vec<f32>> { Ok(Vec::<f32>::try_from(t.contiguous().view([-1]))?) };
    let d = d as usize;
    let tensors = vec![
        ("W_enc", vec![d, d_sae], to_vec(&w_enc)?),
        ("b_enc", vec![d_sae], to_vec(&b_enc)?),
        ("W_dec", vec![d_sae, d], to_vec(&w_dec)?),
        ("b_dec", vec![d], to_vec(&b_dec)?),
    ];
    Ok(Built { d, d_sae, tensors, anchors })
}

/// Writes `sae` as a SAELens folder: `sae_weights.safetensors` and `cfg`.
fn write_folder(dir: &Path, sae: &Built, cfg: &serde_json::Value) -> Result<()> {
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    let t: BTreeMap<String, Owned> = sae.tensors.iter().map(|(n, shape, v)| (n.to_string(), owned(shape, v))).collect();
    write_safetensors(&dir.join("sae_weights.safetensors"), &t)?;
    write_json(&dir.join("cfg.json"), cfg)
}

/// Writes one SAE; returns each feature's anchor (a row of `x`).
/// `model_name`: the model as SAELens's cfg names it.
pub(super) fn write_sae(dir: &Path, hook: &str, x: &Tensor, d_sae: usize, l0: f64, model_name: &str, rng: &mut ChaCha8Rng) -> Result<Vec<i64>> {
    let sae = build_sae(x, d_sae, l0, rng)?;
    let layer: usize = hook.split('.').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    write_folder(
        dir,
        &sae,
        &serde_json::json!({
            "architecture": "standard", "d_in": sae.d, "d_sae": sae.d_sae, "dtype": "float32", "device": "cpu",
            "apply_b_dec_to_input": true, "normalize_activations": "none",
            "hook_name": hook, "hook_layer": layer, "model_name": model_name,
            "metadata": {"model_name": model_name, "hook_name": hook, "hook_head_index": null, "prepend_bos": true,
                          "context_size": 128, "dataset_path": "synthetic", "neuronpedia_id": null},
        }),
    )?;
    Ok(sae.anchors)
}
