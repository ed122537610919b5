//! The `com.microsoft` ops that ONNX Runtime's quantizer and graph optimizer write into models
//! people ship, each imported as the standard ops it stands for (semantics from ONNX Runtime's
//! contrib op documentation, checked against ONNX Runtime by `tests/contrib.rs`):
//! - QOperator-format quantized ops (QLinearAdd, QLinearMul, QLinearSigmoid, QLinearLeakyRelu,
//!   QLinearSoftmax, QLinearConcat, QLinearAveragePool, QLinearGlobalAveragePool) become
//!   DequantizeLinear → the float op → QuantizeLinear, the QDQ form lpc's quantizer and fold
//!   rules read, so `lpc fold` turns them into integer kernels like any QDQ model. That is the
//!   spec's arithmetic; ONNX Runtime's x86 QLinearAdd kernel folds the zero points into one
//!   constant and uses fused multiply-adds, so about 1.5·10⁻⁴ of its u8 results differ by one
//!   at rounding ties (measured on 600k random elements against this formula). (ONNX
//!   Runtime's QLinearSoftmax kernel multiplies by `floor(1 / y_scale)`: the same codes for the
//!   1/256 output scale its quantizer writes, ±1 for other scales, where lpc follows the spec);
//! - integer matrix products (QGemm, MatMulIntegerToFloat, DynamicQuantizeMatMul) become
//!   MatMulInteger in i32 and one f32 rescale (requantized with QuantizeLinear when the output
//!   is quantized), the arithmetic ONNX Runtime's kernels use;
//! - DynamicQuantizeLSTM becomes an f32 LSTM on its dequantized weights (ONNX Runtime also
//!   quantizes X and H per step, which moves its outputs by about 1% of their range);
//! - fused float ops (FusedConv, FusedGemm, Gelu, BiasGelu, FastGelu, QuickGelu,
//!   SkipLayerNormalization, SkipSimplifiedLayerNormalization, and the default-domain
//!   SimplifiedLayerNormalization ONNX Runtime registers) become the ops they fuse.
//!
//! Registered as `com.microsoft.<op_type>` (the importer looks contrib nodes up by that key).

use super::table::{Converted, Cx, Table};
use crate::ImportError;
use lpc_ir::*;

