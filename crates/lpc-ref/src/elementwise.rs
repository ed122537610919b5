//! Elementwise ops: unary, binary with numpy broadcasting, Clip, Where. f32 has fast paths;
//! other dtypes compute through f64 (floats) or i64 (integers, wrapping like C) and cast back.

use crate::logic;
use crate::util::{broadcast_shapes, gcd, BroadcastIndex, Run};
use crate::{invalid, EvalError, EvalResult};
use lpc_ir::{BinaryOp, DType, Tensor, TensorData, UnaryOp};

/// Error function, |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit, in f64).
pub fn erf(x: f64) -> f64 {
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
        UnaryOp::Cast { .. } | UnaryOp::Not | UnaryOp::IsNaN | UnaryOp::IsInf { .. } => {
            return None
        }
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

fn params(op: &UnaryOp) -> (f32, f32) {
    match op {
        UnaryOp::Elu { alpha } | UnaryOp::LeakyRelu { alpha } => (*alpha, 0.0),
        UnaryOp::HardSigmoid { alpha, beta } => (*alpha, *beta),
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
        | UnaryOp::Cast { .. } => (0.0, 0.0),
    }
}

/// f32 versions of the hot activations (plain f32 arithmetic, as ONNX Runtime computes them).
fn f32_fast(op: &UnaryOp, v: &[f32]) -> Option<Vec<f32>> {
    Some(match op {
        UnaryOp::Relu => v.iter().map(|&x| if x < 0.0 { 0.0 } else { x }).collect(),
        UnaryOp::Identity => v.to_vec(),
        UnaryOp::Sigmoid => v.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect(),
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
        UnaryOp::Exp => v.iter().map(|x| x.exp()).collect(),
        UnaryOp::Tanh => v.iter().map(|x| x.tanh()).collect(),
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
        | UnaryOp::Erf
        | UnaryOp::Elu { .. }
        | UnaryOp::Gelu { .. }
        | UnaryOp::Sign
        | UnaryOp::Not
        | UnaryOp::IsNaN
        | UnaryOp::IsInf { .. }
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
            BinaryOp::Pow => broadcast_map(x, sa, y, sb, |p: f32, q| p.powf(q))?,
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
    };
    let (out, sh) = broadcast_map(&x, a.shape(), &y, b.shape(), f)?;
    Ok(Tensor::from_i64(&sh, out).expect("size").into_dtype(d))
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
        BroadcastIndex::new(c.shape(), &sh),
        BroadcastIndex::new(a.shape(), &sh),
        BroadcastIndex::new(b.shape(), &sh),
    );
    let n: usize = sh.iter().product();
    let src: Vec<(bool, usize, usize)> = (0..n)
        .map(|k| (cond[ic.at(k)], ia.at(k), ib.at(k)))
        .collect();
    macro_rules! pick {
        ($x:expr, $y:expr, $v:ident) => {
            TensorData::$v(
                src.iter()
                    .map(|&(t, i, j)| if t { $x[i] } else { $y[j] })
                    .collect(),
            )
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
}
