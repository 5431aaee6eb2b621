//! Documents cut as SAELens and Neuronpedia cut them for their dashboards: each document
//! tokenised on its own, split into pieces of `context - 1` tokens, each piece a window
//! with BOS in front (so a window holds at most `context` tokens, the SAE's
//! `context_size`). BOS is never counted as a token.

use super::{Corpus, Skipped};
use crate::model::tokenizer::Tokenizer;
use color_eyre::eyre::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Where its document came from (file, and line for JSON Lines).
    pub source: String,
    /// Of its document's tokens, where this window starts.
    pub offset: u32,
    /// BOS, then up to `context - 1` of the document's tokens.
    pub tokens: Vec<u32>,
}

impl Window {
    /// Tokens that count (all but BOS).
    pub fn n_counted(&self) -> usize {
        self.tokens.len().saturating_sub(1)
    }
}

/// What a pass over the corpus saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub documents: u64,
    pub windows: u64,
    /// Counted tokens (BOS excluded).
    pub tokens: u64,
    pub skipped: Skipped,
}

pub struct Windows<'a> {
    pub corpus: &'a Corpus,
    pub tokenizer: &'a Tokenizer,
    /// Tokens per window, BOS included.
    pub context: usize,
    /// Stop after this many counted tokens (the last window is cut to fit).
    pub max_tokens: Option<u64>,
}

impl Windows<'_> {
    /// Calls `each` with every window in order (numbered from 0) until it returns false.
    pub fn each(&self, mut each: impl FnMut(u32, Window) -> Result<bool>) -> Result<Totals> {
        if self.context < 2 {
            bail!("--context {}: a window needs BOS and at least one token", self.context);
        }
        let piece = self.context - 1;
        let mut t = Totals::default();
        let cap = self.max_tokens.unwrap_or(u64::MAX);
        let skipped = self.corpus.documents(|doc| {
            let ids = self.tokenizer.encode_with_bos(&doc.text)?;
            let ids = &ids[1..];
            if ids.is_empty() {
                return Ok(true);
            }
            t.documents += 1;
            for (k, chunk) in ids.chunks(piece).enumerate() {
                let room = (cap - t.tokens) as usize;
                let chunk = &chunk[..chunk.len().min(room)];
                let mut tokens = Vec::with_capacity(chunk.len() + 1);
                tokens.push(self.tokenizer.bos);
                tokens.extend_from_slice(chunk);
                let number = u32::try_from(t.windows).unwrap_or(u32::MAX);
                t.windows += 1;
                t.tokens += chunk.len() as u64;
                let go_on = each(number, Window { source: doc.source.clone(), offset: (k * piece) as u32, tokens })?;
                if !go_on || t.tokens >= cap {
                    return Ok(false);
                }
            }
            Ok(true)
        })?;
        t.skipped = skipped;
        if t.windows > u64::from(u32::MAX) {
            bail!("the corpus has over 4 billion windows; index a part of it with --max-tokens");
        }
        Ok(t)
    }

    /// Counts windows and tokens without computing anything: the total for the progress
    /// gauge, and an early error for an empty corpus.
    pub fn count(&self) -> Result<Totals> {
        self.count_each(|_, _| {})
    }

    /// `count`, showing `also` every window on the way (a shard sums its own tokens).
    pub fn count_each(&self, mut also: impl FnMut(u32, &Window)) -> Result<Totals> {
        let t = self.each(|n, w| {
            also(n, &w);
            Ok(true)
        })?;
        if t.tokens == 0 {
            let why = match &t.skipped.first_row_without_text {
                Some(row) => {
                    format!("; {} rows have no string field {:?} (first: {row}); pass --text-field", t.skipped.rows_without_text, self.corpus.text_field)
                }
                None => String::new(),
            };
            bail!("--corpus {}: no text to index{why}", self.corpus.label());
        }
        Ok(t)
    }
}
