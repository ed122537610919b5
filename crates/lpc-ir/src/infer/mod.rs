//! Shape and dtype inference: computes every node's output `ValueType`s from its inputs.
//!
//! [`infer_types`] walks the graph in topological order. Shapes that depend on the values of
//! constant inputs (Reshape's shape, Slice's starts, ...) read those constants; small i64 shape
//! tensors computed from `shape_of` (through gather, concat, unsqueeze, slice, cast and integer
//! arithmetic) are tracked symbolically so that the usual exported "reshape to
//! concat(shape_of(x)[0], -1)" chains still infer. Where a dimension cannot be known a fresh
//! symbol (`s0`, `s1`, ..., skipping names already used in the graph) stands for it; where not
//! even the rank is known the shape is `None`.

mod attention;
mod control;
mod index;
mod misc;
mod nn;
mod recurrent;
mod shape_ops;
mod values;

use crate::{DType, Dim, Graph, GraphError, NodeId, Op, Shape, Tensor, ValueRef, ValueType};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

pub(crate) use values::PartialValue;

/// Why shape and dtype inference failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InferError {
    /// The graph itself is malformed (a cycle).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A node's inputs or attributes are not acceptable to its op.
    #[error("node '{node}' ({op}): {msg}")]
    Node {
        /// Node name.
        node: String,
        /// Op name.
        op: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// An output's declared type contradicts the inferred one.
    #[error("node '{node}' ({op}): output {output} '{value}' is declared {declared} but inferred {inferred}")]
    Conflict {
        /// Node name.
        node: String,
        /// Op name.
        op: &'static str,
        /// Output index.
        output: usize,
        /// Value name.
        value: String,
        /// The type the graph declared.
        declared: Box<ValueType>,
        /// The type inference computed.
        inferred: Box<ValueType>,
    },
}

/// Two shapes that do not broadcast (numpy rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastError {
    /// First shape.
    pub a: Vec<Dim>,
    /// Second shape.
    pub b: Vec<Dim>,
}

impl fmt::Display for BroadcastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shapes {} and {} do not broadcast",
            Shape(self.a.clone()),
            Shape(self.b.clone())
        )
    }
}

impl std::error::Error for BroadcastError {}

/// Broadcasts one pair of aligned dims: equal dims stay, 1 yields to the other, a symbol
/// with a known size `k > 1` gives `k`, and two different symbols give the symbol
/// `max_A_B` (names sorted, so the same pair always names the same value).
pub fn broadcast_dim(a: &Dim, b: &Dim) -> Option<Dim> {
    match (a, b) {
        (Dim::Known(1), d) | (d, Dim::Known(1)) => Some(d.clone()),
        (Dim::Known(x), Dim::Known(y)) => (x == y).then(|| a.clone()),
        (Dim::Known(_), Dim::Sym(_)) => Some(a.clone()),
        (Dim::Sym(_), Dim::Known(_)) => Some(b.clone()),
        (Dim::Sym(x), Dim::Sym(y)) if x == y => Some(a.clone()),
        (Dim::Sym(x), Dim::Sym(y)) => {
            let (lo, hi) = if x < y { (x, y) } else { (y, x) };
            Some(Dim::Sym(format!("max_{lo}_{hi}")))
        }
    }
}

/// Numpy (multidirectional) broadcasting of two shapes, aligned at their last axes.
/// See [`broadcast_dim`] for how symbolic dims combine.
pub fn broadcast_dims(a: &[Dim], b: &[Dim]) -> Result<Vec<Dim>, BroadcastError> {
    let r = a.len().max(b.len());
    let one = Dim::Known(1);
    let mut out = Vec::with_capacity(r);
    for i in 0..r {
        let da = if i + a.len() >= r {
            &a[i + a.len() - r]
        } else {
            &one
        };
        let db = if i + b.len() >= r {
            &b[i + b.len() - r]
        } else {
            &one
        };
        out.push(broadcast_dim(da, db).ok_or_else(|| BroadcastError {
            a: a.to_vec(),
            b: b.to_vec(),
        })?);
    }
    Ok(out)
}

