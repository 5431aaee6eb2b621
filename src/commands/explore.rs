//! The explorer: its first state from the options, then the event loop (src/ui/).

use super::{labels, samples, setup};
use crate::commands::cli::{Common, GraphViewArgs, VersusArgs};
use color_eyre::eyre::Result;

pub fn explore(c: &Common, versus: &VersusArgs, graphs: &GraphViewArgs) -> Result<()> {
    use saescope::ui::{
        app::{App, RunInfo},
        worker::{VersusJob, WorkerJob},
    };
    let samples = samples(c)?;
    let (run, params) = setup(c)?;
    if !c.export_dir.is_dir() {
        color_eyre::eyre::bail!("--export-dir {}: not a folder", c.export_dir.display());
    }
    let categories = samples.categories.iter().map(|k| (k.name.clone(), k.texts.len())).collect();
    // The SAEs as known before their files are read (a width may be missing until then);
    // tabs and labels settle on the SAEs found once results arrive (App::set_results).
    let (planned, ids) = run.saes.planned();
    let (labels, summary) = labels(c, &saescope::neuronpedia::labels::Scope::new(&planned, &ids))?;
    let info = RunInfo { model: run.model.label(), sae: run.saes.short_label(), device: format!("{:?}", run.device).to_lowercase(), chat: run.opts.chat, ids };
    let transcoders = graphs
        .transcoders
        .as_deref()
        .map(|t| saescope::graph::transcoders::Set::parse(t, graphs.transcoder_variant.as_deref(), c.sae_registry.as_deref()))
        .transpose()?;
    // A graph file is read now, so a bad one fails before the screen opens.
    let graph = graphs.graph.as_ref().map(|p| saescope::graph::json::read(p).map(|f| (f, p))).transpose()?;
    let mut app = App::new(categories, planned.clone(), info, c.export_dir.clone());
    app.transcoders = transcoders.as_ref().map(saescope::graph::transcoders::Set::label);
    if let Some((file, path)) = graph {
        app.open_graph(file, format!("read from {}", path.display()))?;
    }
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
    // The second run is resolved now, so a mistyped --versus option fails before the screen opens.
    let versus = match versus.common(c) {
        Some(second) => {
            let (run, params) = setup(&second)?;
            app.versus = Some(saescope::ui::context::Versus { labels: [c.run_label(), second.run_label()], findings: None });
            Some(VersusJob { run, params })
        }
        None => None,
    };
    saescope::ui::run(
        app,
        WorkerJob { run, samples, params, cache: c.cache(), labels, planned, index, versus, neuronpedia: c.neuronpedia.clone(), transcoders },
    )
}
