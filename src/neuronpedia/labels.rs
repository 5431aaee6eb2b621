//! Feature explanations exported from Neuronpedia, imported with `--labels PATH`.
//!
//! PATH is a file or a folder. Files: JSON Lines (one object per line, Neuronpedia's
//! `explanations/batch-N.jsonl.gz` exports), a JSON array of objects, or an object holding
//! such an array under `explanations`; any of them gzipped (`.gz`, found by its magic bytes).
//! A folder: every `.jsonl`, `.json` and `.gz` file in it (or in its `explanations/`), in
//! natural name order. Rows are streamed, and only the fields below are kept (the
//! `embedding` arrays are skipped as they are read). Per object:
//! - `layer`: `"8-res-jb"` (Neuronpedia's source id), `"8"` or `8`;
//! - `index` (or `feature`): the feature id, string or number;
//! - `description` (or `explanation`, `label`): the text;
//! - `modelId` (optional): Neuronpedia's model id, e.g. `gpt2-small`.
//!
//! A row belongs to a loaded SAE at its layer (the block, or the residual numbering where
//! `12-res-jb` is the final resid_post) whose Neuronpedia id (neuronpedia.rs) has the row's
//! model and source. Where the id is unknown (a local SAE folder whose cfg.json names
//! none) and one SAE of unknown id sits at that layer, its rows are attached only if they
//! all come from one source, or from the one `--labels-source` names: a folder holding
//! `6-res-jb` and `6-att-kk` would otherwise put an attention SAE's explanations on
//! residual features, and a wrong label is worse than none. Rows of layers not loaded, of
//! other models or sources, and of an undecided SAE are counted and reported, never
//! dropped silently. A malformed row fails the import naming its file and
//! line. Several explanations of one feature are joined.

use crate::sae::key::SaeKey;
use crate::sae::neuronpedia_id::Ids;
use color_eyre::eyre::{bail, eyre, Result};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels {
    map: BTreeMap<(SaeKey, u32), String>,
}

/// What an import is checked against: the loaded SAEs (a width of 0 where it is not known
/// yet), their Neuronpedia ids, and the source to take where an id is unknown.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub saes: &'a [SaeKey],
    pub ids: &'a Ids,
    /// `--labels-source`: `res-jb` (or `8-res-jb`) takes a layer's rows of that source.
    pub source: Option<&'a str>,
}

impl<'a> Scope<'a> {
    pub fn new(saes: &'a [SaeKey], ids: &'a Ids) -> Self {
        Self { saes, ids, source: None }
    }

    /// Whether `--labels-source` names a row's source (`8-res-jb`) for `layer`.
    fn chosen(&self, layer: usize, source: Option<&str>) -> bool {
        match (self.source, source) {
            (Some(want), Some(have)) => have == want || have.strip_prefix(&format!("{layer}-")) == Some(want),
            _ => false,
        }
    }
}

/// What an import did, for the status line and stderr.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportSummary {
    pub files: usize,
    pub rows: usize,
    pub labelled: usize,
    /// Rows whose layer is not loaded, and those layers.
    pub other_layers: usize,
    pub layers_skipped: Vec<usize>,
    /// Rows of a loaded layer number but another model or source, and (a few of) those ids.
    pub other_sources: usize,
    pub sources_skipped: Vec<String>,
    /// SAEs whose Neuronpedia id is unknown and whose rows come from several sources (or
    /// layers where several such SAEs sit): none of them attached. The row's layer, its
    /// rows, and the sources found.
    pub undecided: Vec<(usize, usize, Vec<String>)>,
}

