//! Attribution graphs (src/graph/): the rows are what perturbing each source does in the
//! frozen replacement model, the check circuit-tracer's own tests make.

use crate::common::{model_engine, tiny_clt, tiny_transcoders};
use saescope::graph::replacement::{Replacement, Source, Target};
use saescope::graph::transcoders::load_dir;

const PROMPT: &str = "The cat sat on the mat because it was";

/// Every sampled row of the graph of `prompt` equals what perturbing its sources does in
/// the frozen replacement model: features, tokens and errors into features and the top logit.
fn check_rows(model: &dyn saescope::model::Family, tcs: &saescope::graph::transcoders::Transcoders, tokens: &[u32], what: &str) {
    let mut r = Replacement::new(model, tcs, tokens, 1).expect("replacement");
    assert!(r.active.len() > 40, "{what}: {} active features", r.active.len());
    assert!(r.active.iter().all(|a| a.pos > 0), "BOS carries no feature node");
    // The replacement model computes the model's own logits.
    let logits = Vec::<f32>::try_from(&r.last_logits).expect("logits");
    let top = (0..logits.len()).max_by(|&a, &b| logits[a].total_cmp(&logits[b])).expect("a logit") as u32;
    let mean = logits.iter().map(|&x| f64::from(x)).sum::<f64>() / logits.len() as f64;
    let clean_logit = r.perturbed(None, &[Target::Logit(top)]).expect("clean")[0];
    let want_logit = f64::from(logits[top as usize]) - mean;
    assert!((clean_logit - want_logit).abs() < 1e-4 * want_logit.abs().max(1.0), "{what}: {clean_logit} vs {want_logit}");
    let mut targets: Vec<Target> = (0..r.active.len()).step_by(9).map(Target::Feature).collect();
    targets.push(Target::Logit(top));
    let rows = r.rows(&targets, 5).expect("rows");
    // Passes over the prompt's first positions only, as a long prompt's go: the same rows.
    r.set_prefix_bucket(2);
    assert!(targets.iter().any(|&t| r.prefix_len(t) < r.n_pos() / 2), "{what}: some passes are cut short");
    let cut = r.rows(&targets, 5).expect("rows over prefixes");
    for (j, (a, b)) in rows.iter().zip(&cut).enumerate() {
        let top = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(worst <= 1e-5 * top.max(1e-3), "{what}: target {:?}'s row over a prefix differs by {worst} (largest entry {top})", targets[j]);
    }
    let base = r.perturbed(None, &targets).expect("base");
    let mut sources: Vec<Source> = (0..r.active.len()).step_by(11).map(Source::Feature).collect();
    sources.extend((0..r.n_pos()).map(Source::Token));
    let last = r.n_layers() - 1;
    sources.extend([Source::Error { layer: 0, pos: 2 }, Source::Error { layer: last / 2, pos: r.n_pos() - 1 }, Source::Error { layer: last, pos: 3 }]);
    let scale = rows.iter().flatten().fold(0f64, |m, &v| m.max(f64::from(v).abs()));
    let mut checked = 0;
    // A large push, so the change stands well above the f32 rounding of the values it
    // is the difference of; the model is linear there, so any size is exact.
    const PUSH: f64 = 64.0;
    for s in sources {
        let moved = r.perturbed(Some((s, PUSH)), &targets).expect("perturbed");
        for (j, row) in rows.iter().enumerate() {
            let want = f64::from(row[r.column(s)]);
            let got = (moved[j] - base[j]) / PUSH;
            assert!((got - want).abs() <= 1e-4 * want.abs().max(scale * 1e-2), "{what}: source {s:?} target {:?}: moved {got}, row says {want}", targets[j]);
            checked += usize::from(want.abs() > 1e-6);
        }
    }
    assert!(checked > 50, "{what}: only {checked} nonzero edges checked");
}

#[test]
fn every_row_is_what_perturbing_its_source_does() {
    let e = model_engine();
    let tokens = e.tokenizer.encode_with_bos(PROMPT).expect("tokens");
    for kind in ["plain", "skip", "clt"] {
        let tcs = load_dir(fixture_transcoders(kind), e.model.n_layers(), e.model.d_model(), tch::Device::Cpu, tch::Kind::Float).expect("transcoders");
        assert_eq!(tcs.cross.is_some(), kind == "clt");
        check_rows(e.model.as_ref(), &tcs, &tokens, &format!("GPT-2, {kind}"));
    }
}

/// A cross-layer transcoder reading the residual before the MLP (`feature_input_hook:
/// hook_resid_mid`, as mntss's for Gemma 2 do): its rows are what perturbing their sources
/// does, and each layer opens as an SAE at `blocks.L.hook_resid_mid`.
#[test]
fn a_cross_layer_transcoder_reading_resid_mid() {
    let e = model_engine();
    let dir = crate::common::kept_dir();
    for f in std::fs::read_dir(tiny_clt()).expect("clt") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, dir.join(f.file_name().expect("name"))).expect("copy");
    }
    let config =
        std::fs::read_to_string(dir.join("config.yaml")).expect("config").replace("feature_input_hook: mlp.hook_in", "feature_input_hook: hook_resid_mid");
    assert!(config.contains("hook_resid_mid"));
    std::fs::write(dir.join("config.yaml"), config).expect("write");
    let tcs = load_dir(&dir, e.model.n_layers(), e.model.d_model(), tch::Device::Cpu, tch::Kind::Float).expect("clt");
    assert!(tcs.layers.iter().all(|t| t.cfg.hook_name.as_deref().is_some_and(|h| h.ends_with("hook_resid_mid"))), "they read hook_resid_mid");
    let tokens = e.tokenizer.encode_with_bos(PROMPT).expect("tokens");
    check_rows(e.model.as_ref(), &tcs, &tokens, "GPT-2, CLT at resid_mid");
    let files = saescope::source::SaeFiles { cfg: dir.join("config.yaml"), weights: dir.join("W_enc_2.safetensors") };
    let hook = saescope::model::hooks::HookPoint::parse("blocks.2.hook_resid_mid").expect("hook");
    saescope::sae::Sae::load(&files, e.model.d_model(), hook, &Default::default(), false, tch::Device::Cpu, tch::Kind::Float).expect("layer 2 as an SAE");
    // By its SAELens release's name (mntss_clt_layer_transcoder: `path: 2`), through the
    // stand-in hub: each layer read at blocks.L.hook_resid_mid, its decoder fetched beside.
    let hub = crate::common::hub::Hub::start();
    hub.repo("mntss/clt-gemma-2-2b-2.5M", &dir, &[]);
    let hf = tempfile::tempdir().expect("hf");
    let out = crate::common::via_hub(&hub, hf.path())
        .args(["report", "--format", "json", "--no-cache", "--model-dir"])
        .arg(crate::common::tiny().join("model"))
        .args(["--sae-release", "mntss-gemma-2-2b-2.5m-clt-as-per-layer", "--layers", "2,3"])
        .output()
        .expect("report");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let hooks: Vec<&str> = v["saes"].as_array().expect("saes").iter().filter_map(|s| s["hook"].as_str()).collect();
    assert_eq!(hooks, ["blocks.2.hook_resid_mid", "blocks.3.hook_resid_mid"], "{v}");
    let log = hub.log().join("\n");
    assert!(log.contains("W_dec_3.safetensors") && log.contains("config.yaml"), "{log}");
}

