//! The explorer: its first state from the options, then the event loop (src/ui/).

use super::{labels, local_width, samples, setup};
use color_eyre::eyre::Result;
use saescope::cli::Common;

pub fn explore(c: &Common) -> Result<()> {
    use saescope::ui::{
        app::{App, RunInfo},
        worker::Job,
    };
    let samples = samples(c)?;
    let (device, opts, params) = setup(c)?;
    if !c.export_dir.is_dir() {
        color_eyre::eyre::bail!("--export-dir {}: not a folder", c.export_dir.display());
    }
    let categories = samples.categories.iter().map(|k| (k.name.clone(), k.texts.len())).collect();
    let layers = saescope::config::normalize_layers(&c.layers);
    let ids = saescope::neuronpedia::Ids::resolve(&c.sae_source(), &layers);
    // The SAE width may not be known before the weights are read; labels past it are
    // then counted once results arrive (App::set_results).
    let d_sae = local_width(c, &layers).unwrap_or(usize::MAX);
    let (labels, summary) = labels(c, &saescope::labels::Scope::new(&layers, d_sae, &ids))?;
    let info = RunInfo { model: c.model_source().label(), sae: c.sae_source().label(), device: format!("{device:?}").to_lowercase(), ids };
    let mut app = App::new(categories, layers.clone(), info, c.export_dir.clone());
    app.labels = labels.clone();
    app.message = summary;
    let index = match c.corpus()? {
        Some(corpus) => {
            app.corpus = Some(corpus.label());
            app.index_note = Some(format!("{} {} once the sample results are in (the gauge shows it)", saescope::ui::context::INDEXING, corpus.label()));
            Some(saescope::ui::worker::IndexJob {
                corpus,
                store: c.index_store()?,
                context: c.context,
                max_tokens: c.max_tokens,
                batch_tokens: c.window_batch_tokens(),
            })
        }
        None => None,
    };
    saescope::ui::run(app, Job { model: c.model_source(), saes: c.sae_source(), samples, layers, device, opts, params, cache: c.cache(), labels, index })
}
