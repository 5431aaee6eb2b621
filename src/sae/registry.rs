//! SAELens's names for SAEs: its `pretrained_saes.yaml` maps a release name
//! (`gpt2-small-res-jb`) to a hub repo and, per SAE, its id (the hook it reads), its path in
//! the repo, its Neuronpedia id, L0 and more. saescope ships the releases of the models it
//! runs (assets/saelens-registry.json, made by scripts/gen-registry from the pinned SAELens)
//! and reads a newer SAELens's YAML as it ships (`--sae-registry FILE`). Facts only: what a
//! hook or width is derived from them is computed here, the same for either source.

use crate::model::hooks::HookPoint;
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// One release, in SAELens's own keys.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Release {
    pub repo_id: String,
    pub model: String,
    #[serde(default)]
    pub conversion_func: Option<String>,
    #[serde(default)]
    pub config_overrides: Option<Value>,
    #[serde(default)]
    pub links: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub saes: Vec<SaeEntry>,
}

/// One SAE of a release.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct SaeEntry {
    #[serde(deserialize_with = "text")]
    pub id: String,
    #[serde(deserialize_with = "text")]
    pub path: String,
    #[serde(default)]
    pub neuronpedia: Option<String>,
    #[serde(default)]
    pub l0: Option<f64>,
    #[serde(default)]
    pub variance_explained: Option<f64>,
    #[serde(default)]
    pub norm_scaling_factor: Option<f64>,
    /// The hook site its release reads where the id does not say it (Gemma Scope's
    /// `layer_L/width_16k/...` ids; SAELens's gemma_2 loader takes it from the repo's name).
    #[serde(skip)]
    pub site: Option<crate::model::hooks::Site>,
}

/// A string, or a number as its text: SAELens's YAML gives some paths as bare numbers (the
/// mntss CLT release's `path: 0`).
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("expected a string, found {other}"))),
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registry {
    pub releases: BTreeMap<String, Release>,
    /// Where it came from, for messages.
    pub origin: String,
}

/// The registry saescope ships.
const BUNDLED: &str = include_str!("../../assets/saelens-registry.json");

impl Registry {
    pub fn bundled() -> Result<Self> {
        #[derive(Deserialize)]
        struct File {
            saelens_version: String,
            releases: BTreeMap<String, Release>,
        }
        let f: File = serde_json::from_str(BUNDLED).wrap_err("the bundled SAELens registry is damaged")?;
        Ok(Self { releases: f.releases, origin: format!("SAELens {} (bundled)", f.saelens_version) }.with_sites())
    }

    /// SAELens's `pretrained_saes.yaml` as it ships (every release, of every model).
    pub fn from_yaml(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
        let docs = yaml_rust2::YamlLoader::load_from_str(&text).map_err(|e| eyre!("{}: not YAML ({e})", path.display()))?;
        let doc = docs.into_iter().next().ok_or_else(|| eyre!("{}: empty", path.display()))?;
        let Value::Object(map) = to_json(doc) else { bail!("{}: not a mapping of release names, as SAELens's pretrained_saes.yaml is", path.display()) };
        let mut releases = BTreeMap::new();
        for (name, v) in map {
            let r: Release = serde_json::from_value(v).map_err(|e| eyre!("{}: release {name}: {e}", path.display()))?;
            releases.insert(name, r);
        }
        Ok(Self { releases, origin: path.display().to_string() }.with_sites())
    }

