//! `saescope index`: the corpus index, built or found, and what it holds.

use super::setup;
use color_eyre::eyre::Result;
use saescope::cli::{CardFormat, Common};
use saescope::pipeline::RunOptions;
use saescope::progress::ProgressSink;

/// What `index` and `feature` ask of the dashboard store.
pub fn index_request<'a>(
    c: &'a Common,
    corpus: &'a saescope::corpus::Corpus,
    run: &'a saescope::pipeline::Run,
    store: &'a saescope::dashboard::store::Store,
) -> saescope::dashboard::build::IndexRequest<'a> {
    saescope::dashboard::build::IndexRequest { run, corpus, context: c.context, max_tokens: c.max_tokens, store }
}

/// `saescope index`: builds (or finds) the corpus index and prints what it holds.
pub fn index(c: &Common, format: CardFormat) -> Result<()> {
    let corpus = c.corpus()?.ok_or_else(|| color_eyre::eyre::eyre!("index needs --corpus PATH: a text file, a folder of text files, or JSON Lines"))?;
    let (run, _) = setup(c)?;
    let run = run.with_opts(RunOptions { batch_tokens: c.window_batch_tokens(), ..run.opts.clone() });
    let store = c.index_store()?;
    let req = index_request(c, &corpus, &run, &store);
    let progress = ProgressSink::stderr();
    let out = saescope::dashboard::build::open_or_build(&req, None, &progress)?;
    let summary = saescope::dashboard::Summary::new(&out.index, &out.path, out.timings.as_ref(), out.resumed_tokens);
    super::emit(&summary, format, |x| x.text(), None)
}
