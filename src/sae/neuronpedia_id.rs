//! Which Neuronpedia SAE each loaded SAE is, e.g. `gpt2-small/8-res-jb`: where a
//! feature's page is, and which rows of a Neuronpedia export belong to which SAE.
//!
//! From the data first: the `neuronpedia_id` SAELens writes into an SAE's cfg.json. Else
//! from SAELens's registry of releases (`pretrained_saes.yaml`, registry.rs), by release
//! entry, or by repo and folder (pipeline/resolve.rs). Else none: a wrong link is worse
//! than no link.

use crate::sae::key::SaeKey;
use serde::Serialize;
use std::collections::BTreeMap;

/// One SAE's Neuronpedia identity: model id and source id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SaeId {
    pub model: String,
    pub source: String,
}

impl SaeId {
    /// The `neuronpedia_id` SAELens writes into a cfg.json (top level or under `metadata`).
    pub fn from_cfg(path: &std::path::Path) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        let id = v.get("neuronpedia_id").filter(|x| !x.is_null()).or_else(|| v.get("metadata").and_then(|m| m.get("neuronpedia_id")))?;
        Self::parse(id.as_str()?)
    }

    pub fn parse(s: &str) -> Option<Self> {
        let (model, source) = s.trim().split_once('/')?;
        let ok = |p: &str| !p.is_empty() && !p.contains('/') && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        (ok(model) && ok(source)).then(|| Self { model: model.into(), source: source.into() })
    }
}

/// Per loaded SAE, its Neuronpedia SAE when known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ids {
    by_sae: BTreeMap<SaeKey, SaeId>,
}

impl Ids {
    /// From each SAE's id, found with its files (pipeline::Resolved).
    pub fn from_found(found: impl IntoIterator<Item = (SaeKey, Option<SaeId>)>) -> Self {
        Self { by_sae: found.into_iter().filter_map(|(k, id)| Some((k, id?))).collect() }
    }

    /// For tests and callers that know the ids already.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (SaeKey, &'static str)>) -> Self {
        Self { by_sae: pairs.into_iter().filter_map(|(k, s)| Some((k, SaeId::parse(s)?))).collect() }
    }

    pub fn sae(&self, key: SaeKey) -> Option<&SaeId> {
        self.by_sae.get(&key)
    }

    /// `8-res-jb/1234`, the short form the tables show; empty when unknown.
    pub fn short(&self, key: SaeKey, feature: u32) -> String {
        self.sae(key).map(|s| format!("{}/{feature}", s.source)).unwrap_or_default()
    }

    /// The feature's page, when its SAE is known.
    pub fn url(&self, key: SaeKey, feature: u32) -> Option<String> {
        self.sae(key).map(|s| format!("https://www.neuronpedia.org/{}/{}/{feature}", s.model, s.source))
    }

    /// `url`, or empty, for CSV and tab-separated columns.
    pub fn url_or_empty(&self, key: SaeKey, feature: u32) -> String {
        self.url(key, feature).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_link_to_their_sae_s_pages() {
        let key = SaeKey::new(crate::model::hooks::HookPoint::new(11, crate::model::hooks::Site::ResidPost), 24576);
        let ids = Ids::from_pairs([(key, "gpt2-small/12-res-jb")]);
        assert_eq!(ids.url(key, 5).as_deref(), Some("https://www.neuronpedia.org/gpt2-small/12-res-jb/5"));
        assert_eq!(ids.short(key, 7), "12-res-jb/7");
        let other = SaeKey { width: 512, ..key };
        assert_eq!((ids.url(other, 5), ids.short(other, 5)), (None, String::new()));
    }

    #[test]
    fn ids_must_look_like_model_and_source() {
        assert_eq!(SaeId::parse("gpt2-small/8-res-jb"), Some(SaeId { model: "gpt2-small".into(), source: "8-res-jb".into() }));
        assert_eq!(SaeId::parse("nonsense"), None);
        assert_eq!(SaeId::parse("a/b/c"), None);
        assert_eq!(SaeId::parse("a/<script>"), None);
    }
}