/// Registers the contrib converters.
pub(super) fn register(t: &mut Table) {
    t.add("com.microsoft.QLinearAdd", |cx, g| {
        qlinear_binary(cx, g, BinaryOp::Add)
    });
    t.add("com.microsoft.QLinearMul", |cx, g| {
        qlinear_binary(cx, g, BinaryOp::Mul)
    });
    t.add("com.microsoft.QLinearSigmoid", |cx, g| {
        qlinear_unary(cx, g, Op::Unary(UnaryOp::Sigmoid))
    });
    t.add("com.microsoft.QLinearLeakyRelu", |cx, g| {
        let alpha = cx.a.float("alpha", 0.01)?;
        qlinear_unary(cx, g, Op::Unary(UnaryOp::LeakyRelu { alpha }))
    });
    t.add("com.microsoft.QLinearAveragePool", |cx, g| {
        let a = cx.a;
        let op = Op::AveragePool {
            pool: a.pool()?,
            count_include_pad: a.bool("count_include_pad", false)?,
        };
        qlinear_unary(cx, g, op)
    });
    t.add("com.microsoft.QLinearGlobalAveragePool", |cx, g| {
        qlinear_unary(cx, g, Op::GlobalAveragePool)
    });
    t.add("com.microsoft.QLinearSoftmax", |cx, g| {
        let a = cx.a;
        // The ONNX opset the softmax follows: before 13 the input is coerced to 2-D at axis.
        let opset = a.int("opset", -1)?;
        if opset < 1 {
            return Err(a.err("attribute 'opset' (the Softmax opset followed) is required"));
        }
        let coerce_2d = opset < 13;
        let axis = a.int("axis", if coerce_2d { 1 } else { -1 })?;
        qlinear_unary(cx, g, Op::Softmax { axis, coerce_2d })
    });
    t.add("com.microsoft.QLinearConcat", qlinear_concat);
    t.add("com.microsoft.QGemm", qgemm);
    t.add(
        "com.microsoft.MatMulIntegerToFloat",
        matmul_integer_to_float,
    );
    t.add(
        "com.microsoft.DynamicQuantizeMatMul",
        dynamic_quantize_matmul,
    );
    t.add("com.microsoft.DynamicQuantizeLSTM", dynamic_quantize_lstm);
    t.add("com.microsoft.FusedConv", fused_conv);
    t.add("com.microsoft.FusedGemm", fused_gemm);
    t.add("com.microsoft.Gelu", |cx, _| {
        cx.need(1)?;
        Ok(Converted::Op(Op::Unary(UnaryOp::Gelu { tanh: false })))
    });
    t.add("com.microsoft.BiasGelu", |cx, g| {
        biased_gelu(cx, g, false, true)
    });
    t.add("com.microsoft.FastGelu", |cx, g| {
        biased_gelu(cx, g, true, false)
    });
    t.add("com.microsoft.QuickGelu", quick_gelu);
    t.add("com.microsoft.SkipLayerNormalization", |cx, g| {
        skip_norm(cx, g, false)
    });
    t.add("com.microsoft.SkipSimplifiedLayerNormalization", |cx, g| {
        skip_norm(cx, g, true)
    });
    // ONNX Runtime registers these two in the default domain (opset 1 on), and its
    // transformer optimizer writes them there.
    t.add("SimplifiedLayerNormalization", simplified_layer_norm);
    t.add(
        "com.microsoft.SimplifiedLayerNormalization",
        simplified_layer_norm,
    );
}

/// Input `i`, which must be present.
fn req(cx: &Cx, i: usize, what: &str) -> Result<ValueRef, ImportError> {
    cx.ins
        .get(i)
        .copied()
        .flatten()
        .ok_or_else(|| cx.a.err(format!("input {i} ({what}) is required")))
}

/// Input `i` when present.
fn opt(cx: &Cx, i: usize) -> Option<ValueRef> {
    cx.ins.get(i).copied().flatten()
}

/// The dtype of `v` when known at import: a constant's, or the declared one.
fn known_dtype(g: &Graph, v: ValueRef) -> Option<DType> {
    match g.const_value(v) {
        Some(t) => Some(t.dtype()),
        None => g.output(v).ty.dtype,
    }
}

/// A zero point: input `i`, or (omitted) a zero of `like`'s dtype.
fn zero_point(
    cx: &mut Cx,
    g: &mut Graph,
    i: usize,
    like: ValueRef,
) -> Result<ValueRef, ImportError> {
    if let Some(z) = opt(cx, i) {
        return Ok(z);
    }
    let d = known_dtype(g, like).ok_or_else(|| {
        cx.a.err(format!(
            "input {i} (a zero point) is omitted and the quantized input's dtype is not known \
             at import; give the zero point"
        ))
    })?;
    let zero = Tensor::scalar_i64(0).into_dtype(d);
    Ok(cx.me.konst(g, &cx.first_out, zero))
}

/// DequantizeLinear of `x` (the contrib QLinear ops are per tensor).
fn dequantize(
    cx: &mut Cx,
    g: &mut Graph,
    suffix: &str,
    x: ValueRef,
    scale: ValueRef,
    zp: Option<ValueRef>,
) -> ValueRef {
    let op = Op::DequantizeLinear {
        q: QuantAxis {
            axis: 1,
            block_size: 0,
        },
    };
    cx.helper(g, suffix, op, &[Some(x), Some(scale), zp])
}

