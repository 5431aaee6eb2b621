"""TransformerLens + SAELens reference for `saescope steer` (tests/steer.rs, fixture
tests/fixtures/steer_tiny.json), on the tiny synthetic weights.

Greedy generation of N tokens after a prompt:
- unsteered: TransformerLens's own `generate`, with the KV cache and without it, and a
  step-by-step loop that records each step's log-probabilities;
- steered through hooks on blocks.L.hook_resid_pre: `add` (resid + s * W_dec[F]) and
  `clamp` (resid + (s - a_F(resid)) * W_dec[F], a_F from SAELens's encode of the residual
  as the hook sees it, earlier layers' edits included), one feature or several at one or
  two layers, each feature in its own mode.
Each step keeps the chosen ids and the log-probabilities of the top 5 tokens.

The cases: feature 223 of layer 6 fires on 8 of the prompt's tokens, so clamping it to 12
and adding 12 of it generate different tokens; feature 364 of layer 8 (the prompt's
strongest there) clamped after a layer-6 edit reads a residual that is no longer mean-zero
(a W_dec row is not), which a clamp that re-centres the residual gets wrong.

    python scripts/reference_steer.py --model-dir DIR/model --sae-dir DIR/saes -o out.json
"""
import argparse
import json

from reference import go_offline, load_stack

PROMPT = "def factorial(n):\n    return 1 if n == 0 else"
# (name, [(mode, layer, feature, strength), ...]), applied in order within a layer.
F6 = (6, 223, 12.0)
G8 = (8, 364, 30.0)
CASES = [
    ("add 6", [("add", *F6)]),
    ("clamp 6", [("clamp", *F6)]),
    ("add 6 strong", [("add", 6, 481, 40.0)]),
    ("add 8", [("add", 8, 3, -25.0)]),
    ("clamp 6, clamp 8", [("clamp", *F6), ("clamp", *G8)]),
    ("add 6, clamp 8", [("add", *F6), ("clamp", *G8)]),
    ("clamp 6 twice", [("clamp", *F6), ("clamp", 6, 481, 25.0)]),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--sae-dir", required=True)
    ap.add_argument("--tokens", type=int, default=20)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    go_offline(a.model_dir)
    import torch

    torch.set_grad_enabled(False)
    model, saes, hook = load_stack(a.model_dir, a.sae_dir, sorted({f[1] for _, fs in CASES for f in fs}))
    prompt = model.to_tokens(PROMPT, prepend_bos=True)

    def greedy(fwd_hooks):
        """Step by step, the whole sequence each step: ids and each step's top-5 log-probs."""
        toks, steps = prompt.clone(), []
        for _ in range(a.tokens):
            logits = model.run_with_hooks(toks, fwd_hooks=fwd_hooks)
            lp = logits[0, -1].double().log_softmax(-1)
            top = lp.topk(5)
            steps.append([[int(i), float(v)] for v, i in zip(top.values, top.indices)])
            nxt = int(lp.argmax())
            toks = torch.cat([toks, torch.tensor([[nxt]])], dim=1)
        return [int(t) for t in toks[0, prompt.shape[1]:]], steps

    def hooks(features):
        """One hook per layer, applying that layer's features in order."""
        out = []
        for layer in sorted({f[1] for f in features}):
            mine = [f for f in features if f[1] == layer]
            sae = saes[layer]

            def f(resid, hook, mine=mine, sae=sae):
                for mode, _, feature, s in mine:
                    d = sae.W_dec[feature]
                    if mode == "add":
                        resid = resid + s * d
                    else:
                        act = sae.encode(resid)[..., feature]
                        resid = resid + (s - act)[..., None] * d
                return resid

            out.append((hook(layer), f))
        return out

    out = {"prompt": PROMPT, "prompt_ids": [int(t) for t in prompt[0]], "tokens": a.tokens}
    ids, steps = greedy([])
    gen = {}
    for cached in (True, False):
        g = model.generate(prompt, max_new_tokens=a.tokens, do_sample=False, use_past_kv_cache=cached, stop_at_eos=False, verbose=False)
        gen[cached] = [int(t) for t in g[0, prompt.shape[1]:]]
    out["default"] = {"ids": ids, "steps": steps, "generate_cached": gen[True], "generate_uncached": gen[False]}
    out["steered"] = []
    for name, features in CASES:
        ids, steps = greedy(hooks(features))
        feats = [{"mode": m, "layer": l, "feature": f, "strength": s} for m, l, f, s in features]
        out["steered"].append({"name": name, "features": feats, "ids": ids, "steps": steps})
    with open(a.output, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
