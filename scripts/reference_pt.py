"""Fixtures for reading `torch.save` checkpoints (tests/pt.rs, tests/fixtures/pt/):
- `kk_L1.pt` + `kk_L1_cfg.json`: an attention SAE in the layout of the kk release
  (ckkissane/attn-saes-gpt2-small-all-layers: a state dict of W_enc, W_dec, b_enc, b_dec
  beside `*_cfg.json` with act_size, dict_size, act_name), shaped for 3 heads of 16, and
  `reference.json`: SAELens's encode of it (its own connor_rob_hook_z loader, pointed at
  these files) on seeded inputs shaped [tokens, heads, d_head];
- `views.pt`: tensors that are views (a transpose, a slice from an offset, bf16, int64)
  sharing storages, with their values in reference.json;
- `evil.pt`: a checkpoint whose pickle calls os.system; it is written here and never
  loaded (saescope must refuse it).

    python scripts/reference_pt.py tests/fixtures/pt
"""
import collections
import json
import os
import sys


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/saescope-pwned",))


def main() -> None:
    out = sys.argv[1]
    import torch
    import sae_lens.loading.pretrained_sae_loaders as loaders
    from sae_lens import SAE

    torch.manual_seed(0)
    d_in, d_sae = 48, 96
    sd = collections.OrderedDict(
        W_enc=torch.randn(d_in, d_sae) / d_in**0.5,
        W_dec=torch.randn(d_sae, d_in) / d_sae**0.5,
        b_enc=torch.randn(d_sae) * 0.1,
        b_dec=torch.randn(d_in) * 0.1,
    )
    pt = os.path.join(out, "kk_L1.pt")
    torch.save(sd, pt)
    cfg = {"act_size": d_in, "dict_size": d_sae, "act_name": "blocks.1.attn.hook_z", "l1_coeff": 1.0, "seed": 49, "layer": 1, "site": "z"}
    with open(os.path.join(out, "kk_L1_cfg.json"), "w") as f:
        json.dump(cfg, f, indent=1)

    # SAELens's own loader for this release, reading these files instead of the hub's.
    loaders.hf_hub_download = lambda repo_id, filename, **kw: os.path.join(out, filename)
    cfg_dict = loaders.get_connor_rob_hook_z_config_from_hf("local", "kk_L1.pt")
    _, weights, _ = loaders.connor_rob_hook_z_huggingface_loader("local", "kk_L1.pt")
    sae = SAE.from_dict(cfg_dict)
    sae.load_state_dict(weights)
    x = torch.randn(5, 3, 16) * 2.0
    with torch.no_grad():
        acts = sae.encode(x)

    base = torch.arange(60, dtype=torch.float32).reshape(6, 10) / 7.0
    views = collections.OrderedDict(
        transposed=base.t(),
        sliced=base[2:5, 3:8],
        whole=base,
        bf16=torch.tensor([[1.5, -2.25], [3.0, 0.125]], dtype=torch.bfloat16),
        ints=torch.tensor([[1, -2, 3]], dtype=torch.int64),
    )
    torch.save(views, os.path.join(out, "views.pt"))
    torch.save({"W_enc": Evil()}, os.path.join(out, "evil.pt"))

    ref = {
        "x": x.reshape(5, 48).tolist(),
        "encode": acts.tolist(),
        "views": {k: v.float().tolist() for k, v in views.items()},
    }
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f)


if __name__ == "__main__":
    main()
