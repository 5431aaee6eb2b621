"""The Python reference: TransformerLens + SAELens on saescope's weight folders.

Computes exactly what the GPT-2 small SAE study's notebook did (docs/method.md, "Method"): HookedTransformer.from_pretrained
("gpt2") with default weight processing, SAE.load_from_disk, encode every token at
blocks.L.hook_resid_pre, mean over the text's real tokens (BOS excluded unless asked),
then category means, top-k, Peak, Sum, Top5 share, Gini and specialist scores.
It writes JSON in the schema of `saescope report --format json`, plus each text's token ids.

    python scripts/reference.py --model-dir DIR/model --sae-dir DIR/saes --samples F \
        --layers 6,8,10,11 [--include-bos] [--threads N] -o out.json

With --saes SPEC.json instead of --layers: any SAEs at any hooks, each a SAELens folder
under --sae-dir, as a list of {"folder", "hook", "center_writing_weights",
"norm_scaling_factor"} in saescope's order: every hook is read from a HookedTransformer
loaded with that SAE's processing, and a norm_scaling_factor is folded in as
SAE.from_pretrained folds its registry's (only where the cfg says expected_average_only_in).

Used by scripts/gen-fixtures (committed test fixtures) and scripts/compare-python.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import tomllib

T0 = time.time()


def offline_gpt2_cache(model_dir: str) -> str:
    """An HF cache whose openai-community/gpt2 is the given folder's config and tokenizer:
    TL's from_pretrained("gpt2") reads the hub config even when handed hf_model, and
    reloads the tokenizer by name."""
    home = tempfile.mkdtemp(prefix="saescope-hf-")
    for repo in ("models--openai-community--gpt2", "models--gpt2"):
        snap = os.path.join(home, "hub", repo, "snapshots", "0" * 40)
        os.makedirs(snap)
        for name in ("config.json", "tokenizer.json"):
            shutil.copy(os.path.join(model_dir, name), snap)
        os.makedirs(os.path.join(home, "hub", repo, "refs"))
        with open(os.path.join(home, "hub", repo, "refs", "main"), "w") as f:
            f.write("0" * 40)
    return home


def gemma_scope_sae(root: str, folder: str):
    """The Gemma Scope SAE in `folder` of the repo copy at `root`, as SAE.from_pretrained
    builds it: SAELens's own gemma_3 loader, its hub downloads answered by these files.
    Returns (SAE, the loader's cfg dict)."""
    import sae_lens.loading.pretrained_sae_loaders as loaders
    from sae_lens import SAE
    from safetensors import safe_open

    def download(repo_id, filename, subfolder=None, **kw):
        return os.path.join(root, subfolder, filename) if subfolder else os.path.join(root, filename)

    def shapes(repo_id, filename):
        with safe_open(os.path.join(root, filename), framework="pt") as f:
            return {k: list(f.get_slice(k).get_shape()) for k in f.keys()}

    loaders.hf_hub_download = download
    loaders.get_safetensors_tensor_shapes = shapes
    cfg, state, _ = loaders.gemma_3_sae_huggingface_loader("google/gemma-scope-2-270m-pt", folder)
    sae = SAE.from_dict(cfg)
    sae.load_state_dict(state)
    return sae, cfg


def table(t, digits: int = 8):
    """A 2-D tensor as rows of floats rounded to `digits` significant digits (fixtures)."""
    return [[float(f"{v:.{digits}g}") for v in row] for row in t.tolist()]


def hf_reference(out: str, model, tokens, catches, **extra) -> None:
    """HF `model`'s forward on `tokens` as out/reference.json: the tokens, every hidden state
    (`output_hidden_states`), the logits and, per layer, the values `catches` names: (the
    layer's module by attribute path, "input" or "output", TL's hook name after
    `blocks.L.`), caught with forward hooks; `extra` keys beside them."""
    import torch

    caught = {}
    # Most families keep their blocks at model.model.layers; GPT-NeoX at model.gpt_neox.layers,
    # a multimodal Gemma 3 at model.model.language_model.layers.
    body = model.model if hasattr(model, "model") else model.gpt_neox
    body = getattr(body, "language_model", body)
    for i, layer in enumerate(body.layers):
        for path, side, hook in catches:
            module = layer
            for part in path.split("."):
                module = getattr(module, part)
            name = f"blocks.{i}.{hook}"
            if side == "input":
                module.register_forward_pre_hook(lambda m, a, name=name: caught.__setitem__(name, a[0][0]))
            else:
                module.register_forward_hook(lambda m, a, o, name=name: caught.__setitem__(name, o[0]))
    o = model(torch.tensor([tokens]), output_hidden_states=True)
    ref = {"tokens": tokens, **extra, "hidden_states": [table(h[0]) for h in o.hidden_states], "logits": table(o.logits[0]),
           "hooks": {k: table(t) for k, t in sorted(caught.items())}}
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f)


