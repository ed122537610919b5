//! Element-wise OpenVINO operations: Convert, binary arithmetic, the activations, Clamp, PRelu,
//! Select and the reductions.

use super::{binary, const_scalar, int_range, need, one, to_i64, unary, Table, R};
use crate::builder::Builder;
use crate::net::{element_type, Layer};
use lpc_ir::{BinaryOp, DType, Op, ReduceOp, Tensor, UnaryOp, ValueRef};

/// Registers this family's converters.
pub(super) fn register(t: &mut Table) {
    t.add("Convert", convert_layer);
    t.add("Add", |b, l, ins| binary(b, l, ins, BinaryOp::Add));
    t.add("Subtract", |b, l, ins| binary(b, l, ins, BinaryOp::Sub));
    t.add("Multiply", |b, l, ins| binary(b, l, ins, BinaryOp::Mul));
    t.add("Maximum", |b, l, ins| binary(b, l, ins, BinaryOp::Max));
    t.add("Minimum", |b, l, ins| binary(b, l, ins, BinaryOp::Min));
    t.add("Power", |b, l, ins| binary(b, l, ins, BinaryOp::Pow));
    t.add("FloorMod", |b, l, ins| binary(b, l, ins, BinaryOp::Mod));
    t.add("Mod", |b, l, ins| binary(b, l, ins, BinaryOp::Fmod));
    t.add("Equal", |b, l, ins| binary(b, l, ins, BinaryOp::Equal));
    t.add("Divide", divide);
    t.add("Relu", |b, l, ins| unary(b, l, ins, UnaryOp::Relu));
    t.add("ReLU", |b, l, ins| unary(b, l, ins, UnaryOp::Relu));
    t.add("Sigmoid", |b, l, ins| unary(b, l, ins, UnaryOp::Sigmoid));
    t.add("Tanh", |b, l, ins| unary(b, l, ins, UnaryOp::Tanh));
    t.add("Exp", |b, l, ins| unary(b, l, ins, UnaryOp::Exp));
    t.add("Log", |b, l, ins| unary(b, l, ins, UnaryOp::Log));
    t.add("Sqrt", |b, l, ins| unary(b, l, ins, UnaryOp::Sqrt));
    t.add("Abs", |b, l, ins| unary(b, l, ins, UnaryOp::Abs));
    t.add("Negative", |b, l, ins| unary(b, l, ins, UnaryOp::Neg));
    t.add("Floor", |b, l, ins| unary(b, l, ins, UnaryOp::Floor));
    t.add("Ceiling", |b, l, ins| unary(b, l, ins, UnaryOp::Ceil));
    t.add("Erf", |b, l, ins| unary(b, l, ins, UnaryOp::Erf));
    t.add("HSwish", |b, l, ins| unary(b, l, ins, UnaryOp::HardSwish));
    t.add("HSigmoid", hsigmoid);
    t.add("SoftPlus", |b, l, ins| unary(b, l, ins, UnaryOp::Softplus));
    t.add("SoftSign", |b, l, ins| unary(b, l, ins, UnaryOp::Softsign));
    t.add("Mish", |b, l, ins| unary(b, l, ins, UnaryOp::Mish));
    t.add("Elu", elu);
    t.add("Round", round);
    t.add("Gelu", gelu);
    t.add("HardSigmoid", hard_sigmoid);
    t.add("Clamp", clamp);
    t.add("PRelu", prelu);
    t.add("PReLU", prelu);
    t.add("ReduceMean", reduce_mean);
    t.add("ReduceMax", reduce_mean);
    t.add("ReduceSum", reduce_mean);
    t.add("ReduceMin", reduce_mean);
    t.add("ReduceProd", reduce_mean);
    t.add("ReduceL1", reduce_mean);
    t.add("ReduceL2", reduce_mean);
    t.add("Select", select);
}

/// `Convert`.
fn convert_layer(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
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

/// `Divide`.
fn divide(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
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

/// `HSigmoid`.
fn hsigmoid(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    unary(
        b,
        l,
        ins,
        UnaryOp::HardSigmoid {
            alpha: 1.0 / 6.0,
            beta: 0.5,
        },
    )
}

/// `Elu`.
fn elu(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    let alpha = l.f64_attr("alpha")? as f32;
    unary(b, l, ins, UnaryOp::Elu { alpha })
}

/// `Round`.
fn round(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    match l.str_attr("mode", "half_to_even") {
        "half_to_even" => unary(b, l, ins, UnaryOp::Round),
        other => Err(l.err(format!(
            "rounding mode '{other}' is not supported (half_to_even only)"
        ))),
    }
}

/// `Gelu`.
fn gelu(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
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

/// `HardSigmoid`.
fn hard_sigmoid(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 3, 3)?;
    let alpha = const_scalar(b, l, ins[1], "alpha")?;
    let beta = const_scalar(b, l, ins[2], "beta")?;
    Ok(b.main(
        l,
        Op::Unary(UnaryOp::HardSigmoid { alpha, beta }),
        &[Some(ins[0])],
    ))
}

/// `Clamp`.
fn clamp(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
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

/// `PRelu`, `PReLU`.
fn prelu(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
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

/// `ReduceMean`, `ReduceMax`, `ReduceSum`, `ReduceMin`, `ReduceProd`, `ReduceL1`, `ReduceL2`.
fn reduce_mean(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 2, 2)?;
    let op = match l.ty.as_str() {
        "ReduceMean" => ReduceOp::Mean,
        "ReduceMax" => ReduceOp::Max,
        "ReduceSum" => ReduceOp::Sum,
        "ReduceMin" => ReduceOp::Min,
        "ReduceProd" => ReduceOp::Prod,
        "ReduceL1" => ReduceOp::L1,
        "ReduceL2" => ReduceOp::L2,
        o => return Err(l.err(format!("'{o}' is not a reduction"))),
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

/// `Select`.
fn select(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 3, 3)?;
    l.check_broadcast()?;
    Ok(b.main(l, Op::Where, &[Some(ins[0]), Some(ins[1]), Some(ins[2])]))
}
