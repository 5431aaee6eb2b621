//! Differential test against the Python reference stack (TransformerLens with default
//! weight processing + SAELens encode), whose outputs on the tiny synthetic weights are
//! committed in tests/fixtures (regenerate: `bash scripts/gen-fixtures`).

use crate::common;

use common::{close, engine, fixture, opts};
use saescope::analysis::{analyze, Params};
use saescope::corpus::samples::Samples;
use saescope::output::report::Report;
use serde_json::Value;

const REL: f64 = 1e-4;

fn check_against(fixture_name: &str, include_bos: bool) {
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(fixture(fixture_name)).expect("fixture")).expect("json");
    let layers: Vec<usize> = reference["layers"].as_array().expect("layers").iter().map(|v| v.as_u64().expect("int") as usize).collect();
    let samples = Samples::load(&fixture("reference_samples.toml")).expect("samples");
    let eng = engine(&layers);
    // A small batch budget forces several batches with heavy padding.
    let set = saescope::pipeline::compute::run(&eng, &samples, &opts(include_bos, 64), &saescope::runtime::progress::ProgressSink::none()).expect("run");
    let report = Report::new(String::new(), String::new(), &set, &analyze(&set, Params::default()));
    let ours: Value = serde_json::from_str(&report.json().expect("json")).expect("parse");

    let (rt, ot) = (reference["texts"].as_array().expect("texts"), ours["texts"].as_array().expect("texts"));
    assert_eq!(rt.len(), ot.len());
    for (r, o) in rt.iter().zip(ot) {
        let text = r["text"].as_str().expect("text");
        assert_eq!(text, o["text"].as_str().expect("text"));
        let ids: Vec<u32> = r["tokens"].as_array().expect("tokens").iter().map(|v| v.as_u64().expect("id") as u32).collect();
        assert_eq!(eng.tokenizer.encode_with_bos(text).expect("tokenize"), ids, "tokens of {text:?}");
        assert_eq!(r["n_tokens"], o["n_tokens"], "n_tokens of {text:?}");
        for (rl, ol) in r["layers"].as_array().expect("l").iter().zip(o["layers"].as_array().expect("l")) {
            let what = format!("text {text:?} layer {}", rl["layer"]);
            assert!(close(rl["total"].as_f64().expect("f"), ol["total"].as_f64().expect("f"), REL), "{what}: total");
            let (rtop, otop) = (rl["top"].as_array().expect("top"), ol["top"].as_array().expect("top"));
            assert_eq!(rtop.len(), otop.len(), "{what}: number of firing features in the top 32");
            let last = rtop.last().map_or(0.0, |x| x["activation"].as_f64().expect("f"));
            for (i, (a, b)) in rtop.iter().zip(otop).enumerate() {
                let (fa, fb) = (&a["feature"], &b["feature"]);
                let (va, vb) = (a["activation"].as_f64().expect("f"), b["activation"].as_f64().expect("f"));
                assert!(close(va, vb, REL), "{what} rank {i}: activation {va} vs {vb}");
                // Features may only trade places where their values tie within tolerance.
                if fa != fb {
                    let partner = otop.iter().find(|x| &x["feature"] == fa).map(|x| x["activation"].as_f64().expect("f"));
                    assert!(partner.is_some_and(|p| close(p, va, REL)) || close(va, last, REL), "{what} rank {i}: feature {fa} vs {fb}");
                }
            }
        }
    }

    let (rc, oc) = (reference["categories"].as_array().expect("c"), ours["categories"].as_array().expect("c"));
    assert_eq!(rc.len(), oc.len());
    for (r, o) in rc.iter().zip(oc) {
        assert_eq!(r["name"], o["name"]);
        assert_eq!(r["n_texts"], o["n_texts"]);
        for (rl, ol) in r["layers"].as_array().expect("l").iter().zip(o["layers"].as_array().expect("l")) {
            let what = format!("category {} layer {}", r["name"], rl["layer"]);
            for k in ["peak", "gini", "top_sum", "top_share"] {
                let (a, b) = (rl[k].as_f64().expect("f"), ol[k].as_f64().expect("f"));
                assert!(close(a, b, REL), "{what}: {k} {a} vs {b}");
            }
            assert_eq!(rl["spec"], ol["spec"], "{what}: spec");
            let features = |l: &Value| l["top"].as_array().expect("top").iter().map(|t| (t["feature"].clone(), t["specialist"].clone())).collect::<Vec<_>>();
            assert_eq!(features(rl), features(ol), "{what}: top features and specialist scores");
        }
    }
}

#[test]
fn matches_transformerlens_and_saelens_bos_excluded() {
    check_against("reference_tiny.json", false);
}

#[test]
fn matches_transformerlens_and_saelens_bos_included() {
    check_against("reference_tiny_bos.json", true);
}
