//! SAE file formats against SAELens (fixtures tests/fixtures/formats/ from
//! scripts/reference_formats.py): folders as SAELens 6.54 saves them (standard, JumpReLU,
//! TopK with per-token layer_norm input normalisation as the OpenAI v5 releases use,
//! constant_norm_rescale, b_dec not applied to the input), the old mats_sae_training layout
//! of gpt2-small-res-jb, and Gemma Scope 2's (config.json, lowercase params.safetensors, no
//! b_dec on the input, the hook in the folder's name) and the first Gemma Scope's
//! (`params.npz` as NumPy writes it) and Llama Scope's (hyperparams.json, nn.Linear's
//! orientation, one threshold, inputs scaled by the registry's factor) load, as do a gated
//! SAE and dictionary_learning's trainer folders of every class (SAEBench's, andyrdt's: its
//! standard, TopK, BatchTopK, Matryoshka, JumpReLU and gated SAEs in their own tensor names),
//! and their encode equals SAELens's (`SAE.load_from_disk(folder)`, or its gemma_3, gemma_2,
//! llama_scope and dictionary_learning_1 loaders) on the same inputs (1e-4 relative).

use crate::common;

use saescope::sae::Sae;
use saescope::source::SaeFiles;
use tch::{Device, Kind, Tensor};

#[test]
fn every_format_encodes_as_saelens_does() {
    let dir = common::fixture("formats");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).expect("fixture")).expect("json");
    let x: Vec<Vec<f32>> = serde_json::from_value(r["x"].clone()).expect("x");
    let n = x.len() as i64;
    let x = Tensor::from_slice(&x.concat()).view([n, -1]);
    let cases = r["encode"].as_object().expect("cases");
    assert_eq!(cases.len(), 16);
    for (name, want) in cases {
        let folder = dir.join(name);
        let (files, hook) = match name.as_str() {
            "old_jb" => (SaeFiles { cfg: folder.join("cfg.json"), weights: folder.join("sae_weights.safetensors") }, "blocks.4.hook_resid_pre"),
            // Gemma Scope: its config names no hook or size; the folder and weights do.
            n if n.starts_with("gemma_scope/") => {
                (SaeFiles { cfg: folder.join("config.json"), weights: folder.join("params.safetensors") }, r["gemma_scope_hook"].as_str().expect("hook"))
            }
            // The first Gemma Scope's: params.npz alone, the hook from the release.
            n if n.starts_with("gemma_scope_npz/") => {
                (SaeFiles { cfg: folder.join("params.npz"), weights: folder.join("params.npz") }, r["gemma_scope_npz_hook"].as_str().expect("hook"))
            }
            // Llama Scope's: hyperparams.json and checkpoints/final.safetensors.
            n if n.starts_with("llama_scope/") => (
                SaeFiles { cfg: folder.join("hyperparams.json"), weights: folder.join("checkpoints/final.safetensors") },
                r["llama_scope_hook"].as_str().expect("hook"),
            ),
            // dictionary_learning's: config.json (the trainer's) and ae.pt.
            n if n.starts_with("dictionary_learning/") => {
                (SaeFiles { cfg: folder.join("config.json"), weights: folder.join("ae.pt") }, r["dictionary_learning_hook"].as_str().expect("hook"))
            }
            _ => (SaeFiles { cfg: folder.join("cfg.json"), weights: folder.join("sae_weights.safetensors") }, "blocks.4.hook_mlp_out"),
        };
        // What the registry lays over Llama Scope's config: its norm_scaling_factor.
        let overrides = saescope::sae::Overrides {
            norm_scaling_factor: name.starts_with("llama_scope/").then(|| r["llama_scope_norm_scaling_factor"].as_f64().expect("factor")),
            ..Default::default()
        };
        let sae = Sae::load(&files, 48, saescope::model::hooks::HookPoint::parse(hook).expect("hook"), &overrides, false, Device::Cpu, Kind::Float)
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let got: Vec<Vec<f32>> = Vec::try_from(sae.encode(&x)).expect("rows");
        let want: Vec<Vec<f64>> = serde_json::from_value(want.clone()).expect("rows");
        let mut firing = 0;
        for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
            assert!(common::close(f64::from(*g), *w, 1e-4), "{name}: {g} vs SAELens {w}");
            firing += usize::from(*w > 0.0);
        }
        assert!(firing >= 6, "{name}: the inputs fire it ({firing})");
        if matches!(name.as_str(), "topk_layer_norm" | "dictionary_learning/AutoEncoderTopK") {
            assert_eq!(firing, 6 * 8, "TopK keeps k = 8 per token");
        }
    }
}

