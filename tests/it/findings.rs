//! The study's four findings on hand-built analyses where each holds and where it fails.

use crate::common;
use saescope::analysis::{AboveCounts, Analysis, CategoryLayer, Params, SaeAnalysis, TopFeature};

use saescope::analysis::findings::findings;

fn m(top: u32, peak: f32, gini: f32, sum: f32, share: f32, spec: i64) -> CategoryLayer {
    let t = TopFeature { feature: top, activation: peak, specialist: spec, n_above: 0, share: 0.0 };
    CategoryLayer { peak, gini, top_sum: sum, top_share: share, spec, top: vec![t.clone()], ranked: vec![t] }
}

fn analysis(layers: Vec<(usize, Vec<CategoryLayer>)>) -> Analysis {
    Analysis {
        params: Params::default(),
        saes: layers.into_iter().map(|(layer, categories)| SaeAnalysis { sae: common::key(layer), categories, above: AboveCounts::default() }).collect(),
    }
}

fn names() -> Vec<String> {
    vec!["Python".into(), "Formal".into()]
}

/// Like the study's Figure 2b: new top features each layer, Peak and Sum ~2x, flat Gini,
/// Top5 share 4-9%, Python specialised from layer 8.
fn seed_like() -> Analysis {
    analysis(vec![
        (6, vec![m(6501, 9.5, 0.08, 39.8, 0.053, 4), m(22570, 6.6, 0.07, 27.1, 0.042, 1)]),
        (8, vec![m(9303, 11.5, 0.05, 50.1, 0.052, 5), m(18191, 12.3, 0.13, 41.0, 0.045, 1)]),
        (11, vec![m(8433, 21.7, 0.13, 81.3, 0.069, 6), m(19068, 25.9, 0.14, 87.5, 0.049, 2)]),
    ])
}

#[test]
fn every_finding_holds_on_seed_like_numbers() {
    let f = findings(&seed_like(), &names());
    assert_eq!(f.len(), 4);
    assert!(f.iter().all(|x| x.holds), "{f:#?}");
    assert_eq!(f[0].rows[0].1, "#6501 -> #9303 -> #8433 (2 of 2 steps change)");
    assert!(f[1].summary.starts_with("SAE 6 res 512 -> 11 res 512: Peak and Sum change x2.04 to x3.92"), "{}", f[1].summary);
    assert_eq!(f[1].rows[0].1, "Peak 9.5 -> 21.7 (x2.28), Sum 39.8 -> 81.3 (x2.04)");
    assert_eq!(f[2].summary, "Gini 0.05-0.14 (largest move within a category 0.08); Top5 share 4.2%-6.9%");
    assert_eq!(f[3].summary, "1 of 2 categories: Python");
    assert_eq!(f[3].rows[0].1, "8 res 512 (5), 11 res 512 (6)");
    assert_eq!(f[3].rows[1].1, "never (best 2 at 11 res 512)");
}

#[test]
fn each_finding_fails_where_the_numbers_say_so() {
    let a = analysis(vec![
        (6, vec![m(1, 9.5, 0.05, 40.0, 0.05, 1), m(7, 6.0, 0.10, 30.0, 0.02, 0)]),
        (8, vec![m(1, 8.0, 0.30, 30.0, 0.05, 2), m(8, 7.0, 0.10, 35.0, 0.15, 4)]),
    ]);
    let f = findings(&a, &names());
    assert!(f.iter().all(|x| !x.holds), "{f:#?}");
    assert_eq!(f[0].rows[0].1, "#1 -> #1 (0 of 1 steps change)");
    assert_eq!(f[0].summary, "1 of 2 categories change their top feature at every step");
    assert_eq!(f[1].rows[0].1, "Peak 9.5 -> 8.0 (x0.84), Sum 40.0 -> 30.0 (x0.75)");
    assert!(f[2].summary.contains("largest move within a category 0.25") && f[2].summary.contains("Top5 share 2.0%-15.0%"), "{}", f[2].summary);
    assert_eq!(f[3].summary, "no category reaches it");
}

#[test]
fn one_layer_or_zero_values_are_stated_not_divided_by() {
    let a = analysis(vec![(6, vec![m(1, 0.0, 0.0, 0.0, 0.0, 0), m(2, 1.0, 0.0, 1.0, 0.05, 0)])]);
    let f = findings(&a, &names());
    assert!(!f[0].holds && f[0].summary == "needs two or more loaded layers");
    assert!(!f[1].holds);
    assert!(f[1].rows[0].1.contains("x -"), "{}", f[1].rows[0].1);
}

/// `saescope findings` states the same verdicts as the checks on the engine's analysis.
#[test]
fn findings_command_matches_the_analysis() {
    use saescope::analysis::analyze;
    let engine = common::engine(&[6, 8, 10, 11]);
    let set = saescope::pipeline::compute::run(
        &engine,
        &saescope::corpus::samples::Samples::bundled().expect("samples"),
        &common::opts(false, 256),
        &saescope::runtime::progress::ProgressSink::none(),
    )
    .expect("run");
    let want = findings(&analyze(&set, Params::default()), &set.categories);
    let out = common::tiny_args(&mut common::saescope()).args(["findings", "--format", "json"]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let got = json["findings"].as_array().expect("array");
    // The four findings, then the three open questions' answers.
    assert_eq!(got.len(), 7);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!((g["claim"].as_str(), g["holds"].as_bool()), (Some(w.claim.as_str()), Some(w.holds)));
        assert_eq!(g["rows"].as_array().map(Vec::len), Some(w.rows.len()));
        assert!(g.get("answer").is_none());
    }
    for g in &got[4..] {
        assert!(g["answer"].as_str().is_some_and(|a| !a.is_empty()), "{g}");
        assert!(g["rows"].as_array().map(Vec::len).unwrap_or(0) >= set.categories.len(), "{g}");
    }
    let q = &json["open_questions"][0];
    assert_eq!(q["saes"].as_array().map(Vec::len), Some(4));
    assert_eq!(q["tails"].as_array().map(Vec::len), Some(4));
    assert!(q["readings"].as_array().is_some_and(|r| r.len() >= 4 * set.categories.len() * 5), "each category's top 5 per SAE");
    let text = common::tiny_args(&mut common::saescope()).args(["findings"]).output().expect("run");
    let s = String::from_utf8_lossy(&text.stdout);
    assert_eq!(s.matches("[HOLDS]").count() + s.matches("[DOES NOT HOLD]").count(), 4, "{s}");
    assert!(s.starts_with("1. The top feature changes at every layer ["), "{s}");
}
