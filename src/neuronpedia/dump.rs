//! Neuronpedia's dataset dumps, read offline (`--neuronpedia PATH`): what Neuronpedia has
//! computed for the real SAEs (firing rate, max, the activation histogram, the logit
//! lists, and each feature's top activations with every token's value), beside saescope's
//! own numbers, without indexing anything.
//!
//! The layout is the public exports' (`v1/{modelId}/{sourceId}/features|activations/
//! batch-N.jsonl.gz`, rows as Neuronpedia's export-data.py writes them; a test dump in it
//! comes from scripts/reference_neuronpedia_dump.py). PATH is a folder holding that layout
//! at any depth, one source's folder, or single files. `features` rows are read whole at
//! the start (a few hundred bytes a feature once their `vector` is skipped); `activations`
//! are large (every top context of every feature), so only each file's first row is read
//! then, and a card streams the files of its SAE's source until it finds its feature's
//! rows (a feature's rows share one file in both Neuronpedia's and SAEDashboard's dumps).
//! Rows of sources no loaded SAE has are counted and set aside; a malformed row is named
//! by file and line, and set aside, not trusted.

use crate::dashboard::ContextWindow;
use crate::sae::key::SaeKey;
use crate::sae::neuronpedia_id::Ids;
use color_eyre::eyre::{bail, eyre, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// One feature's numbers from a `features` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureStats {
    pub max_act_approx: f64,
    pub frac_nonzero: f64,
    /// The activation histogram as Neuronpedia draws it: bin centres and heights.
    pub hist_values: Vec<f64>,
    pub hist_heights: Vec<f64>,
    /// The decoder's top and bottom logits (token, value).
    pub positive_logits: Vec<(String, f64)>,
    pub negative_logits: Vec<(String, f64)>,
    /// The features of the same SAE whose decoder rows are nearest by cosine (feature,
    /// similarity), the feature itself first.
    pub nearest: Vec<(u32, f64)>,
}

/// Everything a dump says of one feature: the card's Neuronpedia section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureDump {
    /// `gpt2-small/6-res-jb`.
    pub source: String,
    /// The dump's folder or files, as given.
    pub dump: String,
    /// What the rows name as their data (`dataSource`), each once.
    pub data_sources: Vec<String>,
    pub stats: Option<FeatureStats>,
    /// Top activations, strongest first (rows without bin fields).
    pub top: Vec<Activation>,
    /// Interval samples (rows with `binMin`/`binMax`), strongest range first.
    pub intervals: Vec<Activation>,
    /// What reading its activations met and set aside: rows of other sources, and
    /// malformed rows by file and line.
    pub set_aside: DumpSummary,
}

/// One `activations` row: a context with every token's value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activation {
    pub context: ContextWindow,
    /// `dataIndex`: where in its data source the context is (a window number for
    /// saescope's own exports), when the row says.
    pub data_index: Option<String>,
    pub bin: Option<(f64, f64)>,
}

/// One SAE at a glance by Neuronpedia's numbers: the SAE overview's Neuronpedia line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DumpOverview {
    /// Whose numbers: `Neuronpedia`, or `Gemma Scope 2's examples` (FeatureDump::origin).
    pub origin: &'static str,
    pub source: String,
    /// Features with a row in the dump.
    pub features: usize,
    /// Of those, the ones that never fire (`frac_nonzero` 0).
    pub dead: usize,
    /// Features per density bin (crate::dashboard::density_bin of `frac_nonzero`).
    pub density_counts: Vec<u32>,
}

/// What loading a dump found, for stderr and the status line.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DumpSummary {
    pub files: usize,
    pub feature_rows: usize,
    /// Rows of sources that no loaded SAE has, and (a few of) those sources.
    pub other_source_rows: usize,
    pub other_sources: Vec<String>,
    /// `file: line N: why`, for every row set aside as malformed.
    pub malformed: Vec<String>,
}

impl DumpSummary {
    /// Counts a row of `source`, which no loaded SAE has.
    fn set_aside(&mut self, source: String) {
        self.other_source_rows += 1;
        if self.other_sources.len() < 3 && !self.other_sources.contains(&source) {
            self.other_sources.push(source);
        }
    }

