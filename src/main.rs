use clap::Parser;
use color_eyre::eyre::{Result, WrapErr};
use saescope::analysis::{analyze, Params};
use saescope::cli::{CardFormat, Cli, Command, Common, Format};
use saescope::compute::{activations, Request};
use saescope::pipeline::{parse_device, Engine, RunOptions};
use saescope::progress::ProgressSink;
use saescope::report::Report;
use saescope::samples::Samples;
use std::io::Write;

/// Large tensors (the [tokens, d_sae] SAE buffers) get their own mappings, handed back to
/// the OS when freed. glibc's adaptive threshold otherwise moves them onto the heap after
/// the first free, and peak RSS then wandered by up to 250 MB between identical runs
/// (BENCHMARKS.md).
fn steady_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

/// Started first thing, read by `setup`: see src/cpu.rs.
static CPU_PROBE: std::sync::Mutex<Option<saescope::cpu::Probe>> = std::sync::Mutex::new(None);

fn main() {
    saescope::cpu::passive_beside_another();
    steady_memory();
    if let Ok(mut p) = CPU_PROBE.lock() {
        *p = Some(saescope::cpu::Probe::start());
    }
    let outcome = color_eyre::install().and_then(|_| saescope::interrupt::install()).and_then(|_| run(Cli::parse()));
    // A worker thread may still be writing a cache file; the process ends without its destructors.
    saescope::cache::remove_partials();
    if let Err(e) = outcome {
        // One line per cause, no backtrace noise: these are user-facing errors.
        let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
        eprintln!("error: {}", chain.join(": "));
        std::process::exit(if saescope::interrupt::requested() { saescope::interrupt::exit_code() } else { 1 });
    }
}

fn samples(c: &Common) -> Result<Samples> {
    match &c.samples {
        Some(p) => Samples::load(p),
        None => Samples::bundled(),
    }
}

fn setup(c: &Common) -> Result<(tch::Device, RunOptions, Params)> {
    let probe = CPU_PROBE.lock().ok().and_then(|mut p| p.take());
    if let Some(n) = c.threads {
        tch::set_num_threads(n as i32);
    } else if std::env::var_os("OMP_NUM_THREADS").is_none() {
        // As many threads as cores other processes leave free (src/cpu.rs).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if let Some(free) = probe.and_then(saescope::cpu::Probe::free).filter(|&f| f < cores) {
            tch::set_num_threads(free as i32);
        }
    }
    Ok((
        parse_device(&c.device)?,
        RunOptions {
            include_bos: c.include_bos,
            truncate: c.truncate,
            batch_tokens: c.text_batch_tokens(),
            keep: saescope::activations::Keep::for_threshold(c.threshold),
            max_memory: c.max_memory.map(|g| (g * (1u64 << 30) as f64) as u64),
            dtype: c.dtype,
        },
        Params { top_k: c.top_k, threshold: c.threshold },
    ))
}

fn run(cli: Cli) -> Result<()> {
    let mut common = cli.common;
    resolve_release(&mut common)?;
    let c = &common;
    saescope::source::download::set_policy(saescope::source::download::Policy {
        stall: std::time::Duration::from_secs_f64(c.download_timeout),
        retries: c.download_retries,
    });
    match cli.command {
        Some(Command::Saes { of, release, format }) => saes(c, of.as_deref(), release.as_deref(), format),
        Some(Command::Synth { out, size, seed }) => saescope::source::synth::write(&out, size, seed, &ProgressSink::stderr()),
        Some(Command::SynthSamples { out, texts, categories, seed }) => {
            saescope::fsio::write_atomic(&out, saescope::synth_samples::generate(texts, categories, seed).as_bytes())
        }
        Some(Command::Bench { repeat }) => {
            let (device, opts, params) = setup(c)?;
            if let Some(corpus) = c.corpus()? {
                let opts = RunOptions { batch_tokens: c.window_batch_tokens(), ..opts };
                return saescope::bench::index(
                    &c.model_source(),
                    &c.sae_source(),
                    &corpus,
                    &saescope::config::normalize_layers(&c.layers),
                    device,
                    &opts,
                    c.max_tokens,
                );
            }
            saescope::bench::run(&c.model_source(), &c.sae_source(), &samples(c)?, &c.layers, device, &opts, params, repeat)
        }
        Some(Command::Report { format, output }) => report(c, format, output),
        Some(Command::Index { format }) => index(c, format),
        Some(Command::Feature { layer, id, format, output }) => feature(c, layer, id, format, output),
        Some(Command::Findings { format, output }) => findings(c, format, output),
        Some(Command::Search { query, format }) => search(c, &query, format),
        Some(Command::Tokens { layer, id, text, format, output }) => tokens(c, layer, id, &text, format, output),
        Some(Command::Attribute { prompt, target, top, format, output }) => attribute(c, &prompt, target.as_deref(), top, format, output),
        Some(Command::Steer { prompt, features, tokens, temperature, seed, mode, format, output }) => {
            steer(c, &prompt, &features, saescope::steer::Sampling { tokens, temperature, seed }, mode, format, output)
        }
        None | Some(Command::Explore) => explore(c),
    }
}

