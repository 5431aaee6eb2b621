//! SAE encode for every supported architecture and normalisation, against the formulas of
//! docs/method.md's "Method" computed independently in plain Rust.

use saescope::sae::Sae;
use saescope::source::SaeFiles;
use safetensors::tensor::{Dtype, TensorView};

const D: usize = 6;
const F: usize = 10;

fn rnd(seed: &mut u64, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((*seed >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 2.0 * scale
        })
        .collect()
}

struct Weights {
    w_enc: Vec<f32>,
    b_enc: Vec<f32>,
    b_dec: Vec<f32>,
    threshold: Vec<f32>,
}

fn write(dir: &std::path::Path, cfg: serde_json::Value, w: &Weights) -> SaeFiles {
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let f = w.b_enc.len();
    let (e, be, bd, th, dec) = (bytes(&w.w_enc), bytes(&w.b_enc), bytes(&w.b_dec), bytes(&w.threshold), bytes(&vec![0.0; f * D]));
    let views = vec![
        ("W_enc", TensorView::new(Dtype::F32, vec![D, f], &e).expect("v")),
        ("b_enc", TensorView::new(Dtype::F32, vec![f], &be).expect("v")),
        ("b_dec", TensorView::new(Dtype::F32, vec![D], &bd).expect("v")),
        ("threshold", TensorView::new(Dtype::F32, vec![f], &th).expect("v")),
        ("W_dec", TensorView::new(Dtype::F32, vec![f, D], &dec).expect("v")),
    ];
    let weights = dir.join("sae_weights.safetensors");
    safetensors::serialize_to_file(views, &None, &weights).expect("write");
    let cfg_path = dir.join("cfg.json");
    std::fs::write(&cfg_path, cfg.to_string()).expect("cfg");
    SaeFiles { cfg: cfg_path, weights }
}

/// z = (norm(x) - b_dec) @ W_enc + b_enc, computed by hand.
fn pre(x: &[f32], w: &Weights, norm: &str) -> Vec<f32> {
    let x: Vec<f32> = match norm {
        "constant_norm_rescale" => {
            let n = x.iter().map(|v| v * v).sum::<f32>().sqrt();
            x.iter().map(|v| v * (D as f32).sqrt() / n).collect()
        }
        "layer_norm" => {
            let m = x.iter().sum::<f32>() / D as f32;
            let c: Vec<f32> = x.iter().map(|v| v - m).collect();
            let sd = (c.iter().map(|v| v * v).sum::<f32>() / (D as f32 - 1.0)).sqrt();
            c.iter().map(|v| v / (sd + 1e-5)).collect()
        }
        _ => x.to_vec(),
    };
    (0..F).map(|f| (0..D).map(|i| (x[i] - w.b_dec[i]) * w.w_enc[i * F + f]).sum::<f32>() + w.b_enc[f]).collect()
}

fn load(files: &SaeFiles) -> Sae {
    Sae::load(
        files,
        D,
        saescope::model::hooks::HookPoint::new(3, saescope::model::hooks::Site::ResidPre),
        &saescope::sae::Overrides::default(),
        false,
        tch::Device::Cpu,
        tch::Kind::Float,
    )
    .expect("load")
}

fn encode(files: &SaeFiles, x: &[f32]) -> Vec<f32> {
    let sae = load(files);
    let t = sae.encode(&tch::Tensor::from_slice(x).view([1, D as i64]));
    Vec::<f32>::try_from(t.view([-1])).expect("vec")
}

