"""Compare two `report --format json` files (e.g. scripts/reference.py's and saescope's).

    python scripts/compare.py ref.json ours.json [--rel 1e-3]

Prints the worst relative differences and exits 1 when any text's top-32 features or
values, or any category metric, differ beyond --rel (features may only trade places where
their values tie within tolerance).
"""
import argparse
import json
import sys


def close(a, b, rel):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-3)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("reference")
    ap.add_argument("ours")
    ap.add_argument("--rel", type=float, default=1e-3)
    a = ap.parse_args()
    r, o = (json.load(open(p)) for p in (a.reference, a.ours))
    bad, worst_text, worst_cat, n = [], 0.0, 0.0, 0
    for tr, to in zip(r["texts"], o["texts"], strict=True):
        if tr["text"] != to["text"] or tr["n_tokens"] != to["n_tokens"]:
            bad.append(f"text/n_tokens differ: {tr['text'][:40]!r}")
        for lr, lo in zip(tr["layers"], to["layers"], strict=True):
            ro, oo = lr["top"], lo["top"]
            if len(ro) != len(oo):
                bad.append(f"layer {lr['layer']} {tr['text'][:30]!r}: {len(ro)} vs {len(oo)} features")
                continue
            last = ro[-1]["activation"] if ro else 0.0
            ours = {x["feature"]: x["activation"] for x in oo}
            for x, y in zip(ro, oo):
                n += 1
                d = abs(x["activation"] - y["activation"]) / max(abs(x["activation"]), 1e-3)
                worst_text = max(worst_text, d)
                if d > a.rel:
                    bad.append(f"layer {lr['layer']} {tr['text'][:30]!r}: activation {x['activation']} vs {y['activation']}")
                if x["feature"] != y["feature"] and not (
                    x["feature"] in ours and close(ours[x["feature"]], x["activation"], a.rel) or close(x["activation"], last, a.rel)
                ):
                    bad.append(f"layer {lr['layer']} {tr['text'][:30]!r}: feature {x['feature']} vs {y['feature']}")
    for cr, co in zip(r["categories"], o["categories"], strict=True):
        for lr, lo in zip(cr["layers"], co["layers"], strict=True):
            for k in ("peak", "gini", "top_sum", "top_share"):
                d = abs(lr[k] - lo[k]) / max(abs(lr[k]), 1e-3)
                worst_cat = max(worst_cat, d)
                if d > a.rel:
                    bad.append(f"{cr['name']} layer {lr['layer']}: {k} {lr[k]} vs {lo[k]}")
            if lr["spec"] != lo["spec"] or [(t["feature"], t["specialist"]) for t in lr["top"]] != [(t["feature"], t["specialist"]) for t in lo["top"]]:
                bad.append(f"{cr['name']} layer {lr['layer']}: top features / specialist scores differ")
    print(f"{len(r['texts'])} texts, {n} text features compared; worst relative difference: "
          f"texts {worst_text:.2e}, category metrics {worst_cat:.2e} (tolerance {a.rel:g})")
    for b in bad[:20]:
        print("MISMATCH", b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
