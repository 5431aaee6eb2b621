"""The Python reference for attribution graphs: circuit-tracer 0.5.0 on saescope's folders.

Builds the attribution graph of one prompt exactly as circuit-tracer does it, through its
TransformerLens backend on a GPT-2, with per-layer transcoders read from local files in
circuit-tracer's own layout, fully offline; then prunes and scores it with circuit-tracer's
own functions and writes everything a differential test needs as one JSON file.

    bash scripts/setup-graph-ref     (once; or source it for $PYTHON_GRAPH_REF)
    .venv-graph/bin/python scripts/reference_graph.py --model-dir DIR/model \
        (--transcoders TCDIR | --saelens-transcoders DIR/transcoders) \
        --prompt "The cat sat on the mat" -o out.json \
        [--max-feature-nodes N] [--batch-size 512] [--max-n-logits 10] \
        [--desired-logit-prob 0.95] [--node-threshold 0.8] [--edge-threshold 0.98] \
        [--threads N] [--device cpu|cuda]

--model-dir is a Hugging Face GPT-2 folder (config.json, model.safetensors, tokenizer.json).
--transcoders is a folder in circuit-tracer's native single-layer layout, the one its
local cache (circuit_tracer.utils.caching) holds and load_transcoders_from_cache reads:
  config.yaml          model_kind: transcoder_set, feature_input_hook, feature_output_hook
                       (TransformerLens hook names relative to blocks.L, e.g.
                       ln2.hook_normalized / hook_mlp_out, or mlp.hook_in / mlp.hook_out);
                       optional scan (the graph's transcoder id) and model_name
  layer_L.safetensors  one per layer, L = 0..n_layers-1, float32:
                       W_enc [d_tc, d_model] (pre = x @ W_enc.T + b_enc), b_enc [d_tc],
                       W_dec [d_tc, d_model] (out = acts @ W_dec + b_dec), b_dec [d_model],
                       activation_function.threshold [d_tc] (JumpReLU, fires where
                       pre > threshold; ReLU without it),
                       W_skip [d_model, d_model] optional (skip = x @ W_skip.T: [d_out, d_in])

--saelens-transcoders takes what `saescope synth --transcoders` writes for GPT-2 (SAELens
folders blocks.L.hook_mlp_in/ with cfg.json and sae_weights.safetensors: W_enc [d_in,
d_sae], W_dec [d_sae, d_out], W_skip [d_out, d_in]) and converts it to the layout above
(W_enc transposed; the input is the MLP's input, circuit-tracer's mlp.hook_in).

Output: {"prompt", "input_tokens", "logit_tokens", "logit_probabilities",
"active_features" [[layer, pos, feature]] (circuit-tracer's sparse order: layer, then
position, then feature), "activation_values", "selected_features", "n_layers", "n_pos",
"adjacency" {"shape", "entries": [[row (target), col (source), value]] nonzero only, 8
significant digits}, "node_mask" (kept node indices), "edge_mask" (kept [row, col]),
"cumulative_scores", "replacement_score", "completeness_score", "graph_json" (what
create_graph_files wrote, loaded back), "reference" (versions), "settings", "timing"}.
Node order is circuit-tracer's: selected features, errors (layer-major, then position),
tokens, logits.

What circuit-tracer does here that a reimplementation has to match: TL loads GPT-2 with
fold_ln, center_writing_weights and center_unembed off (value biases still folded), so
ln2.hook_normalized is (x - mean) / sqrt(var + eps) before ln_2's weight and bias, while
mlp.hook_in (its own wrapper around each MLP) is ln_2's full output; BOS is prepended and
position 0 gets no features and a zeroed error; a feature's value is its pre-activation
(not minus the threshold); a token node's vector is W_E[token] alone (no W_pos, which,
like every bias, is no node); logit nodes inject the demeaned W_U column at ln_final's
output; attention patterns and every LayerNorm scale are frozen.
"""
import argparse
import json
import os
import sys
import tempfile
import time
import warnings

T0 = time.time()

# The fake-HF-cache trick that scripts/reference.py uses (TL's from_pretrained("gpt2") and
# create_graph_files's AutoTokenizer.from_pretrained("gpt2") both look the name up in the
# hub cache); shared rather than copied so both references load GPT-2 the same way.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import go_offline  # noqa: E402


def versions() -> dict:
    """Every package whose behaviour the output depends on, as installed (pinned by
    scripts/constraints-graph-ref.txt), so a fixture says what made it."""
    from importlib.metadata import version

    names = ["circuit-tracer", "torch", "transformer-lens", "transformers", "nnsight", "numpy", "huggingface_hub", "safetensors", "tokenizers"]
    return {n.replace("-", "_"): version(n) for n in names}


