//! Quantization parameters read off FakeQuantize ranges, computed once for every stage.
//!
//! Scale, zero point, axis and level index of a range, and a layer's accumulator scales and
//! integer bias. All of it is f32 arithmetic, as the FakeQuantize it describes:
//! `scale = (hi − lo)/(levels − 1)`, zero point `−lo/scale` (an integer level within 1e-3),
//! level index `round_half_even((x − lo)/(hi − lo)·(levels − 1))` clamped to `0..=levels−1`.
//! The export (lpc-onnx), the fold helpers (lpc-fold) and post-training quantization
//! (lpc-quant) all compute them here.

use crate::{DType, Graph, NodeId, Op, Tensor, ValueRef};

/// Why FakeQuantize ranges give no quantization parameters.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum QParamError {
    /// The node is not a FakeQuantize.
    #[error("not a FakeQuantize node")]
    NotFakeQuantize,
    /// A range input (slot 1..=4) is missing or not a constant.
    #[error("FakeQuantize range input {slot} is not a constant")]
    NotConstant {
        /// The input slot.
        slot: usize,
    },
    /// The input range is not the output range (values), or low and high differ in shape.
    #[error("input and output ranges differ")]
    RangesDiffer,
    /// Fewer than 2 levels.
    #[error("levels {0}: FakeQuantize needs at least 2")]
    Levels(u32),
    /// More than one range element, but not along exactly one axis.
    #[error("range shape {shape:?} is neither per-tensor nor per-axis")]
    NotPerAxis {
        /// Shape of the range tensors.
        shape: Vec<usize>,
    },
    /// `hi <= lo` (or NaN).
    #[error("empty or inverted range [{lo}, {hi}]")]
    EmptyRange {
        /// Low end.
        lo: f32,
        /// High end.
        hi: f32,
    },
    /// The scale overflowed or underflowed (not finite and positive).
    #[error("range [{lo}, {hi}] has scale {scale}, not a finite positive number")]
    BadScale {
        /// Low end.
        lo: f32,
        /// High end.
        hi: f32,
        /// Its scale.
        scale: f32,
    },
    /// `−lo/scale` is not (within 1e-3) an integer in `0..=levels−1`.
    #[error("zero point {zero} of range [{lo}, {hi}] is not an integer level")]
    NotALevel {
        /// `−lo/scale`.
        zero: f32,
        /// Low end.
        lo: f32,
        /// High end.
        hi: f32,
    },
}

/// `levels − 1` as f32: the number of steps between the lowest and the highest level.
pub fn steps(levels: u32) -> f32 {
    levels.saturating_sub(1) as f32
}

/// The scale of a range: `(hi − lo)/(levels − 1)`, unchecked.
pub fn range_scale(lo: f32, hi: f32, levels: u32) -> f32 {
    (hi - lo) / steps(levels)
}

/// The narrowest range lpc quantizes over: 2^-55 (2.8e-17). Any quantizer of at most 256
/// levels covering such a range has a scale of at least 2^-63, so the product of two scales —
/// a layer's accumulator unit `s_x·s_w` — is still a normal f32 (a subnormal scale has too
/// few bits for `−lo/scale` to be an integer level). Values spanning less are numerically
/// zero to 8-bit integers: lpc-quant gives such a tensor a fixed range in which its values
/// quantize to exactly 0 (see [`spans_min_range`]).
pub const MIN_RANGE: f32 = 2.7755576e-17;

/// True when `[lo, hi]` spans at least [`MIN_RANGE`] with a finite width (false for NaN, for
/// inverted ranges and for widths that overflow f32).
pub fn spans_min_range(lo: f32, hi: f32) -> bool {
    let w = hi - lo;
    w.is_finite() && w >= MIN_RANGE
}

/// True for a scale an integer form can use: finite and positive.
pub fn is_valid_scale(scale: f32) -> bool {
    scale.is_finite() && scale > 0.0
}

