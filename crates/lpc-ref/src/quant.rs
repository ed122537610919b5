//! QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear and FakeQuantize, exactly:
//! ONNX semantics (f32 arithmetic as ONNX Runtime, round half to even, saturate) and OpenVINO's
//! FakeQuantize-1.

use crate::util::{broadcast_shapes, gcd, norm_axis, strides, BroadcastIndex, Run};
use crate::{invalid, EvalError, EvalResult, Inputs};
use lpc_ir::{DType, QuantAxis, Tensor};

/// For each element of `x_shape`, the index of its scale/zero point in a parameter tensor of
/// `p_shape`: per-tensor (one element), per-axis (1-D along `axis`) or blocked (same rank).
fn param_index(q: &QuantAxis, x_shape: &[usize], p_shape: &[usize]) -> EvalResult<Vec<usize>> {
    let n: usize = x_shape.iter().product();
    let pn: usize = p_shape.iter().product();
    if pn == 1 && q.block_size == 0 {
        return Ok(vec![0; n]);
    }
    let ax = norm_axis(q.axis, x_shape.len())?;
    if q.block_size == 0 {
        if p_shape.len() != 1 || p_shape[0] != x_shape[ax] {
            return Err(invalid!(
                "per-axis scale of shape {p_shape:?} does not match axis {ax} of {x_shape:?}"
            ));
        }
        let inner: usize = x_shape[ax + 1..].iter().product();
        return Ok((0..n).map(|i| (i / inner) % x_shape[ax]).collect());
    }
    // Blocked: same rank; the axis dim is ceil(len / block_size).
    let b = q.block_size;
    if p_shape.len() != x_shape.len()
        || p_shape[ax] != x_shape[ax].div_ceil(b)
        || (0..x_shape.len()).any(|d| d != ax && p_shape[d] != x_shape[d])
    {
        return Err(invalid!("blocked scale of shape {p_shape:?} does not match {x_shape:?} with block {b} on axis {ax}"));
    }
    let ps = strides(p_shape);
    let mut out = Vec::with_capacity(n);
    crate::shape_ops::for_each_index(x_shape, |ix| {
        out.push(
            ix.iter()
                .enumerate()
                .map(|(d, &i)| if d == ax { i / b } else { i } * ps[d])
                .sum(),
        );
    });
    Ok(out)
}

fn range_of(d: DType) -> EvalResult<(f32, f32)> {
    Ok(match d {
        DType::U8 => (0.0, 255.0),
        DType::I8 => (-128.0, 127.0),
        DType::I32 => (i32::MIN as f32, i32::MAX as f32),
        DType::F32 | DType::F16 | DType::F64 | DType::I64 | DType::Bool => {
            return Err(invalid!("cannot quantize to {d}"))
        }
    })
}

/// QuantizeLinear: `saturate(round_half_even(x / scale) + zp)`.
pub fn quantize_linear(q: &QuantAxis, dtype: DType, i: Inputs) -> EvalResult<Tensor> {
    let x = i.req(0, "x")?;
    let scale = i.req(1, "y_scale")?;
    if !scale.dtype().is_float() {
        return Err(EvalError::DType {
            slot: 1,
            what: "y_scale",
            got: scale.dtype(),
            expected: "a float type",
        });
    }
    let (lo, hi) = range_of(dtype)?;
    let zp = match i.opt(2) {
        Some(z) if z.dtype() != dtype => {
            return Err(EvalError::DType {
                slot: 2,
                what: "y_zero_point",
                got: z.dtype(),
                expected: "the output dtype",
            })
        }
        Some(z) => {
            if z.shape() != scale.shape() && z.len() != scale.len() {
                return Err(invalid!(
                    "zero point shape {:?} differs from scale shape {:?}",
                    z.shape(),
                    scale.shape()
                ));
            }
            z.to_f64_vec()
        }
        None => vec![0.0; scale.len()],
    };
    let pi = param_index(q, x.shape(), scale.shape())?;
    let s = scale.to_f32_vec();
    let xv = x.to_f32_vec();
    let out: Vec<i64> = xv
        .iter()
        .zip(&pi)
        .map(|(&v, &p)| {
            let y = (v / s[p]).round_ties_even() + zp[p] as f32;
            (if y.is_nan() { 0.0 } else { y.clamp(lo, hi) }) as i64
        })
        .collect();
    Ok(Tensor::from_i64(x.shape(), out)
        .expect("size")
        .into_dtype(dtype))
}