def convert_saelens(src: str, dst: str) -> None:
    """SAELens transcoder folders (one per layer, named for their input hook) as
    circuit-tracer's native set in `dst`."""
    import torch
    import yaml
    from safetensors.torch import load_file, save_file

    layers = 0
    while os.path.isdir(os.path.join(src, f"blocks.{layers}.hook_mlp_in")):
        layers += 1
    if layers == 0:
        sys.exit(f"reference_graph: {src} has no blocks.0.hook_mlp_in folder (saescope synth --transcoders)")
    os.makedirs(dst, exist_ok=True)
    for layer in range(layers):
        folder = os.path.join(src, f"blocks.{layer}.hook_mlp_in")
        with open(os.path.join(folder, "cfg.json")) as f:
            cfg = json.load(f)
        assert cfg["hook_name_out"] == f"blocks.{layer}.hook_mlp_out", cfg
        w = load_file(os.path.join(folder, "sae_weights.safetensors"))
        out = {
            "W_enc": w["W_enc"].T.contiguous(),
            "b_enc": w["b_enc"],
            "W_dec": w["W_dec"].contiguous(),
            "b_dec": w["b_dec"],
        }
        if "threshold" in w:
            out["activation_function.threshold"] = w["threshold"]
        if "W_skip" in w:
            out["W_skip"] = w["W_skip"].contiguous()  # SAELens's [d_out, d_in] is circuit-tracer's too
        save_file({k: v.to(torch.float32) for k, v in out.items()}, os.path.join(dst, f"layer_{layer}.safetensors"))
    with open(os.path.join(dst, "config.yaml"), "w") as f:
        yaml.safe_dump({"model_kind": "transcoder_set", "model_name": "gpt2", "feature_input_hook": "mlp.hook_in",
                        "feature_output_hook": "hook_mlp_out", "scan": os.path.basename(os.path.normpath(src))}, f, sort_keys=False)


def convert_scope(src: str, dst: str) -> None:
    """Gemma Scope 2 transcoder folders (`transcoder_all/layer_L_.../params.safetensors`, as
    `saescope synth --family gemma3 --transcoders` writes them: w_enc [d_in, d_sae], w_dec
    [d_sae, d], affine_skip_connection [d_in, d] applied as x @ A) as circuit-tracer's native
    set, read at mlp.hook_in (pre_feedforward_layernorm's output) and written at
    hook_mlp_out (post_feedforward_layernorm's output), its nnsight mapping for Gemma 3."""
    import glob
    import re
    import torch
    import yaml
    from safetensors.torch import load_file, save_file

    found = {}
    for f in glob.glob(os.path.join(src, "**", "params.safetensors"), recursive=True):
        m = re.search(r"layer_(\d+)_", os.path.basename(os.path.dirname(f)))
        if m:
            found[int(m.group(1))] = f
    if not found or sorted(found) != list(range(len(found))):
        sys.exit(f"reference_graph: {src} lacks a Gemma Scope 2 transcoder at some layer ({sorted(found)})")
    os.makedirs(dst, exist_ok=True)
    for layer, f in found.items():
        w = load_file(f)
        out = {"W_enc": w["w_enc"].T.contiguous(), "b_enc": w["b_enc"], "W_dec": w["w_dec"].contiguous(), "b_dec": w["b_dec"],
               "activation_function.threshold": w["threshold"]}
        if "affine_skip_connection" in w:
            out["W_skip"] = w["affine_skip_connection"].T.contiguous()  # circuit-tracer applies x @ W_skip.T
        save_file({k: v.to(torch.float32) for k, v in out.items()}, os.path.join(dst, f"layer_{layer}.safetensors"))
    with open(os.path.join(dst, "config.yaml"), "w") as fh:
        yaml.safe_dump({"model_kind": "transcoder_set", "model_name": "gemma-3-tiny", "feature_input_hook": "mlp.hook_in",
                        "feature_output_hook": "hook_mlp_out", "scan": os.path.basename(os.path.normpath(src))}, fh, sort_keys=False)


