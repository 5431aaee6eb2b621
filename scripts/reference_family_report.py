"""The study's report on a Pythia (GPT-NeoX), Llama 3 or Qwen 3 model with SAELens-folder
SAEs, computed by the Python stack: TransformerLens's HookedTransformer on the HF weights
under from_pretrained's default processing (reference.folder_tl), `run_with_cache` with a
names_filter, one text at a time as the study's notebook does, and SAELens's
`SAE.load_from_disk(folder).encode` at each SAE's hook. Texts start with the token saescope
puts first for the family (model/config.rs `bos_token`). What `saescope report` computes on
the same folders; scripts/bench-vs-python (FAMILY=pythia, llama, qwen3) times the two against
each other and compares the answers.

    python scripts/reference_family_report.py --model-dir DIR/model --sae-dir DIR/saes \\
        --samples samples/default.toml --saes 1-res-sm,3-res-sm,4-res-sm,5-res-sm -o out.json
"""
import argparse
import json
import os
import time

T0 = time.time()

from reference import folder_tl, report_args, report_setup, write_report  # noqa: E402

BOS = {"gpt_neox": "<|endoftext|>", "qwen3": "<|endoftext|>", "llama": "<|begin_of_text|>"}


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
    hf = AutoModelForCausalLM.from_pretrained(a.model_dir, dtype=torch.float32).eval()
    model, _ = folder_tl(hf)
    del hf
    tok = Tokenizer.from_file(os.path.join(a.model_dir, "tokenizer.json"))
    with open(os.path.join(a.model_dir, "config.json")) as f:
        bos = tok.token_to_id(BOS[json.load(f)["model_type"]])
    saes = [SAE.load_from_disk(os.path.join(a.sae_dir, folder), device="cpu") for folder in a.saes.split(",")]
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