/// DequantizeLinear: `(x - zp) * scale`, in the scale's float type.
pub fn dequantize_linear(q: &QuantAxis, i: Inputs) -> EvalResult<Tensor> {
    let x = i.req(0, "x")?;
    let scale = i.req(1, "x_scale")?;
    if !matches!(x.dtype(), DType::U8 | DType::I8 | DType::I32) {
        return Err(EvalError::DType {
            slot: 0,
            what: "x",
            got: x.dtype(),
            expected: "u8, i8 or i32",
        });
    }
    if !scale.dtype().is_float() {
        return Err(EvalError::DType {
            slot: 1,
            what: "x_scale",
            got: scale.dtype(),
            expected: "a float type",
        });
    }
    let zp = match i.opt(2) {
        Some(z) if z.dtype() != x.dtype() => {
            return Err(EvalError::DType {
                slot: 2,
                what: "x_zero_point",
                got: z.dtype(),
                expected: "x's dtype",
            })
        }
        Some(z) if z.len() != scale.len() => {
            return Err(invalid!(
                "zero point shape {:?} differs from scale shape {:?}",
                z.shape(),
                scale.shape()
            ))
        }
        Some(z) => z.to_i64_vec(),
        None => vec![0; scale.len()],
    };
    let pi = param_index(q, x.shape(), scale.shape())?;
    let s = scale.to_f32_vec();
    let out: Vec<f32> = x
        .to_i64_vec()
        .iter()
        .zip(&pi)
        .map(|(&v, &p)| (v - zp[p]) as i32 as f32 * s[p])
        .collect();
    Ok(Tensor::from_f32(x.shape(), out)
        .expect("size")
        .into_dtype(scale.dtype()))
}

/// `(min(0, x), max(0, x))` over `v`, or `None` when `v` holds a NaN or an infinity. One pass
/// over 8 independent lanes (the compiler vectorises it); min and max are exact, so the lane
/// order does not matter.
fn finite_range(v: &[f32]) -> Option<(f32, f32)> {
    const L: usize = 8;
    let (mut lo, mut hi, mut bad) = ([0f32; L], [0f32; L], [false; L]);
    let mut chunks = v.chunks_exact(L);
    for c in &mut chunks {
        for j in 0..L {
            let e = c[j];
            bad[j] |= !e.is_finite();
            lo[j] = if e < lo[j] { e } else { lo[j] };
            hi[j] = if e > hi[j] { e } else { hi[j] };
        }
    }
    for (j, &e) in chunks.remainder().iter().enumerate() {
        bad[j] |= !e.is_finite();
        lo[j] = if e < lo[j] { e } else { lo[j] };
        hi[j] = if e > hi[j] { e } else { hi[j] };
    }
    if bad.iter().any(|&b| b) {
        return None;
    }
    let min = lo.iter().copied().fold(0.0f32, f32::min);
    let max = hi.iter().copied().fold(0.0f32, f32::max);
    Some((min, max))
}

