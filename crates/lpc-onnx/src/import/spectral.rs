//! Signal-processing ONNX ops: DFT, STFT and the window functions.

use super::table::{Converted, Cx, Table};
use crate::tensor::{dtype_from_onnx, onnx_type_name};
use crate::ImportError;
use lpc_ir::*;

/// Registers this family's converters.
pub(super) fn register(t: &mut Table) {
    t.add("DFT", dft);
    t.add("STFT", |cx, _| {
        Ok(Converted::Op(Op::Stft {
            onesided: bool_attr(cx, "onesided", true)?,
        }))
    });
    t.add("HannWindow", window);
    t.add("HammingWindow", window);
    t.add("BlackmanWindow", window);
    t.add("MelWeightMatrix", |cx, _| {
        let a = cx.a;
        cx.need(5)?;
        let code = a.int("output_datatype", 1)?;
        let dtype = dtype_from_onnx(code as i32)
            .filter(|&d| d != DType::Bool)
            .ok_or_else(|| {
                a.err(format!(
                    "output_datatype {} is not supported (a numeric type is needed)",
                    onnx_type_name(code as i32)
                ))
            })?;
        Ok(Converted::Op(Op::MelWeightMatrix { dtype }))
    });
}

/// `HannWindow`, `HammingWindow`, `BlackmanWindow`.
fn window(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let window = match cx.op_type.as_str() {
        "HannWindow" => WindowKind::Hann,
        "HammingWindow" => WindowKind::Hamming,
        _ => WindowKind::Blackman,
    };
    let code = a.int("output_datatype", 1)?;
    let dtype = dtype_from_onnx(code as i32)
        .filter(|d| d.is_float())
        .ok_or_else(|| {
            a.err(format!(
                "output_datatype {} is not supported (a float type is needed)",
                onnx_type_name(code as i32)
            ))
        })?;
    Ok(Converted::Op(Op::Window {
        window,
        periodic: bool_attr(cx, "periodic", true)?,
        dtype,
    }))
}

/// A 0/1 integer attribute.
fn bool_attr(cx: &Cx, key: &str, default: bool) -> Result<bool, ImportError> {
    match cx.a.int(key, default as i64)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(cx.a.err(format!("{key} must be 0 or 1, got {v}"))),
    }
}

/// `DFT`: opsets 17 and 19 have the axis as an attribute (default 1), which becomes a
/// constant input; opset 20 takes it as input 2 (default -2).
fn dft(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let (inverse, onesided) = (
        bool_attr(cx, "inverse", false)?,
        bool_attr(cx, "onesided", false)?,
    );
    if cx.opset < 20 {
        let axis = cx.a.int("axis", 1)?;
        cx.ins.truncate(2);
        cx.put(g, 2, Some(Tensor::scalar_i64(axis)));
    }
    Ok(Converted::Op(Op::Dft { inverse, onesided }))
}
