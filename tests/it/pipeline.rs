//! Invariants of inputs -> activations that the study's author learnt the hard way.

use crate::common;

use common::{engine, opts};
use saescope::pipeline::pack;
use saescope::runtime::progress::ProgressSink;

const TEXTS: [&str; 4] = [
    "Rain.",
    "The committee will reconvene on Thursday to review the revised budget proposal and vote on the amendments, after which the chair will close the session.",
    "def f(x):\n    return x",
    "ok",
];

fn tokens(e: &saescope::pipeline::Engine) -> Vec<Vec<u32>> {
    TEXTS.iter().map(|t| e.tokenizer.encode_with_bos(t).expect("tokenize")).collect()
}

#[test]
fn batching_never_changes_a_texts_vector() {
    let e = engine(&[6, 12]);
    let toks = tokens(&e);
    let none = ProgressSink::none();
    for bos in [false, true] {
        let batched = e.text_vectors(&toks, &opts(bos, 4096), &none).expect("batched");
        for (i, t) in toks.iter().enumerate() {
            let alone = e.text_vectors(std::slice::from_ref(t), &opts(bos, 4096), &none).expect("alone");
            assert_eq!(alone[0].0, batched[i].0, "n_tokens");
            for (a, b) in alone[0].1.iter().zip(&batched[i].1) {
                // Dense comparison over both vectors' features: equal up to float rounding
                // (batch shape changes matmul blocking, nothing else). An activation is a
                // difference of pre-activation and bias, so rounding is absolute: 1e-4 of
                // max(value, 1).
                for f in a.idx.iter().chain(&b.idx) {
                    let (x, y) = (a.get(*f) as f64, b.get(*f) as f64);
                    assert!((x - y).abs() <= 1e-4 * x.abs().max(y.abs()).max(1.0), "{:?} feature {f}: {x} alone vs {y} batched", TEXTS[i]);
                }
            }
        }
    }
}

#[test]
fn padding_is_never_counted() {
    let e = engine(&[8]);
    let toks = tokens(&e);
    let p = pack(toks.iter().map(|t| t.as_slice()), false, e.tokenizer.bos);
    let w = Vec::<f32>::try_from(p.weights.view([-1])).expect("weights");
    let t = toks.iter().map(|x| x.len()).max().expect("len");
    for (r, row) in toks.iter().enumerate() {
        let ws = &w[r * t..(r + 1) * t];
        assert_eq!(ws[0], 0.0, "BOS excluded by default");
        assert!(ws[row.len()..].iter().all(|&x| x == 0.0), "padding weighted");
        let s: f32 = ws.iter().sum();
        assert!((s - 1.0).abs() < 1e-5, "weights sum to 1, got {s}");
        assert_eq!(p.n_tokens[r], row.len() - 1);
    }
}

#[test]
fn encode_then_mean_differs_from_mean_then_encode() {
    let _g = tch::no_grad_guard();
    let e = engine(&[10]);
    let toks = tokens(&e);
    let one = &toks[1];
    let p = pack(std::iter::once(one.as_slice()), false, e.tokenizer.bos);
    let resid = e.inputs(&p).expect("resid").remove(0).squeeze_dim(0).narrow(0, 1, one.len() as i64 - 1);
    let sae = &e.saes[0].1;
    let encode_then_mean = sae.encode(&resid).mean_dim(0, false, tch::Kind::Float);
    let mean_then_encode = sae.encode(&resid.mean_dim(0, true, tch::Kind::Float)).squeeze_dim(0);
    let ours = e.text_vectors(std::slice::from_ref(one), &opts(false, 4096), &ProgressSink::none()).expect("run");
    let ours = tch::Tensor::from_slice(&(0..sae.d_sae as u32).map(|f| ours[0].1[0].get(f)).collect::<Vec<_>>());
    let diff = |a: &tch::Tensor, b: &tch::Tensor| (a - b).abs().max().double_value(&[]);
    assert!(diff(&ours, &encode_then_mean) < 1e-4, "the pipeline encodes, then averages");
    let gap = diff(&encode_then_mean, &mean_then_encode);
    assert!(gap > 0.5, "mean-then-encode should differ visibly (gap {gap})");
    // More features fire token by token than on the averaged residual.
    let count = |t: &tch::Tensor| t.gt(0.0).sum(tch::Kind::Int64).int64_value(&[]);
    assert_ne!(count(&encode_then_mean), count(&mean_then_encode));
}

