//! The study's four findings, checked on the current data: each stated as holding or not,
//! with the numbers behind the verdict, so a user sees at a glance whether their samples
//! (or the real weights) tell the same story. Pure functions on the analysis.

use crate::analysis::Analysis;
use serde::Serialize;

/// "Gini stays flat": no category's Gini moves more than this across the loaded layers.
pub const GINI_FLAT: f32 = 0.1;
/// "Top5 share stays at 3-10%".
pub const SHARE_RANGE: (f32, f32) = (0.03, 0.10);
/// "Specialised": a top-k feature with a specialist score of at least this.
pub const SPECIALIST: i64 = 5;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub claim: String,
    pub holds: bool,
    /// An open question's answer, which stands in for the verdict (`holds` is then
    /// meaningless and true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// One line of numbers behind the verdict.
    pub summary: String,
    /// Per category: (name, detail).
    pub rows: Vec<(String, String)>,
}

impl Finding {
    /// The verdict in words, so it reads without colour.
    pub fn verdict(&self) -> &str {
        self.answer.as_deref().unwrap_or(verdict(self.holds))
    }
}

pub fn verdict(holds: bool) -> &'static str {
    if holds {
        "HOLDS"
    } else {
        "DOES NOT HOLD"
    }
}

/// The findings as plain text, for `saescope findings`.
pub fn text(list: &[Finding]) -> String {
    let mut s = String::new();
    for (i, x) in list.iter().enumerate() {
        s.push_str(&format!("{}. {} [{}]\n   {}\n", i + 1, x.claim, x.verdict(), crate::runtime::printable::printable(&x.summary)));
        for (name, detail) in &x.rows {
            s.push_str(&format!("     {:<16} {}\n", crate::runtime::printable::printable(name), crate::runtime::printable::printable(detail)));
        }
        s.push('\n');
    }
    s
}

/// One finding on several runs (another model, other SAEs, the same samples), side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SideBySide {
    pub claim: String,
    /// Per run, in the order given: its name and the finding on it.
    pub runs: Vec<RunFinding>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunFinding {
    pub run: String,
    pub holds: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    pub summary: String,
    pub rows: Vec<(String, String)>,
}

/// `runs` (name, its findings) finding by finding; the findings are the same four claims
/// in the same order on every run.
pub fn side_by_side(runs: &[(String, Vec<Finding>)]) -> Vec<SideBySide> {
    let n = runs.iter().map(|(_, f)| f.len()).min().unwrap_or(0);
    (0..n)
        .map(|i| SideBySide {
            claim: runs[0].1[i].claim.clone(),
            runs: runs
                .iter()
                .map(|(name, f)| RunFinding {
                    run: name.clone(),
                    holds: f[i].holds,
                    answer: f[i].answer.clone(),
                    summary: f[i].summary.clone(),
                    rows: f[i].rows.clone(),
                })
                .collect(),
        })
        .collect()
}

/// The side-by-side as plain text: each claim, then each run's verdict, numbers and rows.
pub fn side_by_side_text(list: &[SideBySide]) -> String {
    let p = crate::runtime::printable::printable;
    let mut s = String::new();
    for (i, x) in list.iter().enumerate() {
        s.push_str(&format!("{}. {}\n", i + 1, x.claim));
        for r in &x.runs {
            s.push_str(&format!("   [{}] {}\n     {}\n", r.answer.as_deref().unwrap_or(verdict(r.holds)), p(&r.run), p(&r.summary)));
            for (name, detail) in &r.rows {
                s.push_str(&format!("       {:<16} {}\n", p(name), p(detail)));
            }
        }
        s.push('\n');
    }
    s
}

/// How many findings `findings` checks (the open questions' answers follow them).
pub const FINDINGS: usize = 4;

pub fn findings(a: &Analysis, categories: &[String]) -> Vec<Finding> {
    vec![top_feature_changes(a, categories), growth(a, categories), flat_gini_small_share(a, categories), specialists(a, categories)]
}

fn top_feature_changes(a: &Analysis, categories: &[String]) -> Finding {
    let steps = a.saes.len().saturating_sub(1);
    let mut all = steps > 0;
    let mut changing = 0;
    let rows = categories
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let tops: Vec<Option<u32>> = a.saes.iter().map(|l| l.categories.get(c).and_then(|m| m.top.first()).map(|t| t.feature)).collect();
            let changes = tops.windows(2).filter(|w| w[0] != w[1] || w[0].is_none()).count();
            all &= changes == steps;
            changing += usize::from(changes == steps && steps > 0);
            let chain: Vec<String> = tops.iter().map(|t| t.map_or("-".into(), |f| format!("#{f}"))).collect();
            (name.clone(), format!("{} ({changes} of {steps} steps change)", chain.join(" -> ")))
        })
        .collect();
    Finding {
        claim: "The top feature changes at every layer".into(),
        holds: all,
        answer: None,
        summary: if steps == 0 {
            "needs two or more loaded layers".into()
        } else {
            format!("{changing} of {} categories change their top feature at every step", categories.len())
        },
        rows,
    }
}

