//! Steering on the tiny weights: strength 0 and clamping a silent feature change nothing;
//! clamping a firing feature to 0 and a strong feature do; each feature keeps its own
//! mode; the KV cache gives what recomputing every step gives; the command checks what it
//! is given; TransformerLens agrees on one and two features, at one and two layers.

use crate::common;

use common::{saescope, tiny_args};
use saescope::interp::steer::{check_cache, steer, Edit, Sampling, Steer};

const PROMPT: &str = "def factorial(n):\n    return 1 if n == 0 else";

fn engine() -> saescope::pipeline::Engine {
    common::full_engine(&[6, 8])
}

const GREEDY: Sampling = Sampling { tokens: 12, temperature: 0.0, seed: 0 };

#[test]
fn strength_zero_and_clamping_a_silent_feature_change_nothing() {
    let e = engine();
    let zero = steer(&e, PROMPT, &[Steer::new(common::key(6), 481, 0.0)], Edit::Add, GREEDY).expect("steer");
    assert_eq!(zero.default.ids, zero.steered.ids);
    assert!(zero.steps.iter().all(|s| s.kl < 1e-9), "{:?}", zero.steps.iter().map(|s| s.kl).collect::<Vec<_>>());
    // A feature silent at every position of prompt and continuation: clamping it to 0 is
    // clamping it to its own activation.
    let all = format!("{PROMPT}{}", zero.default.text);
    let acts = saescope::interp::lens::token_activations(&e, &all, true).expect("acts");
    let silent = (0..512_u32).find(|&f| acts.feature(0, f).iter().all(|&v| v == 0.0)).expect("a silent feature");
    let clamp = steer(&e, PROMPT, &[Steer::new(common::key(6), silent, 0.0)], Edit::Clamp, GREEDY).expect("clamp");
    assert_eq!(clamp.default.ids, clamp.steered.ids);
    assert!(clamp.steps.iter().all(|s| s.kl < 1e-6));
    // The prompt's strongest feature: adding 0 leaves it, clamping it to 0 takes it out of
    // every position, which an `add` could not do.
    let prompt_acts = saescope::interp::lens::token_activations(&e, PROMPT, true).expect("acts");
    let strongest = (0..512_u32)
        .max_by(|&a, &b| prompt_acts.feature(0, a).iter().sum::<f32>().total_cmp(&prompt_acts.feature(0, b).iter().sum::<f32>()))
        .expect("a feature");
    assert!(prompt_acts.feature(0, strongest).iter().sum::<f32>() > 1.0, "it fires");
    let added = steer(&e, PROMPT, &[Steer::new(common::key(6), strongest, 0.0)], Edit::Add, GREEDY).expect("add");
    let removed = steer(&e, PROMPT, &[Steer::new(common::key(6), strongest, 0.0)], Edit::Clamp, GREEDY).expect("clamp");
    assert!(added.steps.iter().all(|s| s.kl < 1e-9));
    assert!(removed.steps[0].kl > 1e-4, "clamping a firing feature to 0 moves the next token's distribution: KL {}", removed.steps[0].kl);
}

#[test]
fn a_feature_carries_its_own_mode() {
    let parse = |s: &str| s.parse::<Steer>().expect("parse");
    assert_eq!(parse("8:12:=30"), Steer { sae: "8".into(), feature: 12, strength: 30.0, mode: Some(Edit::Clamp) });
    assert_eq!(parse("8:12:-30"), Steer { sae: "8".into(), feature: 12, strength: -30.0, mode: None });
    assert_eq!(parse("8:12:=30").spec(Edit::Add), "8:12:=30");
    assert_eq!(parse("8:12:30").spec(Edit::Clamp), "8:12:30");
    let e = engine();
    let mixed = [Steer::new(common::key(6), 481, 40.0), parse("8:3:=5")];
    let a = steer(&e, PROMPT, &mixed, Edit::Add, GREEDY).expect("mixed");
    let b =
        steer(&e, PROMPT, &[Steer { mode: Some(Edit::Add), ..mixed[0].clone() }, Steer { mode: Some(Edit::Clamp), ..mixed[1].clone() }], Edit::Clamp, GREEDY)
            .expect("explicit");
    assert_eq!(a.steered.ids, b.steered.ids, "the run's mode only fills in features without one");
    assert_eq!(a.features.iter().map(|f| f.mode).collect::<Vec<_>>(), vec![Some(Edit::Add), Some(Edit::Clamp)]);
}