#[test]
fn residual_is_centred_like_transformerlens() {
    let _g = tch::no_grad_guard();
    let e = engine(&[0, 6, 12]);
    let toks = tokens(&e);
    let p = pack(toks.iter().map(|t| t.as_slice()), true, e.tokenizer.bos);
    for r in e.inputs(&p).expect("resid") {
        let m = r.mean_dim(-1, false, tch::Kind::Float).abs().max().double_value(&[]);
        assert!(m < 1e-5, "per-token mean over d_model is {m}");
    }
}

#[test]
fn text_longer_than_n_ctx_is_an_error_or_truncated_on_request() {
    let e = engine(&[6]);
    let long = "word ".repeat(1100);
    let samples = saescope::corpus::samples::Samples::parse(&format!("[[category]]\nname = \"Long\"\ntexts = [\"{long}\"]\n"), "t").expect("parse");
    let err = saescope::pipeline::compute::run(&e, &samples, &opts(false, 4096), &ProgressSink::none()).expect_err("too long").to_string();
    assert!(err.contains("n_ctx 1024") && err.contains("--truncate") && err.contains("\"Long\""), "{err}");
    let mut o = opts(false, 4096);
    o.truncate = true;
    let set = saescope::pipeline::compute::run(&e, &samples, &o, &ProgressSink::none()).expect("truncated run");
    assert_eq!(set.texts[0].n_tokens, 1023);
}

/// `--dtype bf16` runs the same method at about three significant digits: metrics within a
/// few percent of f32, the same top feature where it is not a near tie; its results never
/// share a cache file with f32's; f16 is refused on CPU with advice.
#[test]
fn bf16_stays_close_to_f32_and_f16_is_refused_on_cpu() {
    use saescope::analysis::{analyze, Params};
    use saescope::pipeline::{Precision, Resolved, RunOptions};
    let layers = [6, 8, 10, 11];
    let d = common::tiny();
    let tiny = common::run_of(&d.join("saes"), &layers);
    let (model, saes) = (tiny.model.clone(), tiny.saes.clone());
    let none = ProgressSink::none();
    let samples = saescope::corpus::samples::Samples::bundled().expect("samples");
    let run = |dtype| {
        let o = RunOptions { dtype, ..Default::default() };
        let r = Resolved::new(&model, &saes, &none).expect("resolve");
        let id = r.identity(&o).expect("identity");
        let e = r.load(tch::Device::Cpu, true, &o, &none).expect("load");
        assert_eq!(e.model.kind(), dtype.kind());
        let lens = saescope::interp::lens::logit_lens(&e, common::key(8), 3, 10).expect("lens in this dtype");
        let set = saescope::pipeline::compute::run(&e, &samples, &o, &none).expect("run");
        (id, analyze(&set, Params::default()), lens)
    };
    let (id32, a32, lens32) = run(Precision::F32);
    let (id16, a16, lens16) = run(Precision::Bf16);
    assert_ne!(id32, id16, "separate cache identities");
    let (mut same_top, mut n) = (0, 0);
    for (l32, l16) in a32.saes.iter().zip(&a16.saes) {
        for (c32, c16) in l32.categories.iter().zip(&l16.categories) {
            assert!(common::close(c32.peak as f64, c16.peak as f64, 0.05), "peak {} vs {}", c32.peak, c16.peak);
            assert!(common::close(c32.top_sum as f64, c16.top_sum as f64, 0.03), "sum {} vs {}", c32.top_sum, c16.top_sum);
            same_top += usize::from(c32.top[0].feature == c16.top[0].feature);
            n += 1;
        }
    }
    assert!(same_top * 10 >= n * 8, "top feature agrees in {same_top} of {n}");
    let common_promoted = lens32.promoted.iter().filter(|t| lens16.promoted.iter().any(|u| u.token_id == t.token_id)).count();
    assert!(common_promoted >= 7, "logit lens top 10 mostly shared: {common_promoted}");

    let o = RunOptions { dtype: Precision::F16, ..Default::default() };
    let err = Resolved::new(&model, &saes, &none).expect("resolve").load(tch::Device::Cpu, false, &o, &none).err().expect("f16 on CPU refused");
    assert!(err.to_string().contains("use --dtype bf16"), "{err}");
}