def convert_npz(src: str, dst: str) -> None:
    """The first Gemma Scope's transcoder folders (`layer_L/width_W/average_l0_N/params.npz`,
    as `saescope synth --family gemma2 --transcoders` writes them: W_enc [d_in, d_sae], W_dec
    [d_sae, d]) as circuit-tracer's native set, read at ln2.hook_normalized and written at
    hook_mlp_out, its nnsight mapping for Gemma 2."""
    import glob
    import re
    import numpy as np
    import torch
    import yaml
    from safetensors.torch import save_file

    found = {}
    for f in glob.glob(os.path.join(src, "**", "params.npz"), recursive=True):
        m = re.search(r"layer_(\d+)/", os.path.relpath(f, src))
        if m:
            found[int(m.group(1))] = f
    if not found or sorted(found) != list(range(len(found))):
        sys.exit(f"reference_graph: {src} lacks a Gemma Scope transcoder at some layer ({sorted(found)})")
    os.makedirs(dst, exist_ok=True)
    for layer, f in found.items():
        w = {k: torch.tensor(v) for k, v in np.load(f).items()}
        out = {"W_enc": w["W_enc"].T.contiguous(), "b_enc": w["b_enc"], "W_dec": w["W_dec"].contiguous(), "b_dec": w["b_dec"],
               "activation_function.threshold": w["threshold"]}
        save_file({k: v.to(torch.float32) for k, v in out.items()}, os.path.join(dst, f"layer_{layer}.safetensors"))
    with open(os.path.join(dst, "config.yaml"), "w") as fh:
        yaml.safe_dump({"model_kind": "transcoder_set", "model_name": "gemma-2-tiny", "feature_input_hook": "ln2.hook_normalized",
                        "feature_output_hook": "hook_mlp_out", "scan": os.path.basename(os.path.normpath(src))}, fh, sort_keys=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", required=True)
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--transcoders")
    which.add_argument("--saelens-transcoders")
    # Gemma 3 through circuit-tracer's nnsight backend (its TransformerLens backend gives
    # every Gemma 3 layer the global layers' RoPE base): the model folder as
    # `saescope synth --family gemma3` writes it, transcoders in Gemma Scope 2's layout.
    which.add_argument("--scope-transcoders")
    # Gemma 2 through the nnsight backend, transcoders in the first Gemma Scope's layout.
    which.add_argument("--npz-transcoders")
    ap.add_argument("--prompt", required=True)
    # None is circuit-tracer's own "every active feature" (attribute() takes min(None or nnz, nnz)).
    ap.add_argument("--max-feature-nodes", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=512)
    # attribute()'s defaults: logits kept until their cumulative probability reaches 0.95, at most 10.
    ap.add_argument("--max-n-logits", type=int, default=10)
    ap.add_argument("--desired-logit-prob", type=float, default=0.95)
    # prune_graph's and create_graph_files's defaults.
    ap.add_argument("--node-threshold", type=float, default=0.8)
    ap.add_argument("--edge-threshold", type=float, default=0.98)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    # circuit-tracer's feature_intervention on the same prompt, for interventions' test:
    # three active features (the first, middle and last in its order) set to 0, 0 and twice
    # their activation, with attention frozen and free.
    ap.add_argument("--intervene", action="store_true")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()

    with open(os.path.join(a.model_dir, "config.json")) as f:
        model_type = json.load(f).get("model_type", "gpt2")
    # Every family but GPT-2 through circuit-tracer's nnsight backend, on HF's own modules.
    gemma = bool(a.scope_transcoders) or model_type != "gpt2"
    if a.saelens_transcoders:
        scratch = tempfile.mkdtemp(prefix="saescope-ct-")
        a.transcoders = os.path.join(scratch, os.path.basename(os.path.normpath(a.saelens_transcoders)))
        convert_saelens(a.saelens_transcoders, a.transcoders)
    if a.npz_transcoders:
        scratch = tempfile.mkdtemp(prefix="saescope-ct-")
        a.transcoders = os.path.join(scratch, os.path.basename(os.path.normpath(a.npz_transcoders)))
        convert_npz(a.npz_transcoders, a.transcoders)
    if a.scope_transcoders:
        scratch = tempfile.mkdtemp(prefix="saescope-ct-")
        a.transcoders = os.path.join(scratch, os.path.basename(os.path.normpath(a.scope_transcoders)))
        convert_scope(a.scope_transcoders, a.transcoders)
    tc_dir = os.path.abspath(a.transcoders)
    if not os.path.isfile(os.path.join(tc_dir, "config.yaml")):
        sys.exit(f"reference_graph: {tc_dir} has no config.yaml (circuit-tracer's transcoder layout)")
    name = os.path.basename(tc_dir)
    if name in ("gemma", "llama"):
        # circuit-tracer rewrites these two names to hub repos before looking in its cache.
        sys.exit(f"reference_graph: rename {tc_dir}: circuit-tracer treats '{name}' as a hub alias")

    if a.device == "cpu":
        # circuit-tracer picks CUDA by itself wherever it is visible (create_graph_files,
        # compute_partial_influences); hiding it keeps every step on the CPU, as asked.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    if gemma:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
    else:
        go_offline(a.model_dir)
    # circuit-tracer's cache is its local transcoder store: pointing it at the folder's
    # parent makes the hub reference `name` resolve to the folder, with no download, through
    # the same load_transcoder_from_hub -> load_transcoders_from_cache path the hub uses.
    os.environ["CIRCUIT_TRACER_CACHE_DIR"] = os.path.dirname(tc_dir)

    import torch
    from circuit_tracer import attribute
    from circuit_tracer.utils.caching import is_cached

    # circuit-tracer's attribution seeds backward() at module outputs whose inputs carry no
    # grad, by design; torch warns about it on every run, and the warning means nothing here.
    warnings.filterwarnings("ignore", message="Full backward hook is firing")

    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    assert is_cached(name), f"circuit-tracer does not see {tc_dir} as a cached transcoder set"

    t_load = time.time()
    if gemma:
        model, tokens = gemma_model(a, name, device)
    else:
        model, tokens = gpt2_model(a, name, device)
    t_attr = time.time()
    graph = attribute(
        tokens if gemma else a.prompt,
        model,
        max_n_logits=a.max_n_logits,
        desired_logit_prob=a.desired_logit_prob,
        batch_size=a.batch_size,
        max_feature_nodes=a.max_feature_nodes,
    )
    finish(a, model, graph, name, device, tc_dir, gemma, t_load, t_attr)


def gemma_model(a, name, device):
    """circuit-tracer's nnsight ReplacementModel on a local folder of a family it maps (Gemma
    3, Qwen 3, Llama), and the prompt's tokens after a first token (the folder has
    tokenizer.json alone, which transformers' auto classes do not open: its tokenizer is built
    from that file; the first token is the config's BOS, else its pad, else its EOS, the
    order of circuit-tracer's ensure_tokenized)."""
    import torch
    from circuit_tracer.replacement_model.replacement_model_nnsight import NNSightReplacementModel
    from circuit_tracer.utils.hf_utils import load_transcoder_from_hub
    from transformers import PreTrainedTokenizerFast

    with open(os.path.join(a.model_dir, "config.json")) as f:
        c = json.load(f)
    bos = next(t for t in (c.get("bos_token_id"), c.get("pad_token_id"), c.get("eos_token_id")) if t is not None)
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(a.model_dir, "tokenizer.json"))
    transcoders, _ = load_transcoder_from_hub(name, device=device, dtype=torch.float32)
    model = NNSightReplacementModel.from_pretrained_and_transcoders(a.model_dir, transcoders, device=device, dtype=torch.float32)
    tokens = torch.tensor([bos] + tok(a.prompt, add_special_tokens=False).input_ids)
    return model, tokens


