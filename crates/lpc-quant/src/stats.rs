//! Streaming per-tensor statistics in bounded memory (min/max, mean of per-sample min/max,
//! per-channel min/max, a self-widening histogram) and the range estimators built on them.

use std::fmt;

/// Number of histogram bins (a multiple of 4, so widening can halve the resolution cleanly).
pub const BINS: usize = 16384;

/// A histogram over `[-r, r]` with `r` a power of two that doubles when a larger value comes
/// in (pairs of bins merge), so its memory is fixed and two histograms always merge exactly.
/// Exact zeros are counted apart: they are frequent (ReLU) and always representable.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    bins: Vec<u64>,
    /// Half-width of the covered range (0 while only zeros were seen).
    r: f32,
    /// Number of exact zeros.
    zeros: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            bins: vec![0; BINS],
            r: 0.0,
            zeros: 0,
        }
    }
}

fn pow2_at_least(x: f32) -> f32 {
    let mut r = 2f32.powi(x.log2().ceil() as i32);
    while r < x {
        r *= 2.0;
    }
    r
}

impl Histogram {
    /// Doubles the covered range: bin i of the old histogram goes to bin B/4 + i/2.
    fn widen(&mut self) {
        let mut nb = vec![0u64; BINS];
        for (i, &c) in self.bins.iter().enumerate() {
            nb[BINS / 4 + i / 2] += c;
        }
        self.bins = nb;
        self.r *= 2.0;
    }

    fn cover(&mut self, max_abs: f32) {
        if max_abs == 0.0 {
            return;
        }
        if self.r == 0.0 {
            self.r = pow2_at_least(max_abs);
        }
        while self.r < max_abs {
            self.widen();
        }
    }

    /// Width of one bin.
    pub fn bin_width(&self) -> f32 {
        2.0 * self.r / BINS as f32
    }

    /// The bin of `x`, computed in f64 where `x + r` is exact (r is a power of two), so the
    /// same value lands in nested bins at every r and widening/merging stays exact.
    fn bin(&self, x: f32) -> usize {
        let r = self.r as f64;
        (((x as f64 + r) / (2.0 * r)) * BINS as f64)
            .floor()
            .clamp(0.0, (BINS - 1) as f64) as usize
    }

    /// Adds finite values.
    pub fn add(&mut self, xs: &[f32]) {
        let m = xs.iter().fold(0f32, |m, x| m.max(x.abs()));
        self.add_bounded(xs, m);
    }

