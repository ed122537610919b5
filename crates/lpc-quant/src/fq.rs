//! FakeQuantize arithmetic (OpenVINO FakeQuantize-1) and the quantization parameters lpc picks.

use crate::QuantError;
use lpc_ir::quant::{level_index, range_scale, spans_min_range, steps};
use lpc_ir::Tensor;

/// FakeQuantize of one element, exactly as OpenVINO's FakeQuantize-1 defines it, in f32:
/// [`lpc_ref::fake_quantize_one`], the oracle's own formula. `levels` must be at least 2
/// (checked by [`check_levels`]); NaN stays NaN.
pub fn fake_quantize(x: f32, il: f32, ih: f32, ol: f32, oh: f32, levels: u32) -> f32 {
    lpc_ref::fake_quantize_one(x, [il, ih, ol, oh], steps(levels))
}

/// Rejects level counts FakeQuantize cannot have (fewer than 2 or more than 65536).
pub fn check_levels(levels: u32) -> Result<(), QuantError> {
    if (2..=65536).contains(&levels) {
        Ok(())
    } else {
        Err(QuantError::Levels(levels))
    }
}

/// Per-tensor 8-bit activation quantizer: the FakeQuantize range `[lo, hi]` (input range equal
/// to output range) with 256 levels, chosen so that 0 is exactly one of the levels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActQuant {
    /// Lowest level.
    pub lo: f32,
    /// Highest level.
    pub hi: f32,
    /// Stored as i8 (true) or u8 (false) in QDQ form.
    pub signed: bool,
}

impl ActQuant {
    /// Number of levels of every activation quantizer.
    pub const LEVELS: u32 = 256;

    /// u8 `[0, hi]`, zero point 0. `hi` must be positive and finite.
    pub fn unsigned(hi: f32) -> ActQuant {
        ActQuant {
            lo: 0.0,
            hi,
            signed: false,
        }
    }

    /// i8 symmetric `[-a, a·127/128]`: scale a/128, zero point 0. `a` positive and finite.
    pub fn symmetric(a: f32) -> ActQuant {
        ActQuant {
            lo: -a,
            hi: a / 128.0 * 127.0,
            signed: true,
        }
    }

