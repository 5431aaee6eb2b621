use clap::Parser;
use color_eyre::eyre::{Result, WrapErr};
use saescope::analysis::{analyze, Params};
use saescope::cli::{CardFormat, Cli, Command, Common, Format};
use saescope::compute::{activations, Request};
use saescope::pipeline::{parse_device, RunOptions};
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

fn main() {
    steady_memory();
    let outcome = color_eyre::install().and_then(|_| saescope::interrupt::install()).and_then(|_| run(Cli::parse()));
    if let Err(e) = outcome {
        // One line per cause, no backtrace noise: these are user-facing errors.
        let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
        eprintln!("error: {}", chain.join(": "));
        std::process::exit(if saescope::interrupt::requested() { saescope::interrupt::EXIT_CODE } else { 1 });
    }
}

fn samples(c: &Common) -> Result<Samples> {
    match &c.samples {
        Some(p) => Samples::load(p),
        None => Samples::bundled(),
    }
}

fn setup(c: &Common) -> Result<(tch::Device, RunOptions, Params)> {
    if let Some(n) = c.threads {
        tch::set_num_threads(n.max(1) as i32);
    }
    if c.top_k == 0 {
        color_eyre::eyre::bail!("--top-k must be at least 1");
    }
    Ok((
        parse_device(&c.device)?,
        RunOptions {
            include_bos: c.include_bos,
            truncate: c.truncate,
            batch_tokens: c.batch_tokens.max(1),
            keep: saescope::activations::Keep::for_threshold(c.threshold),
            max_memory: c.max_memory.map(|g| (g.max(0.0) * (1u64 << 30) as f64) as u64),
        },
        Params { top_k: c.top_k, threshold: c.threshold },
    ))
}

fn run(cli: Cli) -> Result<()> {
    let c = &cli.common;
    match cli.command {
        Some(Command::Synth { out, size, seed }) => saescope::source::synth::write(&out, size, seed, &ProgressSink::stderr()),
        Some(Command::SynthSamples { out, texts, categories, seed }) => {
            saescope::fsio::write_atomic(&out, saescope::corpus::generate(texts, categories, seed).as_bytes())
        }
        Some(Command::Bench { repeat }) => {
            let (device, opts, params) = setup(c)?;
            saescope::bench::run(&c.model_source(), &c.sae_source(), &samples(c)?, &c.layers, device, &opts, params, repeat)
        }
        Some(Command::Report { format, output }) => report(c, format, output),
        Some(Command::Feature { layer, id, format, output }) => feature(c, layer, id, format, output),
        None | Some(Command::Explore) => explore(c),
    }
}

fn explore(c: &Common) -> Result<()> {
    use saescope::ui::{app::{App, RunInfo}, worker::Job};
    let samples = samples(c)?;
    let (device, opts, params) = setup(c)?;
    if !c.export_dir.is_dir() {
        color_eyre::eyre::bail!("--export-dir {}: not a folder", c.export_dir.display());
    }
    let info = RunInfo { model: c.model_source().label(), sae: c.sae_source().label(), device: format!("{device:?}").to_lowercase() };
    let categories = samples.categories.iter().map(|k| (k.name.clone(), k.texts.len())).collect();
    let layers = saescope::config::normalize_layers(&c.layers);
    let app = App::new(categories, layers.clone(), info, c.export_dir.clone());
    saescope::ui::run(app, Job { model: c.model_source(), saes: c.sae_source(), samples, layers, device, opts, params, cache: c.cache() })
}

/// `--labels`, checked against the loaded layers; what was set aside goes to stderr.
fn labels(c: &Common, layers: &[usize], d_sae: usize) -> Result<saescope::labels::Labels> {
    let Some(path) = &c.labels else { return Ok(Default::default()) };
    let (labels, summary) = saescope::labels::Labels::load(path, layers, d_sae)?;
    eprintln!("labels: {}", summary.line());
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
    let req = Request { model: &model, saes: &saes, samples: &samples, layers: &layers, device, opts: &opts, cache: cache.as_ref() };
    let done = activations(&req, &progress)?;
    let labels = labels(c, &layers, done.set.d_sae)?;
    let mut card = saescope::card::Card::from_set(&done.set, &labels, layer, id)?;
    let engine = match done.engine {
        Some(e) => e,
        None => saescope::pipeline::Resolved::new(&model, &saes, &layers, &progress)?.load(device, false, &opts, &progress)?,
    };
    card.complete(&engine, &labels, opts.include_bos)?;
    let text = match format {
        CardFormat::Text => card.text(),
        CardFormat::Json => serde_json::to_string_pretty(&card)? + "\n",
    };
    write_output(&text, output)
}

fn report(c: &Common, format: Format, output: Option<std::path::PathBuf>) -> Result<()> {
    let samples = samples(c)?;
    let (device, opts, params) = setup(c)?;
    let progress = ProgressSink::stderr();
    let cache = c.cache();
    let (model, saes) = (c.model_source(), c.sae_source());
    let req = Request { model: &model, saes: &saes, samples: &samples, layers: &c.layers, device, opts: &opts, cache: cache.as_ref() };
    let done = activations(&req, &progress)?;
    let report = Report::new(done.model_label, done.sae_label, &done.set, &analyze(&done.set, params));
    let text = match format {
        Format::Table => report.table(),
        Format::Csv => report.csv()?,
        Format::Json => report.json()?,
    };
    write_output(&text, output)
}
