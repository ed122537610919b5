//! Weight layout changes pushed into constant weight chains, and compressed weights
//! (integer `Const` → `Convert` → [`Subtract` zero point] → `Multiply` scale) turned into
//! `DequantizeLinear` of the integer constant.
//!
//! GroupConvolution keeps weights as `[G, O/G, I/G, k...]` and MatMul may transpose its second
//! operand; lpc's Conv wants `[O, I/G, k...]` and its MatMul has no transpose flag. When the
//! weights are a chain of constants (`Const`, `Convert`, `Subtract`/`Multiply`/`Add`/`Divide`
//! by a broadcast constant, `FakeQuantize` with broadcast ranges), the layout change is applied
//! to each constant of the chain, so the chain stays "constant → dequantize" for the fold stage.
//! Otherwise a `Reshape` or `Transpose` node is inserted.

use crate::builder::Builder;
use crate::net::Layer;
use lpc_ir::{BinaryOp, DType, Graph, Op, QuantAxis, Shape, Tensor, UnaryOp, ValueRef, ValueType};

/// A layout change of a weight tensor.
#[derive(Clone, Copy)]
enum Xform {
    /// `[G, Og, rest...]` → `[G*Og, rest...]`.
    MergeGroups { g: usize, og: usize },
    /// Swap the last two axes.
    SwapLast2,
}

impl Xform {
    fn new_shape(self, full: &[usize]) -> Vec<usize> {
        match self {
            Xform::MergeGroups { g, og } => [&[g.saturating_mul(og)][..], &full[2..]].concat(),
            Xform::SwapLast2 => {
                let mut s = full.to_vec();
                let r = s.len();
                s.swap(r - 2, r - 1);
                s
            }
        }
    }

    /// The change applied to the full weight tensor.
    fn full(self, t: &Tensor) -> Option<Tensor> {
        match self {
            Xform::MergeGroups { .. } => t.clone().reshape(&self.new_shape(t.shape())).ok(),
            Xform::SwapLast2 => Some(swap_last2_tensor(t)),
        }
    }

    /// The change applied to a constant that broadcasts against the weights (of rank `r`).
    fn bcast(self, t: &Tensor, r: usize) -> Option<Tensor> {
        if t.rank() > r {
            return None;
        }
        match self {
            Xform::MergeGroups { g, og } => {
                if t.len() == 1 {
                    let rank = t.rank().min(r - 1);
                    return t.clone().reshape(&vec![1; rank]).ok();
                }
                let mut a = vec![1; r - t.rank()];
                a.extend_from_slice(t.shape());
                if a[2..].iter().any(|&d| d != 1)
                    || (a[0] != 1 && a[0] != g)
                    || (a[1] != 1 && a[1] != og)
                {
                    return None;
                }
                if g.checked_mul(og)? > 1 << 28 {
                    return None;
                }
                let aligned = t.clone().reshape(&a).ok()?;
                let expanded = expand_first2(&aligned, g, og);
                let mut shape = vec![1; r - 1];
                shape[0] = g * og;
                expanded.reshape(&shape).ok()
            }
            Xform::SwapLast2 => {
                if t.len() == 1 {
                    return Some(t.clone());
                }
                let mut a = vec![1; r - t.rank()];
                a.extend_from_slice(t.shape());
                Some(swap_last2_tensor(&t.clone().reshape(&a).ok()?))
            }
        }
    }
}

/// Moves elements: `out[i] = t[src(i)]` for a new shape.
fn gather(t: &Tensor, shape: &[usize], src: impl Fn(usize) -> usize) -> Tensor {
    let w = t.dtype().size();
    let bytes = t.to_le_bytes();
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n * w);
    for i in 0..n {
        let s = src(i) * w;
        out.extend_from_slice(&bytes[s..s + w]);
    }
    Tensor::from_le_bytes(t.dtype(), shape, &out).expect("same dtype, size from shape")
}

fn swap_last2_tensor(t: &Tensor) -> Tensor {
    let s = t.shape();
    let r = s.len();
    let (m, n) = (s[r - 2], s[r - 1]);
    let mut shape = s.to_vec();
    shape.swap(r - 2, r - 1);
    // Output element (b, j, i) of [.., n, m] reads input (b, i, j) of [.., m, n].
    gather(t, &shape, |o| {
        let (b, rem) = (o / (m * n), o % (m * n));
        let (j, i) = (rem / m, rem % m);
        b * m * n + i * n + j
    })
}

