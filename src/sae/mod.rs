//! SAELens sparse autoencoders: reading `cfg.json` (old jb-format and SAELens 6 keys
//! alike, and the kk attention SAEs' `*_cfg.json`), loading `sae_weights.safetensors` or a
//! `torch.save` checkpoint (`.pt`, read without running code: torch_pt.rs), and encoding.

pub mod cross_layer;
pub mod dictionary_learning;
pub mod gated;
pub mod key;
pub mod llama_scope;
pub mod neuronpedia_id;
pub mod registry;
pub mod selection;
pub mod state_dict;
pub mod temporal;

use crate::model::hooks::{HookPoint, Processing, Site};
use crate::source::SaeFiles;
use crate::weights::arrays::Arrays;
use crate::weights::tensors::SafeFile;
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use serde_json::Value;
use std::path::Path;
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Architecture {
    Standard,
    JumpRelu,
    TopK(usize),
    /// A temporal SAE: codes that depend on the positions before (temporal.rs).
    Temporal,
}

/// Input normalisation applied before `- b_dec`, as SAELens does at run time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Normalize {
    None,
    /// `x * s`: SAELens folds a known "expected_average_only_in" factor this way.
    Scale(f64),
    /// `x * sqrt(d_in) / |x|`.
    ConstantNormRescale,
    /// `(x - mean) / (std + 1e-5)`.
    LayerNorm,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SaeConfig {
    pub d_in: usize,
    pub d_sae: Option<usize>,
    pub architecture: Architecture,
    /// The cfg names a gated SAE, which loads as its JumpReLU (gated.rs) from `b_gate`,
    /// `r_mag` and `b_mag`.
    pub gated: bool,
    pub apply_b_dec_to_input: bool,
    pub normalize: Normalize,
    /// The cfg says `expected_average_only_in`: inputs are scaled by a factor SAELens's
    /// registry may give (`norm_scaling_factor`), folded in only then, as `from_pretrained` does.
    pub scaled_inputs: bool,
    pub hook_name: Option<String>,
    /// The TransformerLens processing the SAE was trained under
    /// (`model_from_pretrained_kwargs`), which decides what its hook holds.
    pub processing: Processing,
    /// A transcoder's output hook (SAELens's `hook_name_out`; Gemma Scope 2's
    /// `hf_hook_point_out`): it reads `hook_name` and writes here. None for an SAE, which
    /// reconstructs what it reads.
    pub hook_name_out: Option<String>,
}

/// circuit-tracer's `config.yaml` beside its transcoder files (its own sets and SAELens's
/// `mwhanna_transcoder` releases): whether it is one cross-layer transcoder, and which MLP
/// input its features read (circuit-tracer names hooks relative to `blocks.L`).
pub struct CircuitTracerConfig {
    pub cross: bool,
    pub reads: Site,
    /// The files of a set that lists them (`transcoders:`, one per layer in order:
    /// `hf://org/repo/path` or a path), as circuit-tracer's `gemma` set does.
    pub listed: Option<Vec<String>>,
}

impl CircuitTracerConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
        let docs = yaml_rust2::YamlLoader::load_from_str(&text).map_err(|e| eyre!("{}: not YAML ({e})", path.display()))?;
        let doc = docs.first().ok_or_else(|| eyre!("{} is empty", path.display()))?;
        let key = |k: &str| doc[k].as_str().map(str::to_string);
        let cross = match key("model_kind").as_deref() {
            Some("transcoder_set") => false,
            Some("cross_layer_transcoder") => true,
            other => bail!("{}: model_kind {other:?} is neither circuit-tracer's transcoder_set nor cross_layer_transcoder", path.display()),
        };
        // mntss's cross-layer transcoders for Gemma 2 read the residual before the MLP's norm
        // (`hook_resid_mid`: SAELens's tests of its mntss_clt_layer_transcoder loader
        // fetch mntss/clt-gemma-2-2b-426k's config.yaml and expect blocks.L.hook_resid_mid).
        let reads = match key("feature_input_hook").as_deref() {
            Some("mlp.hook_in") => Site::MlpIn,
            Some("ln2.hook_normalized") => Site::Ln2Normalized,
            Some("hook_resid_mid") => Site::ResidMid,
            other => {
                bail!("{}: feature_input_hook {other:?} is not an MLP input saescope knows (mlp.hook_in, ln2.hook_normalized, hook_resid_mid)", path.display())
            }
        };
        let listed = match doc["transcoders"].as_vec() {
            Some(list) => Some(
                list.iter()
                    .map(|v| v.as_str().map(str::to_string).ok_or_else(|| eyre!("{}: transcoders lists something that is not a path", path.display())))
                    .collect::<Result<Vec<_>>>()?,
            ),
            None => None,
        };
        match key("feature_output_hook").as_deref() {
            Some("hook_mlp_out" | "mlp.hook_out") => Ok(Self { cross, reads, listed }),
            other => bail!("{}: feature_output_hook {other:?} is not the MLP's output (hook_mlp_out, mlp.hook_out)", path.display()),
        }
    }
}