/// True if `b` broadcasts to exactly `x`'s shape (unidirectional broadcasting: `b` no longer
/// than `x`, each aligned dim 1 or compatible with `x`'s).
pub fn broadcasts_to(b: &[Dim], x: &[Dim]) -> bool {
    if b.len() > x.len() {
        return false;
    }
    let off = x.len() - b.len();
    b.iter().enumerate().all(|(i, d)| match (d, &x[off + i]) {
        (Dim::Known(1), _) => true,
        (Dim::Known(p), Dim::Known(q)) => p == q,
        (Dim::Sym(p), Dim::Sym(q)) => p == q,
        // A symbol against a known size (either way round) can be equal at run time.
        (Dim::Known(_), Dim::Sym(_)) | (Dim::Sym(_), Dim::Known(_)) => true,
    })
}

/// Runs shape and dtype inference over the whole graph, writing every output's type.
///
/// Outputs that already carry a type (from the model's value_info, or an earlier run) are
/// checked against the inferred type and keep the more precise of the two; a contradiction is
/// an [`InferError::Conflict`].
pub fn infer_types(g: &mut Graph) -> Result<(), InferError> {
    let order = g.topo_order()?;
    let mut st = State::new(g);
    for id in order {
        check_edges(g, id)?;
        control::refine_bodies(g, id)?;
        let inferred = {
            let cx = Cx::new(g, id, &st.values);
            infer_node(&cx, &mut st.syms)?
        };
        let pv = {
            let cx = Cx::new(g, id, &st.values);
            values::propagate(&cx)
        };
        let node = g.node(id);
        let name = node.name.clone();
        let op = node.op.name();
        if inferred.len() < node.outputs.len() {
            return Err(InferError::Node {
                node: name,
                op,
                msg: format!(
                    "has {} outputs, the op produces at most {}",
                    node.outputs.len(),
                    inferred.len()
                ),
            });
        }
        for (k, inf) in inferred
            .into_iter()
            .enumerate()
            .take(g.node(id).outputs.len())
        {
            let out = &mut g.node_mut(id).outputs[k];
            let merged =
                merge(&out.ty, &inf, &st.syms.fresh).ok_or_else(|| InferError::Conflict {
                    node: name.clone(),
                    op,
                    output: k,
                    value: out.name.clone(),
                    declared: Box::new(out.ty.clone()),
                    inferred: Box::new(inf.clone()),
                })?;
            out.ty = merged;
        }
        if let Some(pv) = pv {
            st.values.insert(ValueRef::first(id), pv);
        }
    }
    Ok(())
}

/// Checks that every input of a node reads an output its producer has.
fn check_edges(g: &Graph, id: NodeId) -> Result<(), InferError> {
    for (slot, v) in g.node_inputs(id).into_iter().enumerate() {
        let Some(v) = v else { continue };
        let src = g.node(v.node);
        if v.output >= src.outputs.len() {
            let n = g.node(id);
            return Err(InferError::Node {
                node: n.name.clone(),
                op: n.op.name(),
                msg: format!(
                    "input {slot} reads output {} of node '{}', which has {} outputs",
                    v.output,
                    src.name,
                    src.outputs.len()
                ),
            });
        }
    }
    Ok(())
}

/// Merges a declared and an inferred type; `None` on a contradiction.
fn merge(declared: &ValueType, inferred: &ValueType, fresh: &HashSet<String>) -> Option<ValueType> {
    let dtype = match (declared.dtype, inferred.dtype) {
        (Some(a), Some(b)) if a != b => return None,
        (a, b) => a.or(b),
    };
    let shape = match (&declared.shape, &inferred.shape) {
        (Some(d), Some(i)) => {
            if d.rank() != i.rank() {
                return None;
            }
            let mut dims = Vec::with_capacity(d.rank());
            for (a, b) in d.0.iter().zip(&i.0) {
                dims.push(match (a, b) {
                    (Dim::Known(x), Dim::Known(y)) if x != y => return None,
                    (Dim::Known(_), _) => a.clone(),
                    (Dim::Sym(_), Dim::Known(_)) => b.clone(),
                    (Dim::Sym(_), Dim::Sym(s)) if fresh.contains(s) => a.clone(),
                    (Dim::Sym(_), Dim::Sym(_)) => b.clone(),
                });
            }
            Some(Shape(dims))
        }
        (d, i) => d.clone().or_else(|| i.clone()),
    };
    Some(ValueType { dtype, shape })
}