def write_tl_reference(out: str, arch: str, tokens, got: dict, logits, pairs) -> None:
    """Exits unless every (name, TL's, HF's) of `pairs` agrees within 1e-4 of HF's scale, so
    tl.json is known to describe HF's model; then writes out/tl.json: the tokens, TL's hooks
    `got` and its `logits`."""
    diffs = []
    for name, a, b in pairs:
        assert a.shape == b.shape, (name, a.shape, b.shape)
        diffs.append((float((a.float() - b.float()).abs().max()) / max(float(b.abs().max()), 1.0), name))
    worst, worst_name = max(diffs)
    print(f"{arch}: TL vs HF: {len(pairs)} tensors, worst {worst:.3e} of scale ({worst_name})", file=sys.stderr)
    if worst > 1e-4:
        for rel, name in diffs:
            if rel > 1e-4:
                print(f"  {name}: {rel:.3e}", file=sys.stderr)
        print("TL and HF disagree: tl.json would not describe HF's model", file=sys.stderr)
        sys.exit(1)
    res = {"tokens": tokens, "hooks": {k: table(v, 7) for k, v in sorted(got.items())}, "logits": table(logits, 7)}
    path = os.path.join(out, "tl.json")
    with open(path, "w") as f:
        json.dump(res, f, separators=(",", ":"))
    print(f"wrote {path}, {os.path.getsize(path)} bytes", file=sys.stderr)


def tl_block_hooks(cache, n: int) -> dict:
    """TL's cached block hooks of layers 0..n as fixtures hold them: resid_pre, resid_post,
    attn.hook_z with the heads side by side, hook_attn_out and hook_mlp_out."""
    got = {}
    for l in range(n):
        got[f"blocks.{l}.hook_resid_pre"] = cache[f"blocks.{l}.hook_resid_pre"][0]
        got[f"blocks.{l}.hook_resid_post"] = cache[f"blocks.{l}.hook_resid_post"][0]
        z = cache[f"blocks.{l}.attn.hook_z"][0]
        got[f"blocks.{l}.attn.hook_z"] = z.reshape(z.shape[0], -1)
        got[f"blocks.{l}.hook_attn_out"] = cache[f"blocks.{l}.hook_attn_out"][0]
        got[f"blocks.{l}.hook_mlp_out"] = cache[f"blocks.{l}.hook_mlp_out"][0]
    return got


