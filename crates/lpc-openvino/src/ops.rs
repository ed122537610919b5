//! OpenVINO operations (opsets 1–13 as NNCF/OpenVINO emit them for CNNs) mapped onto lpc `Op`s.

use crate::builder::Builder;
use crate::net::{element_type, Layer};
use crate::{weights, OpenVinoError};
use lpc_ir::{
    AspectPolicy, AutoPad, BinaryOp, ConvAttrs, CoordTransform, DType, NearestMode, Op, PadMode,
    PoolAttrs, ReduceOp, ResizeAttrs, ResizeMode, Tensor, UnaryOp, ValueRef, ValueType,
};

type R<T> = Result<T, OpenVinoError>;

/// Attribute access with errors naming the layer.
impl Layer {
    fn attr(&self, k: &str) -> Option<&str> {
        self.data.get(k).map(String::as_str)
    }

    fn req(&self, k: &str) -> R<&str> {
        self.attr(k)
            .ok_or_else(|| self.err(format!("missing attribute '{k}'")))
    }

    fn i64s(&self, k: &str) -> R<Vec<i64>> {
        let s = self.req(k)?.trim();
        if s.is_empty() {
            return Ok(vec![]);
        }
        s.split(',')
            .map(|x| {
                x.trim()
                    .parse::<i64>()
                    .map_err(|_| self.err(format!("attribute '{k}' has a bad value '{x}'")))
            })
            .collect()
    }

    fn usizes(&self, k: &str) -> R<Vec<usize>> {
        self.i64s(k)?
            .into_iter()
            .map(|x| {
                if (0..=(1 << 24)).contains(&x) {
                    Ok(x as usize)
                } else {
                    Err(self.err(format!("attribute '{k}' has invalid value {x}")))
                }
            })
            .collect()
    }

    /// Like `usizes`, empty when absent.
    fn usizes_or_empty(&self, k: &str) -> R<Vec<usize>> {
        if self.attr(k).is_none() {
            Ok(vec![])
        } else {
            self.usizes(k)
        }
    }

    fn i64_attr(&self, k: &str, default: i64) -> R<i64> {
        match self.attr(k) {
            None => Ok(default),
            Some(s) => s
                .trim()
                .parse()
                .map_err(|_| self.err(format!("attribute '{k}' is not an integer: '{s}'"))),
        }
    }

    fn f64_attr(&self, k: &str) -> R<f64> {
        let s = self.req(k)?;
        s.trim()
            .parse()
            .map_err(|_| self.err(format!("attribute '{k}' is not a number: '{s}'")))
    }

    fn f32_attr_or(&self, k: &str, default: f32) -> R<f32> {
        match self.attr(k) {
            None => Ok(default),
            Some(s) => s
                .trim()
                .parse()
                .map_err(|_| self.err(format!("attribute '{k}' is not a number: '{s}'"))),
        }
    }

    fn bool_attr(&self, k: &str, default: bool) -> R<bool> {
        match self.attr(k).map(|s| s.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(s) if s == "true" || s == "1" => Ok(true),
            Some(s) if s == "false" || s == "0" => Ok(false),
            Some(s) => Err(self.err(format!("attribute '{k}' is not a boolean: '{s}'"))),
        }
    }

    fn str_attr<'s>(&'s self, k: &str, default: &'s str) -> &'s str {
        self.attr(k).map(str::trim).unwrap_or(default)
    }

    /// Numpy (or no) broadcasting only.
    fn check_broadcast(&self) -> R<()> {
        match self
            .str_attr("auto_broadcast", "numpy")
            .to_ascii_lowercase()
            .as_str()
        {
            "numpy" | "none" => Ok(()),
            other => Err(self.err(format!(
                "auto_broadcast '{other}' is not supported (only numpy broadcasting)"
            ))),
        }
    }

    fn auto_pad(&self) -> R<AutoPad> {
        Ok(
            match self
                .str_attr("auto_pad", "explicit")
                .to_ascii_lowercase()
                .as_str()
            {
                "explicit" | "notset" | "" => AutoPad::NotSet,
                "same_upper" => AutoPad::SameUpper,
                "same_lower" => AutoPad::SameLower,
                "valid" => AutoPad::Valid,
                other => return Err(self.err(format!("unknown auto_pad '{other}'"))),
            },
        )
    }

