//! `OpKind`: what an `Op` is without its attributes, listed once with its `.lir` name, plus
//! everything that depends on the kind alone (arity, attribute leaf, a placeholder op).

use crate::{
    ArgAttrs, AspectPolicy, AttentionAttrs, AutoPad, BinaryOp, BlockOrder, ConvAttrs,
    CoordTransform, DType, GridPadding, LossReduction, NearestMode, Op, PadMode, PixelFormat,
    PoolAttrs, QkOutput, QuantAxis, ReduceOp, ResizeAttrs, ResizeMode, RnnAttrs, RnnDirection,
    ScanAttrs, ScatterReduction, Tensor, TfIdfAttrs, TfIdfMode, UnaryOp, WindowKind, SELU_ALPHA,
    SELU_GAMMA,
};
use std::sync::Arc;

/// Declares [`OpKind`] from `(Variant, "name")` pairs: the enum, [`OpKind::ALL`],
/// [`OpKind::name`] and [`OpKind::from_name`], so each name is written exactly once.
macro_rules! op_kinds {
    ($(($kind:ident, $name:literal)),* $(,)?) => {
        /// The kind of an [`Op`]: one variant per `.lir` op name (a `Unary`, `Binary` or `Reduce`
        /// function is a kind of its own), without attributes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum OpKind {
            $(
                #[doc = concat!("`", $name, "`")]
                $kind,
            )*
        }

        impl OpKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [OpKind] = &[$(OpKind::$kind),*];

            /// The lower-case name used in the `.lir` text format and in error messages.
            pub fn name(self) -> &'static str {
                match self {
                    $(OpKind::$kind => $name,)*
                }
            }

            /// The kind of a `.lir` op name; `None` for an unknown name.
            pub fn from_name(name: &str) -> Option<OpKind> {
                match name {
                    $($name => Some(OpKind::$kind),)*
                    _ => None,
                }
            }
        }
    };
}

op_kinds! {
    (Input, "input"),
    (Const, "const"),
    (Abs, "abs"),
    (Neg, "neg"),
    (Ceil, "ceil"),
    (Floor, "floor"),
    (Round, "round"),
    (Sqrt, "sqrt"),
    (Reciprocal, "reciprocal"),
    (Exp, "exp"),
    (Log, "log"),
    (Erf, "erf"),
    (Sigmoid, "sigmoid"),
    (Tanh, "tanh"),
    (Relu, "relu"),
    (Identity, "identity"),
    (Elu, "elu"),
    (LeakyRelu, "leaky_relu"),
    (HardSigmoid, "hard_sigmoid"),
    (HardSwish, "hard_swish"),
    (Gelu, "gelu"),
    (Cast, "cast"),
    (Not, "not"),
    (IsNaN, "is_nan"),
    (IsInf, "is_inf"),
    (Sign, "sign"),
    (Sin, "sin"),
    (Cos, "cos"),
    (Tan, "tan"),
    (Asin, "asin"),
    (Acos, "acos"),
    (Atan, "atan"),
    (Sinh, "sinh"),
    (Cosh, "cosh"),
    (Asinh, "asinh"),
    (Acosh, "acosh"),
    (Atanh, "atanh"),
    (BitwiseNot, "bitwise_not"),
    (BitCast, "bit_cast"),
    (Swish, "swish"),
    (ThresholdedRelu, "thresholded_relu"),
    (Softplus, "softplus"),
    (Selu, "selu"),
    (Softsign, "softsign"),
    (Shrink, "shrink"),
    (Celu, "celu"),
    (Mish, "mish"),
    (Add, "add"),
    (Sub, "sub"),
    (Mul, "mul"),
    (Div, "div"),
    (Pow, "pow"),
    (Mod, "mod"),
    (Fmod, "fmod"),
    (Max, "max"),
    (Min, "min"),
    (Equal, "equal"),
    (PRelu, "prelu"),
    (Greater, "greater"),
    (Less, "less"),
    (GreaterOrEqual, "greater_or_equal"),
    (LessOrEqual, "less_or_equal"),
    (And, "and"),
    (Or, "or"),
    (Xor, "xor"),
    (BitwiseAnd, "bitwise_and"),
    (BitwiseOr, "bitwise_or"),
    (BitwiseXor, "bitwise_xor"),
    (BitShiftLeft, "bit_shift_left"),
    (BitShiftRight, "bit_shift_right"),
    (Clip, "clip"),
    (Where, "where"),
    (Conv, "conv"),
    (ConvTranspose, "conv_transpose"),
    (ConvInteger, "conv_integer"),
    (QLinearConv, "qlinear_conv"),
    (MatMul, "matmul"),
    (MatMulInteger, "matmul_integer"),
    (QLinearMatMul, "qlinear_matmul"),
    (Gemm, "gemm"),
    (MaxPool, "max_pool"),
    (AveragePool, "average_pool"),
    (GlobalAveragePool, "global_average_pool"),
    (GlobalMaxPool, "global_max_pool"),
    (BatchNorm, "batch_norm"),
    (LayerNorm, "layer_norm"),
    (RmsNorm, "rms_norm"),
    (Softmax, "softmax"),
    (LogSoftmax, "log_softmax"),
    (Hardmax, "hardmax"),
    (LpNormalization, "lp_normalization"),
    (InstanceNorm, "instance_norm"),
    (LpPool, "lp_pool"),
    (NegativeLogLikelihoodLoss, "negative_log_likelihood_loss"),
    (SoftmaxCrossEntropyLoss, "softmax_cross_entropy_loss"),
    (ReduceMax, "reduce_max"),
    (ReduceMean, "reduce_mean"),
    (ReduceSum, "reduce_sum"),
    (ReduceMin, "reduce_min"),
    (ReduceProd, "reduce_prod"),
    (ReduceL1, "reduce_l1"),
    (ReduceL2, "reduce_l2"),
    (ReduceLogSum, "reduce_log_sum"),
    (ReduceLogSumExp, "reduce_log_sum_exp"),
    (ReduceSumSquare, "reduce_sum_square"),
    (Concat, "concat"),
    (Split, "split"),
    (Flatten, "flatten"),
    (Reshape, "reshape"),
    (Squeeze, "squeeze"),
    (Unsqueeze, "unsqueeze"),
    (Transpose, "transpose"),
    (Expand, "expand"),
    (Gather, "gather"),
    (GatherElements, "gather_elements"),
    (GatherNd, "gather_nd"),
    (ScatterElements, "scatter_elements"),
    (ScatterNd, "scatter_nd"),
    (Tile, "tile"),
    (CastLike, "cast_like"),
    (Size, "size"),
    (ArgMax, "arg_max"),
    (ArgMin, "arg_min"),
    (TopK, "top_k"),
    (Trilu, "trilu"),
    (CumSum, "cum_sum"),
    (CumProd, "cum_prod"),
    (OneHot, "one_hot"),
    (EyeLike, "eye_like"),
    (Compress, "compress"),
    (NonZero, "non_zero"),
    (Unique, "unique"),
    (ReverseSequence, "reverse_sequence"),
    (CenterCropPad, "center_crop_pad"),
    (Det, "det"),
    (Einsum, "einsum"),
    (RotaryEmbedding, "rotary_embedding"),
    (TensorScatter, "tensor_scatter"),
    (NonMaxSuppression, "non_max_suppression"),
    (LinearAttention, "linear_attention"),
    (SwiGlu, "swiglu"),
    (RoiAlign, "roi_align"),
    (DeformConv, "deform_conv"),
    (ImageDecoder, "image_decoder"),
    (TfIdfVectorizer, "tf_idf_vectorizer"),
    (MelWeightMatrix, "mel_weight_matrix"),
    (Col2Im, "col2im"),
    (GridSample, "grid_sample"),
    (AffineGrid, "affine_grid"),
    (Dft, "dft"),
    (Window, "window"),
    (Stft, "stft"),
    (DepthToSpace, "depth_to_space"),
    (SpaceToDepth, "space_to_depth"),
    (ShapeOf, "shape_of"),
    (Slice, "slice"),
    (Pad, "pad"),
    (Resize, "resize"),
    (Range, "range"),
    (ConstantOfShape, "constant_of_shape"),
    (QuantizeLinear, "quantize_linear"),
    (DequantizeLinear, "dequantize_linear"),
    (DynamicQuantizeLinear, "dynamic_quantize_linear"),
    (FakeQuantize, "fake_quantize"),
    (QConv, "qconv"),
    (QMatMul, "qmatmul"),
    (Requantize, "requantize"),
    (QAdd, "qadd"),
    (Lut, "lut"),
    (Lstm, "lstm"),
    (Gru, "gru"),
    (Rnn, "rnn"),
    (If, "if"),
    (Loop, "loop"),
    (Scan, "scan"),
    (Attention, "attention"),
    (Lrn, "lrn"),
    (GroupNorm, "group_norm"),
    (MeanVarianceNorm, "mean_variance_norm"),
    (MaxUnpool, "max_unpool"),
    (CausalConvWithState, "causal_conv_with_state"),
}