    /// Each Gemma Scope (gemma_2) SAE's site, as SAELens's loader takes it from the repo's
    /// name: `-res` the residual after the block, `-mlp` the MLP's output, `-att` the heads;
    /// its transcoders' (gemma_2_transcoder), the MLP's normalised input.
    fn with_sites(mut self) -> Self {
        use crate::model::hooks::Site;
        for r in self.releases.values_mut() {
            let site = match r.conversion_func.as_deref() {
                Some("gemma_2") => {
                    [("-res", Site::ResidPost), ("-mlp", Site::MlpOut), ("-att", Site::AttnZ)].into_iter().find(|(k, _)| r.repo_id.contains(k)).map(|(_, s)| s)
                }
                // Its transcoders read ln2.hook_normalized and write the MLP's output.
                Some("gemma_2_transcoder") => Some(Site::Ln2Normalized),
                // mntss's cross-layer transcoders: each layer's encoder reads the residual
                // before the MLP (sae/mod.rs, CircuitTracerConfig; the repo's config.yaml,
                // checked when the layer loads).
                Some("mntss_clt_layer_transcoder") => Some(Site::ResidMid),
                _ => continue,
            };
            for e in &mut r.saes {
                e.site = site;
            }
        }
        self
    }

    /// `--sae-registry FILE`, else the bundled one.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        match file {
            Some(f) => Self::from_yaml(f),
            None => Self::bundled(),
        }
    }

    pub fn release(&self, name: &str) -> Option<&Release> {
        self.releases.get(name)
    }

    /// The release of residual SAEs with Neuronpedia dashboards for hub model `model`
    /// (releases name their model by repo, e.g. google/gemma-3-270m), and the layers it has
    /// such SAEs at (four of them at most); None where the registry has none.
    pub fn residual_default(&self, model: &str) -> Option<(String, Vec<usize>)> {
        let hosted = |r: &Release| -> Vec<usize> {
            let mut layers: Vec<usize> =
                r.saes.iter().filter(|e| e.neuronpedia.is_some()).filter_map(|e| e.hook()).filter(|h| h.site.is_residual()).map(|h| h.layer).collect();
            layers.sort_unstable();
            layers.dedup();
            layers
        };
        // The model's main suite: the release Neuronpedia hosts at the most layers (Gemma
        // Scope's canonical one before the Matryoshka ones for Gemma 2), then the narrower
        // (Llama Scope's 8x before its 32x), then by name.
        let widest = |r: &Release| r.saes.iter().filter_map(SaeEntry::width).max().unwrap_or(0);
        let (name, _, mut layers) = self
            .releases
            .iter()
            // mntss's cross-layer transcoders read the residual too, but are not its SAEs.
            .filter(|(_, r)| same_model(&r.model, model) && r.conversion_func.as_deref() != Some("mntss_clt_layer_transcoder"))
            .map(|(n, r)| (n.clone(), widest(r), hosted(r)))
            .filter(|(_, _, layers)| !layers.is_empty())
            .min_by(|(n1, w1, l1), (n2, w2, l2)| l2.len().cmp(&l1.len()).then(w1.cmp(w2)).then(n1.cmp(n2)))?;
        // A suite hosted at every layer opens at four, about where Neuronpedia's picks for
        // Gemma 3 sit (25, 50, 65, 85% of the depth).
        // Each pick past the one before, so a shallow suite (Pythia's six) still opens at four.
        if layers.len() > 4 {
            let last = layers.len() - 1;
            let mut at = 0;
            layers = [0.25, 0.5, 0.65, 0.85]
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    at = ((f * last as f64).round() as usize).max(if i == 0 { 0 } else { at + 1 }).min(last);
                    layers[at]
                })
                .collect();
        }
        Some((name, layers))
    }

    /// The release whose SAEs a local folder holds (a copy of its repo, as `saescope synth`
    /// writes one), and the layers of the residual SAEs in it (of every SAE in it where none
    /// is residual): how `--sae-dir` alone opens a Gemma Scope folder. The release with the
    /// most SAEs present wins, then one for `model` (releases of a model's pt and it
    /// checkpoints share their folders' names), then the one with Neuronpedia ids, then the
    /// first by name.
    pub fn release_in_folder(&self, dir: &std::path::Path, model: Option<&str>) -> Option<(String, Vec<usize>)> {
        // Qwen Scope's releases share their files' names (`layer{L}.sae.pt`) and differ in the
        // k only their repos' names give: a folder is one of them where its path names it.
        let named = |r: &Release| {
            r.conversion_func.as_deref() != Some("qwen_scope") || r.repo_id.rsplit('/').next().is_some_and(|repo| dir.to_string_lossy().contains(repo))
        };
        let (name, _, present) =
            self.releases.iter().filter(|(_, r)| named(r)).map(|(n, r)| (n, r, present_in(r, dir))).filter(|(_, _, p)| !p.is_empty()).min_by(
                |(n1, r1, p1), (n2, r2, p2)| {
                    let other = |r: &Release| !model.is_some_and(|m| same_model(&r.model, m));
                    // Releases sharing folders (Gemma Scope's and its -canonical): the one that
                    // names their Neuronpedia pages.
                    let hosted = |p: &[&SaeEntry]| p.iter().filter(|e| e.neuronpedia.is_some()).count();
                    p2.len().cmp(&p1.len()).then(other(r1).cmp(&other(r2))).then(hosted(p2).cmp(&hosted(p1))).then(n1.cmp(n2))
                },
            )?;
        Some((name.clone(), layers_of(&present)))
    }

    /// The layers of `release`'s SAEs that `dir` holds, as `release_in_folder` gives them:
    /// how `--sae-dir` with `--sae-release` opens a folder of that release.
    pub fn release_layers_in_folder(&self, release: &str, dir: &std::path::Path) -> Option<Vec<usize>> {
        let present = present_in(self.releases.iter().find(|(n, _)| n.as_str() == release)?.1, dir);
        (!present.is_empty()).then(|| layers_of(&present))
    }

    /// The layers to open the releases of `names` (a comma list) at when none are asked
    /// for: `preferred` where they have SAEs at each, else the layers of their SAEs (their
    /// residual ones where they have any) where those are four or fewer (Goodfire's one at
    /// 19, the temporal ones'); None otherwise.
    pub fn layers_for(&self, names: &str, preferred: &[usize]) -> Option<Vec<usize>> {
        let entries: Vec<&SaeEntry> = names.split(',').filter_map(|n| self.release(n.trim())).flat_map(|r| &r.saes).filter(|e| e.hook().is_some()).collect();
        let layers = layers_of(&entries);
        if preferred.iter().all(|l| layers.contains(l)) {
            Some(preferred.to_vec())
        } else {
            Some(layers).filter(|l| (1..=4).contains(&l.len()))
        }
    }

    /// The release and entry of the SAE at `path` in `repo`, if the registry names one.
    pub fn by_repo_path(&self, repo: &str, path: &str) -> Option<(&str, &Release, &SaeEntry)> {
        self.releases.iter().filter(|(_, r)| r.repo_id == repo).find_map(|(n, r)| r.saes.iter().find(|e| e.path == path).map(|e| (n.as_str(), r, e)))
    }
}