/// The level (`0..=levels−1`) at which 0 sits in a range starting at `lo` with `scale`:
/// `−lo/scale` rounded, when it is within 1e-3 of that integer; `None` otherwise (0 is then
/// not exactly representable).
pub fn zero_level(lo: f32, scale: f32, levels: u32) -> Option<i32> {
    let z = -lo / scale;
    let r = z.round_ties_even();
    if (z - r).abs() > 1e-3 || !(0.0..=steps(levels)).contains(&r) {
        return None;
    }
    Some(r as i32)
}

/// The level index of `x` in `[lo, hi]` (`lo < hi`): 0 at or below `lo`, `levels − 1` above
/// `hi`, otherwise `(x − lo)/(hi − lo)·(levels − 1)` rounded half to even (the integer that
/// FakeQuantize's rounding picks). NaN stays NaN.
pub fn level_index(x: f32, lo: f32, hi: f32, levels: u32) -> f32 {
    let steps = steps(levels);
    if x <= lo {
        0.0
    } else if x > hi {
        steps
    } else {
        ((x - lo) / (hi - lo) * steps).round_ties_even()
    }
}

/// The constant ranges of one FakeQuantize whose input range equals its output range
/// (`il == ol`, `ih == oh`, low and high of one shape).
#[derive(Clone, Debug, PartialEq)]
pub struct FqRanges {
    /// Levels of the FakeQuantize.
    pub levels: u32,
    /// Low ends, one per range element.
    pub lo: Vec<f32>,
    /// High ends.
    pub hi: Vec<f32>,
    /// Shape of the range tensors.
    pub shape: Vec<usize>,
    /// Rank of the quantized input, when known (range dims align with its trailing dims).
    pub input_rank: Option<usize>,
}

impl FqRanges {
    /// From the four range tensors `[il, ih, ol, oh]` and the levels.
    pub fn new(
        ranges: [&Tensor; 4],
        levels: u32,
        input_rank: Option<usize>,
    ) -> Result<FqRanges, QParamError> {
        let [il, ih, ol, oh] = ranges;
        let (lo, hi) = (il.to_f32_vec(), ih.to_f32_vec());
        if lo != ol.to_f32_vec() || hi != oh.to_f32_vec() || il.shape() != ih.shape() {
            return Err(QParamError::RangesDiffer);
        }
        Ok(FqRanges {
            levels,
            lo,
            hi,
            shape: il.shape().to_vec(),
            input_rank,
        })
    }

    /// The ranges of FakeQuantize node `n` (constant range inputs).
    pub fn of_node(g: &Graph, n: NodeId) -> Result<FqRanges, QParamError> {
        let Op::FakeQuantize { levels } = g.node(n).op else {
            return Err(QParamError::NotFakeQuantize);
        };
        let ins = g.node_inputs(n);
        let get = |slot: usize| {
            ins.get(slot)
                .copied()
                .flatten()
                .and_then(|v| g.const_value(v))
                .ok_or(QParamError::NotConstant { slot })
        };
        let (il, ih, ol, oh) = (get(1)?, get(2)?, get(3)?, get(4)?);
        let input_rank = ins
            .first()
            .copied()
            .flatten()
            .and_then(|x| input_rank(g, x));
        FqRanges::new([il, ih, ol, oh], levels, input_rank)
    }

    /// The scale of each range element ([`range_scale`]), unchecked.
    pub fn scales(&self) -> Vec<f32> {
        let levels = self.levels;
        self.lo
            .iter()
            .zip(&self.hi)
            .map(|(&l, &h)| range_scale(l, h, levels))
            .collect()
    }

    /// The quantized input's axis the ranges vary along (`None` for one range element): the
    /// single non-1 dim of the range tensors, offset by the input's extra leading dims.
    pub fn axis(&self) -> Result<Option<usize>, QParamError> {
        if self.lo.len() <= 1 {
            return Ok(None);
        }
        let dims: Vec<usize> = (0..self.shape.len())
            .filter(|&i| self.shape[i] > 1)
            .collect();
        let [d] = dims[..] else {
            return Err(QParamError::NotPerAxis {
                shape: self.shape.clone(),
            });
        };
        let rank = self.shape.len();
        let off = self.input_rank.unwrap_or(rank).saturating_sub(rank);
        Ok(Some(d + off))
    }

