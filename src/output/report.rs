//! `saescope report`'s three formats. The JSON schema is part of the public interface
//! (docs/formats.md, "report --format json"): change it only with a version note (CHANGELOG.md).

use crate::activations::ActivationSet;
use crate::analysis::Analysis;
use crate::sae::key::SaeKey;
use color_eyre::eyre::Result;
use serde::Serialize;
use std::fmt::Write as _;

/// Texts' own feature lists hold this many entries.
pub const TEXT_TOP: usize = 32;

/// f32 -> the f64 with the same shortest decimal form, so JSON says 0.1, not 0.10000000149.
fn num(x: f32) -> f64 {
    format!("{x}").parse().unwrap_or(x as f64)
}

#[derive(Serialize)]
pub struct Report {
    pub model: String,
    pub sae_release: String,
    /// Each SAE's block (`saes[i].layer`), for readers of the one-SAE-per-layer schema.
    pub layers: Vec<usize>,
    /// The SAEs, in the order of every `layers` array below: label, hook, block, width.
    pub saes: Vec<SaeKey>,
    pub include_bos: bool,
    /// The texts were read in the model's chat template (`--chat`).
    pub chat: bool,
    pub top_k: usize,
    pub threshold: f64,
    pub categories: Vec<CategoryOut>,
    pub texts: Vec<TextOut>,
    /// Each SAE's reconstruction on the samples (eval.rs, without the spliced forwards:
    /// `saescope eval` adds CE and KL); JSON only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<Vec<crate::analysis::eval::Quality>>,
    /// For the CSV's links; the JSON schema has none.
    #[serde(skip)]
    pub neuronpedia: crate::sae::neuronpedia_id::Ids,
}

#[derive(Serialize)]
pub struct CategoryOut {
    pub name: String,
    pub n_texts: usize,
    pub layers: Vec<CategoryLayerOut>,
}

#[derive(Serialize)]
pub struct CategoryLayerOut {
    /// The SAE's block, and the SAE (`Report::saes`): label, hook and width.
    pub layer: usize,
    pub sae: String,
    pub hook: String,
    pub width: usize,
    pub peak: f64,
    pub gini: f64,
    pub top_sum: f64,
    pub top_share: f64,
    pub spec: i64,
    pub top: Vec<TopOut>,
}

#[derive(Serialize)]
pub struct TopOut {
    pub feature: u32,
    pub activation: f64,
    pub specialist: i64,
}

#[derive(Serialize)]
pub struct TextOut {
    pub category: String,
    pub text: String,
    pub n_tokens: usize,
    pub layers: Vec<TextLayerOut>,
}

#[derive(Serialize)]
pub struct TextLayerOut {
    pub layer: usize,
    pub sae: String,
    pub total: f64,
    pub top: Vec<FeatureOut>,
}

#[derive(Serialize)]
pub struct FeatureOut {
    pub feature: u32,
    pub activation: f64,
}

