//! Every `Op` as a name plus a list of attributes, and back: the one place that knows how
//! each variant's fields appear in `.lir` text.

use crate::*;
use std::sync::Arc;

/// An attribute value in `.lir` text.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// Integer.
    Int(i64),
    /// Float (printed shortest-round-trip).
    Float(f32),
    /// Boolean.
    Bool(bool),
    /// Integer list.
    Ints(Vec<i64>),
    /// Identifier (enum value or dtype).
    Ident(String),
    /// Inline tensor.
    Tensor(Tensor),
}

fn us(v: &[usize]) -> Attr {
    Attr::Ints(v.iter().map(|&x| x as i64).collect())
}

fn conv_attrs(a: &ConvAttrs, out: &mut Vec<(&'static str, Attr)>) {
    out.push(("kernel", us(&a.kernel)));
    out.push(("strides", us(&a.strides)));
    out.push(("pads", us(&a.pads)));
    out.push(("dilations", us(&a.dilations)));
    out.push(("group", Attr::Int(a.group as i64)));
    out.push(("auto_pad", Attr::Ident(auto_pad_name(a.auto_pad).into())));
}

fn pool_attrs(a: &PoolAttrs, out: &mut Vec<(&'static str, Attr)>) {
    out.push(("kernel", us(&a.kernel)));
    out.push(("strides", us(&a.strides)));
    out.push(("pads", us(&a.pads)));
    out.push(("dilations", us(&a.dilations)));
    out.push(("ceil_mode", Attr::Bool(a.ceil_mode)));
    out.push(("auto_pad", Attr::Ident(auto_pad_name(a.auto_pad).into())));
}

fn auto_pad_name(a: AutoPad) -> &'static str {
    match a {
        AutoPad::NotSet => "notset",
        AutoPad::SameUpper => "same_upper",
        AutoPad::SameLower => "same_lower",
        AutoPad::Valid => "valid",
    }
}

const RESIZE_MODES: [(ResizeMode, &str); 3] =
    [(ResizeMode::Nearest, "nearest"), (ResizeMode::Linear, "linear"), (ResizeMode::Cubic, "cubic")];
const COORDS: [(CoordTransform, &str); 6] = [
    (CoordTransform::HalfPixel, "half_pixel"),
    (CoordTransform::HalfPixelSymmetric, "half_pixel_symmetric"),
    (CoordTransform::PytorchHalfPixel, "pytorch_half_pixel"),
    (CoordTransform::AlignCorners, "align_corners"),
    (CoordTransform::Asymmetric, "asymmetric"),
    (CoordTransform::TfCropAndResize, "tf_crop_and_resize"),
];
const NEAREST: [(NearestMode, &str); 4] = [
    (NearestMode::RoundPreferFloor, "round_prefer_floor"),
    (NearestMode::RoundPreferCeil, "round_prefer_ceil"),
    (NearestMode::Floor, "floor"),
    (NearestMode::Ceil, "ceil"),
];
const POLICIES: [(AspectPolicy, &str); 3] =
    [(AspectPolicy::Stretch, "stretch"), (AspectPolicy::NotLarger, "not_larger"), (AspectPolicy::NotSmaller, "not_smaller")];
const PAD_MODES: [(PadMode, &str); 4] =
    [(PadMode::Constant, "constant"), (PadMode::Reflect, "reflect"), (PadMode::Edge, "edge"), (PadMode::Wrap, "wrap")];
const AUTO_PADS: [(AutoPad, &str); 4] = [
    (AutoPad::NotSet, "notset"),
    (AutoPad::SameUpper, "same_upper"),
    (AutoPad::SameLower, "same_lower"),
    (AutoPad::Valid, "valid"),
];

fn name_of<T: PartialEq + Copy>(table: &[(T, &'static str)], v: T) -> &'static str {
    table.iter().find(|(t, _)| *t == v).map(|(_, n)| *n).expect("every value is in its table")
}

/// The attributes of an op, in a fixed order (Input and Const have none here).
pub fn op_attrs(op: &Op) -> Vec<(&'static str, Attr)> {
    let mut a = vec![];
    match op {
        Op::Input { index } => a.push(("index", Attr::Int(*index as i64))),
        Op::Const(_) => {}
        Op::Unary(u) => match u {
            UnaryOp::Elu { alpha } | UnaryOp::LeakyRelu { alpha } => a.push(("alpha", Attr::Float(*alpha))),
            UnaryOp::HardSigmoid { alpha, beta } => {
                a.push(("alpha", Attr::Float(*alpha)));
                a.push(("beta", Attr::Float(*beta)));
            }
            UnaryOp::Gelu { tanh } => a.push(("tanh", Attr::Bool(*tanh))),
            UnaryOp::Cast { to } => a.push(("to", Attr::Ident(to.name().into()))),
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
            | UnaryOp::HardSwish => {}
        },
        Op::Binary(_) | Op::Clip | Op::Where | Op::MatMul | Op::MatMulInteger | Op::QLinearMatMul => {}
        Op::GlobalAveragePool | Op::GlobalMaxPool | Op::Squeeze | Op::Unsqueeze | Op::Expand | Op::Slice => {}
        Op::Range | Op::DynamicQuantizeLinear => {}
        Op::Conv(c) | Op::ConvInteger(c) | Op::QLinearConv(c) => conv_attrs(c, &mut a),
        Op::ConvTranspose { conv, output_padding, output_shape } => {
            conv_attrs(conv, &mut a);
            a.push(("output_padding", us(output_padding)));
            a.push(("output_shape", us(output_shape)));
        }
        Op::Gemm { alpha, beta, trans_a, trans_b } => {
            a.push(("alpha", Attr::Float(*alpha)));
            a.push(("beta", Attr::Float(*beta)));
            a.push(("trans_a", Attr::Bool(*trans_a)));
            a.push(("trans_b", Attr::Bool(*trans_b)));
        }
        Op::MaxPool { pool, storage_order } => {
            pool_attrs(pool, &mut a);
            a.push(("storage_order", Attr::Int(*storage_order)));
        }
        Op::AveragePool { pool, count_include_pad } => {
            pool_attrs(pool, &mut a);
            a.push(("count_include_pad", Attr::Bool(*count_include_pad)));
        }
        Op::BatchNorm { epsilon, training, momentum } => {
            a.push(("epsilon", Attr::Float(*epsilon)));
            a.push(("training", Attr::Bool(*training)));
            a.push(("momentum", Attr::Float(*momentum)));
        }
        Op::LayerNorm { axis, epsilon } => {
            a.push(("axis", Attr::Int(*axis)));
            a.push(("epsilon", Attr::Float(*epsilon)));
        }
        Op::Softmax { axis, coerce_2d } | Op::LogSoftmax { axis, coerce_2d } => {
            a.push(("axis", Attr::Int(*axis)));
            a.push(("coerce_2d", Attr::Bool(*coerce_2d)));
        }
        Op::Reduce { op: _, keepdims, noop_with_empty_axes } => {
            a.push(("keepdims", Attr::Bool(*keepdims)));
            a.push(("noop_with_empty_axes", Attr::Bool(*noop_with_empty_axes)));
        }
        Op::Concat { axis } | Op::Flatten { axis } | Op::Gather { axis } => a.push(("axis", Attr::Int(*axis))),
        Op::Split { axis, num_outputs } => {
            a.push(("axis", Attr::Int(*axis)));
            a.push(("num_outputs", Attr::Int(*num_outputs as i64)));
        }
        Op::Reshape { allowzero } => a.push(("allowzero", Attr::Bool(*allowzero))),
        Op::Transpose { perm } => a.push(("perm", us(perm))),
        Op::ShapeOf { start, end } => {
            a.push(("start", Attr::Int(*start)));
            if let Some(e) = end {
                a.push(("end", Attr::Int(*e)));
            }
        }
        Op::Pad { mode } => a.push(("mode", Attr::Ident(name_of(&PAD_MODES, *mode).into()))),
        Op::Resize(r) => {
            a.push(("mode", Attr::Ident(name_of(&RESIZE_MODES, r.mode).into())));
            a.push(("coord", Attr::Ident(name_of(&COORDS, r.coord).into())));
            a.push(("nearest", Attr::Ident(name_of(&NEAREST, r.nearest).into())));
            a.push(("cubic_a", Attr::Float(r.cubic_a)));
            a.push(("exclude_outside", Attr::Bool(r.exclude_outside)));
            a.push(("extrapolation", Attr::Float(r.extrapolation)));
            a.push(("antialias", Attr::Bool(r.antialias)));
            a.push(("axes", Attr::Ints(r.axes.clone())));
            a.push(("policy", Attr::Ident(name_of(&POLICIES, r.policy).into())));
        }
        Op::ConstantOfShape { value } => a.push(("value", Attr::Tensor((**value).clone()))),
        Op::QuantizeLinear { q, dtype } => {
            a.push(("axis", Attr::Int(q.axis)));
            a.push(("block_size", Attr::Int(q.block_size as i64)));
            a.push(("dtype", Attr::Ident(dtype.name().into())));
        }
        Op::DequantizeLinear { q } => {
            a.push(("axis", Attr::Int(q.axis)));
            a.push(("block_size", Attr::Int(q.block_size as i64)));
        }
        Op::FakeQuantize { levels } => a.push(("levels", Attr::Int(*levels as i64))),
        Op::QConv(c) => conv_attrs(c, &mut a),
        Op::QMatMul | Op::Requantize | Op::QAdd | Op::Lut => {}
    }
    a
}

/// Attribute lookup for the parser: each key must be present exactly once and used.
pub struct AttrBag {
    items: Vec<(String, Attr)>,
    used: Vec<bool>,
}

impl AttrBag {
    /// Wraps parsed attributes.
    pub fn new(items: Vec<(String, Attr)>) -> AttrBag {
        let used = vec![false; items.len()];
        AttrBag { items, used }
    }
    fn take(&mut self, k: &str) -> Result<Attr, String> {
        let p = self.items.iter().position(|(n, _)| n == k).ok_or_else(|| format!("missing attribute '{k}'"))?;
        self.used[p] = true;
        Ok(self.items[p].1.clone())
    }
    fn has(&self, k: &str) -> bool {
        self.items.iter().any(|(n, _)| n == k)
    }
    fn int(&mut self, k: &str) -> Result<i64, String> {
        match self.take(k)? {
            Attr::Int(v) => Ok(v),
            o => Err(format!("attribute '{k}' must be an integer, got {o:?}")),
        }
    }
    fn uint(&mut self, k: &str) -> Result<usize, String> {
        let v = self.int(k)?;
        usize::try_from(v).map_err(|_| format!("attribute '{k}' must be non-negative"))
    }
    fn float(&mut self, k: &str) -> Result<f32, String> {
        match self.take(k)? {
            Attr::Float(v) => Ok(v),
            Attr::Int(v) => Ok(v as f32),
            o => Err(format!("attribute '{k}' must be a float, got {o:?}")),
        }
    }
    fn boolean(&mut self, k: &str) -> Result<bool, String> {
        match self.take(k)? {
            Attr::Bool(v) => Ok(v),
            o => Err(format!("attribute '{k}' must be true or false, got {o:?}")),
        }
    }
    fn ints(&mut self, k: &str) -> Result<Vec<i64>, String> {
        match self.take(k)? {
            Attr::Ints(v) => Ok(v),
            o => Err(format!("attribute '{k}' must be a list of integers, got {o:?}")),
        }
    }
    fn usizes(&mut self, k: &str) -> Result<Vec<usize>, String> {
        self.ints(k)?.into_iter().map(|v| usize::try_from(v).map_err(|_| format!("attribute '{k}' has a negative value"))).collect()
    }
    fn ident(&mut self, k: &str) -> Result<String, String> {
        match self.take(k)? {
            Attr::Ident(v) => Ok(v),
            o => Err(format!("attribute '{k}' must be a name, got {o:?}")),
        }
    }
    fn from_table<T: Copy>(&mut self, k: &str, table: &[(T, &str)]) -> Result<T, String> {
        let v = self.ident(k)?;
        table.iter().find(|(_, n)| *n == v).map(|(t, _)| *t).ok_or_else(|| format!("attribute '{k}': unknown value '{v}'"))
    }
    fn dtype(&mut self, k: &str) -> Result<DType, String> {
        let v = self.ident(k)?;
        DType::from_name(&v).ok_or_else(|| format!("attribute '{k}': unknown dtype '{v}'"))
    }
    fn conv(&mut self) -> Result<ConvAttrs, String> {
        Ok(ConvAttrs {
            kernel: self.usizes("kernel")?,
            strides: self.usizes("strides")?,
            pads: self.usizes("pads")?,
            dilations: self.usizes("dilations")?,
            group: self.uint("group")?,
            auto_pad: self.from_table("auto_pad", &AUTO_PADS)?,
        })
    }
    fn pool(&mut self) -> Result<PoolAttrs, String> {
        Ok(PoolAttrs {
            kernel: self.usizes("kernel")?,
            strides: self.usizes("strides")?,
            pads: self.usizes("pads")?,
            dilations: self.usizes("dilations")?,
            ceil_mode: self.boolean("ceil_mode")?,
            auto_pad: self.from_table("auto_pad", &AUTO_PADS)?,
        })
    }
    /// Errors if an attribute was given that the op does not have.
    pub fn finish(self) -> Result<(), String> {
        match self.items.iter().zip(&self.used).find(|(_, u)| !**u) {
            Some(((k, _), _)) => Err(format!("unknown attribute '{k}'")),
            None => Ok(()),
        }
    }
}

/// Builds an op from its text name and attributes.
pub fn op_from(name: &str, a: &mut AttrBag) -> Result<Op, String> {
    let u = |x: UnaryOp| Ok(Op::Unary(x));
    let b = |x: BinaryOp| Ok(Op::Binary(x));
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
        "elu" => u(UnaryOp::Elu { alpha: a.float("alpha")? }),
        "leaky_relu" => u(UnaryOp::LeakyRelu { alpha: a.float("alpha")? }),
        "hard_sigmoid" => u(UnaryOp::HardSigmoid { alpha: a.float("alpha")?, beta: a.float("beta")? }),
        "gelu" => u(UnaryOp::Gelu { tanh: a.boolean("tanh")? }),
        "cast" => u(UnaryOp::Cast { to: a.dtype("to")? }),
        "add" => b(BinaryOp::Add),
        "sub" => b(BinaryOp::Sub),
        "mul" => b(BinaryOp::Mul),
        "div" => b(BinaryOp::Div),
        "pow" => b(BinaryOp::Pow),
        "max" => b(BinaryOp::Max),
        "min" => b(BinaryOp::Min),
        "equal" => b(BinaryOp::Equal),
        "prelu" => b(BinaryOp::PRelu),
        "clip" => Ok(Op::Clip),
        "where" => Ok(Op::Where),
        "conv" => Ok(Op::Conv(a.conv()?)),
        "conv_integer" => Ok(Op::ConvInteger(a.conv()?)),
        "qlinear_conv" => Ok(Op::QLinearConv(a.conv()?)),
        "conv_transpose" => Ok(Op::ConvTranspose {
            conv: a.conv()?,
            output_padding: a.usizes("output_padding")?,
            output_shape: a.usizes("output_shape")?,
        }),
        "matmul" => Ok(Op::MatMul),
        "matmul_integer" => Ok(Op::MatMulInteger),
        "qlinear_matmul" => Ok(Op::QLinearMatMul),
        "gemm" => Ok(Op::Gemm {
            alpha: a.float("alpha")?,
            beta: a.float("beta")?,
            trans_a: a.boolean("trans_a")?,
            trans_b: a.boolean("trans_b")?,
        }),
        "max_pool" => Ok(Op::MaxPool { pool: a.pool()?, storage_order: a.int("storage_order")? }),
        "average_pool" => Ok(Op::AveragePool { pool: a.pool()?, count_include_pad: a.boolean("count_include_pad")? }),
        "global_average_pool" => Ok(Op::GlobalAveragePool),
        "global_max_pool" => Ok(Op::GlobalMaxPool),
        "batch_norm" => {
            Ok(Op::BatchNorm { epsilon: a.float("epsilon")?, training: a.boolean("training")?, momentum: a.float("momentum")? })
        }
        "layer_norm" => Ok(Op::LayerNorm { axis: a.int("axis")?, epsilon: a.float("epsilon")? }),
        "softmax" => Ok(Op::Softmax { axis: a.int("axis")?, coerce_2d: a.boolean("coerce_2d")? }),
        "log_softmax" => Ok(Op::LogSoftmax { axis: a.int("axis")?, coerce_2d: a.boolean("coerce_2d")? }),
        "reduce_max" | "reduce_mean" | "reduce_sum" => Ok(Op::Reduce {
            op: match name {
                "reduce_max" => ReduceOp::Max,
                "reduce_mean" => ReduceOp::Mean,
                _ => ReduceOp::Sum,
            },
            keepdims: a.boolean("keepdims")?,
            noop_with_empty_axes: a.boolean("noop_with_empty_axes")?,
        }),
        "concat" => Ok(Op::Concat { axis: a.int("axis")? }),
        "split" => Ok(Op::Split { axis: a.int("axis")?, num_outputs: a.uint("num_outputs")? }),
        "flatten" => Ok(Op::Flatten { axis: a.int("axis")? }),
        "reshape" => Ok(Op::Reshape { allowzero: a.boolean("allowzero")? }),
        "squeeze" => Ok(Op::Squeeze),
        "unsqueeze" => Ok(Op::Unsqueeze),
        "transpose" => Ok(Op::Transpose { perm: a.usizes("perm")? }),
        "expand" => Ok(Op::Expand),
        "gather" => Ok(Op::Gather { axis: a.int("axis")? }),
        "shape_of" => Ok(Op::ShapeOf { start: a.int("start")?, end: if a.has("end") { Some(a.int("end")?) } else { None } }),
        "slice" => Ok(Op::Slice),
        "pad" => Ok(Op::Pad { mode: a.from_table("mode", &PAD_MODES)? }),
        "resize" => Ok(Op::Resize(ResizeAttrs {
            mode: a.from_table("mode", &RESIZE_MODES)?,
            coord: a.from_table("coord", &COORDS)?,
            nearest: a.from_table("nearest", &NEAREST)?,
            cubic_a: a.float("cubic_a")?,
            exclude_outside: a.boolean("exclude_outside")?,
            extrapolation: a.float("extrapolation")?,
            antialias: a.boolean("antialias")?,
            axes: a.ints("axes")?,
            policy: a.from_table("policy", &POLICIES)?,
        })),
        "range" => Ok(Op::Range),
        "constant_of_shape" => match a.take("value")? {
            Attr::Tensor(t) => Ok(Op::ConstantOfShape { value: Arc::new(t) }),
            o => Err(format!("attribute 'value' must be a tensor, got {o:?}")),
        },
        "quantize_linear" => Ok(Op::QuantizeLinear {
            q: QuantAxis { axis: a.int("axis")?, block_size: a.uint("block_size")? },
            dtype: a.dtype("dtype")?,
        }),
        "dequantize_linear" => Ok(Op::DequantizeLinear { q: QuantAxis { axis: a.int("axis")?, block_size: a.uint("block_size")? } }),
        "dynamic_quantize_linear" => Ok(Op::DynamicQuantizeLinear),
        "fake_quantize" => {
            let l = a.int("levels")?;
            Ok(Op::FakeQuantize { levels: u32::try_from(l).map_err(|_| format!("levels {l} out of range"))? })
        }
        "qconv" => Ok(Op::QConv(a.conv()?)),
        "qmatmul" => Ok(Op::QMatMul),
        "requantize" => Ok(Op::Requantize),
        "qadd" => Ok(Op::QAdd),
        "lut" => Ok(Op::Lut),
        other => Err(format!("unknown op '{other}'")),
    }
}

impl AttrBag {
    /// The `index` attribute of an input line.
    pub fn take_index(&mut self) -> Result<usize, String> {
        self.uint("index")
    }
}
