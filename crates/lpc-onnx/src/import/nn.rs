//! Neural-network ONNX ops: convolution, matrix products, pooling, normalization, softmax
//! and (inference-time) Dropout.

use super::table::{Converted, Cx, Table};
use crate::ImportError;
use lpc_ir::*;
use std::sync::Arc;

/// Registers this family's converters.
pub(super) fn register(t: &mut Table) {
    t.add("Dropout", dropout);
    t.add("Conv", conv);
    t.add("ConvTranspose", conv_transpose);
    t.add("DeformConv", deform_conv);
    t.add("MatMul", |_, _| Ok(Converted::Op(Op::MatMul)));
    t.add("Gemm", gemm);
    t.add("MaxPool", max_pool);
    t.add("AveragePool", average_pool);
    t.add("LpPool", lp_pool);
    t.add("GlobalAveragePool", |_, _| {
        Ok(Converted::Op(Op::GlobalAveragePool))
    });
    t.add("GlobalMaxPool", |_, _| Ok(Converted::Op(Op::GlobalMaxPool)));
    t.add("BatchNormalization", batch_normalization);
    t.add("LayerNormalization", layer_normalization);
    t.add("RMSNormalization", rms_normalization);
    t.add("Softmax", softmax);
    t.add("LogSoftmax", softmax);
    t.add("Hardmax", softmax);
    t.add("LpNormalization", lp_normalization);
    t.add("InstanceNormalization", |cx, _| {
        Ok(Converted::Op(Op::InstanceNorm {
            epsilon: cx.a.float("epsilon", 1e-5)?,
        }))
    });
    t.add("LRN", lrn);
    t.add("GroupNormalization", group_norm);
    t.add("MeanVarianceNormalization", |cx, _| {
        Ok(Converted::Op(Op::MeanVarianceNorm {
            axes: cx.a.ints("axes")?.unwrap_or_else(|| vec![0, 2, 3]),
        }))
    });
    t.add("MaxUnpool", |cx, _| {
        let a = cx.a;
        let kernel = a.usizes("kernel_shape")?;
        if kernel.is_empty() {
            return Err(a.err("kernel_shape is required"));
        }
        Ok(Converted::Op(Op::MaxUnpool {
            kernel,
            pads: a.usizes("pads")?,
            strides: a.usizes("strides")?,
        }))
    });
    t.add("CausalConvWithState", |cx, _| {
        let a = cx.a;
        let silu = match a.string("activation", "none")?.as_str() {
            "none" => false,
            "silu" | "swish" => true,
            other => {
                return Err(a.err(format!(
                    "attribute 'activation' must be none, silu or swish, got {other:?}"
                )))
            }
        };
        Ok(Converted::Op(Op::CausalConvWithState { silu }))
    });
    t.add("NegativeLogLikelihoodLoss", loss);
    t.add("SoftmaxCrossEntropyLoss", loss);
    t.add("Attention", attention);
}

/// `Dropout`.
fn dropout(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let name = cx.name.clone();
    // Inference: identity; the optional mask output is all true.
    if cx.n_out > 1 {
        let x = cx
            .ins
            .first()
            .copied()
            .flatten()
            .ok_or_else(|| a.err("needs an input"))?;
        let shape_name = cx.me.fresh_value(&cx.out_names[1]);
        let sh = g.add_node(
            format!("{name}__mask_shape"),
            Op::ShapeOf {
                start: 0,
                end: None,
            },
            &[Some(x)],
            vec![Output::named(shape_name)],
        );
        let value = Arc::new(Tensor::from_bool(&[], vec![true]).map_err(|e| a.err(e.to_string()))?);
        let m = g.add_node(
            format!("{name}__mask"),
            Op::ConstantOfShape { value },
            &[Some(ValueRef::first(sh))],
            vec![Output::named(cx.out_names[1].clone())],
        );
        cx.me.bind(&cx.out_names[1], ValueRef::first(m), a)?;
    }
    if let Some(t) = cx.ins.get(2).copied().flatten() {
        if g.const_value(t)
            .is_none_or(|t| t.to_i64_vec().iter().any(|&x| x != 0))
        {
            return Err(a.err("Dropout in training mode is not supported"));
        }
    }
    cx.ins.truncate(1);
    cx.n_out = 1;
    Ok(Converted::Op(Op::Unary(UnaryOp::Identity)))
}

/// `Conv`.
fn conv(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    Ok(Converted::Op(Op::Conv(a.conv()?)))
}

