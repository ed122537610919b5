//! The verifier: structural checks every stage may rely on.

use crate::{Graph, Op};
use std::collections::HashSet;

/// A structural defect, naming the node.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid graph: {0}")]
pub struct VerifyError(pub String);

/// Allowed output counts of an op.
fn outputs_allowed(op: &Op, n: usize) -> bool {
    match op {
        Op::MaxPool { .. } => (1..=2).contains(&n),
        Op::Split { num_outputs, .. } => n == *num_outputs,
        Op::BatchNorm { .. } => n == 1 || n == 3,
        Op::LayerNorm { .. } => (1..=3).contains(&n),
        Op::DynamicQuantizeLinear => n == 3,
        Op::Input { .. }
        | Op::Const(_)
        | Op::Unary(_)
        | Op::Binary(_)
        | Op::Clip
        | Op::Where
        | Op::Conv(_)
        | Op::ConvTranspose { .. }
        | Op::ConvInteger(_)
        | Op::QLinearConv(_)
        | Op::MatMul
        | Op::MatMulInteger
        | Op::QLinearMatMul
        | Op::Gemm { .. }
        | Op::AveragePool { .. }
        | Op::GlobalAveragePool
        | Op::GlobalMaxPool
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::Reduce { .. }
        | Op::Concat { .. }
        | Op::Flatten { .. }
        | Op::Reshape { .. }
        | Op::Squeeze
        | Op::Unsqueeze
        | Op::Transpose { .. }
        | Op::Expand
        | Op::Gather { .. }
        | Op::ShapeOf { .. }
        | Op::Slice
        | Op::Pad { .. }
        | Op::Resize(_)
        | Op::Range
        | Op::ConstantOfShape { .. }
        | Op::QuantizeLinear { .. }
        | Op::DequantizeLinear { .. }
        | Op::FakeQuantize { .. }
        | Op::QConv(_)
        | Op::QMatMul
        | Op::Requantize
        | Op::QAdd
        | Op::Lut => n == 1,
    }
}

/// Checks: acyclic; every edge within its endpoints' slots and outputs; required inputs
/// present and within the op's arity; output counts; unique, non-empty value names; graph
/// inputs and outputs exist; constants' types match their tensors.
pub fn verify(g: &Graph) -> Result<(), VerifyError> {
    let order = g.topo_order().map_err(|e| VerifyError(e.to_string()))?;
    let mut names = HashSet::new();
    for &n in &order {
        let node = g.node(n);
        let who = format!("node '{}' ({})", node.name, node.op.name());
        let (req, max) = node.op.arity();
        let slots = g.node_inputs(n);
        if node.num_inputs < req || slots[..req].iter().any(Option::is_none) {
            return Err(VerifyError(format!("{who} needs {req} inputs")));
        }
        if let Some(m) = max {
            if node.num_inputs > m {
                return Err(VerifyError(format!("{who} takes at most {m} inputs, has {}", node.num_inputs)));
            }
        }
        for v in slots.iter().flatten() {
            if !g.contains(v.node) || v.output >= g.node(v.node).outputs.len() {
                return Err(VerifyError(format!("{who} reads a missing value")));
            }
        }
        if !outputs_allowed(&node.op, node.outputs.len()) {
            return Err(VerifyError(format!("{who} has {} outputs", node.outputs.len())));
        }
        for o in &node.outputs {
            if o.name.is_empty() || !names.insert(o.name.clone()) {
                return Err(VerifyError(format!("{who}: value name '{}' is empty or not unique", o.name)));
            }
        }
        if let Op::Const(t) = &node.op {
            let ty = &node.outputs[0].ty;
            if ty.dtype != Some(t.dtype()) || ty.shape.as_ref().and_then(|s| s.as_known()).as_deref() != Some(t.shape()) {
                return Err(VerifyError(format!("{who}: declared type {ty} differs from its tensor {t}")));
            }
        }
    }
    for (i, &n) in g.inputs().iter().enumerate() {
        if !g.contains(n) || g.node(n).op != (Op::Input { index: i }) {
            return Err(VerifyError(format!("graph input {i} is not an input node with index {i}")));
        }
    }
    for v in g.outputs() {
        if !g.contains(v.node) || v.output >= g.node(v.node).outputs.len() {
            return Err(VerifyError("a graph output refers to a missing value".into()));
        }
    }
    Ok(())
}
