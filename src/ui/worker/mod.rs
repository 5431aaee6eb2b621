//! The model thread. libtorch tensors are Send but not Sync and no_grad is per thread, so
//! one thread owns the weights from load to the end: it computes the results, then serves
//! the explorer's requests (cards, token views, your own text) over a channel.

use crate::activations::cache::Cache;
use crate::analysis::{analyze, Params};
use crate::corpus::samples::Samples;
use crate::neuronpedia::labels::Labels;
use crate::pipeline::compute::{activations, SamplesRequest};
use crate::pipeline::Run;
use crate::runtime::progress::ProgressSink;
use crate::ui::action::{Reply, Results, WorkerRequest};
use crate::ui::Event;
use std::sync::mpsc::{channel, Sender};
use std::time::Instant;

mod index;
mod serve;
mod versus;

pub use index::IndexJob;
pub use serve::{handle, Knows};
pub use versus::VersusJob;

pub enum Msg {
    /// Results of the texts computed so far (`Results::partial`); more follow.
    Partial(Results),
    Done(Results),
    Failed(String),
    Reply(Reply),
    /// The corpus index, found or built (after the results), or why not.
    Index(std::result::Result<std::sync::Arc<crate::dashboard::Index>, String>),
    /// The second run's findings (`--versus-model`), or why not.
    Versus(std::result::Result<Vec<crate::analysis::findings::Finding>, String>),
    /// `--neuronpedia`'s dump, read once the SAEs are known: what it holds (its line and
    /// each SAE's overview), or why not.
    Neuronpedia(std::result::Result<(String, NpOverviews), String>),
}

/// Neuronpedia's numbers at a glance, per loaded SAE the dump has.
pub type NpOverviews = std::collections::BTreeMap<crate::sae::key::SaeKey, crate::neuronpedia::dump::DumpOverview>;

pub struct WorkerJob {
    pub run: Run,
    pub samples: Samples,
    pub params: Params,
    pub cache: Option<Cache>,
    /// Read against `planned`, the SAEs as known before their files (`Labels::settle`).
    pub labels: Labels,
    pub planned: Vec<crate::sae::key::SaeKey>,
    pub index: Option<IndexJob>,
    pub versus: Option<VersusJob>,
    /// `--neuronpedia`: read once the results name the SAEs; cards then show its data.
    pub neuronpedia: Option<std::path::PathBuf>,
    /// `--transcoders`: what the graph view's graphs are made over.
    pub transcoders: Option<crate::graph::transcoders::Set>,
}

fn one_line(e: &color_eyre::Report) -> String {
    e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ")
}

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

pub fn spawn(job: WorkerJob, progress: ProgressSink, events: Sender<Event>) -> Sender<WorkerRequest> {
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
            transcoders: job.transcoders.clone(),
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
                // `--neuronpedia`'s dump, and Gemma Scope 2's examples beside the SAEs.
                let read = crate::pipeline::Resolved::new(&job.run.model, &job.run.saes, &progress)
                    .and_then(|r| crate::neuronpedia::scope_examples::dashboards(&r, job.neuronpedia.as_deref(), &done.set.saes, &done.set.neuronpedia))
                    .map_err(|e| one_line(&e));
                match read {
                    Ok(Some(d)) => {
                        tx(Msg::Neuronpedia(Ok((d.line(), d.overviews()))));
                        knows.neuronpedia = Some(d);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tx(Msg::Neuronpedia(Err(e)));
                    }
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
            let outcome = guarded("computing the second run", || versus::versus(&job, v, &progress)).and_then(|r| r.map_err(|e| one_line(&e)));
            if !tx(Msg::Versus(outcome)) || crate::runtime::interrupt::stopping() {
                return;
            }
        }
        if let Some(ij) = &job.index {
            let outcome = guarded("indexing the corpus", || index::index(&job, ij, &mut engine, &progress)).and_then(|r| r.map_err(|e| one_line(&e)));
            let outcome = outcome.map(std::sync::Arc::new);
            knows.corpus = outcome.as_ref().ok().cloned();
            if !tx(Msg::Index(outcome)) || crate::runtime::interrupt::stopping() {
                return;
            }
        }
        serve::serve(&job, engine, &knows, req_rx, &progress, &tx);
    });
    if let Err(e) = spawned {
        let _ = events.send(Event::Worker(Msg::Failed(format!("cannot start the model thread: {e}"))));
    }
    req_tx
}
