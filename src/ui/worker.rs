//! The model thread. libtorch tensors are Send but not Sync and no_grad is per thread, so
//! one thread owns the weights from load to the end: it computes the results, then serves
//! the explorer's requests (cards, token views, your own text) over a channel.

use crate::analysis::{analyze, Params};
use crate::cache::Cache;
use crate::compute::{activations, Request as Compute};
use crate::labels::Labels;
use crate::pipeline::{Engine, RunOptions};
use crate::progress::ProgressSink;
use crate::samples::Samples;
use crate::source::Source;
use crate::ui::app::{Reply, Request, Results};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Instant;
use tch::Device;

pub enum Msg {
    Done(Results),
    Failed(String),
    Reply(Reply),
}

pub struct Job {
    pub model: Source,
    pub saes: Source,
    pub samples: Samples,
    pub layers: Vec<usize>,
    pub device: Device,
    pub opts: RunOptions,
    pub params: Params,
    pub cache: Option<Cache>,
    pub labels: Labels,
}

fn one_line(e: &color_eyre::Report) -> String {
    e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ")
}

/// Answers one request with the engine.
pub fn handle(engine: &Engine, labels: &Labels, include_bos: bool, request: Request) -> Reply {
    let outcome = match request {
        Request::Card(mut card) => card.complete(engine, labels, include_bos).map(|_| Reply::Card(card)),
        Request::Tokens(text) => engine.token_activations(&text, include_bos).map(|t| Reply::Tokens(text, t)),
        Request::AdHoc(text) => engine.token_activations(&text, include_bos).map(|t| Reply::AdHoc(text, t)),
    };
    outcome.unwrap_or_else(|e| Reply::Failed(one_line(&e)))
}

pub fn spawn(job: Job, progress: ProgressSink) -> (Sender<Request>, Receiver<Msg>) {
    let (tx, rx) = channel();
    let (req_tx, req_rx) = channel::<Request>();
    std::thread::spawn(move || {
        let start = Instant::now();
        let req = Compute {
            model: &job.model,
            saes: &job.saes,
            samples: &job.samples,
            layers: &job.layers,
            device: job.device,
            opts: &job.opts,
            cache: job.cache.as_ref(),
        };
        let mut engine = match activations(&req, &progress) {
            Ok(done) => {
                progress.stage("analysing");
                let analysis = analyze(&done.set, job.params);
                let results = Results { set: done.set, analysis, elapsed: start.elapsed(), from_cache: done.from_cache };
                // The UI may have quit already; nothing to do then.
                if tx.send(Msg::Done(results)).is_err() {
                    return;
                }
                done.engine
            }
            Err(e) => {
                let _ = tx.send(Msg::Failed(one_line(&e)));
                return;
            }
        };
        for request in req_rx {
            // Everything came from the result cache: the model loads on the first request.
            if engine.is_none() {
                progress.stage("loading the model for this view");
                match Engine::load(&job.model, &job.saes, &job.layers, job.device, false, &job.opts, &progress) {
                    Ok(e) => engine = Some(e),
                    Err(e) => {
                        let _ = tx.send(Msg::Reply(Reply::Failed(one_line(&e))));
                        continue;
                    }
                }
            }
            if let Some(e) = &engine {
                if tx.send(Msg::Reply(handle(e, &job.labels, job.opts.include_bos, request))).is_err() {
                    return;
                }
            }
        }
    });
    (req_tx, rx)
}
