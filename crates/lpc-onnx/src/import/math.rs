//! Element-wise ONNX ops: unary activations, math and trigonometry, Cast, binary and variadic arithmetic,
//! Clip, Where and the reductions.

use super::table::{Converted, Cx, Table};
use crate::tensor::{dtype_from_onnx, onnx_type_name};
use crate::ImportError;
use lpc_ir::*;

/// Registers this family's converters.
pub(super) fn register(t: &mut Table) {
    t.add("Abs", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Abs))));
    t.add("Neg", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Neg))));
    t.add("Ceil", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Ceil))));
    t.add("Floor", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Floor))));
    t.add("Round", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Round))));
    t.add("Sqrt", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Sqrt))));
    t.add("Reciprocal", |_, _| {
        Ok(Converted::Op(Op::Unary(UnaryOp::Reciprocal)))
    });
    t.add("Exp", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Exp))));
    t.add("Log", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Log))));
    t.add("Erf", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Erf))));
    t.add("Sigmoid", |_, _| {
        Ok(Converted::Op(Op::Unary(UnaryOp::Sigmoid)))
    });
    t.add("Tanh", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Tanh))));
    t.add("Relu", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Relu))));
    t.add("Identity", |_, _| {
        Ok(Converted::Op(Op::Unary(UnaryOp::Identity)))
    });
    t.add("Elu", elu);
    t.add("LeakyRelu", leaky_relu);
    t.add("HardSigmoid", hard_sigmoid);
    t.add("HardSwish", |_, _| {
        Ok(Converted::Op(Op::Unary(UnaryOp::HardSwish)))
    });
    t.add("Gelu", gelu);
    t.add("Sign", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Sign))));
    t.add("Sin", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Sin))));
    t.add("Cos", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Cos))));
    t.add("Tan", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Tan))));
    t.add("Asin", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Asin))));
    t.add("Acos", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Acos))));
    t.add("Atan", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Atan))));
    t.add("Sinh", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Sinh))));
    t.add("Cosh", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Cosh))));
    t.add("Asinh", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Asinh))));
    t.add("Acosh", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Acosh))));
    t.add("Atanh", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Atanh))));
    t.add("Cast", cast);
    t.add("Mod", |cx, _| {
        cx.need(2)?;
        Ok(Converted::Op(Op::Binary(if cx.a.bool("fmod", false)? {
            BinaryOp::Fmod
        } else {
            BinaryOp::Mod
        })))
    });
    t.add("Add", binary);
    t.add("Sub", binary);
    t.add("Mul", binary);
    t.add("Div", binary);
    t.add("Pow", binary);
    t.add("Equal", binary);
    t.add("PRelu", binary);
    t.add("Max", variadic);
    t.add("Min", variadic);
    t.add("Sum", variadic);
    t.add("Clip", clip);
    t.add("Where", |_, _| Ok(Converted::Op(Op::Where)));
    for r in ReduceOp::ALL {
        t.add(crate::names::reduce(r), reduce);
    }
}

/// `Elu`.
fn elu(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    Ok(Converted::Op(Op::Unary(UnaryOp::Elu {
        alpha: a.float("alpha", 1.0)?,
    })))
}

/// `LeakyRelu`.
fn leaky_relu(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    Ok(Converted::Op(Op::Unary(UnaryOp::LeakyRelu {
        alpha: a.float("alpha", 0.01)?,
    })))
}

/// `HardSigmoid`.
fn hard_sigmoid(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    Ok(Converted::Op(Op::Unary(UnaryOp::HardSigmoid {
        alpha: a.float("alpha", 0.2)?,
        beta: a.float("beta", 0.5)?,
    })))
}

/// `Gelu`.
fn gelu(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    Ok(Converted::Op(Op::Unary(UnaryOp::Gelu {
        tanh: match a.string("approximate", "none")?.as_str() {
            "none" => false,
            "tanh" => true,
            o => return Err(a.err(format!("unknown approximate '{o}'"))),
        },
    })))
}

/// `Cast`.
fn cast(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let to = a.int("to", 0)?;
    let d = dtype_from_onnx(to as i32).ok_or_else(|| {
        a.err(format!(
            "cast to {} is not supported",
            onnx_type_name(to as i32)
        ))
    })?;
    if a.has("saturate") && a.int("saturate", 1)? != 1 {
        // Only meaningful for float8 targets, which lpc does not have.
    }
    Ok(Converted::Op(Op::Unary(UnaryOp::Cast { to: d })))
}

/// `Add`, `Sub`, `Mul`, `Div`, `Pow`, `Equal`, `PRelu`.
fn binary(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    if a.has("broadcast") && a.int("axis", -1)? != -1 {
        return Err(a.err("legacy broadcast with an axis attribute is not supported"));
    }
    cx.need(2)?;
    Ok(Converted::Op(Op::Binary(match cx.op_type.as_str() {
        "Add" => BinaryOp::Add,
        "Sub" => BinaryOp::Sub,
        "Mul" => BinaryOp::Mul,
        "Div" => BinaryOp::Div,
        "Pow" => BinaryOp::Pow,
        "Equal" => BinaryOp::Equal,
        _ => BinaryOp::PRelu,
    })))
}

/// `Max`, `Min`, `Sum`.
fn variadic(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let name = cx.name.clone();
    let b = match cx.op_type.as_str() {
        "Max" => BinaryOp::Max,
        "Min" => BinaryOp::Min,
        _ => BinaryOp::Add,
    };
    let operands: Vec<ValueRef> = cx.ins.iter().flatten().copied().collect();
    if operands.is_empty() {
        return Err(a.err("needs at least one input"));
    }
    Ok(Converted::Op(if operands.len() == 1 {
        cx.ins = vec![Some(operands[0])];
        Op::Unary(UnaryOp::Identity)
    } else {
        let mut acc = operands[0];
        for (i, &x) in operands[1..operands.len() - 1].iter().enumerate() {
            let vname = cx.me.fresh_value(&cx.first_out);
            let id = g.add_node(
                format!("{name}__{i}"),
                Op::Binary(b),
                &[Some(acc), Some(x)],
                vec![Output::named(vname)],
            );
            acc = ValueRef::first(id);
        }
        cx.ins = vec![Some(acc), Some(operands[operands.len() - 1])];
        Op::Binary(b)
    }))
}

/// `Clip`.
fn clip(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    if cx.opset < 11 {
        let lo = a.float("min", f32::NEG_INFINITY)?;
        let hi = a.float("max", f32::INFINITY)?;
        cx.ins.truncate(1);
        cx.put(g, 1, a.has("min").then(|| Tensor::scalar_f32(lo)));
        cx.put(g, 2, a.has("max").then(|| Tensor::scalar_f32(hi)));
    }
    Ok(Converted::Op(Op::Clip))
}

/// The Reduce* ops. `axes` became an input at opset 13 for ReduceSum, 18 for the others.
fn reduce(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let Some(r) = ReduceOp::ALL
        .into_iter()
        .find(|&r| crate::names::reduce(r) == cx.op_type)
    else {
        return Err(a.err(format!("'{}' is not a reduction", cx.op_type)));
    };
    let axes_input_from = if r == ReduceOp::Sum { 13 } else { 18 };
    if cx.opset < axes_input_from {
        cx.ins.truncate(1);
        cx.put(g, 1, a.ints("axes")?.map(|v| Tensor::vec_i64(&v)));
    }
    Ok(Converted::Op(Op::Reduce {
        op: r,
        keepdims: a.bool("keepdims", true)?,
        noop_with_empty_axes: a.bool("noop_with_empty_axes", false)?,
    }))
}
