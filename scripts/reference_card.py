"""The Python reference for the feature card (tests/fixtures/card_tiny.json): the logit lens,
cross-layer decoder neighbours and per-token activations, computed with TransformerLens
(default processing, so model.W_U has ln_f folded in and is centred over the vocabulary, the
W_U Neuronpedia's "top logits" use) and SAELens on saescope's weight folders.

    python scripts/reference_card.py --model-dir DIR/model --sae-dir DIR/saes \
        --layers 6,8,10 --features 6:5,8:0,8:17,8:123,10:400 --text "..." -o out.json
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from reference import go_offline, load_stack  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--sae-dir", required=True)
    ap.add_argument("--layers", required=True)
    ap.add_argument("--features", required=True, help="LAYER:FEATURE,...")
    ap.add_argument("--text", required=True)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()

    go_offline(a.model_dir)
    import torch

    torch.set_grad_enabled(False)
    layers = [int(x) for x in a.layers.split(",")]
    model, saes, hook = load_stack(a.model_dir, a.sae_dir, layers)

    toks = model.to_tokens(a.text)
    _, cache = model.run_with_cache(toks, names_filter=[hook(l) for l in layers])
    cards = []
    for spec in a.features.split(","):
        layer, feature = (int(x) for x in spec.split(":"))
        d = saes[layer].W_dec[feature]
        logits = d @ model.W_U
        up, down = logits.topk(a.k), logits.topk(a.k, largest=False)
        pos = layers.index(layer)
        neighbours = []
        for p in (pos - 1, pos + 1):
            if 0 <= p < len(layers):
                w = saes[layers[p]].W_dec
                cos = (w @ d) / (w.norm(dim=1) * d.norm())
                vals, idx = cos.topk(5)
                neighbours.append({"layer": layers[p], "features": [[int(i), float(v)] for i, v in zip(idx, vals)]})
        acts = saes[layer].encode(cache[hook(layer)][0])[1:, feature]  # BOS left out, as saescope's token view
        cards.append({
            "layer": layer, "feature": feature,
            "promoted": [[int(i), float(v)] for v, i in zip(up.values, up.indices)],
            "suppressed": [[int(i), float(v)] for v, i in zip(down.values, down.indices)],
            "neighbours": neighbours,
            "token_activations": [float(x) for x in acts],
        })
    out = {"layers": layers, "text": a.text, "tokens": toks[0].tolist(), "cards": cards}
    with open(a.output, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {a.output}: {len(cards)} cards", file=sys.stderr)


if __name__ == "__main__":
    main()
