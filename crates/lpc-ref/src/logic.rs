//! Comparisons (bool result), the logical ops And/Or/Xor/Not and the float tests IsNaN/IsInf.

use crate::elementwise::broadcast_map;
use crate::{invalid, EvalError, EvalResult};
use lpc_ir::{BinaryOp, Tensor, TensorData};

/// The predicate of a comparison over any ordered element type; `None` for other ops.
fn predicate<T: PartialOrd>(op: BinaryOp) -> Option<fn(T, T) -> bool> {
    Some(match op {
        BinaryOp::Equal => |p, q| p == q,
        BinaryOp::Greater => |p, q| p > q,
        BinaryOp::Less => |p, q| p < q,
        BinaryOp::GreaterOrEqual => |p, q| p >= q,
        BinaryOp::LessOrEqual => |p, q| p <= q,
        BinaryOp::Add
        | BinaryOp::Sub
        | BinaryOp::Mul
        | BinaryOp::Div
        | BinaryOp::Pow
        | BinaryOp::Mod
        | BinaryOp::Fmod
        | BinaryOp::Max
        | BinaryOp::Min
        | BinaryOp::PRelu
        | BinaryOp::And
        | BinaryOp::Or
        | BinaryOp::Xor
        | BinaryOp::BitwiseAnd
        | BinaryOp::BitwiseOr
        | BinaryOp::BitwiseXor
        | BinaryOp::BitShiftLeft
        | BinaryOp::BitShiftRight => return None,
    })
}

fn bools(sh: Vec<usize>, out: Vec<bool>) -> Tensor {
    Tensor::from_bool(&sh, out).expect("broadcast_map returns one element per output index")
}

/// A comparison with numpy broadcasting; operands of one dtype (floats compare exactly
/// through f64, integers through i64, bools as false < true), NaN compares false.
pub fn compare(op: BinaryOp, a: &Tensor, b: &Tensor) -> EvalResult<Tensor> {
    if a.dtype() != b.dtype() {
        return Err(invalid!(
            "operands have different dtypes: {} and {}",
            a.dtype(),
            b.dtype()
        ));
    }
    let not_cmp = || invalid!("{op:?} is not a comparison");
    let (sa, sb) = (a.shape(), b.shape());
    let (out, sh) = match (a.data(), b.data()) {
        (TensorData::F32(x), TensorData::F32(y)) => {
            broadcast_map(x, sa, y, sb, predicate::<f32>(op).ok_or_else(not_cmp)?)?
        }
        (TensorData::Bool(x), TensorData::Bool(y)) => {
            broadcast_map(x, sa, y, sb, predicate::<bool>(op).ok_or_else(not_cmp)?)?
        }
        _ if a.dtype().is_float() => {
            let (x, y) = (a.to_f64_vec(), b.to_f64_vec());
            broadcast_map(&x, sa, &y, sb, predicate::<f64>(op).ok_or_else(not_cmp)?)?
        }
        _ => {
            let (x, y) = (a.to_i64_vec(), b.to_i64_vec());
            broadcast_map(&x, sa, &y, sb, predicate::<i64>(op).ok_or_else(not_cmp)?)?
        }
    };
    Ok(bools(sh, out))
}

fn require_bool<'t>(t: &'t Tensor, slot: usize, what: &'static str) -> EvalResult<&'t [bool]> {
    t.as_bool().map_err(|_| EvalError::DType {
        slot,
        what,
        got: t.dtype(),
        expected: "bool",
    })
}

/// And, Or or Xor of two bool tensors with numpy broadcasting.
pub fn logical(op: BinaryOp, a: &Tensor, b: &Tensor) -> EvalResult<Tensor> {
    let (x, y) = (require_bool(a, 0, "a")?, require_bool(b, 1, "b")?);
    let f: fn(bool, bool) -> bool = match op {
        BinaryOp::And => |p, q| p && q,
        BinaryOp::Or => |p, q| p || q,
        BinaryOp::Xor => |p, q| p != q,
        BinaryOp::Add
        | BinaryOp::Sub
        | BinaryOp::Mul
        | BinaryOp::Div
        | BinaryOp::Pow
        | BinaryOp::Mod
        | BinaryOp::Fmod
        | BinaryOp::Max
        | BinaryOp::Min
        | BinaryOp::PRelu
        | BinaryOp::Equal
        | BinaryOp::Greater
        | BinaryOp::Less
        | BinaryOp::GreaterOrEqual
        | BinaryOp::LessOrEqual
        | BinaryOp::BitwiseAnd
        | BinaryOp::BitwiseOr
        | BinaryOp::BitwiseXor
        | BinaryOp::BitShiftLeft
        | BinaryOp::BitShiftRight => return Err(invalid!("{op:?} is not a logical op")),
    };
    let (out, sh) = broadcast_map(x, a.shape(), y, b.shape(), f)?;
    Ok(bools(sh, out))
}

