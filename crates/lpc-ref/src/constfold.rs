//! Constant folding: evaluates nodes whose inputs are all constants (and shape queries whose
//! answer is known statically) and replaces them by constants. This is what turns ONNX shape
//! subgraphs (Shape → Gather → Concat → Reshape) into plain constant operands at import.

use crate::RunError;
use lpc_ir::{Graph, NodeId, Op, Tensor, ValueRef};

/// What folding did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FoldStats {
    /// Nodes evaluated and replaced by constants.
    pub folded: usize,
    /// Nodes removed because nothing used them any more.
    pub removed: usize,
}

/// Known dims of `x` between `start` and `end` as the i64 vector `ShapeOf` would give.
fn static_shape_of(g: &Graph, x: ValueRef, start: i64, end: Option<i64>) -> Option<Vec<i64>> {
    let shape = g.value_type(x).shape.as_ref()?;
    let r = shape.rank() as i64;
    let clamp = |v: i64| if v < 0 { (v + r).clamp(0, r) } else { v.clamp(0, r) } as usize;
    let (s, e) = (clamp(start), clamp(end.unwrap_or(r)));
    if s >= e {
        return Some(vec![]);
    }
    shape.0[s..e]
        .iter()
        .map(|d| d.known().map(|k| k as i64))
        .collect()
}

/// The constant value a node would produce, if it can be known without running the model.
/// Quantization ops are never folded: an i8 constant behind a DequantizeLinear (or a
/// FakeQuantize on weights) is exactly the structure the fold stage turns into integer kernels.
fn try_fold(g: &Graph, n: NodeId) -> Result<Option<Vec<Tensor>>, RunError> {
    let node = g.node(n);
    if matches!(
        node.op,
        Op::QuantizeLinear { .. }
            | Op::DequantizeLinear { .. }
            | Op::FakeQuantize { .. }
            | Op::DynamicQuantizeLinear
    ) {
        return Ok(None);
    }
    let slots = g.node_inputs(n);
    if matches!(node.op, Op::Input { .. } | Op::Const(_)) {
        return Ok(None);
    }
    if let Op::ShapeOf { start, end } = &node.op {
        let Some(x) = slots.first().copied().flatten() else {
            return Ok(None);
        };
        return Ok(static_shape_of(g, x, *start, *end).map(|v| vec![Tensor::vec_i64(&v)]));
    }
    if let (Op::Size, Some(Some(x))) = (&node.op, slots.first()) {
        let size = static_shape_of(g, *x, 0, None).map(|d| d.iter().product::<i64>());
        return Ok(size.map(|s| vec![Tensor::scalar_i64(s)]));
    }
    // Gather from a partly known shape: fold when the gathered dims are known.
    if let (Op::Gather { axis: 0 }, Some(Some(data)), Some(Some(idx))) =
        (&node.op, slots.first(), slots.get(1))
    {
        if let (Op::ShapeOf { start, end }, Some(it)) = (&g.node(data.node).op, g.const_value(*idx))
        {
            let Some(x) = g.node_input(data.node, 0) else {
                return Ok(None);
            };
            let Some(shape) = g.value_type(x).shape.as_ref() else {
                return Ok(None);
            };
            let r = shape.rank() as i64;
            let clamp = |v: i64| {
                if v < 0 {
                    (v + r).clamp(0, r)
                } else {
                    v.clamp(0, r)
                }
            };
            let (s, e) = (clamp(*start), clamp(end.unwrap_or(r)));
            let len = (e - s).max(0);
            let mut vals = Vec::with_capacity(it.len());
            for i in it.to_i64_vec() {
                let i = if i < 0 { i + len } else { i };
                if i < 0 || i >= len {
                    return Ok(None);
                }
                match shape.0[(s + i) as usize].known() {
                    Some(k) => vals.push(k as i64),
                    None => return Ok(None),
                }
            }
            return Ok(Tensor::from_i64(it.shape(), vals).ok().map(|t| vec![t]));
        }
    }
    let mut ins = Vec::with_capacity(slots.len());
    for s in &slots {
        match s {
            None => ins.push(None),
            Some(v) => match g.const_value(*v) {
                Some(t) => ins.push(Some(t.as_ref())),
                None => return Ok(None),
            },
        }
    }
    if ins.iter().all(Option::is_none) {
        return Ok(None);
    }
    let outs =
        crate::eval(&node.op, &ins, node.outputs.len()).map_err(|source| RunError::Node {
            node: node.name.clone(),
            op: node.op.name(),
            error: source,
        })?;
    Ok(Some(outs))
}

/// Folds constants until nothing changes. Nodes feeding graph outputs directly keep their
/// names: a folded graph output stays the output of an Identity-free constant with its name.
pub fn fold_constants(g: &mut Graph) -> Result<FoldStats, RunError> {
    let mut stats = FoldStats::default();
    let order = g.topo_order().map_err(|e| RunError::Graph(e.to_string()))?;
    for n in order {
        if !g.contains(n) {
            continue;
        }
        // Keep graph outputs as computed values so their names survive.
        if g.outputs().iter().any(|v| v.node == n) {
            continue;
        }
        let Some(outs) = try_fold(g, n)? else {
            continue;
        };
        let names: Vec<String> = g.node(n).outputs.iter().map(|o| o.name.clone()).collect();
        for (k, (t, name)) in outs.into_iter().zip(names).enumerate() {
            let c = g.add_const(name, t);
            g.replace_uses(ValueRef { node: n, output: k }, c);
        }
        g.remove_node(n);
        stats.folded += 1;
    }
    stats.removed = g.remove_dead();
    Ok(stats)
}
