//! `saescope index`: the corpus index, built or found, and what it holds.

use super::setup;
use crate::commands::cli::{CardFormat, Common};
use color_eyre::eyre::Result;
use saescope::pipeline::RunOptions;
use saescope::runtime::progress::ProgressSink;

/// What `index` and `feature` ask of the dashboard store.
pub fn index_request<'a>(
    c: &'a Common,
    corpus: &'a saescope::corpus::Corpus,
    run: &'a saescope::pipeline::Run,
    store: &'a saescope::dashboard::store::Store,
) -> saescope::dashboard::build::IndexRequest<'a> {
    saescope::dashboard::build::IndexRequest { run, corpus, context: c.context, max_tokens: c.max_tokens, store }
}

/// The stored index of `--corpus`, if one is stored (nothing is built): what `findings`
/// takes its firing rates from.
pub fn stored_index(c: &Common) -> Result<Option<saescope::dashboard::Index>> {
    if c.corpus.is_none() {
        return Ok(None);
    }
    let (corpus, run, store) = inputs(c)?;
    let req = index_request(c, &corpus, &run, &store);
    let progress = ProgressSink::stderr();
    let at = saescope::dashboard::build::locate(&req, &progress)?;
    Ok(saescope::dashboard::build::stored(&req, &at, &progress))
}

/// What every form of `index` starts from: the corpus, the run and the store.
fn inputs(c: &Common) -> Result<(saescope::corpus::Corpus, saescope::pipeline::Run, saescope::dashboard::store::Store)> {
    let corpus = c.corpus()?.ok_or_else(|| color_eyre::eyre::eyre!("index needs --corpus PATH: a text file, a folder of text files, or JSON Lines"))?;
    let (run, _) = setup(c)?;
    let run = run.with_opts(RunOptions { batch_tokens: c.window_batch_tokens(), ..run.opts.clone() });
    Ok((corpus, run, c.index_store()?))
}

fn print(out: &saescope::dashboard::build::Outcome, format: CardFormat, merged_shards: Option<u32>) -> Result<()> {
    if let Some(note) = &out.note {
        eprintln!("note: {note}");
    }
    let summary =
        saescope::dashboard::Summary { merged_shards, ..saescope::dashboard::Summary::new(&out.index, &out.path, out.timings.as_ref(), out.resumed_tokens) };
    super::emit(&summary, format, |x| x.text(), None)
}

/// `saescope index`: builds (or finds) the corpus index and prints what it holds.
pub fn index(c: &Common, format: CardFormat, export: Option<&std::path::Path>) -> Result<()> {
    let (corpus, run, store) = inputs(c)?;
    let req = index_request(c, &corpus, &run, &store);
    let progress = ProgressSink::stderr();
    let out = saescope::dashboard::build::open_or_build(&req, None, &progress)?;
    if let Some(dir) = export {
        let engine = saescope::pipeline::Engine::load(&run, &progress)?;
        let job = saescope::dashboard::build::Job {
            engine: &engine,
            corpus: &corpus,
            context: out.index.context,
            max_tokens: c.max_tokens,
            batch_tokens: run.opts.batch_tokens,
            encode: saescope::dashboard::screen::Encode::Plain,
            slice: None,
        };
        for folder in saescope::neuronpedia::export::write(&out.index, &job, dir, &progress)? {
            eprintln!("wrote {} (read it back with --neuronpedia {})", folder.display(), dir.display());
        }
    }
    print(&out, format, None)
}

/// `saescope index --shard K/N -o FILE`: one slice's statistics into FILE.
pub fn shard(c: &Common, slice: saescope::dashboard::shard::Slice, output: &std::path::Path, format: CardFormat) -> Result<()> {
    let (corpus, run, store) = inputs(c)?;
    let req = index_request(c, &corpus, &run, &store);
    let out = saescope::dashboard::build::build_shard(&req, slice, output, &ProgressSink::stderr())?;
    eprintln!("shard {slice} written to {}; when all {} are done: saescope index merge FILE... (with these options)", output.display(), slice.n);
    print(&out, format, None)
}

/// `saescope index merge FILE...`: the shards added into the stored index.
pub fn merge(c: &Common, files: &[std::path::PathBuf], format: CardFormat) -> Result<()> {
    let (corpus, run, store) = inputs(c)?;
    let req = index_request(c, &corpus, &run, &store);
    print(&saescope::dashboard::build::merge_shards(&req, files, &ProgressSink::stderr())?, format, Some(files.len() as u32))
}
