//! Per-feature statistics of one SAE over a corpus, accumulated window by window from the
//! nonzero activations only (plain Rust data; no libtorch): how often each feature fires,
//! its max and mean, a histogram of its values, its top contexts, and samples of weaker
//! contexts. This is both the running state of `saescope index` (saved to resume) and
//! the stored index the views read.
//!
//! Everything is exact and order-defined, so a Python script can reproduce it
//! (scripts/reference_index.py):
//! - a context's value for a feature is its max over the window's tokens (BOS excluded);
//!   ties inside a window go to the earlier position;
//! - top contexts: value descending, then window number ascending;
//! - histogram bins are quarter-octaves, `floor(4 log2 v) + HIST_ZERO` clamped to the range;
//! - interval samples: contexts grouped by the octave of their value
//!   (`floor(log2 v) + INTERVAL_ZERO`, clamped), and in each octave the `PER_INTERVAL`
//!   contexts with the smallest `splitmix64(window)`: a uniform sample over the corpus that
//!   is the same on every run, and never depends on the order batches finish in;
//! - sums are fixed-point integers, so they add up the same in any order.
//!
//! That order-independence is what lets statistics of disjoint sets of windows (the shards
//! of `index --shard`) merge into exactly the statistics of one run over all of them
//! (`merge`, `finish`).

use crate::sae::key::SaeKey;
use serde::{Deserialize, Serialize};

/// Top contexts kept per feature.
pub const TOP: usize = 20;
/// Histogram bins: quarter-octaves from 2^-8 (below: first bin) to 2^8 (above: last bin).
pub const HIST_BINS: usize = 64;
pub const HIST_ZERO: i64 = 32;
/// Interval-sample groups: octaves from 2^-8 to 2^8, clamped the same way.
pub const INTERVALS: usize = 16;
pub const INTERVAL_ZERO: i64 = 8;
pub const PER_INTERVAL: usize = 3;
/// Sums are held in units of 2^-64: every activation down to 2^-41 adds exactly, smaller
/// ones round the same way wherever they are added, and 2^63 of headroom stays.
const SUM_UNIT: f64 = 18_446_744_073_709_551_616.0;

fn fixed(v: f32) -> i128 {
    (f64::from(v) * SUM_UNIT) as i128
}

pub fn hist_bin(v: f32) -> usize {
    (((v as f64).log2() * 4.0).floor() as i64 + HIST_ZERO).clamp(0, HIST_BINS as i64 - 1) as usize
}

/// Lower edge of histogram bin `b` (the first bin also holds everything below it).
pub fn hist_edge(b: usize) -> f64 {
    2f64.powf((b as i64 - HIST_ZERO) as f64 / 4.0)
}

pub fn interval_of(v: f32) -> usize {
    ((v as f64).log2().floor() as i64 + INTERVAL_ZERO).clamp(0, INTERVALS as i64 - 1) as usize
}

/// Lower edge of interval `i`.
pub fn interval_edge(i: usize) -> f64 {
    2f64.powi(i as i32 - INTERVAL_ZERO as i32)
}

/// The sampling priority of a window: SplitMix64 of its number.
pub fn priority(window: u32) -> u64 {
    let mut z = u64::from(window).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A context's peak for one feature: its value and where in which window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub value: f32,
    pub window: u32,
    /// Position of the max token in the window (BOS is 0, so never 0).
    pub position: u16,
}

/// One sampled context of an interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub interval: u8,
    pub hit: Hit,
}

/// The order contexts are listed in: value descending, then window ascending.
pub fn strongest_first(a: &Hit, b: &Hit) -> std::cmp::Ordering {
    b.value.total_cmp(&a.value).then(a.window.cmp(&b.window))
}

fn better(a: &Hit, b: &Hit) -> bool {
    strongest_first(a, b).is_lt()
}

/// Everything `index` knows of one SAE's features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    /// The SAE's hook as TransformerLens names it; with `d_sae`, its key (`key`).
    pub hook: String,
    pub d_sae: usize,
    /// Counted tokens seen (BOS excluded).
    pub tokens: u64,
    /// Nonzero activations seen, all features: L0 summed over tokens.
    pub firings: u64,
    pub count: Vec<u64>,
    /// In units of 2^-64 (`SUM_UNIT`).
    pub sum: Vec<i128>,
    pub max: Vec<f32>,
    /// [feature * HIST_BINS + bin].
    pub hist: Vec<u32>,
    /// Per feature, at most TOP, best first.
    pub top: Vec<Vec<Hit>>,
    /// Per feature, at most PER_INTERVAL per interval, in no particular order.
    pub samples: Vec<Vec<Sample>>,
}