/// `DeformConv`: Conv's attributes (no auto_pad) and offset_group.
fn deform_conv(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    cx.need(3)?;
    if a.has("auto_pad") {
        return Err(a.err("DeformConv has no auto_pad attribute"));
    }
    let offset_group = a.int("offset_group", 1)?;
    if !(1..=(1 << 24)).contains(&offset_group) {
        return Err(a.err(format!("invalid offset_group {offset_group}")));
    }
    Ok(Converted::Op(Op::DeformConv {
        conv: a.conv()?,
        offset_group: offset_group as usize,
    }))
}

/// `ConvTranspose`.
fn conv_transpose(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    Ok(Converted::Op(Op::ConvTranspose {
        conv: a.conv()?,
        output_padding: a.usizes("output_padding")?,
        output_shape: a.usizes("output_shape")?,
    }))
}

/// `Gemm`.
fn gemm(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    Ok(Converted::Op(Op::Gemm {
        alpha: a.float("alpha", 1.0)?,
        beta: a.float("beta", 1.0)?,
        trans_a: a.bool("transA", false)?,
        trans_b: a.bool("transB", false)?,
    }))
}

/// `MaxPool`.
fn max_pool(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    Ok(Converted::Op(Op::MaxPool {
        pool: a.pool()?,
        storage_order: a.int("storage_order", 0)?,
    }))
}

/// `AveragePool`.
fn average_pool(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    Ok(Converted::Op(Op::AveragePool {
        pool: a.pool()?,
        count_include_pad: a.bool("count_include_pad", false)?,
    }))
}

/// `LpPool`; `p` was a float before opset 2 (an integral one is taken).
fn lp_pool(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let p = if cx.opset < 2 {
        let p = a.float("p", 2.0)?;
        if p.fract() != 0.0 || !(1.0..=1e6).contains(&p) {
            return Err(a.err(format!("attribute 'p' must be a positive integer, got {p}")));
        }
        p as i64
    } else {
        a.int("p", 2)?
    };
    if p < 1 {
        return Err(a.err(format!("attribute 'p' must be at least 1, got {p}")));
    }
    Ok(Converted::Op(Op::LpPool { pool: a.pool()?, p }))
}

/// `BatchNormalization`.
fn batch_normalization(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let training = a.bool("training_mode", false)?
        || (cx.opset < 9 && cx.n_out > 1 && a.int("is_test", 0)? == 0);
    Ok(Converted::Op(Op::BatchNorm {
        epsilon: a.float("epsilon", 1e-5)?,
        training,
        momentum: a.float("momentum", 0.9)?,
    }))
}

/// `LayerNormalization`.
fn layer_normalization(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    if a.int("stash_type", 1)? != 1 {
        return Err(a.err("only stash_type 1 (float) is supported"));
    }
    Ok(Converted::Op(Op::LayerNorm {
        axis: a.int("axis", -1)?,
        epsilon: a.float("epsilon", 1e-5)?,
    }))
}

/// `RMSNormalization` (opset 23).
fn rms_normalization(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    cx.need(2)?;
    if a.int("stash_type", 1)? != 1 {
        return Err(a.err("only stash_type 1 (float) is supported"));
    }
    Ok(Converted::Op(Op::RmsNorm {
        axis: a.int("axis", -1)?,
        epsilon: a.float("epsilon", 1e-5)?,
    }))
}

/// `Attention` (opsets 23–25): one lpc op, the attributes typed.
fn attention(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    cx.need(3)?;
    let heads = |key: &str| -> Result<usize, ImportError> {
        match a.int(key, 0)? {
            h if (0..=1 << 20).contains(&h) => Ok(h as usize),
            h => Err(a.err(format!("attribute '{key}' is {h} (must be positive)"))),
        }
    };
    let scale = match a.get("scale") {
        None => None,
        Some(_) => match a.float("scale", 1.0)? {
            s if s > 0.0 && s.is_finite() => Some(s),
            s => return Err(a.err(format!("attribute 'scale' is {s} (must be positive)"))),
        },
    };
    let softcap = match a.float("softcap", 0.0)? {
        c if c >= 0.0 && c.is_finite() => c,
        c => return Err(a.err(format!("attribute 'softcap' is {c} (must be >= 0)"))),
    };
    let softmax_precision = match a.get("softmax_precision") {
        None => None,
        Some(_) => {
            let code = a.int("softmax_precision", 1)?;
            match crate::tensor::dtype_from_onnx(code as i32) {
                Some(d) if d.is_float() => Some(d),
                _ => {
                    return Err(a.err(format!(
                        "attribute 'softmax_precision' is {code} (supported: 1 float, 10 float16, 11 double)"
                    )))
                }
            }
        }
    };
    let qk_output = match a.int("qk_matmul_output_mode", 0)? {
        m @ 0..=3 => QkOutput::ALL[m as usize],
        m => {
            return Err(a.err(format!(
                "attribute 'qk_matmul_output_mode' is {m} (expected 0 to 3)"
            )))
        }
    };
    let window = |key: &str| -> Result<i64, ImportError> {
        match a.int(key, -1)? {
            w if w >= -1 => Ok(w),
            w => Err(a.err(format!("attribute '{key}' is {w} (must be -1 or >= 0)"))),
        }
    };
    Ok(Converted::Op(Op::Attention(AttentionAttrs {
        is_causal: a.bool("is_causal", false)?,
        q_num_heads: heads("q_num_heads")?,
        kv_num_heads: heads("kv_num_heads")?,
        scale,
        softcap,
        softmax_precision,
        qk_output,
        left_window: window("left_window_size")?,
        right_window: window("right_window_size")?,
    })))
}