/// Gemma 3 as Gemma Scope 2 lays its transcoders out (`transcoder_all/layer_L_..._affine`):
/// the token nodes are the embedding as Gemma adds it, times sqrt(d_model), which the
/// perturbation confirms (circuit-tracer's own token vector lacks that scale).
#[test]
fn gemma_rows_are_what_perturbing_their_sources_does() {
    let dir = crate::common::kept_dir();
    let progress = saescope::runtime::progress::ProgressSink::none();
    let selection = saescope::sae::selection::Selection::from_args("gemma-scope-2-270m-pt-res", &[], &[5], Some(&dir.join("saes")), None).expect("selection");
    saescope::synth::gemma::write(&dir, saescope::model::gemma::Generation::Gemma3, saescope::synth::gpt2::Size::Tiny, 0, &selection, &progress)
        .expect("synth gemma");
    let e = engine_in(&dir);
    let spec = saescope::synth::transcoders::Spec { width: 256, skip: true, cross: false, layout: saescope::synth::transcoders::Layout::GemmaScope, seed: 3 };
    saescope::synth::transcoders::write(e.model.as_ref(), &e.tokenizer, &dir.join("tc"), spec, &progress).expect("transcoders");
    let tcs = load_dir(&dir.join("tc"), e.model.n_layers(), e.model.d_model(), tch::Device::Cpu, tch::Kind::Float).expect("load transcoders");
    let x = tch::Tensor::zeros([1, e.model.d_model() as i64], (tch::Kind::Float, tch::Device::Cpu));
    assert!(tcs.layers.iter().all(|t| t.skip(&x).is_some()), "the affine skip is read");
    let tokens = e.tokenizer.encode_with_bos("The cat sat").expect("tokens");
    check_rows(e.model.as_ref(), &tcs, &tokens, "Gemma 3");
    // A cross-layer transcoder in Gemma Scope 2's layout (params_layer_L, w_dec [d_sae,
    // n_layers, d]), read as circuit-tracer's load_gemma_scope_2_clt reads it.
    let spec = saescope::synth::transcoders::Spec { width: 256, skip: false, cross: true, layout: saescope::synth::transcoders::Layout::GemmaScope, seed: 4 };
    saescope::synth::transcoders::write(e.model.as_ref(), &e.tokenizer, &dir.join("clt"), spec, &progress).expect("clt");
    let clt = load_dir(&dir.join("clt"), e.model.n_layers(), e.model.d_model(), tch::Device::Cpu, tch::Kind::Float).expect("load clt");
    assert!(clt.cross.is_some());
    check_rows(e.model.as_ref(), &clt, &tokens, "Gemma 3, cross-layer");
}

/// Llama 3 and Qwen 3 (their per-head q/k norms meet only the frozen patterns), with
/// skip transcoders and a cross-layer one in SAELens's and circuit-tracer's layouts.
#[test]
fn llama_and_qwen_rows_are_what_perturbing_their_sources_does() {
    let progress = saescope::runtime::progress::ProgressSink::none();
    for variant in [saescope::model::llama::Variant::Llama, saescope::model::llama::Variant::Qwen3] {
        let dir = crate::common::kept_dir();
        saescope::synth::llama::write(&dir, variant, saescope::synth::gpt2::Size::Tiny, 0, None, &progress).expect("synth");
        let e = engine_in(&dir);
        let tokens = e.tokenizer.encode_with_bos("The cat sat").expect("tokens");
        for (name, skip, cross) in [("skip", true, false), ("clt", false, true)] {
            let spec = saescope::synth::transcoders::Spec { width: 256, skip, cross, layout: saescope::synth::transcoders::Layout::SaeLens, seed: 5 };
            saescope::synth::transcoders::write(e.model.as_ref(), &e.tokenizer, &dir.join(name), spec, &progress).expect("transcoders");
            let tcs = load_dir(&dir.join(name), e.model.n_layers(), e.model.d_model(), tch::Device::Cpu, tch::Kind::Float).expect("load transcoders");
            check_rows(e.model.as_ref(), &tcs, &tokens, &format!("{variant:?}, {name}"));
        }
    }
}

/// `release` fetched from `hub` and the folder `written` give the same graph of the model
/// synth wrote under `dir`.
fn same_graph_from_hub(hub: &crate::common::hub::Hub, release: &str, dir: &std::path::Path, written: &std::path::Path) {
    let hf = tempfile::tempdir().expect("hf");
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    let graph = |mut c: std::process::Command, transcoders: &std::ffi::OsStr, file: &std::path::Path| {
        c.arg("graph")
            .arg("--model-dir")
            .arg(dir.join("model"))
            .arg("--transcoders")
            .arg(transcoders)
            .args(["--prompt", "The cat sat on the"])
            .arg("-o")
            .arg(file);
        c.output().expect("graph")
    };
    let out = graph(crate::common::via_hub(hub, hf.path()), release.as_ref(), &a);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = graph(crate::common::saescope(), written.as_os_str(), &b);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (a, b) = (saescope::graph::json::read(&a).expect("a"), saescope::graph::json::read(&b).expect("b"));
    assert!(!a.nodes.is_empty() && a.nodes == b.nodes && a.links == b.links, "{} vs {} nodes", a.nodes.len(), b.nodes.len());
}

/// Qwen 3's transcoders by their SAELens release (`mwhanna-qwen3-0.6b-transcoders-lowl0`,
/// circuit-tracer's set: `config.yaml` and `layer_L.safetensors` at the repo's root),
/// fetched from a stand-in hub: the same graph as the folder synth wrote; `saes --of` the
/// hub's model name lists the release SAELens files under TransformerLens's name; a layer
/// opens as an SAE in the other views.
#[test]
fn qwen_transcoders_by_release_name_through_the_stand_in_hub() {
    let dir = crate::common::kept_dir();
    let out = crate::common::saescope().args(["synth", "--family", "qwen3", "--transcoders", "plain", "--out"]).arg(&dir).output().expect("synth");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let written = dir.join("transcoders");
    assert!(written.join("config.yaml").is_file() && written.join("layer_5.safetensors").is_file(), "circuit-tracer's layout");
    let hub = crate::common::hub::Hub::start();
    hub.repo("mwhanna/qwen3-0.6b-transcoders-lowl0", &written, &[]);
    same_graph_from_hub(&hub, "mwhanna-qwen3-0.6b-transcoders-lowl0", &dir, &written);
    let fetched = hub.log().join("\n");
    assert!(fetched.contains("layer_5.safetensors") && fetched.contains("config.yaml"), "{fetched}");
    let listed = crate::common::saescope().args(["saes", "--of", "Qwen/Qwen3-0.6B"]).output().expect("saes");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("mwhanna-qwen3-0.6b-transcoders-lowl0"), "{}", String::from_utf8_lossy(&listed.stdout));
    // One layer of the set as an SAE (its card, token view and dashboards read it so).
    let tokens = crate::common::saescope()
        .args(["tokens", "--no-cache", "--model-dir"])
        .arg(dir.join("model"))
        .args(["--sae-dir"])
        .arg(&written)
        .args([
            "--sae-release",
            "mwhanna-qwen3-0.6b-transcoders-lowl0",
            "--sae",
            "layer_3",
            "--layer",
            "blocks.3.hook_mlp_in",
            "--id",
            "1",
            "--text",
            "The cat sat",
        ])
        .output()
        .expect("tokens");
    assert!(tokens.status.success(), "{}", String::from_utf8_lossy(&tokens.stderr));
}

