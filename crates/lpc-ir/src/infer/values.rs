//! Symbolic values of small integer tensors (shape arithmetic: `shape_of`, gather, concat, ...).

use super::{norm_axis, Cx};
use crate::{BinaryOp, DType, Dim, Op, Tensor, UnaryOp};

/// Largest tensor whose elements are tracked.
const MAX_TRACKED: usize = 64;

/// One element of a tracked integer tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Elem {
    /// A known integer.
    Int(i64),
    /// The value of a symbolic dimension.
    Sym(String),
    /// Not known.
    Unknown,
}

impl Elem {
    /// The element as a shape dimension (`None` for negative integers and unknowns).
    pub(crate) fn dim(&self) -> Option<Dim> {
        match self {
            Elem::Int(n) if *n >= 0 => Some(Dim::Known(*n as usize)),
            Elem::Int(_) | Elem::Unknown => None,
            Elem::Sym(s) => Some(Dim::Sym(s.clone())),
        }
    }
}

/// A rank-0 or rank-1 integer tensor whose elements are partly known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PartialValue {
    /// Rank 0 (one element) rather than rank 1.
    pub(crate) scalar: bool,
    /// Elements.
    pub(crate) elems: Vec<Elem>,
}

impl PartialValue {
    /// The elements of an integer constant (any rank, flattened; `scalar` for rank 0).
    pub(crate) fn from_tensor(t: &Tensor) -> Option<PartialValue> {
        if !t.dtype().is_int() {
            return None;
        }
        Some(PartialValue {
            scalar: t.rank() == 0,
            elems: t.to_i64_vec().into_iter().map(Elem::Int).collect(),
        })
    }

    /// All elements, if every one is a known integer.
    pub(crate) fn known(&self) -> Option<Vec<i64>> {
        self.elems
            .iter()
            .map(|e| if let Elem::Int(n) = e { Some(*n) } else { None })
            .collect()
    }

    fn vec(elems: Vec<Elem>) -> Option<PartialValue> {
        (elems.len() <= MAX_TRACKED).then_some(PartialValue {
            scalar: false,
            elems,
        })
    }
}

/// The partial value of output 0 of the node, for the ops that move shape values around.
pub(super) fn propagate(cx: &Cx) -> Option<PartialValue> {
    match cx.op() {
        Op::ShapeOf { start, end } => shape_of(cx, *start, *end),
        Op::Unary(UnaryOp::Identity)
        | Op::Unary(UnaryOp::Cast {
            to: DType::I64 | DType::I32,
        }) => cx.int_value(0),
        Op::Concat { axis } => concat(cx, *axis),
        Op::Gather { axis } => gather(cx, *axis),
        Op::Unsqueeze => {
            let p = cx.int_value(0)?;
            (p.scalar && cx.ints(1)?.iter().all(|&a| a == 0 || a == -1))
                .then_some(PartialValue { scalar: false, ..p })
        }
        Op::Squeeze => {
            let p = cx.int_value(0)?;
            (!p.scalar && p.elems.len() == 1).then_some(PartialValue { scalar: true, ..p })
        }
        Op::Reshape { .. } => {
            let p = cx.int_value(0)?;
            let target = cx.ints(1)?;
            match target.as_slice() {
                [] if p.elems.len() == 1 => Some(PartialValue { scalar: true, ..p }),
                [n] if *n == -1 || *n == p.elems.len() as i64 => {
                    Some(PartialValue { scalar: false, ..p })
                }
                _ => None,
            }
        }
        Op::Slice => slice(cx),
        Op::Binary(b) => binary(cx, *b),
        Op::Input { .. }
        | Op::Const(_)
        | Op::Unary(_)
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
        | Op::Lstm { .. }
        | Op::Attention(_)
        | Op::Gru { .. }
        | Op::Rnn(_)
        | Op::If { .. }
        | Op::Loop { .. }
        | Op::Scan(_)
        | Op::MaxPool { .. }
        | Op::AveragePool { .. }
        | Op::GlobalAveragePool
        | Op::GlobalMaxPool
        | Op::BatchNorm { .. }
        | Op::LayerNorm { .. }
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
        | Op::CausalConvWithState { .. }
        | Op::LpPool { .. }
        | Op::NegativeLogLikelihoodLoss { .. }
        | Op::SoftmaxCrossEntropyLoss { .. }
        | Op::Reduce { .. }
        | Op::Split { .. }
        | Op::Flatten { .. }
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
        | Op::TopK { .. }
        | Op::Trilu { .. }
        | Op::CumSum { .. }
        | Op::CumProd { .. }
        | Op::OneHot { .. }
        | Op::EyeLike { .. }
        | Op::Compress { .. }
        | Op::NonZero
        | Op::Unique { .. }
        | Op::ReverseSequence { .. }
        | Op::CenterCropPad { .. }
        | Op::Det
        | Op::Einsum { .. }
        | Op::RotaryEmbedding { .. }
        | Op::TensorScatter { .. }
        | Op::NonMaxSuppression { .. }
        | Op::LinearAttention { .. }
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
        | Op::Pad { .. }
        | Op::Resize(_)
        | Op::Range
        | Op::ConstantOfShape { .. }
        | Op::QuantizeLinear { .. }
        | Op::DequantizeLinear { .. }
        | Op::DynamicQuantizeLinear
        | Op::FakeQuantize { .. }
        | Op::QConv(_)
        | Op::QMatMul
        | Op::Requantize
        | Op::QAdd
        | Op::Lut => None,
    }
}

