//! Inference rules of elementwise, convolution, matrix, pooling, normalisation and
//! quantization ops.

use super::{broadcast_dims, broadcasts_to, vt, vt_unranked, Cx, InferError, SymGen};
use crate::{
    AutoPad, BinaryOp, ConvAttrs, DType, Dim, LossReduction, PoolAttrs, QuantAxis, Shape, UnaryOp,
    ValueType,
};

type R = Result<Vec<ValueType>, InferError>;

fn is_float(d: DType) -> bool {
    d.is_float()
}

fn is_numeric(d: DType) -> bool {
    d != DType::Bool
}

fn is_q8(d: DType) -> bool {
    matches!(d, DType::U8 | DType::I8)
}

/// The dims of a type's shape, if its rank is known.
fn dims(t: &ValueType) -> Option<&[Dim]> {
    t.shape.as_ref().map(|s| s.0.as_slice())
}

pub(super) fn unary(cx: &Cx, u: &UnaryOp) -> R {
    let x = cx.req(0, "x")?;
    let (float_only, out) = match u {
        UnaryOp::Sqrt
        | UnaryOp::Reciprocal
        | UnaryOp::Exp
        | UnaryOp::Log
        | UnaryOp::Erf
        | UnaryOp::Sigmoid
        | UnaryOp::Tanh
        | UnaryOp::Ceil
        | UnaryOp::Floor
        | UnaryOp::Round
        | UnaryOp::Elu { .. }
        | UnaryOp::HardSigmoid { .. }
        | UnaryOp::HardSwish
        | UnaryOp::Gelu { .. }
        | UnaryOp::Sin
        | UnaryOp::Cos
        | UnaryOp::Tan
        | UnaryOp::Asin
        | UnaryOp::Acos
        | UnaryOp::Atan
        | UnaryOp::Sinh
        | UnaryOp::Cosh
        | UnaryOp::Asinh
        | UnaryOp::Acosh
        | UnaryOp::Atanh
        | UnaryOp::Swish { .. }
        | UnaryOp::ThresholdedRelu { .. }
        | UnaryOp::Softplus
        | UnaryOp::Selu { .. }
        | UnaryOp::Softsign
        | UnaryOp::Celu { .. }
        | UnaryOp::Mish => (Some(true), x.dtype),
        UnaryOp::Shrink { .. } => (Some(false), x.dtype),
        UnaryOp::Abs | UnaryOp::Neg | UnaryOp::Relu | UnaryOp::LeakyRelu { .. } | UnaryOp::Sign => {
            (Some(false), x.dtype)
        }
        UnaryOp::IsNaN | UnaryOp::IsInf { .. } => (Some(true), Some(DType::Bool)),
        UnaryOp::Not => {
            cx.check_dtype(0, "x", "bool", |d| d == DType::Bool)?;
            (None, Some(DType::Bool))
        }
        UnaryOp::Identity => (None, x.dtype),
        UnaryOp::Cast { to } => (None, Some(*to)),
        UnaryOp::BitwiseNot => {
            cx.check_dtype(0, "x", "an integer type", DType::is_int)?;
            (None, x.dtype)
        }
        UnaryOp::BitCast { to } => {
            if let Some(d) = x.dtype {
                if d.size() != to.size() {
                    return Err(cx.err(format!(
                        "cannot bit-cast {d} ({} bytes) to {to} ({} bytes)",
                        d.size(),
                        to.size()
                    )));
                }
            }
            (None, Some(*to))
        }
    };
    match float_only {
        Some(true) => cx.check_dtype(0, "x", "a float type", is_float)?,
        Some(false) => cx.check_dtype(0, "x", "a numeric type", is_numeric)?,
        None => {}
    }
    Ok(vec![ValueType {
        dtype: out,
        shape: x.shape.clone(),
    }])
}

/// Broadcast of several optional shapes; `None` if any rank is unknown.
fn broadcast_all(cx: &Cx, shapes: &[Option<&[Dim]>]) -> Result<Option<Vec<Dim>>, InferError> {
    let mut acc: Vec<Dim> = vec![];
    for s in shapes {
        let Some(s) = s else { return Ok(None) };
        acc = broadcast_dims(&acc, s).map_err(|e| cx.err(e.to_string()))?;
    }
    Ok(Some(acc))
}

pub(super) fn binary(cx: &Cx, b: BinaryOp) -> R {
    let ta = cx.req(0, "a")?;
    let tb = cx.req(1, "b")?;
    let dtype = match b {
        BinaryOp::Add
        | BinaryOp::Sub
        | BinaryOp::Mul
        | BinaryOp::Div
        | BinaryOp::Mod
        | BinaryOp::Fmod
        | BinaryOp::Max
        | BinaryOp::Min => {
            cx.check_dtype(0, "a", "a numeric type", is_numeric)?;
            cx.same_dtype(0, 1, "operand dtypes differ")?;
            ta.dtype.or(tb.dtype)
        }
        BinaryOp::Pow => {
            cx.check_dtype(0, "base", "a numeric type", is_numeric)?;
            cx.check_dtype(1, "exponent", "a numeric type", is_numeric)?;
            ta.dtype
        }
        BinaryOp::PRelu => {
            cx.check_dtype(0, "x", "a float or signed integer type", |d| {
                is_float(d) || matches!(d, DType::I8 | DType::I32 | DType::I64)
            })?;
            cx.same_dtype(0, 1, "slope dtype differs from x")?;
            if let (Some(x), Some(s)) = (dims(ta), dims(tb)) {
                if !broadcasts_to(s, x) {
                    return Err(cx.err(format!(
                        "slope shape {} does not broadcast to x shape {}",
                        Shape(s.to_vec()),
                        Shape(x.to_vec())
                    )));
                }
            }
            return Ok(vec![ValueType {
                dtype: ta.dtype.or(tb.dtype),
                shape: ta.shape.clone(),
            }]);
        }
        BinaryOp::Equal
        | BinaryOp::Greater
        | BinaryOp::Less
        | BinaryOp::GreaterOrEqual
        | BinaryOp::LessOrEqual => {
            cx.same_dtype(0, 1, "operand dtypes differ")?;
            Some(DType::Bool)
        }
        BinaryOp::And | BinaryOp::Or | BinaryOp::Xor => {
            cx.check_dtype(0, "a", "bool", |d| d == DType::Bool)?;
            cx.check_dtype(1, "b", "bool", |d| d == DType::Bool)?;
            Some(DType::Bool)
        }
        BinaryOp::BitwiseAnd
        | BinaryOp::BitwiseOr
        | BinaryOp::BitwiseXor
        | BinaryOp::BitShiftLeft
        | BinaryOp::BitShiftRight => {
            cx.check_dtype(0, "a", "an integer type", DType::is_int)?;
            cx.same_dtype(0, 1, "operand dtypes differ")?;
            ta.dtype.or(tb.dtype)
        }
    };
    let shape = broadcast_all(cx, &[dims(ta), dims(tb)])?;
    Ok(vec![ValueType {
        dtype,
        shape: shape.map(Shape),
    }])
}

