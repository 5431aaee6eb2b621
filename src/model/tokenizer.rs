//! A model's tokenizer.json through the `tokenizers` crate (GPT-2's byte-level BPE, Gemma's
//! SentencePiece-derived BPE), with the BOS token every text starts with. GPT-2's ships
//! inside the binary (assets/, built from its own vocab and merges) so tokenising a GPT-2
//! model never needs the network.

use color_eyre::eyre::{bail, eyre, Result};
use std::path::Path;

static BUNDLED: &[u8] = include_bytes!("../../assets/gpt2-tokenizer.json");
/// GPT-2's BOS (and end-of-text) token.
pub const GPT2_BOS: &str = "<|endoftext|>";

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    pub bos: u32,
    /// `--chat`: texts are read as a user turn in the model's template.
    chat: Option<Chat>,
}

/// The chat template and the tokens it puts around every text: the same for every text,
/// since they are its own tokens (the text's first and last ones are checked not to merge
/// into them).
struct Chat {
    template: crate::model::chat::ChatTemplate,
    prefix: Vec<u32>,
    suffix: Vec<u32>,
}

/// The positions of a tokenised text that are not the text's own (BOS, a chat template's
/// tokens), which figures leave out unless `--include-bos`: `lead` first, `trail` last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Frame {
    pub lead: usize,
    pub trail: usize,
}

impl Frame {
    /// BOS alone, left out unless `include_bos`.
    pub fn bos(include_bos: bool) -> Self {
        Self { lead: usize::from(!include_bos), trail: 0 }
    }

    /// Positions of a `len`-token text that count.
    pub fn counted(self, len: usize) -> std::ops::Range<usize> {
        self.lead.min(len)..len.saturating_sub(self.trail).max(self.lead.min(len))
    }
}

impl Tokenizer {
    /// `path`: a tokenizer.json beside the model, which wins over the bundled GPT-2 one;
    /// `bos`: the token texts start with (the model family's, `ModelConfig::bos_token`).
    pub fn load(path: Option<&Path>, bos: &str) -> Result<Self> {
        let inner = match path {
            Some(p) => tokenizers::Tokenizer::from_file(p).map_err(|e| eyre!("cannot load tokenizer {}: {e}", p.display()))?,
            None => tokenizers::Tokenizer::from_bytes(BUNDLED).map_err(|e| eyre!("bundled tokenizer is corrupt: {e}"))?,
        };
        let which = path.map_or_else(|| "the bundled tokenizer".to_string(), |p| p.display().to_string());
        let bos_id = inner.token_to_id(bos).ok_or_else(|| eyre!("{which} has no {bos} token: is it the model's own tokenizer.json?"))?;
        Ok(Self { inner, bos: bos_id, chat: None })
    }

    /// The same tokenizer reading texts as a user turn in `template`.
    pub fn with_chat(mut self, template: crate::model::chat::ChatTemplate) -> Result<Self> {
        // A marker with no whitespace (templates trim the text) splits the template's own text.
        const MARKER: &str = "\u{e000}saescope\u{e000}";
        let rendered = template.render_user(MARKER)?;
        let (before, after) =
            rendered.split_once(MARKER).ok_or_else(|| eyre!("{}: the chat template does not contain the user's text as given", template.source.display()))?;
        let ids =
            |s: &str| -> Result<Vec<u32>> { Ok(self.inner.encode(s, false).map_err(|e| eyre!("cannot tokenise the chat template: {e}"))?.get_ids().to_vec()) };
        let (prefix, suffix) = (ids(before)?, ids(after)?);
        self.chat = Some(Chat { template, prefix, suffix });
        Ok(self)
    }

    /// Whether texts are read in a chat template.
    pub fn is_chat(&self) -> bool {
        self.chat.is_some()
    }

    /// Which positions of a text's tokens are not its own: BOS, or the chat template's.
    pub fn frame(&self, include_bos: bool) -> Frame {
        match &self.chat {
            Some(_) if include_bos => Frame::default(),
            Some(c) => Frame { lead: c.prefix.len(), trail: c.suffix.len() },
            None => Frame::bos(include_bos),
        }
    }

