//! A graph's transcoders: one per layer, found in a folder as SAELens or Gemma Scope 2 lay
//! them out, or as circuit-tracer keeps a transcoder set (`config.yaml` and
//! `layer_L.safetensors`), and loaded as the SAEs they are (sae/mod.rs reads each format).

use crate::model::hooks::{HookPoint, Site};
use crate::sae::{Overrides, Sae, SaeConfig};
use crate::source::SaeFiles;
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use std::path::{Path, PathBuf};
use tch::{Device, Kind};

/// The (config, weights) file names of the layouts a transcoder folder may have.
const LAYOUTS: [(&str, &str); 2] = [("cfg.json", "sae_weights.safetensors"), ("config.json", "params.safetensors")];

/// Every transcoder folder under `dir` (itself, its folders and theirs), sorted by path.
fn folders(dir: &Path) -> Result<Vec<SaeFiles>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        for (cfg, weights) in LAYOUTS {
            if d.join(cfg).is_file() && d.join(weights).is_file() {
                out.push(SaeFiles { cfg: d.join(cfg), weights: d.join(weights) });
            }
        }
        if depth < 2 {
            let entries = std::fs::read_dir(&d).wrap_err_with(|| format!("cannot read the transcoder folder {}", d.display()))?;
            let mut subs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
            subs.sort();
            stack.extend(subs.into_iter().map(|p| (p, depth + 1)));
        }
    }
    out.sort_by(|a, b| a.cfg.cmp(&b.cfg));
    Ok(out)
}

/// The transcoders in `dir`, one per layer of a model with `n_layers` layers of width
/// `d_model`, in layer order, decoders loaded.
pub fn load_dir(dir: &Path, n_layers: usize, d_model: usize, device: Device, kind: Kind) -> Result<Vec<Sae>> {
    if !dir.is_dir() {
        bail!("{} is not a folder: --transcoders takes a folder with a transcoder per layer (saescope synth --transcoders plain writes one)", dir.display());
    }
    if dir.join("config.yaml").is_file() {
        return load_circuit_tracer(dir, n_layers, d_model, device, kind);
    }
    let mut by_layer: Vec<Option<(SaeFiles, HookPoint)>> = (0..n_layers).map(|_| None).collect();
    for files in folders(dir)? {
        let cfg = SaeConfig::from_file(&files.cfg)?;
        if cfg.hook_name_out.is_none() {
            continue;
        }
        let Some(hook) = cfg.hook_name.as_deref().and_then(HookPoint::parse) else {
            bail!("{}: a transcoder whose input hook saescope does not know ({:?})", files.cfg.display(), cfg.hook_name);
        };
        let Some(slot) = by_layer.get_mut(hook.layer) else {
            bail!("{}: reads layer {} but the model has layers 0..{n_layers}", files.cfg.display(), hook.layer);
        };
        if let Some((other, _)) = slot {
            bail!("{} and {} are both transcoders of layer {}: keep one per layer in {}", other.cfg.display(), files.cfg.display(), hook.layer, dir.display());
        }
        *slot = Some((files, hook));
    }
    let missing: Vec<String> = by_layer.iter().enumerate().filter(|(_, s)| s.is_none()).map(|(l, _)| l.to_string()).collect();
    if !missing.is_empty() {
        bail!("{} has no transcoder for layer(s) {}: a graph needs one at every layer", dir.display(), missing.join(", "));
    }
    by_layer.into_iter().flatten().map(|(files, hook)| Sae::load(&files, d_model, hook, &Overrides::default(), true, device, kind)).collect()
}

/// circuit-tracer's transcoder set: `config.yaml` (`model_kind: transcoder_set`, the input
/// and output hooks relative to `blocks.L`) and `layer_L.safetensors` for every layer.
fn load_circuit_tracer(dir: &Path, n_layers: usize, d_model: usize, device: Device, kind: Kind) -> Result<Vec<Sae>> {
    let path = dir.join("config.yaml");
    let text = std::fs::read_to_string(&path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).map_err(|e| eyre!("{}: not YAML ({e})", path.display()))?;
    let doc = docs.first().ok_or_else(|| eyre!("{} is empty", path.display()))?;
    let key = |k: &str| doc[k].as_str().map(str::to_string);
    match key("model_kind").as_deref() {
        Some("transcoder_set") => {}
        Some("cross_layer_transcoder") => bail!("{}: cross-layer transcoders are not read yet; give a per-layer transcoder set", path.display()),
        other => bail!("{}: model_kind {other:?} is not circuit-tracer's transcoder_set", path.display()),
    }
    // circuit-tracer's hook names, relative to blocks.L.
    let reads = match key("feature_input_hook").as_deref() {
        Some("mlp.hook_in") => Site::MlpIn,
        Some("ln2.hook_normalized") => Site::Ln2Normalized,
        other => bail!("{}: feature_input_hook {other:?} is not an MLP input saescope knows (mlp.hook_in, ln2.hook_normalized)", path.display()),
    };
    match key("feature_output_hook").as_deref() {
        Some("hook_mlp_out" | "mlp.hook_out") => {}
        other => bail!("{}: feature_output_hook {other:?} is not the MLP's output (hook_mlp_out, mlp.hook_out)", path.display()),
    }
    (0..n_layers)
        .map(|l| {
            let file = dir.join(format!("layer_{l}.safetensors"));
            if !file.is_file() {
                bail!("{} has no layer_{l}.safetensors: a graph needs a transcoder at every layer", dir.display());
            }
            Sae::load_circuit_tracer(&file, HookPoint::new(l, reads), HookPoint::new(l, Site::MlpOut), d_model, device, kind)
        })
        .collect()
}