    pub fn line(&self) -> String {
        let mut s = format!("neuronpedia: {} features from {} file{}", self.feature_rows, self.files, if self.files == 1 { "" } else { "s" });
        if self.other_source_rows > 0 {
            let n = self.other_source_rows;
            s.push_str(&format!("; {n} row{} of other sources ({}) set aside", if n == 1 { "" } else { "s" }, self.other_sources.join(", ")));
        }
        if let Some(first) = self.malformed.first() {
            s.push_str(&format!("; {} malformed row{} set aside (first: {first})", self.malformed.len(), if self.malformed.len() == 1 { "" } else { "s" }));
        }
        s
    }
}

/// A loaded dump: the features rows of the loaded SAEs' sources, and where their
/// activations are.
#[derive(Debug, Clone, Default)]
pub struct Dump {
    pub label: String,
    by_sae: BTreeMap<SaeKey, DumpSource>,
    pub summary: DumpSummary,
    /// Gemma Scope 2's examples files of loaded SAEs (scope_examples.rs), with the source
    /// each names: what a card shows where the dump has nothing of its SAE.
    examples: BTreeMap<SaeKey, (String, std::sync::Arc<super::scope_examples::ScopeExamples>)>,
}

#[derive(Debug, Clone, Default)]
struct DumpSource {
    id: String,
    features: BTreeMap<u32, FeatureStats>,
    /// Activation files holding rows of this source, with the feature of their first row.
    activations: Vec<(u32, PathBuf)>,
}

#[derive(Deserialize)]
struct DumpFeatureRow {
    #[serde(rename = "modelId")]
    model_id: Option<String>,
    layer: Option<Value>,
    index: Option<Value>,
    #[serde(rename = "maxActApprox")]
    max_act_approx: Option<f64>,
    frac_nonzero: Option<f64>,
    #[serde(default)]
    freq_hist_data_bar_heights: Vec<f64>,
    #[serde(default)]
    freq_hist_data_bar_values: Vec<f64>,
    #[serde(default)]
    pos_str: Vec<String>,
    #[serde(default)]
    pos_values: Vec<f64>,
    #[serde(default)]
    neg_str: Vec<String>,
    #[serde(default)]
    neg_values: Vec<f64>,
    #[serde(default, rename = "topkCosSimIndices")]
    topk_cos_sim_indices: Vec<i64>,
    #[serde(default, rename = "topkCosSimValues")]
    topk_cos_sim_values: Vec<f64>,
}

#[derive(Deserialize)]
struct ActivationRow {
    tokens: Vec<String>,
    values: Vec<f64>,
    #[serde(rename = "maxValue")]
    max_value: f64,
    #[serde(rename = "maxValueTokenIndex")]
    max_index: Option<usize>,
    #[serde(rename = "dataSource")]
    data_source: Option<String>,
    #[serde(rename = "dataIndex")]
    data_index: Option<Value>,
    #[serde(rename = "binMin")]
    bin_min: Option<f64>,
    #[serde(rename = "binMax")]
    bin_max: Option<f64>,
}

/// The row's identity: model id, source id and feature, as Neuronpedia keys a feature.
#[derive(Deserialize)]
struct RowKey {
    #[serde(rename = "modelId")]
    model_id: Option<String>,
    layer: Option<Value>,
    index: Option<Value>,
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `model/source` and the feature of a row, or why not.
fn identity(model: &Option<String>, layer: &Option<Value>, index: &Option<Value>) -> std::result::Result<(String, u32), String> {
    let model = model.as_deref().ok_or("no \"modelId\"")?;
    let source = layer.as_ref().and_then(text_of).ok_or("no \"layer\" (the source id, e.g. 6-res-jb)")?;
    let feature = index.as_ref().and_then(text_of).and_then(|s| s.parse().ok()).ok_or("no feature number in \"index\"")?;
    Ok((format!("{model}/{source}"), feature))
}

/// Which of a file's kinds it is: by its folder (`features/`, `activations/`), else by its
/// first row's fields.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Features,
    Activations,
    Other,
}

