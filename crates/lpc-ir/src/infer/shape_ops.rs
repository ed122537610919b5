//! Inference rules of reductions and data-movement ops (reshape, slice, pad, resize, ...),
//! including those whose output shape depends on constant inputs.

use super::values::{Elem, PartialValue};
use super::{broadcast_dims, dim_product, norm_axis, vt, vt_unranked, Cx, InferError, SymGen};
use crate::{
    AspectPolicy, CoordTransform, DType, Dim, ReduceOp, ResizeAttrs, Shape, Tensor, ValueType,
};
use std::collections::HashMap;

type R = Result<Vec<ValueType>, InferError>;

fn dims(t: &ValueType) -> Option<&[Dim]> {
    t.shape.as_ref().map(|s| s.0.as_slice())
}

fn is_index(d: DType) -> bool {
    matches!(d, DType::I32 | DType::I64)
}

/// Normalises a list of axes against `rank`, rejecting out-of-range and repeated ones.
fn axes_list(cx: &Cx, axes: &[i64], rank: usize, what: &str) -> Result<Vec<usize>, InferError> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let n = cx.axis(a, rank, what)?;
        if out.contains(&n) {
            return Err(cx.err(format!("{what} {axes:?} repeats axis {n}")));
        }
        out.push(n);
    }
    Ok(out)
}

/// Requires a shape-like input (axes, shape, pads, ...) to be a 1-D integer tensor.
fn check_int_vector(cx: &Cx, slot: usize, what: &str) -> Result<(), InferError> {
    cx.check_dtype(slot, what, "i64", |d| d == DType::I64)?;
    if let Some(d) = cx.opt(slot).and_then(dims) {
        if d.len() != 1 {
            return Err(cx.err(format!("{what} must be 1-D, got rank {}", d.len())));
        }
    }
    Ok(())
}

/// Dims from a partial shape value: known non-negative ints and symbols; unknown elements
/// become fresh symbols; a negative value is an error.
fn shape_value_dims(
    cx: &Cx,
    p: &PartialValue,
    what: &str,
    syms: &mut SymGen,
) -> Result<Vec<Dim>, InferError> {
    p.elems
        .iter()
        .map(|e| match e {
            Elem::Unknown => Ok(syms.dim()),
            Elem::Int(n) if *n < 0 => Err(cx.err(format!("{what} contains the negative size {n}"))),
            e => Ok(e.dim().unwrap_or_else(|| syms.dim())),
        })
        .collect()
}

/// The length of a 1-D input when known (for shape inputs that are not constant).
fn known_len(cx: &Cx, slot: usize) -> Option<usize> {
    cx.opt(slot).and_then(dims).and_then(|d| match d {
        [Dim::Known(n)] => Some(*n),
        _ => None,
    })
}

pub(super) fn reduce(cx: &Cx, op: ReduceOp, keepdims: bool, noop: bool, syms: &mut SymGen) -> R {
    let x = cx.req(0, "x")?;
    // ReduceMax and ReduceMin accept bool (ONNX-20); the others need numbers.
    cx.check_dtype(0, "x", "a numeric type", |d| {
        d != DType::Bool || matches!(op, ReduceOp::Max | ReduceOp::Min)
    })?;
    if cx.has(1) {
        check_int_vector(cx, 1, "axes")?;
    }
    let axes = if cx.has(1) { cx.ints(1) } else { Some(vec![]) };
    let Some(xd) = dims(x) else {
        let all = axes.as_ref().is_some_and(|a| a.is_empty()) && !noop;
        return Ok(vec![if all && !keepdims {
            vt(x.dtype, vec![])
        } else {
            vt_unranked(x.dtype)
        }]);
    };
    let r = xd.len();
    let out = match axes {
        Some(a) if a.is_empty() && noop => xd.to_vec(),
        Some(a) => {
            let reduced: Vec<usize> = if a.is_empty() {
                (0..r).collect()
            } else {
                axes_list(cx, &a, r, "axes")?
            };
            let mut out = vec![];
            for (i, d) in xd.iter().enumerate() {
                if !reduced.contains(&i) {
                    out.push(d.clone());
                } else if keepdims {
                    out.push(Dim::Known(1));
                }
            }
            out
        }
        None if keepdims => xd
            .iter()
            .map(|d| {
                if *d == Dim::Known(1) {
                    d.clone()
                } else {
                    syms.dim()
                }
            })
            .collect(),
        None => return Ok(vec![vt_unranked(x.dtype)]),
    };
    Ok(vec![vt(x.dtype, out)])
}

