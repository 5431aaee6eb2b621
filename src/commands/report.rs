//! `saescope report`: the per-category, per-layer figures (the seed's Figure 2b), and in
//! JSON each SAE's reconstruction quality on the same samples.

use super::{analysed, write_output};
use color_eyre::eyre::Result;
use saescope::cli::{Common, Format};
use saescope::progress::ProgressSink;
use saescope::report::Report;

pub fn report(c: &Common, format: Format, output: Option<std::path::PathBuf>) -> Result<()> {
    if let Some(o) = &output {
        saescope::fsio::check_writable(o)?;
    }
    let (done, analysis) = analysed(c)?;
    let mut report = Report::new(done.model_label, done.sae_label, &done.set, &analysis);
    let text = match format {
        Format::Table => report.table(),
        Format::Csv => report.csv()?,
        Format::Json => {
            let progress = ProgressSink::stderr();
            let (run, _) = super::setup(c)?;
            let engine = match done.engine {
                Some(e) => e,
                None => saescope::pipeline::Engine::load(&run, &progress)?,
            };
            let ids = engine.tokenize(&super::samples(c)?, &run.opts, &progress)?;
            let opts = saescope::eval::EvalOptions::reconstruction(c.text_batch_tokens());
            report.quality = Some(saescope::eval::evaluate(&engine, &ids, "the samples".into(), &opts, &progress)?.saes);
            report.json()?
        }
    };
    write_output(&text, output)
}
