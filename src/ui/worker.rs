//! The model thread. libtorch tensors are Send but not Sync and no_grad is per thread, so
//! one thread owns the weights from load to the end and reports over channels.

use crate::analysis::{analyze, Params};
use crate::pipeline::{Engine, RunOptions};
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
}

pub fn spawn(job: Job, progress: ProgressSink) -> Receiver<Msg> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let start = Instant::now();
        let run = || -> color_eyre::Result<Results> {
            let engine = Engine::load(&job.model, &job.saes, &job.layers, job.device, false, &progress)?;
            let set = engine.run(&job.samples, &job.opts, &progress)?;
            progress.stage("analysing");
            let analysis = analyze(&set, job.params);
            Ok(Results { set, analysis, elapsed: start.elapsed() })
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