/// Per-window buffers, reused so a window costs what it has nonzero, not d_sae.
#[derive(Debug, Default)]
pub struct Scratch {
    best: Vec<(f32, u16)>,
    touched: Vec<u32>,
}

impl LayerStats {
    /// The SAE these statistics are of (None for a hook this version cannot name).
    pub fn key(&self) -> Option<SaeKey> {
        crate::model::hooks::HookPoint::parse(&self.hook).map(|h| SaeKey::new(h, self.d_sae))
    }

    pub fn new(key: SaeKey) -> Self {
        let d_sae = key.width;
        Self {
            hook: key.hook.to_string(),
            d_sae,
            tokens: 0,
            firings: 0,
            count: vec![0; d_sae],
            sum: vec![0; d_sae],
            max: vec![0.0; d_sae],
            hist: vec![0; d_sae * HIST_BINS],
            top: vec![Vec::new(); d_sae],
            samples: vec![Vec::new(); d_sae],
        }
    }

    /// Folds in one window: `n_counted` tokens, and its positive activations as
    /// (position, feature, value), position 1.. (BOS left out by the caller), any order
    /// within a position but positions ascending. Windows must come in ascending number.
    pub fn add_window(&mut self, window: u32, n_counted: usize, entries: impl Iterator<Item = (u16, u32, f32)>, scratch: &mut Scratch) {
        if scratch.best.len() != self.d_sae {
            scratch.best = vec![(0.0, 0); self.d_sae];
        }
        self.tokens += n_counted as u64;
        for (pos, f, v) in entries {
            let fi = f as usize;
            self.firings += 1;
            self.count[fi] += 1;
            self.sum[fi] += fixed(v);
            if v > self.max[fi] {
                self.max[fi] = v;
            }
            self.hist[fi * HIST_BINS + hist_bin(v)] += 1;
            let best = &mut scratch.best[fi];
            if best.0 == 0.0 {
                scratch.touched.push(f);
            }
            if v > best.0 {
                *best = (v, pos);
            }
        }
        for f in scratch.touched.drain(..) {
            let fi = f as usize;
            let (value, position) = std::mem::take(&mut scratch.best[fi]);
            let hit = Hit { value, window, position };
            offer_top(&mut self.top[fi], hit);
            offer_sample(&mut self.samples[fi], hit);
        }
    }

    pub fn mean_when_firing(&self, f: usize) -> f64 {
        if self.count[f] == 0 {
            0.0
        } else {
            self.sum[f] as f64 / SUM_UNIT / self.count[f] as f64
        }
    }

    pub fn frac_nonzero(&self, f: usize) -> f64 {
        if self.tokens == 0 {
            0.0
        } else {
            self.count[f] as f64 / self.tokens as f64
        }
    }

    pub fn histogram(&self, f: usize) -> &[u32] {
        &self.hist[f * HIST_BINS..(f + 1) * HIST_BINS]
    }

    /// A feature's interval samples, weakest interval first, each interval's by priority.
    pub fn samples_of(&self, f: usize) -> Vec<Sample> {
        let mut s = self.samples[f].clone();
        s.sort_by_key(|x| (x.interval, priority(x.hit.window)));
        s
    }

    /// Adds `other`'s statistics, of windows disjoint from these, as if its windows had
    /// been folded in here: counts and histograms add, top lists and samples keep what the
    /// same rules keep (`finish` then orders the samples).
    pub fn merge(&mut self, other: &LayerStats) -> color_eyre::Result<()> {
        if (other.hook.as_str(), other.d_sae) != (self.hook.as_str(), self.d_sae) {
            color_eyre::eyre::bail!("statistics of {} ({} features) cannot merge with {} ({})", other.hook, other.d_sae, self.hook, self.d_sae);
        }
        self.tokens += other.tokens;
        self.firings += other.firings;
        let add = |a: &mut [u64], b: &[u64]| a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        add(&mut self.count, &other.count);
        self.sum.iter_mut().zip(&other.sum).for_each(|(x, y)| *x += y);
        self.max.iter_mut().zip(&other.max).for_each(|(x, y)| *x = x.max(*y));
        self.hist.iter_mut().zip(&other.hist).for_each(|(x, y)| *x += y);
        for (mine, theirs) in self.top.iter_mut().zip(&other.top) {
            theirs.iter().for_each(|&h| offer_top(mine, h));
        }
        for (mine, theirs) in self.samples.iter_mut().zip(&other.samples) {
            theirs.iter().for_each(|s| offer_sample(mine, s.hit));
        }
        Ok(())
    }