    /// `pads_begin ++ pads_end` (empty when both are all zero or absent).
    fn pads(&self) -> R<Vec<usize>> {
        let b = self.usizes_or_empty("pads_begin")?;
        let e = self.usizes_or_empty("pads_end")?;
        if b.len() != e.len() {
            return Err(self.err(format!(
                "pads_begin has {} values, pads_end {}",
                b.len(),
                e.len()
            )));
        }
        if b.iter().chain(&e).all(|&p| p == 0) {
            return Ok(vec![]);
        }
        Ok(b.into_iter().chain(e).collect())
    }

    fn conv_attrs(&self, group: usize) -> R<ConvAttrs> {
        Ok(ConvAttrs {
            kernel: vec![],
            strides: self.usizes_or_empty("strides")?,
            pads: self.pads()?,
            dilations: self.usizes_or_empty("dilations")?,
            group,
            auto_pad: self.auto_pad()?,
        })
    }

    fn pool_attrs(&self) -> R<PoolAttrs> {
        let kernel = self.usizes("kernel")?;
        if kernel.is_empty() {
            return Err(self.err("kernel is empty"));
        }
        let ceil_mode = match self
            .str_attr("rounding_type", "floor")
            .to_ascii_lowercase()
            .as_str()
        {
            "floor" => false,
            "ceil" => true,
            other => {
                return Err(self.err(format!(
                    "rounding_type '{other}' is not supported (floor or ceil)"
                )))
            }
        };
        Ok(PoolAttrs {
            kernel,
            strides: self.usizes_or_empty("strides")?,
            pads: self.pads()?,
            dilations: self.usizes_or_empty("dilations")?,
            ceil_mode,
            auto_pad: self.auto_pad()?,
        })
    }

    /// Known dims of input port `k`, or an error saying what needs them.
    fn known_dims(&self, k: usize, why: &str) -> R<Vec<usize>> {
        let p = self
            .inputs
            .get(k)
            .ok_or_else(|| self.err(format!("missing input port {k}")))?;
        p.dims
            .iter()
            .map(|d| {
                d.ok_or_else(|| self.err(format!("{why} needs the static shape of input {k}")))
            })
            .collect()
    }

    /// Rank of input port `k`.
    fn rank(&self, k: usize) -> usize {
        self.inputs.get(k).map_or(0, |p| p.dims.len())
    }
}

