//! `saescope eval` against SAELens's own eval functions (`get_sparsity_and_variance_metrics`
//! and `get_downstream_reconstruction_metrics`, fixtures from scripts/reference_eval.py) on
//! the tiny synthetic weights: the res-jb SAEs at resid_pre and resid_post, the mixed
//! release (an uncentred TopK attn_out SAE with layer_norm input, a centred mlp_out SAE
//! with its registry scale folded) and the kk SAEs on `attn.hook_z`. Every figure is
//! within 1e-4 relative; the CE score, a ratio whose denominator is tiny on random weights,
//! within what the losses' agreement allows.

use crate::common;

use common::releases::{all, KK, MIXED};
use saescope::analysis::eval::EvalOptions;
use saescope::corpus::samples::Samples;
use saescope::pipeline::{Engine, RunOptions};
use saescope::runtime::progress::ProgressSink;
use serde_json::Value;

/// The fixture's texts, BOS first, as the reference tokenised them.
fn texts(e: &Engine) -> Vec<Vec<u32>> {
    let samples = Samples::load(&common::fixture("reference_samples.toml")).expect("samples");
    e.tokenize(&samples, &RunOptions::default(), &ProgressSink::none()).expect("tokenize")
}

const SCALARS: &[&str] = &[
    "l1",
    "explained_variance",
    "explained_variance_legacy",
    "mse",
    "cossim",
    "l2_norm_in",
    "l2_norm_out",
    "l2_ratio",
    "relative_reconstruction_bias",
    "ce_loss_without_sae",
    "ce_loss_with_sae",
    "ce_loss_with_ablation",
    "kl_div_with_sae",
    "kl_div_with_ablation",
    "kl_div_score",
];
const COUNTS: &[&str] = &["tokens", "ce_tokens", "kl_tokens", "d_sae"];
const REL: f64 = 1e-4;

/// Per feature of SAE `si`, the counted (token, feature) pairs of `texts` whose
/// pre-activation lies within 1e-4 of 0.
fn near_zero(e: &Engine, texts: &[Vec<u32>], si: usize) -> Vec<u64> {
    let p = saescope::pipeline::pack(texts.iter().map(Vec::as_slice), true, e.tokenizer.bos);
    let x = &e.inputs(&p).expect("inputs")[si];
    let counted = p.mask.logical_and(&p.ids.ne(i64::from(e.tokenizer.bos))).unsqueeze(-1);
    let near = e.saes[si].1.pre_activations(x).abs().lt(1e-4).logical_and(&counted);
    Vec::<i64>::try_from(near.sum_dim_intlist([0i64, 1].as_slice(), false, tch::Kind::Int64)).expect("counts").into_iter().map(|c| c as u64).collect()
}

fn check(e: &Engine, fixture: &str, opts: &EvalOptions) {
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(common::fixture(fixture)).expect("fixture")).expect("json");
    let got = saescope::analysis::eval::evaluate(e, &texts(e), "fixture".into(), opts, &ProgressSink::none()).expect("eval");
    let want = fx["saes"].as_array().expect("saes");
    assert_eq!(got.saes.len(), want.len(), "{fixture}: SAEs");
    for (si, (q, w)) in got.saes.iter().zip(want).enumerate() {
        let hook = w["hook"].as_str().expect("hook");
        assert_eq!(q.hook, hook, "{fixture}: SAE order");
        let g = serde_json::to_value(q).expect("serialize");
        for &name in SCALARS {
            let (a, b) = (g[name].as_f64().expect(name), w[name].as_f64().expect(name));
            assert!(common::close(a, b, REL), "{fixture} {hook} {name}: saescope {a} vs SAELens {b}");
        }
        for &name in COUNTS {
            assert_eq!(g[name], w[name], "{fixture} {hook} {name}");
        }
        // (abl - sae) / (abl - clean): each loss within REL moves it by up to this much.
        let (clean, sae, abl) = (q.ce_loss_without_sae, q.ce_loss_with_sae, q.ce_loss_with_ablation);
        let denom = abl - clean;
        let tol = REL * (abl.abs() + sae.abs() + (1.0 + q.ce_loss_score.abs()) * (abl.abs() + clean.abs())) / denom.abs();
        let want_score = w["ce_loss_score"].as_f64().expect("score");
        assert!((q.ce_loss_score - want_score).abs() <= tol, "{fixture} {hook} ce_loss_score: {} vs {want_score} (tolerance {tol})", q.ce_loss_score);
        // Whether a feature fires is a cut at 0: where its pre-activation is within float
        // noise of it the two stacks may disagree, and only there. Such (token, feature)
        // pairs are counted; every difference in a firing count must be one of them.
        let near = near_zero(e, &texts(e), si);
        let density = w["feature_density"].as_array().expect("density");
        assert_eq!(q.density.len(), density.len(), "{fixture} {hook}: features");
        let n = q.tokens as f64;
        let (mut flips, mut moved) = (0u64, 0usize);
        for (f, (a, b)) in q.density.iter().zip(density).enumerate() {
            let diff = ((a - b.as_f64().expect("density")).abs() * n).round() as u64;
            assert!(diff <= near[f], "{fixture} {hook} feature {f}: fires on {diff} tokens more or less than in SAELens, {} of them borderline", near[f]);
            flips += diff;
            moved += usize::from(diff > 0);
        }
        let l0_diff = ((q.l0 - w["l0"].as_f64().expect("l0")).abs() * n).round() as u64;
        assert!(l0_diff <= flips, "{fixture} {hook} l0: {} vs {} ({l0_diff} firings apart, {flips} borderline)", q.l0, w["l0"]);
        for name in ["dead", "dense_1pct", "dense_10pct"] {
            let apart = g[name].as_u64().expect(name).abs_diff(w[name].as_u64().expect(name)) as usize;
            assert!(apart <= moved, "{fixture} {hook} {name}: {} vs {} with {moved} features moved", g[name], w[name]);
        }
    }
}