    /// Adds values whose finite ones are bounded by `max_abs`, skipping non-finite ones.
    fn add_bounded(&mut self, xs: &[f32], max_abs: f32) {
        self.cover(max_abs);
        if self.r == 0.0 {
            self.zeros += xs.iter().filter(|&&x| x == 0.0).count() as u64;
            return;
        }
        // Same bins as `bin`: (x + r) / (2r) · B, where 1/(2r) and B are powers of two, so the
        // product below rounds exactly like the quotient. Truncation equals `floor` for the
        // non-negative values and only moves negative ones to 0 (or -0), which the clamp maps
        // to 0 anyway: the same bins without a call to libm's floor.
        let r = self.r as f64;
        let k = BINS as f64 / (2.0 * r);
        let top = BINS as i64 - 1;
        let bin = |x: f32| (((x as f64 + r) * k) as i64).clamp(0, top) as usize;
        if xs.len() < 4 * BINS {
            for &x in xs {
                if x == 0.0 {
                    self.zeros += 1;
                } else if x.is_finite() {
                    self.bins[bin(x)] += 1;
                }
            }
            return;
        }
        // Large inputs, without a branch per element on zero (unpredictable after a ReLU),
        // the bins of a block first (vectorized), then their counts:
        // a block whose values are all finite counts every value, zeros too, which land in
        // bin B/2 ((0 + r)·B/(2r) exactly); the block's zeros are counted apart and taken back
        // out of that bin at the end. Consecutive values go to two copies of the bins (u32,
        // so both fit where the u64 bins did), so a run of equal bins is two chains of
        // increments instead of one. Blocks holding a non-finite value count one by one.
        // `bin` for a finite value, in operations a loop of it vectorizes (no float-to-int
        // conversion): t is clamped to [0, B−1] first (equal to clamping the truncation
        // after, as truncation and floor agree on t ≥ 0 and negative t gives 0 either way);
        // then t + 2^52 lies in [2^52, 2^53), where the ulp is 1, so it is t rounded to the
        // nearest integer, whose value is its bits minus those of 2^52; one less when that
        // rounded up: floor(t).
        const MAGIC: f64 = 4_503_599_627_370_496.0; // 2^52
        let top_f = top as f64;
        let bin_finite = |x: f32| {
            let t = ((x as f64 + r) * k).max(0.0).min(top_f);
            let u = t + MAGIC;
            (u.to_bits() - MAGIC.to_bits()) as u32 - ((u - MAGIC) > t) as u32
        };
        let mut idx = [0u32; 256];
        let mut sub = vec![0u32; 2 * BINS];
        let (lo, hi) = sub.split_at_mut(BINS);
        let mut zeros_binned = 0u64;
        // Pieces below 2^32 elements, so no u32 count can overflow.
        for piece in xs.chunks(u32::MAX as usize) {
            for block in piece.chunks(256) {
                let finite = block.iter().fold(true, |ok, x| {
                    ok & (x.to_bits() & 0x7f80_0000 != 0x7f80_0000)
                });
                if !finite {
                    for &x in block {
                        if x == 0.0 {
                            self.zeros += 1;
                        } else if x.is_finite() {
                            lo[bin(x)] += 1;
                        }
                    }
                    continue;
                }
                let mut z = 0u32;
                for (b, &x) in idx.iter_mut().zip(block) {
                    *b = bin_finite(x);
                    z += (x == 0.0) as u32;
                }
                let idx = &idx[..block.len()];
                let mut pairs = idx.chunks_exact(2);
                for p in &mut pairs {
                    lo[p[0] as usize] += 1;
                    hi[p[1] as usize] += 1;
                }
                for &b in pairs.remainder() {
                    lo[b as usize] += 1;
                }
                zeros_binned += z as u64;
            }
            for ((b, &c0), &c1) in self.bins.iter_mut().zip(lo.iter()).zip(hi.iter()) {
                *b += c0 as u64 + c1 as u64;
            }
            lo.fill(0);
            hi.fill(0);
        }
        self.bins[BINS / 2] -= zeros_binned;
        self.zeros += zeros_binned;
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, o: &Histogram) {
        if o.r == 0.0 {
            self.zeros += o.zeros;
            return;
        }
        let mut o = o.clone();
        if self.r == 0.0 {
            o.zeros += self.zeros;
            *self = o;
            return;
        }
        while self.r < o.r {
            self.widen();
        }
        while o.r < self.r {
            o.widen();
        }
        for (a, b) in self.bins.iter_mut().zip(&o.bins) {
            *a += b;
        }
        self.zeros += o.zeros;
    }

    /// Total count.
    pub fn total(&self) -> u64 {
        self.zeros + self.bins.iter().sum::<u64>()
    }

    /// (bin centre, count) of every non-empty bin, zeros included as (0, count), ascending.
    pub fn points(&self) -> Vec<(f32, u64)> {
        let w = self.bin_width();
        let mut v: Vec<(f32, u64)> = self
            .bins
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| (-self.r + (i as f32 + 0.5) * w, c))
            .collect();
        if self.zeros > 0 {
            let at = v.partition_point(|p| p.0 < 0.0);
            v.insert(at, (0.0, self.zeros));
        }
        v
    }

    /// The q-quantile (0..=1), linearly interpolated inside the bin; 0 for an empty histogram.
    pub fn quantile(&self, q: f64) -> f32 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        let target = q.clamp(0.0, 1.0) * total as f64;
        let w = self.bin_width();
        let mut acc = 0f64;
        let zero_bin = if self.r > 0.0 {
            Some(self.bin(0.0))
        } else {
            None
        };
        for (i, &c) in self.bins.iter().enumerate() {
            let lo = -self.r + i as f32 * w;
            // Zeros sit at the left edge of the bin holding 0.
            if Some(i) == zero_bin && self.zeros > 0 {
                if acc + self.zeros as f64 >= target {
                    return 0.0;
                }
                acc += self.zeros as f64;
            }
            if c > 0 && acc + c as f64 >= target {
                let f = ((target - acc) / c as f64) as f32;
                return lo + f * w;
            }
            acc += c as f64;
        }
        if zero_bin.is_none() {
            return 0.0;
        }
        self.r
    }
}

