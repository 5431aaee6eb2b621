//! How every result names the SAE it came from: the hook it reads and its width. A run may
//! load several SAEs at one hook (feature splitting differs in width) and SAEs at several
//! hooks of one layer, so a layer number no longer says which; the key does, and sorting
//! keys sorts SAEs by depth (layer, then position in the block), then width: the order of
//! the explorer's tabs, the report's rows and the cache's vectors.

use crate::model::hooks::{HookPoint, Site};
use color_eyre::eyre::{bail, Result};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SaeKey {
    pub hook: HookPoint,
    pub width: usize,
}

impl SaeKey {
    pub fn new(hook: HookPoint, width: usize) -> Self {
        Self { hook, width }
    }

    pub fn layer(&self) -> usize {
        self.hook.layer
    }

    /// `8 res`: layer and site, the tab label when the width tells nothing.
    pub fn short(&self) -> String {
        format!("{} {}", self.hook.layer, self.hook.site.short())
    }

    /// The layer number a user of the layer-numbered views means by this SAE: its layer,
    /// or for a residual after block L, L + 1 (the same residual as `blocks.(L+1).hook_resid_pre`).
    pub fn depth_layer(&self) -> usize {
        match self.hook.site {
            Site::ResidPost => self.hook.layer + 1,
            _ => self.hook.layer,
        }
    }
}

/// `24k` for 24,576, `1.5k` for 1,536, `768` below a thousand: widths as releases name them.
pub fn width_label(width: usize) -> String {
    if width >= 1 << 20 && width.is_multiple_of(1 << 20) {
        return format!("{}M", width >> 20);
    }
    if width >= 1024 && width.is_multiple_of(1024) {
        return format!("{}k", width / 1024);
    }
    if width >= 1024 && width.is_multiple_of(512) {
        return format!("{}.5k", width / 1024);
    }
    width.to_string()
}

impl fmt::Display for SaeKey {
    /// `8 res 24k`: short enough for a tab, distinct for every SAE of a run.
    /// A width of 0 (not known yet: `Selection::planned`) is left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.width {
            0 => write!(f, "{}", self.short()),
            w => write!(f, "{} {}", self.short(), width_label(w)),
        }
    }
}

/// In JSON: the label and what it stands for, so a reader needs no parsing.
impl serde::Serialize for SaeKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("SaeKey", 4)?;
        st.serialize_field("label", &self.to_string())?;
        st.serialize_field("hook", &self.hook.to_string())?;
        st.serialize_field("layer", &self.hook.layer)?;
        st.serialize_field("width", &self.width)?;
        st.end()
    }
}

/// Tab labels for the SAEs of one run: `8 res` where no other SAE shares the hook, the
/// full `8 res 24k` where several do (feature splitting).
pub fn labels(keys: &[SaeKey]) -> Vec<String> {
    keys.iter().map(|k| if keys.iter().filter(|o| o.hook == k.hook).count() > 1 { k.to_string() } else { k.short() }).collect()
}

/// Labels for a bar of tabs: where every SAE sits at the same site, one per hook, the
/// site once (`res`) and each tab its layer (`6`); else `labels`.
/// Residual SAEs before and after blocks, one per depth (res-jb's 0-11 and 12), are
/// numbered by depth: `12` is the residual after the last block.
pub fn tabs(keys: &[SaeKey]) -> (Option<&'static str>, Vec<String>) {
    let one_site = keys.first().map(|k| k.hook.site).filter(|&s| keys.iter().all(|k| k.hook.site == s));
    let one_per_hook = keys.windows(2).all(|w| w[0].hook != w[1].hook);
    let residual = keys.iter().all(|k| matches!(k.hook.site, Site::ResidPre | Site::ResidPost));
    let one_per_depth = keys.windows(2).all(|w| w[0].depth_layer() != w[1].depth_layer());
    match one_site {
        Some(site) if one_per_hook => (Some(site.short()), keys.iter().map(|k| k.hook.layer.to_string()).collect()),
        _ if residual && one_per_depth => (Some(Site::ResidPre.short()), keys.iter().map(|k| k.depth_layer().to_string()).collect()),
        _ => (None, labels(keys)),
    }
}

