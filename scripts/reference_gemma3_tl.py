"""TransformerLens's forward on the tiny Gemma 3 of tests/fixtures/gemma3_tiny/ (written by
scripts/reference_gemma3.py), for tests/gemma3.rs: a second reference beside HF transformers,
in the terms saescope's hook points are named after. TL is not asked to load anything from
the hub: the config is TL's own for google/gemma-3-270m (the dict that
transformer_lens.loading_from_pretrained.convert_hf_model_config builds for that name, from
TL's hardcoded table, without a download) with the sizes of DIR/config.json put in, and the
weights are HF's, converted by TL's convert_gemma_weights and loaded unprocessed (no folding
or centring), so every hook holds the raw value. Writes DIR/tl.json: the tokens, per layer
hook_resid_pre, hook_resid_post, attn.hook_z ([seq, n_heads * d_head], heads in TL's order),
hook_attn_out and hook_mlp_out, and the logits. Fails unless TL agrees with HF (hidden
states, reference.json's hooks, logits) within 1e-4 of the values' scale, so tl.json is
known to describe the same model.

    python scripts/reference_gemma3_tl.py tests/fixtures/gemma3_tiny
"""
import json
import os
import sys

from reference import gemma3_tl, tl_block_hooks, write_tl_reference


def main() -> None:
    out = sys.argv[1]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import Gemma3ForCausalLM

    torch.set_grad_enabled(False)
    hf = Gemma3ForCausalLM.from_pretrained(out, local_files_only=True, dtype=torch.float32, attn_implementation="eager").eval()
    with open(os.path.join(out, "config.json")) as f:
        c = json.load(f)
    with open(os.path.join(out, "reference.json")) as f:
        ref = json.load(f)

    tl, cfg = gemma3_tl(out, hf, c)

    tokens = ref["tokens"]
    ids = torch.tensor([tokens])
    logits, cache = tl.run_with_cache(ids)
    # HF's last hidden state is after the final norm; the last block's output is its input.
    last = {}
    hf.model.norm.register_forward_pre_hook(lambda m, a: last.__setitem__("x", a[0][0]))
    o = hf(ids, output_hidden_states=True)

    n = cfg.n_layers
    got = tl_block_hooks(cache, n)

    # TL against HF: this run of HF, and reference.json (what tests/gemma3.rs holds).
    want = {}
    for l in range(n):
        want[f"blocks.{l}.hook_resid_pre"] = o.hidden_states[l][0]
        want[f"blocks.{l}.hook_resid_post"] = o.hidden_states[l + 1][0] if l + 1 < n else last["x"]
    for k, v in ref["hooks"].items():
        want[k] = torch.tensor(v)
    pairs = [(k, got[k], v) for k, v in want.items()]
    # hook_normalized is before the norm's weight.
    pairs.append(("ln_final", cache["ln_final.hook_normalized"][0] * tl.ln_final.w, o.hidden_states[n][0]))
    pairs.append(("logits", logits[0], o.logits[0]))
    pairs.append(("logits (reference.json)", logits[0], torch.tensor(ref["logits"])))
    pairs += [(f"hidden_states[{i}] (reference.json)", o.hidden_states[i][0], torch.tensor(h)) for i, h in enumerate(ref["hidden_states"])]
    write_tl_reference(out, "Gemma3ForCausalLM", tokens, got, logits[0], pairs)


if __name__ == "__main__":
    main()
