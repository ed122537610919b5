//! Inference rules of the indexing and rearranging ops: GatherElements, GatherND,
//! ScatterElements, ScatterND, Tile, DepthToSpace, SpaceToDepth, ArgMax/ArgMin, TopK, Trilu,
//! and of Size and CastLike.

use super::{vt, vt_unranked, Cx, InferError, SymGen};
use crate::{ArgAttrs, DType, Dim, ValueType};

type R = Result<Vec<ValueType>, InferError>;

fn dims(t: &ValueType) -> Option<&[Dim]> {
    t.shape.as_ref().map(|s| s.0.as_slice())
}

fn check_indices(cx: &Cx, slot: usize) -> Result<(), InferError> {
    cx.check_dtype(slot, "indices", "i32 or i64", |d| {
        matches!(d, DType::I32 | DType::I64)
    })
}

pub(super) fn gather_elements(cx: &Cx, axis: i64) -> R {
    let data = cx.req(0, "data")?;
    let idx = cx.req(1, "indices")?;
    check_indices(cx, 1)?;
    if let (Some(dd), Some(id)) = (dims(data), dims(idx)) {
        if dd.len() != id.len() {
            return Err(cx.err(format!(
                "indices have rank {}, data rank {}: they must be equal",
                id.len(),
                dd.len()
            )));
        }
        cx.axis(axis, dd.len(), "axis")?;
    }
    Ok(vec![ValueType {
        dtype: data.dtype,
        shape: idx.shape.clone(),
    }])
}

pub(super) fn gather_nd(cx: &Cx, batch_dims: usize) -> R {
    let data = cx.req(0, "data")?;
    let idx = cx.req(1, "indices")?;
    check_indices(cx, 1)?;
    let (Some(dd), Some(id)) = (dims(data), dims(idx)) else {
        return Ok(vec![vt_unranked(data.dtype)]);
    };
    let (r, q) = (dd.len(), id.len());
    if q == 0 || batch_dims >= q.min(r) {
        return Err(cx.err(format!(
            "batch_dims {batch_dims} must be below the ranks of data ({r}) and indices ({q})"
        )));
    }
    let Dim::Known(k) = id[q - 1] else {
        // The tuple length decides the output rank.
        return Ok(vec![vt_unranked(data.dtype)]);
    };
    if k == 0 || batch_dims + k > r {
        return Err(cx.err(format!(
            "index tuples of length {k} with batch_dims {batch_dims} do not fit data of rank {r}"
        )));
    }
    let mut out = id[..q - 1].to_vec();
    for (i, d) in out.iter_mut().enumerate().take(batch_dims) {
        if let (Dim::Sym(_), Dim::Known(_)) = (&*d, &dd[i]) {
            *d = dd[i].clone();
        }
    }
    out.extend_from_slice(&dd[batch_dims + k..]);
    Ok(vec![vt(data.dtype, out)])
}

/// ScatterElements and ScatterND: the output is data's type; updates match data's dtype.
pub(super) fn scatter(cx: &Cx, axis: Option<i64>) -> R {
    let data = cx.req(0, "data")?;
    cx.req(1, "indices")?;
    cx.req(2, "updates")?;
    check_indices(cx, 1)?;
    cx.same_dtype(0, 2, "data and updates")?;
    if let Some(dd) = dims(data) {
        if let Some(a) = axis {
            cx.axis(a, dd.len(), "axis")?;
        }
    }
    Ok(vec![data.clone()])
}

pub(super) fn tile(cx: &Cx, syms: &mut SymGen) -> R {
    let x = cx.req(0, "x")?;
    cx.req(1, "repeats")?;
    cx.check_dtype(1, "repeats", "i64", |d| d == DType::I64)?;
    let Some(xd) = dims(x) else {
        return Ok(vec![vt_unranked(x.dtype)]);
    };
    let Some(reps) = cx.ints(1) else {
        return Ok(vec![vt(x.dtype, syms.dims(xd.len()))]);
    };
    if reps.len() != xd.len() {
        return Err(cx.err(format!(
            "repeats has {} values for an input of rank {}",
            reps.len(),
            xd.len()
        )));
    }
    let mut out = Vec::with_capacity(xd.len());
    for (d, &r) in xd.iter().zip(&reps) {
        let r = usize::try_from(r)
            .map_err(|_| cx.err(format!("repeats {reps:?} has a negative value")))?;
        out.push(match d {
            Dim::Known(n) => Dim::Known(
                n.checked_mul(r)
                    .ok_or_else(|| cx.err(format!("repeats {reps:?} overflow the size")))?,
            ),
            Dim::Sym(_) if r == 1 => d.clone(),
            Dim::Sym(_) => syms.dim(),
        });
    }
    Ok(vec![vt(x.dtype, out)])
}