impl OpKind {
    /// How many input slots the op has: `(required, maximum)`; `None` maximum means variadic.
    pub fn arity(self) -> (usize, Option<usize>) {
        use OpKind::*;
        match self {
            Input | Const => (0, Some(0)),
            Abs | Neg | Ceil | Floor | Round | Sqrt | Reciprocal | Exp | Log | Erf | Sigmoid
            | Tanh | Relu | Identity | Elu | LeakyRelu | HardSigmoid | HardSwish | Gelu | Cast => {
                (1, Some(1))
            }
            Not | IsNaN | IsInf | Sign | Sin | Cos | Tan | Asin | Acos | Atan | Sinh | Cosh
            | Asinh | Acosh | Atanh => (1, Some(1)),
            BitwiseNot | BitCast => (1, Some(1)),
            BitwiseAnd | BitwiseOr | BitwiseXor | BitShiftLeft | BitShiftRight => (2, Some(2)),
            Swish | ThresholdedRelu | Softplus | Selu | Softsign | Shrink | Celu | Mish => {
                (1, Some(1))
            }
            Add | Sub | Mul | Div | Pow | Mod | Fmod | Max | Min | Equal | PRelu => (2, Some(2)),
            Greater | Less | GreaterOrEqual | LessOrEqual | And | Or | Xor => (2, Some(2)),
            Clip => (1, Some(3)),
            Where => (3, Some(3)),
            Conv | ConvTranspose => (2, Some(3)),
            ConvInteger => (2, Some(4)),
            QLinearConv => (8, Some(9)),
            MatMul => (2, Some(2)),
            MatMulInteger => (2, Some(4)),
            QLinearMatMul => (8, Some(8)),
            Gemm => (2, Some(3)),
            MaxPool | AveragePool => (1, Some(1)),
            GlobalAveragePool | GlobalMaxPool => (1, Some(1)),
            BatchNorm => (5, Some(5)),
            LayerNorm => (2, Some(3)),
            RmsNorm => (2, Some(2)),
            Softmax | LogSoftmax => (1, Some(1)),
            Hardmax | LpNormalization | LpPool => (1, Some(1)),
            InstanceNorm => (3, Some(3)),
            NegativeLogLikelihoodLoss | SoftmaxCrossEntropyLoss => (2, Some(3)),
            ReduceMax | ReduceMean | ReduceSum | ReduceMin | ReduceProd | ReduceL1 | ReduceL2
            | ReduceLogSum | ReduceLogSumExp | ReduceSumSquare => (1, Some(2)),
            Concat => (1, None),
            Split => (1, Some(2)),
            Flatten => (1, Some(1)),
            Reshape => (2, Some(2)),
            Squeeze => (1, Some(2)),
            Unsqueeze => (2, Some(2)),
            Transpose => (1, Some(1)),
            Expand => (2, Some(2)),
            Gather | GatherElements | GatherNd | Tile | CastLike => (2, Some(2)),
            ScatterElements | ScatterNd => (3, Some(3)),
            DepthToSpace | SpaceToDepth | Size | ArgMax | ArgMin => (1, Some(1)),
            TopK => (2, Some(2)),
            Trilu => (1, Some(2)),
            CumSum | CumProd | Compress | ReverseSequence | CenterCropPad => (2, Some(2)),
            OneHot | Col2Im => (3, Some(3)),
            GridSample | AffineGrid => (2, Some(2)),
            Dft => (1, Some(3)),
            Window => (1, Some(1)),
            Stft => (2, Some(4)),
            EyeLike | NonZero | Unique | Det => (1, Some(1)),
            Einsum => (1, None),
            RotaryEmbedding => (3, Some(4)),
            TensorScatter => (2, Some(3)),
            NonMaxSuppression => (2, Some(5)),
            LinearAttention => (3, Some(6)),
            SwiGlu => (2, Some(2)),
            RoiAlign => (3, Some(3)),
            DeformConv => (3, Some(5)),
            ImageDecoder | TfIdfVectorizer => (1, Some(1)),
            MelWeightMatrix => (5, Some(5)),
            ShapeOf => (1, Some(1)),
            Slice => (3, Some(5)),
            Pad => (2, Some(4)),
            Resize => (1, Some(4)),
            Range => (3, Some(3)),
            ConstantOfShape => (1, Some(1)),
            QuantizeLinear | DequantizeLinear => (2, Some(3)),
            DynamicQuantizeLinear => (1, Some(1)),
            FakeQuantize => (5, Some(5)),
            QConv | QMatMul => (3, Some(8)),
            Requantize => (5, Some(5)),
            QAdd => (8, Some(10)),
            Lut => (2, Some(2)),
            Lstm => (3, Some(8)),
            Gru | Rnn => (3, Some(6)),
            // Variadic: captured outer values follow the ONNX inputs.
            If | Scan => (1, None),
            Loop => (0, None),
            Attention => (3, Some(7)),
            Lrn | MeanVarianceNorm => (1, Some(1)),
            GroupNorm => (3, Some(3)),
            MaxUnpool => (2, Some(3)),
            CausalConvWithState => (2, Some(4)),
        }
    }