def gemma3_tl(model_dir: str, hf, c: dict):
    """TransformerLens's HookedTransformer of the Gemma 3 in `model_dir` (config dict `c`),
    built without the hub: the config is TL's own for google/gemma-3-270m (the dict that
    transformer_lens.loading_from_pretrained.convert_hf_model_config builds for that name,
    from TL's hardcoded table) with the sizes of `c` put in, and the weights are the HF
    model `hf`'s, converted by TL's convert_gemma_weights and loaded unprocessed (no folding
    or centring; from_pretrained_no_processing, as Gemma Scope users load Gemma), so every
    hook holds the raw value Gemma Scope 2 was trained on. Returns (model, cfg)."""
    import torch
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.loading_from_pretrained import convert_hf_model_config
    from transformer_lens.pretrained.weight_conversions.gemma import convert_gemma_weights

    # TL's Gemma 3 270M architecture (qk-norm, local/global rotary bases, sliding window,
    # norms before and after each sublayer, gated gelu_pytorch_tanh MLP, RMS, one KV head),
    # with this model's sizes. The same finishing steps as get_pretrained_model_config.
    d = convert_hf_model_config("google/gemma-3-270m")
    assert d["original_architecture"] == "Gemma3ForCausalLM" and d["use_qk_norm"] and d["use_local_attn"], d
    rope = c["rope_parameters"]
    layer_kind = {"sliding_attention": "local", "full_attention": "global"}
    d.update(
        d_model=c["hidden_size"],
        d_head=c["head_dim"],
        n_heads=c["num_attention_heads"],
        n_key_value_heads=c["num_key_value_heads"],
        d_mlp=c["intermediate_size"],
        n_layers=c["num_hidden_layers"],
        n_ctx=c["max_position_embeddings"],
        d_vocab=c["vocab_size"],
        eps=c["rms_norm_eps"],
        window_size=c["sliding_window"],
        attn_types=[layer_kind[t] for t in c["layer_types"]],
        rotary_base=rope["full_attention"]["rope_theta"],
        rotary_base_local=rope["sliding_attention"]["rope_theta"],
        # TL's 270M entry leaves attn_scale to its default sqrt(d_head), which is HF's
        # sqrt(query_pre_attn_scalar) there (both 256); said outright, it holds for any size.
        attn_scale=c["query_pre_attn_scalar"] ** 0.5,
        model_name=os.path.basename(os.path.normpath(model_dir)),
        tokenizer_name=None,  # token ids go in; no tokenizer to fetch
        init_weights=False,
        dtype=torch.float32,
        device="cpu",
        n_devices=1,
        from_checkpoint=False,
        default_prepend_bos=True,
    )
    assert c["hidden_activation"] == d["act_fn"] and c["tie_word_embeddings"]
    assert c["attn_logit_softcapping"] is None and c["final_logit_softcapping"] is None
    assert d.get("attn_scores_soft_cap", -1.0) <= 0 and d.get("output_logits_soft_cap", -1.0) <= 0
    cfg = HookedTransformerConfig.from_dict(d)
    tl = HookedTransformer(cfg)
    tl.load_and_process_state_dict(
        convert_gemma_weights(hf, cfg), fold_ln=False, center_writing_weights=False, center_unembed=False, fold_value_biases=False
    )
    tl.eval()
    return tl, cfg


def folder_tl(hf, processed: bool = True):
    """TransformerLens's HookedTransformer of the HF model `hf` loaded from a local folder
    (GPT-NeoX, Llama or Qwen 3): TL's own config of that folder and its weight conversion,
    under from_pretrained's default processing (fold_ln, center_writing_weights,
    center_unembed, fold_value_biases) unless `processed` is False. For the RMSNorm families
    without biases that processing changes no hook saescope reads. Returns (model, cfg)."""
    import torch
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.loading_from_pretrained import convert_hf_model_config
    from transformer_lens.pretrained.weight_conversions.llama import convert_llama_weights
    from transformer_lens.pretrained.weight_conversions.neox import convert_neox_weights
    from transformer_lens.pretrained.weight_conversions.qwen3 import convert_qwen3_weights

    with tempfile.TemporaryDirectory() as tmp:
        # A copy whose name TL's name-based branches do not take for a hub model.
        copy = os.path.join(tmp, "tiny_model")
        os.makedirs(copy)
        hf.config.save_pretrained(copy)
        d = convert_hf_model_config(copy)
    d.update(model_name="tiny", tokenizer_name=None, init_weights=False, dtype=torch.float32, device="cpu", n_devices=1,
             from_checkpoint=False, default_prepend_bos=True)
    cfg = HookedTransformerConfig.from_dict(d)
    tl = HookedTransformer(cfg)
    convert = {"GPTNeoXForCausalLM": convert_neox_weights, "LlamaForCausalLM": convert_llama_weights,
               "Qwen3ForCausalLM": convert_qwen3_weights}[d["original_architecture"]]
    tl.load_and_process_state_dict(convert(hf, cfg), fold_ln=processed, center_writing_weights=processed,
                                   center_unembed=processed, fold_value_biases=processed)
    tl.eval()
    return tl, cfg