fn need(l: &Layer, ins: &[ValueRef], min: usize, max: usize) -> R<()> {
    if ins.len() < min || ins.len() > max {
        let want = if min == max {
            format!("{min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(l.err(format!("needs {want} inputs, got {}", ins.len())));
    }
    Ok(())
}

/// The integer values of a constant input.
fn const_ints(b: &Builder, l: &Layer, v: ValueRef, what: &str) -> R<Vec<i64>> {
    let t = b
        .const_of(v)
        .ok_or_else(|| l.err(format!("input '{what}' must be a constant")))?;
    if !t.dtype().is_int() {
        return Err(l.err(format!(
            "input '{what}' must be an integer tensor, got {}",
            t.dtype()
        )));
    }
    Ok(t.to_i64_vec())
}

/// The single float value of a constant input.
fn const_scalar(b: &Builder, l: &Layer, v: ValueRef, what: &str) -> R<f32> {
    let t = b
        .const_of(v)
        .ok_or_else(|| l.err(format!("input '{what}' must be a constant")))?;
    match t.to_f32_vec().as_slice() {
        [x] => Ok(*x),
        _ => Err(l.err(format!(
            "input '{what}' must hold one value, it has shape {:?}",
            t.shape()
        ))),
    }
}

/// An integer operand (axes, shapes, pads) as i64: constants are converted, others cast.
fn to_i64(b: &mut Builder, l: &Layer, v: ValueRef) -> ValueRef {
    if let Some(t) = b.const_of(v) {
        if t.dtype() == DType::I64 {
            return v;
        }
        return b.konst(&l.name, t.cast(DType::I64));
    }
    let ty = b.g.value_type(v).clone();
    if ty.dtype == Some(DType::I64) {
        return v;
    }
    b.aux(
        &l.name,
        Op::Unary(UnaryOp::Cast { to: DType::I64 }),
        &[Some(v)],
        ValueType {
            dtype: Some(DType::I64),
            shape: ty.shape,
        },
    )
}

/// The value range of an integer dtype.
fn int_range(d: DType) -> (f64, f64) {
    match d {
        DType::I8 => (-128.0, 127.0),
        DType::U8 => (0.0, 255.0),
        DType::I32 => (i32::MIN as f64, i32::MAX as f64),
        DType::I64 => (i64::MIN as f64, i64::MAX as f64),
        DType::Bool => (0.0, 1.0),
        DType::F32 | DType::F16 | DType::F64 => (f64::NEG_INFINITY, f64::INFINITY),
    }
}

fn binary(b: &mut Builder, l: &Layer, ins: &[ValueRef], op: BinaryOp) -> R<Vec<ValueRef>> {
    need(l, ins, 2, 2)?;
    l.check_broadcast()?;
    Ok(b.main(l, Op::Binary(op), &[Some(ins[0]), Some(ins[1])]))
}

fn unary(b: &mut Builder, l: &Layer, ins: &[ValueRef], op: UnaryOp) -> R<Vec<ValueRef>> {
    need(l, ins, 1, 1)?;
    Ok(b.main(l, Op::Unary(op), &[Some(ins[0])]))
}

/// Converts one layer; returns one value per output port.
pub(super) fn convert(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    let one = |v: ValueRef| Ok(vec![v]);
    match l.ty.as_str() {
        "Const" => {
            need(l, ins, 0, 0)?;
            let t = b.const_tensor(l)?;
            let base = l
                .outputs
                .first()
                .and_then(|p| p.names.first())
                .unwrap_or(&l.name)
                .clone();
            one(b.konst(&base, t))
        }
        "Convert" => {
            need(l, ins, 1, 1)?;
            let to = element_type(l.req("destination_type")?).map_err(|m| l.err(m))?;
            if let Some(p) = l.outputs.first() {
                if p.dtype.is_some_and(|d| d != to) {
                    return Err(l.err(format!(
                        "destination_type {to} does not match the output precision {}",
                        p.precision
                    )));
                }
            }
            // Constants are converted at import (f16 weights become f32 constants), except
            // integer → float: that is the compressed-weights pattern, kept for `weights`.
            if let Some(t) = b.const_of(ins[0]) {
                if !(t.dtype().is_int() && to.is_float()) {
                    let base = l
                        .outputs
                        .first()
                        .and_then(|p| p.names.first())
                        .unwrap_or(&l.name)
                        .clone();
                    return one(b.konst(&base, t.cast(to)));
                }
            }
            unary(b, l, ins, UnaryOp::Cast { to })
        }
        "Add" => binary(b, l, ins, BinaryOp::Add),
        "Subtract" => binary(b, l, ins, BinaryOp::Sub),
        "Multiply" => binary(b, l, ins, BinaryOp::Mul),
        "Maximum" => binary(b, l, ins, BinaryOp::Max),
        "Minimum" => binary(b, l, ins, BinaryOp::Min),
        "Power" => binary(b, l, ins, BinaryOp::Pow),
        "Equal" => binary(b, l, ins, BinaryOp::Equal),
        "Divide" => {
            let int = l
                .inputs
                .first()
                .and_then(|p| p.dtype)
                .is_some_and(DType::is_int);
            if int && l.bool_attr("m_pythondiv", true)? {
                return Err(l.err("integer Divide with python (floor) division is not supported"));
            }
            binary(b, l, ins, BinaryOp::Div)
        }
        "FakeQuantize" => {
            need(l, ins, 5, 5)?;
            l.check_broadcast()?;
            let levels = l.i64_attr("levels", -1)?;
            if !(2..=65536).contains(&levels) {
                return Err(l.err(format!("levels {levels} is outside 2..=65536")));
            }
            let inputs: Vec<_> = ins.iter().map(|&v| Some(v)).collect();
            Ok(b.main(
                l,
                Op::FakeQuantize {
                    levels: levels as u32,
                },
                &inputs,
            ))
        }
        "Relu" | "ReLU" => unary(b, l, ins, UnaryOp::Relu),
        "Sigmoid" => unary(b, l, ins, UnaryOp::Sigmoid),
        "Tanh" => unary(b, l, ins, UnaryOp::Tanh),
        "Exp" => unary(b, l, ins, UnaryOp::Exp),
        "Log" => unary(b, l, ins, UnaryOp::Log),
        "Sqrt" => unary(b, l, ins, UnaryOp::Sqrt),
        "Abs" => unary(b, l, ins, UnaryOp::Abs),
        "Negative" => unary(b, l, ins, UnaryOp::Neg),
        "Floor" => unary(b, l, ins, UnaryOp::Floor),
        "Ceiling" => unary(b, l, ins, UnaryOp::Ceil),
        "Erf" => unary(b, l, ins, UnaryOp::Erf),
        "HSwish" => unary(b, l, ins, UnaryOp::HardSwish),
        "HSigmoid" => unary(
            b,
            l,
            ins,
            UnaryOp::HardSigmoid {
                alpha: 1.0 / 6.0,
                beta: 0.5,
            },
        ),
        "Elu" => {
            let alpha = l.f64_attr("alpha")? as f32;
            unary(b, l, ins, UnaryOp::Elu { alpha })
        }
        "Round" => match l.str_attr("mode", "half_to_even") {
            "half_to_even" => unary(b, l, ins, UnaryOp::Round),
            other => Err(l.err(format!(
                "rounding mode '{other}' is not supported (half_to_even only)"
            ))),
        },
        "Gelu" => {
            let tanh = match l
                .str_attr("approximation_mode", "erf")
                .to_ascii_lowercase()
                .as_str()
            {
                "erf" => false,
                "tanh" => true,
                other => return Err(l.err(format!("unknown approximation_mode '{other}'"))),
            };
            unary(b, l, ins, UnaryOp::Gelu { tanh })
        }
        "HardSigmoid" => {
            need(l, ins, 3, 3)?;
            let alpha = const_scalar(b, l, ins[1], "alpha")?;
            let beta = const_scalar(b, l, ins[2], "beta")?;
            Ok(b.main(
                l,
                Op::Unary(UnaryOp::HardSigmoid { alpha, beta }),
                &[Some(ins[0])],
            ))
        }
        "Clamp" => {
            need(l, ins, 1, 1)?;
            let (lo, hi) = (l.f64_attr("min")?, l.f64_attr("max")?);
            let dt = l.inputs[0]
                .dtype
                .or(b.g.value_type(ins[0]).dtype)
                .unwrap_or(DType::F32);
            let bound = |v: f64| {
                if dt.is_float() {
                    Tensor::scalar_f32(v as f32).cast(dt)
                } else {
                    let (a, z) = int_range(dt);
                    Tensor::scalar_i64(v.clamp(a, z) as i64).cast(dt)
                }
            };
            // Integer clamps round the bounds inward, as OpenVINO does.
            let (lo, hi) = if dt.is_float() {
                (lo, hi)
            } else {
                (lo.ceil(), hi.floor())
            };
            let (lo, hi) = (b.konst(&l.name, bound(lo)), b.konst(&l.name, bound(hi)));
            Ok(b.main(l, Op::Clip, &[Some(ins[0]), Some(lo), Some(hi)]))
        }
        "PRelu" | "PReLU" => {
            need(l, ins, 2, 2)?;
            let mut slope = ins[1];
            // A 1-D slope as long as the channel axis applies along axis 1.
            if let (Some(t), Some(Some(c))) = (b.const_of(slope), l.inputs[0].dims.get(1)) {
                let r = l.rank(0);
                if t.rank() == 1 && t.len() == *c && *c > 1 && r > 2 {
                    let mut shape = vec![1; r - 1];
                    shape[0] = *c;
                    let t = (*t)
                        .clone()
                        .reshape(&shape)
                        .map_err(|e| l.err(e.to_string()))?;
                    slope = b.konst(&l.name, t);
                }
            }
            Ok(b.main(l, Op::Binary(BinaryOp::PRelu), &[Some(ins[0]), Some(slope)]))
        }
        "Convolution" => {
            need(l, ins, 2, 2)?;
            Ok(b.main(l, Op::Conv(l.conv_attrs(1)?), &[Some(ins[0]), Some(ins[1])]))
        }
        "GroupConvolution" => {
            need(l, ins, 2, 2)?;
            let dims = l.known_dims(1, "GroupConvolution")?;
            if dims.len() < 3 {
                return Err(l.err(format!(
                    "weights of rank {} (expected [G, O/G, I/G, k...])",
                    dims.len()
                )));
            }
            let w = weights::merge_groups(b, l, ins[1], &dims);
            Ok(b.main(
                l,
                Op::Conv(l.conv_attrs(dims[0])?),
                &[Some(ins[0]), Some(w)],
            ))
        }
        "ConvolutionBackpropData" | "GroupConvolutionBackpropData" => {
            need(l, ins, 2, 3)?;
            if ins.len() == 3 {
                return Err(l.err("the output_shape input is not supported"));
            }
            let (w, group) = if l.ty == "GroupConvolutionBackpropData" {
                let dims = l.known_dims(1, "GroupConvolutionBackpropData")?;
                if dims.len() < 3 {
                    return Err(l.err(format!(
                        "weights of rank {} (expected [G, I/G, O/G, k...])",
                        dims.len()
                    )));
                }
                (weights::merge_groups(b, l, ins[1], &dims), dims[0])
            } else {
                (ins[1], 1)
            };
            let output_padding = l.usizes_or_empty("output_padding")?;
            let output_padding = if output_padding.iter().all(|&p| p == 0) {
                vec![]
            } else {
                output_padding
            };
            let op = Op::ConvTranspose {
                conv: l.conv_attrs(group)?,
                output_padding,
                output_shape: vec![],
            };
            Ok(b.main(l, op, &[Some(ins[0]), Some(w)]))
        }
        "MatMul" => {
            need(l, ins, 2, 2)?;
            let (mut x, mut w) = (ins[0], ins[1]);
            if l.bool_attr("transpose_a", false)? && l.rank(0) >= 2 {
                let r = l.rank(0);
                let mut perm: Vec<usize> = (0..r).collect();
                perm.swap(r - 2, r - 1);
                let ty = weights::permuted(b.g.value_type(x), &perm);
                x = b.aux(&l.name, Op::Transpose { perm }, &[Some(x)], ty);
            }
            if l.bool_attr("transpose_b", false)? && l.rank(1) >= 2 {
                w = weights::swap_last2(b, l, w, l.rank(1));
            }
            Ok(b.main(l, Op::MatMul, &[Some(x), Some(w)]))
        }
        "MaxPool" => {
            need(l, ins, 1, 1)?;
            let pool = l.pool_attrs()?;
            let op = Op::MaxPool {
                pool,
                storage_order: 0,
            };
            if l.outputs.len() < 2 || !b.is_used(l, 1) {
                let vs = b.main_n(l, op, &[Some(ins[0])], 1);
                // An unused indices port maps to the values; nothing reads it.
                return Ok(vec![vs[0]; l.outputs.len()]);
            }
            if l.i64_attr("axis", 0)? != 0 {
                return Err(l.err("indices counted from an axis other than 0 are not supported"));
            }
            let vs = b.main_n(l, op, &[Some(ins[0])], 2);
            let idx_type =
                element_type(l.str_attr("index_element_type", "i64")).map_err(|m| l.err(m))?;
            let ty = b.g.value_type(vs[1]).clone();
            b.g.output_mut(vs[1]).ty.dtype = Some(DType::I64);
            if idx_type == DType::I64 {
                return Ok(vs);
            }
            let base = b.g.value_name(vs[1]).to_string();
            let cast = b.aux(
                &base,
                Op::Unary(UnaryOp::Cast { to: idx_type }),
                &[Some(vs[1])],
                ty,
            );
            Ok(vec![vs[0], cast])
        }
        "AvgPool" => {
            need(l, ins, 1, 1)?;
            let pool = l.pool_attrs()?;
            let count_include_pad = !l.bool_attr("exclude-pad", false)?;
            Ok(b.main(
                l,
                Op::AveragePool {
                    pool,
                    count_include_pad,
                },
                &[Some(ins[0])],
            ))
        }
        "ReduceMean" | "ReduceMax" | "ReduceSum" => {
            need(l, ins, 2, 2)?;
            let op = match l.ty.as_str() {
                "ReduceMean" => ReduceOp::Mean,
                "ReduceMax" => ReduceOp::Max,
                _ => ReduceOp::Sum,
            };
            let keepdims = l.bool_attr("keep_dims", false)?;
            let axes = to_i64(b, l, ins[1]);
            // OpenVINO reduces nothing over an empty axes list.
            Ok(b.main(
                l,
                Op::Reduce {
                    op,
                    keepdims,
                    noop_with_empty_axes: true,
                },
                &[Some(ins[0]), Some(axes)],
            ))
        }
        "Reshape" => {
            need(l, ins, 2, 2)?;
            let special_zero = l.bool_attr("special_zero", false)?;
            let shape = to_i64(b, l, ins[1]);
            Ok(b.main(
                l,
                Op::Reshape {
                    allowzero: !special_zero,
                },
                &[Some(ins[0]), Some(shape)],
            ))
        }
        "Transpose" => {
            need(l, ins, 2, 2)?;
            let order = const_ints(b, l, ins[1], "order")?;
            let r = l.rank(0);
            let mut seen = vec![false; order.len()];
            for &p in &order {
                if p < 0
                    || p as usize >= order.len()
                    || std::mem::replace(&mut seen[p as usize], true)
                {
                    return Err(l.err(format!("order {order:?} is not a permutation")));
                }
            }
            if !order.is_empty() && order.len() != r {
                return Err(l.err(format!("order {order:?} does not fit an input of rank {r}")));
            }
            let perm = order.into_iter().map(|p| p as usize).collect();
            Ok(b.main(l, Op::Transpose { perm }, &[Some(ins[0])]))
        }
        "Squeeze" => {
            need(l, ins, 1, 2)?;
            let axes = ins.get(1).map(|&a| to_i64(b, l, a));
            Ok(b.main(l, Op::Squeeze, &[Some(ins[0]), axes]))
        }
        "Unsqueeze" => {
            need(l, ins, 2, 2)?;
            let axes = to_i64(b, l, ins[1]);
            Ok(b.main(l, Op::Unsqueeze, &[Some(ins[0]), Some(axes)]))
        }
        "Concat" => {
            if ins.is_empty() {
                return Err(l.err("needs at least one input"));
            }
            let axis = l.i64_attr("axis", i64::MIN)?;
            if axis == i64::MIN {
                return Err(l.err("missing attribute 'axis'"));
            }
            let inputs: Vec<_> = ins.iter().map(|&v| Some(v)).collect();
            Ok(b.main(l, Op::Concat { axis }, &inputs))
        }
        "Softmax" | "SoftMax" | "LogSoftmax" => {
            need(l, ins, 1, 1)?;
            let axis = l.i64_attr("axis", 1)?;
            let op = if l.ty == "LogSoftmax" {
                Op::LogSoftmax {
                    axis,
                    coerce_2d: false,
                }
            } else {
                Op::Softmax {
                    axis,
                    coerce_2d: false,
                }
            };
            Ok(b.main(l, op, &[Some(ins[0])]))
        }
        "ShapeOf" => {
            need(l, ins, 1, 1)?;
            let to = element_type(l.str_attr("output_type", "i64")).map_err(|m| l.err(m))?;
            let vs = b.main(
                l,
                Op::ShapeOf {
                    start: 0,
                    end: None,
                },
                &[Some(ins[0])],
            );
            if to == DType::I64 {
                return Ok(vs);
            }
            let ty = b.g.value_type(vs[0]).clone();
            b.g.output_mut(vs[0]).ty.dtype = Some(DType::I64);
            let base = b.g.value_name(vs[0]).to_string();
            one(b.aux(&base, Op::Unary(UnaryOp::Cast { to }), &[Some(vs[0])], ty))
        }
        "Gather" => {
            need(l, ins, 3, 3)?;
            if l.i64_attr("batch_dims", 0)? != 0 {
                return Err(l.err("batch_dims other than 0 is not supported"));
            }
            let axis = match const_ints(b, l, ins[2], "axis")?.as_slice() {
                [a] => *a,
                other => return Err(l.err(format!("axis must hold one value, got {other:?}"))),
            };
            Ok(b.main(l, Op::Gather { axis }, &[Some(ins[0]), Some(ins[1])]))
        }
        "Interpolate" => interpolate(b, l, ins),
        "Pad" => {
            need(l, ins, 3, 4)?;
            let mode = match l.str_attr("pad_mode", "constant") {
                "constant" => PadMode::Constant,
                "edge" => PadMode::Edge,
                "reflect" => PadMode::Reflect,
                other => return Err(l.err(format!("pad_mode '{other}' is not supported"))),
            };
            let begin = const_ints(b, l, ins[1], "pads_begin")?;
            let end = const_ints(b, l, ins[2], "pads_end")?;
            if begin.len() != end.len() {
                return Err(l.err(format!(
                    "pads_begin has {} values, pads_end {}",
                    begin.len(),
                    end.len()
                )));
            }
            let pads = b.konst(&l.name, Tensor::vec_i64(&[begin, end].concat()));
            Ok(b.main(
                l,
                Op::Pad { mode },
                &[Some(ins[0]), Some(pads), ins.get(3).copied(), None],
            ))
        }
        "Split" | "VariadicSplit" => {
            need(l, ins, 2, 3)?;
            let axis = match const_ints(b, l, ins[1], "axis")?.as_slice() {
                [a] => *a,
                other => return Err(l.err(format!("axis must hold one value, got {other:?}"))),
            };
            let n = l.outputs.len();
            let split = if l.ty == "VariadicSplit" {
                need(l, ins, 3, 3)?;
                let mut lens = const_ints(b, l, ins[2], "split_lengths")?;
                if let Some(k) = lens.iter().position(|&x| x == -1) {
                    let r = l.rank(0) as i64;
                    let ax = if axis < 0 { axis + r } else { axis };
                    let dims = l.known_dims(0, "VariadicSplit with -1")?;
                    let total = *dims
                        .get(ax as usize)
                        .ok_or_else(|| l.err(format!("axis {axis} out of range")))?
                        as i64;
                    lens[k] = total - lens.iter().filter(|&&x| x != -1).sum::<i64>();
                }
                Some(b.konst(&l.name, Tensor::vec_i64(&lens)))
            } else {
                need(l, ins, 2, 2)?;
                let num = l.i64_attr("num_splits", -1)?;
                if num != n as i64 {
                    return Err(l.err(format!("num_splits {num} does not match {n} output ports")));
                }
                None
            };
            Ok(b.main(
                l,
                Op::Split {
                    axis,
                    num_outputs: n,
                },
                &[Some(ins[0]), split],
            ))
        }
        "Slice" => {
            need(l, ins, 4, 5)?;
            let (start, stop, step) = (
                to_i64(b, l, ins[1]),
                to_i64(b, l, ins[2]),
                to_i64(b, l, ins[3]),
            );
            let axes = ins.get(4).map(|&a| to_i64(b, l, a));
            Ok(b.main(
                l,
                Op::Slice,
                &[Some(ins[0]), Some(start), Some(stop), axes, Some(step)],
            ))
        }
        "StridedSlice" => strided_slice(b, l, ins),
        "BatchNormInference" => {
            need(l, ins, 5, 5)?;
            let epsilon = l.f64_attr("epsilon")? as f32;
            // opset1 takes (gamma, beta, data, mean, variance); opset5 puts data first.
            let order = if l.opset() >= 5 {
                [0, 1, 2, 3, 4]
            } else {
                [2, 0, 1, 3, 4]
            };
            let inputs: Vec<_> = order.iter().map(|&k| Some(ins[k])).collect();
            Ok(b.main(
                l,
                Op::BatchNorm {
                    epsilon,
                    training: false,
                    momentum: 0.9,
                },
                &inputs,
            ))
        }
        "Broadcast" => {
            need(l, ins, 2, 2)?;
            match l.str_attr("mode", "numpy").to_ascii_lowercase().as_str() {
                "numpy" | "bidirectional" => {}
                other => return Err(l.err(format!("broadcast mode '{other}' is not supported"))),
            }
            let shape = to_i64(b, l, ins[1]);
            Ok(b.main(l, Op::Expand, &[Some(ins[0]), Some(shape)]))
        }
        "Select" => {
            need(l, ins, 3, 3)?;
            l.check_broadcast()?;
            Ok(b.main(l, Op::Where, &[Some(ins[0]), Some(ins[1]), Some(ins[2])]))
        }
        other => Err(l.err(format!(
            "operation {other} is not supported by lpc's OpenVINO reader"
        ))),
    }
}

fn interpolate(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    let v = l.opset();
    if v != 4 && v != 11 {
        return Err(l.err("only Interpolate-4 and Interpolate-11 are supported"));
    }
    let by_sizes = match l.str_attr("shape_calculation_mode", "") {
        "sizes" => true,
        "scales" => false,
        other => return Err(l.err(format!("unknown shape_calculation_mode '{other}'"))),
    };
    // v4: (x, sizes, scales, axes?); v11: (x, scales_or_sizes, axes?).
    let (operand, axes) = if v == 4 {
        need(l, ins, 3, 4)?;
        (if by_sizes { ins[1] } else { ins[2] }, ins.get(3))
    } else {
        need(l, ins, 2, 3)?;
        (ins[1], ins.get(2))
    };
    let axes = match axes {
        Some(&a) => const_ints(b, l, a, "axes")?,
        None => vec![],
    };
    let pads = l.pads()?;
    if !pads.is_empty() {
        return Err(l.err("non-zero pads_begin/pads_end are not supported"));
    }
    if l.bool_attr("antialias", false)? {
        return Err(l.err("antialias is not supported"));
    }
    let mode = match l.str_attr("mode", "") {
        "nearest" => ResizeMode::Nearest,
        "linear_onnx" => ResizeMode::Linear,
        "cubic" => ResizeMode::Cubic,
        other => {
            return Err(l.err(format!(
                "mode '{other}' is not supported (nearest, linear_onnx, cubic)"
            )))
        }
    };
    let coord = match l.str_attr("coordinate_transformation_mode", "half_pixel") {
        "half_pixel" => CoordTransform::HalfPixel,
        "pytorch_half_pixel" => CoordTransform::PytorchHalfPixel,
        "asymmetric" => CoordTransform::Asymmetric,
        "align_corners" => CoordTransform::AlignCorners,
        other => {
            return Err(l.err(format!(
                "coordinate_transformation_mode '{other}' is not supported"
            )))
        }
    };
    let nearest = match l.str_attr("nearest_mode", "round_prefer_floor") {
        "round_prefer_floor" => NearestMode::RoundPreferFloor,
        "round_prefer_ceil" => NearestMode::RoundPreferCeil,
        "floor" => NearestMode::Floor,
        "ceil" => NearestMode::Ceil,
        other => return Err(l.err(format!("nearest_mode '{other}' is not supported"))),
    };
    let attrs = ResizeAttrs {
        mode,
        coord,
        nearest,
        cubic_a: l.f32_attr_or("cube_coeff", -0.75)?,
        exclude_outside: false,
        extrapolation: 0.0,
        antialias: false,
        axes,
        policy: AspectPolicy::Stretch,
    };
    let (scales, sizes) = if by_sizes {
        (None, Some(to_i64(b, l, operand)))
    } else {
        let s = match b.const_of(operand) {
            Some(t) if t.dtype() != DType::F32 => b.konst(&l.name, t.cast(DType::F32)),
            _ => operand,
        };
        (Some(s), None)
    };
    Ok(b.main(l, Op::Resize(attrs), &[Some(ins[0]), None, scales, sizes]))
}

fn strided_slice(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 3, 4)?;
    let mask = |k: &str| -> R<Vec<i64>> {
        if l.attr(k).is_some() {
            l.i64s(k)
        } else {
            Ok(vec![])
        }
    };
    for k in ["new_axis_mask", "shrink_axis_mask", "ellipsis_mask"] {
        if mask(k)?.iter().any(|&m| m != 0) {
            return Err(l.err(format!("{k} is not supported")));
        }
    }
    let (bm, em) = (mask("begin_mask")?, mask("end_mask")?);
    let mut begin = const_ints(b, l, ins[1], "begin")?;
    let mut end = const_ints(b, l, ins[2], "end")?;
    let step = match ins.get(3) {
        Some(&s) => const_ints(b, l, s, "stride")?,
        None => vec![1; begin.len()],
    };
    if end.len() != begin.len() || step.len() != begin.len() {
        return Err(l.err("begin, end and stride differ in length"));
    }
    for k in 0..begin.len() {
        let back = step[k] < 0;
        // A mask bit of 1 ignores the given bound and takes the whole axis.
        if bm.get(k) == Some(&1) {
            begin[k] = if back { i64::MAX } else { 0 };
        }
        if em.get(k) == Some(&1) {
            end[k] = if back { i64::MIN } else { i64::MAX };
        }
    }
    let axes: Vec<i64> = (0..begin.len() as i64).collect();
    let c = |b: &mut Builder, v: &[i64]| Some(b.konst(&l.name, Tensor::vec_i64(v)));
    let (s, e, a, st) = (c(b, &begin), c(b, &end), c(b, &axes), c(b, &step));
    Ok(b.main(l, Op::Slice, &[Some(ins[0]), s, e, a, st]))
}
