//! Gemma 3 through every layer of saescope, against HF transformers + SAELens (fixture
//! tests/fixtures/gemma_run/ from scripts/reference_gemma.py): a tiny Gemma 3 in the hub's
//! layout with a tokenizer.json of Gemma's kind, and JumpReLU SAEs in Gemma Scope 2's layout
//! at resid_post, mlp_out and attn_out (the heads' z) of layers 5 and 9, named as SAELens's
//! registry names them. The tokens, every SAE's per-text means, the study's report, greedy
//! generation with and without steering over 20 tokens (past the sliding window of 8) and
//! attribution agree.

use crate::common;

use common::{close, fixture, ids_of as ids, saescope};
use saescope::interp::steer::{greedy, Edit};
use saescope::pipeline::{Engine, Resolved, Run, RunOptions};
use saescope::runtime::progress::ProgressSink;
use saescope::sae::selection::Selection;
use saescope::source::Source;
use serde_json::Value;

const RELEASES: &str = "gemma-scope-2-270m-pt-res,gemma-scope-2-270m-pt-mlp,gemma-scope-2-270m-pt-att";
const IDS: &str = "layer_5_width_16k_l0_medium,layer_9_width_16k_l0_medium";

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("gemma_run/reference.json")).expect("fixture")).expect("json")
}

fn run() -> Run {
    let ids: Vec<String> = IDS.split(',').map(String::from).collect();
    let saes = Selection::from_args(RELEASES, &ids, &[], Some(&fixture("gemma_run/saes")), None).expect("selection");
    Run { model: Source::Dir(fixture("gemma_run/model")), saes, device: tch::Device::Cpu, opts: RunOptions::default() }
}

fn full_engine() -> Engine {
    let r = run();
    Resolved::new(&r.model, &r.saes, &ProgressSink::none()).expect("resolve").load_full(r.device, &r.opts, &ProgressSink::none()).expect("load")
}

#[test]
fn tokens_and_every_saes_means_equal_transformers_and_saelens() {
    let r = reference();
    let e = Engine::load(&run(), &ProgressSink::none()).expect("engine");
    assert_eq!(e.model.name(), "Gemma 3");
    let hooks: Vec<String> = e.keys().iter().map(|k| k.hook.to_string()).collect();
    assert_eq!(
        hooks,
        [
            "blocks.5.attn.hook_z",
            "blocks.5.hook_mlp_out",
            "blocks.5.hook_resid_post",
            "blocks.9.attn.hook_z",
            "blocks.9.hook_mlp_out",
            "blocks.9.hook_resid_post"
        ],
        "ordered by depth"
    );
    let texts = r["texts"].as_array().expect("texts");
    let tokens: Vec<Vec<u32>> = texts.iter().map(|t| e.tokenizer.encode_with_bos(t["text"].as_str().expect("text")).expect("tokens")).collect();
    for (got, t) in tokens.iter().zip(texts) {
        assert_eq!(got, &ids(&t["tokens"]), "{}: tokens (BOS <bos> = 2 first)", t["text"]);
    }
    let vectors = e.text_vectors(&tokens, &RunOptions::default(), &ProgressSink::none()).expect("vectors");
    let slot_of: Vec<usize> = r["saes"].as_array().expect("saes").iter().map(|s| hooks.iter().position(|h| h == &s["hook"]).expect("hook")).collect();
    let mut compared = 0;
    for ((_, per_sae), t) in vectors.iter().zip(texts) {
        for (i, want) in t["means"].as_array().expect("means").iter().enumerate() {
            let v = &per_sae[slot_of[i]];
            let got = |f: u64| v.idx.iter().position(|&x| u64::from(x) == f).map_or(0.0, |p| f64::from(v.val[p]));
            for pair in want.as_array().expect("pairs") {
                let (f, want) = (pair[0].as_u64().expect("f"), pair[1].as_f64().expect("v"));
                // A threshold crossed within float noise flips a feature: none is that close here.
                assert!(close(got(f), want, 1e-4), "{} SAE {}: feature {f} {} vs {want}", t["text"], hooks[slot_of[i]], got(f));
                compared += 1;
            }
            assert_eq!(v.idx.len(), want.as_array().expect("pairs").len(), "{} SAE {}: features firing", t["text"], hooks[slot_of[i]]);
        }
    }
    assert!(compared > 1000, "{compared} values compared");
}