impl Report {
    pub fn new(model: String, sae_release: String, set: &ActivationSet, analysis: &Analysis) -> Self {
        let categories = set
            .categories
            .iter()
            .enumerate()
            .map(|(ci, name)| CategoryOut {
                name: name.clone(),
                n_texts: set.n_texts_of(ci),
                layers: analysis
                    .saes
                    .iter()
                    .map(|la| {
                        let m = &la.categories[ci];
                        CategoryLayerOut {
                            layer: la.sae.layer(),
                            sae: la.sae.to_string(),
                            hook: la.sae.hook.to_string(),
                            width: la.sae.width,
                            peak: num(m.peak),
                            gini: num(m.gini),
                            top_sum: num(m.top_sum),
                            top_share: num(m.top_share),
                            spec: m.spec,
                            top: m.top.iter().map(|t| TopOut { feature: t.feature, activation: num(t.activation), specialist: t.specialist }).collect(),
                        }
                    })
                    .collect(),
            })
            .collect();
        let texts = set
            .texts
            .iter()
            .map(|t| TextOut {
                category: set.categories[t.category].clone(),
                text: t.text.clone(),
                n_tokens: t.n_tokens,
                layers: set
                    .saes
                    .iter()
                    .zip(t.vectors.iter().zip(&t.totals))
                    .map(|(&key, (v, &total))| TextLayerOut {
                        layer: key.layer(),
                        sae: key.to_string(),
                        total: num(total),
                        top: v.top(TEXT_TOP).into_iter().map(|(feature, a)| FeatureOut { feature, activation: num(a) }).collect(),
                    })
                    .collect(),
            })
            .collect();
        Self {
            model,
            sae_release,
            layers: set.saes.iter().map(SaeKey::layer).collect(),
            saes: set.saes.clone(),
            include_bos: set.include_bos,
            chat: false,
            top_k: analysis.params.top_k,
            threshold: num(analysis.params.threshold),
            categories,
            texts,
            quality: None,
            neuronpedia: set.neuronpedia.clone(),
        }
    }

    pub fn json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)? + "\n")
    }

    /// The study's Figure 2b: per category and SAE, top feature, Peak, Gini, Sum, Top5, Spec.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "model {}  SAEs {}  top-k {}  threshold {}{}",
            crate::runtime::printable::printable(&self.model),
            crate::runtime::printable::printable(&self.sae_release),
            self.top_k,
            self.threshold,
            match (self.include_bos, self.chat) {
                (false, false) => "",
                (true, false) => "  (BOS included)",
                (false, true) => "  (in the chat template)",
                (true, true) => "  (in the chat template, its tokens included)",
            }
        );
        let w = self.saes.iter().map(|k| k.to_string().len()).max().unwrap_or(3).max(3);
        let _ = writeln!(s, "{:<20} {:>w$} {:>8} {:>8} {:>6} {:>8} {:>6} {:>5}", "category", "sae", "top", "peak", "gini", "sum", "top5", "spec");
        for c in &self.categories {
            for (i, l) in c.layers.iter().enumerate() {
                let name = if i == 0 { format!("{} ({})", crate::runtime::printable::printable(&c.name), c.n_texts) } else { String::new() };
                let top = l.top.first().map(|t| format!("#{}", t.feature)).unwrap_or_else(|| "-".into());
                let _ = writeln!(
                    s,
                    "{:<20} {:>w$} {:>8} {:>8.1} {:>6.2} {:>8.1} {:>5.1}% {:>5}",
                    name,
                    l.sae,
                    top,
                    l.peak,
                    l.gini,
                    l.top_sum,
                    l.top_share * 100.0,
                    l.spec
                );
            }
        }
        s
    }

    /// Tidy CSV: one row per category, SAE and top-k rank.
    pub fn csv(&self) -> Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "category",
            "layer",
            "sae",
            "hook",
            "width",
            "rank",
            "feature",
            "activation",
            "specialist",
            "peak",
            "gini",
            "top_sum",
            "top_share",
            "spec",
            "neuronpedia",
        ])?;
        for c in &self.categories {
            for (l, key) in c.layers.iter().zip(&self.saes) {
                for (rank, t) in l.top.iter().enumerate() {
                    w.write_record([
                        c.name.clone(),
                        l.layer.to_string(),
                        l.sae.clone(),
                        l.hook.clone(),
                        l.width.to_string(),
                        (rank + 1).to_string(),
                        t.feature.to_string(),
                        t.activation.to_string(),
                        t.specialist.to_string(),
                        l.peak.to_string(),
                        l.gini.to_string(),
                        l.top_sum.to_string(),
                        l.top_share.to_string(),
                        l.spec.to_string(),
                        self.neuronpedia.url_or_empty(*key, t.feature),
                    ])?;
                }
            }
        }
        Ok(String::from_utf8(w.into_inner().map_err(|e| color_eyre::eyre::eyre!("csv: {e}"))?)?)
    }
}
