//! One lpc node → its ONNX node(s): the op type and attributes of every `Op`, the pre-opset-13
//! Softmax form, and a bias on the accumulator grid as i32 + DequantizeLinear.

use super::attrs::{
    attr_f, attr_fs, attr_i, attr_is, attr_s, attr_ss, attr_t, conv_attrs, pool_attrs, us,
};
use super::{ExportError, Exporter};
use crate::proto::{AttributeProto, GraphProto};
use crate::tensor::{dtype_to_onnx, tensor_to_proto};
use lpc_ir::quant::integer_bias;
use lpc_ir::*;

/// An ONNX op type with its attributes.
type Form = (&'static str, Vec<AttributeProto>);

impl Exporter<'_> {
    /// Writes node `n` (nothing for inputs and constants, which become graph inputs and
    /// initializers where they are used).
    pub(super) fn node(&mut self, n: NodeId) -> Result<(), ExportError> {
        let g = self.g;
        let node = g.node(n);
        let ins = g.node_inputs(n);
        let outs: Vec<String> = (0..node.outputs.len())
            .map(|k| self.names[&ValueRef { node: n, output: k }].clone())
            .collect();
        match &node.op {
            Op::Input { .. } | Op::Const(_) => return Ok(()),
            Op::FakeQuantize { levels } => {
                return self.fake_quantize(n, *levels, &ins, outs[0].clone())
            }
            Op::If { .. } | Op::Loop { .. } | Op::Scan(_) => return self.control(n, &ins, outs),
            Op::Softmax { axis, coerce_2d }
            | Op::LogSoftmax { axis, coerce_2d }
            | Op::Hardmax { axis, coerce_2d } => {
                let rank =
                    ins[0].and_then(|v| g.value_type(v).shape.as_ref().map(|s| s.rank() as i64));
                let last = rank.is_some_and(|r| *axis == -1 || *axis == r - 1);
                if *coerce_2d && !last {
                    return self.coerced_softmax(n, *axis, &ins, outs);
                }
            }
            _ => {}
        }
        let (op_type, at) = self.form(n, &ins)?;
        let present = ins.iter().rposition(Option::is_some).map_or(0, |p| p + 1);
        // A bias on the accumulator grid goes out as i32 + DequantizeLinear (the form ONNX
        // Runtime fuses into QLinearConv, and exact: otherwise ORT re-rounds a float bias),
        // in place of its f32 constant.
        let mut int_bias = if present == 3 {
            integer_bias(g, n)
        } else {
            None
        };
        let mut inputs = vec![];
        for (slot, v) in ins[..present].iter().enumerate() {
            inputs.push(match (v, int_bias.take_if(|_| slot == 2)) {
                (Some(_), Some((q, scales))) => self.integer_bias_input(n, q, scales)?,
                (Some(v), _) => self.name(*v),
                (None, _) => String::new(),
            });
        }
        self.push(&node.name, op_type, inputs, outs, at);
        Ok(())
    }

    /// If, Loop and Scan: the node's ONNX inputs (without the captured values, which the
    /// bodies read by name) and the bodies as GRAPH attributes.
    fn control(
        &mut self,
        n: NodeId,
        ins: &[Option<ValueRef>],
        outs: Vec<String>,
    ) -> Result<(), ExportError> {
        let node = self.g.node(n);
        let io = node
            .op
            .body_io(ins.len(), node.outputs.len())
            .expect("an op with a body")
            .map_err(|m| self.err(n, m))?;
        let own = ins.len() - io.captures;
        let mut captured = vec![];
        for v in &ins[own..] {
            let v = v.ok_or_else(|| self.err(n, "a captured value is not connected"))?;
            captured.push(self.name(v));
        }
        let mut inputs = vec![];
        for v in &ins[..own] {
            inputs.push(match v {
                Some(v) => self.name(*v),
                None => String::new(),
            });
        }
        let graph_attr = |name: &str, gp: GraphProto| AttributeProto {
            name: Some(name.into()),
            r#type: Some(5),
            g: Some(gp),
            ..Default::default()
        };
        let (op_type, at) = match &node.op {
            Op::If {
                then_branch,
                else_branch,
            } => {
                let t = self.body(then_branch, &captured)?;
                let e = self.body(else_branch, &captured)?;
                (
                    "If",
                    vec![graph_attr("then_branch", t), graph_attr("else_branch", e)],
                )
            }
            Op::Loop { body, .. } => (
                "Loop",
                vec![graph_attr("body", self.body(body, &captured)?)],
            ),
            Op::Scan(a) => {
                let mut at = vec![
                    graph_attr("body", self.body(&a.body, &captured)?),
                    attr_i("num_scan_inputs", a.num_scan_inputs as i64),
                ];
                for (k, v) in [
                    ("scan_input_axes", &a.input_axes),
                    ("scan_input_directions", &a.input_directions),
                    ("scan_output_axes", &a.output_axes),
                    ("scan_output_directions", &a.output_directions),
                ] {
                    if !v.is_empty() {
                        at.push(attr_is(k, v));
                    }
                }
                ("Scan", at)
            }
            _ => unreachable!("only ops with bodies"),
        };
        let name = node.name.clone();
        self.push(&name, op_type, inputs, outs, at);
        Ok(())
    }

    /// Before opset 13 the op normalized over all dims from `axis` on, as one row per leading
    /// index: Flatten(axis) → op over the last axis → Reshape back to the input's shape.
    fn coerced_softmax(
        &mut self,
        n: NodeId,
        axis: i64,
        ins: &[Option<ValueRef>],
        outs: Vec<String>,
    ) -> Result<(), ExportError> {
        let node = self.g.node(n);
        let op_type = match node.op {
            Op::Softmax { .. } => "Softmax",
            Op::Hardmax { .. } => "Hardmax",
            _ => "LogSoftmax",
        };
        let x = ins[0].ok_or_else(|| self.err(n, "missing input"))?;
        let (x, name) = (self.name(x), node.name.clone());
        let shape = self.fresh(&format!("{}_shape", outs[0]));
        let flat = self.fresh(&format!("{}_2d", outs[0]));
        let soft = self.fresh(&format!("{}_2d_out", outs[0]));
        let (flatten, reshape) = (format!("{name}_flatten"), format!("{name}_reshape"));
        let shape_of = format!("{name}_shape");
        self.push(
            &shape_of,
            "Shape",
            vec![x.clone()],
            vec![shape.clone()],
            vec![],
        );
        let from_axis = vec![attr_i("axis", axis)];
        self.push(&flatten, "Flatten", vec![x], vec![flat.clone()], from_axis);
        let last_axis = vec![attr_i("axis", -1)];
        self.push(&name, op_type, vec![flat], vec![soft.clone()], last_axis);
        self.push(&reshape, "Reshape", vec![soft, shape], outs, vec![]);
        Ok(())
    }

    /// Writes the bias `q · scales` as i32 initializers + DequantizeLinear; returns the
    /// dequantized value's name.
    fn integer_bias_input(
        &mut self,
        n: NodeId,
        q: Vec<i32>,
        scales: Vec<f32>,
    ) -> Result<String, ExportError> {
        let len = q.len();
        let base = format!("{}_bias", self.g.node(n).name);
        let qn = self.init(
            &format!("{base}_quantized"),
            &Tensor::from_i32(&[len], q).map_err(|e| self.err(n, e.to_string()))?,
        );
        let sn = self.init(
            &format!("{base}_scale"),
            &Tensor::from_f32(&[len], scales).map_err(|e| self.err(n, e.to_string()))?,
        );
        let zn = self.init(
            &format!("{base}_zero_point"),
            &Tensor::from_i32(&[len], vec![0; len]).map_err(|e| self.err(n, e.to_string()))?,
        );
        let out = self.fresh(&format!("{base}_dequantized"));
        self.push(
            &format!("{base}_DequantizeLinear"),
            "DequantizeLinear",
            vec![qn, sn, zn],
            vec![out.clone()],
            vec![attr_i("axis", 0)],
        );
        Ok(out)
    }

    /// The ONNX op type and attributes of node `n` (every op but the ones [`Exporter::node`]
    /// writes itself).
    fn form(&self, n: NodeId, ins: &[Option<ValueRef>]) -> Result<Form, ExportError> {
        let op = &self.g.node(n).op;
        let none = |t: &'static str| (t, vec![]);
        Ok(match op {
            Op::Input { .. }
            | Op::Const(_)
            | Op::FakeQuantize { .. }
            | Op::If { .. }
            | Op::Loop { .. }
            | Op::Scan(_) => {
                unreachable!("written by Exporter::node")
            }
            Op::Unary(u) => unary_form(u),
            Op::TopK { axis, largest } => (
                "TopK",
                vec![attr_i("axis", *axis), attr_i("largest", *largest as i64)],
            ),
            Op::Trilu { upper } => ("Trilu", vec![attr_i("upper", *upper as i64)]),
            Op::ArgMax(a) | Op::ArgMin(a) => (
                if matches!(op, Op::ArgMax(_)) {
                    "ArgMax"
                } else {
                    "ArgMin"
                },
                vec![
                    attr_i("axis", a.axis),
                    attr_i("keepdims", a.keepdims as i64),
                    attr_i("select_last_index", a.select_last_index as i64),
                ],
            ),
            Op::Binary(BinaryOp::Mod) => ("Mod", vec![attr_i("fmod", 0)]),
            Op::Binary(BinaryOp::Fmod) => ("Mod", vec![attr_i("fmod", 1)]),
            Op::Binary(BinaryOp::BitShiftLeft) => ("BitShift", vec![attr_s("direction", "LEFT")]),
            Op::Binary(BinaryOp::BitShiftRight) => {
                ("BitShift", vec![attr_s("direction", "RIGHT")])
            }
            Op::Binary(b) => none(binary_name(*b)),
            Op::CumSum { .. }
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
            | Op::Col2Im { .. }
            | Op::GridSample { .. }
            | Op::AffineGrid { .. } => misc_form(op),
            Op::Dft { inverse, onesided } => (
                "DFT",
                vec![
                    attr_i("inverse", *inverse as i64),
                    attr_i("onesided", *onesided as i64),
                ],
            ),
            Op::Stft { onesided } => ("STFT", vec![attr_i("onesided", *onesided as i64)]),
            Op::MelWeightMatrix { dtype } => (
                "MelWeightMatrix",
                vec![attr_i("output_datatype", dtype_to_onnx(*dtype) as i64)],
            ),
            Op::Window {
                window,
                periodic,
                dtype,
            } => (
                match window {
                    WindowKind::Hann => "HannWindow",
                    WindowKind::Hamming => "HammingWindow",
                    WindowKind::Blackman => "BlackmanWindow",
                },
                vec![
                    attr_i("periodic", *periodic as i64),
                    attr_i("output_datatype", dtype_to_onnx(*dtype) as i64),
                ],
            ),
            Op::Clip => none("Clip"),
            Op::Where => none("Where"),
            Op::Conv(a) => ("Conv", conv_attrs(a)),
            Op::ConvTranspose {
                conv,
                output_padding,
                output_shape,
            } => {
                let mut at = conv_attrs(conv);
                if !output_padding.is_empty() {
                    at.push(attr_is("output_padding", &us(output_padding)));
                }
                if !output_shape.is_empty() {
                    at.push(attr_is("output_shape", &us(output_shape)));
                }
                ("ConvTranspose", at)
            }
            Op::ConvInteger(a) => ("ConvInteger", conv_attrs(a)),
            Op::QLinearConv(a) => ("QLinearConv", conv_attrs(a)),
            Op::MatMul => none("MatMul"),
            Op::MatMulInteger => none("MatMulInteger"),
            Op::QLinearMatMul => none("QLinearMatMul"),
            Op::Gemm {
                alpha,
                beta,
                trans_a,
                trans_b,
            } => (
                "Gemm",
                vec![
                    attr_f("alpha", *alpha),
                    attr_f("beta", *beta),
                    attr_i("transA", *trans_a as i64),
                    attr_i("transB", *trans_b as i64),
                ],
            ),
            Op::MaxPool {
                pool,
                storage_order,
            } => {
                let mut at = pool_attrs(pool);
                at.push(attr_i("storage_order", *storage_order));
                ("MaxPool", at)
            }
            Op::AveragePool {
                pool,
                count_include_pad,
            } => {
                let mut at = pool_attrs(pool);
                at.push(attr_i("count_include_pad", *count_include_pad as i64));
                ("AveragePool", at)
            }
            Op::LpPool { pool, p } => {
                let mut at = pool_attrs(pool);
                at.push(attr_i("p", *p));
                ("LpPool", at)
            }
            Op::GlobalAveragePool => none("GlobalAveragePool"),
            Op::GlobalMaxPool => none("GlobalMaxPool"),
            Op::BatchNorm {
                epsilon,
                training,
                momentum,
            } => (
                "BatchNormalization",
                vec![
                    attr_f("epsilon", *epsilon),
                    attr_f("momentum", *momentum),
                    attr_i("training_mode", *training as i64),
                ],
            ),
            Op::LayerNorm { axis, epsilon } => (
                "LayerNormalization",
                vec![attr_i("axis", *axis), attr_f("epsilon", *epsilon)],
            ),
            Op::RmsNorm { axis, epsilon } => (
                "RMSNormalization",
                vec![attr_i("axis", *axis), attr_f("epsilon", *epsilon)],
            ),
            Op::Softmax { axis, .. } => ("Softmax", vec![attr_i("axis", *axis)]),
            Op::LogSoftmax { axis, .. } => ("LogSoftmax", vec![attr_i("axis", *axis)]),
            Op::Hardmax { axis, .. } => ("Hardmax", vec![attr_i("axis", *axis)]),
            Op::InstanceNorm { epsilon } => (
                "InstanceNormalization",
                vec![attr_f("epsilon", *epsilon)],
            ),
            Op::Lrn {
                alpha,
                beta,
                bias,
                size,
            } => (
                "LRN",
                vec![
                    attr_f("alpha", *alpha),
                    attr_f("beta", *beta),
                    attr_f("bias", *bias),
                    attr_i("size", *size as i64),
                ],
            ),
            Op::GroupNorm {
                num_groups,
                epsilon,
            } => (
                "GroupNormalization",
                vec![
                    attr_i("num_groups", *num_groups as i64),
                    attr_f("epsilon", *epsilon),
                ],
            ),
            Op::CausalConvWithState { silu } => (
                "CausalConvWithState",
                if *silu {
                    vec![attr_s("activation", "silu")]
                } else {
                    vec![]
                },
            ),
            Op::MeanVarianceNorm { axes } => {
                ("MeanVarianceNormalization", vec![attr_is("axes", axes)])
            }
            Op::MaxUnpool {
                kernel,
                pads,
                strides,
            } => {
                let mut at = vec![];
                for (key, v) in [("kernel_shape", kernel), ("pads", pads), ("strides", strides)] {
                    if !v.is_empty() {
                        let v: Vec<i64> = v.iter().map(|&x| x as i64).collect();
                        at.push(attr_is(key, &v));
                    }
                }
                ("MaxUnpool", at)
            }
            Op::LpNormalization { axis, p } => (
                "LpNormalization",
                vec![attr_i("axis", *axis), attr_i("p", *p)],
            ),
            Op::NegativeLogLikelihoodLoss {
                reduction,
                ignore_index,
            } => ("NegativeLogLikelihoodLoss", loss_attrs(*reduction, *ignore_index)),
            Op::SoftmaxCrossEntropyLoss {
                reduction,
                ignore_index,
            } => ("SoftmaxCrossEntropyLoss", loss_attrs(*reduction, *ignore_index)),
            Op::Reduce {
                op,
                keepdims,
                noop_with_empty_axes,
            } => (
                crate::names::reduce(*op),
                vec![
                    attr_i("keepdims", *keepdims as i64),
                    attr_i("noop_with_empty_axes", *noop_with_empty_axes as i64),
                ],
            ),
            Op::Concat { .. }
            | Op::Split { .. }
            | Op::Flatten { .. }
            | Op::Reshape { .. }
            | Op::Squeeze
            | Op::Unsqueeze
            | Op::Transpose { .. }
            | Op::Expand
            | Op::Gather { .. }
            | Op::GatherElements { .. }
            | Op::GatherNd { .. }
            | Op::ScatterElements { .. }
            | Op::ScatterNd { .. }
            | Op::Tile
            | Op::CastLike
            | Op::Size
            | Op::DepthToSpace { .. }
            | Op::SpaceToDepth { .. }
            | Op::ShapeOf { .. }
            | Op::Slice
            | Op::Pad { .. }
            | Op::Resize(_)
            | Op::Range
            | Op::ConstantOfShape { .. } => array_form(op, ins),
            Op::QuantizeLinear { .. } | Op::DequantizeLinear { .. } | Op::DynamicQuantizeLinear => {
                quant_form(op, ins)
            }
            Op::Lstm { rnn, input_forget } => {
                let mut at = rnn_attrs(rnn);
                at.push(attr_i("input_forget", *input_forget as i64));
                ("LSTM", at)
            }
            Op::Gru {
                rnn,
                linear_before_reset,
            } => {
                let mut at = rnn_attrs(rnn);
                at.push(attr_i("linear_before_reset", *linear_before_reset as i64));
                ("GRU", at)
            }
            Op::Rnn(rnn) => ("RNN", rnn_attrs(rnn)),
            Op::Attention(a) => ("Attention", attention_attrs(a)),
            Op::QConv(_) | Op::QMatMul | Op::Requantize | Op::QAdd | Op::Lut => {
                return Err(self.err(
                    n,
                    format!("'{}' is an lpc fused integer op with no ONNX form; export the graph before folding", op.name()),
                ))
            }
        })
    }
}

