//! The attributes of every `Op` variant, described once for both the printer and the parser.

use crate::{
    rnn_default_activations, ArgAttrs, AspectPolicy, AttentionAttrs, AutoPad, BinaryOp, BlockOrder,
    ConvAttrs, CoordTransform, DType, Graph, GridPadding, LossReduction, NearestMode, Op, PadMode,
    PixelFormat, PoolAttrs, QkOutput, QuantAxis, ReduceOp, ResizeAttrs, ResizeMode, RnnActivation,
    RnnAttrs, RnnDirection, ScanAttrs, ScatterReduction, Tensor, TfIdfMode, UnaryOp, WindowKind,
    SELU_ALPHA, SELU_GAMMA,
};
use std::sync::Arc;

/// An enum attribute written as a bare word (`same_upper`, `f32`, ...).
pub(crate) trait Word: Copy + PartialEq + 'static {
    /// Every value.
    const ALL: &'static [Self];
    /// The word of one value.
    fn word(self) -> &'static str;
    /// The value of a word.
    fn from_word(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.word() == s)
    }
}

impl Word for DType {
    const ALL: &'static [DType] = &DType::ALL;
    fn word(self) -> &'static str {
        self.name()
    }
}

impl Word for WindowKind {
    const ALL: &'static [WindowKind] =
        &[WindowKind::Hann, WindowKind::Hamming, WindowKind::Blackman];
    fn word(self) -> &'static str {
        match self {
            WindowKind::Hann => "hann",
            WindowKind::Hamming => "hamming",
            WindowKind::Blackman => "blackman",
        }
    }
}

impl Word for AutoPad {
    const ALL: &'static [AutoPad] = &[
        AutoPad::NotSet,
        AutoPad::SameUpper,
        AutoPad::SameLower,
        AutoPad::Valid,
    ];
    fn word(self) -> &'static str {
        match self {
            AutoPad::NotSet => "not_set",
            AutoPad::SameUpper => "same_upper",
            AutoPad::SameLower => "same_lower",
            AutoPad::Valid => "valid",
        }
    }
}

impl Word for ResizeMode {
    const ALL: &'static [ResizeMode] =
        &[ResizeMode::Nearest, ResizeMode::Linear, ResizeMode::Cubic];
    fn word(self) -> &'static str {
        match self {
            ResizeMode::Nearest => "nearest",
            ResizeMode::Linear => "linear",
            ResizeMode::Cubic => "cubic",
        }
    }
}

impl Word for CoordTransform {
    const ALL: &'static [CoordTransform] = &[
        CoordTransform::HalfPixel,
        CoordTransform::HalfPixelSymmetric,
        CoordTransform::PytorchHalfPixel,
        CoordTransform::AlignCorners,
        CoordTransform::Asymmetric,
        CoordTransform::TfCropAndResize,
    ];
    fn word(self) -> &'static str {
        match self {
            CoordTransform::HalfPixel => "half_pixel",
            CoordTransform::HalfPixelSymmetric => "half_pixel_symmetric",
            CoordTransform::PytorchHalfPixel => "pytorch_half_pixel",
            CoordTransform::AlignCorners => "align_corners",
            CoordTransform::Asymmetric => "asymmetric",
            CoordTransform::TfCropAndResize => "tf_crop_and_resize",
        }
    }
}

impl Word for NearestMode {
    const ALL: &'static [NearestMode] = &[
        NearestMode::RoundPreferFloor,
        NearestMode::RoundPreferCeil,
        NearestMode::Floor,
        NearestMode::Ceil,
    ];
    fn word(self) -> &'static str {
        match self {
            NearestMode::RoundPreferFloor => "round_prefer_floor",
            NearestMode::RoundPreferCeil => "round_prefer_ceil",
            NearestMode::Floor => "floor",
            NearestMode::Ceil => "ceil",
        }
    }
}