    /// Scales, zero levels and axis, checked: at least 2 levels, one axis at most, and per
    /// element `lo < hi`, a finite positive scale and an integer zero level.
    pub fn qparams(&self) -> Result<QParams, QParamError> {
        if self.levels < 2 {
            return Err(QParamError::Levels(self.levels));
        }
        let axis = self.axis()?;
        let mut scale = Vec::with_capacity(self.lo.len());
        let mut zero = Vec::with_capacity(self.lo.len());
        for (&lo, &hi) in self.lo.iter().zip(&self.hi) {
            // Not `hi > lo` (NaN included).
            if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
                return Err(QParamError::EmptyRange { lo, hi });
            }
            let s = range_scale(lo, hi, self.levels);
            if !is_valid_scale(s) {
                return Err(QParamError::BadScale { lo, hi, scale: s });
            }
            let z = zero_level(lo, s, self.levels).ok_or(QParamError::NotALevel {
                zero: -lo / s,
                lo,
                hi,
            })?;
            scale.push(s);
            zero.push(z);
        }
        Ok(QParams {
            scale,
            zero_level: zero,
            axis,
            levels: self.levels,
        })
    }
}

/// The rank of a value: of its constant, else of its inferred shape.
fn input_rank(g: &Graph, x: ValueRef) -> Option<usize> {
    g.const_value(x)
        .map(|t| t.rank())
        .or_else(|| g.value_type(x).shape.as_ref().map(|s| s.rank()))
}

/// The integer form of a FakeQuantize: `x ≈ (level − zero_level)·scale` per range element.
#[derive(Clone, Debug, PartialEq)]
pub struct QParams {
    /// Scale per range element.
    pub scale: Vec<f32>,
    /// The level (`0..=levels−1`) of 0, per range element.
    pub zero_level: Vec<i32>,
    /// The quantized input's axis the parameters vary along; `None` per tensor.
    pub axis: Option<usize>,
    /// Levels of the FakeQuantize.
    pub levels: u32,
}

impl QParams {
    /// The parameters of FakeQuantize node `n` ([`FqRanges::of_node`], [`FqRanges::qparams`]).
    pub fn from_fake_quantize(g: &Graph, n: NodeId) -> Result<QParams, QParamError> {
        FqRanges::of_node(g, n)?.qparams()
    }
}

/// Scales of a FakeQuantize output with constant ranges ([`FqRanges::scales`], levels ≥ 2).
fn fq_scales(g: &Graph, v: ValueRef) -> Option<Vec<f32>> {
    let r = FqRanges::of_node(g, v.node).ok()?;
    (r.levels >= 2).then(|| r.scales())
}

/// The scale of one accumulator unit per output channel, `s_x · s_w`, of a Conv,
/// ConvTranspose (group 1) or Gemm (alpha = beta = 1, B constant) whose activation input and
/// constant weights are both FakeQuantize outputs with constant ranges (per-tensor, or
/// per-output-channel weights; per-channel activations only for a Conv whose groups each read
/// one input channel). An integer runtime adds the bias in these units, so a bias that is an
/// integer multiple of them is exact in both the FakeQuantize graph and its QDQ export
/// (`lpc quantize` rounds biases onto this grid; the export writes them as i32 +
/// DequantizeLinear). `None` when the layer is not of that form.
pub fn accumulator_scales(g: &Graph, n: NodeId) -> Option<Vec<f32>> {
    let ins = g.node_inputs(n);
    let (x, w) = (
        ins.first().copied().flatten()?,
        ins.get(1).copied().flatten()?,
    );
    let wq = g.node_inputs(w.node).first().copied().flatten()?;
    let wt = g.const_value(wq)?;
    let (sx, sw) = (fq_scales(g, x)?, fq_scales(g, w)?);
    let shape = wt.shape();
    let (m, group) = match &g.node(n).op {
        Op::Conv(a) => (*shape.first()?, a.group.max(1)),
        Op::ConvTranspose { conv, .. } if conv.group <= 1 => (*shape.get(1)?, 1),
        Op::Gemm {
            alpha,
            beta,
            trans_a: false,
            trans_b,
        } if *alpha == 1.0 && *beta == 1.0 && shape.len() == 2 => {
            (if *trans_b { shape[0] } else { shape[1] }, 1)
        }
        _ => return None,
    };
    if m == 0 || (sw.len() != 1 && sw.len() != m) {
        return None;
    }
    // Input channel read by output channel o: one per group when the activation is per-channel.
    let per_group = m / group;
    if sx.len() != 1 && (sx.len() != group || per_group * group != m) {
        return None;
    }
    Some(
        (0..m)
            .map(|o| {
                let a = if sx.len() == 1 {
                    sx[0]
                } else {
                    sx[o / per_group]
                };
                let b = if sw.len() == 1 { sw[0] } else { sw[o] };
                a * b
            })
            .collect(),
    )
}