/// The attributes of LSTM, GRU and RNN: the activation list with its alpha and beta values
/// in the order the activations consume them.
fn rnn_attrs(r: &RnnAttrs) -> Vec<AttributeProto> {
    let direction = match r.direction {
        RnnDirection::Forward => "forward",
        RnnDirection::Reverse => "reverse",
        RnnDirection::Bidirectional => "bidirectional",
    };
    let (mut alphas, mut betas) = (vec![], vec![]);
    let names: Vec<&str> = r
        .activations
        .iter()
        .map(|&a| {
            let (alpha, beta) = a.params();
            alphas.extend(alpha);
            betas.extend(beta);
            activation_name(a)
        })
        .collect();
    let mut at = vec![
        attr_s("direction", direction),
        attr_i("hidden_size", r.hidden_size as i64),
        attr_i("layout", r.batch_first as i64),
        attr_ss("activations", &names),
    ];
    if !alphas.is_empty() {
        at.push(attr_fs("activation_alpha", &alphas));
    }
    if !betas.is_empty() {
        at.push(attr_fs("activation_beta", &betas));
    }
    if let Some(c) = r.clip {
        at.push(attr_f("clip", c));
    }
    at
}

/// The attributes of Attention, defaults omitted.
fn attention_attrs(a: &AttentionAttrs) -> Vec<AttributeProto> {
    let mut at = vec![];
    if a.is_causal {
        at.push(attr_i("is_causal", 1));
    }
    if a.q_num_heads != 0 {
        at.push(attr_i("q_num_heads", a.q_num_heads as i64));
    }
    if a.kv_num_heads != 0 {
        at.push(attr_i("kv_num_heads", a.kv_num_heads as i64));
    }
    if let Some(s) = a.scale {
        at.push(attr_f("scale", s));
    }
    if a.softcap != 0.0 {
        at.push(attr_f("softcap", a.softcap));
    }
    if let Some(d) = a.softmax_precision {
        at.push(attr_i("softmax_precision", dtype_to_onnx(d) as i64));
    }
    let mode = QkOutput::ALL.iter().position(|&m| m == a.qk_output);
    if let Some(m) = mode.filter(|&m| m != 0) {
        at.push(attr_i("qk_matmul_output_mode", m as i64));
    }
    if a.left_window != -1 {
        at.push(attr_i("left_window_size", a.left_window));
    }
    if a.right_window != -1 {
        at.push(attr_i("right_window_size", a.right_window));
    }
    at
}