/// A SAELens release name in --sae-release becomes its hub repo, and --sae ids its layers
/// (a repo name, with its slash, is used as it is).
fn resolve_release(c: &mut Common) -> Result<()> {
    if c.sae_dir.is_some() || c.sae_release.contains('/') {
        if !c.sae.is_empty() {
            color_eyre::eyre::bail!(
                "--sae names SAEs of a SAELens release (--sae-release NAME, `saescope saes` lists them); with a repo or --sae-dir use --layers"
            );
        }
        return Ok(());
    }
    let registry = saescope::registry::Registry::load(c.sae_registry.as_deref())?;
    if !c.sae.is_empty() {
        c.layers = registry.layers_of(&c.sae_release, &c.sae)?;
    }
    c.sae_release = registry.repo_for_layers(&c.sae_release, &saescope::config::normalize_layers(&c.layers))?;
    Ok(())
}

fn saes(c: &Common, of: Option<&str>, release: Option<&str>, format: CardFormat) -> Result<()> {
    let registry = saescope::registry::Registry::load(c.sae_registry.as_deref())?;
    let text = match release {
        None => {
            let rows = registry.releases_of(of);
            match format {
                CardFormat::Text => saescope::registry::table_releases(&rows),
                CardFormat::Json => {
                    let v: Vec<serde_json::Value> =
                        rows.iter().map(|(n, r)| serde_json::json!({"release": n, "model": r.model, "repo": r.repo_id, "saes": r.saes.len()})).collect();
                    serde_json::to_string_pretty(&v)? + "\n"
                }
            }
        }
        Some(name) => {
            let rows = registry.list(name, &saescope::source::hub::cache_dir())?;
            match format {
                CardFormat::Text => saescope::registry::table_saes(&rows),
                CardFormat::Json => serde_json::to_string_pretty(&rows)? + "\n",
            }
        }
    };
    write_output(&text, None)
}

fn explore(c: &Common) -> Result<()> {
    use saescope::ui::{
        app::{App, RunInfo},
        worker::Job,
    };
    let samples = samples(c)?;
    let (device, opts, params) = setup(c)?;
    if !c.export_dir.is_dir() {
        color_eyre::eyre::bail!("--export-dir {}: not a folder", c.export_dir.display());
    }
    let categories = samples.categories.iter().map(|k| (k.name.clone(), k.texts.len())).collect();
    let layers = saescope::config::normalize_layers(&c.layers);
    let ids = saescope::neuronpedia::Ids::resolve(&c.sae_source(), &layers);
    // The SAE width may not be known before the weights are read; labels past it are
    // then counted once results arrive (App::set_results).
    let d_sae = local_width(c, &layers).unwrap_or(usize::MAX);
    let (labels, summary) = labels(c, &saescope::labels::Scope::new(&layers, d_sae, &ids))?;
    let info = RunInfo { model: c.model_source().label(), sae: c.sae_source().label(), device: format!("{device:?}").to_lowercase(), ids };
    let mut app = App::new(categories, layers.clone(), info, c.export_dir.clone());
    app.labels = labels.clone();
    app.message = summary;
    let index = match c.corpus()? {
        Some(corpus) => {
            app.corpus = Some(corpus.label());
            app.index_note = Some(format!("{} {} once the sample results are in (the gauge shows it)", saescope::ui::context::INDEXING, corpus.label()));
            Some(saescope::ui::worker::IndexJob {
                corpus,
                store: c.index_store()?,
                context: c.context,
                max_tokens: c.max_tokens,
                batch_tokens: c.window_batch_tokens(),
            })
        }
        None => None,
    };
    saescope::ui::run(app, Job { model: c.model_source(), saes: c.sae_source(), samples, layers, device, opts, params, cache: c.cache(), labels, index })
}

