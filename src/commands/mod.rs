//! The commands: `run` dispatches a parsed command line to its file, and the helpers every
//! command shares live here (options to run settings, labels, inputs, and `emit`, the one
//! way a command writes its text or JSON).

mod attribute;
pub mod bench;
pub mod cli;
mod eval;
mod explore;
mod feature;
mod findings;
mod graph;
mod index;
mod report;
mod saes;
mod search;
mod steer;
mod synth;
mod tokens;

use crate::commands::cli::{CardFormat, Cli, Command, Common};
use color_eyre::eyre::{Result, WrapErr};
use saescope::analysis::{analyze, Params};
use saescope::corpus::samples::Samples;
use saescope::pipeline::compute::{activations, SamplesRequest};
use saescope::pipeline::{parse_device, Run, RunOptions};
use saescope::runtime::progress::ProgressSink;
use saescope::sae::selection::Selection;
use std::io::Write;
use std::path::PathBuf;

/// Started first thing, read by `setup`: see src/cpu.rs.
pub static CPU_PROBE: std::sync::Mutex<Option<saescope::runtime::cpu::CoreProbe>> = std::sync::Mutex::new(None);

pub fn samples(c: &Common) -> Result<Samples> {
    match &c.samples {
        Some(p) => Samples::load(p),
        None => Samples::bundled(),
    }
}

/// What to run (`Run`: weights, device, options) and the analysis's parameters, from the
/// command line; `layers` stands in for `--layers` (commands that load other layers).
pub fn setup_layers(c: &Common, layers: &[usize]) -> Result<(Run, Params)> {
    let probe = CPU_PROBE.lock().ok().and_then(|mut p| p.take());
    if let Some(n) = c.threads {
        tch::set_num_threads(n as i32);
    } else if std::env::var_os("OMP_NUM_THREADS").is_none() {
        // As many threads as cores other processes leave free (src/cpu.rs).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if let Some(free) = probe.and_then(saescope::runtime::cpu::CoreProbe::free).filter(|&f| f < cores) {
            tch::set_num_threads(free as i32);
        }
    }
    let saes = Selection::from_args(&c.sae_release(), &c.sae, layers, c.sae_dir.as_deref(), c.sae_registry.as_deref())?;
    let opts = RunOptions {
        include_bos: c.include_bos,
        truncate: c.truncate,
        batch_tokens: c.text_batch_tokens(),
        keep: saescope::activations::Keep::for_threshold(c.threshold),
        max_memory: c.max_memory.map(|g| (g * (1u64 << 30) as f64) as u64),
        dtype: c.dtype,
        chat: c.chat,
    };
    Ok((Run { model: c.model_source(), saes, device: parse_device(&c.device)?, opts }, Params { top_k: c.top_k, threshold: c.threshold }))
}

pub fn setup(c: &Common) -> Result<(Run, Params)> {
    setup_layers(c, &c.layers())
}

/// Parses nothing and does one command: main.rs parses, this dispatches.
pub fn run(cli: Cli) -> Result<()> {
    let c = &cli.common;
    saescope::source::download::set_policy(saescope::source::download::Policy {
        stall: std::time::Duration::from_secs_f64(c.download_timeout),
        retries: c.download_retries,
    });
    let versus = &cli.versus;
    if versus.given() && !matches!(cli.command, None | Some(Command::Explore { .. } | Command::Findings { .. })) {
        color_eyre::eyre::bail!("--versus-* options name a second run for `findings` and the explorer's findings view; drop them from this command");
    }
    if versus.given() && versus.versus_model.is_none() && versus.versus_model_dir.is_none() {
        color_eyre::eyre::bail!("--versus-* options need --versus-model REPO or --versus-model-dir DIR to name the second run's model");
    }
    match cli.command {
        Some(Command::Saes { of, release, format }) => saes::saes(c, of.as_deref(), release.as_deref(), format),
        Some(Command::Synth { out, family, size, seed, transcoders }) => synth::synth(c, &out, family, size, seed, &transcoders),
        Some(Command::SynthSamples { out, texts, categories, seed }) => synth::samples(&out, texts, categories, seed),
        Some(Command::Bench { repeat }) => bench::bench(c, repeat),
        Some(Command::OptionsTable) => write_output(&cli::options_markdown(), None),
        Some(Command::Report { format, output }) => report::report(c, format, output),
        Some(Command::Index { action: Some(crate::commands::cli::IndexAction::Merge { .. }), shard: Some(_), .. }) => {
            color_eyre::eyre::bail!("index --shard writes one shard; index merge adds them: run them as two commands")
        }
        Some(Command::Index { action: Some(crate::commands::cli::IndexAction::Merge { files, format }), .. }) => index::merge(c, &files, format),
        Some(Command::Index { format, shard: Some(slice), output: Some(out), .. }) => index::shard(c, slice, &out, format),
        Some(Command::Index { format, export_neuronpedia, .. }) => index::index(c, format, export_neuronpedia.as_deref()),
        Some(Command::Feature { layer, id, format, output }) => feature::feature(c, &layer, id, format, output),
        Some(Command::Findings { format, output }) => findings::findings(c, versus, format, output),
        Some(Command::Eval { format, output }) => eval::eval(c, format, output),
        Some(Command::Search { query, format }) => search::search(c, &query, format),
        Some(Command::Tokens { layer, id, text, format, output }) => tokens::tokens(c, &layer, id, &text, format, output),
        Some(Command::Graph {
            prompt,
            transcoders,
            transcoder_variant,
            targets,
            max_features,
            batch,
            node_threshold,
            edge_threshold,
            slug,
            graph,
            ablate,
            scale,
            output,
        }) => {
            let prompt = prompt.unwrap_or_default();
            let transcoders =
                || saescope::graph::transcoders::Set::parse(&transcoders.unwrap_or_default(), transcoder_variant.as_deref(), c.sae_registry.as_deref());
            match graph {
                Some(file) => graph::summarise(&file),
                None if !ablate.is_empty() => graph::intervene(c, &prompt, &transcoders()?, &ablate, scale, output),
                None => {
                    let opts = saescope::graph::Options { max_features, batch, ..Default::default() };
                    let prune = graph::Prune { node_threshold, edge_threshold };
                    graph::graph(c, &prompt, &transcoders()?, &targets, opts, prune, &slug, output)
                }
            }
        }
        Some(Command::Attribute { prompt, target, top, format, output }) => attribute::attribute(c, &prompt, target.as_deref(), top, format, output),
        Some(Command::Steer { prompt, features, tokens, temperature, seed, mode, format, output }) => {
            steer::steer(c, &prompt, &features, saescope::interp::steer::Sampling { tokens, temperature, seed }, mode, format, output)
        }
        None => explore::explore(c, versus, &cli.graphs),
        Some(Command::Explore { graphs }) => explore::explore(c, versus, &graphs.or(&cli.graphs)),
    }
}

