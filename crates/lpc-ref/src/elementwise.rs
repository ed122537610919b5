//! Elementwise ops: unary, binary with numpy broadcasting, Clip, Where. f32 has fast paths;
//! other dtypes compute through f64 (floats) or i64 (integers, wrapping like C) and cast back.

use crate::logic;
use crate::transcendental;
use crate::util::{broadcast_shapes, gcd, BroadcastIndex, Run};
use crate::{invalid, EvalError, EvalResult};
use lpc_ir::{BinaryOp, DType, Tensor, TensorData, UnaryOp};

/// Error function of f64 (and f16/bf16) tensors, |error| < 1.2e-7 (Numerical Recipes' erfc
/// Chebyshev fit); f32 tensors take `transcendental::erf_f32`.
fn erf(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398
                                    + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 {
        1.0 - r
    } else {
        r - 1.0
    }
}

/// f32 Pow: squares and cubes as products (`x·x`, `(x·x)·x`, what ONNX Runtime computes for
/// these exponents, and what the JIT's chains compute), `powf` otherwise.
pub fn pow_f32(p: f32, q: f32) -> f32 {
    if q == 2.0 {
        p * p
    } else if q == 3.0 {
        p * p * p
    } else {
        p.powf(q)
    }
}

fn float_fn(op: &UnaryOp) -> Option<fn(f64, f32, f32) -> f64> {
    Some(match op {
        UnaryOp::Abs => |x, _, _| x.abs(),
        UnaryOp::Neg => |x, _, _| -x,
        UnaryOp::Ceil => |x, _, _| x.ceil(),
        UnaryOp::Floor => |x, _, _| x.floor(),
        UnaryOp::Round => |x, _, _| x.round_ties_even(),
        UnaryOp::Sqrt => |x, _, _| x.sqrt(),
        UnaryOp::Reciprocal => |x, _, _| 1.0 / x,
        UnaryOp::Exp => |x, _, _| x.exp(),
        UnaryOp::Log => |x, _, _| x.ln(),
        UnaryOp::Erf => |x, _, _| erf(x),
        UnaryOp::Sigmoid => |x, _, _| 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Tanh => |x, _, _| x.tanh(),
        // x < 0 ? 0 : x, as ONNX Runtime: NaN and −0 pass unchanged.
        UnaryOp::Relu => |x, _, _| if x < 0.0 { 0.0 } else { x },
        UnaryOp::Identity => |x, _, _| x,
        UnaryOp::Elu { .. } => |x, a, _| {
            if x >= 0.0 {
                x
            } else {
                a as f64 * (x.exp() - 1.0)
            }
        },
        UnaryOp::LeakyRelu { .. } => |x, a, _| if x >= 0.0 { x } else { a as f64 * x },
        UnaryOp::HardSigmoid { .. } => |x, a, b| (a as f64 * x + b as f64).clamp(0.0, 1.0),
        UnaryOp::HardSwish => |x, _, _| x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
        UnaryOp::Gelu { tanh: false } => {
            |x, _, _| 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
        }
        UnaryOp::Gelu { tanh: true } => |x, _, _| {
            0.5 * x
                * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
        },
        UnaryOp::Sign => |x, _, _| sign(x),
        UnaryOp::Sin => |x, _, _| x.sin(),
        UnaryOp::Cos => |x, _, _| x.cos(),
        UnaryOp::Tan => |x, _, _| x.tan(),
        UnaryOp::Asin => |x, _, _| x.asin(),
        UnaryOp::Acos => |x, _, _| x.acos(),
        UnaryOp::Atan => |x, _, _| x.atan(),
        UnaryOp::Sinh => |x, _, _| x.sinh(),
        UnaryOp::Cosh => |x, _, _| x.cosh(),
        UnaryOp::Asinh => |x, _, _| x.asinh(),
        UnaryOp::Acosh => |x, _, _| x.acosh(),
        UnaryOp::Atanh => |x, _, _| x.atanh(),
        UnaryOp::Swish { .. } => |x, a, _| x / (1.0 + (-(a as f64) * x).exp()),
        UnaryOp::ThresholdedRelu { .. } => |x, a, _| if x > a as f64 { x } else { 0.0 },
        UnaryOp::Softplus => |x, _, _| softplus(x),
        UnaryOp::Selu { .. } => |x, a, g| {
            if x > 0.0 {
                g as f64 * x
            } else {
                g as f64 * (a as f64 * x.exp() - a as f64)
            }
        },
        UnaryOp::Softsign => |x, _, _| x / (1.0 + x.abs()),
        UnaryOp::Shrink { .. } => |x, bias, lambd| shrink(x, bias as f64, lambd as f64),
        UnaryOp::Celu { .. } => |x, a, _| celu(x, a as f64),
        UnaryOp::Mish => |x, _, _| x * softplus(x).tanh(),
        UnaryOp::Cast { .. }
        | UnaryOp::Not
        | UnaryOp::IsNaN
        | UnaryOp::IsInf { .. }
        | UnaryOp::BitwiseNot
        | UnaryOp::BitCast { .. } => return None,
    })
}

/// ONNX Sign: -1, 0 or 1; NaN stays NaN.
fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else if x.is_nan() {
        x
    } else {
        0.0
    }
}