    /// True when ops of this kind carry attribute fields (the fold's e-nodes then take an
    /// attribute leaf as their first child). Unary functions do only when parameterised.
    pub fn has_attrs(self) -> bool {
        use OpKind::*;
        match self {
            Elu | LeakyRelu | HardSigmoid | Gelu | Cast | IsInf | BitCast => true,
            Swish | ThresholdedRelu | Selu | Shrink | Celu => true,
            Softplus | Softsign | Mish => false,
            BitwiseNot | BitwiseAnd | BitwiseOr | BitwiseXor | BitShiftLeft | BitShiftRight
            | NonZero | Det => false,
            Abs | Neg | Ceil | Floor | Round | Sqrt | Reciprocal | Exp | Log | Erf | Sigmoid
            | Tanh | Relu | Identity | HardSwish => false,
            Not | IsNaN | Sign | Sin | Cos | Tan | Asin | Acos | Atan | Sinh | Cosh | Asinh
            | Acosh | Atanh => false,
            Greater | Less | GreaterOrEqual | LessOrEqual | And | Or | Xor => false,
            Add
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
            | Clip
            | Where
            | MatMul
            | MatMulInteger
            | QLinearMatMul
            | GlobalAveragePool
            | GlobalMaxPool
            | Squeeze
            | Unsqueeze
            | Expand
            | Slice
            | Range
            | DynamicQuantizeLinear
            | QMatMul
            | Requantize
            | QAdd
            | Lut
            | Tile
            | CastLike
            | Size => false,
            Input | Const | Conv | ConvTranspose | ConvInteger | QLinearConv | Gemm | MaxPool
            | AveragePool | BatchNorm | LayerNorm | RmsNorm | Softmax | LogSoftmax | ReduceMax
            | ReduceMean | ReduceSum | ReduceMin | ReduceProd | ReduceL1 | ReduceL2
            | ReduceLogSum | ReduceLogSumExp | ReduceSumSquare | Concat | Split | Flatten
            | Reshape | Transpose | Gather | ShapeOf | Pad | Resize | ConstantOfShape
            | QuantizeLinear | DequantizeLinear | FakeQuantize | QConv | GatherElements
            | GatherNd | ScatterElements | ScatterNd | DepthToSpace | SpaceToDepth | Lstm | Gru
            | Rnn | ArgMax | ArgMin | TopK | Trilu | If | Loop | Scan | Attention => true,
            CumSum | CumProd | OneHot | EyeLike | Compress | Unique | ReverseSequence
            | CenterCropPad | Col2Im | GridSample | AffineGrid => true,
            Einsum | RotaryEmbedding | TensorScatter | NonMaxSuppression => true,
            LinearAttention | SwiGlu | RoiAlign | DeformConv => true,
            ImageDecoder | TfIdfVectorizer | MelWeightMatrix => true,
            Lrn | GroupNorm | MeanVarianceNorm | MaxUnpool | CausalConvWithState => true,
            Dft | Window | Stft => true,
            Hardmax
            | LpNormalization
            | LpPool
            | InstanceNorm
            | NegativeLogLikelihoodLoss
            | SoftmaxCrossEntropyLoss => true,
        }
    }