/// Qwen Scope's `layer{L}.sae.pt` (TopK, k from its repo's name), Goodfire's
/// `{model}-SAE-l{L}.pth` and qresearch's `DeepSeek-R1-...-SAE-l{L}.pt` (nn.Linear pairs),
/// each a state dict with no config beside it, and Llama Scope's R1 distill folder
/// (`config.json`, `sae_weights.safetensors`, a log threshold per feature, inputs scaled by
/// the registry's factor): encode and decode equal SAELens's qwen_scope, goodfire,
/// deepseek_r1 and llama_scope_r1_distill loaders' SAEs (fixtures from
/// scripts/reference_state_dicts.py); the hook comes from the file's name or config; a Qwen
/// Scope file away from its repo's name says where its k is.
#[test]
fn state_dicts_named_as_released_load_as_saelens_loads_them() {
    let dir = common::fixture("formats/state_dict");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).expect("fixture")).expect("json");
    let x: Vec<Vec<f32>> = serde_json::from_value(r["x"].clone()).expect("x");
    let n = x.len() as i64;
    let x = Tensor::from_slice(&x.concat()).view([n, -1]);
    let cases = r["saes"].as_object().expect("cases");
    assert_eq!(cases.len(), 4);
    let rows = |v: &serde_json::Value| -> Vec<f64> { serde_json::from_value::<Vec<Vec<f64>>>(v.clone()).expect("rows").concat() };
    for (name, want) in cases {
        let path = dir.join(name);
        let hook = saescope::model::hooks::HookPoint::parse(want["hook"].as_str().expect("hook")).expect("hook");
        let folder = path.is_dir();
        let files = match folder {
            true => SaeFiles { cfg: path.join("config.json"), weights: path.join("sae_weights.safetensors") },
            false => SaeFiles { cfg: path.clone(), weights: path.clone() },
        };
        if !folder {
            assert_eq!(saescope::sae::state_dict::reads(&files), Some(hook), "{name}: the hook from the name");
        }
        assert_eq!(Sae::width(&files).expect("width"), 96);
        // What the registry lays over Llama Scope's config: its norm_scaling_factor.
        let overrides =
            saescope::sae::Overrides { norm_scaling_factor: folder.then(|| r["norm_scaling_factor"].as_f64().expect("factor")), ..Default::default() };
        let sae = Sae::load(&files, 48, hook, &overrides, true, Device::Cpu, Kind::Float).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let z = sae.encode(&x);
        let got = Vec::<f32>::try_from(z.view([-1])).expect("encode");
        let mut firing = 0;
        for (g, w) in got.iter().zip(rows(&want["encode"])) {
            assert!(common::close(f64::from(*g), w, 1e-4), "{name}: {g} vs SAELens {w}");
            firing += usize::from(w > 0.0);
        }
        if want["architecture"] == "topk" {
            assert_eq!(firing, 6 * 8, "{name}: TopK keeps the k = 8 of its repo's name");
        } else if want["architecture"] == "jumprelu" {
            assert!((6..6 * 96).contains(&firing), "{name}: its thresholds keep some features off ({firing})");
        } else {
            assert!(firing > 6 * 8, "{name}: a ReLU SAE fires more than k ({firing})");
        }
        let back = Vec::<f32>::try_from(sae.decode(&z, &x).expect("decode").view([-1])).expect("decode");
        for (g, w) in back.iter().zip(rows(&want["decode"])) {
            assert!(common::close(f64::from(*g), w, 1e-4), "{name}: decode {g} vs SAELens {w}");
        }
    }
    // Away from its repo's name, a Qwen Scope file cannot know its k: it says what to do.
    let tmp = tempfile::tempdir().expect("tmp");
    let moved = tmp.path().join("layer3.sae.pt");
    std::fs::copy(dir.join("SAE-Res-Qwen3-1.7B-Base-W32K-L0_8/layer3.sae.pt"), &moved).expect("copy");
    let files = SaeFiles { cfg: moved.clone(), weights: moved };
    let hook = saescope::model::hooks::HookPoint::parse("blocks.3.hook_resid_post").expect("hook");
    let err = Sae::load(&files, 48, hook, &Default::default(), false, Device::Cpu, Kind::Float).err().expect("no k");
    assert!(format!("{err:#}").contains("--sae-release qwen-scope"), "{err:#}");
}