/// ln(1 + e^x) without overflow for large x (NaN stays NaN, ln(1 + e^-inf) = 0).
fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// ONNX Shrink: shifts values outside [-lambd, lambd] toward 0 by `bias`, zeroes the rest
/// (and NaN, which compares false both ways).
fn shrink(x: f64, bias: f64, lambd: f64) -> f64 {
    if x < -lambd {
        x + bias
    } else if x > lambd {
        x - bias
    } else {
        0.0
    }
}

/// ONNX Celu, max(0, x) + min(0, alpha*(e^(x/alpha) - 1)), with NaN propagated (`f64::max`
/// would drop it).
fn celu(x: f64, alpha: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    x.max(0.0) + (alpha * ((x / alpha).exp() - 1.0)).min(0.0)
}

/// The parameters `float_fn` passes to an op's function.
fn params(op: &UnaryOp) -> (f32, f32) {
    match op {
        UnaryOp::Elu { alpha }
        | UnaryOp::LeakyRelu { alpha }
        | UnaryOp::Swish { alpha }
        | UnaryOp::ThresholdedRelu { alpha }
        | UnaryOp::Celu { alpha } => (*alpha, 0.0),
        UnaryOp::HardSigmoid { alpha, beta } => (*alpha, *beta),
        UnaryOp::Selu { alpha, gamma } => (*alpha, *gamma),
        UnaryOp::Shrink { bias, lambd } => (*bias, *lambd),
        UnaryOp::Abs
        | UnaryOp::Neg
        | UnaryOp::Ceil
        | UnaryOp::Floor
        | UnaryOp::Round
        | UnaryOp::Sqrt
        | UnaryOp::Reciprocal
        | UnaryOp::Exp
        | UnaryOp::Log
        | UnaryOp::Erf
        | UnaryOp::Sigmoid
        | UnaryOp::Tanh
        | UnaryOp::Relu
        | UnaryOp::Identity
        | UnaryOp::HardSwish
        | UnaryOp::Gelu { .. }
        | UnaryOp::Not
        | UnaryOp::IsNaN
        | UnaryOp::IsInf { .. }
        | UnaryOp::Sign
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
        | UnaryOp::BitwiseNot
        | UnaryOp::BitCast { .. }
        | UnaryOp::Softplus
        | UnaryOp::Softsign
        | UnaryOp::Mish
        | UnaryOp::Cast { .. } => (0.0, 0.0),
    }
}

/// f32 versions of the hot activations (plain f32 arithmetic, as ONNX Runtime computes them;
/// Exp, Sigmoid, Tanh, Erf and GELU are `transcendental`'s, which the JIT computes bit for bit).
fn f32_fast(op: &UnaryOp, v: &[f32]) -> Option<Vec<f32>> {
    Some(match op {
        UnaryOp::Relu => v.iter().map(|&x| if x < 0.0 { 0.0 } else { x }).collect(),
        UnaryOp::Identity => v.to_vec(),
        UnaryOp::Sigmoid => v.iter().map(|&x| transcendental::sigmoid_f32(x)).collect(),
        UnaryOp::HardSigmoid { alpha, beta } => v
            .iter()
            .map(|&x| (alpha * x + beta).clamp(0.0, 1.0))
            .collect(),
        UnaryOp::HardSwish => v
            .iter()
            .map(|&x| x * (x * (1.0 / 6.0) + 0.5).clamp(0.0, 1.0))
            .collect(),
        UnaryOp::LeakyRelu { alpha } => v
            .iter()
            .map(|&x| if x >= 0.0 { x } else { alpha * x })
            .collect(),
        UnaryOp::Abs => v.iter().map(|x| x.abs()).collect(),
        UnaryOp::Neg => v.iter().map(|x| -x).collect(),
        UnaryOp::Exp => v.iter().map(|&x| transcendental::exp_f32(x)).collect(),
        UnaryOp::Tanh => v.iter().map(|&x| transcendental::tanh_f32(x)).collect(),
        UnaryOp::Erf => v.iter().map(|&x| transcendental::erf_f32(x)).collect(),
        UnaryOp::Gelu { tanh: false } => v.iter().map(|&x| transcendental::gelu_f32(x)).collect(),
        UnaryOp::Gelu { tanh: true } => v
            .iter()
            .map(|&x| transcendental::gelu_tanh_f32(x))
            .collect(),
        UnaryOp::Sqrt => v.iter().map(|x| x.sqrt()).collect(),
        UnaryOp::Reciprocal => v.iter().map(|x| 1.0 / x).collect(),
        UnaryOp::Sin => v.iter().map(|x| x.sin()).collect(),
        UnaryOp::Cos => v.iter().map(|x| x.cos()).collect(),
        UnaryOp::Tan => v.iter().map(|x| x.tan()).collect(),
        UnaryOp::Asin => v.iter().map(|x| x.asin()).collect(),
        UnaryOp::Acos => v.iter().map(|x| x.acos()).collect(),
        UnaryOp::Atan => v.iter().map(|x| x.atan()).collect(),
        UnaryOp::Sinh => v.iter().map(|x| x.sinh()).collect(),
        UnaryOp::Cosh => v.iter().map(|x| x.cosh()).collect(),
        UnaryOp::Asinh => v.iter().map(|x| x.asinh()).collect(),
        UnaryOp::Acosh => v.iter().map(|x| x.acosh()).collect(),
        UnaryOp::Atanh => v.iter().map(|x| x.atanh()).collect(),
        UnaryOp::Ceil
        | UnaryOp::Floor
        | UnaryOp::Round
        | UnaryOp::Log
        | UnaryOp::Elu { .. }
        | UnaryOp::Sign
        | UnaryOp::Not
        | UnaryOp::IsNaN
        | UnaryOp::IsInf { .. }
        | UnaryOp::BitwiseNot
        | UnaryOp::BitCast { .. }
        | UnaryOp::Swish { .. }
        | UnaryOp::ThresholdedRelu { .. }
        | UnaryOp::Softplus
        | UnaryOp::Selu { .. }
        | UnaryOp::Softsign
        | UnaryOp::Shrink { .. }
        | UnaryOp::Celu { .. }
        | UnaryOp::Mish
        | UnaryOp::Cast { .. } => return None,
    })
}