/// Unifies two dims that must be equal (Known refines Sym); `None` on two different sizes.
fn unify(a: &Dim, b: &Dim) -> Option<Dim> {
    match (a, b) {
        (Dim::Known(p), Dim::Known(q)) => (p == q).then(|| a.clone()),
        (Dim::Known(_), Dim::Sym(_)) => Some(a.clone()),
        (Dim::Sym(_), _) => Some(if matches!(b, Dim::Known(_)) {
            b.clone()
        } else {
            a.clone()
        }),
    }
}

pub(super) fn concat(cx: &Cx, axis: i64, syms: &mut SymGen) -> R {
    let n = cx.num_inputs();
    if n == 0 {
        return Err(cx.err("needs at least one input"));
    }
    let mut types = vec![];
    for slot in 0..n {
        types.push(cx.req(slot, "x")?);
        cx.same_dtype(0, slot, "input dtypes differ")?;
    }
    let dtype = types.iter().find_map(|t| t.dtype);
    let known: Vec<&[Dim]> = types.iter().filter_map(|t| dims(t)).collect();
    let Some(first) = known.first() else {
        return Ok(vec![vt_unranked(dtype)]);
    };
    let r = first.len();
    let a = cx.axis(axis, r, "axis")?;
    let mut out = first.to_vec();
    for d in &known[1..] {
        if d.len() != r {
            return Err(cx.err(format!(
                "inputs have different ranks ({} and {})",
                r,
                d.len()
            )));
        }
        for i in (0..r).filter(|&i| i != a) {
            out[i] = unify(&out[i], &d[i]).ok_or_else(|| {
                cx.err(format!(
                    "inputs differ on axis {i} ({} vs {}), which is not the concat axis {a}",
                    out[i], d[i]
                ))
            })?;
        }
    }
    out[a] = if known.len() < types.len() {
        syms.dim()
    } else if known.len() == 1 {
        first[a].clone()
    } else {
        let parts: Vec<&Dim> = known.iter().map(|d| &d[a]).collect();
        match parts
            .iter()
            .map(|d| d.known())
            .collect::<Option<Vec<usize>>>()
        {
            Some(k) => Dim::Known(k.iter().sum()),
            None => {
                // A symbol plus zero-sized parts is still that symbol.
                let nonzero: Vec<&&Dim> = parts.iter().filter(|d| **d != &Dim::Known(0)).collect();
                if nonzero.len() == 1 {
                    (**nonzero[0]).clone()
                } else {
                    syms.dim()
                }
            }
        }
    };
    Ok(vec![vt(dtype, out)])
}

pub(super) fn split(cx: &Cx, axis: i64, n: usize, syms: &mut SymGen) -> R {
    let x = cx.req(0, "x")?;
    if n == 0 {
        return Err(cx.err("num_outputs must be at least 1"));
    }
    if cx.has(1) {
        check_int_vector(cx, 1, "split")?;
    }
    let Some(xd) = dims(x) else {
        return Ok(vec![vt_unranked(x.dtype); n]);
    };
    let a = cx.axis(axis, xd.len(), "axis")?;
    let sizes: Vec<Dim> = match (cx.has(1), cx.ints(1)) {
        (true, Some(s)) => {
            if s.len() != n {
                return Err(cx.err(format!("split {s:?} has {} sizes for {n} outputs", s.len())));
            }
            if let Some(&neg) = s.iter().find(|&&v| v < 0) {
                return Err(cx.err(format!("split {s:?} contains the negative size {neg}")));
            }
            if let Dim::Known(d) = xd[a] {
                let total: i64 = s.iter().sum();
                if total != d as i64 {
                    return Err(cx.err(format!(
                        "split {s:?} sums to {total}, but axis {a} has size {d}"
                    )));
                }
            }
            s.iter().map(|&v| Dim::Known(v as usize)).collect()
        }
        (true, None) => syms.dims(n),
        (false, _) => match &xd[a] {
            Dim::Known(d) => {
                let chunk = d.div_ceil(n);
                let last = *d as i64 - (chunk * (n - 1)) as i64;
                if last < 0 {
                    return Err(cx.err(format!(
                        "axis {a} of size {d} cannot be split into {n} parts"
                    )));
                }
                let mut v = vec![Dim::Known(chunk); n - 1];
                v.push(Dim::Known(last as usize));
                v
            }
            d @ Dim::Sym(_) if n == 1 => vec![d.clone()],
            Dim::Sym(_) => syms.dims(n),
        },
    };
    Ok(sizes
        .into_iter()
        .map(|s| {
            let mut d = xd.to_vec();
            d[a] = s;
            vt(x.dtype, d)
        })
        .collect())
}