def gemma2_tl_state(hf):
    """TransformerLens's config and converted weights of the HF Gemma 2 `hf`: TL knows
    Gemma 2 by name only, so its google/gemma-2-2b architecture (a table, no download) with
    this model's sizes (from transformers' config, which fills in what the hub's config.json
    leaves out, such as layer_types), as gemma3_tl does for Gemma 3; the weights by TL's own
    convert_gemma_weights (views of hf's). Returns (cfg, state); `tl_from_state` loads them."""
    import torch
    from transformer_lens import HookedTransformerConfig
    from transformer_lens.loading_from_pretrained import convert_hf_model_config
    from transformer_lens.pretrained.weight_conversions.gemma import convert_gemma_weights

    c = hf.config
    d = convert_hf_model_config("google/gemma-2-2b")
    layer_kind = {"sliding_attention": "local", "full_attention": "global"}
    d.update(d_model=c.hidden_size, d_head=c.head_dim, n_heads=c.num_attention_heads, n_key_value_heads=c.num_key_value_heads,
             d_mlp=c.intermediate_size, n_layers=c.num_hidden_layers, n_ctx=c.max_position_embeddings, d_vocab=c.vocab_size,
             eps=c.rms_norm_eps, window_size=c.sliding_window, attn_types=[layer_kind[t] for t in c.layer_types],
             rotary_base=c.rope_parameters["rope_theta"], attn_scale=c.query_pre_attn_scalar ** 0.5,
             attn_scores_soft_cap=c.attn_logit_softcapping, output_logits_soft_cap=c.final_logit_softcapping)
    d.update(model_name="tiny", tokenizer_name=None, init_weights=False, dtype=torch.float32, device="cpu", n_devices=1,
             from_checkpoint=False, default_prepend_bos=True)
    cfg = HookedTransformerConfig.from_dict(d)
    return cfg, convert_gemma_weights(hf, cfg)


def tl_from_state(cfg, state):
    """A HookedTransformer of `cfg` with TL-format weights `state`, unprocessed (what
    `from_pretrained_no_processing` gives). TL loads and drops one key at a time, so a caller
    that holds no other reference to the HF model frees it as TL's copy fills: the peak is
    about one copy of the weights, not two (Gemma 2 2B's 10.5 GB in f32)."""
    from transformer_lens import HookedTransformer

    tl = HookedTransformer(cfg)
    tl.load_and_process_state_dict(state, fold_ln=False, center_writing_weights=False, center_unembed=False, fold_value_biases=False)
    tl.eval()
    return tl


def go_offline(model_dir: str) -> None:
    """Before transformers is imported: it reads these at import time."""
    os.environ["HF_HOME"] = offline_gpt2_cache(model_dir)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def load_stack(model_dir: str, sae_dir: str, layers):
    """HookedTransformer (default processing) on the folder's GPT-2, and SAELens SAEs per
    layer; returns (model, {layer: SAE}, hook name of a layer)."""
    from sae_lens import SAE
    from transformer_lens import HookedTransformer
    from transformers import GPT2LMHeadModel, GPT2TokenizerFast

    hf = GPT2LMHeadModel.from_pretrained(model_dir, local_files_only=True)
    tok = GPT2TokenizerFast.from_pretrained("gpt2")
    model = HookedTransformer.from_pretrained("gpt2", hf_model=hf, tokenizer=tok, device="cpu")
    n_layers = model.cfg.n_layers
    hook = lambda l: f"blocks.{l}.hook_resid_pre" if l < n_layers else f"blocks.{n_layers - 1}.hook_resid_post"
    saes = {l: SAE.load_from_disk(os.path.join(sae_dir, hook(l)), device="cpu") for l in layers}
    return model, saes, hook