/// The ONNX spelling of a recurrent activation.
fn activation_name(a: RnnActivation) -> &'static str {
    match a {
        RnnActivation::Relu => "Relu",
        RnnActivation::Tanh => "Tanh",
        RnnActivation::Sigmoid => "Sigmoid",
        RnnActivation::Affine { .. } => "Affine",
        RnnActivation::LeakyRelu { .. } => "LeakyRelu",
        RnnActivation::ThresholdedRelu { .. } => "ThresholdedRelu",
        RnnActivation::ScaledTanh { .. } => "ScaledTanh",
        RnnActivation::HardSigmoid { .. } => "HardSigmoid",
        RnnActivation::Elu { .. } => "Elu",
        RnnActivation::Softsign => "Softsign",
        RnnActivation::Softplus => "Softplus",
    }
}

/// ONNX op type and attributes of a unary op.
fn unary_form(u: &UnaryOp) -> Form {
    let mut at = vec![];
    let op_type = match u {
        UnaryOp::Abs => "Abs",
        UnaryOp::Neg => "Neg",
        UnaryOp::Ceil => "Ceil",
        UnaryOp::Floor => "Floor",
        UnaryOp::Round => "Round",
        UnaryOp::Sqrt => "Sqrt",
        UnaryOp::Reciprocal => "Reciprocal",
        UnaryOp::Exp => "Exp",
        UnaryOp::Log => "Log",
        UnaryOp::Erf => "Erf",
        UnaryOp::Sigmoid => "Sigmoid",
        UnaryOp::Tanh => "Tanh",
        UnaryOp::Relu => "Relu",
        UnaryOp::Identity => "Identity",
        UnaryOp::Elu { alpha } => {
            at.push(attr_f("alpha", *alpha));
            "Elu"
        }
        UnaryOp::LeakyRelu { alpha } => {
            at.push(attr_f("alpha", *alpha));
            "LeakyRelu"
        }
        UnaryOp::HardSigmoid { alpha, beta } => {
            at.push(attr_f("alpha", *alpha));
            at.push(attr_f("beta", *beta));
            "HardSigmoid"
        }
        UnaryOp::HardSwish => "HardSwish",
        UnaryOp::Gelu { tanh } => {
            at.push(attr_s("approximate", if *tanh { "tanh" } else { "none" }));
            "Gelu"
        }
        UnaryOp::Cast { to } => {
            at.push(attr_i("to", dtype_to_onnx(*to) as i64));
            "Cast"
        }
        UnaryOp::Not => "Not",
        UnaryOp::BitwiseNot => "BitwiseNot",
        UnaryOp::BitCast { to } => {
            at.push(attr_i("to", dtype_to_onnx(*to) as i64));
            "BitCast"
        }
        UnaryOp::IsNaN => "IsNaN",
        UnaryOp::Sign => "Sign",
        UnaryOp::Sin => "Sin",
        UnaryOp::Cos => "Cos",
        UnaryOp::Tan => "Tan",
        UnaryOp::Asin => "Asin",
        UnaryOp::Acos => "Acos",
        UnaryOp::Atan => "Atan",
        UnaryOp::Sinh => "Sinh",
        UnaryOp::Cosh => "Cosh",
        UnaryOp::Asinh => "Asinh",
        UnaryOp::Acosh => "Acosh",
        UnaryOp::Atanh => "Atanh",
        UnaryOp::Swish { alpha } => {
            at.push(attr_f("alpha", *alpha));
            "Swish"
        }
        UnaryOp::ThresholdedRelu { alpha } => {
            at.push(attr_f("alpha", *alpha));
            "ThresholdedRelu"
        }
        UnaryOp::Softplus => "Softplus",
        UnaryOp::Selu { alpha, gamma } => {
            at.push(attr_f("alpha", *alpha));
            at.push(attr_f("gamma", *gamma));
            "Selu"
        }
        UnaryOp::Softsign => "Softsign",
        UnaryOp::Shrink { bias, lambd } => {
            at.push(attr_f("bias", *bias));
            at.push(attr_f("lambd", *lambd));
            "Shrink"
        }
        UnaryOp::Celu { alpha } => {
            at.push(attr_f("alpha", *alpha));
            "Celu"
        }
        UnaryOp::Mish => "Mish",
        UnaryOp::IsInf {
            detect_positive,
            detect_negative,
        } => {
            at.push(attr_i("detect_positive", *detect_positive as i64));
            at.push(attr_i("detect_negative", *detect_negative as i64));
            "IsInf"
        }
    };
    (op_type, at)
}

