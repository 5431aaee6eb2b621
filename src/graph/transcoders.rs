//! A graph's transcoders: one per layer, found in a folder as SAELens or Gemma Scope 2 lay
//! them out, as circuit-tracer keeps a transcoder set (`config.yaml` and
//! `layer_L.safetensors`), or named by a SAELens release (fetched as its SAEs are), and
//! loaded as the SAEs they are (sae/mod.rs reads each format); or a cross-layer
//! transcoder, circuit-tracer's (`W_enc_L`/`W_dec_L`) or Gemma Scope 2's
//! (`params_layer_L`), its decoders read lazily (graph/cross.rs).

use crate::model::hooks::{HookPoint, Site};
use crate::sae::{Overrides, Sae, SaeConfig};
use crate::source::SaeFiles;
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The (config, weights) file names of the layouts a transcoder folder may have: SAELens's,
/// Gemma Scope 2's, and the first Gemma Scope's `params.npz` alone.
const LAYOUTS: [(&str, &str); 3] = [("cfg.json", "sae_weights.safetensors"), ("config.json", "params.safetensors"), ("params.npz", "params.npz")];

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
        // Gemma Scope's folders are three deep (layer_L/width_16k/average_l0_N).
        if depth < 3 {
            let entries = std::fs::read_dir(&d).wrap_err_with(|| format!("cannot read the transcoder folder {}", d.display()))?;
            let mut subs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
            subs.sort();
            stack.extend(subs.into_iter().map(|p| (p, depth + 1)));
        }
    }
    out.sort_by(|a, b| a.cfg.cmp(&b.cfg));
    Ok(out)
}

/// A graph's transcoders: an encoder per layer, and their decoders: each layer's own (a
/// per-layer transcoder's W_dec, writing its own layer's MLP output) or a cross-layer
/// transcoder's, writing every layer from its own on (graph/cross.rs).
pub struct Transcoders {
    pub layers: Vec<Sae>,
    pub cross: Option<super::cross::Cross>,
}

