//! Each metric of docs/method.md's "Method" on hand-computed cases (pure Rust, no model).

use saescope::activations::{top_k, ActivationSet, Keep, SparseVec, Value};
use saescope::analysis::{analyze, gini, AboveCounts, Params};
use saescope::model::hooks::{HookPoint, Site};
use saescope::sae::key::SaeKey;

fn approx(a: f32, b: f32) {
    assert!((a - b).abs() < 1e-5, "{a} vs {b}");
}

fn text(category: usize, dense: &[f32]) -> (usize, String, usize, Vec<SparseVec>) {
    (category, String::new(), 3, vec![SparseVec::from_dense(dense)])
}

/// Two categories over 4 features. Category 0: texts [6,1,0,0] and [8,0,2,0];
/// category 1: texts [0,0,7,1], [5,0,6,0] and [0,0,0,0].
/// The one SAE of these sets: 4 features at layer 8's residual.
fn k8() -> SaeKey {
    SaeKey::new(HookPoint::new(8, Site::ResidPre), 4)
}

fn set() -> ActivationSet {
    ActivationSet::from_texts(
        vec![k8()],
        vec!["A".into(), "B".into()],
        vec![
            text(0, &[6.0, 1.0, 0.0, 0.0]),
            text(0, &[8.0, 0.0, 2.0, 0.0]),
            text(1, &[0.0, 0.0, 7.0, 1.0]),
            text(1, &[5.0, 0.0, 6.0, 0.0]),
            text(1, &[0.0, 0.0, 0.0, 0.0]),
        ],
    )
}

#[test]
fn gini_hand_computed() {
    approx(gini(&[1.0, 1.0, 1.0, 1.0]), 0.0);
    // sorted [0,0,0,4]: 2*(4*4)/(4*4) - 5/4 = 0.75
    approx(gini(&[0.0, 4.0, 0.0, 0.0]), 0.75);
    // sorted [1,2,3]: 2*(1+4+9)/(3*6) - 4/3 = 28/18 - 24/18 = 2/9
    approx(gini(&[3.0, 1.0, 2.0]), 2.0 / 9.0);
    approx(gini(&[]), 0.0);
    approx(gini(&[0.0, 0.0]), 0.0);
    approx(gini(&[5.0]), 0.0);
}

#[test]
fn top_k_is_descending_positive_and_breaks_ties_by_id() {
    let v = [(3u32, 2.0f32), (1, 5.0), (7, 2.0), (2, 0.0), (9, -1.0), (4, 9.0)];
    assert_eq!(top_k(v.into_iter(), 3), vec![(4, 9.0), (1, 5.0), (3, 2.0)]);
    assert_eq!(top_k(v.into_iter(), 10), vec![(4, 9.0), (1, 5.0), (3, 2.0), (7, 2.0)]);
}

#[test]
fn category_mean_is_mean_of_text_vectors() {
    let s = set();
    assert_eq!(s.category_mean(0, 0), vec![7.0, 0.5, 1.0, 0.0]);
    let b = s.category_mean(0, 1);
    approx(b[0], 5.0 / 3.0);
    approx(b[2], 13.0 / 3.0);
    approx(b[3], 1.0 / 3.0);
}

#[test]
fn specialist_scores_count_inside_minus_outside() {
    // theta 5: feature 0 reached by A's 6 and 8 and B's 5; feature 2 by B's 7 and 6.
    let above = AboveCounts::new(&set(), 0, 5.0);
    assert_eq!(above.specialist(0, 0), 2 - 1);
    assert_eq!(above.specialist(0, 1), 1 - 2);
    assert_eq!(above.specialist(2, 1), 2);
    assert_eq!(above.specialist(2, 0), -2);
    assert_eq!(above.specialist(1, 0), 0, "no text reaches theta");
    assert_eq!(above.inside(0, 0), 2);
    assert_eq!(above.matrix(&[0, 2]), vec![vec![1, -1], vec![-2, 2]]);
}

#[test]
fn metrics_per_category_and_layer() {
    let a = analyze(&set(), Params { top_k: 2, threshold: 5.0 });
    let l = a.of(k8()).expect("layer 8");
    // A: c = [7, .5, 1, 0]; top-2 = (0: 7), (2: 1); sum 8; share 8/8.5; gini of [1,7] = 2*(1+14)/(2*8) - 1.5 = 0.375
    let m = &l.categories[0];
    assert_eq!(m.top.iter().map(|t| t.feature).collect::<Vec<_>>(), vec![0, 2]);
    approx(m.peak, 7.0);
    approx(m.top_sum, 8.0);
    approx(m.top_share, 8.0 / 8.5);
    approx(m.gini, 0.375);
    assert_eq!(m.top[0].specialist, 1);
    assert_eq!(m.top[1].specialist, -2);
    assert_eq!(m.spec, 1);
    assert_eq!(m.top[0].n_above, 2);
    // B: c = [5/3, 0, 13/3, 1/3]; top-2 = (2), (0); Spec = max(2, -1) = 2
    let m = &l.categories[1];
    assert_eq!(m.top.iter().map(|t| t.feature).collect::<Vec<_>>(), vec![2, 0]);
    assert_eq!(m.spec, 2);
    approx(m.top_share, 6.0 / (19.0 / 3.0));
}

#[test]
fn an_all_zero_category_has_zero_metrics_not_nan() {
    let s = ActivationSet::from_texts(vec![k8()], vec!["A".into(), "B".into(), "Empty".into()], vec![text(0, &[6.0, 1.0, 0.0, 0.0]), text(2, &[0.0; 4])]);
    let a = analyze(&s, Params::default());
    let m = &a.saes[0].categories[2];
    assert!(m.top.is_empty());
    assert_eq!((m.peak, m.gini, m.top_sum, m.top_share, m.spec), (0.0, 0.0, 0.0, 0.0, 0));
}

/// Past the whole-vector budget, texts keep only their largest features and those at the threshold, yet every metric
/// equals the unpruned one: category sums are folded before pruning.
#[test]
fn pruning_texts_changes_no_metric() {
    let full = set();
    let mut pruned = ActivationSet::new(vec![k8()], false, vec!["A".into(), "B".into()], Keep { top: 1, above: 5.0 }).with_whole_budget(0);
    for (c, t, n, v) in [
        text(0, &[6.0, 1.0, 0.0, 0.0]),
        text(0, &[8.0, 0.0, 2.0, 0.0]),
        text(1, &[0.0, 0.0, 7.0, 1.0]),
        text(1, &[5.0, 0.0, 6.0, 0.0]),
        text(1, &[0.0, 0.0, 0.0, 0.0]),
    ] {
        pruned.push(c, t, n, v);
    }
    let p = Params { top_k: 2, threshold: 5.0 };
    assert_eq!(analyze(&full, p), analyze(&pruned, p));
    // Text 3 kept 6 (its top) and 5 (at the threshold); text 1 dropped 1.0 below its top 6.0.
    assert_eq!(pruned.texts[3].vectors[0].iter().collect::<Vec<_>>(), vec![(0, 5.0), (2, 6.0)]);
    assert_eq!(pruned.texts[0].value(0, 0), Value::Exact(6.0));
    assert_eq!(pruned.texts[0].value(0, 1), Value::Below(5.0), "dropped: known only to be below the floor");
    assert_eq!(full.texts[0].value(0, 1), Value::Exact(1.0));
    assert_eq!(pruned.texts[0].totals, vec![7.0]);
    assert_eq!(pruned.texts[4].value(0, 2), Value::Exact(0.0), "nothing to drop: exact zero");
}