/// The attributes of NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
fn loss_attrs(reduction: LossReduction, ignore_index: Option<i64>) -> Vec<AttributeProto> {
    let word = match reduction {
        LossReduction::None => "none",
        LossReduction::Sum => "sum",
        LossReduction::Mean => "mean",
    };
    let mut at = vec![attr_s("reduction", word)];
    if let Some(ii) = ignore_index {
        at.push(attr_i("ignore_index", ii));
    }
    at
}

/// ONNX op type of a binary op.
fn binary_name(b: BinaryOp) -> &'static str {
    match b {
        BinaryOp::Add => "Add",
        BinaryOp::Sub => "Sub",
        BinaryOp::Mod | BinaryOp::Fmod => "Mod",
        BinaryOp::Mul => "Mul",
        BinaryOp::Div => "Div",
        BinaryOp::Pow => "Pow",
        BinaryOp::Max => "Max",
        BinaryOp::Min => "Min",
        BinaryOp::Equal => "Equal",
        BinaryOp::PRelu => "PRelu",
        BinaryOp::Greater => "Greater",
        BinaryOp::Less => "Less",
        BinaryOp::GreaterOrEqual => "GreaterOrEqual",
        BinaryOp::LessOrEqual => "LessOrEqual",
        BinaryOp::And => "And",
        BinaryOp::Or => "Or",
        BinaryOp::Xor => "Xor",
        BinaryOp::BitwiseAnd => "BitwiseAnd",
        BinaryOp::BitwiseOr => "BitwiseOr",
        BinaryOp::BitwiseXor => "BitwiseXor",
        BinaryOp::BitShiftLeft | BinaryOp::BitShiftRight => "BitShift",
    }
}