impl Transcoders {
    pub fn per_layer(layers: Vec<Sae>) -> Self {
        Self { layers, cross: None }
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// What layer `i`'s `features` [n] (i64) with activations `acts` [n] write: for each
    /// layer they write to, the vectors [n, d] (f32).
    pub fn writes(&self, i: usize, features: &Tensor, acts: &Tensor) -> Result<Vec<(usize, Tensor)>> {
        let acts = acts.to_kind(Kind::Float).unsqueeze(1);
        match &self.cross {
            None => Ok(vec![(i, self.layers[i].decoder()?.index_select(0, features).to_kind(Kind::Float) * acts)]),
            Some(c) => {
                let ids = Vec::<i64>::try_from(features.to_device(Device::Cpu).contiguous().view([-1]))?;
                let rows = c.rows(i, &ids)?.to_kind(Kind::Float);
                Ok((i..self.len()).map(|j| (j, rows.select(1, (j - i) as i64) * &acts)).collect())
            }
        }
    }

    /// One feature's decoder rows, by the layer each is written to.
    pub fn directions(&self, i: usize, feature: u32) -> Result<Vec<(usize, Tensor)>> {
        let sae = self.layers.get(i).ok_or_else(|| eyre!("no transcoder at layer {i}"))?;
        if feature as usize >= sae.d_sae {
            bail!("feature {feature} does not exist: layer {i}'s transcoder has features 0..{}", sae.d_sae);
        }
        let device = sae.b_dec().device();
        let f = Tensor::from_slice(&[i64::from(feature)]).to_device(device);
        let one = Tensor::ones([1], (Kind::Float, device));
        Ok(self.writes(i, &f, &one)?.into_iter().map(|(j, v)| (j, v.squeeze_dim(0))).collect())
    }
}

/// Which of several transcoders per layer a release or folder holds a graph takes, unless
/// `--transcoder-variant` says: Gemma Scope 2's 16k, small-L0 ones with their skip term.
pub const DEFAULT_VARIANT: &str = "width_16k_l0_small_affine";

/// Where a graph's transcoders are: a folder, a SAELens release by name (its SAE at every
/// layer, downloaded into the hub cache; a local copy of its repo is a folder), or a
/// transcoder set as circuit-tracer names one on the hub (`config.yaml` in a repo or its
/// folder; its `gemma` and `llama` are Gemma 2 2B's and Llama 3.2 1B's).
#[derive(Debug, Clone, PartialEq)]
pub enum Set {
    Dir { dir: PathBuf, variant: Option<String> },
    Release { name: String, variant: Option<String>, registry: Option<PathBuf> },
    Hub { repo: String, folder: Option<String> },
}

/// circuit-tracer's names for its own sets (its `utils/hf_utils.py`).
const CIRCUIT_TRACER_SETS: [(&str, &str); 2] = [("gemma", "mwhanna/gemma-scope-transcoders"), ("llama", "mntss/transcoder-Llama-3.2-1B")];

impl Set {
    /// `--transcoders`: an existing folder, else a release the registry names, else
    /// circuit-tracer's hub reference (`org/repo`, `org/repo/folder`, `gemma`, `llama`).
    pub fn parse(arg: &str, variant: Option<&str>, registry: Option<&Path>) -> Result<Self> {
        let variant = variant.map(str::to_string);
        let path = Path::new(arg);
        if path.is_dir() {
            return Ok(Set::Dir { dir: path.to_path_buf(), variant });
        }
        let reg = crate::sae::registry::Registry::load(registry)?;
        if reg.release(arg).is_some() {
            return Ok(Set::Release { name: arg.to_string(), variant, registry: registry.map(Path::to_path_buf) });
        }
        let reference = CIRCUIT_TRACER_SETS.iter().find(|(name, _)| *name == arg).map_or(arg, |(_, repo)| repo);
        if reference.contains('@') {
            bail!("--transcoders {arg:?}: a revision after @ is not something saescope fetches; download the repo at that revision into a folder and give the folder");
        }
        let parts: Vec<&str> = reference.split('/').collect();
        if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) || arg.starts_with('.') || path.is_absolute() {
            bail!(
                "--transcoders {arg:?} is neither a folder, a SAELens release, nor a hub repo; give a folder with a transcoder per layer, a release such as gemma-scope-2-270m-pt-transcoders-all (`saescope saes` lists them), or a circuit-tracer set on the hub (org/repo, gemma, llama)"
            );
        }
        let folder = (parts.len() > 2).then(|| parts[2..].join("/"));
        Ok(Set::Hub { repo: parts[..2].join("/"), folder })
    }

    /// What a graph's metadata calls them (circuit-tracer's `scan`): the folder's or release's
    /// name, or the hub reference as circuit-tracer writes it (`repo`, `repo//folder`).
    pub fn label(&self) -> String {
        match self {
            Set::Dir { dir, .. } => dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned()),
            Set::Release { name, .. } => name.clone(),
            Set::Hub { repo, folder: None } => repo.clone(),
            Set::Hub { repo, folder: Some(f) } => format!("{repo}//{f}"),
        }
    }

    /// One transcoder per layer of a model with `n_layers` layers of width `d_model`, in
    /// layer order, decoders loaded; a release's files are fetched first.
    pub fn load(&self, n_layers: usize, d_model: usize, device: Device, kind: Kind, progress: &crate::runtime::progress::ProgressSink) -> Result<Transcoders> {
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
                Ok(Transcoders::per_layer(out))
            }
            Set::Hub { repo, folder } => {
                let in_repo = |name: String| folder.as_ref().map_or_else(|| name.clone(), |f| format!("{f}/{name}"));
                progress.stage(format!("transcoders {}", self.label()));
                let config = crate::source::hub::fetch(repo, &[in_repo("config.yaml".into())], progress)
                    .wrap_err_with(|| format!("--transcoders {}: circuit-tracer's config.yaml", self.label()))?;
                let config = config.first().ok_or_else(|| eyre!("internal: no config.yaml fetched"))?;
                let dir = config.parent().ok_or_else(|| eyre!("internal: {} has no folder", config.display()))?;
                // A set naming its files (`transcoders:`) has them fetched as it is read;
                // otherwise the files circuit-tracer's loaders look for, layer by layer.
                let set = crate::sae::CircuitTracerConfig::from_file(config)?;
                if set.listed.is_none() {
                    let names: Vec<String> = if set.cross {
                        (0..n_layers).flat_map(|l| [format!("W_enc_{l}.safetensors"), format!("W_dec_{l}.safetensors")]).map(in_repo).collect()
                    } else {
                        (0..n_layers).map(|l| in_repo(format!("layer_{l}.safetensors"))).collect()
                    };
                    crate::source::hub::fetch(repo, &names, progress)?;
                }
                load_circuit_tracer(dir, n_layers, d_model, device, kind, progress)
            }
        }
    }
}

