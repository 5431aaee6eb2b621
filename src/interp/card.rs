//! A feature card: what one feature is, in one place. The parts read from the activation
//! set (every text's activation, a histogram, the top texts) are pure; the parts that
//! need the weights (logit lens, neighbours, each top text's strongest token) come from
//! the engine and are filled in by `Card::complete`.

use crate::activations::ActivationSet;
use crate::interp::lens::{Logits, Neighbours};
use crate::neuronpedia::labels::Labels;
use crate::pipeline::Engine;
use crate::sae::key::SaeKey;
use color_eyre::eyre::{eyre, Result};
use serde::Serialize;

/// Top texts listed (and token-scanned) per card.
pub const TOP_TEXTS: usize = 8;
/// Tokens in each direction of the logit lens.
pub const LOGITS: usize = 10;
/// Neighbours per adjacent layer.
pub const NEIGHBOURS: usize = 5;
pub const BINS: usize = 12;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextValue {
    /// Index into the set's texts.
    pub text: usize,
    pub category: String,
    pub activation: f32,
    /// False when the text's vector was pruned and this feature was not kept: the value is
    /// then only known to be below `activation`.
    pub exact: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    /// Upper edge of each bin; bin i holds values in (edge[i-1], edge[i]], bin 0 is [0, edge[0]].
    pub edges: Vec<f32>,
    pub counts: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopToken {
    pub position: usize,
    pub token: String,
    pub activation: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopText {
    pub text: usize,
    pub category: String,
    pub content: String,
    pub activation: f32,
    /// Filled in by the engine.
    pub top_token: Option<TopToken>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelledNeighbour {
    pub feature: u32,
    pub cosine: f32,
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NeighbourSae {
    pub sae: SaeKey,
    pub features: Vec<LabelledNeighbour>,
}

/// What the card says instead of a link when the SAE's Neuronpedia id is unknown.
pub const NO_PAGE: &str = "(no Neuronpedia page known for this SAE)";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Card {
    pub sae: SaeKey,
    pub feature: u32,
    /// None when the SAE's Neuronpedia id is unknown (docs/formats.md, "Neuronpedia ids").
    pub neuronpedia_url: Option<String>,
    pub label: Option<String>,
    pub texts: Vec<TextValue>,
    pub histogram: Histogram,
    pub top_texts: Vec<TopText>,
    pub logits: Option<Logits>,
    pub neighbours: Vec<NeighbourSae>,
    /// From the `--corpus` index, when there is one (docs/dashboards.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corpus: Option<crate::dashboard::FeatureCorpus>,
    /// From Neuronpedia's dumps (`--neuronpedia`), when they hold this feature.
    pub neuronpedia: Option<crate::neuronpedia::dump::FeatureDump>,
}

pub fn histogram(values: &[f32], bins: usize) -> Histogram {
    let max = values.iter().copied().fold(0f32, f32::max);
    let bins = bins.max(1);
    if max <= 0.0 {
        return Histogram { edges: vec![0.0], counts: vec![values.len() as u32] };
    }
    let edges: Vec<f32> = (1..=bins).map(|i| max * i as f32 / bins as f32).collect();
    let mut counts = vec![0u32; bins];
    for &v in values {
        let i = ((v.max(0.0) / max * bins as f32).ceil() as usize).clamp(1, bins) - 1;
        counts[i] += 1;
    }
    Histogram { edges, counts }
}

impl Card {
    /// The card's data-only parts, from the activation set and labels.
    pub fn from_set(set: &ActivationSet, labels: &Labels, sae: SaeKey, feature: u32) -> Result<Self> {
        let li = set
            .index_of(sae)
            .ok_or_else(|| eyre!("SAE {sae} is not loaded (loaded: {})", set.saes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")))?;
        if feature as usize >= sae.width {
            return Err(eyre!("feature {feature} does not exist: SAE {sae} has features 0..{}", sae.width));
        }
        let texts: Vec<TextValue> = set
            .texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let (activation, exact) = t.value(li, feature).or_bound();
                TextValue { text: i, category: set.categories[t.category].clone(), activation, exact }
            })
            .collect();
        // Inexact values are upper bounds; the histogram counts them at 0 rather than guess.
        let values: Vec<f32> = texts.iter().map(|t| if t.exact { t.activation } else { 0.0 }).collect();
        let mut order: Vec<&TextValue> = texts.iter().filter(|t| t.exact && t.activation > 0.0).collect();
        order.sort_by(|a, b| b.activation.total_cmp(&a.activation).then(a.text.cmp(&b.text)));
        let top_texts = order
            .into_iter()
            .take(TOP_TEXTS)
            .map(|t| TopText { text: t.text, category: t.category.clone(), content: set.texts[t.text].text.clone(), activation: t.activation, top_token: None })
            .collect();
        Ok(Self {
            sae,
            feature,
            neuronpedia_url: set.neuronpedia.url(sae, feature),
            label: labels.get(sae, feature).map(String::from),
            histogram: histogram(&values, BINS),
            texts,
            top_texts,
            logits: None,
            neighbours: Vec::new(),
            corpus: None,
            neuronpedia: None,
        })
    }

    /// The weight-derived parts: logit lens, neighbours and the top texts' strongest tokens.
    pub fn complete(&mut self, engine: &Engine, labels: &Labels, include_bos: bool) -> Result<()> {
        // The MLP's normalised input has no logit lens: the card goes on without one.
        self.logits = match self.sae.hook.site {
            crate::model::hooks::Site::Ln2Normalized => None,
            _ => Some(crate::interp::lens::logit_lens(engine, self.sae, self.feature, LOGITS)?),
        };
        self.neighbours = crate::interp::lens::neighbours(engine, self.sae, self.feature, NEIGHBOURS)?
            .into_iter()
            .map(|Neighbours { sae, features }| NeighbourSae {
                sae,
                features: features
                    .into_iter()
                    .map(|(feature, cosine)| LabelledNeighbour { feature, cosine, label: labels.get(sae, feature).map(String::from) })
                    .collect(),
            })
            .collect();
        let li = engine.keys().iter().position(|&l| l == self.sae).ok_or_else(|| eyre!("SAE {} is not loaded", self.sae))?;
        for t in &mut self.top_texts {
            crate::runtime::interrupt::check()?;
            let acts = crate::interp::lens::token_activations(engine, &t.content, include_bos)?;
            let values = acts.feature(li, self.feature);
            t.top_token = values.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(position, &activation)| TopToken {
                position,
                token: acts.tokens[position].clone(),
                activation,
            });
        }
        Ok(())
    }

    /// The card as text, for `saescope feature`.
    pub fn text(&self) -> String {
        let mut s = format!("SAE {} ({}) feature {}  {}\n", self.sae, self.sae.hook, self.feature, self.neuronpedia_url.as_deref().unwrap_or(NO_PAGE));
        if let Some(l) = &self.label {
            s.push_str(&format!("label: {}\n", crate::runtime::printable::printable(l)));
        }
        let fired = self.texts.iter().filter(|t| t.exact && t.activation > 0.0).count();
        s.push_str(&format!("\nactivation in {} texts ({fired} non-zero):\n", self.texts.len()));
        let peak = self.histogram.counts.iter().copied().max().unwrap_or(0).max(1);
        let mut lo = 0.0;
        for (edge, count) in self.histogram.edges.iter().zip(&self.histogram.counts) {
            s.push_str(&format!("  {lo:>7.2} - {edge:>7.2} {:>5} {}\n", count, "#".repeat((*count as usize * 40).div_ceil(peak as usize))));
            lo = *edge;
        }
        s.push_str("\ntop texts:\n");
        for t in &self.top_texts {
            let token = t.top_token.as_ref().map(|k| format!("  max at {:?} ({:.2})", k.token, k.activation)).unwrap_or_default();
            s.push_str(&format!("  {:>7.2}  [{}] {:?}{token}\n", t.activation, crate::runtime::printable::printable(&t.category), excerpt(&t.content, 60)));
        }
        if let Some(l) = &self.logits {
            let list = |v: &[crate::interp::lens::TokenLogit]| v.iter().map(|t| format!("{:?} {:+.2}", t.token, t.logit)).collect::<Vec<_>>().join(", ");
            s.push_str(&format!("\nlogit lens, promoted:   {}\nlogit lens, suppressed: {}\n", list(&l.promoted), list(&l.suppressed)));
        }
        for n in &self.neighbours {
            let how = match n.sae.width.cmp(&self.sae.width) {
                _ if n.sae.hook != self.sae.hook => "",
                std::cmp::Ordering::Greater => ", wider: its children",
                std::cmp::Ordering::Less => ", narrower: its parent",
                std::cmp::Ordering::Equal => "",
            };
            s.push_str(&format!("\nnearest in SAE {} (decoder cosine{how}):\n", n.sae));
            for f in &n.features {
                s.push_str(&format!("  #{:<6} {:.3}  {}\n", f.feature, f.cosine, crate::runtime::printable::printable(f.label.as_deref().unwrap_or(""))));
            }
        }
        if let Some(c) = &self.corpus {
            s.push_str(&c.text());
        }
        if let Some(n) = &self.neuronpedia {
            s.push_str(&n.text());
        }
        s
    }
}

/// The first `n` characters of `s` on one line, with an ellipsis when cut.
pub fn excerpt(s: &str, n: usize) -> String {
    let one_line: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if one_line.chars().count() <= n {
        one_line
    } else {
        one_line.chars().take(n.saturating_sub(1)).collect::<String>() + "…"
    }
}