/// DynamicQuantizeLinear: u8 with a range that includes 0.
pub fn dynamic_quantize_linear(x: &Tensor) -> EvalResult<Vec<Tensor>> {
    let v = x.as_f32().map_err(|_| EvalError::DType {
        slot: 0,
        what: "x",
        got: x.dtype(),
        expected: "f32",
    })?;
    let (min, max) = finite_range(v).ok_or_else(|| invalid!("x contains NaN or infinity"))?;
    let scale = (max - min) / 255.0;
    let zp = if scale == 0.0 {
        0.0
    } else {
        (-min / scale).round_ties_even().clamp(0.0, 255.0)
    };
    let y: Vec<u8> = if scale == 0.0 {
        vec![zp as u8; v.len()]
    } else {
        // `v` is finite: the clamp as compares and the unchecked conversion (exact on
        // [0, 255]) are what `clamp(0.0, 255.0) as u8` computes, in a form the compiler
        // vectorises.
        v.iter()
            .map(|&e| {
                let q = (e / scale).round_ties_even() + zp;
                let q = if q < 0.0 { 0.0 } else { q };
                let q = if q > 255.0 { 255.0 } else { q };
                // SAFETY: q is finite and in [0, 255] (x and scale are finite, scale > 0).
                unsafe { q.to_int_unchecked::<i32>() as u8 }
            })
            .collect()
    };
    Ok(vec![
        Tensor::from_u8(x.shape(), y).expect("size"),
        Tensor::from_f32(&[], vec![scale]).expect("size"),
        Tensor::from_u8(&[], vec![zp as u8]).expect("size"),
    ])
}

/// OpenVINO FakeQuantize-1, computed in f32:
/// `x <= min(il,ih) → ol; x > max(il,ih) → oh;
///  else round((x-il)/(ih-il)*(levels-1))/(levels-1)*(oh-ol)+ol` (round half to even).
/// Inverted input ranges (il > ih) follow the same formula, as OpenVINO's reference does.
pub fn fake_quantize(levels: u32, i: Inputs) -> EvalResult<Tensor> {
    let x = i.req(0, "x")?;
    if levels < 2 {
        return Err(invalid!("levels must be at least 2, got {levels}"));
    }
    let xv = x.as_f32().map_err(|_| EvalError::DType {
        slot: 0,
        what: "x",
        got: x.dtype(),
        expected: "f32",
    })?;
    let names = ["input_low", "input_high", "output_low", "output_high"];
    let mut bounds = vec![];
    for (k, what) in names.iter().enumerate() {
        let t = i.req(k + 1, what)?;
        let v = t.to_f32_vec();
        if v.iter().any(|e| e.is_nan()) {
            return Err(invalid!("{what} contains NaN"));
        }
        let sh = broadcast_shapes(t.shape(), x.shape())?;
        if sh != x.shape() {
            return Err(invalid!(
                "{what} of shape {:?} does not broadcast to x {:?}",
                t.shape(),
                x.shape()
            ));
        }
        bounds.push((v, BroadcastIndex::new(t.shape(), x.shape())));
    }
    let l = lpc_ir::quant::steps(levels);
    // Runs of elements sharing all four bounds (a channel's plane for per-channel bounds, the
    // whole tensor for per-tensor ones): the bounds are read once per run.
    let n = xv.len();
    let run = bounds.iter().fold(0, |r, (_, ix)| match ix.run(n) {
        Run::Const(len) => gcd(r, len),
        Run::Contig(_) => 1,
    });
    let mut out = Vec::with_capacity(n);
    for (j, xs) in xv.chunks(run.max(1)).enumerate() {
        let [il, ih, ol, oh] = [0, 1, 2, 3].map(|b| bounds[b].0[bounds[b].1.at(j * run)]);
        out.extend(
            xs.iter()
                .map(|&v| fake_quantize_one(v, [il, ih, ol, oh], l)),
        );
    }
    Ok(Tensor::from_f32(x.shape(), out).expect("size"))
}