/// A listed transcoder's file: an `hf://org/repo/path[?revision=..]` fetched into the hub
/// cache, else a path (relative to the config's folder).
fn listed_file(entry: &str, dir: &Path, progress: &crate::runtime::progress::ProgressSink) -> Result<PathBuf> {
    let Some(uri) = entry.strip_prefix("hf://") else { return Ok(dir.join(entry)) };
    if uri.contains('?') {
        bail!("{entry}: a revision is not something saescope fetches; download that revision into a folder and give the folder");
    }
    let mut parts = uri.splitn(3, '/');
    let (Some(org), Some(name), Some(path)) = (parts.next(), parts.next(), parts.next()) else { bail!("{entry} is not an hf://org/repo/path reference") };
    let got = crate::source::hub::fetch(&format!("{org}/{name}"), &[path.to_string()], progress)?;
    got.into_iter().next().ok_or_else(|| eyre!("internal: {entry} was not fetched"))
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
pub fn load_dir(dir: &Path, n_layers: usize, d_model: usize, device: Device, kind: Kind) -> Result<Transcoders> {
    load_dir_variant(dir, None, n_layers, d_model, device, kind)
}

/// `load_dir`, where a layer with several transcoders takes `variant`'s (as `pick` picks).
fn load_dir_variant(dir: &Path, variant: Option<&str>, n_layers: usize, d_model: usize, device: Device, kind: Kind) -> Result<Transcoders> {
    if !dir.is_dir() {
        bail!("{} is not a folder: --transcoders takes a folder with a transcoder per layer (saescope synth --transcoders plain writes one)", dir.display());
    }
    if dir.join("config.yaml").is_file() {
        return load_circuit_tracer(dir, n_layers, d_model, device, kind, &crate::runtime::progress::ProgressSink::none());
    }
    if dir.join("params_layer_0.safetensors").is_file() {
        return load_scope_clt(dir, n_layers, d_model, device, kind);
    }
    let mut by_layer: Vec<Vec<(SaeFiles, HookPoint)>> = (0..n_layers).map(|_| Vec::new()).collect();
    for files in folders(dir)? {
        let hook = if files.cfg == files.weights {
            // The first Gemma Scope's transcoders (`layer_L/width_16k/average_l0_N/params.npz`)
            // read ln2.hook_normalized, as SAELens's gemma_2_transcoder loader says.
            let rel = files.cfg.strip_prefix(dir).unwrap_or(&files.cfg).to_string_lossy().into_owned();
            let layer = rel.split('/').find_map(|part| part.strip_prefix("layer_")?.parse::<usize>().ok());
            let Some(layer) = layer else { bail!("{}: a params.npz outside Gemma Scope's layer_L/ folders", files.cfg.display()) };
            HookPoint::new(layer, Site::Ln2Normalized)
        } else {
            let cfg = SaeConfig::from_file(&files.cfg)?;
            if cfg.hook_name_out.is_none() {
                continue;
            }
            let Some(hook) = cfg.hook_name.as_deref().and_then(HookPoint::parse) else {
                bail!("{}: a transcoder whose input hook saescope does not know ({:?})", files.cfg.display(), cfg.hook_name);
            };
            hook
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
        .collect::<Result<Vec<_>>>()
        .map(Transcoders::per_layer)
}

/// circuit-tracer's transcoder set or cross-layer transcoder: `config.yaml` (`model_kind:
/// transcoder_set` or `cross_layer_transcoder`, the input and output hooks relative to
/// `blocks.L`) and `layer_L.safetensors` for every layer, or `W_enc_L.safetensors` and
/// `W_dec_L.safetensors` (its `CrossLayerTranscoder.to_safetensors`); or a set whose config
/// lists its files (`transcoders:`), its own layout's or the first Gemma Scope's `params.npz`
/// (its `gemma` set), fetched from the hub where they are `hf://` references.
fn load_circuit_tracer(
    dir: &Path,
    n_layers: usize,
    d_model: usize,
    device: Device,
    kind: Kind,
    progress: &crate::runtime::progress::ProgressSink,
) -> Result<Transcoders> {
    let config = dir.join("config.yaml");
    let crate::sae::CircuitTracerConfig { cross, reads, listed } = crate::sae::CircuitTracerConfig::from_file(&config)?;
    if let Some(files) = listed {
        if cross {
            bail!("{}: a cross-layer transcoder listed file by file is not a layout saescope reads", config.display());
        }
        if files.len() != n_layers {
            bail!("{} lists {} transcoders; the model has {n_layers} layers and a graph needs one at each", config.display(), files.len());
        }
        let layers = files
            .iter()
            .enumerate()
            .map(|(l, entry)| {
                let file = listed_file(entry, dir, progress)?;
                let (reads, writes) = (HookPoint::new(l, reads), HookPoint::new(l, Site::MlpOut));
                if file.extension().is_some_and(|e| e == "npz") {
                    // The first Gemma Scope's, read as SAELens's gemma_2_transcoder reads it.
                    Sae::load(&SaeFiles { cfg: file.clone(), weights: file }, d_model, reads, &Overrides::default(), true, device, kind)
                } else {
                    Sae::load_circuit_tracer(&file, reads, writes, d_model, device, kind)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok(Transcoders::per_layer(layers));
    }
    let need = |name: String| -> Result<PathBuf> {
        let file = dir.join(&name);
        if !file.is_file() {
            bail!("{} has no {name}: a graph needs a transcoder at every layer", dir.display());
        }
        Ok(file)
    };
    if !cross {
        let layers = (0..n_layers)
            .map(|l| {
                Sae::load_circuit_tracer(
                    &need(format!("layer_{l}.safetensors"))?,
                    HookPoint::new(l, reads),
                    HookPoint::new(l, Site::MlpOut),
                    d_model,
                    device,
                    kind,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok(Transcoders::per_layer(layers));
    }
    cross_layer(
        n_layers,
        |l| need(format!("W_enc_{l}.safetensors")),
        |l| Ok((need(format!("W_dec_{l}.safetensors"))?, format!("W_dec_{l}"), l)),
        reads,
        d_model,
        device,
        kind,
    )
}

/// Gemma Scope 2's cross-layer transcoder: `params_layer_L.safetensors` per layer, each
/// with its encoder and `w_dec` [d_sae, n_layers, d] (rows to every layer; those from L on
/// are read), as circuit-tracer's `load_gemma_scope_2_clt` reads them.
fn load_scope_clt(dir: &Path, n_layers: usize, d_model: usize, device: Device, kind: Kind) -> Result<Transcoders> {
    let file = |l: usize| -> Result<PathBuf> {
        let f = dir.join(format!("params_layer_{l}.safetensors"));
        if !f.is_file() {
            bail!("{} has no params_layer_{l}.safetensors: a cross-layer transcoder needs every layer's", dir.display());
        }
        Ok(f)
    };
    cross_layer(n_layers, file, |l| Ok((file(l)?, "w_dec".to_string(), 0)), Site::MlpIn, d_model, device, kind)
}

/// A cross-layer transcoder from each layer's encoder file and decoder (file, tensor, first
/// layer its rows hold).
fn cross_layer(
    n_layers: usize,
    encoder: impl Fn(usize) -> Result<PathBuf>,
    decoder: impl Fn(usize) -> Result<(PathBuf, String, usize)>,
    reads: Site,
    d_model: usize,
    device: Device,
    kind: Kind,
) -> Result<Transcoders> {
    let mut layers = Vec::with_capacity(n_layers);
    let mut decoders = Vec::with_capacity(n_layers);
    for l in 0..n_layers {
        layers.push(Sae::load_cross_layer_encoder(&encoder(l)?, l, HookPoint::new(l, reads), HookPoint::new(l, Site::MlpOut), d_model, device, kind)?);
        let (path, name, first) = decoder(l)?;
        decoders.push(super::cross::LayerDecoder::open(&path, &name, first)?);
    }
    let widths: Vec<usize> = layers.iter().map(|s| s.d_sae).collect();
    let cross = super::cross::Cross::new(decoders, &widths, d_model, device, kind)?;
    Ok(Transcoders { layers, cross: Some(cross) })
}
