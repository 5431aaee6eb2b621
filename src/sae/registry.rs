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
    pub id: String,
    pub path: String,
    #[serde(default)]
    pub neuronpedia: Option<String>,
    #[serde(default)]
    pub l0: Option<f64>,
    #[serde(default)]
    pub variance_explained: Option<f64>,
    #[serde(default)]
    pub norm_scaling_factor: Option<f64>,
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
        Ok(Self { releases: f.releases, origin: format!("SAELens {} (bundled)", f.saelens_version) })
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
        Ok(Self { releases, origin: path.display().to_string() })
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
    /// such SAEs at; None where the registry has none.
    pub fn residual_default(&self, model: &str) -> Option<(String, Vec<usize>)> {
        let hosted = |r: &Release| -> Vec<usize> {
            let mut layers: Vec<usize> =
                r.saes.iter().filter(|e| e.neuronpedia.is_some()).filter_map(|e| e.hook()).filter(|h| h.site.is_residual()).map(|h| h.layer).collect();
            layers.sort_unstable();
            layers.dedup();
            layers
        };
        self.releases.iter().filter(|(_, r)| r.model == model).map(|(n, r)| (n.clone(), hosted(r))).find(|(_, layers)| !layers.is_empty())
    }

    /// The release whose SAEs a local folder holds (a copy of its repo, as `saescope synth`
    /// writes one), and the layers of the residual SAEs in it (of every SAE in it where none
    /// is residual): how `--sae-dir` alone opens a Gemma Scope folder. The release with the
    /// most SAEs present wins, then one for `model` (releases of a model's pt and it
    /// checkpoints share their folders' names), then the first by name.
    pub fn release_in_folder(&self, dir: &std::path::Path, model: Option<&str>) -> Option<(String, Vec<usize>)> {
        let (name, _, present) = self
            .releases
            .iter()
            .map(|(n, r)| (n, r, r.saes.iter().filter(|e| !e.path.is_empty() && dir.join(&e.path).exists()).filter_map(SaeEntry::hook).collect::<Vec<_>>()))
            .filter(|(_, _, p)| !p.is_empty())
            .min_by(|(n1, r1, p1), (n2, r2, p2)| {
                let other = |r: &Release| Some(r.model.as_str()) != model;
                p2.len().cmp(&p1.len()).then(other(r1).cmp(&other(r2))).then(n1.cmp(n2))
            })?;
        let residual: Vec<usize> = present.iter().filter(|h| h.site.is_residual()).map(|h| h.layer).collect();
        let mut layers = if residual.is_empty() { present.iter().map(|h| h.layer).collect() } else { residual };
        layers.sort_unstable();
        layers.dedup();
        Some((name.clone(), layers))
    }

    /// The release and entry of the SAE at `path` in `repo`, if the registry names one.
    pub fn by_repo_path(&self, repo: &str, path: &str) -> Option<(&str, &Release, &SaeEntry)> {
        self.releases.iter().filter(|(_, r)| r.repo_id == repo).find_map(|(n, r)| r.saes.iter().find(|e| e.path == path).map(|e| (n.as_str(), r, e)))
    }
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
        if let Some(h) = HookPoint::parse(&self.id) {
            return Some(h);
        }
        if let Some((head, tail)) = self.id.rsplit_once('_') {
            if tail.bytes().all(|b| b.is_ascii_digit()) {
                if let Some(h) = HookPoint::parse(head) {
                    return Some(h);
                }
            }
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
        SaeEntry { id: id.into(), path: path.into(), neuronpedia: None, l0: None, variance_explained: None, norm_scaling_factor: None }
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
        ];
        for (id, path, hook, width) in cases {
            let e = entry(id, path);
            assert_eq!(e.hook().map(|h| h.to_string()).as_deref(), Some(hook), "{id}");
            assert_eq!(e.width(), width, "{id} {path}");
        }
        assert_eq!(entry("something", "else").hook(), None);
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
