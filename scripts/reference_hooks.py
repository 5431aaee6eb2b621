"""TransformerLens reference for every hook point an SAE can read (tests/hooks.rs, fixture
tests/fixtures/hooks_tiny.json): `run_with_cache` on the tiny synthetic GPT-2 and on a
second, smaller GPT-2 of another shape (3 layers, 3 heads of 16, vocabulary 512) that this
script writes into tests/fixtures/gpt2_other/, under TransformerLens's default processing
(`from_pretrained`) and with none (`from_pretrained_no_processing`). `attn.hook_z` is
flattened over heads as SAELens reshapes it for hook_z SAEs.

    python scripts/reference_hooks.py --model-dir DIR/model --other-dir tests/fixtures/gpt2_other \
        -o tests/fixtures/hooks_tiny.json
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

from reference import go_offline

SITES = ["hook_resid_pre", "attn.hook_z", "hook_attn_out", "hook_resid_mid", "ln2.hook_normalized", "hook_mlp_out", "hook_resid_post"]
TEXT = "def mean(xs):\n    return sum(xs) / len(xs)"
# The second model's tokens: ids of its 512-token vocabulary, BOS (its last id) first.
OTHER_TOKENS = [511, 17, 300, 4, 4, 90, 211, 3, 499, 64, 128]


def write_other(folder: str, tokenizer_json: str) -> None:
    """A randomly initialised GPT-2 of another shape, seeded, saved as the hub saves one."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=3, n_embd=48, n_head=3, vocab_size=512, n_positions=64, bos_token_id=511, eos_token_id=511)
    model = GPT2LMHeadModel(cfg)
    # Larger biases and LayerNorm parameters than the initialisation's, so every term of
    # every hook (b_V, ln_1.b, the LN affine maps) matters to the comparison.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias") or ".ln_" in name:
                p.add_(torch.randn_like(p) * 0.1)
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    # The hub's gpt2 config has n_ctx beside n_positions; TransformerLens reads n_ctx.
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        c = json.load(f)
    c["n_ctx"] = c["n_positions"]
    with open(path, "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(folder, extra)):
            os.remove(os.path.join(folder, extra))
    shutil.copy(tokenizer_json, os.path.join(folder, "tokenizer.json"))


def run(model_dir: str, tokens, layers):
    """{processing: {hook name: [[float]]}} for one sequence."""
    import torch
    from transformer_lens import HookedTransformer
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel.from_pretrained(model_dir, local_files_only=True)
    toks = torch.tensor([tokens])
    out = {}
    for name, load in (("default", HookedTransformer.from_pretrained), ("none", HookedTransformer.from_pretrained_no_processing)):
        model = load("gpt2", hf_model=hf, device="cpu")
        names = [f"blocks.{l}.{s}" for l in layers for s in SITES]
        _, cache = model.run_with_cache(toks, names_filter=names)
        out[name] = {}
        for n in names:
            v = cache[n][0]
            if n.endswith("hook_z"):
                v = v.flatten(-2, -1)
            out[name][n] = [[float(f"{x:.8g}") for x in row] for row in v.tolist()]
    return out


def part(key: str, folder: str, out: str) -> None:
    """One model's hooks, in a process of its own: the offline hub cache that stands in
    for "gpt2" is read when transformers is imported."""
    go_offline(folder)
    import torch

    torch.set_grad_enabled(False)
    if key == "tiny":
        from tokenizers import Tokenizer

        tokens, layers = [50256] + Tokenizer.from_file(os.path.join(folder, "tokenizer.json")).encode(TEXT).ids, [0, 6, 11]
    else:
        tokens, layers = OTHER_TOKENS, [0, 1, 2]
    with open(out, "w") as f:
        json.dump({"tokens": tokens, "layers": layers, **run(folder, tokens, layers)}, f)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir")
    ap.add_argument("--other-dir")
    ap.add_argument("-o", "--output")
    ap.add_argument("--part", nargs=3, metavar=("KEY", "FOLDER", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.part:
        part(*a.part)
        return
    write_other(a.other_dir, os.path.join(a.model_dir, "tokenizer.json"))
    result = {"sites": SITES}
    tmp = tempfile.mkdtemp(prefix="saescope-hooks-")
    try:
        for key, folder in (("tiny", a.model_dir), ("other", a.other_dir)):
            out = os.path.join(tmp, key + ".json")
            subprocess.run([sys.executable, os.path.abspath(__file__), "--part", key, folder, out], check=True)
            with open(out) as f:
                result[key] = json.load(f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        os.remove(os.path.join(a.other_dir, "tokenizer.json"))
    with open(a.output, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