/// `shape_of`: the (known or symbolic) dimensions of the input's shape in `start..end`.
fn shape_of(cx: &Cx, start: i64, end: Option<i64>) -> Option<PartialValue> {
    let x = cx.opt(0)?.shape.as_ref()?;
    let (s, e) = super::shape_ops::shape_range(x.rank(), start, end);
    let elems = x.0[s..e]
        .iter()
        .map(|d| match d {
            Dim::Known(n) => Elem::Int(*n as i64),
            Dim::Sym(s) => Elem::Sym(s.clone()),
        })
        .collect();
    PartialValue::vec(elems)
}

/// Concatenation of rank-1 values along axis 0 (untracked inputs of known length add
/// unknown elements).
fn concat(cx: &Cx, axis: i64) -> Option<PartialValue> {
    let mut elems = vec![];
    for slot in 0..cx.num_inputs() {
        let t = cx.opt(slot)?;
        let rank1 = t.shape.as_ref().is_some_and(|s| s.rank() == 1);
        if !rank1 || (axis != 0 && axis != -1) {
            return None;
        }
        match cx.int_value(slot) {
            Some(p) => elems.extend(p.elems),
            None => {
                let n = t.shape.as_ref()?.0[0].known()?;
                elems.extend(std::iter::repeat_n(Elem::Unknown, n));
            }
        }
    }
    PartialValue::vec(elems)
}

/// Gather along axis 0 with constant indices.
fn gather(cx: &Cx, axis: i64) -> Option<PartialValue> {
    let data = cx.int_value(0)?;
    if data.scalar || (axis != 0 && axis != -1) {
        return None;
    }
    let idx = cx.const_in(1)?;
    if idx.rank() > 1 || !idx.dtype().is_int() {
        return None;
    }
    let elems = idx
        .to_i64_vec()
        .into_iter()
        .map(|i| norm_axis(i, data.elems.len()).map(|i| data.elems[i].clone()))
        .collect::<Option<Vec<_>>>()?;
    Some(PartialValue {
        scalar: idx.rank() == 0,
        elems,
    })
}

/// A constant one-axis slice of a rank-1 value.
fn slice(cx: &Cx) -> Option<PartialValue> {
    let p = cx.int_value(0)?;
    if p.scalar {
        return None;
    }
    let starts = cx.ints(1)?;
    let ends = cx.ints(2)?;
    let axes = if cx.has(3) { cx.ints(3)? } else { vec![0] };
    let steps = if cx.has(4) { cx.ints(4)? } else { vec![1] };
    match (
        starts.as_slice(),
        ends.as_slice(),
        axes.as_slice(),
        steps.as_slice(),
    ) {
        ([s], [e], [0 | -1], [st]) if *st != 0 => {
            let n = p.elems.len();
            let idx = super::shape_ops::slice_indices(n as i64, *s, *e, *st);
            PartialValue::vec(idx.into_iter().map(|i| p.elems[i].clone()).collect())
        }
        _ => None,
    }
}

