"""TransformerLens + SAELens reference for `saescope attribute` (tests/steer.rs, fixture
tests/fixtures/attribute_tiny.json), on the tiny synthetic weights.

The model's top next token after the prompt; its logit under TL's default processing
(centred unembedding); one backward pass through `run_with_hooks` with the residual at
each SAE's blocks.L.hook_resid_pre kept for its gradient; per feature
sum_p a_F(x_p) * (W_dec[F] . grad_p); the top 20 by |attribution| per layer, and for
each the change in the logit and probability when the feature is ablated at every
position (x - a_F(x) * W_dec[F]).

    python scripts/reference_attribute.py --model-dir DIR/model --sae-dir DIR/saes -o out.json
"""
import argparse
import json

from reference import go_offline, load_stack

PROMPT = "def factorial(n):\n    return 1 if n == 0 else"
LAYERS = [6, 8]
TOP = 20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--sae-dir", required=True)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    go_offline(a.model_dir)
    import torch

    model, saes, hook = load_stack(a.model_dir, a.sae_dir, LAYERS)
    toks = model.to_tokens(PROMPT, prepend_bos=True)
    kept = {}

    def keep(resid, hook):
        resid.retain_grad()
        kept[hook.name] = resid
        return resid

    logits = model.run_with_hooks(toks, fwd_hooks=[(hook(l), keep) for l in LAYERS])
    last = logits[0, -1]
    t = int(last.argmax())
    metric = last[t]
    prob = float(last.detach().softmax(-1)[t])
    metric.backward()
    base = float(metric)
    out = {"prompt": PROMPT, "target_id": t, "logit": base, "prob": prob, "layers": []}
    with torch.no_grad():
        for l in LAYERS:
            sae = saes[l]
            x = kept[hook(l)]
            acts = sae.encode(x.detach())[0]
            attr = (acts * (x.grad[0] @ sae.W_dec.T)).sum(0).double()
            order = sorted(range(attr.shape[0]), key=lambda f: (-abs(float(attr[f])), f))[:TOP]
            feats = []
            for f in order:
                def ablate(resid, hook, f=f, sae=sae):
                    return resid - sae.encode(resid)[..., f : f + 1] * sae.W_dec[f]

                lg = model.run_with_hooks(toks, fwd_hooks=[(hook(l), ablate)])[0, -1]
                feats.append({"feature": f, "attribution": float(attr[f]), "ablation_logit": float(lg[t]) - base, "ablation_prob": float(lg.softmax(-1)[t]) - prob})
            out["layers"].append({"layer": l, "features": feats})
    with open(a.output, "w") as fh:
        json.dump(out, fh)


if __name__ == "__main__":
    main()