    /// Asymmetric `[lo, hi]` (lo < 0 < hi) widened so the zero point is an integer: of the two
    /// integer zero points either side of `-lo/((hi-lo)/255)`, the one whose smallest covering
    /// scale is smaller (the scale grows by at most a factor 1 + 1/min(zp, 255 − zp)). Shifting the range
    /// instead would put values that sit on the calibrated grid exactly between two levels —
    /// e.g. pixels normalized to [-1, 1] — where every runtime rounds them its own way.
    /// If f32 rounding would make FakeQuantize(0) miss 0 by an ulp, the scale is moved up by a
    /// few ulps until 0 maps to exactly 0 (the fold stage needs that to use integer ops).
    pub fn asymmetric(lo: f32, hi: f32, signed: bool) -> ActQuant {
        let z = -lo / ((hi - lo) / 255.0);
        let covering = |zp: f32| (-lo / zp).max(hi / (255.0 - zp));
        let (zp, s0) = [z.floor(), z.ceil()]
            .into_iter()
            .filter(|zp| (1.0..=254.0).contains(zp))
            .map(|zp| (zp, covering(zp)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or_else(|| {
                let zp = z.round_ties_even().clamp(1.0, 254.0);
                (zp, covering(zp))
            });
        let at = |s: f32| {
            let lo = -zp * s;
            ActQuant {
                lo,
                hi: lo + 255.0 * s,
                signed,
            }
        };
        let mut s = s0;
        for _ in 0..64 {
            let q = at(s);
            if q.apply(0.0) == 0.0 {
                return q;
            }
            s = f32::from_bits(s.to_bits() + 1);
        }
        at(s0)
    }

    /// Scale of the QDQ form.
    pub fn scale(&self) -> f32 {
        range_scale(self.lo, self.hi, Self::LEVELS)
    }

    /// Zero point of the QDQ form, in the stored type (i8 range when signed, u8 otherwise).
    /// Rounded without `lpc_ir::quant::zero_level`'s 1e-3 check: every constructor puts 0 on
    /// a level.
    pub fn zero_point(&self) -> i32 {
        let zp_u = (-self.lo / self.scale()).round_ties_even() as i32;
        if self.signed {
            zp_u - 128
        } else {
            zp_u
        }
    }

    /// FakeQuantize of one element with this quantizer.
    pub fn apply(&self, x: f32) -> f32 {
        fake_quantize(x, self.lo, self.hi, self.lo, self.hi, Self::LEVELS)
    }
}

/// Per-output-channel symmetric 8-bit weights: levels 255, narrow range `[-m_c, m_c]` (i8
/// values -127..=127, scale m_c/127, zero point 0).
#[derive(Clone, Debug, PartialEq)]
pub struct WeightQuant {
    /// Axis of the output channels in the weight tensor.
    pub axis: usize,
    /// Range `m_c` per channel (positive).
    pub max_abs: Vec<f32>,
}

impl WeightQuant {
    /// Number of levels of every weight quantizer.
    pub const LEVELS: u32 = 255;

    /// Ranges from the weights' per-channel |w|max. A channel whose weights are numerically
    /// zero (all zero or subnormal, `2·max|w|` below `lpc_ir::quant::MIN_RANGE`) gets range 1: its weights
    /// quantize to exactly 0 (they differ from 0 by less than 1.4e-17). Non-finite weights are
    /// an error.
    pub fn from_weights(w: &Tensor, axis: usize, what: &str) -> Result<WeightQuant, QuantError> {
        let v = w.as_f32().map_err(|_| QuantError::NotF32 {
            what: format!("{what}: weights"),
            dtype: w.dtype(),
        })?;
        if axis >= w.rank().max(1) {
            return Err(QuantError::ChannelAxis {
                what: what.to_string(),
                axis,
                shape: w.shape().to_vec(),
            });
        }
        let shape = if w.rank() == 0 {
            vec![1]
        } else {
            w.shape().to_vec()
        };
        let c = shape[axis];
        let inner: usize = shape[axis + 1..].iter().product();
        let mut m = vec![0f32; c];
        for (i, &x) in v.iter().enumerate() {
            if !x.is_finite() {
                return Err(QuantError::NonFiniteWeight {
                    what: what.to_string(),
                    index: i,
                    value: x,
                });
            }
            let ch = (i / inner.max(1)) % c.max(1);
            m[ch] = m[ch].max(x.abs());
        }
        for x in &mut m {
            if !spans_min_range(-*x, *x) {
                *x = 1.0;
            }
        }
        Ok(WeightQuant { axis, max_abs: m })
    }

    fn for_each(&self, w: &Tensor, mut f: impl FnMut(usize, f32, f32)) -> Result<(), QuantError> {
        let v = w.as_f32().map_err(QuantError::from)?;
        let shape = if w.rank() == 0 {
            vec![1]
        } else {
            w.shape().to_vec()
        };
        let c = shape[self.axis];
        let inner: usize = shape[self.axis + 1..].iter().product();
        for (i, &x) in v.iter().enumerate() {
            let m = self.max_abs[(i / inner.max(1)) % c.max(1)];
            f(i, x, m);
        }
        Ok(())
    }

    /// The fake-quantized weights (what the FakeQuantize node computes).
    pub fn apply(&self, w: &Tensor) -> Result<Tensor, QuantError> {
        let mut out = vec![0f32; w.len()];
        self.for_each(w, |i, x, m| {
            out[i] = fake_quantize(x, -m, m, -m, m, Self::LEVELS)
        })?;
        Tensor::from_f32(w.shape(), out).map_err(QuantError::from)
    }

    /// The i8 weights (-127..=127) of the QDQ form: the FakeQuantize level index minus 127.
    pub fn integers(&self, w: &Tensor) -> Result<Tensor, QuantError> {
        let mut out = vec![0i8; w.len()];
        self.for_each(w, |i, x, m| {
            let k = level_index(x, -m, m, Self::LEVELS);
            out[i] = (k - 127.0) as i8;
        })?;
        Tensor::from_i8(w.shape(), out).map_err(QuantError::from)
    }

    /// Per-channel scales m_c/127 of the QDQ form.
    pub fn scales(&self) -> Vec<f32> {
        self.max_abs
            .iter()
            .map(|&m| range_scale(-m, m, Self::LEVELS))
            .collect()
    }

    /// The FakeQuantize range tensors (`-m`, `m`), shaped to broadcast against the weights.
    pub fn range_tensors(&self, rank: usize) -> (Tensor, Tensor) {
        let mut shape = vec![1usize; rank.max(1)];
        shape[self.axis] = self.max_abs.len();
        let lo: Vec<f32> = self.max_abs.iter().map(|m| -m).collect();
        let hi = self.max_abs.clone();
        (
            Tensor::from_f32(&shape, lo).expect("shape matches channel count"),
            Tensor::from_f32(&shape, hi).expect("shape matches channel count"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lpc_ir::quant::MIN_RANGE;

    #[test]
    fn boundaries_and_levels() {
        // x on the boundaries: the low one maps to ol, the high one is inside and maps to oh.
        assert_eq!(fake_quantize(0.0, 0.0, 1.0, 0.0, 1.0, 256), 0.0);
        assert_eq!(fake_quantize(1.0, 0.0, 1.0, 0.0, 1.0, 256), 1.0);
        assert_eq!(fake_quantize(-5.0, 0.0, 1.0, -2.0, 3.0, 256), -2.0);
        assert_eq!(fake_quantize(5.0, 0.0, 1.0, -2.0, 3.0, 256), 3.0);
        // levels 2: a threshold at the midpoint, ties to even (0.5 → 0).
        assert_eq!(fake_quantize(0.5, 0.0, 1.0, 0.0, 1.0, 2), 0.0);
        assert_eq!(fake_quantize(0.51, 0.0, 1.0, 0.0, 1.0, 2), 1.0);
        // levels 255 and 256 step sizes.
        assert_eq!(
            fake_quantize(0.3, -1.0, 1.0, -1.0, 1.0, 255),
            (1.3f32 / 2.0 * 254.0).round() / 254.0 * 2.0 - 1.0
        );
        let y = fake_quantize(0.3, 0.0, 255.0, 0.0, 255.0, 256);
        assert_eq!(y, 0.0);
        assert_eq!(fake_quantize(0.6, 0.0, 255.0, 0.0, 255.0, 256), 1.0);
        // ties to even: 2.5 → 2, 3.5 → 4.
        assert_eq!(fake_quantize(2.5, 0.0, 255.0, 0.0, 255.0, 256), 2.0);
        assert_eq!(fake_quantize(3.5, 0.0, 255.0, 0.0, 255.0, 256), 4.0);
        assert!(
            check_levels(1).is_err() && check_levels(65537).is_err() && check_levels(2).is_ok()
        );
    }

    #[test]
    fn inverted_range() {
        // il > ih: x <= ih → ol; x > il → oh; in between the formula with a negative span.
        assert_eq!(fake_quantize(-1.0, 1.0, 0.0, 0.0, 1.0, 256), 0.0);
        assert_eq!(fake_quantize(2.0, 1.0, 0.0, 0.0, 1.0, 256), 1.0);
        let y = fake_quantize(0.25, 1.0, 0.0, 0.0, 1.0, 256);
        assert_eq!(y, (0.75f32 * 255.0).round() / 255.0);
        // Empty range il == ih: a step function.
        assert_eq!(fake_quantize(0.0, 0.0, 0.0, -1.0, 1.0, 256), -1.0);
        assert_eq!(fake_quantize(0.1, 0.0, 0.0, -1.0, 1.0, 256), 1.0);
        assert!(fake_quantize(f32::NAN, 0.0, 1.0, 0.0, 1.0, 256).is_nan());
    }

    #[test]
    fn normalized_pixels_are_not_ties() {
        // (p/255 - 0.5)/0.5 spans [-1, 1]; shifting that range to an integer zero point would
        // put every pixel exactly half a step from two levels.
        let q = ActQuant::asymmetric(-1.0, 1.0, true);
        for p in 0..=255 {
            let x = (p as f32 / 255.0 - 0.5) / 0.5;
            let t = (x - q.lo) / q.scale();
            assert!(
                (t - t.floor() - 0.5).abs() > 1e-3,
                "pixel {p} at {t} levels"
            );
            assert!(x >= q.lo && x <= q.hi);
        }
    }

    #[test]
    fn zero_is_exact() {
        let q = ActQuant::asymmetric(-0.958, 2.181, true);
        // 0 is exactly a level (an integer level index); its f32 value is 0 up to rounding.
        assert!(q.apply(0.0).abs() < 1e-4 * q.scale(), "{}", q.apply(0.0));
        assert!(
            (-q.lo / q.scale())
                .fract()
                .abs()
                .min(1.0 - (-q.lo / q.scale()).fract().abs())
                < 1e-4
        );
        // Widened, not shifted: both ends inside, the scale within one part in 255·zp.
        assert!(q.lo <= -0.958 && q.hi >= 2.181, "{q:?}");
        assert!(q.scale() >= (2.181 + 0.958) / 255.0);
        assert!(q.scale() < (2.181 + 0.958) / 255.0 * (1.0 + 1.0 / 70.0));
        assert_eq!(q.zero_point(), (0.958f32 / q.scale()).round() as i32 - 128);
        let s = ActQuant::symmetric(2.0);
        assert_eq!(
            (s.apply(0.0), s.zero_point(), s.scale()),
            (0.0, 0, 2.0 / 128.0)
        );
        let u = ActQuant::unsigned(6.0);
        assert_eq!((u.apply(0.0), u.zero_point()), (0.0, 0));
        // QDQ and FQ agree: dq(q(x)) = (clamp(round(x/s)+zp) - zp)*s.
        for q in [q, s, u] {
            let (qmin, qmax) = if q.signed { (-128, 127) } else { (0, 255) };
            for k in -400..400 {
                let x = k as f32 * 0.0123;
                let qi =
                    ((x / q.scale()).round_ties_even() as i32 + q.zero_point()).clamp(qmin, qmax);
                let dq = (qi - q.zero_point()) as f32 * q.scale();
                assert!(
                    (dq - q.apply(x)).abs() < 1e-5,
                    "{x}: {dq} vs {}",
                    q.apply(x)
                );
            }
        }
    }

    #[test]
    fn weights_per_channel() {
        let w = Tensor::from_f32(&[2, 3], vec![0.5, -1.0, 0.25, 0.0, 0.0, 0.0]).unwrap();
        let q = WeightQuant::from_weights(&w, 0, "w").unwrap();
        assert_eq!(q.max_abs, vec![1.0, 1.0]);
        let i = q.integers(&w).unwrap();
        // 0.5 sits at level 190.5 of 0..254: ties to even gives 190, i.e. 63 (not round(0.5·127) = 64).
        assert_eq!(i.as_i8().unwrap(), &[63, -127, 32, 0, 0, 0]);
        let f = q.apply(&w).unwrap();
        let s = q.scales();
        for (k, (&a, &b)) in f
            .as_f32()
            .unwrap()
            .iter()
            .zip(i.as_i8().unwrap())
            .enumerate()
        {
            assert!((a - b as f32 * s[k / 3]).abs() < 1e-6);
        }
        let bad = Tensor::from_f32(&[1], vec![f32::NAN]).unwrap();
        assert!(WeightQuant::from_weights(&bad, 0, "w").is_err());
    }

    /// Every channel's range gives integer parameters (`lpc_ir::quant`, what the QDQ export
    /// checks), and numerically zero weights quantize to exact zeros.
    fn check_weights(w: &Tensor) -> WeightQuant {
        let q = WeightQuant::from_weights(w, 0, "w").unwrap();
        let (lo, hi) = q.range_tensors(w.rank());
        let r = lpc_ir::quant::FqRanges::new([&lo, &hi, &lo, &hi], WeightQuant::LEVELS, None);
        let p = r.unwrap().qparams().unwrap();
        assert!(p.zero_level.iter().all(|&z| z == 127), "{p:?}");
        let (f, i) = (q.apply(w).unwrap(), q.integers(w).unwrap());
        for (c, &m) in q.max_abs.iter().enumerate() {
            let inner = w.len() / q.max_abs.len();
            let vals = &w.as_f32().unwrap()[c * inner..(c + 1) * inner];
            if vals.iter().all(|&x| 2.0 * x.abs() < MIN_RANGE) {
                assert_eq!(m, 1.0);
                assert!(f.as_f32().unwrap()[c * inner..(c + 1) * inner]
                    .iter()
                    .all(|&x| x == 0.0));
                assert!(i.as_i8().unwrap()[c * inner..(c + 1) * inner]
                    .iter()
                    .all(|&x| x == 0));
            }
        }
        q
    }

    #[test]
    fn degenerate_weights() {
        let sub = 3.1e-39f32;
        // All zero, all subnormal (both signs), a channel of each beside a normal one.
        check_weights(&Tensor::from_f32(&[2, 2], vec![0.0; 4]).unwrap());
        let q = check_weights(&Tensor::from_f32(&[2, 2], vec![sub, -sub, -sub, sub]).unwrap());
        assert_eq!(q.max_abs, vec![1.0, 1.0]);
        let w = Tensor::from_f32(&[3, 2], vec![sub, -sub, 0.0, 0.0, 0.5, -0.25]).unwrap();
        assert_eq!(check_weights(&w).max_abs, vec![1.0, 1.0, 0.5]);
        // Constant non-zero and a single value: the value itself is the range (exact).
        let w = Tensor::from_f32(&[2, 3], vec![0.7; 6]).unwrap();
        let q = check_weights(&w);
        assert_eq!(q.max_abs, vec![0.7, 0.7]);
        assert_eq!(q.apply(&w).unwrap().to_f32_vec(), vec![0.7; 6]);
        let w = Tensor::from_f32(&[1], vec![-1e-10]).unwrap();
        let q = check_weights(&w);
        assert_eq!(
            (q.max_abs[0], q.apply(&w).unwrap().to_f32_vec()[0]),
            (1e-10, -1e-10)
        );
        // Tiny but normal weights keep their own range down to MIN_RANGE.
        let w = Tensor::from_f32(&[1], vec![MIN_RANGE]).unwrap();
        assert_eq!(check_weights(&w).max_abs, vec![MIN_RANGE]);
    }
}
