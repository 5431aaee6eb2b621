//! What the model-family tests (gemma2.rs, gemma3.rs, llama.rs) check alike against the
//! fixtures HF transformers and TransformerLens wrote on the same tiny weights.

use saescope::model::hooks::{HookPoint, Processing, Site};
use saescope::model::{Family, Freeze, HookEdit, KvCache};
use serde_json::Value;
use tch::{Device, Kind, Tensor};

/// `got` [rows, d] equals the first rows of `want` within 1e-4 of the values' scale.
pub fn compare(got: &Tensor, want: &Value, what: &str) {
    let got: Vec<Vec<f32>> = Vec::try_from(got.to_kind(Kind::Float)).expect("rows");
    let want: Vec<Vec<f64>> = serde_json::from_value(want.clone()).expect("rows");
    assert_eq!(got[0].len(), want[0].len(), "{what}: width");
    assert!(got.len() <= want.len(), "{what}: rows");
    let scale = want.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    let worst = got.iter().flatten().zip(want.iter().flatten()).map(|(a, b)| (f64::from(*a) - b).abs()).fold(0.0, f64::max);
    assert!(worst <= 1e-4 * scale.max(1.0), "{what}: off by {worst:e} (values up to {scale})");
}

/// Every hook point of HF's reference (`r`: tokens, hidden states, `per_layer` hooks a
/// layer), in one batch of the reference sequence and its first `short` tokens padded to
/// its length: each layer's input (HF's hidden states), a resid_post, and the hooks. The
/// padded row equals the reference's prefix; no NaN anywhere, padding included.
pub fn every_hook_in_a_padded_batch(model: &dyn Family, r: &Value, short: usize, per_layer: usize, what: &str) {
    let toks = crate::common::ids_of(&r["tokens"]);
    let t = toks.len();
    let row = |n: usize| -> Vec<i64> { (0..t).map(|i| if i < n { i64::from(toks[i]) } else { 0 }).collect() };
    let ids = Tensor::from_slice(&[row(t), row(short)].concat()).view([2, t as i64]);
    let mask = Tensor::from_slice(&[vec![true; t], (0..t).map(|i| i < short).collect()].concat()).view([2, t as i64]);
    let hidden = r["hidden_states"].as_array().expect("hidden");
    let n = model.n_layers();
    let hooks = r["hooks"].as_object().expect("hooks");
    assert_eq!(hooks.len(), n * per_layer, "{what}: hooks a layer");
    let mut points: Vec<HookPoint> = (0..n).map(|l| HookPoint::new(l, Site::ResidPre)).collect();
    points.extend(hooks.keys().map(|name| HookPoint::parse(name).expect("hook name")));
    points.push(HookPoint::new(n - 2, Site::ResidPost));
    // HF's own values: no TransformerLens processing.
    let requested: Vec<(HookPoint, Processing)> = points.iter().map(|&p| (p, Processing::NONE)).collect();
    let got = model.hooks_each(&ids, &mask, &requested).expect("hooks");
    for (point, value) in points.iter().zip(&got) {
        let want = match point.site {
            Site::ResidPre => &hidden[point.layer],
            Site::ResidPost => &hidden[point.layer + 1],
            _ => &hooks[&point.to_string()],
        };
        compare(&value.get(0), want, &format!("{what} {point}"));
        compare(&value.get(1).narrow(0, 0, short as i64), want, &format!("{what} {point}, padded row"));
    }
    assert!(got.iter().all(|v| v.isnan().any().int64_value(&[]) == 0), "{what}: no NaN anywhere, padding included");
}

/// Every hook point TransformerLens cached (`tl`: tokens, `per_layer` hooks a layer, logits)
/// and the logits, as its HookedTransformer computed them from the same weights under
/// `from_pretrained`'s default processing (where the family has any), so the hook names mean
/// in saescope what they mean in TL. Logits are compared less their mean over the vocabulary,
/// which TL's `center_unembed` removes (softmax does not see it).
pub fn every_hook_against_tl(model: &dyn Family, tl: &Value, per_layer: usize, what: &str) {
    let toks = crate::common::ids_of(&tl["tokens"]);
    let t = toks.len() as i64;
    let ids = Tensor::from_slice(&toks.iter().map(|&x| i64::from(x)).collect::<Vec<_>>()).view([1, t]);
    let mask = Tensor::ones([1, t], (Kind::Bool, Device::Cpu));
    let hooks = tl["hooks"].as_object().expect("hooks");
    assert_eq!(hooks.len(), model.n_layers() * per_layer, "{what}: hooks a layer");
    let points: Vec<HookPoint> = hooks.keys().map(|h| HookPoint::parse(h).expect("hook name")).collect();
    let requested: Vec<(HookPoint, Processing)> = points.iter().map(|&p| (p, Processing::DEFAULT)).collect();
    let got = model.hooks_each(&ids, &mask, &requested).expect("hooks");
    for ((hook, want), value) in hooks.iter().zip(&got) {
        compare(&value.get(0), want, &format!("{what} {hook} against TL"));
    }
    let mut none = HookEdit::observe(Vec::new(), |_, _| Ok(()));
    let logits = model.forward_cached(&toks, &mut KvCache::default(), &mut none).expect("forward");
    let centred = |t: &Tensor| t - t.mean_dim(-1, true, Kind::Float);
    let want = Tensor::from_slice(&serde_json::from_value::<Vec<Vec<f32>>>(tl["logits"].clone()).expect("logits").concat()).view_as(&logits);
    let table = |t: Tensor| serde_json::to_value(Vec::<Vec<f32>>::try_from(t).expect("rows")).expect("json");
    compare(&centred(&logits), &table(centred(&want)), &format!("{what} logits against TL"));
}