#[test]
fn res_jb_saes_equal_saelens_run_evals() {
    // Small batches: several padded batches per pass, and the legacy variance's mean still
    // the whole set's.
    let e = common::full_engine(&[0, 6, 8, 12]);
    check(&e, "eval_tiny.json", &EvalOptions::all(64));
    // With no inputs kept in memory, the legacy variance's second forward gives the same.
    check(&e, "eval_tiny.json", &EvalOptions { keep_values: 0, ..EvalOptions::all(64) });
}

#[test]
fn attn_out_mlp_out_and_hook_z_saes_equal_saelens_run_evals() {
    let dir = |name: &str| all().iter().find(|(_, r)| *r == name).map(|(d, _)| d.clone()).expect("release");
    check(&common::releases::engine(&dir(MIXED), MIXED, &[8]), "eval_mixed.json", &EvalOptions::all(256));
    check(&common::releases::engine(&dir(KK), KK, &[5, 8]), "eval_kk.json", &EvalOptions::all(256));
}

#[test]
fn batched_spliced_forwards_equal_one_text_at_a_time() {
    let e = common::full_engine(&[6]);
    common::check_batched_logits(&e, &texts(&e), saescope::model::hooks::HookPoint::new(6, saescope::model::hooks::Site::ResidPre));
}