#[test]
fn a_strong_feature_steers_toward_what_its_decoder_promotes() {
    let e = engine();
    let out = steer(&e, PROMPT, &[Steer::new(common::key(6), 481, 40.0)], Edit::Add, GREEDY).expect("steer");
    assert_ne!(out.default.ids, out.steered.ids);
    assert!(out.steps.iter().all(|s| s.kl > 0.01));
    // Its logit lens: the feature's decoder direction promotes these tokens most.
    let dir = e.saes[0].1.direction(481).expect("dir").unsqueeze(0);
    let lens = e.model.logit_lens(&dir).expect("lens");
    let promoted: Vec<i64> = Vec::try_from(lens.get(0).topk(5, -1, true, true).1).expect("ids");
    let first = out.steered.ids[0] as i64;
    assert!(promoted.contains(&first), "steered token {first} among the lens's top {promoted:?}");
    // Clamping instead of adding also changes the continuation.
    let clamp = steer(&e, PROMPT, &[Steer::new(common::key(6), 481, 40.0)], Edit::Clamp, GREEDY).expect("clamp");
    assert_ne!(clamp.default.ids, clamp.steered.ids);
}

#[test]
fn the_kv_cache_gives_what_recomputing_gives_and_sampling_follows_the_seed() {
    let e = engine();
    let (cached, full, diff) = check_cache(&e, PROMPT, 16).expect("check");
    assert_eq!(cached, full);
    assert!(diff < 1e-4, "log-probabilities differ by {diff}");
    let s = |seed| steer(&e, PROMPT, &[Steer::new(common::key(8), 3, 5.0)], Edit::Add, Sampling { tokens: 10, temperature: 1.0, seed }).expect("sample");
    assert_eq!(s(7).steered.ids, s(7).steered.ids, "deterministic per seed");
    assert_ne!(s(7).default.ids, s(8).default.ids, "another seed, another sample");
}

#[test]
fn the_command_prints_both_continuations_and_checks_its_arguments() {
    let out =
        tiny_args(&mut saescope()).args(["steer", "--prompt", PROMPT, "--feature", "6:481:40", "--tokens", "4", "--format", "json"]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["steps"].as_array().map(Vec::len), Some(4));
    assert_eq!(v["steps"][0]["steered_top"].as_array().map(Vec::len), Some(5));
    assert!(v["default"]["text"].is_string() && v["steered"]["ids"].as_array().is_some_and(|a| a.len() == 4));
    for (args, says) in [
        (vec!["--feature", "6:481"], "SAE:FEATURE:STRENGTH"),
        (vec!["--feature", "9 res:1:1"], "no loaded SAE is \"9 res\""),
        (vec!["--feature", "6:99999:1"], "feature 99999 does not exist"),
        (vec!["--feature", "6:1:nan"], "finite"),
        (vec!["--feature", "6:1:1", "--temperature", "-1"], "0 or more"),
    ] {
        let out = tiny_args(&mut saescope()).args(["steer", "--prompt", "hi"]).args(&args).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{args:?}: {err}");
    }
}

/// Against TransformerLens + SAELens on the same weights (fixture from
/// scripts/reference_steer.py): the unsteered continuation equals TL's `generate` with and
/// without its KV cache, and steering by `add` and `clamp` through a hook on
/// `blocks.L.hook_resid_pre` gives the same tokens and log-probabilities (1e-4 relative).
#[test]
fn greedy_steering_equals_transformer_lens() {
    let fx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(common::fixture("steer_tiny.json")).expect("fixture")).expect("json");
    let ids = common::ids_of;
    let e = engine();
    let prompt = ids(&fx["prompt_ids"]);
    assert_eq!(e.tokenizer.encode_with_bos(fx["prompt"].as_str().expect("prompt")).expect("tok"), prompt, "same prompt tokens");
    let n = fx["tokens"].as_u64().expect("n") as usize;
    let check = common::check_greedy;
    let plain = saescope::interp::steer::greedy(&e, &prompt, &[], Edit::Add, n).expect("greedy");
    check(&plain, &fx["default"], "unsteered");
    assert_eq!(plain.0, ids(&fx["default"]["generate_cached"]), "TL generate, KV cache on");
    assert_eq!(plain.0, ids(&fx["default"]["generate_uncached"]), "TL generate, KV cache off");
    let mut by_case = std::collections::BTreeMap::new();
    for case in fx["steered"].as_array().expect("cases") {
        let steers = common::steers_of(case, "layer");
        let name = case["name"].as_str().expect("name");
        // The run's mode is the other one: each feature's own mode must win.
        let got = saescope::interp::steer::greedy(&e, &prompt, &steers, Edit::Add, n).expect("steered");
        check(&got, case, name);
        by_case.insert(name.to_string(), got.0);
    }
    // The fixture tells the modes apart: a firing feature clamped generates other tokens
    // than the same feature added, and two layers' edits differ from the first alone.
    assert_ne!(by_case["add 6"], by_case["clamp 6"], "add and clamp of a firing feature");
    assert_ne!(by_case["clamp 6"], by_case["clamp 6, clamp 8"], "the second layer's clamp matters");
    assert_ne!(by_case["clamp 6, clamp 8"], by_case["add 6, clamp 8"]);
}
