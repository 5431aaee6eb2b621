//! `saescope search`: labelled features whose label matches a query; labels only, no weights.

use super::{labels_noted, write_output};
use crate::commands::cli::{CardFormat, Common};
use color_eyre::eyre::Result;

/// `saescope search`: labels only, no weights.
pub fn search(c: &Common, query: &str, format: CardFormat) -> Result<()> {
    if c.labels.is_none() {
        color_eyre::eyre::bail!("search needs --labels FILE, a Neuronpedia explanations export (docs/formats.md, \"Labels\")");
    }
    let selection = saescope::sae::selection::Selection::from_args(&c.sae_release(), &c.sae, &c.layers(), c.sae_dir.as_deref(), c.sae_registry.as_deref())?;
    let (saes, ids) = selection.planned();
    let labels = labels_noted(c, &saescope::neuronpedia::labels::Scope::new(&saes, &ids))?;
    let hits = labels.search(query);
    let text = match format {
        CardFormat::Text => {
            hits.iter().map(|(l, f, t)| format!("{l}\t{f}\t{}\t{}\n", saescope::runtime::printable::printable(t), ids.url_or_empty(*l, *f))).collect()
        }
        CardFormat::Json => {
            let rows: Vec<_> = hits.iter().map(|(l, f, t)| serde_json::json!({"sae": l, "feature": f, "label": t, "neuronpedia": ids.url(*l, *f)})).collect();
            serde_json::to_string_pretty(&rows)? + "\n"
        }
    };
    write_output(&text, None)
}