/// Inference-wide state: known partial values of small integer tensors and the symbol
/// generator.
struct State {
    values: HashMap<ValueRef, PartialValue>,
    syms: SymGen,
}

impl State {
    fn new(g: &Graph) -> State {
        let mut used = HashSet::new();
        for id in g.node_ids() {
            for o in &g.node(id).outputs {
                if let Some(s) = &o.ty.shape {
                    for d in &s.0 {
                        if let Dim::Sym(n) = d {
                            used.insert(n.clone());
                        }
                    }
                }
            }
        }
        State {
            values: HashMap::new(),
            syms: SymGen {
                used,
                fresh: HashSet::new(),
                next: 0,
            },
        }
    }
}

/// Makes fresh symbol names `s0`, `s1`, ..., skipping names the graph already uses.
pub(crate) struct SymGen {
    used: HashSet<String>,
    fresh: HashSet<String>,
    next: usize,
}

impl SymGen {
    /// A new symbol dimension.
    pub(crate) fn dim(&mut self) -> Dim {
        loop {
            let name = format!("s{}", self.next);
            self.next += 1;
            if self.used.insert(name.clone()) {
                self.fresh.insert(name.clone());
                return Dim::Sym(name);
            }
        }
    }

    /// `n` new symbol dimensions.
    pub(crate) fn dims(&mut self, n: usize) -> Vec<Dim> {
        (0..n).map(|_| self.dim()).collect()
    }
}

/// The view of one node that the per-op rules work with.
pub(crate) struct Cx<'a> {
    g: &'a Graph,
    id: NodeId,
    ins: Vec<Option<ValueRef>>,
    values: &'a HashMap<ValueRef, PartialValue>,
    unknown: ValueType,
}

impl<'a> Cx<'a> {
    fn new(g: &'a Graph, id: NodeId, values: &'a HashMap<ValueRef, PartialValue>) -> Cx<'a> {
        Cx {
            g,
            id,
            ins: g.node_inputs(id),
            values,
            unknown: ValueType::unknown(),
        }
    }

    /// The op.
    pub(crate) fn op(&self) -> &'a Op {
        &self.g.node(self.id).op
    }

    /// An error about this node.
    pub(crate) fn err(&self, msg: impl Into<String>) -> InferError {
        let n = self.g.node(self.id);
        InferError::Node {
            node: n.name.clone(),
            op: n.op.name(),
            msg: msg.into(),
        }
    }

    /// Number of input slots.
    pub(crate) fn num_inputs(&self) -> usize {
        self.ins.len()
    }

    /// True if input slot `slot` is connected.
    pub(crate) fn has(&self, slot: usize) -> bool {
        matches!(self.ins.get(slot), Some(Some(_)))
    }

    /// The value in slot `slot`.
    pub(crate) fn input(&self, slot: usize) -> Option<ValueRef> {
        self.ins.get(slot).copied().flatten()
    }

    /// The type of an optional input.
    pub(crate) fn opt(&self, slot: usize) -> Option<&'a ValueType> {
        self.input(slot).map(|v| self.g.value_type(v))
    }

    /// The type of a required input, or an error naming it.
    pub(crate) fn req(&self, slot: usize, what: &str) -> Result<&'a ValueType, InferError> {
        self.opt(slot)
            .ok_or_else(|| self.err(format!("missing required input {slot} ({what})")))
    }

    /// The type of a required input, but `unknown` (not an error) when absent; used where the
    /// missing input is reported elsewhere.
    pub(crate) fn ty(&self, slot: usize) -> &ValueType {
        match self.opt(slot) {
            Some(t) => t,
            None => &self.unknown,
        }
    }

    /// The constant tensor in slot `slot`, if it is a constant.
    pub(crate) fn const_in(&self, slot: usize) -> Option<&'a Arc<Tensor>> {
        self.input(slot).and_then(|v| self.g.const_value(v))
    }

    /// The (partial) integer value of slot `slot`: a constant's elements, or what the value
    /// tracking knows.
    pub(crate) fn int_value(&self, slot: usize) -> Option<PartialValue> {
        let v = self.input(slot)?;
        if let Some(t) = self.g.const_value(v) {
            return PartialValue::from_tensor(t);
        }
        self.values.get(&v).cloned()
    }

    /// The fully known integer elements of slot `slot`.
    pub(crate) fn ints(&self, slot: usize) -> Option<Vec<i64>> {
        self.int_value(slot).and_then(|p| p.known())
    }

    /// Checks that an input has a dtype accepted by `ok`, when its dtype is known.
    pub(crate) fn check_dtype(
        &self,
        slot: usize,
        what: &str,
        expected: &str,
        ok: impl Fn(DType) -> bool,
    ) -> Result<(), InferError> {
        if let Some(d) = self.opt(slot).and_then(|t| t.dtype) {
            if !ok(d) {
                return Err(self.err(format!(
                    "input {slot} ({what}) has dtype {d}, expected {expected}"
                )));
            }
        }
        Ok(())
    }

    /// Checks that two inputs have the same dtype, when both are known.
    pub(crate) fn same_dtype(&self, a: usize, b: usize, what: &str) -> Result<(), InferError> {
        if let (Some(x), Some(y)) = (
            self.opt(a).and_then(|t| t.dtype),
            self.opt(b).and_then(|t| t.dtype),
        ) {
            if x != y {
                return Err(self.err(format!("{what}: input {a} is {x} but input {b} is {y}")));
            }
        }
        Ok(())
    }

    /// Normalises a possibly negative axis against `rank` (valid range `[-rank, rank)`).
    pub(crate) fn axis(&self, axis: i64, rank: usize, what: &str) -> Result<usize, InferError> {
        norm_axis(axis, rank)
            .ok_or_else(|| self.err(format!("{what} {axis} is out of range for rank {rank}")))
    }
}

