//! A graph's transcoders: one per layer, found in a folder as SAELens or Gemma Scope 2 lay
//! them out, as circuit-tracer keeps a transcoder set (`config.yaml` and
//! `layer_L.safetensors`), or named by a SAELens release (fetched as its SAEs are), and
//! loaded as the SAEs they are (sae/mod.rs reads each format).

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

/// Which of several transcoders per layer a release or folder holds a graph takes, unless
/// `--transcoder-variant` says: Gemma Scope 2's 16k, small-L0 ones with their skip term.
pub const DEFAULT_VARIANT: &str = "width_16k_l0_small_affine";

/// Where a graph's transcoders are: a folder, or a SAELens release by name (its SAE at
/// every layer, downloaded into the hub cache; a local copy of its repo is a folder).
#[derive(Debug, Clone, PartialEq)]
pub enum Set {
    Dir { dir: PathBuf, variant: Option<String> },
    Release { name: String, variant: Option<String>, registry: Option<PathBuf> },
}

impl Set {
    /// `--transcoders`: an existing folder, else a release the registry names.
    pub fn parse(arg: &str, variant: Option<&str>, registry: Option<&Path>) -> Result<Self> {
        let variant = variant.map(str::to_string);
        let path = Path::new(arg);
        if path.is_dir() {
            return Ok(Set::Dir { dir: path.to_path_buf(), variant });
        }
        let reg = crate::sae::registry::Registry::load(registry)?;
        if reg.release(arg).is_none() {
            bail!(
                "--transcoders {arg:?} is neither a folder nor a SAELens release; give a folder with a transcoder per layer, or a release such as gemma-scope-2-270m-pt-transcoders-all (`saescope saes` lists them)"
            );
        }
        Ok(Set::Release { name: arg.to_string(), variant, registry: registry.map(Path::to_path_buf) })
    }

    /// What a graph's metadata calls them (circuit-tracer's `scan`): the folder's or release's name.
    pub fn label(&self) -> String {
        match self {
            Set::Dir { dir, .. } => dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned()),
            Set::Release { name, .. } => name.clone(),
        }
    }

    /// One transcoder per layer of a model with `n_layers` layers of width `d_model`, in
    /// layer order, decoders loaded; a release's files are fetched first.
    pub fn load(&self, n_layers: usize, d_model: usize, device: Device, kind: Kind, progress: &crate::runtime::progress::ProgressSink) -> Result<Vec<Sae>> {
        match self {
            Set::Dir { dir, variant } => load_dir_variant(dir, variant.as_deref(), n_layers, d_model, device, kind),
            Set::Release { name, variant, registry } => {
                let picked = release_entries(name, variant.as_deref(), registry.as_deref(), n_layers)?;
                let ids: Vec<String> = picked.iter().map(|e| e.id.clone()).collect();
                let sel = crate::sae::selection::Selection::from_args(name, &ids, &[], None, registry.as_deref())?;
                let mut out = Vec::with_capacity(n_layers);
                for w in &sel.wanted {
                    let crate::sae::selection::Wanted::Named(n) = w else { bail!("internal: a release's SAE without its name") };
                    progress.stage(format!("transcoder {} of {name}", n.id));
                    let files = n.source.sae_files(&n.path, n.layout, progress)?;
                    out.push(Sae::load(&files, d_model, n.hook, &Overrides::default(), true, device, kind)?);
                }
                Ok(out)
            }
        }
    }
}

/// The release's transcoder at each layer: the only one there, or the one whose id ends
/// with the variant (by default `DEFAULT_VARIANT` where that picks one).
fn release_entries(name: &str, variant: Option<&str>, registry: Option<&Path>, n_layers: usize) -> Result<Vec<crate::sae::registry::SaeEntry>> {
    let reg = crate::sae::registry::Registry::load(registry)?;
    let r = reg.release(name).ok_or_else(|| reg.unknown(name))?;
    (0..n_layers)
        .map(|l| {
            let here: Vec<&crate::sae::registry::SaeEntry> = r.saes.iter().filter(|e| e.hook().is_some_and(|h| h.layer == l)).collect();
            let names: Vec<&str> = here.iter().map(|e| e.id.as_str()).collect();
            pick(&names, variant).map(|i| here[i].clone()).map_err(|why| eyre!("release {name}, layer {l}: {why}"))
        })
        .collect()
}

