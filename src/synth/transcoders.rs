//! Synthetic transcoders at every layer of a model, in SAELens's folder layout or in Gemma
//! Scope 2's, calibrated on the model's own MLPs: the encoder as `build_sae` makes an SAE's
//! (features leaning toward real inputs, JumpReLU), the decoder (and the skip term, where
//! asked) fitted by ridge regression to what the MLP writes. A fitted decoder keeps the
//! error nodes of a graph small, as a trained transcoder's are, so the graph has real
//! paths through features to test.

use super::gpt2::{build_sae, owned, write_json, write_safetensors, Owned};
use crate::model::hooks::{HookPoint, Processing, Site};
use crate::model::tokenizer::Tokenizer;
use crate::model::Family;
use crate::runtime::progress::ProgressSink;
use color_eyre::eyre::{eyre, Result, WrapErr};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// How the files are laid out: what a release of that kind ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `blocks.L.hook_mlp_in/` with `cfg.json` (`jumprelu_transcoder` or
    /// `jumprelu_skip_transcoder`) and `sae_weights.safetensors` (`W_skip` [d_out, d_in]).
    SaeLens,
    /// `transcoder_all/layer_L_width_W_l0_small[_affine]/` with `config.json` and
    /// `params.safetensors` (`affine_skip_connection` [d_in, d_out]).
    GemmaScope,
    /// The first Gemma Scope's (Gemma 2): `layer_L/width_W/average_l0_N/params.npz`, reading
    /// ln2.hook_normalized (the MLP's input before its norm's weight).
    GemmaScopeNpz,
    /// circuit-tracer's transcoder set, as the Qwen 3 transcoders ship: `config.yaml` and
    /// `layer_L.safetensors` (`W_enc` [width, d_in], `W_dec`, `b_enc`, `b_dec`,
    /// `activation_function.threshold`, `W_skip` [d_out, d_in]).
    CircuitTracer,
}

/// JumpReLU threshold of every synthetic transcoder feature.
const THRESHOLD: f32 = 0.3;
/// Features firing per token the calibration aims at: a few for tests' tiny widths, and
/// about Gemma Scope 2's "l0_small" (~20) at real widths.
fn l0(width: usize) -> f64 {
    if width <= 4096 {
        12.0
    } else {
        20.0
    }
}

/// What `write` makes: features per transcoder (per layer, for a cross-layer one), whether
/// each has a skip term, whether it is one cross-layer transcoder, the layout.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub width: usize,
    pub skip: bool,
    /// One cross-layer transcoder (circuit-tracer's layout for GPT-2, Gemma Scope 2's
    /// `params_layer_L` for Gemma) instead of a transcoder per layer.
    pub cross: bool,
    pub layout: Layout,
    pub seed: u64,
}

