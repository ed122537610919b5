//! The cost model of extraction: float compute is expensive, fused integer kernels cheap,
//! constants free. Every op kind has a [`CostClass`], chosen by an exhaustive match.

use crate::analysis::FGraph;
use crate::lang::{FNode, Head, HeadKind};
use egg::{CostFunction, Id};
use lpc_ir::{DType, OpKind};
use std::collections::HashSet;

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
        // Two batched matrix products around a softmax: dense float compute.
        Attention => CostClass::Dense,
        GlobalAveragePool | AveragePool | ReduceMean | ReduceSum => CostClass::Pool,
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
        | Softmax
        | LogSoftmax
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

/// The cost function of extraction: [`node_cost`] plus the children's costs. Classes in `shared` cost nothing as children: the extracted graph computes them anyway
/// (see [`crate::extract::extract`]).
pub struct CostModel<'a> {
    /// The e-graph (for child dtypes).
    pub eg: &'a FGraph,
    /// Classes already computed by the current selection.
    pub shared: HashSet<Id>,
}

/// True when any input value of the node is a float tensor (attributes and constants aside).
fn float_inputs(eg: &FGraph, n: &FNode) -> bool {
    n.children.iter().any(|&c| {
        let d = &eg[c].data;
        d.value.is_none() && d.ty.dtype.is_some_and(DType::is_float)
    })
}

/// Cost of one e-node on its own.
pub fn node_cost(eg: &FGraph, n: &FNode) -> f64 {
    let Head::Op { kind, .. } = &n.head else {
        return 0.0;
    };
    let float = float_inputs(eg, n);
    let class = match *kind {
        HeadKind::Op(k) => cost_class(k),
        HeadKind::Q | HeadKind::Dq => CostClass::Quantize,
    };
    class.cost(float)
}

impl CostFunction<FNode> for CostModel<'_> {
    type Cost = f64;
    fn cost<C: FnMut(Id) -> f64>(&mut self, n: &FNode, mut costs: C) -> f64 {
        let children: f64 = n
            .children
            .iter()
            .map(|&c| {
                if self.shared.contains(&self.eg.find(c)) {
                    0.0
                } else {
                    costs(c)
                }
            })
            .sum();
        node_cost(self.eg, n) + children
    }
}