impl ImportSummary {
    pub fn line(&self) -> String {
        let set_aside = self.other_layers + self.other_sources + self.undecided.iter().map(|u| u.1).sum::<usize>();
        let n = self.rows - set_aside;
        let mut s = format!("{n} label{} for {} feature{}", plural(n), self.labelled, plural(self.labelled));
        if self.files > 1 {
            s.push_str(&format!(" from {} files", self.files));
        }
        if self.other_layers > 0 {
            let layers: Vec<String> = self.layers_skipped.iter().map(|l| l.to_string()).collect();
            s.push_str(&format!("; {} row{} for layers not loaded ({}) set aside", self.other_layers, plural(self.other_layers), layers.join(", ")));
        }
        if self.other_sources > 0 {
            s.push_str(&format!(
                "; {} row{} of other models or sources ({}) set aside",
                self.other_sources,
                plural(self.other_sources),
                self.sources_skipped.join(", ")
            ));
        }
        for (layer, rows, sources) in &self.undecided {
            let example = sources.iter().find_map(|x| x.split_once(&format!("/{layer}-")).map(|(_, set)| set)).unwrap_or("res-jb");
            s.push_str(&format!(
                "; layer {layer}: {rows} row{} of {} sources ({}) and no Neuronpedia id known for its SAE, so none attached: name one with --labels-source {example}",
                plural(*rows),
                sources.len(),
                sources.join(", ")
            ));
        }
        s
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// One row as exported; unknown fields (the embedding arrays) are skipped unread.
#[derive(Deserialize)]
struct RawRow {
    #[serde(rename = "modelId")]
    model_id: Option<Value>,
    layer: Option<Value>,
    #[serde(alias = "feature")]
    index: Option<Value>,
    #[serde(alias = "explanation", alias = "label")]
    description: Option<Value>,
    /// `{"explanations": [...]}` on one line is a whole export, not a row.
    explanations: Option<Vec<RawRow>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LabelDocument {
    Rows(Vec<RawRow>),
    Wrapped { explanations: Vec<RawRow> },
    One(RawRow),
}

/// A parsed row: layer number, the source in its layer string ("8-res-jb"), model, feature, text.
struct Row {
    layer: usize,
    source: Option<String>,
    model: Option<String>,
    feature: u32,
    text: String,
}

impl Row {
    /// `model/source` as Neuronpedia names them, `?` for what the row does not say.
    fn origin(&self) -> String {
        format!("{}/{}", self.model.as_deref().unwrap_or("?"), self.source.as_deref().unwrap_or("?"))
    }
}

fn parse_layer(v: &Value) -> Option<(usize, Option<String>)> {
    match v {
        Value::Number(n) => n.as_u64().map(|n| (n as usize, None)),
        Value::String(s) => {
            let s = s.trim();
            let n = s.split('-').next()?.trim().parse().ok()?;
            Some((n, s.contains('-').then(|| s.to_string())))
        }
        _ => None,
    }
}

fn parse_index(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn present(v: &Option<Value>) -> Option<&Value> {
    v.as_ref().filter(|v| !v.is_null())
}

impl RawRow {
    fn check(self) -> std::result::Result<Row, String> {
        let layer = present(&self.layer).ok_or("missing \"layer\"")?;
        let (layer, source) = parse_layer(layer).ok_or_else(|| format!("\"layer\" {layer} is not like \"8-res-jb\" or 8"))?;
        let index = present(&self.index).ok_or("missing \"index\"")?;
        let feature = parse_index(index).ok_or_else(|| format!("\"index\" {index} is not a feature number"))?;
        let text = present(&self.description).ok_or("missing \"description\"")?;
        let text = text.as_str().map(str::trim).filter(|t| !t.is_empty()).ok_or("\"description\" is empty or not a string")?;
        let model = present(&self.model_id).and_then(Value::as_str).map(str::to_string);
        Ok(Row { layer, source, model, feature, text: text.to_string() })
    }
}

/// Rows waiting for a decision, by source (`model/source`).
type BySource = BTreeMap<String, Vec<RowAt<Row>>>;

/// Adds rows to labels and summary, and collects what is wrong with them.
struct Importer<'a> {
    scope: Scope<'a>,
    labels: Labels,
    summary: ImportSummary,
    bad: Vec<String>,
    /// Rows for SAEs whose Neuronpedia id is unknown, by SAE (None: several at the row's
    /// layer) and source (model/source), until every row is read and it is known whether
    /// an SAE has one source.
    pending: BTreeMap<(usize, Option<SaeKey>), BySource>,
}

impl Importer<'_> {
    fn new<'a>(scope: &Scope<'a>) -> Importer<'a> {
        Importer { scope: *scope, labels: Labels::default(), summary: ImportSummary::default(), bad: Vec::new(), pending: BTreeMap::new() }
    }

