//! Open question 2, the long tail: the top 5 carry a few percent of a category's summed
//! activation; what is the rest? Pure functions on a category vector (and, where known,
//! each feature's firing rate).

use serde::Serialize;

/// Points of a Lorenz curve (`LORENZ_POINTS + 1` values from 0 to 1).
pub const LORENZ_POINTS: usize = 20;
/// Firing rates above which a feature counts as dense.
pub const DENSE: [f64; 2] = [0.01, 0.10];

/// One category's vector at one SAE.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tail {
    pub sae: String,
    pub category: usize,
    /// The vector's sum, and its features above 0.
    pub total: f64,
    pub active: usize,
    /// The fewest features that carry 50% and 90% of the sum.
    pub n50: usize,
    pub n90: usize,
    /// The share of the sum the `top_k` largest carry.
    pub top_share: f64,
    /// Gini over every feature of the SAE (silent ones as 0), and over the active ones.
    pub gini_all: f64,
    pub gini_active: f64,
    /// The Lorenz curve of the active features: with them sorted ascending, the share of
    /// the sum the lowest i/LORENZ_POINTS of them carry.
    pub lorenz: Vec<f64>,
    /// Of the sum beyond the top k, the share carried by features firing on more than 1%
    /// and 10% of tokens (None without firing rates).
    pub dense_tail: Option<[f64; 2]>,
}

/// The tail of `c` (a category vector); `density` per feature when known.
pub fn tail(sae: String, category: usize, c: &[f32], top_k: usize, density: Option<&[f64]>) -> Tail {
    let mut desc: Vec<(usize, f64)> = c.iter().enumerate().filter(|(_, &v)| v > 0.0).map(|(f, &v)| (f, f64::from(v))).collect();
    desc.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let total: f64 = desc.iter().map(|x| x.1).sum();
    let carry = |share: f64| {
        let mut acc = 0.0;
        desc.iter()
            .position(|x| {
                acc += x.1;
                acc >= share * total
            })
            .map_or(0, |i| i + 1)
    };
    let asc: Vec<f64> = desc.iter().rev().map(|x| x.1).collect();
    let lorenz = (0..=LORENZ_POINTS)
        .map(|i| {
            let n = (asc.len() * i).div_ceil(LORENZ_POINTS);
            if total > 0.0 {
                asc[..n].iter().sum::<f64>() / total
            } else {
                0.0
            }
        })
        .collect();
    let top: f64 = desc.iter().take(top_k).map(|x| x.1).sum();
    let dense_tail = density.map(|d| {
        let rest = total - top;
        DENSE.map(|cut| {
            let dense: f64 = desc.iter().skip(top_k).filter(|(f, _)| d.get(*f).is_some_and(|&r| r > cut)).map(|x| x.1).sum();
            if rest > 0.0 {
                dense / rest
            } else {
                0.0
            }
        })
    });
    Tail {
        sae,
        category,
        total,
        active: desc.len(),
        n50: carry(0.5),
        n90: carry(0.9),
        top_share: if total > 0.0 { top / total } else { 0.0 },
        gini_all: f64::from(crate::analysis::gini(c)),
        gini_active: f64::from(crate::analysis::gini(&c.iter().copied().filter(|&v| v > 0.0).collect::<Vec<_>>())),
        lorenz,
        dense_tail,
    }
}
