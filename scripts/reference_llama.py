"""Tiny Llama 3 and Qwen 3 models and HF transformers' forward on them (tests/it/llama.rs;
fixtures tests/fixtures/llama_tiny/ and qwen3_tiny/), as reference_gemma3.py makes Gemma's.

- llama: a seeded LlamaForCausalLM of 4 layers, 4 query heads sharing 2 key-value heads,
  RoPE with Llama 3's frequency scaling (rope_type llama3) whose original context (8) the
  12-token sequence passes, and an lm_head of its own (not tied), as Llama 3.1 8B has.
- qwen3: a seeded Qwen3ForCausalLM of 4 layers with per-head q/k RMSNorm, a head size other
  than hidden/heads (as Qwen3-0.6B's 128 against 1024/16) and tied embeddings.

Norm weights and every projection randomised so every term matters. Saved as the hub ships
them (config.json and model.safetensors) with `reference.json`: the tokens, every hidden
state (`output_hidden_states`: the embeddings, each layer's output, the last after the
final norm), the logits, and per layer the values at TransformerLens's attn.hook_z,
hook_attn_out, mlp.hook_in (what transcoders read) and hook_mlp_out (forward hooks).

    python scripts/reference_llama.py llama tests/fixtures/llama_tiny
    python scripts/reference_llama.py qwen3 tests/fixtures/qwen3_tiny
"""
import os
import sys

from reference import hf_reference


def main() -> None:
    which, out = sys.argv[1], sys.argv[2]
    import torch

    torch.manual_seed(0 if which == "llama" else 1)
    torch.set_grad_enabled(False)
    if which == "llama":
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(
            vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2,
            tie_word_embeddings=False,
            rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 4.0, "low_freq_factor": 1.0,
                             "high_freq_factor": 4.0, "original_max_position_embeddings": 8},
        )
        model = LlamaForCausalLM(cfg).eval()
    else:
        from transformers import Qwen3Config, Qwen3ForCausalLM

        cfg = Qwen3Config(
            vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=128, rms_norm_eps=1e-6, bos_token_id=None,
            eos_token_id=2, tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        )
        model = Qwen3ForCausalLM(cfg).eval()
    for name, p in model.named_parameters():
        if "norm" in name:
            p.copy_(1.0 + torch.randn_like(p) * 0.3)
        else:
            p.copy_(torch.randn_like(p) * 0.2)
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(out, extra)):
            os.remove(os.path.join(out, extra))
    tokens = [1, 17, 200, 5, 5, 90, 131, 3, 255, 64, 128, 9]
    catches = [("self_attn.o_proj", "input", "attn.hook_z"), ("self_attn.o_proj", "output", "hook_attn_out"),
               ("post_attention_layernorm", "output", "hook_mlp_in"), ("mlp", "output", "hook_mlp_out")]
    hf_reference(out, model, tokens, catches)
    print(which, "written to", out, file=sys.stderr)


if __name__ == "__main__":
    main()
