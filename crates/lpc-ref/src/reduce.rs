//! ReduceMax, ReduceMean, ReduceSum over a set of axes (computed in f64, or i64 for integers).

use crate::util::{ints, norm_axis};
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
    if d == DType::Bool && op != ReduceOp::Max {
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
    let mut oidx = Vec::with_capacity(x.len());
    crate::shape_ops::for_each_index(shape, |ix| {
        oidx.push(ix.iter().zip(&ostr).map(|(i, s)| i * s).sum::<usize>())
    });
    let out_shape: Vec<usize> = if keepdims {
        out_full.clone()
    } else {
        (0..r).filter(|&k| !red[k]).map(|k| x.shape()[k]).collect()
    };
    let result = if d.is_float() || d == DType::Bool {
        let init = match op {
            ReduceOp::Max => f64::NEG_INFINITY,
            ReduceOp::Mean | ReduceOp::Sum => 0.0,
        };
        let mut acc = vec![init; out_n];
        for (v, &o) in x.to_f64_vec().into_iter().zip(&oidx) {
            match op {
                ReduceOp::Max => {
                    if v > acc[o] || v.is_nan() {
                        acc[o] = v
                    }
                }
                ReduceOp::Mean | ReduceOp::Sum => acc[o] += v,
            }
        }
        if op == ReduceOp::Mean {
            for a in &mut acc {
                *a /= count as f64;
            }
        }
        if d == DType::Bool {
            Tensor::from_bool(&out_shape, acc.iter().map(|&v| v > 0.0).collect())
        } else {
            Tensor::from_f64(&out_shape, acc).map(|t| t.into_dtype(d))
        }
    } else {
        let init = match (op, d) {
            (ReduceOp::Max, DType::I8) => i8::MIN as i64,
            (ReduceOp::Max, DType::U8) => 0,
            (ReduceOp::Max, DType::I32) => i32::MIN as i64,
            (ReduceOp::Max, _) => i64::MIN,
            _ => 0,
        };
        let mut acc = vec![init; out_n];
        for (v, &o) in x.to_i64_vec().into_iter().zip(&oidx) {
            match op {
                ReduceOp::Max => acc[o] = acc[o].max(v),
                ReduceOp::Mean | ReduceOp::Sum => acc[o] = acc[o].wrapping_add(v),
            }
        }
        if op == ReduceOp::Mean && count > 0 {
            for a in &mut acc {
                *a /= count as i64;
            }
        }
        Tensor::from_i64(&out_shape, acc).map(|t| t.into_dtype(d))
    };
    result.map_err(|e| invalid!("{e}"))
}
