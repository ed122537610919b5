//! Graph → e-graph: loading an lpc graph into the e-graph (Q/DQ with constant parameters
//! become canonical `q`/`dq` nodes with broadcast-shaped parameters).

use crate::analysis::{FGraph, FoldAnalysis};
use crate::lang::{AttrKey, ConstKey, FNode, Head, HeadKind};
use crate::FoldError;
use egg::Id;
use lpc_ir::{DType, Graph, NodeId, Op, Tensor, ValueRef};
use std::collections::HashMap;
use std::sync::Arc;

/// A graph loaded into an e-graph.
pub struct Loaded {
    /// Graph name.
    pub name: String,
    /// The e-graph.
    pub eg: FGraph,
    /// The class of every graph output, in order, with its value name.
    pub outputs: Vec<(Id, String)>,
    /// Graph inputs: (name, type), in order.
    pub inputs: Vec<(String, lpc_ir::ValueType)>,
    /// Source node names and the class of their first output.
    pub node_classes: Vec<(String, Id)>,
    /// Value names of the source graph, by class (first one wins).
    pub names: HashMap<Id, String>,
}

fn leaf(eg: &mut FGraph, head: Head) -> Id {
    eg.add(FNode {
        head,
        children: vec![],
    })
}

/// A constant leaf.
pub fn add_const(eg: &mut FGraph, t: Tensor) -> Id {
    leaf(eg, Head::Const(ConstKey::new(Arc::new(t))))
}

/// Reshapes a per-tensor or per-axis ONNX quantization parameter to broadcast against a
/// rank-`rank` operand (rank 0 for a single value).
fn broadcast_param(p: &Tensor, axis: i64, rank: usize) -> Option<Tensor> {
    if p.len() == 1 {
        return p.clone().reshape(&[]).ok();
    }
    if p.rank() != 1 {
        return None;
    }
    let ax = if axis < 0 { axis + rank as i64 } else { axis };
    if ax < 0 || ax as usize >= rank {
        return None;
    }
    let mut shape = vec![1; rank];
    shape[ax as usize] = p.len();
    p.clone().reshape(&shape).ok()
}

/// The canonical `(q x s z)` / `(dq x s z)` children of a QuantizeLinear/DequantizeLinear node
/// with constant parameters, or `None` when they are not constant or blocked.
fn canonical_q(
    g: &Graph,
    n: NodeId,
    x_dtype: Option<DType>,
    rank: Option<usize>,
) -> Option<(Tensor, Tensor)> {
    let node = g.node(n);
    let (q, out_dtype) = match &node.op {
        Op::QuantizeLinear { q, dtype } => (q, Some(*dtype)),
        Op::DequantizeLinear { q } => (q, None),
        _ => return None,
    };
    if q.block_size != 0 {
        return None;
    }
    let s = g.const_value(g.node_input(n, 1)?)?;
    let zdtype = match out_dtype {
        Some(d) => d,
        None => x_dtype?,
    };
    let z = match g.node_input(n, 2) {
        Some(v) => (**g.const_value(v)?).clone(),
        None => Tensor::zeros(zdtype, s.shape()),
    };
    if s.dtype() != DType::F32 || z.dtype() != zdtype {
        return None;
    }
    let rank = rank?;
    Some((
        broadcast_param(s, q.axis, rank)?,
        broadcast_param(&z, q.axis, rank)?,
    ))
}

/// Loads a graph (types inferred) into a fresh e-graph.
pub fn load(g: &Graph) -> Result<Loaded, FoldError> {
    let order = g.topo_order()?;
    let mut inputs = vec![];
    for &n in g.inputs() {
        let o = &g.node(n).outputs[0];
        inputs.push((o.name.clone(), o.ty.clone()));
    }
    let analysis = FoldAnalysis {
        inputs: inputs.iter().map(|(_, t)| t.clone()).collect(),
        ..Default::default()
    };
    let mut eg = FGraph::new(analysis);
    let absent = leaf(&mut eg, Head::Absent);
    let mut vals: HashMap<ValueRef, Id> = HashMap::new();
    let mut node_classes = vec![];
    let mut names = HashMap::new();
    for n in order {
        let node = g.node(n);
        let ins = g.node_inputs(n);
        let class = |v: &Option<ValueRef>, vals: &HashMap<ValueRef, Id>| -> Result<Id, FoldError> {
            match v {
                None => Ok(absent),
                Some(v) => vals.get(v).copied().ok_or_else(|| {
                    FoldError::Load(format!("node '{}' reads a missing value", node.name))
                }),
            }
        };
        let id = match &node.op {
            Op::Input { index } => leaf(&mut eg, Head::Input(*index)),
            Op::Const(t) => leaf(&mut eg, Head::Const(ConstKey::new(t.clone()))),
            op => {
                let x_ty = ins
                    .first()
                    .copied()
                    .flatten()
                    .map(|v| g.value_type(v).clone());
                let canon = match op {
                    Op::QuantizeLinear { .. } | Op::DequantizeLinear { .. } => canonical_q(
                        g,
                        n,
                        x_ty.as_ref().and_then(|t| t.dtype),
                        x_ty.as_ref()
                            .and_then(|t| t.shape.as_ref().map(|s| s.rank())),
                    ),
                    _ => None,
                };
                let nout = node.outputs.len().max(1);
                let children = if let Some((s, z)) = canon {
                    let x = class(&ins[0], &vals)?;
                    let kind = if matches!(op, Op::QuantizeLinear { .. }) {
                        HeadKind::Q
                    } else {
                        HeadKind::Dq
                    };
                    let (s, z) = (add_const(&mut eg, s), add_const(&mut eg, z));
                    eg.add(FNode {
                        head: Head::Op { kind, nout: 1 },
                        children: vec![x, s, z],
                    })
                } else {
                    let mut ch = vec![];
                    if op.has_attrs() {
                        ch.push(leaf(&mut eg, Head::Attr(AttrKey::new(op.clone()))));
                    }
                    let (_, max) = op.arity();
                    let nslots = max.unwrap_or(ins.len()).max(ins.len());
                    for k in 0..nslots {
                        ch.push(class(&ins.get(k).copied().flatten(), &vals)?);
                    }
                    eg.add(FNode {
                        head: Head::Op {
                            kind: HeadKind::Op(op.kind()),
                            nout,
                        },
                        children: ch,
                    })
                };
                children
            }
        };
        if node.outputs.len() > 1 {
            for k in 0..node.outputs.len() {
                let o = eg.add(FNode {
                    head: Head::Out(k),
                    children: vec![id],
                });
                vals.insert(ValueRef { node: n, output: k }, o);
                names
                    .entry(o)
                    .or_insert_with(|| node.outputs[k].name.clone());
            }
        } else {
            vals.insert(ValueRef::first(n), id);
            if let Some(o) = node.outputs.first() {
                names.entry(id).or_insert_with(|| o.name.clone());
            }
        }
        node_classes.push((node.name.clone(), vals[&ValueRef::first(n)]));
    }
    let outputs = g
        .outputs()
        .iter()
        .map(|v| {
            Ok((
                vals.get(v)
                    .copied()
                    .ok_or_else(|| FoldError::Load("dangling graph output".into()))?,
                g.value_name(*v).to_string(),
            ))
        })
        .collect::<Result<Vec<_>, FoldError>>()?;
    eg.rebuild();
    if let Some(c) = eg.analysis.conflicts.first() {
        return Err(FoldError::Load(c.clone()));
    }
    Ok(Loaded {
        name: g.name.clone(),
        eg,
        outputs,
        inputs,
        node_classes,
        names,
    })
}