    /// The op of this kind with placeholder attributes (the `.lir` parser fills them in; ops
    /// without attributes are complete). The round-trip tests check every `Op` variant.
    pub fn template(self) -> Op {
        let conv = ConvAttrs::default;
        let pool = || PoolAttrs {
            kernel: vec![],
            strides: vec![],
            pads: vec![],
            dilations: vec![],
            ceil_mode: false,
            auto_pad: AutoPad::NotSet,
        };
        let arg = ArgAttrs {
            axis: 0,
            keepdims: true,
            select_last_index: false,
        };
        let reduce = |op| Op::Reduce {
            op,
            keepdims: true,
            noop_with_empty_axes: false,
        };
        let q = || QuantAxis {
            axis: 1,
            block_size: 0,
        };
        let placeholder = || Arc::new(Tensor::scalar_f32(0.0));
        let rnn = || RnnAttrs {
            direction: RnnDirection::Forward,
            hidden_size: 0,
            activations: vec![],
            clip: None,
            batch_first: false,
        };
        match self {
            OpKind::Input => Op::Input { index: 0 },
            OpKind::Const => Op::Const(placeholder()),
            OpKind::Abs => Op::Unary(UnaryOp::Abs),
            OpKind::Neg => Op::Unary(UnaryOp::Neg),
            OpKind::Ceil => Op::Unary(UnaryOp::Ceil),
            OpKind::Floor => Op::Unary(UnaryOp::Floor),
            OpKind::Round => Op::Unary(UnaryOp::Round),
            OpKind::Sqrt => Op::Unary(UnaryOp::Sqrt),
            OpKind::Reciprocal => Op::Unary(UnaryOp::Reciprocal),
            OpKind::Exp => Op::Unary(UnaryOp::Exp),
            OpKind::Log => Op::Unary(UnaryOp::Log),
            OpKind::Erf => Op::Unary(UnaryOp::Erf),
            OpKind::Sigmoid => Op::Unary(UnaryOp::Sigmoid),
            OpKind::Tanh => Op::Unary(UnaryOp::Tanh),
            OpKind::Relu => Op::Unary(UnaryOp::Relu),
            OpKind::Identity => Op::Unary(UnaryOp::Identity),
            OpKind::Elu => Op::Unary(UnaryOp::Elu { alpha: 1.0 }),
            OpKind::LeakyRelu => Op::Unary(UnaryOp::LeakyRelu { alpha: 0.01 }),
            OpKind::HardSigmoid => Op::Unary(UnaryOp::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            }),
            OpKind::HardSwish => Op::Unary(UnaryOp::HardSwish),
            OpKind::Gelu => Op::Unary(UnaryOp::Gelu { tanh: false }),
            OpKind::Cast => Op::Unary(UnaryOp::Cast { to: DType::F32 }),
            OpKind::Not => Op::Unary(UnaryOp::Not),
            OpKind::IsNaN => Op::Unary(UnaryOp::IsNaN),
            OpKind::IsInf => Op::Unary(UnaryOp::IsInf {
                detect_positive: true,
                detect_negative: true,
            }),
            OpKind::Sign => Op::Unary(UnaryOp::Sign),
            OpKind::Sin => Op::Unary(UnaryOp::Sin),
            OpKind::Cos => Op::Unary(UnaryOp::Cos),
            OpKind::Tan => Op::Unary(UnaryOp::Tan),
            OpKind::Asin => Op::Unary(UnaryOp::Asin),
            OpKind::Acos => Op::Unary(UnaryOp::Acos),
            OpKind::Atan => Op::Unary(UnaryOp::Atan),
            OpKind::Sinh => Op::Unary(UnaryOp::Sinh),
            OpKind::Cosh => Op::Unary(UnaryOp::Cosh),
            OpKind::Asinh => Op::Unary(UnaryOp::Asinh),
            OpKind::Acosh => Op::Unary(UnaryOp::Acosh),
            OpKind::Atanh => Op::Unary(UnaryOp::Atanh),
            OpKind::BitwiseNot => Op::Unary(UnaryOp::BitwiseNot),
            OpKind::BitCast => Op::Unary(UnaryOp::BitCast { to: DType::F32 }),
            OpKind::Swish => Op::Unary(UnaryOp::Swish { alpha: 1.0 }),
            OpKind::ThresholdedRelu => Op::Unary(UnaryOp::ThresholdedRelu { alpha: 1.0 }),
            OpKind::Softplus => Op::Unary(UnaryOp::Softplus),
            OpKind::Selu => Op::Unary(UnaryOp::Selu {
                alpha: SELU_ALPHA,
                gamma: SELU_GAMMA,
            }),
            OpKind::Softsign => Op::Unary(UnaryOp::Softsign),
            OpKind::Shrink => Op::Unary(UnaryOp::Shrink {
                bias: 0.0,
                lambd: 0.5,
            }),
            OpKind::Celu => Op::Unary(UnaryOp::Celu { alpha: 1.0 }),
            OpKind::Mish => Op::Unary(UnaryOp::Mish),
            OpKind::Add => Op::Binary(BinaryOp::Add),
            OpKind::Sub => Op::Binary(BinaryOp::Sub),
            OpKind::Mul => Op::Binary(BinaryOp::Mul),
            OpKind::Div => Op::Binary(BinaryOp::Div),
            OpKind::Pow => Op::Binary(BinaryOp::Pow),
            OpKind::Mod => Op::Binary(BinaryOp::Mod),
            OpKind::Fmod => Op::Binary(BinaryOp::Fmod),
            OpKind::Max => Op::Binary(BinaryOp::Max),
            OpKind::Min => Op::Binary(BinaryOp::Min),
            OpKind::Equal => Op::Binary(BinaryOp::Equal),
            OpKind::PRelu => Op::Binary(BinaryOp::PRelu),
            OpKind::Greater => Op::Binary(BinaryOp::Greater),
            OpKind::Less => Op::Binary(BinaryOp::Less),
            OpKind::GreaterOrEqual => Op::Binary(BinaryOp::GreaterOrEqual),
            OpKind::LessOrEqual => Op::Binary(BinaryOp::LessOrEqual),
            OpKind::And => Op::Binary(BinaryOp::And),
            OpKind::Or => Op::Binary(BinaryOp::Or),
            OpKind::Xor => Op::Binary(BinaryOp::Xor),
            OpKind::BitwiseAnd => Op::Binary(BinaryOp::BitwiseAnd),
            OpKind::BitwiseOr => Op::Binary(BinaryOp::BitwiseOr),
            OpKind::BitwiseXor => Op::Binary(BinaryOp::BitwiseXor),
            OpKind::BitShiftLeft => Op::Binary(BinaryOp::BitShiftLeft),
            OpKind::BitShiftRight => Op::Binary(BinaryOp::BitShiftRight),
            OpKind::Clip => Op::Clip,
            OpKind::Where => Op::Where,
            OpKind::Conv => Op::Conv(conv()),
            OpKind::ConvTranspose => Op::ConvTranspose {
                conv: conv(),
                output_padding: vec![],
                output_shape: vec![],
            },
            OpKind::ConvInteger => Op::ConvInteger(conv()),
            OpKind::QLinearConv => Op::QLinearConv(conv()),
            OpKind::MatMul => Op::MatMul,
            OpKind::MatMulInteger => Op::MatMulInteger,
            OpKind::QLinearMatMul => Op::QLinearMatMul,
            OpKind::QConv => Op::QConv(conv()),
            OpKind::QMatMul => Op::QMatMul,
            OpKind::Requantize => Op::Requantize,
            OpKind::QAdd => Op::QAdd,
            OpKind::Lut => Op::Lut,
            OpKind::Gemm => Op::Gemm {
                alpha: 1.0,
                beta: 1.0,
                trans_a: false,
                trans_b: false,
            },
            OpKind::MaxPool => Op::MaxPool {
                pool: pool(),
                storage_order: 0,
            },
            OpKind::AveragePool => Op::AveragePool {
                pool: pool(),
                count_include_pad: false,
            },
            OpKind::GlobalAveragePool => Op::GlobalAveragePool,
            OpKind::GlobalMaxPool => Op::GlobalMaxPool,
            OpKind::BatchNorm => Op::BatchNorm {
                epsilon: 1e-5,
                training: false,
                momentum: 0.9,
            },
            OpKind::LayerNorm => Op::LayerNorm {
                axis: -1,
                epsilon: 1e-5,
            },
            OpKind::RmsNorm => Op::RmsNorm {
                axis: -1,
                epsilon: 1e-5,
            },
            OpKind::Softmax => Op::Softmax {
                axis: -1,
                coerce_2d: false,
            },
            OpKind::LogSoftmax => Op::LogSoftmax {
                axis: -1,
                coerce_2d: false,
            },
            OpKind::Hardmax => Op::Hardmax {
                axis: -1,
                coerce_2d: false,
            },
            OpKind::LpNormalization => Op::LpNormalization { axis: -1, p: 2 },
            OpKind::InstanceNorm => Op::InstanceNorm { epsilon: 1e-5 },
            OpKind::LpPool => Op::LpPool { pool: pool(), p: 2 },
            OpKind::NegativeLogLikelihoodLoss => Op::NegativeLogLikelihoodLoss {
                reduction: LossReduction::Mean,
                ignore_index: None,
            },
            OpKind::SoftmaxCrossEntropyLoss => Op::SoftmaxCrossEntropyLoss {
                reduction: LossReduction::Mean,
                ignore_index: None,
            },
            OpKind::ReduceMax => reduce(ReduceOp::Max),
            OpKind::ReduceMean => reduce(ReduceOp::Mean),
            OpKind::ReduceSum => reduce(ReduceOp::Sum),
            OpKind::ReduceMin => reduce(ReduceOp::Min),
            OpKind::ReduceProd => reduce(ReduceOp::Prod),
            OpKind::ReduceL1 => reduce(ReduceOp::L1),
            OpKind::ReduceL2 => reduce(ReduceOp::L2),
            OpKind::ReduceLogSum => reduce(ReduceOp::LogSum),
            OpKind::ReduceLogSumExp => reduce(ReduceOp::LogSumExp),
            OpKind::ReduceSumSquare => reduce(ReduceOp::SumSquare),
            OpKind::Concat => Op::Concat { axis: 0 },
            OpKind::Split => Op::Split {
                axis: 0,
                num_outputs: 0,
            },
            OpKind::Flatten => Op::Flatten { axis: 1 },
            OpKind::Reshape => Op::Reshape { allowzero: false },
            OpKind::Squeeze => Op::Squeeze,
            OpKind::Unsqueeze => Op::Unsqueeze,
            OpKind::Transpose => Op::Transpose { perm: vec![] },
            OpKind::Expand => Op::Expand,
            OpKind::Gather => Op::Gather { axis: 0 },
            OpKind::GatherElements => Op::GatherElements { axis: 0 },
            OpKind::GatherNd => Op::GatherNd { batch_dims: 0 },
            OpKind::ScatterElements => Op::ScatterElements {
                axis: 0,
                reduction: ScatterReduction::None,
            },
            OpKind::ScatterNd => Op::ScatterNd {
                reduction: ScatterReduction::None,
            },
            OpKind::Tile => Op::Tile,
            OpKind::CastLike => Op::CastLike,
            OpKind::Size => Op::Size,
            OpKind::ArgMax => Op::ArgMax(arg),
            OpKind::ArgMin => Op::ArgMin(arg),
            OpKind::TopK => Op::TopK {
                axis: -1,
                largest: true,
            },
            OpKind::Trilu => Op::Trilu { upper: true },
            OpKind::CumSum => Op::CumSum {
                exclusive: false,
                reverse: false,
            },
            OpKind::CumProd => Op::CumProd {
                exclusive: false,
                reverse: false,
            },
            OpKind::OneHot => Op::OneHot { axis: -1 },
            OpKind::EyeLike => Op::EyeLike { k: 0 },
            OpKind::Compress => Op::Compress { axis: None },
            OpKind::NonZero => Op::NonZero,
            OpKind::Unique => Op::Unique {
                sorted: true,
                axis: None,
            },
            OpKind::ReverseSequence => Op::ReverseSequence {
                batch_axis: 1,
                time_axis: 0,
            },
            OpKind::CenterCropPad => Op::CenterCropPad { axes: vec![] },
            OpKind::Det => Op::Det,
            OpKind::Einsum => Op::Einsum {
                equation: "i->i".into(),
            },
            OpKind::RotaryEmbedding => Op::RotaryEmbedding {
                interleaved: false,
                rotary_embedding_dim: 0,
                num_heads: 0,
            },
            OpKind::TensorScatter => Op::TensorScatter {
                axis: -2,
                circular: false,
            },
            OpKind::NonMaxSuppression => Op::NonMaxSuppression {
                center_point_box: false,
            },
            OpKind::LinearAttention => Op::LinearAttention {
                q_num_heads: 1,
                kv_num_heads: 1,
                scale: 0.0,
                gated: true,
                delta: true,
            },
            OpKind::SwiGlu => Op::SwiGlu { alpha: 1.0 },
            OpKind::RoiAlign => Op::RoiAlign {
                output_height: 1,
                output_width: 1,
                sampling_ratio: 0,
                spatial_scale: 1.0,
                max: false,
                half_pixel: true,
            },
            OpKind::DeformConv => Op::DeformConv {
                conv: ConvAttrs::default(),
                offset_group: 1,
            },
            OpKind::ImageDecoder => Op::ImageDecoder {
                pixel_format: PixelFormat::Rgb,
            },
            OpKind::TfIdfVectorizer => Op::TfIdfVectorizer(TfIdfAttrs {
                mode: TfIdfMode::Tf,
                min_gram_length: 1,
                max_gram_length: 1,
                max_skip_count: 0,
                ngram_counts: vec![0],
                ngram_indexes: vec![0],
                pool: vec![0],
                weights: Arc::new(Tensor::zeros(DType::F32, &[0])),
            }),
            OpKind::MelWeightMatrix => Op::MelWeightMatrix { dtype: DType::F32 },
            OpKind::GridSample => Op::GridSample {
                mode: ResizeMode::Linear,
                padding: GridPadding::Zeros,
                align_corners: false,
            },
            OpKind::AffineGrid => Op::AffineGrid {
                align_corners: false,
            },
            OpKind::Col2Im => Op::Col2Im {
                dilations: vec![],
                pads: vec![],
                strides: vec![],
            },
            OpKind::Dft => Op::Dft {
                inverse: false,
                onesided: false,
            },
            OpKind::Window => Op::Window {
                window: WindowKind::Hann,
                periodic: true,
                dtype: DType::F32,
            },
            OpKind::Stft => Op::Stft { onesided: true },
            OpKind::DepthToSpace => Op::DepthToSpace {
                blocksize: 1,
                mode: BlockOrder::Dcr,
            },
            OpKind::SpaceToDepth => Op::SpaceToDepth {
                blocksize: 1,
                mode: BlockOrder::Dcr,
            },
            OpKind::ShapeOf => Op::ShapeOf {
                start: 0,
                end: None,
            },
            OpKind::Slice => Op::Slice,
            OpKind::Pad => Op::Pad {
                mode: PadMode::Constant,
            },
            OpKind::Resize => Op::Resize(ResizeAttrs {
                mode: ResizeMode::Nearest,
                coord: CoordTransform::HalfPixel,
                nearest: NearestMode::RoundPreferFloor,
                cubic_a: -0.75,
                exclude_outside: false,
                extrapolation: 0.0,
                antialias: false,
                axes: vec![],
                policy: AspectPolicy::Stretch,
            }),
            OpKind::Range => Op::Range,
            OpKind::ConstantOfShape => Op::ConstantOfShape {
                value: placeholder(),
            },
            OpKind::QuantizeLinear => Op::QuantizeLinear {
                q: q(),
                dtype: DType::U8,
            },
            OpKind::DequantizeLinear => Op::DequantizeLinear { q: q() },
            OpKind::DynamicQuantizeLinear => Op::DynamicQuantizeLinear,
            OpKind::FakeQuantize => Op::FakeQuantize { levels: 256 },
            OpKind::Lstm => Op::Lstm {
                rnn: rnn(),
                input_forget: false,
            },
            OpKind::Gru => Op::Gru {
                rnn: rnn(),
                linear_before_reset: false,
            },
            OpKind::Rnn => Op::Rnn(rnn()),
            OpKind::If => Op::If {
                then_branch: Arc::default(),
                else_branch: Arc::default(),
            },
            OpKind::Loop => Op::Loop {
                body: Arc::default(),
                captures: 0,
            },
            OpKind::Scan => Op::Scan(ScanAttrs {
                body: Arc::default(),
                captures: 0,
                num_scan_inputs: 1,
                input_axes: vec![],
                input_directions: vec![],
                output_axes: vec![],
                output_directions: vec![],
            }),
            OpKind::Attention => Op::Attention(AttentionAttrs {
                is_causal: false,
                q_num_heads: 0,
                kv_num_heads: 0,
                scale: None,
                softcap: 0.0,
                softmax_precision: None,
                qk_output: QkOutput::Raw,
                left_window: -1,
                right_window: -1,
            }),
            OpKind::Lrn => Op::Lrn {
                alpha: 1e-4,
                beta: 0.75,
                bias: 1.0,
                size: 1,
            },
            OpKind::GroupNorm => Op::GroupNorm {
                num_groups: 1,
                epsilon: 1e-5,
            },
            OpKind::MeanVarianceNorm => Op::MeanVarianceNorm {
                axes: vec![0, 2, 3],
            },
            OpKind::MaxUnpool => Op::MaxUnpool {
                kernel: vec![],
                pads: vec![],
                strides: vec![],
            },
            OpKind::CausalConvWithState => Op::CausalConvWithState { silu: false },
        }
    }
}

