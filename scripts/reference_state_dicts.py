"""SAEs shipped as one torch state dict, their config made from their names (sae/state_dict.rs),
against SAELens (tests/it/formats.rs, fixtures tests/fixtures/formats/state_dict/):

- Qwen Scope (`qwen_scope`): `layer3.sae.pt` in a folder named as its repo,
  `SAE-Res-Qwen3-1.7B-Base-W32K-L0_8` (k = 8), W_enc [d_sae, d_in], W_dec [d_in, d_sae];
- Goodfire (`goodfire`): `Llama-3.1-8B-Instruct-SAE-l19.pth`, an nn.Linear pair;
- qresearch's for DeepSeek R1's distilled Llama 8B (`deepseek_r1`):
  `DeepSeek-R1-Distill-Llama-8B-SAE-l19.pt`, an nn.Linear pair named encoder/decoder;
- and, with a config of its own but also made over by its loader, Llama Scope's R1 distill
  folder (`llama_scope_r1_distill`): `L3R/config.json` and `L3R/sae_weights.safetensors`
  with a log threshold per feature, its inputs scaled by the registry's norm_scaling_factor
  as `SAE.from_pretrained` folds it (`reference.json`'s `norm_scaling_factor`).

Each goes through SAELens's own loader (`qwen_scope_sae_huggingface_loader`,
`get_goodfire_huggingface_loader`), its hub download answered by the file here and the sizes
its table fixes overridden to these small ones, then `SAE.from_dict` as
`SAE.from_pretrained` builds it; `reference.json` holds seeded inputs, the config's hook,
and `encode(x)` and `decode(encode(x))`.

    .venv-ref/bin/python scripts/reference_state_dicts.py tests/fixtures/formats/state_dict
"""
import json
import os
import shutil
import sys


def main() -> None:
    out = sys.argv[1]
    import torch
    import sae_lens.loading.pretrained_sae_loaders as loaders
    from sae_lens import SAE

    torch.manual_seed(7)
    torch.set_grad_enabled(False)
    d_in, d_sae = 48, 96
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    x = torch.randn(6, d_in) * 3.0 + 0.5
    ref = {"x": x.tolist(), "saes": {}}
    sizes = {"d_in": d_in, "d_sae": d_sae}

    qwen_repo = "SAE-Res-Qwen3-1.7B-Base-W32K-L0_8"
    os.makedirs(os.path.join(out, qwen_repo))
    torch.save({"W_enc": torch.randn(d_sae, d_in) * 0.3, "W_dec": torch.randn(d_in, d_sae) * 0.3,
                "b_enc": torch.randn(d_sae) * 0.3, "b_dec": torch.randn(d_in) * 0.3},
               os.path.join(out, qwen_repo, "layer3.sae.pt"))
    goodfire = "Llama-3.1-8B-Instruct-SAE-l19.pth"
    torch.save({"encoder_linear.weight": torch.randn(d_sae, d_in) * 0.3, "encoder_linear.bias": torch.randn(d_sae) * 0.3,
                "decoder_linear.weight": torch.randn(d_in, d_sae) * 0.3, "decoder_linear.bias": torch.randn(d_in) * 0.3},
               os.path.join(out, goodfire))

    deepseek = "DeepSeek-R1-Distill-Llama-8B-SAE-l19.pt"
    torch.save({"encoder.weight": torch.randn(d_sae, d_in) * 0.3, "encoder.bias": torch.randn(d_sae) * 0.3,
                "decoder.weight": torch.randn(d_in, d_sae) * 0.3, "decoder.bias": torch.randn(d_in) * 0.3},
               os.path.join(out, deepseek))
    r1 = "L3R"
    os.makedirs(os.path.join(out, r1))
    with open(os.path.join(out, r1, "config.json"), "w") as f:
        json.dump({"d_model": d_in, "expansion_factor": d_sae // d_in, "hook_point_in": "blocks.3.hook_resid_post",
                   "hook_point_out": "blocks.3.hook_resid_post", "act_fn": "jumprelu"}, f, indent=1)
    from safetensors.torch import save_file
    save_file({"encoder.weight": torch.randn(d_sae, d_in) * 0.3, "encoder.bias": torch.randn(d_sae) * 0.3,
               "decoder.weight": torch.randn(d_in, d_sae) * 0.3, "decoder.bias": torch.randn(d_in) * 0.3,
               "log_jumprelu_threshold": torch.randn(d_sae) * 0.5 - 1.0},
              os.path.join(out, r1, "sae_weights.safetensors"))
    ref["norm_scaling_factor"] = 1.7

    cases = [
        (f"{qwen_repo}/layer3.sae.pt", loaders.qwen_scope_sae_huggingface_loader, f"Qwen/{qwen_repo}", "layer3.sae.pt", os.path.join(out, qwen_repo)),
        (goodfire, loaders.get_goodfire_huggingface_loader, "Goodfire/Llama-3.1-8B-Instruct-SAE-l19", goodfire, out),
        (deepseek, loaders.deepseek_r1_sae_huggingface_loader, "qresearch/DeepSeek-R1-Distill-Llama-8B-SAE-l19", deepseek, out),
        (r1, loaders.llama_scope_r1_distill_sae_huggingface_loader, "fnlp/Llama-Scope-R1-Distill", r1, out),
    ]
    for name, loader, repo, filename, root in cases:
        loaders.hf_hub_download = lambda repo_id, filename, root=root, subfolder=None, **kw: os.path.join(root, *([subfolder] if subfolder else []), filename)
        # Sizes and f32 over what the loaders fix (qresearch's 4096 x 16; their bf16).
        cfg, state, _ = loader(repo, filename, cfg_overrides={**sizes, "dtype": "float32"})
        hook = cfg["hook_name"]
        sae = SAE.from_dict(loaders.handle_config_defaulting(cfg))
        sae.load_state_dict(state)
        if cfg.get("normalize_activations") == "expected_average_only_in":
            sae.fold_activation_norm_scaling_factor(ref["norm_scaling_factor"])
        z = sae.encode(x)
        ref["saes"][name] = {"hook": hook, "architecture": cfg["architecture"], "encode": z.tolist(), "decode": sae.decode(z).tolist()}
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f)


if __name__ == "__main__":
    main()