impl SaeConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read SAE config {}", path.display()))?;
        let v: Value = serde_json::from_str(&text).wrap_err_with(|| format!("{} is not valid JSON", path.display()))?;
        let mut cfg = Self::from_json(&v).wrap_err_with(|| format!("in SAE config {}", path.display()))?;
        // Gemma Scope's configs name no hook: its folder does (`resid_post/layer_12_...`).
        if cfg.hook_name.is_none() {
            let folder = path.parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            cfg.hook_name = crate::model::hooks::HookPoint::from_scope_folder(&folder).map(|h| h.to_string());
        }
        if cfg.hook_name_out.as_deref() == Some("") {
            let read = cfg.hook_name.as_deref().and_then(HookPoint::parse);
            cfg.hook_name_out = Some(read.map(|h| HookPoint::new(h.layer, crate::model::hooks::Site::MlpOut).to_string()).ok_or_else(|| {
                eyre!("{}: a transcoder whose config names neither its input nor its output hook; put it in a folder named as Gemma Scope 2 names them (transcoder/layer_L_...)", path.display())
            })?);
        }
        Ok(cfg)
    }

    pub fn from_json(v: &Value) -> Result<Self> {
        let get = |k: &str| v.get(k).or_else(|| v.get("metadata").and_then(|m| m.get(k))).filter(|x| !x.is_null());
        let uint = |k: &str| get(k).and_then(Value::as_u64).map(|n| n as usize);
        // The kk attention SAEs' cfgs say act_size, dict_size and act_name (SAELens's
        // connor_rob_hook_z loader reads them so).
        // Gemma Scope's own config.json (architecture "jump_relu", no sizes: SAELens's gemma_3
        // loader takes them from the weights, as Sae::load does here).
        let scope = get("architecture").and_then(Value::as_str) == Some("jump_relu");
        let d_in = match uint("d_in").or_else(|| uint("act_size")) {
            Some(d) => d,
            None if scope => 0,
            None => bail!("missing d_in"),
        };
        let d_sae = uint("d_sae").or_else(|| uint("dict_size")).or_else(|| uint("expansion_factor").map(|e| e * d_in));
        let arch = get("architecture").and_then(Value::as_str).unwrap_or("standard");
        // SAELens's transcoder classes (saes/transcoder.py) by their architecture names;
        // a Gemma Scope 2 config says `jump_relu` and names an output hook.
        let transcoder = arch.ends_with("transcoder") || (scope && get("hf_hook_point_out").is_some() && get("hf_hook_point_out") != get("hf_hook_point_in"));
        let architecture = match arch {
            "standard" | "transcoder" | "skip_transcoder" => Architecture::Standard,
            // A gated SAE loads as the JumpReLU it equals (gated.rs).
            "jumprelu" | "jump_relu" | "jumprelu_transcoder" | "jumprelu_skip_transcoder" | "gated" => Architecture::JumpRelu,
            "topk" => {
                let k = uint("k")
                    .or_else(|| get("activation_fn_kwargs").and_then(|a| a.get("k")).and_then(Value::as_u64).map(|n| n as usize))
                    .ok_or_else(|| eyre!("topk SAE without k"))?;
                Architecture::TopK(k)
            }
            "temporal" => Architecture::Temporal,
            other => bail!("architecture {other:?} is not supported (standard, jumprelu, topk, gated and the transcoders are)"),
        };
        let normalize = match get("normalize_activations").and_then(Value::as_str).unwrap_or("none") {
            "none" => Normalize::None,
            "expected_average_only_in" => match get("norm_scaling_factor").and_then(Value::as_f64) {
                Some(s) => Normalize::Scale(s),
                // SAELens skips folding when it knows no factor; so do we.
                None => Normalize::None,
            },
            "constant_norm_rescale" => Normalize::ConstantNormRescale,
            "layer_norm" => Normalize::LayerNorm,
            other => bail!("normalize_activations {other:?} is not supported"),
        };
        if get("rescale_acts_by_decoder_norm").and_then(Value::as_bool) == Some(true) {
            bail!("rescale_acts_by_decoder_norm is not supported (SAELens's TopK option that scales activations by decoder norms)");
        }
        if let Some(dt) = get("dtype").and_then(Value::as_str) {
            let dt = dt.trim_start_matches("torch.");
            if !matches!(dt, "float32" | "float16" | "bfloat16" | "float64" | "float" | "half") {
                bail!("dtype {dt:?} is not a float type");
            }
        }
        let kwargs = get("model_from_pretrained_kwargs");
        let flag = |k: &str| kwargs.and_then(|m| m.get(k)).and_then(Value::as_bool);
        let processing =
            Processing { center_writing_weights: flag("center_writing_weights").unwrap_or(true), fold_value_biases: flag("fold_value_biases").unwrap_or(true) };
        Ok(Self {
            d_in,
            d_sae,
            architecture,
            gated: arch == "gated",
            processing,
            // Gemma Scope subtracts no b_dec from the input (SAELens's gemma_3 loader), and
            // no transcoder can: its b_dec is in the output's space.
            apply_b_dec_to_input: !transcoder && get("apply_b_dec_to_input").and_then(Value::as_bool).unwrap_or(!scope),
            normalize,
            scaled_inputs: get("normalize_activations").and_then(Value::as_str) == Some("expected_average_only_in"),
            hook_name: get("hook_name").or_else(|| get("hook_point")).or_else(|| get("act_name")).and_then(Value::as_str).map(String::from),
            hook_name_out: match get("hook_name_out").and_then(Value::as_str) {
                Some(h) => Some(h.to_string()),
                // Gemma Scope 2's own config names HF modules, not hooks: the MLP's output
                // of the layer it reads (`from_file` fills it once the folder names the layer).
                None if transcoder => Some(String::new()),
                None => None,
            },
        })
    }
}

/// Where an SAE's tensors come from.
enum Weights {
    Safe(std::sync::Arc<SafeFile>),
    /// A `.pt` state dict or an `.npz`, read whole.
    Memory(Arrays),
}