pub(super) fn flatten(cx: &Cx, axis: i64, syms: &mut SymGen) -> R {
    let x = cx.req(0, "x")?;
    let Some(xd) = dims(x) else {
        return Ok(vec![vt(x.dtype, syms.dims(2))]);
    };
    let r = xd.len() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if !(0..=r).contains(&a) {
        return Err(cx.err(format!("axis {axis} is out of range for rank {r}")));
    }
    let a = a as usize;
    Ok(vec![vt(
        x.dtype,
        vec![dim_product(&xd[..a], syms), dim_product(&xd[a..], syms)],
    )])
}

/// A product of dims as a known factor and a sorted list of symbols.
fn monomial(dims: &[Dim]) -> (usize, Vec<String>) {
    let mut k = 1usize;
    let mut s = vec![];
    for d in dims {
        match d {
            Dim::Known(n) => k = k.saturating_mul(*n),
            Dim::Sym(n) => s.push(n.clone()),
        }
    }
    s.sort();
    (k, s)
}

/// Removes the symbols of `sub` from `all` (as multisets); `None` if `sub` has one `all` lacks.
fn sym_difference(all: &[String], sub: &[String]) -> Option<Vec<String>> {
    let mut count: HashMap<&str, i64> = HashMap::new();
    for s in all {
        *count.entry(s).or_default() += 1;
    }
    for s in sub {
        let c = count.get_mut(s.as_str())?;
        *c -= 1;
        if *c < 0 {
            return None;
        }
    }
    let mut rest = vec![];
    for s in all {
        if let Some(c) = count.get_mut(s.as_str()) {
            if *c > 0 {
                *c -= 1;
                rest.push(s.clone());
            }
        }
    }
    Some(rest)
}

pub(super) fn reshape(cx: &Cx, allowzero: bool, syms: &mut SymGen) -> R {
    let x = cx.req(0, "x")?;
    cx.req(1, "shape")?;
    check_int_vector(cx, 1, "shape")?;
    let xd = dims(x);
    let Some(target) = cx.int_value(1) else {
        return Ok(vec![match known_len(cx, 1) {
            Some(k) => vt(x.dtype, syms.dims(k)),
            None => vt_unranked(x.dtype),
        }]);
    };
    let mut out: Vec<Option<Dim>> = Vec::with_capacity(target.elems.len());
    let mut infer_at = None;
    for (i, e) in target.elems.iter().enumerate() {
        let d = match e {
            Elem::Int(0) if !allowzero => match xd {
                Some(xd) if i < xd.len() => Some(xd[i].clone()),
                Some(xd) => {
                    return Err(cx.err(format!(
                        "shape element {i} is 0 (copy) but x has rank {}",
                        xd.len()
                    )));
                }
                None => Some(syms.dim()),
            },
            Elem::Int(-1) => {
                if infer_at.is_some() {
                    return Err(cx.err("shape has more than one -1"));
                }
                infer_at = Some(i);
                None
            }
            Elem::Int(n) if *n < 0 => return Err(cx.err(format!("shape element {i} is {n}"))),
            Elem::Int(n) => Some(Dim::Known(*n as usize)),
            Elem::Sym(s) => Some(Dim::Sym(s.clone())),
            Elem::Unknown => Some(syms.dim()),
        };
        out.push(d);
    }
    let rest: Vec<Dim> = out.iter().flatten().cloned().collect();
    let Some(xd) = xd else {
        let dims = out
            .into_iter()
            .map(|d| d.unwrap_or_else(|| syms.dim()))
            .collect();
        return Ok(vec![vt(x.dtype, dims)]);
    };
    let (kin, sin) = monomial(xd);
    let (kout, sout) = monomial(&rest);
    match infer_at {
        None => {
            if sin == sout && kin != kout {
                return Err(cx.err(format!(
                    "cannot reshape {x} ({kin} elements) to {} ({kout} elements)",
                    Shape(rest.clone())
                )));
            }
            Ok(vec![vt(x.dtype, rest)])
        }
        Some(at) => {
            let inferred = match sym_difference(&sin, &sout) {
                Some(r) if kout != 0 && kin % kout == 0 => match (r.as_slice(), kin / kout) {
                    ([], f) => Dim::Known(f),
                    (_, 0) => Dim::Known(0),
                    ([s], 1) => Dim::Sym(s.clone()),
                    _ => syms.dim(),
                },
                Some(r) if r.is_empty() && sout.is_empty() => {
                    return Err(cx.err(format!(
                        "cannot reshape {x} ({kin} elements) to {} with -1: {kout} does not divide {kin}",
                        Shape(target.elems.iter().map(|e| e.dim().unwrap_or(Dim::Sym("-1".into()))).collect())
                    )));
                }
                _ => syms.dim(),
            };
            let mut dims = Vec::with_capacity(out.len());
            for (i, d) in out.into_iter().enumerate() {
                dims.push(if i == at {
                    inferred.clone()
                } else {
                    d.unwrap_or_else(|| syms.dim())
                });
            }
            Ok(vec![vt(x.dtype, dims)])
        }
    }
}

