"""A tiny Gemma 3 text model and HF transformers' forward on it (tests/gemma3.rs; fixture
tests/fixtures/gemma3_tiny/): a seeded Gemma3ForCausalLM of 7 layers (5 sliding-window,
then global, then sliding again), 2 query heads of 24 and 1 key-value head (head_dim
differs from hidden/heads, as in Gemma 3 270M), a sliding window of 4 so a 12-token
sequence crosses it, RMSNorm weights and biases-free projections randomised so every term
matters. Saved as the hub ships Gemma 3 (config.json, model_type gemma3_text, and
model.safetensors), with `reference.json`: the tokens, every hidden state
(`output_hidden_states`: the embeddings scaled by sqrt(hidden), then each layer's output,
the last after the final norm), the logits, and per layer the values at TransformerLens's
attn.hook_z, hook_attn_out and hook_mlp_out (caught with forward hooks).

    python scripts/reference_gemma3.py tests/fixtures/gemma3_tiny
"""
import os
import sys

from reference import hf_reference


def main() -> None:
    out = sys.argv[1]
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    cfg = Gemma3TextConfig(
        vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=7, num_attention_heads=2,
        num_key_value_heads=1, head_dim=24, max_position_embeddings=128, rms_norm_eps=1e-6, query_pre_attn_scalar=24,
        sliding_window=4, sliding_window_pattern=6, bos_token_id=2, eos_token_id=1, pad_token_id=0,
        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                         "full_attention": {"rope_type": "default", "rope_theta": 1000000.0}},
    )
    model = Gemma3ForCausalLM(cfg).eval()
    for name, p in model.named_parameters():
        if "norm" in name:
            p.copy_(torch.randn_like(p) * 0.3)
        else:
            p.copy_(torch.randn_like(p) * 0.2)
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(out, extra)):
            os.remove(os.path.join(out, extra))
    tokens = [2, 17, 200, 5, 5, 90, 131, 3, 255, 64, 128, 9]
    # TransformerLens's hook names for Gemma's blocks: attn.hook_z (the heads' output before
    # o_proj), hook_attn_out and hook_mlp_out (after the post-attention and post-MLP norms).
    catches = [("self_attn.o_proj", "input", "attn.hook_z"), ("post_attention_layernorm", "output", "hook_attn_out"),
               ("post_feedforward_layernorm", "output", "hook_mlp_out")]
    hf_reference(out, model, tokens, catches, layer_types=cfg.layer_types)
    print("layer types", cfg.layer_types, file=sys.stderr)


if __name__ == "__main__":
    main()