/// `--labels`, checked against the loaded layers, with the line that says what was
/// imported and set aside (stderr for commands, the status line in the explorer).
fn labels(c: &Common, scope: &saescope::labels::Scope) -> Result<(saescope::labels::Labels, Option<String>)> {
    let Some(path) = &c.labels else { return Ok(Default::default()) };
    let scope = saescope::labels::Scope { source: c.labels_source.as_deref(), ..*scope };
    let (labels, summary) = saescope::labels::Labels::load(path, &scope)?;
    Ok((labels, Some(format!("labels: {}", summary.line()))))
}

/// `labels` for the headless commands.
fn labels_noted(c: &Common, scope: &saescope::labels::Scope) -> Result<saescope::labels::Labels> {
    let (labels, summary) = labels(c, scope)?;
    summary.into_iter().for_each(|s| eprintln!("{s}"));
    Ok(labels)
}

fn write_output(text: &str, output: Option<std::path::PathBuf>) -> Result<()> {
    match output {
        Some(path) => saescope::fsio::write_atomic(&path, text.as_bytes()),
        None => std::io::stdout().write_all(text.as_bytes()).wrap_err("cannot write to standard output"),
    }
}

fn feature(c: &Common, layer: usize, id: u32, format: CardFormat, output: Option<std::path::PathBuf>) -> Result<()> {
    let samples = samples(c)?;
    let (device, opts, _) = setup(c)?;
    let progress = ProgressSink::stderr();
    // The card's layer is loaded even when --layers leaves it out; its neighbours come
    // from the loaded layers on either side.
    let mut layers = c.layers.clone();
    layers.push(layer);
    let layers = saescope::config::normalize_layers(&layers);
    let cache = c.cache();
    let (model, saes) = (c.model_source(), c.sae_source());
    let req = Request { model: &model, saes: &saes, samples: &samples, layers: &layers, device, opts: &opts, cache: cache.as_ref(), partial: None };
    let done = activations(&req, &progress)?;
    let labels = labels_noted(c, &saescope::labels::Scope::new(&layers, done.set.d_sae, &done.set.neuronpedia))?;
    let mut card = saescope::card::Card::from_set(&done.set, &labels, layer, id)?;
    let engine = match done.engine {
        Some(e) => e,
        None => Engine::load(&model, &saes, &layers, device, false, &opts, &progress)?,
    };
    card.complete(&engine, &labels, opts.include_bos)?;
    if let Some(corpus) = c.corpus()? {
        let store = c.index_store()?;
        let sources = (model.clone(), saes.clone());
        let req = index_request(c, &corpus, &sources, &layers, device, &opts, &store);
        let at = saescope::dashboard::build::locate(&req, &progress)?;
        match saescope::dashboard::build::stored(&req, &at, &progress).and_then(|index| index.feature(layer, id)) {
            Some(mut fc) => {
                progress.stage("computing every token's activation in the contexts");
                saescope::dashboard::shade::shade(&engine, layer, id, &mut fc.contexts_mut())?;
                card.corpus = Some(fc);
            }
            None => eprintln!(
                "note: {} is not indexed for layers {layers:?} with these options yet; run `saescope index` with the same options for its corpus sections",
                corpus.label()
            ),
        }
    }
    let text = match format {
        CardFormat::Text => card.text(),
        CardFormat::Json => serde_json::to_string_pretty(&card)? + "\n",
    };
    write_output(&text, output)
}

/// The samples through the result cache, analysed: what `report` and `findings` print.
fn analysed(c: &Common) -> Result<(saescope::compute::Computed, saescope::analysis::Analysis)> {
    let samples = samples(c)?;
    let (device, opts, params) = setup(c)?;
    let cache = c.cache();
    let (model, saes) = (c.model_source(), c.sae_source());
    let req = Request { model: &model, saes: &saes, samples: &samples, layers: &c.layers, device, opts: &opts, cache: cache.as_ref(), partial: None };
    let done = activations(&req, &ProgressSink::stderr())?;
    let analysis = analyze(&done.set, params);
    Ok((done, analysis))
}