/// Writes a transcoder for every layer of `model` under `out`; returns the folders written.
pub fn write(model: &dyn Family, tok: &Tokenizer, out: &Path, spec: Spec, progress: &ProgressSink) -> Result<Vec<String>> {
    let Spec { width, skip, cross, layout, seed } = spec;
    let _guard = tch::no_grad_guard();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let samples = crate::corpus::samples::Samples::bundled()?;
    let seqs: Vec<Vec<u32>> = samples.texts().map(|(_, _, t)| tok.encode_with_bos(t)).collect::<Result<_>>()?;
    let n_layers = model.n_layers();
    let reads = if layout == Layout::GemmaScopeNpz { Site::Ln2Normalized } else { Site::MlpIn };
    let points: Vec<(HookPoint, Processing)> =
        (0..n_layers).flat_map(|l| [HookPoint::new(l, reads), HookPoint::new(l, Site::MlpOut)]).map(|p| (p, Processing::NONE)).collect();
    // Per hook point, every real token's value (BOS included), stacked [tokens, d].
    let mut rows: Vec<Vec<Tensor>> = (0..points.len()).map(|_| Vec::new()).collect();
    for s in &seqs {
        let t = s.len() as i64;
        let ids = Tensor::from_slice(&s.iter().map(|&x| i64::from(x)).collect::<Vec<_>>()).view([1, t]);
        let values = model.hooks_each(&ids, &Tensor::ones([1, t], (Kind::Bool, Device::Cpu)), &points)?;
        for (slot, v) in rows.iter_mut().zip(values) {
            slot.push(v.squeeze_dim(0).to_device(Device::Cpu).to_kind(Kind::Float));
        }
    }
    if cross {
        let xs: Vec<Tensor> = (0..n_layers).map(|l| Tensor::cat(&rows[2 * l], 0)).collect();
        let ys: Vec<Tensor> = (0..n_layers).map(|l| Tensor::cat(&rows[2 * l + 1], 0)).collect();
        progress.stage("writing a synthetic cross-layer transcoder");
        std::fs::create_dir_all(out).wrap_err_with(|| format!("cannot create {}", out.display()))?;
        let clt = fit_cross(&xs, &ys, width, &mut rng)?;
        return match layout {
            Layout::SaeLens | Layout::CircuitTracer | Layout::GemmaScopeNpz => write_cross_circuit_tracer(out, &clt),
            Layout::GemmaScope => write_cross_scope(out, &clt, width),
        };
    }
    let mut folders = Vec::new();
    if layout == Layout::CircuitTracer {
        std::fs::create_dir_all(out).wrap_err_with(|| format!("cannot create {}", out.display()))?;
        let yaml = "model_kind: transcoder_set\nfeature_input_hook: mlp.hook_in\nfeature_output_hook: mlp.hook_out\nscan: synthetic-transcoders\n";
        std::fs::write(out.join("config.yaml"), yaml).wrap_err_with(|| format!("cannot write {}", out.join("config.yaml").display()))?;
    }
    for layer in 0..n_layers {
        let x = Tensor::cat(&rows[2 * layer], 0);
        let y = Tensor::cat(&rows[2 * layer + 1], 0);
        let folder = match layout {
            Layout::SaeLens => HookPoint::new(layer, Site::MlpIn).to_string(),
            Layout::CircuitTracer => format!("layer_{layer}.safetensors"),
            Layout::GemmaScopeNpz => format!("layer_{layer}/width_{}/average_l0_{}", crate::sae::key::width_label(width), l0(width).round()),
            Layout::GemmaScope => {
                format!("transcoder_all/layer_{layer}_width_{}_l0_small{}", crate::sae::key::width_label(width), if skip { "_affine" } else { "" })
            }
        };
        progress.stage(format!("writing synthetic transcoder {folder}"));
        let dir = out.join(&folder);
        let tc = fit(&x, &y, width, skip, &mut rng)?;
        if layout == Layout::CircuitTracer {
            write_circuit_tracer(&dir, &tc)?;
            folders.push(folder);
            continue;
        }
        std::fs::create_dir_all(&dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
        match layout {
            Layout::SaeLens => write_saelens(&dir, &tc, layer)?,
            Layout::GemmaScope => write_scope(&dir, &tc, layer, width)?,
            Layout::GemmaScopeNpz => write_npz(&dir, &tc)?,
            Layout::CircuitTracer => {}
        }
        folders.push(folder);
    }
    Ok(folders)
}

/// One transcoder in Gemma Scope 2's folder `dir`, fitted to layer `layer`'s MLP on the
/// calibration inputs `x` (the MLP's input) and outputs `y`: what `synth --family gemma3`
/// writes for a transcoder a release names (`transcoder/layer_9_width_16k_l0_small_affine`;
/// `_affine`: with the skip term).
pub fn write_scope_one(dir: &Path, x: &Tensor, y: &Tensor, layer: usize, width: usize, skip: bool, rng: &mut ChaCha8Rng) -> Result<()> {
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    let tc = fit(x, y, width, skip, rng)?;
    write_scope(dir, &tc, layer, width)
}

/// One fitted transcoder's tensors, in SAELens's orientation except `skip` [d_in, d_out].
struct Fitted {
    w_enc: Tensor,
    b_enc: Tensor,
    threshold: Tensor,
    w_dec: Tensor,
    b_dec: Tensor,
    skip: Option<Tensor>,
}

/// The encoder from `build_sae` on the inputs `x` (its `b_dec` folded into `b_enc`: a
/// transcoder subtracts nothing from its input), then `[acts, 1, x] @ [W_dec; b_dec;
/// W_skip] ≈ y` by ridge regression in its dual form, which solves a tokens x tokens
/// system however wide the transcoder is.
fn fit(x: &Tensor, y: &Tensor, width: usize, skip: bool, rng: &mut ChaCha8Rng) -> Result<Fitted> {
    let (w_enc, b_enc, threshold, acts) = encoder(x, width, rng)?;
    let n = x.size()[0];
    let mut parts = vec![acts, Tensor::ones([n, 1], (Kind::Float, Device::Cpu))];
    if skip {
        parts.push(x.shallow_clone());
    }
    let a = Tensor::cat(&parts, 1).to_kind(Kind::Double);
    let gram = a.matmul(&a.tr());
    let ridge = gram.trace().double_value(&[]) / n as f64 * 1e-3 + 1e-9;
    let dual = Tensor::linalg_solve(&(gram + Tensor::eye(n, (Kind::Double, Device::Cpu)) * ridge), &y.to_kind(Kind::Double), true);
    let w = a.tr().matmul(&dual).to_kind(Kind::Float);
    let w_dec = w.narrow(0, 0, width as i64).contiguous();
    let b_dec = w.get(width as i64);
    let skip = skip.then(|| w.narrow(0, width as i64 + 1, x.size()[1]).contiguous());
    Ok(Fitted { w_enc, b_enc, threshold, w_dec, b_dec, skip })
}

/// The encoder from `build_sae` on the inputs `x`, its `b_dec` folded into `b_enc`, the
/// threshold, and the activations on `x`.
fn encoder(x: &Tensor, width: usize, rng: &mut ChaCha8Rng) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
    let sae = build_sae(x, width, l0(width), rng)?;
    let tensor = |n: &str| -> Result<Tensor> {
        let (_, shape, v) = sae.tensors.iter().find(|(k, ..)| *k == n).ok_or_else(|| eyre!("internal: no {n}"))?;
        Ok(Tensor::from_slice(v).view(shape.iter().map(|&s| s as i64).collect::<Vec<_>>().as_slice()))
    };
    let (w_enc, b_dec_in) = (tensor("W_enc")?, tensor("b_dec")?);
    let b_enc = tensor("b_enc")? - b_dec_in.matmul(&w_enc);
    let threshold = Tensor::full([width as i64], f64::from(THRESHOLD), (Kind::Float, Device::Cpu));
    let pre = x.matmul(&w_enc) + &b_enc;
    let acts = &pre * pre.gt_tensor(&threshold);
    Ok((w_enc, b_enc, threshold, acts))
}

