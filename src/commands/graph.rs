//! `saescope graph`: an attribution graph of a prompt's prediction over a transcoder at every
//! layer, written in circuit-tracer's JSON, or a graph file read back and summarised.

use super::{setup_layers, text_arg, write_output};
use crate::commands::cli::Common;
use color_eyre::eyre::{bail, Result};
use saescope::graph::build::build;
pub use saescope::graph::build::Prune;
use saescope::graph::json::{self, File};
use saescope::graph::transcoders::Set;
use saescope::graph::Options;
use saescope::runtime::progress::ProgressSink;
use std::path::{Path, PathBuf};

/// The model, its transcoders and the prompt's tokens: what a graph and an intervention start from.
struct Loaded {
    engine: saescope::pipeline::Engine,
    transcoders: saescope::graph::transcoders::Transcoders,
    ids: Vec<u32>,
}

fn load(c: &Common, prompt: &str, transcoders: &Set, progress: &ProgressSink) -> Result<Loaded> {
    let prompt = text_arg(prompt, "the prompt")?;
    if prompt.trim().is_empty() {
        bail!("--prompt is empty: give the text whose next token the graph explains, or - to read it from standard input");
    }
    let (run, _) = setup_layers(c, &[])?;
    let engine = saescope::pipeline::Resolved::model_only(&run.model, progress)?.load_full(run.device, &run.opts, progress)?;
    progress.stage(format!("loading transcoders {}", transcoders.label()));
    let model = engine.model.as_ref();
    let tcs = transcoders.load(model.n_layers(), model.d_model(), model.device(), model.kind(), progress)?;
    let ids = saescope::interp::attribute::prompt_tokens(&engine, &prompt, None)?;
    Ok(Loaded { engine, transcoders: tcs, ids })
}

#[allow(clippy::too_many_arguments)]
pub fn graph(c: &Common, prompt: &str, transcoders: &Set, targets: &[String], mut opts: Options, p: Prune, slug: &str, output: Option<PathBuf>) -> Result<()> {
    let progress = ProgressSink::stderr();
    let Loaded { engine, transcoders: tcs, ids } = load(c, prompt, transcoders, &progress)?;
    if !targets.is_empty() {
        opts.targets = Some(targets.iter().map(|t| saescope::interp::attribute::target_id(&engine, t)).collect::<Result<_>>()?);
    }
    opts.skip_positions = saescope::graph::skip_positions(&engine);
    progress.stage(format!("attributing {} tokens", ids.len()));
    let built = build(&engine, &tcs, &ids, &opts, p, slug, &transcoders.label())?;
    let text = format!("{}\n{}", built.line(), summary(&built.file));
    match output {
        Some(path) => {
            write_output(&(serde_json::to_string_pretty(&built.file)? + "\n"), Some(path.clone()))?;
            eprint!("{text}");
            eprintln!("graph: wrote {}; read it with saescope graph --graph {}", path.display(), path.display());
            Ok(())
        }
        None => write_output(&text, None),
    }
}

/// `saescope graph --graph FILE`.
pub fn summarise(path: &Path) -> Result<()> {
    write_output(&summary(&json::read(path)?), None)
}

/// What a graph file holds: the prompt, its logits, its nodes by kind, and the strongest
/// edges into the target logit.
fn summary(file: &File) -> String {
    let count = |kind: &str| file.nodes.iter().filter(|n| n.feature_type == kind).count();
    let mut out = format!(
        "graph {:?} of {:?} ({} tokens, transcoders {})\n{} feature, {} error, {} token and {} logit nodes; {} edges\n",
        file.metadata.slug,
        file.metadata.prompt,
        file.metadata.prompt_tokens.len(),
        file.metadata.scan,
        count(json::FEATURE),
        count(json::ERROR),
        count(json::EMBEDDING),
        count(json::LOGIT),
        file.links.len()
    );
    for logit in file.nodes.iter().filter(|n| n.feature_type == json::LOGIT) {
        out.push_str(&format!("  {}\n", logit.clerp));
    }
    if let Some(target) = file.nodes.iter().find(|n| n.is_target_logit) {
        let mut into: Vec<&json::Link> = file.links.iter().filter(|l| l.target == target.node_id).collect();
        into.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
        out.push_str(&format!("strongest inputs of {}:\n", target.clerp));
        for l in into.iter().take(10) {
            let kind = file.nodes.iter().find(|n| n.node_id == l.source).map_or("", |n| n.feature_type.as_str());
            out.push_str(&format!("  {:>10.4}  {} ({kind})\n", l.weight, l.source));
        }
    }
    out
}

/// `saescope graph --ablate L:F@POS... [--scale S]`: the top logits before and after.
pub fn intervene(c: &Common, prompt: &str, transcoders: &Set, ablate: &[String], scale: f64, output: Option<PathBuf>) -> Result<()> {
    use saescope::graph::intervene::{compare, Intervention};
    let progress = ProgressSink::stderr();
    let Loaded { engine, transcoders: tcs, ids } = load(c, prompt, transcoders, &progress)?;
    let wanted: Vec<Intervention> = ablate.iter().map(|s| Intervention::parse(s)).collect::<Result<_>>()?;
    let compared = compare(&engine, &tcs, &ids, &wanted, scale)?;
    let mut text = String::new();
    for (i, a) in &compared.set {
        // A feature that does not fire there scales to nothing: say so rather than show a
        // table that did not move.
        let idle = if *a == 0.0 { " (not active here, so scaling it changes nothing: pick one of the graph's feature nodes)" } else { "" };
        text.push_str(&format!(
            "{}:{}@{} ({:?}): {a:.4} -> {:.4}{idle}\n",
            i.layer,
            i.feature,
            i.pos,
            engine.tokenizer.token_strings(&ids[i.pos..=i.pos]).concat(),
            i.value
        ));
    }
    text.push_str(&format!("{:<20} {:>20} {:>20} {:>20}\n", "probability (logit)", "clean", "frozen attention", "free attention"));
    let cell = |[p, l]: [f32; 2]| format!("{p:.4} ({l:+.3})");
    for m in &compared.tokens {
        text.push_str(&format!("{:<20} {:>20} {:>20} {:>20}\n", format!("{:?}", m.text), cell(m.clean), cell(m.frozen_attention), cell(m.free_attention)));
    }
    match output {
        Some(path) => {
            let json = serde_json::json!({"interventions": compared.set.iter().map(|(i, _)| serde_json::json!({"layer": i.layer, "feature": i.feature, "position": i.pos, "value": i.value})).collect::<Vec<_>>(), "tokens": compared.tokens});
            write_output(&(serde_json::to_string_pretty(&json)? + "\n"), Some(path))?;
            eprint!("{text}");
            Ok(())
        }
        None => write_output(&text, None),
    }
}