def gpt2_model(a, name, device):
    """circuit-tracer's TransformerLens ReplacementModel on a local GPT-2 folder."""
    import torch
    from circuit_tracer import ReplacementModel
    from transformers import GPT2LMHeadModel, GPT2TokenizerFast

    hf = GPT2LMHeadModel.from_pretrained(a.model_dir, local_files_only=True)
    # By name, from the fake cache (as TL would reload it). The folder has no
    # tokenizer_config.json, so GPT2TokenizerFast's own defaults make <|endoftext|> (50256)
    # the BOS, which circuit-tracer's ensure_tokenized prepends to every prompt.
    tok = GPT2TokenizerFast.from_pretrained("gpt2")
    # ReplacementModel.from_pretrained is circuit-tracer's front door: it loads the
    # transcoders (lazy decoder, eager encoder by default) and then calls
    # HookedTransformer.from_pretrained("gpt2", fold_ln=False, center_writing_weights=False,
    # center_unembed=False, **kwargs); hf_model/tokenizer ride in kwargs so TL converts this
    # folder's weights instead of downloading gpt2's. fold_value_biases stays TL's default (on).
    model = ReplacementModel.from_pretrained(
        "gpt2", name, backend="transformerlens", device=device, dtype=torch.float32, hf_model=hf, tokenizer=tok
    )
    return model, None