/// FakeQuantize-1 of one element with bounds `[il, ih, ol, oh]` and `l = levels − 1`
/// (`lpc_ir::quant::steps`): `v <= min(il,ih) → ol`, `v > max(il,ih) → oh`, otherwise
/// `round((v-il)/(ih-il)*l)/l*(oh-ol)+ol` in f32 with ties to even; NaN stays NaN. The one
/// element formula: lpc-quant calls it too. Branch-free (the formula is computed for every
/// element, then selected) so that a loop of it vectorizes; the divisions stay divisions.
#[inline]
pub fn fake_quantize_one(v: f32, [il, ih, ol, oh]: [f32; 4], l: f32) -> f32 {
    let q = round_ties_even((v - il) / (ih - il) * l) / l * (oh - ol) + ol;
    if v <= il.min(ih) {
        ol
    } else if v > il.max(ih) {
        oh
    } else {
        q
    }
}

/// `x.round_ties_even()` without a library call: for |x| < 2^23, `(|x| + 2^23) − 2^23` is |x|
/// rounded to an integer by the addition itself (the sum lies in [2^23, 2^24], where the ulp
/// is 1, and IEEE round-to-nearest-even breaks ties to the even integer since 2^23 is even);
/// the subtraction is exact, and the sign is put back (−0.3 → −0.0, as `round_ties_even`).
/// |x| ≥ 2^23 (an integer already, or ±inf) and NaN are returned as they are.
#[inline]
pub fn round_ties_even(x: f32) -> f32 {
    const M: f32 = 8_388_608.0; // 2^23
    let a = x.abs();
    let r = ((a + M) - M).copysign(x);
    if a < M {
        r
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_range_is_min_and_max_with_zero() {
        for len in [0usize, 1, 7, 8, 9, 63, 100] {
            let v: Vec<f32> = (0..len)
                .map(|i| ((i as f32) * 0.77).sin() * 3.0 + if len == 63 { 4.0 } else { 0.0 })
                .collect();
            let want = (
                v.iter().copied().fold(0.0f32, f32::min),
                v.iter().copied().fold(0.0f32, f32::max),
            );
            assert_eq!(finite_range(&v), Some(want), "len {len}");
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let mut w = v.clone();
                w.push(bad);
                assert_eq!(finite_range(&w), None, "len {len}, {bad}");
            }
        }
        assert_eq!(finite_range(&[-0.0, 2.0]), Some((0.0, 2.0)));
    }

    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn round_ties_even_matches_std() {
        let special = [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.49999997,
            -0.49999997,
            1e-45,
            -1e-45,
            8_388_607.5,
            -8_388_607.5,
            8_388_607.0,
            8_388_608.0,
            -8_388_608.0,
            8_388_609.0,
            16_777_216.0,
            3e38,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
        ];
        for x in special {
            assert!(same(round_ties_even(x), x.round_ties_even()), "{x}");
        }
        // Every exact half up to 2^22 + 0.5 in steps, and a sweep over all bit patterns.
        for i in (0..1u32 << 23).step_by(7) {
            let x = i as f32 + 0.5;
            assert!(same(round_ties_even(x), x.round_ties_even()), "{x}");
            assert!(same(round_ties_even(-x), (-x).round_ties_even()), "{x}");
        }
        for bits in (0..=u32::MAX).step_by(997) {
            let x = f32::from_bits(bits);
            assert!(same(round_ties_even(x), x.round_ties_even()), "{bits:#x}");
        }
    }

    /// The formula as documented, one element at a time, with the bounds looked up through
    /// the materialized broadcast table.
    fn fq_slow(x: &Tensor, b: &[Tensor; 4], levels: u32) -> Vec<f32> {
        let l = (levels - 1) as f32;
        let idx: Vec<Vec<usize>> = b
            .iter()
            .map(|t| crate::util::broadcast_index(t.shape(), x.shape()))
            .collect();
        let bv: Vec<Vec<f32>> = b.iter().map(|t| t.to_f32_vec()).collect();
        x.to_f32_vec()
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                let [il, ih, ol, oh] = [0, 1, 2, 3].map(|j| bv[j][idx[j][k]]);
                if v <= il.min(ih) {
                    ol
                } else if v > il.max(ih) {
                    oh
                } else {
                    ((v - il) / (ih - il) * l).round_ties_even() / l * (oh - ol) + ol
                }
            })
            .collect()
    }

    #[test]
    fn fake_quantize_matches_formula() {
        let xs: Vec<f32> = (0..2 * 3 * 4 * 5)
            .map(|i| match i % 11 {
                0 => f32::NAN,
                1 => f32::INFINITY,
                2 => f32::NEG_INFINITY,
                3 => 1e30,
                4 => -0.0,
                _ => (i as f32 * 0.37).sin() * 3.0,
            })
            .collect();
        let x = Tensor::from_f32(&[2, 3, 4, 5], xs).unwrap();
        let t = |sh: &[usize], v: Vec<f32>| Tensor::from_f32(sh, v).unwrap();
        let bound_sets: Vec<[Tensor; 4]> = vec![
            // Per tensor, including an exact half after scaling (x = 0.5 on [0, 1] with l = 1).
            [
                t(&[], vec![-1.0]),
                t(&[], vec![2.0]),
                t(&[], vec![-1.0]),
                t(&[], vec![2.0]),
            ],
            // Inverted input range.
            [
                t(&[], vec![2.0]),
                t(&[], vec![-1.0]),
                t(&[], vec![-3.0]),
                t(&[], vec![3.0]),
            ],
            // Per channel [1, C, 1, 1] and [C, 1, 1], mixed with per-tensor outputs.
            [
                t(&[1, 3, 1, 1], vec![-1.0, -2.0, 0.5]),
                t(&[1, 3, 1, 1], vec![1.0, 2.0, -0.5]),
                t(&[3, 1, 1], vec![-1.0, -2.0, 0.5]),
                t(&[], vec![1.0]),
            ],
            // Per sample and channel [N, C, 1, 1].
            [
                t(&[2, 3, 1, 1], vec![-1.0, -2.0, -0.5, -3.0, 0.0, -1e-3]),
                t(&[2, 3, 1, 1], vec![1.0, 2.0, 0.5, 3.0, 1.0, 1e-3]),
                t(&[], vec![0.0]),
                t(&[2, 3, 1, 1], vec![1.0, 2.0, 0.5, 3.0, 1.0, 1e-3]),
            ],
            // Elementwise bounds (runs of one element) and a table-indexed shape.
            [
                t(
                    &[2, 3, 4, 5],
                    (0..120).map(|i| -(i as f32) * 0.05).collect(),
                ),
                t(&[2, 1, 4, 1], vec![0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]),
                t(&[], vec![-1.0]),
                t(&[5], vec![1.0, 2.0, 3.0, 4.0, 5.0]),
            ],
        ];
        for levels in [2, 3, 255, 256, 65536] {
            for (s, b) in bound_sets.iter().enumerate() {
                let inputs = [Some(&x), Some(&b[0]), Some(&b[1]), Some(&b[2]), Some(&b[3])];
                let got = fake_quantize(levels, Inputs::new(&inputs)).unwrap();
                let want = fq_slow(&x, b, levels);
                let got = got.as_f32().unwrap();
                for (k, (&g, &w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        same(g, w),
                        "levels {levels}, set {s}, element {k}: {g} vs {w}"
                    );
                }
            }
        }
        // x exactly at a half step: 0.5 on [0, 1] with 2 levels rounds to even (0).
        let h = t(&[1], vec![0.5]);
        let (z, o) = (t(&[], vec![0.0]), t(&[], vec![1.0]));
        let inputs = [Some(&h), Some(&z), Some(&o), Some(&z), Some(&o)];
        let y = fake_quantize(2, Inputs::new(&inputs)).unwrap();
        assert_eq!(y.as_f32().unwrap(), &[0.0]);
    }
}
