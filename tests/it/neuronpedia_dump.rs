//! Neuronpedia's dataset dumps read offline (`--neuronpedia`), against a dump in their
//! layout and schemas that scripts/reference_neuronpedia_dump.py wrote with the Python stack
//! (TransformerLens + SAELens, as scripts/reference_index.py indexes) for the tiny weights'
//! layer 6 over the fixture corpus: where saescope's own index of the same SAE and corpus
//! and the dump describe the same thing (frac_nonzero, max, which windows are the top
//! contexts and where they peak), they agree; rows of another source and a malformed line
//! are set aside and named.

use crate::common;

use common::{fixture, saescope, tiny_args};
use serde_json::Value;

const DUMP: &str = "neuronpedia_dump";

fn feature(id: u32, cache: &std::path::Path) -> (Value, String) {
    let out = tiny_args(&mut saescope())
        .args(["feature", "--sae-release", "gpt2-small-res-jb", "--layers", "6", "--layer", "6", "--format", "json", "--id", &id.to_string()])
        .arg("--neuronpedia")
        .arg(fixture(DUMP))
        .arg("--corpus")
        .arg(fixture("corpus"))
        .arg("--cache-dir")
        .arg(cache)
        .output()
        .expect("feature");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    (serde_json::from_slice(&out.stdout).expect("json"), err)
}

#[test]
fn a_dump_agrees_with_saescopes_own_index_and_sets_aside_what_is_not_its() {
    let cache = tempfile::tempdir().expect("tmp");
    let index = tiny_args(&mut saescope())
        .args(["index", "--sae-release", "gpt2-small-res-jb", "--layers", "6", "--corpus"])
        .arg(fixture("corpus"))
        .arg("--cache-dir")
        .arg(cache.path())
        .output()
        .expect("index");
    assert!(index.status.success(), "{}", String::from_utf8_lossy(&index.stderr));
    let mut compared = 0;
    for id in 0..12 {
        let (card, err) = feature(id, cache.path());
        assert!(err.contains("neuronpedia: 12 features from 4 files; 1 row of other sources (gpt2-small/7-res-jb) set aside"), "{err}");
        let (np, own) = (&card["neuronpedia"], &card["corpus"]);
        assert_eq!(np["source"], "gpt2-small/6-res-jb");
        let close = |a: &Value, b: &Value, what: &str| {
            let (a, b) = (a.as_f64().expect("number"), b.as_f64().expect("number"));
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-6), "feature {id}: {what} {a} (Neuronpedia) against {b} (saescope)");
        };
        close(&np["stats"]["frac_nonzero"], &own["frac_nonzero"], "frac_nonzero");
        close(&np["stats"]["max_act_approx"], &own["max"], "max");
        let np_top: Vec<(u64, u64)> = np["top"]
            .as_array()
            .expect("top")
            .iter()
            .map(|a| (a["data_index"].as_str().and_then(|s| s.parse().ok()).expect("dataIndex"), a["context"]["max_index"].as_u64().expect("max_index")))
            .collect();
        let own_top: Vec<(u64, u64)> =
            own["top"].as_array().expect("top").iter().map(|c| (c["window"].as_u64().expect("window"), c["max_index"].as_u64().expect("max_index"))).collect();
        assert_eq!(np_top, own_top, "feature {id}: the top contexts, by window and peak");
        for (a, c) in np["top"].as_array().expect("top").iter().zip(own["top"].as_array().expect("top")) {
            assert_eq!(a["context"]["tokens"].as_array().map(Vec::len), c["tokens"].as_array().map(Vec::len), "feature {id}: tokens per context");
            close(&a["context"]["max_value"], &c["max_value"], "a context's max");
        }
        compared += np_top.len();
        if id == 0 {
            let aside = &np["set_aside"];
            assert_eq!(aside["other_source_rows"], 1, "{aside}");
            let malformed = aside["malformed"].as_array().expect("malformed");
            assert!(
                malformed.len() == 1 && malformed[0].as_str().is_some_and(|m| m.starts_with("v1/gpt2-small/6-res-jb/activations/batch-0.jsonl.gz: line 2: ")),
                "{aside}"
            );
        }
    }
    assert!(compared > 100, "{compared} contexts compared");

    // A feature past the dump's 12: the card goes on without a Neuronpedia section.
    let (card, err) = feature(40, cache.path());
    assert!(card["neuronpedia"].is_null() && err.contains("the Neuronpedia dump has nothing of 6 res 512 feature 40"), "{err}");
}