fn int_unary(op: &UnaryOp, x: i64) -> Option<i64> {
    Some(match op {
        UnaryOp::Abs => x.wrapping_abs(),
        UnaryOp::Neg => x.wrapping_neg(),
        UnaryOp::Relu => x.max(0),
        UnaryOp::Identity | UnaryOp::Ceil | UnaryOp::Floor | UnaryOp::Round => x,
        UnaryOp::Sign => x.signum(),
        UnaryOp::Shrink { bias, lambd } => {
            // ONNX computes in the input type: the shifted value is cast back (truncating).
            shrink(x as f64, *bias as f64, *lambd as f64) as i64
        }
        UnaryOp::Sqrt
        | UnaryOp::Reciprocal
        | UnaryOp::Exp
        | UnaryOp::Log
        | UnaryOp::Erf
        | UnaryOp::Sigmoid
        | UnaryOp::Tanh
        | UnaryOp::Elu { .. }
        | UnaryOp::LeakyRelu { .. }
        | UnaryOp::HardSigmoid { .. }
        | UnaryOp::HardSwish
        | UnaryOp::Gelu { .. }
        | UnaryOp::Not
        | UnaryOp::IsNaN
        | UnaryOp::IsInf { .. }
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
        | UnaryOp::BitwiseNot
        | UnaryOp::BitCast { .. }
        | UnaryOp::Swish { .. }
        | UnaryOp::ThresholdedRelu { .. }
        | UnaryOp::Softplus
        | UnaryOp::Selu { .. }
        | UnaryOp::Softsign
        | UnaryOp::Celu { .. }
        | UnaryOp::Mish
        | UnaryOp::Cast { .. } => return None,
    })
}

/// Unary elementwise op.
pub fn unary(op: &UnaryOp, x: &Tensor) -> EvalResult<Tensor> {
    if let UnaryOp::Cast { to } = op {
        return Ok(x.cast(*to));
    }
    match op {
        UnaryOp::Identity => return Ok(x.clone()),
        UnaryOp::Not => return logic::not(x),
        UnaryOp::BitwiseNot => return bitwise_not(x),
        UnaryOp::BitCast { to } => return bit_cast(x, *to),
        UnaryOp::IsNaN => return logic::is_nan(x),
        UnaryOp::IsInf {
            detect_positive,
            detect_negative,
        } => return logic::is_inf(x, *detect_positive, *detect_negative),
        _ => {}
    }
    if let TensorData::F32(v) = x.data() {
        if let Some(out) = f32_fast(op, v) {
            return Ok(Tensor::from_f32(x.shape(), out).expect("same size"));
        }
    }
    let d = x.dtype();
    if d.is_float() {
        let f = float_fn(op).expect("cast handled above");
        let (a, b) = params(op);
        if let TensorData::F32(v) = x.data() {
            return Ok(Tensor::from_f32(
                x.shape(),
                v.iter().map(|&e| f(e as f64, a, b) as f32).collect(),
            )
            .expect("size"));
        }
        let out: Vec<f64> = x.to_f64_vec().into_iter().map(|e| f(e, a, b)).collect();
        return Ok(Tensor::from_f64(x.shape(), out)
            .expect("size")
            .into_dtype(d));
    }
    if d.is_int() {
        let mut out = Vec::with_capacity(x.len());
        for e in x.to_i64_vec() {
            out.push(int_unary(op, e).ok_or(EvalError::DType {
                slot: 0,
                what: "x",
                got: d,
                expected: "a float type",
            })?);
        }
        return Ok(Tensor::from_i64(x.shape(), out)
            .expect("size")
            .into_dtype(d));
    }
    Err(EvalError::DType {
        slot: 0,
        what: "x",
        got: d,
        expected: "a numeric type",
    })
}

/// Applies `f` over two broadcast operands; returns the output shape too.
pub fn broadcast_map<A: Copy, B: Copy, O>(
    a: &[A],
    ash: &[usize],
    b: &[B],
    bsh: &[usize],
    f: impl Fn(A, B) -> O,
) -> EvalResult<(Vec<O>, Vec<usize>)> {
    let out_shape = broadcast_shapes(ash, bsh)?;
    let n: usize = out_shape.iter().product();
    let out = if ash == bsh {
        a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
    } else if b.len() == 1 && a.len() == n {
        let y = b[0];
        a.iter().map(|&x| f(x, y)).collect()
    } else if a.len() == 1 && b.len() == n {
        let x = a[0];
        b.iter().map(|&y| f(x, y)).collect()
    } else {
        // Runs of output elements over which each operand reads one element or a contiguous
        // slice (a channel's plane against a per-channel operand): indices are computed once
        // per run, not per element.
        let ia = BroadcastIndex::new(ash, &out_shape);
        let ib = BroadcastIndex::new(bsh, &out_shape);
        let (ra, rb) = (ia.run(n), ib.run(n));
        let len = gcd(ra.len(), rb.len()).max(1);
        let mut out = Vec::with_capacity(n);
        for k in (0..n).step_by(len) {
            let (pa, pb) = (ia.at(k), ib.at(k));
            match (ra, rb) {
                (Run::Contig(_), Run::Contig(_)) => out.extend(
                    a[pa..pa + len]
                        .iter()
                        .zip(&b[pb..pb + len])
                        .map(|(&x, &y)| f(x, y)),
                ),
                (Run::Contig(_), Run::Const(_)) => {
                    let y = b[pb];
                    out.extend(a[pa..pa + len].iter().map(|&x| f(x, y)))
                }
                (Run::Const(_), Run::Contig(_)) => {
                    let x = a[pa];
                    out.extend(b[pb..pb + len].iter().map(|&y| f(x, y)))
                }
                (Run::Const(_), Run::Const(_)) => {
                    let (x, y) = (a[pa], b[pb]);
                    out.extend((0..len).map(|_| f(x, y)))
                }
            }
        }
        out
    };
    Ok((out, out_shape))
}

