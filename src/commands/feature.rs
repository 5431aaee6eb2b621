//! `saescope feature`: one feature's card, headless, with its corpus sections when indexed.

use super::index::index_request;
use super::{labels_noted, samples};
use crate::commands::cli::{CardFormat, Common};
use color_eyre::eyre::Result;
use saescope::pipeline::compute::{activations, SamplesRequest};
use saescope::pipeline::Engine;
use saescope::runtime::progress::ProgressSink;

pub fn feature(c: &Common, sae: &str, id: u32, format: CardFormat, output: Option<std::path::PathBuf>) -> Result<()> {
    let samples = samples(c)?;
    // A card's layer given by number is loaded even when --layers leaves it out; its
    // neighbours come from the loaded SAEs on either side.
    let mut layers = c.layers();
    layers.extend(sae.trim().parse::<usize>().ok());
    let (run, _) = super::setup_layers(c, &layers)?;
    let progress = ProgressSink::stderr();
    let cache = c.cache();
    let req = SamplesRequest { run: &run, samples: &samples, cache: cache.as_ref(), partial: None };
    let done = activations(&req, &progress)?;
    let key = saescope::sae::key::pick(&done.set.saes, sae)?;
    let labels = labels_noted(c, &saescope::neuronpedia::labels::Scope::new(&done.set.saes, &done.set.neuronpedia))?;
    let mut card = saescope::interp::card::Card::from_set(&done.set, &labels, key, id)?;
    let engine = match done.engine {
        Some(e) => e,
        None => Engine::load(&run, &progress)?,
    };
    card.complete(&engine, &labels, run.opts.include_bos)?;
    if let Some(corpus) = c.corpus()? {
        let store = c.index_store()?;
        let index_run = run.with_opts(saescope::pipeline::RunOptions { batch_tokens: c.window_batch_tokens(), ..run.opts.clone() });
        let req = index_request(c, &corpus, &index_run, &store);
        let at = saescope::dashboard::build::locate(&req, &progress)?;
        match saescope::dashboard::build::stored(&req, &at, &progress).and_then(|index| index.feature(key, id)) {
            Some(mut fc) => {
                progress.stage("computing every token's activation in the contexts");
                saescope::dashboard::shade::shade(&engine, key, id, &mut fc.contexts_mut())?;
                card.corpus = Some(fc);
            }
            None => eprintln!(
                "note: {} is not indexed for these SAEs with these options yet; run `saescope index` with the same options for its corpus sections",
                corpus.label()
            ),
        }
    }
    let resolved = saescope::pipeline::Resolved::new(&run.model, &run.saes, &progress)?;
    if let Some(dump) = super::neuronpedia(c, &resolved, &done.set.saes, &done.set.neuronpedia)? {
        eprintln!("{}", dump.line());
        card.neuronpedia = dump.feature(key, id)?;
        if card.neuronpedia.is_none() {
            eprintln!("note: the Neuronpedia dump has nothing of {key} feature {id}");
        }
    }
    super::emit(&card, format, |x| x.text(), output)
}
