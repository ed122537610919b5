//! Units: the groups of quantizers that return to FP32 together, their MACs, and how to
//! return them.

use crate::QuantError;
use lpc_ir::{DType, Graph, Op, Tensor, ValueRef};
use std::collections::HashMap;

/// What a unit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitKind {
    /// A Conv, ConvTranspose, MatMul or Gemm whose inputs are quantized (it has MACs).
    Layer,
    /// Another node reading quantized inputs that share one range (Concat, residual Add):
    /// its inputs change together.
    Join,
}

/// A group of quantizers that returns to FP32 together: the quantized inputs (and weights) of
/// one node.
#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    /// Node name.
    pub name: String,
    /// Op name.
    pub op: &'static str,
    /// Layer or join.
    pub kind: UnitKind,
    /// Multiply-accumulates per sample (layers), 0 for joins.
    pub macs: u64,
    /// True when both multiplicands are quantized (the layer can run in INT8).
    pub int8: bool,
}

fn is_layer(op: &Op) -> bool {
    matches!(
        op,
        Op::Conv(_) | Op::ConvTranspose { .. } | Op::MatMul | Op::Gemm { .. }
    )
}

/// The float value a quantizer reads, when `v` is the output of a FakeQuantize or of a
/// DequantizeLinear (of a QuantizeLinear, or of a constant).
fn quantizer_input(g: &Graph, v: ValueRef) -> Option<ValueRef> {
    let n = g.node(v.node);
    if let Op::FakeQuantize { .. } = n.op {
        return g.node_input(v.node, 0);
    }
    if let Op::DequantizeLinear { .. } = n.op {
        let x = g.node_input(v.node, 0)?;
        if let Op::QuantizeLinear { .. } = g.node(x.node).op {
            return g.node_input(x.node, 0);
        }
        // Integer weights (a QDQ model's i8 constant) have no float form to restore: keep the
        // DequantizeLinear.
        return g
            .const_value(x)
            .is_some_and(|t| t.dtype().is_float())
            .then_some(x);
    }
    None
}

/// MACs per sample of every Conv/ConvTranspose/MatMul/Gemm of `g` (by node name), measured from
/// the shapes of one run on `sample`.
pub fn layer_macs(g: &Graph, sample: &[Tensor]) -> Result<HashMap<String, u64>, QuantError> {
    let mut shapes: HashMap<ValueRef, Vec<usize>> = HashMap::new();
    lpc_ref::run_observed(g, sample, |v, t| {
        if is_layer(&g.node(v.node).op) || g.users(v).iter().any(|u| is_layer(&g.node(u.0).op)) {
            shapes.insert(v, t.shape().to_vec());
        }
    })
    .map_err(|source| QuantError::Run { sample: 0, source })?;
    let shape = |v: Option<ValueRef>| -> Option<Vec<usize>> {
        let v = v?;
        shapes
            .get(&v)
            .cloned()
            .or_else(|| g.const_value(v).map(|t| t.shape().to_vec()))
    };
    let mut out = HashMap::new();
    for n in g.node_ids() {
        let node = g.node(n);
        if !is_layer(&node.op) {
            continue;
        }
        let (Some(a), Some(b), Some(y)) = (
            shape(g.node_input(n, 0)),
            shape(g.node_input(n, 1)),
            shape(Some(ValueRef::first(n))),
        ) else {
            continue;
        };
        let prod = |s: &[usize]| s.iter().map(|&d| d as u64).product::<u64>();
        let tail = prod(b.get(1..).unwrap_or(&[]));
        // One sample: no batch division needed.
        let macs = if let Op::Conv(_) = node.op {
            prod(&y) * tail
        } else if let Op::ConvTranspose { .. } = node.op {
            prod(&a) * tail
        } else if let Op::Gemm { trans_a, .. } = node.op {
            prod(&y) * a.get(usize::from(!trans_a)).copied().unwrap_or(1) as u64
        } else {
            // MatMul: [.., M, K] x [.., K, N].
            prod(&y) * a.last().copied().unwrap_or(1) as u64
        };
        out.insert(node.name.clone(), macs);
    }
    Ok(out)
}

