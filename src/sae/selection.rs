//! Which SAEs a run loads and where they live, decided from the command line before any
//! file is read: SAELens's names (`--sae-release NAME --sae ID`, or the release's SAEs at
//! `--layers`), or a repo or folder of SAELens folders named for their hooks, by layer or
//! by hook (`--sae blocks.3.hook_mlp_in`).
//! `pipeline::Resolved` turns a selection into files and keys.

use crate::model::hooks::{HookPoint, Processing};
use crate::sae::key::SaeKey;
use crate::sae::registry::{Registry, Release, SaeEntry};
use crate::source::{SaeLayout, Source};
use color_eyre::eyre::{bail, eyre, Result};

/// SAEs to load, from one repo or folder, or from the repos of several SAELens releases.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Where `Wanted::Layer` SAEs are (a named SAE carries its own source).
    pub source: Source,
    pub wanted: Vec<Wanted>,
    /// The SAELens releases the SAEs were named from, if any (for labels and the report).
    pub release: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Wanted {
    /// The residual SAE of a layer in a repo or folder of SAELens folders named for hooks:
    /// `blocks.L.hook_resid_pre/`, or after the last block `blocks.(L-1).hook_resid_post/`
    /// (hooks::hook_name; which one needs the model's n_layer).
    Layer(usize),
    /// One SAE a registry names.
    Named(Named),
}

/// One SAE of a SAELens release, with what the registry says that its files do not.
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    /// SAELens's id (`blocks.8.hook_resid_pre_768`).
    pub id: String,
    /// Its release's repo, or the local folder holding it (`--sae-dir`).
    pub source: Source,
    pub hook: HookPoint,
    /// Where in the repo: a folder, or one `.pt` file (`layout`).
    pub path: String,
    pub layout: SaeLayout,
    pub neuronpedia: Option<String>,
    /// The width the SAE's name says, if it does (its files always do).
    pub width: Option<usize>,
    /// SAELens folds it into the weights at `from_pretrained` (inputs scaled by it).
    pub norm_scaling_factor: Option<f64>,
    /// The release's `config_overrides.model_from_pretrained_kwargs`, which SAELens lays
    /// over the SAE's own cfg.
    pub processing: Option<Processing>,
    /// TopK's k in the release's repo name, where its files give none (Qwen Scope's).
    pub k: Option<usize>,
}

impl Named {
    /// The SAE in a folder named for its hook (`blocks.8.hook_resid_pre`) of a repo or local
    /// folder, with its Neuronpedia id where the bundled registry knows that repo's folder;
    /// None for a folder name that is not a hook.
    pub fn in_folder(source: &Source, folder: &str) -> Option<Self> {
        let neuronpedia = match source {
            Source::Hub(repo) => Registry::bundled().ok().and_then(|r| r.by_repo_path(repo, folder).and_then(|(_, _, e)| e.neuronpedia.clone())),
            Source::Dir(_) => None,
        };
        let hook = HookPoint::parse(folder)?;
        // A cross-layer transcoder's folder: the hook names the layer whose encoder to open.
        let (path, layout) = match source {
            Source::Dir(d) if crate::sae::cross_layer::is_dir(d) => {
                (hook.layer.to_string(), if d.join("config.yaml").is_file() { SaeLayout::CrossLayer } else { SaeLayout::ScopeCrossLayer })
            }
            _ => (folder.to_string(), SaeLayout::Folder),
        };
        Some(Self {
            id: folder.to_string(),
            source: source.clone(),
            hook,
            path,
            layout,
            neuronpedia,
            width: None,
            norm_scaling_factor: None,
            processing: None,
            k: None,
        })
    }

    fn of(release_name: &str, release: &Release, e: &SaeEntry, source: Source) -> Result<Self> {
        let hook = e.hook().ok_or_else(|| eyre!("SAE {} of {release_name} reads a hook saescope does not know ({})", e.id, e.path))?;
        let layout = release.layout().ok_or_else(|| {
            eyre!(
                "release {release_name} is stored in a layout saescope does not read yet (SAELens converts it with {})",
                release.conversion_func.as_deref().unwrap_or("?")
            )
        })?;
        let kwargs = release.config_overrides.as_ref().and_then(|o| o.get("model_from_pretrained_kwargs"));
        let processing = kwargs.map(|m| {
            let flag = |k: &str, default: bool| m.get(k).and_then(serde_json::Value::as_bool).unwrap_or(default);
            Processing { center_writing_weights: flag("center_writing_weights", true), fold_value_biases: flag("fold_value_biases", true) }
        });
        Ok(Self {
            id: e.id.clone(),
            source,
            hook,
            path: e.path.clone(),
            layout,
            neuronpedia: e.neuronpedia.clone(),
            width: e.width(),
            norm_scaling_factor: e.norm_scaling_factor,
            processing,
            k: (release.conversion_func.as_deref() == Some("qwen_scope")).then(|| crate::sae::state_dict::qwen_scope_k(&release.repo_id)).flatten(),
        })
    }
}