/// The SAEs of `r` that `dir` holds.
fn present_in<'r>(r: &'r Release, dir: &std::path::Path) -> Vec<&'r SaeEntry> {
    r.saes.iter().filter(|e| !e.path.is_empty() && dir.join(&e.path).exists() && e.hook().is_some()).collect()
}

/// The residual SAEs' layers of `present` (every SAE's where none is residual), sorted.
fn layers_of(present: &[&SaeEntry]) -> Vec<usize> {
    let hooks: Vec<HookPoint> = present.iter().filter_map(|e| e.hook()).collect();
    let residual: Vec<usize> = hooks.iter().filter(|h| h.site.is_residual()).map(|h| h.layer).collect();
    let mut layers = if residual.is_empty() { hooks.iter().map(|h| h.layer).collect() } else { residual };
    layers.sort_unstable();
    layers.dedup();
    layers
}

/// What `saescope saes` prints for one SAE.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listed {
    pub release: String,
    pub id: String,
    pub hook: Option<String>,
    pub width: Option<usize>,
    pub l0: Option<f64>,
    pub neuronpedia: Option<String>,
    pub repo: String,
    pub path: String,
    /// Its files are in the local hub cache (usable offline).
    pub cached: bool,
}

/// Whether the registry's model name `listed` is hub model `asked`: the same, or the same
/// name after the organisation, in any case (SAELens names Qwen 3 by TransformerLens's
/// `qwen3-0.6b`, the hub by `Qwen/Qwen3-0.6B`).
fn same_model(listed: &str, asked: &str) -> bool {
    let name = |s: &str| s.rsplit('/').next().unwrap_or(s).to_ascii_lowercase();
    listed == asked || name(listed) == name(asked)
}

