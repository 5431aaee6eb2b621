//! `saescope synth` and `synth-samples`: synthetic weights and texts in the real layouts.

use crate::commands::cli::{Common, FamilyArg, TranscoderArg};
use color_eyre::eyre::Result;
use saescope::model::gemma::Generation;
use saescope::runtime::progress::ProgressSink;
use saescope::sae::selection::Selection;
use saescope::synth::gpt2::Size;
use std::path::Path;

/// A SAELens release name: that release's layout; else GPT-2-small-res-jb's. Ends by
/// saying how to open what it wrote.
pub fn synth(c: &Common, out: &Path, family: FamilyArg, size: Size, seed: u64, transcoders: &[TranscoderArg]) -> Result<()> {
    write(c, out, family, size, seed)?;
    // The selection as given, so the printed command opens what was written (a release's
    // SAEs at other layers than its defaults, or named ones).
    let mut release = c.sae_release_arg.as_deref().map_or_else(String::new, |r| format!(" --sae-release {r}"));
    if let Some(layers) = c.layers_arg.as_deref().filter(|_| c.sae_release_arg.is_some() && c.sae.is_empty()) {
        release += &format!(" --layers {}", layers.iter().map(usize::to_string).collect::<Vec<_>>().join(","));
    }
    if !c.sae.is_empty() {
        release += &format!(" --sae {}", c.sae.join(","));
    }
    let (model, saes) = (out.join("model"), out.join("saes"));
    eprintln!("synth: wrote {}; open it with:\n  saescope --model-dir {} --sae-dir {}{release}", out.display(), model.display(), saes.display());
    for &kind in transcoders {
        let dir = write_transcoders(out, family, size, seed, kind)?;
        eprintln!(
            "synth: wrote transcoders to {}; draw a graph with:\n  saescope graph --model-dir {} --transcoders {} --prompt 'The cat sat on the'\nor in the explorer (g):\n  saescope --model-dir {} --sae-dir {}{release} --transcoders {}",
            dir.display(),
            model.display(),
            dir.display(),
            model.display(),
            saes.display(),
            dir.display()
        );
    }
    Ok(())
}

/// A transcoder at every layer of the model just written, fitted to its MLPs.
fn write_transcoders(out: &Path, family: FamilyArg, size: Size, seed: u64, kind: TranscoderArg) -> Result<std::path::PathBuf> {
    let progress = ProgressSink::stderr();
    let engine = saescope::pipeline::Resolved::model_only(&saescope::source::Source::Dir(out.join("model")), &progress)?.load_full(
        tch::Device::Cpu,
        &saescope::pipeline::RunOptions::default(),
        &progress,
    )?;
    let (layout, width) = match family {
        FamilyArg::Gpt2 => (saescope::synth::transcoders::Layout::SaeLens, if size == Size::Tiny { 256 } else { 24_576 }),
        FamilyArg::Gemma3 => (saescope::synth::transcoders::Layout::GemmaScope, if size == Size::Tiny { 256 } else { 16_384 }),
        // As Gemma Scope's gemma-scope-2b-pt-transcoders ship.
        FamilyArg::Gemma2 => (saescope::synth::transcoders::Layout::GemmaScopeNpz, 256),
        FamilyArg::Llama => (saescope::synth::transcoders::Layout::SaeLens, 256),
        // As circuit-tracer's Qwen 3 transcoders ship (mwhanna-qwen3-*-transcoders).
        FamilyArg::Qwen3 => (saescope::synth::transcoders::Layout::CircuitTracer, 256),
        FamilyArg::Pythia => (saescope::synth::transcoders::Layout::SaeLens, 256),
    };
    let (dir, skip, cross) = match kind {
        TranscoderArg::Plain => (out.join("transcoders"), false, false),
        TranscoderArg::Skip => (out.join("transcoders-skip"), true, false),
        TranscoderArg::Clt => (out.join("transcoders-clt"), false, true),
    };
    let spec = saescope::synth::transcoders::Spec { width, skip, cross, layout, seed: seed.wrapping_add(1) };
    saescope::synth::transcoders::write(engine.model.as_ref(), &engine.tokenizer, &dir, spec, &progress)?;
    Ok(dir)
}