/// True if a type is known to hold more than one element.
fn not_single(t: &ValueType) -> bool {
    dims(t).is_some_and(|d| d.iter().any(|d| matches!(d, Dim::Known(n) if *n != 1)))
}

pub(super) fn clip(cx: &Cx) -> R {
    let x = cx.req(0, "x")?;
    cx.check_dtype(0, "x", "a numeric type", is_numeric)?;
    for (slot, what) in [(1, "min"), (2, "max")] {
        if let Some(t) = cx.opt(slot) {
            cx.same_dtype(0, slot, &format!("{what} dtype differs from x"))?;
            if not_single(t) {
                return Err(cx.err(format!("{what} must be a scalar, got shape {t}")));
            }
        }
    }
    Ok(vec![x.clone()])
}

pub(super) fn where_(cx: &Cx) -> R {
    let c = cx.req(0, "cond")?;
    let a = cx.req(1, "a")?;
    let b = cx.req(2, "b")?;
    cx.check_dtype(0, "cond", "bool", |d| d == DType::Bool)?;
    cx.same_dtype(1, 2, "branch dtypes differ")?;
    let shape = broadcast_all(cx, &[dims(c), dims(a), dims(b)])?;
    Ok(vec![ValueType {
        dtype: a.dtype.or(b.dtype),
        shape: shape.map(Shape),
    }])
}

/// Which convolution flavour.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ConvKind {
    /// Conv: float in, float out.
    Float,
    /// ConvInteger: 8-bit in, i32 out.
    Integer,
    /// QLinearConv: 8-bit in, y_zero_point's dtype out.
    QLinear,
    /// QConv: 8-bit x, i8 w, y_zero_point's dtype out (f32 without one).
    Fused,
    /// DeformConv: float (x, w, offset, bias?, mask?), float out.
    Deform,
}

/// Output dtype of a fused op: y_zero_point's (slot 5) when connected, else f32.
fn fused_out(cx: &Cx) -> Result<Option<DType>, InferError> {
    cx.check_dtype(0, "x", "u8 or i8", is_q8)?;
    cx.same_dtype(0, 1, "x and x_zero_point dtypes differ")?;
    cx.check_dtype(2, "w", "i8", |d| d == DType::I8)?;
    if cx.has(3) {
        cx.check_dtype(3, "bias", "i32", |d| d == DType::I32)?;
    }
    cx.check_dtype(4, "scale", "f32", |d| d == DType::F32)?;
    if cx.has(5) {
        cx.check_dtype(5, "y_zero_point", "u8 or i8", is_q8)?;
        Ok(cx.opt(5).and_then(|t| t.dtype))
    } else {
        Ok(Some(DType::F32))
    }
}

/// Strides, dilations and `[begin..., end...]` pads for `n` spatial axes, defaults filled in.
struct Window {
    strides: Vec<usize>,
    dilations: Vec<usize>,
    pads: Vec<usize>,
}

fn window(
    cx: &Cx,
    n: usize,
    strides: &[usize],
    pads: &[usize],
    dilations: &[usize],
) -> Result<Window, InferError> {
    let fill = |v: &[usize], what: &str| -> Result<Vec<usize>, InferError> {
        if v.is_empty() {
            return Ok(vec![1; n]);
        }
        if v.len() != n {
            return Err(cx.err(format!(
                "{what} has {} values for {n} spatial axes",
                v.len()
            )));
        }
        if v.contains(&0) {
            return Err(cx.err(format!("{what} {v:?} contains 0")));
        }
        Ok(v.to_vec())
    };
    let strides = fill(strides, "strides")?;
    let dilations = fill(dilations, "dilations")?;
    let pads = if pads.is_empty() {
        vec![0; 2 * n]
    } else if pads.len() != 2 * n {
        return Err(cx.err(format!(
            "pads has {} values, expected {} for {n} spatial axes",
            pads.len(),
            2 * n
        )));
    } else {
        pads.to_vec()
    };
    Ok(Window {
        strides,
        dilations,
        pads,
    })
}

/// One axis of a sliding window: the effective (dilated) kernel size, the stride, the pads
/// before and after, and the ONNX auto_pad and ceil_mode rules.
struct AxisWindow {
    k: usize,
    s: usize,
    pads: (usize, usize),
    auto_pad: AutoPad,
    ceil_mode: bool,
}

/// Output size of one sliding-window axis (conv and pooling, ONNX rules including auto_pad
/// and ceil_mode).
fn window_out(
    cx: &Cx,
    axis: usize,
    input: &Dim,
    w: &AxisWindow,
    syms: &mut SymGen,
) -> Result<Dim, InferError> {
    let AxisWindow {
        k,
        s,
        pads: (pb, pe),
        auto_pad,
        ceil_mode,
    } = *w;
    let n = match input {
        Dim::Known(n) => *n,
        Dim::Sym(_) => {
            let same = match auto_pad {
                AutoPad::NotSet => k == 1 && s == 1 && pb == 0 && pe == 0,
                AutoPad::Valid => k == 1 && s == 1,
                AutoPad::SameUpper | AutoPad::SameLower => s == 1,
            };
            return Ok(if same { input.clone() } else { syms.dim() });
        }
    };
    let (pb, pe) = match auto_pad {
        AutoPad::NotSet => (pb, pe),
        AutoPad::Valid => (0, 0),
        AutoPad::SameUpper | AutoPad::SameLower => {
            let out = n.div_ceil(s);
            let total = (out.saturating_sub(1) * s + k).saturating_sub(n);
            let small = total / 2;
            if auto_pad == AutoPad::SameUpper {
                (small, total - small)
            } else {
                (total - small, small)
            }
        }
    };
    let padded = (n + pb + pe) as i64;
    let (k, s) = (k as i64, s as i64);
    // With ceil_mode a window may run past the end, so the kernel may exceed the padded
    // input as long as the window still starts inside it.
    let mut out = if ceil_mode {
        (padded - k).div_euclid(s) + i64::from((padded - k).rem_euclid(s) != 0) + 1
    } else {
        (padded - k).div_euclid(s) + 1
    };
    // ONNX: with ceil_mode the last window must start inside the input or the left padding.
    if ceil_mode && out >= 1 && (out - 1) * s >= (n + pb) as i64 {
        out -= 1;
    }
    if out < 1 {
        return Err(cx.err(format!(
            "spatial axis {axis}: the (dilated) kernel size {k} exceeds the padded input size {padded}"
        )));
    }
    Ok(Dim::Known(out as usize))
}