def load_mixed(model_dir: str, sae_dir: str, spec):
    """HookedTransformers per processing the SAEs ask for, and each SAE of `spec` loaded
    as SAE.from_pretrained would; returns ({center: model}, [(SAE, hook, center)])."""
    from sae_lens import SAE
    from transformer_lens import HookedTransformer
    from transformers import GPT2LMHeadModel, GPT2TokenizerFast

    tok = GPT2TokenizerFast.from_pretrained("gpt2")
    models, saes = {}, []
    for s in spec:
        center = bool(s["center_writing_weights"])
        if center not in models:
            hf = GPT2LMHeadModel.from_pretrained(model_dir, local_files_only=True)
            models[center] = HookedTransformer.from_pretrained("gpt2", hf_model=hf, tokenizer=tok, device="cpu", center_writing_weights=center)
        sae = SAE.load_from_disk(os.path.join(sae_dir, s["folder"]), device="cpu")
        with open(os.path.join(sae_dir, s["folder"], "cfg.json")) as f:
            scaled = json.load(f).get("normalize_activations") == "expected_average_only_in"
        if s.get("norm_scaling_factor") is not None and scaled:
            sae.fold_activation_norm_scaling_factor(s["norm_scaling_factor"])
        saes.append((sae, s["hook"], center))
    return models, saes


def topk(v, k):
    vals, idx = v.topk(min(k, int((v > 0).sum())))
    return [(int(i), float(x)) for i, x in zip(idx, vals)]


def report_args(ap, sae_dir_help: str):
    """The options every report script takes (reference_gemma_report.py,
    reference_family_report.py): the model, the SAE folders, the samples, the report's
    top-k and threshold, the thread count and the output."""
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--sae-dir", required=True, help=sae_dir_help)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--saes", required=True, help="comma list of SAE folders in --sae-dir")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--threshold", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("-o", "--output", required=True)


