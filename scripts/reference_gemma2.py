"""A tiny Gemma 2 and HF transformers' forward on it (tests/it/gemma2.rs; fixture
tests/fixtures/gemma2_tiny/), as reference_gemma3.py makes Gemma 3's: a seeded
Gemma2ForCausalLM of 5 layers alternating sliding-window and global attention (window 4,
so the 12-token sequence crosses it), 2 query heads of 24 sharing 1 key-value head,
attention and final-logit soft-caps small enough (4 and 3) to bend the values they cap, and
every weight randomised. Saved as the hub ships Gemma 2 (config.json, model_type gemma2,
model.safetensors) with `reference.json`: the tokens, every hidden state, the logits, and
per layer the values at TransformerLens's attn.hook_z, hook_attn_out, hook_mlp_in and
hook_mlp_out.

    python scripts/reference_gemma2.py tests/fixtures/gemma2_tiny
"""
import os
import sys

from reference import hf_reference


def main() -> None:
    out = sys.argv[1]
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(2)
    torch.set_grad_enabled(False)
    cfg = Gemma2Config(
        vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=5, num_attention_heads=2,
        num_key_value_heads=1, head_dim=24, max_position_embeddings=128, rms_norm_eps=1e-6, query_pre_attn_scalar=24,
        sliding_window=4, attn_logit_softcapping=4.0, final_logit_softcapping=3.0, bos_token_id=2, eos_token_id=1,
        pad_token_id=0, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    )
    model = Gemma2ForCausalLM(cfg).eval()
    for name, p in model.named_parameters():
        p.copy_(torch.randn_like(p) * (0.3 if "norm" in name else 0.2))
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    if os.path.exists(os.path.join(out, "generation_config.json")):
        os.remove(os.path.join(out, "generation_config.json"))
    tokens = [2, 17, 200, 5, 5, 90, 131, 3, 255, 64, 128, 9]
    catches = [("self_attn.o_proj", "input", "attn.hook_z"), ("post_attention_layernorm", "output", "hook_attn_out"),
               ("pre_feedforward_layernorm", "output", "hook_mlp_in"), ("post_feedforward_layernorm", "output", "hook_mlp_out")]
    hf_reference(out, model, tokens, catches, layer_types=cfg.layer_types)
    print("layer types", cfg.layer_types, file=sys.stderr)


if __name__ == "__main__":
    main()