impl Op {
    /// The op's kind.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Input { .. } => OpKind::Input,
            Op::Const(_) => OpKind::Const,
            Op::Unary(u) => match u {
                UnaryOp::Abs => OpKind::Abs,
                UnaryOp::Neg => OpKind::Neg,
                UnaryOp::Ceil => OpKind::Ceil,
                UnaryOp::Floor => OpKind::Floor,
                UnaryOp::Round => OpKind::Round,
                UnaryOp::Sqrt => OpKind::Sqrt,
                UnaryOp::Reciprocal => OpKind::Reciprocal,
                UnaryOp::Exp => OpKind::Exp,
                UnaryOp::Log => OpKind::Log,
                UnaryOp::Erf => OpKind::Erf,
                UnaryOp::Sigmoid => OpKind::Sigmoid,
                UnaryOp::Tanh => OpKind::Tanh,
                UnaryOp::Relu => OpKind::Relu,
                UnaryOp::Identity => OpKind::Identity,
                UnaryOp::Elu { .. } => OpKind::Elu,
                UnaryOp::LeakyRelu { .. } => OpKind::LeakyRelu,
                UnaryOp::HardSigmoid { .. } => OpKind::HardSigmoid,
                UnaryOp::HardSwish => OpKind::HardSwish,
                UnaryOp::Gelu { .. } => OpKind::Gelu,
                UnaryOp::Cast { .. } => OpKind::Cast,
                UnaryOp::Not => OpKind::Not,
                UnaryOp::IsNaN => OpKind::IsNaN,
                UnaryOp::IsInf { .. } => OpKind::IsInf,
                UnaryOp::Sign => OpKind::Sign,
                UnaryOp::Sin => OpKind::Sin,
                UnaryOp::Cos => OpKind::Cos,
                UnaryOp::Tan => OpKind::Tan,
                UnaryOp::Asin => OpKind::Asin,
                UnaryOp::Acos => OpKind::Acos,
                UnaryOp::Atan => OpKind::Atan,
                UnaryOp::Sinh => OpKind::Sinh,
                UnaryOp::Cosh => OpKind::Cosh,
                UnaryOp::Asinh => OpKind::Asinh,
                UnaryOp::Acosh => OpKind::Acosh,
                UnaryOp::Atanh => OpKind::Atanh,
                UnaryOp::BitwiseNot => OpKind::BitwiseNot,
                UnaryOp::BitCast { .. } => OpKind::BitCast,
                UnaryOp::Swish { .. } => OpKind::Swish,
                UnaryOp::ThresholdedRelu { .. } => OpKind::ThresholdedRelu,
                UnaryOp::Softplus => OpKind::Softplus,
                UnaryOp::Selu { .. } => OpKind::Selu,
                UnaryOp::Softsign => OpKind::Softsign,
                UnaryOp::Shrink { .. } => OpKind::Shrink,
                UnaryOp::Celu { .. } => OpKind::Celu,
                UnaryOp::Mish => OpKind::Mish,
            },
            Op::Binary(b) => match b {
                BinaryOp::Add => OpKind::Add,
                BinaryOp::Sub => OpKind::Sub,
                BinaryOp::Mul => OpKind::Mul,
                BinaryOp::Div => OpKind::Div,
                BinaryOp::Pow => OpKind::Pow,
                BinaryOp::Mod => OpKind::Mod,
                BinaryOp::Fmod => OpKind::Fmod,
                BinaryOp::Max => OpKind::Max,
                BinaryOp::Min => OpKind::Min,
                BinaryOp::Equal => OpKind::Equal,
                BinaryOp::PRelu => OpKind::PRelu,
                BinaryOp::Greater => OpKind::Greater,
                BinaryOp::Less => OpKind::Less,
                BinaryOp::GreaterOrEqual => OpKind::GreaterOrEqual,
                BinaryOp::LessOrEqual => OpKind::LessOrEqual,
                BinaryOp::And => OpKind::And,
                BinaryOp::Or => OpKind::Or,
                BinaryOp::Xor => OpKind::Xor,
                BinaryOp::BitwiseAnd => OpKind::BitwiseAnd,
                BinaryOp::BitwiseOr => OpKind::BitwiseOr,
                BinaryOp::BitwiseXor => OpKind::BitwiseXor,
                BinaryOp::BitShiftLeft => OpKind::BitShiftLeft,
                BinaryOp::BitShiftRight => OpKind::BitShiftRight,
            },
            Op::Clip => OpKind::Clip,
            Op::Where => OpKind::Where,
            Op::Conv(_) => OpKind::Conv,
            Op::ConvTranspose { .. } => OpKind::ConvTranspose,
            Op::ConvInteger(_) => OpKind::ConvInteger,
            Op::QLinearConv(_) => OpKind::QLinearConv,
            Op::MatMul => OpKind::MatMul,
            Op::MatMulInteger => OpKind::MatMulInteger,
            Op::QLinearMatMul => OpKind::QLinearMatMul,
            Op::Gemm { .. } => OpKind::Gemm,
            Op::MaxPool { .. } => OpKind::MaxPool,
            Op::AveragePool { .. } => OpKind::AveragePool,
            Op::GlobalAveragePool => OpKind::GlobalAveragePool,
            Op::GlobalMaxPool => OpKind::GlobalMaxPool,
            Op::BatchNorm { .. } => OpKind::BatchNorm,
            Op::LayerNorm { .. } => OpKind::LayerNorm,
            Op::RmsNorm { .. } => OpKind::RmsNorm,
            Op::Softmax { .. } => OpKind::Softmax,
            Op::LogSoftmax { .. } => OpKind::LogSoftmax,
            Op::Hardmax { .. } => OpKind::Hardmax,
            Op::LpNormalization { .. } => OpKind::LpNormalization,
            Op::InstanceNorm { .. } => OpKind::InstanceNorm,
            Op::LpPool { .. } => OpKind::LpPool,
            Op::NegativeLogLikelihoodLoss { .. } => OpKind::NegativeLogLikelihoodLoss,
            Op::SoftmaxCrossEntropyLoss { .. } => OpKind::SoftmaxCrossEntropyLoss,
            Op::Reduce { op, .. } => reduce_kind(*op),
            Op::Concat { .. } => OpKind::Concat,
            Op::Split { .. } => OpKind::Split,
            Op::Flatten { .. } => OpKind::Flatten,
            Op::Reshape { .. } => OpKind::Reshape,
            Op::Squeeze => OpKind::Squeeze,
            Op::Unsqueeze => OpKind::Unsqueeze,
            Op::Transpose { .. } => OpKind::Transpose,
            Op::Expand => OpKind::Expand,
            Op::Gather { .. } => OpKind::Gather,
            Op::GatherElements { .. } => OpKind::GatherElements,
            Op::GatherNd { .. } => OpKind::GatherNd,
            Op::ScatterElements { .. } => OpKind::ScatterElements,
            Op::ScatterNd { .. } => OpKind::ScatterNd,
            Op::Tile => OpKind::Tile,
            Op::CastLike => OpKind::CastLike,
            Op::Size => OpKind::Size,
            Op::ArgMax(_) => OpKind::ArgMax,
            Op::ArgMin(_) => OpKind::ArgMin,
            Op::TopK { .. } => OpKind::TopK,
            Op::Trilu { .. } => OpKind::Trilu,
            Op::CumSum { .. } => OpKind::CumSum,
            Op::CumProd { .. } => OpKind::CumProd,
            Op::OneHot { .. } => OpKind::OneHot,
            Op::EyeLike { .. } => OpKind::EyeLike,
            Op::Compress { .. } => OpKind::Compress,
            Op::NonZero => OpKind::NonZero,
            Op::Unique { .. } => OpKind::Unique,
            Op::ReverseSequence { .. } => OpKind::ReverseSequence,
            Op::CenterCropPad { .. } => OpKind::CenterCropPad,
            Op::Det => OpKind::Det,
            Op::Einsum { .. } => OpKind::Einsum,
            Op::RotaryEmbedding { .. } => OpKind::RotaryEmbedding,
            Op::TensorScatter { .. } => OpKind::TensorScatter,
            Op::NonMaxSuppression { .. } => OpKind::NonMaxSuppression,
            Op::LinearAttention { .. } => OpKind::LinearAttention,
            Op::SwiGlu { .. } => OpKind::SwiGlu,
            Op::RoiAlign { .. } => OpKind::RoiAlign,
            Op::DeformConv { .. } => OpKind::DeformConv,
            Op::ImageDecoder { .. } => OpKind::ImageDecoder,
            Op::TfIdfVectorizer(_) => OpKind::TfIdfVectorizer,
            Op::MelWeightMatrix { .. } => OpKind::MelWeightMatrix,
            Op::Col2Im { .. } => OpKind::Col2Im,
            Op::GridSample { .. } => OpKind::GridSample,
            Op::AffineGrid { .. } => OpKind::AffineGrid,
            Op::Dft { .. } => OpKind::Dft,
            Op::Window { .. } => OpKind::Window,
            Op::Stft { .. } => OpKind::Stft,
            Op::DepthToSpace { .. } => OpKind::DepthToSpace,
            Op::SpaceToDepth { .. } => OpKind::SpaceToDepth,
            Op::ShapeOf { .. } => OpKind::ShapeOf,
            Op::Slice => OpKind::Slice,
            Op::Pad { .. } => OpKind::Pad,
            Op::Resize(_) => OpKind::Resize,
            Op::Range => OpKind::Range,
            Op::ConstantOfShape { .. } => OpKind::ConstantOfShape,
            Op::QuantizeLinear { .. } => OpKind::QuantizeLinear,
            Op::DequantizeLinear { .. } => OpKind::DequantizeLinear,
            Op::DynamicQuantizeLinear => OpKind::DynamicQuantizeLinear,
            Op::FakeQuantize { .. } => OpKind::FakeQuantize,
            Op::QConv(_) => OpKind::QConv,
            Op::QMatMul => OpKind::QMatMul,
            Op::Requantize => OpKind::Requantize,
            Op::QAdd => OpKind::QAdd,
            Op::Lut => OpKind::Lut,
            Op::Lstm { .. } => OpKind::Lstm,
            Op::Gru { .. } => OpKind::Gru,
            Op::Rnn(_) => OpKind::Rnn,
            Op::If { .. } => OpKind::If,
            Op::Loop { .. } => OpKind::Loop,
            Op::Scan(_) => OpKind::Scan,
            Op::Attention(_) => OpKind::Attention,
            Op::Lrn { .. } => OpKind::Lrn,
            Op::GroupNorm { .. } => OpKind::GroupNorm,
            Op::MeanVarianceNorm { .. } => OpKind::MeanVarianceNorm,
            Op::MaxUnpool { .. } => OpKind::MaxUnpool,
            Op::CausalConvWithState { .. } => OpKind::CausalConvWithState,
        }
    }

    /// The op of a `.lir` name with placeholder attributes ([`OpKind::template`]); `None` for
    /// an unknown name.
    pub fn from_name(name: &str) -> Option<Op> {
        OpKind::from_name(name).map(OpKind::template)
    }

    /// True when the op carries attribute fields ([`OpKind::has_attrs`]).
    pub fn has_attrs(&self) -> bool {
        self.kind().has_attrs()
    }
}

