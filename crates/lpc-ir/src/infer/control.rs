//! Inference of the ops with bodies (If, Loop, Scan). The bodies are inferred first, as
//! graphs of their own ([`refine_bodies`], called by `infer_types` before the node's rule):
//! each body input that carries no type gets the one the outer value implies. The node's
//! output types then come from the bodies' outputs ([`control`]).

use super::{infer_types, norm_axis, Cx, InferError, SymGen};
use crate::{DType, Dim, Graph, NodeId, Op, Shape, TensorData, ValueRef, ValueType};
use std::sync::Arc;

type R = Result<Vec<ValueType>, InferError>;

/// Fills in what a body input's own declaration leaves unknown (`dtype`, `shape`) from `t`.
fn refine(body: &mut Graph, input: usize, t: &ValueType) {
    let Some(&id) = body.inputs().get(input) else {
        return;
    };
    let out = body.output_mut(ValueRef::first(id));
    if out.ty.dtype.is_none() {
        out.ty.dtype = t.dtype;
    }
    if out.ty.shape.is_none() {
        out.ty.shape = t.shape.clone();
    }
}

/// `t` without axis `axis` (a slice of a scanned input), when its rank is known.
fn without_axis(t: &ValueType, axis: i64) -> ValueType {
    let shape = t.shape.as_ref().and_then(|s| {
        let a = norm_axis(axis, s.rank())?;
        let mut d = s.0.clone();
        d.remove(a);
        Some(Shape(d))
    });
    ValueType {
        dtype: t.dtype,
        shape,
    }
}

/// Types the bodies of node `id` (when it has any): their inputs refined from the node's
/// inputs, then inference over each body. Errors name the node and the body.
pub(super) fn refine_bodies(g: &mut Graph, id: NodeId) -> Result<(), InferError> {
    let node = g.node(id);
    let Some(io) = node.op.body_io(node.num_inputs, node.outputs.len()) else {
        return Ok(());
    };
    let err = |msg: String| InferError::Node {
        node: node.name.clone(),
        op: node.op.name(),
        msg,
    };
    let io = io.map_err(err)?;
    let ins: Vec<ValueType> = g
        .node_inputs(id)
        .iter()
        .map(|v| v.map_or_else(ValueType::unknown, |v| g.value_type(v).clone()))
        .collect();
    let scalar = |d: DType| ValueType::new(d, Shape(vec![]));
    // What each body input is known to be, from outside.
    let known: Vec<ValueType> = match &node.op {
        Op::If { .. } => ins[1..].to_vec(),
        Op::Loop { .. } => {
            let mut k = vec![scalar(DType::I64), scalar(DType::Bool)];
            // A carried value may change shape from one iteration to the next: dtype only.
            k.extend(ins[2..2 + io.carried].iter().map(|t| ValueType {
                dtype: t.dtype,
                shape: None,
            }));
            k.extend(ins[2 + io.carried..].iter().cloned());
            k
        }
        Op::Scan(a) => {
            let mut k: Vec<ValueType> = ins[..io.carried].to_vec();
            for j in 0..io.scan_inputs {
                let axis = a.input_axes.get(j).copied().unwrap_or(0);
                k.push(without_axis(&ins[io.carried + j], axis));
            }
            k.extend(ins[io.carried + io.scan_inputs..].iter().cloned());
            k
        }
        _ => return Ok(()),
    };
    let name = node.name.clone();
    let op = node.op.name();
    for body in g.node_mut(id).op.bodies_mut() {
        let b = Arc::make_mut(body);
        for (i, t) in known.iter().enumerate() {
            refine(b, i, t);
        }
        infer_types(b).map_err(|e| InferError::Node {
            node: name.clone(),
            op,
            msg: format!("body '{}': {e}", b.name),
        })?;
    }
    Ok(())
}

/// One type for two: equal dtypes (an error naming `what` otherwise), dims that agree kept,
/// others a fresh symbol, the shape unknown when the ranks differ.
fn unify(cx: &Cx, a: &ValueType, b: &ValueType, what: &str, syms: &mut SymGen) -> R1 {
    let dtype = match (a.dtype, b.dtype) {
        (Some(x), Some(y)) if x != y => {
            return Err(cx.err(format!("{what}: one is {x}, the other {y}")));
        }
        (x, y) => x.or(y),
    };
    let shape = match (&a.shape, &b.shape) {
        (Some(s), Some(t)) if s.rank() == t.rank() => Some(Shape(
            s.0.iter()
                .zip(&t.0)
                .map(|(x, y)| if x == y { x.clone() } else { syms.dim() })
                .collect(),
        )),
        _ => None,
    };
    Ok(ValueType { dtype, shape })
}