/// ONNX op type and attributes of the cumulative, one-hot, data-dependent and Det ops.
fn misc_form(op: &Op) -> Form {
    let mut at = vec![];
    let op_type = match op {
        Op::CumSum { exclusive, reverse } | Op::CumProd { exclusive, reverse } => {
            at.push(attr_i("exclusive", *exclusive as i64));
            at.push(attr_i("reverse", *reverse as i64));
            if matches!(op, Op::CumSum { .. }) {
                "CumSum"
            } else {
                "CumProd"
            }
        }
        Op::OneHot { axis } => {
            at.push(attr_i("axis", *axis));
            "OneHot"
        }
        Op::EyeLike { k } => {
            at.push(attr_i("k", *k));
            "EyeLike"
        }
        Op::Compress { axis } => {
            at.extend(axis.map(|a| attr_i("axis", a)));
            "Compress"
        }
        Op::NonZero => "NonZero",
        Op::Unique { sorted, axis } => {
            at.push(attr_i("sorted", *sorted as i64));
            at.extend(axis.map(|a| attr_i("axis", a)));
            "Unique"
        }
        Op::ReverseSequence {
            batch_axis,
            time_axis,
        } => {
            at.push(attr_i("batch_axis", *batch_axis as i64));
            at.push(attr_i("time_axis", *time_axis as i64));
            "ReverseSequence"
        }
        Op::CenterCropPad { axes } => {
            if !axes.is_empty() {
                at.push(attr_is("axes", axes));
            }
            "CenterCropPad"
        }
        Op::Det => "Det",
        Op::Einsum { equation } => {
            at.push(attr_s("equation", equation));
            "Einsum"
        }
        Op::RotaryEmbedding {
            interleaved,
            rotary_embedding_dim,
            num_heads,
        } => {
            at.push(attr_i("interleaved", *interleaved as i64));
            if *rotary_embedding_dim != 0 {
                at.push(attr_i("rotary_embedding_dim", *rotary_embedding_dim as i64));
            }
            if *num_heads != 0 {
                at.push(attr_i("num_heads", *num_heads as i64));
            }
            "RotaryEmbedding"
        }
        Op::TensorScatter { axis, circular } => {
            at.push(attr_i("axis", *axis));
            at.push(attr_s(
                "mode",
                if *circular { "circular" } else { "linear" },
            ));
            "TensorScatter"
        }
        Op::NonMaxSuppression { center_point_box } => {
            at.push(attr_i("center_point_box", *center_point_box as i64));
            "NonMaxSuppression"
        }
        Op::LinearAttention {
            q_num_heads,
            kv_num_heads,
            scale,
            gated,
            delta,
        } => {
            at.push(attr_i("q_num_heads", *q_num_heads as i64));
            at.push(attr_i("kv_num_heads", *kv_num_heads as i64));
            at.push(attr_f("scale", *scale));
            let rule = match (gated, delta) {
                (false, false) => "linear",
                (true, false) => "gated",
                (false, true) => "delta",
                (true, true) => "gated_delta",
            };
            at.push(attr_s("update_rule", rule));
            "LinearAttention"
        }
        Op::SwiGlu { alpha } => {
            at.push(attr_f("alpha", *alpha));
            "SwiGLU"
        }
        Op::RoiAlign {
            output_height,
            output_width,
            sampling_ratio,
            spatial_scale,
            max,
            half_pixel,
        } => {
            at.push(attr_i("output_height", *output_height as i64));
            at.push(attr_i("output_width", *output_width as i64));
            at.push(attr_i("sampling_ratio", *sampling_ratio as i64));
            at.push(attr_f("spatial_scale", *spatial_scale));
            at.push(attr_s("mode", if *max { "max" } else { "avg" }));
            let ct = if *half_pixel {
                "half_pixel"
            } else {
                "output_half_pixel"
            };
            at.push(attr_s("coordinate_transformation_mode", ct));
            "RoiAlign"
        }
        Op::DeformConv { conv, offset_group } => {
            // DeformConv has Conv's attributes but auto_pad.
            at.extend(
                conv_attrs(conv)
                    .into_iter()
                    .filter(|a| a.name.as_deref() != Some("auto_pad")),
            );
            at.push(attr_i("offset_group", *offset_group as i64));
            "DeformConv"
        }
        Op::ImageDecoder { pixel_format } => {
            let f = match pixel_format {
                PixelFormat::Rgb => "RGB",
                PixelFormat::Bgr => "BGR",
                PixelFormat::Grayscale => "Grayscale",
            };
            at.push(attr_s("pixel_format", f));
            "ImageDecoder"
        }
        Op::TfIdfVectorizer(a) => {
            let mode = match a.mode {
                TfIdfMode::Tf => "TF",
                TfIdfMode::Idf => "IDF",
                TfIdfMode::TfIdf => "TFIDF",
            };
            at.push(attr_s("mode", mode));
            at.push(attr_i("min_gram_length", a.min_gram_length as i64));
            at.push(attr_i("max_gram_length", a.max_gram_length as i64));
            at.push(attr_i("max_skip_count", a.max_skip_count as i64));
            at.push(attr_is("ngram_counts", &us(&a.ngram_counts)));
            at.push(attr_is("ngram_indexes", &us(&a.ngram_indexes)));
            at.push(attr_is("pool_int64s", &a.pool));
            if !a.weights.is_empty() {
                at.push(attr_fs("weights", &a.weights.to_f32_vec()));
            }
            "TfIdfVectorizer"
        }
        Op::Col2Im {
            dilations,
            pads,
            strides,
        } => {
            for (key, v) in [
                ("dilations", dilations),
                ("pads", pads),
                ("strides", strides),
            ] {
                if !v.is_empty() {
                    let v: Vec<i64> = v.iter().map(|&x| x as i64).collect();
                    at.push(attr_is(key, &v));
                }
            }
            "Col2Im"
        }
        Op::GridSample {
            mode,
            padding,
            align_corners,
        } => {
            let mode = match mode {
                ResizeMode::Nearest => "nearest",
                ResizeMode::Linear => "linear",
                ResizeMode::Cubic => "cubic",
            };
            let padding = match padding {
                GridPadding::Zeros => "zeros",
                GridPadding::Border => "border",
                GridPadding::Reflection => "reflection",
            };
            at.push(attr_s("mode", mode));
            at.push(attr_s("padding_mode", padding));
            at.push(attr_i("align_corners", *align_corners as i64));
            "GridSample"
        }
        Op::AffineGrid { align_corners } => {
            at.push(attr_i("align_corners", *align_corners as i64));
            "AffineGrid"
        }
        other => unreachable!("{} is not a misc op", other.name()),
    };
    (op_type, at)
}

