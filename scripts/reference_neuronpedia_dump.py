"""A small Neuronpedia-style dataset dump of one SAE over a corpus, for tests: the layout and
row schemas of Neuronpedia's public exports (s3://neuronpedia-datasets/v1, written by
neuronpedia's utils/neuronpedia-utils/neuronpedia_utils/export-data.py; the rows follow the
Prisma models Neuron, Activation and Explanation), with values computed by the Python
reference stack exactly as scripts/reference_index.py cuts and computes them (its functions
are imported, not copied).

    python scripts/reference_neuronpedia_dump.py --model-dir DIR/model --sae-dir DIR/saes \
        --layer 6 --corpus tests/fixtures/corpus --out /tmp/np-dump \
        [--context 128] [--model-id gpt2-small] [--source-id 6-res-jb] [--batch-size 1024] \
        [--features N] [--explanations 5] [--round N] [--vectors] [--pgvector-text] [--clean]
        [--manifest F] [--max-tokens N] [--text-field text] [--data-source NAME]

Writes, under OUT/v1/{model-id}/{source-id}/:
    model.jsonl, source.jsonl                one row each, uncompressed (as the exports)
    features/batch-N.jsonl.gz                one row per feature (Neuron)
    activations/batch-N.jsonl.gz             the top contexts of the features (Activation)
    explanations/batch-N.jsonl.gz            made-up explanations of the first features
Lines are Python json.dumps of a dict (", " and ": " separators, non-ASCII as \\uXXXX),
each ending in "\\n"; files gzip level 5. Batches as export-data.py makes them:
    features, explanations: rows in ORDER BY index on the text column, i.e. "0", "1", "10",
        "100", ..., --batch-size rows a file;
    activations: batch-N holds every row of the features whose numeric index lies in
        [N * batch-size, (N + 1) * batch-size - 1] (a file per such range, empty ones too);
        inside it rows go by feature (numeric) and then value descending, window ascending.

--features N writes only features 0 .. N-1 (the statistics still come from the whole SAE
run; a smaller dump for a committed fixture).

Per feature (index = its number as a string, layer = the source id, modelId = --model-id):
    maxActApprox     its max activation over the counted tokens (0.0 when it never fires)
    frac_nonzero     (counted tokens where it is > 0) / (counted tokens); BOS never counted
    freq_hist_data_bar_heights/_values   SAEDashboard's activation histogram (the one
                     Neuronpedia shows): 50 equal bins between the min and max of the
                     feature's nonzero activations, heights from torch.histc, values the bin
                     centres rounded to 5 decimals; [] and [] when it never fires
    logits_hist_data_bar_heights/_values the same 50-bin histogram over W_dec[f] @ W_U
                     (all vocabulary logits of the decoder direction)
    pos_str/pos_values, neg_str/neg_values   the 10 largest / 10 smallest of those logits
                     (largest first / smallest first), values rounded to 5 decimals
    neuron_alignment_indices/_values/_l1     top 3 of W_dec[f] (signed), and |value| / L1 of
                     W_dec[f], rounded to 5 decimals (SAEDashboard's table)
    correlated_neurons_*, decoder_weights_dist, topkCosSimIndices/Values: [] (not computed)
    vector [] , hasVector false, hookName null, vectorLabel null,
    vectorDefaultSteerStrength 10.0 (the schema's default); with --vectors: vector = W_dec[f],
                     hasVector true, hookName the SAE's hook, strength = maxActApprox
    sourceSetName    the source id without its leading "<layer>-" ("res-jb")
    creatorId        clkht01d40000jv08hvalcvly (the exports' default creator id)
Per top context (at most 20 per feature: reference_index.py's top list, value descending,
then window number ascending; the window's first max position):
    tokens           the window's tokens after BOS, as SAEDashboard writes them (the
                     tokenizer's vocabulary piece with "Ġ" -> " ", "Ċ" -> "\\n", "ĉ" -> "\\t"
                     and a few mis-decoded quotes/dashes replaced)
    values           the feature's activation at each of those tokens
    maxValue, maxValueTokenIndex   the top value and its position in `tokens` (BOS excluded)
    minValue         min(values)
    dataSource       the corpus as given by --corpus (or --data-source)
    dataIndex        the window number (reference_index.py's numbering) as a string
    id               a deterministic cuid-like string; creatorId as above
    dfaValues [], dfaMaxValue null, dfaTargetIndex null, binMin/binMax/binContains null
Activation values (and maxActApprox, maxValue) are float32 in their shortest round-trip
form; --round N rounds them and frac_nonzero to N decimals (SAEDashboard uses 5).
Explanations: for features 0 .. --explanations - 1, one row each: a made-up description,
    embedding a 256-float unit vector (deterministic per index; a JSON array, or with
    --pgvector-text the pgvector text form "[a,b,...]" as a string), typeName
    "oai_token-act-pair", explanationModelName "gpt-4o-mini", umap_* 0.

Rows a reader must set aside (left out with --clean; --manifest F also lists them as JSON):
    features/batch-0.jsonl.gz, its last line: a row of another source, layer "7-res-jb"
        (--foreign-source), a copy of the first row with index "0";
    activations/batch-0.jsonl.gz, line 2 (line 1 if batch-0 has no rows of its own): a
        malformed line, not JSON (the first row's text cut off after 40 characters);
    activations/batch-0.jsonl.gz, its last line: a row of layer "7-res-jb", a copy of the
        first row of the file (or of a minimal row for index "0") with its own id.
So features/batch-0 has one line more than its features, activations/batch-0 two more than
its top contexts; the other files carry only rows of the source.
"""
import argparse
import gzip
import json
import math
import os
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import go_offline, load_stack  # noqa: E402
from reference_index import TOP, documents, index_stats, windows  # noqa: E402

