"""TransformerLens + SAELens reference for steering and attribution at hooks other than
the residual stream (tests/steer_hooks.rs, fixture tests/fixtures/steer_hooks_tiny.json),
on the tiny synthetic model with SAEs in their releases' layouts (`saescope synth
--sae-release`):
- `--mixed DIR`: res-jb's blocks.8.hook_resid_pre (centred), OpenAI v5's
  blocks.8.hook_attn_out (uncentred, TopK, layer_norm input) and mlp-tm's
  blocks.8.hook_mlp_out (centred, registry norm_scaling_factor folded);
- `--kk DIR`: the kk attention SAEs on blocks.5/8.attn.hook_z (.pt state dicts, through
  SAELens's own connor_rob_hook_z loader), under TL's default processing.

Each SAE's hook is computed by a HookedTransformer with the processing its release was
trained under. Steering is a hook on the SAE's own hook point: `add` (x + s * W_dec[F]) and
`clamp` (x + (s - a_F(x)) * W_dec[F], a_F from SAELens's encode of the value as the hook
holds it, earlier edits at the same hook included); hook_z's [pos, head, d_head] is edited
as SAELens reshapes it, heads concatenated. Greedy generation, each step's top-5
log-probabilities. Attribution: the top next token's logit minus the mean logit, one
backward pass, per feature sum_p a_F(x_p) * (W_dec[F] . grad_p), the top 8 by
|attribution| with the change when the feature is ablated at every position.

Features are the prompt's strongest per SAE (largest summed activation), strengths a
multiple of its largest activation, so every case moves the continuation.

    python scripts/reference_steer_hooks.py --mixed DIR --kk DIR -o out.json
"""
import argparse
import json
import os

from reference import go_offline, load_mixed

PROMPT = "def factorial(n):\n    return 1 if n == 0 else"
TOP = 8
KK = [
    (5, "gpt2-small_L5_Hcat_z_lr1.20e-03_l11.00e+00_ds49152_bs4096_dc1.00e-06_rsanthropic_rie25000_nr4_v9.pt"),
    (8, "gpt2-small_L8_Hcat_z_lr1.20e-03_l11.30e+00_ds24576_bs4096_dc1.00e-05_rsanthropic_rie25000_nr4_v6.pt"),
]