/// Gemma 2 with the first Gemma Scope's transcoders (`gemma-scope-2b-pt-transcoders`:
/// `layer_L/width_16k/average_l0_N/params.npz`, reading ln2.hook_normalized, the MLP's input
/// before its norm's weight, as SAELens's gemma_2_transcoder loader says): the rows are what
/// perturbing their sources does, and the release fetched from a stand-in hub gives the
/// folder's graph.
#[test]
fn gemma_2_with_gemma_scope_transcoders() {
    let dir = crate::common::kept_dir();
    let out = crate::common::saescope().args(["synth", "--family", "gemma2", "--transcoders", "plain", "--out"]).arg(&dir).output().expect("synth");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let e = engine_in(&dir);
    let written = dir.join("transcoders");
    let tcs = load_dir(&written, e.model.n_layers(), e.model.d_model(), tch::Device::Cpu, tch::Kind::Float).expect("load transcoders");
    assert!(tcs.layers.iter().all(|t| t.cfg.hook_name.as_deref().is_some_and(|h| h.ends_with("ln2.hook_normalized"))), "they read ln2.hook_normalized");
    let tokens = e.tokenizer.encode_with_bos("The cat sat").expect("tokens");
    check_rows(e.model.as_ref(), &tcs, &tokens, "Gemma 2, Gemma Scope transcoders");
    // The hub repo in the release's own paths (each layer's L0 in its folder's name).
    let registry = saescope::sae::registry::Registry::bundled().expect("registry");
    let release = registry.release("gemma-scope-2b-pt-transcoders").expect("release");
    let repo = tempfile::tempdir().expect("repo");
    for entry in &release.saes {
        let layer = entry.hook().expect("hook").layer;
        let from = std::fs::read_dir(written.join(format!("layer_{layer}/width_256"))).expect("synth folder").next().expect("one").expect("entry").path();
        std::fs::create_dir_all(repo.path().join(&entry.path)).expect("dir");
        std::fs::copy(from.join("params.npz"), repo.path().join(&entry.path).join("params.npz")).expect("copy");
    }
    // circuit-tracer's `gemma` set: a config.yaml listing those files by hf:// reference.
    let set = tempfile::tempdir().expect("set");
    let mut by_layer: Vec<(usize, &str)> = release.saes.iter().map(|e| (e.hook().expect("hook").layer, e.path.as_str())).collect();
    by_layer.sort_unstable();
    let listed: String = by_layer.iter().map(|(_, p)| format!("  - hf://google/gemma-scope-2b-pt-transcoders/{p}/params.npz\n")).collect();
    let config = format!("model_kind: transcoder_set\nfeature_input_hook: ln2.hook_normalized\nfeature_output_hook: hook_mlp_out\ntranscoders:\n{listed}");
    std::fs::write(set.path().join("config.yaml"), config).expect("config");
    let hub = crate::common::hub::Hub::start();
    hub.repo("google/gemma-scope-2b-pt-transcoders", repo.path(), &[]).repo("mwhanna/gemma-scope-transcoders", set.path(), &[]);
    same_graph_from_hub(&hub, "gemma-scope-2b-pt-transcoders", &dir, &written);
    assert!(hub.log().join("\n").contains("layer_25/width_16k/average_l0_"), "{}", hub.log().join("\n"));
    same_graph_from_hub(&hub, "gemma", &dir, &written);
    assert!(hub.log().join("\n").contains("mwhanna/gemma-scope-transcoders"), "{}", hub.log().join("\n"));
}

/// The whole model synth wrote to `dir/model`.
fn engine_in(dir: &std::path::Path) -> saescope::pipeline::Engine {
    let progress = saescope::runtime::progress::ProgressSink::none();
    saescope::pipeline::Resolved::model_only(&saescope::source::Source::Dir(dir.join("model")), &progress)
        .expect("resolve")
        .load_full(tch::Device::Cpu, &Default::default(), &progress)
        .expect("load")
}

/// A fixture of scripts/gen-graph-fixtures: circuit-tracer 0.5.0 on the same weights.
fn reference(name: &str) -> serde_json::Value {
    let path = crate::common::fixture(&format!("graph_tiny_{name}.json.gz"));
    let file = std::fs::File::open(&path).expect("graph fixture");
    serde_json::from_reader(flate2::read::GzDecoder::new(file)).expect("graph fixture JSON")
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect()
}

/// The transcoders a fixture was made with: `plain`, `skip`, or the cross-layer `clt`.
fn fixture_transcoders(kind: &str) -> &'static std::path::Path {
    match kind {
        "clt" => tiny_clt(),
        "skip" => tiny_transcoders(true),
        _ => tiny_transcoders(false),
    }
}

/// The graph saescope computes where the fixture `name` was made, with its settings, over
/// the transcoders `kind` (as `fixture_transcoders` names them).
fn ours(name: &str, kind: &str, opts: saescope::graph::Options) -> (saescope::graph::Graph, serde_json::Value) {
    let want = reference(name);
    let e = model_engine();
    let tcs = load_dir(fixture_transcoders(kind), e.model.n_layers(), e.model.d_model(), tch::Device::Cpu, tch::Kind::Float).expect("transcoders");
    let prompt = want["prompt"].as_str().expect("prompt");
    let tokens = e.tokenizer.encode_with_bos(prompt).expect("tokens");
    let r = Replacement::new(e.model.as_ref(), &tcs, &tokens, 1).expect("replacement");
    let g =
        saescope::graph::attribute(r, &opts, |t| e.tokenizer.token_strings(&[t]).concat(), "transcoders", e.tokenizer.token_strings(&tokens)).expect("graph");
    (g, want)
}

