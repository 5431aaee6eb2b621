//! Shared by the integration tests: the tiny synthetic weights, written once per test binary.
#![allow(dead_code)]

pub mod families;
pub mod hub;
pub mod releases;

use saescope::pipeline::{Engine, Run, RunOptions};
use saescope::runtime::progress::ProgressSink;
use saescope::sae::selection::Selection;
use saescope::source::Source;
use saescope::synth::gpt2::{self as synth, Size};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

/// This test process's folder under cargo's `target/tmp`, removed when the process exits.
/// What a binary writes once and keeps (weights, caches) hangs off statics, which are never
/// dropped; as plain temp dirs they stayed in /tmp, 85 MB a binary and a suite run, until a
/// disk filled. A process killed before it could clean up is swept by the next one.
fn scratch() -> &'static Path {
    SCRATCH.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        sweep_dead(base);
        let root = tempfile::Builder::new().prefix(&format!("run-{}-", std::process::id())).tempdir_in(base).expect("temp dir").keep();
        extern "C" fn remove_scratch() {
            if let Some(root) = SCRATCH.get() {
                let _ = std::fs::remove_dir_all(root);
            }
        }
        // SAFETY: atexit takes a plain function pointer; the handler touches only a static.
        unsafe { libc::atexit(remove_scratch) };
        root
    })
}

/// Removes the scratch folders of test processes that no longer run.
fn sweep_dead(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("run-").and_then(|r| r.split('-').next()).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        // SAFETY: kill(2) with signal 0 only asks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A new folder inside this process's scratch folder, kept until the process exits.
pub fn kept_dir() -> PathBuf {
    tempfile::tempdir_in(scratch()).expect("temp dir").keep()
}

/// `saescope synth --size tiny --seed 0`, the weights the reference fixtures were made on.
pub fn tiny() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = kept_dir();
        synth::write(&dir, Size::Tiny, 0, &ProgressSink::none()).expect("synth tiny");
        dir
    })
}

/// What runs the tiny model with the SAEs of `saes` (a folder of SAELens folders) at `layers`.
pub fn run_of(saes: &Path, layers: &[usize]) -> Run {
    let selection = Selection::from_args(saescope::source::DEFAULT_SAE_RELEASE, &[], layers, Some(saes), None).expect("selection");
    Run { model: Source::Dir(tiny().join("model")), saes: selection, device: tch::Device::Cpu, opts: RunOptions::default() }
}

/// What runs the tiny model and its SAEs at `layers`.
pub fn tiny_run(layers: &[usize]) -> Run {
    run_of(&tiny().join("saes"), layers)
}

pub fn engine(layers: &[usize]) -> Engine {
    Engine::load(&tiny_run(layers), &ProgressSink::none()).expect("load tiny engine")
}

/// Every block of the tiny model (for generation and gradients) and the SAEs of `layers`.
pub fn full_engine(layers: &[usize]) -> Engine {
    let run = tiny_run(layers);
    saescope::pipeline::Resolved::new(&run.model, &run.saes, &ProgressSink::none())
        .expect("resolve tiny")
        .load_full(tch::Device::Cpu, &RunOptions::default(), &ProgressSink::none())
        .expect("load tiny whole")
}

pub fn opts(include_bos: bool, batch_tokens: usize) -> RunOptions {
    RunOptions { include_bos, batch_tokens, ..Default::default() }
}

/// A result-cache folder private to this test binary, so tests never touch the user's.
pub fn cache_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(kept_dir)
}

/// The binary, with its result cache pointed at `cache_dir()`.
/// The binary with none of the caller's Hugging Face settings: a machine whose HF cache is
/// filled, or that sets an endpoint or a token, must not change a test's outcome. A test
/// sets what it needs on top.
/// `saescope report --format json --no-cache` over what `synth --out dir` wrote (DIR/model,
/// DIR/saes) with `extra` flags; the report, after checking the run succeeded.
pub fn synth_report(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let report = saescope()
        .args(["report", "--format", "json", "--no-cache", "--model-dir"])
        .arg(dir.join("model"))
        .arg("--sae-dir")
        .arg(dir.join("saes"))
        .args(extra)
        .output()
        .expect("report");
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    serde_json::from_slice(&report.stdout).expect("json")
}