/// ONNX op type and attributes of a shape / data-movement op.
fn array_form(op: &Op, ins: &[Option<ValueRef>]) -> Form {
    let mut at = vec![];
    let op_type = match op {
        Op::Concat { axis } => {
            at.push(attr_i("axis", *axis));
            "Concat"
        }
        Op::Split { axis, num_outputs } => {
            at.push(attr_i("axis", *axis));
            if ins.get(1).copied().flatten().is_none() {
                at.push(attr_i("num_outputs", *num_outputs as i64));
            }
            "Split"
        }
        Op::Flatten { axis } => {
            at.push(attr_i("axis", *axis));
            "Flatten"
        }
        Op::Reshape { allowzero } => {
            at.push(attr_i("allowzero", *allowzero as i64));
            "Reshape"
        }
        Op::Squeeze => "Squeeze",
        Op::Unsqueeze => "Unsqueeze",
        Op::Transpose { perm } => {
            if !perm.is_empty() {
                at.push(attr_is("perm", &us(perm)));
            }
            "Transpose"
        }
        Op::Expand => "Expand",
        Op::Gather { axis } => {
            at.push(attr_i("axis", *axis));
            "Gather"
        }
        Op::GatherElements { axis } => {
            at.push(attr_i("axis", *axis));
            "GatherElements"
        }
        Op::GatherNd { batch_dims } => {
            at.push(attr_i("batch_dims", *batch_dims as i64));
            "GatherND"
        }
        Op::ScatterElements { axis, reduction } => {
            at.push(attr_i("axis", *axis));
            at.extend(reduction_attr(*reduction));
            "ScatterElements"
        }
        Op::ScatterNd { reduction } => {
            at.extend(reduction_attr(*reduction));
            "ScatterND"
        }
        Op::Tile => "Tile",
        Op::CastLike => "CastLike",
        Op::Size => "Size",
        Op::DepthToSpace { blocksize, mode } => {
            at.push(attr_i("blocksize", *blocksize as i64));
            at.push(attr_s(
                "mode",
                match mode {
                    BlockOrder::Dcr => "DCR",
                    BlockOrder::Crd => "CRD",
                },
            ));
            "DepthToSpace"
        }
        Op::SpaceToDepth { blocksize, mode } => {
            at.push(attr_i("blocksize", *blocksize as i64));
            // `mode` exists from opset 25 only; the default DCR is written as no attribute.
            if *mode == BlockOrder::Crd {
                at.push(attr_s("mode", "CRD"));
            }
            "SpaceToDepth"
        }
        Op::ShapeOf { start, end } => {
            at.push(attr_i("start", *start));
            if let Some(e) = end {
                at.push(attr_i("end", *e));
            }
            "Shape"
        }
        Op::Slice => "Slice",
        Op::Pad { mode } => {
            at.push(attr_s(
                "mode",
                match mode {
                    PadMode::Constant => "constant",
                    PadMode::Reflect => "reflect",
                    PadMode::Edge => "edge",
                    PadMode::Wrap => "wrap",
                },
            ));
            "Pad"
        }
        Op::Resize(r) => return ("Resize", resize_attrs(r)),
        Op::Range => "Range",
        Op::ConstantOfShape { value } => {
            // ONNX wants a 1-D tensor of one element; lpc holds the value as a scalar.
            let mut t = tensor_to_proto("value", value);
            t.dims = vec![value.len() as i64];
            at.push(attr_t("value", t));
            "ConstantOfShape"
        }
        _ => unreachable!("array_form is called for shape and data-movement ops only"),
    };
    (op_type, at)
}

