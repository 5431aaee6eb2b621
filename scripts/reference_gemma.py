"""A tiny Gemma 3 run in the hub's layouts and the Python stack's answers on it
(tests/gemma_run.rs; fixture tests/fixtures/gemma_run/):
- `model/`: a seeded Gemma3ForCausalLM of 10 layers (layer 5 global, the rest sliding with
  a window of 8), 2 query heads of 32 over 1 key-value head, saved as the hub ships Gemma 3
  (config.json `gemma3_text`, model.safetensors), and a tokenizer.json of Gemma's kind (BPE
  with byte fallback, spaces as U+2581, `<bos>` id 2) trained on the reference samples;
- `saes/google/gemma-scope-2-270m-pt/`: JumpReLU SAEs in Gemma Scope 2's layout
  (`resid_post/`, `mlp_out/`, `attn_out/` folders `layer_{5,9}_width_16k_l0_medium` with
  config.json and params.safetensors), 128 features each, thresholds calibrated on the
  samples so a few percent fire;
- `reference.json`: per text its tokens and each SAE's mean activation (SAELens's gemma_3
  loader and encode on HF's hook values: resid_post the layer's output, mlp_out after the
  post-feedforward norm, attn_out on the heads' z before o_proj), the study's report over the
  samples, and greedy generation of 20 tokens (past the window) plain (HF `generate`, KV
  cache) and steered by forward hooks: add at resid_post 5, clamp at mlp_out 9, and both.

    python scripts/reference_gemma.py tests/fixtures/reference_samples.toml tests/fixtures/gemma_run
"""
import json
import os
import shutil
import sys
import tomllib

from reference import gemma_scope_sae, report_categories

REPO = "google/gemma-scope-2-270m-pt"
FOLDERS = [(f"{site}/layer_{l}_width_16k_l0_medium", site, l) for site in ("resid_post", "mlp_out", "attn_out") for l in (5, 9)]
PROMPT = "The cat sat on the mat because"
TOKENS = 20