/// (min, max, count of non-finite values) of the finite values of `xs` ((+inf, -inf) when
/// there are none).
fn finite_range(xs: &[f32]) -> (f32, f32, u64) {
    // Lanes of compare-selects vectorize where `f32::min` (NaN-aware) does not; non-finite
    // values are rare, so they are only counted here and the slice is redone exactly if any.
    const L: usize = 16;
    let (mut lo, mut hi, mut bad) = ([f32::INFINITY; L], [f32::NEG_INFINITY; L], [0u32; L]);
    let chunks = xs.chunks_exact(L);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..L {
            let x = c[i];
            lo[i] = if x < lo[i] { x } else { lo[i] };
            hi[i] = if x > hi[i] { x } else { hi[i] };
            bad[i] += (x.to_bits() & 0x7f80_0000 == 0x7f80_0000) as u32;
        }
    }
    let lanes_bad: u64 = bad.iter().map(|&n| n as u64).sum();
    if lanes_bad == 0 && rest.iter().all(|x| x.is_finite()) {
        let a = lo.iter().chain(rest).fold(f32::INFINITY, |m, &x| m.min(x));
        let b = hi
            .iter()
            .chain(rest)
            .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        return (a, b, 0);
    }
    let (mut a, mut b, mut n) = (f32::INFINITY, f32::NEG_INFINITY, 0u64);
    for &x in xs {
        if x.is_finite() {
            a = a.min(x);
            b = b.max(x);
        } else {
            n += 1;
        }
    }
    (a, b, n)
}

/// Statistics of one tensor over a calibration set.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorStats {
    /// Elements seen (finite).
    pub count: u64,
    /// Non-finite elements seen (NaN or ±Inf; not part of any other statistic).
    pub nonfinite: u64,
    /// Samples seen.
    pub samples: u64,
    /// Global minimum.
    pub min: f32,
    /// Global maximum.
    pub max: f32,
    sum_sample_min: f64,
    sum_sample_max: f64,
    /// Minimum per channel (axis 1; one channel for rank < 2).
    pub channel_min: Vec<f32>,
    /// Maximum per channel.
    pub channel_max: Vec<f32>,
    /// Histogram of all values.
    pub hist: Histogram,
}

impl Default for TensorStats {
    fn default() -> TensorStats {
        TensorStats {
            count: 0,
            nonfinite: 0,
            samples: 0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            sum_sample_min: 0.0,
            sum_sample_max: 0.0,
            channel_min: vec![],
            channel_max: vec![],
            hist: Histogram::default(),
        }
    }
}

