//! The model thread. libtorch tensors are Send but not Sync and no_grad is per thread, so
//! one thread owns the weights from load to the end: it computes the results, then serves
//! the explorer's requests (cards, token views, your own text) over a channel.

use crate::analysis::{analyze, Params};
use crate::cache::Cache;
use crate::compute::{activations, SamplesRequest};
use crate::labels::Labels;
use crate::pipeline::{Engine, Run, RunOptions};
use crate::progress::ProgressSink;
use crate::samples::Samples;
use crate::ui::action::{Reply, Results, WorkerRequest};
use crate::ui::Event;
use std::sync::mpsc::{channel, Sender};
use std::time::Instant;

pub enum Msg {
    /// Results of the texts computed so far (`Results::partial`); more follow.
    Partial(Results),
    Done(Results),
    Failed(String),
    Reply(Reply),
    /// The corpus index, found or built (after the results), or why not.
    Index(std::result::Result<std::sync::Arc<crate::dashboard::Index>, String>),
    /// The second run's findings (`--versus-model`), or why not.
    Versus(std::result::Result<Vec<crate::findings::Finding>, String>),
    /// `--neuronpedia`'s dump, read once the SAEs are known: what it holds (its line and
    /// each SAE's overview), or why not.
    Neuronpedia(std::result::Result<(String, NpOverviews), String>),
}

/// Neuronpedia's numbers at a glance, per loaded SAE the dump has.
pub type NpOverviews = std::collections::BTreeMap<crate::sae_key::SaeKey, crate::neuronpedia_dump::Overview>;

/// `--versus-model` for the explorer: a second run over the same samples, computed on the
/// model thread after the first run's results; only its findings are kept.
pub struct VersusJob {
    pub run: Run,
    pub params: Params,
}

/// `--corpus` for the explorer: indexed on the model thread once the results are in.
pub struct IndexJob {
    pub corpus: crate::corpus::Corpus,
    pub store: crate::dashboard::store::Store,
    pub context: Option<usize>,
    pub max_tokens: Option<u64>,
    pub batch_tokens: usize,
}

pub struct Job {
    pub run: Run,
    pub samples: Samples,
    pub params: Params,
    pub cache: Option<Cache>,
    /// Read against `planned`, the SAEs as known before their files (`Labels::settle`).
    pub labels: Labels,
    pub planned: Vec<crate::sae_key::SaeKey>,
    pub index: Option<IndexJob>,
    pub versus: Option<VersusJob>,
    /// `--neuronpedia`: read once the results name the SAEs; cards then show its data.
    pub neuronpedia: Option<std::path::PathBuf>,
}

fn one_line(e: &color_eyre::Report) -> String {
    e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ")
}

/// What the model thread answers requests with, beside the engine.
#[derive(Default)]
pub struct Knows {
    pub labels: Labels,
    pub neuronpedia: Option<crate::neuronpedia_dump::Dump>,
    /// The samples and their final results, for the open questions and the SAE quality.
    pub samples: Option<Samples>,
    pub computed: Option<(crate::activations::ActivationSet, crate::analysis::Analysis)>,
    pub opts: RunOptions,
    pub progress: ProgressSink,
}

impl Knows {
    fn samples(&self) -> color_eyre::Result<&Samples> {
        self.samples.as_ref().ok_or_else(|| color_eyre::eyre::eyre!("the samples are not known to the model thread"))
    }
}

