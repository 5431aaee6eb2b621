"""A tiny GPT-NeoX (Pythia's architecture) and the Python stack's forward on it, for
tests/it/neox.rs (fixtures tests/fixtures/pythia_tiny/, parallel attention and MLP as every
Pythia has, and neox_seq_tiny/, the sequential variant GPT-NeoX also ships).

A seeded GPTNeoXForCausalLM: 2 heads of 16 with RoPE on their first quarter (rotary_pct
0.25, as Pythia), LayerNorm weights and biases and every projection and bias randomised so
every term matters. Saved as transformers saves it (config.json, model.safetensors) with:
- reference.json: HF transformers' forward (tokens, every hidden state, the logits, and per
  layer the values at attn.hook_z, hook_attn_out, hook_mlp_in (the MLP's normalised input,
  what a transcoder reads) and hook_mlp_out, caught with forward hooks);
- tl.json: TransformerLens's HookedTransformer on the same weights under from_pretrained's
  default processing (fold_ln, center_writing_weights, center_unembed, fold_value_biases),
  which Pythia's SAELens SAEs read: per layer hook_resid_pre, hook_resid_post, attn.hook_z,
  hook_attn_out, hook_mlp_out, ln2.hook_normalized, and the logits. Written only if TL agrees
  with HF's values under what that processing is claimed to do (tests/it/neox.rs,
  src/model/layer_norm.rs): the residual and what is written to it minus its mean over
  d_model, z minus the first LayerNorm's bias through W_V plus b_V, logits minus their mean
  over the vocabulary.

    python scripts/reference_neox.py parallel tests/fixtures/pythia_tiny
    python scripts/reference_neox.py sequential tests/fixtures/neox_seq_tiny
"""
import os
import sys

from reference import folder_tl, hf_reference, tl_block_hooks, write_tl_reference


def main() -> None:
    which, out = sys.argv[1], sys.argv[2]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import json

    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(3 if which == "parallel" else 4)
    torch.set_grad_enabled(False)
    n_layers = 4 if which == "parallel" else 2
    cfg = GPTNeoXConfig(
        vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=n_layers, num_attention_heads=2,
        max_position_embeddings=128, layer_norm_eps=1e-5, hidden_act="gelu", use_parallel_residual=which == "parallel",
        rotary_pct=0.25, rotary_emb_base=10000, bos_token_id=0, eos_token_id=0, tie_word_embeddings=False,
    )
    model = GPTNeoXForCausalLM(cfg).eval()
    for name, p in model.named_parameters():
        if "layernorm" in name or "layer_norm" in name:
            p.copy_((1.0 if name.endswith("weight") else 0.0) + torch.randn_like(p) * 0.3)
        else:
            p.copy_(torch.randn_like(p) * 0.2)
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    if os.path.exists(os.path.join(out, "generation_config.json")):
        os.remove(os.path.join(out, "generation_config.json"))
    tokens = [0, 17, 200, 5, 5, 90, 131, 3, 255, 64, 128, 9]
    catches = [("attention.dense", "input", "attn.hook_z"), ("attention.dense", "output", "hook_attn_out"),
               ("post_attention_layernorm", "output", "hook_mlp_in"), ("mlp", "output", "hook_mlp_out")]
    hf_reference(out, model, tokens, catches)
    with open(os.path.join(out, "reference.json")) as f:
        ref = json.load(f)

    tl, tl_cfg = folder_tl(model)
    assert tl_cfg.rotary_dim == 4 and tl_cfg.parallel_attn_mlp == (which == "parallel"), (tl_cfg.rotary_dim, tl_cfg.parallel_attn_mlp)
    logits, cache = tl.run_with_cache(torch.tensor([tokens]))
    got = tl_block_hooks(cache, n_layers)
    for l in range(n_layers):
        got[f"blocks.{l}.ln2.hook_normalized"] = cache[f"blocks.{l}.ln2.hook_normalized"][0]

    def centre(t):
        return t - t.mean(-1, keepdim=True)

    hidden = [torch.tensor(h) for h in ref["hidden_states"]]
    hooks = {k: torch.tensor(v) for k, v in ref["hooks"].items()}
    pairs = [("logits", logits[0], centre(torch.tensor(ref["logits"])))]
    for l, layer in enumerate(model.gpt_neox.layers):
        ln1 = layer.input_layernorm
        value_bias = layer.attention.query_key_value(ln1.bias).view(2, 3, 16)[:, 2].reshape(-1)
        pairs += [(f"blocks.{l}.hook_resid_pre", got[f"blocks.{l}.hook_resid_pre"], centre(hidden[l])),
                  (f"blocks.{l}.attn.hook_z", got[f"blocks.{l}.attn.hook_z"], hooks[f"blocks.{l}.attn.hook_z"] - value_bias),
                  (f"blocks.{l}.hook_attn_out", got[f"blocks.{l}.hook_attn_out"], centre(hooks[f"blocks.{l}.hook_attn_out"])),
                  (f"blocks.{l}.hook_mlp_out", got[f"blocks.{l}.hook_mlp_out"], centre(hooks[f"blocks.{l}.hook_mlp_out"]))]
        if l + 1 < n_layers:
            pairs.append((f"blocks.{l}.hook_resid_post", got[f"blocks.{l}.hook_resid_post"], centre(hidden[l + 1])))
    write_tl_reference(out, f"GPT-NeoX ({which})", tokens, got, logits[0], pairs)
    print(which, "written to", out, file=sys.stderr)


if __name__ == "__main__":
    main()
