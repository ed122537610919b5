//! The egg language of lpc's IR: op heads whose attributes, constants and absent inputs are
//! leaf children, so that rules can match any Conv and carry its attributes to the right side.

use egg::{Id, Language};
use lpc_ir::{Op, Tensor, UnaryOp};
use std::cmp::Ordering;
use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A constant leaf: the tensor plus a content hash (equality is by content).
#[derive(Clone, Debug)]
pub struct ConstKey {
    hash: u64,
    /// The tensor.
    pub t: Arc<Tensor>,
}

impl ConstKey {
    /// Wraps a tensor, hashing its dtype, shape and bytes.
    pub fn new(t: Arc<Tensor>) -> ConstKey {
        let mut h = DefaultHasher::new();
        t.dtype().hash(&mut h);
        t.shape().hash(&mut h);
        t.to_le_bytes().hash(&mut h);
        ConstKey {
            hash: h.finish(),
            t,
        }
    }
}

impl PartialEq for ConstKey {
    fn eq(&self, o: &ConstKey) -> bool {
        self.hash == o.hash && (Arc::ptr_eq(&self.t, &o.t) || self.t.same_content(&o.t))
    }
}
impl Eq for ConstKey {}
impl Hash for ConstKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.hash.hash(h)
    }
}
impl PartialOrd for ConstKey {
    fn partial_cmp(&self, o: &ConstKey) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for ConstKey {
    fn cmp(&self, o: &ConstKey) -> Ordering {
        self.hash.cmp(&o.hash).then_with(|| {
            if self == o {
                Ordering::Equal
            } else {
                (self.t.dtype(), self.t.shape(), self.t.to_le_bytes()).cmp(&(
                    o.t.dtype(),
                    o.t.shape(),
                    o.t.to_le_bytes(),
                ))
            }
        })
    }
}

/// An attribute leaf: the op (with its attribute fields) of the node it belongs to, keyed by
/// its debug text (ops hold f32 fields, so they have no `Eq`/`Hash` of their own).
#[derive(Clone, Debug)]
pub struct AttrKey {
    key: String,
    /// The op carrying the attributes.
    pub op: Arc<Op>,
}

impl AttrKey {
    /// Wraps an op.
    pub fn new(op: Op) -> AttrKey {
        AttrKey {
            key: format!("{op:?}"),
            op: Arc::new(op),
        }
    }
}
impl PartialEq for AttrKey {
    fn eq(&self, o: &AttrKey) -> bool {
        self.key == o.key
    }
}
impl Eq for AttrKey {}
impl Hash for AttrKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.key.hash(h)
    }
}
impl PartialOrd for AttrKey {
    fn partial_cmp(&self, o: &AttrKey) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for AttrKey {
    fn cmp(&self, o: &AttrKey) -> Ordering {
        self.key.cmp(&o.key)
    }
}

/// The head of an e-node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Head {
    /// An op by its `.lir` name, with `nout` outputs (more than one: a tuple read by `Out`).
    /// Children: the attribute leaf first when the op has attributes, then the input slots.
    Op {
        /// Op name (`Op::name`, or `q`/`dq` for canonical quantize/dequantize).
        name: &'static str,
        /// Number of outputs.
        nout: usize,
    },
    /// Output `k` of a tuple node (one child).
    Out(usize),
    /// An attribute leaf.
    Attr(AttrKey),
    /// A constant leaf.
    Const(ConstKey),
    /// Graph input number `k`.
    Input(usize),
    /// An unconnected optional input (`none` in patterns).
    Absent,
}

/// One e-node: a head and its children.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FNode {
    /// The head.
    pub head: Head,
    /// Children e-classes.
    pub children: Vec<Id>,
}

/// The discriminant egg uses to pre-filter matches.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Disc {
    /// An op head.
    Op(&'static str, usize),
    /// Any other head kind (leaves and projections).
    Other(u8, usize),
}

impl Language for FNode {
    type Discriminant = Disc;

    fn discriminant(&self) -> Disc {
        match &self.head {
            Head::Op { name, nout } => Disc::Op(name, *nout),
            Head::Out(k) => Disc::Other(0, *k),
            Head::Attr(_) => Disc::Other(1, 0),
            Head::Const(_) => Disc::Other(2, 0),
            Head::Input(k) => Disc::Other(3, *k),
            Head::Absent => Disc::Other(4, 0),
        }
    }

