//! The graph verifier: structural invariants, then agreement of every type with inference.

use crate::{infer_types, Graph, GraphError, InferError, NodeId, Op, Shape, ValueType};
use petgraph::visit::{EdgeRef, IntoEdgeReferences};
use std::collections::HashMap;

/// What is wrong with a graph.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VerifyError {
    /// The graph has a cycle.
    #[error(transparent)]
    Cycle(#[from] GraphError),
    /// A node breaks a structural rule.
    #[error("node '{node}' ({op}): {msg}")]
    Node {
        /// Node name.
        node: String,
        /// Op name.
        op: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// The graph's input or output lists are wrong.
    #[error("graph '{graph}': {msg}")]
    Graph {
        /// Graph name.
        graph: String,
        /// What is wrong.
        msg: String,
    },
    /// A type disagrees with shape inference, or inference rejects a node.
    #[error(transparent)]
    Types(#[from] InferError),
}

/// How many outputs a node of this op may have: `(min, max)`.
pub fn output_count(op: &Op) -> (usize, usize) {
    match op {
        Op::MaxPool { .. } => (1, 2),
        Op::Split { num_outputs, .. } => (*num_outputs, *num_outputs),
        Op::BatchNorm { .. } => (1, 3),
        Op::LayerNorm { .. } => (1, 3),
        Op::DynamicQuantizeLinear => (3, 3),
        Op::TopK { .. } => (2, 2),
        Op::Unique { .. } => (1, 4),
        Op::SoftmaxCrossEntropyLoss { .. } => (1, 2),
        Op::Lstm { .. } => (1, 3),
        Op::Gru { .. } | Op::Rnn(_) => (1, 2),
        // Checked against the bodies by `Op::body_io`.
        Op::If { .. } | Op::Loop { .. } | Op::Scan(_) => (0, usize::MAX),
        Op::Attention(_) => (1, 4),
        Op::CausalConvWithState { .. } => (1, 2),
        Op::LinearAttention { .. } => (1, 2),
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
        | Op::RmsNorm { .. }
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::Hardmax { .. }
        | Op::LpNormalization { .. }
        | Op::InstanceNorm { .. }
        | Op::Lrn { .. }
        | Op::GroupNorm { .. }
        | Op::MeanVarianceNorm { .. }
        | Op::MaxUnpool { .. }
        | Op::LpPool { .. }
        | Op::NegativeLogLikelihoodLoss { .. }
        | Op::Reduce { .. }
        | Op::Concat { .. }
        | Op::Flatten { .. }
        | Op::Reshape { .. }
        | Op::Squeeze
        | Op::Unsqueeze
        | Op::Transpose { .. }
        | Op::GatherElements { .. }
        | Op::GatherNd { .. }
        | Op::ScatterElements { .. }
        | Op::ScatterNd { .. }
        | Op::Tile
        | Op::CastLike
        | Op::Size
        | Op::ArgMax(_)
        | Op::ArgMin(_)
        | Op::Trilu { .. }
        | Op::CumSum { .. }
        | Op::CumProd { .. }
        | Op::OneHot { .. }
        | Op::EyeLike { .. }
        | Op::Compress { .. }
        | Op::NonZero
        | Op::ReverseSequence { .. }
        | Op::CenterCropPad { .. }
        | Op::Det
        | Op::Einsum { .. }
        | Op::RotaryEmbedding { .. }
        | Op::TensorScatter { .. }
        | Op::NonMaxSuppression { .. }
        | Op::SwiGlu { .. }
        | Op::RoiAlign { .. }
        | Op::DeformConv { .. }
        | Op::ImageDecoder { .. }
        | Op::TfIdfVectorizer(_)
        | Op::MelWeightMatrix { .. }
        | Op::Col2Im { .. }
        | Op::GridSample { .. }
        | Op::AffineGrid { .. }
        | Op::Dft { .. }
        | Op::Window { .. }
        | Op::Stft { .. }
        | Op::DepthToSpace { .. }
        | Op::SpaceToDepth { .. }
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
        | Op::Lut => (1, 1),
    }
}

/// Checks a graph: acyclic; every edge reads an existing output into an existing slot, one
/// edge per slot; input counts within [`Op::arity`] with required inputs connected; output
/// counts allowed for the op; value names unique and non-empty; graph inputs are `Op::Input`
/// nodes with matching indices; graph outputs exist; constants' types match their tensors;
/// and every known type agrees with what [`infer_types`] computes.
pub fn verify(g: &Graph) -> Result<(), VerifyError> {
    g.topo_order()?;
    check_edges(g)?;
    // Per node: arity, outputs, names, constants, inputs.
    let mut names: HashMap<&str, String> = HashMap::new();
    for id in g.node_ids() {
        check_inputs(g, id)?;
        check_outputs(g, id, &mut names)?;
        check_payload(g, id)?;
        check_bodies(g, id)?;
    }
    check_graph_io(g)?;

    // Types agree with inference.
    let mut copy = g.clone();
    infer_types(&mut copy)?;
    Ok(())
}

/// A [`VerifyError::Node`] about node `id`.
fn node_err(g: &Graph, id: NodeId, msg: String) -> VerifyError {
    let n = g.node(id);
    VerifyError::Node {
        node: n.name.clone(),
        op: n.op.name(),
        msg,
    }
}

/// A [`VerifyError::Graph`] about `g`'s input or output lists.
fn graph_err(g: &Graph, msg: String) -> VerifyError {
    VerifyError::Graph {
        graph: g.name.clone(),
        msg,
    }
}

/// Every edge reads an existing output into an existing slot, one edge per slot.
fn check_edges(g: &Graph) -> Result<(), VerifyError> {
    let pg = g.petgraph();
    let mut slots: HashMap<(NodeId, usize), usize> = HashMap::new();
    for e in pg.edge_references() {
        let (src, dst, w) = (e.source(), e.target(), e.weight());
        let n_out = g.node(src).outputs.len();
        if w.output >= n_out {
            return Err(node_err(
                g,
                dst,
                format!(
                    "input {} reads output {} of '{}', which has {n_out} outputs",
                    w.slot,
                    w.output,
                    g.node(src).name
                ),
            ));
        }
        if w.slot >= g.node(dst).num_inputs {
            return Err(node_err(
                g,
                dst,
                format!(
                    "an edge feeds input slot {}, but the node has {} slots",
                    w.slot,
                    g.node(dst).num_inputs
                ),
            ));
        }
        let c = slots.entry((dst, w.slot)).or_default();
        *c += 1;
        if *c > 1 {
            return Err(node_err(
                g,
                dst,
                format!("input slot {} is fed by more than one edge", w.slot),
            ));
        }
    }
    Ok(())
}

/// Input counts within the op's arity, required inputs connected.
fn check_inputs(g: &Graph, id: NodeId) -> Result<(), VerifyError> {
    let n = g.node(id);
    let (req, max) = n.op.arity();
    if n.num_inputs < req {
        return Err(node_err(
            g,
            id,
            format!(
                "has {} input slots, the op needs at least {req}",
                n.num_inputs
            ),
        ));
    }
    if let Some(max) = max {
        if n.num_inputs > max {
            return Err(node_err(
                g,
                id,
                format!(
                    "has {} input slots, the op takes at most {max}",
                    n.num_inputs
                ),
            ));
        }
    }
    let ins = g.node_inputs(id);
    // Every slot of a variadic op is required.
    let required = if max.is_none() { n.num_inputs } else { req };
    // Loop's trip count and condition (slots 0 and 1) are optional.
    let first = if matches!(n.op, Op::Loop { .. }) {
        2
    } else {
        0
    };
    if let Some(slot) = (first..required).find(|&s| ins[s].is_none()) {
        return Err(node_err(
            g,
            id,
            format!("required input {slot} is not connected"),
        ));
    }
    Ok(())
}

/// Output counts allowed for the op; output names non-empty and unique (`names` maps each
/// name seen so far to its node).
fn check_outputs<'g>(
    g: &'g Graph,
    id: NodeId,
    names: &mut HashMap<&'g str, String>,
) -> Result<(), VerifyError> {
    let n = g.node(id);
    let (lo, hi) = output_count(&n.op);
    if n.outputs.len() < lo || n.outputs.len() > hi {
        let allowed = if lo == hi {
            format!("{lo}")
        } else {
            format!("{lo} to {hi}")
        };
        return Err(node_err(
            g,
            id,
            format!("has {} outputs, the op allows {allowed}", n.outputs.len()),
        ));
    }
    if let Op::BatchNorm { .. } = n.op {
        if n.outputs.len() == 2 {
            return Err(node_err(
                g,
                id,
                "has 2 outputs, batch_norm allows 1 or 3".into(),
            ));
        }
    }
    for o in &n.outputs {
        if o.name.is_empty() {
            return Err(node_err(g, id, "has an output with an empty name".into()));
        }
        if let Some(other) = names.insert(&o.name, n.name.clone()) {
            return Err(node_err(
                g,
                id,
                format!("output name '{}' is also used by node '{other}'", o.name),
            ));
        }
    }
    Ok(())
}

/// A node with bodies: the counts fit (`Op::body_io`) and every body verifies on its own.
fn check_bodies(g: &Graph, id: NodeId) -> Result<(), VerifyError> {
    let n = g.node(id);
    if let Some(io) = n.op.body_io(n.num_inputs, n.outputs.len()) {
        io.map_err(|m| node_err(g, id, m))?;
    }
    for b in n.op.bodies() {
        verify(b).map_err(|e| node_err(g, id, format!("body '{}': {e}", b.name)))?;
    }
    Ok(())
}

/// Constants' types match their tensors; input nodes sit at their graph-input index.
fn check_payload(g: &Graph, id: NodeId) -> Result<(), VerifyError> {
    let n = g.node(id);
    if let Op::Const(t) = &n.op {
        let ty = &n.outputs[0].ty;
        let actual = ValueType::new(t.dtype(), Shape::known(t.shape()));
        let dtype_ok = ty.dtype.is_none_or(|d| d == t.dtype());
        let shape_ok = ty
            .shape
            .as_ref()
            .is_none_or(|s| *s == Shape::known(t.shape()));
        if !dtype_ok || !shape_ok {
            return Err(node_err(
                g,
                id,
                format!("is declared {ty} but its tensor is {actual}"),
            ));
        }
    }
    if let Op::Input { index } = n.op {
        if g.inputs().get(index) != Some(&id) {
            return Err(node_err(
                g,
                id,
                format!("is input {index}, but graph input {index} is another node"),
            ));
        }
    }
    Ok(())
}

/// Graph inputs are input nodes with matching indices; graph outputs exist.
fn check_graph_io(g: &Graph) -> Result<(), VerifyError> {
    for (i, &id) in g.inputs().iter().enumerate() {
        if !g.contains(id) {
            return Err(graph_err(g, format!("graph input {i} is a removed node")));
        }
        let Op::Input { index } = g.node(id).op else {
            return Err(node_err(
                g,
                id,
                format!("is graph input {i} but is not an input node"),
            ));
        };
        if index != i {
            return Err(node_err(
                g,
                id,
                format!("is graph input {i} but has index {index}"),
            ));
        }
    }
    for (i, v) in g.outputs().iter().enumerate() {
        if !g.contains(v.node) {
            return Err(graph_err(
                g,
                format!("graph output {i} refers to a removed node"),
            ));
        }
        let n = g.node(v.node);
        if v.output >= n.outputs.len() {
            return Err(graph_err(
                g,
                format!(
                    "graph output {i} is output {} of node '{}', which has {} outputs",
                    v.output,
                    n.name,
                    n.outputs.len()
                ),
            ));
        }
    }
    Ok(())
}