/// The loaded SAE a user names on the command line or in a file: a layer number (when one
/// SAE sits at that depth), a TransformerLens hook name, or a label as tabs show it (`8 res`,
/// `8 res 24k`, `8res24k`), with an optional `@WIDTH` on a hook name.
pub fn pick(keys: &[SaeKey], text: &str) -> Result<SaeKey> {
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase();
    let t = squash(text);
    let (name, width) = match t.split_once('@') {
        Some((n, w)) => (
            n.to_string(),
            Some(
                w.parse::<usize>()
                    .ok()
                    .filter(|&w| w > 0)
                    .ok_or_else(|| color_eyre::eyre::eyre!("{text:?}: the width after @ must be a number of features"))?,
            ),
        ),
        None => (t.clone(), None),
    };
    let found: Vec<SaeKey> = if let Ok(layer) = name.parse::<usize>() {
        // The residual numbering first (`12` is the final resid_post), then the block's number.
        let of_width = |k: &SaeKey| width.is_none_or(|w| k.width == w);
        let by_depth: Vec<SaeKey> = keys.iter().copied().filter(|k| k.depth_layer() == layer && of_width(k)).collect();
        if by_depth.is_empty() {
            keys.iter().copied().filter(|k| k.hook.layer == layer && of_width(k)).collect()
        } else {
            by_depth
        }
    } else if let Some(h) = HookPoint::parse(&name).or_else(|| HookPoint::parse(text.trim())) {
        keys.iter().copied().filter(|k| k.hook == h && width.is_none_or(|w| k.width == w)).collect()
    } else {
        let exact: Vec<SaeKey> = keys.iter().copied().filter(|k| squash(&k.to_string()) == name).collect();
        if exact.is_empty() {
            keys.iter().copied().filter(|k| squash(&k.short()) == name).collect()
        } else {
            exact
        }
    };
    let all = || keys.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    match found.as_slice() {
        [one] => Ok(*one),
        [] => bail!("no loaded SAE is {text:?}; the run's SAEs are {} (name one by layer, hook or label)", all()),
        many => {
            let names: Vec<String> = many.iter().map(ToString::to_string).collect();
            bail!("{text:?} could be any of {}; name one by its label, e.g. {:?}", names.join(", "), names[0].replace(' ', ""))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, width: usize) -> SaeKey {
        SaeKey::new(HookPoint::parse(name).expect("hook"), width)
    }

    #[test]
    fn keys_sort_by_depth_then_width_and_read_at_80_columns() {
        let mut keys = vec![
            key("blocks.8.hook_mlp_out", 24576),
            key("blocks.8.hook_resid_pre", 3072),
            key("blocks.8.attn.hook_z", 24576),
            key("blocks.8.hook_resid_pre", 768),
            key("blocks.7.hook_resid_post", 32768),
        ];
        keys.sort();
        let shown: Vec<String> = keys.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["7 post 32k", "8 res 768", "8 res 3k", "8 z 24k", "8 mlp 24k"]);
        assert_eq!(labels(&keys), ["7 post", "8 res 768", "8 res 3k", "8 z", "8 mlp"]);
        let jb = [key("blocks.11.hook_resid_pre", 512), key("blocks.11.hook_resid_post", 512)];
        assert_eq!(tabs(&jb), (Some("res"), vec!["11".to_string(), "12".to_string()]), "the final resid_post is depth 12");
        assert_eq!(tabs(&keys[1..3]).0, None, "two SAEs at one hook need their widths");
        assert_eq!(width_label(1536), "1.5k");
        assert_eq!(width_label(1 << 20), "1M");
    }

    #[test]
    fn users_name_an_sae_by_layer_hook_or_label() {
        let keys = [
            key("blocks.6.hook_resid_pre", 512),
            key("blocks.8.hook_resid_pre", 768),
            key("blocks.8.hook_resid_pre", 1536),
            key("blocks.11.hook_resid_post", 512),
        ];
        assert_eq!(pick(&keys, "6").ok(), Some(keys[0]));
        assert_eq!(pick(&keys, "12").ok(), Some(keys[3]), "the layer after the last block is the final resid_post");
        assert_eq!(pick(&keys, "11").ok(), Some(keys[3]));
        let jb = [key("blocks.11.hook_resid_pre", 512), key("blocks.11.hook_resid_post", 512)];
        assert_eq!((pick(&jb, "11").ok(), pick(&jb, "12").ok()), (Some(jb[0]), Some(jb[1])));
        assert_eq!(pick(&keys, "8 res 1.5k").ok(), Some(keys[2]));
        assert_eq!(pick(&keys, "8res768").ok(), Some(keys[1]));
        assert_eq!(pick(&keys, "blocks.8.hook_resid_pre@1536").ok(), Some(keys[2]));
        assert_eq!(pick(&keys, "8@768").ok(), Some(keys[1]));
        let err = pick(&keys, "8").map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("8 res 768") && err.contains("8 res 1.5k"), "{err}");
        assert!(pick(&keys, "9").is_err());
        assert!(pick(&keys, "8@x").is_err());
    }
}
