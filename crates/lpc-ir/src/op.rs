//! The operator set: one `Op` variant per operation, attributes as typed fields.
//!
//! Conventions (the importer normalises every ONNX opset to them):
//! - Operands that newer ONNX opsets take as inputs (Clip min/max, Reshape shape, Slice
//!   starts/ends/axes/steps, Pad pads, Squeeze/Unsqueeze/Reduce axes, Split sizes, Resize
//!   roi/scales/sizes, ...) are inputs here too, usually constants. Absent optional inputs are
//!   unconnected input slots.
//! - Variadic Max/Min/Sum become chains of binary ops at import.
//! - Spatial attributes (`kernel`, `strides`, `pads`, `dilations`) are empty when the ONNX
//!   default applies ("1 per spatial axis", "no padding"); pads are `[begin..., end...]`.
//! - Names, arities and attribute defaults depend on the kind alone ([`crate::OpKind`], listed
//!   once). The core matches on `Op` (printer, parser, shape inference, reference interpreter,
//!   JIT lowering, fold cost classes) have no catch-all arm, so adding a variant breaks them;
//!   heuristics elsewhere (quantizer placement, fold diagnostics) do use `_ =>` arms.

use crate::{DType, Graph, Tensor};
use std::sync::Arc;

/// The ONNX default `alpha` of Selu (1.67326319217681884765625, the f32 nearest the
/// self-normalising constant).
pub const SELU_ALPHA: f32 = 1.673_263_2;
/// The ONNX default `gamma` of Selu (1.05070102214813232421875).
pub const SELU_GAMMA: f32 = 1.050_701;

/// Elementwise unary operations.
#[derive(Clone, Debug, PartialEq)]
pub enum UnaryOp {
    /// |x|
    Abs,
    /// -x
    Neg,
    /// ceil(x)
    Ceil,
    /// floor(x)
    Floor,
    /// round half to even
    Round,
    /// sqrt(x)
    Sqrt,
    /// 1/x
    Reciprocal,
    /// e^x
    Exp,
    /// ln(x)
    Log,
    /// error function
    Erf,
    /// 1/(1+e^-x)
    Sigmoid,
    /// tanh(x)
    Tanh,
    /// max(x, 0)
    Relu,
    /// x
    Identity,
    /// x >= 0 ? x : alpha*(e^x - 1)
    Elu {
        /// Negative-side scale.
        alpha: f32,
    },
    /// x >= 0 ? x : alpha*x
    LeakyRelu {
        /// Negative-side slope.
        alpha: f32,
    },
    /// max(0, min(1, alpha*x + beta))
    HardSigmoid {
        /// Slope.
        alpha: f32,
        /// Offset.
        beta: f32,
    },
    /// x * max(0, min(1, x/6 + 1/2))
    HardSwish,
    /// Gaussian error linear unit.
    Gelu {
        /// Use the tanh approximation.
        tanh: bool,
    },
    /// Element type conversion with ONNX Cast semantics.
    Cast {
        /// Target dtype.
        to: DType,
    },
    /// Logical not of a bool tensor.
    Not,
    /// x is NaN (bool result).
    IsNaN,
    /// x is an infinity of a detected sign (bool result).
    IsInf {
        /// Detect +inf.
        detect_positive: bool,
        /// Detect -inf.
        detect_negative: bool,
    },
    /// -1, 0 or 1 by the sign of x (NaN stays NaN).
    Sign,
    /// sin(x)
    Sin,
    /// cos(x)
    Cos,
    /// tan(x)
    Tan,
    /// asin(x)
    Asin,
    /// acos(x)
    Acos,
    /// atan(x)
    Atan,
    /// sinh(x)
    Sinh,
    /// cosh(x)
    Cosh,
    /// asinh(x)
    Asinh,
    /// acosh(x)
    Acosh,
    /// atanh(x)
    Atanh,
    /// Bitwise complement of an integer tensor.
    BitwiseNot,
    /// Reinterprets the bits of each element as `to`, a dtype of the same width.
    BitCast {
        /// Target dtype.
        to: DType,
    },
    /// x * sigmoid(alpha*x)
    Swish {
        /// Scale inside the sigmoid.
        alpha: f32,
    },
    /// x > alpha ? x : 0
    ThresholdedRelu {
        /// Threshold.
        alpha: f32,
    },
    /// ln(1 + e^x)
    Softplus,
    /// x > 0 ? gamma*x : gamma*alpha*(e^x - 1)
    Selu {
        /// Negative-side scale.
        alpha: f32,
        /// Output scale.
        gamma: f32,
    },
    /// x / (1 + |x|)
    Softsign,
    /// x < -lambd ? x + bias : x > lambd ? x - bias : 0
    Shrink {
        /// Shift applied outside the dead zone.
        bias: f32,
        /// Half-width of the dead zone.
        lambd: f32,
    },
    /// max(0, x) + min(0, alpha*(e^(x/alpha) - 1))
    Celu {
        /// Scale.
        alpha: f32,
    },
    /// x * tanh(ln(1 + e^x))
    Mish,
}

/// Elementwise binary operations with numpy broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// a + b
    Add,
    /// a - b
    Sub,
    /// a * b
    Mul,
    /// a / b (integer division truncates toward zero)
    Div,
    /// a ^ b (the result has a's dtype)
    Pow,
    /// a mod b with the sign of b (ONNX Mod, fmod = 0; Python's %)
    Mod,
    /// a mod b with the sign of a (ONNX Mod, fmod = 1; C's fmod)
    Fmod,
    /// max(a, b)
    Max,
    /// min(a, b)
    Min,
    /// a == b (bool result)
    Equal,
    /// a >= 0 ? a : b*a (PRelu; b is the slope)
    PRelu,
    /// a > b (bool result)
    Greater,
    /// a < b (bool result)
    Less,
    /// a >= b (bool result)
    GreaterOrEqual,
    /// a <= b (bool result)
    LessOrEqual,
    /// a && b on bool tensors
    And,
    /// a || b on bool tensors
    Or,
    /// a != b on bool tensors
    Xor,
    /// a & b on integer tensors
    BitwiseAnd,
    /// a | b on integer tensors
    BitwiseOr,
    /// a ^ b on integer tensors
    BitwiseXor,
    /// a << b on integer tensors; a shift outside [0, width) gives 0
    BitShiftLeft,
    /// a >> b on integer tensors (arithmetic for signed dtypes); a shift outside [0, width)
    /// gives 0, or -1 for a negative signed a
    BitShiftRight,
}

impl BinaryOp {
    /// True for the comparisons (`Equal`, `Greater`, ...): any operand dtype, bool result.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Equal
                | BinaryOp::Greater
                | BinaryOp::Less
                | BinaryOp::GreaterOrEqual
                | BinaryOp::LessOrEqual
        )
    }

    /// True for the logical ops on bool tensors (`And`, `Or`, `Xor`).
    pub fn is_logical(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Xor)
    }

    /// True for the bitwise ops on integer tensors (`BitwiseAnd`, ..., `BitShiftRight`).
    pub fn is_bitwise(self) -> bool {
        matches!(
            self,
            BinaryOp::BitwiseAnd
                | BinaryOp::BitwiseOr
                | BinaryOp::BitwiseXor
                | BinaryOp::BitShiftLeft
                | BinaryOp::BitShiftRight
        )
    }
}

/// Reductions over a set of axes (given as an optional i64 input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Maximum.
    Max,
    /// Arithmetic mean.
    Mean,
    /// Sum.
    Sum,
    /// Minimum.
    Min,
    /// Product.
    Prod,
    /// Sum of absolute values.
    L1,
    /// Square root of the sum of squares.
    L2,
    /// Natural log of the sum.
    LogSum,
    /// Natural log of the sum of exponentials.
    LogSumExp,
    /// Sum of squares.
    SumSquare,
}

impl ReduceOp {
    /// Every reduction, in declaration order.
    pub const ALL: [ReduceOp; 10] = [
        ReduceOp::Max,
        ReduceOp::Mean,
        ReduceOp::Sum,
        ReduceOp::Min,
        ReduceOp::Prod,
        ReduceOp::L1,
        ReduceOp::L2,
        ReduceOp::LogSum,
        ReduceOp::LogSumExp,
        ReduceOp::SumSquare,
    ];
}