/// A fitted cross-layer transcoder: per layer its encoder (`w_enc` [d, width]), `b_enc`,
/// `threshold` and `b_dec`, and `w_dec[i]` [width, n_layers - i, d], its rows to layers i...
struct Cross {
    w_enc: Vec<Tensor>,
    b_enc: Vec<Tensor>,
    threshold: Tensor,
    b_dec: Vec<Tensor>,
    w_dec: Vec<Tensor>,
}

/// Each layer's encoder as `fit` makes a transcoder's; then each layer j's MLP output fitted
/// by ridge regression (dual form) on the activations of every layer up to j and a bias,
/// so a feature's rows to later layers carry what it predicts there.
fn fit_cross(xs: &[Tensor], ys: &[Tensor], width: usize, rng: &mut ChaCha8Rng) -> Result<Cross> {
    let n_layers = xs.len();
    let (mut w_enc, mut b_enc, mut acts) = (Vec::new(), Vec::new(), Vec::new());
    for x in xs {
        let (w, b, _, a) = encoder(x, width, rng)?;
        acts.push(a.to_kind(Kind::Double));
        w_enc.push(w);
        b_enc.push(b);
    }
    let threshold = Tensor::full([width as i64], f64::from(THRESHOLD), (Kind::Float, Device::Cpu));
    let n = xs[0].size()[0];
    let mut gram = Tensor::ones([n, n], (Kind::Double, Device::Cpu));
    let (mut b_dec, mut blocks): (Vec<Tensor>, Vec<Vec<Tensor>>) = (Vec::new(), (0..n_layers).map(|_| Vec::new()).collect());
    for j in 0..n_layers {
        gram += acts[j].matmul(&acts[j].tr());
        let ridge = gram.trace().double_value(&[]) / n as f64 * 1e-3 + 1e-9;
        let dual = Tensor::linalg_solve(&(&gram + Tensor::eye(n, (Kind::Double, Device::Cpu)) * ridge), &ys[j].to_kind(Kind::Double), true);
        for (i, a) in acts.iter().enumerate().take(j + 1) {
            blocks[i].push(a.tr().matmul(&dual).to_kind(Kind::Float));
        }
        b_dec.push(dual.sum_dim_intlist([0i64].as_slice(), false, Kind::Double).to_kind(Kind::Float));
    }
    let w_dec = blocks.into_iter().map(|b| Tensor::stack(&b, 1).contiguous()).collect();
    Ok(Cross { w_enc, b_enc, threshold, b_dec, w_dec })
}

