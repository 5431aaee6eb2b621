//! Scale: a generated 5,000-text corpus, all 13 hook points at once, and the memory check
//! that refuses a load the machine cannot hold.

use crate::common;

use common::{saescope, tiny_args};

#[test]
fn five_thousand_generated_texts_run_with_progress() {
    let tmp = tempfile::tempdir().expect("tmp");
    let samples = tmp.path().join("big.toml");
    let ok = saescope().args(["synth-samples", "--texts", "5000", "--out"]).arg(&samples).status().expect("gen");
    assert!(ok.success());
    let parsed = saescope::corpus::samples::Samples::load(&samples).expect("generated file parses");
    assert_eq!(parsed.n_texts(), 5000);
    assert_eq!(parsed.categories.len(), 7);
    let again = tmp.path().join("again.toml");
    saescope().args(["synth-samples", "--texts", "5000", "--out"]).arg(&again).status().expect("gen");
    assert_eq!(std::fs::read(&samples).ok(), std::fs::read(&again).ok(), "same seed, same file");

    let out =
        tiny_args(&mut saescope()).args(["report", "--format", "json", "--no-cache", "--layers", "3,6"]).arg("--samples").arg(&samples).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("encoding texts: 5000/5000 (100%)") && err.contains("ETA"), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["texts"].as_array().map(Vec::len), Some(5000));
    let per_cat: u64 = r["categories"].as_array().expect("cats").iter().map(|c| c["n_texts"].as_u64().unwrap_or(0)).sum();
    assert_eq!(per_cat, 5000);
}

#[test]
fn all_thirteen_hooks_load_at_once() {
    let out = tiny_args(&mut saescope()).args(["report", "--format", "json", "--no-cache", "--layers", "0,1,2,3,4,5,6,7,8,9,10,11,12"]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["layers"].as_array().map(Vec::len), Some(13));
}

#[test]
fn too_little_memory_is_refused_with_the_amount_needed() {
    let out =
        tiny_args(&mut saescope()).args(["report", "--no-cache", "--layers", "0,1,2,3,4,5,6,7,8,9,10,11,12", "--max-memory", "0.01"]).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("13 SAEs (0 res 512 to 11 post 512) need about")
            && err.contains("GiB (weights")
            && err.contains("0.01 GiB is available")
            && err.contains("fewer --layers"),
        "{err}"
    );
    assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "{err}");
}

