//! `saescope tokens`: one text's activation of a feature, token by token.

use super::{setup, text_arg, write_output};
use color_eyre::eyre::Result;
use saescope::cli::{CardFormat, Common};
use saescope::pipeline::Engine;
use saescope::progress::ProgressSink;

/// `saescope tokens`: the one layer asked for is all that loads; no samples run.
pub fn tokens(c: &Common, layer: usize, id: u32, text: &str, format: CardFormat, output: Option<std::path::PathBuf>) -> Result<()> {
    let text = text_arg(text, "the text")?;
    if text.trim().is_empty() {
        color_eyre::eyre::bail!("--text is empty: give the text to run, or - to read it from standard input");
    }
    let (device, opts, _) = setup(c)?;
    let progress = ProgressSink::stderr();
    let layers = saescope::config::normalize_layers(&[layer]);
    let engine = Engine::load(&c.model_source(), &c.sae_source(), &layers, device, false, &opts, &progress)?;
    if id as usize >= engine.d_sae() {
        color_eyre::eyre::bail!("feature {id} does not exist: the SAE has features 0..{}", engine.d_sae());
    }
    let acts = engine.token_activations(&text, opts.include_bos)?;
    if acts.truncated > 0 {
        eprintln!("warning: {} tokens past n_ctx were left out", acts.truncated);
    }
    let values = acts.feature(0, id);
    let out = match format {
        CardFormat::Text => {
            let mut s = format!("position\ttoken\tactivation (layer {layer}, feature {id})\n");
            for (i, (t, v)) in acts.tokens.iter().zip(&values).enumerate() {
                s.push_str(&format!("{i}\t{t:?}\t{v}\n"));
            }
            s
        }
        CardFormat::Json => {
            let tokens: Vec<_> =
                acts.tokens.iter().zip(&values).enumerate().map(|(i, (t, v))| serde_json::json!({"position": i, "token": t, "activation": v})).collect();
            serde_json::to_string_pretty(&serde_json::json!({"layer": layer, "feature": id, "truncated": acts.truncated, "tokens": tokens}))? + "\n"
        }
    };
    write_output(&out, output)
}