/// `[a0, a1, 1...]` with a0 ∈ {1, g}, a1 ∈ {1, og} broadcast to `[g, og, 1...]`.
fn expand_first2(t: &Tensor, g: usize, og: usize) -> Tensor {
    let (a0, a1) = (t.shape()[0], t.shape()[1]);
    let mut shape = t.shape().to_vec();
    shape[0] = g;
    shape[1] = og;
    gather(t, &shape, |o| {
        let (i, j) = (o / og, o % og);
        (if a0 == 1 { 0 } else { i }) * a1 + if a1 == 1 { 0 } else { j }
    })
}

/// The constant behind `v` when it is not of the full weight shape.
fn small_const(b: &Builder, v: ValueRef, full: &[usize]) -> Option<std::sync::Arc<Tensor>> {
    b.const_of(v).filter(|t| t.shape() != full)
}

/// Rebuilds the weight chain ending at `v` (of shape `full`) with `x` applied to its constants;
/// `None` when `v` is not such a chain.
fn push(
    b: &mut Builder,
    l: &Layer,
    v: ValueRef,
    full: &[usize],
    x: Xform,
    depth: usize,
) -> Option<ValueRef> {
    if depth > 16 {
        return None;
    }
    let node = b.g.node(v.node).clone();
    let inputs = b.g.node_inputs(v.node);
    let new_full = x.new_shape(full);
    let ty = |d: Option<DType>| ValueType {
        dtype: d,
        shape: Some(Shape::known(&new_full)),
    };
    let r = full.len();
    // A side operand: a broadcast constant (transformed) or a further chain.
    // A side operand: a broadcast constant, possibly converted (a zero point), is transformed;
    // anything else must be a further chain of the full shape.
    let side = |b: &mut Builder, s: ValueRef| -> Option<ValueRef> {
        if let Some(t) = small_const(b, s, full) {
            let t = x.bcast(&t, r)?;
            return Some(b.konst(&l.name, t));
        }
        if let Op::Unary(UnaryOp::Cast { to }) = b.g.node(s.node).op {
            if let Some(t) =
                b.g.node_input(s.node, 0)
                    .and_then(|c| small_const(b, c, full))
            {
                let t = x.bcast(&t, r)?;
                let c = b.konst(&l.name, t);
                let shape = b.g.value_type(c).shape.clone();
                return Some(b.aux(
                    &l.name,
                    Op::Unary(UnaryOp::Cast { to }),
                    &[Some(c)],
                    ValueType {
                        dtype: Some(to),
                        shape,
                    },
                ));
            }
        }
        push(b, l, s, full, x, depth + 1)
    };
    match &node.op {
        Op::Const(t) => {
            if t.shape() != full {
                return None;
            }
            let t = x.full(t)?;
            Some(b.konst(&l.name, t))
        }
        Op::Unary(UnaryOp::Cast { to }) => {
            let inner = push(b, l, inputs.first().copied().flatten()?, full, x, depth + 1)?;
            Some(b.aux(
                &l.name,
                Op::Unary(UnaryOp::Cast { to: *to }),
                &[Some(inner)],
                ty(Some(*to)),
            ))
        }
        Op::Binary(op @ (BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div)) => {
            let (p, q) = (
                inputs.first().copied().flatten()?,
                inputs.get(1).copied().flatten()?,
            );
            // The output must have exactly the weight shape.
            if b.g
                .value_type(v)
                .shape
                .as_ref()
                .and_then(Shape::as_known)
                .as_deref()
                != Some(full)
            {
                return None;
            }
            // The chain side first: broadcast constants are sized by `full`, which is only
            // trusted once a constant of that shape has been found at the chain's root.
            let is_bcast = |b: &Builder, s: ValueRef| {
                let inner = match b.g.node(s.node).op {
                    Op::Unary(UnaryOp::Cast { .. }) => b.g.node_input(s.node, 0),
                    _ => Some(s),
                };
                inner.and_then(|c| small_const(b, c, full)).is_some()
            };
            let (p, q) = if is_bcast(b, p) {
                let q = side(b, q)?;
                (side(b, p)?, q)
            } else {
                let p = side(b, p)?;
                (p, side(b, q)?)
            };
            let d = node.outputs.first().and_then(|o| o.ty.dtype);
            Some(b.aux(&l.name, Op::Binary(*op), &[Some(p), Some(q)], ty(d)))
        }
        Op::FakeQuantize { levels } => {
            let xin = push(b, l, inputs.first().copied().flatten()?, full, x, depth + 1)?;
            let mut ins = vec![Some(xin)];
            for k in 1..5 {
                let c = b.const_of(inputs.get(k).copied().flatten()?)?;
                let c = x.bcast(&c, r)?;
                ins.push(Some(b.konst(&l.name, c)));
            }
            let d = node.outputs.first().and_then(|o| o.ty.dtype);
            Some(b.aux(&l.name, Op::FakeQuantize { levels: *levels }, &ins, ty(d)))
        }
        _ => None,
    }
}