/// circuit-tracer's layout (`CrossLayerTranscoder.to_safetensors`, read by its `load_clt`):
/// `W_enc_L.safetensors` (`W_enc_L` [width, d], `b_enc_L`, `b_dec_L`, `threshold_L`),
/// `W_dec_L.safetensors` (`W_dec_L` [width, n_layers - L, d]) and `config.yaml`.
fn write_cross_circuit_tracer(dir: &Path, c: &Cross) -> Result<Vec<String>> {
    let mut written = Vec::new();
    for l in 0..c.w_enc.len() {
        let mut enc: BTreeMap<String, Owned> = BTreeMap::new();
        enc.insert(format!("W_enc_{l}"), to_owned(&c.w_enc[l].tr())?);
        enc.insert(format!("b_enc_{l}"), to_owned(&c.b_enc[l])?);
        enc.insert(format!("b_dec_{l}"), to_owned(&c.b_dec[l])?);
        enc.insert(format!("threshold_{l}"), to_owned(&c.threshold)?);
        write_safetensors(&dir.join(format!("W_enc_{l}.safetensors")), &enc)?;
        let dec: BTreeMap<String, Owned> = [(format!("W_dec_{l}"), to_owned(&c.w_dec[l])?)].into();
        write_safetensors(&dir.join(format!("W_dec_{l}.safetensors")), &dec)?;
        written.push(format!("W_enc_{l}.safetensors"));
    }
    let yaml =
        "model_kind: cross_layer_transcoder\nmodel_name: gpt2\nfeature_input_hook: mlp.hook_in\nfeature_output_hook: hook_mlp_out\nscan: synthetic-clt\n";
    std::fs::write(dir.join("config.yaml"), yaml).wrap_err_with(|| format!("cannot write {}", dir.join("config.yaml").display()))?;
    Ok(written)
}

/// Gemma Scope 2's layout, as circuit-tracer's `load_gemma_scope_2_clt` reads it:
/// `params_layer_L.safetensors` with `w_enc` [d, width], `b_enc`, `b_dec`, `threshold` and
/// `w_dec` [width, n_layers, d] (zero for the layers before L).
fn write_cross_scope(dir: &Path, c: &Cross, width: usize) -> Result<Vec<String>> {
    let n_layers = c.w_enc.len();
    let mut written = Vec::new();
    for l in 0..n_layers {
        let d = c.b_dec[l].size()[0];
        let before = Tensor::zeros([width as i64, l as i64, d], (Kind::Float, Device::Cpu));
        let w_dec = Tensor::cat(&[before, c.w_dec[l].shallow_clone()], 1);
        let mut t: BTreeMap<String, Owned> = BTreeMap::new();
        for (name, v) in [("w_enc", &c.w_enc[l]), ("b_enc", &c.b_enc[l]), ("b_dec", &c.b_dec[l]), ("threshold", &c.threshold), ("w_dec", &w_dec)] {
            t.insert(name.into(), to_owned(v)?);
        }
        let name = format!("params_layer_{l}.safetensors");
        write_safetensors(&dir.join(&name), &t)?;
        written.push(name);
    }
    Ok(written)
}

fn to_owned(t: &Tensor) -> Result<Owned> {
    let shape: Vec<usize> = t.size().iter().map(|&s| s as usize).collect();
    Ok(owned(&shape, &Vec::<f32>::try_from(t.contiguous().view([-1]))?))
}

