"""PCA SAEs for the non-degenerate eval fixture (tests/fixtures/eval_pca/, eval_pca.json):
SAEs in SAELens's folder format, built from the tiny model's own activations as a real SAE
is, so their explained variance is clearly positive (the synthetic SAEs' is -5 to -1685).

At each layer L, over the resid_pre activations of HookedTransformer under default
processing (reference.load_stack's model) at every counted token of the samples fixture
(each text `to_tokens(text, prepend_bos=True)`, unpadded; the special tokens SAELens's evals
ignore, BOS and a literal "<|endoftext|>", left out):
- b_dec = their mean;
- W_dec's rows = the top-k principal directions u_1..u_k (unit norm, sign fixed so the
  largest component is positive), then their negatives -u_1..-u_k: d_sae = 2k, so a ReLU
  encode covers both signs of each projection and the SAE reconstructs b_dec plus the
  projection of x - b_dec onto the top-k subspace;
- W_enc = W_dec^T, b_enc = 0, apply_b_dec_to_input true, architecture standard.
cfg.json is the one `saescope synth` writes for that hook, d_sae changed.

    python scripts/make_pca_saes.py --model-dir DIR/model --samples tests/fixtures/reference_samples.toml \
        --layers 7,11 --k 16 --out tests/fixtures/eval_pca

Used by scripts/gen-fixtures, before reference_eval.py evaluates the SAEs it writes.
"""
import argparse
import json
import os
import sys
import tomllib

from reference import go_offline, load_stack


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--layers", default="7,11")
    ap.add_argument("--k", type=int, default=16, help="principal directions per SAE (d_sae = 2k)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    go_offline(a.model_dir)
    import torch
    from safetensors.torch import save_file
    from sae_lens.util import get_special_token_ids

    torch.set_grad_enabled(False)
    with open(a.samples, "rb") as f:
        texts = [t for c in tomllib.load(f)["category"] for t in c["texts"]]
    layers = [int(x) for x in a.layers.split(",")]
    model, _, _ = load_stack(a.model_dir, None, [])
    n_layers = model.cfg.n_layers
    assert all(l < n_layers for l in layers), "resid_pre layers only"
    hooks = [f"blocks.{l}.hook_resid_pre" for l in layers]
    ignore = torch.tensor(list(get_special_token_ids(model.tokenizer)))

    acts = {h: [] for h in hooks}
    for text in texts:
        toks = model.to_tokens(text, prepend_bos=True)
        keep = ~torch.isin(toks[0], ignore.to(toks.dtype))
        _, cache = model.run_with_cache(toks, names_filter=hooks, stop_at_layer=max(layers) + 1)
        for h in hooks:
            acts[h].append(cache[h][0][keep].double())

    d_model = model.cfg.d_model
    k = a.k
    assert 0 < k <= d_model
    for l, h in zip(layers, hooks):
        x = torch.cat(acts[h])
        mean = x.mean(0)
        xc = x - mean
        evals, evecs = torch.linalg.eigh(xc.T @ xc / x.shape[0])  # ascending
        u = evecs[:, torch.argsort(evals, descending=True)[:k]].T  # [k, d_model]
        # Deterministic signs: each direction's largest-magnitude component positive.
        sign = torch.sign(u.gather(1, u.abs().argmax(1, keepdim=True)))
        u = u * sign
        w_dec = torch.cat([u, -u]).float().contiguous()  # [2k, d_model]
        tensors = {
            "W_dec": w_dec,
            "W_enc": w_dec.T.contiguous(),
            "b_dec": mean.float().contiguous(),
            "b_enc": torch.zeros(2 * k, dtype=torch.float32),
        }
        folder = os.path.join(a.out, h)
        os.makedirs(folder, exist_ok=True)
        save_file(tensors, os.path.join(folder, "sae_weights.safetensors"))
        cfg = {
            "apply_b_dec_to_input": True,
            "architecture": "standard",
            "d_in": d_model,
            "d_sae": 2 * k,
            "device": "cpu",
            "dtype": "float32",
            "hook_layer": l,
            "hook_name": h,
            "metadata": {
                "context_size": 128,
                "dataset_path": "synthetic",
                "hook_head_index": None,
                "hook_name": h,
                "model_name": "gpt2-small",
                "neuronpedia_id": None,
                "prepend_bos": True,
            },
            "model_name": "gpt2-small",
            "normalize_activations": "none",
        }
        with open(os.path.join(folder, "cfg.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        # The in-sample explained variance of the projection (float64), for the log.
        rec = (xc @ u.T) @ u
        ev = 1 - float(((xc - rec) ** 2).sum() / (xc**2).sum())
        print(f"{h}: {x.shape[0]} tokens, d_sae {2 * k}, top-{k} variance share {ev:.4f}", file=sys.stderr)


if __name__ == "__main__":
    main()