/// circuit-tracer and saescope agree on one graph: tokens, logits, active features and
/// activations, the adjacency's rows (to 1e-4 of each row's largest entry), the pruned
/// node and edge sets, the cumulative scores and both graph scores, and the JSON (where
/// the reference wrote one). `token_scale`: what circuit-tracer's token columns lack (see
/// the Gemma test); pruning and scores are compared on saescope's adjacency with its token
/// columns divided by it, the matrix circuit-tracer pruned.
fn check_against(g: &saescope::graph::Graph, want: &serde_json::Value, token_scale: f64) {
    let ids: Vec<u64> = g.tokens.iter().map(|&t| u64::from(t)).collect();
    assert_eq!(serde_json::json!(ids), want["input_tokens"]);
    let logits: Vec<u32> = g.logits.iter().map(|l| l.token).collect();
    assert_eq!(serde_json::json!(logits), want["logit_tokens"], "the logit nodes");
    for (l, p) in g.logits.iter().zip(floats(&want["logit_probabilities"])) {
        assert!((f64::from(l.prob) - p).abs() <= 1e-4 * p, "probability of {}: {} vs {p}", l.token, l.prob);
    }
    let active: Vec<[u64; 3]> = g.active.iter().map(|a| [a.layer as u64, a.pos as u64, u64::from(a.feature)]).collect();
    assert_eq!(serde_json::json!(active), want["active_features"], "the active features");
    for (a, v) in g.active.iter().zip(floats(&want["activation_values"])) {
        assert!((f64::from(a.activation) - v).abs() <= 1e-4 * v.abs().max(1.0), "{a:?} vs {v}");
    }
    let selected: Vec<u64> = g.selected.iter().map(|&s| s as u64).collect();
    assert_eq!(serde_json::json!(selected), want["selected_features"], "the selected features");
    let n = g.n_nodes();
    assert_eq!(want["adjacency"]["shape"], serde_json::json!([n, n]));
    let mut reference = vec![0f64; n * n];
    for e in want["adjacency"]["entries"].as_array().expect("entries") {
        let (r, c, v) = (e[0].as_u64().expect("row") as usize, e[1].as_u64().expect("col") as usize, e[2].as_f64().expect("value"));
        reference[r * n + c] = v;
    }
    let (layout, probs) = (g.layout(), g.probs());
    let token_columns = layout.features + layout.errors..layout.features + layout.errors + layout.tokens;
    let mut adjacency = g.adjacency.clone();
    for r in 0..n {
        if let Some(row) = adjacency.row_mut(r) {
            row[token_columns.clone()].iter_mut().for_each(|x| *x /= token_scale as f32);
        }
    }
    let rows: Vec<usize> = want["adjacency"]["rows"].as_array().expect("rows").iter().map(|r| r.as_u64().expect("row") as usize).collect();
    assert!(rows.len() > 20);
    for r in rows {
        let theirs = &reference[r * n..(r + 1) * n];
        let scale = theirs.iter().fold(0f64, |m, v| m.max(v.abs()));
        for (c, &v) in theirs.iter().enumerate() {
            let got = f64::from(adjacency.get(r, c));
            assert!((got - v).abs() <= 1e-4 * scale.max(1e-6), "edge {c} -> {r}: {got} vs circuit-tracer's {v} (row scale {scale})");
        }
    }
    let pruned = saescope::graph::prune::prune(&adjacency, &probs, 0.8, 0.98);
    let kept: Vec<u64> = (0..n).filter(|&i| pruned.nodes[i]).map(|i| i as u64).collect();
    assert_eq!(serde_json::json!(kept), want["node_mask"], "the pruned nodes");
    let edges: std::collections::BTreeSet<[u64; 2]> = pruned.edge_list().into_iter().map(|(r, c)| [r as u64, c as u64]).collect();
    let theirs: std::collections::BTreeSet<[u64; 2]> =
        want["edge_mask"].as_array().expect("edges").iter().map(|e| [e[0].as_u64().expect("row"), e[1].as_u64().expect("col")]).collect();
    // An edge whose score ties the cut within float rounding may go either way. circuit-tracer
    // finds the cut by a float32 cumulative sum over every edge, whose rounding grows with
    // their number: on a graph of millions of edges (Gemma 2's 26 layers) the cut moves by up
    // to ~1e-3 of itself, and the edges within that band of it may differ.
    let nnz = (0..n).map(|r| (0..n).filter(|&c| adjacency.get(r, c) != 0.0).count()).sum::<usize>();
    let band = 1e-5f64.max(nnz as f64 * 2e-10);
    let at_cut =
        |e: &[u64; 2]| (f64::from(pruned.edge_score(e[0] as usize, e[1] as usize)) - f64::from(pruned.edge_cut)).abs() <= band * f64::from(pruned.edge_cut);
    let differ: Vec<&[u64; 2]> = edges.symmetric_difference(&theirs).collect();
    assert!(
        differ.len() <= 3 + nnz / 100_000 && differ.iter().all(|e| at_cut(e)),
        "pruned edges: {} vs {} of {nnz}; differing away from the cut (band {band:e}): {differ:?}; scores relative to the cut {:?}",
        edges.len(),
        theirs.len(),
        differ.iter().map(|e| pruned.edge_score(e[0] as usize, e[1] as usize) / pruned.edge_cut - 1.0).collect::<Vec<_>>()
    );
    // Nodes of equal influence take their cumulative scores in whichever order a sort
    // leaves them: compare the scores as a sorted list.
    let mut ours_c: Vec<f64> = pruned.cumulative.iter().map(|&x| f64::from(x)).collect();
    let mut theirs_c = floats(&want["cumulative_scores"]);
    ours_c.sort_by(f64::total_cmp);
    theirs_c.sort_by(f64::total_cmp);
    for (i, (got, v)) in ours_c.iter().zip(&theirs_c).enumerate() {
        assert!((got - v).abs() <= 1e-4, "the {i}th cumulative score {got} vs {v}");
    }
    let (replacement, completeness) = saescope::graph::prune::scores(&adjacency, &probs);
    assert!((f64::from(replacement) - want["replacement_score"].as_f64().expect("score")).abs() <= 1e-4, "replacement {replacement}");
    assert!((f64::from(completeness) - want["completeness_score"].as_f64().expect("score")).abs() <= 1e-4, "completeness {completeness}");
    if want["graph_json"].is_null() {
        return;
    }
    // The JSON: the same nodes, in order, with the same fields, and the same links.
    let file = saescope::graph::json::file(g, &pruned, "graph", 0.8);
    let theirs: saescope::graph::json::File = serde_json::from_value(want["graph_json"].clone()).expect("circuit-tracer's JSON reads back");
    let ids = |f: &saescope::graph::json::File| f.nodes.iter().map(|n| n.node_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&file), ids(&theirs));
    for (a, b) in file.nodes.iter().zip(&theirs.nodes) {
        assert_eq!(
            (a.feature, &a.layer, a.ctx_idx, &a.feature_type, a.is_target_logit, &a.jsNodeId),
            (b.feature, &b.layer, b.ctx_idx, &b.feature_type, b.is_target_logit, &b.jsNodeId)
        );
        let close = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-4 * y.abs().max(1.0),
            (x, y) => x.is_none() && y.is_none(),
        };
        assert!(close(a.influence, b.influence) && close(a.activation, b.activation) && (a.token_prob - b.token_prob).abs() <= 1e-6, "{a:?} vs {b:?}");
    }
    let links = |f: &saescope::graph::json::File| f.links.iter().map(|l| (l.source.clone(), l.target.clone())).collect::<std::collections::BTreeSet<_>>();
    assert!(links(&file).symmetric_difference(&links(&theirs)).count() <= differ.len(), "the JSON's links differ beyond the edges at the cut");
    assert_eq!(file.metadata.prompt_tokens, theirs.metadata.prompt_tokens);
}