/// Which of `names` (a layer's transcoders) to take: the only one, or the one ending with
/// the variant; why not otherwise.
fn pick(names: &[&str], variant: Option<&str>) -> std::result::Result<usize, String> {
    let ends = |v: &str| -> Vec<usize> {
        (0..names.len())
            .filter(|&i| names[i].ends_with(v) && (names[i].len() == v.len() || !names[i][..names[i].len() - v.len()].ends_with(char::is_alphanumeric)))
            .collect()
    };
    match (names.len(), variant) {
        (0, _) => Err("no transcoder there: a graph needs one at every layer".into()),
        (_, Some(v)) => match ends(v)[..] {
            [i] => Ok(i),
            [] => Err(format!("none is --transcoder-variant {v:?} (there: {})", names.join(", "))),
            _ => Err(format!("several match --transcoder-variant {v:?}: {}", names.join(", "))),
        },
        (1, None) => Ok(0),
        (_, None) => match ends(DEFAULT_VARIANT)[..] {
            [i] => Ok(i),
            _ => Err(format!("{} transcoders there ({}); choose one with --transcoder-variant", names.len(), names.join(", "))),
        },
    }
}

/// The transcoders in `dir`, one per layer of a model with `n_layers` layers of width
/// `d_model`, in layer order, decoders loaded.
pub fn load_dir(dir: &Path, n_layers: usize, d_model: usize, device: Device, kind: Kind) -> Result<Vec<Sae>> {
    load_dir_variant(dir, None, n_layers, d_model, device, kind)
}

/// `load_dir`, where a layer with several transcoders takes `variant`'s (as `pick` picks).
fn load_dir_variant(dir: &Path, variant: Option<&str>, n_layers: usize, d_model: usize, device: Device, kind: Kind) -> Result<Vec<Sae>> {
    if !dir.is_dir() {
        bail!("{} is not a folder: --transcoders takes a folder with a transcoder per layer (saescope synth --transcoders plain writes one)", dir.display());
    }
    if dir.join("config.yaml").is_file() {
        return load_circuit_tracer(dir, n_layers, d_model, device, kind);
    }
    let mut by_layer: Vec<Vec<(SaeFiles, HookPoint)>> = (0..n_layers).map(|_| Vec::new()).collect();
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
        slot.push((files, hook));
    }
    let missing: Vec<String> = by_layer.iter().enumerate().filter(|(_, s)| s.is_empty()).map(|(l, _)| l.to_string()).collect();
    if !missing.is_empty() {
        bail!("{} has no transcoder for layer(s) {}: a graph needs one at every layer", dir.display(), missing.join(", "));
    }
    let folder = |f: &SaeFiles| f.cfg.parent().and_then(Path::file_name).map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    by_layer
        .into_iter()
        .enumerate()
        .map(|(l, mut found)| {
            let names: Vec<String> = found.iter().map(|(f, _)| folder(f)).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let i = pick(&refs, variant).map_err(|why| eyre!("{}, layer {l}: {why}", dir.display()))?;
            let (files, hook) = found.swap_remove(i);
            Sae::load(&files, d_model, hook, &Overrides::default(), true, device, kind)
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::pick;

    #[test]
    fn a_variant_picks_one_transcoder_per_layer() {
        let names = ["layer_3_width_16k_l0_small", "layer_3_width_16k_l0_small_affine", "layer_3_width_262k_l0_big_affine"];
        assert_eq!(pick(&names, None), Ok(1), "the default: 16k, small L0, with skip");
        assert_eq!(pick(&names, Some("width_16k_l0_small")), Ok(0), "a suffix matches whole words only");
        assert_eq!(pick(&names, Some("width_262k_l0_big_affine")), Ok(2));
        assert!(pick(&names, Some("l0_medium")).is_err_and(|e| e.contains("none is --transcoder-variant")));
        assert!(pick(&names[..1], None) == Ok(0));
        assert!(pick(&["a", "b"], None).is_err_and(|e| e.contains("choose one with --transcoder-variant")));
        assert!(pick(&[], None).is_err_and(|e| e.contains("needs one at every layer")));
    }
}