pub(super) fn conv(cx: &Cx, a: &ConvAttrs, kind: ConvKind, syms: &mut SymGen) -> R {
    let (xs, ws, bias_slot) = match kind {
        ConvKind::Float => (0, 1, Some(2)),
        ConvKind::Integer => (0, 1, None),
        ConvKind::QLinear => (0, 3, Some(8)),
        ConvKind::Fused => (0, 2, None),
        ConvKind::Deform => (0, 1, Some(3)),
    };
    let x = cx.req(xs, "x")?;
    let w = cx.req(ws, "w")?;
    let dtype = match kind {
        ConvKind::Float => {
            cx.check_dtype(0, "x", "a float type", is_float)?;
            cx.check_dtype(1, "w", "a float type", is_float)?;
            cx.same_dtype(0, 1, "x and w dtypes differ")?;
            if cx.has(2) {
                cx.same_dtype(0, 2, "x and bias dtypes differ")?;
            }
            x.dtype.or(w.dtype)
        }
        ConvKind::Integer => {
            cx.check_dtype(0, "x", "u8 or i8", is_q8)?;
            cx.check_dtype(1, "w", "u8 or i8", is_q8)?;
            cx.same_dtype(0, 2, "x and x_zero_point dtypes differ")?;
            cx.same_dtype(1, 3, "w and w_zero_point dtypes differ")?;
            Some(DType::I32)
        }
        ConvKind::QLinear => {
            check_qlinear_operands(cx)?;
            cx.check_dtype(8, "bias", "i32", |d| d == DType::I32)?;
            cx.opt(7).and_then(|t| t.dtype)
        }
        ConvKind::Fused => fused_out(cx)?,
        ConvKind::Deform => {
            cx.check_dtype(0, "x", "a float type", is_float)?;
            for (slot, what) in [(1, "w"), (2, "offset"), (3, "bias"), (4, "mask")] {
                if cx.has(slot) {
                    cx.same_dtype(0, slot, &format!("x and {what} dtypes differ"))?;
                }
            }
            x.dtype.or(w.dtype)
        }
    };
    if a.group == 0 {
        return Err(cx.err("group must be at least 1"));
    }
    let xd = dims(x);
    let wd = dims(w);
    if let Some(xd) = xd {
        if xd.len() < 3 {
            return Err(cx.err(format!(
                "input x must have rank >= 3 (N, C, spatial...), got {x}"
            )));
        }
    }
    if let Some(wd) = wd {
        if wd.len() < 3 {
            return Err(cx.err(format!(
                "weights must have rank >= 3 (M, C/group, kernel...), got {w}"
            )));
        }
    }
    let (xd, wd) = match (xd, wd) {
        (Some(xd), Some(wd)) => (xd, wd),
        (None, Some(wd)) => {
            let mut out = vec![syms.dim(), wd[0].clone()];
            out.extend(syms.dims(wd.len() - 2));
            return Ok(vec![vt(dtype, out)]);
        }
        (Some(xd), None) => {
            let mut out = vec![xd[0].clone(), syms.dim()];
            out.extend(syms.dims(xd.len() - 2));
            return Ok(vec![vt(dtype, out)]);
        }
        (None, None) => return Ok(vec![vt_unranked(dtype)]),
    };
    if xd.len() != wd.len() {
        return Err(cx.err(format!(
            "weights rank {} differs from input rank {} ({w} vs {x})",
            wd.len(),
            xd.len()
        )));
    }
    if let (Dim::Known(c), Dim::Known(wc)) = (&xd[1], &wd[1]) {
        if *c != wc * a.group {
            return Err(cx.err(format!(
                "input has {c} channels but weights expect {wc} x group {} = {}",
                a.group,
                wc * a.group
            )));
        }
    }
    if let Dim::Known(m) = &wd[0] {
        if m % a.group != 0 {
            return Err(cx.err(format!(
                "{m} output channels are not divisible by group {}",
                a.group
            )));
        }
    }
    if let Some(bs) = bias_slot {
        check_bias(cx, bs, &wd[0])?;
    }
    let nsp = xd.len() - 2;
    let kernel = kernel_dims(cx, &a.kernel, &wd[2..])?;
    let win = window(cx, nsp, &a.strides, &a.pads, &a.dilations)?;
    let mut out = vec![xd[0].clone(), wd[0].clone()];
    for i in 0..nsp {
        let d = match &kernel[i] {
            Dim::Known(k) => {
                let eff = (k.max(&1) - 1) * win.dilations[i] + 1;
                let pads = (win.pads[i], win.pads[nsp + i]);
                let w = AxisWindow {
                    k: eff,
                    s: win.strides[i],
                    pads,
                    auto_pad: a.auto_pad,
                    ceil_mode: false,
                };
                window_out(cx, i, &xd[2 + i], &w, syms)?
            }
            Dim::Sym(_) => syms.dim(),
        };
        out.push(d);
    }
    Ok(vec![vt(dtype, out)])
}

/// The kernel's spatial dims: from the weights, checked against the `kernel` attribute.
fn kernel_dims(cx: &Cx, attr: &[usize], w: &[Dim]) -> Result<Vec<Dim>, InferError> {
    if attr.is_empty() {
        return Ok(w.to_vec());
    }
    if attr.len() != w.len() {
        return Err(cx.err(format!(
            "kernel attribute {attr:?} has {} axes, weights have {}",
            attr.len(),
            w.len()
        )));
    }
    for (i, (k, d)) in attr.iter().zip(w).enumerate() {
        if let Dim::Known(d) = d {
            if d != k {
                return Err(cx.err(format!(
                    "kernel attribute {attr:?} disagrees with the weights on axis {i} ({d})"
                )));
            }
        }
    }
    Ok(attr.iter().map(|&k| Dim::Known(k)).collect())
}

/// A bias must be 1-D with one value per output channel.
fn check_bias(cx: &Cx, slot: usize, m: &Dim) -> Result<(), InferError> {
    let Some(b) = cx.opt(slot) else { return Ok(()) };
    let Some(bd) = dims(b) else { return Ok(()) };
    if bd.len() != 1 {
        return Err(cx.err(format!("bias must be 1-D, got {b}")));
    }
    if let (Dim::Known(n), Dim::Known(m)) = (&bd[0], m) {
        if n != m {
            return Err(cx.err(format!("bias has {n} values for {m} output channels")));
        }
    }
    Ok(())
}

/// Checks (a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp) of QLinearConv/QLinearMatMul.
fn check_qlinear_operands(cx: &Cx) -> Result<(), InferError> {
    cx.check_dtype(0, "a", "u8 or i8", is_q8)?;
    cx.check_dtype(3, "b", "u8 or i8", is_q8)?;
    for (slot, what) in [(1, "a_scale"), (4, "b_scale"), (6, "y_scale")] {
        cx.check_dtype(slot, what, "a float type", is_float)?;
    }
    cx.same_dtype(0, 2, "a and a_zero_point dtypes differ")?;
    cx.same_dtype(3, 5, "b and b_zero_point dtypes differ")?;
    cx.check_dtype(7, "y_zero_point", "u8 or i8", is_q8)?;
    Ok(())
}

