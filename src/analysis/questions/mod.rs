//! The study's open questions (its section V), measured on the current data, each
//! answered in a line with the numbers behind it, beside the four findings:
//! 1. syntax or semantics (`syntax`): do the named features read their token or a context?
//! 2. the long tail (`tail`): what carries the mass beyond the top 5?
//! 3. the late-layer dips (`dips`): do they follow the residual norm or the SAE's fidelity?
//! 4. beyond GPT-2: with a second run, the same answers side by side (findings.rs).
//!
//! `measure` runs the forwards (probe.rs, and eval.rs without the spliced ones); the rest
//! is pure functions on plain data.

pub mod dips;
pub mod probe;
pub mod syntax;
pub mod tail;

use crate::activations::ActivationSet;
use crate::analysis::eval::{EvalOptions, Quality};
use crate::analysis::findings::Finding;
use crate::analysis::Analysis;
use crate::dashboard::text::levels;
use crate::pipeline::Engine;
use crate::runtime::progress::ProgressSink;
use color_eyre::eyre::{bail, eyre, Result};
use serde::Serialize;
use syntax::{Reading, Reads, Role};

/// Everything the open questions measured, per SAE and category.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenQuestions {
    pub categories: Vec<String>,
    /// SAEs in depth order, as their tabs name them.
    pub saes: Vec<String>,
    /// Question 1: each category's top-k and best specialist per SAE.
    pub readings: Vec<Reading>,
    /// Question 2: per SAE, per category.
    pub tails: Vec<Vec<tail::Tail>>,
    /// Where the firing rates behind "dense" come from.
    pub density_source: String,
    /// Question 3: per SAE, per category; and the falls.
    pub levels: Vec<Vec<dips::Level>>,
    pub dips: Vec<dips::Dip>,
    /// Each SAE's reconstruction on these texts (no spliced forwards).
    pub quality: Vec<Quality>,
}

/// The probes: per SAE and category, the top-k features and the best specialist.
fn probes(engine: &Engine, set: &ActivationSet, analysis: &Analysis) -> Result<Vec<(probe::Probe, Role)>> {
    let mut out = Vec::new();
    for a in &analysis.saes {
        let sae = engine.saes.iter().position(|(k, _)| *k == a.sae).ok_or_else(|| eyre!("internal: SAE {} of the analysis is not loaded", a.sae))?;
        for (category, m) in a.categories.iter().enumerate().take(set.categories.len()) {
            for (rank, t) in m.top.iter().enumerate() {
                out.push((probe::Probe { sae, category, feature: t.feature }, Role::Top(rank + 1)));
            }
            if let Some((feature, score)) = a.above.best(category) {
                if !m.top.iter().any(|t| t.feature == feature) {
                    out.push((probe::Probe { sae, category, feature }, Role::Specialist(score)));
                }
            }
        }
    }
    Ok(out)
}