pub fn saescope() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_saescope"));
    c.env("SAESCOPE_CACHE_DIR", cache_dir());
    for var in ["HF_HUB_CACHE", "HF_HOME", "HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "XDG_CACHE_HOME"] {
        c.env_remove(var);
    }
    // An empty home: no ~/.cache/huggingface of the machine's is ever read.
    c.env("HOME", empty_home());
    c
}

/// A home folder with nothing in it, for the binary's runs.
fn empty_home() -> PathBuf {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("empty-home");
    std::fs::create_dir_all(&home).expect("home");
    home
}

/// Sends `signal` to process `pid` (no `kill` binary needed).
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid as i32, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}): {}", std::io::Error::last_os_error());
}

/// `--model-dir`/`--sae-dir` of the tiny weights.
pub fn tiny_args(c: &mut std::process::Command) -> &mut std::process::Command {
    c.arg("--model-dir").arg(tiny().join("model")).arg("--sae-dir").arg(tiny().join("saes"))
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The same JSON but for numbers, which may differ by `rel` (`close`): sums in another
/// order (padding, thread count) differ in their last bits.
pub fn json_close(a: &serde_json::Value, b: &serde_json::Value, rel: f64) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => close(x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN), rel),
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_close(x, y, rel)),
        (Object(x), Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w, rel))),
        _ => a == b,
    }
}

/// |a - b| within `rel` of the larger magnitude (absolute floor for values near zero).
pub fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-3)
}

/// The tiny SAEs made into another architecture, the same encoders: `jumprelu` (each
/// feature a threshold between 0 and 1, about where the tiny features' weak firings sit)
/// or `topk` (k = 8). Written once per test binary and architecture.
pub fn tiny_saes_as(arch: &str) -> PathBuf {
    static DIRS: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut dirs = DIRS.lock().expect("lock");
    if let Some((_, d)) = dirs.iter().find(|(a, _)| a == arch) {
        return d.clone();
    }
    let out = kept_dir();
    for entry in std::fs::read_dir(tiny().join("saes")).expect("saes") {
        let from = entry.expect("entry").path();
        let to = out.join(from.file_name().expect("name"));
        std::fs::create_dir_all(&to).expect("mkdir");
        let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(from.join("cfg.json")).expect("cfg")).expect("json");
        cfg["architecture"] = arch.into();
        let mut tensors = tch::Tensor::read_safetensors(from.join("sae_weights.safetensors")).expect("weights");
        match arch {
            "jumprelu" => {
                let d_sae = cfg["d_sae"].as_i64().expect("d_sae");
                let th: Vec<f32> = (0..d_sae).map(|j| ((j * 7919) % 17) as f32 / 16.0).collect();
                tensors.push(("threshold".into(), tch::Tensor::from_slice(&th)));
            }
            "topk" => cfg["k"] = 8.into(),
            other => panic!("no such variant {other}"),
        }
        tch::Tensor::write_safetensors(&tensors, to.join("sae_weights.safetensors")).expect("write weights");
        std::fs::write(to.join("cfg.json"), cfg.to_string()).expect("write cfg");
    }
    dirs.push((arch.to_string(), out.clone()));
    out
}

/// The tiny model with SAEs from `saes` at `layers`.
pub fn engine_with(saes: &Path, layers: &[usize]) -> Engine {
    Engine::load(&run_of(saes, layers), &ProgressSink::none()).expect("load tiny engine")
}

/// The tiny synthetic SAE of `layer`: its resid_pre (12: the final resid_post), 512 features.
pub fn key(layer: usize) -> saescope::sae::key::SaeKey {
    let hook = saescope::model::hooks::HookPoint::parse(&saescope::model::hooks::hook_name(layer, 12)).expect("hook");
    saescope::sae::key::SaeKey::new(hook, 512)
}

/// `key` for several layers.
pub fn keys(layers: &[usize]) -> Vec<saescope::sae::key::SaeKey> {
    layers.iter().map(|&l| key(l)).collect()
}

/// saescope pointed at a stand-in hub, with `hf` as its (empty) hub cache and nothing of
/// this machine's Hugging Face or proxy settings.
pub fn via_hub(hub: &hub::Hub, hf: &Path) -> std::process::Command {
    let mut c = saescope();
    c.env("HF_ENDPOINT", &hub.endpoint)
        .env("HF_HUB_CACHE", hf)
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_HOME")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY");
    c
}