CREATOR_ID = "clkht01d40000jv08hvalcvly"
CREATED_AT = "2025-01-01T00:00:00"
HIST_BINS = 50  # SAEDashboard's ActsHistogramConfig / LogitsHistogramConfig n_bins
LOGIT_ROWS = 10  # LogitsTableConfig n_rows
ALIGN_ROWS = 3  # FeatureTablesConfig(n_rows=3) in NeuronpediaRunner
EMBED_DIM = 256  # Explanation.embedding is vector(256)
# SAEDashboard's NeuronpediaRunner replaces these in vocabulary pieces before writing tokens
VOCAB_REPLACE = {
    "âĢĶ": "—", "âĢĵ": "–", "âĢľ": "“", "âĢĿ": "”", "âĢĺ": "‘", "âĢĻ": "’",
    "âĢĭ": " ", "Ġ": " ", "Ċ": "\n", "ĉ": "\t",
}
FEATURE_KEYS = [  # export-data.py's column list for "Neuron", in its order
    "modelId", "layer", "index", "maxActApprox", "creatorId", "frac_nonzero",
    "freq_hist_data_bar_heights", "freq_hist_data_bar_values",
    "logits_hist_data_bar_heights", "logits_hist_data_bar_values",
    "neuron_alignment_indices", "neuron_alignment_l1", "neuron_alignment_values",
    "correlated_neurons_indices", "correlated_neurons_l1", "correlated_neurons_pearson",
    "decoder_weights_dist", "neg_str", "neg_values", "pos_str", "pos_values", "sourceSetName",
    "topkCosSimIndices", "topkCosSimValues", "vector", "vectorLabel", "hookName",
    "vectorDefaultSteerStrength", "hasVector",
]
ACTIVATION_KEYS = [  # export-data.py's column list for "Activation", then dataIndex
    "id", "modelId", "layer", "index", "creatorId", "dataSource", "tokens", "maxValue",
    "minValue", "values", "maxValueTokenIndex", "dfaValues", "dfaMaxValue", "dfaTargetIndex",
    "binContains", "binMin", "binMax", "dataIndex",
]
EXPLANATION_KEYS = [  # export-data.py's column list for "Explanation"
    "id", "modelId", "layer", "index", "authorId", "description", "embedding", "typeName",
    "explanationModelName", "umap_x", "umap_y", "umap_cluster", "umap_log_feature_sparsity",
]


