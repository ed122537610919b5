//! The Reduce* ops over a set of axes (computed in f64; in i64 for integers, except the
//! reductions that take a square root, log or exponential, which go through f64).

use crate::util::{ints, norm_axis, offsets};
use crate::{invalid, EvalError, EvalResult};
use lpc_ir::{DType, ReduceOp, Tensor};

/// Reduces `x` over `axes` (all axes when absent, unless `noop_with_empty_axes`).
pub fn reduce(
    op: ReduceOp,
    keepdims: bool,
    noop: bool,
    x: &Tensor,
    axes: Option<&Tensor>,
) -> EvalResult<Tensor> {
    let r = x.rank();
    let given = match axes {
        Some(a) => ints(a, "axes")?,
        None => vec![],
    };
    if given.is_empty() && noop {
        return Ok(x.clone());
    }
    let mut red = vec![given.is_empty(); r];
    for &a in &given {
        red[norm_axis(a, r)?] = true;
    }
    let out_full: Vec<usize> = (0..r)
        .map(|d| if red[d] { 1 } else { x.shape()[d] })
        .collect();
    let out_n: usize = out_full.iter().product();
    let count: usize = (0..r).filter(|&d| red[d]).map(|d| x.shape()[d]).product();
    let d = x.dtype();
    if d == DType::Bool && !matches!(op, ReduceOp::Max | ReduceOp::Min) {
        return Err(EvalError::DType {
            slot: 0,
            what: "x",
            got: d,
            expected: "a numeric type",
        });
    }
    let shape = x.shape();
    if d == DType::F32 && op != ReduceOp::LogSumExp {
        if let Some(block) = reduced_block(&red, shape) {
            let xs = x.as_f32().map_err(|e| invalid!("{e}"))?;
            let acc = reduce_f64(op, Source::Block(xs, block), out_n, count);
            return Tensor::from_f64(&out_shape_of(x, &red, &out_full, keepdims), acc)
                .map(|t| t.into_dtype(d))
                .map_err(|e| invalid!("{e}"));
        }
    }
    // Output flat index of every input element.
    let mut ostr = vec![0usize; r];
    let mut s = 1;
    for k in (0..r).rev() {
        ostr[k] = if red[k] { 0 } else { s };
        s *= out_full[k];
    }
    let oidx = offsets(shape, &ostr);
    let out_shape = out_shape_of(x, &red, &out_full, keepdims);
    let exact_int = !matches!(op, ReduceOp::L2 | ReduceOp::LogSum | ReduceOp::LogSumExp);
    let result = if d.is_float() || d == DType::Bool || !exact_int {
        let xs = x.to_f64_vec();
        let acc = reduce_f64(op, Source::Indexed(&xs, &oidx), out_n, count);
        if d == DType::Bool {
            Tensor::from_bool(&out_shape, acc.iter().map(|&v| v > 0.0).collect())
        } else {
            Tensor::from_f64(&out_shape, acc).map(|t| t.into_dtype(d))
        }
    } else {
        let acc = reduce_i64(op, d, &x.to_i64_vec(), &oidx, out_n, count);
        Tensor::from_i64(&out_shape, acc).map(|t| t.into_dtype(d))
    };
    result.map_err(|e| invalid!("{e}"))
}

/// The output shape: the reduced axes kept as 1 or dropped.
fn out_shape_of(x: &Tensor, red: &[bool], out_full: &[usize], keepdims: bool) -> Vec<usize> {
    if keepdims {
        out_full.to_vec()
    } else {
        (0..x.rank())
            .filter(|&k| !red[k])
            .map(|k| x.shape()[k])
            .collect()
    }
}