pub(super) fn conv_transpose(
    cx: &Cx,
    a: &ConvAttrs,
    output_padding: &[usize],
    output_shape: &[usize],
    syms: &mut SymGen,
) -> R {
    let x = cx.req(0, "x")?;
    let w = cx.req(1, "w")?;
    cx.check_dtype(0, "x", "a float type", is_float)?;
    cx.same_dtype(0, 1, "x and w dtypes differ")?;
    if cx.has(2) {
        cx.same_dtype(0, 2, "x and bias dtypes differ")?;
    }
    let dtype = x.dtype.or(w.dtype);
    if a.group == 0 {
        return Err(cx.err("group must be at least 1"));
    }
    let (Some(xd), Some(wd)) = (dims(x), dims(w)) else {
        return Ok(vec![vt_unranked(dtype)]);
    };
    if xd.len() < 3 {
        return Err(cx.err(format!(
            "input x must have rank >= 3 (N, C, spatial...), got {x}"
        )));
    }
    if xd.len() != wd.len() {
        return Err(cx.err(format!(
            "weights rank {} differs from input rank {} ({w} vs {x})",
            wd.len(),
            xd.len()
        )));
    }
    if let (Dim::Known(c), Dim::Known(wc)) = (&xd[1], &wd[0]) {
        if c != wc {
            return Err(cx.err(format!("input has {c} channels but weights expect {wc}")));
        }
    }
    let m = match &wd[1] {
        Dim::Known(k) => Dim::Known(k * a.group),
        Dim::Sym(_) if a.group == 1 => wd[1].clone(),
        Dim::Sym(_) => syms.dim(),
    };
    check_bias(cx, 2, &m)?;
    let nsp = xd.len() - 2;
    let kernel = kernel_dims(cx, &a.kernel, &wd[2..])?;
    let win = window(cx, nsp, &a.strides, &a.pads, &a.dilations)?;
    if !output_padding.is_empty() && output_padding.len() != nsp {
        return Err(cx.err(format!(
            "output_padding {output_padding:?} does not have {nsp} values"
        )));
    }
    let mut out = vec![xd[0].clone(), m];
    if !output_shape.is_empty() {
        let sp = match output_shape.len() {
            l if l == nsp => output_shape,
            l if l == nsp + 2 => &output_shape[2..],
            _ => {
                return Err(cx.err(format!(
                    "output_shape {output_shape:?} does not have {nsp} spatial values"
                )))
            }
        };
        out.extend(sp.iter().map(|&d| Dim::Known(d)));
        return Ok(vec![vt(dtype, out)]);
    }
    for i in 0..nsp {
        let s = win.strides[i];
        let d = match (&xd[2 + i], &kernel[i]) {
            (Dim::Known(n), Dim::Known(k)) => {
                let op = output_padding.get(i).copied().unwrap_or(0);
                let size = match a.auto_pad {
                    AutoPad::SameUpper | AutoPad::SameLower => (n * s) as i64,
                    AutoPad::Valid | AutoPad::NotSet => {
                        let (pb, pe) = if a.auto_pad == AutoPad::Valid {
                            (0, 0)
                        } else {
                            (win.pads[i], win.pads[nsp + i])
                        };
                        let eff = (k.max(&1) - 1) * win.dilations[i] + 1;
                        (s * n.saturating_sub(1) + op + eff) as i64 - (pb + pe) as i64
                    }
                };
                if size < 1 {
                    return Err(cx.err(format!(
                        "spatial axis {i}: output size {size} is not positive"
                    )));
                }
                Dim::Known(size as usize)
            }
            (d @ Dim::Sym(_), _)
                if s == 1 && matches!(a.auto_pad, AutoPad::SameUpper | AutoPad::SameLower) =>
            {
                d.clone()
            }
            _ => syms.dim(),
        };
        out.push(d);
    }
    Ok(vec![vt(dtype, out)])
}

/// Which matrix-product flavour.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum MatMulKind {
    /// MatMul.
    Float,
    /// MatMulInteger: 8-bit in, i32 out.
    Integer,
    /// QLinearMatMul: 8-bit in, y_zero_point's dtype out.
    QLinear,
    /// QMatMul: 8-bit a, i8 b, y_zero_point's dtype out (f32 without one).
    Fused,
}

pub(super) fn matmul(cx: &Cx, kind: MatMulKind) -> R {
    let (sa, sb) = match kind {
        MatMulKind::Float | MatMulKind::Integer => (0, 1),
        MatMulKind::QLinear => (0, 3),
        MatMulKind::Fused => (0, 2),
    };
    let a = cx.req(sa, "a")?;
    let b = cx.req(sb, "b")?;
    let dtype = match kind {
        MatMulKind::Float => {
            cx.check_dtype(0, "a", "a float or integer type", is_numeric)?;
            cx.same_dtype(0, 1, "a and b dtypes differ")?;
            a.dtype.or(b.dtype)
        }
        MatMulKind::Integer => {
            cx.check_dtype(0, "a", "u8 or i8", is_q8)?;
            cx.check_dtype(1, "b", "u8 or i8", is_q8)?;
            cx.same_dtype(0, 2, "a and a_zero_point dtypes differ")?;
            cx.same_dtype(1, 3, "b and b_zero_point dtypes differ")?;
            Some(DType::I32)
        }
        MatMulKind::QLinear => {
            check_qlinear_operands(cx)?;
            cx.opt(7).and_then(|t| t.dtype)
        }
        MatMulKind::Fused => fused_out(cx)?,
    };
    let (Some(ad), Some(bd)) = (dims(a), dims(b)) else {
        return Ok(vec![vt_unranked(dtype)]);
    };
    if ad.is_empty() || bd.is_empty() {
        return Err(cx.err(format!("operands must have rank >= 1, got {a} and {b}")));
    }
    let a2: Vec<Dim> = if ad.len() == 1 {
        vec![Dim::Known(1), ad[0].clone()]
    } else {
        ad.to_vec()
    };
    let b2: Vec<Dim> = if bd.len() == 1 {
        vec![bd[0].clone(), Dim::Known(1)]
    } else {
        bd.to_vec()
    };
    let (ka, kb) = (&a2[a2.len() - 1], &b2[b2.len() - 2]);
    if let (Dim::Known(p), Dim::Known(q)) = (ka, kb) {
        if p != q {
            return Err(cx.err(format!("inner dimensions differ: {a} x {b} ({p} vs {q})")));
        }
    }
    let batch = broadcast_dims(&a2[..a2.len() - 2], &b2[..b2.len() - 2])
        .map_err(|e| cx.err(format!("batch dimensions: {e}")))?;
    let mut out = batch;
    if ad.len() > 1 {
        out.push(a2[a2.len() - 2].clone());
    }
    if bd.len() > 1 {
        out.push(b2[b2.len() - 1].clone());
    }
    Ok(vec![vt(dtype, out)])
}

pub(super) fn gemm(cx: &Cx, trans_a: bool, trans_b: bool, syms: &mut SymGen) -> R {
    let a = cx.req(0, "a")?;
    let b = cx.req(1, "b")?;
    cx.check_dtype(0, "a", "a float or integer type", is_numeric)?;
    cx.same_dtype(0, 1, "a and b dtypes differ")?;
    if cx.has(2) {
        cx.same_dtype(0, 2, "a and c dtypes differ")?;
    }
    let dtype = a.dtype.or(b.dtype);
    for (t, what) in [(a, "a"), (b, "b")] {
        if let Some(d) = dims(t) {
            if d.len() != 2 {
                return Err(cx.err(format!("{what} must be 2-D, got {t}")));
            }
        }
    }
    let pick = |t: &ValueType, idx: usize, syms: &mut SymGen| -> Dim {
        match dims(t) {
            Some(d) => d[idx].clone(),
            None => syms.dim(),
        }
    };
    // a is (M, K), or (K, M) transposed; b is (K, N), or (N, K) transposed.
    let m = pick(a, usize::from(trans_a), syms);
    let ka = pick(a, usize::from(!trans_a), syms);
    let kb = pick(b, usize::from(trans_b), syms);
    let n = pick(b, usize::from(!trans_b), syms);
    if let (Dim::Known(p), Dim::Known(q)) = (&ka, &kb) {
        if p != q {
            return Err(cx.err(format!(
                "inner dimensions differ: {a}{} x {b}{} ({p} vs {q})",
                tr(trans_a),
                tr(trans_b)
            )));
        }
    }
    let out = vec![m, n];
    if let Some(cd) = cx.opt(2).and_then(dims) {
        if !broadcasts_to(cd, &out) {
            return Err(cx.err(format!(
                "c shape {} does not broadcast to {}",
                Shape(cd.to_vec()),
                Shape(out)
            )));
        }
    }
    Ok(vec![vt(dtype, out)])
}

