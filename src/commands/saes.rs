//! `saescope saes`: SAELens's releases and their SAEs.

use super::write_output;
use crate::commands::cli::{CardFormat, Common};
use color_eyre::eyre::Result;

pub fn saes(c: &Common, of: Option<&str>, release: Option<&str>, format: CardFormat) -> Result<()> {
    let registry = saescope::sae::registry::Registry::load(c.sae_registry.as_deref())?;
    let text = match release {
        None => {
            let rows = registry.releases_of(of);
            match format {
                CardFormat::Text => saescope::sae::registry::table_releases(&rows),
                CardFormat::Json => {
                    let v: Vec<serde_json::Value> =
                        rows.iter().map(|(n, r)| serde_json::json!({"release": n, "model": r.model, "repo": r.repo_id, "saes": r.saes.len()})).collect();
                    serde_json::to_string_pretty(&v)? + "\n"
                }
            }
        }
        Some(name) => {
            let rows = registry.list(name, &saescope::source::hub::cache_dir())?;
            match format {
                CardFormat::Text => saescope::sae::registry::table_saes(&rows),
                CardFormat::Json => serde_json::to_string_pretty(&rows)? + "\n",
            }
        }
    };
    write_output(&text, None)
}