    fn matches(&self, other: &FNode) -> bool {
        self.head == other.head && self.children.len() == other.children.len()
    }

    fn children(&self) -> &[Id] {
        &self.children
    }

    fn children_mut(&mut self) -> &mut [Id] {
        &mut self.children
    }
}

impl fmt::Display for FNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.head {
            Head::Op { name, .. } => f.write_str(name),
            Head::Out(k) => write!(f, "out{k}"),
            Head::Attr(a) => write!(f, "<{} attrs>", a.op.name()),
            Head::Const(c) => write!(f, "<const {}>", c.t),
            Head::Input(k) => write!(f, "<input {k}>"),
            Head::Absent => f.write_str("none"),
        }
    }
}

/// Name of the canonical quantize head: (q x scale zero_point), parameters broadcast to x.
pub const Q: &str = "q";
/// Name of the canonical dequantize head: (dq x scale zero_point), parameters broadcast to x.
pub const DQ: &str = "dq";

/// True when the op's e-node carries an attribute leaf as its first child. Ops whose variant
/// has fields do (Unary carries one only for parameterised functions).
pub fn has_attrs(op: &Op) -> bool {
    match op {
        Op::Unary(u) => match u {
            UnaryOp::Elu { .. }
            | UnaryOp::LeakyRelu { .. }
            | UnaryOp::HardSigmoid { .. }
            | UnaryOp::Gelu { .. }
            | UnaryOp::Cast { .. } => true,
            UnaryOp::Abs
            | UnaryOp::Neg
            | UnaryOp::Ceil
            | UnaryOp::Floor
            | UnaryOp::Round
            | UnaryOp::Sqrt
            | UnaryOp::Reciprocal
            | UnaryOp::Exp
            | UnaryOp::Log
            | UnaryOp::Erf
            | UnaryOp::Sigmoid
            | UnaryOp::Tanh
            | UnaryOp::Relu
            | UnaryOp::Identity
            | UnaryOp::HardSwish => false,
        },
        Op::Binary(_)
        | Op::Clip
        | Op::Where
        | Op::MatMul
        | Op::MatMulInteger
        | Op::QLinearMatMul
        | Op::GlobalAveragePool
        | Op::GlobalMaxPool
        | Op::Squeeze
        | Op::Unsqueeze
        | Op::Expand
        | Op::Slice
        | Op::Range
        | Op::DynamicQuantizeLinear
        | Op::QMatMul
        | Op::Requantize
        | Op::QAdd
        | Op::Lut => false,
        Op::Input { .. }
        | Op::Const(_)
        | Op::Conv(_)
        | Op::ConvTranspose { .. }
        | Op::ConvInteger(_)
        | Op::QLinearConv(_)
        | Op::Gemm { .. }
        | Op::MaxPool { .. }
        | Op::AveragePool { .. }
        | Op::BatchNorm { .. }
        | Op::LayerNorm { .. }
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::Reduce { .. }
        | Op::Concat { .. }
        | Op::Split { .. }
        | Op::Flatten { .. }
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::Gather { .. }
        | Op::ShapeOf { .. }
        | Op::Pad { .. }
        | Op::Resize(_)
        | Op::ConstantOfShape { .. }
        | Op::QuantizeLinear { .. }
        | Op::DequantizeLinear { .. }
        | Op::FakeQuantize { .. }
        | Op::QConv(_) => true,
    }
}