impl Weights {
    /// A `.pt`/`.pth` checkpoint or a safetensors file, by its name.
    fn open(path: &Path) -> Result<Self> {
        Self::open_for(path, true)
    }

    /// `open`, leaving an `.npz`'s decoder in the file when `with_decoder` is false.
    fn open_for(path: &Path, with_decoder: bool) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("pt" | "pth") => Ok(Self::Memory(crate::weights::torch_pt::open(path)?)),
            Some("npz") => Ok(Self::Memory(crate::weights::npz::open_but(path, if with_decoder { &[] } else { &["W_dec"] })?)),
            _ => Ok(Self::Safe(SafeFile::open(path)?)),
        }
    }

    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let name = self.name(name);
        match self {
            Self::Safe(f) => f.tensor(&name, shape),
            Self::Memory(f) => f.tensor(&name, shape),
        }
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let name = self.name(name);
        match self {
            Self::Safe(f) => f.shape(&name),
            Self::Memory(f) => f.shape(&name),
        }
    }

    /// SAELens's tensor name, or Gemma Scope's lowercase one (`w_enc`) where the file has that.
    fn name(&self, name: &str) -> String {
        let has = |n: &str| match self {
            Self::Safe(f) => f.shape(n).is_some(),
            Self::Memory(f) => f.shape(n).is_some(),
        };
        let lower = name.to_lowercase();
        if !has(name) && has(&lower) {
            lower
        } else {
            name.to_string()
        }
    }

    fn path(&self) -> &Path {
        match self {
            Self::Safe(f) => f.path(),
            Self::Memory(f) => f.path(),
        }
    }

    /// SAEs are read as f32 and converted: the pages are copies' sources once the kind or
    /// device differs from the f32 map's.
    fn release_if_copied(&self, device: Device, kind: Kind) {
        if let Self::Safe(f) = self {
            if device != Device::Cpu || kind != Kind::Float {
                f.release_pages();
            }
        }
    }
}

/// Features per block of `Sae::encode_blocks` for `rows` input vectors: about 1 MiB of f32
/// output (measured best between 0.5 and 2 MiB on 2-core EPYC, BENCHMARKS.md), a multiple
/// of 256 features and at least 512, so the matmul keeps its rate.
fn block_width(rows: usize, d_sae: usize) -> usize {
    const BYTES: usize = 1 << 20;
    let n = (BYTES / 4 / rows.max(1)) / 256 * 256;
    n.max(512).min(d_sae)
}

/// d_sae from the cfg when given, else from W_enc itself (old cfgs omit it).
/// The SAE's config: its file's, or for Gemma Scope's `params.npz` (which ships none) what
/// SAELens's gemma_2 loader makes: JumpReLU, nothing subtracted from the input, sizes from
/// the arrays, the hook its release names (`hook`).
fn config_of(files: &SaeFiles, hook: Option<HookPoint>) -> Result<SaeConfig> {
    if llama_scope::is(files) {
        return llama_scope::config(&files.cfg);
    }
    if temporal::is(files) {
        return temporal::config(&files.cfg);
    }
    if dictionary_learning::is(files) {
        return dictionary_learning::config(&files.cfg);
    }
    if files.weights.extension().is_some_and(|e| e == "npz") {
        // Its transcoders (gemma_2_transcoder) read the MLP's input and write its output.
        let transcoder = hook.filter(|h| matches!(h.site, Site::Ln2Normalized | Site::MlpIn));
        return SaeConfig::from_json(&serde_json::json!({
            "architecture": if transcoder.is_some() { "jumprelu_transcoder" } else { "jump_relu" },
            // Sizes from the arrays (Sae::load reads a d_in of 0 so).
            "d_in": 0,
            "hook_name": hook.map(|h| h.to_string()),
            "hook_name_out": transcoder.map(|h| HookPoint::new(h.layer, Site::MlpOut).to_string()),
        }));
    }
    SaeConfig::from_file(&files.cfg)
}

/// SAELens's gated SAE (W_enc, b_gate, r_mag, b_mag, W_dec, b_dec) as its JumpReLU (gated.rs).
fn gated_as_jumprelu(file: &Weights, d_in: usize, d_sae: usize) -> Result<Weights> {
    let get = |n: &str, shape: &[usize]| -> Result<Tensor> { Ok(file.tensor(n, shape)?.to_kind(Kind::Float).copy()) };
    let (w, b, threshold) = gated::as_jumprelu(&get("W_enc", &[d_in, d_sae])?, &get("b_gate", &[d_sae])?, &get("r_mag", &[d_sae])?, &get("b_mag", &[d_sae])?);
    let tensors = [("W_enc", w), ("b_enc", b), ("threshold", threshold), ("W_dec", get("W_dec", &[d_sae, d_in])?), ("b_dec", get("b_dec", &[d_in])?)];
    Ok(Weights::Memory(Arrays::new(file.path(), tensors.into_iter().map(|(n, t)| (n.to_string(), t)).collect())))
}

/// Whether `files` are one layer of circuit-tracer's transcoder set (`config.yaml` beside).
fn is_circuit_tracer(files: &SaeFiles) -> bool {
    files.cfg.file_name().is_some_and(|n| n == "config.yaml")
}

fn width_of(cfg: &SaeConfig, file: &Weights) -> Result<usize> {
    match (cfg.d_sae, file.shape("W_enc").as_deref()) {
        (Some(d), _) => Ok(d),
        (None, Some([_, w])) => Ok(*w),
        _ => bail!("{}: no 2-D tensor W_enc", file.path().display()),
    }
}

