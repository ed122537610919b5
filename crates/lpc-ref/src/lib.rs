//! lpc's reference interpreter: evaluates every `Op` on concrete tensors, FP32 and integer.
//! It is the oracle for calibration, rewrite-rule checks and JIT kernels: obviously correct
//! first, then fast where real models need it (GEMM through `matrixmultiply`, both cores).
#![deny(missing_docs)]

mod attention;
mod constfold;
mod control;
mod deform;
mod detect;
mod einsum;
mod elementwise;
mod fused;
pub mod geom;
mod grid;
mod image;
mod index;
mod llm;
pub mod logic;
mod loss;
mod misc;
mod nn;
mod norm;
mod pool;
mod quant;
mod recurrent;
mod reduce;
mod resize;
mod run;
mod shape_ops;
mod spectral;
mod tfidf;
pub mod transcendental;
pub mod util;

pub use constfold::{fold_constants, FoldStats};
pub use quant::{fake_quantize_one, round_ties_even};
pub use run::{run, run_observed, run_profiled, RunError};

use lpc_ir::{Op, Tensor};

/// Why one operation could not be evaluated.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EvalError {
    /// A required input slot is unconnected.
    #[error("missing required input {slot} ({what})")]
    MissingInput {
        /// Input slot.
        slot: usize,
        /// What the input is.
        what: &'static str,
    },
    /// An input has a dtype the op does not accept.
    #[error("input {slot} ({what}) has dtype {got}, expected {expected}")]
    DType {
        /// Input slot.
        slot: usize,
        /// What the input is.
        what: &'static str,
        /// The dtype found.
        got: lpc_ir::DType,
        /// What was expected (free text, e.g. "f32 or f64").
        expected: &'static str,
    },
    /// Shapes, values or attributes that the op cannot accept.
    #[error("{0}")]
    Invalid(String),
    /// A valid but unsupported combination (named).
    #[error("unsupported: {0}")]
    Unsupported(String),
}

/// Shorthand for results of op evaluation.
pub type EvalResult<T> = Result<T, EvalError>;

/// Builds an [`EvalError::Invalid`] from format arguments.
#[macro_export]
macro_rules! invalid {
    ($($t:tt)*) => { $crate::EvalError::Invalid(format!($($t)*)) };
}

/// The input slots of one op evaluation, with checked access.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    ins: &'a [Option<&'a Tensor>],
}

impl<'a> Inputs<'a> {
    /// Wraps input slots.
    pub fn new(ins: &'a [Option<&'a Tensor>]) -> Inputs<'a> {
        Inputs { ins }
    }

    /// A required input.
    pub fn req(&self, slot: usize, what: &'static str) -> EvalResult<&'a Tensor> {
        self.ins
            .get(slot)
            .copied()
            .flatten()
            .ok_or(EvalError::MissingInput { slot, what })
    }

    /// An optional input (absent slot or beyond the end: `None`).
    pub fn opt(&self, slot: usize) -> Option<&'a Tensor> {
        self.ins.get(slot).copied().flatten()
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.ins.len()
    }

    /// True with no slots.
    pub fn is_empty(&self) -> bool {
        self.ins.is_empty()
    }
}