impl Registry {
    /// The releases of `model` (all when None): name, model, repo, SAE count.
    pub fn releases_of(&self, model: Option<&str>) -> Vec<(&str, &Release)> {
        self.releases.iter().filter(|(_, r)| model.is_none_or(|m| same_model(&r.model, m))).map(|(n, r)| (n.as_str(), r)).collect()
    }

    /// Every SAE of `release`, with what its names say and whether the hub cache holds it.
    pub fn list(&self, release: &str, cache: &Path) -> Result<Vec<Listed>> {
        let r = self.release(release).ok_or_else(|| self.unknown(release))?;
        let repo = crate::source::hub::RepoCache::new(cache, &r.repo_id);
        Ok(r.saes
            .iter()
            .map(|e| {
                // A SAELens folder (v5's are named like `.pt` files), or the kk release's
                // single `.pt` with its `_cfg.json`: source::sae_names.
                let [cfg_name, weights] = crate::source::sae_names(&e.path, r.layout().unwrap_or_default());
                let cfg = repo.get(&cfg_name);
                let cached = cfg.is_some() && repo.get(&weights).is_some();
                // Where the name does not say the width, a cached cfg.json does.
                let width = e.width().or_else(|| crate::sae::SaeConfig::from_file(cfg.as_deref()?).ok()?.d_sae);
                Listed {
                    release: release.to_string(),
                    id: e.id.clone(),
                    hook: e.hook().map(|h| h.to_string()),
                    width,
                    l0: e.l0,
                    neuronpedia: e.neuronpedia.clone(),
                    repo: r.repo_id.clone(),
                    path: e.path.clone(),
                    cached,
                }
            })
            .collect())
    }

    /// A release name the registry does not have, with the nearest it does.
    pub(crate) fn unknown(&self, name: &str) -> color_eyre::Report {
        let near: Vec<&str> = self.releases.keys().filter(|k| k.contains(name) || name.contains(k.as_str())).map(String::as_str).take(5).collect();
        let hint = if near.is_empty() { String::new() } else { format!(" (did you mean {}?)", near.join(", ")) };
        eyre!(
            "no SAELens release named {name:?} in {}{hint}; `saescope saes` lists them, and --sae-registry reads a newer SAELens's pretrained_saes.yaml",
            self.origin
        )
    }
}

/// The text `saescope saes` prints: the releases, or one release's SAEs.
pub fn table_releases(rows: &[(&str, &Release)]) -> String {
    let mut s = format!("{:<44} {:<24} {:>5}  repo\n", "release", "model", "SAEs");
    for (name, r) in rows {
        s.push_str(&format!("{name:<44} {:<24} {:>5}  {}\n", r.model, r.saes.len(), r.repo_id));
    }
    s
}

pub fn table_saes(rows: &[Listed]) -> String {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "?".into());
    let mut s = format!("{:<34} {:<28} {:>8} {:>6}  {:<34} cached\n", "id", "hook", "width", "l0", "neuronpedia");
    for r in rows {
        s.push_str(&format!(
            "{:<34} {:<28} {:>8} {:>6}  {:<34} {}\n",
            r.id,
            opt(r.hook.clone()),
            opt(r.width.map(|w| w.to_string())),
            opt(r.l0.map(|l| format!("{l:.0}"))),
            r.neuronpedia.as_deref().unwrap_or("-"),
            if r.cached { "yes" } else { "no" }
        ));
    }
    s
}