pub(super) fn squeeze(cx: &Cx) -> R {
    let x = cx.req(0, "x")?;
    if cx.has(1) {
        check_int_vector(cx, 1, "axes")?;
    }
    let Some(xd) = dims(x) else {
        return Ok(vec![vt_unranked(x.dtype)]);
    };
    let out = match (cx.has(1), cx.ints(1)) {
        (true, Some(a)) => {
            let axes = axes_list(cx, &a, xd.len(), "axes")?;
            for &i in &axes {
                if let Dim::Known(n) = xd[i] {
                    if n != 1 {
                        return Err(cx.err(format!("cannot squeeze axis {i} of size {n} in {x}")));
                    }
                }
            }
            xd.iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, d)| d.clone())
                .collect()
        }
        (true, None) => return Ok(vec![vt_unranked(x.dtype)]),
        (false, _) => {
            if xd.iter().any(|d| matches!(d, Dim::Sym(_))) {
                // Whether a symbolic dim is 1 decides the rank: unknown.
                return Ok(vec![vt_unranked(x.dtype)]);
            }
            xd.iter()
                .filter(|d| **d != Dim::Known(1))
                .cloned()
                .collect()
        }
    };
    Ok(vec![vt(x.dtype, out)])
}

pub(super) fn unsqueeze(cx: &Cx) -> R {
    let x = cx.req(0, "x")?;
    cx.req(1, "axes")?;
    check_int_vector(cx, 1, "axes")?;
    let Some(xd) = dims(x) else {
        return Ok(vec![vt_unranked(x.dtype)]);
    };
    let Some(a) = cx.ints(1) else {
        return Ok(vec![vt_unranked(x.dtype)]);
    };
    let r = xd.len() + a.len();
    let axes = axes_list(cx, &a, r, "axes")?;
    let mut src = xd.iter();
    let out = (0..r)
        .map(|i| {
            if axes.contains(&i) {
                Some(Dim::Known(1))
            } else {
                src.next().cloned()
            }
        })
        .collect::<Option<Vec<Dim>>>()
        .ok_or_else(|| cx.err("axes do not fit the output rank"))?;
    Ok(vec![vt(x.dtype, out)])
}

pub(super) fn transpose(cx: &Cx, perm: &[usize]) -> R {
    let x = cx.req(0, "x")?;
    let Some(xd) = dims(x) else {
        return Ok(vec![vt_unranked(x.dtype)]);
    };
    let r = xd.len();
    let perm: Vec<usize> = if perm.is_empty() {
        (0..r).rev().collect()
    } else {
        perm.to_vec()
    };
    let mut seen = vec![false; r];
    if perm.len() != r
        || perm
            .iter()
            .any(|&p| p >= r || std::mem::replace(&mut seen[p], true))
    {
        return Err(cx.err(format!(
            "perm {perm:?} is not a permutation of the {r} axes of {x}"
        )));
    }
    Ok(vec![vt(
        x.dtype,
        perm.iter().map(|&p| xd[p].clone()).collect(),
    )])
}

