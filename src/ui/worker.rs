//! The model thread. libtorch tensors are Send but not Sync and no_grad is per thread, so
//! one thread owns the weights from load to the end and reports over channels.

use crate::analysis::{analyze, Params};
use crate::cache::Cache;
use crate::compute::{activations, Request};
use crate::pipeline::RunOptions;
use crate::progress::ProgressSink;
use crate::samples::Samples;
use crate::source::Source;
use crate::ui::app::Results;
use std::sync::mpsc::{channel, Receiver};
use std::time::Instant;
use tch::Device;

pub enum Msg {
    Done(Results),
    Failed(String),
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
}

pub fn spawn(job: Job, progress: ProgressSink) -> Receiver<Msg> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let start = Instant::now();
        let run = || -> color_eyre::Result<Results> {
            let req = Request {
                model: &job.model,
                saes: &job.saes,
                samples: &job.samples,
                layers: &job.layers,
                device: job.device,
                opts: &job.opts,
                cache: job.cache.as_ref(),
            };
            let done = activations(&req, &progress)?;
            progress.stage("analysing");
            let analysis = analyze(&done.set, job.params);
            Ok(Results { set: done.set, analysis, elapsed: start.elapsed(), from_cache: done.from_cache })
        };
        let msg = match run() {
            Ok(r) => Msg::Done(r),
            Err(e) => Msg::Failed(e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ")),
        };
        // The UI may have quit already; nothing to do then.
        let _ = tx.send(msg);
    });
    rx
}
