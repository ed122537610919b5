//! lpc `Graph` → ONNX ModelProto (opset 21), with every FakeQuantize written as a
//! QuantizeLinear/DequantizeLinear pair (constant weights as i8 initializers + DequantizeLinear,
//! per-axis when the ranges are per channel): the QDQ form ONNX Runtime and OpenVINO load.

use crate::proto::{
    self, AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto,
};
use crate::tensor::{dtype_to_onnx, tensor_to_proto};
use lpc_ir::*;
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The default-domain opset the exporter writes.
pub const OPSET: i64 = 21;

/// Why a graph cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A node has no ONNX equivalent at the exported opset.
    #[error("node '{node}' ({op}): {msg}")]
    Node {
        /// Node name.
        node: String,
        /// lpc op name.
        op: &'static str,
        /// Why.
        msg: String,
    },
    /// The graph is malformed.
    #[error("{0}")]
    Graph(String),
    /// Writing the file failed.
    #[error("{path}: {msg}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        msg: String,
    },
}

fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(2),
        i: Some(v),
        ..Default::default()
    }
}
fn attr_f(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(1),
        f: Some(v),
        ..Default::default()
    }
}
fn attr_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(3),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}
fn attr_is(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(7),
        ints: v.to_vec(),
        ..Default::default()
    }
}
fn attr_t(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(4),
        t: Some(t),
        ..Default::default()
    }
}
fn us(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&x| x as i64).collect()
}

fn auto_pad(p: AutoPad) -> &'static str {
    match p {
        AutoPad::NotSet => "NOTSET",
        AutoPad::SameUpper => "SAME_UPPER",
        AutoPad::SameLower => "SAME_LOWER",
        AutoPad::Valid => "VALID",
    }
}

fn conv_attrs(a: &ConvAttrs) -> Vec<AttributeProto> {
    let mut v = vec![
        attr_i("group", a.group as i64),
        attr_s("auto_pad", auto_pad(a.auto_pad)),
    ];
    for (k, x) in [
        ("kernel_shape", &a.kernel),
        ("strides", &a.strides),
        ("pads", &a.pads),
        ("dilations", &a.dilations),
    ] {
        if !x.is_empty() {
            v.push(attr_is(k, &us(x)));
        }
    }
    v
}

fn pool_attrs(a: &PoolAttrs) -> Vec<AttributeProto> {
    let mut v = vec![
        attr_i("ceil_mode", a.ceil_mode as i64),
        attr_s("auto_pad", auto_pad(a.auto_pad)),
    ];
    for (k, x) in [
        ("kernel_shape", &a.kernel),
        ("strides", &a.strides),
        ("pads", &a.pads),
        ("dilations", &a.dilations),
    ] {
        if !x.is_empty() {
            v.push(attr_is(k, &us(x)));
        }
    }
    v
}