/// `saescope report --format json --no-cache ARGS` through a stand-in hub serving `repos`
/// (repo name, folder) and an empty HF cache: its JSON, and the hub's request log.
pub fn report_via_hub(repos: &[(&str, &Path)], args: &[&str]) -> (serde_json::Value, String) {
    let hub = hub::Hub::start();
    for (name, dir) in repos {
        hub.repo(name, dir, &[]);
    }
    let hf = tempfile::tempdir().expect("hf");
    let out = via_hub(&hub, hf.path()).args(["report", "--format", "json", "--no-cache"]).args(args).output().expect("report");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (serde_json::from_slice(&out.stdout).expect("json"), hub.log().join("\n"))
}

/// Token ids of a reference fixture.
pub fn ids_of(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().expect("ids").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}

/// A reference case's steering features (`{mode, <sae_field>, feature, strength}`, the SAE
/// named by `sae_field`: a layer number, a hook or a label) as saescope's, each in its mode.
pub fn steers_of(case: &serde_json::Value, sae_field: &str) -> Vec<saescope::interp::steer::Steer> {
    use saescope::interp::steer::{Edit, Steer};
    case["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| Steer {
            sae: f[sae_field].as_str().map_or_else(|| f[sae_field].to_string(), String::from),
            feature: f["feature"].as_u64().expect("f") as u32,
            strength: f["strength"].as_f64().expect("s"),
            mode: Some(if f["mode"] == "add" { Edit::Add } else { Edit::Clamp }),
        })
        .collect()
}

/// A greedy generation (ids, each step's log-probabilities) equals a reference case: the
/// same ids, and each step's top-5 log-probabilities within 1e-4 relative.
pub fn check_greedy(got: &(Vec<u32>, Vec<Vec<f64>>), want: &serde_json::Value, what: &str) {
    assert_eq!(got.0, ids_of(&want["ids"]), "{what}: token ids");
    for (step, (lp, top)) in got.1.iter().zip(want["steps"].as_array().expect("steps")).enumerate() {
        for pair in top.as_array().expect("top") {
            let (id, v) = (pair[0].as_u64().expect("id") as usize, pair[1].as_f64().expect("lp"));
            assert!(close(lp[id], v, 1e-4), "{what}: step {step}, token {id}: {} vs the reference {v}", lp[id]);
        }
    }
}

/// An attribution equals a reference's (`{target_id, logit, saes: [{hook, features}]}`, SAEs
/// matched by hook): the target, its centred logit, every SAE attributed, each SAE's top
/// features in the same order with their scores (1e-3 relative) and ablation effects (1e-4
/// of the logit's scale).
pub fn check_attribution(got: &saescope::interp::attribute::Attribution, want: &serde_json::Value) {
    assert_eq!(got.target_id as u64, want["target_id"].as_u64().expect("t"));
    assert!(close(got.logit, want["logit"].as_f64().expect("l"), 1e-4), "{} vs {}", got.logit, want["logit"]);
    let saes = want["saes"].as_array().expect("saes");
    assert_eq!(got.saes.len(), saes.len(), "every loaded SAE is attributed");
    for ours in &got.saes {
        let hook = ours.sae.hook.to_string();
        let theirs = saes.iter().find(|s| s["hook"] == hook.as_str()).unwrap_or_else(|| panic!("{hook} in the reference"));
        let theirs = theirs["features"].as_array().expect("features");
        assert_eq!(ours.features.len(), theirs.len(), "{hook}: features");
        for (o, t) in ours.features.iter().zip(theirs) {
            let what = format!("SAE {} feature {}", ours.sae, o.feature);
            assert_eq!(o.feature as u64, t["feature"].as_u64().expect("f"), "{what}: same ranking");
            assert!(close(o.attribution, t["attribution"].as_f64().expect("a"), 1e-3), "{what}: {} vs {}", o.attribution, t["attribution"]);
            let scale = got.logit.abs().max(1.0);
            let dl = t["ablation_logit"].as_f64().expect("dl");
            assert!((o.ablation_logit - dl).abs() <= 1e-4 * scale, "{what}: Δlogit {} vs {dl}", o.ablation_logit);
        }
    }
}