fn tr(t: bool) -> &'static str {
    if t {
        "ᵀ"
    } else {
        ""
    }
}

pub(super) fn pool(cx: &Cx, p: &PoolAttrs, is_max: bool, syms: &mut SymGen) -> R {
    let x = cx.req(0, "x")?;
    if is_max {
        cx.check_dtype(0, "x", "a float type, u8 or i8", |d| {
            is_float(d) || is_q8(d)
        })?;
    } else {
        cx.check_dtype(0, "x", "a float type", is_float)?;
    }
    if p.kernel.is_empty() {
        return Err(cx.err("kernel shape is required"));
    }
    if p.kernel.contains(&0) {
        return Err(cx.err(format!("kernel {:?} contains 0", p.kernel)));
    }
    let nsp = p.kernel.len();
    let shape = match dims(x) {
        None => {
            let mut d = syms.dims(2);
            d.extend(syms.dims(nsp));
            d
        }
        Some(xd) => {
            if xd.len() < 3 {
                return Err(cx.err(format!(
                    "input x must have rank >= 3 (N, C, spatial...), got {x}"
                )));
            }
            if xd.len() - 2 != nsp {
                return Err(cx.err(format!(
                    "kernel {:?} has {nsp} axes but x {x} has {}",
                    p.kernel,
                    xd.len() - 2
                )));
            }
            let win = window(cx, nsp, &p.strides, &p.pads, &p.dilations)?;
            let mut out = xd[..2].to_vec();
            for i in 0..nsp {
                let eff = (p.kernel[i] - 1) * win.dilations[i] + 1;
                let pads = (win.pads[i], win.pads[nsp + i]);
                let w = AxisWindow {
                    k: eff,
                    s: win.strides[i],
                    pads,
                    auto_pad: p.auto_pad,
                    ceil_mode: p.ceil_mode,
                };
                out.push(window_out(cx, i, &xd[2 + i], &w, syms)?);
            }
            out
        }
    };
    let y = vt(x.dtype, shape.clone());
    if is_max {
        Ok(vec![y, vt(Some(DType::I64), shape)])
    } else {
        Ok(vec![y])
    }
}

pub(super) fn global_pool(cx: &Cx) -> R {
    let x = cx.req(0, "x")?;
    cx.check_dtype(0, "x", "a float type", is_float)?;
    let Some(xd) = dims(x) else {
        return Ok(vec![vt_unranked(x.dtype)]);
    };
    if xd.len() < 3 {
        return Err(cx.err(format!(
            "input x must have rank >= 3 (N, C, spatial...), got {x}"
        )));
    }
    let mut out = xd[..2].to_vec();
    out.resize(xd.len(), Dim::Known(1));
    Ok(vec![vt(x.dtype, out)])
}

pub(super) fn batch_norm(cx: &Cx) -> R {
    let x = cx.req(0, "x")?;
    cx.check_dtype(0, "x", "a float type", is_float)?;
    let c = match dims(x) {
        Some(xd) if xd.len() < 2 => {
            return Err(cx.err(format!("input x must have rank >= 2 (N, C, ...), got {x}")))
        }
        Some(xd) => Some(xd[1].clone()),
        None => None,
    };
    for (slot, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "var")] {
        let t = cx.req(slot, what)?;
        cx.check_dtype(slot, what, "a float type", is_float)?;
        if let Some(d) = dims(t) {
            if d.len() != 1 {
                return Err(cx.err(format!("{what} must be 1-D, got {t}")));
            }
            if let (Dim::Known(n), Some(Dim::Known(c))) = (&d[0], &c) {
                if n != c {
                    return Err(cx.err(format!("{what} has {n} values for {c} channels")));
                }
            }
        }
    }
    let stat_dtype = cx.ty(3).dtype;
    let stat = match c {
        Some(c) => vt(stat_dtype, vec![c]),
        None => ValueType {
            dtype: stat_dtype,
            shape: cx.ty(3).shape.clone(),
        },
    };
    Ok(vec![x.clone(), stat.clone(), stat])
}

pub(super) fn layer_norm(cx: &Cx, axis: i64) -> R {
    let x = cx.req(0, "x")?;
    cx.req(1, "scale")?;
    cx.check_dtype(0, "x", "a float type", is_float)?;
    cx.check_dtype(1, "scale", "a float type", is_float)?;
    cx.check_dtype(2, "bias", "a float type", is_float)?;
    let Some(xd) = dims(x) else {
        return Ok(vec![
            x.clone(),
            vt_unranked(Some(DType::F32)),
            vt_unranked(Some(DType::F32)),
        ]);
    };
    let a = cx.axis(axis, xd.len(), "axis")?;
    for (slot, what) in [(1, "scale"), (2, "bias")] {
        if let Some(d) = cx.opt(slot).and_then(dims) {
            if !broadcasts_to(d, &xd[a..]) {
                return Err(cx.err(format!(
                    "{what} shape {} does not broadcast to the normalised shape {}",
                    Shape(d.to_vec()),
                    Shape(xd[a..].to_vec())
                )));
            }
        }
    }
    let mut stat = xd[..a].to_vec();
    stat.resize(xd.len(), Dim::Known(1));
    Ok(vec![
        x.clone(),
        vt(Some(DType::F32), stat.clone()),
        vt(Some(DType::F32), stat),
    ])
}

/// RMSNormalization: float x and scale, scale broadcasting to the normalised shape; y is x's type.
pub(super) fn rms_norm(cx: &Cx, axis: i64) -> R {
    let x = cx.req(0, "x")?;
    cx.req(1, "scale")?;
    cx.check_dtype(0, "x", "a float type", is_float)?;
    cx.check_dtype(1, "scale", "a float type", is_float)?;
    if let Some(xd) = dims(x) {
        let a = cx.axis(axis, xd.len(), "axis")?;
        if let Some(d) = cx.opt(1).and_then(dims) {
            if !broadcasts_to(d, &xd[a..]) {
                return Err(cx.err(format!(
                    "scale shape {} does not broadcast to the normalised shape {}",
                    Shape(d.to_vec()),
                    Shape(xd[a..].to_vec())
                )));
            }
        }
    }
    Ok(vec![x.clone()])
}

