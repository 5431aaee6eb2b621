//! Neuronpedia's histograms, as sae_dashboard computes them (its `HistogramData.from_data`,
//! which Neuronpedia's runner calls for both): 50 bins of equal width from the least value
//! to the greatest (not from 0), counted as `torch.histc` counts (the greatest value in the
//! last bin), with each bin's centre as its value. Neuronpedia's published dumps carry the
//! centres rounded to 3 places (sae_dashboard 0.8.0's export rounding), the counts whole.

/// Bins of every Neuronpedia histogram.
pub const BINS: usize = 50;

/// Counts and bin centres; both empty for no values (a feature that never fired).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub heights: Vec<u64>,
    pub values: Vec<f64>,
}

/// A histogram's range, known before its values are counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub lo: f32,
    pub hi: f32,
}

impl Range {
    /// The bin of `v`. Where every value is equal, histc widens the range to [v - 1, v + 1],
    /// so they all land in the middle bin.
    pub fn bin(&self, v: f32) -> usize {
        let (lo, hi) = if self.lo == self.hi { (self.lo - 1.0, self.hi + 1.0) } else { (self.lo, self.hi) };
        let b = ((v - lo) * BINS as f32 / (hi - lo)).floor();
        (b.max(0.0) as usize).min(BINS - 1)
    }

    /// Each bin's centre, `lo + (i + 0.5) (hi - lo) / 50`, to 3 places (all equal to the one
    /// value where the range is a point).
    pub fn centres(&self) -> Vec<f64> {
        let (lo, hi) = (f64::from(self.lo), f64::from(self.hi));
        let width = (hi - lo) / BINS as f64;
        (0..BINS).map(|i| ((lo + (i as f64 + 0.5) * width) * 1000.0).round() / 1000.0).collect()
    }

    /// The range of `values`; None for none.
    pub fn of(values: impl IntoIterator<Item = f32>) -> Option<Self> {
        values.into_iter().fold(None, |r, v| Some(Self::widened(r, v)))
    }

    /// `range` (None: no values yet) widened to hold `v`: a range built one value at a time.
    pub fn widened(range: Option<Self>, v: f32) -> Self {
        range.map_or(Range { lo: v, hi: v }, |r| Range { lo: r.lo.min(v), hi: r.hi.max(v) })
    }
}

/// The histogram of values at hand (a feature's logits over the vocabulary).
pub fn of(values: &[f32]) -> Histogram {
    let Some(range) = Range::of(values.iter().copied()) else { return Histogram::default() };
    let mut heights = vec![0u64; BINS];
    values.iter().for_each(|&v| heights[range.bin(v)] += 1);
    Histogram { heights, values: range.centres() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_linear_from_the_least_value_to_the_greatest() {
        let values: Vec<f32> = (0..=100).map(|i| i as f32 / 8.0).collect();
        let h = of(&values);
        assert_eq!(h.heights.iter().sum::<u64>(), 101);
        assert_eq!((h.heights[0], h.heights[49]), (2, 3), "0 and 0.125 in the first bin; 12.25 to 12.5 in the last");
        assert_eq!((h.values[0], h.values[49]), (0.125, 12.375));
        let one = of(&[2.5, 2.5]);
        assert_eq!((one.heights[25], one.values[0], one.values[49]), (2, 2.5, 2.5));
        assert_eq!(of(&[]), Histogram::default());
    }
}
