//! The feature card's numbers against TransformerLens + SAELens (tests/fixtures/card_tiny.json,
//! from scripts/reference_card.py on the tiny weights): the logit lens through TL's processed
//! W_U, decoder-cosine neighbours in the adjacent loaded layers, per-token activations.

use crate::common;

use common::{close, engine, fixture};
use serde_json::Value;

const REL: f64 = 1e-4;

fn pairs(v: &Value) -> Vec<(u32, f64)> {
    v.as_array().expect("pairs").iter().map(|p| (p[0].as_u64().expect("id") as u32, p[1].as_f64().expect("value"))).collect()
}

/// Same values rank by rank; ids may differ only where values tie.
fn same_ranking(what: &str, reference: &[(u32, f64)], ours: &[(u32, f64)]) {
    assert_eq!(reference.len(), ours.len(), "{what}: length");
    for (i, (r, o)) in reference.iter().zip(ours).enumerate() {
        assert!(close(r.1, o.1, REL), "{what} rank {i}: {} vs {}", r.1, o.1);
        if r.0 != o.0 {
            let tie = ours.iter().find(|x| x.0 == r.0).is_some_and(|x| close(x.1, r.1, REL));
            assert!(tie, "{what} rank {i}: id {} vs {}", r.0, o.0);
        }
    }
}

#[test]
fn logit_lens_neighbours_and_token_activations_match_the_reference() {
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(fixture("card_tiny.json")).expect("fixture")).expect("json");
    let layers: Vec<usize> = reference["layers"].as_array().expect("layers").iter().map(|v| v.as_u64().expect("int") as usize).collect();
    let eng = engine(&layers);
    let text = reference["text"].as_str().expect("text");
    let tokens = saescope::interp::lens::token_activations(&eng, text, false).expect("tokens");
    assert_eq!(tokens.truncated, 0);
    let cards = reference["cards"].as_array().expect("cards");
    assert_eq!(cards.len(), 5);
    for card in cards {
        let (layer, feature) = (card["layer"].as_u64().expect("l") as usize, card["feature"].as_u64().expect("f") as u32);
        let what = format!("layer {layer} feature {feature}");
        let lens = saescope::interp::lens::logit_lens(&eng, common::key(layer), feature, 10).expect("lens");
        let ours = |v: &[saescope::interp::lens::TokenLogit]| v.iter().map(|t| (t.token_id, t.logit as f64)).collect::<Vec<_>>();
        same_ranking(&format!("{what} promoted"), &pairs(&card["promoted"]), &ours(&lens.promoted));
        same_ranking(&format!("{what} suppressed"), &pairs(&card["suppressed"]), &ours(&lens.suppressed));
        assert!(lens.promoted.iter().all(|t| !t.token.is_empty()));

        let near = saescope::interp::lens::neighbours(&eng, common::key(layer), feature, 5).expect("neighbours");
        let expected = card["neighbours"].as_array().expect("n");
        assert_eq!(near.len(), expected.len(), "{what}: first and last layers have one neighbour layer");
        for (n, e) in near.iter().zip(expected) {
            assert_eq!(n.sae.depth_layer() as u64, e["layer"].as_u64().expect("layer"));
            let ours: Vec<(u32, f64)> = n.features.iter().map(|&(f, c)| (f, c as f64)).collect();
            same_ranking(&format!("{what} neighbours in {}", n.sae), &pairs(&e["features"]), &ours);
        }

        let li = layers.iter().position(|&l| l == layer).expect("loaded");
        let expected: Vec<f64> = card["token_activations"].as_array().expect("acts").iter().map(|v| v.as_f64().expect("f")).collect();
        let got = tokens.feature(li, feature);
        assert_eq!(got.len(), expected.len(), "{what}: one value per token, BOS left out");
        // Per-token values carry more rounding than means: compare on the row's own scale.
        let scale = expected.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert!((*g as f64 - e).abs() <= REL * scale, "{what} token {i}: {g} vs {e}");
        }
    }
}

#[test]
fn unknown_feature_and_layer_are_errors_not_panics() {
    let eng = engine(&[6, 8]);
    let e = saescope::interp::lens::logit_lens(&eng, common::key(6), 100_000, 10).expect_err("no such feature").to_string();
    assert!(e.contains("feature 100000 does not exist"), "{e}");
    let e = saescope::interp::lens::neighbours(&eng, common::key(7), 0, 5).expect_err("no such layer").to_string();
    assert!(e.contains("SAE 7 res 512 is not loaded (loaded: 6 res 512, 8 res 512)"), "{e}");
}

#[test]
fn a_text_longer_than_n_ctx_is_cut_and_says_so() {
    let eng = engine(&[6]);
    let long = "word ".repeat(2000);
    let t = saescope::interp::lens::token_activations(&eng, &long, false).expect("long text");
    let n_ctx = eng.model.n_ctx();
    assert_eq!(t.tokens.len(), n_ctx - 1, "n_ctx with BOS, BOS not shown");
    assert!(t.truncated > 0);
    assert_eq!(t.saes[0].len(), t.tokens.len());
}

/// `saescope tokens` prints the same per-token values as the engine, from an argument or
/// standard input, and refuses an empty text or a feature the SAE does not have.
#[test]
fn tokens_command_matches_the_engine() {
    use std::io::Write;
    let text = "def f(x):\n    return x + 1";
    let want = saescope::interp::lens::token_activations(&engine(&[8]), text, false).expect("tokens");
    let f = (0..512).max_by(|&a, &b| want.feature(0, a).iter().sum::<f32>().total_cmp(&want.feature(0, b).iter().sum::<f32>())).expect("f");
    let out = common::tiny_args(&mut common::saescope())
        .args(["tokens", "--layer", "8", "--id", &f.to_string(), "--format", "json", "--text", text])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let got = v["tokens"].as_array().expect("tokens");
    assert_eq!(got.len(), want.tokens.len());
    for (g, (t, x)) in got.iter().zip(want.tokens.iter().zip(want.feature(0, f))) {
        assert_eq!(g["token"].as_str(), Some(t.as_str()));
        assert!(close(g["activation"].as_f64().expect("a"), x as f64, REL), "{g} vs {x}");
    }
    assert!(want.feature(0, f).iter().any(|&x| x > 0.0), "a feature that fires was picked");

    let mut child = common::tiny_args(&mut common::saescope())
        .args(["tokens", "--layer", "8", "--id", &f.to_string(), "--text", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("wait");
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.starts_with(&format!("position\ttoken\tactivation (SAE 8 res 512, feature {f})\n0\t\"def\"\t")), "{s}");
    assert_eq!(s.lines().count(), want.tokens.len() + 1);

    for (args, why) in [(vec!["--id", "1", "--text", "  "], "--text is empty"), (vec!["--id", "4096", "--text", "x"], "feature 4096 does not exist")] {
        let out = common::tiny_args(&mut common::saescope()).args(["tokens", "--layer", "8"]).args(args).output().expect("run");
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && e.contains(why), "{e}");
    }
}
