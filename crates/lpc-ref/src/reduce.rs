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
    // Output flat index of every input element.
    let shape = x.shape();
    let mut ostr = vec![0usize; r];
    let mut s = 1;
    for k in (0..r).rev() {
        ostr[k] = if red[k] { 0 } else { s };
        s *= out_full[k];
    }
    let oidx = offsets(shape, &ostr);
    let out_shape: Vec<usize> = if keepdims {
        out_full.clone()
    } else {
        (0..r).filter(|&k| !red[k]).map(|k| x.shape()[k]).collect()
    };
    let exact_int = !matches!(op, ReduceOp::L2 | ReduceOp::LogSum | ReduceOp::LogSumExp);
    let result = if d.is_float() || d == DType::Bool || !exact_int {
        let acc = reduce_f64(op, &x.to_f64_vec(), &oidx, out_n, count);
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

/// Float reductions: `oidx[i]` is the output element of input element `i`; `count` the
/// number of inputs per output. NaN propagates through Max and Min.
fn reduce_f64(op: ReduceOp, xs: &[f64], oidx: &[usize], out_n: usize, count: usize) -> Vec<f64> {
    if op == ReduceOp::LogSumExp {
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
    fn fold(acc: &mut [f64], xs: &[f64], oidx: &[usize], f: impl Fn(&mut f64, f64)) {
        for (&v, &o) in xs.iter().zip(oidx) {
            f(&mut acc[o], v);
        }
    }
    match op {
        ReduceOp::Max => fold(&mut acc, xs, oidx, |a, v| {
            if v > *a || v.is_nan() {
                *a = v
            }
        }),
        ReduceOp::Min => fold(&mut acc, xs, oidx, |a, v| {
            if v < *a || v.is_nan() {
                *a = v
            }
        }),
        // (LogSumExp returned above.)
        ReduceOp::Mean | ReduceOp::Sum | ReduceOp::LogSum | ReduceOp::LogSumExp => {
            fold(&mut acc, xs, oidx, |a, v| *a += v)
        }
        ReduceOp::Prod => fold(&mut acc, xs, oidx, |a, v| *a *= v),
        ReduceOp::L1 => fold(&mut acc, xs, oidx, |a, v| *a += v.abs()),
        ReduceOp::L2 | ReduceOp::SumSquare => fold(&mut acc, xs, oidx, |a, v| *a += v * v),
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