#[test]
fn the_graph_is_circuit_tracers() {
    for name in ["plain", "skip", "clt"] {
        let (g, want) = ours(name, name, saescope::graph::Options { batch: 37, ..Default::default() });
        assert!(name != "clt" || g.active.len() > 500, "the cross-layer transcoder's graph has features to check: {}", g.active.len());
        check_against(&g, &want, 1.0);
    }
}

/// Gemma 3 against circuit-tracer's nnsight backend (its TransformerLens one gives every
/// Gemma 3 layer the global RoPE base), with Gemma Scope 2's transcoders and a prompt past
/// the sliding window: everything equal but the token columns, which circuit-tracer takes
/// as the raw embedding row while Gemma adds it times sqrt(d_model); the perturbation test
/// above holds saescope's scale to what the model does.
#[test]
fn the_gemma_graph_is_circuit_tracers_nnsight_one() {
    let dir = crate::common::kept_dir();
    let out = crate::common::saescope()
        .args(["synth", "--family", "gemma3", "--size", "tiny", "--seed", "0", "--transcoders", "skip", "--out"])
        .arg(&dir)
        .output()
        .expect("synth");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let e = engine_in(&dir);
    let tcs = load_dir(&dir.join("transcoders-skip"), e.model.n_layers(), e.model.d_model(), tch::Device::Cpu, tch::Kind::Float).expect("transcoders");
    let want = reference("gemma");
    let tokens = e.tokenizer.encode_with_bos(want["prompt"].as_str().expect("prompt")).expect("tokens");
    assert!(tokens.len() > 16, "past the sliding window of 16: {} tokens", tokens.len());
    let r = Replacement::new(e.model.as_ref(), &tcs, &tokens, 1).expect("replacement");
    let opts = saescope::graph::Options { batch: 37, ..Default::default() };
    let g = saescope::graph::attribute(r, &opts, |t| e.tokenizer.token_strings(&[t]).concat(), "tc", e.tokenizer.token_strings(&tokens)).expect("graph");
    check_against(&g, &want, (e.model.d_model() as f64).sqrt());
}

/// With fewer feature rows than active features, the rows computed are the ones
/// circuit-tracer's influence estimate picks, batch by batch.
/// Qwen 3 with its transcoders in circuit-tracer's own set (as mwhanna's ship), Llama 3 with
/// SAELens folders (Llama 3's RoPE scaling, its own lm_head) and Gemma 2 with the first Gemma
/// Scope's (reading ln2.hook_normalized, which circuit-tracer's nnsight mapping for Gemma 2
/// also names: the norm before its weight; probabilities of the soft-capped logits), against
/// circuit-tracer's nnsight backend on the same folders (HF's own modules; the first token as
/// its ensure_tokenized picks it, as here). Token edges compare as they are: Qwen and Llama
/// scale no embedding, and circuit-tracer's Gemma 2 token vectors, unlike its Gemma 3 ones,
/// carry the sqrt(d_model) scale.
#[test]
fn the_qwen_llama_and_gemma_2_graphs_are_circuit_tracers_nnsight_ones() {
    for family in ["qwen3", "llama", "gemma2"] {
        let dir = crate::common::kept_dir();
        let out = crate::common::saescope()
            .args(["synth", "--family", family, "--size", "tiny", "--seed", "0", "--transcoders", "plain", "--out"])
            .arg(&dir)
            .output()
            .expect("synth");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let e = engine_in(&dir);
        let tcs = load_dir(&dir.join("transcoders"), e.model.n_layers(), e.model.d_model(), tch::Device::Cpu, tch::Kind::Float).expect("transcoders");
        let want = reference(family);
        let tokens = e.tokenizer.encode_with_bos(want["prompt"].as_str().expect("prompt")).expect("tokens");
        let r = Replacement::new(e.model.as_ref(), &tcs, &tokens, 1).expect("replacement");
        let opts = saescope::graph::Options { batch: 37, ..Default::default() };
        let g = saescope::graph::attribute(r, &opts, |t| e.tokenizer.token_strings(&[t]).concat(), "tc", e.tokenizer.token_strings(&tokens)).expect("graph");
        check_against(&g, &want, 1.0);
    }
}

#[test]
fn a_capped_graph_picks_circuit_tracers_features() {
    let (g, want) = ours("capped", "skip", saescope::graph::Options { max_features: Some(120), batch: 16, ..Default::default() });
    check_against(&g, &want, 1.0);
}

/// Interventions as circuit-tracer's `feature_intervention` makes them, on the same weights:
/// two features switched off and one doubled, with attention frozen and free; the logits
/// of the clean run's top 20 tokens agree to 1e-4 of their scale.
#[test]
fn interventions_move_the_logits_as_circuit_tracers_do() {
    // Per-layer transcoders with skip, and a cross-layer transcoder, whose features write
    // every later layer.
    for name in ["skip", "clt"] {
        interventions_against(name);
    }
}

fn interventions_against(name: &str) {
    use saescope::graph::intervene::{logits, Intervention};
    let want = reference(name);
    let iv = &want["intervention"];
    let e = model_engine();
    let tcs = load_dir(fixture_transcoders(name), e.model.n_layers(), e.model.d_model(), tch::Device::Cpu, tch::Kind::Float).expect("transcoders");
    let tokens = e.tokenizer.encode_with_bos(want["prompt"].as_str().expect("prompt")).expect("tokens");
    let wanted: Vec<Intervention> = iv["interventions"]
        .as_array()
        .expect("interventions")
        .iter()
        .map(|i| Intervention {
            layer: i[0].as_u64().expect("l") as usize,
            pos: i[1].as_u64().expect("p") as usize,
            feature: i[2].as_u64().expect("f") as u32,
            value: i[3].as_f64().expect("v") as f32,
        })
        .collect();
    let ids: Vec<usize> = iv["token_ids"].as_array().expect("ids").iter().map(|t| t.as_u64().expect("id") as usize).collect();
    for (run, list, frozen) in [("clean", &[][..], false), ("frozen", &wanted[..], true), ("free", &wanted[..], false)] {
        let got = Vec::<f32>::try_from(logits(e.model.as_ref(), &tcs, &tokens, list, frozen).expect("logits")).expect("vec");
        let theirs = floats(&iv[run]);
        let name = format!("{name}, {run}");
        let scale = theirs.iter().fold(0f64, |m, v| m.max(v.abs()));
        for (&t, v) in ids.iter().zip(&theirs) {
            assert!((f64::from(got[t]) - v).abs() <= 1e-4 * scale, "{name}: token {t}'s logit {} vs circuit-tracer's {v}", got[t]);
        }
        if run != "clean" {
            let clean = floats(&iv["clean"]);
            assert!(theirs.iter().zip(&clean).any(|(a, b)| (a - b).abs() > 1e-3), "{name}: the interventions move the logits");
        }
    }
}