fn write(c: &Common, out: &Path, family: FamilyArg, size: Size, seed: u64) -> Result<()> {
    match family {
        FamilyArg::Gemma3 => {
            let release = c.sae_release_arg.clone().unwrap_or_else(|| "gemma-scope-2-270m-pt-res".into());
            let release = match size {
                _ if c.sae_release_arg.is_some() => release,
                Size::B4 => "gemma-scope-2-4b-pt-res".into(),
                Size::B12 => "gemma-scope-2-12b-pt-res".into(),
                _ => release,
            };
            // Gemma Scope 2's resid_post layers of each shape (the 4B's and 12B's first two:
            // their checkpoints alone are 7.8 and 23.5 GB).
            let layers = c.layers_arg.clone().unwrap_or_else(|| match size {
                Size::M270 => vec![5, 9, 12, 15],
                Size::B4 => vec![9, 17],
                Size::B12 => vec![12, 24],
                _ => vec![5, 9],
            });
            let selection = Selection::from_args(&release, &c.sae, &layers, Some(&out.join("saes")), c.sae_registry.as_deref())?;
            saescope::synth::gemma::write(out, Generation::Gemma3, size, seed, &selection, &ProgressSink::stderr())
        }
        FamilyArg::Gemma2 => {
            // The layers `--model-dir` alone opens a Gemma 2 2B at (Registry::residual_default).
            let release = c.sae_release_arg.clone().unwrap_or_else(|| "gemma-scope-2b-pt-res-canonical".into());
            let layers = match &c.layers_arg {
                Some(l) => l.clone(),
                None => release_layers(&release, c.sae_registry.as_deref(), &[6, 13, 16, 21])?,
            };
            let selection = Selection::from_args(&release, &c.sae, &layers, Some(&out.join("saes")), c.sae_registry.as_deref())?;
            saescope::synth::gemma::write(out, Generation::Gemma2, size, seed, &selection, &ProgressSink::stderr())
        }
        FamilyArg::Llama | FamilyArg::Qwen3 => {
            // A release name: its SAEs in its layout (Llama Scope's, Goodfire's, Qwen Scope's,
            // qresearch's), at 2 and 4 where it has SAEs there, else at its own few layers.
            let selection = match &c.sae_release_arg {
                Some(release) => {
                    let layers = match &c.layers_arg {
                        Some(l) => l.clone(),
                        None => release_layers(release, c.sae_registry.as_deref(), &[2, 4])?,
                    };
                    Some(Selection::from_args(release, &c.sae, &layers, Some(&out.join("saes")), c.sae_registry.as_deref())?)
                }
                None => None,
            };
            let variant = if matches!(family, FamilyArg::Qwen3) { saescope::model::llama::Variant::Qwen3 } else { saescope::model::llama::Variant::Llama };
            saescope::synth::llama::write(out, variant, size, seed, selection.as_ref(), &ProgressSink::stderr())
        }
        FamilyArg::Pythia => {
            use saescope::synth::neox::{LAYERS, RELEASE};
            let release = c.sae_release_arg.clone().unwrap_or_else(|| RELEASE.into());
            let layers = c.layers_arg.clone().unwrap_or_else(|| LAYERS.to_vec());
            let selection = Selection::from_args(&release, &c.sae, &layers, Some(&out.join("saes")), c.sae_registry.as_deref())?;
            saescope::synth::neox::write(out, size, seed, &selection, &ProgressSink::stderr())
        }
        _ if !c.sae_release().contains('/') => {
            let selection = Selection::from_args(&c.sae_release(), &c.sae, &c.layers(), Some(&out.join("saes")), c.sae_registry.as_deref())?;
            saescope::synth::gpt2::write_release(out, size, seed, &selection, &ProgressSink::stderr())
        }
        _ => saescope::synth::gpt2::write(out, size, seed, &ProgressSink::stderr()),
    }
}

/// `default` where `release` has SAEs at each, else its own layers where it has four or
/// fewer (`Registry::layers_for`; the tiny model is written as deep as they need); else
/// `default`, whose error lists the layers the release has.
fn release_layers(release: &str, registry: Option<&Path>, default: &[usize]) -> Result<Vec<usize>> {
    Ok(saescope::sae::registry::Registry::load(registry)?.layers_for(release, default).unwrap_or_else(|| default.to_vec()))
}

pub fn samples(out: &Path, texts: usize, categories: usize, seed: u64) -> Result<()> {
    saescope::runtime::fsio::write_atomic(out, saescope::synth::samples::generate(texts, categories, seed).as_bytes())
}
