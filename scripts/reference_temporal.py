"""Temporal SAEs (sae/temporal.rs) against SAELens (tests/it/formats.rs, fixtures
tests/fixtures/formats/temporal/): two folders as canrager/temporalSAEs ships them
(`layer_L/temporal/conf.yaml`, `latest_ckpt.safetensors` with `D`, `b`, `E` where untied and
`attn_layers.N.*`), one tied with TopK novel codes and one attention layer, one untied with
ReLU codes and two layers, every weight seeded at random. Each goes through SAELens's own
`temporal_sae_huggingface_loader` (its hub downloads answered by the files here; computed in
f32), then `SAE.from_dict`; `reference.json` holds seeded sequences [2, 7, d_in] and, per
folder, the hook, `encode(x)` (the novel codes), `decode(encode(x))` (the novel codes'
decoding alone) and `forward(x)` (the reconstruction: novel plus predicted codes decoded).

    .venv-ref/bin/python scripts/reference_temporal.py tests/fixtures/formats/temporal
"""
import json
import os
import shutil
import sys


def main() -> None:
    out = sys.argv[1]
    import torch
    import yaml
    from safetensors.torch import save_file
    import sae_lens.loading.pretrained_sae_loaders as loaders
    from sae_lens import SAE

    torch.manual_seed(11)
    torch.set_grad_enabled(False)
    d_in, exp = 32, 2
    d_sae = d_in * exp
    shutil.rmtree(out, ignore_errors=True)
    x = torch.randn(2, 7, d_in) * 6.0 + 1.0
    ref = {"x": x.tolist(), "saes": {}}
    cases = [("tied/layer_3/temporal", True, "topk", 1), ("untied/layer_5/temporal", False, "relu", 2)]
    for folder, tied, diff, n_layers in cases:
        path = os.path.join(out, folder)
        os.makedirs(path)
        conf = {"llm": {"dimin": d_in}, "data": {"dtype": "float32"},
                "sae": {"exp_factor": exp, "n_heads": 2, "n_attn_layers": n_layers, "bottleneck_factor": 4, "sae_diff_type": diff,
                        "kval_topk": 6 if diff == "topk" else None, "tied_weights": tied, "scaling_factor": 0.7}}
        with open(os.path.join(path, "conf.yaml"), "w") as f:
            yaml.safe_dump(conf, f)
        e = d_sae // 4
        state = {"D": torch.randn(d_sae, d_in) * 0.5, "b": torch.randn(d_in) * 0.3}
        if not tied:
            state["E"] = torch.randn(d_in, d_sae) * 0.5
        for i in range(n_layers):
            for name, rows in [("k_ctx", e), ("q_target", e), ("v_ctx", d_sae), ("c_proj", d_sae)]:
                state[f"attn_layers.{i}.{name}.weight"] = torch.randn(rows, d_sae) * (3.0 / d_sae ** 0.5)
                state[f"attn_layers.{i}.{name}.bias"] = torch.randn(rows) * 0.1
        save_file(state, os.path.join(path, "latest_ckpt.safetensors"))
        loaders.hf_hub_download = lambda repo_id, filename, **kw: os.path.join(out, filename)
        cfg, sd, _ = loaders.temporal_sae_huggingface_loader("canrager/temporalSAEs", folder)
        sae = SAE.from_dict(loaders.handle_config_defaulting(cfg))
        sae.load_state_dict(sd)
        z = sae.encode(x)
        ref["saes"][folder] = {"hook": cfg["hook_name"], "encode": z.tolist(), "decode": sae.decode(z).tolist(), "forward": sae(x).tolist(),
                               "k": conf["sae"]["kval_topk"]}
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f)


if __name__ == "__main__":
    main()