/// The attributes of a Resize.
fn resize_attrs(r: &ResizeAttrs) -> Vec<AttributeProto> {
    let mode = match r.mode {
        ResizeMode::Nearest => "nearest",
        ResizeMode::Linear => "linear",
        ResizeMode::Cubic => "cubic",
    };
    let coord = match r.coord {
        CoordTransform::HalfPixel => "half_pixel",
        CoordTransform::HalfPixelSymmetric => "half_pixel_symmetric",
        CoordTransform::PytorchHalfPixel => "pytorch_half_pixel",
        CoordTransform::AlignCorners => "align_corners",
        CoordTransform::Asymmetric => "asymmetric",
        CoordTransform::TfCropAndResize => "tf_crop_and_resize",
    };
    let nearest = match r.nearest {
        NearestMode::RoundPreferFloor => "round_prefer_floor",
        NearestMode::RoundPreferCeil => "round_prefer_ceil",
        NearestMode::Floor => "floor",
        NearestMode::Ceil => "ceil",
    };
    let policy = match r.policy {
        AspectPolicy::Stretch => "stretch",
        AspectPolicy::NotLarger => "not_larger",
        AspectPolicy::NotSmaller => "not_smaller",
    };
    let mut at = vec![
        attr_s("mode", mode),
        attr_s("coordinate_transformation_mode", coord),
        attr_s("nearest_mode", nearest),
        attr_f("cubic_coeff_a", r.cubic_a),
        attr_i("exclude_outside", r.exclude_outside as i64),
        attr_f("extrapolation_value", r.extrapolation),
        attr_i("antialias", r.antialias as i64),
    ];
    if !r.axes.is_empty() {
        at.push(attr_is("axes", &r.axes));
    }
    at.push(attr_s("keep_aspect_ratio_policy", policy));
    at
}