fn value_info(name: &str, ty: &ValueType) -> ValueInfoProto {
    use proto::tensor_shape_proto::{dimension, Dimension};
    let shape = ty.shape.as_ref().map(|s| proto::TensorShapeProto {
        dim: s
            .0
            .iter()
            .map(|d| Dimension {
                value: Some(match d {
                    Dim::Known(k) => dimension::Value::DimValue(*k as i64),
                    Dim::Sym(s) => dimension::Value::DimParam(s.clone()),
                }),
                ..Default::default()
            })
            .collect(),
    });
    let tt = proto::type_proto::Tensor {
        elem_type: ty.dtype.map(dtype_to_onnx),
        shape,
    };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(proto::TypeProto {
            value: Some(proto::type_proto::Value::TensorType(tt)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

struct Exporter<'g> {
    g: &'g Graph,
    names: HashMap<ValueRef, String>,
    used: HashSet<String>,
    emitted: HashSet<ValueRef>,
    out: GraphProto,
}

impl<'g> Exporter<'g> {
    fn fresh(&mut self, base: &str) -> String {
        let mut n = base.to_string();
        let mut k = 1;
        while !self.used.insert(n.clone()) {
            n = format!("{base}_{k}");
            k += 1;
        }
        n
    }

    fn init(&mut self, base: &str, t: &Tensor) -> String {
        let name = self.fresh(base);
        self.out.initializer.push(tensor_to_proto(&name, t));
        name
    }

    /// The ONNX name of a value; constants become initializers on first use.
    fn name(&mut self, v: ValueRef) -> String {
        let n = self.names[&v].clone();
        if let Some(t) = self.g.const_value(v) {
            if self.emitted.insert(v) {
                self.out.initializer.push(tensor_to_proto(&n, t));
            }
        }
        n
    }

    fn push(
        &mut self,
        name: &str,
        op_type: &str,
        inputs: Vec<String>,
        outputs: Vec<String>,
        attribute: Vec<AttributeProto>,
    ) {
        self.out.node.push(NodeProto {
            input: inputs,
            output: outputs,
            name: Some(name.into()),
            op_type: Some(op_type.into()),
            attribute,
            ..Default::default()
        });
    }

    fn err(&self, n: NodeId, msg: impl Into<String>) -> ExportError {
        let node = self.g.node(n);
        ExportError::Node {
            node: node.name.clone(),
            op: node.op.name(),
            msg: msg.into(),
        }
    }

    /// FakeQuantize → QuantizeLinear + DequantizeLinear (or an i8 initializer + DequantizeLinear
    /// for constant inputs).
    fn fake_quantize(
        &mut self,
        n: NodeId,
        levels: u32,
        ins: &[Option<ValueRef>],
        out: String,
    ) -> Result<(), ExportError> {
        let g = self.g;
        let get = |k: usize| -> Result<std::sync::Arc<Tensor>, ExportError> {
            ins.get(k)
                .copied()
                .flatten()
                .and_then(|v| g.const_value(v).cloned())
                .ok_or_else(|| {
                    self.err(n, "FakeQuantize ranges must be constants to export as QDQ")
                })
        };
        let (il, ih, ol, oh) = (get(1)?, get(2)?, get(3)?, get(4)?);
        let (ilv, ihv) = (il.to_f32_vec(), ih.to_f32_vec());
        if ilv != ol.to_f32_vec() || ihv != oh.to_f32_vec() || il.shape() != ih.shape() {
            return Err(self.err(n, "input and output ranges differ; not expressible as QDQ"));
        }
        if levels != 255 && levels != 256 {
            return Err(self.err(
                n,
                format!("levels {levels}: only 255 and 256 map to 8-bit QDQ"),
            ));
        }
        let x = ins[0].ok_or_else(|| self.err(n, "missing input"))?;
        let steps = (levels - 1) as f32;
        // Per-channel axis: the single non-1 dim of the range tensors (when not per-tensor).
        let per_axis: Option<usize> = if ilv.len() > 1 {
            let dims: Vec<usize> = il
                .shape()
                .iter()
                .enumerate()
                .filter(|(_, &d)| d > 1)
                .map(|(i, _)| i)
                .collect();
            if dims.len() != 1 {
                return Err(self.err(
                    n,
                    format!(
                        "range shape {:?} is neither per-tensor nor per-axis",
                        il.shape()
                    ),
                ));
            }
            let rank = g
                .const_value(x)
                .map(|t| t.rank())
                .or_else(|| g.value_type(x).shape.as_ref().map(|s| s.rank()));
            let off = rank.unwrap_or(il.rank()).saturating_sub(il.rank());
            Some(dims[0] + off)
        } else {
            None
        };
        let mut scales = vec![];
        let mut zps_u = vec![];
        for (&lo, &hi) in ilv.iter().zip(&ihv) {
            if !(hi > lo) {
                return Err(self.err(n, format!("empty or inverted range [{lo}, {hi}]")));
            }
            let s = (hi - lo) / steps;
            let z = -lo / s;
            if (z - z.round()).abs() > 1e-3 || z.round() < 0.0 || z.round() > steps {
                return Err(self.err(
                    n,
                    format!("zero point {z} of range [{lo}, {hi}] is not an integer level"),
                ));
            }
            scales.push(s);
            zps_u.push(z.round() as i32);
        }
        // Stored type (the values are the same either way: an i8 code is the u8 level minus the
        // offset). Weights (levels 255, narrow) are i8. Per-tensor activations are u8: OpenVINO
        // 2026.4 computed garbage from an i8 activation quantizer in ppocr det (the FPN Concat
        // feeding the head conv; symmetric or not, SQNR vs FP32 0 dB), the same values as u8
        // ran right. Per-axis activations are u8 only when every range starts at 0: ONNX
        // Runtime 1.32 fuses a u8 per-axis QuantizeLinear after a Conv into a QLinearConv,
        // which then fails ("result zero point must be a scalar").
        let offset = if levels == 255 { 127 } else { 128 };
        let constant = g.const_value(x).is_some();
        let signed =
            levels == 255 || ((constant || per_axis.is_some()) && zps_u.iter().any(|&z| z != 0));
        let zp_t = if signed {
            Tensor::from_i8(
                &[zps_u.len()],
                zps_u.iter().map(|&z| (z - offset) as i8).collect(),
            )
        } else {
            Tensor::from_u8(&[zps_u.len()], zps_u.iter().map(|&z| z as u8).collect())
        }
        .map_err(|e| self.err(n, e.to_string()))?;
        let (scale_t, zp_t) = match per_axis {
            Some(_) => (
                Tensor::from_f32(&[scales.len()], scales.clone())
                    .map_err(|e| self.err(n, e.to_string()))?,
                zp_t,
            ),
            None => (
                Tensor::scalar_f32(scales[0]),
                zp_t.reshape(&[]).map_err(|e| self.err(n, e.to_string()))?,
            ),
        };
        let base = out.clone();
        let scale = self.init(&format!("{base}_scale"), &scale_t);
        let zp = self.init(&format!("{base}_zero_point"), &zp_t);
        let axis_attr = per_axis
            .map(|a| vec![attr_i("axis", a as i64)])
            .unwrap_or_default();
        if let Some(w) = g.const_value(x) {
            // Constant: quantize now.
            let wv = w
                .as_f32()
                .map_err(|_| self.err(n, "constant input must be f32"))?;
            let c = ilv.len();
            let inner: usize = match per_axis {
                Some(a) => w.shape()[a + 1..].iter().product(),
                None => 1,
            };
            let q: Vec<i32> = wv
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let ch = if c == 1 { 0 } else { (i / inner.max(1)) % c };
                    let (lo, hi) = (ilv[ch], ihv[ch]);
                    let k = if v <= lo {
                        0.0
                    } else if v > hi {
                        steps
                    } else {
                        ((v - lo) / (hi - lo) * steps).round_ties_even()
                    };
                    k as i32
                })
                .collect();
            let qt = if signed {
                Tensor::from_i8(w.shape(), q.iter().map(|&k| (k - offset) as i8).collect())
            } else {
                Tensor::from_u8(w.shape(), q.iter().map(|&k| k as u8).collect())
            }
            .map_err(|e| self.err(n, e.to_string()))?;
            let qn = self.init(&format!("{base}_quantized"), &qt);
            self.push(
                &format!("{base}_DequantizeLinear"),
                "DequantizeLinear",
                vec![qn, scale, zp],
                vec![out],
                axis_attr,
            );
        } else {
            if levels != 256 {
                return Err(self.err(n, "activation quantizers need 256 levels to export as QDQ"));
            }
            let xn = self.name(x);
            let qn = self.fresh(&format!("{base}_quantized"));
            self.push(
                &format!("{base}_QuantizeLinear"),
                "QuantizeLinear",
                vec![xn, scale.clone(), zp.clone()],
                vec![qn.clone()],
                axis_attr.clone(),
            );
            self.push(
                &format!("{base}_DequantizeLinear"),
                "DequantizeLinear",
                vec![qn, scale, zp],
                vec![out],
                axis_attr,
            );
        }
        Ok(())
    }

    fn node(&mut self, n: NodeId) -> Result<(), ExportError> {
        let g = self.g;
        let node = g.node(n);
        let ins = g.node_inputs(n);
        let outs: Vec<String> = (0..node.outputs.len())
            .map(|k| self.names[&ValueRef { node: n, output: k }].clone())
            .collect();
        let op_type: &str;
        let mut at: Vec<AttributeProto> = vec![];
        match &node.op {
            Op::Input { .. } | Op::Const(_) => return Ok(()),
            Op::FakeQuantize { levels } => {
                return self.fake_quantize(n, *levels, &ins, outs[0].clone())
            }
            Op::Unary(u) => {
                op_type = match u {
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
                }
            }
            Op::Binary(b) => {
                op_type = match b {
                    BinaryOp::Add => "Add",
                    BinaryOp::Sub => "Sub",
                    BinaryOp::Mul => "Mul",
                    BinaryOp::Div => "Div",
                    BinaryOp::Pow => "Pow",
                    BinaryOp::Max => "Max",
                    BinaryOp::Min => "Min",
                    BinaryOp::Equal => "Equal",
                    BinaryOp::PRelu => "PRelu",
                }
            }
            Op::Clip => op_type = "Clip",
            Op::Where => op_type = "Where",
            Op::Conv(a) => {
                op_type = "Conv";
                at = conv_attrs(a);
            }
            Op::ConvTranspose {
                conv,
                output_padding,
                output_shape,
            } => {
                op_type = "ConvTranspose";
                at = conv_attrs(conv);
                if !output_padding.is_empty() {
                    at.push(attr_is("output_padding", &us(output_padding)));
                }
                if !output_shape.is_empty() {
                    at.push(attr_is("output_shape", &us(output_shape)));
                }
            }
            Op::ConvInteger(a) => {
                op_type = "ConvInteger";
                at = conv_attrs(a);
            }
            Op::QLinearConv(a) => {
                op_type = "QLinearConv";
                at = conv_attrs(a);
            }
            Op::MatMul => op_type = "MatMul",
            Op::MatMulInteger => op_type = "MatMulInteger",
            Op::QLinearMatMul => op_type = "QLinearMatMul",
            Op::Gemm {
                alpha,
                beta,
                trans_a,
                trans_b,
            } => {
                op_type = "Gemm";
                at = vec![
                    attr_f("alpha", *alpha),
                    attr_f("beta", *beta),
                    attr_i("transA", *trans_a as i64),
                    attr_i("transB", *trans_b as i64),
                ];
            }
            Op::MaxPool {
                pool,
                storage_order,
            } => {
                op_type = "MaxPool";
                at = pool_attrs(pool);
                at.push(attr_i("storage_order", *storage_order));
            }
            Op::AveragePool {
                pool,
                count_include_pad,
            } => {
                op_type = "AveragePool";
                at = pool_attrs(pool);
                at.push(attr_i("count_include_pad", *count_include_pad as i64));
            }
            Op::GlobalAveragePool => op_type = "GlobalAveragePool",
            Op::GlobalMaxPool => op_type = "GlobalMaxPool",
            Op::BatchNorm {
                epsilon,
                training,
                momentum,
            } => {
                op_type = "BatchNormalization";
                at = vec![
                    attr_f("epsilon", *epsilon),
                    attr_f("momentum", *momentum),
                    attr_i("training_mode", *training as i64),
                ];
            }
            Op::LayerNorm { axis, epsilon } => {
                op_type = "LayerNormalization";
                at = vec![attr_i("axis", *axis), attr_f("epsilon", *epsilon)];
            }
            Op::Softmax { axis, coerce_2d } | Op::LogSoftmax { axis, coerce_2d } => {
                op_type = if matches!(node.op, Op::Softmax { .. }) {
                    "Softmax"
                } else {
                    "LogSoftmax"
                };
                let rank =
                    ins[0].and_then(|v| g.value_type(v).shape.as_ref().map(|s| s.rank() as i64));
                let last = rank.is_some_and(|r| *axis == -1 || *axis == r - 1);
                if *coerce_2d && !last {
                    // Before opset 13 the op normalized over all dims from `axis` on, as one
                    // row per leading index: Flatten(axis) → op over the last axis → Reshape
                    // back to the input's shape.
                    let x = ins[0].ok_or_else(|| self.err(n, "missing input"))?;
                    let (x, name) = (self.name(x), node.name.clone());
                    let shape = self.fresh(&format!("{}_shape", outs[0]));
                    let flat = self.fresh(&format!("{}_2d", outs[0]));
                    let soft = self.fresh(&format!("{}_2d_out", outs[0]));
                    let (flatten, reshape) = (format!("{name}_flatten"), format!("{name}_reshape"));
                    let shape_of = format!("{name}_shape");
                    self.push(&shape_of, "Shape", vec![x.clone()], vec![shape.clone()], vec![]);
                    let from_axis = vec![attr_i("axis", *axis)];
                    self.push(&flatten, "Flatten", vec![x], vec![flat.clone()], from_axis);
                    let last_axis = vec![attr_i("axis", -1)];
                    self.push(&name, op_type, vec![flat], vec![soft.clone()], last_axis);
                    self.push(&reshape, "Reshape", vec![soft, shape], outs, vec![]);
                    return Ok(());
                }
                at.push(attr_i("axis", *axis));
            }
            Op::Reduce {
                op,
                keepdims,
                noop_with_empty_axes,
            } => {
                op_type = match op {
                    ReduceOp::Max => "ReduceMax",
                    ReduceOp::Mean => "ReduceMean",
                    ReduceOp::Sum => "ReduceSum",
                };
                at = vec![
                    attr_i("keepdims", *keepdims as i64),
                    attr_i("noop_with_empty_axes", *noop_with_empty_axes as i64),
                ];
            }
            Op::Concat { axis } => {
                op_type = "Concat";
                at.push(attr_i("axis", *axis));
            }
            Op::Split { axis, num_outputs } => {
                op_type = "Split";
                at.push(attr_i("axis", *axis));
                if ins.get(1).copied().flatten().is_none() {
                    at.push(attr_i("num_outputs", *num_outputs as i64));
                }
            }
            Op::Flatten { axis } => {
                op_type = "Flatten";
                at.push(attr_i("axis", *axis));
            }
            Op::Reshape { allowzero } => {
                op_type = "Reshape";
                at.push(attr_i("allowzero", *allowzero as i64));
            }
            Op::Squeeze => op_type = "Squeeze",
            Op::Unsqueeze => op_type = "Unsqueeze",
            Op::Transpose { perm } => {
                op_type = "Transpose";
                if !perm.is_empty() {
                    at.push(attr_is("perm", &us(perm)));
                }
            }
            Op::Expand => op_type = "Expand",
            Op::Gather { axis } => {
                op_type = "Gather";
                at.push(attr_i("axis", *axis));
            }
            Op::ShapeOf { start, end } => {
                op_type = "Shape";
                at.push(attr_i("start", *start));
                if let Some(e) = end {
                    at.push(attr_i("end", *e));
                }
            }
            Op::Slice => op_type = "Slice",
            Op::Pad { mode } => {
                op_type = "Pad";
                at.push(attr_s(
                    "mode",
                    match mode {
                        PadMode::Constant => "constant",
                        PadMode::Reflect => "reflect",
                        PadMode::Edge => "edge",
                        PadMode::Wrap => "wrap",
                    },
                ));
            }
            Op::Resize(r) => {
                op_type = "Resize";
                at.push(attr_s(
                    "mode",
                    match r.mode {
                        ResizeMode::Nearest => "nearest",
                        ResizeMode::Linear => "linear",
                        ResizeMode::Cubic => "cubic",
                    },
                ));
                at.push(attr_s(
                    "coordinate_transformation_mode",
                    match r.coord {
                        CoordTransform::HalfPixel => "half_pixel",
                        CoordTransform::HalfPixelSymmetric => "half_pixel_symmetric",
                        CoordTransform::PytorchHalfPixel => "pytorch_half_pixel",
                        CoordTransform::AlignCorners => "align_corners",
                        CoordTransform::Asymmetric => "asymmetric",
                        CoordTransform::TfCropAndResize => "tf_crop_and_resize",
                    },
                ));
                at.push(attr_s(
                    "nearest_mode",
                    match r.nearest {
                        NearestMode::RoundPreferFloor => "round_prefer_floor",
                        NearestMode::RoundPreferCeil => "round_prefer_ceil",
                        NearestMode::Floor => "floor",
                        NearestMode::Ceil => "ceil",
                    },
                ));
                at.push(attr_f("cubic_coeff_a", r.cubic_a));
                at.push(attr_i("exclude_outside", r.exclude_outside as i64));
                at.push(attr_f("extrapolation_value", r.extrapolation));
                at.push(attr_i("antialias", r.antialias as i64));
                if !r.axes.is_empty() {
                    at.push(attr_is("axes", &r.axes));
                }
                at.push(attr_s(
                    "keep_aspect_ratio_policy",
                    match r.policy {
                        AspectPolicy::Stretch => "stretch",
                        AspectPolicy::NotLarger => "not_larger",
                        AspectPolicy::NotSmaller => "not_smaller",
                    },
                ));
            }
            Op::Range => op_type = "Range",
            Op::ConstantOfShape { value } => {
                op_type = "ConstantOfShape";
                at.push(attr_t("value", tensor_to_proto("value", value)));
            }
            Op::QuantizeLinear { q, dtype } => {
                op_type = "QuantizeLinear";
                at.push(attr_i("axis", q.axis));
                if q.block_size > 0 {
                    at.push(attr_i("block_size", q.block_size as i64));
                }
                if ins.get(2).copied().flatten().is_none() {
                    at.push(attr_i("output_dtype", dtype_to_onnx(*dtype) as i64));
                }
            }
            Op::DequantizeLinear { q } => {
                op_type = "DequantizeLinear";
                at.push(attr_i("axis", q.axis));
                if q.block_size > 0 {
                    at.push(attr_i("block_size", q.block_size as i64));
                }
            }
            Op::DynamicQuantizeLinear => op_type = "DynamicQuantizeLinear",
            Op::QConv(_) | Op::QMatMul | Op::Requantize | Op::QAdd | Op::Lut => {
                return Err(self.err(
                    n,
                    format!("'{}' is an lpc fused integer op with no ONNX form; export the graph before folding", node.op.name()),
                ))
            }
        }
        let present = ins.iter().rposition(Option::is_some).map_or(0, |p| p + 1);
        let mut inputs = vec![];
        for v in &ins[..present] {
            inputs.push(match v {
                Some(v) => self.name(*v),
                None => String::new(),
            });
        }
        // A bias on the accumulator grid goes out as i32 + DequantizeLinear (the form ONNX
        // Runtime fuses into QLinearConv, and exact: otherwise ORT re-rounds a float bias).
        if present == 3 {
            if let Some((q, scales)) = integer_bias(g, n) {
                let len = q.len();
                let base = format!("{}_bias", node.name);
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
                    &Tensor::from_i32(&[len], vec![0; len])
                        .map_err(|e| self.err(n, e.to_string()))?,
                );
                let out = self.fresh(&format!("{base}_dequantized"));
                self.push(
                    &format!("{base}_DequantizeLinear"),
                    "DequantizeLinear",
                    vec![qn, sn, zn],
                    vec![out.clone()],
                    vec![attr_i("axis", 0)],
                );
                inputs[2] = out;
            }
        }
        self.push(&node.name, op_type, inputs, outs, at);
        Ok(())
    }
}