/// GroupConvolution weights `[G, O/G, I/G, k...]` as lpc Conv weights `[O, I/G, k...]`.
pub(super) fn merge_groups(b: &mut Builder, l: &Layer, w: ValueRef, dims: &[usize]) -> ValueRef {
    let x = Xform::MergeGroups {
        g: dims[0],
        og: dims[1],
    };
    if let Some(v) = push(b, l, w, dims, x, 0) {
        return v;
    }
    let shape = x.new_shape(dims);
    let s: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    let sc = b.konst(&l.name, Tensor::vec_i64(&s));
    let d = b.g.value_type(w).dtype;
    b.aux(
        &l.name,
        Op::Reshape { allowzero: true },
        &[Some(w), Some(sc)],
        ValueType {
            dtype: d,
            shape: Some(Shape::known(&shape)),
        },
    )
}

/// MatMul's second operand with its last two axes swapped (`transpose_b`).
pub(super) fn swap_last2(b: &mut Builder, l: &Layer, w: ValueRef, rank: usize) -> ValueRef {
    let dims = l.inputs.get(1).map(|p| p.dims.clone()).unwrap_or_default();
    if let Some(full) = dims.iter().copied().collect::<Option<Vec<usize>>>() {
        if let Some(v) = push(b, l, w, &full, Xform::SwapLast2, 0) {
            return v;
        }
    }
    let mut perm: Vec<usize> = (0..rank).collect();
    perm.swap(rank - 2, rank - 1);
    let ty = permuted(b.g.value_type(w), &perm);
    b.aux(&l.name, Op::Transpose { perm }, &[Some(w)], ty)
}

/// `ty` with its dims permuted (shape unknown when the rank does not fit `perm`).
pub(super) fn permuted(ty: &ValueType, perm: &[usize]) -> ValueType {
    let shape = ty.shape.as_ref().and_then(|s| {
        (s.rank() == perm.len()).then(|| Shape(perm.iter().map(|&p| s.0[p].clone()).collect()))
    });
    ValueType {
        dtype: ty.dtype,
        shape,
    }
}

/// The integer constant behind `Cast{f32}(Const int8/uint8)`.
fn cast_of_int_const(g: &Graph, v: ValueRef) -> Option<std::sync::Arc<Tensor>> {
    match &g.node(v.node).op {
        Op::Unary(UnaryOp::Cast { to: DType::F32 }) => {
            let t = g.const_value(g.node_input(v.node, 0)?)?;
            matches!(t.dtype(), DType::I8 | DType::U8).then(|| t.clone())
        }
        _ => None,
    }
}

/// Values of a zero-point operand: an f32 constant or `Cast{f32}` of an integer constant.
fn zero_point_values(g: &Graph, v: ValueRef) -> Option<Tensor> {
    if let Some(t) = g.const_value(v) {
        return (t.dtype() == DType::F32).then(|| (**t).clone());
    }
    match &g.node(v.node).op {
        Op::Unary(UnaryOp::Cast { to: DType::F32 }) => {
            let t = g.const_value(g.node_input(v.node, 0)?)?;
            t.dtype().is_int().then(|| t.cast(DType::F32))
        }
        _ => None,
    }
}

/// The axis along which `t` varies when broadcast against `full`: `Ok(None)` when it is one
/// value, `Ok(Some(axis))` when one axis has the full length and the others are 1, `Err` else.
fn varying_axis(t: &Tensor, full: &[usize]) -> Result<Option<usize>, ()> {
    if t.rank() > full.len() {
        return Err(());
    }
    if t.len() == 1 {
        return Ok(None);
    }
    let off = full.len() - t.rank();
    let mut axis = None;
    for (k, &d) in t.shape().iter().enumerate() {
        if d == 1 {
            continue;
        }
        if d != full[off + k] || axis.is_some() {
            return Err(());
        }
        axis = Some(off + k);
    }
    Ok(axis)
}

