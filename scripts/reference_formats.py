"""SAE file formats against SAELens (tests/formats.rs, fixtures tests/fixtures/formats/):
folders as SAELens 6.54 writes them (`SAE.save_model`) for a standard SAE, a JumpReLU SAE,
a TopK SAE with per-token `layer_norm` input normalisation (the OpenAI v5 releases'
processing), a standard SAE with `constant_norm_rescale` and one without `b_dec` applied
to its input; a folder in the old mats_sae_training layout of gpt2-small-res-jb
(`hook_point`, `hook_point_layer`, no architecture key); Gemma Scope 2's folder and the
first Gemma Scope's `params.npz`; Llama Scope's folder; dictionary_learning's trainer folders
(config.json and ae.pt) of every class SAELens's dictionary_learning_1 loader reads; a gated
SAE in SAELens's own folder. `reference.json` holds seeded
inputs and SAELens's `SAE.load_from_disk(folder).encode(x)` for each.

    python scripts/reference_formats.py tests/fixtures/formats
"""
import json
import os
import shutil
import sys

from reference import gemma_scope_sae


def main() -> None:
    out = sys.argv[1]
    import torch
    from safetensors.torch import save_file
    from sae_lens import SAE, JumpReLUSAEConfig, StandardSAEConfig, TopKSAEConfig

    torch.manual_seed(1)
    torch.set_grad_enabled(False)
    d_in, d_sae = 48, 96
    x = torch.randn(6, d_in) * 3.0 + 0.5
    hook = "blocks.4.hook_mlp_out"
    made = {
        "standard": StandardSAEConfig(d_in=d_in, d_sae=d_sae),
        "jumprelu": JumpReLUSAEConfig(d_in=d_in, d_sae=d_sae),
        "topk_layer_norm": TopKSAEConfig(d_in=d_in, d_sae=d_sae, k=8, normalize_activations="layer_norm"),
        "constant_norm_rescale": StandardSAEConfig(d_in=d_in, d_sae=d_sae, normalize_activations="constant_norm_rescale"),
        "no_b_dec_in": StandardSAEConfig(d_in=d_in, d_sae=d_sae, apply_b_dec_to_input=False),
    }
    ref = {"x": x.tolist(), "encode": {}}
    for name, cfg in made.items():
        cfg.metadata.hook_name = hook
        sae = SAE.from_dict(cfg.to_dict())
        for p in sae.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        if name == "jumprelu":
            sae.threshold.copy_(torch.rand_like(sae.threshold) * 0.8)
        folder = os.path.join(out, name)
        shutil.rmtree(folder, ignore_errors=True)
        sae.save_model(folder)
        loaded = SAE.load_from_disk(folder, device="cpu")
        ref["encode"][name] = loaded.encode(x).tolist()

    # gpt2-small-res-jb's raw cfg: what SAELens's handle_pre_6_0_config reads.
    folder = os.path.join(out, "old_jb")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    w = {"W_enc": torch.randn(d_in, d_sae) * 0.3, "W_dec": torch.randn(d_sae, d_in) * 0.3, "b_enc": torch.randn(d_sae) * 0.3, "b_dec": torch.randn(d_in) * 0.3}
    save_file(w, os.path.join(folder, "sae_weights.safetensors"))
    cfg = {"model_name": "gpt2-small", "hook_point": "blocks.4.hook_resid_pre", "hook_point_layer": 4, "hook_point_head_index": None,
           "dataset_path": "Skylion007/openwebtext", "is_dataset_tokenized": False, "context_size": 128, "use_cached_activations": False,
           "d_in": d_in, "expansion_factor": 2, "b_dec_init_method": "geometric_median", "lr": 0.0004, "l1_coefficient": 8e-05,
           "device": "mps", "seed": 42, "dtype": "torch.float32", "d_sae": d_sae}
    with open(os.path.join(folder, "cfg.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    ref["encode"]["old_jb"] = SAE.load_from_disk(folder, device="cpu").encode(x).tolist()

    # Gemma Scope 2's layout, through SAELens's gemma_3 loader with the hub replaced by
    # these files.
    scope = os.path.join(out, "gemma_scope")
    shutil.rmtree(scope, ignore_errors=True)
    folder_name = "resid_post/layer_3_width_16k_l0_medium"
    folder = os.path.join(scope, folder_name)
    os.makedirs(folder)
    params = {"w_enc": torch.randn(d_in, d_sae) * 0.3, "w_dec": torch.randn(d_sae, d_in) * 0.3, "b_enc": torch.randn(d_sae) * 0.3, "b_dec": torch.randn(d_in) * 0.3, "threshold": torch.rand(d_sae) * 0.8}
    save_file(params, os.path.join(folder, "params.safetensors"))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"architecture": "jump_relu", "model_name": "gemma-v3-270m-pt", "hf_hook_point_in": "model.layers.3.output", "hf_hook_point_out": "model.layers.3.output", "width": 16384, "l0": 60}, f, indent=1)

    sae, cfg_dict = gemma_scope_sae(scope, folder_name)
    ref["encode"]["gemma_scope/" + folder_name] = sae.encode(x).tolist()
    ref["gemma_scope_hook"] = cfg_dict["hook_name"]

    # The first Gemma Scope's (Gemma 2) layout: `params.npz` alone, through SAELens's gemma_2
    # loader with the hub replaced by this file (sizes overridden: the loader takes Gemma 2
    # 2B's width from the repo's name).
    import numpy as np
    import sae_lens.loading.pretrained_sae_loaders as loaders

    npz_root = os.path.join(out, "gemma_scope_npz")
    shutil.rmtree(npz_root, ignore_errors=True)
    npz_folder = "layer_3/width_16k/average_l0_60"
    os.makedirs(os.path.join(npz_root, npz_folder))
    arrays = {"W_enc": torch.randn(d_in, d_sae) * 0.3, "W_dec": torch.randn(d_sae, d_in) * 0.3, "b_enc": torch.randn(d_sae) * 0.3, "b_dec": torch.randn(d_in) * 0.3, "threshold": torch.rand(d_sae) * 0.8}
    np.savez(os.path.join(npz_root, npz_folder, "params.npz"), **{k: v.numpy() for k, v in arrays.items()})
    loaders.hf_hub_download = lambda repo_id, filename, subfolder=None, **kw: os.path.join(npz_root, subfolder, filename)
    cfg, state, _ = loaders.gemma_2_sae_huggingface_loader("google/gemma-scope-2b-pt-res", npz_folder, cfg_overrides={"d_in": d_in, "d_sae": d_sae})
    # As SAE.from_pretrained finishes a loader's config (None normalisation -> "none").
    hook_name = cfg["hook_name"]
    cfg = loaders.handle_config_defaulting(cfg)
    sae = SAE.from_dict(cfg)
    sae.load_state_dict(state)
    ref["encode"]["gemma_scope_npz/" + npz_folder] = sae.encode(x).tolist()
    ref["gemma_scope_npz_hook"] = hook_name

    # Llama Scope's layout (hyperparams.json, checkpoints/final.safetensors with encoder and
    # decoder in nn.Linear's orientation, one scalar threshold), through SAELens's
    # llama_scope loader, then folded as SAE.from_pretrained folds the registry's
    # norm_scaling_factor; computed in f32 (the loader's default dtype is bf16).
    ls_root = os.path.join(out, "llama_scope")
    shutil.rmtree(ls_root, ignore_errors=True)
    ls_folder = "Llama3_1-8B-Base-L3R-8x"
    os.makedirs(os.path.join(ls_root, ls_folder, "checkpoints"))
    avg_in = 9.0
    with open(os.path.join(ls_root, ls_folder, "hyperparams.json"), "w") as f:
        json.dump({"d_model": d_in, "d_sae": d_sae, "hook_point_in": "blocks.3.hook_resid_post", "hook_point_out": "blocks.3.hook_resid_post",
                   "jump_relu_threshold": 0.4, "dataset_average_activation_norm": {"in": avg_in, "out": avg_in}, "top_k": 50}, f, indent=1)
    save_file({"encoder.weight": torch.randn(d_sae, d_in) * 0.1, "encoder.bias": torch.randn(d_sae) * 0.1,
               "decoder.weight": torch.randn(d_in, d_sae) * 0.1, "decoder.bias": torch.randn(d_in) * 0.1},
              os.path.join(ls_root, ls_folder, "checkpoints", "final.safetensors"))
    loaders.hf_hub_download = lambda repo_id, filename, subfolder=None, **kw: os.path.join(ls_root, subfolder, filename) if subfolder else os.path.join(ls_root, filename)
    cfg, state, _ = loaders.llama_scope_sae_huggingface_loader("fnlp/Llama3_1-8B-Base-LXR-8x", ls_folder, cfg_overrides={"dtype": "float32"})
    hook_name = cfg["hook_name"]
    cfg = loaders.handle_config_defaulting(cfg)
    sae = SAE.from_dict(cfg)
    sae.load_state_dict(state)
    norm_scaling_factor = d_in ** 0.5 / avg_in
    sae.fold_activation_norm_scaling_factor(norm_scaling_factor)
    ref["encode"]["llama_scope/" + ls_folder] = sae.encode(x).tolist()
    ref["llama_scope_hook"] = hook_name
    ref["llama_scope_norm_scaling_factor"] = norm_scaling_factor

    # dictionary_learning's trainer folders (config.json, ae.pt as torch.save writes the
    # module's state dict), one per dict_class, each in the tensor names its class saves,
    # through SAELens's dictionary_learning_1 loader (SAEBench's sweeps, andyrdt's SAEs).
    dl_root = os.path.join(out, "dictionary_learning")
    shutil.rmtree(dl_root, ignore_errors=True)

    def rnd(*shape, scale=0.3):
        return torch.randn(*shape) * scale

    linear = lambda: {"encoder.weight": rnd(d_sae, d_in), "encoder.bias": rnd(d_sae), "decoder.weight": rnd(d_in, d_sae)}
    direct = lambda: {"W_enc": rnd(d_in, d_sae), "b_enc": rnd(d_sae), "W_dec": rnd(d_sae, d_in), "b_dec": rnd(d_in)}
    classes = {
        "AutoEncoder": {**linear(), "bias": rnd(d_in)},
        "AutoEncoderTopK": {**linear(), "b_dec": rnd(d_in), "k": torch.tensor(8), "threshold": torch.tensor(0.5)},
        "BatchTopKSAE": {**linear(), "b_dec": rnd(d_in), "k": torch.tensor(8), "threshold": torch.tensor(0.6)},
        "MatryoshkaBatchTopKSAE": {**direct(), "k": torch.tensor(8), "threshold": torch.tensor(0.6), "group_sizes": torch.tensor([32, 64])},
        "JumpReluAutoEncoder": {**direct(), "threshold": torch.rand(d_sae) * 0.8},
        "GatedAutoEncoder": {"encoder.weight": rnd(d_sae, d_in), "decoder.weight": rnd(d_in, d_sae), "decoder_bias": rnd(d_in),
                             "r_mag": rnd(d_sae), "gate_bias": rnd(d_sae), "mag_bias": rnd(d_sae)},
    }
    for dict_class, state in classes.items():
        folder = os.path.join(dl_root, dict_class)
        os.makedirs(folder)
        torch.save(state, os.path.join(folder, "ae.pt"))
        trainer = {"dict_class": dict_class, "activation_dim": d_in, "dict_size": d_sae, "layer": 3,
                   "lm_name": "EleutherAI/pythia-70m-deduped", "k": 8, "submodule_name": "resid_post_layer_3"}
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump({"trainer": trainer, "buffer": {"ctx_len": 128, "d_submodule": d_in}}, f, indent=1)
    loaders.hf_hub_download = lambda repo_id, filename, subfolder=None, **kw: os.path.join(dl_root, subfolder, filename) if subfolder else os.path.join(dl_root, filename)
    for dict_class in classes:
        cfg, state, _ = loaders.dictionary_learning_sae_huggingface_loader_1("canrager/lm_sae", dict_class)
        ref["dictionary_learning_hook"] = cfg["hook_name"]
        sae = SAE.from_dict(loaders.handle_config_defaulting(cfg))
        sae.load_state_dict(state)
        ref["encode"]["dictionary_learning/" + dict_class] = sae.encode(x).tolist()

    # A gated SAE as SAELens saves one (architecture "gated": W_enc, b_gate, r_mag, b_mag).
    from sae_lens import GatedSAEConfig

    gated = GatedSAEConfig(d_in=d_in, d_sae=d_sae)
    gated.metadata.hook_name = hook
    sae = SAE.from_dict(gated.to_dict())
    for p in sae.parameters():
        p.copy_(torch.randn_like(p) * 0.3)
    folder = os.path.join(out, "gated")
    shutil.rmtree(folder, ignore_errors=True)
    sae.save_model(folder)
    ref["encode"]["gated"] = SAE.load_from_disk(folder, device="cpu").encode(x).tolist()
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f)


if __name__ == "__main__":
    main()