/// `d` multiplied (`up`) or divided by `b`; a symbolic size stays itself when `b` is 1.
fn scaled(
    cx: &Cx,
    d: &Dim,
    b: usize,
    up: bool,
    what: &str,
    syms: &mut SymGen,
) -> Result<Dim, InferError> {
    Ok(match d {
        _ if b == 1 => d.clone(),
        Dim::Known(n) if up => Dim::Known(
            n.checked_mul(b)
                .ok_or_else(|| cx.err(format!("{what} {n} times {b} overflows")))?,
        ),
        Dim::Known(n) if n % b == 0 => Dim::Known(n / b),
        Dim::Known(n) => return Err(cx.err(format!("{what} {n} is not a multiple of {b}"))),
        Dim::Sym(_) => syms.dim(),
    })
}

/// DepthToSpace (`to_space`) and SpaceToDepth on NCHW.
pub(super) fn depth_space(cx: &Cx, blocksize: usize, to_space: bool, syms: &mut SymGen) -> R {
    let x = cx.req(0, "x")?;
    if blocksize == 0 {
        return Err(cx.err("blocksize must be positive"));
    }
    let Some(xd) = dims(x) else {
        return Ok(vec![vt_unranked(x.dtype)]);
    };
    if xd.len() != 4 {
        return Err(cx.err(format!(
            "input must be NCHW (rank 4), got rank {}",
            xd.len()
        )));
    }
    let b = blocksize;
    let bb = b
        .checked_mul(b)
        .ok_or_else(|| cx.err(format!("blocksize {b} overflows")))?;
    let out = vec![
        xd[0].clone(),
        scaled(cx, &xd[1], bb, !to_space, "channels", syms)?,
        scaled(cx, &xd[2], b, to_space, "height", syms)?,
        scaled(cx, &xd[3], b, to_space, "width", syms)?,
    ];
    Ok(vec![vt(x.dtype, out)])
}

/// ArgMax / ArgMin: i64 indices, the searched axis kept with size 1 or dropped.
pub(super) fn arg(cx: &Cx, a: &ArgAttrs) -> R {
    let x = cx.req(0, "x")?;
    cx.check_dtype(0, "x", "a numeric type", |d| d != DType::Bool)?;
    let Some(xd) = dims(x) else {
        return Ok(vec![vt_unranked(Some(DType::I64))]);
    };
    let ax = cx.axis(a.axis, xd.len(), "axis")?;
    let mut out = xd.to_vec();
    if a.keepdims {
        out[ax] = Dim::Known(1);
    } else {
        out.remove(ax);
    }
    Ok(vec![vt(Some(DType::I64), out)])
}

/// TopK: values of x's dtype and i64 indices, the axis cut to k (a symbol when k is unknown).
pub(super) fn top_k(cx: &Cx, axis: i64, syms: &mut SymGen) -> R {
    let x = cx.req(0, "x")?;
    cx.req(1, "k")?;
    cx.check_dtype(1, "k", "i64", |d| d == DType::I64)?;
    let Some(xd) = dims(x) else {
        return Ok(vec![vt_unranked(x.dtype), vt_unranked(Some(DType::I64))]);
    };
    let ax = cx.axis(axis, xd.len(), "axis")?;
    let mut out = xd.to_vec();
    out[ax] = match cx.ints(1).as_deref() {
        Some([k]) if *k < 0 => return Err(cx.err(format!("k {k} is negative"))),
        Some([k]) => {
            if let Dim::Known(n) = xd[ax] {
                if *k as usize > n {
                    return Err(cx.err(format!("k {k} exceeds the axis size {n}")));
                }
            }
            Dim::Known(*k as usize)
        }
        _ => syms.dim(),
    };
    Ok(vec![vt(x.dtype, out.clone()), vt(Some(DType::I64), out)])
}

/// Trilu: x's type; the last two axes form the matrices.
pub(super) fn trilu(cx: &Cx) -> R {
    let x = cx.req(0, "x")?;
    if let Some(r) = dims(x).map(<[Dim]>::len) {
        if r < 2 {
            return Err(cx.err(format!("input must have rank 2 or more, got {r}")));
        }
    }
    Ok(vec![x.clone()])
}

/// Size: an i64 scalar.
pub(super) fn size(cx: &Cx) -> R {
    cx.req(0, "x")?;
    Ok(vec![vt(Some(DType::I64), vec![])])
}

/// CastLike: x's shape with the target's dtype.
pub(super) fn cast_like(cx: &Cx) -> R {
    let x = cx.req(0, "x")?;
    let target = cx.req(1, "target")?;
    Ok(vec![ValueType {
        dtype: target.dtype,
        shape: x.shape.clone(),
    }])
}