/// Makes the main op `QuantizeLinear(y, scale, zp)`, to zp's dtype.
fn quantize_main(
    cx: &mut Cx,
    g: &Graph,
    y: ValueRef,
    scale: ValueRef,
    zp: ValueRef,
) -> Result<Converted, ImportError> {
    let dtype =
        match known_dtype(g, zp) {
            Some(d @ (DType::U8 | DType::I8)) => d,
            Some(d) => {
                return Err(cx
                    .a
                    .err(format!("the output zero point is {d}, not u8 or i8")))
            }
            None => return Err(cx.a.err(
                "the output zero point's dtype is not known at import (give it as an initializer)",
            )),
        };
    cx.ins = vec![Some(y), Some(scale), Some(zp)];
    cx.n_out = 1;
    Ok(Converted::Op(Op::QuantizeLinear {
        q: QuantAxis {
            axis: 1,
            block_size: 0,
        },
        dtype,
    }))
}

/// QLinearAdd / QLinearMul: (a, a_scale, a_zp?, b, b_scale, b_zp?, c_scale, c_zp?).
fn qlinear_binary(cx: &mut Cx, g: &mut Graph, b: BinaryOp) -> Result<Converted, ImportError> {
    let (x, xs, y, ys, cs) = (
        req(cx, 0, "A")?,
        req(cx, 1, "A_scale")?,
        req(cx, 3, "B")?,
        req(cx, 4, "B_scale")?,
        req(cx, 6, "C_scale")?,
    );
    let (xz, yz) = (opt(cx, 2), opt(cx, 5));
    let cz = zero_point(cx, g, 7, x)?;
    let dx = dequantize(cx, g, "dq_a", x, xs, xz);
    let dy = dequantize(cx, g, "dq_b", y, ys, yz);
    let r = cx.helper(g, "float", Op::Binary(b), &[Some(dx), Some(dy)]);
    quantize_main(cx, g, r, cs, cz)
}

/// An elementwise or pooling QLinear op: (x, x_scale, x_zp?, y_scale, y_zp?) →
/// Q(op(DQ(x))). `channels_last` (pools) runs the op on the NCHW transpose.
fn qlinear_unary(cx: &mut Cx, g: &mut Graph, op: Op) -> Result<Converted, ImportError> {
    let (x, xs, ys) = (
        req(cx, 0, "X")?,
        req(cx, 1, "X_scale")?,
        req(cx, 3, "Y_scale")?,
    );
    let xz = opt(cx, 2);
    let yz = zero_point(cx, g, 4, x)?;
    let channels_last = cx.a.bool("channels_last", false)?;
    if channels_last && !matches!(op, Op::AveragePool { .. } | Op::GlobalAveragePool) {
        return Err(cx
            .a
            .err("channels_last is only an attribute of the pooling ops"));
    }
    let mut d = dequantize(cx, g, "dq", x, xs, xz);
    if channels_last {
        let rank = pool_rank(cx, &op)?;
        d = cx.helper(g, "nchw", transpose_to_nchw(rank), &[Some(d)]);
    }
    let mut r = cx.helper(g, "float", op.clone(), &[Some(d)]);
    if channels_last {
        let rank = pool_rank(cx, &op)?;
        r = cx.helper(g, "nhwc", transpose_to_nhwc(rank), &[Some(r)]);
    }
    quantize_main(cx, g, r, ys, yz)
}

/// The rank a channels-last pool's input has: from the kernel, or (global pool) the input's
/// declared rank.
fn pool_rank(cx: &Cx, op: &Op) -> Result<usize, ImportError> {
    match op {
        Op::AveragePool { pool, .. } => Ok(pool.kernel.len() + 2),
        _ => Err(cx.a.err(
            "channels_last QLinearGlobalAveragePool is not supported: lpc needs the input's rank \
             at import (export the model channels-first)",
        )),
    }
}

/// The permutation NHWC… → NCHW… for rank `r`.
fn transpose_to_nchw(r: usize) -> Op {
    let mut perm = vec![0, r - 1];
    perm.extend(1..r - 1);
    Op::Transpose { perm }
}

