//! ONNX optionals. lpc has no optional type: an optional value is either a tensor or absent,
//! which is known at import, so `OptionalHasElement` becomes a bool constant and
//! `OptionalGetElement` of a tensor an Identity. Optional-typed graph inputs (whose presence
//! is only known at run time) are refused where graph inputs are read.

use super::table::{Converted, Table};
use lpc_ir::*;

/// Registers this family's converters.
pub(super) fn register(t: &mut Table) {
    // Input 0 absent (no input, or an empty name): false; a tensor: true.
    t.add("OptionalHasElement", |cx, g| {
        let present = cx.ins.first().is_some_and(Option::is_some);
        let t = Tensor::new(&[], TensorData::Bool(vec![present]))
            .map_err(|e| cx.a.err(e.to_string()))?;
        let v = g.add_const(cx.first_out.clone(), t);
        cx.me.bind(&cx.first_out, v, cx.a)?;
        Ok(Converted::Bound)
    });
    // Of a tensor (opset 18 on) the tensor itself; of an absent value an error, as in ONNX
    // Runtime.
    t.add("OptionalGetElement", |cx, _| {
        if !cx.ins.first().is_some_and(Option::is_some) {
            return Err(cx
                .a
                .err("input 0 is absent: an empty optional has no element"));
        }
        Ok(Converted::Op(Op::Unary(UnaryOp::Identity)))
    });
}
