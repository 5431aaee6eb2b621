//! `saescope report`: the per-category, per-layer figures (the seed's Figure 2b).

use super::{analysed, write_output};
use color_eyre::eyre::Result;
use saescope::cli::{Common, Format};
use saescope::report::Report;

pub fn report(c: &Common, format: Format, output: Option<std::path::PathBuf>) -> Result<()> {
    let (done, analysis) = analysed(c)?;
    let report = Report::new(done.model_label, done.sae_label, &done.set, &analysis);
    let text = match format {
        Format::Table => report.table(),
        Format::Csv => report.csv()?,
        Format::Json => report.json()?,
    };
    write_output(&text, output)
}