/// The bool-valued binary ops: comparisons and And/Or/Xor.
fn bool_result(op: BinaryOp, a: &Tensor, b: &Tensor) -> EvalResult<Tensor> {
    if op.is_logical() {
        logic::logical(op, a, b)
    } else {
        logic::compare(op, a, b)
    }
}

/// Binary elementwise op with numpy broadcasting.
pub fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> EvalResult<Tensor> {
    if op.is_comparison() || op.is_logical() {
        return bool_result(op, a, b);
    }
    if op.is_bitwise() {
        return bitwise(op, a, b);
    }
    if a.dtype() != b.dtype() && op != BinaryOp::Pow {
        return Err(invalid!(
            "operands have different dtypes: {} and {}",
            a.dtype(),
            b.dtype()
        ));
    }
    let d = a.dtype();
    if let (TensorData::F32(x), TensorData::F32(y)) = (a.data(), b.data()) {
        let (sa, sb) = (a.shape(), b.shape());
        let (out, sh) = match op {
            BinaryOp::Add => broadcast_map(x, sa, y, sb, |p, q| p + q)?,
            BinaryOp::Sub => broadcast_map(x, sa, y, sb, |p, q| p - q)?,
            BinaryOp::Mul => broadcast_map(x, sa, y, sb, |p, q| p * q)?,
            BinaryOp::Div => broadcast_map(x, sa, y, sb, |p, q| p / q)?,
            BinaryOp::Pow => broadcast_map(x, sa, y, sb, pow_f32)?,
            BinaryOp::Mod => broadcast_map(x, sa, y, sb, |p: f32, q| floored_rem(p % q, q))?,
            BinaryOp::Fmod => broadcast_map(x, sa, y, sb, |p: f32, q| p % q)?,
            BinaryOp::Max => broadcast_map(x, sa, y, sb, |p: f32, q: f32| {
                if p.is_nan() || q.is_nan() {
                    f32::NAN
                } else {
                    p.max(q)
                }
            })?,
            BinaryOp::Min => broadcast_map(x, sa, y, sb, |p: f32, q: f32| {
                if p.is_nan() || q.is_nan() {
                    f32::NAN
                } else {
                    p.min(q)
                }
            })?,
            BinaryOp::PRelu => broadcast_map(x, sa, y, sb, |p, q| if p < 0.0 { p * q } else { p })?,
            BinaryOp::Equal
            | BinaryOp::Greater
            | BinaryOp::Less
            | BinaryOp::GreaterOrEqual
            | BinaryOp::LessOrEqual
            | BinaryOp::And
            | BinaryOp::Or
            | BinaryOp::Xor => return bool_result(op, a, b),
            BinaryOp::BitwiseAnd
            | BinaryOp::BitwiseOr
            | BinaryOp::BitwiseXor
            | BinaryOp::BitShiftLeft
            | BinaryOp::BitShiftRight => return bitwise(op, a, b),
        };
        return Ok(Tensor::from_f32(&sh, out).expect("size"));
    }
    if d == DType::Bool {
        // Bool-valued ops returned above; arithmetic has no bool form.
        return Err(EvalError::DType {
            slot: 0,
            what: "a",
            got: d,
            expected: "a numeric type",
        });
    }
    if d.is_float() || (op == BinaryOp::Pow && b.dtype().is_float()) {
        let (x, y) = (a.to_f64_vec(), b.to_f64_vec());
        let f: fn(f64, f64) -> f64 = match op {
            BinaryOp::Add => |p, q| p + q,
            BinaryOp::Sub => |p, q| p - q,
            BinaryOp::Mul => |p, q| p * q,
            BinaryOp::Div => |p, q| p / q,
            BinaryOp::Pow => |p, q| p.powf(q),
            BinaryOp::Mod => |p: f64, q| floored_rem(p % q, q),
            BinaryOp::Fmod => |p: f64, q| p % q,
            BinaryOp::Max => |p: f64, q: f64| {
                if p.is_nan() || q.is_nan() {
                    f64::NAN
                } else {
                    p.max(q)
                }
            },
            BinaryOp::Min => |p: f64, q: f64| {
                if p.is_nan() || q.is_nan() {
                    f64::NAN
                } else {
                    p.min(q)
                }
            },
            BinaryOp::PRelu => |p, q| if p < 0.0 { p * q } else { p },
            BinaryOp::Equal
            | BinaryOp::Greater
            | BinaryOp::Less
            | BinaryOp::GreaterOrEqual
            | BinaryOp::LessOrEqual
            | BinaryOp::And
            | BinaryOp::Or
            | BinaryOp::Xor => return bool_result(op, a, b),
            BinaryOp::BitwiseAnd
            | BinaryOp::BitwiseOr
            | BinaryOp::BitwiseXor
            | BinaryOp::BitShiftLeft
            | BinaryOp::BitShiftRight => return bitwise(op, a, b),
        };
        let (out, sh) = broadcast_map(&x, a.shape(), &y, b.shape(), f)?;
        return Ok(Tensor::from_f64(&sh, out).expect("size").into_dtype(d));
    }
    if !d.is_int() {
        return Err(EvalError::DType {
            slot: 0,
            what: "a",
            got: d,
            expected: "a numeric type",
        });
    }
    let (x, y) = (a.to_i64_vec(), b.to_i64_vec());
    if matches!(op, BinaryOp::Div | BinaryOp::Mod | BinaryOp::Fmod) && y.contains(&0) {
        return Err(invalid!("integer division by zero"));
    }
    let f: fn(i64, i64) -> i64 = match op {
        BinaryOp::Add => |p, q| p.wrapping_add(q),
        BinaryOp::Sub => |p, q| p.wrapping_sub(q),
        BinaryOp::Mul => |p, q| p.wrapping_mul(q),
        BinaryOp::Div => |p, q| p.wrapping_div(q),
        BinaryOp::Mod => |p, q| {
            let r = p.wrapping_rem(q);
            if r != 0 && (r < 0) != (q < 0) {
                r + q
            } else {
                r
            }
        },
        BinaryOp::Fmod => |p, q| p.wrapping_rem(q),
        BinaryOp::Pow => |p, q| {
            if q < 0 {
                0
            } else {
                (p as f64).powf(q as f64) as i64
            }
        },
        BinaryOp::Max => |p, q| p.max(q),
        BinaryOp::Min => |p, q| p.min(q),
        BinaryOp::PRelu => |p, q| if p < 0 { p.wrapping_mul(q) } else { p },
        BinaryOp::Equal
        | BinaryOp::Greater
        | BinaryOp::Less
        | BinaryOp::GreaterOrEqual
        | BinaryOp::LessOrEqual
        | BinaryOp::And
        | BinaryOp::Or
        | BinaryOp::Xor => return bool_result(op, a, b),
        BinaryOp::BitwiseAnd
        | BinaryOp::BitwiseOr
        | BinaryOp::BitwiseXor
        | BinaryOp::BitShiftLeft
        | BinaryOp::BitShiftRight => return bitwise(op, a, b),
    };
    let (out, sh) = broadcast_map(&x, a.shape(), &y, b.shape(), f)?;
    Ok(Tensor::from_i64(&sh, out).expect("size").into_dtype(d))
}