#[test]
fn the_report_equals_the_python_stack() {
    let r = reference();
    let out = saescope()
        .args(["report", "--format", "json", "--no-cache", "--sae-release", RELEASES, "--sae", IDS, "--model-dir"])
        .arg(fixture("gemma_run/model"))
        .arg("--sae-dir")
        .arg(fixture("gemma_run/saes"))
        .arg("--samples")
        .arg(fixture("reference_samples.toml"))
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ours: Value = serde_json::from_slice(&out.stdout).expect("json");
    let ref_hooks: Vec<&str> = r["saes"].as_array().expect("saes").iter().map(|s| s["hook"].as_str().expect("hook")).collect();
    for (o, theirs) in ours["categories"].as_array().expect("c").iter().zip(r["categories"].as_array().expect("c")) {
        for ol in o["layers"].as_array().expect("l") {
            let hook = ol["hook"].as_str().expect("hook");
            let rl = &theirs["layers"][ref_hooks.iter().position(|h| *h == hook).expect("same SAEs")];
            let what = format!("{} {hook}", o["name"]);
            for k in ["peak", "gini", "top_sum", "top_share"] {
                let (a, b) = (ol[k].as_f64().expect("num"), rl[k].as_f64().expect("num"));
                assert!(close(a, b, 1e-4), "{what}: {k} {a} vs {b}");
            }
            let top = |l: &Value| l["top"].as_array().expect("top").iter().map(|t| t["feature"].as_u64().expect("f")).collect::<Vec<_>>();
            assert_eq!(top(ol), top(rl), "{what}: top features");
            assert_eq!(ol["spec"], rl["spec"], "{what}: specialist score");
        }
    }
    let links = ours["saes"].to_string();
    assert!(links.contains("5 post") && links.contains("9 z"), "{links}");
}

/// HF's `generate` with its sliding-window cache, plain and with forward hooks editing
/// resid_post 5 and mlp_out 9: the same tokens and top-5 log-probabilities (1e-4).
#[test]
fn greedy_generation_with_and_without_steering_equals_transformers() {
    let r = reference();
    let e = full_engine();
    let prompt = ids(&r["prompt_ids"]);
    assert_eq!(e.tokenizer.encode_with_bos(r["prompt"].as_str().expect("prompt")).expect("tokens"), prompt);
    let n = r["tokens"].as_u64().expect("n") as usize;
    let mut plain = Vec::new();
    for case in r["steering"].as_array().expect("cases") {
        let what = case["name"].as_str().expect("name");
        let steers = common::steers_of(case, "sae");
        let got = greedy(&e, &prompt, &steers, Edit::Add, n).expect("greedy");
        common::check_greedy(&got, case, what);
        if steers.is_empty() {
            plain = got.0.clone();
        } else {
            assert_ne!(got.0, plain, "{what}: steering moves the continuation");
        }
    }
}

/// Attribution on Gemma against autograd through HF's forward: every SAE (z, mlp_out and
/// resid_post at layers 5 and 9) with its top features' scores and ablation effects.
#[test]
fn attribution_equals_autograd_through_transformers() {
    let r = reference();
    let want = &r["attribution"];
    let got = saescope::interp::attribute::attribute(&full_engine(), want["prompt"].as_str().expect("prompt"), None, 8).expect("attribute");
    common::check_attribution(&got, want);
}

