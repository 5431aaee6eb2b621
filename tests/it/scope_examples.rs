//! Gemma Scope 2's `examples.safetensors` as a ready dashboard (src/neuronpedia/scope_examples.rs):
//! the reader on a file of known numbers in the real layout (windows around each peak, the
//! strongest first, no-example slots skipped, logits decoded, a wrong file refused by name),
//! and `synth --family gemma3`'s files read by the card with no flag, whose top example is the
//! strongest activation saescope itself computes over the same texts.

use crate::common;

use saescope::neuronpedia::scope_examples::ScopeExamples;
use safetensors::tensor::{Dtype, TensorView};
use std::sync::Arc;

/// A file of 3 features and 4 sequences of 40 tokens, in the real names and dtypes.
fn write_file(path: &std::path::Path, drop: Option<&str>) {
    let (d_sae, k, n_seq, len) = (3usize, 4usize, 4usize, 40usize);
    let tokens: Vec<i32> = (0..n_seq * len).map(|i| 4 + (i % 90) as i32).collect();
    // Feature 0: peaks out of order, one slot empty (-1); feature 1: never fires.
    let seq_ids: Vec<i32> = vec![2, 0, -1, 3, -1, -1, -1, -1, 1, 1, 1, 1];
    let positions: Vec<i32> = vec![30, 2, -1, 39, -1, -1, -1, -1, 0, 5, 10, 20];
    let acts: Vec<f32> = vec![4.0, 9.5, 0.0, 1.25, 0.0, 0.0, 0.0, 0.0, 3.0, 2.0, 1.0, 0.5];
    let freq: Vec<f32> = vec![0.01, 0.0, 0.2];
    let logit_ids: Vec<i32> = (0..d_sae * 10).map(|i| 10 + i as i32).collect();
    let logits: Vec<f32> = (0..d_sae * 10).map(|i| 1.0 - i as f32 * 0.01).collect();
    let ints = |v: &[i32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let floats = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let all: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = vec![
        ("tokens", Dtype::I32, vec![n_seq, len], ints(&tokens)),
        ("seq_ids", Dtype::I32, vec![d_sae, k], ints(&seq_ids)),
        ("positions", Dtype::I32, vec![d_sae, k], ints(&positions)),
        ("activations", Dtype::F32, vec![d_sae, k], floats(&acts)),
        ("feature_frequencies", Dtype::F32, vec![d_sae], floats(&freq)),
        ("top_tokens", Dtype::I32, vec![d_sae, 10], ints(&logit_ids)),
        ("top_logits", Dtype::F32, vec![d_sae, 10], floats(&logits)),
        ("bottom_tokens", Dtype::I32, vec![d_sae, 10], ints(&logit_ids)),
        ("bottom_logits", Dtype::F32, vec![d_sae, 10], floats(&logits)),
    ];
    let views: Vec<(String, TensorView)> =
        all.iter().filter(|(n, ..)| Some(*n) != drop).map(|(n, dt, s, b)| (n.to_string(), TensorView::new(*dt, s.clone(), b).expect("view"))).collect();
    safetensors::serialize_to_file(views, &None, path).expect("write");
}

#[test]
fn the_reader_shows_each_feature_strongest_first_in_windows_around_its_peaks() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("examples.safetensors");
    write_file(&path, None);
    let tok = Arc::new(saescope::model::tokenizer::Tokenizer::gpt2().expect("tokenizer"));
    let ex = ScopeExamples::open(&path, 3, tok.clone()).expect("open");
    let f = ex.feature(0, "gemma-3-270m/5-gemmascope-2-res-16k").expect("read").expect("feature 0");
    let peaks: Vec<f32> = f.top.iter().map(|a| a.context.max_value).collect();
    assert_eq!(peaks, [9.5, 4.0, 1.25], "strongest first, the empty slot skipped");
    let first = &f.top[0].context;
    // Sequence 0, position 2: the window starts at the sequence's start.
    assert_eq!((first.window, first.offset, first.max_index), (0, 0, 2));
    assert_eq!(first.token_ids[first.max_index], 4 + 2);
    let second = &f.top[1].context;
    // Sequence 2, position 30: 24 tokens before and 8 after.
    assert_eq!((second.offset, second.max_index, second.token_ids.len()), (6, 24, 33));
    // Sequence 3, position 39, the row's last: nothing after it.
    let third = &f.top[2].context;
    assert_eq!((third.max_index, third.token_ids.len()), (24, 25));
    assert_eq!(second.token_ids[24], 4 + ((2 * 40 + 30) % 90) as u32);
    assert_eq!(second.values.as_ref().map(|v| v.iter().filter(|&&x| x > 0.0).count()), Some(1), "the peak's value alone is known");
    let stats = f.stats.as_ref().expect("stats");
    assert_eq!((stats.max_act_approx, stats.frac_nonzero), (9.5, f64::from(0.01f32)));
    assert_eq!(stats.positive_logits.len(), 10);
    assert_eq!(stats.positive_logits[0].0, tok.token_strings(&[10])[0]);
    assert!(ex.feature(1, "x").expect("read").expect("feature 1").top.is_empty(), "a feature that never fires has no examples");
    assert!(ex.feature(3, "x").expect("read").is_none(), "past the width");
    let o = ex.overview("x");
    assert_eq!((o.features, o.dead), (3, 1));
    // A file without a tensor, or for another width, is refused by name.
    write_file(&path, Some("positions"));
    assert!(ScopeExamples::open(&path, 3, tok.clone()).is_err_and(|e| e.to_string().contains("positions")));
    write_file(&path, None);
    assert!(ScopeExamples::open(&path, 4, tok).is_err_and(|e| e.to_string().contains("[4, examples]")));
}

