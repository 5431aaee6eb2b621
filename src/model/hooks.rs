//! The points in a transformer's forward pass that an SAE reads, named as TransformerLens
//! names them (`blocks.8.hook_resid_pre`, `blocks.8.attn.hook_z`, ...), and the weight
//! processing a release was trained under. Plain data: a model family computes them
//! (gpt2.rs, gemma.rs, llama.rs behind mod.rs), SAEs name them in their cfg.json, and nothing else needs to know
//! how they are computed.

use std::fmt;

/// Where in block `layer` a hook sits. The order is the order within a block, so sorting
/// hook points sorts them by depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Site {
    /// The residual stream entering the block.
    ResidPre,
    /// Each head's attention-weighted values, heads concatenated ([n_heads * d_head]), as
    /// SAELens reshapes `attn.hook_z` for its SAEs.
    AttnZ,
    /// What attention writes to the residual.
    AttnOut,
    /// The residual between attention and MLP.
    ResidMid,
    /// What the MLP reads: its norm's output, weights included (GPT-2's `ln_2`, Gemma's
    /// `pre_feedforward_layernorm`). SAELens names Gemma Scope 2 transcoders' input so
    /// (its gemma_3 loader, `hf_hook_point_in`), although TransformerLens's own
    /// `hook_mlp_in` is the residual before that norm.
    MlpIn,
    /// The MLP's input LayerNorm output (what transcoders read).
    Ln2Normalized,
    /// What the MLP writes to the residual.
    MlpOut,
    /// The residual leaving the block.
    ResidPost,
}

impl Site {
    const ALL: [(Site, &'static str); 8] = [
        (Site::ResidPre, "hook_resid_pre"),
        (Site::AttnZ, "attn.hook_z"),
        (Site::AttnOut, "hook_attn_out"),
        (Site::ResidMid, "hook_resid_mid"),
        (Site::MlpIn, "hook_mlp_in"),
        (Site::Ln2Normalized, "ln2.hook_normalized"),
        (Site::MlpOut, "hook_mlp_out"),
        (Site::ResidPost, "hook_resid_post"),
    ];

    /// TransformerLens's name after `blocks.L.`.
    pub fn suffix(self) -> &'static str {
        Site::ALL.iter().find(|(s, _)| *s == self).map_or("", |(_, n)| n)
    }

    /// The residual stream itself (an edit here stays in it).
    pub fn is_residual(self) -> bool {
        matches!(self, Site::ResidPre | Site::ResidMid | Site::ResidPost)
    }

    /// The residual, or what is added to it as it is: under `center_writing_weights`
    /// TransformerLens holds these minus their mean over d_model. (z reaches the residual
    /// through W_O, whose output is centred; the MLP's normalised input never does.)
    pub fn writes_residual(self) -> bool {
        self.is_residual() || matches!(self, Site::AttnOut | Site::MlpOut)
    }

    /// A short word for tabs and tables (`res`, `att`, `mlp`...).
    pub fn short(self) -> &'static str {
        match self {
            Site::ResidPre => "res",
            Site::AttnZ => "z",
            Site::AttnOut => "att",
            Site::ResidMid => "mid",
            Site::MlpIn => "in",
            Site::Ln2Normalized => "ln2",
            Site::MlpOut => "mlp",
            Site::ResidPost => "post",
        }
    }
}

/// One hook point: a site in a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HookPoint {
    pub layer: usize,
    pub site: Site,
}

impl HookPoint {
    pub fn new(layer: usize, site: Site) -> Self {
        Self { layer, site }
    }

    /// `blocks.L.<site>` as TransformerLens and SAELens cfgs write it; None for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        let rest = name.strip_prefix("blocks.")?;
        let (layer, suffix) = rest.split_once('.')?;
        let layer = layer.parse().ok()?;
        // SAELens's registry names hook_z SAEs `blocks.L.hook_z`.
        let suffix = if suffix == "hook_z" { "attn.hook_z" } else { suffix };
        Site::ALL.iter().find(|(_, n)| *n == suffix).map(|(site, _)| Self { layer, site: *site })
    }

    /// Gemma Scope's folder layout, `SITE/layer_L_...` (`resid_post/layer_12_width_16k_l0_medium`),
    /// as SAELens's gemma_3 loader maps it: `resid_post`, `mlp_out`, and `attn_out` on the
    /// heads' z; a transcoder (`transcoder`, `transcoder_all`, `..._affine`) reads the MLP's
    /// input (`MlpIn`). None for other folders.
    pub fn from_scope_folder(path: &str) -> Option<Self> {
        let mut parts = path.trim_end_matches('/').rsplit('/');
        let (folder, site) = (parts.next()?, parts.next()?);
        let layer = folder.strip_prefix("layer_")?.split('_').next()?.parse().ok()?;
        // SAELens's gemma_3 loader matches these within the folder's name, so the
        // every-layer suites' `resid_post_all/` and the like read the same hooks.
        let site = match site.strip_suffix("_all").unwrap_or(site) {
            "resid_post" => Site::ResidPost,
            "mlp_out" => Site::MlpOut,
            "attn_out" => Site::AttnZ,
            s if s.starts_with("transcoder") => Site::MlpIn,
            _ => return None,
        };
        Some(Self { layer, site })
    }

    /// Blocks the forward must run, wholly or in part, to reach this point: a block's
    /// input needs the blocks before it, anything inside block L needs block L too.
    pub fn blocks_needed(&self) -> usize {
        match self.site {
            Site::ResidPre => self.layer,
            _ => self.layer + 1,
        }
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blocks.{}.{}", self.layer, self.site.suffix())
    }
}