impl TensorStats {
    /// Adds one tensor holding `samples` samples along axis 0 (when its leading dimension is
    /// `samples`; otherwise the whole tensor counts as one sample's worth for the per-sample
    /// means, weighted by `samples`).
    pub fn observe(&mut self, data: &[f32], shape: &[usize], samples: usize) {
        let per_sample = shape.first() == Some(&samples) && samples > 0;
        let n_chunks = if per_sample && !data.is_empty() {
            samples
        } else {
            1
        };
        let weight = if per_sample {
            1.0
        } else {
            samples.max(1) as f64
        };
        let channels = if shape.len() >= 2 { shape[1] } else { 1 };
        let inner: usize = if shape.len() >= 2 {
            shape[2..].iter().product()
        } else {
            data.len().max(1)
        };
        if self.channel_min.len() != channels {
            if self.channel_min.is_empty() {
                self.channel_min = vec![f32::INFINITY; channels];
                self.channel_max = vec![f32::NEG_INFINITY; channels];
            } else {
                // Inconsistent channel counts across batches: keep one global channel.
                let (lo, hi) = (self.min, self.max);
                self.channel_min = vec![lo];
                self.channel_max = vec![hi];
            }
        }
        let nch = self.channel_min.len();
        let chunk_len = data.len() / n_chunks;
        // Channel runs of `inner` elements; one run per chunk when there is a single channel.
        let run = if nch == 1 {
            chunk_len.max(1)
        } else {
            inner.max(1)
        };
        let mut max_abs = 0f32;
        let mut finite = 0u64;
        for chunk in data.chunks(chunk_len.max(1)) {
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for (j, part) in chunk.chunks(run).enumerate() {
                let (a, b, bad) = finite_range(part);
                self.nonfinite += bad;
                finite += part.len() as u64 - bad;
                if a <= b {
                    let c = if nch == 1 { 0 } else { j % nch };
                    self.channel_min[c] = self.channel_min[c].min(a);
                    self.channel_max[c] = self.channel_max[c].max(b);
                    lo = lo.min(a);
                    hi = hi.max(b);
                }
            }
            if lo <= hi {
                self.sum_sample_min += lo as f64 * weight;
                self.sum_sample_max += hi as f64 * weight;
                self.min = self.min.min(lo);
                self.max = self.max.max(hi);
                self.samples += weight as u64;
                max_abs = max_abs.max(lo.abs()).max(hi.abs());
            }
        }
        self.count += finite;
        self.hist.add_bounded(data, max_abs);
    }

    /// Adds another set of statistics of the same tensor.
    pub fn merge(&mut self, o: &TensorStats) {
        self.count += o.count;
        self.nonfinite += o.nonfinite;
        self.samples += o.samples;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum_sample_min += o.sum_sample_min;
        self.sum_sample_max += o.sum_sample_max;
        if self.channel_min.is_empty() {
            self.channel_min = o.channel_min.clone();
            self.channel_max = o.channel_max.clone();
        } else if self.channel_min.len() == o.channel_min.len() {
            for c in 0..self.channel_min.len() {
                self.channel_min[c] = self.channel_min[c].min(o.channel_min[c]);
                self.channel_max[c] = self.channel_max[c].max(o.channel_max[c]);
            }
        }
        self.hist.merge(&o.hist);
    }

    /// Mean over samples of each sample's minimum.
    pub fn mean_min(&self) -> f32 {
        if self.samples == 0 {
            0.0
        } else {
            (self.sum_sample_min / self.samples as f64) as f32
        }
    }

    /// Mean over samples of each sample's maximum.
    pub fn mean_max(&self) -> f32 {
        if self.samples == 0 {
            0.0
        } else {
            (self.sum_sample_max / self.samples as f64) as f32
        }
    }
}

/// How an activation range is estimated from its statistics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Estimator {
    /// Global min and max.
    MinMax,
    /// Mean over samples of the per-sample min and max.
    MeanMinMax,
    /// Histogram quantiles `1-q` and `q` (e.g. 0.9999).
    Quantile(f64),
    /// The range minimising the expected squared quantization error (rounding noise inside
    /// the range plus clipping error outside), searched over the histogram.
    Mse,
}

impl fmt::Display for Estimator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Estimator::MinMax => f.write_str("minmax"),
            Estimator::MeanMinMax => f.write_str("mean-minmax"),
            Estimator::Quantile(q) => write!(f, "quantile:{q}"),
            Estimator::Mse => f.write_str("mse"),
        }
    }
}