def report_setup(a):
    """What every report script does first: offline, the thread count, no gradients; returns
    the samples' categories."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    with open(a.samples, "rb") as f:
        return tomllib.load(f)["category"]


def write_report(a, cats, texts, layers, times, **extra) -> None:
    """A report script's output (`a.output`): the per-category report of `texts` (one vector
    per SAE, in `layers`' order), `extra` keys, and `times` (start, load start, compute start,
    compute end) as its timing."""
    t0, t_load, t_compute, t_done = times
    out = {
        "categories": report_categories(cats, texts, list(range(len(layers))), layers, a.top_k, a.threshold),
        **extra,
        "timing": {"import_and_load_s": t_compute - t0, "load_s": t_compute - t_load, "compute_s": t_done - t_compute},
    }
    with open(a.output, "w") as f:
        json.dump(out, f)
    print(f"wrote {a.output}: {len(texts)} texts, compute {t_done - t_compute:.2f} s", file=sys.stderr)


def report_categories(cats, texts, keys, layers, top_k, threshold):
    """The study's per-category report from per-text mean vectors: texts are (category
    index, text, tokens, {key: vector}), `keys` index the vectors and `layers` name them."""
    import torch

    out_cats = []
    for ci, c in enumerate(cats):
        out_layers = []
        for l, layer in zip(keys, layers):
            above = {}  # feature -> per-category count of texts with v_f >= threshold
            for tci, _, _, vecs in texts:
                for f in (vecs[l] >= threshold).nonzero().flatten().tolist():
                    above.setdefault(f, [0] * len(cats))[tci] += 1
            spec = lambda f: above.get(f, [0] * len(cats))[ci] - (sum(above.get(f, [0] * len(cats))) - above.get(f, [0] * len(cats))[ci])
            cvec = torch.stack([vecs[l] for tci, _, _, vecs in texts if tci == ci]).mean(0)
            top = topk(cvec, top_k)
            vals = sorted(x for _, x in top)
            n, s = len(vals), sum(vals)
            gini = (2 * sum((i + 1) * x for i, x in enumerate(vals)) / (n * s) - (n + 1) / n) if n and s > 0 else 0.0
            out_layers.append({
                "layer": layer, "peak": top[0][1] if top else 0.0, "gini": gini, "top_sum": s,
                "top_share": s / float(cvec.sum()) if float(cvec.sum()) > 0 else 0.0,
                "spec": max((spec(f) for f, _ in top), default=0),
                "top": [{"feature": f, "activation": x, "specialist": spec(f)} for f, x in top],
            })
        out_cats.append({"name": c["name"], "n_texts": len(c["texts"]), "layers": out_layers})
    return out_cats


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--sae-dir", required=True)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--layers", default="6,8,10,11")
    ap.add_argument("--saes", help="JSON list of SAEs at any hooks (see the module's doc)")
    ap.add_argument("--include-bos", action="store_true")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--threshold", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()

    go_offline(a.model_dir)
    import torch
    # Imported before the timer starts, as before: load_s times loading, not imports.
    import sae_lens, transformer_lens, transformers  # noqa: F401,E401

    if a.threads:
        torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    with open(a.samples, "rb") as f:
        cats = tomllib.load(f)["category"]
    first = 0 if a.include_bos else 1

    t_load = time.time()
    texts = []  # (category index, text, tokens, {key: vector}); keys index `layers`
    if a.saes:
        with open(a.saes) as f:
            spec = json.load(f)
        models, saes = load_mixed(a.model_dir, a.sae_dir, spec)
        # Each SAE's block, for the report's "layer" (its "hook" says the rest).
        layers = [int(h.split(".")[1]) for _, h, _ in saes]
        keys = list(range(len(saes)))
        t_compute = time.time()
        for ci, c in enumerate(cats):
            for text in c["texts"]:
                toks = next(iter(models.values())).to_tokens(text)
                caches = {center: m.run_with_cache(toks, names_filter=sorted({h for _, h, cc in saes if cc == center}))[1] for center, m in models.items()}
                vecs = {}
                for i, (sae, h, center) in enumerate(saes):
                    x = caches[center][h][0]
                    if x.dim() == 3:  # hook_z: [pos, head, d_head], heads concatenated as SAELens reshapes it
                        x = x.flatten(-2)
                    vecs[i] = sae.encode(x)[first:].mean(0)
                texts.append((ci, text, toks[0].tolist(), vecs))
    else:
        layers = [int(x) for x in a.layers.split(",")]
        keys = layers
        model, saes, hook = load_stack(a.model_dir, a.sae_dir, layers)
        t_compute = time.time()
        for ci, c in enumerate(cats):
            for text in c["texts"]:
                toks = model.to_tokens(text)  # BOS prepended, as the notebook did
                _, cache = model.run_with_cache(toks, names_filter=[hook(l) for l in layers])
                vecs = {l: saes[l].encode(cache[hook(l)][0])[first:].mean(0) for l in layers}
                texts.append((ci, text, toks[0].tolist(), vecs))
    t_done = time.time()

    out_cats = report_categories(cats, texts, keys, layers, a.top_k, a.threshold)

    out = {
        "model": a.model_dir, "sae_release": a.sae_dir, "layers": layers, "include_bos": a.include_bos,
        "top_k": a.top_k, "threshold": a.threshold, "categories": out_cats,
        "texts": [{
            "category": cats[ci]["name"], "text": text, "tokens": toks, "n_tokens": len(toks) - (0 if a.include_bos else 1),
            "layers": [{"layer": layer, "total": float(vecs[l].sum()),
                        "top": [{"feature": f, "activation": x} for f, x in topk(vecs[l], 32)]} for l, layer in zip(keys, layers)],
        } for ci, text, toks, vecs in texts],
        "timing": {"import_and_load_s": t_compute - T0, "load_s": t_compute - t_load, "compute_s": t_done - t_compute},
        "versions": {"torch": torch.__version__, "transformer_lens": __import__("transformer_lens").__version__ if hasattr(__import__("transformer_lens"), "__version__") else "?",
                     "sae_lens": __import__("sae_lens").__version__},
    }
    with open(a.output, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {a.output}: {len(texts)} texts, compute {t_done - t_compute:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