    /// Token ids of `text` as the model reads it: with BOS first, or under `--chat` as
    /// the user's turn in the model's template (`apply_chat_template` with the generation
    /// prompt; the template writes BOS where the model wants it).
    pub fn encode_text(&self, text: &str) -> Result<Vec<u32>> {
        let Some(chat) = &self.chat else { return self.encode_with_bos(text) };
        let rendered = chat.template.render_user(text)?;
        let ids = self.inner.encode(rendered.as_str(), false).map_err(|e| eyre!("cannot tokenise {text:?}: {e}"))?.get_ids().to_vec();
        let (p, s) = (chat.prefix.len(), chat.suffix.len());
        if ids.len() <= p + s {
            bail!("{text:?} has no tokens of its own in the chat template (an empty text?)");
        }
        if ids[..p] != chat.prefix[..] || ids[ids.len() - s..] != chat.suffix[..] {
            bail!("{text:?}: its first or last characters merge with the chat template's tokens, so its own tokens cannot be told apart from the template's; read it without --chat");
        }
        Ok(ids)
    }

    /// `ids` (of `encode_text`) cut to `n`: the text's end goes, the chat template's closing
    /// tokens stay.
    pub fn truncate(&self, ids: &mut Vec<u32>, n: usize) {
        match &self.chat {
            Some(c) if ids.len() > n && n > c.prefix.len() + c.suffix.len() => {
                ids.truncate(n - c.suffix.len());
                ids.extend_from_slice(&c.suffix);
            }
            _ => ids.truncate(n),
        }
    }

    /// The id of token `token`, where the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The bundled GPT-2 tokenizer.
    pub fn gpt2() -> Result<Self> {
        Self::load(None, GPT2_BOS)
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

    /// The structural special tokens SAELens's evals leave out of every metric
    /// (`get_special_token_ids`: BOS, EOS and PAD; GPT-2's are all `<|endoftext|>`).
    pub fn special_ids(&self) -> Vec<u32> {
        let mut ids = vec![self.bos];
        ids.extend(["<eos>", "<pad>", "</s>", "<|endoftext|>"].iter().filter_map(|t| self.inner.token_to_id(t)));
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The text of each token, for token-level views. A token holding part of a character
    /// shows its bytes rather than U+FFFD: GPT-2's byte-level BPE symbols (`ĠðŁ`) are turned
    /// back into the bytes they stand for (` <F0 9F>`), and a byte-fallback token (Gemma's
    /// `<0xD0>`) shows as itself.
    pub fn token_strings(&self, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .map(|&id| match self.inner.decode(&[id], false) {
                Ok(s) if s.contains('\u{fffd}') => {
                    let symbols = self.inner.id_to_token(id);
                    symbols.as_deref().and_then(byte_level_bytes).map_or_else(|| symbols.unwrap_or(s), |b| show_bytes(&b))
                }
                Ok(s) => s,
                Err(_) => format!("<{id}>"),
            })
            .collect()
    }
}

/// The bytes a byte-level BPE token's symbols stand for (GPT-2's alphabet: the printable
/// bytes as themselves, the other 68 as U+0100 upwards, in byte order); None for a token
/// that is not written in that alphabet.
fn byte_level_bytes(symbols: &str) -> Option<Vec<u8>> {
    let printable = |b: u8| (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
    let others: Vec<u8> = (0..=255u8).filter(|&b| !printable(b)).collect();
    symbols
        .chars()
        .map(|c| match u32::from(c) {
            n @ 0..=255 if printable(n as u8) => Some(n as u8),
            n @ 256..=323 => others.get((n - 256) as usize).copied(),
            _ => None,
        })
        .collect()
}

/// Bytes as text where they are UTF-8, and the rest as hex in angle brackets (`<F0 9F>`).
fn show_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            let hex: Vec<String> = chunk.invalid().iter().map(|b| format!("{b:02X}")).collect();
            out.push_str(&format!("<{}>", hex.join(" ")));
        }
    }
    out
}

/// The bundled tokenizer.json, for writers of model folders (synth).
pub fn bundled_json() -> &'static [u8] {
    BUNDLED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_of_a_character_shows_as_its_bytes() {
        let tok = Tokenizer::gpt2().expect("bundled");
        let ids = tok.encode_with_bos(" 🏃 ok").expect("encode");
        let shown = tok.token_strings(&ids[1..]);
        assert!(shown.iter().all(|t| !t.contains('\u{fffd}') && !t.contains('Ġ') && !t.contains('ð')), "{shown:?}");
        assert!(shown.iter().any(|t| t.contains("<F0")), "the emoji's first bytes as hex: {shown:?}");
        assert_eq!(shown.last().map(String::as_str), Some(" ok"));
        assert_eq!(show_bytes(&[0x20, 0xF0, 0x9F]), " <F0 9F>");
        assert_eq!(byte_level_bytes("Ġð"), Some(vec![0x20, 0xF0]));
    }
}