/// What a registry entry lays over an SAE's cfg.json (selection::Named).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Overrides {
    pub norm_scaling_factor: Option<f64>,
    /// TopK's k where the release's name gives it and the files do not (Qwen Scope's).
    pub k: Option<usize>,
    pub processing: Option<Processing>,
}

/// A transcoder's tensors as `Sae::transcoder` takes them.
struct Parts {
    w_enc: Tensor,
    b_enc: Tensor,
    b_dec: Tensor,
    threshold: Option<Tensor>,
    w_skip: Option<Tensor>,
}

pub struct Sae {
    pub cfg: SaeConfig,
    pub d_sae: usize,
    /// Width of what the decoder writes: d_in for an SAE, the output hook's for a transcoder.
    pub d_out: usize,
    /// A transcoder's affine skip term [d_in, d_out], applied as `x @ w_skip` (what
    /// SAELens's SkipTranscoder computes, `x @ W_skip.T` of its transposed copy of Gemma
    /// Scope 2's `affine_skip_connection`).
    w_skip: Option<Tensor>,
    w_enc: Tensor,
    b_enc: Tensor,
    b_dec: Tensor,
    threshold: Option<Tensor>,
    /// Read on first use only: the encode never needs it, the feature card does.
    w_dec: std::cell::OnceCell<Tensor>,
    /// Row norms of W_dec, for cosine similarities.
    w_dec_norms: std::cell::OnceCell<Tensor>,
    /// For a cross-layer transcoder's layer, where W_dec is summed from instead of `file`.
    summed_decoder: Option<cross_layer::Decoder>,
    /// A temporal SAE's attention over earlier positions, which its encode runs.
    temporal: Option<temporal::Temporal>,
    device: Device,
    /// The compute dtype (`--dtype`).
    kind: Kind,
    file: Weights,
}

impl Sae {
    /// Loads the SAE and checks it against the model: its d_in must be `d_in`, the width of
    /// what the model holds at `hook` (the residual's, or for z the heads' side by side),
    /// and the cfg's hook, when it names one, must be `hook`.
    /// `overrides` are what the release's registry entry lays over the cfg.
    pub fn load(files: &SaeFiles, d_in: usize, hook: HookPoint, overrides: &Overrides, with_decoder: bool, device: Device, kind: Kind) -> Result<Self> {
        if cross_layer::is(files) {
            return cross_layer::load(files, hook, d_in, with_decoder, device, kind);
        }
        if is_circuit_tracer(files) {
            // One transcoder of circuit-tracer's set (SAELens's mwhanna_transcoder releases).
            let ct = CircuitTracerConfig::from_file(&files.cfg)?;
            if ct.cross {
                bail!("{}: a cross-layer transcoder, which opens whole with --transcoders, not as one SAE", files.cfg.display());
            }
            return Self::load_circuit_tracer(
                &files.weights,
                HookPoint::new(hook.layer, ct.reads),
                HookPoint::new(hook.layer, Site::MlpOut),
                d_in,
                device,
                kind,
            );
        }
        let mut cfg = if state_dict::is(files) { state_dict::config(files, overrides.k)? } else { config_of(files, Some(hook))? };
        if let Some(p) = overrides.processing {
            cfg.processing = p;
        }
        if let (Some(s), true) = (overrides.norm_scaling_factor, cfg.scaled_inputs) {
            cfg.normalize = Normalize::Scale(s);
        }
        if cfg.d_in != d_in && cfg.d_in != 0 {
            bail!("{}: d_in {} does not match the model's width {d_in} at {hook}; is this SAE for another model?", files.cfg.display(), cfg.d_in);
        }
        if let Some(h) = &cfg.hook_name {
            if HookPoint::parse(h) != Some(hook) {
                bail!("{}: this SAE reads {h}, but it was loaded for {hook}", files.cfg.display());
            }
        }
        let file = if llama_scope::is(files) {
            Weights::Memory(llama_scope::arrays(files)?)
        } else if temporal::is(files) {
            Weights::Memory(temporal::arrays(files)?)
        } else if dictionary_learning::is(files) {
            Weights::Memory(dictionary_learning::arrays(files)?)
        } else if state_dict::is(files) {
            Weights::Memory(state_dict::arrays(files)?)
        } else {
            Weights::open_for(&files.weights, with_decoder)?
        };
        let d_sae = width_of(&cfg, &file)?;
        let file = match (file.shape("r_mag").is_some(), cfg.gated) {
            (true, _) => gated_as_jumprelu(&file, cfg.d_in, d_sae)?,
            // Without this the JumpReLU it loads as would ask for a `threshold` it never had.
            (false, true) => bail!(
                "{}: {} says the SAE is gated, but these weights have no r_mag (a gated SAE's b_gate, r_mag and b_mag): they are another SAE's or incomplete; download the SAE again",
                files.weights.display(),
                files.cfg.display()
            ),
            (false, false) => file,
        };
        if cfg.d_in == 0 {
            // Sizes from the weights (Gemma Scope's configs give none).
            cfg.d_in = file.shape("W_enc").and_then(|s| s.first().copied()).ok_or_else(|| eyre!("{}: no 2-D tensor W_enc", file.path().display()))?;
            cfg.d_sae = Some(d_sae);
            if cfg.d_in != d_in {
                bail!("{}: d_in {} does not match the model's width {d_in} at {hook}; is this SAE for another model?", files.weights.display(), cfg.d_in);
            }
        }
        let get = |n: &str, shape: &[usize]| -> Result<Tensor> { Ok(file.tensor(n, shape)?.to_device(device).to_kind(kind)) };
        let threshold = match cfg.architecture {
            Architecture::JumpRelu => Some(get("threshold", &[d_sae])?),
            _ => None,
        };
        // Only a transcoder's decoder is another width (and an SAE's may not be read yet).
        let d_out = match cfg.hook_name_out.as_ref().and_then(|_| file.shape("W_dec")).as_deref() {
            Some([_, d]) => *d,
            _ => cfg.d_in,
        };
        let w_skip = if file.shape("affine_skip_connection").is_some() {
            Some(get("affine_skip_connection", &[cfg.d_in, d_out])?)
        } else if file.shape("W_skip").is_some() {
            Some(get("W_skip", &[d_out, cfg.d_in])?.tr().contiguous())
        } else {
            None
        };
        if let Architecture::TopK(k) = cfg.architecture {
            if k == 0 || k > d_sae {
                bail!("{}: topk k={k} must be within 1..={d_sae}", files.cfg.display());
            }
        }
        let temporal = match (temporal::is(files), cfg.architecture) {
            (true, _) => Some(temporal::Temporal::load(files, device, kind)?),
            // SAELens's own save of one (cfg.json) keeps its attention under names not read here.
            (false, Architecture::Temporal) => bail!(
                "{}: a temporal SAE saved by SAELens is not read yet; open it from canrager/temporalSAEs' folder (conf.yaml, latest_ckpt.safetensors), --sae-release temporal-sae-...",
                files.cfg.display()
            ),
            (false, _) => None,
        };
        Ok(Self {
            temporal,
            w_enc: get("W_enc", &[d_in, d_sae])?,
            b_enc: get("b_enc", &[d_sae])?,
            b_dec: get("b_dec", &[d_out])?,
            d_out,
            w_skip,
            w_dec: Default::default(),
            w_dec_norms: Default::default(),
            summed_decoder: None,
            device,
            kind,
            threshold,
            d_sae,
            cfg,
            file,
        })
        .and_then(|sae| {
            if with_decoder {
                sae.decoder()?;
            }
            sae.file.release_if_copied(device, kind);
            Ok(sae)
        })
    }

