//! `saescope graph`: an attribution graph of a prompt's prediction over a transcoder at every
//! layer, written in circuit-tracer's JSON, or a graph file read back and summarised.

use super::{setup_layers, text_arg, write_output};
use crate::commands::cli::Common;
use color_eyre::eyre::{bail, Result};
use saescope::graph::json::{self, File};
use saescope::graph::{prune, Options};
use saescope::runtime::progress::ProgressSink;
use std::path::{Path, PathBuf};

/// What pruning keeps (`--node-threshold`, `--edge-threshold`).
#[derive(Debug, Clone, Copy)]
pub struct Prune {
    pub node_threshold: f64,
    pub edge_threshold: f64,
}

#[allow(clippy::too_many_arguments)]
pub fn graph(c: &Common, prompt: &str, transcoders: &Path, targets: &[String], mut opts: Options, p: Prune, slug: &str, output: Option<PathBuf>) -> Result<()> {
    let prompt = text_arg(prompt, "the prompt")?;
    if prompt.trim().is_empty() {
        bail!("--prompt is empty: give the text whose next token the graph explains, or - to read it from standard input");
    }
    let (run, _) = setup_layers(c, &[])?;
    let progress = ProgressSink::stderr();
    let engine = saescope::pipeline::Resolved::model_only(&run.model, &progress)?.load_full(run.device, &run.opts, &progress)?;
    progress.stage(format!("loading transcoders from {}", transcoders.display()));
    let model = engine.model.as_ref();
    let tcs = saescope::graph::transcoders::load_dir(transcoders, model.n_layers(), model.d_model(), model.device(), model.kind())?;
    let ids = engine.tokenizer.encode_with_bos(&prompt)?;
    if ids.len() > model.n_ctx() {
        bail!("the prompt has {} tokens with BOS, over n_ctx {}; shorten it", ids.len(), model.n_ctx());
    }
    if !targets.is_empty() {
        opts.targets = Some(targets.iter().map(|t| saescope::interp::attribute::target_id(&engine, t)).collect::<Result<_>>()?);
    }
    progress.stage(format!("attributing {} tokens", ids.len()));
    let start = std::time::Instant::now();
    let r = saescope::graph::replacement::Replacement::new(model, &tcs, &ids, opts.skip_positions)?;
    let scan = transcoders.file_name().map_or_else(|| transcoders.display().to_string(), |n| n.to_string_lossy().into_owned());
    let text_of = |t: u32| engine.tokenizer.token_strings(&[t]).concat();
    let g = saescope::graph::attribute(&r, &opts, text_of, &scan, engine.tokenizer.token_strings(&ids))?;
    let seconds = start.elapsed().as_secs_f64();
    let (layout, probs) = (g.layout(), g.probs());
    let pruned = prune::prune(&g.adjacency, &layout, &probs, p.node_threshold as f32, p.edge_threshold as f32);
    let (replacement, completeness) = prune::scores(&g.adjacency, &layout, &probs);
    let file = json::file(&g, &pruned, slug, p.node_threshold);
    let mut text = format!(
        "{} active features, {} feature rows in {seconds:.1} s; replacement score {replacement:.3}, completeness score {completeness:.3}\n",
        g.active.len(),
        g.selected.len()
    );
    text.push_str(&summary(&file));
    match output {
        Some(path) => {
            write_output(&(serde_json::to_string_pretty(&file)? + "\n"), Some(path.clone()))?;
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