/// Evaluates one operation. `n_outputs` is the number of outputs the node declares (ops with
/// optional outputs, such as MaxPool's indices, compute only what is asked).
pub fn eval(op: &Op, ins: &[Option<&Tensor>], n_outputs: usize) -> EvalResult<Vec<Tensor>> {
    let i = Inputs::new(ins);
    match op {
        Op::Input { index } => Err(invalid!("graph input {index} has no value")),
        Op::Const(t) => Ok(vec![(**t).clone()]),
        Op::Unary(u) => Ok(vec![elementwise::unary(u, i.req(0, "x")?)?]),
        Op::Binary(b) => Ok(vec![elementwise::binary(
            *b,
            i.req(0, "a")?,
            i.req(1, "b")?,
        )?]),
        Op::Clip => Ok(vec![elementwise::clip(i.req(0, "x")?, i.opt(1), i.opt(2))?]),
        Op::Where => Ok(vec![elementwise::where_(
            i.req(0, "cond")?,
            i.req(1, "a")?,
            i.req(2, "b")?,
        )?]),
        Op::Conv(a) => Ok(vec![nn::conv(a, i)?]),
        Op::ConvTranspose {
            conv,
            output_padding,
            output_shape,
        } => Ok(vec![nn::conv_transpose(
            conv,
            output_padding,
            output_shape,
            i,
        )?]),
        Op::ConvInteger(a) => Ok(vec![nn::conv_integer(a, i)?]),
        Op::QLinearConv(a) => Ok(vec![nn::qlinear_conv(a, i)?]),
        Op::MatMul => Ok(vec![nn::matmul(i.req(0, "a")?, i.req(1, "b")?)?]),
        Op::MatMulInteger => Ok(vec![nn::matmul_integer(i)?]),
        Op::QLinearMatMul => Ok(vec![nn::qlinear_matmul(i)?]),
        Op::Gemm {
            alpha,
            beta,
            trans_a,
            trans_b,
        } => Ok(vec![nn::gemm(*alpha, *beta, *trans_a, *trans_b, i)?]),
        Op::MaxPool {
            pool,
            storage_order,
        } => pool::max_pool(pool, *storage_order, i.req(0, "x")?, n_outputs),
        Op::AveragePool {
            pool,
            count_include_pad,
        } => Ok(vec![pool::average_pool(
            pool,
            *count_include_pad,
            i.req(0, "x")?,
        )?]),
        Op::LpPool { pool, p } => Ok(vec![pool::lp_pool(pool, *p, i.req(0, "x")?)?]),
        Op::GlobalAveragePool => Ok(vec![pool::global_pool(false, i.req(0, "x")?)?]),
        Op::GlobalMaxPool => Ok(vec![pool::global_pool(true, i.req(0, "x")?)?]),
        Op::BatchNorm {
            epsilon,
            training,
            momentum,
        } => norm::batch_norm(*epsilon, *training, *momentum, i, n_outputs),
        Op::LayerNorm { axis, epsilon } => norm::layer_norm(*axis, *epsilon, i, n_outputs),
        Op::RmsNorm { axis, epsilon } => Ok(vec![norm::rms_norm(*axis, *epsilon, i)?]),
        Op::Softmax { axis, coerce_2d } => Ok(vec![norm::softmax(
            *axis,
            *coerce_2d,
            false,
            i.req(0, "x")?,
        )?]),
        Op::LogSoftmax { axis, coerce_2d } => Ok(vec![norm::softmax(
            *axis,
            *coerce_2d,
            true,
            i.req(0, "x")?,
        )?]),
        Op::Hardmax { axis, coerce_2d } => {
            Ok(vec![norm::hardmax(*axis, *coerce_2d, i.req(0, "x")?)?])
        }
        Op::InstanceNorm { epsilon } => Ok(vec![norm::instance_norm(*epsilon, i)?]),
        Op::LpNormalization { axis, p } => {
            Ok(vec![norm::lp_normalization(*axis, *p, i.req(0, "x")?)?])
        }
        Op::NegativeLogLikelihoodLoss {
            reduction,
            ignore_index,
        } => Ok(vec![loss::nll_loss(*reduction, *ignore_index, i)?]),
        Op::SoftmaxCrossEntropyLoss {
            reduction,
            ignore_index,
        } => loss::softmax_cross_entropy_loss(*reduction, *ignore_index, i, n_outputs),
        Op::Reduce {
            op,
            keepdims,
            noop_with_empty_axes,
        } => Ok(vec![reduce::reduce(
            *op,
            *keepdims,
            *noop_with_empty_axes,
            i.req(0, "x")?,
            i.opt(1),
        )?]),
        Op::Concat { axis } => Ok(vec![shape_ops::concat(*axis, i)?]),
        Op::Split { axis, num_outputs } => {
            shape_ops::split(*axis, *num_outputs, i.req(0, "x")?, i.opt(1))
        }
        Op::Flatten { axis } => Ok(vec![shape_ops::flatten(*axis, i.req(0, "x")?)?]),
        Op::Reshape { allowzero } => Ok(vec![shape_ops::reshape(
            *allowzero,
            i.req(0, "x")?,
            i.req(1, "shape")?,
        )?]),
        Op::Squeeze => Ok(vec![shape_ops::squeeze(i.req(0, "x")?, i.opt(1))?]),
        Op::Unsqueeze => Ok(vec![shape_ops::unsqueeze(
            i.req(0, "x")?,
            i.req(1, "axes")?,
        )?]),
        Op::Transpose { perm } => Ok(vec![shape_ops::transpose(perm, i.req(0, "x")?)?]),
        Op::Expand => Ok(vec![shape_ops::expand(i.req(0, "x")?, i.req(1, "shape")?)?]),
        Op::Gather { axis } => Ok(vec![shape_ops::gather(
            *axis,
            i.req(0, "data")?,
            i.req(1, "indices")?,
        )?]),
        Op::GatherElements { axis } => Ok(vec![index::gather_elements(
            *axis,
            i.req(0, "data")?,
            i.req(1, "indices")?,
        )?]),
        Op::GatherNd { batch_dims } => Ok(vec![index::gather_nd(
            *batch_dims,
            i.req(0, "data")?,
            i.req(1, "indices")?,
        )?]),
        Op::ScatterElements { axis, reduction } => Ok(vec![index::scatter_elements(
            *axis,
            *reduction,
            i.req(0, "data")?,
            i.req(1, "indices")?,
            i.req(2, "updates")?,
        )?]),
        Op::ScatterNd { reduction } => Ok(vec![index::scatter_nd(
            *reduction,
            i.req(0, "data")?,
            i.req(1, "indices")?,
            i.req(2, "updates")?,
        )?]),
        Op::Tile => Ok(vec![index::tile(i.req(0, "x")?, i.req(1, "repeats")?)?]),
        Op::TopK { axis, largest } => index::top_k(*axis, *largest, i.req(0, "x")?, i.req(1, "k")?),
        Op::Trilu { upper } => Ok(vec![index::trilu(*upper, i.req(0, "x")?, i.opt(1))?]),
        Op::CumSum { exclusive, reverse } | Op::CumProd { exclusive, reverse } => {
            Ok(vec![misc::cumulative(
                matches!(op, Op::CumProd { .. }),
                *exclusive,
                *reverse,
                i.req(0, "x")?,
                i.req(1, "axis")?,
            )?])
        }
        Op::OneHot { axis } => Ok(vec![misc::one_hot(
            *axis,
            i.req(0, "indices")?,
            i.req(1, "depth")?,
            i.req(2, "values")?,
        )?]),
        Op::EyeLike { k } => Ok(vec![misc::eye_like(*k, i.req(0, "x")?)?]),
        Op::Compress { axis } => Ok(vec![misc::compress(
            *axis,
            i.req(0, "x")?,
            i.req(1, "condition")?,
        )?]),
        Op::NonZero => Ok(vec![misc::non_zero(i.req(0, "x")?)?]),
        Op::Unique { sorted, axis } => misc::unique(*sorted, *axis, i.req(0, "x")?, n_outputs),
        Op::ReverseSequence {
            batch_axis,
            time_axis,
        } => Ok(vec![misc::reverse_sequence(
            *batch_axis,
            *time_axis,
            i.req(0, "x")?,
            i.req(1, "sequence_lens")?,
        )?]),
        Op::CenterCropPad { axes } => Ok(vec![misc::center_crop_pad(
            axes,
            i.req(0, "x")?,
            i.req(1, "shape")?,
        )?]),
        Op::Det => Ok(vec![misc::det(i.req(0, "x")?)?]),
        Op::Einsum { equation } => {
            let xs: Vec<&Tensor> = (0..i.len())
                .map(|k| i.req(k, "inputs"))
                .collect::<EvalResult<_>>()?;
            Ok(vec![einsum::einsum(equation, &xs)?])
        }
        Op::RotaryEmbedding {
            interleaved,
            rotary_embedding_dim,
            num_heads,
        } => Ok(vec![llm::rotary_embedding(
            *interleaved,
            *rotary_embedding_dim,
            *num_heads,
            i,
        )?]),
        Op::TensorScatter { axis, circular } => Ok(vec![llm::tensor_scatter(*axis, *circular, i)?]),
        Op::NonMaxSuppression { center_point_box } => {
            Ok(vec![detect::non_max_suppression(*center_point_box, i)?])
        }
        Op::LinearAttention {
            q_num_heads,
            kv_num_heads,
            scale,
            gated,
            delta,
        } => llm::linear_attention(
            llm::LinearAttention {
                q_num_heads: *q_num_heads,
                kv_num_heads: *kv_num_heads,
                scale: *scale,
                gated: *gated,
                delta: *delta,
            },
            i,
            n_outputs,
        ),
        Op::SwiGlu { alpha } => Ok(vec![llm::swiglu(*alpha, i)?]),
        Op::RoiAlign {
            output_height,
            output_width,
            sampling_ratio,
            spatial_scale,
            max,
            half_pixel,
        } => Ok(vec![detect::roi_align(
            detect::RoiAlign {
                output_height: *output_height,
                output_width: *output_width,
                sampling_ratio: *sampling_ratio,
                spatial_scale: *spatial_scale,
                max: *max,
                half_pixel: *half_pixel,
            },
            i,
        )?]),
        Op::DeformConv { conv, offset_group } => {
            Ok(vec![deform::deform_conv(conv, *offset_group, i)?])
        }
        Op::ImageDecoder { pixel_format } => Ok(vec![image::image_decoder(
            *pixel_format,
            i.req(0, "encoded_stream")?,
        )?]),
        Op::TfIdfVectorizer(a) => Ok(vec![tfidf::tf_idf_vectorizer(a, i.req(0, "x")?)?]),
        Op::MelWeightMatrix { dtype } => Ok(vec![spectral::mel_weight_matrix(*dtype, i)?]),
        Op::Dft { inverse, onesided } => Ok(vec![spectral::dft(*inverse, *onesided, i)?]),
        Op::Stft { onesided } => Ok(vec![spectral::stft(*onesided, i)?]),
        Op::Window {
            window,
            periodic,
            dtype,
        } => Ok(vec![spectral::window(
            *window,
            *periodic,
            *dtype,
            i.req(0, "size")?,
        )?]),
        Op::Col2Im {
            dilations,
            pads,
            strides,
        } => Ok(vec![misc::col2im(
            dilations,
            pads,
            strides,
            i.req(0, "x")?,
            i.req(1, "image_shape")?,
            i.req(2, "block_shape")?,
        )?]),
        Op::GridSample {
            mode,
            padding,
            align_corners,
        } => Ok(vec![grid::grid_sample(
            *mode,
            *padding,
            *align_corners,
            i.req(0, "x")?,
            i.req(1, "grid")?,
        )?]),
        Op::AffineGrid { align_corners } => Ok(vec![grid::affine_grid(
            *align_corners,
            i.req(0, "theta")?,
            i.req(1, "size")?,
        )?]),
        Op::ArgMax(a) => Ok(vec![index::arg(a, true, i.req(0, "x")?)?]),
        Op::ArgMin(a) => Ok(vec![index::arg(a, false, i.req(0, "x")?)?]),
        Op::Size => Ok(vec![Tensor::scalar_i64(i.req(0, "x")?.len() as i64)]),
        Op::CastLike => {
            let to = i.req(1, "target")?.dtype();
            Ok(vec![i.req(0, "x")?.cast(to)])
        }
        Op::DepthToSpace { blocksize, mode } => Ok(vec![index::depth_to_space(
            *blocksize,
            *mode,
            i.req(0, "x")?,
        )?]),
        Op::SpaceToDepth { blocksize, mode } => Ok(vec![index::space_to_depth(
            *blocksize,
            *mode,
            i.req(0, "x")?,
        )?]),
        Op::ShapeOf { start, end } => Ok(vec![shape_ops::shape_of(*start, *end, i.req(0, "x")?)?]),
        Op::Slice => Ok(vec![shape_ops::slice(i)?]),
        Op::Pad { mode } => Ok(vec![shape_ops::pad(*mode, i)?]),
        Op::Resize(a) => Ok(vec![resize::resize(a, i)?]),
        Op::Range => Ok(vec![shape_ops::range(
            i.req(0, "start")?,
            i.req(1, "limit")?,
            i.req(2, "delta")?,
        )?]),
        Op::ConstantOfShape { value } => Ok(vec![shape_ops::constant_of_shape(
            value,
            i.req(0, "shape")?,
        )?]),
        Op::QuantizeLinear { q, dtype } => Ok(vec![quant::quantize_linear(q, *dtype, i)?]),
        Op::DequantizeLinear { q } => Ok(vec![quant::dequantize_linear(q, i)?]),
        Op::DynamicQuantizeLinear => quant::dynamic_quantize_linear(i.req(0, "x")?),
        Op::FakeQuantize { levels } => Ok(vec![quant::fake_quantize(*levels, i)?]),
        Op::QConv(a) => Ok(vec![fused::qconv(a, i)?]),
        Op::QMatMul => Ok(vec![fused::qmatmul(i)?]),
        Op::Requantize => Ok(vec![fused::requantize_op(i)?]),
        Op::QAdd => Ok(vec![fused::qadd(i)?]),
        Op::Lut => Ok(vec![fused::lut(i)?]),
        Op::Lstm { rnn, input_forget } => recurrent::lstm(rnn, *input_forget, i, n_outputs),
        Op::Gru {
            rnn,
            linear_before_reset,
        } => recurrent::gru(rnn, *linear_before_reset, i, n_outputs),
        Op::Rnn(rnn) => recurrent::rnn(rnn, i, n_outputs),
        Op::If {
            then_branch,
            else_branch,
        } => control::if_(then_branch, else_branch, i),
        Op::Loop { body, .. } => control::loop_(op, body, i, n_outputs),
        Op::Scan(a) => control::scan(a, op, i, n_outputs),
        Op::Attention(a) => attention::attention(a, i, n_outputs),
        Op::Lrn {
            alpha,
            beta,
            bias,
            size,
        } => Ok(vec![norm::lrn(
            *alpha,
            *beta,
            *bias,
            *size,
            i.req(0, "x")?,
        )?]),
        Op::GroupNorm {
            num_groups,
            epsilon,
        } => Ok(vec![norm::group_norm(*epsilon, *num_groups, i)?]),
        Op::MeanVarianceNorm { axes } => Ok(vec![norm::mean_variance_norm(axes, i.req(0, "x")?)?]),
        Op::CausalConvWithState { silu } => nn::causal_conv_with_state(*silu, i),
        Op::MaxUnpool {
            kernel,
            pads,
            strides,
        } => Ok(vec![pool::max_unpool(
            kernel,
            pads,
            strides,
            i.req(0, "x")?,
            i.req(1, "indices")?,
            i.opt(2),
        )?]),
    }
}
