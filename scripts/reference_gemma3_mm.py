"""A tiny Gemma 3 in the layout of the 4B, 12B and 27B checkpoints and HF transformers'
forward on its text (tests/it/gemma3.rs; fixture tests/fixtures/gemma3_mm_tiny/): a seeded
Gemma3ForConditionalGeneration, its language model under `model.language_model.` beside a
one-layer SigLIP vision tower and projector (which a text run never reads), config.json
`model_type: gemma3` with the language model's settings in `text_config`, written sparse as
the hub's are (keys at Gemma3TextConfig's defaults left out), and the global layers' RoPE
scaled linearly by 8 (`rope_scaling`, as the 4B and larger have). 7 layers, a sliding window
of 4 so the 12-token sequence crosses it. `reference.json` as scripts/reference_gemma3.py
writes it.

    python scripts/reference_gemma3_mm.py tests/fixtures/gemma3_mm_tiny
"""
import json
import os
import sys

from reference import hf_reference


def main() -> None:
    out = sys.argv[1]
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    torch.manual_seed(5)
    torch.set_grad_enabled(False)
    text = {"model_type": "gemma3_text", "vocab_size": 300, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 7,
            "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 24, "query_pre_attn_scalar": 24, "sliding_window": 4,
            "max_position_embeddings": 128, "rope_scaling": {"rope_type": "linear", "factor": 8.0}}
    vision = {"model_type": "siglip_vision_model", "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
              "num_attention_heads": 2, "image_size": 28, "patch_size": 14}
    cfg = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4, boi_token_index=296, eoi_token_index=297,
                       image_token_index=298)
    model = Gemma3ForConditionalGeneration(cfg).eval()
    for name, p in model.named_parameters():
        p.copy_(torch.randn_like(p) * (0.3 if "norm" in name else 0.2))
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(out, extra)):
            os.remove(os.path.join(out, extra))
    # The hub's sparse text_config: what differs from Gemma3TextConfig's defaults, and the
    # old rope_scaling key (transformers reads both).
    with open(os.path.join(out, "config.json")) as f:
        saved = json.load(f)
    saved["text_config"] = text
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(saved, f, indent=2)
    again = Gemma3ForConditionalGeneration.from_pretrained(out, dtype=torch.float32).eval()
    assert again.config.text_config.rope_parameters["full_attention"]["rope_type"] == "linear", again.config.text_config.rope_parameters
    tokens = [2, 17, 200, 5, 5, 90, 131, 3, 255, 64, 128, 9]
    catches = [("self_attn.o_proj", "input", "attn.hook_z"), ("post_attention_layernorm", "output", "hook_attn_out"),
               ("post_feedforward_layernorm", "output", "hook_mlp_out")]
    hf_reference(out, again, tokens, catches, layer_types=again.config.text_config.layer_types)
    print("written", out, file=sys.stderr)


if __name__ == "__main__":
    main()