/// `synth --family gemma3 --sae-release gemma-scope-2-270m-pt-transcoders` writes the
/// release's transcoder in Gemma Scope 2's folder, fitted to the MLP, and it opens as the
/// SAE it is: a feature card with activations and a logit lens read where it writes.
#[test]
fn a_gemma_scope_transcoder_opens_as_an_sae() {
    let dir = crate::common::kept_dir();
    let out = crate::common::saescope()
        .args(["synth", "--family", "gemma3", "--sae-release", "gemma-scope-2-270m-pt-transcoders", "--layers", "9", "--out"])
        .arg(&dir)
        .output()
        .expect("synth");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let folder = dir.join("saes/transcoder/layer_9_width_16k_l0_small_affine");
    let w = saescope::weights::tensors::SafeFile::open(&folder.join("params.safetensors")).expect("params");
    assert_eq!(w.shape("affine_skip_connection"), Some(vec![64, 64]), "the affine folder has its skip term");
    let out = crate::common::saescope()
        .args([
            "feature",
            "--format",
            "json",
            "--sae-release",
            "gemma-scope-2-270m-pt-transcoders",
            "--layers",
            "9",
            "--layer",
            "9",
            "--id",
            "3",
            "--model-dir",
        ])
        .arg(dir.join("model"))
        .arg("--sae-dir")
        .arg(dir.join("saes"))
        .output()
        .expect("feature");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let card: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(card["sae"]["hook"], "blocks.9.hook_mlp_in", "{}", card["sae"]);
    assert_eq!(card["logits"]["promoted"].as_array().map(Vec::len), Some(10), "the logit lens reads the transcoder's output: {}", card["logits"]);
}

/// The command as a user runs it: a graph written and read back, an intervention, and bad
/// input refused with a line that says what to do.
#[test]
fn the_graph_command_writes_reads_back_and_refuses_bad_input() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model = crate::common::tiny().join("model");
    let tcs = tiny_transcoders(true);
    let run = |args: &[&str]| {
        let out = crate::common::saescope().arg("graph").arg("--model-dir").arg(&model).args(args).output().expect("graph");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let file = tmp.path().join("g.json");
    let tc = tcs.to_str().expect("utf-8 path");
    let (ok, _, err) = run(&["--transcoders", tc, "--prompt", PROMPT, "-o", file.to_str().expect("path")]);
    assert!(ok, "{err}");
    assert!(err.contains("replacement score") && err.contains("completeness score"), "{err}");
    let (ok, out, err) = run(&["--graph", file.to_str().expect("path")]);
    assert!(ok, "{err}");
    assert!(out.contains("feature,") && out.contains("strongest inputs of Output"), "{out}");
    let (ok, out, err) = run(&["--transcoders", tc, "--prompt", PROMPT, "--ablate", "0:1@1", "--scale", "2"]);
    assert!(ok, "{err}");
    assert!(out.contains("frozen attention") && out.contains("free attention"), "{out}");
    // A cross-layer transcoder, as the command takes it; a feature that does not fire there
    // is said to change nothing.
    let clt = tiny_clt().to_str().expect("utf-8 path");
    let clt_file = tmp.path().join("clt.json");
    let (ok, _, err) = run(&["--transcoders", clt, "--prompt", PROMPT, "-o", clt_file.to_str().expect("path")]);
    assert!(ok && err.contains("replacement score"), "{err}");
    assert!(saescope::graph::json::read(&clt_file).expect("clt graph").nodes.iter().any(|n| n.feature_type == "cross layer transcoder"));
    let e = model_engine();
    let clt_set = load_dir(tiny_clt(), e.model.n_layers(), e.model.d_model(), tch::Device::Cpu, tch::Kind::Float).expect("clt");
    let tokens = e.tokenizer.encode_with_bos(PROMPT).expect("tokens");
    let r = Replacement::new(e.model.as_ref(), &clt_set, &tokens, 0).expect("replacement");
    let idle = (0..256u32).find(|&f| !r.active.iter().any(|a| (a.layer, a.pos, a.feature) == (3, 1, f))).expect("a feature silent at 3@1");
    let (ok, out, err) = run(&["--transcoders", clt, "--prompt", PROMPT, "--ablate", &format!("3:{idle}@1")]);
    assert!(ok, "{err}");
    assert!(out.contains("not active here"), "{out}");
    // A layer without its transcoder, a malformed intervention, a file that is no graph.
    let partial = tmp.path().join("partial");
    std::fs::create_dir_all(&partial).expect("dir");
    for l in [0, 1, 2] {
        let name = format!("blocks.{l}.hook_mlp_in");
        let to = partial.join(&name);
        std::fs::create_dir_all(&to).expect("dir");
        for f in ["cfg.json", "sae_weights.safetensors"] {
            std::fs::copy(tcs.join(&name).join(f), to.join(f)).expect("copy");
        }
    }
    let (ok, _, err) = run(&["--transcoders", partial.to_str().expect("path"), "--prompt", PROMPT]);
    assert!(!ok && err.contains("no transcoder for layer(s) 3, 4"), "{err}");
    let (ok, _, err) = run(&["--transcoders", tc, "--prompt", PROMPT, "--ablate", "3:x@1"]);
    assert!(!ok && err.contains("is not LAYER:FEATURE@POSITION"), "{err}");
    std::fs::write(tmp.path().join("no.json"), "{\"nodes\": 3}").expect("write");
    let (ok, _, err) = run(&["--graph", tmp.path().join("no.json").to_str().expect("path")]);
    assert!(!ok && err.contains("is not a graph in circuit-tracer's JSON"), "{err}");
}