/// A GPT-2 checkpoint of `n_layer` blocks of width `d` as the hub ships it (mask buffers
/// included), its tensors' bytes left as a hole in a sparse file: the memory planner reads
/// headers only. Returns the bytes of what the model loads (the masks are not loaded).
fn sparse_gpt2(dir: &std::path::Path, n_layer: usize, d: usize, n_head: usize) -> u64 {
    let (vocab, ctx) = (50257usize, 1024usize);
    let mut tensors: Vec<(String, Vec<usize>)> = vec![("wte.weight".into(), vec![vocab, d]), ("wpe.weight".into(), vec![ctx, d])];
    for i in 0..n_layer {
        for (n, shape) in [
            ("ln_1.weight", vec![d]),
            ("ln_1.bias", vec![d]),
            ("attn.bias", vec![1, 1, ctx, ctx]),
            ("attn.c_attn.weight", vec![d, 3 * d]),
            ("attn.c_attn.bias", vec![3 * d]),
            ("attn.c_proj.weight", vec![d, d]),
            ("attn.c_proj.bias", vec![d]),
            ("ln_2.weight", vec![d]),
            ("ln_2.bias", vec![d]),
            ("mlp.c_fc.weight", vec![d, 4 * d]),
            ("mlp.c_fc.bias", vec![4 * d]),
            ("mlp.c_proj.weight", vec![4 * d, d]),
            ("mlp.c_proj.bias", vec![d]),
        ] {
            tensors.push((format!("h.{i}.{n}"), shape));
        }
    }
    tensors.push(("ln_f.weight".into(), vec![d]));
    tensors.push(("ln_f.bias".into(), vec![d]));
    let all = sparse_safetensors(&dir.join("model.safetensors"), &tensors);
    // The masks are in the file but never loaded.
    let masks = 4 * (n_layer * ctx * ctx) as u64;
    let cfg = serde_json::json!({"model_type": "gpt2", "n_layer": n_layer, "n_embd": d, "n_head": n_head, "n_positions": ctx, "n_ctx": ctx,
        "vocab_size": vocab, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"});
    std::fs::write(dir.join("config.json"), cfg.to_string()).expect("config");
    all - masks
}

/// GPT-2 medium, large and XL from their config.json: the memory planner counts what the
/// model loads (XL: 1.56 billion f32 parameters, 6.23 GB; the hub's 6.43 GB file adds a
/// causal mask per block, never loaded) and refuses naming the amount.
#[test]
fn the_memory_planner_sizes_gpt2_medium_large_and_xl() {
    for (name, n_layer, d, n_head, params) in
        [("medium", 24, 1024, 16, 354_823_168u64), ("large", 36, 1280, 20, 774_030_080), ("xl", 48, 1600, 25, 1_557_611_200)]
    {
        let tmp = tempfile::tempdir().expect("tmp");
        let model = tmp.path().join("model");
        std::fs::create_dir_all(&model).expect("dir");
        let loaded = sparse_gpt2(&model, n_layer, d, n_head);
        assert_eq!(loaded, 4 * params, "{name}: GPT-2 {name}'s parameter count");
        // An SAE on the final residual, so every block is needed: a cfg and a header-only
        // weights file of d x 8 features.
        let sae = tmp.path().join("saes").join(format!("blocks.{}.hook_resid_post", n_layer - 1));
        std::fs::create_dir_all(&sae).expect("dir");
        std::fs::write(
            sae.join("cfg.json"),
            serde_json::json!({"d_in": d, "d_sae": 8 * d, "hook_name": format!("blocks.{}.hook_resid_post", n_layer - 1)}).to_string(),
        )
        .expect("cfg");
        let t = |shape: Vec<usize>| tch::Tensor::zeros(shape.iter().map(|&x| x as i64).collect::<Vec<_>>(), (tch::Kind::Float, tch::Device::Cpu));
        tch::Tensor::write_safetensors(
            &[("W_enc", t(vec![d, 8 * d])), ("b_enc", t(vec![8 * d])), ("W_dec", t(vec![8 * d, d])), ("b_dec", t(vec![d]))],
            sae.join("sae_weights.safetensors"),
        )
        .expect("sae");
        let sae_bytes = 4 * (d * 8 * d + 8 * d + d) as u64;
        // Under --dtype bf16 the weights are held at 2 bytes each, and planned so.
        for (dtype, bytes) in [("f32", loaded + sae_bytes), ("bf16", (loaded + sae_bytes) / 2)] {
            let out = saescope()
                .args(["report", "--no-cache", "--layers", &n_layer.to_string(), "--max-memory", "0.5", "--dtype", dtype, "--model-dir"])
                .arg(&model)
                .arg("--sae-dir")
                .arg(tmp.path().join("saes"))
                .output()
                .expect("run");
            let err = String::from_utf8_lossy(&out.stderr);
            let want = format!("(weights {:.2} GiB", bytes as f64 / (1u64 << 30) as f64);
            assert!(!out.status.success() && err.contains(&want) && err.contains("is available"), "{name} {dtype}: {want} in\n{err}");
        }
    }
}

/// A safetensors file of `tensors` (name, shape; f32) whose data is a hole in a sparse
/// file: the planner reads its header only. Returns the data's bytes.
fn sparse_safetensors(path: &std::path::Path, tensors: &[(String, Vec<usize>)]) -> u64 {
    let mut at = 0u64;
    let mut header = serde_json::Map::new();
    for (name, shape) in tensors {
        let bytes = 4 * shape.iter().product::<usize>() as u64;
        header.insert(name.clone(), serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [at, at + bytes]}));
        at += bytes;
    }
    let mut h = serde_json::to_vec(&header).expect("header");
    h.resize(h.len().next_multiple_of(8), b' ');
    let mut f = std::fs::File::create(path).expect("create");
    std::io::Write::write_all(&mut f, &(h.len() as u64).to_le_bytes()).expect("len");
    std::io::Write::write_all(&mut f, &h).expect("header");
    f.set_len(8 + h.len() as u64 + at).expect("sparse data");
    at
}