    /// A per-layer transcoder in circuit-tracer's own layout (`layer_L.safetensors` of a set
    /// whose `config.yaml` names the hooks): `W_enc` and `W_dec` both [d_tc, d] (its
    /// encoder is applied as `F.linear`, so transposed here), `activation_function.threshold`
    /// where JumpReLU, `W_skip` [d_out, d_in] applied as `x @ W_skip.T`.
    pub fn load_circuit_tracer(weights: &Path, reads: HookPoint, writes: HookPoint, d_in: usize, device: Device, kind: Kind) -> Result<Self> {
        let file = Weights::open(weights)?;
        let (d_sae, d_out) = match file.shape("W_dec").as_deref() {
            Some([s, o]) => (*s, *o),
            _ => bail!("{}: no 2-D tensor W_dec (circuit-tracer's [d_transcoder, d_model])", weights.display()),
        };
        let get = |n: &str, shape: &[usize]| -> Result<Tensor> { Ok(file.tensor(n, shape)?.to_device(device).to_kind(kind)) };
        let threshold = file.shape("activation_function.threshold").map(|_| get("activation_function.threshold", &[d_sae])).transpose()?;
        let w_skip = file.shape("W_skip").map(|_| get("W_skip", &[d_out, d_in]).map(|w| w.tr().contiguous())).transpose()?;
        let parts =
            Parts { w_enc: get("W_enc", &[d_sae, d_in])?.tr().contiguous(), b_enc: get("b_enc", &[d_sae])?, b_dec: get("b_dec", &[d_out])?, threshold, w_skip };
        let sae = Self::transcoder(file, parts, reads, writes, device, kind);
        sae.decoder()?;
        Ok(sae)
    }

    /// Layer `layer`'s encoder of a cross-layer transcoder, as an SAE whose decoder lives
    /// elsewhere (graph/cross.rs): circuit-tracer's `W_enc_{layer}.safetensors` (`W_enc_L`
    /// [d_tc, d], `b_enc_L`, `b_dec_L`, `threshold_L`), or Gemma Scope 2's
    /// `params_layer_{layer}.safetensors` (`w_enc` [d, d_sae], `b_enc`, `b_dec`, `threshold`,
    /// `affine_skip_connection` [d, d] applied as `x @ A`, as circuit-tracer's
    /// `load_gemma_scope_2_clt` reads it).
    pub fn load_cross_layer_encoder(
        weights: &Path,
        layer: usize,
        reads: HookPoint,
        writes: HookPoint,
        d_in: usize,
        device: Device,
        kind: Kind,
    ) -> Result<Self> {
        let file = Weights::open(weights)?;
        let get = |n: &str, shape: &[usize]| -> Result<Tensor> { Ok(file.tensor(n, shape)?.to_device(device).to_kind(kind)) };
        let ct = format!("W_enc_{layer}");
        let parts = if let Some([d_sae, d]) = file.shape(&ct).as_deref() {
            let (d_sae, d) = (*d_sae, *d);
            if d != d_in {
                bail!("{}: {ct} reads width {d}, the model's is {d_in}", weights.display());
            }
            let threshold = file.shape(&format!("threshold_{layer}")).map(|_| get(&format!("threshold_{layer}"), &[d_sae])).transpose()?;
            Parts {
                w_enc: get(&ct, &[d_sae, d])?.tr().contiguous(),
                b_enc: get(&format!("b_enc_{layer}"), &[d_sae])?,
                b_dec: get(&format!("b_dec_{layer}"), &[d])?,
                threshold,
                w_skip: None,
            }
        } else if let Some([d, d_sae]) = file.shape("w_enc").as_deref() {
            let (d, d_sae) = (*d, *d_sae);
            if d != d_in {
                bail!("{}: w_enc reads width {d}, the model's is {d_in}", weights.display());
            }
            let w_skip = file.shape("affine_skip_connection").map(|_| get("affine_skip_connection", &[d, d])).transpose()?;
            Parts {
                w_enc: get("w_enc", &[d, d_sae])?,
                b_enc: get("b_enc", &[d_sae])?,
                b_dec: get("b_dec", &[d])?,
                threshold: Some(get("threshold", &[d_sae])?),
                w_skip,
            }
        } else {
            bail!("{}: neither circuit-tracer's {ct} nor Gemma Scope 2's w_enc: not a cross-layer transcoder's layer {layer}", weights.display());
        };
        Ok(Self::transcoder(file, parts, reads, writes, device, kind))
    }