/// The permutation NCHW… → NHWC… for rank `r`.
fn transpose_to_nhwc(r: usize) -> Op {
    let mut perm = vec![0];
    perm.extend(2..r);
    perm.push(1);
    Op::Transpose { perm }
}

/// QLinearConcat: (y_scale, y_zp, (x, x_scale, x_zp)...) → Q(Concat(DQ(x)...)).
fn qlinear_concat(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let axis = cx.a.int("axis", i64::MIN)?;
    if axis == i64::MIN {
        return Err(cx.a.err("attribute 'axis' is required"));
    }
    let (ys, yz) = (req(cx, 0, "Y_scale")?, req(cx, 1, "Y_zero_point")?);
    let rest = cx.ins.len().saturating_sub(2);
    if rest == 0 || !rest.is_multiple_of(3) {
        return Err(cx.a.err(format!(
            "takes (tensor, scale, zero point) triples after Y_scale and Y_zero_point, got {rest} more input(s)"
        )));
    }
    let mut parts = vec![];
    for k in 0..rest / 3 {
        let base = 2 + 3 * k;
        let x = req(cx, base, "input")?;
        let s = req(cx, base + 1, "input scale")?;
        let z = opt(cx, base + 2);
        parts.push(Some(dequantize(cx, g, &format!("dq{k}"), x, s, z)));
    }
    let r = cx.helper(g, "float", Op::Concat { axis }, &parts);
    quantize_main(cx, g, r, ys, yz)
}

/// `x` transposed (2-D) when `t`.
fn maybe_transpose(cx: &mut Cx, g: &mut Graph, x: ValueRef, t: bool, suffix: &str) -> ValueRef {
    if t {
        cx.helper(g, suffix, Op::Transpose { perm: vec![1, 0] }, &[Some(x)])
    } else {
        x
    }
}

/// `scale · f32(acc)` (+ `bias`), the rescale of an i32 product.
fn rescale(
    cx: &mut Cx,
    g: &mut Graph,
    acc: ValueRef,
    scale: ValueRef,
    bias: Option<ValueRef>,
) -> ValueRef {
    let f = cx.helper(
        g,
        "acc_f32",
        Op::Unary(UnaryOp::Cast { to: DType::F32 }),
        &[Some(acc)],
    );
    let y = cx.helper(
        g,
        "rescaled",
        Op::Binary(BinaryOp::Mul),
        &[Some(f), Some(scale)],
    );
    match bias {
        Some(b) => cx.helper(g, "biased", Op::Binary(BinaryOp::Add), &[Some(y), Some(b)]),
        None => y,
    }
}

/// Ends a converter with `x` as the node's value (an Identity main node).
fn finish(cx: &mut Cx, x: ValueRef) -> Converted {
    cx.ins = vec![Some(x)];
    cx.n_out = 1;
    Converted::Op(Op::Unary(UnaryOp::Identity))
}