/// A bias value `v` in accumulator units of scale `s`: `round_half_even(v/s)` when `s > 0`
/// and the result is finite and fits i32 (as an f32); `None` otherwise.
pub fn accumulator_units(v: f32, s: f32) -> Option<f32> {
    let k = (v / s).round_ties_even();
    (s > 0.0 && k.is_finite() && k.abs() < 2147483648.0).then_some(k)
}

/// The bias of layer `n` as integers in its accumulator units ([`accumulator_scales`]) when
/// every element is exactly such a multiple (and fits i32): `(q, scales)`.
pub fn integer_bias(g: &Graph, n: NodeId) -> Option<(Vec<i32>, Vec<f32>)> {
    let s = accumulator_scales(g, n)?;
    let b = g.const_value(g.node_inputs(n).get(2).copied().flatten()?)?;
    if b.dtype() != DType::F32
        || b.len() != s.len()
        || b.rank() > 1 && b.shape()[..b.rank() - 1].iter().any(|&d| d != 1)
    {
        return None;
    }
    let bv = b.to_f32_vec();
    let mut q = Vec::with_capacity(bv.len());
    for (&v, &sc) in bv.iter().zip(&s) {
        let k = accumulator_units(v, sc)?;
        if k * sc != v {
            return None;
        }
        q.push(k as i32);
    }
    Some((q, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape, v.to_vec()).expect("shape matches")
    }

    fn ranges(shape: &[usize], lo: &[f32], hi: &[f32], levels: u32) -> FqRanges {
        let (l, h) = (t(shape, lo), t(shape, hi));
        FqRanges::new([&l, &h, &l, &h], levels, Some(4)).expect("equal ranges")
    }

    #[test]
    fn levels_2_255_256() {
        assert_eq!((steps(2), steps(255), steps(256)), (1.0, 254.0, 255.0));
        let p = ranges(&[], &[0.0], &[1.0], 2).qparams().unwrap();
        assert_eq!((p.scale[0], p.zero_level[0], p.axis), (1.0, 0, None));
        let p = ranges(&[], &[-1.0], &[1.0], 255).qparams().unwrap();
        assert_eq!((p.scale[0], p.zero_level[0]), (2.0 / 254.0, 127));
        let p = ranges(&[1], &[-128.0], &[127.0], 256).qparams().unwrap();
        assert_eq!((p.scale[0], p.zero_level[0], p.levels), (1.0, 128, 256));
        // Level indices: clamped below/above, ties to even in between, NaN kept.
        assert_eq!(level_index(-5.0, -1.0, 1.0, 255), 0.0);
        assert_eq!(level_index(-1.0, -1.0, 1.0, 255), 0.0);
        assert_eq!(level_index(1.0, -1.0, 1.0, 255), 254.0);
        assert_eq!(level_index(5.0, -1.0, 1.0, 255), 254.0);
        assert_eq!(level_index(2.5, 0.0, 255.0, 256), 2.0);
        assert_eq!(level_index(3.5, 0.0, 255.0, 256), 4.0);
        assert_eq!(level_index(0.5, 0.0, 1.0, 2), 0.0);
        assert_eq!(level_index(0.51, 0.0, 1.0, 2), 1.0);
        assert!(level_index(f32::NAN, 0.0, 1.0, 256).is_nan());
    }

    #[test]
    fn degenerate_and_inverted_ranges() {
        let err = |lo: f32, hi: f32, levels: u32| ranges(&[], &[lo], &[hi], levels).qparams();
        assert_eq!(
            err(1.0, 1.0, 256),
            Err(QParamError::EmptyRange { lo: 1.0, hi: 1.0 })
        );
        assert_eq!(
            err(1.0, -1.0, 256),
            Err(QParamError::EmptyRange { lo: 1.0, hi: -1.0 })
        );
        // NaN never equals itself: a NaN range is not the same input and output range.
        let (l, h) = (t(&[], &[f32::NAN]), t(&[], &[1.0]));
        assert_eq!(
            FqRanges::new([&l, &h, &l, &h], 256, None),
            Err(QParamError::RangesDiffer)
        );
        assert!(matches!(
            err(-3e38, 3e38, 256),
            Err(QParamError::BadScale { .. })
        ));
        assert!(matches!(
            err(f32::NEG_INFINITY, 0.0, 256),
            Err(QParamError::BadScale { .. })
        ));
        assert_eq!(err(0.0, 1.0, 1), Err(QParamError::Levels(1)));
        // 0 outside the range, or between two levels: no integer zero point.
        assert!(matches!(
            err(1.0, 2.0, 256),
            Err(QParamError::NotALevel { .. })
        ));
        assert!(matches!(
            err(-0.5, 0.5, 256),
            Err(QParamError::NotALevel { .. })
        ));
        assert_eq!(zero_level(-0.5, 1.0, 256), None); // a tie is not a level
        assert_eq!(zero_level(-2.0004, 1.0, 256), Some(2));
        assert_eq!(zero_level(-2.01, 1.0, 256), None);
        assert_eq!(zero_level(-255.0, 1.0, 256), Some(255));
        assert_eq!(zero_level(-255.0, 1.0, 255), None);
        assert_eq!(zero_level(f32::NAN, 1.0, 256), None);
        // The unchecked scales keep whatever the arithmetic gives.
        assert_eq!(ranges(&[], &[1.0], &[-1.0], 3).scales(), vec![-1.0]);
        assert!(!is_valid_scale(0.0) && !is_valid_scale(f32::INFINITY) && is_valid_scale(1e-30));
    }

    #[test]
    fn narrowest_range() {
        assert_eq!(MIN_RANGE, 2f32.powi(-55));
        assert!(spans_min_range(0.0, MIN_RANGE) && spans_min_range(-MIN_RANGE, 0.0));
        assert!(!spans_min_range(0.0, MIN_RANGE / 2.0) && !spans_min_range(0.0, 0.0));
        // Subnormal values, NaN, an inverted range, an overflowing width.
        assert!(!spans_min_range(-3.1e-39, 3.1e-39));
        assert!(!spans_min_range(f32::NAN, 1.0) && !spans_min_range(1.0, -1.0));
        assert!(!spans_min_range(-3e38, 3e38));
        // The scales of 8-bit quantizers over it, and the product of two, are normal f32s.
        for levels in [255, 256] {
            let s = range_scale(0.0, MIN_RANGE, levels);
            assert!(s >= 2f32.powi(-63) && (s * s).is_normal(), "{s}");
        }
        // A symmetric weight range over it has its integer zero level; a subnormal one has not.
        let m = MIN_RANGE / 2.0;
        assert_eq!(zero_level(-m, range_scale(-m, m, 255), 255), Some(127));
        let m = 3.1e-39;
        assert_eq!(zero_level(-m, range_scale(-m, m, 255), 255), None);
    }

    #[test]
    fn input_and_output_ranges_must_agree() {
        let (a, b, c) = (t(&[], &[0.0]), t(&[], &[1.0]), t(&[], &[2.0]));
        assert_eq!(
            FqRanges::new([&a, &b, &a, &c], 256, None),
            Err(QParamError::RangesDiffer)
        );
        let (l, h) = (t(&[1, 1], &[0.0]), t(&[1], &[1.0]));
        assert_eq!(
            FqRanges::new([&l, &h, &l, &h], 256, None),
            Err(QParamError::RangesDiffer)
        );
    }

    #[test]
    fn per_axis() {
        let lo = [-1.0, -2.0, 0.0];
        let hi = [1.0, 2.0, 4.0];
        let p = ranges(&[1, 3, 1, 1], &lo, &hi, 255).qparams().unwrap();
        assert_eq!(p.axis, Some(1));
        assert_eq!(p.scale, vec![2.0 / 254.0, 4.0 / 254.0, 4.0 / 254.0]);
        assert_eq!(p.zero_level, vec![127, 127, 0]);
        // Range dims align with the input's trailing dims.
        let r = ranges(&[3, 1, 1], &lo, &hi, 255);
        assert_eq!(r.axis(), Ok(Some(1)));
        let r = FqRanges {
            input_rank: None,
            ..r
        };
        assert_eq!(r.axis(), Ok(Some(0)));
        let r = ranges(&[1, 3, 2, 1], &[0.0; 6], &[1.0; 6], 256);
        assert_eq!(
            r.axis(),
            Err(QParamError::NotPerAxis {
                shape: vec![1, 3, 2, 1]
            })
        );
        assert_eq!(ranges(&[1, 1, 1, 1], &[0.0], &[1.0], 256).axis(), Ok(None));
    }

    /// `y = gemm(FQ(x) over [0, 255], FQ(w) over ±[127, 254] per row, b)`: accumulator
    /// units 1 and 2.
    fn gemm(bias: &str) -> (Graph, NodeId) {
        let text = format!(
            "graph @t(%x: f32[2,3]) -> (%y) {{\n  \
            %xl = const f32[] [0.0]\n  %xh = const f32[] [255.0]\n  \
            %x_fq = fake_quantize(%x, %xl, %xh, %xl, %xh) {{levels=256}} : f32[2,3]\n  \
            %w = const f32[2,3] [0.5, -1.0, 0.25, 1.0, 0.0, 2.0]\n  \
            %wl = const f32[2,1] [-127.0, -254.0]\n  %wh = const f32[2,1] [127.0, 254.0]\n  \
            %w_fq = fake_quantize(%w, %wl, %wh, %wl, %wh) {{levels=255}} : f32[2,3]\n  \
            %b = const f32[2] [{bias}]\n  \
            %y = gemm(%x_fq, %w_fq, %b) {{trans_b=true}} : f32[2,2]\n  return %y\n}}\n"
        );
        let g = crate::text::parse(&text).expect("valid .lir");
        let y = node(&g, "y");
        (g, y)
    }

    fn node(g: &Graph, name: &str) -> NodeId {
        g.node_ids()
            .into_iter()
            .find(|&n| g.node(n).outputs[0].name == name)
            .expect("node exists")
    }

    #[test]
    fn graph_forms() {
        let (g, y) = gemm("3.0, -6.0");
        let p = QParams::from_fake_quantize(&g, node(&g, "x_fq")).unwrap();
        assert_eq!((p.scale, p.zero_level, p.axis), (vec![1.0], vec![0], None));
        let p = QParams::from_fake_quantize(&g, node(&g, "w_fq")).unwrap();
        assert_eq!(
            (p.scale, p.zero_level, p.axis),
            (vec![1.0, 2.0], vec![127, 127], Some(0))
        );
        assert_eq!(
            QParams::from_fake_quantize(&g, y),
            Err(QParamError::NotFakeQuantize)
        );
        assert_eq!(accumulator_scales(&g, y), Some(vec![1.0, 2.0]));
        assert_eq!(integer_bias(&g, y), Some((vec![3, -3], vec![1.0, 2.0])));
        // 5/2 rounds to 2 units, which is 4, not 5: no integer form.
        let (g, y) = gemm("3.0, 5.0");
        assert_eq!(integer_bias(&g, y), None);
        assert_eq!(accumulator_units(5.0, 2.0), Some(2.0));
        assert_eq!(accumulator_units(1.0, 0.0), None);
        assert_eq!(accumulator_units(1.0, f32::NAN), None);
        assert_eq!(accumulator_units(1e10, 1e-10), None);
    }
}