def finish(a, model, graph, name, device, tc_dir, gemma, t_load, t_attr) -> None:
    """Prunes, scores and writes the graph (and the interventions, when asked)."""
    import torch
    from circuit_tracer.graph import compute_graph_scores, prune_graph
    from circuit_tracer.utils.create_graph_files import create_graph_files

    t_prune = time.time()
    graph.to("cpu")
    node_mask, edge_mask, cumulative_scores = prune_graph(graph, a.node_threshold, a.edge_threshold)
    replacement_score, completeness_score = compute_graph_scores(graph)
    # create_graph_files prunes again (same function, same thresholds) and writes
    # <slug>.json plus graph-metadata.json into a folder; we keep the former verbatim.
    graph_json = None
    if not gemma:
        # create_graph_files decodes tokens with AutoTokenizer by the model's name, which a
        # local Gemma folder of tokenizer.json alone does not give.
        with tempfile.TemporaryDirectory(prefix="saescope-graph-") as d:
            create_graph_files(graph, slug="graph", output_path=d, node_threshold=a.node_threshold, edge_threshold=a.edge_threshold)
            with open(os.path.join(d, "graph.json")) as f:
                graph_json = json.load(f)
    t_done = time.time()

    adj = graph.adjacency_matrix.cpu()
    rows, cols = adj.nonzero(as_tuple=True)
    vals = adj[rows, cols]
    out = {
        "prompt": a.prompt,
        "input_tokens": graph.input_tokens.cpu().tolist(),
        "logit_tokens": graph.logit_token_ids.cpu().tolist(),
        "logit_probabilities": graph.logit_probabilities.cpu().tolist(),
        "active_features": graph.active_features.cpu().tolist(),
        "activation_values": graph.activation_values.cpu().tolist(),
        "selected_features": graph.selected_features.cpu().tolist(),
        "n_layers": graph.cfg.n_layers,
        "n_pos": graph.n_pos,
        "adjacency": {
            "shape": list(adj.shape),
            "entries": [[r, c, float(f"{v:.8g}")] for r, c, v in zip(rows.tolist(), cols.tolist(), vals.tolist())],
        },
        "node_mask": node_mask.nonzero().flatten().tolist(),
        "edge_mask": edge_mask.nonzero().tolist(),
        "cumulative_scores": cumulative_scores.tolist(),
        "replacement_score": replacement_score,
        "completeness_score": completeness_score,
        "graph_json": graph_json,
        "reference": versions(),
        "settings": {
            "model_dir": a.model_dir, "transcoders": tc_dir, "scan": graph.scan,
            # The nnsight model names its hooks by HF module (feature_input_locs) instead.
            "feature_input_hook": getattr(model, "feature_input_hook", "mlp.hook_in"),
            "feature_output_hook": getattr(model, "original_feature_output_hook", "hook_mlp_out"),
            "skip_connection": bool(getattr(model, "skip_transcoder", False)),
            "backend": "nnsight" if gemma else "transformerlens", "max_feature_nodes": a.max_feature_nodes,
            "batch_size": a.batch_size, "max_n_logits": a.max_n_logits, "desired_logit_prob": a.desired_logit_prob,
            "node_threshold": a.node_threshold, "edge_threshold": a.edge_threshold, "device": a.device,
        },
        "timing": {"import_s": t_load - T0, "load_s": t_attr - t_load, "attribute_s": t_prune - t_attr, "prune_score_write_s": t_done - t_prune},
    }
    if a.intervene:
        af, av = graph.active_features.cpu(), graph.activation_values.cpu()
        picks = [0, len(af) // 2, len(af) - 1]
        ivs = [(int(af[i][0]), int(af[i][1]), int(af[i][2]), v) for i, v in zip(picks, [0.0, 0.0, 2.0 * float(av[picks[2]])])]
        tokens = graph.input_tokens.to(device)
        with torch.no_grad():
            clean = model(tokens.unsqueeze(0))[0, -1].float().cpu()
        top = torch.topk(clean, 20).indices
        result = {"interventions": [list(i) for i in ivs], "token_ids": top.tolist(), "clean": clean[top].tolist()}
        for name, freeze in [("frozen", True), ("free", False)]:
            logits, _ = model.feature_intervention(tokens, ivs, freeze_attention=freeze, return_activations=False)
            result[name] = logits.reshape(-1, logits.shape[-1])[-1].float().cpu()[top].tolist()
        out["intervention"] = result
    with open(a.output, "w") as f:
        json.dump(out, f)
    print(
        f"wrote {a.output}: {len(out['active_features'])} active features, {len(out['selected_features'])} selected, "
        f"{len(out['logit_tokens'])} logits, {len(out['adjacency']['entries'])} edges; attribute {t_prune - t_attr:.2f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
