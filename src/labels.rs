//! Feature explanations exported from Neuronpedia, imported with `--labels PATH`.
//!
//! Accepted: a JSON array of objects, an object holding such an array under
//! `explanations`, or JSON Lines (one object per line). Per object:
//! - `layer`: `"8-res-jb"` (Neuronpedia's source id), `"8"` or `8`;
//! - `index` (or `feature`): the feature id, string or number;
//! - `description` (or `explanation`, `label`): the text.
//!
//! Other fields (`modelId`, `typeName`, scores...) are ignored. A malformed row fails the
//! import naming its row and line; rows of layers that are not loaded are counted and
//! reported, never dropped silently. Several explanations of one feature are joined.

use color_eyre::eyre::{bail, eyre, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels {
    map: BTreeMap<(usize, u32), String>,
}

/// What an import did, for the status line and stderr.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    pub rows: usize,
    pub labelled: usize,
    /// Rows whose layer is not loaded, and those layers.
    pub other_layers: usize,
    pub layers_skipped: Vec<usize>,
}

impl ImportSummary {
    pub fn line(&self) -> String {
        let mut s = format!("{} labels for {} features", self.rows - self.other_layers, self.labelled);
        if self.other_layers > 0 {
            let layers: Vec<String> = self.layers_skipped.iter().map(|l| l.to_string()).collect();
            s.push_str(&format!("; {} rows for layers not loaded ({}) set aside", self.other_layers, layers.join(", ")));
        }
        s
    }
}

fn field<'a>(row: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|n| row.get(*n)).filter(|v| !v.is_null())
}

fn parse_layer(v: &Value) -> Option<usize> {
    match v {
        Value::Number(n) => n.as_u64().map(|n| n as usize),
        Value::String(s) => s.split('-').next()?.trim().parse().ok(),
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

/// One row -> (layer, feature, text), or why not.
fn row(v: &Value) -> std::result::Result<(usize, u32, String), String> {
    if !v.is_object() {
        return Err("not a JSON object".into());
    }
    let layer = field(v, &["layer"]).ok_or("missing \"layer\"")?;
    let layer = parse_layer(layer).ok_or_else(|| format!("\"layer\" {layer} is not like \"8-res-jb\" or 8"))?;
    let index = field(v, &["index", "feature"]).ok_or("missing \"index\"")?;
    let index = parse_index(index).ok_or_else(|| format!("\"index\" {index} is not a feature number"))?;
    let text = field(v, &["description", "explanation", "label"]).ok_or("missing \"description\"")?;
    let text = text.as_str().map(str::trim).filter(|t| !t.is_empty()).ok_or("\"description\" is empty or not a string")?;
    Ok((layer, index, text.to_string()))
}

impl Labels {
    /// Parses an export; `origin` names it in errors. `(row number, line)` of each row.
    pub fn parse(src: &str, origin: &str, layers: &[usize], d_sae: usize) -> Result<(Self, ImportSummary)> {
        let trimmed = src.trim_start();
        let rows: Vec<(usize, Value)> = if trimmed.starts_with('[') || trimmed.starts_with('{') && serde_json::from_str::<Value>(src).is_ok() {
            let v: Value = serde_json::from_str(src).map_err(|e| eyre!("{origin}: line {}: not valid JSON ({e})", e.line()))?;
            let arr = match v {
                Value::Array(a) => a,
                Value::Object(mut o) => match o.remove("explanations") {
                    Some(Value::Array(a)) => a,
                    _ => vec![Value::Object(o)],
                },
                _ => bail!("{origin}: expected a JSON array of explanations"),
            };
            // A pretty-printed array has no useful line per row: number rows instead.
            arr.into_iter().enumerate().map(|(i, v)| (i + 1, v)).collect()
        } else {
            let mut rows = Vec::new();
            for (i, line) in src.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let v = serde_json::from_str(line).map_err(|e| eyre!("{origin}: line {}: not valid JSON ({e}); expected one object per line", i + 1))?;
                rows.push((i + 1, v));
            }
            rows
        };
        let mut bad = Vec::new();
        let mut labels = Self::default();
        let mut summary = ImportSummary { rows: rows.len(), labelled: 0, other_layers: 0, layers_skipped: Vec::new() };
        for (at, v) in &rows {
            match row(v) {
                Ok((layer, f, _)) if layers.contains(&layer) && f as usize >= d_sae => {
                    bad.push(format!("row {at}: feature {f} is past the SAE's {d_sae} features"))
                }
                Ok((layer, _, _)) if !layers.contains(&layer) => {
                    summary.other_layers += 1;
                    if !summary.layers_skipped.contains(&layer) {
                        summary.layers_skipped.push(layer);
                    }
                }
                Ok((layer, f, text)) => {
                    labels
                        .map
                        .entry((layer, f))
                        .and_modify(|t| {
                            if !t.split(" | ").any(|x| x == text) {
                                t.push_str(" | ");
                                t.push_str(&text);
                            }
                        })
                        .or_insert(text);
                }
                Err(why) => bad.push(format!("row {at}: {why}")),
            }
        }
        if let Some(first) = bad.first() {
            bail!(
                "{origin}: {} malformed row{} ({first}{}); each needs \"layer\" (e.g. \"8-res-jb\"), \"index\" and \"description\"",
                bad.len(),
                if bad.len() == 1 { "" } else { "s" },
                if bad.len() > 1 { format!("; also {}", bad[1..bad.len().min(3)].join("; ")) } else { String::new() }
            );
        }
        summary.layers_skipped.sort_unstable();
        summary.labelled = labels.map.len();
        Ok((labels, summary))
    }

    pub fn load(path: &Path, layers: &[usize], d_sae: usize) -> Result<(Self, ImportSummary)> {
        let bytes = std::fs::read(path).map_err(|e| eyre!("cannot read labels file {}: {e}", path.display()))?;
        let src = String::from_utf8(bytes).map_err(|_| eyre!("{}: not UTF-8; Neuronpedia exports are UTF-8 JSON", path.display()))?;
        Self::parse(&src, &path.display().to_string(), layers, d_sae)
    }

    pub fn get(&self, layer: usize, feature: u32) -> Option<&str> {
        self.map.get(&(layer, feature)).map(String::as_str)
    }

    /// Labels naming a feature at or past `d_sae`: the explorer reads labels before it
    /// knows the SAEs' width, and reports these once it does.
    pub fn past(&self, d_sae: usize) -> usize {
        self.map.keys().filter(|(_, f)| *f as usize >= d_sae).count()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Features whose label contains every word of `query` (any case), by layer and id;
    /// `#123` or `123` also finds feature 123 in every layer that has a label for it.
    pub fn search(&self, query: &str) -> Vec<(usize, u32, &str)> {
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
