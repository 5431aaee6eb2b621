//! The user's own corpus, for the feature dashboards (`saescope index`): documents read
//! from a text file, a folder of text files, JSON Lines (optionally gzipped) or Parquet
//! with the text in one field, the shapes of Hugging Face dataset dumps; then cut into the
//! SAE's training windows (`windows`).
//!
//! Files are visited in a fixed order (paths sorted, hidden entries skipped), so window
//! numbers, and with them every tie between equal activations, are the same on every run.

pub mod samples;
mod windows;

pub use windows::{Window, Windows};

use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

/// One document: where it came from (file, and line for JSON Lines) and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub source: String,
    pub text: String,
}

/// How a file's content is read.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CorpusFormat {
    /// The whole file is one document.
    Text,
    /// One JSON object per line; the document is one string field.
    JsonLines,
    /// Rows of a Parquet file; the document is one string column.
    Parquet,
}

/// What reading the corpus set aside, for the summary line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Skipped {
    /// Files in a folder that are not text (NUL bytes or not UTF-8).
    pub binary: usize,
    /// JSON Lines rows without the text field (or with a non-string one).
    pub rows_without_text: usize,
    /// The first such row, "file:line", to point the user at.
    pub first_row_without_text: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Corpus {
    pub path: PathBuf,
    pub text_field: String,
    files: Vec<(PathBuf, CorpusFormat)>,
}

/// Extensions read as JSON Lines (before an optional `.gz`).
const JSON_LINES: [&str; 3] = ["jsonl", "ndjson", "json"];

fn format_of(path: &Path) -> CorpusFormat {
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    match name.rsplit_once('.') {
        Some((_, ext)) if JSON_LINES.contains(&ext) => CorpusFormat::JsonLines,
        Some((_, "parquet")) => CorpusFormat::Parquet,
        _ => CorpusFormat::Text,
    }
}

impl Corpus {
    pub fn open(path: &Path, text_field: &str) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| eyre!("--corpus {}: {}", path.display(), crate::runtime::fsio::describe(path, &e)))?;
        let mut files = Vec::new();
        if meta.is_dir() {
            files = crate::runtime::fsio::files_under(path).map_err(|e| eyre!("cannot read the corpus folder {e}"))?;
            if files.is_empty() {
                bail!("--corpus {}: the folder has no files; give a text file, a folder of them, or JSON Lines", path.display());
            }
        } else {
            files.push(path.to_path_buf());
        }
        let files = files.into_iter().map(|f| (f.clone(), format_of(&f))).collect();
        Ok(Self { path: path.to_path_buf(), text_field: text_field.to_string(), files })
    }

    /// Names this corpus for the index's cache key: every file by path, size and mtime
    /// (as the weights are named), and the field read.
    pub fn identity(&self, id: crate::activations::cache::IdentityBuilder) -> Result<crate::activations::cache::IdentityBuilder> {
        let mut id = id.part("corpus").part(&self.text_field);
        for (f, _) in &self.files {
            id = id.file(f)?;
        }
        Ok(id)
    }

    pub fn label(&self) -> String {
        self.path.display().to_string()
    }

    /// Calls `each` with every document in order until it returns false; returns what
    /// was set aside.
    pub fn documents(&self, mut each: impl FnMut(Document) -> Result<bool>) -> Result<Skipped> {
        let mut skipped = Skipped::default();
        let folder = self.files.len() > 1 || self.path.is_dir();
        for (path, format) in &self.files {
            crate::runtime::interrupt::check()?;
            let go_on = match format {
                CorpusFormat::Text => match read_text(path)? {
                    Some(text) => each(Document { source: path.display().to_string(), text })?,
                    None if folder => {
                        skipped.binary += 1;
                        true
                    }
                    None => bail!("--corpus {}: not a text file (NUL bytes, or not UTF-8); give text, a folder, or JSON Lines", path.display()),
                },
                CorpusFormat::JsonLines => json_lines(path, &self.text_field, &mut skipped, &mut each)?,
                CorpusFormat::Parquet => parquet_rows(path, &self.text_field, &mut skipped, &mut each)?,
            };
            if !go_on {
                break;
            }
        }
        Ok(skipped)
    }
}

/// The file's bytes, gunzipped when they start with gzip's magic.
fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    crate::runtime::fsio::open_maybe_gzip(path).map_err(|e| eyre!("cannot read corpus file {}", crate::runtime::fsio::describe(path, &e)))
}

/// A text file's content, or None when it is binary.
fn read_text(path: &Path) -> Result<Option<String>> {
    let mut bytes = Vec::new();
    open(path)?.read_to_end(&mut bytes).wrap_err_with(|| format!("cannot read corpus file {}", path.display()))?;
    if bytes.contains(&0) {
        return Ok(None);
    }
    Ok(String::from_utf8(bytes).ok())
}

fn json_lines(path: &Path, field: &str, skipped: &mut Skipped, each: &mut impl FnMut(Document) -> Result<bool>) -> Result<bool> {
    let reader = open(path)?;
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        let line = line.wrap_err_with(|| format!("{} line {n}: cannot read (truncated gzip, or not UTF-8?)", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        if n % 1024 == 0 {
            crate::runtime::interrupt::check()?;
        }
        let row: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| eyre!("{} line {n}: not a JSON object ({e}); fix or remove the line", path.display()))?;
        match row.get(field).and_then(serde_json::Value::as_str) {
            Some(text) => {
                if !each(Document { source: format!("{}:{n}", path.display()), text: text.to_string() })? {
                    return Ok(false);
                }
            }
            None => {
                skipped.rows_without_text += 1;
                skipped.first_row_without_text.get_or_insert_with(|| format!("{}:{n}", path.display()));
            }
        }
    }
    Ok(true)
}

/// Rows of a Parquet file (any compression the `parquet` crate reads: snappy, zstd, or
/// none), the text from the string column `field`; rows without it counted.
fn parquet_rows(path: &Path, field: &str, skipped: &mut Skipped, each: &mut impl FnMut(Document) -> Result<bool>) -> Result<bool> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    let file = std::fs::File::open(path).map_err(|e| eyre!("cannot read corpus file {}", crate::runtime::fsio::describe(path, &e)))?;
    let reader = SerializedFileReader::new(file).map_err(|e| eyre!("{}: not a readable Parquet file ({e})", path.display()))?;
    let columns: Vec<String> = reader.metadata().file_metadata().schema_descr().columns().iter().map(|c| c.name().to_string()).collect();
    if !columns.iter().any(|c| c == field) {
        bail!("{}: no column {field:?} (columns: {}); pass --text-field", path.display(), columns.join(", "));
    }
    for (i, row) in reader.into_iter().enumerate() {
        let n = i + 1;
        if n % 1024 == 0 {
            crate::runtime::interrupt::check()?;
        }
        let row = row.map_err(|e| eyre!("{} row {n}: cannot read ({e})", path.display()))?;
        let text = row.get_column_iter().find(|(name, _)| name.as_str() == field).and_then(|(_, v)| match v {
            Field::Str(s) => Some(s.clone()),
            _ => None,
        });
        match text {
            Some(text) => {
                if !each(Document { source: format!("{}:{n}", path.display()), text })? {
                    return Ok(false);
                }
            }
            None => {
                skipped.rows_without_text += 1;
                skipped.first_row_without_text.get_or_insert_with(|| format!("{}:{n}", path.display()));
            }
        }
    }
    Ok(true)
}
