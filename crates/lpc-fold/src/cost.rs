//! The cost model of extraction: float compute is expensive, fused integer kernels cheap,
//! constants free. Every op kind has a [`CostClass`], chosen by an exhaustive match.

use crate::analysis::FGraph;
use crate::lang::{FNode, Head, HeadKind};
use egg::Id;
use lpc_ir::{DType, OpKind};

/// How an op head is priced (the cost with float inputs / with integer inputs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CostClass {
    /// Dense float-capable compute (conv, matmul, gemm): 1000 / 400.
    Dense,
    /// Pooling and mean/sum reductions: 150 / 10. Float pooling reads every element once,
    /// like a depthwise conv: a qconv (integer pooling) must win over Dequantize → pool →
    /// Quantize.
    Pool,
    /// ONNX integer compute (ConvInteger, MatMulInteger, QLinear*): 300.
    OnnxInteger,
    /// lpc's fused integer kernels (qconv, qmatmul): 100.
    Fused,
    /// FakeQuantize (to be lowered): 500.
    FakeQuantize,
    /// Quantize, dequantize, requantize and integer add: 20.
    Quantize,
    /// Table lookup: 10.
    Lut,
    /// Everything else: 50 / 10.
    Other,
}

impl CostClass {
    /// The cost of one e-node of this class; `float` when any input value is a float tensor.
    pub fn cost(self, float: bool) -> f64 {
        match self {
            CostClass::Dense => {
                if float {
                    1000.0
                } else {
                    400.0
                }
            }
            CostClass::Pool if float => 150.0,
            CostClass::OnnxInteger => 300.0,
            CostClass::Fused => 100.0,
            CostClass::FakeQuantize => 500.0,
            CostClass::Quantize => 20.0,
            CostClass::Lut => 10.0,
            CostClass::Pool | CostClass::Other => {
                if float {
                    50.0
                } else {
                    10.0
                }
            }
        }
    }
}

/// The cost class of an op kind. No catch-all arm: a new op must be priced here.
pub fn cost_class(k: OpKind) -> CostClass {
    use OpKind::*;
    match k {
        Conv | ConvTranspose | MatMul | Gemm => CostClass::Dense,
        // A GEMM over the sequence plus one per step: dense float compute, never quantized.
        Lstm | Gru | Rnn => CostClass::Dense,
        // Ops with bodies are opaque to the fold: one e-node whose attribute leaf holds the
        // whole body (no rule rewrites inside it), priced like dense compute since a body
        // may hold any amount of it.
        If | Loop | Scan => CostClass::Dense,
        GlobalAveragePool | AveragePool | LpPool | ReduceMean | ReduceSum => CostClass::Pool,
        // Two batched matrix products around a softmax: dense float compute.
        Attention | LinearAttention => CostClass::Dense,
        // A convolution whose taps are bilinear samples: dense float compute.
        DeformConv => CostClass::Dense,
        ConvInteger | MatMulInteger | QLinearConv | QLinearMatMul => CostClass::OnnxInteger,
        QConv | QMatMul => CostClass::Fused,
        FakeQuantize => CostClass::FakeQuantize,
        QuantizeLinear | DequantizeLinear | Requantize | QAdd => CostClass::Quantize,
        Lut => CostClass::Lut,
        Input
        | Const
        | Abs
        | Neg
        | Ceil
        | Floor
        | Round
        | Sqrt
        | Reciprocal
        | Exp
        | Log
        | Erf
        | Sigmoid
        | Tanh
        | Relu
        | Identity
        | Elu
        | LeakyRelu
        | HardSigmoid
        | HardSwish
        | Gelu
        | Cast
        | Add
        | Sub
        | Mul
        | Div
        | Pow
        | Mod
        | Fmod
        | Max
        | Min
        | Equal
        | PRelu
        | Not
        | IsNaN
        | IsInf
        | Sign
        | Sin
        | Cos
        | Tan
        | Asin
        | Acos
        | Atan
        | Sinh
        | Cosh
        | Asinh
        | Acosh
        | Atanh
        | Swish
        | ThresholdedRelu
        | Softplus
        | Selu
        | Softsign
        | Shrink
        | Celu
        | Mish
        | Greater
        | Less
        | GreaterOrEqual
        | LessOrEqual
        | And
        | Or
        | Xor
        | Clip
        | Where
        | MaxPool
        | GlobalMaxPool
        | BatchNorm
        | LayerNorm
        | RmsNorm
        | Softmax
        | LogSoftmax
        | Hardmax
        | LpNormalization
        | InstanceNorm
        | GroupNorm
        | Lrn
        | MeanVarianceNorm
        | MaxUnpool
        | CausalConvWithState
        | NegativeLogLikelihoodLoss
        | SoftmaxCrossEntropyLoss
        | ReduceMax
        | ReduceMin
        | ReduceProd
        | ReduceL1
        | ReduceL2
        | ReduceLogSum
        | ReduceLogSumExp
        | ReduceSumSquare
        | Concat
        | Split
        | Flatten
        | Reshape
        | Squeeze
        | Unsqueeze
        | Transpose
        | Expand
        | Gather
        | GatherElements
        | GatherNd
        | ScatterElements
        | ScatterNd
        | Tile
        | CastLike
        | Size
        | ArgMax
        | ArgMin
        | TopK
        | Trilu
        | BitwiseNot
        | BitCast
        | BitwiseAnd
        | BitwiseOr
        | BitwiseXor
        | BitShiftLeft
        | BitShiftRight
        | CumSum
        | CumProd
        | OneHot
        | EyeLike
        | Compress
        | NonZero
        | Unique
        | ReverseSequence
        | CenterCropPad
        | Det
        | Einsum
        | RotaryEmbedding
        | TensorScatter
        | NonMaxSuppression
        | SwiGlu
        | RoiAlign
        | ImageDecoder
        | TfIdfVectorizer
        | MelWeightMatrix
        | Col2Im
        | GridSample
        | AffineGrid
        | Dft
        | Window
        | Stft
        | DepthToSpace
        | SpaceToDepth
        | ShapeOf
        | Slice
        | Pad
        | Resize
        | Range
        | ConstantOfShape
        | DynamicQuantizeLinear => CostClass::Other,
    }
}

/// True when any input value of the node is a float tensor (attributes and constants aside).
fn float_inputs(eg: &FGraph, n: &FNode) -> bool {
    n.children.iter().any(|&c| {
        let d = &eg[c].data;
        d.value.is_none() && d.ty.dtype.is_some_and(DType::is_float)
    })
}

/// Per element of a node's result: the tie-breaker between selections of equal class costs
/// (the one computing on fewer elements wins, a Requantize after a MaxPool rather than before
/// it). Class costs differ by at least 10, so the term never outweighs them for any graph of
/// fewer than 10^9 result elements in all.
pub const COST_PER_ELEMENT: f64 = 1e-9;

/// Cost of one e-node of class `class` on its own: its class cost, plus
/// [`COST_PER_ELEMENT`] per element of its result when the shape is known.
pub fn node_cost(eg: &FGraph, class: Id, n: &FNode) -> f64 {
    let Head::Op { kind, .. } = &n.head else {
        return 0.0;
    };
    let float = float_inputs(eg, n);
    let class_cost = match *kind {
        HeadKind::Op(k) => cost_class(k),
        HeadKind::Q | HeadKind::Dq => CostClass::Quantize,
    };
    let elements = eg[class]
        .data
        .ty
        .shape
        .as_ref()
        .and_then(|s| s.as_known())
        .map_or(0, |d| d.iter().product::<usize>());
    class_cost.cost(float) + COST_PER_ELEMENT * elements as f64
}
