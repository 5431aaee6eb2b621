//! Attribution against TransformerLens + SAELens on the tiny weights (fixture from
//! scripts/reference_attribute.py): the target, its centred logit and probability, each
//! layer's top features by |activation x gradient| with their scores (TL autograd through
//! `run_with_hooks`), and the change when each is ablated everywhere.

use crate::common;

use common::{close, fixture, full_engine, saescope, tiny_args};

#[test]
fn attribution_and_ablation_equal_transformer_lens() {
    let fx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("attribute_tiny.json")).expect("fixture")).expect("json");
    let e = full_engine(&[6, 8]);
    let got = saescope::interp::attribute::attribute(&e, fx["prompt"].as_str().expect("prompt"), None, 20).expect("attribute");
    assert_eq!(got.target_id as u64, fx["target_id"].as_u64().expect("t"));
    assert!(close(got.logit, fx["logit"].as_f64().expect("l"), 1e-4) && close(got.prob, fx["prob"].as_f64().expect("p"), 1e-4), "{} {}", got.logit, got.prob);
    let want = fx["layers"].as_array().expect("layers");
    assert_eq!(got.saes.len(), want.len(), "one entry per loaded layer");
    assert!(want.len() == 2 && want.iter().all(|l| l["features"].as_array().is_some_and(|f| !f.is_empty())), "the fixture covers both layers");
    for (ours, theirs) in got.saes.iter().zip(want) {
        assert_eq!(ours.sae.layer() as u64, theirs["layer"].as_u64().expect("layer"));
        let theirs = theirs["features"].as_array().expect("features");
        assert_eq!(ours.features.len(), theirs.len());
        for (o, t) in ours.features.iter().zip(theirs) {
            let what = format!("SAE {} feature {}", ours.sae, o.feature);
            assert_eq!(o.feature as u64, t["feature"].as_u64().expect("f"), "{what}: same ranking");
            assert!(close(o.attribution, t["attribution"].as_f64().expect("a"), 1e-4), "{what}: {} vs {}", o.attribution, t["attribution"]);
            // Ablation deltas are differences of logits: 1e-4 of the logit's scale.
            let scale = got.logit.abs().max(1.0);
            assert!(
                (o.ablation_logit - t["ablation_logit"].as_f64().expect("dl")).abs() <= 1e-4 * scale,
                "{what}: Δlogit {} vs {}",
                o.ablation_logit,
                t["ablation_logit"]
            );
            assert!(
                (o.ablation_prob - t["ablation_prob"].as_f64().expect("dp")).abs() <= 1e-4 * got.prob.max(1e-3),
                "{what}: Δprob {} vs {}",
                o.ablation_prob,
                t["ablation_prob"]
            );
        }
    }
}

#[test]
fn the_command_explains_a_given_target_and_refuses_a_multi_token_one() {
    let out = tiny_args(&mut saescope())
        .args(["attribute", "--prompt", "The cat sat on the", "--target", " mat", "--layers", "8", "--top", "3", "--format", "json"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["target"], " mat");
    assert_eq!(v["saes"][0]["features"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["saes"][0]["sae"]["hook"], "blocks.8.hook_resid_pre");
    let bad = tiny_args(&mut saescope()).args(["attribute", "--prompt", "The cat", "--target", " a whole phrase"]).output().expect("run");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("give one token"), "{err}");
}

/// The token view's `a` at its cursor: the prediction after the prompt's first tokens, cut
/// from the whole prompt's tokens, is the prediction after those tokens alone, and its
/// context names them.
#[test]
fn attribution_after_the_first_tokens_is_the_prefix_attributed() {
    let e = full_engine(&[6, 8]);
    let whole = "The cat sat on the mat and purred";
    let at = saescope::interp::attribute::attribute_at(&e, whole, Some(3), None, 5).expect("attribute at 3");
    let prefix = saescope::interp::attribute::attribute(&e, "The cat sat", None, 5).expect("attribute the prefix");
    assert_eq!(at.context, "The cat sat");
    assert_eq!((at.target_id, at.upto), (prefix.target_id, Some(3)));
    assert!(close(at.logit, prefix.logit, 1e-5) && close(at.prob, prefix.prob, 1e-5), "{} {} / {} {}", at.logit, at.prob, prefix.logit, prefix.prob);
    assert_eq!(at.saes, prefix.saes);
    let past = saescope::interp::attribute::attribute_at(&e, whole, Some(99), None, 5).expect_err("past the prompt");
    assert!(past.to_string().contains("attribute after 1 to"), "{past}");
}