/// `Family::logits_each` on `texts` in one right-padded batch, with `hook`'s value halved,
/// equals `forward_cached` on each text alone with the same edit, at every real position:
/// padding changes nothing and the batched path edits as generation does.
pub fn check_batched_logits(e: &Engine, texts: &[Vec<u32>], hook: saescope::model::hooks::HookPoint) {
    use saescope::model::{HookEdit, KvCache};
    let _guard = tch::no_grad_guard();
    let halve = || HookEdit::new(vec![hook], |_, h: tch::Tensor| Ok(h * 0.5));
    let p = saescope::pipeline::pack(texts.iter().map(Vec::as_slice), true, e.tokenizer.bos);
    let batched = e.model.logits_each(&p.ids, &p.mask, &mut halve()).expect("batched");
    for (r, ids) in texts.iter().enumerate() {
        let alone = e.model.forward_cached(ids, &mut KvCache::default(), &mut halve()).expect("alone");
        let mine = batched.get(r as i64).narrow(0, 0, ids.len() as i64);
        let diff = (&mine - &alone).abs().max().double_value(&[]);
        let scale = alone.abs().max().double_value(&[]);
        assert!(diff <= 1e-4 * scale.max(1.0), "text {r} ({} tokens): batched logits differ by {diff} (scale {scale})", ids.len());
    }
}

/// The model folder `from` copied into `to` (config and tokenizer as they are) with every
/// tensor of its `model.safetensors` (all f32) rewritten by `each(name, values)` into a
/// dtype and its little-endian bytes: how tests make the checkpoints synth does not write.
pub fn rewrite_model(from: &Path, to: &Path, each: impl Fn(&str, Vec<f32>) -> (safetensors::tensor::Dtype, Vec<u8>)) {
    use safetensors::tensor::{Dtype, TensorView};
    std::fs::create_dir_all(to).expect("mkdir");
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(from.join(f), to.join(f)).expect("copy");
    }
    let bytes = std::fs::read(from.join("model.safetensors")).expect("weights");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let out: Vec<(String, Vec<usize>, Dtype, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), Dtype::F32, "{name}");
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            let (dtype, data) = each(&name, values);
            (name, view.shape().to_vec(), dtype, data)
        })
        .collect();
    let views: Vec<(String, TensorView)> = out.iter().map(|(n, s, d, b)| (n.clone(), TensorView::new(*d, s.clone(), b).expect("view"))).collect();
    safetensors::serialize_to_file(views, &None, &to.join("model.safetensors")).expect("write");
}

/// f32 values as little-endian bytes.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Transcoders at every layer of the tiny model (`synth --transcoders plain` or `skip`),
/// written once per test binary.
pub fn tiny_transcoders(skip: bool) -> &'static Path {
    static PLAIN: OnceLock<PathBuf> = OnceLock::new();
    static SKIP: OnceLock<PathBuf> = OnceLock::new();
    (if skip { &SKIP } else { &PLAIN }).get_or_init(|| {
        let dir = kept_dir();
        let e = model_engine();
        let spec = saescope::synth::transcoders::Spec { width: 256, skip, cross: false, layout: saescope::synth::transcoders::Layout::SaeLens, seed: 1 };
        saescope::synth::transcoders::write(e.model.as_ref(), &e.tokenizer, &dir, spec, &ProgressSink::none()).expect("synth transcoders");
        dir
    })
}

/// `saescope synth --size tiny --seed 0 --transcoders clt`: one cross-layer transcoder over
/// the tiny model, in circuit-tracer's own layout.
pub fn tiny_clt() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = kept_dir();
        let e = model_engine();
        let spec = saescope::synth::transcoders::Spec { width: 256, skip: false, cross: true, layout: saescope::synth::transcoders::Layout::SaeLens, seed: 1 };
        saescope::synth::transcoders::write(e.model.as_ref(), &e.tokenizer, &dir, spec, &ProgressSink::none()).expect("synth clt");
        dir
    })
}

/// Every block of the tiny model, no SAEs.
pub fn model_engine() -> Engine {
    saescope::pipeline::Resolved::model_only(&Source::Dir(tiny().join("model")), &ProgressSink::none())
        .expect("resolve tiny")
        .load_full(tch::Device::Cpu, &RunOptions::default(), &ProgressSink::none())
        .expect("load tiny whole")
}