    /// This SAE with its decoder summed from a cross-layer transcoder's, on first use.
    pub(crate) fn with_summed_decoder(mut self, d: cross_layer::Decoder) -> Self {
        self.summed_decoder = Some(d);
        self
    }

    /// A transcoder from its tensors (`w_enc` [d_in, d_sae], `w_skip` [d_in, d_out]).
    fn transcoder(file: Weights, p: Parts, reads: HookPoint, writes: HookPoint, device: Device, kind: Kind) -> Self {
        let (d_in, d_sae) = (p.w_enc.size()[0] as usize, p.w_enc.size()[1] as usize);
        let d_out = p.b_dec.size()[0] as usize;
        let cfg = SaeConfig {
            d_in,
            d_sae: Some(d_sae),
            architecture: if p.threshold.is_some() { Architecture::JumpRelu } else { Architecture::Standard },
            gated: false,
            apply_b_dec_to_input: false,
            normalize: Normalize::None,
            scaled_inputs: false,
            hook_name: Some(reads.to_string()),
            processing: Processing::NONE,
            hook_name_out: Some(writes.to_string()),
        };
        Self {
            temporal: None,
            w_enc: p.w_enc,
            b_enc: p.b_enc,
            b_dec: p.b_dec,
            d_out,
            w_skip: p.w_skip,
            w_dec: Default::default(),
            w_dec_norms: Default::default(),
            summed_decoder: None,
            device,
            kind,
            threshold: p.threshold,
            d_sae,
            cfg,
            file,
        }
    }

    /// The SAE's feature count without loading it (reads cfg.json and the file header).
    pub fn width(files: &SaeFiles) -> Result<usize> {
        if cross_layer::is(files) {
            return cross_layer::width(files);
        }
        if llama_scope::is(files) || dictionary_learning::is(files) || temporal::is(files) {
            return config_of(files, None)?.d_sae.ok_or_else(|| eyre!("{}: no d_sae", files.cfg.display()));
        }
        if state_dict::is(files) {
            return state_dict::width(files);
        }
        let file = Weights::open(&files.weights)?;
        if is_circuit_tracer(files) {
            // circuit-tracer's W_dec is [d_transcoder, d_model].
            return file.shape("W_dec").and_then(|s| s.first().copied()).ok_or_else(|| eyre!("{}: no 2-D tensor W_dec", files.weights.display()));
        }
        width_of(&config_of(files, None)?, &file)
    }

    /// Bytes the SAE's tensors take in f32 once loaded (the decoder only `with_decoder`): the
    /// memory planner's figure, from the file's header.
    pub fn bytes(files: &SaeFiles, with_decoder: bool) -> Result<u64> {
        if cross_layer::is(files) {
            return cross_layer::bytes(files, with_decoder);
        }
        if llama_scope::is(files) {
            return llama_scope::bytes(files, with_decoder);
        }
        if temporal::is(files) {
            return temporal::bytes(files);
        }
        if dictionary_learning::is(files) {
            return dictionary_learning::bytes(files, with_decoder);
        }
        if state_dict::is(files) {
            return state_dict::bytes(files, with_decoder);
        }
        let file = Weights::open(&files.weights)?;
        let names: &[&str] = if with_decoder {
            &["W_enc", "b_enc", "b_dec", "threshold", "W_dec", "W_skip", "activation_function.threshold"]
        } else {
            &["W_enc", "b_enc", "b_dec", "threshold", "activation_function.threshold"]
        };
        Ok(names.iter().filter_map(|n| file.shape(n)).map(|s| 4 * s.iter().product::<usize>() as u64).sum())
    }

    /// Whether a feature's value at a position depends on the positions before it (a
    /// temporal SAE): its inputs must be whole sequences `[.., t, d_in]` from their first
    /// position, never positions of several texts side by side or one position alone.
    pub fn sequential(&self) -> bool {
        self.temporal.is_some()
    }

    /// Feature activations for residual vectors `x` [.., d_in] -> [.., d_sae] (for a
    /// `sequential` SAE, `x` [.., t, d_in] holds sequences).
    pub fn encode(&self, x: &Tensor) -> Tensor {
        if let Some(t) = &self.temporal {
            return t.encode(&self.normalized(x), &self.w_enc);
        }
        let mut z = self.pre_activations(x);
        match self.cfg.architecture {
            Architecture::TopK(k) => {
                let (vals, idx) = z.topk(k as i64, -1, true, false);
                let _ = z.zero_();
                z.scatter(-1, &idx, &vals.relu())
            }
            _ => {
                self.gate_(&mut z, 0);
                z
            }
        }
    }