fn kind_of(path: &Path, first: &[u8]) -> Kind {
    match path.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()) {
        Some("features") => return Kind::Features,
        Some("activations") => return Kind::Activations,
        Some("explanations") => return Kind::Other,
        _ => {}
    }
    let v: Option<serde_json::Map<String, Value>> = serde_json::from_slice(first).ok();
    match v {
        Some(m) if m.contains_key("tokens") && m.contains_key("values") => Kind::Activations,
        Some(m) if m.contains_key("frac_nonzero") || m.contains_key("maxActApprox") => Kind::Features,
        _ => Kind::Other,
    }
}

/// `batch-2` before `batch-10`.
fn natural(a: &Path, b: &Path) -> std::cmp::Ordering {
    crate::neuronpedia::labels::natural_key(&a.to_string_lossy()).cmp(&crate::neuronpedia::labels::natural_key(&b.to_string_lossy()))
}

/// The `.jsonl` / `.jsonl.gz` files PATH stands for, in natural order.
fn files(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).map_err(|e| eyre!("--neuronpedia {}: {}", path.display(), crate::runtime::fsio::describe(path, &e)))?;
    if meta.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let jsonl = |p: &PathBuf| p.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".jsonl.gz") || n.to_string_lossy().ends_with(".jsonl"));
    let mut out: Vec<PathBuf> = crate::runtime::fsio::files_under(path).map_err(|e| eyre!("--neuronpedia {e}"))?.into_iter().filter(jsonl).collect();
    out.sort_by(|a, b| natural(a, b));
    if out.is_empty() {
        bail!("--neuronpedia {}: no .jsonl.gz files; give a folder of Neuronpedia's exports (v1/MODEL/SOURCE/features/...)", path.display());
    }
    Ok(out)
}

/// Calls `each` with every nonblank line of `path` and its number, until it returns false.
fn lines(path: &Path, mut each: impl FnMut(usize, &[u8]) -> bool) -> Result<()> {
    let mut r =
        crate::runtime::fsio::open_maybe_gzip(path).map_err(|e| eyre!("--neuronpedia {}: {}", path.display(), crate::runtime::fsio::describe(path, &e)))?;
    let mut line = Vec::new();
    let mut n = 0;
    loop {
        line.clear();
        let got = r.read_until(b'\n', &mut line).map_err(|e| eyre!("--neuronpedia {}: {e} (a damaged gzip file?)", path.display()))?;
        if got == 0 {
            return Ok(());
        }
        n += 1;
        if !line.iter().all(u8::is_ascii_whitespace) && !each(n, &line) {
            return Ok(());
        }
    }
}

impl Dump {
    /// Adds `examples` as SAE `sae`'s dashboard, named `source`.
    pub fn add_examples(&mut self, sae: SaeKey, source: String, examples: super::scope_examples::ScopeExamples) {
        if self.label.is_empty() {
            self.label = super::scope_examples::FILE.to_string();
        }
        self.examples.insert(sae, (source, std::sync::Arc::new(examples)));
    }

    /// What was read, for stderr and the status line: the dump's rows, and the SAEs with an
    /// examples file.
    pub fn line(&self) -> String {
        let n = self.examples.len();
        let examples = format!("{n} SAE{} with Gemma Scope 2's {}", if n == 1 { "" } else { "s" }, super::scope_examples::FILE);
        match (self.summary.files, n) {
            (0, 0) | (_, 0) => self.summary.line(),
            (0, _) => format!("dashboards: {examples}"),
            _ => format!("{}; {examples}", self.summary.line()),
        }
    }