/// `saescope eval` as a script runs it: JSON to a file equal to the library's figures, the
/// table on standard output, a corpus cut into windows and capped, and bad paths refused in
/// one line.
#[test]
fn the_eval_command_writes_json_text_and_reads_a_corpus() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("eval.json");
    let samples = common::fixture("reference_samples.toml");
    let run = |args: &[&str]| common::tiny_args(&mut common::saescope()).args(["eval", "--layers", "6"]).args(args).output().expect("run");
    let o = run(&["--samples", samples.to_str().expect("path"), "--format", "json", "-o", out.to_str().expect("path")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("written")).expect("json");
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(common::fixture("eval_tiny.json")).expect("fixture")).expect("json");
    let want = fx["saes"].as_array().expect("saes").iter().find(|s| s["hook"] == "blocks.6.hook_resid_pre").expect("layer 6");
    let q = &got["saes"][0];
    assert_eq!(q["sae"], "6 res 512");
    for name in ["explained_variance", "mse", "ce_loss_with_sae", "kl_div_score"] {
        let (a, b) = (q[name].as_f64().expect(name), want[name].as_f64().expect(name));
        assert!(common::close(a, b, 1e-4), "{name}: {a} vs {b}");
    }
    let o = run(&["--samples", samples.to_str().expect("path")]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("SAE quality on ") && text.contains("\n6 res 512\t229\t"), "{text}");
    let o = run(&["--corpus", common::fixture("corpus").to_str().expect("path"), "--max-tokens", "300", "--format", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(got["texts"].as_str().is_some_and(|t| t.contains("windows") && t.contains("300 tokens")), "{}", got["texts"]);
    assert!(got["saes"][0]["tokens"].as_u64().is_some_and(|n| n > 0 && n <= 300), "{}", got["saes"][0]["tokens"]);
    for (args, says) in [(vec!["--corpus", "/no/such/corpus"], "/no/such/corpus"), (vec!["-o", "/no/such/dir/eval.json"], "/no/such/dir")] {
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{args:?}: {err}");
    }
}

/// The tiny model as `GPT2LMHeadModel(GPT2Config())` starts: every bias zero, every
/// LayerNorm weight one, the weights at about its std of 0.02 (the synthetic ones, 0.1,
/// scaled by 0.2).
fn zero_bias_model() -> std::path::PathBuf {
    let dir = common::kept_dir();
    common::rewrite_model(&common::tiny().join("model"), &dir, |name, mut v| {
        let value = |x: f32| {
            if name.ends_with(".bias") {
                0.0
            } else if name.contains("ln_") {
                1.0
            } else {
                x * 0.2
            }
        };
        v.iter_mut().for_each(|x| *x = value(*x));
        (safetensors::tensor::Dtype::F32, common::f32_bytes(&v))
    });
    dir
}

/// Zero-ablating `resid_pre` of a zero-bias GPT-2 leaves nothing for later blocks to write:
/// the logits are uniform, so CE with ablation is ln(vocab) at every layer and KL with
/// ablation is the same at every layer, exactly as SAELens measures them. A splice written
/// as `h + (0 - view(h))` left the residual's mean plus the rounding of that subtraction,
/// which the next LayerNorm scaled up: CE with ablation read 10.852 here (10.95 on a
/// full-size model), not ln(50257) = 10.825.
#[test]
fn zero_ablation_of_a_zero_bias_model_gives_uniform_logits() {
    let mut run = common::tiny_run(&[2, 6, 10]);
    run.model = saescope::source::Source::Dir(zero_bias_model().to_path_buf());
    let e = saescope::pipeline::Resolved::new(&run.model, &run.saes, &ProgressSink::none())
        .expect("resolve")
        .load_full(tch::Device::Cpu, &RunOptions::default(), &ProgressSink::none())
        .expect("load");
    let got = saescope::analysis::eval::evaluate(&e, &texts(&e), "zero-bias".into(), &EvalOptions::all(256), &ProgressSink::none()).expect("eval");
    let uniform = (50257f64).ln();
    let kl: Vec<f64> = got.saes.iter().map(|q| q.kl_div_with_ablation).collect();
    for q in &got.saes {
        assert!(common::close(q.ce_loss_with_ablation, uniform, 1e-4), "{}: CE with ablation {} against ln(50257) = {uniform}", q.sae, q.ce_loss_with_ablation);
        assert!(
            common::close(q.kl_div_with_ablation, kl[0], 1e-4),
            "{}: KL with ablation {} against {} at the first SAE",
            q.sae,
            q.kl_div_with_ablation,
            kl[0]
        );
    }
}

/// SAEs that reconstruct: PCA SAEs (scripts/make_pca_saes.py) built from the tiny model's
/// own resid_pre activations at layers 7 and 11, the top-16 principal directions and their
/// negatives over the mean (d_sae 32, explained variance 0.83), on a model whose biases are
/// not zero. The losses with the splice sit between the clean and the ablated ones, and at
/// these layers ablating costs the most (0.28 and 0.18 nats), so the CE and KL scores are
/// well-conditioned ratios: every figure, the scores and both ablated losses included, is
/// within 1e-4 relative of SAELens (eval_pca.json), and so is the mean input norm, from
/// the per-text norms.
#[test]
fn pca_saes_with_positive_explained_variance_equal_saelens_on_every_figure() {
    let run = common::run_of(&common::fixture("eval_pca"), &[7, 11]);
    let e = saescope::pipeline::Resolved::new(&run.model, &run.saes, &ProgressSink::none())
        .expect("resolve")
        .load_full(tch::Device::Cpu, &RunOptions::default(), &ProgressSink::none())
        .expect("load");
    let opts = EvalOptions::all(64);
    check(&e, "eval_pca.json", &opts);
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(common::fixture("eval_pca.json")).expect("fixture")).expect("json");
    let want = fx["saes"].as_array().expect("saes");
    let texts = texts(&e);
    let got = saescope::analysis::eval::evaluate(&e, &texts, "fixture".into(), &opts, &ProgressSink::none()).expect("eval");
    // Counted tokens per text: all but BOS (GPT-2's only special token, wherever it stands).
    let counted: Vec<f64> = texts.iter().map(|t| t.iter().filter(|&&id| id != e.tokenizer.bos).count() as f64).collect();
    for (q, w) in got.saes.iter().zip(want) {
        let hook = w["hook"].as_str().expect("hook");
        let ev = w["explained_variance"].as_f64().expect("explained_variance");
        assert!(ev > 0.3, "{hook}: the fixture's explained variance {ev} is no longer clearly positive");
        let mean_norm = q.text_norms.iter().zip(&counted).filter(|(_, &n)| n > 0.0).map(|(m, n)| m * n).sum::<f64>() / counted.iter().sum::<f64>();
        for (name, a) in [
            ("l0", q.l0),
            ("ce_loss_with_ablation", q.ce_loss_with_ablation),
            ("kl_div_with_ablation", q.kl_div_with_ablation),
            ("ce_loss_score", q.ce_loss_score),
            ("kl_div_score", q.kl_div_score),
            ("mean_norm", mean_norm),
        ] {
            let b = w[name].as_f64().expect(name);
            assert!(common::close(a, b, REL), "eval_pca.json {hook} {name}: saescope {a} vs SAELens {b}");
        }
        for name in ["dead", "dense_1pct", "dense_10pct"] {
            assert_eq!(serde_json::to_value(q).expect("serialize")[name], w[name], "eval_pca.json {hook} {name}");
        }
    }
}