/// QGemm: (A, a_scale, a_zp, B, b_scale, b_zp, C?, y_scale?, y_zp?); `acc = op(A − a_zp) ·
/// op(B − b_zp) + C` in i32, then `f32(acc) · (a_scale · b_scale · alpha)`, divided by
/// y_scale and requantized when y_scale is given (b's scale and zero point per column or
/// per tensor).
fn qgemm(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let (ta, tb) = (a.bool("transA", false)?, a.bool("transB", false)?);
    let alpha = a.float("alpha", 1.0)?;
    if !alpha.is_finite() {
        return Err(a.err(format!("attribute 'alpha' is {alpha}")));
    }
    let (x, xs, xz) = (
        req(cx, 0, "A")?,
        req(cx, 1, "a_scale")?,
        req(cx, 2, "a_zero_point")?,
    );
    let (w, ws, wz) = (
        req(cx, 3, "B")?,
        req(cx, 4, "b_scale")?,
        req(cx, 5, "b_zero_point")?,
    );
    let (c, ys) = (opt(cx, 6), opt(cx, 7));
    let a_in = x;
    let x = maybe_transpose(cx, g, x, ta, "a_t");
    let w = maybe_transpose(cx, g, w, tb, "b_t");
    let mut acc = cx.helper(
        g,
        "acc",
        Op::MatMulInteger,
        &[Some(x), Some(w), Some(xz), Some(wz)],
    );
    if let Some(c) = c {
        acc = cx.helper(g, "acc_c", Op::Binary(BinaryOp::Add), &[Some(acc), Some(c)]);
    }
    let mut scale = cx.helper(g, "scale", Op::Binary(BinaryOp::Mul), &[Some(xs), Some(ws)]);
    if alpha != 1.0 {
        let k = cx.me.konst(g, &cx.first_out, Tensor::scalar_f32(alpha));
        scale = cx.helper(
            g,
            "scale_alpha",
            Op::Binary(BinaryOp::Mul),
            &[Some(scale), Some(k)],
        );
    }
    let Some(ys) = ys else {
        let y = rescale(cx, g, acc, scale, None);
        return Ok(finish(cx, y));
    };
    let yz = zero_point(cx, g, 8, a_in)?;
    // Requantize as ONNX Runtime does: f32(acc) · (a_scale · b_scale · alpha / y_scale),
    // rounded to even, plus the zero point (QuantizeLinear with scale 1).
    let mult = cx.helper(
        g,
        "mult",
        Op::Binary(BinaryOp::Div),
        &[Some(scale), Some(ys)],
    );
    let y = rescale(cx, g, acc, mult, None);
    let one = cx.me.konst(g, &cx.first_out, Tensor::scalar_f32(1.0));
    quantize_main(cx, g, y, one, yz)
}

/// MatMulIntegerToFloat: (A, B, a_scale, b_scale, a_zp?, b_zp?, bias?) →
/// `f32(MatMulInteger(A, B, a_zp, b_zp)) · (a_scale · b_scale) + bias`.
fn matmul_integer_to_float(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let (x, w, xs, ws) = (
        req(cx, 0, "A")?,
        req(cx, 1, "B")?,
        req(cx, 2, "a_scale")?,
        req(cx, 3, "b_scale")?,
    );
    let (xz, wz, bias) = (opt(cx, 4), opt(cx, 5), opt(cx, 6));
    let acc = cx.helper(g, "acc", Op::MatMulInteger, &[Some(x), Some(w), xz, wz]);
    let scale = cx.helper(g, "scale", Op::Binary(BinaryOp::Mul), &[Some(xs), Some(ws)]);
    let y = rescale(cx, g, acc, scale, bias);
    Ok(finish(cx, y))
}

/// DynamicQuantizeMatMul: (A f32, B, b_scale, b_zp?, bias?): A quantized to u8 at run time
/// (DynamicQuantizeLinear), then as MatMulIntegerToFloat.
fn dynamic_quantize_matmul(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let (x, w, ws) = (req(cx, 0, "A")?, req(cx, 1, "B")?, req(cx, 2, "b_scale")?);
    let (wz, bias) = (opt(cx, 3), opt(cx, 4));
    let names: Vec<String> = (0..3).map(|_| cx.me.fresh_value(&cx.first_out)).collect();
    let q = g.add_node(
        format!("{}__quantize_a", cx.name),
        Op::DynamicQuantizeLinear,
        &[Some(x)],
        names.into_iter().map(Output::named).collect(),
    );
    let out = |i| ValueRef { node: q, output: i };
    let acc = cx.helper(
        g,
        "acc",
        Op::MatMulInteger,
        &[Some(out(0)), Some(w), Some(out(2)), wz],
    );
    let scale = cx.helper(
        g,
        "scale",
        Op::Binary(BinaryOp::Mul),
        &[Some(out(1)), Some(ws)],
    );
    let y = rescale(cx, g, acc, scale, bias);
    Ok(finish(cx, y))
}

