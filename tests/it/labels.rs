//! The Neuronpedia label importer on a sample export: accepted shapes, malformed rows named
//! (nothing dropped silently), rows of other layers reported, search.

use crate::common;

use saescope::neuronpedia::labels::{Labels, Scope};
use saescope::sae::neuronpedia_id::Ids;
use std::io::Write;

const LAYERS: [usize; 3] = [6, 8, 10];

/// The tiny SAEs at LAYERS.
fn loaded() -> &'static [saescope::sae::key::SaeKey] {
    static KEYS: std::sync::OnceLock<Vec<saescope::sae::key::SaeKey>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| common::keys(&LAYERS))
}

/// Loaded layers whose Neuronpedia ids are not known: rows match by layer number.
fn scope() -> Scope<'static> {
    static IDS: std::sync::OnceLock<Ids> = std::sync::OnceLock::new();
    Scope::new(loaded(), IDS.get_or_init(Ids::default))
}

fn sample() -> (Labels, saescope::neuronpedia::labels::ImportSummary) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/labels_sample.jsonl");
    Labels::load(&path, &scope()).expect("sample export imports")
}

#[test]
fn sample_export_imports_with_every_row_accounted_for() {
    let (l, s) = sample();
    assert_eq!(l.get(common::key(6), 5), Some("Python function definitions"));
    assert_eq!(l.get(common::key(8), 17), Some("closing brackets in code | end of a Python call"), "two explanations of one feature are both kept");
    assert_eq!(l.get(common::key(10), 400), Some("hashtags and @mentions"), "numeric layer, `feature` and `explanation` are accepted");
    assert_eq!(l.get(common::key(3), 9), None);
    assert_eq!((s.rows, s.labelled, s.other_layers, s.layers_skipped.clone()), (6, 4, 1, vec![3]));
    assert_eq!(s.line(), "5 labels for 4 features; 1 row for layers not loaded (3) set aside");
}

#[test]
fn json_array_and_explanations_object_are_accepted() {
    let arr = r#"[{"layer":"8-res-jb","index":"1","description":"a"},{"layer":"8","index":2,"label":"b"}]"#;
    let (l, _) = Labels::parse(arr, "a.json", &scope()).expect("array");
    assert_eq!((l.get(common::key(8), 1), l.get(common::key(8), 2)), (Some("a"), Some("b")));
    let obj = r#"{"explanations": [{"layer":"6-res-jb","index":"3","description":"c"}]}"#;
    let (l, _) = Labels::parse(obj, "o.json", &scope()).expect("object");
    assert_eq!(l.get(common::key(6), 3), Some("c"));
}

#[test]
fn malformed_rows_fail_the_import_and_are_named() {
    let src = "{\"layer\":\"8-res-jb\",\"index\":\"1\",\"description\":\"ok\"}\n{\"layer\":\"8-res-jb\",\"description\":\"no index\"}\n{\"layer\":\"eight\",\"index\":\"2\",\"description\":\"x\"}\n";
    let e = Labels::parse(src, "bad.jsonl", &scope()).expect_err("malformed").to_string();
    assert!(e.starts_with("bad.jsonl: 2 malformed rows (line 2: missing \"index\"; also line 3: \"layer\" \"eight\""), "{e}");
    let e = Labels::parse("{\"layer\":8,\"index\":1,\"description\":\"x\"}\nnot json\n", "b.jsonl", &scope()).expect_err("bad json").to_string();
    assert!(e.contains("b.jsonl: line 2: not valid JSON"), "{e}");
    let e = Labels::parse("{\"layer\":8,\"index\":9999,\"description\":\"x\"}", "w.jsonl", &scope()).expect_err("past d_sae").to_string();
    assert!(e.contains("feature 9999 is past SAE 8 res 512's 512 features"), "{e}");
    let e = Labels::parse("[{\"layer\":8,\"index\":1,\"description\":\"  \"}]", "e.json", &scope()).expect_err("empty").to_string();
    assert!(e.contains("row 1: \"description\" is empty"), "{e}");
}

#[test]
fn search_matches_all_words_any_case_or_the_id() {
    let (l, _) = sample();
    let hits: Vec<(usize, u32)> = l.search("python").iter().map(|&(a, b, _)| (a.layer(), b)).collect();
    assert_eq!(hits, vec![(6, 5), (8, 17)]);
    let hits: Vec<(usize, u32)> = l.search("CODE closing").iter().map(|&(a, b, _)| (a.layer(), b)).collect();
    assert_eq!(hits, vec![(8, 17)]);
    assert_eq!(l.search("#400").len(), 1);
    assert!(l.search("   ").is_empty());
    assert!(l.search("nothing like this").is_empty());
}