/// ONNX op type and attributes of a QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear.
fn quant_form(op: &Op, ins: &[Option<ValueRef>]) -> Form {
    let mut at = vec![];
    let op_type = match op {
        Op::QuantizeLinear { q, dtype } => {
            at.push(attr_i("axis", q.axis));
            if q.block_size > 0 {
                at.push(attr_i("block_size", q.block_size as i64));
            }
            if ins.get(2).copied().flatten().is_none() {
                at.push(attr_i("output_dtype", dtype_to_onnx(*dtype) as i64));
            }
            "QuantizeLinear"
        }
        Op::DequantizeLinear { q } => {
            at.push(attr_i("axis", q.axis));
            if q.block_size > 0 {
                at.push(attr_i("block_size", q.block_size as i64));
            }
            "DequantizeLinear"
        }
        Op::DynamicQuantizeLinear => "DynamicQuantizeLinear",
        _ => unreachable!("quant_form is called for the ONNX quantization ops only"),
    };
    (op_type, at)
}

/// The `reduction` attribute of the scatters; absent when it is the default `none`, so that
/// the node also loads at opsets before 16.
fn reduction_attr(r: ScatterReduction) -> Option<AttributeProto> {
    let word = match r {
        ScatterReduction::None => return None,
        ScatterReduction::Add => "add",
        ScatterReduction::Mul => "mul",
        ScatterReduction::Max => "max",
        ScatterReduction::Min => "min",
    };
    Some(attr_s("reduction", word))
}
