//! `saescope tokens`: one text's activation of a feature, token by token.

use super::{text_arg, write_output};
use crate::commands::cli::{CardFormat, Common};
use color_eyre::eyre::Result;
use saescope::pipeline::Engine;
use saescope::runtime::progress::ProgressSink;

/// `saescope tokens`: the SAE asked for (a layer number loads that layer's alone); no
/// samples run.
pub fn tokens(c: &Common, sae: &str, id: u32, text: &str, format: CardFormat, output: Option<std::path::PathBuf>) -> Result<()> {
    let text = text_arg(text, "the text")?;
    if text.trim().is_empty() {
        color_eyre::eyre::bail!("--text is empty: give the text to run, or - to read it from standard input");
    }
    let layers: Vec<usize> = sae.trim().parse().map_or_else(|_| c.layers(), |l| vec![l]);
    let (run, _) = super::setup_layers(c, &layers)?;
    let progress = ProgressSink::stderr();
    let engine = Engine::load(&run, &progress)?;
    let key = saescope::sae::key::pick(&engine.keys(), sae)?;
    if id as usize >= key.width {
        color_eyre::eyre::bail!("feature {id} does not exist: SAE {key} has features 0..{}", key.width);
    }
    let li = engine.keys().iter().position(|&k| k == key).unwrap_or(0);
    let acts = saescope::interp::lens::token_activations(&engine, &text, run.opts.include_bos)?;
    if acts.truncated > 0 {
        eprintln!("warning: {} tokens past n_ctx were left out", acts.truncated);
    }
    let values = acts.feature(li, id);
    let out = match format {
        CardFormat::Text => {
            let mut s = format!("position\ttoken\tactivation (SAE {key}, feature {id})\n");
            for (i, (t, v)) in acts.tokens.iter().zip(&values).enumerate() {
                s.push_str(&format!("{i}\t{t:?}\t{v}\n"));
            }
            s
        }
        CardFormat::Json => {
            let tokens: Vec<_> =
                acts.tokens.iter().zip(&values).enumerate().map(|(i, (t, v))| serde_json::json!({"position": i, "token": t, "activation": v})).collect();
            serde_json::to_string_pretty(&serde_json::json!({"sae": key, "feature": id, "truncated": acts.truncated, "tokens": tokens}))? + "\n"
        }
    };
    write_output(&out, output)
}
