//! docs/architecture.md is the codemap, and these tests hold the code to it: every folder
//! of src/ has its paragraph, the root keeps only lib.rs and main.rs, and each floor names
//! only the floors listed before it in the page (so no import cycle between folders).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn codemap() -> String {
    std::fs::read_to_string(root().join("docs/architecture.md")).expect("docs/architecture.md")
}

/// The folders the page gives a heading (`### \`src/X/\``), in its order.
fn floors_in_page(page: &str) -> Vec<String> {
    page.lines().filter_map(|l| l.strip_prefix("### `src/").and_then(|r| r.strip_suffix("/`"))).map(str::to_string).collect()
}

fn folders(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).expect("read src").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    for p in entries.into_iter().filter(|p| p.is_dir()) {
        let name = format!("{prefix}{}", p.file_name().and_then(|n| n.to_str()).expect("utf-8 name"));
        out.push(name.clone());
        folders(&p, &format!("{name}/"), out);
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level floors a file names: `crate::X` or `saescope::X`.
fn named_floors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for prefix in ["crate::", "saescope::"] {
        for (i, _) in text.match_indices(prefix) {
            let before = text[..i].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest = &text[i + prefix.len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn every_folder_of_src_has_its_paragraph_in_the_codemap() {
    let page = floors_in_page(&codemap());
    let mut have = Vec::new();
    folders(&root().join("src"), "", &mut have);
    let missing: Vec<&String> = have.iter().filter(|f| !page.contains(f)).collect();
    let gone: Vec<&String> = page.iter().filter(|f| !have.contains(f)).collect();
    assert!(missing.is_empty(), "docs/architecture.md has no `### `src/X/`` paragraph for {missing:?}");
    assert!(gone.is_empty(), "docs/architecture.md describes folders src/ no longer has: {gone:?}");
}

#[test]
fn the_root_of_src_holds_only_lib_and_main() {
    let mut files: Vec<String> = std::fs::read_dir(root().join("src"))
        .expect("read src")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .collect();
    files.sort();
    assert_eq!(files, ["lib.rs", "main.rs"], "a new file at src/'s root belongs in a floor (docs/architecture.md)");
}

#[test]
fn lib_lists_the_floors_in_the_codemaps_order() {
    let page: Vec<String> = floors_in_page(&codemap()).into_iter().filter(|f| !f.contains('/') && f != "commands").collect();
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).expect("src/lib.rs");
    let listed: Vec<String> = lib.lines().filter_map(|l| l.strip_prefix("pub mod ").and_then(|r| r.strip_suffix(';'))).map(str::to_string).collect();
    assert_eq!(listed, page, "src/lib.rs lists the floors in docs/architecture.md's order");
}

#[test]
fn each_floor_names_only_the_floors_below_it() {
    let order: Vec<String> = floors_in_page(&codemap()).into_iter().filter(|f| !f.contains('/')).collect();
    let mut broken = Vec::new();
    for (rank, floor) in order.iter().enumerate() {
        let mut files = Vec::new();
        rust_files(&root().join("src").join(floor), &mut files);
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read source");
            for named in named_floors(&text) {
                let Some(at) = order.iter().position(|f| *f == named) else { continue };
                if at > rank {
                    broken.push(format!("{} names {named}, a floor above {floor}", file.strip_prefix(root()).unwrap_or(&file).display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "data walks down the floors (docs/architecture.md):\n{}", broken.join("\n"));
}

#[test]
fn the_floor_check_sees_a_name_above_it() {
    // The check above must not pass by seeing nothing: it finds both spellings, and not a
    // path that merely ends in a floor's name.
    let seen = named_floors("use crate::ui::app::App;\nlet x = saescope::pipeline::Engine::load();\nlet y = foo::crate::model::Gpt2;");
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["pipeline", "ui"]);
}