/// Scales of a FakeQuantize output with constant ranges (`il == ol`, `ih == oh`):
/// `(hi − lo)/(levels − 1)` per range element, the QDQ scale the export writes. `None` when the
/// value is not such a FakeQuantize output.
fn fq_scales(g: &Graph, v: ValueRef) -> Option<Vec<f32>> {
    let Op::FakeQuantize { levels } = g.node(v.node).op else {
        return None;
    };
    let ins = g.node_inputs(v.node);
    let c = |k: usize| ins.get(k).copied().flatten().and_then(|v| g.const_value(v));
    let (il, ih, ol, oh) = (c(1)?, c(2)?, c(3)?, c(4)?);
    let (lo, hi) = (il.to_f32_vec(), ih.to_f32_vec());
    if lo != ol.to_f32_vec() || hi != oh.to_f32_vec() || levels < 2 {
        return None;
    }
    let steps = (levels - 1) as f32;
    Some(lo.iter().zip(&hi).map(|(&l, &h)| (h - l) / steps).collect())
}

/// The scale of one accumulator unit per output channel, `s_x · s_w`, of a Conv,
/// ConvTranspose (group 1) or Gemm (alpha = beta = 1, B constant) whose activation input and
/// constant weights are both FakeQuantize outputs with constant ranges (per-tensor, or
/// per-output-channel weights; per-channel activations only for a Conv whose groups each read
/// one input channel). An integer runtime adds the bias in these units, so a bias that is an
/// integer multiple of them is exact in both the FakeQuantize graph and its QDQ export
/// (`lpc quantize` rounds biases onto this grid; the export writes them as i32 +
/// DequantizeLinear). `None` when the layer is not of that form.
pub fn accumulator_scales(g: &Graph, n: NodeId) -> Option<Vec<f32>> {
    let ins = g.node_inputs(n);
    let (x, w) = (
        ins.first().copied().flatten()?,
        ins.get(1).copied().flatten()?,
    );
    let wq = g.node_inputs(w.node).first().copied().flatten()?;
    let wt = g.const_value(wq)?;
    let (sx, sw) = (fq_scales(g, x)?, fq_scales(g, w)?);
    let shape = wt.shape();
    let (m, group) = match &g.node(n).op {
        Op::Conv(a) => (*shape.first()?, a.group.max(1)),
        Op::ConvTranspose { conv, .. } if conv.group <= 1 => (*shape.get(1)?, 1),
        Op::Gemm {
            alpha,
            beta,
            trans_a: false,
            trans_b,
        } if *alpha == 1.0 && *beta == 1.0 && shape.len() == 2 => {
            (if *trans_b { shape[0] } else { shape[1] }, 1)
        }
        _ => return None,
    };
    if m == 0 || (sw.len() != 1 && sw.len() != m) {
        return None;
    }
    // Input channel read by output channel o: one per group when the activation is per-channel.
    let per_group = m / group;
    if sx.len() != 1 && (sx.len() != group || per_group * group != m) {
        return None;
    }
    Some(
        (0..m)
            .map(|o| {
                let a = if sx.len() == 1 {
                    sx[0]
                } else {
                    sx[o / per_group]
                };
                let b = if sw.len() == 1 { sw[0] } else { sw[o] };
                a * b
            })
            .collect(),
    )
}

