//! Comparison and logic ONNX ops: Greater/Less(OrEqual), And/Or/Xor/Not, IsNaN and IsInf
//! (`Equal` stays with the arithmetic binaries in `math`).

use super::table::{Converted, Cx, Table};
use crate::ImportError;
use lpc_ir::*;

/// Registers this family's converters.
pub(super) fn register(t: &mut Table) {
    t.add("Greater", compare_or_logic);
    t.add("Less", compare_or_logic);
    t.add("GreaterOrEqual", compare_or_logic);
    t.add("LessOrEqual", compare_or_logic);
    t.add("And", compare_or_logic);
    t.add("Or", compare_or_logic);
    t.add("Xor", compare_or_logic);
    t.add("Not", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::Not))));
    t.add("IsNaN", |_, _| Ok(Converted::Op(Op::Unary(UnaryOp::IsNaN))));
    t.add("IsInf", is_inf);
}

/// The lpc op of a bool-valued binary ONNX op type.
fn binary_of(op_type: &str) -> Option<BinaryOp> {
    Some(match op_type {
        "Greater" => BinaryOp::Greater,
        "Less" => BinaryOp::Less,
        "GreaterOrEqual" => BinaryOp::GreaterOrEqual,
        "LessOrEqual" => BinaryOp::LessOrEqual,
        "And" => BinaryOp::And,
        "Or" => BinaryOp::Or,
        "Xor" => BinaryOp::Xor,
        _ => return None,
    })
}

/// `Greater`, `Less`, `GreaterOrEqual`, `LessOrEqual`, `And`, `Or`, `Xor` (numpy broadcasting
/// from opset 7; the opset-1 `broadcast`/`axis` form is refused).
fn compare_or_logic(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    if a.has("broadcast") && a.int("axis", -1)? != -1 {
        return Err(a.err("legacy broadcast with an axis attribute is not supported"));
    }
    cx.need(2)?;
    let op = binary_of(&cx.op_type)
        .ok_or_else(|| a.err(format!("{} is not a comparison or logic op", cx.op_type)))?;
    Ok(Converted::Op(Op::Binary(op)))
}

/// `IsInf` (opset 10; `detect_positive`/`detect_negative` default to 1).
fn is_inf(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    Ok(Converted::Op(Op::Unary(UnaryOp::IsInf {
        detect_positive: a.bool("detect_positive", true)?,
        detect_negative: a.bool("detect_negative", true)?,
    })))
}
