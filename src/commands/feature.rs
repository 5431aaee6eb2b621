//! `saescope feature`: one feature's card, headless, with its corpus sections when indexed.

use super::index::index_request;
use super::{labels_noted, samples, setup};
use color_eyre::eyre::Result;
use saescope::cli::{CardFormat, Common};
use saescope::compute::{activations, Request};
use saescope::pipeline::Engine;
use saescope::progress::ProgressSink;

pub fn feature(c: &Common, layer: usize, id: u32, format: CardFormat, output: Option<std::path::PathBuf>) -> Result<()> {
    let samples = samples(c)?;
    let (device, opts, _) = setup(c)?;
    let progress = ProgressSink::stderr();
    // The card's layer is loaded even when --layers leaves it out; its neighbours come
    // from the loaded layers on either side.
    let mut layers = c.layers.clone();
    layers.push(layer);
    let layers = saescope::config::normalize_layers(&layers);
    let cache = c.cache();
    let (model, saes) = (c.model_source(), c.sae_source());
    let req = Request { model: &model, saes: &saes, samples: &samples, layers: &layers, device, opts: &opts, cache: cache.as_ref(), partial: None };
    let done = activations(&req, &progress)?;
    let labels = labels_noted(c, &saescope::labels::Scope::new(&layers, done.set.d_sae, &done.set.neuronpedia))?;
    let mut card = saescope::card::Card::from_set(&done.set, &labels, layer, id)?;
    let engine = match done.engine {
        Some(e) => e,
        None => Engine::load(&model, &saes, &layers, device, false, &opts, &progress)?,
    };
    card.complete(&engine, &labels, opts.include_bos)?;
    if let Some(corpus) = c.corpus()? {
        let store = c.index_store()?;
        let sources = (model.clone(), saes.clone());
        let req = index_request(c, &corpus, &sources, &layers, device, &opts, &store);
        let at = saescope::dashboard::build::locate(&req, &progress)?;
        match saescope::dashboard::build::stored(&req, &at, &progress).and_then(|index| index.feature(layer, id)) {
            Some(mut fc) => {
                progress.stage("computing every token's activation in the contexts");
                saescope::dashboard::shade::shade(&engine, layer, id, &mut fc.contexts_mut())?;
                card.corpus = Some(fc);
            }
            None => eprintln!(
                "note: {} is not indexed for layers {layers:?} with these options yet; run `saescope index` with the same options for its corpus sections",
                corpus.label()
            ),
        }
    }
    super::emit(&card, format, |x| x.text(), output)
}