/// DynamicQuantizeLSTM: (X, W, R, B?, sequence_lens?, initial_h?, initial_c?, P?, W_scale,
/// W_zero_point, R_scale, R_zero_point) with W `[dirs, input, 4·hidden]` and R
/// `[dirs, hidden, 4·hidden]` quantized per direction (scale `[dirs]`) or per gate column
/// (`[dirs, 4·hidden]`): an LSTM on `(W − zp) · scale` transposed to ONNX's layout.
fn dynamic_quantize_lstm(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let (w, r) = (req(cx, 1, "W")?, req(cx, 2, "R")?);
    let (ws, wz) = (req(cx, 8, "W_scale")?, req(cx, 9, "W_zero_point")?);
    let (rs, rz) = (req(cx, 10, "R_scale")?, req(cx, 11, "R_zero_point")?);
    let wf = dequantize_rnn_weight(cx, g, "w", w, ws, wz)?;
    let rf = dequantize_rnn_weight(cx, g, "r", r, rs, rz)?;
    cx.ins.truncate(8);
    cx.ins[1] = Some(wf);
    cx.ins[2] = Some(rf);
    if !cx.a.has("hidden_size") {
        return Err(cx.a.err("attribute 'hidden_size' is required"));
    }
    let rnn = super::recurrent::rnn_attrs(cx, g, 3)?;
    let input_forget = cx.a.bool("input_forget", false)?;
    Ok(Converted::Op(Op::Lstm { rnn, input_forget }))
}

/// `(w − zp) · scale` for a `[dirs, rows, 4·hidden]` weight with constant per-direction
/// (`[dirs]`) or per-column (`[dirs, 4·hidden]`) parameters, transposed to
/// `[dirs, 4·hidden, rows]`.
fn dequantize_rnn_weight(
    cx: &mut Cx,
    g: &mut Graph,
    which: &str,
    w: ValueRef,
    scale: ValueRef,
    zp: ValueRef,
) -> Result<ValueRef, ImportError> {
    let rank = |v: ValueRef| g.const_value(v).map(|t| t.rank());
    let axes: Vec<i64> = match (rank(scale), rank(zp)) {
        (Some(1), Some(1)) => vec![1, 2],
        (Some(2), Some(2)) => vec![1],
        _ => {
            return Err(cx.a.err(format!(
                "the {} scale and zero point must be constants of rank 1 (per direction) or 2                  (per column), both the same",
                which.to_uppercase()
            )))
        }
    };
    let n = axes.len();
    let axes = Tensor::from_i64(&[n], axes).map_err(|e| cx.a.err(e.to_string()))?;
    let axes = cx.me.konst(g, &cx.first_out, axes);
    let s3 = cx.helper(
        g,
        &format!("{which}_scale"),
        Op::Unsqueeze,
        &[Some(scale), Some(axes)],
    );
    let z3 = cx.helper(
        g,
        &format!("{which}_zp"),
        Op::Unsqueeze,
        &[Some(zp), Some(axes)],
    );
    let f32 = || Op::Unary(UnaryOp::Cast { to: DType::F32 });
    let wf = cx.helper(g, &format!("{which}_f32"), f32(), &[Some(w)]);
    let zf = cx.helper(g, &format!("{which}_zp_f32"), f32(), &[Some(z3)]);
    let d = cx.helper(
        g,
        &format!("{which}_centered"),
        Op::Binary(BinaryOp::Sub),
        &[Some(wf), Some(zf)],
    );
    let m = cx.helper(
        g,
        &format!("{which}_dq"),
        Op::Binary(BinaryOp::Mul),
        &[Some(d), Some(s3)],
    );
    Ok(cx.helper(
        g,
        &format!("{which}_onnx_layout"),
        Op::Transpose {
            perm: vec![0, 2, 1],
        },
        &[Some(m)],
    ))
}