/// `--labels`, checked against the loaded layers, with the line that says what was
/// imported and set aside (stderr for commands, the status line in the explorer).
pub fn labels(c: &Common, scope: &saescope::neuronpedia::labels::Scope) -> Result<(saescope::neuronpedia::labels::Labels, Option<String>)> {
    let Some(path) = &c.labels else { return Ok(Default::default()) };
    let scope = saescope::neuronpedia::labels::Scope { source: c.labels_source.as_deref(), ..*scope };
    let (labels, summary) = saescope::neuronpedia::labels::Labels::load(path, &scope)?;
    Ok((labels, Some(format!("labels: {}", summary.line()))))
}

/// `--neuronpedia`, read for the loaded SAEs of `run`, with Gemma Scope 2's examples files
/// beside any of them (`scope_examples::dashboards`).
pub fn neuronpedia(
    c: &Common,
    run: &saescope::pipeline::Resolved,
    saes: &[saescope::sae::key::SaeKey],
    ids: &saescope::sae::neuronpedia_id::Ids,
) -> Result<Option<saescope::neuronpedia::dump::Dump>> {
    let Some(dump) = saescope::neuronpedia::scope_examples::dashboards(run, c.neuronpedia.as_deref(), saes, ids)? else { return Ok(None) };
    let Some(path) = &c.neuronpedia else { return Ok(Some(dump)) };
    if !saes.iter().any(|&k| dump.has(k)) {
        let names: Vec<String> = saes.iter().filter_map(|&k| ids.sae(k).map(|i| format!("{}/{}", i.model, i.source))).collect();
        color_eyre::eyre::bail!(
            "--neuronpedia {}: nothing of the loaded SAEs ({}); {}",
            path.display(),
            if names.is_empty() { "none has a known Neuronpedia id".into() } else { names.join(", ") },
            dump.summary.line()
        );
    }
    Ok(Some(dump))
}

/// `labels` for the headless commands.
pub fn labels_noted(c: &Common, scope: &saescope::neuronpedia::labels::Scope) -> Result<saescope::neuronpedia::labels::Labels> {
    let (labels, summary) = labels(c, scope)?;
    summary.into_iter().for_each(|s| eprintln!("{s}"));
    Ok(labels)
}

pub fn write_output(text: &str, output: Option<std::path::PathBuf>) -> Result<()> {
    match output {
        Some(path) => saescope::runtime::fsio::write_atomic(&path, text.as_bytes()),
        None => std::io::stdout().write_all(text.as_bytes()).wrap_err("cannot write to standard output"),
    }
}

/// A command's result as text (its own rendering) or JSON, to FILE (atomically) or
/// standard output: the one place every command's output goes through.
pub fn emit<T: serde::Serialize + ?Sized>(value: &T, format: CardFormat, text: impl FnOnce(&T) -> String, output: Option<PathBuf>) -> Result<()> {
    let s = match format {
        CardFormat::Text => text(value),
        CardFormat::Json => serde_json::to_string_pretty(value)? + "\n",
    };
    write_output(&s, output)
}

/// The samples through the result cache, analysed: what `report` and `findings` print.
pub fn analysed(c: &Common) -> Result<(saescope::pipeline::compute::Computed, saescope::analysis::Analysis)> {
    let samples = samples(c)?;
    let (run, params) = setup(c)?;
    let cache = c.cache();
    let req = SamplesRequest { run: &run, samples: &samples, cache: cache.as_ref(), partial: None };
    let done = activations(&req, &ProgressSink::stderr())?;
    let analysis = analyze(&done.set, params);
    Ok((done, analysis))
}

/// Text from `--prompt`/`--text`, or standard input for `-`.
pub fn text_arg(text: &str, what: &str) -> Result<String> {
    if text != "-" {
        return Ok(text.to_string());
    }
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).wrap_err_with(|| format!("cannot read {what} from standard input (is it UTF-8?)"))?;
    Ok(s)
}