/// `synth --family gemma3` writes examples.safetensors beside each SAE; `feature` shows them
/// with no flag, and their strongest example is the strongest activation saescope computes
/// for that feature over the same texts (the card's own "where it fires" section).
#[test]
fn synthetic_gemma_scope_folders_carry_examples_the_card_reads() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = common::saescope().args(["synth", "--family", "gemma3", "--out"]).arg(tmp.path()).output().expect("synth");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let folder = tmp.path().join("saes/resid_post/layer_9_width_16k_l0_medium");
    assert!(folder.join("examples.safetensors").is_file());
    let card = common::saescope()
        .args(["feature", "--no-cache", "--layer", "9", "--id", "7", "--format", "json", "--model-dir"])
        .arg(tmp.path().join("model"))
        .arg("--sae-dir")
        .arg(tmp.path().join("saes"))
        .output()
        .expect("feature");
    let err = String::from_utf8_lossy(&card.stderr);
    assert!(card.status.success(), "{err}");
    assert!(err.contains("2 SAEs with Gemma Scope 2's examples.safetensors"), "{err}");
    let c: serde_json::Value = serde_json::from_slice(&card.stdout).expect("json");
    let np = &c["neuronpedia"];
    assert!(np["data_sources"][0].as_str().is_some_and(|s| s.contains("examples.safetensors")), "{np}");
    let top = np["top"].as_array().expect("top");
    assert!(!top.is_empty(), "feature 7 fires on the samples");
    // The synthetic corpus pads short texts to its longest, as fixed-length rows: no window
    // shows that padding.
    assert!(top.iter().all(|a| a["context"]["tokens"].as_array().and_then(|t| t.last()).and_then(|t| t.as_str()) != Some("<pad>")), "{top:?}");
    // The strongest example: sample text `seq` (synth's calibration texts are the bundled
    // samples in order), token `pos`; `tokens` computes that token's activation afresh.
    let file = top[0]["context"]["max_value"].as_f64().expect("max");
    let (seq, pos) = top[0]["data_index"].as_str().and_then(|d| d.split_once(':')).expect("seq:pos");
    let (seq, pos): (usize, usize) = (seq.parse().expect("seq"), pos.parse().expect("pos"));
    let samples = saescope::corpus::samples::Samples::bundled().expect("samples");
    let (_, _, text) = samples.texts().nth(seq).expect("the example's text");
    let tokens = common::saescope()
        .args(["tokens", "--no-cache", "--layer", "9", "--id", "7", "--format", "json", "--text", text.as_str(), "--model-dir"])
        .arg(tmp.path().join("model"))
        .arg("--sae-dir")
        .arg(tmp.path().join("saes"))
        .output()
        .expect("tokens");
    assert!(tokens.status.success(), "{}", String::from_utf8_lossy(&tokens.stderr));
    let t: serde_json::Value = serde_json::from_slice(&tokens.stdout).expect("json");
    let rows = t["tokens"].as_array().expect("tokens");
    // `tokens` leaves BOS out: the file's position p is its row p - 1.
    let own = rows[pos - 1]["activation"].as_f64().expect("activation");
    assert!((own - file).abs() <= 1e-4 * own.abs().max(1.0), "the file's strongest example {file} is saescope's own activation {own} there");
    let peak = rows.iter().filter_map(|r| r["activation"].as_f64()).fold(0.0, f64::max);
    assert!((peak - own).abs() < 1e-6, "and the strongest in its text");
}
