//! `--versus-model` in the explorer: the second run's findings, computed on the model
//! thread after the first run's results.

use super::WorkerJob;
use crate::analysis::{analyze, Params};
use crate::pipeline::compute::{activations, SamplesRequest};
use crate::pipeline::{Engine, Run};
use crate::runtime::progress::ProgressSink;

/// `--versus-model` for the explorer: a second run over the same samples, computed on the
/// model thread after the first run's results; only its findings are kept.
pub struct VersusJob {
    pub run: Run,
    pub params: Params,
}

/// The second run's findings and open questions' answers over the job's samples; its
/// engine is dropped before the first run's serves any view.
pub(super) fn versus(job: &WorkerJob, v: &VersusJob, progress: &ProgressSink) -> color_eyre::Result<Vec<crate::analysis::findings::Finding>> {
    progress.stage(format!("the second run: {}", v.run.model.label()));
    let req = SamplesRequest { run: &v.run, samples: &job.samples, cache: job.cache.as_ref(), partial: None };
    let done = activations(&req, progress)?;
    let analysis = analyze(&done.set, v.params);
    let mut list = crate::analysis::findings::findings(&analysis, &done.set.categories);
    let engine = match done.engine {
        Some(e) => e,
        None => Engine::load(&v.run, progress)?,
    };
    progress.stage(format!("the second run's open questions: {}", v.run.model.label()));
    let texts = crate::analysis::questions::texts(&engine, &job.samples, &v.run.opts, progress)?;
    list.extend(crate::analysis::questions::measure(&engine, &done.set, &analysis, texts, None, v.run.opts.batch_tokens, progress)?.answers());
    Ok(list)
}
