//! GPT-2's byte-level BPE. The tokenizer ships inside the binary (assets/, built from
//! GPT-2's own vocab and merges) so tokenising never needs the network.

use color_eyre::eyre::{eyre, Result};
use std::path::Path;

static BUNDLED: &[u8] = include_bytes!("../assets/gpt2-tokenizer.json");
pub const BOS_TOKEN: &str = "<|endoftext|>";

pub struct Gpt2Tokenizer {
    inner: tokenizers::Tokenizer,
    pub bos: u32,
}

impl Gpt2Tokenizer {
    /// `path`: a tokenizer.json beside the model, which wins over the bundled one.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let inner = match path {
            Some(p) => tokenizers::Tokenizer::from_file(p).map_err(|e| eyre!("cannot load tokenizer {}: {e}", p.display()))?,
            None => tokenizers::Tokenizer::from_bytes(BUNDLED).map_err(|e| eyre!("bundled tokenizer is corrupt: {e}"))?,
        };
        let bos = inner.token_to_id(BOS_TOKEN).ok_or_else(|| eyre!("tokenizer has no {BOS_TOKEN} token"))?;
        Ok(Self { inner, bos })
    }

    /// Tokens the tokenizer can produce (its largest id + 1).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token ids of `text` with BOS first, as TransformerLens's `to_tokens` gives them.
    pub fn encode_with_bos(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(|e| eyre!("cannot tokenise {text:?}: {e}"))?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        ids.push(self.bos);
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    /// The text of each token, for token-level views.
    pub fn token_strings(&self, ids: &[u32]) -> Vec<String> {
        ids.iter().map(|&id| self.inner.decode(&[id], false).unwrap_or_else(|_| format!("<{id}>"))).collect()
    }
}

/// The bundled tokenizer.json, for writers of model folders (synth).
pub fn bundled_json() -> &'static [u8] {
    BUNDLED
}