    fn add(&mut self, at: String, row: RawRow) {
        self.summary.rows += 1;
        let row = match row.check() {
            Ok(r) => r,
            Err(why) => return self.bad.push(format!("{at}: {why}")),
        };
        let here: Vec<SaeKey> = self.scope.saes.iter().copied().filter(|k| k.depth_layer() == row.layer || k.hook.layer == row.layer).collect();
        if here.is_empty() {
            self.summary.other_layers += 1;
            if !self.summary.layers_skipped.contains(&row.layer) {
                self.summary.layers_skipped.push(row.layer);
            }
            return;
        }
        let matches =
            |id: &crate::sae::neuronpedia_id::SaeId| row.model.as_deref().is_none_or(|m| m == id.model) && row.source.as_deref().is_none_or(|s| s == id.source);
        let known: Vec<SaeKey> = here.iter().copied().filter(|k| self.scope.ids.sae(*k).is_some()).collect();
        // A row naming no source matches an SAE of known id only where it is the layer's one SAE.
        if let Some(k) = known.iter().copied().find(|k| self.scope.ids.sae(*k).is_some_and(matches) && (row.source.is_some() || here.len() == 1)) {
            return self.attach(at, k, row);
        }
        let unknown: Vec<SaeKey> = here.iter().copied().filter(|k| !known.contains(k)).collect();
        if unknown.is_empty() {
            return self.set_aside(&row);
        }
        if self.scope.source.is_some() && !self.scope.chosen(row.layer, row.source.as_deref()) {
            return self.set_aside(&row);
        }
        let sae = if let [one] = unknown.as_slice() { Some(*one) } else { None };
        self.pending.entry((row.layer, sae)).or_default().entry(row.origin()).or_default().push((at, row));
    }

    /// A row of another model or source than the layer's SAE.
    fn set_aside(&mut self, row: &Row) {
        self.summary.other_sources += 1;
        let name = row.origin();
        if self.summary.sources_skipped.len() < 3 && !self.summary.sources_skipped.contains(&name) {
            self.summary.sources_skipped.push(name);
        }
    }

    fn attach(&mut self, at: String, sae: SaeKey, row: Row) {
        if sae.width > 0 && row.feature as usize >= sae.width {
            return self.bad.push(format!("{at}: feature {} is past SAE {sae}'s {} features", row.feature, sae.width));
        }
        self.labels
            .map
            .entry((sae, row.feature))
            .and_modify(|t| {
                if !t.split(" | ").any(|x| x == row.text) {
                    t.push_str(" | ");
                    t.push_str(&row.text);
                }
            })
            .or_insert(row.text);
    }
}

/// A row and where it was (for messages).
type RowAt<R = RawRow> = (String, R);