fn ratio(first: f32, last: f32) -> Option<f32> {
    (first > 0.0).then(|| last / first)
}

fn growth(a: &Analysis, categories: &[String]) -> Finding {
    let (Some(first), Some(last)) = (a.saes.first(), a.saes.last()) else {
        return Finding {
            claim: "Peak and Sum grow from the first to the last layer".into(),
            holds: false,
            answer: None,
            summary: "no layers".into(),
            rows: vec![],
        };
    };
    let mut ratios = Vec::new();
    let mut all = a.saes.len() > 1;
    let rows = categories
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let (f, l) = (&first.categories[c], &last.categories[c]);
            let (p, s) = (ratio(f.peak, l.peak), ratio(f.top_sum, l.top_sum));
            all &= p.is_some_and(|x| x > 1.0) && s.is_some_and(|x| x > 1.0);
            ratios.extend(p.into_iter().chain(s));
            let x = |r: Option<f32>| r.map_or("x -".into(), |r| format!("x{r:.2}"));
            (name.clone(), format!("Peak {:.1} -> {:.1} ({}), Sum {:.1} -> {:.1} ({})", f.peak, l.peak, x(p), f.top_sum, l.top_sum, x(s)))
        })
        .collect();
    ratios.sort_by(f32::total_cmp);
    let summary = match (ratios.first(), ratios.last()) {
        (Some(lo), Some(hi)) => {
            format!("SAE {} -> {}: Peak and Sum change x{lo:.2} to x{hi:.2} (median x{:.2})", first.sae, last.sae, ratios[ratios.len() / 2])
        }
        _ => "no category has a non-zero first layer".into(),
    };
    Finding { claim: "Peak and Sum grow from the first to the last layer".into(), holds: all, answer: None, summary, rows }
}

fn flat_gini_small_share(a: &Analysis, categories: &[String]) -> Finding {
    let all_metrics = || a.saes.iter().flat_map(|l| l.categories.iter());
    let range = |v: Vec<f32>| v.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let (glo, ghi) = range(all_metrics().map(|m| m.gini).collect());
    let (slo, shi) = range(all_metrics().map(|m| m.top_share).collect());
    let mut worst_spread = 0f32;
    let rows = categories
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let (lo, hi) = range(a.saes.iter().map(|l| l.categories[c].gini).collect());
            let (s0, s1) = range(a.saes.iter().map(|l| l.categories[c].top_share).collect());
            worst_spread = worst_spread.max(hi - lo);
            (name.clone(), format!("Gini {lo:.2}-{hi:.2}, Top5 share {:.1}%-{:.1}%", 100.0 * s0, 100.0 * s1))
        })
        .collect();
    let holds = !a.saes.is_empty() && worst_spread <= GINI_FLAT && slo >= SHARE_RANGE.0 && shi <= SHARE_RANGE.1;
    Finding {
        claim: format!("Gini stays flat (moves <= {GINI_FLAT}) and Top5 share stays within {:.0}-{:.0}%", 100.0 * SHARE_RANGE.0, 100.0 * SHARE_RANGE.1),
        holds,
        answer: None,
        summary: format!("Gini {glo:.2}-{ghi:.2} (largest move within a category {worst_spread:.2}); Top5 share {:.1}%-{:.1}%", 100.0 * slo, 100.0 * shi),
        rows,
    }
}

fn specialists(a: &Analysis, categories: &[String]) -> Finding {
    let mut reaching = Vec::new();
    let rows = categories
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let at: Vec<String> =
                a.saes.iter().filter(|l| l.categories[c].spec >= SPECIALIST).map(|l| format!("{} ({})", l.sae, l.categories[c].spec)).collect();
            if at.is_empty() {
                let best = a.saes.iter().max_by_key(|l| l.categories[c].spec);
                let detail = best.map_or("no layers".into(), |l| format!("never (best {} at {})", l.categories[c].spec, l.sae));
                (name.clone(), detail)
            } else {
                reaching.push(name.clone());
                (name.clone(), at.join(", "))
            }
        })
        .collect();
    Finding {
        claim: format!("Some categories get specialised features (Spec >= {SPECIALIST})"),
        holds: !reaching.is_empty(),
        answer: None,
        summary: if reaching.is_empty() {
            "no category reaches it".into()
        } else {
            format!("{} of {} categories: {}", reaching.len(), categories.len(), reaching.join(", "))
        },
        rows,
    }
}
