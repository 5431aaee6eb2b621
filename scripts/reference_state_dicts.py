"""SAEs shipped as one torch state dict, their config made from their names (sae/state_dict.rs),
against SAELens (tests/it/formats.rs, fixtures tests/fixtures/formats/state_dict/):

- Qwen Scope (`qwen_scope`): `layer3.sae.pt` in a folder named as its repo,
  `SAE-Res-Qwen3-1.7B-Base-W32K-L0_8` (k = 8), W_enc [d_sae, d_in], W_dec [d_in, d_sae];
- Goodfire (`goodfire`): `Llama-3.1-8B-Instruct-SAE-l19.pth`, an nn.Linear pair.

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

    cases = [
        (f"{qwen_repo}/layer3.sae.pt", loaders.qwen_scope_sae_huggingface_loader, f"Qwen/{qwen_repo}", "layer3.sae.pt", os.path.join(out, qwen_repo)),
        (goodfire, loaders.get_goodfire_huggingface_loader, "Goodfire/Llama-3.1-8B-Instruct-SAE-l19", goodfire, out),
    ]
    for name, loader, repo, filename, root in cases:
        loaders.hf_hub_download = lambda repo_id, filename, root=root, **kw: os.path.join(root, filename)
        cfg, state, _ = loader(repo, filename, cfg_overrides=sizes)
        hook = cfg["hook_name"]
        sae = SAE.from_dict(loaders.handle_config_defaulting(cfg))
        sae.load_state_dict(state)
        z = sae.encode(x)
        ref["saes"][name] = {"hook": hook, "architecture": cfg["architecture"], "encode": z.tolist(), "decode": sae.decode(z).tolist()}
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f)


if __name__ == "__main__":
    main()