/// `(outer, reduced, inner)` sizes when the reduced axes are one run of adjacent axes (any
/// axes of size 1 aside): the input is then `outer × reduced × inner` and the output
/// `outer × inner`.
fn reduced_block(red: &[bool], shape: &[usize]) -> Option<(usize, usize, usize)> {
    let axes: Vec<usize> = (0..shape.len())
        .filter(|&k| red[k] && shape[k] != 1)
        .collect();
    let (first, last) = match (axes.first(), axes.last()) {
        (Some(&f), Some(&l)) => (f, l),
        _ => return None,
    };
    if (first..=last).any(|k| !red[k] && shape[k] != 1) {
        return None;
    }
    let size = |r: std::ops::Range<usize>| shape[r].iter().product::<usize>();
    Some((
        size(0..first),
        size(first..last + 1),
        size(last + 1..shape.len()),
    ))
}

/// The input of [`reduce_f64`], read in its flat order either way.
enum Source<'a> {
    /// Values and, per value, its output element.
    Indexed(&'a [f64], &'a [usize]),
    /// f32 values `outer × reduced × inner` ([`reduced_block`]) into `outer × inner` outputs.
    Block(&'a [f32], (usize, usize, usize)),
}

/// Float reductions in f64, each output's inputs taken in the input's flat order; `count` the
/// number of inputs per output. NaN propagates through Max and Min.
fn reduce_f64(op: ReduceOp, src: Source, out_n: usize, count: usize) -> Vec<f64> {
    if let (ReduceOp::LogSumExp, &Source::Indexed(xs, oidx)) = (op, &src) {
        // ln Σ exp(x) = m + ln Σ exp(x − m), m the largest x: no overflow.
        let mut m = vec![f64::NEG_INFINITY; out_n];
        for (&v, &o) in xs.iter().zip(oidx) {
            if v > m[o] || v.is_nan() {
                m[o] = v;
            }
        }
        let mut s = vec![0.0; out_n];
        for (&v, &o) in xs.iter().zip(oidx) {
            if m[o].is_finite() {
                s[o] += (v - m[o]).exp();
            }
        }
        return m
            .iter()
            .zip(&s)
            .map(|(&m, &s)| if m.is_finite() { m + s.ln() } else { m })
            .collect();
    }
    let init = match op {
        ReduceOp::Max => f64::NEG_INFINITY,
        ReduceOp::Min => f64::INFINITY,
        ReduceOp::Prod => 1.0,
        _ => 0.0,
    };
    let mut acc = vec![init; out_n];
    // One loop per op (the same order of operations as one loop with the op inside).
    fn fold(acc: &mut [f64], src: &Source, f: impl Fn(&mut f64, f64)) {
        match *src {
            Source::Indexed(xs, oidx) => {
                for (&v, &o) in xs.iter().zip(oidx) {
                    f(&mut acc[o], v);
                }
            }
            Source::Block(_, (_, _, 0)) | Source::Block(_, (_, 0, _)) => {}
            Source::Block(xs, (_, reduced, inner)) => {
                let rows = xs.chunks_exact(reduced * inner);
                for (acc, block) in acc.chunks_exact_mut(inner).zip(rows) {
                    for row in block.chunks_exact(inner) {
                        for (a, &v) in acc.iter_mut().zip(row) {
                            f(a, f64::from(v));
                        }
                    }
                }
            }
        }
    }
    match op {
        ReduceOp::Max => fold(&mut acc, &src, |a, v| {
            if v > *a || v.is_nan() {
                *a = v
            }
        }),
        ReduceOp::Min => fold(&mut acc, &src, |a, v| {
            if v < *a || v.is_nan() {
                *a = v
            }
        }),
        // (LogSumExp returned above.)
        ReduceOp::Mean | ReduceOp::Sum | ReduceOp::LogSum | ReduceOp::LogSumExp => {
            fold(&mut acc, &src, |a, v| *a += v)
        }
        ReduceOp::Prod => fold(&mut acc, &src, |a, v| *a *= v),
        ReduceOp::L1 => fold(&mut acc, &src, |a, v| *a += v.abs()),
        ReduceOp::L2 | ReduceOp::SumSquare => fold(&mut acc, &src, |a, v| *a += v * v),
    }
    for a in &mut acc {
        match op {
            ReduceOp::Mean => *a /= count as f64,
            ReduceOp::L2 => *a = a.sqrt(),
            ReduceOp::LogSum => *a = a.ln(),
            _ => {}
        }
    }
    acc
}