/// Normalises a possibly negative axis against `rank`.
pub(crate) fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

/// A value type with known dtype (if any) and shape.
pub(crate) fn vt(dtype: Option<DType>, dims: Vec<Dim>) -> ValueType {
    ValueType {
        dtype,
        shape: Some(Shape(dims)),
    }
}

/// A value type with the given dtype and unknown rank.
pub(crate) fn vt_unranked(dtype: Option<DType>) -> ValueType {
    ValueType { dtype, shape: None }
}

/// The product of dims: known when all are known, the symbol itself when only one symbol
/// remains with a known factor of 1, otherwise a fresh symbol.
pub(crate) fn dim_product(dims: &[Dim], syms: &mut SymGen) -> Dim {
    let mut k = 1usize;
    let mut sym: Vec<&Dim> = vec![];
    for d in dims {
        match d {
            Dim::Known(n) => k = k.saturating_mul(*n),
            Dim::Sym(_) => sym.push(d),
        }
    }
    match (sym.as_slice(), k) {
        ([], _) => Dim::Known(k),
        (_, 0) => Dim::Known(0),
        ([s], 1) => (*s).clone(),
        _ => syms.dim(),
    }
}

/// Dispatches one node to its op's rule; returns one type per output the op can produce.
fn infer_node(cx: &Cx, syms: &mut SymGen) -> Result<Vec<ValueType>, InferError> {
    match cx.op() {
        Op::Input { .. } => Ok(vec![cx
            .g
            .node(cx.id)
            .outputs
            .first()
            .map(|o| o.ty.clone())
            .unwrap_or_else(ValueType::unknown)]),
        Op::Const(t) => Ok(vec![ValueType::new(t.dtype(), Shape::known(t.shape()))]),
        Op::Unary(u) => nn::unary(cx, u),
        Op::Binary(b) => nn::binary(cx, *b),
        Op::Clip => nn::clip(cx),
        Op::Where => nn::where_(cx),
        Op::Conv(a) => nn::conv(cx, a, nn::ConvKind::Float, syms),
        Op::ConvInteger(a) => nn::conv(cx, a, nn::ConvKind::Integer, syms),
        Op::QLinearConv(a) => nn::conv(cx, a, nn::ConvKind::QLinear, syms),
        Op::ConvTranspose {
            conv,
            output_padding,
            output_shape,
        } => nn::conv_transpose(cx, conv, output_padding, output_shape, syms),
        Op::MatMul => nn::matmul(cx, nn::MatMulKind::Float),
        Op::MatMulInteger => nn::matmul(cx, nn::MatMulKind::Integer),
        Op::QLinearMatMul => nn::matmul(cx, nn::MatMulKind::QLinear),
        Op::Gemm {
            trans_a, trans_b, ..
        } => nn::gemm(cx, *trans_a, *trans_b, syms),
        Op::MaxPool { pool, .. } => nn::pool(cx, pool, true, syms),
        Op::AveragePool { pool, .. } => nn::pool(cx, pool, false, syms),
        Op::LpPool { pool, p } => {
            if *p < 1 {
                return Err(cx.err(format!("p must be at least 1, got {p}")));
            }
            nn::pool(cx, pool, false, syms)
        }
        Op::GlobalAveragePool | Op::GlobalMaxPool => nn::global_pool(cx),
        Op::BatchNorm { .. } => nn::batch_norm(cx),
        Op::LayerNorm { axis, .. } => nn::layer_norm(cx, *axis),
        Op::RmsNorm { axis, .. } => nn::rms_norm(cx, *axis),
        Op::Softmax { axis, .. } | Op::LogSoftmax { axis, .. } | Op::Hardmax { axis, .. } => {
            nn::softmax(cx, *axis)
        }
        Op::InstanceNorm { .. } => nn::instance_norm(cx),
        Op::LpNormalization { axis, p } => nn::lp_normalization(cx, *axis, *p),
        Op::NegativeLogLikelihoodLoss { reduction, .. } => nn::loss(cx, *reduction, false),
        Op::SoftmaxCrossEntropyLoss { reduction, .. } => nn::loss(cx, *reduction, true),
        Op::Reduce {
            op,
            keepdims,
            noop_with_empty_axes,
        } => shape_ops::reduce(cx, *op, *keepdims, *noop_with_empty_axes, syms),
        Op::Concat { axis } => shape_ops::concat(cx, *axis, syms),
        Op::Split { axis, num_outputs } => shape_ops::split(cx, *axis, *num_outputs, syms),
        Op::Flatten { axis } => shape_ops::flatten(cx, *axis, syms),
        Op::Reshape { allowzero } => shape_ops::reshape(cx, *allowzero, syms),
        Op::Squeeze => shape_ops::squeeze(cx),
        Op::Unsqueeze => shape_ops::unsqueeze(cx),
        Op::Transpose { perm } => shape_ops::transpose(cx, perm),
        Op::Expand => shape_ops::expand(cx, syms),
        Op::Gather { axis } => shape_ops::gather(cx, *axis),
        Op::GatherElements { axis } => index::gather_elements(cx, *axis),
        Op::GatherNd { batch_dims } => index::gather_nd(cx, *batch_dims),
        Op::ScatterElements { axis, .. } => index::scatter(cx, Some(*axis)),
        Op::ScatterNd { .. } => index::scatter(cx, None),
        Op::Tile => index::tile(cx, syms),
        Op::ArgMax(a) | Op::ArgMin(a) => index::arg(cx, a),
        Op::TopK { axis, .. } => index::top_k(cx, *axis, syms),
        Op::Trilu { .. } => index::trilu(cx),
        Op::CumSum { .. } | Op::CumProd { .. } => misc::cumulative(cx),
        Op::OneHot { axis } => misc::one_hot(cx, *axis, syms),
        Op::EyeLike { .. } => misc::eye_like(cx),
        Op::Compress { axis } => misc::compress(cx, *axis, syms),
        Op::NonZero => misc::non_zero(cx, syms),
        Op::Unique { axis, .. } => misc::unique(cx, *axis, syms),
        Op::ReverseSequence {
            batch_axis,
            time_axis,
        } => misc::reverse_sequence(cx, *batch_axis, *time_axis),
        Op::CenterCropPad { axes } => misc::center_crop_pad(cx, axes, syms),
        Op::Det => misc::det(cx),
        Op::Einsum { equation } => misc::einsum(cx, equation, syms),
        Op::RotaryEmbedding { .. } => misc::rotary_embedding(cx),
        Op::TensorScatter { axis, .. } => misc::tensor_scatter(cx, *axis),
        Op::NonMaxSuppression { .. } => misc::non_max_suppression(cx, syms),
        Op::LinearAttention { .. } => attention::linear_attention(cx, syms),
        Op::SwiGlu { .. } => misc::swiglu(cx),
        Op::RoiAlign {
            output_height,
            output_width,
            ..
        } => misc::roi_align(cx, *output_height, *output_width, syms),
        Op::DeformConv { conv, offset_group } => nn::deform_conv(cx, conv, *offset_group, syms),
        Op::ImageDecoder { pixel_format } => misc::image_decoder(cx, *pixel_format, syms),
        Op::TfIdfVectorizer(a) => misc::tf_idf_vectorizer(cx, a),
        Op::MelWeightMatrix { dtype } => misc::mel_weight_matrix(cx, *dtype, syms),
        Op::Col2Im {
            dilations,
            pads,
            strides,
        } => misc::col2im(cx, dilations, pads, strides, syms),
        Op::GridSample { .. } => misc::grid_sample(cx),
        Op::AffineGrid { .. } => misc::affine_grid(cx),
        Op::Dft { inverse, onesided } => misc::dft(cx, *inverse, *onesided, syms),
        Op::Window { dtype, .. } => misc::window(cx, *dtype, syms),
        Op::Stft { onesided } => misc::stft(cx, *onesided, syms),
        Op::Size => index::size(cx),
        Op::CastLike => index::cast_like(cx),
        Op::DepthToSpace { blocksize, .. } => index::depth_space(cx, *blocksize, true, syms),
        Op::SpaceToDepth { blocksize, .. } => index::depth_space(cx, *blocksize, false, syms),
        Op::ShapeOf { start, end } => shape_ops::shape_of(cx, *start, *end, syms),
        Op::Slice => shape_ops::slice(cx, syms),
        Op::Pad { .. } => shape_ops::pad(cx, syms),
        Op::Resize(a) => shape_ops::resize(cx, a, syms),
        Op::Range => shape_ops::range(cx, syms),
        Op::ConstantOfShape { value } => shape_ops::constant_of_shape(cx, value, syms),
        Op::QuantizeLinear { q, dtype } => nn::quantize_linear(cx, q, *dtype),
        Op::DequantizeLinear { q } => nn::dequantize_linear(cx, q),
        Op::DynamicQuantizeLinear => nn::dynamic_quantize_linear(cx),
        Op::FakeQuantize { levels } => nn::fake_quantize(cx, *levels),
        Op::QConv(a) => nn::conv(cx, a, nn::ConvKind::Fused, syms),
        Op::QMatMul => nn::matmul(cx, nn::MatMulKind::Fused),
        Op::Requantize => nn::requantize(cx),
        Op::QAdd => nn::qadd(cx),
        Op::Lut => nn::lut(cx),
        Op::Lstm { rnn, .. } => recurrent::recurrent(cx, rnn, &recurrent::LSTM, syms),
        Op::Gru { rnn, .. } => recurrent::recurrent(cx, rnn, &recurrent::GRU, syms),
        Op::Rnn(rnn) => recurrent::recurrent(cx, rnn, &recurrent::RNN, syms),
        Op::If { .. } | Op::Loop { .. } | Op::Scan(_) => control::control(cx, syms),
        Op::Attention(a) => attention::attention(cx, a, syms),
        Op::Lrn { size, .. } => nn::lrn(cx, *size),
        Op::GroupNorm { num_groups, .. } => nn::group_norm(cx, *num_groups),
        Op::MeanVarianceNorm { axes } => nn::mean_variance_norm(cx, axes),
        Op::MaxUnpool {
            kernel,
            pads,
            strides,
        } => nn::max_unpool(cx, kernel, pads, strides, syms),
        Op::CausalConvWithState { .. } => nn::causal_conv_with_state(cx, syms),
    }
}