/// Measures the open questions on `texts` (the samples' token ids in the set's order of
/// texts, with their categories): the forwards on the model thread, then the answers.
pub fn measure(
    engine: &Engine,
    set: &ActivationSet,
    analysis: &Analysis,
    texts: Vec<probe::Text>,
    corpus: Option<&crate::dashboard::Index>,
    batch_tokens: usize,
    progress: &ProgressSink,
) -> Result<OpenQuestions> {
    if engine.tokenizer.is_chat() {
        // The probes shuffle a text's tokens and cut windows from it, which would scatter
        // and cut the template's own tokens.
        bail!("the open questions read texts without a chat template: run findings without --chat");
    }
    let ids: Vec<Vec<u32>> = texts.iter().map(|t| t.ids.clone()).collect();
    let opts = EvalOptions::reconstruction(batch_tokens);
    let quality = crate::analysis::eval::evaluate(engine, &ids, "the samples".into(), &opts, progress)?.saes;
    let probes = probes(engine, set, analysis)?;
    let only: Vec<probe::Probe> = probes.iter().map(|p| p.0).collect();
    let measured = probe::measure(engine, &texts, &only, set.include_bos, batch_tokens, progress)?;
    let name = |sae: usize| engine.saes[sae].0.to_string();
    let readings = probes.iter().zip(&measured).map(|((p, role), m)| syntax::reading(name(p.sae), p.category, p.feature, *role, m)).collect();
    let n_categories = set.categories.len();
    let mut tails = Vec::new();
    let mut levels = Vec::new();
    let mut from_corpus = 0;
    for (li, a) in analysis.saes.iter().enumerate() {
        let q = quality.iter().find(|q| q.sae == a.sae.to_string()).ok_or_else(|| eyre!("internal: no quality for {}", a.sae))?;
        // The open question is about the corpus: its index's firing rates where it has
        // this SAE, else the rates on the samples.
        let indexed = corpus.and_then(|i| i.layers.iter().find(|l| l.key() == Some(a.sae)).filter(|l| l.tokens > 0));
        let density: Vec<f64> = match indexed {
            Some(l) => {
                from_corpus += 1;
                l.count.iter().map(|&n| n as f64 / l.tokens as f64).collect()
            }
            None => q.density.clone(),
        };
        tails.push((0..n_categories).map(|c| tail::tail(a.sae.to_string(), c, &set.category_mean(li, c), analysis.params.top_k, Some(&density))).collect());
        levels.push(
            (0..n_categories)
                .map(|c| {
                    let norms: Vec<f64> = texts.iter().zip(&q.text_norms).filter(|(t, n)| t.category == c && n.is_finite()).map(|(_, &n)| n).collect();
                    let norm = norms.iter().sum::<f64>() / norms.len().max(1) as f64;
                    let m = &a.categories[c];
                    dips::level(a.sae.to_string(), c, norm, m.peak, m.top_sum)
                })
                .collect(),
        );
    }
    let ev: Vec<f64> = analysis.saes.iter().map(|a| quality.iter().find(|q| q.sae == a.sae.to_string()).map_or(f64::NAN, |q| q.explained_variance)).collect();
    let dips = dips::dips(&levels, &ev);
    Ok(OpenQuestions {
        categories: set.categories.clone(),
        saes: analysis.saes.iter().map(|a| a.sae.to_string()).collect(),
        readings,
        tails,
        density_source: density_source(corpus, from_corpus, analysis.saes.len()),
        levels,
        dips,
        quality,
    })
}

/// Which firing rates the long tail's dense share used, as its answer says it.
fn density_source(corpus: Option<&crate::dashboard::Index>, from_corpus: usize, saes: usize) -> String {
    match corpus {
        Some(i) if from_corpus == saes => format!("firing rates over the corpus index, {} tokens of {}", i.tokens, i.corpus),
        Some(i) if from_corpus > 0 => {
            format!("firing rates over the corpus index ({} tokens of {}) where it has the SAE, else on these texts", i.tokens, i.corpus)
        }
        _ => "firing rates on these texts".into(),
    }
}