def tokenizer(texts, path):
    """Gemma's kind of tokenizer.json: BPE over U+2581-for-space text with byte fallback."""
    from tokenizers import Tokenizer, decoders, normalizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer

    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    tok = Tokenizer(BPE(byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    trainer = BpeTrainer(vocab_size=700, special_tokens=specials + byte_tokens, show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.save(path)
    return tok


def main() -> None:
    samples, out = sys.argv[1], sys.argv[2]
    import torch
    from safetensors.torch import save_file
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    with open(samples, "rb") as f:
        cats = tomllib.load(f)["category"]
    all_texts = [t for c in cats for t in c["texts"]] + [PROMPT]
    shutil.rmtree(out, ignore_errors=True)
    model_dir, sae_root = os.path.join(out, "model"), os.path.join(out, "saes", REPO)
    os.makedirs(model_dir)
    tok = tokenizer(all_texts, os.path.join(model_dir, "tokenizer.json"))
    assert tok.token_to_id("<bos>") == 2
    cfg = Gemma3TextConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=10, num_attention_heads=2,
        num_key_value_heads=1, head_dim=32, max_position_embeddings=256, rms_norm_eps=1e-6, query_pre_attn_scalar=32,
        sliding_window=8, sliding_window_pattern=6, bos_token_id=2, eos_token_id=1, pad_token_id=0,
        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                         "full_attention": {"rope_type": "default", "rope_theta": 1000000.0}},
    )
    model = Gemma3ForCausalLM(cfg).eval()
    for name, p in model.named_parameters():
        p.copy_(torch.randn_like(p) * (0.3 if "norm" in name else 0.2))
    model.save_pretrained(model_dir, safe_serialization=True)
    if os.path.exists(os.path.join(model_dir, "generation_config.json")):
        os.remove(os.path.join(model_dir, "generation_config.json"))

    def ids_of(text):
        return [2] + tok.encode(text, add_special_tokens=False).ids

    # HF's values at the hooks Gemma Scope 2 reads.
    caught = {}
    for i, layer in enumerate(model.model.layers):
        layer.self_attn.o_proj.register_forward_pre_hook(lambda m, a, i=i: caught.__setitem__(("attn_out", i), a[0][0]))
        layer.post_feedforward_layernorm.register_forward_hook(lambda m, a, o, i=i: caught.__setitem__(("mlp_out", i), o[0]))
        layer.register_forward_hook(lambda m, a, o, i=i: caught.__setitem__(("resid_post", i), (o[0] if isinstance(o, tuple) else o)[0]))

    def hooks(ids):
        caught.clear()
        model(torch.tensor([ids]))
        return dict(caught)

    # SAEs: random directions, thresholds at each feature's 95th percentile over the samples.
    per_site = {}
    for ids in map(ids_of, all_texts):
        for k, v in hooks(ids).items():
            per_site.setdefault(k, []).append(v[1:])
    d_sae = 128
    for folder, site, l in FOLDERS:
        x = torch.cat(per_site[(site, l)])
        d_in = x.shape[-1]
        w_enc = torch.randn(d_in, d_sae) / d_in**0.5 * 2.0
        b_enc = torch.randn(d_sae) * 0.1
        pre = x @ w_enc + b_enc
        threshold = pre.quantile(0.95, dim=0).clamp_min(0.05)
        params = {"w_enc": w_enc, "w_dec": torch.randn(d_sae, d_in) / d_in**0.5, "b_enc": b_enc, "b_dec": torch.randn(d_in) * 0.05, "threshold": threshold}
        os.makedirs(os.path.join(sae_root, folder))
        save_file({k: v.contiguous() for k, v in params.items()}, os.path.join(sae_root, folder, "params.safetensors"))
        point = {"resid_post": f"model.layers.{l}.output", "mlp_out": f"model.layers.{l}.post_feedforward_layernorm.output",
                 "attn_out": f"model.layers.{l}.self_attn.o_proj.input"}[site]
        with open(os.path.join(sae_root, folder, "config.json"), "w") as f:
            json.dump({"architecture": "jump_relu", "model_name": "gemma-v3-270m-pt", "hf_hook_point_in": point, "hf_hook_point_out": point,
                       "width": d_sae, "l0": 60, "affine_connection": False, "type": "sae"}, f, indent=1)

    # SAELens's own gemma_3 loader, reading these folders instead of the hub's.
    saes = []
    for folder, site, l in FOLDERS:
        sae, cfg_dict = gemma_scope_sae(sae_root, folder)
        saes.append((sae, site, l, cfg_dict["hook_name"]))

    texts = []
    for ci, c in enumerate(cats):
        for text in c["texts"]:
            ids = ids_of(text)
            got = hooks(ids)
            vecs = {i: sae.encode(got[(site, l)])[1:].mean(0) for i, (sae, site, l, _) in enumerate(saes)}
            texts.append((ci, text, ids, vecs))
    keys = list(range(len(saes)))
    report = report_categories(cats, texts, keys, [l for _, _, l, _ in saes], 5, 5.0)

    # Steering: forward hooks that edit each new position, as the KV cache feeds them.
    prompt = ids_of(PROMPT)
    res5, mlp9 = saes[0][0], saes[3][0]
    base = hooks(prompt)
    f_res = int(res5.encode(base[("resid_post", 5)])[1:].sum(0).argmax())
    f_mlp = int(mlp9.encode(base[("mlp_out", 9)])[1:].sum(0).argmax())
    top_res = float(res5.encode(base[("resid_post", 5)]).max())
    top_mlp = float(mlp9.encode(base[("mlp_out", 9)]).max())

    def greedy(edits):
        handles = []
        for mode, site, l, sae, f, s in edits:
            d = sae.W_dec[f]

            def edit(x, mode=mode, sae=sae, f=f, s=s, d=d):
                if mode == "add":
                    return x + s * d
                return x + (s - sae.encode(x)[..., f])[..., None] * d

            if site == "resid_post":
                handles.append(model.model.layers[l].register_forward_hook(lambda m, a, o, e=edit: (e(o[0]),) + tuple(o[1:]) if isinstance(o, tuple) else e(o)))
            else:
                handles.append(model.model.layers[l].post_feedforward_layernorm.register_forward_hook(lambda m, a, o, e=edit: e(o)))
        g = model.generate(torch.tensor([prompt]), max_new_tokens=TOKENS, do_sample=False, output_scores=True, return_dict_in_generate=True,
                           pad_token_id=0, eos_token_id=None)
        for h in handles:
            h.remove()
        steps = []
        for score in g.scores:
            lp = score[0].double().log_softmax(-1)
            top = lp.topk(5)
            steps.append([[int(i), float(v)] for v, i in zip(top.values, top.indices)])
        return [int(t) for t in g.sequences[0, len(prompt):]], steps

    add = ("add", "resid_post", 5, res5, f_res, 3 * top_res)
    clamp = ("clamp", "mlp_out", 9, mlp9, f_mlp, 3 * top_mlp)
    cases = []
    gentle = ("add", "resid_post", 5, res5, f_res, 0.1 * top_res)
    for name, edits in [("plain", []), ("add resid_post 5", [add]), ("clamp mlp_out 9", [clamp]), ("both", [gentle, clamp])]:
        ids, steps = greedy(edits)
        cases.append({"name": name, "features": [{"mode": m, "sae": f"{l} {'post' if site == 'resid_post' else 'mlp'}", "feature": f, "strength": s}
                                                  for m, site, l, _, f, s in edits], "ids": ids, "steps": steps})

    # Attribution: the top next token's logit minus the mean logit, one backward pass with
    # every SAE's hook value kept for its gradient (autograd through HF's forward), per
    # feature sum_p a_F(x_p) * (W_dec[F] . grad_p), the top 8 per SAE with the change when
    # each is ablated at every position (x - a_F(x) * W_dec[F]).
    torch.set_grad_enabled(True)
    kept = {}

    def keep_hook(site, l):
        def out_hook(m, a, o):
            x = o[0] if isinstance(o, tuple) else o
            x.retain_grad()
            kept[(site, l)] = x
            return o

        def pre_hook(m, a):
            a[0].retain_grad()
            kept[(site, l)] = a[0]

        module = model.model.layers[l]
        if site == "resid_post":
            return module.register_forward_hook(out_hook)
        if site == "mlp_out":
            return module.post_feedforward_layernorm.register_forward_hook(out_hook)
        return module.self_attn.o_proj.register_forward_pre_hook(pre_hook)

    sites = sorted({(site, l) for _, site, l, _ in saes})
    handles = [keep_hook(site, l) for site, l in sites]
    attr_prompt = ids_of("The cat sat on the")
    logits = model(torch.tensor([attr_prompt])).logits[0, -1]
    for h in handles:
        h.remove()
    t = int(logits.detach().argmax())
    metric = logits[t] - logits.mean()
    prob = float(logits.detach().softmax(-1)[t])
    metric.backward()
    base = float(metric.detach())
    torch.set_grad_enabled(False)
    attribution = {"prompt": "The cat sat on the", "target_id": t, "logit": base, "prob": prob, "saes": []}
    for sae, site, l, hook in saes:
        x = kept[(site, l)]
        acts = sae.encode(x.detach()[0])
        attr = (acts * (x.grad[0] @ sae.W_dec.T)).sum(0).double()
        order = sorted(range(attr.shape[0]), key=lambda f: (-abs(float(attr[f])), f))[:8]
        feats = []
        for f in order:
            def ablate(v, sae=sae, f=f):
                return v - sae.encode(v)[..., f : f + 1] * sae.W_dec[f]

            module = model.model.layers[l]
            if site == "resid_post":
                h = module.register_forward_hook(lambda m, a, o: (ablate(o[0]),) + tuple(o[1:]) if isinstance(o, tuple) else ablate(o))
            elif site == "mlp_out":
                h = module.post_feedforward_layernorm.register_forward_hook(lambda m, a, o: ablate(o))
            else:
                h = module.self_attn.o_proj.register_forward_pre_hook(lambda m, a: (ablate(a[0]),))
            lg = model(torch.tensor([attr_prompt])).logits[0, -1]
            h.remove()
            feats.append({"feature": f, "attribution": float(attr[f]), "ablation_logit": float(lg[t] - lg.mean()) - base,
                          "ablation_prob": float(lg.softmax(-1)[t]) - prob})
        attribution["saes"].append({"hook": hook, "features": feats})

    ref = {
        "attribution": attribution,
        "saes": [{"folder": folder, "hook": hook} for (folder, _, _), (_, _, _, hook) in zip(FOLDERS, saes)],
        "categories": report,
        "texts": [{"text": text, "tokens": ids, "means": [[[f, float(v[f])] for f in (v > 0).nonzero().flatten().tolist()] for v in vecs.values()]}
                  for _, text, ids, vecs in texts],
        "prompt": PROMPT, "prompt_ids": prompt, "tokens": TOKENS, "steering": cases,
    }
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f)
    print(f"vocab {tok.get_vocab_size()}, layer types {cfg.layer_types}", file=sys.stderr)


if __name__ == "__main__":
    main()
