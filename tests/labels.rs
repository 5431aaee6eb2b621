//! The Neuronpedia label importer on a sample export: accepted shapes, malformed rows named
//! (nothing dropped silently), rows of other layers reported, search.

mod common;

use saescope::labels::Labels;

const LAYERS: [usize; 3] = [6, 8, 10];

fn sample() -> (Labels, saescope::labels::ImportSummary) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/labels_sample.jsonl");
    Labels::load(&path, &LAYERS, 512).expect("sample export imports")
}

#[test]
fn sample_export_imports_with_every_row_accounted_for() {
    let (l, s) = sample();
    assert_eq!(l.get(6, 5), Some("Python function definitions"));
    assert_eq!(l.get(8, 17), Some("closing brackets in code | end of a Python call"), "two explanations of one feature are both kept");
    assert_eq!(l.get(10, 400), Some("hashtags and @mentions"), "numeric layer, `feature` and `explanation` are accepted");
    assert_eq!(l.get(3, 9), None);
    assert_eq!((s.rows, s.labelled, s.other_layers, s.layers_skipped.clone()), (6, 4, 1, vec![3]));
    assert_eq!(s.line(), "5 labels for 4 features; 1 rows for layers not loaded (3) set aside");
}

#[test]
fn json_array_and_explanations_object_are_accepted() {
    let arr = r#"[{"layer":"8-res-jb","index":"1","description":"a"},{"layer":"8","index":2,"label":"b"}]"#;
    let (l, _) = Labels::parse(arr, "a.json", &LAYERS, 512).expect("array");
    assert_eq!((l.get(8, 1), l.get(8, 2)), (Some("a"), Some("b")));
    let obj = r#"{"explanations": [{"layer":"6-res-jb","index":"3","description":"c"}]}"#;
    let (l, _) = Labels::parse(obj, "o.json", &LAYERS, 512).expect("object");
    assert_eq!(l.get(6, 3), Some("c"));
}

#[test]
fn malformed_rows_fail_the_import_and_are_named() {
    let src = "{\"layer\":\"8-res-jb\",\"index\":\"1\",\"description\":\"ok\"}\n{\"layer\":\"8-res-jb\",\"description\":\"no index\"}\n{\"layer\":\"eight\",\"index\":\"2\",\"description\":\"x\"}\n";
    let e = Labels::parse(src, "bad.jsonl", &LAYERS, 512).expect_err("malformed").to_string();
    assert!(e.starts_with("bad.jsonl: 2 malformed rows (row 2: missing \"index\"; also row 3: \"layer\" \"eight\""), "{e}");
    let e = Labels::parse("{\"layer\":8,\"index\":1,\"description\":\"x\"}\nnot json\n", "b.jsonl", &LAYERS, 512).expect_err("bad json").to_string();
    assert!(e.contains("b.jsonl: line 2: not valid JSON"), "{e}");
    let e = Labels::parse("{\"layer\":8,\"index\":9999,\"description\":\"x\"}", "w.jsonl", &LAYERS, 512).expect_err("past d_sae").to_string();
    assert!(e.contains("feature 9999 is past the SAE's 512 features"), "{e}");
    let e = Labels::parse("[{\"layer\":8,\"index\":1,\"description\":\"  \"}]", "e.json", &LAYERS, 512).expect_err("empty").to_string();
    assert!(e.contains("row 1: \"description\" is empty"), "{e}");
}

#[test]
fn search_matches_all_words_any_case_or_the_id() {
    let (l, _) = sample();
    let hits: Vec<(usize, u32)> = l.search("python").iter().map(|&(a, b, _)| (a, b)).collect();
    assert_eq!(hits, vec![(6, 5), (8, 17)]);
    let hits: Vec<(usize, u32)> = l.search("CODE closing").iter().map(|&(a, b, _)| (a, b)).collect();
    assert_eq!(hits, vec![(8, 17)]);
    assert_eq!(l.search("#400").len(), 1);
    assert!(l.search("   ").is_empty());
    assert!(l.search("nothing like this").is_empty());
}

/// `saescope search` finds by label without loading any weights.
#[test]
fn search_command_lists_matching_features() {
    let out = common::saescope().args(["search", "python", "--layers", "6,8"]).arg("--labels").arg(common::fixture("labels_sample.jsonl")).output().expect("run");
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s, "6\t5\tPython function definitions\thttps://www.neuronpedia.org/gpt2-small/6-res-jb/5\n8\t17\tclosing brackets in code | end of a Python call\thttps://www.neuronpedia.org/gpt2-small/8-res-jb/17\n");
    let none = common::saescope().args(["search", "python"]).output().expect("run");
    assert!(!none.status.success() && String::from_utf8_lossy(&none.stderr).contains("needs --labels FILE"));
}