/// How spatial padding is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AutoPad {
    /// Use the explicit `pads`.
    NotSet,
    /// Output size ceil(in/stride), extra padding at the end.
    SameUpper,
    /// Output size ceil(in/stride), extra padding at the beginning.
    SameLower,
    /// No padding.
    Valid,
}

/// Attributes shared by Conv-like operations (Conv, ConvInteger, QLinearConv, ConvTranspose).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConvAttrs {
    /// Kernel spatial shape; empty means "from the weights".
    pub kernel: Vec<usize>,
    /// Strides per spatial axis; empty means all 1.
    pub strides: Vec<usize>,
    /// Pads `[begin..., end...]`; empty means all 0.
    pub pads: Vec<usize>,
    /// Dilations per spatial axis; empty means all 1.
    pub dilations: Vec<usize>,
    /// Number of groups.
    pub group: usize,
    /// Padding mode.
    pub auto_pad: AutoPad,
}

impl Default for ConvAttrs {
    fn default() -> ConvAttrs {
        ConvAttrs {
            kernel: vec![],
            strides: vec![],
            pads: vec![],
            dilations: vec![],
            group: 1,
            auto_pad: AutoPad::NotSet,
        }
    }
}

/// Attributes of MaxPool, AveragePool and LpPool.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolAttrs {
    /// Window spatial shape.
    pub kernel: Vec<usize>,
    /// Strides per spatial axis; empty means all 1.
    pub strides: Vec<usize>,
    /// Pads `[begin..., end...]`; empty means all 0.
    pub pads: Vec<usize>,
    /// Dilations per spatial axis; empty means all 1.
    pub dilations: Vec<usize>,
    /// Round output sizes up instead of down.
    pub ceil_mode: bool,
    /// Padding mode.
    pub auto_pad: AutoPad,
}

/// Resize interpolation mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResizeMode {
    /// Nearest neighbour.
    Nearest,
    /// (Bi/tri)linear.
    Linear,
    /// Cubic.
    Cubic,
}

/// Resize coordinate transformation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CoordTransform {
    /// (x + 0.5) / scale - 0.5
    HalfPixel,
    /// Like half_pixel but symmetric about the centre of the input.
    HalfPixelSymmetric,
    /// half_pixel, but 0 when the output length is 1.
    PytorchHalfPixel,
    /// x * (in - 1) / (out - 1)
    AlignCorners,
    /// x / scale
    Asymmetric,
    /// Crop-and-resize with the roi input.
    TfCropAndResize,
}

/// Rounding of nearest-mode Resize.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NearestMode {
    /// Round half down (toward -inf).
    RoundPreferFloor,
    /// Round half up.
    RoundPreferCeil,
    /// floor
    Floor,
    /// ceil
    Ceil,
}

/// How Resize keeps the aspect ratio when `sizes` is given with `axes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AspectPolicy {
    /// Use sizes as given.
    Stretch,
    /// Largest scale that fits inside sizes.
    NotLarger,
    /// Smallest scale that covers sizes.
    NotSmaller,
}

/// Attributes of ArgMax and ArgMin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArgAttrs {
    /// The axis searched (may be negative).
    pub axis: i64,
    /// Keep the searched axis with size 1.
    pub keepdims: bool,
    /// On ties, the last index instead of the first.
    pub select_last_index: bool,
}

/// Attributes of Resize (inputs: x, roi?, scales?, sizes?).
#[derive(Clone, Debug, PartialEq)]
pub struct ResizeAttrs {
    /// Interpolation.
    pub mode: ResizeMode,
    /// Coordinate transformation.
    pub coord: CoordTransform,
    /// Rounding for nearest mode.
    pub nearest: NearestMode,
    /// Cubic coefficient a.
    pub cubic_a: f32,
    /// Exclude samples outside the input from cubic weights.
    pub exclude_outside: bool,
    /// Value for tf_crop_and_resize samples outside the input.
    pub extrapolation: f32,
    /// Antialiasing filter when downsampling (linear/cubic).
    pub antialias: bool,
    /// Axes that scales/sizes refer to; empty means all.
    pub axes: Vec<i64>,
    /// Aspect-ratio policy for sizes.
    pub policy: AspectPolicy,
}

/// Padding mode of Pad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PadMode {
    /// Fill with a constant.
    Constant,
    /// Mirror without repeating the edge.
    Reflect,
    /// Repeat the edge.
    Edge,
    /// Wrap around.
    Wrap,
}

/// What GridSample reads for sampling points outside the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GridPadding {
    /// Zero outside the input.
    Zeros,
    /// The nearest border value.
    Border,
    /// The input mirrored at its borders.
    Reflection,
}

/// How ScatterElements / ScatterND combine an update with the value it lands on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScatterReduction {
    /// Replace it.
    None,
    /// Add to it.
    Add,
    /// Multiply it.
    Mul,
    /// Keep the larger.
    Max,
    /// Keep the smaller.
    Min,
}

/// How a loss (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss) combines its per-element
/// values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LossReduction {
    /// Keep one loss per element (shape `[N, d1, ...]`).
    None,
    /// Sum them (a scalar).
    Sum,
    /// Their weighted mean: the sum divided by the sum of the weights of non-ignored
    /// elements (a scalar).
    Mean,
}

/// The window function of a `Window` op (ONNX HannWindow, HammingWindow, BlackmanWindow).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WindowKind {
    /// `0.5 - 0.5 cos(2πn/N)`.
    Hann,
    /// `25/46 - 21/46 cos(2πn/N)`.
    Hamming,
    /// `0.42 - 0.5 cos(2πn/N) + 0.08 cos(4πn/N)`.
    Blackman,
}

/// The output layout of an `ImageDecoder`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red.
    Bgr,
    /// One luma channel (ITU-R 601-2: `0.299 R + 0.587 G + 0.114 B`, rounded).
    Grayscale,
}

/// How a `TfIdfVectorizer` turns n-gram counts into outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TfIdfMode {
    /// The counts.
    Tf,
    /// The weight of each n-gram that occurs (1 without weights), else 0.
    Idf,
    /// The counts times the weights (the counts without weights).
    TfIdf,
}

/// The attributes of `Op::TfIdfVectorizer`.
#[derive(Clone, Debug, PartialEq)]
pub struct TfIdfAttrs {
    /// What the outputs are.
    pub mode: TfIdfMode,
    /// The shortest n-gram counted (at least 1).
    pub min_gram_length: usize,
    /// The longest n-gram counted.
    pub max_gram_length: usize,
    /// How many items an n-gram may skip between its items (the same gap throughout).
    pub max_skip_count: usize,
    /// Where the n-grams of each length (1, 2, ...) start in `pool`.
    pub ngram_counts: Vec<usize>,
    /// The output index of each n-gram of the pool, in pool order.
    pub ngram_indexes: Vec<usize>,
    /// The n-grams, shortest first, their items one after the other.
    pub pool: Vec<i64>,
    /// One weight per output index, f32 `[n]`; `[0]`: no weights.
    pub weights: Arc<Tensor>,
}

/// Depth order of DepthToSpace and SpaceToDepth: depth-column-row (`DCR`, the default) or
/// column-row-depth (`CRD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockOrder {
    /// Depth is (block row, block column, channel).
    Dcr,
    /// Depth is (channel, block row, block column).
    Crd,
}

/// Quantization axis/blocking of QuantizeLinear and DequantizeLinear.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QuantAxis {
    /// Axis of per-axis scales (used when the scale is 1-D or blocked).
    pub axis: i64,
    /// Block size along `axis` for blocked quantization; 0 means per-axis or per-tensor.
    pub block_size: usize,
}

/// Direction of a recurrent op (LSTM, GRU, RNN).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RnnDirection {
    /// First time step to last.
    Forward,
    /// Last time step to first (within each sequence's length).
    Reverse,
    /// Both; outputs stack the forward direction first.
    Bidirectional,
}

impl RnnDirection {
    /// 2 for bidirectional, else 1.
    pub fn count(self) -> usize {
        match self {
            RnnDirection::Bidirectional => 2,
            RnnDirection::Forward | RnnDirection::Reverse => 1,
        }
    }
}

