//! `saescope report`: the per-category, per-layer figures (the study's Figure 2b), and in
//! JSON each SAE's reconstruction quality on the same samples.

use super::{analysed, write_output};
use crate::commands::cli::{Common, ReportFormat};
use color_eyre::eyre::Result;
use saescope::output::report::Report;
use saescope::runtime::progress::ProgressSink;

pub fn report(c: &Common, format: ReportFormat, output: Option<std::path::PathBuf>) -> Result<()> {
    if let Some(o) = &output {
        saescope::runtime::fsio::check_writable(o)?;
    }
    let (done, analysis) = analysed(c)?;
    let mut report = Report::new(done.model_label, done.sae_label, &done.set, &analysis);
    report.chat = c.chat;
    let text = match format {
        ReportFormat::Table => report.table(),
        ReportFormat::Csv => report.csv()?,
        ReportFormat::Json => {
            report.quality = Some(quality(c, done.engine)?);
            report.json()?
        }
    };
    write_output(&text, output)
}

/// Each SAE's quality on the samples: a second pass over them (encode and decode), kept in
/// the result cache beside the texts' vectors so a second launch reads it back as it reads
/// them, without loading the model.
fn quality(c: &Common, engine: Option<saescope::pipeline::Engine>) -> Result<Vec<saescope::analysis::eval::Quality>> {
    let progress = ProgressSink::stderr();
    let (run, _) = super::setup(c)?;
    let samples = super::samples(c)?;
    let opts = saescope::analysis::eval::EvalOptions::reconstruction(c.text_batch_tokens());
    let cache = c.cache();
    let mut id = saescope::pipeline::Resolved::new(&run.model, &run.saes, &progress)?
        .weights(saescope::activations::cache::IdentityBuilder::default().part("saescope quality on texts"))?
        .part([run.opts.dtype as u8, u8::from(run.opts.truncate)])
        .part((opts.batch_tokens as u64).to_le_bytes());
    for category in &samples.categories {
        id = category.texts.iter().fold(id.part(&category.name), |id, t| id.part(t));
    }
    let id = id.finish();
    if let Some(q) = cache.as_ref().and_then(|cache| cache.read_extra(&id, "quality")) {
        return Ok(q);
    }
    let engine = match engine {
        Some(e) => e,
        None => saescope::pipeline::Engine::load(&run, &progress)?,
    };
    let ids = engine.tokenize(&samples, &run.opts, &progress)?;
    let q = saescope::analysis::eval::evaluate(&engine, &ids, "the samples".into(), &opts, &progress)?.saes;
    if let Some(cache) = &cache {
        if let Err(e) = cache.write_extra(&id, "quality", &q) {
            progress.stage(format!("warning: {e}; the quality figures will not be cached"));
        }
    }
    Ok(q)
}