/// A dump of SAEs not loaded is one line that says so, naming what it holds.
#[test]
fn a_dump_of_other_saes_is_refused_with_what_it_holds() {
    let out = tiny_args(&mut saescope())
        .args(["feature", "--sae-release", "gpt2-small-res-jb", "--layers", "8", "--layer", "8", "--id", "1", "--no-cache", "--neuronpedia"])
        .arg(fixture(DUMP))
        .output()
        .expect("feature");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("nothing of the loaded SAEs (gpt2-small/8-res-jb)") && err.contains("gpt2-small/6-res-jb"), "{err}");
}

/// `index --export-neuronpedia DIR` writes the index in Neuronpedia's layout; reading it
/// back with `--neuronpedia DIR` gives the card's corpus sections again: the same firing
/// rate and max, the same top contexts and interval samples (window, tokens, peak), and
/// every token's value as the card computes it.
#[test]
fn the_index_exported_in_neuronpedias_layout_reads_back_as_the_same_card() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (cache, dump) = (tmp.path().join("cache"), tmp.path().join("dump"));
    let base = |c: &mut std::process::Command| {
        tiny_args(c).args(["--sae-release", "gpt2-small-res-jb", "--layers", "6,11", "--corpus"]).arg(fixture("corpus")).arg("--cache-dir").arg(&cache);
    };
    let mut c = saescope();
    base(&mut c);
    let out = c.arg("index").arg("--export-neuronpedia").arg(&dump).output().expect("index");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("wrote ") && err.contains("v1/gpt2-small/11-res-jb"), "{err}");
    for sub in ["features/batch-0.jsonl.gz", "activations/batch-0.jsonl.gz"] {
        assert!(dump.join("v1/gpt2-small/6-res-jb").join(sub).is_file(), "{sub}");
    }
    // The histograms are Neuronpedia's: 50 linear bins from each feature's least positive
    // activation to its greatest (maxActApprox), counting every one in the corpus, so the
    // counts over the firing rate give the corpus's tokens alike for every feature; the
    // logits' 50 bins count the whole vocabulary.
    let rows: Vec<Value> = {
        let file = std::fs::File::open(dump.join("v1/gpt2-small/6-res-jb/features/batch-0.jsonl.gz")).expect("features");
        std::io::BufRead::lines(std::io::BufReader::new(flate2::read::GzDecoder::new(file)))
            .map(|l| serde_json::from_str(&l.expect("line")).expect("row"))
            .collect()
    };
    let mut tokens_seen = Vec::new();
    for row in &rows {
        let nums = |k: &str| -> Vec<f64> { row[k].as_array().expect(k).iter().map(|x| x.as_f64().expect("number")).collect() };
        let (heights, values, logit_heights) = (nums("freq_hist_data_bar_heights"), nums("freq_hist_data_bar_values"), nums("logits_hist_data_bar_heights"));
        assert_eq!(logit_heights.len(), 50);
        assert_eq!(logit_heights.iter().sum::<f64>(), 50257.0, "the logits histogram counts the vocabulary");
        let frac = row["frac_nonzero"].as_f64().expect("frac");
        if frac == 0.0 {
            assert!(heights.is_empty() && values.is_empty(), "a dead feature has an empty histogram");
            continue;
        }
        assert_eq!((heights.len(), values.len()), (50, 50));
        tokens_seen.push(heights.iter().sum::<f64>() / frac);
        let width = (values[49] - values[0]) / 49.0;
        let max = row["maxActApprox"].as_f64().expect("max");
        assert!((values[49] + width / 2.0 - max).abs() <= 2e-3 + 1e-4 * max, "the last bin ends at the greatest activation: {values:?} vs {max}");
        if values[0] == values[49] {
            // One value, however often: torch.histc counts it in the middle bin.
            assert_eq!(heights.iter().position(|&h| h > 0.0), Some(25), "{heights:?}");
        } else {
            assert!(heights[49] >= 1.0 && heights[0] >= 1.0, "the least and greatest activations are counted: {heights:?}");
        }
    }
    assert!(tokens_seen.len() > 100, "{} features fired", tokens_seen.len());
    assert!(tokens_seen.iter().all(|n| (n - tokens_seen[0]).abs() <= 1e-3 * tokens_seen[0]), "counts over firing rates: {tokens_seen:?}");
    let mut checked = 0;
    for (layer, id) in [("6", 3), ("11", 7), ("6", 100), ("11", 250)] {
        let mut c = saescope();
        base(&mut c);
        let out = c.args(["feature", "--format", "json", "--layer", layer, "--id", &id.to_string(), "--neuronpedia"]).arg(&dump).output().expect("feature");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let card: Value = serde_json::from_slice(&out.stdout).expect("json");
        let (np, own) = (&card["neuronpedia"], &card["corpus"]);
        assert_eq!(np["stats"]["frac_nonzero"], own["frac_nonzero"], "{layer}/{id}");
        // pos_str/neg_str are the card's own logit lens, as Neuronpedia fills them.
        for (theirs, ours) in [("positive_logits", "promoted"), ("negative_logits", "suppressed")] {
            let theirs = np["stats"][theirs].as_array().expect("logits");
            let ours = card["logits"][ours].as_array().expect("lens");
            assert_eq!(theirs.len(), 10, "{layer}/{id}: {theirs:?}");
            for (t, o) in theirs.iter().zip(ours) {
                assert_eq!(t[0], o["token"], "{layer}/{id}");
                let (a, b) = (t[1].as_f64().expect("v"), o["logit"].as_f64().expect("v"));
                assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{layer}/{id}: logit {a} read back, {b} in the card");
            }
        }
        // topkCosSim: the feature itself first, then its nearest decoder rows, descending.
        let near = np["stats"]["nearest"].as_array().expect("nearest");
        assert_eq!(near.len(), 10, "{layer}/{id}");
        assert_eq!(near[0][0].as_u64(), Some(id), "{layer}/{id}: itself first");
        assert!((near[0][1].as_f64().expect("cos") - 1.0).abs() < 1e-5);
        let sims: Vec<f64> = near.iter().map(|p| p[1].as_f64().expect("cos")).collect();
        assert!(sims.windows(2).all(|w| w[0] >= w[1]) && sims[1] < 1.0, "{layer}/{id}: {sims:?}");
        let f32_of = |v: &Value| v.as_f64().expect("number") as f32;
        assert_eq!(f32_of(&np["stats"]["max_act_approx"]), f32_of(&own["max"]), "{layer}/{id}");
        let own_intervals: Vec<&Value> = own["intervals"].as_array().expect("intervals").iter().flat_map(|i| i["contexts"].as_array().expect("c")).collect();
        let pairs: Vec<(&Value, &Value)> = np["top"]
            .as_array()
            .expect("top")
            .iter()
            .zip(own["top"].as_array().expect("top"))
            .chain(np["intervals"].as_array().expect("intervals").iter().zip(own_intervals.iter().copied()))
            .collect();
        assert_eq!(np["top"].as_array().map(Vec::len), own["top"].as_array().map(Vec::len), "{layer}/{id}: top contexts");
        assert_eq!(np["intervals"].as_array().map(Vec::len), Some(own_intervals.len()), "{layer}/{id}: interval samples");
        for (a, c) in pairs {
            let a = &a["context"];
            assert_eq!(
                (&a["window"], &a["tokens"], &a["max_index"], &a["max_value"]),
                (&c["window"], &c["tokens"], &c["max_index"], &c["max_value"]),
                "{layer}/{id}"
            );
            let (va, vc) = (a["values"].as_array().expect("values"), c["values"].as_array().expect("values"));
            assert_eq!(va.len(), vc.len());
            for (x, y) in va.iter().zip(vc) {
                let (x, y) = (x.as_f64().expect("v"), y.as_f64().expect("v"));
                assert!((x - y).abs() <= 1e-4 * y.abs().max(1.0), "{layer}/{id}: a token's value {x} read back, {y} in the card");
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked} contexts compared");
    // The other forms --neuronpedia takes: one source's folder, and a single file.
    let card_with = |path: &std::path::Path| -> Value {
        let mut c = saescope();
        base(&mut c);
        let out = c.args(["feature", "--format", "json", "--layer", "6", "--id", "3", "--neuronpedia"]).arg(path).output().expect("feature");
        assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let whole = card_with(&dump);
    let folder = card_with(&dump.join("v1/gpt2-small/6-res-jb"));
    assert_eq!(folder["neuronpedia"]["stats"], whole["neuronpedia"]["stats"], "a source's folder reads as the whole dump does");
    assert_eq!(folder["neuronpedia"]["top"], whole["neuronpedia"]["top"]);
    let file = card_with(&dump.join("v1/gpt2-small/6-res-jb/features/batch-0.jsonl.gz"));
    assert_eq!(file["neuronpedia"]["stats"], whole["neuronpedia"]["stats"], "one features file gives the feature's numbers");
    assert_eq!(file["neuronpedia"]["top"].as_array().map(Vec::len), Some(0), "and no activations: {}", file["neuronpedia"]["top"]);
}
