"""The study's report on a Pythia (GPT-NeoX), Llama 3, Qwen 3 or Gemma 2 model with SAELens-folder
SAEs (Gemma 2: the first Gemma Scope's `layer_L/width_W/average_l0_N/params.npz` folders,
through SAELens's own gemma_2 loader), computed by the Python stack: TransformerLens's HookedTransformer on the HF weights
under from_pretrained's default processing (reference.folder_tl), `run_with_cache` with a
names_filter, one text at a time as the study's notebook does, and SAELens's
`SAE.load_from_disk(folder).encode` at each SAE's hook. Texts start with the token saescope
puts first for the family (model/config.rs `bos_token`). What `saescope report` computes on
the same folders; scripts/bench-vs-python (FAMILY=pythia, llama, qwen3, gemma2) times the two
against each other and compares the answers. Gemma 2 loads unprocessed
(`from_pretrained_no_processing`'s model; TL's RMSNorm fold would not change the residual the
SAEs read) and one copy at a time (reference.tl_from_state): with TL's default processing
Gemma 2 2B's f32 weights are held twice at once, more than a 24 GB machine has.

    python scripts/reference_family_report.py --model-dir DIR/model --sae-dir DIR/saes \\
        --samples samples/default.toml --saes 1-res-sm,3-res-sm,4-res-sm,5-res-sm -o out.json
"""
import argparse
import json
import os
import time

T0 = time.time()

from reference import folder_tl, gemma2_tl_state, report_args, report_setup, tl_from_state, write_report  # noqa: E402

BOS = {"gpt_neox": "<|endoftext|>", "qwen3": "<|endoftext|>", "llama": "<|begin_of_text|>", "gemma2": "<bos>"}


def gemma_scope_npz(sae_dir: str, folder: str):
    """The first Gemma Scope's SAE in `folder` (`layer_L/width_16k/average_l0_N`), as
    SAE.from_pretrained builds it: SAELens's gemma_2 loader, its downloads answered here."""
    import sae_lens.loading.pretrained_sae_loaders as loaders
    from sae_lens import SAE

    loaders.hf_hub_download = lambda repo_id, filename, subfolder=None, **kw: os.path.join(sae_dir, subfolder or "", filename)
    cfg, state, _ = loaders.gemma_2_sae_huggingface_loader("google/gemma-scope-2b-pt-res", folder)
    sae = SAE.from_dict(loaders.handle_config_defaulting(cfg))
    sae.load_state_dict(state)
    return sae


def main() -> None:
    ap = argparse.ArgumentParser()
    report_args(ap, "the SAELens folders' parent")
    a = ap.parse_args()
    cats = report_setup(a)
    import torch
    from sae_lens import SAE
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    t_load = time.time()
    with open(os.path.join(a.model_dir, "config.json")) as f:
        c = json.load(f)
    hf = AutoModelForCausalLM.from_pretrained(a.model_dir, dtype=torch.float32).eval()
    if c["model_type"] == "gemma2":
        cfg, state = gemma2_tl_state(hf)
        del hf
        model = tl_from_state(cfg, state)
        saes = [gemma_scope_npz(a.sae_dir, folder) for folder in a.saes.split(",")]
    else:
        model, _ = folder_tl(hf)
        del hf
        saes = [SAE.load_from_disk(os.path.join(a.sae_dir, folder), device="cpu") for folder in a.saes.split(",")]
    tok = Tokenizer.from_file(os.path.join(a.model_dir, "tokenizer.json"))
    bos = tok.token_to_id(BOS[c["model_type"]])
    names = [sae.cfg.metadata.hook_name for sae in saes]
    layers = [int(n.split(".")[1]) for n in names]
    t_compute = time.time()
    texts = []
    for ci, c in enumerate(cats):
        for text in c["texts"]:
            ids = [bos] + tok.encode(text, add_special_tokens=False).ids
            _, cache = model.run_with_cache(torch.tensor([ids]), names_filter=names)
            vecs = {i: sae.encode(cache[name][0])[1:].mean(0) for i, (sae, name) in enumerate(zip(saes, names))}
            texts.append((ci, text, ids, vecs))
    write_report(a, cats, texts, layers, (T0, t_load, t_compute, time.time()))


if __name__ == "__main__":
    main()