impl Word for AspectPolicy {
    const ALL: &'static [AspectPolicy] = &[
        AspectPolicy::Stretch,
        AspectPolicy::NotLarger,
        AspectPolicy::NotSmaller,
    ];
    fn word(self) -> &'static str {
        match self {
            AspectPolicy::Stretch => "stretch",
            AspectPolicy::NotLarger => "not_larger",
            AspectPolicy::NotSmaller => "not_smaller",
        }
    }
}

impl Word for PixelFormat {
    const ALL: &'static [PixelFormat] =
        &[PixelFormat::Rgb, PixelFormat::Bgr, PixelFormat::Grayscale];
    fn word(self) -> &'static str {
        match self {
            PixelFormat::Rgb => "rgb",
            PixelFormat::Bgr => "bgr",
            PixelFormat::Grayscale => "grayscale",
        }
    }
}

impl Word for TfIdfMode {
    const ALL: &'static [TfIdfMode] = &[TfIdfMode::Tf, TfIdfMode::Idf, TfIdfMode::TfIdf];
    fn word(self) -> &'static str {
        match self {
            TfIdfMode::Tf => "tf",
            TfIdfMode::Idf => "idf",
            TfIdfMode::TfIdf => "tfidf",
        }
    }
}

impl Word for ScatterReduction {
    const ALL: &'static [ScatterReduction] = &[
        ScatterReduction::None,
        ScatterReduction::Add,
        ScatterReduction::Mul,
        ScatterReduction::Max,
        ScatterReduction::Min,
    ];
    fn word(self) -> &'static str {
        match self {
            ScatterReduction::None => "none",
            ScatterReduction::Add => "add",
            ScatterReduction::Mul => "mul",
            ScatterReduction::Max => "max",
            ScatterReduction::Min => "min",
        }
    }
}

impl Word for BlockOrder {
    const ALL: &'static [BlockOrder] = &[BlockOrder::Dcr, BlockOrder::Crd];
    fn word(self) -> &'static str {
        match self {
            BlockOrder::Dcr => "DCR",
            BlockOrder::Crd => "CRD",
        }
    }
}

impl Word for LossReduction {
    const ALL: &'static [LossReduction] =
        &[LossReduction::None, LossReduction::Sum, LossReduction::Mean];
    fn word(self) -> &'static str {
        match self {
            LossReduction::None => "none",
            LossReduction::Sum => "sum",
            LossReduction::Mean => "mean",
        }
    }
}

impl Word for GridPadding {
    const ALL: &'static [GridPadding] = &[
        GridPadding::Zeros,
        GridPadding::Border,
        GridPadding::Reflection,
    ];
    fn word(self) -> &'static str {
        match self {
            GridPadding::Zeros => "zeros",
            GridPadding::Border => "border",
            GridPadding::Reflection => "reflection",
        }
    }
}

impl Word for PadMode {
    const ALL: &'static [PadMode] = &[
        PadMode::Constant,
        PadMode::Reflect,
        PadMode::Edge,
        PadMode::Wrap,
    ];
    fn word(self) -> &'static str {
        match self {
            PadMode::Constant => "constant",
            PadMode::Reflect => "reflect",
            PadMode::Edge => "edge",
            PadMode::Wrap => "wrap",
        }
    }
}

impl Word for QkOutput {
    const ALL: &'static [QkOutput] = &QkOutput::ALL;
    fn word(self) -> &'static str {
        match self {
            QkOutput::Raw => "raw",
            QkOutput::Softcapped => "softcapped",
            QkOutput::Biased => "biased",
            QkOutput::Softmax => "softmax",
        }
    }
}

/// An optional float dtype (Attention's `softmax_precision`): `none` or the dtype's name.
impl Word for Option<DType> {
    const ALL: &'static [Option<DType>] =
        &[None, Some(DType::F32), Some(DType::F16), Some(DType::F64)];
    fn word(self) -> &'static str {
        self.map_or("none", DType::name)
    }
}