/// A transcoder set in circuit-tracer's own layout (`config.yaml`, `layer_L.safetensors`
/// with W_enc [d_tc, d], the threshold as `activation_function.threshold`, W_skip [d_out,
/// d_in]) gives the graph its SAELens folders give.
#[test]
fn circuit_tracers_own_layout_gives_the_same_graph() {
    use safetensors::tensor::{Dtype, TensorView};
    let src = tiny_transcoders(true);
    let dir = crate::common::kept_dir().join("ct");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("config.yaml"), "model_kind: transcoder_set\nfeature_input_hook: mlp.hook_in\nfeature_output_hook: hook_mlp_out\nscan: tiny\n")
        .expect("config");
    let e = model_engine();
    for l in 0..e.model.n_layers() {
        let bytes = std::fs::read(src.join(format!("blocks.{l}.hook_mlp_in/sae_weights.safetensors"))).expect("weights");
        let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
        let floats = |name: &str| -> (Vec<usize>, Vec<f32>) {
            let t = st.tensor(name).expect(name);
            (t.shape().to_vec(), t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        };
        let mut out: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
        let (shape, w_enc) = floats("W_enc");
        let (d, k) = (shape[0], shape[1]);
        let transposed: Vec<f32> = (0..k).flat_map(|f| (0..d).map(move |i| (i, f))).map(|(i, f)| w_enc[i * k + f]).collect();
        out.push(("W_enc".into(), vec![k, d], transposed));
        for (from, to) in [("W_dec", "W_dec"), ("b_enc", "b_enc"), ("b_dec", "b_dec"), ("threshold", "activation_function.threshold"), ("W_skip", "W_skip")] {
            let (shape, v) = floats(from);
            out.push((to.into(), shape, v));
        }
        let raw: Vec<(String, Vec<usize>, Vec<u8>)> = out.into_iter().map(|(n, s, v)| (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect())).collect();
        let views: Vec<(String, TensorView)> = raw.iter().map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).expect("view"))).collect();
        safetensors::serialize_to_file(views, &None, &dir.join(format!("layer_{l}.safetensors"))).expect("write");
    }
    let tokens = e.tokenizer.encode_with_bos(PROMPT).expect("tokens");
    let graph_of = |d: &std::path::Path| {
        let tcs = load_dir(d, e.model.n_layers(), e.model.d_model(), tch::Device::Cpu, tch::Kind::Float).expect("transcoders");
        let r = Replacement::new(e.model.as_ref(), &tcs, &tokens, 1).expect("replacement");
        saescope::graph::attribute(r, &Default::default(), |t| t.to_string(), "t", Vec::new()).expect("graph")
    };
    let (ours, theirs) = (graph_of(src), graph_of(&dir));
    assert_eq!(ours.active, theirs.active);
    assert_eq!(ours.adjacency.layout, theirs.adjacency.layout);
    let worst = ours.adjacency.data.iter().zip(&theirs.adjacency.data).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst <= 1e-5, "the two layouts' graphs differ by {worst}");
}