pub(super) fn softmax(cx: &Cx, axis: i64) -> R {
    let x = cx.req(0, "x")?;
    cx.check_dtype(0, "x", "a float type", is_float)?;
    if let Some(xd) = dims(x) {
        cx.axis(axis, xd.len().max(1), "axis")?;
    }
    Ok(vec![x.clone()])
}

/// InstanceNormalization: float x of rank >= 3, scale and bias `[C]` of x's dtype.
pub(super) fn instance_norm(cx: &Cx) -> R {
    let x = cx.req(0, "x")?;
    cx.check_dtype(0, "x", "a float type", is_float)?;
    let c = match dims(x) {
        Some(xd) if xd.len() < 3 => {
            return Err(cx.err(format!("input x must have rank >= 3 (N, C, d...), got {x}")))
        }
        Some(xd) => Some(xd[1].clone()),
        None => None,
    };
    for (slot, what) in [(1, "scale"), (2, "bias")] {
        let t = cx.req(slot, what)?;
        cx.same_dtype(0, slot, &format!("{what} dtype differs from x"))?;
        if let Some(d) = dims(t) {
            let bad = match (d, &c) {
                ([Dim::Known(n)], Some(Dim::Known(c))) => n != c,
                ([_], _) => false,
                _ => true,
            };
            if bad {
                return Err(cx.err(format!("{what} {t} is not [C] for x {x}")));
            }
        }
    }
    Ok(vec![x.clone()])
}

/// LRN: a float x of rank >= 2 (`[N, C, d...]`), size at least 1.
pub(super) fn lrn(cx: &Cx, size: usize) -> R {
    let x = cx.req(0, "x")?;
    cx.check_dtype(0, "x", "a float type", is_float)?;
    if size == 0 {
        return Err(cx.err("attribute 'size' must be at least 1"));
    }
    if matches!(dims(x), Some(xd) if xd.len() < 2) {
        return Err(cx.err(format!("input x must have rank >= 2 (N, C, d...), got {x}")));
    }
    Ok(vec![x.clone()])
}

/// GroupNormalization: as InstanceNormalization (x `[N, C, d...]`, scale and bias `[C]`),
/// with `num_groups` at least 1 dividing a known C.
pub(super) fn group_norm(cx: &Cx, num_groups: usize) -> R {
    let out = instance_norm(cx)?;
    if num_groups == 0 {
        return Err(cx.err("attribute 'num_groups' must be at least 1"));
    }
    if let Some(Dim::Known(c)) = dims(&out[0]).map(|d| &d[1]) {
        if c % num_groups != 0 {
            return Err(cx.err(format!(
                "num_groups {num_groups} does not divide the {c} channels"
            )));
        }
    }
    Ok(out)
}

/// MeanVarianceNormalization: a float x, distinct axes in range.
pub(super) fn mean_variance_norm(cx: &Cx, axes: &[i64]) -> R {
    let x = cx.req(0, "x")?;
    cx.check_dtype(0, "x", "a float type", is_float)?;
    if let Some(xd) = dims(x) {
        let mut seen = vec![false; xd.len()];
        for &a in axes {
            match super::norm_axis(a, xd.len()) {
                Some(k) if !seen[k] => seen[k] = true,
                _ => {
                    return Err(cx.err(format!(
                        "axes {axes:?} must be distinct and in range for x {x}"
                    )))
                }
            }
        }
    }
    Ok(vec![x.clone()])
}

/// MaxUnpool: float x `[N, C, d...]`, i64 indices of x's shape, an optional i64
/// `output_shape` of x's rank; the output shape is `output_shape` (constant; else fresh
/// symbols) or computed from the window attributes.
pub(super) fn max_unpool(
    cx: &Cx,
    kernel: &[usize],
    pads: &[usize],
    strides: &[usize],
    syms: &mut SymGen,
) -> R {
    let x = cx.req(0, "x")?;
    let ind = cx.req(1, "indices")?;
    cx.check_dtype(0, "x", "a float type", is_float)?;
    cx.check_dtype(1, "indices", "i64", |d| d == DType::I64)?;
    cx.check_dtype(2, "output_shape", "i64", |d| d == DType::I64)?;
    if let (Some(xd), Some(id)) = (dims(x), dims(ind)) {
        if xd.len() != id.len()
            || xd
                .iter()
                .zip(id)
                .any(|(a, b)| matches!((a, b), (Dim::Known(a), Dim::Known(b)) if a != b))
        {
            return Err(cx.err(format!("indices {ind} must have the shape of x {x}")));
        }
    }
    let Some(xd) = dims(x) else {
        return Ok(vec![vt_unranked(x.dtype)]);
    };
    if xd.len() < 3 {
        return Err(cx.err(format!("input x must have rank >= 3 (N, C, d...), got {x}")));
    }
    if cx.opt(2).is_some() {
        return Ok(vec![match cx.ints(2) {
            Some(s) if s.len() == xd.len() && s.iter().all(|&v| v >= 0) => {
                vt(x.dtype, s.iter().map(|&v| Dim::Known(v as usize)).collect())
            }
            Some(s) => {
                return Err(cx.err(format!(
                    "output_shape {s:?} must have x's rank {} and no negative dims",
                    xd.len()
                )))
            }
            None => vt(x.dtype, (0..xd.len()).map(|_| syms.dim()).collect()),
        }]);
    }
    let known: Option<Vec<usize>> = xd
        .iter()
        .map(|d| match d {
            Dim::Known(n) => Some(*n),
            _ => None,
        })
        .collect();
    let out = match known {
        Some(k) => crate::max_unpool_shape(&k, kernel, pads, strides)
            .map_err(|e| cx.err(e))?
            .into_iter()
            .map(Dim::Known)
            .collect(),
        None => {
            let mut v = xd[..2].to_vec();
            v.extend((2..xd.len()).map(|_| syms.dim()));
            v
        }
    };
    Ok(vec![vt(x.dtype, out)])
}