fn findings(c: &Common, format: CardFormat, output: Option<std::path::PathBuf>) -> Result<()> {
    let (done, analysis) = analysed(c)?;
    let list = saescope::findings::findings(&analysis, &done.set.categories);
    let text = match format {
        CardFormat::Text => saescope::findings::text(&list),
        CardFormat::Json => serde_json::to_string_pretty(&list)? + "\n",
    };
    write_output(&text, output)
}

/// The SAEs' width from a cfg.json already on disk (no download), for commands that
/// load no weights.
fn local_width(c: &Common, layers: &[usize]) -> Option<usize> {
    let saes = c.sae_source();
    let cfg = match &saes {
        saescope::source::Source::Dir(_) => saes.cfg_on_disk(*layers.first()?)?,
        saescope::source::Source::Hub(_) => return None,
    };
    saescope::sae::SaeConfig::from_file(&cfg).ok()?.d_sae
}

/// `saescope search`: labels only, no weights.
fn search(c: &Common, query: &str, format: CardFormat) -> Result<()> {
    if c.labels.is_none() {
        color_eyre::eyre::bail!("search needs --labels FILE, a Neuronpedia explanations export (README, \"Labels\")");
    }
    let layers = saescope::config::normalize_layers(&c.layers);
    let ids = saescope::neuronpedia::Ids::resolve(&c.sae_source(), &layers);
    let d_sae = local_width(c, &layers).unwrap_or(usize::MAX);
    let labels = labels_noted(c, &saescope::labels::Scope::new(&layers, d_sae, &ids))?;
    let hits = labels.search(query);
    let text = match format {
        CardFormat::Text => hits.iter().map(|(l, f, t)| format!("{l}\t{f}\t{}\t{}\n", saescope::printable::printable(t), ids.url_or_empty(*l, *f))).collect(),
        CardFormat::Json => {
            let rows: Vec<_> = hits.iter().map(|(l, f, t)| serde_json::json!({"layer": l, "feature": f, "label": t, "neuronpedia": ids.url(*l, *f)})).collect();
            serde_json::to_string_pretty(&rows)? + "\n"
        }
    };
    write_output(&text, None)
}

/// Text from `--prompt`/`--text`, or standard input for `-`.
fn text_arg(text: &str, what: &str) -> Result<String> {
    if text != "-" {
        return Ok(text.to_string());
    }
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).wrap_err_with(|| format!("cannot read {what} from standard input (is it UTF-8?)"))?;
    Ok(s)
}

/// `saescope attribute`: the whole model and the SAEs of `--layers`, with gradients.
fn attribute(c: &Common, prompt: &str, target: Option<&str>, top: usize, format: CardFormat, output: Option<std::path::PathBuf>) -> Result<()> {
    let prompt = text_arg(prompt, "the prompt")?;
    let (device, opts, _) = setup(c)?;
    let progress = ProgressSink::stderr();
    let layers = saescope::config::normalize_layers(&c.layers);
    let engine = saescope::pipeline::Resolved::new(&c.model_source(), &c.sae_source(), &layers, &progress)?.load_full(device, &opts, &progress)?;
    progress.stage("attributing");
    let out = saescope::attribute::attribute(&engine, &prompt, target, top)?;
    let text = match format {
        CardFormat::Text => out.text(),
        CardFormat::Json => serde_json::to_string_pretty(&out)? + "\n",
    };
    write_output(&text, output)
}

/// `saescope steer`: the whole model and the SAEs of the steered layers.
fn steer(
    c: &Common,
    prompt: &str,
    features: &[saescope::steer::Steer],
    sampling: saescope::steer::Sampling,
    mode: saescope::steer::Mode,
    format: CardFormat,
    output: Option<std::path::PathBuf>,
) -> Result<()> {
    let prompt = text_arg(prompt, "the prompt")?;
    let (device, opts, _) = setup(c)?;
    let progress = ProgressSink::stderr();
    let layers = saescope::config::normalize_layers(&features.iter().map(|f| f.layer).collect::<Vec<_>>());
    let engine = saescope::pipeline::Resolved::new(&c.model_source(), &c.sae_source(), &layers, &progress)?.load_full(device, &opts, &progress)?;
    progress.stage("generating");
    let out = saescope::steer::steer(&engine, &prompt, features, mode, sampling)?;
    let text = match format {
        CardFormat::Text => out.text(),
        CardFormat::Json => serde_json::to_string_pretty(&out)? + "\n",
    };
    write_output(&text, output)
}