/// `--transcoders RELEASE`: the release's transcoder at every layer (by default the 16k,
/// small-L0 ones with their skip term), fetched from a stand-in hub into an empty hub
/// cache, gives the graph the same files give from a folder; a variant the release lacks
/// is refused with what it has.
#[test]
fn transcoders_by_release_name_through_the_stand_in_hub() {
    let dir = crate::common::kept_dir();
    let out = crate::common::saescope().args(["synth", "--family", "gemma3", "--transcoders", "skip", "--out"]).arg(&dir).output().expect("synth");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The hub repo in the release's layout: transcoder_all/layer_L_width_16k_l0_small_affine.
    let repo = tempfile::tempdir().expect("repo");
    let written = dir.join("transcoders-skip/transcoder_all");
    let mut layers = 0;
    for e in std::fs::read_dir(&written).expect("synth folders") {
        let from = e.expect("entry").path();
        let name = from.file_name().expect("name").to_string_lossy().replace("width_256", "width_16k");
        let to = repo.path().join("transcoder_all").join(name);
        std::fs::create_dir_all(&to).expect("dir");
        for f in ["config.json", "params.safetensors"] {
            std::fs::copy(from.join(f), to.join(f)).expect("copy");
        }
        layers += 1;
    }
    assert_eq!(layers, 10, "a transcoder at each of the tiny Gemma's layers");
    let hub = crate::common::hub::Hub::start();
    hub.repo("google/gemma-scope-2-270m-pt", repo.path(), &[]);
    let hf = tempfile::tempdir().expect("hf");
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    let graph = |mut c: std::process::Command, transcoders: &std::ffi::OsStr, file: &std::path::Path, extra: &[&str]| {
        c.arg("graph")
            .arg("--model-dir")
            .arg(dir.join("model"))
            .arg("--transcoders")
            .arg(transcoders)
            .args(["--prompt", PROMPT])
            .args(extra)
            .arg("-o")
            .arg(file);
        c.output().expect("graph")
    };
    let out = graph(crate::common::via_hub(&hub, hf.path()), "gemma-scope-2-270m-pt-transcoders-all".as_ref(), &a, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = graph(crate::common::saescope(), dir.join("transcoders-skip").as_os_str(), &b, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (a, b) = (saescope::graph::json::read(&a).expect("a"), saescope::graph::json::read(&b).expect("b"));
    assert_eq!(a.metadata.scan, "gemma-scope-2-270m-pt-transcoders-all");
    assert!(!a.nodes.is_empty() && a.nodes == b.nodes && a.links == b.links, "{} vs {} nodes", a.nodes.len(), b.nodes.len());
    let fetched = hub.log().join("\n");
    assert!(fetched.contains("transcoder_all/layer_9_width_16k_l0_small_affine/params.safetensors"), "{fetched}");
    let out = graph(
        crate::common::via_hub(&hub, hf.path()),
        "gemma-scope-2-270m-pt-transcoders-all".as_ref(),
        &dir.join("c.json"),
        &["--transcoder-variant", "l0_medium"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("layer 0: none is --transcoder-variant \"l0_medium\"") && err.contains("layer_0_width_16k_l0_small_affine"),
        "{err}"
    );
    let out = graph(crate::common::saescope(), "no-such-release".as_ref(), &dir.join("c.json"), &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is neither a folder, a SAELens release, nor a hub repo"));
}

/// circuit-tracer's sets by its own hub names: `--transcoders llama` fetches its Llama 3.2
/// 1B set (mntss/transcoder-Llama-3.2-1B: config.yaml and layer_L.safetensors), and
/// `org/repo/folder` a set whose config.yaml lists its files as hf:// references into another
/// repo (as its `gemma` set lists Gemma Scope's); each gives the graph of the same files in a
/// folder, and names itself as circuit-tracer's scan does.
#[test]
fn circuit_tracer_sets_by_their_hub_names() {
    let progress = saescope::runtime::progress::ProgressSink::none();
    let dir = crate::common::kept_dir();
    saescope::synth::llama::write(&dir, saescope::model::llama::Variant::Llama, saescope::synth::gpt2::Size::Tiny, 0, None, &progress).expect("synth");
    let e = engine_in(&dir);
    let spec =
        saescope::synth::transcoders::Spec { width: 256, skip: true, cross: false, layout: saescope::synth::transcoders::Layout::CircuitTracer, seed: 5 };
    let set = dir.join("set");
    saescope::synth::transcoders::write(e.model.as_ref(), &e.tokenizer, &set, spec, &progress).expect("transcoders");
    // A second repo whose folder's config names the first repo's files.
    let sets = dir.join("sets");
    std::fs::create_dir_all(sets.join("tiny")).expect("mkdir");
    let listed: String = (0..e.model.n_layers()).map(|l| format!("  - hf://mntss/transcoder-Llama-3.2-1B/layer_{l}.safetensors\n")).collect();
    let config = std::fs::read_to_string(set.join("config.yaml")).expect("config");
    std::fs::write(sets.join("tiny/config.yaml"), format!("{config}\ntranscoders:\n{listed}")).expect("write");
    let hub = crate::common::hub::Hub::start();
    hub.repo("meta-llama/Llama-3.2-1B", &dir.join("model"), &[]).repo("mntss/transcoder-Llama-3.2-1B", &set, &[]).repo("someone/sets", &sets, &[]);
    let hf = tempfile::tempdir().expect("hf");
    let graph = |mut c: std::process::Command, model: &[&std::ffi::OsStr], transcoders: &std::ffi::OsStr, file: &std::path::Path| {
        let out = c.arg("graph").args(model).arg("--transcoders").arg(transcoders).args(["--prompt", PROMPT]).arg("-o").arg(file).output().expect("graph");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        saescope::graph::json::read(file).expect("graph file")
    };
    let local = graph(crate::common::saescope(), &["--model-dir".as_ref(), dir.join("model").as_os_str()], set.as_os_str(), &dir.join("a.json"));
    let by_hub = ["--model".as_ref(), "meta-llama/Llama-3.2-1B".as_ref()];
    let llama = graph(crate::common::via_hub(&hub, hf.path()), &by_hub, "llama".as_ref(), &dir.join("b.json"));
    assert_eq!(llama.metadata.scan, "mntss/transcoder-Llama-3.2-1B");
    assert!(!local.nodes.is_empty() && llama.nodes == local.nodes && llama.links == local.links, "{} vs {} nodes", llama.nodes.len(), local.nodes.len());
    let listed = graph(crate::common::via_hub(&hub, hf.path()), &by_hub, "someone/sets/tiny".as_ref(), &dir.join("c.json"));
    assert_eq!(listed.metadata.scan, "someone/sets//tiny");
    assert!(listed.nodes == local.nodes && listed.links == local.links);
    let log = hub.log().join("\n");
    assert!(log.contains("someone/sets") && log.contains("tiny/config.yaml") && log.contains("layer_5.safetensors"), "{log}");
    // A revision is refused with what to do instead.
    let out = crate::common::saescope()
        .args(["graph", "--model-dir"])
        .arg(dir.join("model"))
        .args(["--transcoders", "org/repo@v2", "--prompt", "x", "-o"])
        .arg(dir.join("d.json"))
        .output()
        .expect("graph");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("into a folder"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `--ablate ... --scale S` sets a feature to S times its activation on the clean prompt:
/// the activation `compare` reads is the one the graph's replacement model has.
#[test]
fn an_intervention_scales_the_clean_activation() {
    use saescope::graph::intervene::{compare, Intervention};
    let e = model_engine();
    let tcs = load_dir(tiny_transcoders(true), e.model.n_layers(), e.model.d_model(), tch::Device::Cpu, tch::Kind::Float).expect("transcoders");
    let tokens = e.tokenizer.encode_with_bos(PROMPT).expect("tokens");
    let r = Replacement::new(e.model.as_ref(), &tcs, &tokens, 1).expect("replacement");
    let a = r.active[r.active.len() / 2];
    let wanted = [Intervention { layer: a.layer, pos: a.pos, feature: a.feature, value: 0.0 }];
    let c = compare(&e, &tcs, &tokens, &wanted, 2.0).expect("compare");
    let (set, clean) = c.set[0];
    assert!((clean - a.activation).abs() <= 1e-5 * a.activation.abs().max(1.0), "{clean} vs {}", a.activation);
    assert!((set.value - 2.0 * a.activation).abs() <= 1e-5 * a.activation.abs().max(1.0), "{set:?}");
    assert!(c.tokens.iter().any(|m| (m.frozen_attention[1] - m.clean[1]).abs() > 1e-6), "doubling it moves a logit");
}

/// A cross-layer transcoder's layer opens as a per-layer SAE (SAELens's
/// mntss_clt_layer_transcoder: its encoder, its decoders to every later layer summed), so
/// a CLT feature of a graph has a card: the same activations as the graph's transcoder, a
/// decoder row that is the sum of what the feature writes, and `feature` prints its card.
#[test]
fn a_cross_layer_transcoders_layer_opens_as_an_sae() {
    use saescope::model::hooks::{HookPoint, Site};
    let e = model_engine();
    let clt = tiny_clt();
    let set = load_dir(clt, e.model.n_layers(), e.model.d_model(), tch::Device::Cpu, tch::Kind::Float).expect("clt");
    let files = saescope::source::SaeFiles { cfg: clt.join("config.yaml"), weights: clt.join("W_enc_3.safetensors") };
    let load = |hook: HookPoint| saescope::sae::Sae::load(&files, e.model.d_model(), hook, &Default::default(), true, tch::Device::Cpu, tch::Kind::Float);
    let sae = load(HookPoint::new(3, Site::MlpIn)).expect("layer 3 as an SAE");
    assert_eq!(saescope::sae::Sae::width(&files).expect("width"), 256);
    let x = tch::Tensor::randn([7, e.model.d_model() as i64], (tch::Kind::Float, tch::Device::Cpu));
    let (a, b) = (sae.encode(&x), set.layers[3].encode(&x));
    assert!(a.count_nonzero(None).int64_value(&[]) > 0);
    assert!(a.allclose(&b, 1e-6, 1e-6, false), "the encoder is the graph's");
    for f in [0u32, 17, 255] {
        let want = set.directions(3, f).expect("directions").into_iter().map(|(_, v)| v).reduce(|a, b| a + b).expect("rows");
        assert_eq!(set.directions(3, f).expect("directions").len(), e.model.n_layers() - 3, "writes to layers 3..");
        assert!(sae.direction(f).expect("row").allclose(&want, 1e-5, 1e-5, false), "feature {f}: the decoders summed");
    }
    let err = load(HookPoint::new(4, Site::MlpIn)).err().expect("layer 3's file for layer 4");
    assert!(err.to_string().contains("loaded for blocks.4.hook_mlp_in"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_saescope"))
        .args(["feature", "--no-cache", "--model-dir"])
        .arg(crate::common::tiny().join("model"))
        .arg("--sae-dir")
        .arg(clt)
        .args(["--sae", "blocks.3.hook_mlp_in", "--layer", "blocks.3.hook_mlp_in", "--id", "17"])
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("feature");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("blocks.3.hook_mlp_in) feature 17") && text.contains("logit lens, promoted"), "{text}");
}