fn write_saelens(dir: &Path, tc: &Fitted, layer: usize) -> Result<()> {
    let mut t: BTreeMap<String, Owned> = BTreeMap::new();
    for (name, v) in [("W_enc", &tc.w_enc), ("b_enc", &tc.b_enc), ("threshold", &tc.threshold), ("W_dec", &tc.w_dec), ("b_dec", &tc.b_dec)] {
        t.insert(name.into(), to_owned(v)?);
    }
    if let Some(s) = &tc.skip {
        t.insert("W_skip".into(), to_owned(&s.tr())?);
    }
    write_safetensors(&dir.join("sae_weights.safetensors"), &t)?;
    let (d_in, d_sae) = (tc.w_enc.size()[0], tc.w_enc.size()[1]);
    let hook = HookPoint::new(layer, Site::MlpIn).to_string();
    let hook_out = HookPoint::new(layer, Site::MlpOut).to_string();
    write_json(
        &dir.join("cfg.json"),
        &serde_json::json!({
            "architecture": if tc.skip.is_some() { "jumprelu_skip_transcoder" } else { "jumprelu_transcoder" },
            "d_in": d_in, "d_sae": d_sae, "d_out": tc.b_dec.size()[0], "dtype": "float32", "device": "cpu",
            "apply_b_dec_to_input": false, "normalize_activations": "none",
            "hook_name": hook, "hook_name_out": hook_out, "hook_layer": layer,
            "metadata": {"hook_name": hook, "hook_name_out": hook_out, "prepend_bos": true, "context_size": 128, "dataset_path": "synthetic"},
        }),
    )
}

/// One layer of circuit-tracer's transcoder set at `file` (its `load_transcoder_set` reads
/// it; SAELens's mwhanna_transcoder loader too).
fn write_circuit_tracer(file: &Path, tc: &Fitted) -> Result<()> {
    let mut t: BTreeMap<String, Owned> = BTreeMap::new();
    for (name, v) in
        [("W_enc", &tc.w_enc.tr()), ("b_enc", &tc.b_enc), ("activation_function.threshold", &tc.threshold), ("W_dec", &tc.w_dec), ("b_dec", &tc.b_dec)]
    {
        t.insert(name.into(), to_owned(v)?);
    }
    if let Some(s) = &tc.skip {
        t.insert("W_skip".into(), to_owned(&s.tr())?);
    }
    write_safetensors(file, &t)
}

/// One transcoder as the first Gemma Scope ships it: `params.npz` (SAELens's orientation,
/// uppercase names) in `dir`. No skip term: Gemma Scope's transcoders have none.
fn write_npz(dir: &Path, tc: &Fitted) -> Result<()> {
    if tc.skip.is_some() {
        color_eyre::eyre::bail!("the first Gemma Scope's transcoders have no skip term: write them without one");
    }
    let arrays = [("W_enc", &tc.w_enc), ("b_enc", &tc.b_enc), ("threshold", &tc.threshold), ("W_dec", &tc.w_dec), ("b_dec", &tc.b_dec)]
        .into_iter()
        .map(|(n, t)| Ok((n, t.size().iter().map(|&s| s as usize).collect(), Vec::<f32>::try_from(t.contiguous().view([-1]))?)))
        .collect::<Result<Vec<(&str, Vec<usize>, Vec<f32>)>>>()?;
    crate::weights::npz::write(&dir.join("params.npz"), &arrays)
}

fn write_scope(dir: &Path, tc: &Fitted, layer: usize, width: usize) -> Result<()> {
    let mut t: BTreeMap<String, Owned> = BTreeMap::new();
    for (name, v) in [("w_enc", &tc.w_enc), ("b_enc", &tc.b_enc), ("threshold", &tc.threshold), ("w_dec", &tc.w_dec), ("b_dec", &tc.b_dec)] {
        t.insert(name.into(), to_owned(v)?);
    }
    if let Some(s) = &tc.skip {
        t.insert("affine_skip_connection".into(), to_owned(s)?);
    }
    write_safetensors(&dir.join("params.safetensors"), &t)?;
    write_json(
        &dir.join("config.json"),
        &serde_json::json!({"architecture": "jump_relu", "model_name": "gemma-v3-270m-pt",
                            "hf_hook_point_in": format!("model.layers.{layer}.pre_feedforward_layernorm.output"),
                            "hf_hook_point_out": format!("model.layers.{layer}.post_feedforward_layernorm.output"),
                            "width": width, "l0": l0(width), "affine_connection": tc.skip.is_some(), "type": "transcoder"}),
    )
}
