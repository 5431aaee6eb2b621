//! The README's key table is the explorer's key table (`src/ui/keys.rs`), entry for entry:
//! the block between `<!-- keys:start -->` and `<!-- keys:end -->` must equal
//! `saescope::ui::keys::markdown()` exactly. After changing a key, regenerate it with
//! `bash scripts/readme-keys` (this test with `UPDATE_README=1`).

const START: &str = "<!-- keys:start -->\n";
const END: &str = "<!-- keys:end -->";

#[test]
fn readme_key_table_is_the_key_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let from = readme.find(START).expect("README.md has a `<!-- keys:start -->` line") + START.len();
    let to = from + readme[from..].find(END).expect("README.md has `<!-- keys:end -->` after the start marker");
    let want = saescope::ui::keys::markdown();
    if std::env::var_os("UPDATE_README").is_some() {
        if readme[from..to] != want {
            std::fs::write(path, format!("{}{want}{}", &readme[..from], &readme[to..])).expect("write README.md");
            eprintln!("README.md: key table rewritten");
        }
        return;
    }
    let (have, want_rows): (Vec<&str>, Vec<&str>) = (readme[from..to].lines().collect(), want.lines().collect());
    let missing: Vec<&&str> = want_rows.iter().filter(|r| !have.contains(r)).collect();
    let extra: Vec<&&str> = have.iter().filter(|r| !want_rows.contains(r)).collect();
    assert!(
        readme[from..to] == want,
        "README.md's key table differs from src/ui/keys.rs (run `bash scripts/readme-keys`)\nmissing or changed in the README: {missing:#?}\nnot in the key table: {extra:#?}\nwhole table expected:\n{want}"
    );
}