/// Width in bits of an integer dtype, or a dtype error naming input `slot`.
fn int_width(d: DType, slot: usize, what: &'static str) -> EvalResult<i64> {
    if !d.is_int() {
        return Err(EvalError::DType {
            slot,
            what,
            got: d,
            expected: "an integer type",
        });
    }
    Ok(8 * d.size() as i64)
}

/// The bitwise binary ops (And/Or/Xor and the shifts) on integer operands of one dtype, with
/// broadcasting. Values are computed on the sign- (or zero-) extended i64 and wrapped back, so
/// a left shift drops the bits shifted out; a shift amount outside `[0, width)` gives 0 (a
/// right shift of a negative signed value: -1), as the ONNX backend cases expect.
pub fn bitwise(op: BinaryOp, a: &Tensor, b: &Tensor) -> EvalResult<Tensor> {
    let d = a.dtype();
    let w = int_width(d, 0, "a")?;
    if b.dtype() != d {
        return Err(EvalError::DType {
            slot: 1,
            what: "b",
            got: b.dtype(),
            expected: "the dtype of a",
        });
    }
    let in_range = move |q: i64| (0..w).contains(&q);
    let (x, y) = (a.to_i64_vec(), b.to_i64_vec());
    let (sa, sb) = (a.shape(), b.shape());
    let (out, sh) = match op {
        BinaryOp::BitwiseAnd => broadcast_map(&x, sa, &y, sb, |p, q| p & q)?,
        BinaryOp::BitwiseOr => broadcast_map(&x, sa, &y, sb, |p, q| p | q)?,
        BinaryOp::BitwiseXor => broadcast_map(&x, sa, &y, sb, |p, q| p ^ q)?,
        BinaryOp::BitShiftLeft => {
            broadcast_map(&x, sa, &y, sb, |p, q| if in_range(q) { p << q } else { 0 })?
        }
        BinaryOp::BitShiftRight => {
            broadcast_map(
                &x,
                sa,
                &y,
                sb,
                |p, q| {
                    if in_range(q) {
                        p >> q
                    } else {
                        p >> 63
                    }
                },
            )?
        }
        other => return Err(invalid!("{other:?} is not a bitwise op")),
    };
    Ok(Tensor::from_i64(&sh, out).expect("size").into_dtype(d))
}

/// Bitwise complement of an integer tensor.
fn bitwise_not(x: &Tensor) -> EvalResult<Tensor> {
    int_width(x.dtype(), 0, "x")?;
    let out = x.to_i64_vec().into_iter().map(|v| !v).collect();
    Ok(Tensor::from_i64(x.shape(), out)
        .expect("size")
        .into_dtype(x.dtype()))
}