/// `--model google/gemma-3-270m` alone, from a gated stand-in hub: without HF_TOKEN the
/// run stops with what to do; with it, the SAEs default to Gemma Scope 2's residual
/// release, and `--layers` takes per layer the SAE Neuronpedia hosts (16k, medium L0).
#[test]
fn gemma_from_a_gated_hub_defaults_to_gemma_scope_2() {
    let hub = common::hub::Hub::start();
    hub.repo("google/gemma-3-270m", &fixture("gemma_run/model"), &[]).repo(
        "google/gemma-scope-2-270m-pt",
        &fixture("gemma_run/saes/google/gemma-scope-2-270m-pt"),
        &[],
    );
    hub.gate("google/gemma-3-270m", "hf_test").gate("google/gemma-scope-2-270m-pt", "hf_test");
    let hf = tempfile::tempdir().expect("tmp");
    let run = |token: Option<&str>| {
        let mut c = common::via_hub(&hub, hf.path());
        c.env_remove("HF_TOKEN");
        if let Some(t) = token {
            c.env("HF_TOKEN", t);
        }
        c.args(["report", "--format", "json", "--no-cache", "--model", "google/gemma-3-270m", "--layers", "5,9", "--samples"])
            .arg(fixture("reference_samples.toml"))
            .output()
            .expect("run")
    };
    let refused = run(None);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && err.contains("401") && err.contains("HF_TOKEN"), "{err}");
    let out = run(Some("hf_test"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let labels: Vec<&str> = v["saes"].as_array().expect("saes").iter().map(|s| s["label"].as_str().expect("label")).collect();
    assert_eq!(labels, ["5 post 128", "9 post 128"]);
    assert_eq!(v["sae_release"], "gemma-scope-2-270m-pt-res");
    let fetched = hub.log().join("\n");
    assert!(fetched.contains("resid_post/layer_5_width_16k_l0_medium/params.safetensors"), "the 16k medium SAE Neuronpedia hosts\n{fetched}");
}

/// The study's question on two models: `findings --versus-model-dir` sets a GPT-2 run and a
/// Gemma run side by side, finding by finding, each run's numbers those it gives alone.
#[test]
fn findings_set_gpt2_and_gemma_side_by_side() {
    let gemma = ["--sae-release", "gemma-scope-2-270m-pt-res", "--sae", IDS];
    let gemma_saes = fixture("gemma_run/saes/google/gemma-scope-2-270m-pt");
    let run = |args: &mut std::process::Command| -> Value {
        let out = args.args(["--format", "json", "--no-cache", "--samples"]).arg(fixture("reference_samples.toml")).output().expect("run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let both = run(common::tiny_args(&mut saescope())
        .args(["findings", "--layers", "6,8,10,11", "--versus-model-dir"])
        .arg(fixture("gemma_run/model"))
        .arg("--versus-sae-dir")
        .arg(&gemma_saes)
        .args(gemma.iter().map(|a| a.replace("--", "--versus-"))));
    let alone_gpt2 = run(common::tiny_args(&mut saescope()).args(["findings", "--layers", "6,8,10,11"]));
    let alone_gemma = run(saescope().args(["findings", "--model-dir"]).arg(fixture("gemma_run/model")).arg("--sae-dir").arg(&gemma_saes).args(gemma));
    let list = both["findings"].as_array().expect("findings");
    // The four findings and the three open questions' answers.
    assert_eq!(list.len(), 7);
    for (i, f) in list.iter().enumerate() {
        let runs = f["runs"].as_array().expect("runs");
        assert_eq!(runs.len(), 2);
        assert!(runs[1]["run"].as_str().is_some_and(|r| r.contains("gemma-scope-2-270m-pt-res")), "{}", runs[1]["run"]);
        for (r, alone) in runs.iter().zip([&alone_gpt2, &alone_gemma]) {
            let alone = &alone["findings"][i];
            assert_eq!(f["claim"], alone["claim"]);
            assert_eq!(
                (&r["holds"], &r["answer"], &r["summary"], &r["rows"]),
                (&alone["holds"], &alone["answer"], &alone["summary"], &alone["rows"]),
                "finding {i}"
            );
        }
    }
}

/// `synth --family gemma3` writes a Gemma 3 that every view loads: the hub's layout (HF's
/// Gemma3ForCausalLM loads it with no missing key, checked when it was written), a tokenizer
/// of Gemma's kind whose byte fallback covers any text, and Gemma Scope SAEs that fire.
#[test]
fn synthetic_gemma_in_the_hub_layout_runs_every_view() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = saescope().args(["synth", "--family", "gemma3", "--out"]).arg(tmp.path()).output().expect("synth");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["model/config.json", "model/model.safetensors", "model/tokenizer.json", "saes/resid_post/layer_9_width_16k_l0_medium/params.safetensors"] {
        assert!(tmp.path().join(f).is_file(), "{f}");
    }
    // synth says how to open what it wrote, and that command needs no more flags: the
    // folder's layout names its release (Gemma Scope 2's) and the layers it holds.
    let said = String::from_utf8_lossy(&out.stderr);
    let (model, saes) = (tmp.path().join("model"), tmp.path().join("saes"));
    let command = format!("saescope --model-dir {} --sae-dir {}", model.display(), saes.display());
    assert!(said.lines().any(|l| l.trim() == command), "synth prints `{command}`:\n{said}");
    let report = saescope().args(["report", "--format", "json", "--no-cache", "--model-dir"]).arg(&model).arg("--sae-dir").arg(&saes).output().expect("report");
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    let v: Value = serde_json::from_slice(&report.stdout).expect("json");
    let layers = v["categories"][0]["layers"].as_array().expect("l");
    assert_eq!(layers.len(), 2, "the two SAEs the folder holds (5 and 9)");
    assert!(layers.iter().all(|l| l["peak"].as_f64().is_some_and(|p| p > 0.5)), "the SAEs fire");
    assert_eq!(v["sae_release"], "gemma-scope-2-270m-pt-res", "{}", v["sae_release"]);
    let tok = saescope::model::tokenizer::Tokenizer::load(Some(&tmp.path().join("model/tokenizer.json")), "<bos>").expect("tokenizer");
    let ids = tok.encode_with_bos("naïve café, 東京").expect("encode");
    assert_eq!(ids[0], 2, "<bos> is 2");
    assert!(ids.iter().all(|&i| i != 3), "no <unk>: bytes fall back");
    let out = saescope().args(["synth", "--size", "270m", "--out"]).arg(tmp.path().join("x")).output().expect("synth");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--family gemma3"));
    let out = saescope().args(["synth", "--family", "gemma3", "--size", "small", "--out"]).arg(tmp.path().join("y")).output().expect("synth");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("tiny, 270m, 4b or 12b"));
}

