//! Open question 3, the late-layer dips: Peak and Sum grow with depth but fall at some
//! steps. Does that follow the residual stream's size at the hook, or the SAE's fidelity?
//! Pure functions on the analysis's Peak and Sum, the mean input norm per category and each
//! SAE's reconstruction quality on the same texts (eval.rs).

use serde::Serialize;

/// One category at one SAE.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Level {
    pub sae: String,
    pub category: usize,
    /// The mean L2 norm of the SAE's input over the category's tokens.
    pub norm: f64,
    pub peak: f64,
    pub sum: f64,
    pub peak_per_norm: f64,
    pub sum_per_norm: f64,
}

pub fn level(sae: String, category: usize, norm: f64, peak: f32, sum: f32) -> Level {
    let per = |x: f32| if norm > 0.0 { f64::from(x) / norm } else { 0.0 };
    Level { sae, category, norm, peak: f64::from(peak), sum: f64::from(sum), peak_per_norm: per(peak), sum_per_norm: per(sum) }
}

/// What a fall goes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Divided by the residual norm it does not fall: the stream shrank (or grew less).
    ResidualNorm,
    /// It falls even per unit of norm, where the SAE reconstructs worse than the one before.
    Fidelity,
    /// It falls per unit of norm at an SAE that reconstructs as well or better.
    Neither,
}

impl Cause {
    /// What the dips go with, as "the dips ... " ends.
    pub fn name(self) -> &'static str {
        match self {
            Self::ResidualNorm => "the residual norm",
            Self::Fidelity => "the SAE's fidelity",
            Self::Neither => "neither",
        }
    }
}

/// Peak or Sum falling from one SAE to the next (in depth order) for one category.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dip {
    pub category: usize,
    pub from: String,
    pub to: String,
    /// "Peak" or "Sum".
    pub metric: &'static str,
    pub before: f64,
    pub after: f64,
    pub norm_before: f64,
    pub norm_after: f64,
    /// Explained variance of the two SAEs on these texts.
    pub ev_before: f64,
    pub ev_after: f64,
    pub cause: Cause,
}

/// Every fall of Peak or Sum in `levels` (per SAE in depth order, per category), with
/// what it goes with; `ev` is each SAE's explained variance.
pub fn dips(levels: &[Vec<Level>], ev: &[f64]) -> Vec<Dip> {
    let mut out = Vec::new();
    for (s, pair) in levels.windows(2).enumerate() {
        for (a, b) in pair[0].iter().zip(&pair[1]) {
            for (metric, x, y, xn, yn) in [("Peak", a.peak, b.peak, a.peak_per_norm, b.peak_per_norm), ("Sum", a.sum, b.sum, a.sum_per_norm, b.sum_per_norm)] {
                if y >= x {
                    continue;
                }
                let (ev_before, ev_after) = (ev[s], ev[s + 1]);
                let cause = if yn >= xn {
                    Cause::ResidualNorm
                } else if ev_after < ev_before {
                    Cause::Fidelity
                } else {
                    Cause::Neither
                };
                out.push(Dip {
                    category: a.category,
                    from: a.sae.clone(),
                    to: b.sae.clone(),
                    metric,
                    before: x,
                    after: y,
                    norm_before: a.norm,
                    norm_after: b.norm,
                    ev_before,
                    ev_after,
                    cause,
                });
            }
        }
    }
    out
}