/// Element-wise integer arithmetic, either side broadcast from one element.
fn binary(cx: &Cx, b: BinaryOp) -> Option<PartialValue> {
    let x = cx.int_value(0)?;
    let y = cx.int_value(1)?;
    let n = x.elems.len().max(y.elems.len());
    if (x.elems.len() != n && x.elems.len() != 1) || (y.elems.len() != n && y.elems.len() != 1) {
        return None;
    }
    let get = |p: &PartialValue, i: usize| p.elems[if p.elems.len() == 1 { 0 } else { i }].clone();
    let elems = (0..n)
        .map(|i| arith(b, get(&x, i), get(&y, i)))
        .collect::<Option<Vec<_>>>()?;
    Some(PartialValue {
        scalar: x.scalar && y.scalar,
        elems,
    })
}

/// Integer arithmetic on tracked elements; `None` for ops that do not apply to shape values.
fn arith(b: BinaryOp, x: Elem, y: Elem) -> Option<Elem> {
    let r = match (x, y) {
        (Elem::Int(p), Elem::Int(q)) => match b {
            BinaryOp::Add => p.checked_add(q).map_or(Elem::Unknown, Elem::Int),
            BinaryOp::Sub => p.checked_sub(q).map_or(Elem::Unknown, Elem::Int),
            BinaryOp::Mul => p.checked_mul(q).map_or(Elem::Unknown, Elem::Int),
            BinaryOp::Div => p.checked_div(q).map_or(Elem::Unknown, Elem::Int),
            BinaryOp::Max => Elem::Int(p.max(q)),
            BinaryOp::Min => Elem::Int(p.min(q)),
            BinaryOp::Pow
            | BinaryOp::Mod
            | BinaryOp::Fmod
            | BinaryOp::PRelu
            | BinaryOp::Equal
            | BinaryOp::Greater
            | BinaryOp::Less
            | BinaryOp::GreaterOrEqual
            | BinaryOp::LessOrEqual
            | BinaryOp::And
            | BinaryOp::Or
            | BinaryOp::Xor
            | BinaryOp::BitwiseAnd
            | BinaryOp::BitwiseOr
            | BinaryOp::BitwiseXor
            | BinaryOp::BitShiftLeft
            | BinaryOp::BitShiftRight => return None,
        },
        (s @ Elem::Sym(_), Elem::Int(1)) if matches!(b, BinaryOp::Mul | BinaryOp::Div) => s,
        (Elem::Int(1), s @ Elem::Sym(_)) if b == BinaryOp::Mul => s,
        (s @ Elem::Sym(_), Elem::Int(0)) if matches!(b, BinaryOp::Add | BinaryOp::Sub) => s,
        (Elem::Int(0), s @ Elem::Sym(_)) if b == BinaryOp::Add => s,
        (Elem::Sym(p), Elem::Sym(q)) if p == q && matches!(b, BinaryOp::Max | BinaryOp::Min) => {
            Elem::Sym(p)
        }
        _ => match b {
            BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Max
            | BinaryOp::Min => Elem::Unknown,
            BinaryOp::Pow
            | BinaryOp::Mod
            | BinaryOp::Fmod
            | BinaryOp::PRelu
            | BinaryOp::Equal
            | BinaryOp::Greater
            | BinaryOp::Less
            | BinaryOp::GreaterOrEqual
            | BinaryOp::LessOrEqual
            | BinaryOp::And
            | BinaryOp::Or
            | BinaryOp::Xor
            | BinaryOp::BitwiseAnd
            | BinaryOp::BitwiseOr
            | BinaryOp::BitwiseXor
            | BinaryOp::BitShiftLeft
            | BinaryOp::BitShiftRight => return None,
        },
    };
    Some(r)
}
