"""TransformerLens's forward on the tiny Llama 3 and Qwen 3 of tests/fixtures/llama_tiny/ and
qwen3_tiny/ (scripts/reference_llama.py) and the tiny Gemma 2 of gemma2_tiny/
(scripts/reference_gemma2.py), for tests/it/llama.rs and tests/it/gemma2.rs: a second
reference beside HF transformers, in the terms saescope's hook points are named after. TL
reads Llama's and Qwen's config from the folder (a copy whose name lacks "llama", so TL's
name-based branch, which expects a hub model, is not taken) and knows Gemma 2 by name only
(its google/gemma-2-2b table with this model's sizes); the weights are HF's, converted by TL's
own convert_llama_weights / convert_qwen3_weights / convert_gemma_weights and loaded
unprocessed (for these RMSNorm models without biases TL's default processing leaves every
hook below as it is). Writes DIR/tl.json: the tokens, per layer hook_resid_pre,
hook_resid_post, attn.hook_z ([seq, n_heads * d_head]), hook_attn_out and hook_mlp_out (and
Gemma 2's ln2.hook_normalized), and the logits. Fails unless TL agrees with HF
(reference.json's hidden states, hooks and logits) within 1e-4 of the values' scale.

    python scripts/reference_llama_tl.py tests/fixtures/llama_tiny
    python scripts/reference_llama_tl.py tests/fixtures/qwen3_tiny
    python scripts/reference_llama_tl.py tests/fixtures/gemma2_tiny
"""
import json
import os
import sys

from reference import folder_tl, gemma2_tl_state, tl_block_hooks, tl_from_state, write_tl_reference


def main() -> None:
    out = sys.argv[1]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_grad_enabled(False)
    hf = AutoModelForCausalLM.from_pretrained(out, local_files_only=True, dtype=torch.float32, attn_implementation="eager").eval()
    with open(os.path.join(out, "reference.json")) as f:
        ref = json.load(f)
    with open(os.path.join(out, "config.json")) as f:
        c = json.load(f)
    if c["model_type"] == "gemma2":
        cfg, state = gemma2_tl_state(hf)
        tl = tl_from_state(cfg, state)
    else:
        tl, cfg = folder_tl(hf, processed=False)
    arch = cfg.original_architecture

    tokens = ref["tokens"]
    logits, cache = tl.run_with_cache(torch.tensor([tokens]))
    n = cfg.n_layers
    got = tl_block_hooks(cache, n)
    if arch == "Gemma2ForCausalLM":
        # What Gemma Scope's transcoders read (SAELens's name): before the norm's weight.
        for l in range(n):
            got[f"blocks.{l}.ln2.hook_normalized"] = cache[f"blocks.{l}.ln2.hook_normalized"][0]
    want = {f"blocks.{l}.hook_resid_pre": torch.tensor(ref["hidden_states"][l]) for l in range(n)}
    want.update({k: torch.tensor(v) for k, v in ref["hooks"].items() if k in got})
    pairs = [(k, got[k], v) for k, v in want.items()] + [("logits", logits[0], torch.tensor(ref["logits"]))]
    write_tl_reference(out, arch, tokens, got, logits[0], pairs)

if __name__ == "__main__":
    main()