/// Logical not of a bool tensor.
pub fn not(x: &Tensor) -> EvalResult<Tensor> {
    let v = require_bool(x, 0, "x")?;
    Ok(bools(x.shape().to_vec(), v.iter().map(|&p| !p).collect()))
}

/// Applies a test to every element of a float tensor.
fn classify(x: &Tensor, f: impl Fn(f64) -> bool) -> EvalResult<Tensor> {
    if !x.dtype().is_float() {
        return Err(EvalError::DType {
            slot: 0,
            what: "x",
            got: x.dtype(),
            expected: "a float type",
        });
    }
    let out = x.to_f64_vec().into_iter().map(f).collect();
    Ok(bools(x.shape().to_vec(), out))
}

/// IsNaN: true where x is NaN.
pub fn is_nan(x: &Tensor) -> EvalResult<Tensor> {
    classify(x, f64::is_nan)
}

/// IsInf: true where x is +inf (when `positive`) or -inf (when `negative`).
pub fn is_inf(x: &Tensor, positive: bool, negative: bool) -> EvalResult<Tensor> {
    classify(x, |e| {
        (positive && e == f64::INFINITY) || (negative && e == f64::NEG_INFINITY)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lpc_ir::DType;

    #[test]
    fn comparisons_broadcast_and_treat_nan_as_unordered() {
        let a = Tensor::from_f32(&[2, 1], vec![1.0, f32::NAN]).expect("size");
        let b = Tensor::from_f32(&[3], vec![0.0, 1.0, 2.0]).expect("size");
        let got = |op| {
            compare(op, &a, &b)
                .expect("compare")
                .into_bool()
                .expect("bool")
        };
        assert_eq!(
            got(BinaryOp::Greater),
            [true, false, false, false, false, false]
        );
        assert_eq!(
            got(BinaryOp::GreaterOrEqual),
            [true, true, false, false, false, false]
        );
        assert_eq!(
            got(BinaryOp::Less),
            [false, false, true, false, false, false]
        );
        assert_eq!(
            got(BinaryOp::LessOrEqual),
            [false, true, true, false, false, false]
        );
    }

    #[test]
    fn integer_comparisons_are_exact() {
        let a = Tensor::from_i64(&[2], vec![i64::MAX, i64::MAX - 1]).expect("size");
        let b = Tensor::from_i64(&[1], vec![i64::MAX - 1]).expect("size");
        let gt = compare(BinaryOp::Greater, &a, &b).expect("compare");
        assert_eq!(gt.into_bool().expect("bool"), [true, false]);
        let u = Tensor::from_i64(&[1], vec![200])
            .expect("size")
            .into_dtype(DType::U8);
        let v = Tensor::from_i64(&[1], vec![100])
            .expect("size")
            .into_dtype(DType::U8);
        let lt = compare(BinaryOp::Less, &v, &u).expect("compare");
        assert_eq!(lt.into_bool().expect("bool"), [true]);
    }

    #[test]
    fn logical_ops_and_float_tests() {
        let p = Tensor::from_bool(&[4], vec![false, false, true, true]).expect("size");
        let q = Tensor::from_bool(&[4], vec![false, true, false, true]).expect("size");
        let got = |op| {
            logical(op, &p, &q)
                .expect("logical")
                .into_bool()
                .expect("bool")
        };
        assert_eq!(got(BinaryOp::And), [false, false, false, true]);
        assert_eq!(got(BinaryOp::Or), [false, true, true, true]);
        assert_eq!(got(BinaryOp::Xor), [false, true, true, false]);
        assert_eq!(
            not(&p).expect("not").into_bool().expect("bool"),
            [true, true, false, false]
        );
        let f = Tensor::from_f32(&[1], vec![1.0]).expect("size");
        assert!(logical(BinaryOp::And, &f, &p).is_err());
        assert!(not(&f).is_err());
        let x = Tensor::from_f32(&[4], vec![f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1.0])
            .expect("size");
        let b = |t: EvalResult<Tensor>| t.expect("ok").into_bool().expect("bool");
        assert_eq!(b(is_nan(&x)), [false, false, true, false]);
        assert_eq!(b(is_inf(&x, true, true)), [true, true, false, false]);
        assert_eq!(b(is_inf(&x, true, false)), [true, false, false, false]);
        assert_eq!(b(is_inf(&x, false, true)), [false, true, false, false]);
        assert!(is_nan(&p).is_err());
    }
}