/// CausalConvWithState: float input `[N, C, L]`, weight `[C, 1, K]`, bias `[C]`, past_state
/// `[N, C, K-1]`, all of one dtype; outputs `[N, C, L]` and `[N, C, K-1]`.
pub(super) fn causal_conv_with_state(cx: &Cx, syms: &mut SymGen) -> R {
    let x = cx.req(0, "input")?;
    let w = cx.req(1, "weight")?;
    cx.check_dtype(0, "input", "a float type", is_float)?;
    for (slot, what) in [(1, "weight"), (2, "bias"), (3, "past_state")] {
        cx.same_dtype(0, slot, &format!("{what} dtype differs from input"))?;
    }
    let (xd, wd) = (dims(x), dims(w));
    if matches!(xd, Some(d) if d.len() != 3) || matches!(wd, Some(d) if d.len() != 3) {
        return Err(cx.err(format!(
            "input {x} must be [N, C, L] and weight {w} [C, 1, K]"
        )));
    }
    let known = |d: Option<&[Dim]>, k: usize| match d {
        Some(d) => match &d[k] {
            Dim::Known(n) => Some(*n),
            _ => None,
        },
        None => None,
    };
    let (c, cw, one) = (known(xd, 1), known(wd, 0), known(wd, 1));
    if matches!((c, cw), (Some(a), Some(b)) if a != b) || matches!(one, Some(n) if n != 1) {
        return Err(cx.err(format!("weight {w} is not [C, 1, K] for input {x}")));
    }
    let state_len = match known(wd, 2) {
        Some(0) => return Err(cx.err(format!("weight {w} has kernel size 0"))),
        Some(k) => Dim::Known(k - 1),
        None => syms.dim(),
    };
    let (n, ch) = match xd {
        Some(d) => (d[0].clone(), d[1].clone()),
        None => (syms.dim(), syms.dim()),
    };
    let want = [
        (2, "bias", vec![ch.clone()]),
        (
            3,
            "past_state",
            vec![n.clone(), ch.clone(), state_len.clone()],
        ),
    ];
    for (slot, what, shape) in want {
        if let Some(d) = cx.opt(slot).and_then(dims) {
            let bad = d.len() != shape.len()
                || d.iter()
                    .zip(&shape)
                    .any(|(a, b)| matches!((a, b), (Dim::Known(a), Dim::Known(b)) if a != b));
            if bad {
                return Err(cx.err(format!(
                    "{what} {} does not match {}",
                    Shape(d.to_vec()),
                    Shape(shape)
                )));
            }
        }
    }
    let out = match xd {
        Some(d) => vt(x.dtype, d.to_vec()),
        None => vt(x.dtype, vec![n.clone(), ch.clone(), syms.dim()]),
    };
    Ok(vec![out, vt(x.dtype, vec![n, ch, state_len])])
}

/// LpNormalization: a float x, an axis in range, p 1 or 2.
pub(super) fn lp_normalization(cx: &Cx, axis: i64, p: i64) -> R {
    if !matches!(p, 1 | 2) {
        return Err(cx.err(format!("p must be 1 or 2, got {p}")));
    }
    softmax(cx, axis)
}

/// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (`softmax`: the latter, whose second
/// output is the log-probabilities, of the scores' type): float input `[N, C, d...]`, i32/i64
/// target `[N, d...]`, float weight `[C]`.
pub(super) fn loss(cx: &Cx, reduction: LossReduction, softmax: bool) -> R {
    let x = cx.req(0, "input")?;
    let t = cx.req(1, "target")?;
    cx.check_dtype(0, "input", "a float type", is_float)?;
    cx.check_dtype(1, "target", "i32 or i64", |d| {
        matches!(d, DType::I32 | DType::I64)
    })?;
    cx.check_dtype(2, "weight", "a float type", is_float)?;
    cx.same_dtype(0, 2, "weight dtype differs from input")?;
    let shape = if let (Some(xd), Some(td)) = (dims(x), dims(t)) {
        if xd.len() < 2 || td.len() + 1 != xd.len() {
            return Err(cx.err(format!(
                "input {} must be [N, C, d...] and target {} [N, d...]",
                Shape(xd.to_vec()),
                Shape(td.to_vec())
            )));
        }
        let mut want: Vec<Dim> = vec![xd[0].clone()];
        want.extend_from_slice(&xd[2..]);
        let mut out = vec![];
        for (a, b) in want.iter().zip(td) {
            match (a, b) {
                (Dim::Known(p), Dim::Known(q)) if p != q => {
                    return Err(cx.err(format!(
                        "target shape {} does not match input shape {}",
                        Shape(td.to_vec()),
                        Shape(xd.to_vec())
                    )))
                }
                (Dim::Known(_), _) => out.push(a.clone()),
                _ => out.push(b.clone()),
            }
        }
        if let Some(wd) = cx.opt(2).and_then(dims) {
            if wd.len() != 1 || matches!((&wd[0], &xd[1]), (Dim::Known(p), Dim::Known(q)) if p != q)
            {
                return Err(cx.err(format!(
                    "weight shape {} is not [C] for input shape {}",
                    Shape(wd.to_vec()),
                    Shape(xd.to_vec())
                )));
            }
        }
        Some(out)
    } else {
        None
    };
    let loss = match reduction {
        LossReduction::None => ValueType {
            dtype: x.dtype,
            shape: shape.map(Shape),
        },
        LossReduction::Sum | LossReduction::Mean => vt(x.dtype, vec![]),
    };
    Ok(if softmax {
        vec![loss, x.clone()]
    } else {
        vec![loss]
    })
}

/// Checks scale and zero-point shapes of QuantizeLinear/DequantizeLinear against x.
fn check_qparams(cx: &Cx, q: &QuantAxis, x: &ValueType) -> Result<(), InferError> {
    let scale = cx.ty(1);
    if let (Some(s), Some(z)) = (dims(scale), cx.opt(2).and_then(dims)) {
        // One-element scale and zero point of different ranks ([] and [1]) are both per-tensor.
        let one = |d: &[Dim]| d.iter().all(|x| *x == Dim::Known(1));
        if s != z && !(one(s) && one(z)) {
            return Err(cx.err(format!(
                "zero point shape {} differs from scale shape {}",
                Shape(z.to_vec()),
                Shape(s.to_vec())
            )));
        }
    }
    let (Some(sd), Some(xd)) = (dims(scale), dims(x)) else {
        return Ok(());
    };
    let per_tensor =
        sd.is_empty() || (sd.len() == 1 && sd[0] == Dim::Known(1) && q.block_size == 0);
    if per_tensor {
        return Ok(());
    }
    let a = cx.axis(q.axis, xd.len(), "axis")?;
    if q.block_size == 0 {
        if sd.len() != 1 {
            return Err(cx.err(format!("per-axis scale must be 1-D, got {scale}")));
        }
        if let (Dim::Known(n), Dim::Known(c)) = (&sd[0], &xd[a]) {
            if n != c {
                return Err(cx.err(format!(
                    "scale has {n} values but axis {a} of x {x} has size {c}"
                )));
            }
        }
        return Ok(());
    }
    if sd.len() != xd.len() {
        return Err(cx.err(format!("blocked scale {scale} must have the rank of x {x}")));
    }
    for (i, (s, d)) in sd.iter().zip(xd).enumerate() {
        let want = match d {
            Dim::Known(n) if i == a => Dim::Known(n.div_ceil(q.block_size)),
            Dim::Sym(_) if i == a => continue,
            d => d.clone(),
        };
        if let (Dim::Known(p), Dim::Known(w)) = (s, &want) {
            if p != w {
                return Err(cx.err(format!(
                    "blocked scale {scale} does not fit x {x} with block size {} on axis {a}",
                    q.block_size
                )));
            }
        }
    }
    Ok(())
}

pub(super) fn quantize_linear(cx: &Cx, q: &QuantAxis, dtype: DType) -> R {
    let x = cx.req(0, "x")?;
    cx.req(1, "scale")?;
    if !is_q8(dtype) {
        return Err(cx.err(format!("output dtype {dtype} is not u8 or i8")));
    }
    cx.check_dtype(0, "x", "a float type or i32", |d| {
        is_float(d) || d == DType::I32
    })?;
    cx.check_dtype(1, "scale", "a float type", is_float)?;
    if let Some(z) = cx.opt(2).and_then(|t| t.dtype) {
        if z != dtype {
            return Err(cx.err(format!(
                "zero point dtype {z} differs from the output dtype {dtype}"
            )));
        }
    }
    check_qparams(cx, q, x)?;
    Ok(vec![ValueType {
        dtype: Some(dtype),
        shape: x.shape.clone(),
    }])
}