/// Exact integer reductions (wrapping, as ONNX Runtime's integer kernels).
fn reduce_i64(
    op: ReduceOp,
    d: DType,
    xs: &[i64],
    oidx: &[usize],
    out_n: usize,
    count: usize,
) -> Vec<i64> {
    let (lo, hi) = match d {
        DType::I8 => (i8::MIN as i64, i8::MAX as i64),
        DType::U8 => (0, u8::MAX as i64),
        DType::I32 => (i32::MIN as i64, i32::MAX as i64),
        _ => (i64::MIN, i64::MAX),
    };
    let init = match op {
        ReduceOp::Max => lo,
        ReduceOp::Min => hi,
        ReduceOp::Prod => 1,
        _ => 0,
    };
    let mut acc = vec![init; out_n];
    for (&v, &o) in xs.iter().zip(oidx) {
        let a = &mut acc[o];
        *a = match op {
            ReduceOp::Max => (*a).max(v),
            ReduceOp::Min => (*a).min(v),
            ReduceOp::Prod => a.wrapping_mul(v),
            ReduceOp::L1 => a.wrapping_add(v.wrapping_abs()),
            ReduceOp::SumSquare => a.wrapping_add(v.wrapping_mul(v)),
            // (L2, LogSum and LogSumExp take the float path.)
            ReduceOp::Mean
            | ReduceOp::Sum
            | ReduceOp::L2
            | ReduceOp::LogSum
            | ReduceOp::LogSumExp => a.wrapping_add(v),
        };
    }
    if op == ReduceOp::Mean && count > 0 {
        for a in &mut acc {
            *a /= count as i64;
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The f32 block path gives what the indexed walk gives (run on the same values as f64).
    #[test]
    fn block_reductions_match_the_indexed_walk() {
        let shape = [2, 3, 4, 5];
        let mut seed = 11u32;
        let v: Vec<f32> = (0..120)
            .map(|i| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                if i == 17 {
                    f32::NAN
                } else {
                    (seed >> 8) as f32 / (1 << 20) as f32 - 8.0
                }
            })
            .collect();
        let x32 = Tensor::from_f32(&shape, v.clone()).unwrap();
        let x64 = Tensor::from_f64(&shape, v.iter().map(|&a| f64::from(a)).collect()).unwrap();
        let ops = [
            ReduceOp::Sum,
            ReduceOp::Mean,
            ReduceOp::Max,
            ReduceOp::Min,
            ReduceOp::Prod,
            ReduceOp::L1,
            ReduceOp::L2,
            ReduceOp::SumSquare,
            ReduceOp::LogSum,
        ];
        for axes in [
            &[1][..],
            &[3],
            &[0],
            &[1, 2],
            &[2, 3],
            &[0, 1, 2, 3],
            &[-1, -2],
        ] {
            assert!(reduced_block(
                &(0..4)
                    .map(|k| axes.iter().any(|&a| norm_axis(a, 4).unwrap() == k))
                    .collect::<Vec<_>>(),
                &shape
            )
            .is_some());
            let a = Tensor::from_i64(&[axes.len()], axes.to_vec()).unwrap();
            for op in ops {
                for keep in [false, true] {
                    let fast = reduce(op, keep, false, &x32, Some(&a)).unwrap();
                    let walk = reduce(op, keep, false, &x64, Some(&a)).unwrap();
                    assert_eq!(fast.shape(), walk.shape(), "{op:?} {axes:?}");
                    let (f, w) = (fast.to_f32_vec(), walk.to_f32_vec());
                    for (p, q) in f.iter().zip(&w) {
                        assert!(
                            p.to_bits() == q.to_bits(),
                            "{op:?} {axes:?}: {f:?} vs {w:?}"
                        );
                    }
                }
            }
        }
        // Axes 1 and 3 are not adjacent: the indexed walk.
        assert!(reduced_block(&[false, true, false, true], &shape).is_none());
        assert!(reduced_block(&[false, true, false, true], &[2, 3, 1, 5]).is_some());
    }
}