    /// The activations of `x` and the SAE's reconstruction of it: `decode(encode(x))`, but
    /// for a temporal SAE the novel codes plus those it predicts from earlier positions,
    /// decoded together (SAELens's `TemporalSAE.forward`; its `decode` of the novel codes
    /// alone leaves the predicted part out and says so).
    pub fn reconstruct(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        if let Some(t) = &self.temporal {
            let (novel, predicted) = t.encode_with_predictions(&self.normalized(x), &self.w_enc);
            let back = self.decode(&(&novel + predicted), x)?;
            return Ok((novel, back));
        }
        let f = self.encode(x);
        let back = self.decode(&f, x)?;
        Ok((f, back))
    }

    /// The same activations a block of features at a time: `each(first feature, [.., n])`
    /// for consecutive blocks that cover every feature. The whole [tokens, d_sae] product
    /// is a run's largest buffer: written at once it leaves the CPU's cache, and the bias,
    /// the gate and the caller's reduction each stream it back from memory, while a block
    /// of about 1 MiB stays cached through all of them (the report's encode ran 1.3-1.5x
    /// faster so: BENCHMARKS.md). TopK needs every feature to pick its survivors, and a GPU
    /// gains nothing from blocks: one block there.
    pub fn encode_blocks(&self, x: &Tensor, mut each: impl FnMut(usize, Tensor) -> Result<()>) -> Result<()> {
        let rows = x.numel() / self.cfg.d_in.max(1);
        let block = match self.cfg.architecture {
            Architecture::TopK(_) | Architecture::Temporal => self.d_sae,
            _ if self.device != Device::Cpu => self.d_sae,
            _ => block_width(rows, self.d_sae),
        };
        if block >= self.d_sae {
            return each(0, self.encode(x));
        }
        let x = self.normalized(x);
        for first in (0..self.d_sae).step_by(block) {
            let mut z = self.pre_activations_of(&x, first, block.min(self.d_sae - first));
            self.gate_(&mut z, first);
            each(first, z)?;
        }
        Ok(())
    }

    /// ReLU, and JumpReLU's threshold, on pre-activations `z` of the features from `first`.
    fn gate_(&self, z: &mut Tensor, first: usize) {
        if let Some(th) = &self.threshold {
            let n = z.size().last().copied().unwrap_or(0);
            let keep = z.gt_tensor(&th.narrow(0, first as i64, n));
            let _ = z.relu_();
            let _ = z.g_mul_(&keep);
        } else {
            let _ = z.relu_();
        }
    }

    /// What the activation function reads, [.., d_sae]: where a feature's firing is decided
    /// (a value within float noise of 0 or of a threshold may go either way between two
    /// implementations of the same sum).
    pub fn pre_activations(&self, x: &Tensor) -> Tensor {
        // In place after the matmul: the [tokens, d_sae] buffer is the run's largest, and
        // `z + b` then `relu` would hold three of them at once.
        self.pre_activations_of(&self.normalized(x), 0, self.d_sae)
    }

    /// Pre-activations of features `first..first + n` for inputs already `normalized`.
    fn pre_activations_of(&self, normalized: &Tensor, first: usize, n: usize) -> Tensor {
        let (first, n) = (first as i64, n as i64);
        let mut z = normalized.matmul(&self.w_enc.narrow(1, first, n));
        let _ = z.g_add_(&self.b_enc.narrow(0, first, n));
        z
    }

    /// The encoder's parts for `dashboard::screen`: W_enc [d_in, d_sae], b_enc, and the
    /// cut a pre-activation must pass to fire (0, or JumpReLU's threshold where above 0);
    /// None for TopK, whose survivors depend on every feature.
    pub fn linear_parts(&self) -> Option<(&Tensor, &Tensor, Tensor)> {
        let cut = match (self.cfg.architecture, &self.threshold) {
            (Architecture::TopK(_) | Architecture::Temporal, _) => return None,
            (_, Some(th)) => th.clamp_min(0.0),
            (_, None) => Tensor::zeros([self.d_sae as i64], (self.kind, self.device)),
        };
        Some((&self.w_enc, &self.b_enc, cut))
    }

    /// The input after the cfg's normalisation and, where asked, `- b_dec`: what the
    /// encoder's matmul reads.
    pub fn normalized(&self, x: &Tensor) -> Tensor {
        let x = match self.cfg.normalize {
            Normalize::None => x.shallow_clone(),
            Normalize::Scale(s) => x * s,
            Normalize::ConstantNormRescale => x * ((self.cfg.d_in as f64).sqrt() / x.norm_scalaropt_dim(2, [-1i64].as_slice(), true)),
            Normalize::LayerNorm => {
                let c = x - x.mean_dim(-1, true, x.kind());
                let std = c.std_dim(-1, true, true);
                c / (std + 1e-5)
            }
        };
        if self.cfg.apply_b_dec_to_input {
            x - &self.b_dec
        } else {
            x
        }
    }

    /// One feature's activations for `x` [.., d_in] -> [..].
    pub fn encode_feature(&self, x: &Tensor, feature: u32) -> Tensor {
        self.encode_some(x, &[feature]).squeeze_dim(-1)
    }

    /// Some features' activations for `x` [.., d_in] -> [.., features.len()]: the
    /// encoder's columns alone where the architecture allows (TopK needs every feature to
    /// know which survive), so probing a few features costs a few columns.
    pub fn encode_some(&self, x: &Tensor, features: &[u32]) -> Tensor {
        let idx = Tensor::from_slice(&features.iter().map(|&f| i64::from(f)).collect::<Vec<_>>()).to_device(self.device);
        match self.cfg.architecture {
            Architecture::TopK(_) | Architecture::Temporal => self.encode(x).index_select(-1, &idx),
            _ => {
                let x = self.normalized(x);
                let mut z = x.matmul(&self.w_enc.index_select(1, &idx)) + self.b_enc.index_select(0, &idx);
                if let Some(th) = &self.threshold {
                    z = &z * z.gt_tensor(&th.index_select(0, &idx));
                }
                z.relu()
            }
        }
    }