pub(super) fn expand(cx: &Cx, syms: &mut SymGen) -> R {
    let x = cx.req(0, "x")?;
    cx.req(1, "shape")?;
    check_int_vector(cx, 1, "shape")?;
    let target = match cx.int_value(1) {
        Some(p) => shape_value_dims(cx, &p, "shape", syms)?,
        None => match known_len(cx, 1) {
            Some(k) => syms.dims(k),
            None => return Ok(vec![vt_unranked(x.dtype)]),
        },
    };
    let Some(xd) = dims(x) else {
        return Ok(vec![vt_unranked(x.dtype)]);
    };
    let out = broadcast_dims(xd, &target).map_err(|e| cx.err(e.to_string()))?;
    Ok(vec![vt(x.dtype, out)])
}

pub(super) fn gather(cx: &Cx, axis: i64) -> R {
    let data = cx.req(0, "data")?;
    let idx = cx.req(1, "indices")?;
    cx.check_dtype(1, "indices", "i32 or i64", is_index)?;
    let (Some(dd), Some(id)) = (dims(data), dims(idx)) else {
        return Ok(vec![vt_unranked(data.dtype)]);
    };
    let a = cx.axis(axis, dd.len(), "axis")?;
    if let (Some(t), Dim::Known(n)) = (cx.const_in(1), &dd[a]) {
        if let Some(bad) = t
            .to_i64_vec()
            .into_iter()
            .find(|&i| norm_axis(i, *n).is_none())
        {
            return Err(cx.err(format!(
                "index {bad} is out of range for axis {a} of size {n}"
            )));
        }
    }
    let mut out = dd[..a].to_vec();
    out.extend_from_slice(id);
    out.extend_from_slice(&dd[a + 1..]);
    Ok(vec![vt(data.dtype, out)])
}

/// The `[start, end)` range of dims that `shape_of` returns for a rank-`r` input.
pub(super) fn shape_range(r: usize, start: i64, end: Option<i64>) -> (usize, usize) {
    let clamp = |v: i64| -> usize {
        let v = if v < 0 { v + r as i64 } else { v };
        v.clamp(0, r as i64) as usize
    };
    let s = clamp(start);
    let e = end.map_or(r, clamp);
    (s, e.max(s))
}

pub(super) fn shape_of(cx: &Cx, start: i64, end: Option<i64>, syms: &mut SymGen) -> R {
    let x = cx.req(0, "x")?;
    let len = match dims(x) {
        Some(d) => {
            let (s, e) = shape_range(d.len(), start, end);
            Dim::Known(e - s)
        }
        None => syms.dim(),
    };
    Ok(vec![vt(Some(DType::I64), vec![len])])
}

/// The indices a slice `start:end:step` picks from an axis of size `n` (ONNX clamping).
pub(super) fn slice_indices(n: i64, start: i64, end: i64, step: i64) -> Vec<usize> {
    let (s, e) = slice_bounds(n, start, end, step);
    let mut v = vec![];
    let mut i = s;
    while (step > 0 && i < e) || (step < 0 && i > e) {
        v.push(i as usize);
        i += step as i128;
    }
    v
}

/// Clamped start and end of a slice on an axis of size `n`, as ONNX defines them.
fn slice_bounds(n: i64, start: i64, end: i64, step: i64) -> (i128, i128) {
    let n = n as i128;
    let adj = |v: i64| -> i128 {
        let v = v as i128;
        if v < 0 {
            v + n
        } else {
            v
        }
    };
    if n == 0 {
        // Nothing to pick; (start, end) chosen so that the length is 0 for either direction.
        (0, 0)
    } else if step > 0 {
        (adj(start).clamp(0, n), adj(end).clamp(0, n))
    } else {
        (adj(start).clamp(0, n - 1), adj(end).clamp(-1, n - 1))
    }
}