    /// Reads the dump at `path` for the SAEs of `saes` whose Neuronpedia id `ids` knows.
    pub fn load(path: &Path, saes: &[SaeKey], ids: &Ids) -> Result<Self> {
        let wanted: BTreeMap<String, SaeKey> = saes.iter().filter_map(|&k| Some((ids.sae(k).map(|i| format!("{}/{}", i.model, i.source))?, k))).collect();
        let mut dump = Dump { label: path.display().to_string(), ..Default::default() };
        for (id, &k) in &wanted {
            dump.by_sae.insert(k, DumpSource { id: id.clone(), ..Default::default() });
        }
        for file in files(path)? {
            let short = file.strip_prefix(path).unwrap_or(&file).display().to_string();
            let short = if short.is_empty() { file.display().to_string() } else { short };
            let mut kind = None;
            let mut bad = Vec::new();
            let mut counted = false;
            lines(&file, |n, line| {
                let k = *kind.get_or_insert_with(|| kind_of(&file, line));
                if !counted && k != Kind::Other {
                    dump.summary.files += 1;
                    counted = true;
                }
                match k {
                    Kind::Other => false,
                    Kind::Features => {
                        dump.feature_row(&wanted, &short, n, line, &mut bad);
                        true
                    }
                    // The first well-formed row places the file; a card reads the rest.
                    Kind::Activations => !dump.activation_file(&wanted, &file, &short, n, line, &mut bad),
                }
            })?;
            dump.summary.malformed.extend(bad);
        }
        for s in dump.by_sae.values_mut() {
            s.activations.sort_by_key(|(first, _)| *first);
        }
        Ok(dump)
    }