/// Logits over the whole sequence at once and a token at a time through the KV cache; the
/// replacement model's forward (graph/) gives the same final norm on the clean run.
pub fn logits_three_ways(model: &dyn Family, r: &Value, name: &str) {
    let toks = crate::common::ids_of(&r["tokens"]);
    let mut none = HookEdit::observe(Vec::new(), |_, _| Ok(()));
    let whole = model.forward_cached(&toks, &mut KvCache::default(), &mut none).expect("forward");
    compare(&whole, &r["logits"], &format!("{name} logits"));
    let mut cache = KvCache::default();
    let mut rows = vec![model.forward_cached(&toks[..3], &mut cache, &mut none).expect("prompt")];
    for &t in &toks[3..] {
        rows.push(model.forward_cached(&[t], &mut cache, &mut none).expect("step"));
    }
    assert_eq!(cache.len(), toks.len());
    compare(&Tensor::cat(&rows, 0), &r["logits"], &format!("{name} logits, a token at a time"));
    let ids = Tensor::from_slice(&toks.iter().map(|&x| i64::from(x)).collect::<Vec<_>>()).view([1, -1]);
    let normed = model.frozen_forward(&ids, &Freeze::new(), &mut none).expect("frozen");
    let frozen_logits = normed.get(0).matmul(&model.unembedding().expect("unembedding").tr());
    compare(&frozen_logits, &r["logits"], &format!("{name} logits through the replacement model's forward"));
}

/// `synth --family FAMILY` writes a model in the hub's layout with SAEs the command synth
/// prints opens with no more flags: the family from config.json (`loading NAME`), the layers
/// from the folder (`folders` among them, two SAEs where none are named); `report` finds
/// every SAE firing and `tokens` reads the one at `layer`.
pub fn synthetic_opens_with_the_command_synth_prints(family: &str, name: &str, folders: &[&str], layer: usize) {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = crate::common::saescope().args(["synth", "--family", family, "--out"]).arg(tmp.path()).output().expect("synth");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    let (model, saes) = (tmp.path().join("model"), tmp.path().join("saes"));
    let command = format!("saescope --model-dir {} --sae-dir {}", model.display(), saes.display());
    assert!(said.lines().any(|l| l.trim() == command), "synth prints `{command}`:\n{said}");
    for folder in folders {
        assert!(saes.join(folder).join("cfg.json").exists(), "{family}: {folder}");
    }
    let report = crate::common::saescope()
        .args(["report", "--format", "json", "--no-cache", "--model-dir"])
        .arg(&model)
        .arg("--sae-dir")
        .arg(&saes)
        .output()
        .expect("report");
    let err = String::from_utf8_lossy(&report.stderr);
    assert!(report.status.success(), "{err}");
    assert!(err.contains(&format!("loading {name}")), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&report.stdout).expect("json");
    let layers = v["categories"][0]["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), folders.len().max(2), "{family}: the SAEs the folder holds");
    assert!(layers.iter().all(|l| l["peak"].as_f64().is_some_and(|p| p > 0.5)), "{family}: the SAEs fire: {layers:?}");
    let tokens = crate::common::saescope()
        .args(["tokens", "--no-cache", "--model-dir"])
        .arg(&model)
        .arg("--sae-dir")
        .arg(&saes)
        .args(["--layer", &layer.to_string(), "--id", "1", "--text", "def f(x): return x"])
        .output()
        .expect("tokens");
    assert!(tokens.status.success(), "{family}: {}", String::from_utf8_lossy(&tokens.stderr));
}

/// A model loaded in bf16 compute (`model`) stays near HF's f32 logits of the reference `r`:
/// within 5% relative, bf16's 8 bits of mantissa.
pub fn bf16_logits_near_f32(model: &dyn Family, r: &Value) {
    assert_eq!(model.kind(), Kind::BFloat16);
    let mut none = HookEdit::observe(Vec::new(), |_, _| Ok(()));
    let got = model.forward_cached(&crate::common::ids_of(&r["tokens"]), &mut KvCache::default(), &mut none).expect("forward");
    let want = Tensor::from_slice(&serde_json::from_value::<Vec<Vec<f32>>>(r["logits"].clone()).expect("logits").concat()).view_as(&got);
    let rel = ((&got - &want).norm() / want.norm()).double_value(&[]);
    assert!(rel < 0.05, "bf16 logits {rel} off f32's");
}