    /// Puts each feature's samples in their listing order, so the stored statistics are
    /// the same however the windows were split and folded.
    pub fn finish(&mut self) {
        for s in &mut self.samples {
            s.sort_by_key(|x| (x.interval, priority(x.hit.window)));
        }
    }

    /// Every window any list refers to (the windows whose tokens the index keeps).
    pub fn windows_referenced(&self, out: &mut std::collections::BTreeSet<u32>) {
        out.extend(self.top.iter().flatten().map(|h| h.window));
        out.extend(self.samples.iter().flatten().map(|s| s.hit.window));
    }
}

fn offer_top(top: &mut Vec<Hit>, hit: Hit) {
    if top.len() == TOP && !better(&hit, &top[TOP - 1]) {
        return;
    }
    let at = top.iter().position(|h| better(&hit, h)).unwrap_or(top.len());
    top.insert(at, hit);
    top.truncate(TOP);
}

fn offer_sample(samples: &mut Vec<Sample>, hit: Hit) {
    let interval = interval_of(hit.value) as u8;
    let same = || samples.iter().enumerate().filter(|(_, s)| s.interval == interval);
    if same().count() < PER_INTERVAL {
        samples.push(Sample { interval, hit });
        return;
    }
    let worst = same().max_by_key(|(_, s)| priority(s.hit.window)).map(|(i, _)| i);
    if let Some(i) = worst.filter(|&i| priority(hit.window) < priority(samples[i].hit.window)) {
        samples[i] = Sample { interval, hit };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_counts_once_at_its_peak_and_tokens_each() {
        let mut s = LayerStats::new(crate::sae::key::SaeKey::new(crate::model::hooks::HookPoint::new(6, crate::model::hooks::Site::ResidPre), 4));
        let mut scratch = Scratch::default();
        s.add_window(0, 3, [(1, 2, 1.0), (2, 2, 3.0), (3, 2, 3.0), (3, 1, 0.5)].into_iter(), &mut scratch);
        assert_eq!((s.count[2], s.max[2], s.tokens, s.firings), (3, 3.0, 3, 4));
        assert_eq!(s.top[2], vec![Hit { value: 3.0, window: 0, position: 2 }]);
        assert_eq!(s.mean_when_firing(2), 7.0 / 3.0);
        assert_eq!(s.histogram(2).iter().sum::<u32>(), 3);
        assert_eq!(s.histogram(2)[hist_bin(1.0)], 1);
        assert_eq!(hist_bin(1.0), HIST_ZERO as usize);
    }

    #[test]
    fn top_keeps_the_best_and_breaks_ties_by_window() {
        let mut s = LayerStats::new(crate::sae::key::SaeKey::new(crate::model::hooks::HookPoint::new(0, crate::model::hooks::Site::ResidPre), 1));
        let mut scratch = Scratch::default();
        for w in 0..30u32 {
            s.add_window(w, 1, [(1, 0, (w % 10) as f32 + 1.0)].into_iter(), &mut scratch);
        }
        let top: Vec<(f32, u32)> = s.top[0].iter().map(|h| (h.value, h.window)).collect();
        assert_eq!(top.len(), TOP);
        assert_eq!(&top[..4], &[(10.0, 9), (10.0, 19), (10.0, 29), (9.0, 8)]);
    }

    #[test]
    fn interval_samples_are_the_lowest_priorities_of_each_octave() {
        let mut s = LayerStats::new(crate::sae::key::SaeKey::new(crate::model::hooks::HookPoint::new(0, crate::model::hooks::Site::ResidPre), 1));
        let mut scratch = Scratch::default();
        for w in 0..200u32 {
            s.add_window(w, 1, [(1, 0, 1.5)].into_iter(), &mut scratch);
        }
        let mut want: Vec<u32> = (0..200).collect();
        want.sort_by_key(|&w| priority(w));
        let got: Vec<u32> = s.samples_of(0).iter().map(|x| x.hit.window).collect();
        assert_eq!(got, want[..PER_INTERVAL].to_vec());
        assert!(s.samples_of(0).iter().all(|x| x.interval as usize == interval_of(1.5)));
    }

    #[test]
    fn priority_is_splitmix64() {
        // SplitMix64's first output from seed 0 (state advanced once by the golden gamma).
        assert_eq!(priority(0), 0xE220_A839_7B1D_CDAF);
    }
}