/// A gate activation of a recurrent op, with its parameters (the ONNX activation list).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RnnActivation {
    /// max(0, x)
    Relu,
    /// tanh(x)
    Tanh,
    /// 1/(1+e^-x)
    Sigmoid,
    /// alpha*x + beta
    Affine {
        /// Scale.
        alpha: f32,
        /// Offset.
        beta: f32,
    },
    /// x >= 0 ? x : alpha*x
    LeakyRelu {
        /// Negative-side slope.
        alpha: f32,
    },
    /// x > alpha ? x : 0
    ThresholdedRelu {
        /// Threshold.
        alpha: f32,
    },
    /// alpha*tanh(beta*x)
    ScaledTanh {
        /// Output scale.
        alpha: f32,
        /// Input scale.
        beta: f32,
    },
    /// min(max(alpha*x + beta, 0), 1)
    HardSigmoid {
        /// Slope.
        alpha: f32,
        /// Offset.
        beta: f32,
    },
    /// x >= 0 ? x : alpha*(e^x - 1)
    Elu {
        /// Negative-side scale.
        alpha: f32,
    },
    /// x/(1+|x|)
    Softsign,
    /// ln(1+e^x)
    Softplus,
}

impl RnnActivation {
    /// The parameters the activation takes: `(alpha, beta)`, each `None` when unused.
    pub fn params(self) -> (Option<f32>, Option<f32>) {
        use RnnActivation::*;
        match self {
            Relu | Tanh | Sigmoid | Softsign | Softplus => (None, None),
            LeakyRelu { alpha } | ThresholdedRelu { alpha } | Elu { alpha } => (Some(alpha), None),
            Affine { alpha, beta } | ScaledTanh { alpha, beta } | HardSigmoid { alpha, beta } => {
                (Some(alpha), Some(beta))
            }
        }
    }
}

/// Attributes shared by the recurrent ops (`Op::Lstm`, `Op::Gru`, `Op::Rnn`).
#[derive(Clone, Debug, PartialEq)]
pub struct RnnAttrs {
    /// Direction.
    pub direction: RnnDirection,
    /// Hidden size H.
    pub hidden_size: usize,
    /// One activation per gate function per direction, forward first: LSTM (f, g, h), GRU
    /// (f, g), RNN (f); the full list, the ONNX defaults filled in at import.
    pub activations: Vec<RnnActivation>,
    /// Gate pre-activations are clamped to [-clip, clip]; `None`: no clipping.
    pub clip: Option<f32>,
    /// ONNX `layout` = 1: X is [batch, seq, input] and the outputs are batch-major.
    pub batch_first: bool,
}

/// The ONNX default activations of a recurrent op with `gates` functions per direction
/// (LSTM 3: sigmoid, tanh, tanh; GRU 2: sigmoid, tanh; RNN 1: tanh), for `dirs` directions.
pub fn rnn_default_activations(gates: usize, dirs: usize) -> Vec<RnnActivation> {
    let one: &[RnnActivation] = match gates {
        3 => &[
            RnnActivation::Sigmoid,
            RnnActivation::Tanh,
            RnnActivation::Tanh,
        ],
        2 => &[RnnActivation::Sigmoid, RnnActivation::Tanh],
        _ => &[RnnActivation::Tanh],
    };
    one.iter().copied().cycle().take(one.len() * dirs).collect()
}

/// The default output shape of a `MaxUnpool` of an input of shape `x` (`[N, C, d...]`):
/// `(d - 1) · stride + kernel - pad_begin - pad_end` per spatial axis, after checking the
/// attributes' lengths against x's rank; the error says which is wrong.
pub fn max_unpool_shape(
    x: &[usize],
    kernel: &[usize],
    pads: &[usize],
    strides: &[usize],
) -> Result<Vec<usize>, String> {
    let n = x.len().saturating_sub(2);
    if x.len() < 3 {
        return Err(format!("input must have rank >= 3 (N, C, d...), got {x:?}"));
    }
    if kernel.len() != n || kernel.contains(&0) {
        return Err(format!(
            "attribute 'kernel_shape' {kernel:?} must have {n} positive values"
        ));
    }
    if !(strides.is_empty() || strides.len() == n && !strides.contains(&0)) {
        return Err(format!(
            "attribute 'strides' {strides:?} must have {n} positive values"
        ));
    }
    if !(pads.is_empty() || pads.len() == 2 * n) {
        return Err(format!(
            "attribute 'pads' {pads:?} must have {} values",
            2 * n
        ));
    }
    let mut out = x[..2].to_vec();
    for i in 0..n {
        let s = strides.get(i).copied().unwrap_or(1);
        let (b, e) = (
            pads.get(i).copied().unwrap_or(0),
            pads.get(n + i).copied().unwrap_or(0),
        );
        let full = x[2 + i].saturating_sub(1) * s + kernel[i];
        if x[2 + i] == 0 || full < b + e {
            return Err(format!(
                "spatial axis {i} of size {} with kernel {}, stride {s} and pads {b}+{e} gives no output",
                x[2 + i], kernel[i]
            ));
        }
        out.push(full - b - e);
    }
    Ok(out)
}

/// A `Dft` axis normalised against x's rank `rank` (which counts the complex axis): valid are
/// `[-rank, -2]` and `[0, rank - 2]`.
pub fn dft_axis(axis: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if rank < 2 || !(0..r - 1).contains(&a) {
        return Err(format!(
            "axis {axis} is out of range for an input of rank {rank} (the last axis holds the complex parts)"
        ));
    }
    Ok(a as usize)
}

/// A `Dft`'s transform length and output length along its axis, from the input length `len`
/// there and the `dft_length` input: by default the input length, or `2 (len - 1)` for an
/// inverse one-sided transform; a forward one-sided transform keeps `n / 2 + 1` frequencies.
pub fn dft_lengths(
    len: usize,
    dft_length: Option<i64>,
    inverse: bool,
    onesided: bool,
) -> Result<(usize, usize), String> {
    let n = match dft_length {
        Some(l) if l < 1 => return Err(format!("dft_length must be positive, got {l}")),
        Some(l) => l as usize,
        None if inverse && onesided => 2 * len.saturating_sub(1),
        None => len,
    };
    if n == 0 {
        return Err(format!("the signal length {len} gives an empty transform"));
    }
    Ok((n, if onesided && !inverse { n / 2 + 1 } else { n }))
}

/// An `Stft`'s (frames, frame length, frequency bins) from the signal length, the frame step,
/// the window's shape (if given) and the frame_length input (if given): the frame length is
/// the window's, else frame_length, else the signal length; both given must agree.
pub fn stft_dims(
    len: usize,
    step: i64,
    window: Option<&[usize]>,
    frame_length: Option<i64>,
    onesided: bool,
) -> Result<(usize, usize, usize), String> {
    if step < 1 {
        return Err(format!("frame_step must be positive, got {step}"));
    }
    let fl = match (window, frame_length) {
        (Some(&[w]), Some(l)) if w as i64 != l => {
            return Err(format!(
                "frame_length {l} differs from the window length {w}"
            ))
        }
        (Some(&[w]), _) => w,
        (Some(w), _) => return Err(format!("window must be 1-D, got shape {w:?}")),
        (None, Some(l)) if l < 1 => return Err(format!("frame_length must be positive, got {l}")),
        (None, Some(l)) => l as usize,
        (None, None) => len,
    };
    if fl == 0 || fl > len {
        return Err(format!(
            "the frame length {fl} must be in 1..={len} (the signal length)"
        ));
    }
    let frames = 1 + (len - fl) / step as usize;
    Ok((frames, fl, if onesided { fl / 2 + 1 } else { fl }))
}