impl std::str::FromStr for Estimator {
    type Err = String;
    fn from_str(s: &str) -> Result<Estimator, String> {
        match s {
            "minmax" => Ok(Estimator::MinMax),
            "mean-minmax" => Ok(Estimator::MeanMinMax),
            "mse" => Ok(Estimator::Mse),
            _ => match s.strip_prefix("quantile:").map(str::parse::<f64>) {
                Some(Ok(q)) if q > 0.5 && q <= 1.0 => Ok(Estimator::Quantile(q)),
                _ => Err(format!("unknown range estimator '{s}' (minmax, mean-minmax, mse, quantile:Q with 0.5<Q<=1)")),
            },
        }
    }
}

/// The shape of the quantization grid a range is estimated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grid {
    /// `[0, hi]`, 256 levels.
    Unsigned,
    /// `[-a, a·127/128]`, 256 levels.
    Symmetric,
    /// `[lo, hi]`, 256 levels.
    Asymmetric,
}

/// Prefix sums of a histogram's points for O(1) clipping-error queries.
struct Prefix {
    xs: Vec<f64>,
    n: Vec<f64>,
    s1: Vec<f64>,
    s2: Vec<f64>,
    zeros: f64,
}

impl Prefix {
    fn new(h: &Histogram) -> Prefix {
        let pts: Vec<(f32, u64)> = h.points().into_iter().filter(|p| p.0 != 0.0).collect();
        let mut p = Prefix {
            xs: vec![],
            n: vec![0.0],
            s1: vec![0.0],
            s2: vec![0.0],
            zeros: h.zeros as f64,
        };
        for (x, c) in pts {
            let (x, c) = (x as f64, c as f64);
            p.xs.push(x);
            p.n.push(p.n.last().unwrap_or(&0.0) + c);
            p.s1.push(p.s1.last().unwrap_or(&0.0) + c * x);
            p.s2.push(p.s2.last().unwrap_or(&0.0) + c * x * x);
        }
        p
    }

    /// Expected squared error of quantizing with levels `lo + k·s`, k = 0..=255.
    fn error(&self, lo: f64, hi: f64) -> f64 {
        let s = (hi - lo) / 255.0;
        let a = self.xs.partition_point(|&x| x < lo);
        let b = self.xs.partition_point(|&x| x <= hi);
        let last = self.xs.len();
        let below = (self.s2[a] - 2.0 * lo * self.s1[a]) + lo * lo * self.n[a];
        let (n_above, s1_above, s2_above) = (
            self.n[last] - self.n[b],
            self.s1[last] - self.s1[b],
            self.s2[last] - self.s2[b],
        );
        let above = s2_above - 2.0 * hi * s1_above + hi * hi * n_above;
        let inside = (self.n[b] - self.n[a]) * s * s / 12.0;
        // Zeros are exact when 0 is inside the range, clipped otherwise.
        let z = if lo > 0.0 {
            self.zeros * lo * lo
        } else if hi < 0.0 {
            self.zeros * hi * hi
        } else {
            0.0
        };
        below + above + inside + z
    }
}

/// Estimates `(lo, hi)` for `grid` (for `Unsigned`, lo is 0; for `Symmetric`, lo = -a and hi = a,
/// before the 127/128 of the grid). Returns `None` when the statistics hold no finite value.
pub fn estimate(stats: &TensorStats, est: Estimator, grid: Grid) -> Option<(f32, f32)> {
    if stats.count == 0 {
        return None;
    }
    let (lo, hi) = match est {
        Estimator::MinMax => (stats.min, stats.max),
        Estimator::MeanMinMax => (stats.mean_min(), stats.mean_max()),
        Estimator::Quantile(q) => (
            stats.hist.quantile(1.0 - q).max(stats.min),
            stats.hist.quantile(q).min(stats.max),
        ),
        Estimator::Mse => return Some(mse_search(stats, grid)),
    };
    Some(match grid {
        Grid::Unsigned => (0.0, hi.max(0.0)),
        Grid::Symmetric => {
            let a = lo.abs().max(hi.abs());
            (-a, a)
        }
        Grid::Asymmetric => (lo.min(0.0), hi.max(0.0)),
    })
}