/// Reinterprets the little-endian bytes of x as `to`, a dtype of the same width.
fn bit_cast(x: &Tensor, to: DType) -> EvalResult<Tensor> {
    let from = x.dtype();
    if from.size() != to.size() {
        return Err(invalid!(
            "cannot bit-cast {from} ({} bytes) to {to} ({} bytes)",
            from.size(),
            to.size()
        ));
    }
    Tensor::from_le_bytes(to, x.shape(), &x.to_le_bytes()).map_err(|e| invalid!("{e}"))
}

/// A truncated remainder `r` of a division by `q` moved to the sign of `q` (floored modulo).
fn floored_rem<T: Copy + PartialOrd + Default + std::ops::Add<Output = T>>(r: T, q: T) -> T {
    let zero = T::default();
    if r != zero && ((r < zero) != (q < zero)) {
        r + q
    } else {
        r
    }
}

/// Clip with optional one-element bounds (min > max gives max, as ONNX says).
pub fn clip(x: &Tensor, min: Option<&Tensor>, max: Option<&Tensor>) -> EvalResult<Tensor> {
    for (t, what, slot) in [(min, "min", 1), (max, "max", 2)] {
        if let Some(t) = t {
            if t.len() != 1 {
                return Err(invalid!(
                    "{what} must have one element, has shape {:?}",
                    t.shape()
                ));
            }
            if t.dtype() != x.dtype() {
                return Err(EvalError::DType {
                    slot,
                    what,
                    got: t.dtype(),
                    expected: "x's dtype",
                });
            }
        }
    }
    if let TensorData::F32(v) = x.data() {
        let lo = min.map_or(f32::NEG_INFINITY, |t| t.to_f32_vec()[0]);
        let hi = max.map_or(f32::INFINITY, |t| t.to_f32_vec()[0]);
        let out = v
            .iter()
            .map(|&e| if e.is_nan() { e } else { e.max(lo).min(hi) })
            .collect();
        return Ok(Tensor::from_f32(x.shape(), out).expect("size"));
    }
    if x.dtype().is_float() {
        let lo = min.map_or(f64::NEG_INFINITY, |t| t.to_f64_vec()[0]);
        let hi = max.map_or(f64::INFINITY, |t| t.to_f64_vec()[0]);
        let out = x
            .to_f64_vec()
            .into_iter()
            .map(|e| if e.is_nan() { e } else { e.max(lo).min(hi) })
            .collect();
        return Ok(Tensor::from_f64(x.shape(), out)
            .expect("size")
            .into_dtype(x.dtype()));
    }
    if x.dtype().is_int() {
        let lo = min.map_or(i64::MIN, |t| t.to_i64_vec()[0]);
        let hi = max.map_or(i64::MAX, |t| t.to_i64_vec()[0]);
        let out = x
            .to_i64_vec()
            .into_iter()
            .map(|e| e.max(lo).min(hi))
            .collect();
        return Ok(Tensor::from_i64(x.shape(), out)
            .expect("size")
            .into_dtype(x.dtype()));
    }
    Err(EvalError::DType {
        slot: 0,
        what: "x",
        got: x.dtype(),
        expected: "a numeric type",
    })
}

/// Where an element of a broadcast operand is: the same index (the operand has the output's
/// shape), index 0 (one element), or the general broadcast index.
enum Operand {
    Same,
    One,
    Broadcast(BroadcastIndex),
}

impl Operand {
    fn new(shape: &[usize], out: &[usize]) -> Operand {
        if shape == out {
            Operand::Same
        } else if shape.iter().product::<usize>() == 1 {
            Operand::One
        } else {
            Operand::Broadcast(BroadcastIndex::new(shape, out))
        }
    }

    #[inline]
    fn at(&self, k: usize) -> usize {
        match self {
            Operand::Same => k,
            Operand::One => 0,
            Operand::Broadcast(b) => b.at(k),
        }
    }
}