#[test]
fn every_architecture_matches_its_formula() {
    let mut seed = 42;
    let w = Weights {
        w_enc: rnd(&mut seed, D * F, 1.0),
        b_enc: rnd(&mut seed, F, 0.5),
        b_dec: rnd(&mut seed, D, 0.3),
        threshold: rnd(&mut seed, F, 3.0).iter().map(|t| t.abs()).collect(),
    };
    let x = rnd(&mut seed, D, 2.0);
    let dir = tempfile::tempdir().expect("tmp");
    let base = serde_json::json!({"d_in": D, "d_sae": F, "hook_name": "blocks.3.hook_resid_pre", "dtype": "float32"});
    let with = |extra: serde_json::Value| {
        let mut c = base.clone();
        c.as_object_mut().expect("obj").extend(extra.as_object().expect("obj").clone());
        c
    };
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);

    for norm in ["none", "constant_norm_rescale", "layer_norm"] {
        let z = pre(&x, &w, norm);
        let relu: Vec<f32> = z.iter().map(|v| v.max(0.0)).collect();
        let got = encode(&write(dir.path(), with(serde_json::json!({"architecture": "standard", "normalize_activations": norm})), &w), &x);
        assert!(close(&got, &relu), "standard/{norm}: {got:?} vs {relu:?}");

        let jump: Vec<f32> = z.iter().zip(&w.threshold).map(|(&v, &t)| if v > t { v } else { 0.0 }).collect();
        let got = encode(&write(dir.path(), with(serde_json::json!({"architecture": "jumprelu", "normalize_activations": norm})), &w), &x);
        assert!(close(&got, &jump), "jumprelu/{norm}: {got:?} vs {jump:?}");
        assert!(jump.iter().zip(&relu).any(|(a, b)| a != b), "the threshold must matter in this case");

        let mut order: Vec<usize> = (0..F).collect();
        order.sort_by(|&a, &b| z[b].total_cmp(&z[a]));
        let topk: Vec<f32> = (0..F).map(|f| if order[..3].contains(&f) { z[f].max(0.0) } else { 0.0 }).collect();
        let got = encode(&write(dir.path(), with(serde_json::json!({"architecture": "topk", "k": 3, "normalize_activations": norm})), &w), &x);
        assert!(close(&got, &topk), "topk/{norm}: {got:?} vs {topk:?}");
    }
    // apply_b_dec_to_input false: b_dec is not subtracted.
    let no_dec = Weights { b_dec: vec![0.0; D], ..Weights { w_enc: w.w_enc.clone(), b_enc: w.b_enc.clone(), b_dec: vec![], threshold: w.threshold.clone() } };
    let want: Vec<f32> = pre(&x, &no_dec, "none").iter().map(|v| v.max(0.0)).collect();
    let got = encode(&write(dir.path(), with(serde_json::json!({"apply_b_dec_to_input": false})), &w), &x);
    assert!(close(&got, &want), "apply_b_dec_to_input=false");
    // Old jb-format cfg: hook_point and expansion_factor instead of hook_name and d_sae.
    let old = serde_json::json!({"d_in": D, "expansion_factor": F / D + 1, "hook_point": "blocks.3.hook_resid_pre"});
    let err = Sae::load(
        &write(dir.path(), old, &w),
        D,
        saescope::model::hooks::HookPoint::new(3, saescope::model::hooks::Site::ResidPre),
        &saescope::sae::Overrides::default(),
        false,
        tch::Device::Cpu,
        tch::Kind::Float,
    )
    .err()
    .expect("12 != 10 features");
    assert!(err.to_string().contains("W_enc"), "{err}");
    let old = serde_json::json!({"d_in": D, "hook_point": "blocks.3.hook_resid_pre"});
    let got = encode(&write(dir.path(), old, &w), &x);
    assert!(close(&got, &pre(&x, &w, "none").iter().map(|v| v.max(0.0)).collect::<Vec<_>>()), "d_sae from W_enc's shape");
}

/// The report's encode, a block of features at a time, is `encode` cut into consecutive
/// blocks: every feature once, in order, the same values, for each architecture and a
/// width that is no multiple of the block.
#[test]
fn blocks_of_features_are_the_whole_encode() {
    const WIDE: usize = 2000;
    let mut seed = 7;
    let w = Weights {
        w_enc: rnd(&mut seed, D * WIDE, 1.0),
        b_enc: rnd(&mut seed, WIDE, 0.5),
        b_dec: rnd(&mut seed, D, 0.3),
        threshold: rnd(&mut seed, WIDE, 2.0).iter().map(|t| t.abs()).collect(),
    };
    // 4 x 256 rows: about 1 MiB of output is 256 features a block, so several blocks.
    let x = tch::Tensor::from_slice(&rnd(&mut seed, 4 * 256 * D, 2.0)).view([4, 256, D as i64]);
    let dir = tempfile::tempdir().expect("tmp");
    for (arch, extra) in [("standard", serde_json::json!({})), ("jumprelu", serde_json::json!({})), ("topk", serde_json::json!({"k": 7}))] {
        let mut cfg =
            serde_json::json!({"d_in": D, "d_sae": WIDE, "hook_name": "blocks.3.hook_resid_pre", "architecture": arch, "normalize_activations": "layer_norm"});
        cfg.as_object_mut().expect("obj").extend(extra.as_object().expect("obj").clone());
        let sae = load(&write(dir.path(), cfg, &w));
        let whole = sae.encode(&x);
        let mut blocks = Vec::new();
        sae.encode_blocks(&x, |first, a| {
            assert_eq!(a.size()[..2], [4, 256], "{arch}: a block keeps the input's leading shape");
            blocks.push((first, a));
            Ok(())
        })
        .expect("blocks");
        let mut next = 0;
        for (first, a) in &blocks {
            assert_eq!(*first, next, "{arch}: blocks are consecutive");
            next += a.size()[2] as usize;
        }
        assert_eq!(next, WIDE, "{arch}: the blocks cover every feature");
        if arch == "topk" {
            assert_eq!(blocks.len(), 1, "TopK needs every feature at once");
        } else {
            assert!(blocks.len() > 2, "{arch}: {} blocks", blocks.len());
        }
        let cat = tch::Tensor::cat(&blocks.iter().map(|(_, a)| a.shallow_clone()).collect::<Vec<_>>(), -1);
        let diff = (&cat - &whole).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{arch}: blocks differ from the whole encode by {diff}");
        assert!(whole.gt(0.0).sum(tch::Kind::Int64).int64_value(&[]) > 100, "{arch}: features fire");
    }
}