type R1 = Result<ValueType, InferError>;

/// The type of body output `k`.
fn body_out(b: &Graph, k: usize) -> ValueType {
    b.outputs()
        .get(k)
        .map_or_else(ValueType::unknown, |&v| b.value_type(v).clone())
}

/// `t` with `len` inserted at `axis` (of the result's rank), when its rank is known.
fn stacked(cx: &Cx, t: &ValueType, axis: i64, len: Dim) -> R1 {
    let shape = match &t.shape {
        Some(s) => {
            let a = cx.axis(axis, s.rank() + 1, "scan output axis")?;
            let mut d = s.0.clone();
            d.insert(a, len);
            Some(Shape(d))
        }
        None => None,
    };
    Ok(ValueType {
        dtype: t.dtype,
        shape,
    })
}

/// The output types of an If, Loop or Scan node (its bodies already inferred).
pub(super) fn control(cx: &Cx, syms: &mut SymGen) -> R {
    let n_out = cx.g.node(cx.id).outputs.len();
    let io = cx
        .op()
        .body_io(cx.num_inputs(), n_out)
        .expect("an op with a body")
        .map_err(|m| cx.err(m))?;
    match cx.op() {
        Op::If {
            then_branch,
            else_branch,
        } => {
            cx.check_dtype(0, "cond", "bool", |d| d == DType::Bool)?;
            // A constant condition: the types of the branch it picks.
            if let Some(TensorData::Bool(c)) = cx.const_in(0).map(|t| t.data()) {
                if let [c] = c[..] {
                    let b = if c { then_branch } else { else_branch };
                    return Ok((0..n_out).map(|k| body_out(b, k)).collect());
                }
            }
            (0..n_out)
                .map(|k| {
                    let what = format!("output {k} of the two branches");
                    unify(
                        cx,
                        &body_out(then_branch, k),
                        &body_out(else_branch, k),
                        &what,
                        syms,
                    )
                })
                .collect()
        }
        Op::Loop { body, .. } => {
            cx.check_dtype(0, "max_trip_count", "i64", |d| d == DType::I64)?;
            cx.check_dtype(1, "cond", "bool", |d| d == DType::Bool)?;
            let mut out = vec![];
            for k in 0..io.carried {
                let what = format!("loop-carried value {k} (initial and body output)");
                out.push(unify(
                    cx,
                    cx.ty(2 + k),
                    &body_out(body, 1 + k),
                    &what,
                    syms,
                )?);
            }
            // With a constant trip count and no condition, the iteration count is known.
            let trips = match (cx.ints(0).as_deref(), cx.has(1)) {
                (Some(&[m]), false) => Some(Dim::Known(m.max(0) as usize)),
                _ => None,
            };
            for j in 0..io.scan_outputs {
                let len = trips.clone().unwrap_or_else(|| syms.dim());
                let t = body_out(body, 1 + io.carried + j);
                out.push(stacked(cx, &t, 0, len)?);
            }
            Ok(out)
        }
        Op::Scan(a) => {
            let mut out = vec![];
            for k in 0..io.carried {
                let what = format!("scan state {k} (initial and body output)");
                out.push(unify(cx, cx.ty(k), &body_out(&a.body, k), &what, syms)?);
            }
            // The sequence length: the first scan input's scanned axis.
            let first = cx.ty(io.carried);
            let axis0 = a.input_axes.first().copied().unwrap_or(0);
            let len = first
                .shape
                .as_ref()
                .and_then(|s| norm_axis(axis0, s.rank()).map(|i| s.0[i].clone()));
            for j in 0..io.scan_outputs {
                let len = len.clone().unwrap_or_else(|| syms.dim());
                let axis = a.output_axes.get(j).copied().unwrap_or(0);
                out.push(stacked(cx, &body_out(&a.body, io.carried + j), axis, len)?);
            }
            Ok(out)
        }
        _ => unreachable!("control() is only called for ops with bodies"),
    }
}