    fn feature_row(&mut self, wanted: &BTreeMap<String, SaeKey>, file: &str, n: usize, line: &[u8], bad: &mut Vec<String>) {
        let row: DumpFeatureRow = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => return bad.push(format!("{file}: line {n}: not a features row ({e})")),
        };
        let (source, feature) = match identity(&row.model_id, &row.layer, &row.index) {
            Ok(x) => x,
            Err(why) => return bad.push(format!("{file}: line {n}: {why}")),
        };
        let Some(&key) = wanted.get(&source) else { return self.summary.set_aside(source) };
        if feature as usize >= key.width && key.width > 0 {
            return bad.push(format!("{file}: line {n}: feature {feature} is past SAE {key}'s {} features", key.width));
        }
        let pairs = |s: Vec<String>, v: Vec<f64>| s.into_iter().zip(v).collect();
        let stats = FeatureStats {
            max_act_approx: row.max_act_approx.unwrap_or(0.0),
            frac_nonzero: row.frac_nonzero.unwrap_or(0.0),
            hist_values: row.freq_hist_data_bar_values,
            hist_heights: row.freq_hist_data_bar_heights,
            positive_logits: pairs(row.pos_str, row.pos_values),
            negative_logits: pairs(row.neg_str, row.neg_values),
            nearest: row.topk_cos_sim_indices.into_iter().zip(row.topk_cos_sim_values).filter_map(|(f, v)| u32::try_from(f).ok().map(|f| (f, v))).collect(),
        };
        self.summary.feature_rows += 1;
        if let Some(s) = self.by_sae.get_mut(&key) {
            s.features.insert(feature, stats);
        }
    }

    /// Places an activations file by its first well-formed row; true once placed (or set
    /// aside as another source's).
    fn activation_file(&mut self, wanted: &BTreeMap<String, SaeKey>, path: &Path, file: &str, n: usize, line: &[u8], bad: &mut Vec<String>) -> bool {
        let key: RowKey = match serde_json::from_slice(line) {
            Ok(k) => k,
            Err(e) => {
                bad.push(format!("{file}: line {n}: not an activations row ({e})"));
                return false;
            }
        };
        let (source, feature) = match identity(&key.model_id, &key.layer, &key.index) {
            Ok(x) => x,
            Err(why) => {
                bad.push(format!("{file}: line {n}: {why}"));
                return false;
            }
        };
        match wanted.get(&source).and_then(|k| self.by_sae.get_mut(k)) {
            Some(s) => s.activations.push((feature, path.to_owned())),
            None => self.summary.set_aside(source),
        }
        true
    }

    /// Neuronpedia's numbers for SAE `sae` at a glance, when the dump has its features rows.
    pub fn overview(&self, sae: SaeKey) -> Option<DumpOverview> {
        let Some(s) = self.by_sae.get(&sae).filter(|s| !s.features.is_empty()) else {
            return self.examples.get(&sae).map(|(source, ex)| ex.overview(source));
        };
        let mut counts = vec![0u32; crate::dashboard::DENSITY_BINS];
        for st in s.features.values().filter(|st| st.frac_nonzero > 0.0) {
            counts[crate::dashboard::density_bin(st.frac_nonzero)] += 1;
        }
        let dead = s.features.values().filter(|st| st.frac_nonzero <= 0.0).count();
        Some(DumpOverview { origin: "Neuronpedia", source: s.id.clone(), features: s.features.len(), dead, density_counts: counts })
    }

    /// Every loaded SAE's `overview` that the dump has.
    pub fn overviews(&self) -> BTreeMap<SaeKey, DumpOverview> {
        self.by_sae.keys().chain(self.examples.keys()).filter_map(|&k| Some((k, self.overview(k)?))).collect()
    }

    /// Whether the dump holds anything of `sae`.
    pub fn has(&self, sae: SaeKey) -> bool {
        self.by_sae.get(&sae).is_some_and(|s| !s.features.is_empty() || !s.activations.is_empty()) || self.examples.contains_key(&sae)
    }

    /// Everything the dump says of one feature, reading its activations now: the files of
    /// its source nearest its number first, until one holds its rows. Rows of other
    /// sources and malformed rows met on the way are counted in `set_aside`.
    pub fn feature(&self, sae: SaeKey, feature: u32) -> Result<Option<FeatureDump>> {
        let Some(s) = self.by_sae.get(&sae).filter(|s| !s.features.is_empty() || !s.activations.is_empty()) else {
            return match self.examples.get(&sae) {
                Some((source, ex)) => ex.feature(feature, source),
                None => Ok(None),
            };
        };
        let mut files: Vec<&(u32, PathBuf)> = s.activations.iter().collect();
        files.sort_by_key(|(first, _)| if *first <= feature { (0, feature - first) } else { (1, first - feature) });
        let mut rows = Vec::new();
        let mut data_sources: Vec<String> = Vec::new();
        let mut aside = DumpSummary::default();
        for (_, path) in files {
            let name = path.strip_prefix(&self.label).unwrap_or(path).display().to_string();
            aside.files += 1;
            lines(path, |n, line| {
                // Cheap first: the identity alone, then the whole row of this feature.
                let k = match serde_json::from_slice::<RowKey>(line) {
                    Ok(k) => k,
                    Err(e) => {
                        aside.malformed.push(format!("{name}: line {n}: not an activations row ({e})"));
                        return true;
                    }
                };
                let (source, f) = match identity(&k.model_id, &k.layer, &k.index) {
                    Ok(x) => x,
                    Err(why) => {
                        aside.malformed.push(format!("{name}: line {n}: {why}"));
                        return true;
                    }
                };
                if source != s.id {
                    aside.set_aside(source);
                    return true;
                }
                if f != feature {
                    return true;
                }
                match serde_json::from_slice::<ActivationRow>(line) {
                    Ok(row) => {
                        if let Some(d) = row.data_source.as_ref().filter(|d| !data_sources.contains(d)) {
                            data_sources.push(d.clone());
                        }
                        rows.push(row);
                    }
                    Err(e) => aside.malformed.push(format!("{name}: line {n}: not an activations row ({e})")),
                }
                true
            })?;
            if !rows.is_empty() {
                break;
            }
        }
        let stats = s.features.get(&feature).cloned();
        if stats.is_none() && rows.is_empty() {
            return Ok(None);
        }
        let (mut top, mut intervals): (Vec<Activation>, Vec<Activation>) = rows.into_iter().map(activation).partition(|a| a.bin.is_none());
        let strongest = |a: &Activation, b: &Activation| b.context.max_value.total_cmp(&a.context.max_value);
        top.sort_by(strongest);
        intervals.sort_by(|a, b| b.bin.map(|x| x.0).unwrap_or(0.0).total_cmp(&a.bin.map(|x| x.0).unwrap_or(0.0)).then(strongest(a, b)));
        Ok(Some(FeatureDump { source: s.id.clone(), dump: self.label.clone(), data_sources, stats, top, intervals, set_aside: aside }))
    }
}