/// The attribute-free op of a head name (for heads without an attribute leaf).
pub fn plain_op(name: &str) -> Option<Op> {
    use lpc_ir::BinaryOp as B;
    let u = |x| Some(Op::Unary(x));
    match name {
        "abs" => u(UnaryOp::Abs),
        "neg" => u(UnaryOp::Neg),
        "ceil" => u(UnaryOp::Ceil),
        "floor" => u(UnaryOp::Floor),
        "round" => u(UnaryOp::Round),
        "sqrt" => u(UnaryOp::Sqrt),
        "reciprocal" => u(UnaryOp::Reciprocal),
        "exp" => u(UnaryOp::Exp),
        "log" => u(UnaryOp::Log),
        "erf" => u(UnaryOp::Erf),
        "sigmoid" => u(UnaryOp::Sigmoid),
        "tanh" => u(UnaryOp::Tanh),
        "relu" => u(UnaryOp::Relu),
        "identity" => u(UnaryOp::Identity),
        "hard_swish" => u(UnaryOp::HardSwish),
        "add" => Some(Op::Binary(B::Add)),
        "sub" => Some(Op::Binary(B::Sub)),
        "mul" => Some(Op::Binary(B::Mul)),
        "div" => Some(Op::Binary(B::Div)),
        "pow" => Some(Op::Binary(B::Pow)),
        "max" => Some(Op::Binary(B::Max)),
        "min" => Some(Op::Binary(B::Min)),
        "equal" => Some(Op::Binary(B::Equal)),
        "prelu" => Some(Op::Binary(B::PRelu)),
        "clip" => Some(Op::Clip),
        "where" => Some(Op::Where),
        "matmul" => Some(Op::MatMul),
        "matmul_integer" => Some(Op::MatMulInteger),
        "qlinear_matmul" => Some(Op::QLinearMatMul),
        "global_average_pool" => Some(Op::GlobalAveragePool),
        "global_max_pool" => Some(Op::GlobalMaxPool),
        "squeeze" => Some(Op::Squeeze),
        "unsqueeze" => Some(Op::Unsqueeze),
        "expand" => Some(Op::Expand),
        "slice" => Some(Op::Slice),
        "range" => Some(Op::Range),
        "dynamic_quantize_linear" => Some(Op::DynamicQuantizeLinear),
        "qmatmul" => Some(Op::QMatMul),
        "requantize" => Some(Op::Requantize),
        "qadd" => Some(Op::QAdd),
        "lut" => Some(Op::Lut),
        _ => None,
    }
}

/// Op names that take an attribute leaf (the ones a rule may write with `?a` first).
pub const ATTR_OPS: &[&str] = &[
    "elu",
    "leaky_relu",
    "hard_sigmoid",
    "gelu",
    "cast",
    "conv",
    "conv_transpose",
    "conv_integer",
    "qlinear_conv",
    "gemm",
    "max_pool",
    "average_pool",
    "batch_norm",
    "layer_norm",
    "softmax",
    "log_softmax",
    "reduce_max",
    "reduce_mean",
    "reduce_sum",
    "concat",
    "split",
    "flatten",
    "reshape",
    "transpose",
    "gather",
    "shape_of",
    "pad",
    "resize",
    "constant_of_shape",
    "quantize_linear",
    "dequantize_linear",
    "fake_quantize",
    "qconv",
];

/// The interned `&'static str` of a head name a rule may use, if it is one.
pub fn head_name(name: &str) -> Option<&'static str> {
    if name == Q {
        return Some(Q);
    }
    if name == DQ {
        return Some(DQ);
    }
    if let Some(op) = plain_op(name) {
        return Some(op.name());
    }
    ATTR_OPS.iter().copied().find(|n| *n == name)
}

/// Number of input slots (required, max) of a head; `None` max is variadic.
pub fn head_arity(name: &str) -> (usize, Option<usize>) {
    match name {
        Q | DQ => (3, Some(3)),
        _ => match plain_op(name) {
            Some(op) => op.arity(),
            None => match name {
                "elu" | "leaky_relu" | "hard_sigmoid" | "gelu" | "cast" | "max_pool"
                | "average_pool" | "softmax" | "log_softmax" | "flatten" | "transpose"
                | "shape_of" => (1, Some(1)),
                "conv" | "conv_transpose" => (2, Some(3)),
                "conv_integer" => (2, Some(4)),
                "qlinear_conv" => (8, Some(9)),
                "gemm" => (2, Some(3)),
                "batch_norm" => (5, Some(5)),
                "layer_norm" => (2, Some(3)),
                "reduce_max" | "reduce_mean" | "reduce_sum" => (1, Some(2)),
                "concat" => (1, None),
                "split" => (1, Some(2)),
                "reshape" | "gather" => (2, Some(2)),
                "pad" => (2, Some(4)),
                "resize" => (1, Some(4)),
                "constant_of_shape" => (1, Some(1)),
                "quantize_linear" | "dequantize_linear" => (2, Some(3)),
                "fake_quantize" => (5, Some(5)),
                "qconv" => (3, Some(8)),
                _ => (0, Some(0)),
            },
        },
    }
}