impl Selection {
    /// From the command line's `--sae-release`, `--sae`, `--sae-dir` and `--layers`.
    pub fn from_args(release: &str, ids: &[String], layers: &[usize], dir: Option<&std::path::Path>, registry: Option<&std::path::Path>) -> Result<Self> {
        let by_layer = || crate::model::hooks::normalize_layers(layers).into_iter().map(Wanted::Layer).collect::<Vec<_>>();
        // A repo (with its slash) or a folder of SAELens folders named for hooks, by layer.
        if release.contains('/') {
            let source = dir.map_or_else(|| Source::Hub(release.to_string()), |d| Source::Dir(d.to_path_buf()));
            if ids.is_empty() {
                return Ok(Self { source, wanted: by_layer(), release: None });
            }
            // `--sae` there names the folders themselves, by hook: any site, transcoders too.
            let wanted = ids
                .iter()
                .map(|id| {
                    Named::in_folder(&source, id).map(Wanted::Named).ok_or_else(|| {
                        eyre!("--sae {id:?}: in a repo or --sae-dir, --sae names a folder by its hook (blocks.3.hook_mlp_in), or name a SAELens release with --sae-release")
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(Self { source, wanted, release: None });
        }
        // Release names (a comma list mixes releases): their SAEs at --layers, or the --sae
        // ids each names, from the hub or from local copies of their repos (--sae-dir: the
        // repo itself for one release, DIR/ORG/NAME for several).
        let reg = Registry::load(registry)?;
        let names: Vec<&str> = release.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
        let mut wanted = Vec::new();
        for name in &names {
            let r = reg.release(name).ok_or_else(|| reg.unknown(name))?;
            let source = match dir {
                None => Source::Hub(r.repo_id.clone()),
                Some(d) if names.len() == 1 => Source::Dir(d.to_path_buf()),
                Some(d) => Source::Dir(d.join(&r.repo_id)),
            };
            let entries: Vec<&SaeEntry> = match (ids.is_empty(), names.len()) {
                (true, _) => at_layers(name, r, layers)?,
                (false, 1) => with_ids(name, r, ids)?,
                // Several releases: each takes the ids it has; every id must be somewhere.
                (false, _) => r.saes.iter().filter(|e| ids.contains(&e.id)).collect(),
            };
            for e in entries {
                wanted.push(Wanted::Named(Named::of(name, r, e, source.clone())?));
            }
        }
        if names.len() > 1 {
            if let Some(id) = ids.iter().find(|id| !wanted.iter().any(|w| matches!(w, Wanted::Named(n) if &n.id == *id))) {
                bail!("none of the releases {} has an SAE {id:?}; `saescope saes RELEASE` lists each one's", names.join(", "));
            }
        }
        let source =
            wanted.iter().find_map(|w| if let Wanted::Named(n) = w { Some(n.source.clone()) } else { None }).unwrap_or(Source::Hub(release.to_string()));
        Ok(Self { source, wanted, release: Some(names.join(",")) })
    }

    /// The keys the run will have, as far as files already on disk and the SAEs' names
    /// tell before anything is downloaded (a width of 0 where neither does), with their
    /// Neuronpedia ids: what the explorer shows and reads labels against until the SAEs
    /// are found (`Labels::settle`). Sorted as the run's keys are.
    pub fn planned(&self) -> (Vec<SaeKey>, crate::sae::neuronpedia_id::Ids) {
        let mut keys = Vec::new();
        for w in &self.wanted {
            let (hook, path, layout, width, np, source) = match w {
                Wanted::Named(n) => (Some(n.hook), n.path.clone(), n.layout, n.width, n.neuronpedia.clone(), &n.source),
                Wanted::Layer(l) => {
                    // The layer's folder that is on disk, else its resid_pre.
                    let folders = crate::model::hooks::layer_folders(*l);
                    let on_disk = folders.iter().find(|f| self.source.sae_on_disk(f, SaeLayout::Folder).is_some()).unwrap_or(&folders[0]);
                    let Some(n) = Named::in_folder(&self.source, on_disk) else { continue };
                    (Some(n.hook), n.path, SaeLayout::Folder, None, n.neuronpedia, &self.source)
                }
            };
            let Some(hook) = hook else { continue };
            let files = source.sae_on_disk(&path, layout);
            let width = files.as_ref().and_then(|f| crate::sae::Sae::width(f).ok()).or(width).unwrap_or(0);
            let id = files
                .as_ref()
                .and_then(|f| crate::sae::neuronpedia_id::SaeId::from_cfg(&f.cfg))
                .or_else(|| np.as_deref().and_then(crate::sae::neuronpedia_id::SaeId::parse));
            keys.push((SaeKey::new(hook, width), id));
        }
        keys.sort_by_key(|(k, _)| *k);
        let ids = crate::sae::neuronpedia_id::Ids::from_found(keys.iter().cloned());
        (keys.into_iter().map(|(k, _)| k).collect(), ids)
    }

    /// `label` short enough for the explorer's status line: the first release and how many more.
    pub fn short_label(&self) -> String {
        let label = self.label();
        match label.split_once(',') {
            Some((first, rest)) => format!("{first} +{}", rest.split(',').count()),
            None => label,
        }
    }

    /// What the status bar and the report call the SAEs: the release name, else the repo or folder.
    pub fn label(&self) -> String {
        self.release.clone().unwrap_or_else(|| self.source.label())
    }
}

/// `--sae ID,...`: each id of the release, in the order given.
fn with_ids<'r>(name: &str, r: &'r Release, ids: &[String]) -> Result<Vec<&'r SaeEntry>> {
    let mut out: Vec<&SaeEntry> = Vec::new();
    for id in ids {
        let e = r.saes.iter().find(|e| &e.id == id).ok_or_else(|| {
            let some: Vec<&str> = r.saes.iter().take(4).map(|e| e.id.as_str()).collect();
            eyre!("release {name} has no SAE {id:?} (its ids are like {}; `saescope saes {name}` lists them)", some.join(", "))
        })?;
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

/// `--layers`: per layer, the release's SAEs on that layer's residual (`12` is the final
/// resid_post in a release of resid_pre SAEs, and every width of a feature-splitting
/// release), else the SAEs in block L (resid_post, attn_out, hook_z...), one per hook where
/// a release offers several widths and sparsities there (Gemma Scope 2: 16k to 1M, three
/// L0s each): the narrowest that Neuronpedia hosts, as Neuronpedia's own defaults are.
fn at_layers<'r>(name: &str, r: &'r Release, layers: &[usize]) -> Result<Vec<&'r SaeEntry>> {
    let mut out = Vec::new();
    for layer in crate::model::hooks::normalize_layers(layers) {
        let folders = crate::model::hooks::layer_folders(layer);
        let residual: Vec<&SaeEntry> = r.saes.iter().filter(|e| e.hook().is_some_and(|h| folders[0] == h.to_string())).collect();
        let found: Vec<&SaeEntry> = if residual.is_empty() {
            let in_block = one_per_hook(r.saes.iter().filter(|e| e.hook().is_some_and(|h| h.layer == layer)).collect());
            if in_block.is_empty() {
                r.saes.iter().filter(|e| e.hook().is_some_and(|h| folders.get(1) == Some(&h.to_string()))).collect()
            } else {
                in_block
            }
        } else {
            residual
        };
        if found.is_empty() {
            let mut have: Vec<usize> = r.saes.iter().filter_map(|e| e.hook().map(|h| h.layer)).collect();
            have.sort_unstable();
            have.dedup();
            let have: Vec<String> = have.iter().map(ToString::to_string).collect();
            bail!("release {name} has no SAE at layer {layer} (its layers: {}); `saescope saes {name}` lists its SAEs", have.join(", "));
        }
        out.extend(found);
    }
    Ok(out)
}

/// Per hook of `entries`, in their order: the one entry there, else the narrowest with a
/// Neuronpedia id (or the narrowest of all where none has one).
fn one_per_hook(entries: Vec<&SaeEntry>) -> Vec<&SaeEntry> {
    let mut out: Vec<&SaeEntry> = Vec::new();
    for e in &entries {
        let hook = e.hook();
        if out.iter().any(|o| o.hook() == hook) {
            continue;
        }
        let here: Vec<&SaeEntry> = entries.iter().copied().filter(|x| x.hook() == hook).collect();
        let hosted: Vec<&SaeEntry> = here.iter().copied().filter(|x| x.neuronpedia.is_some()).collect();
        let pool = if hosted.is_empty() { here } else { hosted };
        if let Some(best) = pool.iter().copied().min_by_key(|x| x.width().unwrap_or(usize::MAX)) {
            out.push(best);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(s: &Selection) -> Vec<String> {
        s.wanted
            .iter()
            .map(|w| match w {
                Wanted::Named(n) => format!("{}@{}", n.hook, n.path),
                Wanted::Layer(l) => l.to_string(),
            })
            .collect()
    }

    #[test]
    fn layers_pick_each_release_s_saes_at_that_depth() {
        let s = Selection::from_args("gpt2-small-res-jb", &[], &[11, 12], None, None).expect("res-jb");
        assert_eq!(hooks(&s), ["blocks.11.hook_resid_pre@blocks.11.hook_resid_pre", "blocks.11.hook_resid_post@blocks.11.hook_resid_post"]);
        let s = Selection::from_args("gpt2-small-resid-post-v5-32k", &[], &[6, 8], None, None).expect("v5");
        assert_eq!(hooks(&s), ["blocks.6.hook_resid_post@v5_32k_layer_6.pt", "blocks.8.hook_resid_post@v5_32k_layer_8.pt"]);
        assert!(s.wanted.iter().all(|w| matches!(w, Wanted::Named(n) if n.layout == SaeLayout::Folder)), "v5's .pt names are SAELens folders");
        let s = Selection::from_args("gpt2-small-hook-z-kk", &[], &[3], None, None).expect("kk");
        assert!(matches!(&s.wanted[..], [Wanted::Named(n)] if n.layout == SaeLayout::SinglePt && n.hook.to_string() == "blocks.3.attn.hook_z"));
        let s = Selection::from_args("gpt2-small-res-jb-feature-splitting", &[], &[8], None, None).expect("fs");
        assert_eq!(s.wanted.len(), 8, "every width at layer 8");
        let ids = ["blocks.8.hook_resid_pre_768".to_string(), "blocks.8.hook_resid_pre_3072".to_string()];
        let s = Selection::from_args("gpt2-small-res-jb-feature-splitting", &ids, &[], None, None).expect("fs ids");
        assert_eq!(hooks(&s), ["blocks.8.hook_resid_pre@blocks.8.hook_resid_pre_768", "blocks.8.hook_resid_pre@blocks.8.hook_resid_pre_3072"]);
        let s = Selection::from_args("gpt2-small-mlp-tm", &[], &[1], None, None).expect("tm");
        assert!(matches!(&s.wanted[..], [Wanted::Named(n)] if n.norm_scaling_factor.is_some() && n.processing == Some(Processing::DEFAULT)));
        let err = Selection::from_args("gpt2-small-res-jb-feature-splitting", &[], &[6], None, None).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("no SAE at layer 6") && err.contains("8"), "{err}");
        let s = Selection::from_args("gpt2-small-res-jb,gpt2-small-attn-out-v5-32k,gpt2-small-mlp-tm", &[], &[8], None, None).expect("mixed");
        assert_eq!(
            hooks(&s),
            [
                "blocks.8.hook_resid_pre@blocks.8.hook_resid_pre",
                "blocks.8.hook_attn_out@v5_32k_layer_8",
                "blocks.8.hook_mlp_out@sae_group_gpt2_blocks.8.hook_mlp_out_24576:v1"
            ]
        );
        let repos: Vec<String> = s.wanted.iter().filter_map(|w| if let Wanted::Named(n) = w { Some(n.source.label()) } else { None }).collect();
        assert_eq!(repos, ["jbloom/GPT2-Small-SAEs-Reformatted", "jbloom/GPT2-Small-OAI-v5-32k-attn-out-SAEs", "tommmcgrath/gpt2-small-mlp-out-saes"]);
        let s = Selection::from_args("someone/repo", &[], &[8, 6], None, None).expect("repo");
        assert_eq!(s.wanted, [Wanted::Layer(6), Wanted::Layer(8)]);
    }
}