impl Word for RnnDirection {
    const ALL: &'static [RnnDirection] = &[
        RnnDirection::Forward,
        RnnDirection::Reverse,
        RnnDirection::Bidirectional,
    ];
    fn word(self) -> &'static str {
        match self {
            RnnDirection::Forward => "forward",
            RnnDirection::Reverse => "reverse",
            RnnDirection::Bidirectional => "bidirectional",
        }
    }
}

/// The `.lir` word of a recurrent activation (its parameters follow in parentheses).
pub(crate) fn activation_word(a: RnnActivation) -> &'static str {
    match a {
        RnnActivation::Relu => "relu",
        RnnActivation::Tanh => "tanh",
        RnnActivation::Sigmoid => "sigmoid",
        RnnActivation::Affine { .. } => "affine",
        RnnActivation::LeakyRelu { .. } => "leaky_relu",
        RnnActivation::ThresholdedRelu { .. } => "thresholded_relu",
        RnnActivation::ScaledTanh { .. } => "scaled_tanh",
        RnnActivation::HardSigmoid { .. } => "hard_sigmoid",
        RnnActivation::Elu { .. } => "elu",
        RnnActivation::Softsign => "softsign",
        RnnActivation::Softplus => "softplus",
    }
}

/// The activation of a `.lir` word with its parameters (as many as the activation takes:
/// `Some(n)` is checked by the caller); `None` for an unknown word.
pub(crate) fn activation_from_word(w: &str, p: &[f32]) -> Option<RnnActivation> {
    let a = |i: usize| p.get(i).copied().unwrap_or(0.0);
    Some(match w {
        "relu" => RnnActivation::Relu,
        "tanh" => RnnActivation::Tanh,
        "sigmoid" => RnnActivation::Sigmoid,
        "affine" => RnnActivation::Affine {
            alpha: a(0),
            beta: a(1),
        },
        "leaky_relu" => RnnActivation::LeakyRelu { alpha: a(0) },
        "thresholded_relu" => RnnActivation::ThresholdedRelu { alpha: a(0) },
        "scaled_tanh" => RnnActivation::ScaledTanh {
            alpha: a(0),
            beta: a(1),
        },
        "hard_sigmoid" => RnnActivation::HardSigmoid {
            alpha: a(0),
            beta: a(1),
        },
        "elu" => RnnActivation::Elu { alpha: a(0) },
        "softsign" => RnnActivation::Softsign,
        "softplus" => RnnActivation::Softplus,
        _ => return None,
    })
}