/// Where(cond, a, b) with broadcasting over all three.
pub fn where_(c: &Tensor, a: &Tensor, b: &Tensor) -> EvalResult<Tensor> {
    let cond = c.as_bool().map_err(|_| EvalError::DType {
        slot: 0,
        what: "cond",
        got: c.dtype(),
        expected: "bool",
    })?;
    if a.dtype() != b.dtype() {
        return Err(invalid!(
            "a and b have different dtypes: {} and {}",
            a.dtype(),
            b.dtype()
        ));
    }
    let sh = broadcast_shapes(&broadcast_shapes(c.shape(), a.shape())?, b.shape())?;
    let (ic, ia, ib) = (
        Operand::new(c.shape(), &sh),
        Operand::new(a.shape(), &sh),
        Operand::new(b.shape(), &sh),
    );
    let n: usize = sh.iter().product();
    // Operands of the output's shape or of one element: index k·stride (stride 1 or 0).
    let strides = match (&ic, &ia, &ib) {
        (Operand::Broadcast(_), _, _)
        | (_, Operand::Broadcast(_), _)
        | (_, _, Operand::Broadcast(_)) => None,
        _ => Some((ic.at(1), ia.at(1), ib.at(1))),
    };
    macro_rules! pick {
        ($x:expr, $y:expr, $v:ident) => {
            TensorData::$v(match strides {
                Some((sc, sa, sb)) => (0..n)
                    .map(|k| if cond[k * sc] { $x[k * sa] } else { $y[k * sb] })
                    .collect(),
                None => (0..n)
                    .map(|k| {
                        if cond[ic.at(k)] {
                            $x[ia.at(k)]
                        } else {
                            $y[ib.at(k)]
                        }
                    })
                    .collect(),
            })
        };
    }
    let data = match (a.data(), b.data()) {
        (TensorData::F32(x), TensorData::F32(y)) => pick!(x, y, F32),
        (TensorData::F16(x), TensorData::F16(y)) => pick!(x, y, F16),
        (TensorData::F64(x), TensorData::F64(y)) => pick!(x, y, F64),
        (TensorData::I8(x), TensorData::I8(y)) => pick!(x, y, I8),
        (TensorData::U8(x), TensorData::U8(y)) => pick!(x, y, U8),
        (TensorData::I32(x), TensorData::I32(y)) => pick!(x, y, I32),
        (TensorData::I64(x), TensorData::I64(y)) => pick!(x, y, I64),
        (TensorData::Bool(x), TensorData::Bool(y)) => pick!(x, y, Bool),
        _ => return Err(invalid!("a and b have different dtypes")),
    };
    Tensor::new(&sh, data).map_err(|e| invalid!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::broadcast_index;

    #[test]
    fn bit_ops_wrap_and_handle_out_of_range_shifts() {
        let i8s = |v: Vec<i8>| Tensor::from_i8(&[v.len()], v).expect("size");
        let a = i8s(vec![-128, 64, -3, 5]);
        let s = i8s(vec![1, 1, 8, -1]);
        let got = |op| bitwise(op, &a, &s).expect("bitwise").into_i8().expect("i8");
        // 64 << 1 drops the carry into the sign bit; shifts of 8 or -1 give 0 (or -1).
        assert_eq!(got(BinaryOp::BitShiftLeft), [0, -128, 0, 0]);
        assert_eq!(got(BinaryOp::BitShiftRight), [-64, 32, -1, 0]);
        assert_eq!(got(BinaryOp::BitwiseAnd), [0, 0, 8, 5]);
        assert_eq!(got(BinaryOp::BitwiseXor), [-127, 65, -11, -6]);
        let u = Tensor::from_u8(&[2], vec![0, 0xf0]).expect("size");
        let n = unary(&UnaryOp::BitwiseNot, &u).expect("not");
        assert_eq!(n.into_u8().expect("u8"), [0xff, 0x0f]);
        let shr = bitwise(
            BinaryOp::BitShiftRight,
            &u,
            &Tensor::from_u8(&[1], vec![4]).unwrap(),
        );
        assert_eq!(shr.expect("shift").into_u8().expect("u8"), [0, 0x0f]);
    }

    #[test]
    fn bit_ops_reject_floats_and_mixed_dtypes() {
        let f = Tensor::from_f32(&[1], vec![1.0]).expect("size");
        let i = Tensor::from_i32(&[1], vec![1]).expect("size");
        assert!(matches!(
            bitwise(BinaryOp::BitwiseOr, &f, &f),
            Err(EvalError::DType { slot: 0, .. })
        ));
        assert!(matches!(
            bitwise(BinaryOp::BitwiseOr, &i, &Tensor::vec_i64(&[1])),
            Err(EvalError::DType { slot: 1, .. })
        ));
        assert!(unary(&UnaryOp::BitwiseNot, &f).is_err());
    }

    #[test]
    fn bit_cast_reinterprets_bytes_of_equal_width_only() {
        let f = Tensor::from_f32(&[2], vec![1.0, -0.0]).expect("size");
        let i = unary(&UnaryOp::BitCast { to: DType::I32 }, &f).expect("bitcast");
        assert_eq!(i.into_i32().expect("i32"), [0x3f80_0000, i32::MIN]);
        assert!(unary(&UnaryOp::BitCast { to: DType::I64 }, &f).is_err());
    }

    #[test]
    fn broadcast_map_matches_table() {
        let shapes: [&[usize]; 12] = [
            &[],
            &[1],
            &[5],
            &[4, 1],
            &[4, 5],
            &[3, 1, 1],
            &[1, 3, 1, 1],
            &[2, 3, 1, 1],
            &[2, 3, 4, 5],
            &[1, 3, 4, 1],
            &[2, 1, 4, 1],
            &[3, 1, 5],
        ];
        for sa in shapes {
            for sb in shapes {
                let Ok(out) = broadcast_shapes(sa, sb) else {
                    continue;
                };
                let na: usize = sa.iter().product();
                let nb: usize = sb.iter().product();
                let a: Vec<i64> = (0..na as i64).collect();
                let b: Vec<i64> = (0..nb as i64).map(|v| v * 1000).collect();
                let (got, sh) = broadcast_map(&a, sa, &b, sb, |x, y| x + y).unwrap();
                assert_eq!(sh, out);
                let (ta, tb) = (broadcast_index(sa, &out), broadcast_index(sb, &out));
                let want: Vec<i64> = ta.iter().zip(&tb).map(|(&i, &j)| a[i] + b[j]).collect();
                assert_eq!(got, want, "{sa:?} with {sb:?}");
            }
        }
    }

    /// `op` on f32 values.
    fn act(op: UnaryOp, x: &[f32]) -> Vec<f32> {
        let t = Tensor::from_f32(&[x.len()], x.to_vec()).unwrap();
        unary(&op, &t).unwrap().to_f32_vec()
    }

    /// Equal within 1e-6 relative, NaN equal to NaN, infinities exact.
    fn close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
            let ok =
                (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= 1e-6 * w.abs().max(1.0);
            assert!(ok, "element {k}: got {g}, want {w} ({got:?} vs {want:?})");
        }
    }

    const INF: f32 = f32::INFINITY;
    const NAN: f32 = f32::NAN;

    #[test]
    fn softplus_softsign_and_mish() {
        let x = [-INF, -1.0, 0.0, 1.0, INF, NAN, 100.0];
        // ln(1 + e^x); 100 does not overflow through e^100.
        close(
            &act(UnaryOp::Softplus, &x),
            &[
                0.0,
                0.313_261_7,
                std::f32::consts::LN_2,
                1.313_261_7,
                INF,
                NAN,
                100.0,
            ],
        );
        // x / (1 + |x|): ±inf give inf/inf = NaN, as ONNX Runtime.
        close(
            &act(UnaryOp::Softsign, &x),
            &[NAN, -0.5, 0.0, 0.5, NAN, NAN, 100.0 / 101.0],
        );
        // x * tanh(softplus(x)): -inf * tanh(0) is NaN, as ONNX Runtime.
        close(
            &act(UnaryOp::Mish, &x),
            &[NAN, -0.303_401_4, 0.0, 0.865_098_4, INF, NAN, 100.0],
        );
    }

    #[test]
    fn swish_and_thresholded_relu() {
        let x = [-INF, -1.0, 0.0, 1.0, INF, NAN];
        // x * sigmoid(x); -inf * 0 is NaN.
        close(
            &act(UnaryOp::Swish { alpha: 1.0 }, &x),
            &[NAN, -0.268_941_4, 0.0, 0.731_058_6, INF, NAN],
        );
        // alpha 2: 1 * sigmoid(2) = 0.880797.
        close(&act(UnaryOp::Swish { alpha: 2.0 }, &[1.0]), &[0.880_797_1]);
        // alpha 0: x / 2.
        close(&act(UnaryOp::Swish { alpha: 0.0 }, &[3.0]), &[1.5]);
        // Strictly greater than alpha; NaN compares false.
        close(
            &act(
                UnaryOp::ThresholdedRelu { alpha: 1.0 },
                &[1.0, 1.5, -2.0, INF, -INF, NAN],
            ),
            &[0.0, 1.5, 0.0, INF, 0.0, 0.0],
        );
        close(
            &act(UnaryOp::ThresholdedRelu { alpha: -1.0 }, &[-0.5, -1.0]),
            &[-0.5, 0.0],
        );
    }

    #[test]
    fn selu_and_celu() {
        let defaults = UnaryOp::Selu {
            alpha: lpc_ir::SELU_ALPHA,
            gamma: lpc_ir::SELU_GAMMA,
        };
        // gamma*x above 0; gamma*alpha*(e^x - 1) at or below (-inf: -gamma*alpha).
        close(
            &act(defaults, &[-INF, -1.0, 0.0, 1.0, INF, NAN]),
            &[-1.758_099_3, -1.111_330_7, 0.0, 1.050_701, INF, NAN],
        );
        close(
            &act(
                UnaryOp::Selu {
                    alpha: 2.0,
                    gamma: 3.0,
                },
                &[-1.0, 2.0],
            ),
            &[6.0 * (std::f32::consts::E.recip() - 1.0), 6.0],
        );
        close(
            &act(
                UnaryOp::Celu { alpha: 1.0 },
                &[-INF, -1.0, 0.0, 1.0, INF, NAN],
            ),
            &[-1.0, -0.632_120_56, 0.0, 1.0, INF, NAN],
        );
        // alpha 2: 2*(e^(-2/2) - 1).
        close(
            &act(UnaryOp::Celu { alpha: 2.0 }, &[-2.0, -INF, 3.0]),
            &[-1.264_241_1, -2.0, 3.0],
        );
    }

    #[test]
    fn shrink_float_and_integer() {
        let soft = UnaryOp::Shrink {
            bias: 1.0,
            lambd: 1.0,
        };
        // Inside [-lambd, lambd] (bounds included) and NaN give 0.
        close(
            &act(soft.clone(), &[2.0, -2.0, 1.0, -1.0, 0.5, INF, -INF, NAN]),
            &[1.0, -1.0, 0.0, 0.0, 0.0, INF, -INF, 0.0],
        );
        // The defaults (bias 0, lambd 0.5) are a hard shrink.
        let hard = UnaryOp::Shrink {
            bias: 0.0,
            lambd: 0.5,
        };
        close(&act(hard, &[0.5, 0.6, -0.7]), &[0.0, 0.6, -0.7]);
        // Integers: x ± bias cast back by truncation, as ONNX computes in the input type.
        let t = Tensor::from_i64(&[5], vec![-3, -1, 0, 2, 100]).unwrap();
        let half = UnaryOp::Shrink {
            bias: 1.5,
            lambd: 1.5,
        };
        let y = unary(&half, &t.into_dtype(DType::I32)).unwrap();
        assert_eq!(y.dtype(), DType::I32);
        assert_eq!(y.to_i64_vec(), vec![-1, 0, 0, 0, 98]);
    }

    #[test]
    fn float_activations_reject_integers() {
        let t = Tensor::from_i64(&[1], vec![1]).unwrap();
        assert!(matches!(
            unary(&UnaryOp::Softplus, &t),
            Err(EvalError::DType { .. })
        ));
    }
}