/// `dir` gets `model`'s config and tokenizer and its weights cut into two shards with the
/// `model.safetensors.index.json` that maps them, as larger checkpoints ship.
fn shard(model: &std::path::Path, dir: &std::path::Path) {
    use safetensors::SafeTensors;
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(model.join(f), dir.join(f)).expect("copy");
    }
    let bytes = std::fs::read(model.join("model.safetensors")).expect("weights");
    let st = SafeTensors::deserialize(&bytes).expect("safetensors");
    let mut tensors = st.tensors();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let half = tensors.len() / 2;
    let mut map = serde_json::Map::new();
    for (i, part) in [&tensors[..half], &tensors[half..]].into_iter().enumerate() {
        let name = format!("model-0000{}-of-00002.safetensors", i + 1);
        let data = safetensors::serialize(part.iter().map(|(n, v)| (n.as_str(), v)), &None).expect("serialize");
        std::fs::write(dir.join(&name), data).expect("write shard");
        for (n, _) in part {
            map.insert(n.clone(), Value::String(name.clone()));
        }
    }
    let index = serde_json::json!({ "metadata": { "total_size": bytes.len() }, "weight_map": map });
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).expect("write index");
}

/// A checkpoint in shards (`model.safetensors.index.json`), from a folder and from the hub,
/// gives the report the single file gives; an index that places a tensor in a shard without
/// it is refused by name.
#[test]
fn a_sharded_checkpoint_gives_the_single_files_report() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sharded = tmp.path().join("sharded");
    std::fs::create_dir_all(&sharded).expect("mkdir");
    shard(&fixture("gemma_run/model"), &sharded);
    let saes = fixture("gemma_run/saes/google/gemma-scope-2-270m-pt");
    let report = |c: &mut std::process::Command| -> Value {
        let out = c
            .args(["report", "--format", "json", "--no-cache", "--sae-release", "gemma-scope-2-270m-pt-res", "--layers", "5,9", "--sae-dir"])
            .arg(&saes)
            .arg("--samples")
            .arg(fixture("reference_samples.toml"))
            .output()
            .expect("report");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut v: Value = serde_json::from_slice(&out.stdout).expect("json");
        v["model"] = Value::Null;
        v
    };
    let single = report(saescope().arg("--model-dir").arg(fixture("gemma_run/model")));
    assert_eq!(report(saescope().arg("--model-dir").arg(&sharded)), single, "from a folder");

    let hub = common::hub::Hub::start();
    hub.repo("google/gemma-3-270m", &sharded, &[]);
    let hf = tmp.path().join("hf");
    assert_eq!(report(common::via_hub(&hub, &hf).args(["--model", "google/gemma-3-270m"])), single, "from the hub");
    let log = hub.log().join("\n");
    for f in ["model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"] {
        assert!(log.contains(f), "fetched {f}\n{log}");
    }

    let index = sharded.join("model.safetensors.index.json");
    let text = std::fs::read_to_string(&index).expect("index").replacen("model-00002-of-00002", "model-00001-of-00002", 1);
    let moved = text.matches("model-00001-of-00002").count();
    std::fs::write(&index, text).expect("write");
    let out = saescope()
        .args(["report", "--no-cache", "--sae-release", "gemma-scope-2-270m-pt-res", "--layers", "5", "--model-dir"])
        .arg(&sharded)
        .arg("--sae-dir")
        .arg(&saes)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(moved > 0 && !out.status.success() && err.contains("which has no such tensor") && err.contains("download the model again"), "{err}");
}