fn mse_search(stats: &TensorStats, grid: Grid) -> (f32, f32) {
    let p = Prefix::new(&stats.hist);
    let (mn, mx) = (stats.min.min(0.0) as f64, stats.max.max(0.0) as f64);
    const STEPS: usize = 200;
    let frac = |i: usize| 0.1 + 0.9 * i as f64 / STEPS as f64;
    match grid {
        Grid::Unsigned => {
            let mut best = (f64::INFINITY, mx);
            for i in 0..=STEPS {
                let hi = mx * frac(i);
                let e = p.error(0.0, hi);
                if e < best.0 {
                    best = (e, hi);
                }
            }
            (0.0, best.1 as f32)
        }
        Grid::Symmetric => {
            let m = mn.abs().max(mx);
            let mut best = (f64::INFINITY, m);
            for i in 0..=STEPS {
                let a = m * frac(i);
                let e = p.error(-a, a * 127.0 / 128.0);
                if e < best.0 {
                    best = (e, a);
                }
            }
            (-(best.1 as f32), best.1 as f32)
        }
        Grid::Asymmetric => {
            const S2: usize = 60;
            let f2 = |i: usize| 0.1 + 0.9 * i as f64 / S2 as f64;
            let mut best = (f64::INFINITY, mn, mx);
            for i in 0..=S2 {
                for j in 0..=S2 {
                    let (lo, hi) = (mn * f2(i), mx * f2(j));
                    if hi - lo <= 0.0 {
                        continue;
                    }
                    let e = p.error(lo, hi);
                    if e < best.0 {
                        best = (e, lo, hi);
                    }
                }
            }
            (best.1 as f32, best.2 as f32)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats_of(xs: &[f32], shape: &[usize], n: usize) -> TensorStats {
        let mut s = TensorStats::default();
        s.observe(xs, shape, n);
        s
    }

    #[test]
    fn minmax_and_mean_per_sample() {
        let s = stats_of(&[1.0, -2.0, 3.0, 0.0, 5.0, -1.0], &[2, 3], 2);
        assert_eq!((s.min, s.max, s.samples, s.count), (-2.0, 5.0, 2, 6));
        assert_eq!(s.mean_min(), -1.5);
        assert_eq!(s.mean_max(), 4.0);
        assert_eq!(
            estimate(&s, Estimator::MinMax, Grid::Asymmetric),
            Some((-2.0, 5.0))
        );
        assert_eq!(
            estimate(&s, Estimator::MeanMinMax, Grid::Symmetric),
            Some((-4.0, 4.0))
        );
        assert_eq!(
            estimate(&s, Estimator::MinMax, Grid::Unsigned),
            Some((0.0, 5.0))
        );
        assert_eq!(
            estimate(&TensorStats::default(), Estimator::MinMax, Grid::Unsigned),
            None
        );
    }

    #[test]
    fn large_inputs_bin_like_small_ones() {
        // Zeros (both signs) in runs and scattered, NaN and ±inf inside some blocks, negative
        // and positive values, and an odd length: one big add equals many small ones.
        let n = 9 * BINS + 3;
        let xs: Vec<f32> = (0..n)
            .map(|i| match i % 1000 {
                0 => f32::NAN,
                1 if i % 3000 == 1 => f32::INFINITY,
                2 if i % 5000 == 2 => f32::NEG_INFINITY,
                100..=400 => 0.0,
                401 => -0.0,
                _ if i % 7 == 0 => 0.0,
                _ => ((i as f32) * 0.013).sin() * 3.7 + if i % 11 == 0 { 0.5 } else { 0.0 },
            })
            .collect();
        let m = xs
            .iter()
            .filter(|x| x.is_finite())
            .fold(0f32, |m, x| m.max(x.abs()));
        let mut big = Histogram::default();
        big.add_bounded(&xs, m);
        let mut small = Histogram::default();
        for piece in xs.chunks(1000) {
            small.add_bounded(piece, m);
        }
        assert_eq!(big, small);
        let finite = xs.iter().filter(|x| x.is_finite()).count() as u64;
        assert_eq!(big.total(), finite);
        assert!(big.zeros > 0 && big.bins[BINS / 2] < big.zeros);
    }

    #[test]
    fn per_channel_and_nonfinite() {
        // [1, 2 channels, 2 elements]
        let s = stats_of(&[1.0, 2.0, -3.0, f32::NAN], &[1, 2, 2], 1);
        assert_eq!(s.channel_min, vec![1.0, -3.0]);
        assert_eq!(s.channel_max, vec![2.0, -3.0]);
        assert_eq!((s.nonfinite, s.count), (1, 3));
    }

    #[test]
    fn merge_equals_one_pass() {
        let a: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let b: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.11).cos() * 40.0).collect();
        let mut all = a.clone();
        all.extend(&b);
        let one = stats_of(&all, &[2, 1000], 2);
        let mut m = stats_of(&a, &[1, 1000], 1);
        m.merge(&stats_of(&b, &[1, 1000], 1));
        let d: Vec<(usize, u64, u64)> = one
            .hist
            .bins
            .iter()
            .zip(&m.hist.bins)
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| (i, *a, *b))
            .collect();
        assert!(d.is_empty(), "{d:?} r {} {}", one.hist.r, m.hist.r);
        assert_eq!(
            (one.min, one.max, one.mean_max()),
            (m.min, m.max, m.mean_max())
        );
    }

    #[test]
    fn histogram_quantiles() {
        let xs: Vec<f32> = (1..=10000).map(|i| i as f32 / 10000.0).collect();
        let s = stats_of(&xs, &[1, 10000], 1);
        for q in [0.1, 0.5, 0.9, 0.999] {
            let v = s.hist.quantile(q);
            assert!((v as f64 - q).abs() < 1e-3, "q {q}: {v}");
        }
        // Widening keeps counts: add a value 100× larger.
        let mut h = s.hist.clone();
        h.add(&[100.0]);
        assert_eq!(h.total(), 10001);
        assert!(h.quantile(0.5) > 0.49 && h.quantile(0.5) < 0.52);
        // Zeros are counted and sit at 0.
        let z = stats_of(&[0.0, 0.0, 0.0, 1.0], &[1, 4], 1);
        assert_eq!(z.hist.quantile(0.5), 0.0);
        assert!(z.hist.quantile(1.0) >= 1.0);
        assert_eq!(
            "quantile:0.9999".parse::<Estimator>(),
            Ok(Estimator::Quantile(0.9999))
        );
        assert!("quantile:2".parse::<Estimator>().is_err());
    }

    #[test]
    fn mse_clips_outliers_but_not_bulk() {
        // A bulk of 100k values in [-1, 1] and one outlier at 100: rounding noise over the bulk
        // (∝ a²) trades against the outlier's clipping error ((100-a)²); the optimum is near 70.
        // A uniform distribution keeps (nearly) its full range.
        let mut xs: Vec<f32> = (0..100000)
            .map(|i| ((i as f32 * 0.618).fract() * 2.0 - 1.0) * ((i % 7) as f32 / 7.0))
            .collect();
        xs.push(100.0);
        let s = stats_of(&xs, &[1, xs.len()], 1);
        let (_, hi) = estimate(&s, Estimator::Mse, Grid::Symmetric).unwrap();
        assert!(hi > 50.0 && hi < 90.0, "{hi}");
        let u: Vec<f32> = (0..100000)
            .map(|i| (i as f32 * 0.618).fract() * 4.0)
            .collect();
        let s = stats_of(&u, &[1, u.len()], 1);
        let (lo, hi) = estimate(&s, Estimator::Mse, Grid::Unsigned).unwrap();
        assert_eq!(lo, 0.0);
        assert!(hi > 3.9 && hi <= 4.0, "{hi}");
        let (lo, hi) = estimate(&s, Estimator::Mse, Grid::Asymmetric).unwrap();
        assert!(lo <= 0.0 && hi > 3.9, "{lo} {hi}");
    }
}