/// A share as a whole percentage ("-0%" never: an empty f64 sum is -0.0).
fn pct(x: f64) -> String {
    if x.is_nan() {
        return "-".into();
    }
    format!("{:.0}%", (100.0 * x).max(0.0))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `x` from the first to the last value, as a factor.
fn growth(v: &[f64]) -> Option<f64> {
    match (v.first(), v.last()) {
        (Some(&a), Some(&b)) if a > 0.0 && v.len() > 1 => Some(b / a),
        _ => None,
    }
}

fn times(x: Option<f64>) -> String {
    x.map_or("x -".into(), |x| format!("x{x:.2}"))
}

impl OpenQuestions {
    /// The answers, as findings with an answer in place of a verdict: they go wherever the
    /// findings go (the view, `findings`, CSV, a second run beside this one).
    pub fn answers(&self) -> Vec<Finding> {
        vec![self.syntax(), self.tail(), self.dips()]
    }

    fn syntax(&self) -> Finding {
        let ([token, local, long], kept, n) = syntax::shares(self.readings.iter());
        let answer = if n == 0 {
            "nothing fires".to_string()
        } else {
            let (share, class) = [(token, Reads::Token), (local, Reads::LocalContext), (long, Reads::LongContext)]
                .into_iter()
                .fold((0.0, Reads::Token), |b, x| if x.0 > b.0 { x } else { b });
            format!("mostly {} features ({})", class.name(), pct(f64::from(share)))
        };
        let rows = self
            .categories
            .iter()
            .enumerate()
            .map(|(c, name)| {
                let ([t, l, g], k, _) = syntax::shares(self.readings.iter().filter(|r| r.category == c));
                let by_sae = self.saes.iter().map(|s| f64::from(syntax::shares(self.readings.iter().filter(|r| r.category == c && &r.sae == s)).0[0]));
                let detail = format!(
                    "token {} · local {} · long {} · shuffled keeps {} · token share by SAE {}",
                    pct(f64::from(t)),
                    pct(f64::from(l)),
                    pct(f64::from(g)),
                    pct(f64::from(k)),
                    levels(by_sae, 1.0)
                );
                (name.clone(), detail)
            })
            .collect();
        Finding {
            claim: "Syntax or semantics: do the named features read their token or its context?".into(),
            holds: true,
            answer: Some(answer),
            summary: format!(
                "{n} features (each category's top 5 and best specialist per SAE): token {} · local (<= {} before) {} · long {}; {} keep half their mean with the tokens shuffled",
                pct(f64::from(token)),
                syntax::LOCAL,
                pct(f64::from(local)),
                pct(f64::from(long)),
                pct(f64::from(kept))
            ),
            rows,
        }
    }

    fn tail(&self) -> Finding {
        let all = || self.tails.iter().flatten();
        let top = median(all().map(|t| t.top_share).collect());
        let n50 = median(all().map(|t| t.n50 as f64).collect());
        let n90 = median(all().map(|t| t.n90 as f64).collect());
        let active = median(all().map(|t| t.active as f64).collect());
        let gini = median(all().map(|t| t.gini_all).collect());
        let gini_active = median(all().map(|t| t.gini_active).collect());
        let dense = median(all().filter_map(|t| t.dense_tail.map(|d| d[1])).collect());
        let dense1 = median(all().filter_map(|t| t.dense_tail.map(|d| d[0])).collect());
        let answer = if dense.is_nan() {
            "unknown without firing rates".to_string()
        } else if dense >= 0.5 {
            format!("mostly dense, always-on features ({} of the tail)", pct(dense))
        } else {
            format!("many specific features ({} of the tail is dense)", pct(dense))
        };
        let last = self.tails.last();
        let rows = self
            .categories
            .iter()
            .enumerate()
            .filter_map(|(c, name)| {
                let t = last?.get(c)?;
                let dense = t.dense_tail.map_or("-".into(), |d| format!("{}/{}", pct(d[0]), pct(d[1])));
                Some((
                    name.clone(),
                    format!(
                        "Lorenz {} · 50% in {}, 90% in {} of {} · Gini {:.2}/{:.2} · dense tail {dense}",
                        levels(t.lorenz.iter().skip(2).step_by(2).copied(), 1.0),
                        t.n50,
                        t.n90,
                        t.active,
                        t.gini_all,
                        t.gini_active,
                    ),
                ))
            })
            .collect();
        Finding {
            claim: "The long tail: what carries the mass beyond the top 5?".into(),
            holds: true,
            answer: Some(answer),
            summary: format!(
                "medians over categories and SAEs: the top 5 carry {}; 50% of the sum needs {n50:.0} features and 90% {n90:.0} of {active:.0} active; Gini over all features / active ones {gini:.2}/{gini_active:.2}; of the tail, features firing on >1%/>10% of tokens carry {}/{} ({}); per category at {}:",
                pct(top),
                pct(dense1),
                pct(dense),
                self.density_source,
                last.and_then(|l| l.first()).map_or("the deepest SAE", |t| t.sae.as_str())
            ),
            rows,
        }
    }

    fn dips(&self) -> Finding {
        let count = |c: dips::Cause| self.dips.iter().filter(|d| d.cause == c).count();
        let (norm, fidelity, neither) = (count(dips::Cause::ResidualNorm), count(dips::Cause::Fidelity), count(dips::Cause::Neither));
        let answer = if self.dips.is_empty() {
            "no dips on this data".to_string()
        } else {
            let (n, cause) = [(norm, dips::Cause::ResidualNorm), (fidelity, dips::Cause::Fidelity), (neither, dips::Cause::Neither)]
                .into_iter()
                .fold((0, dips::Cause::Neither), |b, x| if x.0 > b.0 { x } else { b });
            format!("most dips follow {} ({n} of {})", cause.name(), self.dips.len())
        };
        let column = |c: usize, f: &dyn Fn(&dips::Level) -> f64| -> Vec<f64> { self.levels.iter().filter_map(|l| l.get(c)).map(f).collect() };
        let norms: Vec<f64> = (0..self.categories.len()).filter_map(|c| growth(&column(c, &|l| l.norm))).collect();
        let peaks: Vec<f64> = (0..self.categories.len()).filter_map(|c| growth(&column(c, &|l| l.peak))).collect();
        let per: Vec<f64> = (0..self.categories.len()).filter_map(|c| growth(&column(c, &|l| l.peak_per_norm))).collect();
        let mut rows: Vec<(String, String)> = self
            .categories
            .iter()
            .enumerate()
            .map(|(c, name)| {
                let peak = column(c, &|l| l.peak_per_norm);
                let norm = column(c, &|l| l.norm);
                let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
                // The falls by the SAE they fall at: "11 post 24k Peak, Sum: neither".
                let mine: Vec<&dips::Dip> = self.dips.iter().filter(|d| d.category == c).collect();
                let mut at: Vec<&str> = mine.iter().map(|d| d.to.as_str()).collect();
                at.dedup();
                let falls: Vec<String> = at
                    .iter()
                    .map(|&to| {
                        let here: Vec<&&dips::Dip> = mine.iter().filter(|d| d.to == to).collect();
                        let metrics: Vec<&str> = here.iter().map(|d| d.metric).collect();
                        let mut causes: Vec<&str> = here.iter().map(|d| d.cause.name()).collect();
                        causes.dedup();
                        format!("{to} {}: {}", metrics.join("+"), causes.join(", "))
                    })
                    .collect();
                let falls = if falls.is_empty() { "no dips".into() } else { format!("dips at {}", falls.join("; ")) };
                (name.clone(), format!("Peak/norm {} norm {} · {falls}", levels(peak.iter().copied(), max(&peak)), levels(norm.iter().copied(), max(&norm))))
            })
            .collect();
        let ev: Vec<String> = self.quality.iter().map(|q| format!("{} {:.2}", q.sae, q.explained_variance)).collect();
        rows.push(("SAE fidelity".into(), format!("explained variance on these texts: {}", ev.join(", "))));
        Finding {
            claim: "The late-layer dips: do they follow the residual norm or the SAE's fidelity?".into(),
            holds: true,
            answer: Some(answer),
            summary: format!(
                "{} falls of Peak or Sum between consecutive SAEs: {norm} follow the residual norm, {fidelity} the SAE's fidelity, {neither} neither; first to last SAE (medians): residual norm {}, Peak {}, Peak/norm {}",
                self.dips.len(),
                times(Some(median(norms)).filter(|x| x.is_finite())),
                times(Some(median(peaks)).filter(|x| x.is_finite())),
                times(Some(median(per)).filter(|x| x.is_finite()))
            ),
            rows,
        }
    }

    /// Every number behind the answers, one per row for CSV: (the answer's index in
    /// `answers()`, what it is of — "category · SAE[ · #feature] · measure" —, its value).
    pub fn values(&self) -> Vec<(usize, String, String)> {
        let mut out = Vec::new();
        let cat = |c: usize| self.categories.get(c).map_or("", String::as_str);
        for r in &self.readings {
            let at = format!("{} · {} · #{}", cat(r.category), r.sae, r.feature);
            let role = match r.role {
                Role::Top(n) => format!("top {n}"),
                Role::Specialist(s) => format!("best specialist ({s})"),
            };
            let mut put = |what: &str, v: String| out.push((0, format!("{at} · {what}"), v));
            put("role", role);
            put("reads", r.reads.name().into());
            put("token", r.token.clone().unwrap_or_default());
            put("full context", r.full.to_string());
            for (n, v) in probe::CONTEXTS.iter().zip(&r.context) {
                put(&format!("share with {n} before"), v.to_string());
            }
            put("shuffled keeps", r.shuffle_kept.to_string());
            put("shuffled spread", r.shuffle_spread.to_string());
        }
        for t in self.tails.iter().flatten() {
            let at = format!("{} · {}", cat(t.category), t.sae);
            let mut put = |what: &str, v: String| out.push((1, format!("{at} · {what}"), v));
            for (what, v) in [("total", t.total), ("top share", t.top_share), ("gini all", t.gini_all), ("gini active", t.gini_active)] {
                put(what, v.to_string());
            }
            for (what, v) in [("active", t.active), ("n50", t.n50), ("n90", t.n90)] {
                put(what, v.to_string());
            }
            for (i, v) in t.lorenz.iter().enumerate() {
                put(&format!("lorenz {:.2}", i as f64 / tail::LORENZ_POINTS as f64), v.to_string());
            }
            if let Some([d1, d10]) = t.dense_tail {
                put("dense tail >1%", d1.to_string());
                put("dense tail >10%", d10.to_string());
            }
        }
        for l in self.levels.iter().flatten() {
            let at = format!("{} · {}", cat(l.category), l.sae);
            for (what, v) in [("norm", l.norm), ("peak", l.peak), ("sum", l.sum), ("peak per norm", l.peak_per_norm), ("sum per norm", l.sum_per_norm)] {
                out.push((2, format!("{at} · {what}"), v.to_string()));
            }
        }
        for d in &self.dips {
            out.push((
                2,
                format!("{} · {} -> {} · {} dip", cat(d.category), d.from, d.to, d.metric),
                format!("{} -> {}: {}", d.before, d.after, d.cause.name()),
            ));
        }
        for q in &self.quality {
            let figures = [
                ("l0", q.l0),
                ("explained variance", q.explained_variance),
                ("explained variance legacy", q.explained_variance_legacy),
                ("mse", q.mse),
                ("cossim", q.cossim),
                ("l2 ratio", q.l2_ratio),
                ("relative reconstruction bias", q.relative_reconstruction_bias),
            ];
            for (what, v) in figures {
                out.push((2, format!("{} · {what}", q.sae), v.to_string()));
            }
            for (what, v) in [("dead", q.dead), ("dense >1%", q.dense_1pct), ("dense >10%", q.dense_10pct)] {
                out.push((2, format!("{} · {what}", q.sae), v.to_string()));
            }
        }
        out
    }

    /// Token strips of each category's best-read feature at `sae` (its top feature): the
    /// strongest text as it is and shuffled, as plain text with each firing token's value.
    pub fn strips_text(&self, sae: &str) -> String {
        let p = crate::runtime::printable::printable;
        let mut s = String::new();
        for (c, name) in self.categories.iter().enumerate() {
            let Some(r) = self.readings.iter().find(|r| r.category == c && r.sae == sae && r.role == Role::Top(1)) else { continue };
            let (Some(o), Some(sh)) = (&r.original, &r.shuffle) else { continue };
            let line = |strip: &probe::Strip| -> String {
                strip.tokens.iter().zip(&strip.values).skip(1).map(|(t, &v)| if v > 0.0 { format!("{}[{v:.1}]", p(t)) } else { p(t).into_owned() }).collect()
            };
            s.push_str(&format!(
                "     {:<16} #{} ({}, shuffled keeps {})\n       original: {}\n       shuffled: {}\n",
                p(name),
                r.feature,
                r.reads.name(),
                pct(f64::from(r.shuffle_kept)),
                line(o),
                line(sh)
            ));
        }
        s
    }
}

/// The samples' texts as token ids with their categories, in the samples' order.
pub fn texts(
    engine: &Engine,
    samples: &crate::corpus::samples::Samples,
    opts: &crate::pipeline::RunOptions,
    progress: &ProgressSink,
) -> Result<Vec<probe::Text>> {
    let ids = engine.tokenize(samples, opts, progress)?;
    Ok(samples.texts().zip(ids).map(|((category, _, _), ids)| probe::Text { category, ids }).collect())
}