/// Gemma 3 270M (262,144-token vocabulary, 18 layers) with Gemma Scope 2's widest SAE, 1M
/// features at layer 12: the planner counts the embeddings, the 13 layers the hook needs
/// and the SAE's encoder (2.5 GiB), and refuses naming the SAE, its width and the amount.
#[test]
fn the_memory_planner_sizes_gemma_and_a_million_feature_sae() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model = tmp.path().join("model");
    std::fs::create_dir_all(&model).expect("dir");
    let (vocab, d, ff, nh, nkv, hd, n_layer) = (262_144usize, 640usize, 2048usize, 4usize, 1usize, 256usize, 18usize);
    let mut tensors: Vec<(String, Vec<usize>)> = vec![("model.embed_tokens.weight".into(), vec![vocab, d]), ("model.norm.weight".into(), vec![d])];
    let mut per_layer = 0u64;
    for i in 0..n_layer {
        for (n, shape) in [
            ("input_layernorm.weight", vec![d]),
            ("self_attn.q_proj.weight", vec![nh * hd, d]),
            ("self_attn.k_proj.weight", vec![nkv * hd, d]),
            ("self_attn.v_proj.weight", vec![nkv * hd, d]),
            ("self_attn.o_proj.weight", vec![d, nh * hd]),
            ("self_attn.q_norm.weight", vec![hd]),
            ("self_attn.k_norm.weight", vec![hd]),
            ("post_attention_layernorm.weight", vec![d]),
            ("pre_feedforward_layernorm.weight", vec![d]),
            ("mlp.gate_proj.weight", vec![ff, d]),
            ("mlp.up_proj.weight", vec![ff, d]),
            ("mlp.down_proj.weight", vec![d, ff]),
            ("post_feedforward_layernorm.weight", vec![d]),
        ] {
            per_layer += if i == 0 { 4 * shape.iter().product::<usize>() as u64 } else { 0 };
            tensors.push((format!("model.layers.{i}.{n}"), shape));
        }
    }
    let all = sparse_safetensors(&model.join("model.safetensors"), &tensors);
    assert_eq!(all / 4, 268_098_176, "Gemma 3 270M's parameter count");
    let cfg = serde_json::json!({"model_type": "gemma3_text", "vocab_size": vocab, "hidden_size": d, "intermediate_size": ff, "num_hidden_layers": n_layer,
        "num_attention_heads": nh, "num_key_value_heads": nkv, "head_dim": hd, "query_pre_attn_scalar": 256, "sliding_window": 512,
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1_000_000.0, "rope_local_base_freq": 10_000.0, "sliding_window_pattern": 6});
    std::fs::write(model.join("config.json"), cfg.to_string()).expect("config");
    let width = 1usize << 20;
    let folder = tmp.path().join("saes/resid_post/layer_12_width_1m_l0_medium");
    std::fs::create_dir_all(&folder).expect("dir");
    std::fs::write(
        folder.join("config.json"),
        serde_json::json!({"architecture": "jump_relu", "hf_hook_point_in": "model.layers.12.output", "width": width}).to_string(),
    )
    .expect("cfg");
    let sae = [("w_enc", vec![d, width]), ("w_dec", vec![width, d]), ("b_enc", vec![width]), ("b_dec", vec![d]), ("threshold", vec![width])];
    sparse_safetensors(&folder.join("params.safetensors"), &sae.map(|(n, s)| (n.to_string(), s)));
    let out = saescope()
        .args([
            "report",
            "--no-cache",
            "--sae-release",
            "gemma-scope-2-270m-pt-res",
            "--sae",
            "layer_12_width_1m_l0_medium",
            "--max-memory",
            "2",
            "--model-dir",
        ])
        .arg(&model)
        .arg("--sae-dir")
        .arg(tmp.path().join("saes"))
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    // Embeddings, final norm, 13 layers; the encoder and its biases and thresholds.
    let weights = 4 * (vocab * d + d) as u64 + 13 * per_layer + 4 * (d * width + 2 * width + d) as u64;
    let want = format!("(weights {:.2} GiB", weights as f64 / (1u64 << 30) as f64);
    assert!(!out.status.success() && err.contains("SAE 12 post 1M needs") && err.contains(&want) && err.contains("is available"), "{want} in\n{err}");
}