pub(super) fn dequantize_linear(cx: &Cx, q: &QuantAxis) -> R {
    let x = cx.req(0, "x")?;
    let scale = cx.req(1, "scale")?;
    cx.check_dtype(0, "x", "u8, i8 or i32", |d| is_q8(d) || d == DType::I32)?;
    cx.check_dtype(1, "scale", "a float type", is_float)?;
    cx.same_dtype(0, 2, "x and zero point dtypes differ")?;
    check_qparams(cx, q, x)?;
    Ok(vec![ValueType {
        dtype: scale.dtype,
        shape: x.shape.clone(),
    }])
}

pub(super) fn dynamic_quantize_linear(cx: &Cx) -> R {
    let x = cx.req(0, "x")?;
    cx.check_dtype(0, "x", "f32", |d| d == DType::F32)?;
    Ok(vec![
        ValueType {
            dtype: Some(DType::U8),
            shape: x.shape.clone(),
        },
        vt(Some(DType::F32), vec![]),
        vt(Some(DType::U8), vec![]),
    ])
}

pub(super) fn fake_quantize(cx: &Cx, levels: u32) -> R {
    if !(2..=65536).contains(&levels) {
        return Err(cx.err(format!("levels {levels} is outside 2..=65536")));
    }
    let x = cx.req(0, "x")?;
    cx.check_dtype(0, "x", "a float type", is_float)?;
    for (slot, what) in [
        (1, "input_low"),
        (2, "input_high"),
        (3, "output_low"),
        (4, "output_high"),
    ] {
        let t = cx.req(slot, what)?;
        cx.check_dtype(slot, what, "a float type", is_float)?;
        if let (Some(b), Some(xd)) = (dims(t), dims(x)) {
            if !broadcasts_to(b, xd) {
                return Err(cx.err(format!(
                    "{what} shape {} does not broadcast to x {x}",
                    Shape(b.to_vec())
                )));
            }
        }
        if let Some(c) = cx.const_in(slot) {
            if c.dtype().is_float() && c.to_f64_vec().iter().any(|v| v.is_nan()) {
                return Err(cx.err(format!("constant {what} contains NaN")));
            }
        }
    }
    Ok(vec![x.clone()])
}

/// Requantize (x, x_scale, x_zp, y_scale, y_zp): x's shape, y_zp's dtype.
pub(super) fn requantize(cx: &Cx) -> R {
    let x = cx.req(0, "x")?;
    cx.check_dtype(0, "x", "u8, i8 or i32", |d| {
        matches!(d, DType::U8 | DType::I8 | DType::I32)
    })?;
    cx.same_dtype(0, 2, "x and x_zero_point dtypes differ")?;
    let yz = cx.req(4, "y_zero_point")?;
    cx.check_dtype(4, "y_zero_point", "u8 or i8", is_q8)?;
    Ok(vec![ValueType {
        dtype: yz.dtype,
        shape: x.shape.clone(),
    }])
}

/// QAdd (a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp, lo?, hi?): broadcast shape.
pub(super) fn qadd(cx: &Cx) -> R {
    let a = cx.req(0, "a")?;
    let b = cx.req(3, "b")?;
    cx.check_dtype(0, "a", "u8 or i8", is_q8)?;
    cx.check_dtype(3, "b", "u8 or i8", is_q8)?;
    let yz = cx.req(7, "y_zero_point")?;
    cx.check_dtype(7, "y_zero_point", "u8 or i8", is_q8)?;
    let shape = match (dims(a), dims(b)) {
        (Some(p), Some(q)) => Some(Shape(
            broadcast_dims(p, q).map_err(|e| cx.err(e.to_string()))?,
        )),
        _ => None,
    };
    Ok(vec![ValueType {
        dtype: yz.dtype,
        shape,
    }])
}

/// Lut (x, table[256]): x's shape, the table's dtype.
pub(super) fn lut(cx: &Cx) -> R {
    let x = cx.req(0, "x")?;
    cx.check_dtype(0, "x", "u8 or i8", is_q8)?;
    let t = cx.req(1, "table")?;
    if let Some(d) = dims(t) {
        if d.len() != 1 || d[0] != Dim::Known(256) {
            return Err(cx.err(format!("table must be [256], got {t}")));
        }
    }
    Ok(vec![ValueType {
        dtype: t.dtype,
        shape: x.shape.clone(),
    }])
}

/// DeformConv: Conv's output (no auto_pad); offset is `[N, offset_group·∏kernel·rank, *out]`
/// and mask `[N, offset_group·∏kernel, *out]`; x's channels split into offset groups.
pub(super) fn deform_conv(cx: &Cx, a: &ConvAttrs, offset_group: usize, syms: &mut SymGen) -> R {
    cx.req(2, "offset")?;
    if a.auto_pad != AutoPad::NotSet {
        return Err(cx.err("DeformConv has no auto_pad"));
    }
    if offset_group == 0 {
        return Err(cx.err("offset_group must be at least 1"));
    }
    let out = conv(cx, a, ConvKind::Deform, syms)?;
    let Some(od) = out[0].shape.as_ref().map(|s| s.0.clone()) else {
        return Ok(out);
    };
    let nsp = od.len() - 2;
    if let Some(c) = cx.ty(0).shape.as_ref().and_then(|s| s.0[1].known()) {
        if c % offset_group != 0 {
            return Err(cx.err(format!(
                "{c} input channels are not divisible by offset_group {offset_group}"
            )));
        }
    }
    let taps: Option<usize> = match cx.ty(1).shape.as_ref() {
        Some(w) => w.0[2..].iter().map(Dim::known).product(),
        None if !a.kernel.is_empty() => Some(a.kernel.iter().product()),
        None => None,
    };
    for (slot, what, per_tap) in [(2, "offset", nsp), (4, "mask", 1)] {
        let Some(t) = cx.opt(slot) else { continue };
        let Some(d) = t.shape.as_ref().map(|s| &s.0) else {
            continue;
        };
        if d.len() != od.len() {
            return Err(cx.err(format!(
                "{what} must have rank {} like the output, got {t}",
                od.len()
            )));
        }
        let want = taps.map(|k| offset_group * k * per_tap);
        if let (Some(n), Some(want)) = (d[1].known(), want) {
            if n != want {
                return Err(cx.err(format!(
                    "{what} has {n} channels, expected offset_group·kernel taps{} = {want}",
                    if per_tap > 1 { "·rank" } else { "" }
                )));
            }
        }
        let mut want_dims = vec![&od[0]];
        want_dims.extend(&od[2..]);
        let mut got = vec![&d[0]];
        got.extend(&d[2..]);
        for (g, w) in got.into_iter().zip(want_dims) {
            if let (Some(g), Some(w)) = (g.known(), w.known()) {
                if g != w {
                    return Err(cx.err(format!("{what} {t} does not match the output {}", out[0])));
                }
            }
        }
    }
    Ok(out)
}
