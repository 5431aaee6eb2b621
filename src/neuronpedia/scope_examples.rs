//! Gemma Scope 2's `examples.safetensors`, the file each of its SAE folders ships beside
//! `params.safetensors`: per feature its strongest activations over Google's own corpus, read
//! as a ready dashboard (the card's top activations, firing rate and logits; the overview's
//! density), so a Gemma user sees them without indexing a corpus.
//!
//! The layout, as two public readers of the real files use it (one decoding the windows
//! around each feature's top activations, one reading the shapes by HTTP range): `tokens`
//! [sequences, 512], the corpus's token ids; `seq_ids`, `positions` and `activations`
//! [d_sae, examples], each feature's examples, where a sequence number outside `tokens`
//! marks no example; `feature_frequencies` [d_sae], the share of tokens a feature fires on;
//! `top_tokens`, `top_logits`, `bottom_tokens`, `bottom_logits` [d_sae, 10], the decoder's
//! strongest logits. A file that lacks one of these or disagrees in shape is refused by name.
//!
//! Only each example's peak activation is in the file (not the window's other tokens), so a
//! window shows its peak token's value alone; a row's trailing `<pad>` tokens are left out.

use crate::dashboard::ContextWindow;
use crate::model::tokenizer::Tokenizer;
use crate::neuronpedia::dump::{Activation, DumpOverview, DumpSummary, FeatureDump, FeatureStats};
use crate::weights::tensors::SafeFile;
use color_eyre::eyre::{bail, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file's name in a Gemma Scope 2 folder.
pub const FILE: &str = "examples.safetensors";
/// Examples a card shows, strongest first.
pub const SHOWN: usize = 20;
/// Tokens shown before an example's peak, and after it.
pub const BEFORE: usize = 24;
pub const AFTER: usize = 8;

/// The examples file beside an SAE's weights, if its folder has one.
pub fn beside(weights: &Path) -> Option<PathBuf> {
    weights.parent().map(|d| d.join(FILE)).filter(|p| p.is_file())
}

/// The dashboards the cards of `saes` show beside saescope's own, for the SAEs of `run`:
/// `--neuronpedia`'s dump (`path`), and Gemma Scope 2's examples files found beside any of the
/// SAEs' weights. None where there is neither.
pub fn dashboards(
    run: &crate::pipeline::Resolved,
    path: Option<&Path>,
    saes: &[crate::sae::key::SaeKey],
    ids: &crate::sae::neuronpedia_id::Ids,
) -> Result<Option<crate::neuronpedia::dump::Dump>> {
    let mut dump = match path {
        Some(p) => crate::neuronpedia::dump::Dump::load(p, saes, ids)?,
        None => Default::default(),
    };
    let with: Vec<(crate::sae::key::SaeKey, PathBuf, String)> = run
        .saes
        .iter()
        .filter(|f| saes.contains(&f.key) && beside(&f.files.weights).is_some())
        .map(|f| (f.key, f.files.weights.clone(), ids.sae(f.key).map_or_else(|| f.id.clone(), |i| format!("{}/{}", i.model, i.source))))
        .collect();
    if !with.is_empty() {
        add_beside(&mut dump, &with, &Arc::new(run.tokenizer()?))?;
    }
    Ok((path.is_some() || !with.is_empty()).then_some(dump))
}

/// Adds to `dump` the examples file beside each of `saes` (key, weights file, the source's
/// name) that has one; returns how many did.
pub fn add_beside(dump: &mut crate::neuronpedia::dump::Dump, saes: &[(crate::sae::key::SaeKey, PathBuf, String)], tokenizer: &Arc<Tokenizer>) -> Result<usize> {
    let mut added = 0;
    for (key, weights, source) in saes {
        if let Some(path) = beside(weights) {
            dump.add_examples(*key, source.clone(), ScopeExamples::open(&path, key.width, tokenizer.clone())?);
            added += 1;
        }
    }
    Ok(added)
}

/// One SAE's examples file, open (memory-mapped: the real ones are hundreds of MB and a card
/// reads a few rows).
pub struct ScopeExamples {
    file: Arc<SafeFile>,
    tokenizer: Arc<Tokenizer>,
    d_sae: usize,
    sequences: usize,
    /// Every feature's firing rate, read at open (the overview's density).
    frequencies: Vec<f64>,
}

impl std::fmt::Debug for ScopeExamples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScopeExamples({}, {} features)", self.file.path().display(), self.d_sae)
    }
}

