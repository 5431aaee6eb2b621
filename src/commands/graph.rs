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

/// The model, its transcoders and the prompt's tokens: what a graph and an intervention start from.
struct Loaded {
    engine: saescope::pipeline::Engine,
    transcoders: Vec<saescope::sae::Sae>,
    ids: Vec<u32>,
}

fn load(c: &Common, prompt: &str, transcoders: &Path, progress: &ProgressSink) -> Result<Loaded> {
    let prompt = text_arg(prompt, "the prompt")?;
    if prompt.trim().is_empty() {
        bail!("--prompt is empty: give the text whose next token the graph explains, or - to read it from standard input");
    }
    let (run, _) = setup_layers(c, &[])?;
    let engine = saescope::pipeline::Resolved::model_only(&run.model, progress)?.load_full(run.device, &run.opts, progress)?;
    progress.stage(format!("loading transcoders from {}", transcoders.display()));
    let model = engine.model.as_ref();
    let tcs = saescope::graph::transcoders::load_dir(transcoders, model.n_layers(), model.d_model(), model.device(), model.kind())?;
    let ids = engine.tokenizer.encode_with_bos(&prompt)?;
    if ids.len() > model.n_ctx() {
        bail!("the prompt has {} tokens with BOS, over n_ctx {}; shorten it", ids.len(), model.n_ctx());
    }
    Ok(Loaded { engine, transcoders: tcs, ids })
}

#[allow(clippy::too_many_arguments)]
pub fn graph(c: &Common, prompt: &str, transcoders: &Path, targets: &[String], mut opts: Options, p: Prune, slug: &str, output: Option<PathBuf>) -> Result<()> {
    let progress = ProgressSink::stderr();
    let Loaded { engine, transcoders: tcs, ids } = load(c, prompt, transcoders, &progress)?;
    let model = engine.model.as_ref();
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

/// One row of `intervene`'s table: a token's probability and logit before and after.
#[derive(serde::Serialize)]
struct Moved {
    token: u32,
    text: String,
    clean: [f32; 2],
    frozen_attention: [f32; 2],
    free_attention: [f32; 2],
}

/// `saescope graph --ablate L:F@POS... [--scale S]`: the top logits before and after.
pub fn intervene(c: &Common, prompt: &str, transcoders: &Path, ablate: &[String], scale: f64, output: Option<PathBuf>) -> Result<()> {
    use saescope::graph::intervene::{logits, Intervention};
    let progress = ProgressSink::stderr();
    let Loaded { engine, transcoders: tcs, ids } = load(c, prompt, transcoders, &progress)?;
    let model = engine.model.as_ref();
    let mut wanted: Vec<Intervention> = ablate.iter().map(|s| Intervention::parse(s)).collect::<Result<_>>()?;
    // Each feature's activation on the clean prompt, which --scale multiplies.
    let r = saescope::graph::replacement::Replacement::new(model, &tcs, &ids, 0)?;
    let mut text = String::new();
    for i in &mut wanted {
        let a = r.active.iter().find(|a| (a.layer, a.pos, a.feature) == (i.layer, i.pos, i.feature)).map_or(0.0, |a| a.activation);
        i.value = (f64::from(a) * scale) as f32;
        text.push_str(&format!(
            "{}:{}@{} ({:?}): {a:.4} -> {:.4}\n",
            i.layer,
            i.feature,
            i.pos,
            engine.tokenizer.token_strings(&ids[i.pos..=i.pos]).concat(),
            i.value
        ));
    }
    let run = |wanted: &[Intervention], frozen: bool| -> Result<(Vec<f32>, Vec<f32>)> {
        let l = logits(model, &tcs, &ids, wanted, frozen)?;
        Ok((Vec::<f32>::try_from(l.softmax(-1, tch::Kind::Float))?, Vec::<f32>::try_from(&l)?))
    };
    let (clean, frozen, free) = (run(&[], false)?, run(&wanted, true)?, run(&wanted, false)?);
    // The top tokens before and after, each once.
    let top = |p: &[f32]| -> Vec<usize> {
        let mut order: Vec<usize> = (0..p.len()).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        order.truncate(5);
        order
    };
    let mut tokens: Vec<usize> = Vec::new();
    for t in top(&clean.0).into_iter().chain(top(&frozen.0)).chain(top(&free.0)) {
        if !tokens.contains(&t) {
            tokens.push(t);
        }
    }
    let rows: Vec<Moved> = tokens
        .iter()
        .map(|&t| Moved {
            token: t as u32,
            text: engine.tokenizer.token_strings(&[t as u32]).concat(),
            clean: [clean.0[t], clean.1[t]],
            frozen_attention: [frozen.0[t], frozen.1[t]],
            free_attention: [free.0[t], free.1[t]],
        })
        .collect();
    text.push_str(&format!("{:<20} {:>20} {:>20} {:>20}\n", "probability (logit)", "clean", "frozen attention", "free attention"));
    let cell = |[p, l]: [f32; 2]| format!("{p:.4} ({l:+.3})");
    for m in &rows {
        text.push_str(&format!("{:<20} {:>20} {:>20} {:>20}\n", format!("{:?}", m.text), cell(m.clean), cell(m.frozen_attention), cell(m.free_attention)));
    }
    match output {
        Some(path) => {
            let json = serde_json::json!({"interventions": wanted.iter().map(|i| serde_json::json!({"layer": i.layer, "feature": i.feature, "position": i.pos, "value": i.value})).collect::<Vec<_>>(), "tokens": rows});
            write_output(&(serde_json::to_string_pretty(&json)? + "\n"), Some(path))?;
            eprint!("{text}");
            Ok(())
        }
        None => write_output(&text, None),
    }
}