#[test]
fn batched_spliced_forwards_equal_one_text_at_a_time() {
    let e = full_engine();
    let samples = saescope::corpus::samples::Samples::load(&fixture("reference_samples.toml")).expect("samples");
    let texts = e.tokenize(&samples, &RunOptions::default(), &ProgressSink::none()).expect("tokenize");
    // Texts past the sliding window of 8 and shorter ones, padded in one batch.
    assert!(texts.iter().any(|t| t.len() > 8) && texts.iter().any(|t| t.len() < 8));
    common::check_batched_logits(&e, &texts, saescope::model::hooks::HookPoint::new(5, saescope::model::hooks::Site::ResidPost));
}

/// The model folder `from` as `to` with every tensor rounded to bf16 (to nearest even, as
/// `torch.bfloat16` rounds), stored as bf16 when `bf16`, else as the f32 values those bf16
/// hold: two checkpoints of the very same numbers in the two dtypes.
fn rewrite_as_bf16(from: &std::path::Path, to: &std::path::Path, bf16: bool) {
    let round = saescope::synth::shards::bf16_bits;
    common::rewrite_model(from, to, |_, v| {
        let half: Vec<u16> = v.into_iter().map(round).collect();
        if bf16 {
            (safetensors::tensor::Dtype::BF16, half.iter().flat_map(|h| h.to_le_bytes()).collect())
        } else {
            (safetensors::tensor::Dtype::F32, common::f32_bytes(&half.iter().map(|&h| f32::from_bits(u32::from(h) << 16)).collect::<Vec<_>>()))
        }
    });
}