/// The values of `t` along `axis` (one value broadcast to `n` when `t` has one element).
fn along(t: &Tensor, n: usize) -> Vec<f32> {
    let v = t.to_f32_vec();
    if v.len() == 1 {
        vec![v[0]; n]
    } else {
        v
    }
}

/// Replaces `Mul(Cast{f32}(Const q), s)` and `Mul(Sub(Cast{f32}(Const q), zp), s)` (either
/// operand order of the Mul), with q i8/u8, s an f32 constant and zp an integral constant,
/// both per-tensor or varying along one axis of q, by `DequantizeLinear(q, s', zp')`.
pub(super) fn dequantize_compressed(g: &mut Graph) {
    for id in g.node_ids() {
        if !g.contains(id)
            || g.node(id).op != Op::Binary(BinaryOp::Mul)
            || g.node(id).outputs.len() != 1
        {
            continue;
        }
        let ins = g.node_inputs(id);
        let (Some(a), Some(c)) = (
            ins.first().copied().flatten(),
            ins.get(1).copied().flatten(),
        ) else {
            continue;
        };
        for (x, s) in [(a, c), (c, a)] {
            if let Some((q, scale, zp, axis)) = match_compressed(g, x, s) {
                let mut outs = g.node(id).outputs.clone();
                let name = g.node(id).name.clone();
                g.node_mut(id).outputs[0].name.push_str("#replaced");
                if let Some(o) = outs.first_mut() {
                    o.ty.dtype = Some(DType::F32);
                }
                let qv = g.add_const(format!("{name}/q"), q);
                let sv = g.add_const(format!("{name}/scale"), scale);
                let zv = zp.map(|z| g.add_const(format!("{name}/zero_point"), z));
                let dq = g.add_node(
                    name,
                    Op::DequantizeLinear {
                        q: QuantAxis {
                            axis: axis as i64,
                            block_size: 0,
                        },
                    },
                    &[Some(qv), Some(sv), zv],
                    outs,
                );
                g.replace_uses(ValueRef::first(id), ValueRef::first(dq));
                g.remove_node(id);
                break;
            }
        }
    }
}

type Dq = (Tensor, Tensor, Option<Tensor>, usize);

fn match_compressed(g: &Graph, x: ValueRef, s: ValueRef) -> Option<Dq> {
    let st = g.const_value(s)?;
    if st.dtype() != DType::F32 {
        return None;
    }
    let (q, zp) = match cast_of_int_const(g, x) {
        Some(q) => (q, None),
        None => {
            if g.node(x.node).op != Op::Binary(BinaryOp::Sub) {
                return None;
            }
            let q = cast_of_int_const(g, g.node_input(x.node, 0)?)?;
            let zp = zero_point_values(g, g.node_input(x.node, 1)?)?;
            (q, Some(zp))
        }
    };
    let full = q.shape().to_vec();
    let sa = varying_axis(st, &full).ok()?;
    let za = match &zp {
        Some(z) => varying_axis(z, &full).ok()?,
        None => None,
    };
    let axis = match (sa, za) {
        (Some(a), Some(b)) if a != b => return None,
        (Some(a), _) | (None, Some(a)) => Some(a),
        (None, None) => None,
    };
    let per_axis =
        |t: &Tensor| -> Vec<f32> { axis.map_or_else(|| t.to_f32_vec(), |a| along(t, full[a])) };
    let scale_v = per_axis(st);
    let scale = match axis {
        Some(_) => Tensor::from_f32(&[scale_v.len()], scale_v).ok()?,
        None => Tensor::scalar_f32(*scale_v.first()?),
    };
    let zp = match zp {
        None => None,
        Some(z) => {
            let v = per_axis(&z);
            let (lo, hi) = if q.dtype() == DType::I8 {
                (-128.0, 127.0)
            } else {
                (0.0, 255.0)
            };
            if v.iter().any(|&x| x.fract() != 0.0 || x < lo || x > hi) {
                return None;
            }
            let shape: Vec<usize> = if axis.is_some() {
                vec![v.len()]
            } else {
                vec![]
            };
            let v = if axis.is_some() { v } else { vec![*v.first()?] };
            Some(Tensor::from_f32(&shape, v).ok()?.cast(q.dtype()))
        }
    };
    Some(((*q).clone(), scale, zp, axis.unwrap_or(0)))
}
