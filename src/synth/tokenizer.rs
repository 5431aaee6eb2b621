//! A synthetic tokenizer.json: a BPE with byte fallback over text whose spaces are U+2581,
//! as Gemma's is, with the family's special tokens first, the 256 byte tokens, and one token
//! per printable ASCII character (no merges): every text tokenises, ids stay small. The
//! families' real tokenizers differ (Llama's and Qwen's are byte-level BPEs), but nothing a
//! synthetic model is used for depends on how text splits into tokens.

/// tokenizer.json with `specials` first (ids 0, 1...), then the byte and character tokens;
/// its vocabulary size.
pub fn json(specials: &[&str]) -> (serde_json::Value, usize) {
    json_with(specials, &[])
}

/// `json` with `trailing` special tokens after the character tokens (an instruction-tuned
/// model's turn markers), so the other tokens keep the ids they have without them.
pub fn json_with(specials: &[&str], trailing: &[&str]) -> (serde_json::Value, usize) {
    let mut vocab = serde_json::Map::new();
    let mut add = |t: String| {
        let id = vocab.len();
        vocab.insert(t, id.into());
    };
    for s in specials {
        add(s.to_string());
    }
    for b in 0..=255u8 {
        add(format!("<0x{b:02X}>"));
    }
    add("\u{2581}".to_string());
    for c in '!'..='~' {
        add(c.to_string());
    }
    let first_trailing = specials.len() + 256 + 1 + ('!'..='~').count();
    for s in trailing {
        add(s.to_string());
    }
    let n = vocab.len();
    let special = |id: usize, content: &str| serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true});
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": specials.iter().enumerate().chain(trailing.iter().enumerate().map(|(i, s)| (first_trailing + i, s))).map(|(i, s)| special(i, s)).collect::<Vec<_>>(),
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"},
        "pre_tokenizer": null, "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": true, "ignore_merges": false, "vocab": vocab, "merges": []},
    });
    (json, n)
}
