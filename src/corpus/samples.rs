//! Sample texts by category, from a TOML file users write themselves:
//!
//! ```toml
//! [[category]]
//! name = "Python"
//! texts = ["def f(x):\n    return x"]
//! ```

use color_eyre::eyre::{bail, eyre, Result};
use serde::Deserialize;
use std::path::Path;
use toml::Spanned;

/// Larger files are refused before reading: at GPT-2's speed on a CPU such a corpus takes
/// days, and a mistaken path (a disk image, a dataset dump) should fail at once.
const MAX_FILE: u64 = 256 << 20;

pub static DEFAULT_SAMPLES: &str = include_str!("../../samples/default.toml");

#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    pub name: String,
    pub texts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    pub categories: Vec<Category>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    category: Vec<RawCategory>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    name: Spanned<String>,
    texts: Spanned<Vec<Spanned<String>>>,
}

fn line_of(src: &str, offset: usize) -> usize {
    src[..offset.min(src.len())].matches('\n').count() + 1
}

impl Samples {
    /// `origin` names the file in messages.
    pub fn parse(src: &str, origin: &str) -> Result<Self> {
        let raw: RawFile = toml::from_str(src).map_err(|e| {
            let line = e.span().map(|s| format!(" line {}:", line_of(src, s.start))).unwrap_or_default();
            eyre!("{origin}:{line} {}  (expected [[category]] tables with name = \"...\" and texts = [\"...\"])", e.message())
        })?;
        if raw.category.is_empty() {
            bail!("{origin}: no [[category]] found; add at least one");
        }
        let mut categories = Vec::with_capacity(raw.category.len());
        for c in raw.category {
            let name = c.name.get_ref().trim().to_string();
            let at = |span: std::ops::Range<usize>| line_of(src, span.start);
            if name.is_empty() {
                bail!("{origin}: line {}: empty category name", at(c.name.span()));
            }
            if categories.iter().any(|x: &Category| x.name == name) {
                bail!("{origin}: line {}: category {name:?} appears twice; merge them", at(c.name.span()));
            }
            if c.texts.get_ref().is_empty() {
                bail!("{origin}: line {}: category {name:?} has no texts", at(c.texts.span()));
            }
            let mut texts = Vec::new();
            for t in c.texts.into_inner() {
                if t.get_ref().trim().is_empty() {
                    bail!("{origin}: line {}: empty text in category {name:?}", at(t.span()));
                }
                texts.push(t.into_inner());
            }
            categories.push(Category { name, texts });
        }
        Ok(Self { categories })
    }

    pub fn load(path: &Path) -> Result<Self> {
        let len = std::fs::metadata(path).map_err(|e| eyre!("cannot read samples file {}: {e}", path.display()))?.len();
        if len > MAX_FILE {
            bail!(
                "samples file {} is {} MiB; saescope reads at most {} MiB of samples at once: split it into several files",
                path.display(),
                len >> 20,
                MAX_FILE >> 20
            );
        }
        let bytes = std::fs::read(path).map_err(|e| eyre!("cannot read samples file {}: {e}", path.display()))?;
        let src = String::from_utf8(bytes)
            .map_err(|e| eyre!("{}: not UTF-8 (first bad byte at offset {}); save it as UTF-8", path.display(), e.utf8_error().valid_up_to()))?;
        Self::parse(&src, &path.display().to_string())
    }

    pub fn bundled() -> Result<Self> {
        Self::parse(DEFAULT_SAMPLES, "samples/default.toml")
    }

    pub fn n_texts(&self) -> usize {
        self.categories.iter().map(|c| c.texts.len()).sum()
    }

    /// Every text as (category index, index within the category, text), in file order:
    /// the order of `ActivationSet::texts`.
    pub fn texts(&self) -> impl Iterator<Item = (usize, usize, &String)> {
        self.categories.iter().enumerate().flat_map(|(ci, c)| c.texts.iter().enumerate().map(move |(i, t)| (ci, i, t)))
    }

    pub fn names(&self) -> Vec<String> {
        self.categories.iter().map(|c| c.name.clone()).collect()
    }
}