/// `saescope tokens`: the one layer asked for is all that loads; no samples run.
fn tokens(c: &Common, layer: usize, id: u32, text: &str, format: CardFormat, output: Option<std::path::PathBuf>) -> Result<()> {
    let text = text_arg(text, "the text")?;
    if text.trim().is_empty() {
        color_eyre::eyre::bail!("--text is empty: give the text to run, or - to read it from standard input");
    }
    let (device, opts, _) = setup(c)?;
    let progress = ProgressSink::stderr();
    let layers = saescope::config::normalize_layers(&[layer]);
    let engine = Engine::load(&c.model_source(), &c.sae_source(), &layers, device, false, &opts, &progress)?;
    if id as usize >= engine.d_sae() {
        color_eyre::eyre::bail!("feature {id} does not exist: the SAE has features 0..{}", engine.d_sae());
    }
    let acts = engine.token_activations(&text, opts.include_bos)?;
    if acts.truncated > 0 {
        eprintln!("warning: {} tokens past n_ctx were left out", acts.truncated);
    }
    let values = acts.feature(0, id);
    let out = match format {
        CardFormat::Text => {
            let mut s = format!("position\ttoken\tactivation (layer {layer}, feature {id})\n");
            for (i, (t, v)) in acts.tokens.iter().zip(&values).enumerate() {
                s.push_str(&format!("{i}\t{t:?}\t{v}\n"));
            }
            s
        }
        CardFormat::Json => {
            let tokens: Vec<_> =
                acts.tokens.iter().zip(&values).enumerate().map(|(i, (t, v))| serde_json::json!({"position": i, "token": t, "activation": v})).collect();
            serde_json::to_string_pretty(&serde_json::json!({"layer": layer, "feature": id, "truncated": acts.truncated, "tokens": tokens}))? + "\n"
        }
    };
    write_output(&out, output)
}

fn report(c: &Common, format: Format, output: Option<std::path::PathBuf>) -> Result<()> {
    let (done, analysis) = analysed(c)?;
    let report = Report::new(done.model_label, done.sae_label, &done.set, &analysis);
    let text = match format {
        Format::Table => report.table(),
        Format::Csv => report.csv()?,
        Format::Json => report.json()?,
    };
    write_output(&text, output)
}

/// What `index` and `feature` ask of the dashboard store.
fn index_request<'a>(
    c: &'a Common,
    corpus: &'a saescope::corpus::Corpus,
    sources: &'a (saescope::source::Source, saescope::source::Source),
    layers: &'a [usize],
    device: tch::Device,
    opts: &'a RunOptions,
    store: &'a saescope::dashboard::store::Store,
) -> saescope::dashboard::build::Request<'a> {
    saescope::dashboard::build::Request {
        model: &sources.0,
        saes: &sources.1,
        layers,
        device,
        opts,
        corpus,
        context: c.context,
        max_tokens: c.max_tokens,
        store,
    }
}

/// `saescope index`: builds (or finds) the corpus index and prints what it holds.
fn index(c: &Common, format: CardFormat) -> Result<()> {
    let corpus = c.corpus()?.ok_or_else(|| color_eyre::eyre::eyre!("index needs --corpus PATH: a text file, a folder of text files, or JSON Lines"))?;
    let (device, opts, _) = setup(c)?;
    let opts = RunOptions { batch_tokens: c.window_batch_tokens(), ..opts };
    let store = c.index_store()?;
    let sources = (c.model_source(), c.sae_source());
    let layers = saescope::config::normalize_layers(&c.layers);
    let req = index_request(c, &corpus, &sources, &layers, device, &opts, &store);
    let progress = ProgressSink::stderr();
    let out = saescope::dashboard::build::open_or_build(&req, None, &progress)?;
    let summary = saescope::dashboard::Summary::new(&out.index, &out.path, out.timings.as_ref(), out.resumed_tokens);
    let text = match format {
        CardFormat::Text => summary.text(),
        CardFormat::Json => serde_json::to_string_pretty(&summary)? + "\n",
    };
    write_output(&text, None)
}
