//! Comparison, logical and trigonometric OpenVINO operations (opset1 names; IsNaN/IsInf opset10).

use super::{binary, unary, Table, R};
use crate::builder::Builder;
use crate::net::Layer;
use lpc_ir::{BinaryOp, UnaryOp, ValueRef};

/// Registers this family's converters.
pub(super) fn register(t: &mut Table) {
    t.add("Greater", |b, l, ins| binary(b, l, ins, BinaryOp::Greater));
    t.add("Less", |b, l, ins| binary(b, l, ins, BinaryOp::Less));
    t.add("GreaterEqual", |b, l, ins| {
        binary(b, l, ins, BinaryOp::GreaterOrEqual)
    });
    t.add("LessEqual", |b, l, ins| {
        binary(b, l, ins, BinaryOp::LessOrEqual)
    });
    t.add("LogicalAnd", |b, l, ins| binary(b, l, ins, BinaryOp::And));
    t.add("LogicalOr", |b, l, ins| binary(b, l, ins, BinaryOp::Or));
    t.add("LogicalXor", |b, l, ins| binary(b, l, ins, BinaryOp::Xor));
    t.add("LogicalNot", |b, l, ins| unary(b, l, ins, UnaryOp::Not));
    t.add("IsNaN", |b, l, ins| unary(b, l, ins, UnaryOp::IsNaN));
    t.add("IsInf", is_inf);
    t.add("Sign", |b, l, ins| unary(b, l, ins, UnaryOp::Sign));
    t.add("Sin", |b, l, ins| unary(b, l, ins, UnaryOp::Sin));
    t.add("Cos", |b, l, ins| unary(b, l, ins, UnaryOp::Cos));
    t.add("Tan", |b, l, ins| unary(b, l, ins, UnaryOp::Tan));
    t.add("Asin", |b, l, ins| unary(b, l, ins, UnaryOp::Asin));
    t.add("Acos", |b, l, ins| unary(b, l, ins, UnaryOp::Acos));
    t.add("Atan", |b, l, ins| unary(b, l, ins, UnaryOp::Atan));
    t.add("Sinh", |b, l, ins| unary(b, l, ins, UnaryOp::Sinh));
    t.add("Cosh", |b, l, ins| unary(b, l, ins, UnaryOp::Cosh));
    t.add("Asinh", |b, l, ins| unary(b, l, ins, UnaryOp::Asinh));
    t.add("Acosh", |b, l, ins| unary(b, l, ins, UnaryOp::Acosh));
    t.add("Atanh", |b, l, ins| unary(b, l, ins, UnaryOp::Atanh));
}

/// `IsInf-10` (`detect_positive`/`detect_negative`, both true by default).
fn is_inf(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    let op = UnaryOp::IsInf {
        detect_positive: l.bool_attr("detect_positive", true)?,
        detect_negative: l.bool_attr("detect_negative", true)?,
    };
    unary(b, l, ins, op)
}
