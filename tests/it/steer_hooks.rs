//! Steering and attribution at hooks other than the residual stream, against
//! TransformerLens + SAELens (fixture from scripts/reference_steer_hooks.py): OpenAI's v5
//! attn_out SAE (uncentred, TopK with layer_norm), mlp-tm's mlp_out SAE (centred, its
//! registry scale folded, two clamps at one hook), a resid_pre edit before an mlp_out
//! clamp, and the kk SAEs on `attn.hook_z` (edited heads-concatenated, before W_O). Each
//! edit is a hook on the SAE's own hook point, each SAE reading its hook under its own
//! processing; every case moves the continuation away from the unsteered one.

use crate::common;

use common::ids_of as ids;
use common::releases::{all, KK, MIXED};
use saescope::interp::steer::{greedy, Edit};
use saescope::pipeline::Engine;
use serde_json::Value;

fn check(e: &Engine, fx: &Value, run: &Value) {
    let prompt = ids(&fx["prompt_ids"]);
    let n = fx["tokens"].as_u64().expect("n") as usize;
    let plain = ids(&fx["default"]["ids"]);
    assert_eq!(greedy(e, &prompt, &[], Edit::Add, n).expect("plain").0, plain, "unsteered");
    for case in run["steered"].as_array().expect("cases") {
        let what = case["name"].as_str().expect("name");
        let got = greedy(e, &prompt, &common::steers_of(case, "hook"), Edit::Add, n).expect("steer");
        common::check_greedy(&got, case, what);
        assert_ne!(got.0, plain, "{what}: the case moves the continuation");
    }
    let got = saescope::interp::attribute::attribute(e, fx["prompt"].as_str().expect("prompt"), None, 8).expect("attribute");
    common::check_attribution(&got, &run["attribution"]);
}

#[test]
fn steering_and_attribution_at_attn_out_mlp_out_and_hook_z_equal_transformer_lens() {
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(common::fixture("steer_hooks_tiny.json")).expect("fixture")).expect("json");
    let dir = |name: &str| all().iter().find(|(_, r)| *r == name).map(|(d, _)| d.clone()).expect("release");
    check(&common::releases::engine(&dir(MIXED), MIXED, &[8]), &fx, &fx["mixed"]);
    check(&common::releases::engine(&dir(KK), KK, &[5, 8]), &fx, &fx["kk"]);
}
