"""TransformerLens's side of scripts/bench-steer: `generate` with its KV cache, greedy,
without and with an `add` hook on blocks.L.hook_resid_pre; tokens per second of each."""
import argparse
import json
import time

from reference import go_offline, load_stack


def main() -> None:
    ap = argparse.ArgumentParser()
    for k in ("--model-dir", "--sae-dir", "--prompt", "-o"):
        ap.add_argument(k, required=True)
    for k, d in (("--threads", 0), ("--layer", 8), ("--feature", 0), ("--tokens", 32)):
        ap.add_argument(k, type=int, default=d)
    ap.add_argument("--strength", type=float, default=40.0)
    a = ap.parse_args()
    go_offline(a.model_dir)
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    model, saes, hook = load_stack(a.model_dir, a.sae_dir, [a.layer])
    d = saes[a.layer].W_dec[a.feature]
    toks = model.to_tokens(a.prompt, prepend_bos=True)

    def run(hooks):
        t = time.perf_counter()
        with model.hooks(fwd_hooks=hooks):
            model.generate(toks, max_new_tokens=a.tokens, do_sample=False, use_past_kv_cache=True, stop_at_eos=False, verbose=False)
        return a.tokens / (time.perf_counter() - t)

    default = run([])
    steered = run([(hook(a.layer), lambda resid, hook: resid + a.strength * d)])
    with open(a.o, "w") as f:
        json.dump({"default_tokens_per_s": default, "steered_tokens_per_s": steered}, f)


if __name__ == "__main__":
    main()
