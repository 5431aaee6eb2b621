//! The tables docs/ holds are the program's own, entry for entry: the explorer's key table
//! (`saescope::ui::keys::markdown`, between `<!-- keys:start -->` and `<!-- keys:end -->`
//! in docs/explorer.md) and the shared options (`saescope options-table`, generated from
//! the clap definitions, between `<!-- options:start -->` and `<!-- options:end -->` in
//! docs/commands.md). After changing a key or an option, `bash scripts/docs-tables`
//! rewrites both (these tests with `UPDATE_DOCS=1`). The README stays a front door.

use crate::common::saescope;

/// Checks (or with UPDATE_DOCS=1 rewrites) the block of `file` between the marker lines.
fn block_is(file: &str, name: &str, want: &str) {
    let (start, end) = (format!("<!-- {name}:start -->\n"), format!("<!-- {name}:end -->"));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let from = text.find(&start).unwrap_or_else(|| panic!("{file} has a `{}` line", start.trim())) + start.len();
    let to = from + text[from..].find(&end).unwrap_or_else(|| panic!("{file} has `{end}` after the start marker"));
    if std::env::var_os("UPDATE_DOCS").is_some() {
        if text[from..to] != *want {
            std::fs::write(&path, format!("{}{want}{}", &text[..from], &text[to..])).expect("write the docs");
            eprintln!("{file}: {name} table rewritten");
        }
        return;
    }
    let (have, want_rows): (Vec<&str>, Vec<&str>) = (text[from..to].lines().collect(), want.lines().collect());
    let missing: Vec<&&str> = want_rows.iter().filter(|r| !have.contains(r)).collect();
    let extra: Vec<&&str> = have.iter().filter(|r| !want_rows.contains(r)).collect();
    assert!(
        text[from..to] == *want,
        "{file}'s {name} table differs from the program's (run `bash scripts/docs-tables`)\nmissing or changed in {file}: {missing:#?}\nnot in the program: {extra:#?}\nwhole table expected:\n{want}"
    );
}

#[test]
fn the_key_table_in_the_docs_is_the_key_table() {
    block_is("docs/explorer.md", "keys", &saescope::ui::keys::markdown());
}

#[test]
fn the_options_table_in_the_docs_is_what_the_program_parses() {
    let out = saescope().arg("options-table").output().expect("run saescope");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).expect("utf-8");
    // Every shared option is a row, so a new option cannot go undocumented.
    for option in ["--model", "--sae-release", "--layers", "--top-k", "--dtype", "--cache-dir", "--labels", "--corpus", "--versus-model", "--download-timeout"]
    {
        assert!(table.lines().any(|l| l.starts_with(&format!("| `{option} ")) || l.starts_with(&format!("| `{option}`"))), "no row for {option}:\n{table}");
    }
    block_is("docs/commands.md", "options", &table);
}

#[test]
fn the_readme_is_a_front_door_that_links_every_page_of_the_docs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    assert!(readme.len() <= 12 * 1024, "README.md is {} bytes: move detail into docs/ (at most 12 KiB)", readme.len());
    let mut pages: Vec<String> =
        std::fs::read_dir(root.join("docs")).expect("docs/").filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.ends_with(".md")).collect();
    pages.sort();
    let unlinked: Vec<&String> = pages.iter().filter(|p| !readme.contains(&format!("docs/{p}"))).collect();
    assert!(unlinked.is_empty(), "README.md links no docs/ page named {unlinked:?}");
}