/// A row as the card's context strips show it.
fn activation(r: ActivationRow) -> Activation {
    let values: Vec<f32> = r.values.iter().map(|&v| v as f32).collect();
    let max_index = r
        .max_index
        .filter(|&i| i < r.tokens.len())
        .unwrap_or_else(|| values.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best }).0);
    // SAEDashboard marks its top rows with -1 bins; only a real range is an interval.
    let bin = match (r.bin_min, r.bin_max) {
        (Some(lo), Some(hi)) if lo >= 0.0 && hi > lo => Some((lo, hi)),
        _ => None,
    };
    let data_index = r.data_index.as_ref().and_then(text_of);
    Activation {
        context: ContextWindow {
            window: data_index.as_deref().and_then(|d| d.parse().ok()).unwrap_or(u32::MAX),
            source: r.data_source.unwrap_or_default(),
            offset: 0,
            token_ids: Vec::new(),
            tokens: r.tokens,
            max_index,
            max_value: r.max_value as f32,
            values: Some(values),
        },
        data_index,
        bin,
    }
}

impl FeatureDump {
    /// Where the section's numbers come from, for its heading: a Neuronpedia dump, or a
    /// Gemma Scope 2 folder's own examples (scope_examples.rs).
    pub fn origin(&self) -> &'static str {
        if self.dump.ends_with(super::scope_examples::FILE) {
            "Gemma Scope 2's examples"
        } else {
            "Neuronpedia"
        }
    }

    /// The card's Neuronpedia section as text.
    pub fn text(&self) -> String {
        use crate::runtime::printable::printable;
        let from = if self.data_sources.is_empty() { String::new() } else { format!(", data: {}", self.data_sources.join(", ")) };
        let mut s = format!("\nfrom {} ({}, dump {}{from}):\n", self.origin(), self.source, printable(&self.dump));
        let a = &self.set_aside;
        if a.other_source_rows > 0 || !a.malformed.is_empty() {
            s.push_str(&format!("  set aside while reading its activations: {} row(s) of other sources", a.other_source_rows));
            for m in &a.malformed {
                s.push_str(&format!("; malformed: {}", printable(m)));
            }
            s.push('\n');
        }
        match &self.stats {
            Some(st) => {
                s.push_str(&format!("  frac_nonzero {:.3e}, max (approx.) {:.3}\n", st.frac_nonzero, st.max_act_approx));
                if !st.hist_heights.is_empty() {
                    let counts: Vec<u32> = st.hist_heights.iter().map(|&h| h.max(0.0) as u32).collect();
                    let (lo, hi) = (st.hist_values.first().copied().unwrap_or(0.0), st.hist_values.last().copied().unwrap_or(0.0));
                    s.push_str(&format!("  activations when firing: {} {lo:.3} .. {hi:.3} (bin centres)\n", crate::dashboard::text::sparkline(&counts)));
                }
                let logits = |l: &[(String, f64)]| l.iter().take(5).map(|(t, v)| format!("{:?} {v:+.2}", t)).collect::<Vec<_>>().join(", ");
                if !st.positive_logits.is_empty() {
                    s.push_str(&format!(
                        "  promotes: {}\n  suppresses: {}\n",
                        printable(&logits(&st.positive_logits)),
                        printable(&logits(&st.negative_logits))
                    ));
                }
                if st.nearest.len() > 1 {
                    let near: Vec<String> = st.nearest.iter().skip(1).take(5).map(|(f, v)| format!("#{f} {v:.2}")).collect();
                    s.push_str(&format!("  nearest features by decoder cosine: {}\n", near.join(", ")));
                }
            }
            None => s.push_str("  no features row for it\n"),
        }
        s.push_str("  top activations (max token in [[ ]]):\n");
        if self.top.is_empty() {
            s.push_str("    none in the dump\n");
        }
        for a in &self.top {
            s.push_str(&format!("  {:>8.3}  {}\n", a.context.max_value, crate::dashboard::text::strip(&a.context)));
        }
        if !self.intervals.is_empty() {
            s.push_str("  interval samples:\n");
            for a in &self.intervals {
                let (lo, hi) = a.bin.unwrap_or_default();
                s.push_str(&format!("  {:>8.3}  [{lo:.2}, {hi:.2}]  {}\n", a.context.max_value, crate::dashboard::text::strip(&a.context)));
            }
        }
        s
    }
}
