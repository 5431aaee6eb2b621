//! `--corpus` in the explorer: the corpus index, read or built on the model thread once
//! the samples' results are in.

use super::WorkerJob;
use crate::pipeline::{Engine, RunOptions};
use crate::runtime::progress::ProgressSink;

/// `--corpus` for the explorer: indexed on the model thread once the results are in.
pub struct IndexJob {
    pub corpus: crate::corpus::Corpus,
    pub store: crate::dashboard::store::Store,
    pub context: Option<usize>,
    pub max_tokens: Option<u64>,
    pub batch_tokens: usize,
}

/// The stored index of the corpus, or one built now with the explorer's engine (loaded
/// here if every sample came from the result cache).
pub(super) fn index(job: &WorkerJob, ij: &IndexJob, engine: &mut Option<Engine>, progress: &ProgressSink) -> color_eyre::Result<crate::dashboard::Index> {
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
