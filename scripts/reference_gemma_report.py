"""The study's report on a Gemma 3 model with Gemma Scope 2 SAEs, computed by the Python
stack, and SAELens's own gemma_3 loader and encode on each SAE folder. What `saescope
report` computes; scripts/bench-vs-python times the two against each other. The model runs
one text at a time, as the study's notebook does, in one of two stacks:

- `--stack tl` (the issue's reference): TransformerLens's HookedTransformer on the HF
  weights (reference.gemma3_tl), `run_with_cache` with a names_filter.
- `--stack hf`: HF transformers' Gemma3ForCausalLM with forward hooks.

Both run the whole forward and its 262k-wide logits, as the notebook (and
scripts/reference.py for GPT-2) does, unless `--stop-early`: then no layer past the deepest
hooked one runs and no logits are made (TL's stop_at_layer; HF stopped by a hook), as
saescope runs: Python's best case.

    python scripts/reference_gemma_report.py --model-dir DIR/model --sae-dir DIR/saes \\
        --samples samples/default.toml --saes resid_post/layer_5_width_16k_l0_medium,... \\
        [--stack tl|hf] [--stop-early] -o out.json
"""
import argparse
import json
import os
import time

T0 = time.time()

from reference import gemma3_tl, gemma_scope_sae, report_args, report_setup, write_report  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    report_args(ap, "the Gemma Scope repo's folder (resid_post/, mlp_out/, attn_out/)")
    ap.add_argument("--stack", choices=["tl", "hf"], default="tl")
    ap.add_argument("--stop-early", action="store_true", help="no layer past the deepest hooked one, no logits")
    a = ap.parse_args()
    cats = report_setup(a)
    import torch
    from tokenizers import Tokenizer
    from transformers import Gemma3ForCausalLM

    t_load = time.time()
    model = Gemma3ForCausalLM.from_pretrained(a.model_dir, torch_dtype=torch.float32).eval()
    if a.stack == "tl":
        with open(os.path.join(a.model_dir, "config.json")) as f:
            model, _ = gemma3_tl(a.model_dir, model, json.load(f))
    tok = Tokenizer.from_file(os.path.join(a.model_dir, "tokenizer.json"))
    bos = tok.token_to_id("<bos>")

    saes = []
    for folder in a.saes.split(","):
        sae, _ = gemma_scope_sae(a.sae_dir, folder)
        site, layer = folder.split("/")[0], int(folder.split("/")[1].split("_")[1])
        saes.append((sae, site, layer))
    deepest = max(l for _, _, l in saes)
    tl_hook = {"resid_post": "hook_resid_post", "mlp_out": "hook_mlp_out", "attn_out": "attn.hook_z"}
    names = [f"blocks.{l}.{tl_hook[site]}" for _, site, l in saes]
    caught = {}
    if a.stack == "hf":
        for sae, site, l in saes:
            layer = model.model.layers[l]
            if site == "resid_post":
                layer.register_forward_hook(lambda m, i, o, k=(site, l): caught.__setitem__(k, (o[0] if isinstance(o, tuple) else o)[0]))
            elif site == "mlp_out":
                layer.post_feedforward_layernorm.register_forward_hook(lambda m, i, o, k=(site, l): caught.__setitem__(k, o[0]))
            else:
                layer.self_attn.o_proj.register_forward_pre_hook(lambda m, i, k=(site, l): caught.__setitem__(k, i[0][0]))

        def stop(m, i, o):
            raise StopIteration  # no layer past the deepest hook, no logits, as saescope runs

        if a.stop_early:
            model.model.layers[deepest].register_forward_hook(stop)
    t_compute = time.time()
    texts = []
    for ci, c in enumerate(cats):
        for text in c["texts"]:
            ids = [bos] + tok.encode(text, add_special_tokens=False).ids
            if a.stack == "tl":
                _, cache = model.run_with_cache(torch.tensor([ids]), names_filter=names, stop_at_layer=deepest + 1 if a.stop_early else None)
                acts = [cache[name][0].flatten(1) for name in names]
            else:
                caught.clear()
                try:
                    model(torch.tensor([ids]))
                except StopIteration:
                    pass
                acts = [caught[(site, l)] for _, site, l in saes]
            vecs = {i: sae.encode(x)[1:].mean(0) for i, ((sae, _, _), x) in enumerate(zip(saes, acts))}
            texts.append((ci, text, ids, vecs))
    write_report(a, cats, texts, [l for _, _, l in saes], (T0, t_load, t_compute, time.time()), stack=a.stack, stop_early=a.stop_early)


if __name__ == "__main__":
    main()