/// `saescope search` finds by label without loading any weights.
#[test]
fn search_command_lists_matching_features() {
    let out =
        common::saescope().args(["search", "python", "--layers", "6,8"]).arg("--labels").arg(common::fixture("labels_sample.jsonl")).output().expect("run");
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Labels alone name no SAE: the default release's ids are known.
    assert_eq!(s, "6 res\t5\tPython function definitions\thttps://www.neuronpedia.org/gpt2-small/6-res-jb/5\n8 res\t17\tclosing brackets in code | end of a Python call\thttps://www.neuronpedia.org/gpt2-small/8-res-jb/17\n");
    let none = common::saescope().args(["search", "python"]).output().expect("run");
    assert!(!none.status.success() && String::from_utf8_lossy(&none.stderr).contains("needs --labels FILE"));
}

/// A Neuronpedia row as exported: its embedding is read past, not kept.
fn np_row(model: &str, source: &str, index: u32, text: &str) -> String {
    let embedding: Vec<String> = (0..256).map(|i| format!("{:.6}", i as f32 * 0.001)).collect();
    format!(
        r#"{{"modelId":"{model}","layer":"{source}","index":"{index}","description":"{text}","explanationModelName":"gpt-4o-mini","typeName":"oai_token-act-pair","embedding":[{}],"scores":[]}}"#,
        embedding.join(",")
    )
}

fn gz(path: &std::path::Path, lines: &[String]) {
    let mut e = flate2::write::GzEncoder::new(std::fs::File::create(path).expect("create"), flate2::Compression::fast());
    for l in lines {
        writeln!(e, "{l}").expect("write");
    }
    e.finish().expect("finish");
}

#[test]
fn a_folder_of_gzipped_batches_loads_with_other_sources_counted() {
    let dir = tempfile::tempdir().expect("tmp");
    let exp = dir.path().join("explanations");
    std::fs::create_dir(&exp).expect("mkdir");
    gz(
        &exp.join("batch-0.jsonl.gz"),
        &[
            np_row("gpt2-small", "8-res-jb", 1, "one"),
            np_row("gpt2-small", "8-res_post_32k-oai", 1, "another source"),
            np_row("gpt2-small", "3-res-jb", 2, "not loaded"),
        ],
    );
    gz(&exp.join("batch-10.jsonl.gz"), &[np_row("gpt2-small", "8-res-jb", 2, "two"), np_row("gemma-2b", "8-res-jb", 3, "another model")]);
    gz(&exp.join("batch-2.jsonl.gz"), &[np_row("gpt2-small", "6-res-jb", 4, "four")]);
    let ids = Ids::from_pairs([(common::key(6), "gpt2-small/6-res-jb"), (common::key(8), "gpt2-small/8-res-jb"), (common::key(10), "gpt2-small/10-res-jb")]);
    let sc = Scope::new(loaded(), &ids);
    let (l, s) = Labels::load(dir.path(), &sc).expect("folder imports");
    assert_eq!(
        (l.get(common::key(8), 1), l.get(common::key(8), 2), l.get(common::key(6), 4), l.get(common::key(8), 3)),
        (Some("one"), Some("two"), Some("four"), None)
    );
    assert_eq!((s.files, s.rows, s.other_layers, s.other_sources), (3, 6, 1, 2));
    assert_eq!(
        s.line(),
        "3 labels for 3 features from 3 files; 1 row for layers not loaded (3) set aside; 2 rows of other models or sources (gpt2-small/8-res_post_32k-oai, gemma-2b/8-res-jb) set aside"
    );
    // One file of the folder, gzipped, on its own, with no ids known: its layer-8 rows come
    // from two models, so neither is attached, and the summary says why and what to do.
    let (l, s) = Labels::load(&exp.join("batch-10.jsonl.gz"), &scope()).expect("one gz file");
    assert_eq!((l.get(common::key(8), 2), l.get(common::key(8), 3), s.other_sources, l.len()), (None, None, 0, 0));
    assert_eq!(s.undecided, vec![(8, 2, vec!["gemma-2b/8-res-jb".to_string(), "gpt2-small/8-res-jb".to_string()])]);
    assert!(s.line().starts_with("0 labels for 0 features; layer 8: 2 rows of 2 sources (gemma-2b/8-res-jb, gpt2-small/8-res-jb)"), "{}", s.line());
    // Unknown ids and one source per layer: matched by layer number.
    let (l, _) = Labels::load(&exp.join("batch-2.jsonl.gz"), &scope()).expect("one source");
    assert_eq!(l.get(common::key(6), 4), Some("four"));

    // A malformed row is named with its file and line.
    gz(
        &exp.join("batch-3.jsonl.gz"),
        &[np_row("gpt2-small", "8-res-jb", 5, "ok"), r#"{"modelId":"gpt2-small","layer":"8-res-jb","description":"no index"}"#.into()],
    );
    let e = Labels::load(dir.path(), &sc).expect_err("malformed").to_string();
    assert!(e.contains("batch-3.jsonl.gz: line 2: missing \"index\""), "{e}");
    let bad = dir.path().join("bad.jsonl.gz");
    std::fs::write(&bad, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]).expect("write");
    let e = Labels::load(&bad, &sc).expect_err("damaged").to_string();
    assert!(e.contains("bad.jsonl.gz") && e.contains("gzip"), "{e}");
}

