//! Synthetic SAELens releases in their real repo layouts (`saescope synth --sae-release`),
//! written once per test binary, and a loopback hub serving them under their repo names.

use super::hub::Hub;
use saescope::runtime::progress::ProgressSink;
use saescope::sae::selection::Selection;
use saescope::synth::gpt2::{write_release, Size};
use std::path::PathBuf;
use std::sync::OnceLock;

pub const MIXED: &str = "gpt2-small-res-jb,gpt2-small-attn-out-v5-32k,gpt2-small-mlp-tm";
pub const V5: &str = "gpt2-small-resid-post-v5-32k";
pub const FS: &str = "gpt2-small-res-jb-feature-splitting";
pub const FS_IDS: &str = "blocks.8.hook_resid_pre_768,blocks.8.hook_resid_pre_1536,blocks.8.hook_resid_pre_3072";
pub const KK: &str = "gpt2-small-hook-z-kk";

/// One synthetic release (or several) under `name`, written once per test binary.
fn synthesized(name: &str, release: &str, ids: &[&str], layers: &[usize]) -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    let root = ROOT.get_or_init(super::kept_dir);
    let out = root.join(name);
    if !out.join("model").join("model.safetensors").is_file() {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        let selection = Selection::from_args(release, &ids, layers, Some(&out.join("saes")), None).expect("selection");
        write_release(&out, Size::Tiny, 0, &selection, &ProgressSink::none()).expect("synth");
    }
    out
}

pub fn all() -> &'static [(PathBuf, &'static str)] {
    static ALL: OnceLock<Vec<(PathBuf, &'static str)>> = OnceLock::new();
    ALL.get_or_init(|| {
        vec![
            (synthesized("mixed", MIXED, &[], &[8]), MIXED),
            (synthesized("v5", V5, &[], &[6, 8, 10, 11]), V5),
            (synthesized("fs", FS, &FS_IDS.split(',').collect::<Vec<_>>(), &[]), FS),
            (synthesized("kk", KK, &[], &[5, 8]), KK),
        ]
    })
}

/// The hub: the tiny model as `org/tiny`, and each release's repo as SAELens names it.
pub fn hub() -> Hub {
    let h = Hub::start();
    let registry = saescope::sae::registry::Registry::bundled().expect("registry");
    h.repo("org/tiny", &all()[0].0.join("model"), &[]);
    for (dir, releases) in all() {
        let names: Vec<&str> = releases.split(',').collect();
        for name in &names {
            let repo = &registry.release(name).expect("release").repo_id;
            let at = if names.len() == 1 { dir.join("saes") } else { dir.join("saes").join(repo) };
            h.repo(repo, &at, &[]);
        }
    }
    h
}

/// Every block and the SAEs of `release` at `layers`, from a synthesised release folder.
pub fn engine(dir: &std::path::Path, release: &str, layers: &[usize]) -> saescope::pipeline::Engine {
    use saescope::pipeline::{Resolved, Run, RunOptions};
    let saes = Selection::from_args(release, &[], layers, Some(&dir.join("saes")), None).expect("selection");
    let run = Run { model: saescope::source::Source::Dir(dir.join("model")), saes, device: tch::Device::Cpu, opts: RunOptions::default() };
    Resolved::new(&run.model, &run.saes, &ProgressSink::none()).expect("resolve").load_full(run.device, &run.opts, &ProgressSink::none()).expect("load")
}