impl Release {
    /// How its SAEs' files sit in its repo (SAELens folders unless its conversion says
    /// otherwise); None for a conversion saescope does not read.
    pub fn layout(&self) -> Option<crate::source::SaeLayout> {
        crate::source::SaeLayout::of_conversion(self.conversion_func.as_deref())
    }
}

impl SaeEntry {
    /// The hook the SAE reads: its id as TransformerLens names hooks (`blocks.8.hook_z` too),
    /// with a width suffix (`blocks.8.hook_resid_pre_24576`, feature splitting), or Gemma
    /// Scope's `SITE/layer_L_...` path.
    pub fn hook(&self) -> Option<HookPoint> {
        if let Some(site) = self.site {
            // `layer_L/...`, or the layer alone (mntss's `path: 0`); embedding SAEs
            // (hook_embed) are not a hook point saescope has.
            let layer = self.path.parse().ok().or_else(|| self.path.strip_prefix("layer_")?.split('/').next()?.parse().ok())?;
            return Some(HookPoint::new(layer, site));
        }
        if let Some(h) = HookPoint::parse(&self.id) {
            return Some(h);
        }
        // SAEBench's sweeps: `blocks.L.hook_resid_post__trainer_N`.
        if let Some(h) = self.id.split_once("__").and_then(|(head, _)| HookPoint::parse(head)) {
            return Some(h);
        }
        // dictionary_learning's folders: `.../resid_post_layer_L/trainer_N` (andyrdt's).
        if let Some(l) = self.path.split('/').find_map(|seg| seg.strip_prefix("resid_post_layer_")).and_then(|l| l.parse().ok()) {
            return Some(HookPoint::new(l, crate::model::hooks::Site::ResidPost));
        }
        if let Some((head, tail)) = self.id.rsplit_once('_') {
            if tail.bytes().all(|b| b.is_ascii_digit()) {
                if let Some(h) = HookPoint::parse(head) {
                    return Some(h);
                }
            }
        }
        // Llama Scope's folders: `Llama3_1-8B-Base-L{layer}{R,A,M}-{8,32}x`, the residual after
        // the block, attention's output or the MLP's; its R1 distill ones end `/L{layer}R`.
        let r1 = self.path.rsplit_once('/').map(|(_, last)| last).filter(|last| last.starts_with('L') && last.ends_with(['R', 'A', 'M']));
        if let Some(rest) = self.path.strip_prefix("Llama3_1-8B-Base-L").or_else(|| r1.map(|last| &last[1..])) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let site = match rest[digits.len()..].chars().next() {
                Some('R') => crate::model::hooks::Site::ResidPost,
                Some('A') => crate::model::hooks::Site::AttnOut,
                Some('M') => crate::model::hooks::Site::MlpOut,
                _ => return None,
            };
            return digits.parse().ok().map(|l| HookPoint::new(l, site));
        }
        // Qwen Scope's `layer{L}.sae.pt` and Goodfire's `{model}-SAE-l{L}.pt(h)`: the residual
        // after the block (sae/state_dict.rs).
        let file = |name: &str| crate::source::SaeFiles { cfg: name.into(), weights: name.into() };
        if let Some(h) = crate::sae::state_dict::reads(&file(&self.path)) {
            return Some(h);
        }
        // circuit-tracer's sets (mwhanna_transcoder): `layer_L` at `layer_L.safetensors`,
        // reading the MLP's input.
        if let Some(l) = self.id.strip_prefix("layer_").and_then(|l| l.parse().ok()).filter(|_| self.path.ends_with(".safetensors")) {
            return Some(HookPoint::new(l, crate::model::hooks::Site::MlpIn));
        }
        HookPoint::from_scope_folder(&self.path)
    }

    /// The SAE's width where its name says it: `_24576` (feature splitting, mlp-tm),
    /// `width_16k`, `v5_32k`, `_ds24576` (kk); None otherwise (its cfg says).
    pub fn width(&self) -> Option<usize> {
        let text = format!("{} {}", self.id, self.path);
        let scaled = |s: &str| -> Option<usize> {
            let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
            let n: usize = digits.parse().ok()?;
            // Widths are powers of two, written in rounded thousands: 16k is 16,384, 262k
            // 262,144, 1m 1,048,576 (SAELens's Gemma Scope width map).
            let pow2 = |x: f64| 2usize.pow(x.log2().round() as u32);
            match s[digits.len()..].chars().next() {
                Some('k') => Some(pow2(n as f64 * 1e3)),
                Some('m') => Some(pow2(n as f64 * 1e6)),
                _ => Some(n),
            }
        };
        if let Some(i) = text.find("width_") {
            return scaled(&text[i + 6..]);
        }
        if let Some(i) = text.find("v5_") {
            return scaled(&text[i + 3..]);
        }
        // Llama Scope's expansion of Llama 3.1 8B's 4,096 (`Llama3_1-8B-Base-L3R-8x`).
        if let Some(x) = self.path.strip_prefix("Llama3_1-8B-Base-L").and_then(|p| p.rsplit_once('-')).and_then(|(_, x)| x.strip_suffix('x')) {
            return x.parse::<usize>().ok().map(|n| n * 4096);
        }
        // The number after the hook's name (`hook_resid_pre_768`, `hook_mlp_out_24576:v1`),
        // or after `_ds` in the kk release's file names.
        let after = ["hook_resid_pre_", "hook_resid_mid_", "hook_resid_post_", "hook_mlp_out_", "hook_attn_out_", "hook_z_", "_ds"]
            .iter()
            .find_map(|p| text.find(p).map(|i| &text[i + p.len()..]))
            .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))?;
        scaled(after)
    }
}