/// One file's rows: a JSON document, or JSON Lines read a line at a time.
fn read_rows(mut r: impl BufRead, origin: &str, name_files: bool) -> Result<Vec<RowAt>> {
    let at = |what: &str, n: usize| if name_files { format!("{origin}: {what} {n}") } else { format!("{what} {n}") };
    let mut out = Vec::new();
    // Bytes, not lines of text: serde checks UTF-8 only inside strings, which keeps the
    // long embedding arrays cheap to read past.
    let blank = |b: &[u8]| b.iter().all(u8::is_ascii_whitespace);
    let mut first = Vec::new();
    // Skip leading blank lines to see which shape this is.
    let mut line_no = 0;
    loop {
        first.clear();
        if r.read_until(b'\n', &mut first).map_err(|e| read_error(origin, e))? == 0 {
            return Ok(out);
        }
        line_no += 1;
        if !blank(&first) {
            break;
        }
    }
    let start = first.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let whole_doc = start == Some(b'[') || (start == Some(b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(&first).is_err());
    if whole_doc {
        let mut rest = first;
        r.read_to_end(&mut rest).map_err(|e| read_error(origin, e))?;
        let doc: LabelDocument = serde_json::from_slice(&rest).map_err(|e| eyre!("{origin}: line {}: not valid JSON ({e})", e.line() + line_no - 1))?;
        let rows = match doc {
            LabelDocument::Rows(rows) | LabelDocument::Wrapped { explanations: rows } => rows,
            LabelDocument::One(mut row) => row.explanations.take().unwrap_or_else(|| vec![row]),
        };
        // A pretty-printed array has no useful line per row: number rows instead.
        out.extend(rows.into_iter().enumerate().map(|(i, row)| (at("row", i + 1), row)));
        return Ok(out);
    }
    let mut line = first;
    loop {
        if !blank(&line) {
            let mut row: RawRow =
                serde_json::from_slice(&line).map_err(|e| eyre!("{origin}: line {line_no}: not valid JSON ({e}); expected one object per line"))?;
            match row.explanations.take() {
                Some(rows) => out.extend(rows.into_iter().enumerate().map(|(i, r)| (at("row", i + 1), r))),
                None => out.push((at("line", line_no), row)),
            }
        }
        line.clear();
        if r.read_until(b'\n', &mut line).map_err(|e| read_error(origin, e))? == 0 {
            return Ok(out);
        }
        line_no += 1;
    }
}

impl Importer<'_> {
    fn add_all(&mut self, rows: Vec<RowAt>) {
        self.summary.files += 1;
        for (at, row) in rows {
            self.add(at, row);
        }
    }

    fn finish(mut self) -> Result<(Labels, ImportSummary)> {
        // A layer of unknown id takes its rows when they all come from one model and source.
        // Rows that name no model or source go with whichever one the others name.
        for ((layer, sae), by_source) in std::mem::take(&mut self.pending) {
            let rows = || by_source.values().flatten().map(|(_, r)| r);
            let models: std::collections::BTreeSet<&str> = rows().filter_map(|r| r.model.as_deref()).collect();
            let sources: std::collections::BTreeSet<&str> = rows().filter_map(|r| r.source.as_deref()).collect();
            if let (Some(sae), true) = (sae, models.len() <= 1 && sources.len() <= 1) {
                by_source.into_values().flatten().for_each(|(at, row)| self.attach(at, sae, row));
            } else {
                let rows = by_source.values().map(Vec::len).sum();
                let sources = by_source.into_keys().collect();
                self.summary.undecided.push((layer, rows, sources));
            }
        }
        if let Some(first) = self.bad.first() {
            let n = self.bad.len();
            bail!(
                "{n} malformed row{} ({first}{}); each needs \"layer\" (e.g. \"8-res-jb\"), \"index\" and \"description\"",
                if n == 1 { "" } else { "s" },
                if n > 1 { format!("; also {}", self.bad[1..n.min(3)].join("; ")) } else { String::new() }
            );
        }
        self.summary.layers_skipped.sort_unstable();
        self.summary.labelled = self.labels.map.len();
        Ok((self.labels, self.summary))
    }
}

fn read_error(origin: &str, e: std::io::Error) -> color_eyre::Report {
    if e.kind() == std::io::ErrorKind::InvalidData {
        eyre!("{origin}: not UTF-8 text or a damaged gzip file ({e}); Neuronpedia exports are UTF-8 JSON, optionally gzipped")
    } else {
        eyre!("cannot read labels file {origin}: {e}")
    }
}

/// One file's rows, gunzipped when it starts with gzip's magic bytes.
fn read_file(file: &Path, name_files: bool) -> Result<Vec<RowAt>> {
    let origin = file.display().to_string();
    let r = crate::runtime::fsio::open_maybe_gzip(file).map_err(|e| eyre!("cannot read labels file {origin}: {e}"))?;
    read_rows(r, &origin, name_files)
}