/// Answers one request with the engine; `partial` hears of steering as it generates.
pub fn handle(engine: &Engine, knows: &Knows, include_bos: bool, request: WorkerRequest, partial: &mut dyn FnMut(Reply)) -> Reply {
    let asked = request.clone();
    let outcome = match request {
        WorkerRequest::Card(mut card) => card.complete(engine, &knows.labels, include_bos).and_then(|_| {
            let (layer, feature) = (card.sae, card.feature);
            if let Some(c) = card.corpus.as_mut() {
                crate::dashboard::shade::shade(engine, layer, feature, &mut c.contexts_mut())?;
            }
            if let Some(d) = &knows.neuronpedia {
                card.neuronpedia = d.feature(layer, feature)?;
            }
            Ok(Reply::Card(card))
        }),
        WorkerRequest::Tokens(text) => crate::lens::token_activations(engine, &text, include_bos).map(|t| Reply::Tokens(text, t)),
        WorkerRequest::AdHoc(text) => crate::lens::token_activations(engine, &text, include_bos).map(|t| Reply::AdHoc(text, t)),
        WorkerRequest::Steer { prompt, features, mode, tokens } => {
            let s = crate::steer::Sampling { tokens, temperature: 0.0, seed: 0 };
            let mut tell = |so_far: &crate::steer::Steered| partial(Reply::SteerProgress(Box::new(so_far.clone())));
            crate::steer::steer_streaming(engine, &prompt, &features, mode, s, &mut tell).map(|r| Reply::Steered(Box::new(r)))
        }
        WorkerRequest::Attribute { prompt, target } => {
            crate::attribute::attribute(engine, &prompt, target.as_deref(), ATTRIBUTE_TOP).map(|r| Reply::Attributed(Box::new(r)))
        }
        WorkerRequest::Questions => knows.samples().and_then(|samples| {
            let (set, analysis) = knows.computed.as_ref().ok_or_else(|| color_eyre::eyre::eyre!("the results are not in yet"))?;
            let texts = crate::questions::texts(engine, samples, &knows.opts, &knows.progress)?;
            crate::questions::measure(engine, set, analysis, texts, knows.opts.batch_tokens, &knows.progress).map(|q| Reply::Questions(Box::new(q)))
        }),
        WorkerRequest::Quality(key) => knows.samples().and_then(|samples| {
            let ids = engine.tokenize(samples, &knows.opts, &knows.progress)?;
            let opts = crate::eval::EvalOptions { only: Some(key), ..crate::eval::EvalOptions::all(knows.opts.batch_tokens) };
            let q = crate::eval::evaluate(engine, &ids, "the samples".into(), &opts, &knows.progress)?;
            q.saes.into_iter().next().map(|q| Reply::Quality(key, Box::new(q))).ok_or_else(|| color_eyre::eyre::eyre!("SAE {key} is not loaded"))
        }),
    };
    outcome.unwrap_or_else(|e| Reply::Failed { request: asked, why: one_line(&e) })
}

/// Features per layer the attribute screen lists.
const ATTRIBUTE_TOP: usize = 10;

/// The model thread's name: the panic hook (ui::run) leaves its panics to `guarded`.
pub const THREAD: &str = "saescope-model";

/// The text of a panic's payload.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_else(|| "unknown panic".into())
}

/// Runs `f`, turning a panic (libtorch raises C++ errors such as out-of-memory as panics
/// through tch) into an error with its message, so the explorer can show it and go on.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| format!("the model thread failed while {what}: {}", panic_text(&*p)))
}

/// `SAESCOPE_FAULT=panic-computing` or `panic-serving`: a panic at that point of the model
/// thread, for the test that the explorer survives one (tests/tui_e2e.rs).
fn fault(at: &str) {
    if std::env::var("SAESCOPE_FAULT").is_ok_and(|v| v == at) {
        panic!("injected fault ({at})");
    }
}

/// Tells the event loop the thread ended, however it ends.
struct Gone(Sender<Event>);

impl Drop for Gone {
    fn drop(&mut self) {
        let _ = self.0.send(Event::WorkerGone);
    }
}

/// The stored index of the corpus, or one built now with the explorer's engine (loaded
/// here if every sample came from the result cache).
fn index(job: &Job, ij: &IndexJob, engine: &mut Option<Engine>, progress: &ProgressSink) -> color_eyre::Result<crate::dashboard::Index> {
    use crate::dashboard::build::{locate, open_or_build, stored, IndexRequest};
    let run = job.run.with_opts(RunOptions { batch_tokens: ij.batch_tokens, ..job.run.opts.clone() });
    let req = IndexRequest { run: &run, corpus: &ij.corpus, context: ij.context, max_tokens: ij.max_tokens, store: &ij.store };
    let at = locate(&req, progress)?;
    if let Some(index) = stored(&req, &at, progress) {
        return Ok(index);
    }
    if engine.is_none() {
        progress.stage("loading the model to index the corpus");
        *engine = Some(Engine::load(&job.run, progress)?);
    }
    Ok(open_or_build(&req, engine.as_ref(), progress)?.index)
}

/// The second run's findings and open questions' answers over the job's samples; its
/// engine is dropped before the first run's serves any view.
fn versus(job: &Job, v: &VersusJob, progress: &ProgressSink) -> color_eyre::Result<Vec<crate::findings::Finding>> {
    progress.stage(format!("the second run: {}", v.run.model.label()));
    let req = SamplesRequest { run: &v.run, samples: &job.samples, cache: job.cache.as_ref(), partial: None };
    let done = activations(&req, progress)?;
    let analysis = analyze(&done.set, v.params);
    let mut list = crate::findings::findings(&analysis, &done.set.categories);
    let engine = match done.engine {
        Some(e) => e,
        None => Engine::load(&v.run, progress)?,
    };
    progress.stage(format!("the second run's open questions: {}", v.run.model.label()));
    let texts = crate::questions::texts(&engine, &job.samples, &v.run.opts, progress)?;
    list.extend(crate::questions::measure(&engine, &done.set, &analysis, texts, v.run.opts.batch_tokens, progress)?.answers());
    Ok(list)
}