/// Number of elements a slice keeps from an axis of size `n`.
fn slice_len(n: usize, start: i64, end: i64, step: i64) -> usize {
    let (s, e) = slice_bounds(n as i64, start, end, step);
    let st = step as i128;
    let len = if step > 0 {
        (e - s + st - 1) / st
    } else {
        (s - e + (-st) - 1) / (-st)
    };
    len.max(0) as usize
}

pub(super) fn slice(cx: &Cx, syms: &mut SymGen) -> R {
    let x = cx.req(0, "data")?;
    cx.req(1, "starts")?;
    cx.req(2, "ends")?;
    for (slot, what) in [(1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")] {
        cx.check_dtype(slot, what, "i32 or i64", is_index)?;
    }
    cx.same_dtype(1, 2, "starts and ends dtypes differ")?;
    let Some(xd) = dims(x) else {
        return Ok(vec![vt_unranked(x.dtype)]);
    };
    let r = xd.len();
    let starts = cx.ints(1);
    let ends = cx.ints(2);
    let n = starts
        .as_ref()
        .or(ends.as_ref())
        .map(|v| v.len())
        .or_else(|| known_len(cx, 1));
    let axes: Option<Vec<i64>> = if cx.has(3) {
        cx.ints(3)
    } else {
        n.map(|n| (0..n as i64).collect())
    };
    let steps: Option<Vec<i64>> = if cx.has(4) {
        cx.ints(4)
    } else {
        n.map(|n| vec![1; n])
    };
    let Some(axes) = axes else {
        return Ok(vec![vt(x.dtype, syms.dims(r))]);
    };
    let axes = axes_list(cx, &axes, r, "axes")?;
    let (Some(starts), Some(ends), Some(steps)) = (starts, ends, steps) else {
        let mut out = xd.to_vec();
        for a in axes {
            out[a] = syms.dim();
        }
        return Ok(vec![vt(x.dtype, out)]);
    };
    if starts.len() != axes.len() || ends.len() != axes.len() || steps.len() != axes.len() {
        return Err(cx.err(format!(
            "starts {starts:?}, ends {ends:?}, axes and steps {steps:?} have different lengths"
        )));
    }
    let mut out = xd.to_vec();
    for (i, &a) in axes.iter().enumerate() {
        let (s, e, st) = (starts[i], ends[i], steps[i]);
        if st == 0 {
            return Err(cx.err(format!("step on axis {a} is 0")));
        }
        out[a] = match &xd[a] {
            Dim::Known(n) => Dim::Known(slice_len(*n, s, e, st)),
            d @ Dim::Sym(_) if s == 0 && st == 1 && e >= i32::MAX as i64 => d.clone(),
            Dim::Sym(_) => syms.dim(),
        };
    }
    Ok(vec![vt(x.dtype, out)])
}

pub(super) fn pad(cx: &Cx, syms: &mut SymGen) -> R {
    let x = cx.req(0, "x")?;
    cx.req(1, "pads")?;
    check_int_vector(cx, 1, "pads")?;
    if cx.has(2) {
        cx.same_dtype(0, 2, "constant_value dtype differs from x")?;
    }
    if cx.has(3) {
        cx.check_dtype(3, "axes", "i32 or i64", is_index)?;
    }
    let Some(xd) = dims(x) else {
        return Ok(vec![vt_unranked(x.dtype)]);
    };
    let r = xd.len();
    let axes: Option<Vec<usize>> = if cx.has(3) {
        cx.ints(3)
            .map(|a| axes_list(cx, &a, r, "axes"))
            .transpose()?
    } else {
        Some((0..r).collect())
    };
    let Some(axes) = axes else {
        return Ok(vec![vt(x.dtype, syms.dims(r))]);
    };
    let Some(pads) = cx.ints(1) else {
        let mut out = xd.to_vec();
        for a in axes {
            out[a] = syms.dim();
        }
        return Ok(vec![vt(x.dtype, out)]);
    };
    let n = axes.len();
    if pads.len() != 2 * n {
        return Err(cx.err(format!(
            "pads {pads:?} has {} values, expected {} for {n} axes",
            pads.len(),
            2 * n
        )));
    }
    let mut out = xd.to_vec();
    for (i, &a) in axes.iter().enumerate() {
        let (pb, pe) = (pads[i], pads[n + i]);
        out[a] = match &xd[a] {
            Dim::Known(d) => {
                let size = *d as i128 + pb as i128 + pe as i128;
                if size < 0 {
                    return Err(cx.err(format!(
                        "pads {pads:?} make axis {a} of size {d} negative ({size})"
                    )));
                }
                Dim::Known(size as usize)
            }
            d @ Dim::Sym(_) if pb == 0 && pe == 0 => d.clone(),
            Dim::Sym(_) => syms.dim(),
        };
    }
    Ok(vec![vt(x.dtype, out)])
}

/// A constant float vector input that is present and non-empty (Resize roi/scales).
fn const_floats(cx: &Cx, slot: usize) -> Option<Vec<f32>> {
    cx.const_in(slot)
        .filter(|t| !t.is_empty())
        .map(|t: &std::sync::Arc<Tensor>| t.to_f32_vec())
}

/// True if an optional input is connected and not a constant empty tensor.
fn given(cx: &Cx, slot: usize) -> bool {
    cx.has(slot)
        && !cx.const_in(slot).is_some_and(|t| t.is_empty())
        && known_len(cx, slot) != Some(0)
}

pub(super) fn resize(cx: &Cx, a: &ResizeAttrs, syms: &mut SymGen) -> R {
    let x = cx.req(0, "x")?;
    cx.check_dtype(2, "scales", "a float type", |d| d.is_float())?;
    cx.check_dtype(3, "sizes", "i64", |d| d == DType::I64)?;
    let (has_scales, has_sizes) = (given(cx, 2), given(cx, 3));
    if has_scales && has_sizes {
        return Err(cx.err("only one of scales and sizes may be given"));
    }
    if !has_scales && !has_sizes {
        return Err(cx.err("needs scales or sizes"));
    }
    let Some(xd) = dims(x) else {
        if has_sizes && a.axes.is_empty() && a.policy == AspectPolicy::Stretch {
            if let Some(s) = cx.ints(3) {
                let p = PartialValue {
                    scalar: false,
                    elems: s.into_iter().map(Elem::Int).collect(),
                };
                return Ok(vec![vt(x.dtype, shape_value_dims(cx, &p, "sizes", syms)?)]);
            }
        }
        return Ok(vec![vt_unranked(x.dtype)]);
    };
    let r = xd.len();
    let axes: Vec<usize> = if a.axes.is_empty() {
        (0..r).collect()
    } else {
        axes_list(cx, &a.axes, r, "axes")?
    };
    let mut out = xd.to_vec();
    if has_scales {
        let Some(scales) = const_floats(cx, 2) else {
            for &ax in &axes {
                out[ax] = syms.dim();
            }
            return Ok(vec![vt(x.dtype, out)]);
        };
        if scales.len() != axes.len() {
            return Err(cx.err(format!(
                "scales has {} values for {} axes",
                scales.len(),
                axes.len()
            )));
        }
        if let Some(bad) = scales
            .iter()
            .find(|s| s.is_nan() || **s <= 0.0 || s.is_infinite())
        {
            return Err(cx.err(format!("scale {bad} is not a positive finite number")));
        }
        let roi = if a.coord == CoordTransform::TfCropAndResize {
            const_floats(cx, 1)
        } else {
            None
        };
        if let Some(roi) = &roi {
            if roi.len() != 2 * axes.len() {
                return Err(cx.err(format!(
                    "roi has {} values, expected {}",
                    roi.len(),
                    2 * axes.len()
                )));
            }
        }
        for (i, &ax) in axes.iter().enumerate() {
            let extent = roi.as_ref().map_or(1.0, |roi| roi[axes.len() + i] - roi[i]);
            out[ax] = match &xd[ax] {
                Dim::Known(n) => {
                    Dim::Known((*n as f32 * extent * scales[i]).floor().max(0.0) as usize)
                }
                d @ Dim::Sym(_) if scales[i] == 1.0 && extent == 1.0 => d.clone(),
                Dim::Sym(_) => syms.dim(),
            };
        }
        return Ok(vec![vt(x.dtype, out)]);
    }
    let Some(sizes) = cx.ints(3) else {
        for &ax in &axes {
            out[ax] = syms.dim();
        }
        return Ok(vec![vt(x.dtype, out)]);
    };
    if sizes.len() != axes.len() {
        return Err(cx.err(format!(
            "sizes has {} values for {} axes",
            sizes.len(),
            axes.len()
        )));
    }
    if let Some(bad) = sizes.iter().find(|&&s| s < 0) {
        return Err(cx.err(format!("sizes contains the negative size {bad}")));
    }
    match a.policy {
        AspectPolicy::Stretch => {
            for (i, &ax) in axes.iter().enumerate() {
                out[ax] = Dim::Known(sizes[i] as usize);
            }
        }
        AspectPolicy::NotLarger | AspectPolicy::NotSmaller => {
            let ins: Option<Vec<usize>> = axes.iter().map(|&ax| xd[ax].known()).collect();
            match ins {
                Some(ins) if ins.iter().all(|&n| n > 0) => {
                    let ratios = sizes.iter().zip(&ins).map(|(&s, &n)| s as f64 / n as f64);
                    let scale = if a.policy == AspectPolicy::NotLarger {
                        ratios.fold(f64::INFINITY, f64::min)
                    } else {
                        ratios.fold(f64::NEG_INFINITY, f64::max)
                    };
                    for (i, &ax) in axes.iter().enumerate() {
                        out[ax] = Dim::Known((scale * ins[i] as f64 + 0.5).floor() as usize);
                    }
                }
                _ => {
                    for &ax in &axes {
                        out[ax] = syms.dim();
                    }
                }
            }
        }
    }
    Ok(vec![vt(x.dtype, out)])
}

pub(super) fn range(cx: &Cx, syms: &mut SymGen) -> R {
    let mut dtype = None;
    for (slot, what) in [(0, "start"), (1, "limit"), (2, "delta")] {
        let t = cx.req(slot, what)?;
        cx.check_dtype(slot, what, "a numeric type", |d| d != DType::Bool)?;
        cx.same_dtype(0, slot, "start, limit and delta dtypes differ")?;
        // One element (any rank, as ONNX Runtime takes it); a symbolic dim may be 1.
        if let Some(d) = dims(t) {
            if d.iter().any(|d| matches!(d, Dim::Known(k) if *k != 1)) {
                return Err(cx.err(format!("{what} must be a scalar, got {t}")));
            }
        }
        dtype = dtype.or(t.dtype);
    }
    let (Some(s), Some(l), Some(d)) = (cx.const_in(0), cx.const_in(1), cx.const_in(2)) else {
        return Ok(vec![vt(dtype, vec![syms.dim()])]);
    };
    let scalar = |t: &Tensor, what: &str| -> Result<(i128, f64), InferError> {
        let i = t.to_i64_vec().first().copied();
        let f = t.to_f64_vec().first().copied();
        match (i, f) {
            (Some(i), Some(f)) => Ok((i128::from(i), f)),
            _ => Err(cx.err(format!("{what} is empty"))),
        }
    };
    let ((si, sf), (li, lf), (di, df)) = (
        scalar(s, "start")?,
        scalar(l, "limit")?,
        scalar(d, "delta")?,
    );
    let n = if s.dtype().is_int() {
        if di == 0 {
            return Err(cx.err("delta is 0"));
        }
        let span = li - si;
        let q = span / di + i128::from(span % di != 0 && (span < 0) == (di < 0));
        q.max(0) as usize
    } else {
        if df == 0.0 || !(sf.is_finite() && lf.is_finite() && df.is_finite()) {
            return Err(cx.err(format!(
                "start {sf}, limit {lf}, delta {df} do not make a finite range"
            )));
        }
        ((lf - sf) / df).ceil().max(0.0) as usize
    };
    Ok(vec![vt(dtype, vec![Dim::Known(n)])])
}

pub(super) fn constant_of_shape(cx: &Cx, value: &Tensor, syms: &mut SymGen) -> R {
    cx.req(0, "shape")?;
    check_int_vector(cx, 0, "shape")?;
    if value.len() != 1 {
        return Err(cx.err(format!("value must have one element, got {value}")));
    }
    let dtype = Some(value.dtype());
    match cx.int_value(0) {
        Some(p) => Ok(vec![vt(dtype, shape_value_dims(cx, &p, "shape", syms)?)]),
        None => Ok(vec![match known_len(cx, 0) {
            Some(k) => vt(dtype, syms.dims(k)),
            None => vt_unranked(dtype),
        }]),
    }
}