/// The restorable units of a quantized graph, in topological order.
pub fn units(g: &Graph, macs: &HashMap<String, u64>) -> Result<Vec<Unit>, QuantError> {
    let order = g.topo_order().map_err(QuantError::from)?;
    let mut out = vec![];
    for n in order {
        let node = g.node(n);
        if matches!(
            node.op,
            Op::FakeQuantize { .. } | Op::QuantizeLinear { .. } | Op::DequantizeLinear { .. }
        ) {
            continue;
        }
        let quantized: Vec<bool> = g
            .node_inputs(n)
            .iter()
            .map(|v| v.is_some_and(|v| quantizer_input(g, v).is_some()))
            .collect();
        if !quantized.iter().any(|&q| q) {
            continue;
        }
        let layer = is_layer(&node.op);
        out.push(Unit {
            name: node.name.clone(),
            op: node.op.name(),
            kind: if layer {
                UnitKind::Layer
            } else {
                UnitKind::Join
            },
            macs: if layer {
                macs.get(&node.name).copied().unwrap_or(0)
            } else {
                0
            },
            int8: layer && quantized.len() >= 2 && quantized[0] && quantized[1],
        });
    }
    Ok(out)
}

/// Returns `unit` to FP32 in `g`: its inputs read the float values behind their quantizers,
/// layer weights and biases come from `reference` (the FP32 graph after the same folding, so
/// bias correction is undone), and a MatMul's bias-correction Add is zeroed.
pub fn restore(g: &mut Graph, reference: &Graph, unit: &Unit) -> Result<(), QuantError> {
    let n = g
        .find_node(&unit.name)
        .ok_or_else(|| QuantError::Internal(format!("unit '{}' is not in the graph", unit.name)))?;
    let rn = reference.find_node(&unit.name);
    for (slot, v) in g.node_inputs(n).into_iter().enumerate() {
        let Some(v) = v else { continue };
        if let Some(x) = quantizer_input(g, v) {
            g.set_node_input(n, slot, Some(x));
        }
    }
    if unit.kind == UnitKind::Join {
        return Ok(());
    }
    // Weights and bias from the FP32 graph (same node name and op kind).
    if let Some(rn) = rn.filter(|&r| reference.node(r).op.name() == unit.op) {
        let slots = if unit.op == Op::MatMul.name() {
            1..2
        } else {
            1..3
        };
        for slot in slots {
            let cur = g.node_input(n, slot);
            let want = reference.node_input(rn, slot);
            match want.and_then(|w| reference.const_value(w)) {
                Some(t) => {
                    if cur
                        .and_then(|c| g.const_value(c))
                        .is_some_and(|c| c.same_content(t))
                    {
                        continue;
                    }
                    let c = g.add_const(format!("{}__fp32_{slot}", unit.name), t.clone());
                    g.set_node_input(n, slot, Some(c));
                }
                None if want.is_none() && slot == 2 => g.set_node_input(n, slot, None),
                None => {}
            }
        }
    }
    // A MatMul's bias correction is a separate Add named after it.
    let add_name = format!("{}__bias_add", unit.name);
    if let Some(add) = g.find_node(&add_name) {
        if let Some(s) = g.node_input(add, 1) {
            if let Some(t) = g.const_value(s).cloned() {
                let z = g.add_const(
                    format!("{}__bias_zero", unit.name),
                    Tensor::zeros(DType::F32, t.shape()),
                );
                g.set_node_input(add, 1, Some(z));
            }
        }
    }
    Ok(())
}

/// A copy of `g` with `restored` units in FP32 and dead quantizers removed.
pub fn with_fp32(g: &Graph, reference: &Graph, restored: &[&Unit]) -> Result<Graph, QuantError> {
    let mut out = g.clone();
    for u in restored {
        restore(&mut out, reference, u)?;
    }
    out.remove_dead();
    Ok(out)
}

/// Fraction of `total` MACs that stay INT8 with `fp32` units (indices into `units`) in FP32.
pub(crate) fn int8_fraction(units: &[Unit], fp32: &[usize], total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let int8: u64 = units
        .iter()
        .enumerate()
        .filter(|(i, u)| u.int8 && !fp32.contains(i))
        .map(|(_, u)| u.macs)
        .sum();
    int8 as f64 / total as f64
}
