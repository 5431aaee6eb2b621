"""SAELens reference for `saescope eval` (tests/fixtures/eval_*.json): SAE quality metrics
computed by SAELens's own eval functions (sae_lens.evals, the ones run_evals calls) on the
tiny synthetic weights that `saescope synth` writes, over every text of the samples fixture.

Sets of SAEs, each with the HookedTransformer processing its release was trained under:
- `--model-dir DIR/model --sae-dir DIR/saes --layers 0,6,8,12`: the standard set through
  reference.load_stack (default processing; layer 12 is blocks.11.hook_resid_post);
- `--mixed DIR`: DIR/spec.json through reference.load_mixed (res-jb's blocks.8.hook_resid_pre,
  OpenAI v5's blocks.8.hook_attn_out, mlp-tm's blocks.8.hook_mlp_out, its factor folded);
- `--kk DIR`: the kk hook_z SAEs at blocks.5/8.attn.hook_z through
  reference_steer_hooks.load_kk, under default processing.

The protocol is run_evals's, with the activation store replaced by fixed token batches so
that nothing depends on a dataset, shuffling or context windows:
- every text is `model.to_tokens(text, prepend_bos=True)`; ignored tokens are
  get_special_token_ids(model.tokenizer) (run_evals's exclude_special_tokens=True: {50256}
  for GPT-2), wherever they stand, a literal "<|endoftext|>" in a text included;
- get_sparsity_and_variance_metrics over ONE batch holding all texts, right-padded with
  50256 (padding is the ignored BOS token, so it is masked out, and causal attention keeps it
  from touching real positions): l0, l1, mse, cossim, l2 norms and the legacy explained
  variance are means over all unmasked tokens of all texts, the legacy formula's batch mean
  is the mean over that whole set, and the feature densities are counts over it;
- get_downstream_reconstruction_metrics over the texts one at a time ([1, T], unpadded, in
  file order), so no padding enters the loss or the KL: CE and KL are means over every
  unmasked position of every text (CE at position i, predicting token i+1, counts when
  token i is not ignored);
- ActivationScaler() without a factor; hook_z SAEs have their forward-pass reshaping
  turned off around the calls, as run_evals does (the metrics flatten the heads).
`mean_norm` (not a SAELens metric) is the mean over the same masked tokens of the L2 norm
of the SAE's input, from the same run_with_cache call the sparsity pass makes.

    python scripts/reference_eval.py --model-dir DIR/model --sae-dir DIR/saes \
        --layers 0,6,8,12 --samples tests/fixtures/reference_samples.toml -o out.json
    python scripts/reference_eval.py --mixed DIR --samples ... -o out.json
    python scripts/reference_eval.py --kk DIR --samples ... -o out.json

Used by scripts/gen-fixtures.
"""
import argparse
import json
import os
import sys
import tomllib

from reference import go_offline, load_mixed, load_stack

BOS = 50256


class Batches:
    """An activation-store stand-in: get_batch_tokens returns the given batches in order."""

    def __init__(self, batches):
        self.batches = list(batches)
        self.i = 0

    def get_batch_tokens(self, n):
        b = self.batches[self.i]
        assert b.shape[0] == n, (b.shape, n)
        self.i += 1
        return b