/// Gemma ships its weights in bf16 (google/gemma-3-270m and -1b): a bf16 checkpoint loads
/// into the f32 compute exactly as the same numbers stored in f32 do, and the headless
/// views that had only run on GPT-2 (`tokens`, `feature` with its logit lens, `attribute`)
/// run on it.
#[test]
fn gemma_as_it_ships_in_bf16_runs_every_headless_view() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = saescope().args(["synth", "--family", "gemma3", "--out"]).arg(tmp.path()).output().expect("synth");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (bf16, f32s) = (tmp.path().join("bf16"), tmp.path().join("f32"));
    rewrite_as_bf16(&tmp.path().join("model"), &bf16, true);
    rewrite_as_bf16(&tmp.path().join("model"), &f32s, false);
    let saes = tmp.path().join("saes");
    let run = |model: &std::path::Path, args: &[&str]| {
        let out = saescope().arg("--model-dir").arg(model).arg("--sae-dir").arg(&saes).args(["--no-cache"]).args(args).output().expect("run");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let report = |model: &std::path::Path| -> Value { serde_json::from_slice(&run(model, &["report", "--format", "json"])).expect("json") };
    let (a, b) = (report(&bf16), report(&f32s));
    assert_eq!(a["categories"], b["categories"], "bf16 weights are the same numbers as their f32 copy");
    let top = a["categories"][0]["layers"][0]["top"][0]["feature"].as_u64().expect("a top feature").to_string();
    let tokens: Value =
        serde_json::from_slice(&run(&bf16, &["tokens", "--layer", "5", "--id", &top, "--text", "naïve café, 東京", "--format", "json"])).expect("json");
    let toks = tokens["tokens"].as_array().expect("tokens");
    assert!(toks.len() >= 10 && toks.iter().any(|t| t["activation"].as_f64().is_some_and(|a| a > 0.0)), "{tokens}");
    let card: Value = serde_json::from_slice(&run(&bf16, &["feature", "--layer", "5", "--id", &top, "--format", "json"])).expect("json");
    assert_eq!(card["logits"]["promoted"].as_array().map(Vec::len), Some(10), "{}", card["logits"]);
    let attributed = String::from_utf8(run(&bf16, &["attribute", "--prompt", "The capital of France is"])).expect("utf-8");
    assert!(attributed.contains("5 post 512") && attributed.contains("9 post 512"), "{attributed}");
    // Under --dtype bf16 the bf16 checkpoint is used in place (views of its map) and the
    // f32 one converted: the same bf16 numbers, so the same figures to the bit.
    let in_bf16 = |model: &std::path::Path| -> Value { serde_json::from_slice(&run(model, &["report", "--format", "json", "--dtype", "bf16"])).expect("json") };
    assert_eq!(in_bf16(&bf16)["categories"], in_bf16(&f32s)["categories"], "a bf16 view computes as a converted copy");
    let file = saescope::weights::tensors::SafeFile::open(&bf16.join("model.safetensors")).expect("open");
    let name = "model.layers.0.mlp.up_proj.weight";
    let shape = file.shape(name).expect("up_proj");
    let twice = |kind| [0, 1].map(|_| file.tensor_as(name, &shape, kind).expect("tensor"));
    let [a, b] = twice(tch::Kind::BFloat16);
    assert_eq!(a.data_ptr(), b.data_ptr(), "bf16 as bf16 is the map itself, not a copy");
    let [a, b] = twice(tch::Kind::Float);
    assert_ne!(a.data_ptr(), b.data_ptr(), "bf16 as f32 is a conversion");
}

/// Gemma 3 1B's config.json as the hub ships it (google/gemma-3-1b-pt) reads as the
/// family with its shape, and names its own SAE releases' model.
#[test]
fn gemma_3_1b_config_reads_with_its_shape() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("config.json");
    let layer_types: Vec<&str> = (0..26).map(|i| if (i + 1) % 6 == 0 { "full_attention" } else { "sliding_attention" }).collect();
    let cfg = serde_json::json!({
        "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "torch_dtype": "bfloat16",
        "vocab_size": 262144, "hidden_size": 1152, "intermediate_size": 6912, "num_hidden_layers": 26,
        "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256, "rms_norm_eps": 1e-6,
        "query_pre_attn_scalar": 256, "sliding_window": 512, "max_position_embeddings": 32768,
        "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "rope_scaling": null,
        "hidden_activation": "gelu_pytorch_tanh", "layer_types": layer_types,
        "final_logit_softcapping": null, "attn_logit_softcapping": null, "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0
    });
    std::fs::write(&path, serde_json::to_string_pretty(&cfg).expect("json")).expect("write");
    let c = saescope::model::config::ModelConfig::from_file(&path).expect("a Gemma 3 1B config");
    assert_eq!((c.family(), c.n_layer(), c.d_model(), c.n_ctx(), c.vocab_size()), ("Gemma 3", 26, 1152, 32768, 262144));
    let z = saescope::model::hooks::HookPoint::new(13, saescope::model::hooks::Site::AttnZ);
    assert_eq!(c.d_in(z), 4 * 256, "hook_z is the heads side by side, not d_model wide");
    assert_eq!(c.hub_model(), Some("google/gemma-3-1b-pt"), "its SAE releases are Gemma Scope 2's for 1B");
    assert_eq!(c.bos_token(), "<bos>");
}