/// TransformerLens's weight processing (`HookedTransformer.from_pretrained` flags) where it
/// changes what a hook holds: SAEs must be fed what they were trained on.
/// - `center_writing_weights`: every write to the residual is mean-zero over d_model, so
///   the residual hooks and `attn_out`/`mlp_out` are the HF values minus their mean.
/// - `fold_value_biases`: `b_V` and `ln_1.b @ W_V` (which `fold_ln` puts there) move into
///   `b_O`; attention rows sum to 1, so `hook_z` is HF's z minus that per-head bias.
///
/// `fold_ln` and `center_unembed` change no hook: `ln2.hook_normalized` is the input
/// normalised before LayerNorm's affine map either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Processing {
    pub center_writing_weights: bool,
    pub fold_value_biases: bool,
}

impl Processing {
    /// `from_pretrained`'s defaults, what most SAELens releases were trained under.
    pub const DEFAULT: Self = Self { center_writing_weights: true, fold_value_biases: true };
    /// `from_pretrained_no_processing`: the HF model's own values.
    pub const NONE: Self = Self { center_writing_weights: false, fold_value_biases: false };
}

impl Default for Processing {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The folders an SAE of layer `layer` may be in before the model's n_layer is known: its
/// `blocks.L.hook_resid_pre`, or `blocks.(L-1).hook_resid_post`, which holds the same
/// residual (the only one for the layer after the last block, see `hook_name`).
pub fn layer_folders(layer: usize) -> Vec<String> {
    let mut folders = vec![format!("blocks.{layer}.hook_resid_pre")];
    if layer > 0 {
        folders.push(format!("blocks.{}.hook_resid_post", layer - 1));
    }
    folders
}

/// The TransformerLens hook an SAE of layer `layer` reads: the residual entering block
/// `layer`, or after the last block for `layer == n_layer`.
pub fn hook_name(layer: usize, n_layer: usize) -> String {
    if layer >= n_layer {
        format!("blocks.{}.hook_resid_post", n_layer - 1)
    } else {
        format!("blocks.{layer}.hook_resid_pre")
    }
}

/// Requested layers in the order every view shows them: ascending, each once.
pub fn normalize_layers(layers: &[usize]) -> Vec<usize> {
    let mut v = layers.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_depth() {
        for name in [
            "blocks.0.hook_resid_pre",
            "blocks.8.attn.hook_z",
            "blocks.8.hook_attn_out",
            "blocks.8.hook_resid_mid",
            "blocks.8.ln2.hook_normalized",
            "blocks.8.hook_mlp_in",
            "blocks.11.hook_mlp_out",
            "blocks.11.hook_resid_post",
        ] {
            assert_eq!(HookPoint::parse(name).map(|h| h.to_string()).as_deref(), Some(name));
        }
        assert_eq!(HookPoint::parse("blocks.3.hook_z"), Some(HookPoint::new(3, Site::AttnZ)));
        assert_eq!(HookPoint::from_scope_folder("x/y/attn_out/layer_5_width_262k_l0_small"), Some(HookPoint::new(5, Site::AttnZ)));
        assert_eq!(HookPoint::from_scope_folder("transcoder/layer_5_width_16k_l0_big"), Some(HookPoint::new(5, Site::MlpIn)));
        assert_eq!(HookPoint::from_scope_folder("resid_post_all/layer_0_width_16k_l0_big"), Some(HookPoint::new(0, Site::ResidPost)));
        assert_eq!(HookPoint::from_scope_folder("mlp_out_all/layer_17_width_262k_l0_small"), Some(HookPoint::new(17, Site::MlpOut)));
        assert_eq!(HookPoint::from_scope_folder("clt/width_262k_l0_big"), None);
        for bad in ["blocks.x.hook_resid_pre", "blocks.8.hook_nothing", "hook_resid_pre", "blocks.8"] {
            assert_eq!(HookPoint::parse(bad), None, "{bad}");
        }
        let mut hooks: Vec<HookPoint> = ["blocks.8.hook_mlp_out", "blocks.9.hook_resid_pre", "blocks.8.hook_resid_pre", "blocks.8.attn.hook_z"]
            .iter()
            .filter_map(|n| HookPoint::parse(n))
            .collect();
        hooks.sort();
        let names: Vec<String> = hooks.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["blocks.8.hook_resid_pre", "blocks.8.attn.hook_z", "blocks.8.hook_mlp_out", "blocks.9.hook_resid_pre"]);
        assert_eq!((hooks[0].blocks_needed(), hooks[1].blocks_needed()), (8, 9));
    }
}