def evaluate(sae, hook, model, texts):
    import torch
    from sae_lens.evals import get_downstream_reconstruction_metrics, get_sparsity_and_variance_metrics
    from sae_lens.training.activation_scaler import ActivationScaler
    from sae_lens.util import extract_stop_at_layer_from_tlens_hook_name, get_special_token_ids

    assert sae.cfg.metadata.hook_name == hook, (sae.cfg.metadata.hook_name, hook)
    ignore = list(get_special_token_ids(model.tokenizer))
    toks = [model.to_tokens(t, prepend_bos=True) for t in texts]
    assert all(t[0, 0] == BOS for t in toks)
    longest = max(t.shape[1] for t in toks)
    padded = torch.full((len(toks), longest), BOS, dtype=toks[0].dtype)
    for i, t in enumerate(toks):
        padded[i, : t.shape[1]] = t[0]

    def keep(batch):
        return ~torch.isin(batch, torch.tensor(ignore, dtype=batch.dtype))

    # run_evals: hook_z SAEs have their reshaping turned off for the evals, then restored.
    z = "hook_z" in hook
    if z:
        previous = sae.hook_z_reshaping_mode
        sae.turn_off_forward_pass_hook_z_reshaping()
    try:
        sv, fm = get_sparsity_and_variance_metrics(
            sae, model, Batches([padded]), ActivationScaler(), n_batches=1,
            compute_l2_norms=True, compute_sparsity_metrics=True, compute_variance_metrics=True,
            compute_featurewise_density_statistics=True, eval_batch_size_prompts=len(toks),
            model_kwargs={}, ignore_tokens=ignore)
        rc = get_downstream_reconstruction_metrics(
            sae, model, Batches(toks), ActivationScaler(), compute_kl=True, compute_ce_loss=True,
            n_batches=len(toks), eval_batch_size_prompts=1, ignore_tokens=ignore)
    finally:
        if z and previous:
            sae.turn_on_forward_pass_hook_z_reshaping()

    # mean_norm: the sparsity pass's own run_with_cache, its mask.
    with torch.no_grad():
        _, cache = model.run_with_cache(padded, prepend_bos=False, names_filter=[hook],
                                        stop_at_layer=extract_stop_at_layer_from_tlens_hook_name(hook))
    x = cache[hook]
    if x.dim() == 4:  # hook_z: [batch, pos, head, d_head], heads concatenated
        x = x.flatten(-2)
    m = keep(padded)
    mean_norm = float(x[m].double().norm(dim=-1).mean())

    density = fm["feature_density"]
    entry = {"hook": hook}
    for k in ("l0", "l1", "explained_variance", "explained_variance_legacy", "mse", "cossim",
              "l2_norm_in", "l2_norm_out", "l2_ratio", "relative_reconstruction_bias"):
        entry[k] = float(sv[k])
    for k in ("ce_loss_without_sae", "ce_loss_with_sae", "ce_loss_with_ablation", "ce_loss_score",
              "kl_div_with_sae", "kl_div_with_ablation", "kl_div_score"):
        entry[k] = float(rc[k])
    entry.update({
        "mean_norm": mean_norm,
        "tokens": int(m.sum()),
        # get_downstream_reconstruction_metrics: CE per position predicts the next token, its
        # mask the input token's (mask[:, :-1]); KL is per position, masked by the token there.
        "ce_tokens": sum(int(keep(t)[:, :-1].sum()) for t in toks),
        "kl_tokens": sum(int(keep(t).sum()) for t in toks),
        "d_sae": int(sae.cfg.d_sae),
        "dead": sum(1 for d in density if d == 0),
        "dense_1pct": sum(1 for d in density if d > 0.01),
        "dense_10pct": sum(1 for d in density if d > 0.1),
        "feature_density": [float(f"{d:.8g}") for d in density],
    })
    assert len(density) == entry["d_sae"]
    print(f"{hook}: l0 {entry['l0']:.3f} ev {entry['explained_variance']:.4f} "
          f"ce score {entry['ce_loss_score']:.4f} kl score {entry['kl_div_score']:.4f}", file=sys.stderr)
    return entry


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir")
    ap.add_argument("--sae-dir")
    ap.add_argument("--layers", default="0,6,8,12")
    ap.add_argument("--mixed", help="a `synth --sae-release` folder with spec.json (load_mixed)")
    ap.add_argument("--kk", help="a `synth --sae-release gpt2-small-hook-z-kk --layers 5,8` folder")
    ap.add_argument("--samples", required=True)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    root = a.mixed or a.kk
    model_dir = os.path.join(root, "model") if root else a.model_dir
    if not model_dir or (not root and not a.sae_dir):
        ap.error("give --model-dir and --sae-dir, or --mixed, or --kk")
    go_offline(model_dir)
    import torch

    torch.set_grad_enabled(False)
    with open(a.samples, "rb") as f:
        texts = [t for c in tomllib.load(f)["category"] for t in c["texts"]]

    if a.mixed:
        with open(os.path.join(a.mixed, "spec.json")) as f:
            spec = json.load(f)
        models, saes = load_mixed(model_dir, os.path.join(a.mixed, "saes"), spec)
        runs = [(sae, hook, models[center]) for sae, hook, center in saes]
    elif a.kk:
        from reference_steer_hooks import load_kk
        from transformer_lens import HookedTransformer
        from transformers import GPT2LMHeadModel, GPT2TokenizerFast

        hf = GPT2LMHeadModel.from_pretrained(model_dir, local_files_only=True)
        tok = GPT2TokenizerFast.from_pretrained("gpt2")
        model = HookedTransformer.from_pretrained("gpt2", hf_model=hf, tokenizer=tok, device="cpu")
        runs = []
        for sae, hook, _ in load_kk(os.path.join(a.kk, "saes")):
            # load_kk builds the SAE from the loader's raw cfg, skipping the
            # handle_config_defaulting that SAE.from_pretrained applies, so its metadata lacks
            # the hook the eval functions read; set it as from_pretrained would (the rest of
            # the cfg is the same).
            sae.cfg.metadata.hook_name = hook
            sae.cfg.metadata.hook_head_index = None
            runs.append((sae, hook, model))
    else:
        layers = [int(x) for x in a.layers.split(",")]
        model, saes, hook = load_stack(model_dir, a.sae_dir, layers)
        runs = [(saes[l], hook(l), model) for l in layers]

    out = {"samples": a.samples, "saes": [evaluate(sae, hook, model, texts) for sae, hook, model in runs]}
    with open(a.output, "w") as f:
        json.dump(out, f)
    print(f"wrote {a.output}: {len(out['saes'])} SAEs over {len(texts)} texts", file=sys.stderr)


if __name__ == "__main__":
    main()