/// The activation of FusedConv / FusedGemm applied to `x`; `params` are its attributes in
/// ONNX Runtime's order (LeakyRelu alpha; Clip min, max; HardSigmoid alpha, beta).
fn activation(
    cx: &mut Cx,
    g: &mut Graph,
    x: ValueRef,
    name: &str,
    params: &[f32],
) -> Result<ValueRef, ImportError> {
    let p = |i: usize, default: f32| params.get(i).copied().unwrap_or(default);
    let op = match name {
        "" | "Identity" => return Ok(x),
        "Relu" => UnaryOp::Relu,
        "Tanh" => UnaryOp::Tanh,
        "Sigmoid" => UnaryOp::Sigmoid,
        "LeakyRelu" => UnaryOp::LeakyRelu { alpha: p(0, 0.01) },
        "HardSigmoid" => UnaryOp::HardSigmoid {
            alpha: p(0, 0.2),
            beta: p(1, 0.5),
        },
        "Clip" => {
            let lo = cx
                .me
                .konst(g, &cx.first_out, Tensor::scalar_f32(p(0, f32::MIN)));
            let hi = cx
                .me
                .konst(g, &cx.first_out, Tensor::scalar_f32(p(1, f32::MAX)));
            return Ok(cx.helper(g, "clip", Op::Clip, &[Some(x), Some(lo), Some(hi)]));
        }
        other => {
            return Err(cx.a.err(format!(
            "activation '{other}' is not one of Relu, Tanh, Sigmoid, LeakyRelu, HardSigmoid, Clip"
        )))
        }
    };
    Ok(cx.helper(g, "act", Op::Unary(op), &[Some(x)]))
}

/// FusedConv: Conv (X, W, B?), plus Z when given, then the activation.
fn fused_conv(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let conv = Op::Conv(a.conv()?);
    let act = a.string("activation", "")?;
    let params = a.floats("activation_params")?.unwrap_or_default();
    let (x, w) = (req(cx, 0, "X")?, req(cx, 1, "W")?);
    let (b, z) = (opt(cx, 2), opt(cx, 3));
    let mut y = cx.helper(g, "conv", conv, &[Some(x), Some(w), b]);
    if let Some(z) = z {
        y = cx.helper(g, "sum", Op::Binary(BinaryOp::Add), &[Some(y), Some(z)]);
    }
    let y = activation(cx, g, y, &act, &params)?;
    Ok(finish(cx, y))
}

/// FusedGemm: Gemm, then the activation (`activation_alpha`, `activation_beta`;
/// `leaky_relu_alpha` in older models).
fn fused_gemm(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let gemm = Op::Gemm {
        alpha: a.float("alpha", 1.0)?,
        beta: a.float("beta", 1.0)?,
        trans_a: a.bool("transA", false)?,
        trans_b: a.bool("transB", false)?,
    };
    let act = a.string("activation", "")?;
    let first = if a.has("leaky_relu_alpha") {
        a.float("leaky_relu_alpha", 0.01)?
    } else {
        a.float("activation_alpha", f32::NAN)?
    };
    let second = a.float("activation_beta", f32::NAN)?;
    let params: Vec<f32> = [first, second]
        .into_iter()
        .take_while(|v| !v.is_nan())
        .collect();
    let (x, w, c) = (req(cx, 0, "A")?, req(cx, 1, "B")?, opt(cx, 2));
    let y = cx.helper(g, "gemm", gemm, &[Some(x), Some(w), c]);
    let y = activation(cx, g, y, &act, &params)?;
    Ok(finish(cx, y))
}