/// The bias of layer `n` as integers in its accumulator units ([`accumulator_scales`]) when
/// every element is exactly such a multiple (and fits i32): `(q, scales)`.
pub fn integer_bias(g: &Graph, n: NodeId) -> Option<(Vec<i32>, Vec<f32>)> {
    let s = accumulator_scales(g, n)?;
    let b = g.const_value(g.node_inputs(n).get(2).copied().flatten()?)?;
    if b.dtype() != DType::F32
        || b.len() != s.len()
        || b.rank() > 1 && b.shape()[..b.rank() - 1].iter().any(|&d| d != 1)
    {
        return None;
    }
    let bv = b.to_f32_vec();
    let mut q = Vec::with_capacity(bv.len());
    for (&v, &sc) in bv.iter().zip(&s) {
        let k = (v / sc).round_ties_even();
        if !(sc > 0.0) || !k.is_finite() || k.abs() >= 2147483648.0 || k * sc != v {
            return None;
        }
        q.push(k as i32);
    }
    Some((q, s))
}

/// Converts `g` to an ONNX model (opset 21); FakeQuantize nodes become QDQ pairs.
pub fn export(g: &Graph) -> Result<ModelProto, ExportError> {
    let order = g
        .topo_order()
        .map_err(|e| ExportError::Graph(e.to_string()))?;
    let mut ex = Exporter {
        g,
        names: HashMap::new(),
        used: HashSet::new(),
        emitted: HashSet::new(),
        out: GraphProto::default(),
    };
    ex.out.name = Some(if g.name.is_empty() {
        "lpc".into()
    } else {
        g.name.clone()
    });
    // Graph inputs and outputs keep their names; other values are made unique.
    for &n in g.inputs() {
        let v = ValueRef::first(n);
        let name = ex.fresh(g.value_name(v));
        ex.names.insert(v, name);
    }
    for &n in &order {
        for k in 0..g.node(n).outputs.len() {
            let v = ValueRef { node: n, output: k };
            if !ex.names.contains_key(&v) {
                let name = ex.fresh(g.value_name(v));
                ex.names.insert(v, name);
            }
        }
    }
    for &n in g.inputs() {
        let v = ValueRef::first(n);
        ex.out
            .input
            .push(value_info(&ex.names[&v], g.value_type(v)));
    }
    for &n in &order {
        ex.node(n)?;
    }
    for &v in g.outputs() {
        if matches!(g.node(v.node).op, Op::Const(_) | Op::Input { .. }) {
            // ONNX outputs must be produced by a node: route through Identity.
            let src = ex.name(v);
            let name = ex.fresh(&format!("{src}_out"));
            ex.push(
                &format!("{name}_Identity"),
                "Identity",
                vec![src],
                vec![name.clone()],
                vec![],
            );
            ex.out.output.push(value_info(&name, g.value_type(v)));
        } else {
            ex.out
                .output
                .push(value_info(&ex.names[&v].clone(), g.value_type(v)));
        }
    }
    Ok(ModelProto {
        ir_version: Some(10),
        opset_import: vec![proto::OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        producer_name: Some("lpc".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(ex.out),
        ..Default::default()
    })
}

/// Serialized ONNX bytes of [`export`].
pub fn export_bytes(g: &Graph) -> Result<Vec<u8>, ExportError> {
    Ok(export(g)?.encode_to_vec())
}

/// Writes the QDQ ONNX model of `g` to `path`.
pub fn write_qdq(g: &Graph, path: &Path) -> Result<(), ExportError> {
    let bytes = export_bytes(g)?;
    std::fs::write(path, bytes).map_err(|e| ExportError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tensor_proto::DataType;

    /// Exports `y = FakeQuantize(x)` with ranges `lo`/`hi` (given as `.lir` constants) and
    /// returns the model and the zero point initializer of its QuantizeLinear.
    fn export_fq(
        shape: &str,
        range_ty: &str,
        lo: &str,
        hi: &str,
    ) -> (Graph, ModelProto, TensorProto) {
        let text = format!(
            "graph @t(%x: f32{shape}) -> (%y) {{\n  %lo = const f32{range_ty} [{lo}]\n  \
             %hi = const f32{range_ty} [{hi}]\n  \
             %y = fake_quantize(%x, %lo, %hi, %lo, %hi) {{levels=256}} : f32{shape}\n  return %y\n}}\n"
        );
        let mut g = lpc_ir::text::parse(&text).unwrap();
        lpc_ir::infer_types(&mut g).unwrap();
        let m = export(&g).unwrap();
        let gr = m.graph.as_ref().unwrap();
        let q = gr
            .node
            .iter()
            .find(|n| n.op_type.as_deref() == Some("QuantizeLinear"))
            .unwrap();
        let zp = gr
            .initializer
            .iter()
            .find(|t| t.name.as_deref() == Some(q.input[2].as_str()))
            .unwrap()
            .clone();
        (g, m, zp)
    }

    /// The QDQ export computes what the FakeQuantize graph computes (lpc-ref, both forms).
    fn same_values(g: &Graph, m: &ModelProto, n: usize) {
        let back = crate::import_bytes(&m.encode_to_vec(), None).unwrap();
        let xs: Vec<f32> = (0..n).map(|i| -2.0 + 4.0 * i as f32 / n as f32).collect();
        let shape = [1, n];
        let x = Tensor::from_f32(&shape, xs).unwrap();
        let a = lpc_ref::run(g, std::slice::from_ref(&x)).unwrap()[0].to_f32_vec();
        let b = lpc_ref::run(&back, &[x]).unwrap()[0].to_f32_vec();
        // Both forms round half-way values to even, of `(x−lo)/s` and of `x/s`, and compute
        // the output as `q/255·(hi−lo)+lo` and `(q−zp)·s`: an ulp apart, and a step apart
        // where `x` lies within an ulp of a half-way value.
        let far: Vec<usize> = (0..n).filter(|&i| (a[i] - b[i]).abs() > 1e-5).collect();
        let close = a.iter().zip(&b).all(|(p, q)| (p - q).abs() <= 0.0118);
        assert!(close && far.len() * 100 <= n, "{far:?}");
    }

    #[test]
    fn asymmetric_per_tensor_activations_are_u8() {
        // s = 3/255, zero point 85: stored as u8 85 (as i8 −43, OpenVINO miscomputed it).
        let (g, m, zp) = export_fq("[1,1000]", "[]", "-1.0", "2.0");
        assert_eq!(zp.data_type, Some(DataType::Uint8 as i32));
        assert_eq!(zp.raw_data.as_deref(), Some(&[85u8][..]));
        same_values(&g, &m, 1000);
    }

    #[test]
    fn symmetric_per_tensor_activations_are_u8_too() {
        let (g, m, zp) = export_fq("[1,1000]", "[]", "-1.28", "1.27");
        assert_eq!(zp.data_type, Some(DataType::Uint8 as i32));
        assert_eq!(zp.raw_data.as_deref(), Some(&[128u8][..]));
        same_values(&g, &m, 1000);
    }

    #[test]
    fn activations_from_zero_are_u8() {
        let (_, _, zp) = export_fq("[1,1000]", "[]", "0.0", "2.55");
        assert_eq!(zp.data_type, Some(DataType::Uint8 as i32));
        assert_eq!(zp.raw_data.as_deref(), Some(&[0u8][..]));
    }

    /// Opset-9 Softmax over axis 1 of a rank-3 input normalizes each sample's 2×3 values
    /// together; the export (opset 21) spells that out and computes the same values.
    #[test]
    fn coerced_softmax_exports_as_flatten_softmax_reshape() {
        let text = "graph @t(%x: f32[2,2,3]) -> (%y) {\n  \
                    %y = softmax(%x) {axis=1, coerce_2d=true} : f32[2,2,3]\n  return %y\n}\n";
        let mut g = lpc_ir::text::parse(text).unwrap();
        lpc_ir::infer_types(&mut g).unwrap();
        let m = export(&g).unwrap();
        let ops: Vec<_> = m
            .graph
            .as_ref()
            .unwrap()
            .node
            .iter()
            .map(|n| n.op_type.clone().unwrap())
            .collect();
        assert_eq!(ops, ["Shape", "Flatten", "Softmax", "Reshape"]);
        let back = crate::import_bytes(&m.encode_to_vec(), None).unwrap();
        let xs: Vec<f32> = (0..12).map(|i| (i as f32 * 0.7).sin()).collect();
        let x = Tensor::from_f32(&[2, 2, 3], xs).unwrap();
        let a = lpc_ref::run(&g, std::slice::from_ref(&x)).unwrap()[0].to_f32_vec();
        let b = lpc_ref::run(&back, &[x]).unwrap()[0].to_f32_vec();
        assert_eq!(a, b);
        let row: f32 = a[..6].iter().sum();
        assert!((row - 1.0).abs() < 1e-6, "{row}");
    }

    #[test]
    fn asymmetric_per_axis_activations_stay_i8() {
        // ONNX Runtime cannot run a u8 per-axis QuantizeLinear that it fuses into QLinearConv.
        let (_, _, zp) = export_fq("[1,2,4,4]", "[1,2,1,1]", "-1.0, 0.0", "2.0, 2.55");
        assert_eq!(zp.data_type, Some(DataType::Int8 as i32));
        assert_eq!(
            zp.raw_data.as_deref(),
            Some(&[(85 - 128) as i8 as u8, -128i8 as u8][..])
        );
    }
}