pub fn spawn(job: Job, progress: ProgressSink, events: Sender<Event>) -> Sender<WorkerRequest> {
    let (req_tx, req_rx) = channel::<WorkerRequest>();
    let mine = events.clone();
    let spawned = std::thread::Builder::new().name(THREAD.into()).spawn(move || {
        let gone = Gone(mine);
        let tx = |m: Msg| gone.0.send(Event::Worker(m)).is_ok();
        let start = Instant::now();
        let params = job.params;
        let partial = |set: crate::activations::ActivationSet| {
            let analysis = analyze(&set, params);
            let _ = gone.0.send(Event::Worker(Msg::Partial(Results { set, analysis, elapsed: start.elapsed(), from_cache: 0, partial: true })));
        };
        let mut knows = Knows {
            labels: job.labels.clone(),
            samples: Some(job.samples.clone()),
            opts: job.run.opts.clone(),
            progress: progress.clone(),
            ..Default::default()
        };
        let req = SamplesRequest { run: &job.run, samples: &job.samples, cache: job.cache.as_ref(), partial: Some(&partial) };
        let computed = guarded("computing", || {
            fault("panic-computing");
            activations(&req, &progress)
        });
        let mut engine = match computed {
            Ok(Ok(done)) => {
                progress.stage("analysing");
                let analysis = analyze(&done.set, job.params);
                knows.labels.settle(&job.planned, &done.set.saes);
                if let Some(path) = &job.neuronpedia {
                    let read = crate::neuronpedia_dump::Dump::load(path, &done.set.saes, &done.set.neuronpedia).map_err(|e| one_line(&e));
                    let said = read.as_ref().map(|d| (d.summary.line(), d.overviews())).map_err(Clone::clone);
                    knows.neuronpedia = read.ok();
                    tx(Msg::Neuronpedia(said));
                }
                knows.computed = Some((done.set.clone(), analysis.clone()));
                let results = Results { set: done.set, analysis, elapsed: start.elapsed(), from_cache: done.from_cache, partial: false };
                // The UI may have quit already; nothing to do then.
                if !tx(Msg::Done(results)) {
                    return;
                }
                done.engine
            }
            Ok(Err(e)) => {
                tx(Msg::Failed(one_line(&e)));
                return;
            }
            Err(panicked) => {
                tx(Msg::Failed(panicked));
                return;
            }
        };
        if let Some(v) = &job.versus {
            let outcome = guarded("computing the second run", || versus(&job, v, &progress)).and_then(|r| r.map_err(|e| one_line(&e)));
            if !tx(Msg::Versus(outcome)) || crate::interrupt::stopping() {
                return;
            }
        }
        if let Some(ij) = &job.index {
            let outcome = guarded("indexing the corpus", || index(&job, ij, &mut engine, &progress)).and_then(|r| r.map_err(|e| one_line(&e)));
            if !tx(Msg::Index(outcome.map(std::sync::Arc::new))) || crate::interrupt::stopping() {
                return;
            }
        }
        for request in req_rx {
            // Everything came from the result cache: the model loads on the first request.
            if engine.is_none() {
                progress.stage("loading the model for this view");
                match Engine::load(&job.run, &progress) {
                    Ok(e) => engine = Some(e),
                    Err(e) => {
                        tx(Msg::Reply(Reply::Failed { request, why: one_line(&e) }));
                        continue;
                    }
                }
            }
            // Generation and gradients need the whole model; the explorer loaded only the
            // blocks its layers read. Reload once, with every block.
            let whole = matches!(request, WorkerRequest::Steer { .. } | WorkerRequest::Attribute { .. } | WorkerRequest::Quality(_));
            if whole && engine.as_ref().is_some_and(|e| e.model.n_blocks() < e.model.n_layers()) {
                progress.stage("loading the whole model for generation");
                engine = None;
                let loaded = crate::pipeline::Resolved::new(&job.run.model, &job.run.saes, &progress)
                    .and_then(|r| r.load_all_blocks(job.run.device, &job.run.opts, &progress));
                match loaded {
                    Ok(e) => engine = Some(e),
                    Err(e) => {
                        tx(Msg::Reply(Reply::Failed { request, why: one_line(&e) }));
                        continue;
                    }
                }
            }
            if let Some(e) = &engine {
                let asked = request.clone();
                let reply = guarded("answering a view", || {
                    fault("panic-serving");
                    handle(e, &knows, job.run.opts.include_bos, request, &mut |r| {
                        tx(Msg::Reply(r));
                    })
                });
                if !tx(Msg::Reply(reply.unwrap_or_else(|why| Reply::Failed { request: asked, why }))) {
                    return;
                }
            }
        }
    });
    if let Err(e) = spawned {
        let _ = events.send(Event::Worker(Msg::Failed(format!("cannot start the model thread: {e}"))));
    }
    req_tx
}