impl ScopeExamples {
    /// Opens `path` for an SAE of `d_sae` features, checking every tensor's shape.
    pub fn open(path: &Path, d_sae: usize, tokenizer: Arc<Tokenizer>) -> Result<Self> {
        let file = SafeFile::open(path)?;
        let shape = |name: &str| -> Result<Vec<usize>> {
            match file.shape(name) {
                Some(s) => Ok(s),
                None => bail!("{}: no tensor {name} (is it Gemma Scope 2's examples.safetensors?)", path.display()),
            }
        };
        let tokens = shape("tokens")?;
        let [sequences, _] = tokens[..] else { bail!("{}: tokens has shape {tokens:?}, expected [sequences, length]", path.display()) };
        let examples = shape("activations")?;
        if examples.len() != 2 || examples[0] != d_sae {
            bail!("{}: activations has shape {examples:?}, expected [{d_sae}, examples] for this SAE's {d_sae} features", path.display());
        }
        for name in ["seq_ids", "positions"] {
            if shape(name)? != examples {
                bail!("{}: {name} has shape {:?}, expected {examples:?} as activations", path.display(), shape(name)?);
            }
        }
        if shape("feature_frequencies")? != [d_sae] {
            bail!("{}: feature_frequencies has shape {:?}, expected [{d_sae}]", path.display(), shape("feature_frequencies")?);
        }
        for name in ["top_tokens", "top_logits", "bottom_tokens", "bottom_logits"] {
            if shape(name)?.first() != Some(&d_sae) {
                bail!("{}: {name} has shape {:?}, expected {d_sae} rows", path.display(), shape(name)?);
            }
        }
        let frequencies = (0..d_sae).map(|f| Ok(file.row_values("feature_frequencies", f)?.first().copied().unwrap_or(0.0))).collect::<Result<Vec<f64>>>()?;
        Ok(Self { file, tokenizer, d_sae, sequences, frequencies })
    }

    /// The overview's line: features, dead ones, and the density histogram of their rates.
    pub fn overview(&self, source: &str) -> DumpOverview {
        let mut counts = vec![0u32; crate::dashboard::DENSITY_BINS];
        for &f in self.frequencies.iter().filter(|&&f| f > 0.0) {
            counts[crate::dashboard::density_bin(f)] += 1;
        }
        DumpOverview {
            origin: "Gemma Scope 2's examples",
            source: source.to_string(),
            features: self.d_sae,
            dead: self.frequencies.iter().filter(|&&f| f <= 0.0).count(),
            density_counts: counts,
        }
    }

    /// Feature `feature`'s card section: its firing rate, peak, logits and strongest
    /// examples (windows of `tokens` around each peak). None past the SAE's width.
    pub fn feature(&self, feature: u32, source: &str) -> Result<Option<FeatureDump>> {
        let f = feature as usize;
        if f >= self.d_sae {
            return Ok(None);
        }
        let (seqs, positions, acts) = (self.file.row_values("seq_ids", f)?, self.file.row_values("positions", f)?, self.file.row_values("activations", f)?);
        let mut examples: Vec<(usize, usize, f64)> = seqs
            .iter()
            .zip(&positions)
            .zip(&acts)
            .filter(|((&s, &p), &a)| s >= 0.0 && (s as usize) < self.sequences && p >= 0.0 && a > 0.0)
            .map(|((&s, &p), &a)| (s as usize, p as usize, a))
            .collect();
        examples.sort_by(|a, b| b.2.total_cmp(&a.2));
        let top = examples.iter().take(SHOWN).map(|&(s, p, a)| self.window(s, p, a)).collect::<Result<Vec<_>>>()?;
        let logits = |ids: &str, values: &str| -> Result<Vec<(String, f64)>> {
            let ids: Vec<u32> = self.file.row_values(ids, f)?.iter().map(|&i| i as u32).collect();
            Ok(self.tokenizer.token_strings(&ids).into_iter().zip(self.file.row_values(values, f)?).collect())
        };
        let stats = FeatureStats {
            max_act_approx: acts.iter().copied().fold(0.0, f64::max),
            frac_nonzero: self.frequencies[f],
            hist_values: Vec::new(),
            hist_heights: Vec::new(),
            positive_logits: logits("top_tokens", "top_logits")?,
            negative_logits: logits("bottom_tokens", "bottom_logits")?,
            nearest: Vec::new(),
        };
        Ok(Some(FeatureDump {
            source: source.to_string(),
            dump: self.file.path().display().to_string(),
            data_sources: vec![format!("Gemma Scope 2's {FILE}")],
            stats: Some(stats),
            top,
            intervals: Vec::new(),
            set_aside: DumpSummary::default(),
        }))
    }

    /// The window of sequence `seq` around `pos`, its peak `act` there.
    fn window(&self, seq: usize, pos: usize, act: f64) -> Result<Activation> {
        let mut row = self.file.row_values("tokens", seq)?;
        // A shorter text's row ends in padding: not part of any window.
        let pad = self.tokenizer.token_id("<pad>").map(f64::from);
        while row.len() > pos + 1 && pad.is_some_and(|p| row.last() == Some(&p)) {
            row.pop();
        }
        let pos = pos.min(row.len().saturating_sub(1));
        let (from, to) = (pos.saturating_sub(BEFORE), (pos + AFTER + 1).min(row.len()));
        let ids: Vec<u32> = row[from..to].iter().map(|&t| t as u32).collect();
        let mut values = vec![0.0; ids.len()];
        values[pos - from] = act as f32;
        Ok(Activation {
            context: ContextWindow {
                window: seq as u32,
                source: FILE.to_string(),
                offset: from as u32,
                tokens: self.tokenizer.token_strings(&ids),
                token_ids: ids,
                max_index: pos - from,
                max_value: act as f32,
                values: Some(values),
            },
            data_index: Some(format!("{seq}:{pos}")),
            bin: None,
        })
    }
}