/// `batch-2` before `batch-10`: digits compare as numbers.
pub(crate) fn natural_key(name: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut digits = String::new();
    for c in name.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            if !digits.is_empty() {
                out.push((std::mem::take(&mut text), digits.parse().unwrap_or(u64::MAX)));
                digits.clear();
            }
            text.push(c);
        }
    }
    out.push((text, digits.parse().unwrap_or(0)));
    out
}

/// The files a `--labels` folder stands for.
fn folder_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = if dir.join("explanations").is_dir() { dir.join("explanations") } else { dir.to_path_buf() };
    let entries = std::fs::read_dir(&dir).map_err(|e| eyre!("cannot read labels folder {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with('.') && [".jsonl", ".json", ".gz"].iter().any(|x| n.ends_with(x))))
        .collect();
    files.sort_by_cached_key(|p| natural_key(&p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()));
    if files.is_empty() {
        bail!("labels folder {} has no .jsonl, .json or .gz files; download Neuronpedia's explanations/batch-N.jsonl.gz exports into it", dir.display());
    }
    Ok(files)
}

impl Labels {
    /// Parses one export held in memory; `origin` names it in errors.
    pub fn parse(src: &str, origin: &str, scope: &Scope) -> Result<(Self, ImportSummary)> {
        let mut imp = Importer::new(scope);
        imp.add_all(read_rows(src.as_bytes(), origin, false)?);
        imp.finish().map_err(|e| eyre!("{origin}: {e}"))
    }

    /// A file or a folder of them, gzipped or not. A folder's files are read on every
    /// core (decompressing dominates) and imported in name order.
    pub fn load(path: &Path, scope: &Scope) -> Result<(Self, ImportSummary)> {
        let meta = std::fs::metadata(path).map_err(|e| eyre!("cannot read labels {}: {}", path.display(), crate::runtime::fsio::describe(path, &e)))?;
        let files = if meta.is_dir() { folder_files(path)? } else { vec![path.to_path_buf()] };
        let name_files = files.len() > 1;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let slots: Vec<std::sync::Mutex<Option<Result<Vec<RowAt>>>>> = files.iter().map(|_| Default::default()).collect();
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(files.len());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    let rows = read_file(file, name_files);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(rows);
                    }
                });
            }
        });
        let mut imp = Importer::new(scope);
        for slot in slots {
            let rows = slot.into_inner().ok().flatten().ok_or_else(|| eyre!("internal: a labels file was not read"))?;
            imp.add_all(rows?);
        }
        if !name_files {
            let origin = path.display().to_string();
            return imp.finish().map_err(|e| eyre!("{origin}: {e}"));
        }
        imp.finish()
    }

    pub fn get(&self, sae: SaeKey, feature: u32) -> Option<&str> {
        self.map.get(&(sae, feature)).map(String::as_str)
    }

    /// The explorer reads labels before the SAEs' files, so before it knows every width:
    /// once it does, each label moves from its planned key (`planned[i]`) to the SAE's
    /// (`found[i]`), and labels past the SAE's width are dropped; returns how many were.
    pub fn settle(&mut self, planned: &[SaeKey], found: &[SaeKey]) -> usize {
        if planned == found {
            return 0;
        }
        let before = self.map.len();
        let map = std::mem::take(&mut self.map);
        for ((k, f), text) in map {
            let Some(i) = planned.iter().position(|p| *p == k) else { continue };
            let Some(&to) = found.get(i) else { continue };
            if (f as usize) < to.width {
                self.map.insert((to, f), text);
            }
        }
        before - self.map.len()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Features whose label contains every word of `query` (any case), by SAE and id;
    /// `#123` or `123` also finds feature 123 in every SAE that has a label for it.
    pub fn search(&self, query: &str) -> Vec<(SaeKey, u32, &str)> {
        let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
        if words.is_empty() {
            return Vec::new();
        }
        let id = query.trim().trim_start_matches('#').parse::<u32>().ok();
        self.map
            .iter()
            .filter(|((_, f), text)| {
                Some(*f) == id || {
                    let lower = text.to_lowercase();
                    words.iter().all(|w| lower.contains(w.as_str()))
                }
            })
            .map(|(&(l, f), t)| (l, f, t.as_str()))
            .collect()
    }
}