/// Walks the attributes of an op. `default: None` marks a required attribute (always printed);
/// otherwise the printer omits the attribute when it equals the default (bitwise for floats)
/// and the parser fills the default in when it is absent. List attributes default to empty.
pub(crate) trait Visitor {
    fn usize(&mut self, key: &'static str, v: &mut usize, default: Option<usize>);
    fn u32(&mut self, key: &'static str, v: &mut u32, default: Option<u32>);
    fn i64(&mut self, key: &'static str, v: &mut i64, default: Option<i64>);
    /// An optional integer, written `none` when absent; defaults to `none`.
    fn opt_i64(&mut self, key: &'static str, v: &mut Option<i64>);
    fn f32(&mut self, key: &'static str, v: &mut f32, default: Option<f32>);
    /// An optional float, written `none` when absent; defaults to `none`.
    fn opt_f32(&mut self, key: &'static str, v: &mut Option<f32>);
    fn bool(&mut self, key: &'static str, v: &mut bool, default: Option<bool>);
    fn usizes(&mut self, key: &'static str, v: &mut Vec<usize>);
    fn i64s(&mut self, key: &'static str, v: &mut Vec<i64>);
    fn word<W: Word>(&mut self, key: &'static str, v: &mut W, default: Option<W>);
    /// A double-quoted string (required).
    fn string(&mut self, key: &'static str, v: &mut String);
    /// Recurrent activations, `[sigmoid, leaky_relu(0.1), hard_sigmoid(0.2, 0.5)]`.
    fn activations(
        &mut self,
        key: &'static str,
        v: &mut Vec<RnnActivation>,
        default: Vec<RnnActivation>,
    );
    /// A tensor literal (required).
    fn tensor(&mut self, key: &'static str, v: &mut Arc<Tensor>);
    /// A nested graph, written as a whole `graph @name(...) -> (...) { ... }` (required).
    fn graph(&mut self, key: &'static str, v: &mut Arc<Graph>);
}

fn conv_attrs(c: &mut ConvAttrs, v: &mut impl Visitor) {
    let ConvAttrs {
        kernel,
        strides,
        pads,
        dilations,
        group,
        auto_pad,
    } = c;
    v.usizes("kernel", kernel);
    v.usizes("strides", strides);
    v.usizes("pads", pads);
    v.usizes("dilations", dilations);
    v.usize("group", group, Some(1));
    v.word("auto_pad", auto_pad, Some(AutoPad::NotSet));
}

fn pool_attrs(p: &mut PoolAttrs, v: &mut impl Visitor) {
    let PoolAttrs {
        kernel,
        strides,
        pads,
        dilations,
        ceil_mode,
        auto_pad,
    } = p;
    v.usizes("kernel", kernel);
    v.usizes("strides", strides);
    v.usizes("pads", pads);
    v.usizes("dilations", dilations);
    v.bool("ceil_mode", ceil_mode, Some(false));
    v.word("auto_pad", auto_pad, Some(AutoPad::NotSet));
}

fn quant_axis(q: &mut QuantAxis, v: &mut impl Visitor) {
    let QuantAxis { axis, block_size } = q;
    v.i64("axis", axis, Some(1));
    v.usize("block_size", block_size, Some(0));
}

fn resize_attrs(r: &mut ResizeAttrs, v: &mut impl Visitor) {
    let ResizeAttrs {
        mode,
        coord,
        nearest,
        cubic_a,
        exclude_outside,
        extrapolation,
        antialias,
        axes,
        policy,
    } = r;
    v.word("mode", mode, Some(ResizeMode::Nearest));
    v.word("coord", coord, Some(CoordTransform::HalfPixel));
    v.word("nearest", nearest, Some(NearestMode::RoundPreferFloor));
    v.f32("cubic_a", cubic_a, Some(-0.75));
    v.bool("exclude_outside", exclude_outside, Some(false));
    v.f32("extrapolation", extrapolation, Some(0.0));
    v.bool("antialias", antialias, Some(false));
    v.i64s("axes", axes);
    v.word("policy", policy, Some(AspectPolicy::Stretch));
}

/// The recurrent attributes; `gates` activation functions per direction (LSTM 3, GRU 2,
/// RNN 1) give the default activation list.
fn rnn_attrs(r: &mut RnnAttrs, gates: usize, v: &mut impl Visitor) {
    let RnnAttrs {
        direction,
        hidden_size,
        activations,
        clip,
        batch_first,
    } = r;
    v.word("direction", direction, Some(RnnDirection::Forward));
    v.usize("hidden_size", hidden_size, None);
    let default = rnn_default_activations(gates, direction.count());
    v.activations("activations", activations, default);
    v.opt_f32("clip", clip);
    v.bool("batch_first", batch_first, Some(false));
}

/// Visits every attribute of `op` (the tensor of `Op::Const` is not an attribute: it is
/// written positionally after `const`).
pub(crate) fn visit(op: &mut Op, v: &mut impl Visitor) {
    match op {
        Op::Input { index } => v.usize("index", index, None),
        Op::Const(_) => {}
        Op::Unary(u) => match u {
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
            | UnaryOp::HardSwish
            | UnaryOp::Not
            | UnaryOp::IsNaN
            | UnaryOp::Sign
            | UnaryOp::Sin
            | UnaryOp::Cos
            | UnaryOp::Tan
            | UnaryOp::Asin
            | UnaryOp::Acos
            | UnaryOp::Atan
            | UnaryOp::Sinh
            | UnaryOp::Cosh
            | UnaryOp::Asinh
            | UnaryOp::Acosh
            | UnaryOp::Atanh
            | UnaryOp::BitwiseNot
            | UnaryOp::Softplus
            | UnaryOp::Softsign
            | UnaryOp::Mish => {}
            UnaryOp::Swish { alpha } => v.f32("alpha", alpha, Some(1.0)),
            UnaryOp::ThresholdedRelu { alpha } => v.f32("alpha", alpha, Some(1.0)),
            UnaryOp::Selu { alpha, gamma } => {
                v.f32("alpha", alpha, Some(SELU_ALPHA));
                v.f32("gamma", gamma, Some(SELU_GAMMA));
            }
            UnaryOp::Shrink { bias, lambd } => {
                v.f32("bias", bias, Some(0.0));
                v.f32("lambd", lambd, Some(0.5));
            }
            UnaryOp::Celu { alpha } => v.f32("alpha", alpha, Some(1.0)),
            UnaryOp::IsInf {
                detect_positive,
                detect_negative,
            } => {
                v.bool("detect_positive", detect_positive, Some(true));
                v.bool("detect_negative", detect_negative, Some(true));
            }
            UnaryOp::Elu { alpha } => v.f32("alpha", alpha, Some(1.0)),
            UnaryOp::LeakyRelu { alpha } => v.f32("alpha", alpha, Some(0.01)),
            UnaryOp::HardSigmoid { alpha, beta } => {
                v.f32("alpha", alpha, Some(0.2));
                v.f32("beta", beta, Some(0.5));
            }
            UnaryOp::Gelu { tanh } => v.bool("tanh", tanh, Some(false)),
            UnaryOp::Cast { to } | UnaryOp::BitCast { to } => v.word("to", to, None),
        },
        Op::Binary(b) => match b {
            BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Pow
            | BinaryOp::Mod
            | BinaryOp::Fmod
            | BinaryOp::Max
            | BinaryOp::Min
            | BinaryOp::Equal
            | BinaryOp::PRelu
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
            | BinaryOp::BitShiftRight => {}
        },
        Op::Clip
        | Op::Where
        | Op::MatMul
        | Op::MatMulInteger
        | Op::QLinearMatMul
        | Op::GlobalAveragePool
        | Op::GlobalMaxPool
        | Op::Squeeze
        | Op::Unsqueeze
        | Op::Tile
        | Op::CastLike
        | Op::Size
        | Op::Expand
        | Op::Slice
        | Op::Range
        | Op::DynamicQuantizeLinear
        | Op::QMatMul
        | Op::Requantize
        | Op::QAdd
        | Op::Lut => {}
        Op::Conv(c) | Op::ConvInteger(c) | Op::QLinearConv(c) | Op::QConv(c) => conv_attrs(c, v),
        Op::ConvTranspose {
            conv,
            output_padding,
            output_shape,
        } => {
            conv_attrs(conv, v);
            v.usizes("output_padding", output_padding);
            v.usizes("output_shape", output_shape);
        }
        Op::Gemm {
            alpha,
            beta,
            trans_a,
            trans_b,
        } => {
            v.f32("alpha", alpha, Some(1.0));
            v.f32("beta", beta, Some(1.0));
            v.bool("trans_a", trans_a, Some(false));
            v.bool("trans_b", trans_b, Some(false));
        }
        Op::MaxPool {
            pool,
            storage_order,
        } => {
            pool_attrs(pool, v);
            v.i64("storage_order", storage_order, Some(0));
        }
        Op::AveragePool {
            pool,
            count_include_pad,
        } => {
            pool_attrs(pool, v);
            v.bool("count_include_pad", count_include_pad, Some(false));
        }
        Op::BatchNorm {
            epsilon,
            training,
            momentum,
        } => {
            v.f32("epsilon", epsilon, Some(1e-5));
            v.bool("training", training, Some(false));
            v.f32("momentum", momentum, Some(0.9));
        }
        Op::LayerNorm { axis, epsilon } | Op::RmsNorm { axis, epsilon } => {
            v.i64("axis", axis, Some(-1));
            v.f32("epsilon", epsilon, Some(1e-5));
        }
        Op::Softmax { axis, coerce_2d } | Op::LogSoftmax { axis, coerce_2d } => {
            v.i64("axis", axis, Some(-1));
            v.bool("coerce_2d", coerce_2d, Some(false));
        }
        Op::Hardmax { axis, coerce_2d } => {
            v.i64("axis", axis, Some(-1));
            v.bool("coerce_2d", coerce_2d, Some(false));
        }
        Op::InstanceNorm { epsilon } => v.f32("epsilon", epsilon, Some(1e-5)),
        Op::Lrn {
            alpha,
            beta,
            bias,
            size,
        } => {
            v.f32("alpha", alpha, Some(1e-4));
            v.f32("beta", beta, Some(0.75));
            v.f32("bias", bias, Some(1.0));
            v.usize("size", size, None);
        }
        Op::GroupNorm {
            num_groups,
            epsilon,
        } => {
            v.usize("num_groups", num_groups, None);
            v.f32("epsilon", epsilon, Some(1e-5));
        }
        Op::MeanVarianceNorm { axes } => v.i64s("axes", axes),
        Op::CausalConvWithState { silu } => v.bool("silu", silu, Some(false)),
        Op::MaxUnpool {
            kernel,
            pads,
            strides,
        } => {
            v.usizes("kernel", kernel);
            v.usizes("pads", pads);
            v.usizes("strides", strides);
        }
        Op::LpPool { pool, p } => {
            pool_attrs(pool, v);
            v.i64("p", p, Some(2));
        }
        Op::LpNormalization { axis, p } => {
            v.i64("axis", axis, Some(-1));
            v.i64("p", p, Some(2));
        }
        Op::NegativeLogLikelihoodLoss {
            reduction,
            ignore_index,
        }
        | Op::SoftmaxCrossEntropyLoss {
            reduction,
            ignore_index,
        } => {
            v.word("reduction", reduction, Some(LossReduction::Mean));
            v.opt_i64("ignore_index", ignore_index);
        }
        Op::Reduce {
            op,
            keepdims,
            noop_with_empty_axes,
        } => {
            // The reduction is the op's kind (its name), not an attribute.
            let _: &mut ReduceOp = op;
            v.bool("keepdims", keepdims, Some(true));
            v.bool("noop_with_empty_axes", noop_with_empty_axes, Some(false));
        }
        Op::Concat { axis } => v.i64("axis", axis, None),
        Op::Split { axis, num_outputs } => {
            v.i64("axis", axis, Some(0));
            v.usize("num_outputs", num_outputs, None);
        }
        Op::Flatten { axis } => v.i64("axis", axis, Some(1)),
        Op::Reshape { allowzero } => v.bool("allowzero", allowzero, Some(false)),
        Op::Transpose { perm } => v.usizes("perm", perm),
        Op::Gather { axis } | Op::GatherElements { axis } => v.i64("axis", axis, Some(0)),
        Op::GatherNd { batch_dims } => v.usize("batch_dims", batch_dims, Some(0)),
        Op::ScatterElements { axis, reduction } => {
            v.i64("axis", axis, Some(0));
            v.word("reduction", reduction, Some(ScatterReduction::None));
        }
        Op::ScatterNd { reduction } => v.word("reduction", reduction, Some(ScatterReduction::None)),
        Op::DepthToSpace { blocksize, mode } | Op::SpaceToDepth { blocksize, mode } => {
            v.usize("blocksize", blocksize, None);
            v.word("mode", mode, Some(BlockOrder::Dcr));
        }
        Op::ShapeOf { start, end } => {
            v.i64("start", start, Some(0));
            v.opt_i64("end", end);
        }
        Op::Pad { mode } => v.word("mode", mode, Some(PadMode::Constant)),
        Op::GridSample {
            mode,
            padding,
            align_corners,
        } => {
            v.word("mode", mode, Some(ResizeMode::Linear));
            v.word("padding_mode", padding, Some(GridPadding::Zeros));
            v.bool("align_corners", align_corners, Some(false));
        }
        Op::AffineGrid { align_corners } => v.bool("align_corners", align_corners, Some(false)),
        Op::Resize(r) => resize_attrs(r, v),
        Op::TopK { axis, largest } => {
            v.i64("axis", axis, Some(-1));
            v.bool("largest", largest, Some(true));
        }
        Op::Trilu { upper } => v.bool("upper", upper, Some(true)),
        Op::CumSum { exclusive, reverse } | Op::CumProd { exclusive, reverse } => {
            v.bool("exclusive", exclusive, Some(false));
            v.bool("reverse", reverse, Some(false));
        }
        Op::OneHot { axis } => v.i64("axis", axis, Some(-1)),
        Op::EyeLike { k } => v.i64("k", k, Some(0)),
        Op::Compress { axis } => v.opt_i64("axis", axis),
        Op::NonZero | Op::Det => {}
        Op::Einsum { equation } => v.string("equation", equation),
        Op::RotaryEmbedding {
            interleaved,
            rotary_embedding_dim,
            num_heads,
        } => {
            v.bool("interleaved", interleaved, Some(false));
            v.usize("rotary_embedding_dim", rotary_embedding_dim, Some(0));
            v.usize("num_heads", num_heads, Some(0));
        }
        Op::TensorScatter { axis, circular } => {
            v.i64("axis", axis, Some(-2));
            v.bool("circular", circular, Some(false));
        }
        Op::NonMaxSuppression { center_point_box } => {
            v.bool("center_point_box", center_point_box, Some(false));
        }
        Op::LinearAttention {
            q_num_heads,
            kv_num_heads,
            scale,
            gated,
            delta,
        } => {
            v.usize("q_num_heads", q_num_heads, None);
            v.usize("kv_num_heads", kv_num_heads, None);
            v.f32("scale", scale, Some(0.0));
            v.bool("gated", gated, Some(true));
            v.bool("delta", delta, Some(true));
        }
        Op::SwiGlu { alpha } => v.f32("alpha", alpha, Some(1.0)),
        Op::RoiAlign {
            output_height,
            output_width,
            sampling_ratio,
            spatial_scale,
            max,
            half_pixel,
        } => {
            v.usize("output_height", output_height, Some(1));
            v.usize("output_width", output_width, Some(1));
            v.usize("sampling_ratio", sampling_ratio, Some(0));
            v.f32("spatial_scale", spatial_scale, Some(1.0));
            v.bool("max", max, Some(false));
            v.bool("half_pixel", half_pixel, Some(true));
        }
        Op::DeformConv { conv, offset_group } => {
            conv_attrs(conv, v);
            v.usize("offset_group", offset_group, Some(1));
        }
        Op::ImageDecoder { pixel_format } => {
            v.word("pixel_format", pixel_format, Some(PixelFormat::Rgb));
        }
        Op::TfIdfVectorizer(a) => {
            v.word("mode", &mut a.mode, None);
            v.usize("min_gram_length", &mut a.min_gram_length, None);
            v.usize("max_gram_length", &mut a.max_gram_length, None);
            v.usize("max_skip_count", &mut a.max_skip_count, None);
            v.usizes("ngram_counts", &mut a.ngram_counts);
            v.usizes("ngram_indexes", &mut a.ngram_indexes);
            v.i64s("pool", &mut a.pool);
            v.tensor("weights", &mut a.weights);
        }
        Op::MelWeightMatrix { dtype } => v.word("dtype", dtype, Some(DType::F32)),
        Op::Unique { sorted, axis } => {
            v.bool("sorted", sorted, Some(true));
            v.opt_i64("axis", axis);
        }
        Op::ReverseSequence {
            batch_axis,
            time_axis,
        } => {
            v.usize("batch_axis", batch_axis, Some(1));
            v.usize("time_axis", time_axis, Some(0));
        }
        Op::CenterCropPad { axes } => v.i64s("axes", axes),
        Op::Col2Im {
            dilations,
            pads,
            strides,
        } => {
            v.usizes("dilations", dilations);
            v.usizes("pads", pads);
            v.usizes("strides", strides);
        }
        Op::Dft { inverse, onesided } => {
            v.bool("inverse", inverse, Some(false));
            v.bool("onesided", onesided, Some(false));
        }
        Op::Stft { onesided } => v.bool("onesided", onesided, Some(true)),
        Op::Window {
            window,
            periodic,
            dtype,
        } => {
            v.word("window", window, None);
            v.bool("periodic", periodic, Some(true));
            v.word("dtype", dtype, Some(DType::F32));
        }
        Op::ArgMax(a) | Op::ArgMin(a) => {
            let ArgAttrs {
                axis,
                keepdims,
                select_last_index,
            } = a;
            v.i64("axis", axis, Some(0));
            v.bool("keepdims", keepdims, Some(true));
            v.bool("select_last_index", select_last_index, Some(false));
        }
        Op::ConstantOfShape { value } => v.tensor("value", value),
        Op::QuantizeLinear { q, dtype } => {
            quant_axis(q, v);
            v.word("dtype", dtype, None);
        }
        Op::DequantizeLinear { q } => quant_axis(q, v),
        Op::FakeQuantize { levels } => v.u32("levels", levels, None),
        Op::Lstm { rnn, input_forget } => {
            rnn_attrs(rnn, 3, v);
            v.bool("input_forget", input_forget, Some(false));
        }
        Op::Gru {
            rnn,
            linear_before_reset,
        } => {
            rnn_attrs(rnn, 2, v);
            v.bool("linear_before_reset", linear_before_reset, Some(false));
        }
        Op::Rnn(rnn) => rnn_attrs(rnn, 1, v),
        Op::If {
            then_branch,
            else_branch,
        } => {
            v.graph("then_branch", then_branch);
            v.graph("else_branch", else_branch);
        }
        Op::Loop { body, captures } => {
            v.usize("captures", captures, Some(0));
            v.graph("body", body);
        }
        Op::Scan(ScanAttrs {
            body,
            captures,
            num_scan_inputs,
            input_axes,
            input_directions,
            output_axes,
            output_directions,
        }) => {
            v.usize("num_scan_inputs", num_scan_inputs, None);
            v.usize("captures", captures, Some(0));
            v.i64s("input_axes", input_axes);
            v.i64s("input_directions", input_directions);
            v.i64s("output_axes", output_axes);
            v.i64s("output_directions", output_directions);
            v.graph("body", body);
        }
        Op::Attention(a) => {
            let AttentionAttrs {
                is_causal,
                q_num_heads,
                kv_num_heads,
                scale,
                softcap,
                softmax_precision,
                qk_output,
                left_window,
                right_window,
            } = a;
            v.bool("is_causal", is_causal, Some(false));
            v.usize("q_num_heads", q_num_heads, Some(0));
            v.usize("kv_num_heads", kv_num_heads, Some(0));
            v.opt_f32("scale", scale);
            v.f32("softcap", softcap, Some(0.0));
            v.word("softmax_precision", softmax_precision, Some(None));
            v.word("qk_output", qk_output, Some(QkOutput::Raw));
            v.i64("left_window", left_window, Some(-1));
            v.i64("right_window", right_window, Some(-1));
        }
    }
}