/// YAML to JSON values: mappings with string keys, sequences, scalars.
fn to_json(y: yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Real(s) => s.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number),
        Yaml::Integer(i) => Value::from(i),
        Yaml::String(s) => Value::String(s),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Array(a) => Value::Array(a.into_iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s,
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Real(r) => r,
                        Yaml::Boolean(b) => b.to_string(),
                        other => format!("{other:?}"),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Yaml::Null | Yaml::BadValue | Yaml::Alias(_) => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, path: &str) -> SaeEntry {
        SaeEntry { id: id.into(), path: path.into(), neuronpedia: None, l0: None, variance_explained: None, norm_scaling_factor: None, site: None }
    }

    #[test]
    fn hooks_and_widths_from_the_names_releases_use() {
        let cases = [
            ("blocks.8.hook_resid_pre", "blocks.8.hook_resid_pre", "blocks.8.hook_resid_pre", None),
            ("blocks.8.hook_resid_pre_1536", "blocks.8.hook_resid_pre_1536", "blocks.8.hook_resid_pre", Some(1536)),
            ("blocks.3.hook_z", "gpt2-small_L3_Hcat_z_lr1.20e-03_ds24576_bs4096.pt", "blocks.3.attn.hook_z", Some(24_576)),
            ("blocks.0.hook_resid_post", "v5_32k_layer_0.pt", "blocks.0.hook_resid_post", Some(32_768)),
            ("blocks.1.hook_mlp_out", "sae_group_gpt2_blocks.1.hook_mlp_out_24576:v0", "blocks.1.hook_mlp_out", Some(24_576)),
            ("layer_12_width_16k_l0_medium", "resid_post/layer_12_width_16k_l0_medium", "blocks.12.hook_resid_post", Some(16_384)),
            ("layer_5_width_262k_l0_small", "attn_out/layer_5_width_262k_l0_small", "blocks.5.attn.hook_z", Some(262_144)),
            // Qwen Scope's and Goodfire's: widths from the file (sae/state_dict.rs).
            ("layer7", "layer7.sae.pt", "blocks.7.hook_resid_post", None),
            ("layer_19", "Llama-3.1-8B-Instruct-SAE-l19.pth", "blocks.19.hook_resid_post", None),
            // DeepSeek R1's distilled Llama 8B: Llama Scope's R1 folders, qresearch's one file.
            ("l3r_800m_slimpajama", "800M-Slimpajama-0-OpenR1-Math-220k/L3R", "blocks.3.hook_resid_post", None),
            ("l31r_800m_openr1_math", "0-Slimpajama-800M-OpenR1-Math-220k/L31R", "blocks.31.hook_resid_post", None),
            ("layer19", "DeepSeek-R1-Distill-Llama-8B-SAE-l19.pt", "blocks.19.hook_resid_post", None),
        ];
        for (id, path, hook, width) in cases {
            let e = entry(id, path);
            assert_eq!(e.hook().map(|h| h.to_string()).as_deref(), Some(hook), "{id}");
            assert_eq!(e.width(), width, "{id} {path}");
        }
        assert_eq!(entry("something", "else").hook(), None);
    }

    /// Gemma Scope's (for Gemma 2) ids say no site: the repo's name does, as SAELens's gemma_2
    /// loader reads it; circuit-tracer's sets (Qwen 3) name layers; the model's main suite
    /// opens at four of its hosted layers.
    #[test]
    fn gemma_scope_and_qwen_transcoders_by_their_releases() {
        let r = Registry::bundled().expect("bundled");
        let hook = |release: &str, id: &str| -> Option<String> {
            r.release(release).and_then(|rel| rel.saes.iter().find(|e| e.id == id)).and_then(SaeEntry::hook).map(|h| h.to_string())
        };
        assert_eq!(hook("gemma-scope-2b-pt-res-canonical", "layer_12/width_16k/canonical").as_deref(), Some("blocks.12.hook_resid_post"));
        assert_eq!(hook("gemma-scope-2b-pt-mlp-canonical", "layer_3/width_16k/canonical").as_deref(), Some("blocks.3.hook_mlp_out"));
        assert_eq!(hook("gemma-scope-2b-pt-att-canonical", "layer_3/width_16k/canonical").as_deref(), Some("blocks.3.attn.hook_z"));
        assert_eq!(hook("gemma-scope-2b-pt-res", "embedding/width_4k/average_l0_6"), None, "hook_embed is not a hook point saescope has");
        assert_eq!(hook("mwhanna-qwen3-0.6b-transcoders-lowl0", "layer_3").as_deref(), Some("blocks.3.hook_mlp_in"));
        assert_eq!(r.residual_default("google/gemma-2-2b"), Some(("gemma-scope-2b-pt-res-canonical".to_string(), vec![6, 13, 16, 21])));
        assert_eq!(r.residual_default("google/gemma-3-270m"), Some(("gemma-scope-2-270m-pt-res".to_string(), vec![5, 9, 12, 15])));
        assert!(r.releases_of(Some("Qwen/Qwen3-0.6B")).iter().any(|(n, _)| *n == "mwhanna-qwen3-0.6b-transcoders-lowl0"));
        // Llama Scope: the site and the width from the folder's name.
        assert_eq!(hook("llama_scope_lxr_8x", "l3r_8x").as_deref(), Some("blocks.3.hook_resid_post"));
        assert_eq!(hook("llama_scope_lxa_32x", "l3a_32x").as_deref(), Some("blocks.3.hook_attn_out"));
        assert_eq!(hook("llama_scope_lxm_8x", "l31m_8x").as_deref(), Some("blocks.31.hook_mlp_out"));
        let lxr = r.release("llama_scope_lxr_32x").expect("lxr 32x");
        assert_eq!(lxr.saes[0].width(), Some(131_072));
        assert_eq!(r.residual_default("meta-llama/Llama-3.1-8B"), Some(("llama_scope_lxr_8x".to_string(), vec![8, 16, 20, 26])));
        // dictionary_learning's releases (SAEBench's, andyrdt's): the hook from the id or the path.
        assert_eq!(hook("sae_bench_pythia70m_sweep_topk_ctx128_0730", "blocks.3.hook_resid_post__trainer_0").as_deref(), Some("blocks.3.hook_resid_post"));
        assert_eq!(hook("llama-3.1-8b-instruct-andyrdt", "resid_post_layer_7_trainer_1").as_deref(), Some("blocks.7.hook_resid_post"));
        assert!(r.release("saebench_gemma-2-2b_width-2pow14_date-0107").and_then(Release::layout) == Some(crate::source::SaeLayout::DictionaryLearning));
        // Gemma 3 4B and 12B (multimodal checkpoints) by their Gemma Scope 2 suites.
        assert_eq!(r.residual_default("google/gemma-3-4b-pt"), Some(("gemma-scope-2-4b-pt-res".to_string(), vec![9, 17, 22, 29])));
        assert_eq!(r.residual_default("google/gemma-3-12b-pt"), Some(("gemma-scope-2-12b-pt-res".to_string(), vec![12, 24, 31, 41])));
        // Six layers: distinct picks, one the rounding would have repeated moved down a layer.
        assert_eq!(r.residual_default("EleutherAI/pythia-70m-deduped"), Some(("pythia-70m-deduped-res-sm".to_string(), vec![1, 3, 4, 5])));
    }

    /// SAELens's YAML gives the mntss CLT's paths as bare numbers (`path: 0`); the whole file
    /// was refused for it.
    #[test]
    fn a_number_where_a_path_is_expected_reads_as_its_text() {
        let dir = tempfile::tempdir().expect("tmp");
        let yaml = dir.path().join("pretrained_saes.yaml");
        std::fs::write(
            &yaml,
            "mntss-clt:\n  conversion_func: mntss_clt_layer_transcoder\n  model: gemma-2-2b\n  repo_id: mntss/clt\n  saes:\n  - id: layer_0\n    path: 0\n",
        )
        .expect("yaml");
        let r = Registry::from_yaml(&yaml).expect("read");
        assert_eq!(r.release("mntss-clt").expect("release").saes[0].path, "0");
        assert_eq!(r.release("mntss-clt").expect("release").saes[0].hook().map(|h| h.to_string()).as_deref(), Some("blocks.0.hook_resid_mid"));
    }

    #[test]
    fn the_bundled_registry_names_the_gpt2_releases() {
        let r = Registry::bundled().expect("bundled");
        let jb = r.release("gpt2-small-res-jb").expect("res-jb");
        assert_eq!(jb.repo_id, "jbloom/GPT2-Small-SAEs-Reformatted");
        let e = jb.saes.iter().find(|e| e.id == "blocks.8.hook_resid_pre").expect("layer 8");
        assert_eq!(e.neuronpedia.as_deref(), Some("gpt2-small/8-res-jb"));
        for name in
            ["gpt2-small-res-jb-feature-splitting", "gpt2-small-resid-post-v5-32k", "gpt2-small-hook-z-kk", "gpt2-small-mlp-tm", "gemma-scope-2-270m-pt-res"]
        {
            let rel = r.release(name).unwrap_or_else(|| panic!("{name}"));
            assert!(rel.saes.iter().all(|e| e.hook().is_some()), "{name}: every SAE's hook is known");
        }
        assert_eq!(
            r.by_repo_path("jbloom/GPT2-Small-SAEs-Reformatted", "blocks.11.hook_resid_post").map(|(n, _, e)| (n, e.neuronpedia.clone())),
            Some(("gpt2-small-res-jb", Some("gpt2-small/12-res-jb".into())))
        );
    }
}
