//! `saescope eval`: each loaded SAE's quality (eval.rs) on the samples, or on --corpus.

use crate::commands::cli::{CardFormat, Common};
use color_eyre::eyre::{bail, Result};
use saescope::runtime::progress::ProgressSink;

/// Tokens of --corpus evaluated when --max-tokens is not given: SAELens's `run_evals`
/// default (10 batches of 8 prompts of 128 tokens).
pub const DEFAULT_CORPUS_TOKENS: u64 = 10 * 8 * 128;

pub fn eval(c: &Common, format: CardFormat, output: Option<std::path::PathBuf>) -> Result<()> {
    if let Some(o) = &output {
        saescope::runtime::fsio::check_writable(o)?;
    }
    let (run, _) = super::setup(c)?;
    // A bad --corpus is named before the model loads.
    let corpus = c.corpus()?;
    let progress = ProgressSink::stderr();
    let resolved = saescope::pipeline::Resolved::new(&run.model, &run.saes, &progress)?;
    let cfg_context = resolved.saes.first().and_then(|f| saescope::dashboard::build::context_size(&f.files.cfg));
    let n_ctx = resolved.cfg.n_ctx();
    let engine = resolved.load_full(run.device, &run.opts, &progress)?;
    let (texts, label) = texts(c, corpus, &engine, cfg_context.unwrap_or(saescope::dashboard::build::DEFAULT_CONTEXT).min(n_ctx), &progress)?;
    let result = saescope::analysis::eval::evaluate(&engine, &texts, label, &saescope::analysis::eval::EvalOptions::all(c.text_batch_tokens()), &progress)?;
    super::emit(&result, format, saescope::analysis::eval::Eval::text, output)
}

/// The token ids to evaluate on, BOS first, and what they are in words.
fn texts(
    c: &Common,
    corpus: Option<saescope::corpus::Corpus>,
    engine: &saescope::pipeline::Engine,
    default_context: usize,
    progress: &ProgressSink,
) -> Result<(Vec<Vec<u32>>, String)> {
    let Some(corpus) = corpus else {
        let samples = super::samples(c)?;
        let label = c.samples.as_ref().map_or_else(|| "the bundled samples".to_string(), |p| p.display().to_string());
        return Ok((engine.tokenize(&samples, &super::setup(c)?.0.opts, progress)?, label));
    };
    let context = c.context.unwrap_or(default_context);
    let max_tokens = c.max_tokens.unwrap_or(DEFAULT_CORPUS_TOKENS);
    let windows = saescope::corpus::Windows { corpus: &corpus, tokenizer: &engine.tokenizer, context, max_tokens: Some(max_tokens) };
    let mut out = Vec::new();
    let totals = windows.each(|_, w| {
        out.push(w.tokens);
        Ok(true)
    })?;
    if out.is_empty() {
        bail!("--corpus {}: no text to evaluate on (every document was empty or skipped)", corpus.label());
    }
    Ok((out, format!("{} ({} windows of up to {context} tokens, {} tokens)", corpus.label(), totals.windows, totals.tokens)))
}
