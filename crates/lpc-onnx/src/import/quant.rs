//! Quantization ONNX ops: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear and the
//! integer / QLinear convolutions and matrix products.

use super::table::{Converted, Cx, Table};
use crate::tensor::{dtype_from_onnx, onnx_type_name};
use crate::ImportError;
use lpc_ir::*;

/// Registers this family's converters.
pub(super) fn register(t: &mut Table) {
    t.add("ConvInteger", conv_integer);
    t.add("QLinearConv", qlinear_conv);
    t.add("MatMulInteger", |_, _| Ok(Converted::Op(Op::MatMulInteger)));
    t.add("QLinearMatMul", |_, _| Ok(Converted::Op(Op::QLinearMatMul)));
    t.add("QuantizeLinear", quantize_linear);
    t.add("DequantizeLinear", dequantize_linear);
    t.add("DynamicQuantizeLinear", |_, _| {
        Ok(Converted::Op(Op::DynamicQuantizeLinear))
    });
}

/// `ConvInteger`.
fn conv_integer(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    Ok(Converted::Op(Op::ConvInteger(a.conv()?)))
}

/// `QLinearConv`.
fn qlinear_conv(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    Ok(Converted::Op(Op::QLinearConv(a.conv()?)))
}

/// `QuantizeLinear`.
fn quantize_linear(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let zp_dtype = cx
        .ins
        .get(2)
        .copied()
        .flatten()
        .and_then(|z| g.const_value(z).map(|t| t.dtype()));
    let out_attr = a.int("output_dtype", 0)?;
    let dtype = match (zp_dtype, out_attr) {
        (Some(d), _) => d,
        (None, 0) => DType::U8,
        (None, c) => dtype_from_onnx(c as i32).ok_or_else(|| {
            a.err(format!(
                "output_dtype {} is not supported",
                onnx_type_name(c as i32)
            ))
        })?,
    };
    if !matches!(dtype, DType::U8 | DType::I8 | DType::I32) {
        return Err(a.err(format!("quantizing to {dtype} is not supported")));
    }
    if a.int("saturate", 1)? != 1 {
        return Err(a.err("saturate=0 (float8 only) is not supported"));
    }
    let block_size = a.int("block_size", 0)?;
    if block_size < 0 {
        return Err(a.err("negative block_size"));
    }
    Ok(Converted::Op(Op::QuantizeLinear {
        q: QuantAxis {
            axis: a.int("axis", 1)?,
            block_size: block_size as usize,
        },
        dtype,
    }))
}

/// `DequantizeLinear`.
fn dequantize_linear(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let block_size = a.int("block_size", 0)?;
    if block_size < 0 {
        return Err(a.err("negative block_size"));
    }
    if a.int("output_dtype", 0)? != 0 {
        return Err(a.err("output_dtype is not supported"));
    }
    Ok(Converted::Op(Op::DequantizeLinear {
        q: QuantAxis {
            axis: a.int("axis", 1)?,
            block_size: block_size as usize,
        },
    }))
}