class Ids:
    """Deterministic ids shaped like the exporters' pseudo-cuids: c + 4 + 8 + 8 hex digits."""

    def __init__(self, tag):
        self.tag = zlib.crc32(tag.encode()) & 0xFFFF
        self.n = 0

    def __call__(self):
        self.n += 1
        return f"c{self.tag:04x}{0:08x}{self.n:08x}"


def histogram(data, torch):
    """SAEDashboard's HistogramData.from_data: bar heights and bin centres, 50 bins."""
    if data.numel() == 0:
        return [], []
    hi, lo = data.max().item(), data.min().item()
    size = (hi - lo) / HIST_BINS
    edges = torch.linspace(lo, hi, HIST_BINS + 1)
    heights = torch.histc(data, bins=HIST_BINS).int().tolist()
    centres = [round(x, 5) for x in (edges[:-1] + size / 2).tolist()]
    return [float(h) for h in heights], centres  # Float[] columns: the exports carry floats


def write_gz(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    text = "".join(line + "\n" for line in lines)
    with open(path, "wb") as f:
        f.write(gzip.compress(text.encode("utf-8"), compresslevel=5, mtime=0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--sae-dir", required=True)
    ap.add_argument("--layer", type=int, default=6)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--text-field", default="text")
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--max-tokens", type=int, default=None)
    ap.add_argument("--batch-windows", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model-id", default="gpt2-small")
    ap.add_argument("--source-id", default="6-res-jb")
    ap.add_argument("--foreign-source", default="7-res-jb")
    ap.add_argument("--data-source", default=None, help="default: --corpus as given")
    ap.add_argument("--batch-size", type=int, default=1024, help="features a batch file (exports: 1024)")
    ap.add_argument("--features", type=int, default=None, help="write only features 0 .. N-1 (default: all)")
    ap.add_argument("--explanations", type=int, default=5)
    ap.add_argument("--round", type=int, default=None, help="round activation values and frac_nonzero to N decimals")
    ap.add_argument("--vectors", action="store_true", help="write W_dec rows as the features' vector")
    ap.add_argument("--pgvector-text", action="store_true", help="embeddings as pgvector text strings")
    ap.add_argument("--clean", action="store_true", help="leave out the rows a reader must set aside")
    ap.add_argument("--manifest", default=None, help="write a JSON summary (files, counts, set-aside lines)")
    a = ap.parse_args()

    go_offline(a.model_dir)
    import numpy as np
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    layer = a.layer
    model, saes, hook = load_stack(a.model_dir, a.sae_dir, [layer])
    sae = saes[layer]
    stop = None if layer >= model.cfg.n_layers else layer + 1
    bos = model.tokenizer.bos_token_id
    wins = list(windows(documents(a.corpus, a.text_field), model.tokenizer, bos, a.context, a.max_tokens))

    chunks = []

    def tap(_l, acts, first, _batch):
        fires = acts > 0
        nz = fires.nonzero()
        chunks.append((nz[:, 0] + first, nz[:, 1], nz[:, 2], acts[fires]))

    st, n_windows, n_tokens = index_stats(model, saes, hook, [layer], stop, bos, wins, a.batch_windows, tap)
    s = st[layer]
    d_sae = sae.cfg.d_sae
    # every nonzero activation, as (window, position, feature, value), by feature, then
    # window, then position
    if chunks:
        W, P, F, V = (torch.cat([c[i] for c in chunks]).numpy() for i in range(4))
    else:
        W = P = F = np.zeros(0, dtype=np.int64)
        V = np.zeros(0, dtype=np.float32)
    o = np.argsort(F, kind="stable")
    W, P, F, V = W[o], P[o], F[o], V[o]
    starts = np.searchsorted(F, np.arange(d_sae + 1))
    n_feat = d_sae if a.features is None else max(1, min(a.features, d_sae))

    def val(x):  # a float32 activation, in its shortest round-trip form or rounded
        x = float(str(np.float32(x)))
        return x if a.round is None else round(x, a.round)

    vocab = {i: t for t, i in model.tokenizer.vocab.items()}
    for i, t in vocab.items():
        for k, r in VOCAB_REPLACE.items():
            t = t.replace(k, r)
        vocab[i] = t
    tok = lambda i: vocab.get(int(i), "<|outofrange|>")  # noqa: E731

    head, _, tail = a.source_id.partition("-")
    set_name = tail if head.isdigit() and tail else a.source_id
    hook_name = hook(layer)
    W_dec = sae.W_dec.detach().float()
    W_U = model.W_U.detach().float()
    data_source = a.data_source if a.data_source is not None else a.corpus
    ids = Ids(f"{a.model_id}/{a.source_id}")

    features, acts_by_feature = {}, {}
    block = 256
    for f0 in range(0, n_feat, block):
        logits = W_dec[f0:min(f0 + block, n_feat)] @ W_U  # [block, d_vocab]
        for j in range(logits.shape[0]):
            f = f0 + j
            lg = logits[j]
            top = torch.topk(lg, LOGIT_ROWS, largest=True)
            bot = torch.topk(lg, LOGIT_ROWS, largest=False)
            lh, lv = histogram(lg, torch)
            lo, hi = starts[f], starts[f + 1]
            count = int(s["count"][f])
            assert hi - lo == count, (f, hi - lo, count)
            fh, fv = histogram(torch.from_numpy(V[lo:hi].copy()), torch)
            al = torch.topk(W_dec[f], ALIGN_ROWS, largest=True)
            l1 = W_dec[f].abs().sum().item()
            max_act = val(float(s["max"][f])) if count else 0.0
            row = {
                "modelId": a.model_id, "layer": a.source_id, "index": str(f),
                "maxActApprox": max_act, "creatorId": CREATOR_ID,
                "frac_nonzero": count / n_tokens if a.round is None else round(count / n_tokens, a.round),
                "freq_hist_data_bar_heights": fh, "freq_hist_data_bar_values": fv,
                "logits_hist_data_bar_heights": lh, "logits_hist_data_bar_values": lv,
                "neuron_alignment_indices": al.indices.tolist(),
                "neuron_alignment_l1": [round(abs(v) / l1, 5) if l1 else 0.0 for v in al.values.tolist()],
                "neuron_alignment_values": [round(v, 5) for v in al.values.tolist()],
                "correlated_neurons_indices": [], "correlated_neurons_l1": [], "correlated_neurons_pearson": [],
                "decoder_weights_dist": [],
                "neg_str": [tok(i) for i in bot.indices.tolist()],
                "neg_values": [round(v, 5) for v in bot.values.tolist()],
                "pos_str": [tok(i) for i in top.indices.tolist()],
                "pos_values": [round(v, 5) for v in top.values.tolist()],
                "sourceSetName": set_name,
                "topkCosSimIndices": [], "topkCosSimValues": [],
                "vector": [float(str(np.float32(x))) for x in W_dec[f].tolist()] if a.vectors else [],
                "vectorLabel": None,
                "hookName": hook_name if a.vectors else None,
                "vectorDefaultSteerStrength": max_act if a.vectors else 10.0,
                "hasVector": bool(a.vectors),
            }
            assert list(row) == FEATURE_KEYS
            features[f] = row

            rows = []
            fw, fp, fval = W[lo:hi], P[lo:hi], V[lo:hi]
            for k in range(TOP):
                v = float(s["top_v"][k, f])
                if not v > 0:
                    continue
                w, p = int(s["top_w"][k, f]), int(s["top_p"][k, f])
                a0, a1 = np.searchsorted(fw, w), np.searchsorted(fw, w, side="right")
                win = wins[w]
                raw = np.zeros(len(win) - 1, dtype=np.float32)
                raw[fp[a0:a1] - 1] = fval[a0:a1]
                assert raw[p - 1] == np.float32(v) and int(np.argmax(raw)) == p - 1, (f, w, p)
                values = [val(x) for x in raw]
                mx = max(values)
                rows.append({
                    "id": ids(), "modelId": a.model_id, "layer": a.source_id, "index": str(f),
                    "creatorId": CREATOR_ID, "dataSource": data_source,
                    "tokens": [tok(t) for t in win[1:]],
                    "maxValue": mx, "minValue": min(values), "values": values,
                    "maxValueTokenIndex": values.index(mx),
                    "dfaValues": [], "dfaMaxValue": None, "dfaTargetIndex": None,
                    "binContains": None, "binMin": None, "binMax": None,
                    "dataIndex": str(w),
                })
                assert list(rows[-1]) == ACTIVATION_KEYS
            acts_by_feature[f] = rows

    base = os.path.join(a.out, "v1", a.model_id, a.source_id)
    os.makedirs(base, exist_ok=True)
    manifest = {"model_id": a.model_id, "source_id": a.source_id, "corpus": a.corpus, "context": a.context,
                "windows": n_windows, "tokens": n_tokens, "d_sae": d_sae, "features_written": n_feat,
                "batch_size": a.batch_size}
    dumps = json.dumps

    with open(os.path.join(base, "model.jsonl"), "w") as fh:
        fh.write(dumps({
            "id": a.model_id, "instruct": False, "creatorId": CREATOR_ID, "displayNameShort": a.model_id,
            "displayName": a.model_id, "tlensId": "gpt2", "dimension": model.cfg.d_model, "visibility": "PUBLIC",
            "defaultSourceSetName": None, "defaultSourceId": None, "inferenceEnabled": False,
            "layers": model.cfg.n_layers, "neuronsPerLayer": model.cfg.d_mlp, "createdAt": CREATED_AT,
            "owner": "", "updatedAt": CREATED_AT, "website": None}) + "\n")
    with open(os.path.join(base, "source.jsonl"), "w") as fh:
        fh.write(dumps({
            "id": a.source_id, "modelId": a.model_id, "setName": set_name, "creatorId": CREATOR_ID,
            "hasDashboards": True, "inferenceEnabled": False, "inferenceHosts": [], "saelensConfig": None,
            "saelensRelease": None, "saelensSaeId": None, "hfRepoId": None, "hfFolderId": None,
            "visibility": "PUBLIC", "defaultOfModelId": None, "hasUmap": False, "hasUmapLogSparsity": False,
            "hasUmapClusters": False, "num_prompts": n_windows, "num_tokens_in_prompt": a.context,
            "dataset": data_source, "notes": None, "createdAt": CREATED_AT}) + "\n")

    # features: ORDER BY index (text), batch-size rows a file
    order = sorted(features, key=str)
    files = []
    for b in range(math.ceil(n_feat / a.batch_size)):
        lines = [dumps(features[f]) for f in order[b * a.batch_size:(b + 1) * a.batch_size]]
        name = f"features/batch-{b}.jsonl.gz"
        if b == 0 and not a.clean:
            foreign = dict(features[0], layer=a.foreign_source,
                           sourceSetName=a.foreign_source.split("-", 1)[-1])
            lines.append(dumps(foreign))
            manifest.setdefault("set_aside", []).append(
                {"file": name, "line": len(lines), "kind": "other source", "layer": a.foreign_source, "index": "0"})
        write_gz(os.path.join(base, name), lines)
        files.append({"file": name, "lines": len(lines)})
    manifest["features"] = {"files": files, "rows": n_feat}

    # activations: batch N = features N*batch-size .. (N+1)*batch-size - 1
    files, n_rows = [], 0
    for b in range(math.ceil(n_feat / a.batch_size)):
        rows = [r for f in range(b * a.batch_size, min((b + 1) * a.batch_size, n_feat)) for r in acts_by_feature[f]]
        n_rows += len(rows)
        lines = [dumps(r) for r in rows]
        name = f"activations/batch-{b}.jsonl.gz"
        if b == 0 and not a.clean:
            template = rows[0] if rows else {
                "id": "", "modelId": a.model_id, "layer": a.source_id, "index": "0", "creatorId": CREATOR_ID,
                "dataSource": data_source, "tokens": ["x"], "maxValue": 1.0, "minValue": 1.0, "values": [1.0],
                "maxValueTokenIndex": 0, "dfaValues": [], "dfaMaxValue": None, "dfaTargetIndex": None,
                "binContains": None, "binMin": None, "binMax": None, "dataIndex": "0"}
            at = 1 if lines else 0
            lines.insert(at, dumps(template)[:40])
            manifest.setdefault("set_aside", []).append({"file": name, "line": at + 1, "kind": "malformed"})
            lines.append(dumps(dict(template, id=ids(), layer=a.foreign_source)))
            manifest["set_aside"].append({"file": name, "line": len(lines), "kind": "other source",
                                          "layer": a.foreign_source, "index": template["index"]})
        write_gz(os.path.join(base, name), lines)
        files.append({"file": name, "lines": len(lines)})
    manifest["activations"] = {"files": files, "rows": n_rows}

    # explanations: features 0 .. n-1, ORDER BY index (text), batch-size rows a file
    exp = []
    for f in range(min(a.explanations, n_feat)):
        g = torch.Generator().manual_seed(1000 + f)
        e = torch.randn(EMBED_DIM, generator=g, dtype=torch.float64)
        e = [round(x, 9) for x in (e / e.norm()).tolist()]
        rows = acts_by_feature[f]
        if rows:
            r = rows[0]
            desc = f"made-up: the token {r['tokens'][r['maxValueTokenIndex']]!r} (feature {f})"
        else:
            desc = f"made-up: never fires in this corpus (feature {f})"
        exp.append({
            "id": ids(), "modelId": a.model_id, "layer": a.source_id, "index": str(f), "authorId": CREATOR_ID,
            "description": desc,
            "embedding": "[" + ",".join(repr(x) for x in e) + "]" if a.pgvector_text else e,
            "typeName": "oai_token-act-pair", "explanationModelName": "gpt-4o-mini",
            "umap_x": 0.0, "umap_y": 0.0, "umap_cluster": 0, "umap_log_feature_sparsity": 0.0,
        })
        assert list(exp[-1]) == EXPLANATION_KEYS
    exp.sort(key=lambda r: r["index"])
    files = []
    for b in range(math.ceil(len(exp) / a.batch_size)):
        name = f"explanations/batch-{b}.jsonl.gz"
        lines = [dumps(r) for r in exp[b * a.batch_size:(b + 1) * a.batch_size]]
        write_gz(os.path.join(base, name), lines)
        files.append({"file": name, "lines": len(lines)})
    manifest["explanations"] = {"files": files, "rows": len(exp)}
    manifest.setdefault("set_aside", [])

    if a.manifest:
        with open(a.manifest, "w") as fh:
            json.dump(manifest, fh, indent=1)
    print(f"{n_tokens} tokens in {n_windows} windows; {n_feat} of {d_sae} features, {n_rows} activation rows, "
          f"{len(exp)} explanations, {len(manifest['set_aside'])} set-aside lines -> {base}", file=sys.stderr)


if __name__ == "__main__":
    main()