/// `Softmax`, `LogSoftmax`, `Hardmax`.
fn softmax(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let coerce_2d = cx.opset < 13;
    let axis = a.int("axis", if coerce_2d { 1 } else { -1 })?;
    Ok(Converted::Op(match cx.op_type.as_str() {
        "Softmax" => Op::Softmax { axis, coerce_2d },
        "Hardmax" => Op::Hardmax { axis, coerce_2d },
        _ => Op::LogSoftmax { axis, coerce_2d },
    }))
}

/// `LpNormalization`.
fn lp_normalization(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let axis = a.int("axis", -1)?;
    let p = a.int("p", 2)?;
    if !matches!(p, 1 | 2) {
        return Err(a.err(format!("attribute 'p' must be 1 or 2, got {p}")));
    }
    Ok(Converted::Op(Op::LpNormalization { axis, p }))
}

/// `NegativeLogLikelihoodLoss`, `SoftmaxCrossEntropyLoss`.
fn loss(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let reduction = match a.string("reduction", "mean")?.as_str() {
        "none" => LossReduction::None,
        "sum" => LossReduction::Sum,
        "mean" => LossReduction::Mean,
        o => return Err(a.err(format!("unknown reduction '{o}'"))),
    };
    let ignore_index = if a.has("ignore_index") {
        Some(a.int("ignore_index", 0)?)
    } else {
        None
    };
    Ok(Converted::Op(
        if cx.op_type == "NegativeLogLikelihoodLoss" {
            Op::NegativeLogLikelihoodLoss {
                reduction,
                ignore_index,
            }
        } else {
            Op::SoftmaxCrossEntropyLoss {
                reduction,
                ignore_index,
            }
        },
    ))
}

/// `LRN`: `size` is required and positive.
fn lrn(cx: &mut Cx, _: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    if !a.has("size") {
        return Err(a.err("attribute 'size' is required"));
    }
    let size = a.int("size", 0)?;
    if !(1..=(1 << 24)).contains(&size) {
        return Err(a.err(format!("attribute 'size' must be positive, got {size}")));
    }
    Ok(Converted::Op(Op::Lrn {
        alpha: a.float("alpha", 1e-4)?,
        beta: a.float("beta", 0.75)?,
        bias: a.float("bias", 1.0)?,
        size: size as usize,
    }))
}

/// `GroupNormalization`, opset 21 (scale and bias per channel); opset 18's per-group scale
/// and bias are refused, as is a `stash_type` other than float (1): lpc computes the
/// statistics in f64 whatever x's dtype.
fn group_norm(cx: &mut Cx, _: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    if cx.opset < 21 {
        return Err(a.err(format!(
            "GroupNormalization opset {} (per-group scale and bias) is not supported; opset 21 is",
            cx.opset
        )));
    }
    if !a.has("num_groups") {
        return Err(a.err("attribute 'num_groups' is required"));
    }
    let num_groups = a.int("num_groups", 0)?;
    if !(1..=(1 << 24)).contains(&num_groups) {
        return Err(a.err(format!(
            "attribute 'num_groups' must be positive, got {num_groups}"
        )));
    }
    let stash = a.int("stash_type", 1)?;
    if stash != 1 {
        return Err(a.err(format!(
            "attribute 'stash_type' {stash} is not supported (only 1, float)"
        )));
    }
    Ok(Converted::Op(Op::GroupNorm {
        num_groups: num_groups as usize,
        epsilon: a.float("epsilon", 1e-5)?,
    }))
}