/// The number of block positions along each spatial axis of a `Col2Im` (their product is the
/// `L` axis of its input), after checking the attributes against the image and block shapes;
/// the error says which is wrong.
pub fn col2im_blocks(
    image: &[i64],
    block: &[i64],
    dilations: &[usize],
    pads: &[usize],
    strides: &[usize],
) -> Result<Vec<usize>, String> {
    let r = image.len();
    if r == 0 || block.len() != r {
        return Err(format!(
            "image_shape ({r} entries) and block_shape ({}) must have one entry per spatial axis",
            block.len()
        ));
    }
    for (key, v, want) in [
        ("dilations", dilations, r),
        ("pads", pads, 2 * r),
        ("strides", strides, r),
    ] {
        if !v.is_empty() && v.len() != want {
            return Err(format!(
                "attribute '{key}' has {} entries, expected {want}",
                v.len()
            ));
        }
    }
    let size = |what: &str, v: i64, min: i64| -> Result<usize, String> {
        if (min..=1 << 31).contains(&v) {
            Ok(v as usize)
        } else {
            Err(format!("{what} {v} is outside [{min}, 2^31]"))
        }
    };
    (0..r)
        .map(|d| {
            let im = size("image_shape entry", image[d], 0)?;
            let b = size("block_shape entry", block[d], 1)?;
            let dil = size("dilation", dilations.get(d).map_or(1, |&x| x as i64), 1)?;
            let s = size("stride", strides.get(d).map_or(1, |&x| x as i64), 1)?;
            let pad = |i: usize| size("pad", pads.get(i).map_or(0, |&x| x as i64), 0);
            let padded = im + pad(d)? + pad(d + r)?;
            let span = dil * (b - 1) + 1;
            if padded < span {
                return Err(format!(
                    "axis {d}: the block spans {span} but the padded image has {padded}"
                ));
            }
            Ok((padded - span) / s + 1)
        })
        .collect()
}

/// The attributes of `Op::Scan`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScanAttrs {
    /// The body.
    pub body: Arc<Graph>,
    /// How many trailing inputs are captured outer values.
    pub captures: usize,
    /// How many of the non-captured inputs (the last ones) are scanned.
    pub num_scan_inputs: usize,
    /// The scanned axis of each scan input (may be negative); empty: all 0.
    pub input_axes: Vec<i64>,
    /// 1 to scan an input backwards; empty: all forwards.
    pub input_directions: Vec<i64>,
    /// The axis each scan output is stacked along (may be negative); empty: all 0.
    pub output_axes: Vec<i64>,
    /// 1 to stack a scan output in reverse order; empty: all in order.
    pub output_directions: Vec<i64>,
}

impl TfIdfAttrs {
    /// Checks the attributes against each other; the output size (the largest n-gram index
    /// plus one) or what does not fit.
    pub fn check(&self) -> Result<usize, String> {
        let (lo, hi) = (self.min_gram_length, self.max_gram_length);
        if lo < 1 || hi < lo {
            return Err(format!(
                "min_gram_length ({lo}) must be at least 1 and at most max_gram_length ({hi})"
            ));
        }
        if self.ngram_counts.first() != Some(&0) {
            return Err(format!(
                "ngram_counts must start with 0, got {:?}",
                self.ngram_counts
            ));
        }
        let mut grams = 0;
        for (k, &start) in self.ngram_counts.iter().enumerate() {
            let end = self
                .ngram_counts
                .get(k + 1)
                .copied()
                .unwrap_or(self.pool.len());
            if start > end || end > self.pool.len() {
                return Err(format!(
                    "ngram_counts {:?} must rise and stay within the pool of {} items",
                    self.ngram_counts,
                    self.pool.len()
                ));
            }
            if (end - start) % (k + 1) != 0 {
                return Err(format!(
                    "the pool's {}-grams take {} items, not a multiple of {}",
                    k + 1,
                    end - start,
                    k + 1
                ));
            }
            grams += (end - start) / (k + 1);
        }
        if self.ngram_indexes.len() != grams {
            return Err(format!(
                "ngram_indexes has {} entries for the pool's {grams} n-grams",
                self.ngram_indexes.len()
            ));
        }
        let out = match self.ngram_indexes.iter().max() {
            Some(&m) => m
                .checked_add(1)
                .ok_or("ngram_indexes has an entry too large")?,
            None => 0,
        };
        let w = &self.weights;
        if w.dtype() != DType::F32 || w.rank() != 1 || (!w.is_empty() && w.len() < out) {
            return Err(format!(
                "weights must be f32, empty or one per output index ({out}), got {} {:?}",
                w.dtype(),
                w.shape()
            ));
        }
        Ok(out)
    }

    /// The n-grams counted (length between min_gram_length and max_gram_length), each with
    /// its output index; call after [`TfIdfAttrs::check`].
    pub fn grams(&self) -> Vec<(&[i64], usize)> {
        let mut v = vec![];
        let mut id = 0;
        for (k, &start) in self.ngram_counts.iter().enumerate() {
            let n = k + 1;
            let end = self
                .ngram_counts
                .get(k + 1)
                .copied()
                .unwrap_or(self.pool.len());
            for g in self.pool[start..end].chunks_exact(n) {
                if (self.min_gram_length..=self.max_gram_length).contains(&n) {
                    v.push((g, self.ngram_indexes[id]));
                }
                id += 1;
            }
        }
        v
    }
}

/// How the inputs and outputs of an `If`, `Loop` or `Scan` node split, from [`Op::body_io`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyIo {
    /// Loop-carried values (Loop) or scan state (Scan); 0 for If.
    pub carried: usize,
    /// Scanned inputs (Scan); 0 otherwise.
    pub scan_inputs: usize,
    /// Captured outer values (the trailing inputs).
    pub captures: usize,
    /// Stacked outputs (Loop, Scan); for If, the number of outputs.
    pub scan_outputs: usize,
}

impl Op {
    /// Checks the counts of a node with a body (`n_in` input slots, `n_out` outputs) against
    /// its bodies' inputs and outputs and its attributes, and splits them; `None` for an op
    /// without a body. The error says what does not fit.
    pub fn body_io(&self, n_in: usize, n_out: usize) -> Option<Result<BodyIo, String>> {
        let counts = |g: &Graph| (g.inputs().len(), g.outputs().len());
        Some(match self {
            Op::If {
                then_branch,
                else_branch,
            } => (|| {
                let captures = n_in.checked_sub(1).ok_or("needs the condition input")?;
                for (what, b) in [("then_branch", then_branch), ("else_branch", else_branch)] {
                    let (i, o) = counts(b);
                    if i != captures || o != n_out {
                        return Err(format!(
                            "{what} has {i} inputs and {o} outputs; the node has {captures} captured values and {n_out} outputs"
                        ));
                    }
                }
                Ok(BodyIo {
                    carried: 0,
                    scan_inputs: 0,
                    captures,
                    scan_outputs: n_out,
                })
            })(),
            Op::Loop { body, captures } => (|| {
                let carried = n_in.checked_sub(2 + captures).ok_or_else(|| {
                    format!("has {n_in} inputs, fewer than 2 + {captures} captured values")
                })?;
                let (i, o) = counts(body);
                if i != n_in || o != n_out + 1 {
                    return Err(format!(
                        "body has {i} inputs and {o} outputs; expected {n_in} inputs (iteration, condition, {carried} carried, {captures} captured) and {} outputs (condition and the node's {n_out})",
                        n_out + 1
                    ));
                }
                let scan_outputs = n_out.checked_sub(carried).ok_or_else(|| {
                    format!("has {n_out} outputs, fewer than its {carried} loop-carried values")
                })?;
                Ok(BodyIo {
                    carried,
                    scan_inputs: 0,
                    captures: *captures,
                    scan_outputs,
                })
            })(),
            Op::Scan(a) => (|| {
                let m = a.num_scan_inputs;
                if m == 0 {
                    return Err("num_scan_inputs must be at least 1".into());
                }
                let carried = n_in.checked_sub(m + a.captures).ok_or_else(|| {
                    format!(
                        "has {n_in} inputs, fewer than {m} scan inputs + {} captured values",
                        a.captures
                    )
                })?;
                let (i, o) = counts(&a.body);
                if i != n_in || o != n_out {
                    return Err(format!(
                        "body has {i} inputs and {o} outputs; the node has {n_in} and {n_out}"
                    ));
                }
                let scan_outputs = n_out.checked_sub(carried).ok_or_else(|| {
                    format!("has {n_out} outputs, fewer than its {carried} state values")
                })?;
                for (what, v, n) in [
                    ("input_axes", &a.input_axes, m),
                    ("input_directions", &a.input_directions, m),
                    ("output_axes", &a.output_axes, scan_outputs),
                    ("output_directions", &a.output_directions, scan_outputs),
                ] {
                    if !v.is_empty() && v.len() != n {
                        return Err(format!("{what} has {} entries, expected {n}", v.len()));
                    }
                }
                Ok(BodyIo {
                    carried,
                    scan_inputs: m,
                    captures: a.captures,
                    scan_outputs,
                })
            })(),
            _ => return None,
        })
    }