/// A gated SAE's cfg with weights that lack its gate (another SAE's, or a file cut short)
/// says so, instead of asking for a JumpReLU threshold it never had.
#[test]
fn a_gated_cfg_without_its_gate_says_so() {
    use safetensors::SafeTensors;
    let from = common::fixture("formats").join("gated");
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::copy(from.join("cfg.json"), tmp.path().join("cfg.json")).expect("copy");
    let bytes = std::fs::read(from.join("sae_weights.safetensors")).expect("read");
    let st = SafeTensors::deserialize(&bytes).expect("safetensors");
    let kept: Vec<(String, safetensors::tensor::TensorView)> = st.tensors().into_iter().filter(|(n, _)| n != "r_mag").collect();
    assert!(kept.len() + 1 == st.names().len(), "the fixture has r_mag");
    let weights = tmp.path().join("sae_weights.safetensors");
    safetensors::serialize_to_file(kept, &None, &weights).expect("write");
    let files = SaeFiles { cfg: tmp.path().join("cfg.json"), weights };
    let hook = saescope::model::hooks::HookPoint::parse("blocks.4.hook_mlp_out").expect("hook");
    let err = match Sae::load(&files, 48, hook, &Default::default(), false, Device::Cpu, Kind::Float) {
        Ok(_) => panic!("loaded a gated SAE without r_mag"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("gated") && err.contains("no r_mag") && err.contains("download the SAE again"), "{err}");
}

/// An `.npz` SAE loaded for a report leaves its decoder in the file (Gemma 2's four 16k
/// decoders are 0.6 GB) and reads it when a card asks: the same decoder as one loaded whole.
#[test]
fn an_npz_decoder_is_read_when_asked_for() {
    let dir = common::fixture("formats").join("gemma_scope_npz");
    let npz = std::fs::read_dir(&dir).expect("dir").flatten().map(|e| e.path()).find(|p| p.is_dir()).expect("a layer folder");
    let npz = walk_to_npz(&npz);
    let files = SaeFiles { cfg: npz.clone(), weights: npz };
    let hook = saescope::model::hooks::HookPoint::parse("blocks.3.hook_resid_post").expect("hook");
    let load = |with_decoder| Sae::load(&files, 48, hook, &Default::default(), with_decoder, Device::Cpu, Kind::Float).expect("load");
    let (lazy, whole) = (load(false), load(true));
    let (a, b) = (lazy.decoder().expect("read from the file"), whole.decoder().expect("decoder"));
    assert_eq!(a.size(), b.size());
    assert_eq!((a - b).abs().max().double_value(&[]), 0.0);
}

fn walk_to_npz(dir: &std::path::Path) -> std::path::PathBuf {
    let entries: Vec<std::path::PathBuf> = std::fs::read_dir(dir).expect("dir").flatten().map(|e| e.path()).collect();
    match entries.iter().find(|p| p.extension().is_some_and(|e| e == "npz")) {
        Some(p) => p.clone(),
        None => walk_to_npz(entries.iter().find(|p| p.is_dir()).expect("a folder")),
    }
}

/// Temporal SAEs (canrager/temporalSAEs' folders: conf.yaml, latest_ckpt.safetensors), tied
/// with TopK codes and untied with ReLU codes over two attention layers: the novel codes of
/// two sequences and their decoding equal SAELens's temporal loader's SAE (fixtures from
/// scripts/reference_temporal.py). A position's codes depend on the ones before it: encoded
/// alone, every position but the first differs.
#[test]
fn temporal_saes_encode_sequences_as_saelens_does() {
    let dir = common::fixture("formats/temporal");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).expect("fixture")).expect("json");
    let x: Vec<Vec<Vec<f32>>> = serde_json::from_value(r["x"].clone()).expect("x");
    let flat: Vec<f32> = x.iter().flatten().flatten().copied().collect();
    let x = Tensor::from_slice(&flat).view([2, 7, -1]);
    let cases = r["saes"].as_object().expect("cases");
    assert_eq!(cases.len(), 2);
    let rows = |v: &serde_json::Value| -> Vec<f64> { serde_json::from_value::<Vec<Vec<Vec<f64>>>>(v.clone()).expect("rows").concat().concat() };
    for (name, want) in cases {
        let folder = dir.join(name);
        let files = SaeFiles { cfg: folder.join("conf.yaml"), weights: folder.join("latest_ckpt.safetensors") };
        let hook = saescope::model::hooks::HookPoint::parse(want["hook"].as_str().expect("hook")).expect("hook");
        assert_eq!(Sae::width(&files).expect("width"), 64);
        let sae = Sae::load(&files, 32, hook, &Default::default(), true, Device::Cpu, Kind::Float).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert!(sae.sequential());
        let z = sae.encode(&x);
        let got = Vec::<f32>::try_from(z.view([-1])).expect("encode");
        for (g, w) in got.iter().zip(rows(&want["encode"])) {
            assert!(common::close(f64::from(*g), w, 1e-4), "{name}: {g} vs SAELens {w}");
        }
        if let Some(k) = want["k"].as_i64() {
            let firing = got.iter().filter(|v| **v > 0.0).count() as i64;
            assert_eq!(firing, 2 * 7 * k, "{name}: TopK keeps k = {k} a position");
        }
        let back = Vec::<f32>::try_from(sae.decode(&z, &x).expect("decode").view([-1])).expect("decode");
        for (g, w) in back.iter().zip(rows(&want["decode"])) {
            assert!(common::close(f64::from(*g), w, 1e-4), "{name}: decode {g} vs SAELens {w}");
        }
        // The reconstruction decodes the novel and the predicted codes together, as
        // SAELens's forward does (its decode of the novel codes alone leaves a part out).
        let (codes, recon) = sae.reconstruct(&x).expect("reconstruct");
        assert!(codes.equal(&z), "{name}: reconstruct's codes are encode's");
        let recon = Vec::<f32>::try_from(recon.view([-1])).expect("forward");
        let mut apart = 0.0f64;
        for ((g, w), novel) in recon.iter().zip(rows(&want["forward"])).zip(&back) {
            assert!(common::close(f64::from(*g), w, 1e-4), "{name}: reconstruction {g} vs SAELens forward {w}");
            apart = apart.max((f64::from(*novel) - w).abs());
        }
        assert!(apart > 1e-2, "{name}: the predicted codes add to the reconstruction ({apart})");
        // Each position alone, a sequence of one: only the first keeps its codes.
        let alone = sae.encode(&x.get(0).unsqueeze(1)).squeeze_dim(1);
        let same = |p: i64| alone.get(p).allclose(&z.get(0).get(p), 1e-5, 1e-6, false);
        assert!(same(0), "{name}: the first position has no context either way");
        assert!((1..7).all(|p| !same(p)), "{name}: later positions read the ones before");
    }
}