def load_kk(sae_dir):
    """The kk SAEs as SAE.from_pretrained loads them, each with its hook and processing."""
    import sae_lens.loading.pretrained_sae_loaders as loaders
    from sae_lens import SAE

    loaders.hf_hub_download = lambda repo_id, filename, **kw: os.path.join(sae_dir, filename)
    saes = []
    for layer, path in KK:
        cfg = loaders.get_connor_rob_hook_z_config_from_hf("local", path)
        _, weights, _ = loaders.connor_rob_hook_z_huggingface_loader("local", path)
        sae = SAE.from_dict(cfg)
        sae.load_state_dict(weights)
        saes.append((sae, f"blocks.{layer}.attn.hook_z", True))
    return saes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mixed", required=True)
    ap.add_argument("--kk", required=True)
    ap.add_argument("--tokens", type=int, default=12)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    go_offline(os.path.join(a.mixed, "model"))
    import torch
    from transformer_lens import HookedTransformer
    from transformers import GPT2LMHeadModel, GPT2TokenizerFast

    tm = json.load(open("assets/saelens-registry.json"))["releases"]["gpt2-small-mlp-tm"]
    factor = next(e["norm_scaling_factor"] for e in tm["saes"] if e["id"] == "blocks.8.hook_mlp_out")
    spec = [
        {"folder": "jbloom/GPT2-Small-SAEs-Reformatted/blocks.8.hook_resid_pre", "hook": "blocks.8.hook_resid_pre", "center_writing_weights": True},
        {"folder": "jbloom/GPT2-Small-OAI-v5-32k-attn-out-SAEs/v5_32k_layer_8", "hook": "blocks.8.hook_attn_out", "center_writing_weights": False},
        {"folder": "tommmcgrath/gpt2-small-mlp-out-saes/sae_group_gpt2_blocks.8.hook_mlp_out_24576:v1", "hook": "blocks.8.hook_mlp_out",
         "center_writing_weights": True, "norm_scaling_factor": factor},
    ]
    models, mixed = load_mixed(os.path.join(a.mixed, "model"), os.path.join(a.mixed, "saes"), spec)
    kk = load_kk(os.path.join(a.kk, "saes"))
    tok = GPT2TokenizerFast.from_pretrained("gpt2")
    for center in (True, False):
        if center not in models:
            hf = GPT2LMHeadModel.from_pretrained(os.path.join(a.mixed, "model"), local_files_only=True)
            models[center] = HookedTransformer.from_pretrained("gpt2", hf_model=hf, tokenizer=tok, device="cpu", center_writing_weights=center)
    prompt = models[True].to_tokens(PROMPT, prepend_bos=True)

    def flat(x):
        return x.flatten(-2) if x.dim() == 4 else x

    def encode(sae, v, hook):
        """SAELens's encode of a value heads-concatenated: hook_z SAEs take [.., head, d_head]."""
        if hook.endswith("hook_z"):
            n_heads = models[True].cfg.n_heads
            v = v.reshape(*v.shape[:-1], n_heads, v.shape[-1] // n_heads)
        return sae.encode(v)

    def cache_of(sae, hook, center):
        with torch.no_grad():
            _, cache = models[center].run_with_cache(prompt, names_filter=[hook])
        return flat(cache[hook])

    def strongest(sae, hook, center):
        with torch.no_grad():
            acts = encode(sae, cache_of(sae, hook, center), hook)[0]
        f = int(acts.sum(0).argmax())
        return f, float(acts[:, f].max())

    def edit_hook(steps):
        """A TL hook applying [(mode, sae, feature, strength)] in order to the value it holds."""

        def f(x, hook):
            shape = x.shape
            v = flat(x)
            for mode, sae, feature, s in steps:
                d = sae.W_dec[feature]
                if mode == "add":
                    v = v + s * d
                else:
                    act = encode(sae, v, hook.name)[..., feature]
                    v = v + (s - act)[..., None] * d
            return v.reshape(shape)

        return f

    def greedy(center, fwd_hooks):
        model = models[center]
        toks, steps = prompt.clone(), []
        with torch.no_grad():
            for _ in range(a.tokens):
                logits = model.run_with_hooks(toks, fwd_hooks=fwd_hooks)
                lp = logits[0, -1].double().log_softmax(-1)
                top = lp.topk(5)
                steps.append([[int(i), float(v)] for v, i in zip(top.values, top.indices)])
                toks = torch.cat([toks, torch.tensor([[int(lp.argmax())]])], dim=1)
        return [int(t) for t in toks[0, prompt.shape[1]:]], steps

    def case(name, center, features):
        """features: [(mode, (sae, hook, center), feature, strength)], one processing."""
        by_hook = {}
        for mode, (sae, hook, _), feature, s in features:
            by_hook.setdefault(hook, []).append((mode, sae, feature, s))
        ids, steps = greedy(center, [(h, edit_hook(st)) for h, st in by_hook.items()])
        feats = [{"mode": m, "hook": h, "feature": f, "strength": s} for m, (_, h, _), f, s in features]
        return {"name": name, "features": feats, "ids": ids, "steps": steps}

    def attribution(saes):
        out = {"saes": []}
        logits_of = {}
        for sae, hook, center in saes:
            model = models[center]
            kept = {}

            def keep(x, hook):
                x.retain_grad()
                kept[hook.name] = x
                return x

            logits = model.run_with_hooks(prompt, fwd_hooks=[(hook, keep)])
            last = logits[0, -1]
            t = int(last.detach().argmax())
            metric = last[t] - last.mean()
            prob = float(last.detach().softmax(-1)[t])
            metric.backward()
            base = float(metric)
            out.update({"target_id": t, "logit": base, "prob": prob})
            with torch.no_grad():
                x = kept[hook]
                acts = encode(sae, flat(x.detach()), hook)[0]
                g = flat(x.grad)[0]
                attr = (acts * (g @ sae.W_dec.T)).sum(0).double()
                order = sorted(range(attr.shape[0]), key=lambda f: (-abs(float(attr[f])), f))[:TOP]
                feats = []
                for f in order:
                    def ablate(x, hook, f=f, sae=sae):
                        v = flat(x)
                        return (v - encode(sae, v, hook.name)[..., f : f + 1] * sae.W_dec[f]).reshape(x.shape)

                    lg = model.run_with_hooks(prompt, fwd_hooks=[(hook, ablate)])[0, -1]
                    feats.append({"feature": f, "attribution": float(attr[f]),
                                  "ablation_logit": float(lg[t] - lg.mean()) - base, "ablation_prob": float(lg.softmax(-1)[t]) - prob})
            out["saes"].append({"hook": hook, "features": feats})
        return out

    res, att, mlp = mixed
    z5, z8 = kk
    fr, ar = strongest(*res)
    fa, aa = strongest(*att)
    fm, am = strongest(*mlp)
    f5, a5 = strongest(*z5)
    f8, a8 = strongest(*z8)
    # A second firing feature at mlp_out, for two clamps at one hook.
    with torch.no_grad():
        acts = encode(mlp[0], cache_of(*mlp), mlp[1])[0].sum(0)
    fm2 = int(acts.topk(2).indices[1])
    out = {"prompt": PROMPT, "prompt_ids": [int(t) for t in prompt[0]], "tokens": a.tokens}
    out["default"] = {"ids": greedy(True, [])[0]}
    out["mixed"] = {
        "steered": [
            case("add attn_out", False, [("add", att, fa, 2 * aa)]),
            case("clamp attn_out", False, [("clamp", att, fa, 2 * aa)]),
            case("clamp mlp_out", True, [("clamp", mlp, fm, 2 * am)]),
            case("clamp mlp_out twice", True, [("clamp", mlp, fm, 2 * am), ("clamp", mlp, fm2, 1.5 * am)]),
            case("add resid_pre, clamp mlp_out", True, [("add", res, fr, 1.5 * ar), ("clamp", mlp, fm, 0.0)]),
        ],
        "attribution": attribution(mixed),
    }
    out["kk"] = {
        "steered": [
            case("add z 5", True, [("add", z5, f5, 2 * a5)]),
            case("clamp z 8", True, [("clamp", z8, f8, 2 * a8)]),
            case("clamp z 5, clamp z 8", True, [("clamp", z5, f5, 0.0), ("clamp", z8, f8, 2 * a8)]),
        ],
        "attribution": attribution(kk),
    }
    with open(a.output, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
