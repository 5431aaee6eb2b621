//! Which Neuronpedia SAE each loaded layer is, e.g. `gpt2-small/8-res-jb`: where a
//! feature's page is, and which rows of a Neuronpedia export belong to which layer.
//!
//! From the data first: the `neuronpedia_id` SAELens writes into an SAE's cfg.json. Else
//! from SAELens's registry of releases (`pretrained_saes.yaml`, registry.rs), by repo and
//! folder.
//! Else none: a wrong link is worse than no link. Only files already on disk are read
//! (a local folder or the hub cache), so this works before, and without, any download.

use crate::source::Source;
use serde::Serialize;
use std::collections::BTreeMap;

/// The bundled SAELens registry (registry.rs), parsed once.
fn registry() -> Option<&'static crate::registry::Registry> {
    static R: std::sync::OnceLock<Option<crate::registry::Registry>> = std::sync::OnceLock::new();
    R.get_or_init(|| crate::registry::Registry::bundled().ok()).as_ref()
}

/// Layer `layer`'s Neuronpedia id in the registry's entry for `repo`: its
/// `blocks.L.hook_resid_pre` folder, or the final `blocks.(L-1).hook_resid_post` (which is
/// what saescope calls layer n_layer: `12-res-jb` in gpt2-small-res-jb).
fn from_registry(repo: &str, layer: usize) -> Option<SaeId> {
    let reg = registry()?;
    crate::config::layer_folders(layer).iter().find_map(|f| reg.by_repo_path(repo, f)).and_then(|(_, _, e)| SaeId::parse(e.neuronpedia.as_deref()?))
}

/// One SAE's Neuronpedia identity: model id and source id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SaeId {
    pub model: String,
    pub source: String,
}

impl SaeId {
    fn parse(s: &str) -> Option<Self> {
        let (model, source) = s.trim().split_once('/')?;
        let ok = |p: &str| !p.is_empty() && !p.contains('/') && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        (ok(model) && ok(source)).then(|| Self { model: model.into(), source: source.into() })
    }
}

/// Per loaded layer, its Neuronpedia SAE when known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ids {
    by_layer: BTreeMap<usize, SaeId>,
}

impl Ids {
    /// What the files on disk and the known releases say about `saes` at `layers`.
    pub fn resolve(saes: &Source, layers: &[usize]) -> Self {
        let mut by_layer = BTreeMap::new();
        for &layer in layers {
            let from_cfg = saes.cfg_on_disk(layer).and_then(|p| {
                let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
                let id = v.get("neuronpedia_id").or_else(|| v.get("metadata").and_then(|m| m.get("neuronpedia_id")))?;
                SaeId::parse(id.as_str()?)
            });
            let known = || match saes {
                Source::Hub(repo) => from_registry(repo, layer),
                Source::Dir(_) => None,
            };
            if let Some(id) = from_cfg.or_else(known) {
                by_layer.insert(layer, id);
            }
        }
        Self { by_layer }
    }

    /// For tests and callers that know the ids already.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (usize, &'static str)>) -> Self {
        Self { by_layer: pairs.into_iter().filter_map(|(l, s)| Some((l, SaeId::parse(s)?))).collect() }
    }

    pub fn sae(&self, layer: usize) -> Option<&SaeId> {
        self.by_layer.get(&layer)
    }

    /// `8-res-jb/1234`, the short form the tables show; empty when unknown.
    pub fn short(&self, layer: usize, feature: u32) -> String {
        self.sae(layer).map(|s| format!("{}/{feature}", s.source)).unwrap_or_default()
    }

    /// The feature's page, when its SAE is known.
    pub fn url(&self, layer: usize, feature: u32) -> Option<String> {
        self.sae(layer).map(|s| format!("https://www.neuronpedia.org/{}/{}/{feature}", s.model, s.source))
    }

    /// `url`, or empty, for CSV and tab-separated columns.
    pub fn url_or_empty(&self, layer: usize, feature: u32) -> String {
        self.url(layer, feature).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_release_ids_and_none_for_the_unknown() {
        let jb = Ids::resolve(&Source::Hub("jbloom/GPT2-Small-SAEs-Reformatted".into()), &[8, 12]);
        assert_eq!(jb.url(8, 5).as_deref(), Some("https://www.neuronpedia.org/gpt2-small/8-res-jb/5"));
        assert_eq!(jb.short(12, 7), "12-res-jb/7");
        let other = Ids::resolve(&Source::Hub("someone/else".into()), &[8]);
        assert_eq!(other.url(8, 5), None);
        assert_eq!(other.short(8, 5), "");
    }

    #[test]
    fn ids_must_look_like_model_and_source() {
        assert_eq!(SaeId::parse("gpt2-small/8-res-jb"), Some(SaeId { model: "gpt2-small".into(), source: "8-res-jb".into() }));
        assert_eq!(SaeId::parse("nonsense"), None);
        assert_eq!(SaeId::parse("a/b/c"), None);
        assert_eq!(SaeId::parse("a/<script>"), None);
    }
}