    /// The subgraphs of an op with bodies (If's branches, Loop's and Scan's body); empty for
    /// every other op.
    pub fn bodies(&self) -> Vec<&Arc<Graph>> {
        match self {
            Op::If {
                then_branch,
                else_branch,
            } => vec![then_branch, else_branch],
            Op::Loop { body, .. } | Op::Scan(ScanAttrs { body, .. }) => vec![body],
            _ => vec![],
        }
    }

    /// The subgraphs of an op, mutably (see [`Op::bodies`]).
    pub fn bodies_mut(&mut self) -> Vec<&mut Arc<Graph>> {
        match self {
            Op::If {
                then_branch,
                else_branch,
            } => vec![then_branch, else_branch],
            Op::Loop { body, .. } | Op::Scan(ScanAttrs { body, .. }) => vec![body],
            _ => vec![],
        }
    }
}

/// What ONNX Attention's optional fourth output (`qk_matmul_output`) holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QkOutput {
    /// The scaled `Q·Kᵀ` (mode 0).
    Raw,
    /// After the soft cap, before the bias (mode 1; `Raw` without a soft cap).
    Softcapped,
    /// After the soft cap and the bias (mode 2).
    Biased,
    /// The softmax probabilities, fully masked rows zero (mode 3).
    Softmax,
}

impl QkOutput {
    /// Every mode, in ONNX order (`qk_matmul_output_mode` 0..=3).
    pub const ALL: [QkOutput; 4] = [
        QkOutput::Raw,
        QkOutput::Softcapped,
        QkOutput::Biased,
        QkOutput::Softmax,
    ];
}

/// The attributes of [`Op::Attention`] (ONNX Attention-23/24 and the sliding window of 25).
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionAttrs {
    /// Causal masking, bottom-right aligned: query `i` attends key `j` iff `j <= i + offset`
    /// (`offset`: past length, or `nonpad_kv_seqlen[b] − q_len`, else 0).
    pub is_causal: bool,
    /// Query heads of 3-D inputs (`[batch, seq, heads·head_size]`); 0 with 4-D inputs.
    pub q_num_heads: usize,
    /// Key/value heads of 3-D inputs; 0 with 4-D inputs. Fewer than the query heads is
    /// grouped-query attention: query head `h` uses kv head `h / (q_heads / kv_heads)`.
    pub kv_num_heads: usize,
    /// Scale of `Q·Kᵀ`; `None`: `1/sqrt(head_size)`. Applied as `sqrt(scale)` to Q and K.
    pub scale: Option<f32>,
    /// `softcap·tanh(s/softcap)` on the scores before the bias; 0 disables it.
    pub softcap: f32,
    /// The float dtype the softmax is computed in; `None`: the inputs' dtype.
    pub softmax_precision: Option<DType>,
    /// What the fourth output holds.
    pub qk_output: QkOutput,
    /// Keys more than this many positions before the (offset) query position are masked;
    /// -1: unbounded (opset 25).
    pub left_window: i64,
    /// Keys more than this many positions after the (offset) query position are masked;
    /// -1: unbounded (opset 25).
    pub right_window: i64,
}