/// A whole release's worth of rows (24,576 x 13, embeddings included) loads in well under
/// a second in release builds; printed, not asserted (timings belong in benchmarks).
#[test]
fn a_whole_release_of_rows_streams() {
    let dir = tempfile::tempdir().expect("tmp");
    let layers: Vec<usize> = (0..=12).collect();
    let mut batch = Vec::new();
    let mut n = 0;
    for layer in &layers {
        for f in 0..24_576u32 {
            batch.push(np_row("gpt2-small", &format!("{layer}-res-jb"), f, "a label of a few words"));
            if batch.len() == 1024 {
                gz(&dir.path().join(format!("batch-{n}.jsonl.gz")), &batch);
                batch.clear();
                n += 1;
            }
        }
    }
    let selection = saescope::sae::selection::Selection::from_args("jbloom/GPT2-Small-SAEs-Reformatted", &[], &layers, None, None).expect("selection");
    let (planned, ids) = selection.planned();
    let keys: Vec<saescope::sae::key::SaeKey> = planned.iter().map(|k| saescope::sae::key::SaeKey { width: 24_576, ..*k }).collect();
    let ids = Ids::from_found(planned.iter().zip(&keys).map(|(p, k)| (*k, ids.sae(*p).cloned())));
    let t = std::time::Instant::now();
    let (l, s) = Labels::load(dir.path(), &Scope::new(&keys, &ids)).expect("release imports");
    println!("{} rows in {} files: {:.2} s", s.rows, s.files, t.elapsed().as_secs_f64());
    assert_eq!((l.len(), s.files), (24_576 * 13, 312));
}

/// The SAE's Neuronpedia id is unknown (a local folder whose cfg.json names none) and the
/// export holds a residual and an attention source for the same layer: attaching both
/// would label residual features with attention explanations. None is attached, the
/// summary names the sources, and `--labels-source` picks one.
#[test]
fn labels_of_two_sources_for_a_layer_of_unknown_id_are_not_mixed() {
    let dir = tempfile::tempdir().expect("tmp");
    let rows: Vec<String> = (0..200)
        .flat_map(|f| [np_row("gpt2-small", "6-res-jb", f, "residual"), np_row("gpt2-small", "6-att-kk", f, "attention")])
        .chain([np_row("gpt2-small", "8-res-jb", 1, "only one source at 8")])
        .collect();
    gz(&dir.path().join("batch-0.jsonl.gz"), &rows);
    let none = Ids::default();
    let (l, s) = Labels::load(dir.path(), &Scope::new(loaded(), &none)).expect("loads");
    assert_eq!((l.get(common::key(6), 0), l.get(common::key(8), 1)), (None, Some("only one source at 8")));
    assert_eq!(
        s.line(),
        "1 label for 1 feature; layer 6: 400 rows of 2 sources (gpt2-small/6-att-kk, gpt2-small/6-res-jb) and no Neuronpedia id known for its SAE, so none attached: name one with --labels-source att-kk"
    );
    let (l, s) = Labels::load(dir.path(), &Scope { source: Some("res-jb"), ..Scope::new(loaded(), &none) }).expect("loads");
    assert_eq!(
        (l.get(common::key(6), 0), l.get(common::key(6), 199), l.get(common::key(8), 1), l.len()),
        (Some("residual"), Some("residual"), Some("only one source at 8"), 201)
    );
    assert_eq!((s.other_sources, s.undecided.len()), (200, 0));
    // The full source id works too, and through the command line.
    let (l, _) = Labels::load(dir.path(), &Scope { source: Some("6-att-kk"), ..Scope::new(loaded(), &none) }).expect("loads");
    assert_eq!((l.get(common::key(6), 0), l.get(common::key(8), 1)), (Some("attention"), None));
}
