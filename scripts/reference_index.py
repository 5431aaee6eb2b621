"""The Python reference for `saescope index`: TransformerLens + SAELens over a corpus, the
way a user would write it: batched `run_with_cache` with `names_filter` and
`stop_at_layer`, SAELens `encode`, and per-feature statistics and top-k merged per batch.

Windows as saescope cuts them (src/corpus/): files in path order (hidden entries skipped,
binary files skipped), JSON Lines (.jsonl/.ndjson/.json, gzip by magic) read row by row
from --text-field, each document tokenised on its own and cut into pieces of context - 1
tokens, BOS in front of each; BOS never counted. Per feature: tokens where it fires (> 0),
max, the histogram of its nonzero values in quarter-octave bins (floor(4 log2 v) + 32,
clamped to 0..63), and the top 20 contexts by their max (value descending, then window
number ascending; inside a window the first max position).

    python scripts/reference_index.py --model-dir DIR/model --sae-dir DIR/saes --corpus PATH \
        --layers 6,8,10,11 [--max-tokens N] [--threads N] [--batch-windows 8] [-o out.json]

Without -o it only times (the benchmark, scripts/bench-index). Used by scripts/gen-fixtures
for tests/fixtures/index_tiny.json, which tests/dashboard.rs compares with saescope's index.
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from reference import go_offline, load_stack  # noqa: E402

TOP = 20
HIST_BINS, HIST_ZERO = 64, 32
JSON_LINES = ("jsonl", "ndjson", "json")


def files_under(path):
    if not os.path.isdir(path):
        return [path]
    out = []
    for name in sorted(os.listdir(path)):
        if name.startswith("."):
            continue
        p = os.path.join(path, name)
        if os.path.isdir(p):
            out.extend(files_under(p))
        elif os.path.isfile(p):
            out.append(p)
    return out


def read_bytes(p):
    with open(p, "rb") as f:
        b = f.read()
    return gzip.decompress(b) if b[:2] == b"\x1f\x8b" else b


def documents(corpus, field):
    for p in files_under(corpus):
        name = os.path.basename(p).lower()
        name = name[:-3] if name.endswith(".gz") else name
        if "." in name and name.rsplit(".", 1)[1] in JSON_LINES:
            for line in read_bytes(p).decode("utf-8").splitlines():
                if line.strip():
                    text = json.loads(line).get(field)
                    if isinstance(text, str):
                        yield text
        else:
            b = read_bytes(p)
            if b"\x00" in b:
                continue
            try:
                yield b.decode("utf-8")
            except UnicodeDecodeError:
                continue


def windows(docs, tokenizer, bos, context, max_tokens):
    """Token lists with BOS first, in corpus order."""
    done = 0
    for text in docs:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        for k in range(0, len(ids), context - 1):
            piece = ids[k:k + context - 1]
            if max_tokens is not None:
                piece = piece[:max_tokens - done]
            done += len(piece)
            yield [bos] + piece
            if max_tokens is not None and done >= max_tokens:
                return


def index_stats(model, saes, hook, layers, stop, bos, wins, batch_windows, tap=None):
    """main()'s computation over the windows `wins` (token lists, BOS first): per layer its
    statistics {count, max, hist, top_v, top_w, top_p}, and the numbers of windows and
    tokens. `tap(layer, acts, first, batch)`, when given, sees each batch's activations
    [B, T, F] (BOS and padding zeroed) and the number of its first window."""
    import torch

    hooks = [hook(l) for l in layers]
    d_sae = saes[layers[0]].cfg.d_sae
    st = {l: {
        "count": torch.zeros(d_sae, dtype=torch.int64),
        "max": torch.zeros(d_sae),
        "hist": torch.zeros(d_sae * HIST_BINS, dtype=torch.int64),
        "top_v": torch.full((TOP, d_sae), -math.inf),
        "top_w": torch.full((TOP, d_sae), 2**62, dtype=torch.int64),
        "top_p": torch.zeros((TOP, d_sae), dtype=torch.int64),
    } for l in layers}
    n_windows = n_tokens = 0

    def run(batch, first):
        longest = max(len(w) for w in batch)
        toks = torch.tensor([w + [bos] * (longest - len(w)) for w in batch])
        lens = torch.tensor([len(w) for w in batch])
        pos = torch.arange(longest)
        valid = (pos[None, :] >= 1) & (pos[None, :] < lens[:, None])  # BOS and padding out
        _, cache = model.run_with_cache(toks, names_filter=hooks, stop_at_layer=stop)
        ids = torch.arange(first, first + len(batch))
        for l in layers:
            s = st[l]
            acts = saes[l].encode(cache[hook(l)]) * valid[:, :, None]
            if tap is not None:
                tap(l, acts, first, batch)
            fires = acts > 0
            s["count"] += fires.sum((0, 1))
            s["max"] = torch.maximum(s["max"], acts.amax((0, 1)))
            nz = fires.nonzero()
            v = acts[fires].double()
            bins = (torch.floor(torch.log2(v) * 4).long() + HIST_ZERO).clamp(0, HIST_BINS - 1)
            s["hist"].index_add_(0, nz[:, 2] * HIST_BINS + bins, torch.ones_like(bins))
            wv, wp = acts.max(dim=1)  # [B, F]; ties: the first position
            wv = torch.where(wv > 0, wv, torch.tensor(-math.inf))
            cv = torch.cat([s["top_v"], wv])
            cw = torch.cat([s["top_w"], ids[:, None].expand(-1, d_sae)])
            cp = torch.cat([s["top_p"], wp])
            o = torch.argsort(cw, dim=0, stable=True)
            cv, cw, cp = cv.gather(0, o), cw.gather(0, o), cp.gather(0, o)
            o = torch.argsort(-cv, dim=0, stable=True)[:TOP]
            s["top_v"], s["top_w"], s["top_p"] = cv.gather(0, o), cw.gather(0, o), cp.gather(0, o)

    batch = []
    for w in wins:
        batch.append(w)
        n_windows += 1
        n_tokens += len(w) - 1
        if len(batch) == batch_windows:
            run(batch, n_windows - len(batch))
            batch = []
    if batch:
        run(batch, n_windows - len(batch))
    return st, n_windows, n_tokens


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--sae-dir", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--layers", default="6,8,10,11")
    ap.add_argument("--text-field", default="text")
    ap.add_argument("--context", type=int, default=0, help="default: the SAE cfg's context_size")
    ap.add_argument("--max-tokens", type=int, default=None)
    ap.add_argument("--batch-windows", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("-o", "--output")
    a = ap.parse_args()

    go_offline(a.model_dir)
    import torch
    import sae_lens, transformer_lens  # noqa: F401,E401

    if a.threads:
        torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    layers = [int(x) for x in a.layers.split(",")]
    t_load = time.time()
    model, saes, hook = load_stack(a.model_dir, a.sae_dir, layers)
    n_layers = model.cfg.n_layers
    stop = None if max(layers) >= n_layers else max(layers) + 1
    context = a.context or saes[layers[0]].cfg.metadata.context_size or 128
    bos = model.tokenizer.bos_token_id
    t0 = time.time()

    wins = windows(documents(a.corpus, a.text_field), model.tokenizer, bos, context, a.max_tokens)
    st, n_windows, n_tokens = index_stats(model, saes, hook, layers, stop, bos, wins, a.batch_windows)
    d_sae = saes[layers[0]].cfg.d_sae
    t1 = time.time()
    print(f"{n_tokens} tokens in {n_windows} windows: compute {t1 - t0:.2f} s ({n_tokens / (t1 - t0):.0f} tokens/s), "
          f"load {t0 - t_load:.2f} s", file=sys.stderr)
    if not a.output:
        return
    out = {"corpus": a.corpus, "context": context, "windows": n_windows, "tokens": n_tokens, "layers": {}}
    for l in layers:
        s = st[l]
        hist = s["hist"].view(d_sae, HIST_BINS)
        top = []
        for f in range(d_sae):
            top.append([[int(s["top_w"][k, f]), int(s["top_p"][k, f]), float(f"{float(s['top_v'][k, f]):.7g}")]
                        for k in range(TOP) if s["top_v"][k, f] > 0])
        out["layers"][str(l)] = {
            "count": s["count"].tolist(),
            "max": [float(f"{x:.7g}") for x in s["max"].tolist()],
            "hist": [[[b, int(n)] for b, n in enumerate(row.tolist()) if n] for row in hist],
            "top": top,
        }
    with open(a.output, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"wrote {a.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