/// BiasGelu (A + B, exact Gelu) and FastGelu (X + bias?, tanh Gelu).
fn biased_gelu(
    cx: &mut Cx,
    g: &mut Graph,
    tanh: bool,
    bias_required: bool,
) -> Result<Converted, ImportError> {
    let x = req(cx, 0, "X")?;
    let bias = if bias_required {
        Some(req(cx, 1, "bias")?)
    } else {
        opt(cx, 1)
    };
    let x = match bias {
        Some(b) => cx.helper(g, "biased", Op::Binary(BinaryOp::Add), &[Some(x), Some(b)]),
        None => x,
    };
    cx.ins = vec![Some(x)];
    cx.n_out = 1;
    Ok(Converted::Op(Op::Unary(UnaryOp::Gelu { tanh })))
}

/// QuickGelu: `x · sigmoid(alpha · x)`, alpha 1.702 by default.
fn quick_gelu(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let alpha = cx.a.float("alpha", 1.702)?;
    let x = req(cx, 0, "X")?;
    let k = cx.me.konst(g, &cx.first_out, Tensor::scalar_f32(alpha));
    let ax = cx.helper(g, "ax", Op::Binary(BinaryOp::Mul), &[Some(x), Some(k)]);
    let s = cx.helper(g, "sigmoid", Op::Unary(UnaryOp::Sigmoid), &[Some(ax)]);
    cx.ins = vec![Some(x), Some(s)];
    cx.n_out = 1;
    Ok(Converted::Op(Op::Binary(BinaryOp::Mul)))
}

/// SkipLayerNormalization (input, skip, gamma, beta?, bias?) and its RMS form
/// SkipSimplifiedLayerNormalization (input, skip, gamma, bias?): the sum input + skip (+ bias)
/// normalised over the last axis; outputs (y, mean?, inv_std_var?, sum?).
fn skip_norm(cx: &mut Cx, g: &mut Graph, rms: bool) -> Result<Converted, ImportError> {
    let a = cx.a;
    let epsilon = a.float("epsilon", 1e-12)?;
    let (x, skip, gamma) = (
        req(cx, 0, "input")?,
        req(cx, 1, "skip")?,
        req(cx, 2, "gamma")?,
    );
    let (beta, bias) = if rms {
        (None, opt(cx, 3))
    } else {
        (opt(cx, 3), opt(cx, 4))
    };
    let names = cx.out_names.clone();
    let named = |i: usize| names.get(i).is_some_and(|n| !n.is_empty());
    if (1..3).any(named) {
        return Err(a.err(
            "the mean and inv_std_var outputs (training only) are not supported; \
             only output and input_skip_bias_sum",
        ));
    }
    let mut sum = cx.helper(g, "sum", Op::Binary(BinaryOp::Add), &[Some(x), Some(skip)]);
    if let Some(b) = bias {
        sum = cx.helper(
            g,
            "sum_bias",
            Op::Binary(BinaryOp::Add),
            &[Some(sum), Some(b)],
        );
    }
    if named(3) {
        let id = g.add_node(
            format!("{}__skip_sum", cx.name),
            Op::Unary(UnaryOp::Identity),
            &[Some(sum)],
            vec![Output::named(names[3].clone())],
        );
        cx.me.bind(&names[3], ValueRef::first(id), a)?;
    }
    cx.n_out = 1;
    if rms {
        cx.ins = vec![Some(sum), Some(gamma)];
        return Ok(Converted::Op(Op::RmsNorm { axis: -1, epsilon }));
    }
    cx.ins = vec![Some(sum), Some(gamma), beta];
    Ok(Converted::Op(Op::LayerNorm { axis: -1, epsilon }))
}

/// SimplifiedLayerNormalization (X, scale): RMS normalisation from `axis` on.
fn simplified_layer_norm(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    cx.need(2)?;
    if cx.n_out > 1 {
        return Err(a.err("only the first output (Y) is supported; inv_std_var is for training"));
    }
    Ok(Converted::Op(Op::RmsNorm {
        axis: a.int("axis", -1)?,
        epsilon: a.float("epsilon", 1e-5)?,
    }))
}