/// One operation. Inputs are positional (see each variant); attributes are fields.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Graph input number `index` (no inputs).
    Input {
        /// Position among the graph inputs.
        index: usize,
    },
    /// A constant tensor (no inputs); equal constants are one node.
    Const(Arc<Tensor>),
    /// Elementwise unary: (x).
    Unary(UnaryOp),
    /// Elementwise binary with broadcasting: (a, b).
    Binary(BinaryOp),
    /// Clamp: (x, min?, max?), min/max rank-0.
    Clip,
    /// Select: (cond, a, b) with broadcasting.
    Where,
    /// Convolution: (x, w, bias?).
    Conv(ConvAttrs),
    /// Transposed convolution: (x, w, bias?).
    ConvTranspose {
        /// Shared conv attributes (kernel/strides/pads/dilations/group/auto_pad).
        conv: ConvAttrs,
        /// Extra size added at the end of each spatial output axis.
        output_padding: Vec<usize>,
        /// Explicit spatial output shape (overrides pads).
        output_shape: Vec<usize>,
    },
    /// Integer convolution: (x, w, x_zero_point?, w_zero_point?) → i32.
    ConvInteger(ConvAttrs),
    /// Quantized convolution: (x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias?).
    QLinearConv(ConvAttrs),
    /// Matrix product with numpy semantics: (a, b).
    MatMul,
    /// Integer matrix product: (a, b, a_zero_point?, b_zero_point?) → i32.
    MatMulInteger,
    /// Quantized matrix product: (a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp).
    QLinearMatMul,
    /// alpha * A' * B' + beta * C: (a, b, c?).
    Gemm {
        /// Product scale.
        alpha: f32,
        /// Bias scale.
        beta: f32,
        /// Transpose A.
        trans_a: bool,
        /// Transpose B.
        trans_b: bool,
    },
    /// Max pooling: (x) → (y, indices?).
    MaxPool {
        /// Window attributes.
        pool: PoolAttrs,
        /// Indices layout: 0 row-major, 1 column-major.
        storage_order: i64,
    },
    /// Average pooling: (x).
    AveragePool {
        /// Window attributes.
        pool: PoolAttrs,
        /// Count padded elements in the divisor.
        count_include_pad: bool,
    },
    /// Lp pooling: `(Σ |x|^p)^(1/p)` over each window, padding counting as 0: (x).
    LpPool {
        /// Window attributes.
        pool: PoolAttrs,
        /// The norm's order (at least 1).
        p: i64,
    },
    /// Mean over all spatial axes, keeping them as size 1: (x).
    GlobalAveragePool,
    /// Max over all spatial axes, keeping them as size 1: (x).
    GlobalMaxPool,
    /// Inference batch normalization: (x, scale, bias, mean, var) → (y, running_mean?, running_var?).
    BatchNorm {
        /// Variance epsilon.
        epsilon: f32,
        /// Training mode: normalise with batch statistics and output running stats.
        training: bool,
        /// Running statistics momentum (training mode).
        momentum: f32,
    },
    /// Layer normalization: (x, scale, bias?) → (y, mean?, inv_std_dev?).
    LayerNorm {
        /// First normalised axis (may be negative).
        axis: i64,
        /// Variance epsilon.
        epsilon: f32,
    },
    /// RMS normalization (ONNX `RMSNormalization`): (x, scale) → y, where
    /// y = x / sqrt(mean(x², axes from `axis` on) + epsilon) · scale.
    RmsNorm {
        /// First normalised axis (may be negative).
        axis: i64,
        /// Epsilon added to the mean of squares.
        epsilon: f32,
    },
    /// Softmax along `axis` (x).
    Softmax {
        /// Axis (may be negative).
        axis: i64,
        /// Opset < 13 semantics: flatten to 2-D at `axis` and normalise each row.
        coerce_2d: bool,
    },
    /// Log of softmax along `axis` (x).
    LogSoftmax {
        /// Axis (may be negative).
        axis: i64,
        /// Opset < 13 semantics: flatten to 2-D at `axis` and normalise each row.
        coerce_2d: bool,
    },
    /// One-hot of the first largest element along `axis` (1 there, 0 elsewhere): (x).
    Hardmax {
        /// Axis (may be negative).
        axis: i64,
        /// Opset < 13 semantics: flatten to 2-D at `axis` and pick per row.
        coerce_2d: bool,
    },
    /// ONNX InstanceNormalization: (x [N, C, d...], scale [C], bias [C]); each `(n, c)` plane
    /// normalised by its own mean and (population) variance, then scaled and shifted.
    InstanceNorm {
        /// Added to the variance.
        epsilon: f32,
    },
    /// ONNX LpNormalization: x divided by its L1 or L2 norm along `axis` (0 where the norm is
    /// 0, as ONNX Runtime): (x).
    LpNormalization {
        /// Axis (may be negative).
        axis: i64,
        /// The norm's order, 1 or 2.
        p: i64,
    },
    /// ONNX NegativeLogLikelihoodLoss: (input [N, C, d1...], target int [N, d1...],
    /// weight [C]?); `loss = -input[n, target, d...] * weight[target]`, 0 (and weight 0) where
    /// target is `ignore_index`, then reduced.
    NegativeLogLikelihoodLoss {
        /// How the per-element losses are combined.
        reduction: LossReduction,
        /// A target value that contributes nothing; `None`: every target is a class.
        ignore_index: Option<i64>,
    },
    /// ONNX SoftmaxCrossEntropyLoss: (scores [N, C, d1...], labels int [N, d1...],
    /// weights [C]?) → (loss, log_prob?); NegativeLogLikelihoodLoss of LogSoftmax over axis 1,
    /// `log_prob` being that LogSoftmax.
    SoftmaxCrossEntropyLoss {
        /// How the per-element losses are combined.
        reduction: LossReduction,
        /// A label value that contributes nothing; `None`: every label is a class.
        ignore_index: Option<i64>,
    },
    /// Reduction: (x, axes?).
    Reduce {
        /// Which reduction.
        op: ReduceOp,
        /// Keep reduced axes as size 1.
        keepdims: bool,
        /// With no axes: identity instead of reducing everything.
        noop_with_empty_axes: bool,
    },
    /// Concatenation along `axis`: (x0, x1, ...).
    Concat {
        /// Axis (may be negative).
        axis: i64,
    },
    /// Split along `axis`: (x, split?) → (y0, y1, ...).
    Split {
        /// Axis (may be negative).
        axis: i64,
        /// Number of outputs.
        num_outputs: usize,
    },
    /// Flatten to 2-D at `axis`: (x).
    Flatten {
        /// Axis (may be negative).
        axis: i64,
    },
    /// Reshape: (x, shape) with 0 = copy (unless allowzero) and -1 = infer.
    Reshape {
        /// A 0 in shape means a zero-sized dim rather than "copy".
        allowzero: bool,
    },
    /// Remove size-1 axes: (x, axes?).
    Squeeze,
    /// Insert size-1 axes: (x, axes).
    Unsqueeze,
    /// Permute axes: (x); empty perm reverses.
    Transpose {
        /// Permutation.
        perm: Vec<usize>,
    },
    /// Broadcast to a shape: (x, shape).
    Expand,
    /// Gather along `axis`: (data, indices).
    Gather {
        /// Axis (may be negative).
        axis: i64,
    },
    /// Gather single elements along `axis`: (data, indices); indices have data's rank and
    /// give the output's shape.
    GatherElements {
        /// Axis (may be negative).
        axis: i64,
    },
    /// Gather slices of data addressed by the last axis of indices: (data, indices).
    GatherNd {
        /// Leading axes shared by data and indices.
        batch_dims: usize,
    },
    /// A copy of data with `updates` written (or combined) at `indices` along `axis`:
    /// (data, indices, updates), indices and updates of one shape.
    ScatterElements {
        /// Axis (may be negative).
        axis: i64,
        /// How an update combines with the value it replaces.
        reduction: ScatterReduction,
    },
    /// A copy of data with slices of `updates` written (or combined) at the index tuples of
    /// indices' last axis: (data, indices, updates).
    ScatterNd {
        /// How an update combines with the value it replaces.
        reduction: ScatterReduction,
    },
    /// Repeat x `repeats[i]` times along each axis i: (x, repeats).
    Tile,
    /// Cast x to the dtype of `target`: (x, target).
    CastLike,
    /// The number of elements of x, as an i64 scalar: (x).
    Size,
    /// Index of the largest element along an axis, as i64: (x).
    ArgMax(ArgAttrs),
    /// The k largest (or smallest) elements along `axis` and their i64 indices: (x, k) →
    /// (values, indices).
    TopK {
        /// Axis (may be negative).
        axis: i64,
        /// Largest first (else smallest first).
        largest: bool,
    },
    /// The upper (or lower) triangle of the last two axes, diagonal `k` (input 1, default 0)
    /// included, the rest zero: (x, k?).
    Trilu {
        /// Keep the upper triangle (else the lower).
        upper: bool,
    },
    /// Index of the smallest element along an axis, as i64: (x).
    ArgMin(ArgAttrs),
    /// Running sum along an axis: (x, axis), axis a one-element integer tensor.
    CumSum {
        /// Each output excludes its own element (the first is 0).
        exclusive: bool,
        /// Accumulate from the end of the axis.
        reverse: bool,
    },
    /// Running product along an axis: (x, axis), axis a one-element integer tensor.
    CumProd {
        /// Each output excludes its own element (the first is 1).
        exclusive: bool,
        /// Accumulate from the end of the axis.
        reverse: bool,
    },
    /// One-hot encoding: (indices, depth, values) with values `[off, on]`; a new axis of size
    /// depth is inserted at `axis`; negative indices count from depth, out-of-range ones give
    /// an all-off row.
    OneHot {
        /// Position of the new axis in the output (may be negative).
        axis: i64,
    },
    /// A 2-D tensor of x's shape and dtype with ones on diagonal `k` and zeros elsewhere: (x).
    EyeLike {
        /// Diagonal: 0 the main one, positive above it, negative below.
        k: i64,
    },
    /// The slices of x along `axis` whose bool condition is true (x flattened with no axis):
    /// (x, condition); a condition shorter than the axis drops the rest.
    Compress {
        /// Axis (may be negative); `None` flattens x first.
        axis: Option<i64>,
    },
    /// The indices of the non-zero elements, as i64 `[rank, count]`: (x).
    NonZero,
    /// The unique elements (or slices along `axis`) of x: (x) → (y, indices, inverse_indices,
    /// counts), the last three i64.
    Unique {
        /// Sorted ascending (else in order of first occurrence).
        sorted: bool,
        /// Axis of the slices (may be negative); `None` flattens x.
        axis: Option<i64>,
    },
    /// Reverses the first `sequence_lens[b]` elements along `time_axis` of each batch entry:
    /// (x, sequence_lens).
    ReverseSequence {
        /// The batch axis (0 or 1).
        batch_axis: usize,
        /// The time axis (0 or 1, not batch_axis).
        time_axis: usize,
    },
    /// Centre crop or pad x to `shape` along `axes`: (x, shape); padding is with zeros.
    CenterCropPad {
        /// The axes `shape` refers to (may be negative); empty means all.
        axes: Vec<i64>,
    },
    /// Determinant of the last two (square) axes: (x), float.
    Det,
    /// Einstein summation (ONNX `Einsum`): (inputs...) → y; `equation` as written in ONNX
    /// (`"ij,jk->ik"`, `"...ii->...i"`, implicit output when there is no `->`).
    Einsum {
        /// The equation, spaces removed.
        equation: String,
    },
    /// Rotary position embedding (ONNX 23 `RotaryEmbedding`): (x, cos_cache, sin_cache,
    /// position_ids?); x is `[batch, heads, seq, head]` or `[batch, seq, hidden]`.
    RotaryEmbedding {
        /// Rotate pairs of adjacent elements (else the two halves).
        interleaved: bool,
        /// The rotated prefix of each head (0: the whole head).
        rotary_embedding_dim: usize,
        /// Heads of a 3-D input (0: x must be 4-D).
        num_heads: usize,
    },
    /// Writes `update` into a copy of `past_cache` along `axis` at each batch's write index
    /// (ONNX 24 `TensorScatter`): (past_cache, update, write_indices?).
    TensorScatter {
        /// The sequence axis (may be negative; not 0).
        axis: i64,
        /// Indices wrap around the axis (`mode="circular"`), else they must fit (`linear`).
        circular: bool,
    },
    /// Greedy non-maximum suppression per batch and class (ONNX `NonMaxSuppression`):
    /// (boxes, scores, max_output_boxes_per_class?, iou_threshold?, score_threshold?) →
    /// i64 `[selected, 3]` (batch, class, box).
    NonMaxSuppression {
        /// Boxes are `[x_center, y_center, width, height]` (else `[y1, x1, y2, x2]`).
        center_point_box: bool,
    },
    /// Linear attention over a recurrent state (ONNX 27 `LinearAttention`): (query, key,
    /// value, past_state?, decay?, beta?) → (output, present_state). q/k/v are
    /// `[B, T, heads·size]`, the states `[B, kv_num_heads, d_k, d_v]`; token by token the
    /// state decays by `exp(decay)` (`gated`), gets `k ⊗ v` added, with v replaced by
    /// `beta·(v - Sᵀk)` (`delta`), and each output is `scale · qᵀS`.
    LinearAttention {
        /// Query heads (a multiple of `kv_num_heads`).
        q_num_heads: usize,
        /// Key/value heads, each shared by `q_num_heads / kv_num_heads` query heads.
        kv_num_heads: usize,
        /// Output scale (0: `1/sqrt(d_k)`).
        scale: f32,
        /// The state decays by `exp(decay)` each token (ONNX `gated`, `gated_delta`).
        gated: bool,
        /// The delta rule with rate beta (ONNX `delta`, `gated_delta`).
        delta: bool,
    },
    /// `a · sigmoid(alpha·a) · b` (ONNX 28 `SwiGLU`): (a, b) of one shape, no broadcasting.
    SwiGlu {
        /// Scale inside the sigmoid.
        alpha: f32,
    },
    /// Bilinear pooling of regions of interest (ONNX `RoiAlign`): (x `[N, C, H, W]`, rois
    /// `[R, 4]` as `[x1, y1, x2, y2]`, batch_indices `[R]`) → `[R, C, output_height,
    /// output_width]`.
    RoiAlign {
        /// Output rows per region.
        output_height: usize,
        /// Output columns per region.
        output_width: usize,
        /// Samples per bin along each axis (0: `ceil(roi size / output size)`).
        sampling_ratio: usize,
        /// Scale from roi coordinates to x's pixels.
        spatial_scale: f32,
        /// Max of the samples per bin (else their mean).
        max: bool,
        /// Shift roi coordinates by -0.5 (ONNX `half_pixel`, else `output_half_pixel`).
        half_pixel: bool,
    },
    /// Deformable convolution (ONNX `DeformConv`): (x, w, offset, bias?, mask?); every kernel
    /// tap samples x bilinearly (zeros outside) at its position plus its offset from
    /// offset `[N, offset_group·∏kernel·rank, *out]`, scaled by mask `[N,
    /// offset_group·∏kernel, *out]`. `conv.auto_pad` is always `NotSet`.
    DeformConv {
        /// Kernel, strides, pads, dilations and group as for Conv.
        conv: ConvAttrs,
        /// Groups of input channels sharing one set of offsets.
        offset_group: usize,
    },
    /// Decodes an encoded image file (ONNX 20 `ImageDecoder`): (encoded u8 `[n]`) → u8
    /// `[height, width, channels]`, 3 channels for RGB and BGR, 1 for grayscale.
    ImageDecoder {
        /// The channel layout of the output.
        pixel_format: PixelFormat,
    },
    /// Counts the n-grams of a pool in each row of integers (ONNX `TfIdfVectorizer`): (x i32
    /// or i64 `[C]` or `[B, C]`) → f32 `[out]` or `[B, out]`, `out` = max(ngram_indexes) + 1.
    TfIdfVectorizer(TfIdfAttrs),
    /// The triangular mel filter bank (ONNX 17 `MelWeightMatrix`): (num_mel_bins,
    /// dft_length, sample_rate, lower_edge_hertz, upper_edge_hertz), scalars → `dtype`
    /// `[dft_length / 2 + 1, num_mel_bins]`.
    MelWeightMatrix {
        /// The output element type.
        dtype: DType,
    },
    /// Sums sliding blocks of columns back into an image (the inverse layout of im2col):
    /// (x, image_shape, block_shape) with x `[N, C·∏block_shape, L]`; output
    /// `[N, C, *image_shape]`.
    Col2Im {
        /// Dilation per spatial axis (empty: all 1).
        dilations: Vec<usize>,
        /// Padding, every axis's begin then every axis's end (empty: all 0).
        pads: Vec<usize>,
        /// Stride per spatial axis (empty: all 1).
        strides: Vec<usize>,
    },
    /// Samples x `[N, C, *spatial]` at the normalised coordinates of grid
    /// `[N, *out_spatial, r]` (last axis: x, y, z, i.e. the spatial axes reversed, in
    /// [-1, 1]): (x, grid); output `[N, C, *out_spatial]`.
    GridSample {
        /// Interpolation (ONNX `bilinear`/`bicubic` are `Linear`/`Cubic`).
        mode: ResizeMode,
        /// What points outside the input read.
        padding: GridPadding,
        /// Whether -1 and 1 are the centres of the corner elements (else their outer edges).
        align_corners: bool,
    },
    /// The sampling grid of an affine transform: (theta `[N, r, r+1]`, size `[N, C, *spatial]`
    /// as i64, r = 2 or 3); output `[N, *spatial, r]`.
    AffineGrid {
        /// Whether -1 and 1 are the centres of the corner elements (else their outer edges).
        align_corners: bool,
    },
    /// ONNX DFT: (x [..., 1 or 2], dft_length?, axis?) with the last axis real (1) or
    /// (real, imaginary) (2); the discrete Fourier transform along `axis` (an input, default
    /// -2, counted over x's rank including the complex axis), zero-padded or truncated to
    /// `dft_length`. The output's last axis is 2, or 1 for an inverse one-sided transform
    /// (a real signal rebuilt from half a Hermitian spectrum).
    Dft {
        /// Inverse transform (`e^{+2πi kn/N}`, divided by N).
        inverse: bool,
        /// Forward: keep the `N/2 + 1` non-redundant frequencies; inverse: the input is such
        /// a half spectrum and the output real.
        onesided: bool,
    },
    /// ONNX STFT: (signal [batch, length, 1 or 2], frame_step, window [frame_length]?,
    /// frame_length?) → `[batch, frames, bins, 2]`: the DFT of each frame (starting every
    /// frame_step samples) multiplied by the window (default all ones); see [`stft_dims`].
    Stft {
        /// Keep the `frame_length / 2 + 1` non-redundant frequencies.
        onesided: bool,
    },
    /// ONNX HannWindow, HammingWindow, BlackmanWindow: (size, a scalar integer) → a 1-D
    /// window of `size` values.
    Window {
        /// The window function.
        window: WindowKind,
        /// Periodic (`N` = size) rather than symmetric (`N` = size - 1).
        periodic: bool,
        /// The output element type.
        dtype: DType,
    },
    /// Rearrange depth into `blocksize`×`blocksize` blocks of space: (x) of shape NCHW.
    DepthToSpace {
        /// Block edge.
        blocksize: usize,
        /// Order of the depth axis.
        mode: BlockOrder,
    },
    /// Rearrange `blocksize`×`blocksize` blocks of space into depth: (x) of shape NCHW.
    SpaceToDepth {
        /// Block edge.
        blocksize: usize,
        /// Order of the depth axis.
        mode: BlockOrder,
    },
    /// Shape of x as i64[rank], sliced by start/end: (x).
    ShapeOf {
        /// First dim (may be negative).
        start: i64,
        /// One past the last dim (may be negative); `None` means rank.
        end: Option<i64>,
    },
    /// Slice: (x, starts, ends, axes?, steps?).
    Slice,
    /// Pad: (x, pads, constant_value?, axes?).
    Pad {
        /// Padding mode.
        mode: PadMode,
    },
    /// Resize: (x, roi?, scales?, sizes?).
    Resize(ResizeAttrs),
    /// Range: (start, limit, delta), all rank-0.
    Range,
    /// Tensor of the given shape filled with `value`'s single element: (shape).
    ConstantOfShape {
        /// A one-element tensor: the value and dtype.
        value: Arc<Tensor>,
    },
    /// ONNX QuantizeLinear: (x, scale, zero_point?) → `dtype`; round ties to even, saturate.
    QuantizeLinear {
        /// Axis and blocking.
        q: QuantAxis,
        /// Output dtype (the zero point's dtype when present; u8 otherwise unless set).
        dtype: DType,
    },
    /// ONNX DequantizeLinear: (x, scale, zero_point?) → f32 (or scale's dtype).
    DequantizeLinear {
        /// Axis and blocking.
        q: QuantAxis,
    },
    /// ONNX DynamicQuantizeLinear: (x) → (y u8, scale f32, zero_point u8).
    DynamicQuantizeLinear,
    /// OpenVINO FakeQuantize-1: (x, in_low, in_high, out_low, out_high), all broadcast to x.
    FakeQuantize {
        /// Number of quantization levels (2..=65536).
        levels: u32,
    },
    /// Fused integer convolution with a requantize epilogue (lpc's own kernel op):
    /// (x u8/i8, x_zero_point, w i8, bias i32[M]?, scale f32[M] or [1], y_zero_point?, lo?, hi?).
    /// `acc = Σ (x − x_zp)·w + bias` in i32 (padding reads x_zp, so padded taps add 0; a kernel
    /// may fold `−x_zp·Σw` into the bias, which is the same integer). With `y_zero_point`:
    /// `y = clamp(round_ties_even(f32(acc)·scale) + y_zp, lo, hi)` in y_zp's dtype, lo/hi
    /// (rank-0, y_zp's dtype) defaulting to the dtype's range, so a fused ReLU/Clip is a
    /// tighter lo/hi. Without it: `y = f32(acc)·scale` (f32, for a float consumer).
    QConv(ConvAttrs),
    /// Fused integer matrix product, same epilogue as [`Op::QConv`]:
    /// (a u8/i8 [..., K], a_zero_point, b i8 [K, N], bias i32[N]?, scale f32[N] or [1],
    /// y_zero_point?, lo?, hi?); `acc = Σ_k (a − a_zp)·b + bias`.
    QMatMul,
    /// Requantize: (x, x_scale, x_zp, y_scale, y_zp), parameters broadcast to x;
    /// `y = saturate(round_ties_even(f32(x − x_zp)·x_scale / y_scale) + y_zp)` in y_zp's dtype,
    /// f32 arithmetic in that order (bit-exact to DequantizeLinear → QuantizeLinear).
    Requantize,
    /// Quantized add: (a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp, lo?, hi?), parameters
    /// broadcast; `y = clamp(round_ties_even((f32(a − a_zp)·a_scale + f32(b − b_zp)·b_scale) /
    /// y_scale) + y_zp, lo, hi)` in f32 (bit-exact to DQ, DQ → Add → Q; lo/hi as in QConv).
    QAdd,
    /// Table lookup: (x u8/i8, table [256]); `y = table[x − min(dtype)]`, the table's dtype.
    Lut,
    /// ONNX LSTM: (x, w, r, b?, sequence_lens?, initial_h?, initial_c?, p?) → (y?, y_h?, y_c?);
    /// gates i, o, f, c; activations (f, g, h) per direction.
    Lstm {
        /// Shared recurrent attributes.
        rnn: RnnAttrs,
        /// Couple the input and forget gates: f = 1 − i.
        input_forget: bool,
    },
    /// ONNX GRU: (x, w, r, b?, sequence_lens?, initial_h?) → (y?, y_h?); gates z, r, h;
    /// activations (f, g) per direction.
    Gru {
        /// Shared recurrent attributes.
        rnn: RnnAttrs,
        /// Apply Rh (and its bias) before multiplying by the reset gate.
        linear_before_reset: bool,
    },
    /// ONNX RNN: (x, w, r, b?, sequence_lens?, initial_h?) → (y?, y_h?); activation f per
    /// direction.
    Rnn(RnnAttrs),
    /// ONNX If: (cond bool (one element), captures...) → the outputs of the branch `cond`
    /// picks. Each branch is a self-contained graph whose inputs are the captured outer values
    /// (node inputs 1..), in order; both branches have one output per node output.
    If {
        /// The graph run when `cond` is true.
        then_branch: Arc<Graph>,
        /// The graph run when `cond` is false.
        else_branch: Arc<Graph>,
    },
    /// ONNX Loop: (max_trip_count i64[]?, cond bool[]?, carried..., captures...) →
    /// (carried_final..., scan_outputs...). The body maps (iteration i64[], cond bool[],
    /// carried..., captures...) to (cond, carried..., scan_outputs...); the scan outputs of all
    /// iterations are stacked along a new leading axis. The last `captures` inputs (of the
    /// node and of the body) are captured outer values, passed unchanged to every iteration.
    Loop {
        /// The loop body.
        body: Arc<Graph>,
        /// How many trailing inputs are captured outer values.
        captures: usize,
    },
    /// ONNX Scan (opset 9 form): (state..., scan_inputs..., captures...) →
    /// (state_final..., scan_outputs...). The body maps (state..., one slice of each scan
    /// input, captures...) to (state..., scan_output slices...).
    Scan(ScanAttrs),
    /// ONNX Attention: (q, k, v, attn_mask?, past_key?, past_value?, nonpad_kv_seqlen?) →
    /// (y, present_key?, present_value?, qk_matmul_output?). Q/K/V are 4-D
    /// `[batch, heads, seq, head_size]` or 3-D `[batch, seq, heads·head_size]`; the mask (bool:
    /// true attends; float: added) broadcasts to `[batch, q_heads, q_seq, total_seq]`, its
    /// last axis padded with "masked" up to the total length; a fully masked row gives 0.
    Attention(AttentionAttrs),
    /// ONNX LRN: local response normalisation across channels of x `[N, C, d...]`:
    /// `y = x / (bias + alpha / size · Σ x²)^beta`, the sum over the channels
    /// `c - ⌊(size-1)/2⌋ ..= c + ⌈(size-1)/2⌉` (clipped to the valid ones): (x).
    Lrn {
        /// Scale of the sum of squares (divided by `size`).
        alpha: f32,
        /// Exponent.
        beta: f32,
        /// Added to the scaled sum.
        bias: f32,
        /// Number of channels summed (at least 1).
        size: usize,
    },
    /// ONNX GroupNormalization (opset 21 form): (x [N, C, d...], scale [C], bias [C]); the
    /// channels form `num_groups` equal groups, each `(n, group)` normalised by its mean and
    /// population variance, then scaled and shifted per channel.
    GroupNorm {
        /// Number of channel groups (divides C).
        num_groups: usize,
        /// Added to the variance.
        epsilon: f32,
    },
    /// ONNX MeanVarianceNormalization: `(x - mean) / (sqrt(var) + 1e-9)` with mean and
    /// population variance over `axes`: (x).
    MeanVarianceNorm {
        /// The reduced axes (may be negative; ONNX default `[0, 2, 3]`).
        axes: Vec<i64>,
    },
    /// ONNX MaxUnpool: (x [N, C, d...], indices, output_shape?) → y, zeros except
    /// `y.flat[indices[i]] = x.flat[i]`; y's shape is `output_shape` or, without it,
    /// `(d - 1) · stride + kernel - pad_begin - pad_end` per spatial axis.
    MaxUnpool {
        /// Window size per spatial axis.
        kernel: Vec<usize>,
        /// Padding, every axis's begin then every axis's end (empty: all 0).
        pads: Vec<usize>,
        /// Stride per spatial axis (empty: all 1).
        strides: Vec<usize>,
    },
    /// ONNX CausalConvWithState: a causal depthwise 1-D convolution with a carried state:
    /// (input [N, C, L], weight [C, 1, K], bias [C]?, past_state [N, C, K-1]?) →
    /// (output [N, C, L], present_state [N, C, K-1]). The input is prefixed with past_state
    /// (zeros when absent); present_state is the last K-1 positions of that.
    CausalConvWithState {
        /// SiLU (`x·sigmoid(x)`, ONNX `activation` "silu" or "swish") on the output.
        silu: bool,
    },
}

impl Op {
    /// The lower-case name used in the `.lir` text format and in error messages.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// How many input slots the op has: `(required, maximum)`; `None` maximum means variadic.
    pub fn arity(&self) -> (usize, Option<usize>) {
        self.kind().arity()
    }
}