    /// The reconstruction of `x` [.., d_in] from its feature activations `f` (`encode(x)`),
    /// in the hook's own units, as SAELens's `decode` gives it: `f @ W_dec + b_dec`, then
    /// the input normalisation undone with `x`'s own statistics (a folded scale divides
    /// `b_dec` as SAELens's `fold_activation_norm_scaling_factor` does).
    pub fn decode(&self, f: &Tensor, x: &Tensor) -> Result<Tensor> {
        let out = f.matmul(self.decoder()?);
        Ok(match self.cfg.normalize {
            Normalize::None => out + &self.b_dec,
            Normalize::Scale(s) => out + (&self.b_dec / s),
            Normalize::ConstantNormRescale => (out + &self.b_dec) * x.norm_scalaropt_dim(2, [-1i64].as_slice(), true) / (self.cfg.d_in as f64).sqrt(),
            Normalize::LayerNorm => {
                // SAELens multiplies back by the std without the 1e-5 it divided with.
                let mean = x.mean_dim(-1, true, x.kind());
                let std = (x - &mean).std_dim(-1, true, true);
                (out + &self.b_dec) * std + mean
            }
        })
    }

    /// The output hook a transcoder writes; None for an SAE.
    pub fn writes(&self) -> Option<HookPoint> {
        self.cfg.hook_name_out.as_deref().and_then(HookPoint::parse)
    }

    /// A transcoder's skip term for inputs `x` [.., d_in] -> [.., d_out]; None without one.
    pub fn skip(&self, x: &Tensor) -> Option<Tensor> {
        self.w_skip.as_ref().map(|w| x.matmul(w))
    }

    /// The encoder's column of `feature` [d_in]: the direction whose dot product with the
    /// (normalised) input is the feature's pre-activation, less its bias.
    pub fn encoder_column(&self, feature: u32) -> Result<Tensor> {
        if feature as usize >= self.d_sae {
            bail!("feature {feature} does not exist: this SAE has features 0..{}", self.d_sae);
        }
        Ok(self.w_enc.select(1, i64::from(feature)))
    }

    /// The decoder's bias [d_out].
    pub fn b_dec(&self) -> &Tensor {
        &self.b_dec
    }

    /// W_dec [d_sae, d_out], loaded (and checked) on first call.
    pub fn decoder(&self) -> Result<&Tensor> {
        if let Some(w) = self.w_dec.get() {
            return Ok(w);
        }
        let mut w = match &self.summed_decoder {
            Some(d) => d.read(self.d_sae)?,
            None => self.file.tensor("W_dec", &[self.d_sae, self.d_out])?,
        }
        .to_device(self.device)
        .to_kind(self.kind);
        // SAELens folds an input scale into the weights (W_dec / s): directions are in the
        // hook's own units.
        if let Normalize::Scale(s) = self.cfg.normalize {
            w = w.f_div_scalar(s)?;
        }
        self.file.release_if_copied(self.device, self.kind);
        Ok(self.w_dec.get_or_init(|| w))
    }

    /// Decoder direction of `feature`, [d_in].
    pub fn direction(&self, feature: u32) -> Result<Tensor> {
        if feature as usize >= self.d_sae {
            bail!("feature {feature} does not exist: this SAE has features 0..{}", self.d_sae);
        }
        Ok(self.decoder()?.get(feature as i64))
    }

    /// The `k` features whose decoder directions are closest to `dir` by cosine similarity,
    /// descending: how a feature of one layer is followed into this one.
    pub fn nearest(&self, dir: &Tensor, k: usize) -> Result<Vec<(u32, f32)>> {
        self.nearest_each(&dir.unsqueeze(0), k)?.pop().ok_or_else(|| eyre!("internal: no neighbours"))
    }

    /// `nearest` for each row of `dirs` [n, d], in one matmul.
    pub fn nearest_each(&self, dirs: &Tensor, k: usize) -> Result<Vec<Vec<(u32, f32)>>> {
        let w = self.decoder()?;
        if self.w_dec_norms.get().is_none() {
            let n = w.norm_scalaropt_dim(2, [1i64].as_slice(), false).clamp_min(1e-12);
            let _ = self.w_dec_norms.set(n);
        }
        let norms = self.w_dec_norms.get().ok_or_else(|| eyre!("internal: decoder norms missing"))?;
        let dirs = dirs.to_device(self.device);
        let dir_norms = dirs.norm_scalaropt_dim(2, [1i64].as_slice(), true).clamp_min(1e-12);
        let cos = dirs.matmul(&w.tr()) / norms.unsqueeze(0) / dir_norms;
        let k = k.min(self.d_sae);
        let (vals, idx) = cos.topk(k as i64, 1, true, true);
        let vals = Vec::<f32>::try_from(vals.to_device(Device::Cpu).to_kind(Kind::Float).contiguous().view([-1]))?;
        let idx = Vec::<i64>::try_from(idx.to_device(Device::Cpu).contiguous().view([-1]))?;
        Ok(idx.chunks(k.max(1)).zip(vals.chunks(k.max(1))).map(|(i, v)| i.iter().map(|&i| i as u32).zip(v.iter().copied()).collect()).collect())
    }
}