/// The kind of each reduction (each is an op of its own in `.lir` and in the fold).
fn reduce_kind(r: ReduceOp) -> OpKind {
    match r {
        ReduceOp::Max => OpKind::ReduceMax,
        ReduceOp::Mean => OpKind::ReduceMean,
        ReduceOp::Sum => OpKind::ReduceSum,
        ReduceOp::Min => OpKind::ReduceMin,
        ReduceOp::Prod => OpKind::ReduceProd,
        ReduceOp::L1 => OpKind::ReduceL1,
        ReduceOp::L2 => OpKind::ReduceL2,
        ReduceOp::LogSum => OpKind::ReduceLogSum,
        ReduceOp::LogSumExp => OpKind::ReduceLogSumExp,
        ReduceOp::SumSquare => OpKind::ReduceSumSquare,
    }
}

#[cfg(test)]
mod tests {
    use super::OpKind;

    #[test]
    fn every_kind_round_trips_through_its_name_and_template() {
        for &k in OpKind::ALL {
            assert_eq!(OpKind::from_name(k.name()), Some(k));
            let op = k.template();
            assert_eq!(op.kind(), k);
            assert_eq!(op.name(), k.name());
            assert_eq!(op.arity(), k.arity());
        }
        assert_eq!(OpKind::from_name("nope"), None);
    }
}
