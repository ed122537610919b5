//! QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear and FakeQuantize, exactly:
//! ONNX semantics (f32 arithmetic as ONNX Runtime, round half to even, saturate) and OpenVINO's
//! FakeQuantize-1.

use crate::util::{broadcast_shapes, norm_axis, strides, BroadcastIndex};
use crate::{invalid, EvalError, EvalResult, Inputs};
use lpc_ir::{DType, QuantAxis, Tensor};

/// For each element of `x_shape`, the index of its scale/zero point in a parameter tensor of
/// `p_shape`: per-tensor (one element), per-axis (1-D along `axis`) or blocked (same rank).
fn param_index(q: &QuantAxis, x_shape: &[usize], p_shape: &[usize]) -> EvalResult<Vec<usize>> {
    let n: usize = x_shape.iter().product();
    let pn: usize = p_shape.iter().product();
    if pn == 1 && q.block_size == 0 {
        return Ok(vec![0; n]);
    }
    let ax = norm_axis(q.axis, x_shape.len())?;
    if q.block_size == 0 {
        if p_shape.len() != 1 || p_shape[0] != x_shape[ax] {
            return Err(invalid!(
                "per-axis scale of shape {p_shape:?} does not match axis {ax} of {x_shape:?}"
            ));
        }
        let inner: usize = x_shape[ax + 1..].iter().product();
        return Ok((0..n).map(|i| (i / inner) % x_shape[ax]).collect());
    }
    // Blocked: same rank; the axis dim is ceil(len / block_size).
    let b = q.block_size;
    if p_shape.len() != x_shape.len()
        || p_shape[ax] != x_shape[ax].div_ceil(b)
        || (0..x_shape.len()).any(|d| d != ax && p_shape[d] != x_shape[d])
    {
        return Err(invalid!("blocked scale of shape {p_shape:?} does not match {x_shape:?} with block {b} on axis {ax}"));
    }
    let ps = strides(p_shape);
    let mut out = Vec::with_capacity(n);
    crate::shape_ops::for_each_index(x_shape, |ix| {
        out.push(
            ix.iter()
                .enumerate()
                .map(|(d, &i)| if d == ax { i / b } else { i } * ps[d])
                .sum(),
        );
    });
    Ok(out)
}

fn range_of(d: DType) -> EvalResult<(f32, f32)> {
    Ok(match d {
        DType::U8 => (0.0, 255.0),
        DType::I8 => (-128.0, 127.0),
        DType::I32 => (i32::MIN as f32, i32::MAX as f32),
        DType::F32 | DType::F16 | DType::F64 | DType::I64 | DType::Bool => {
            return Err(invalid!("cannot quantize to {d}"))
        }
    })
}

/// QuantizeLinear: `saturate(round_half_even(x / scale) + zp)`.
pub fn quantize_linear(q: &QuantAxis, dtype: DType, i: Inputs) -> EvalResult<Tensor> {
    let x = i.req(0, "x")?;
    let scale = i.req(1, "y_scale")?;
    if !scale.dtype().is_float() {
        return Err(EvalError::DType {
            slot: 1,
            what: "y_scale",
            got: scale.dtype(),
            expected: "a float type",
        });
    }
    let (lo, hi) = range_of(dtype)?;
    let zp = match i.opt(2) {
        Some(z) if z.dtype() != dtype => {
            return Err(EvalError::DType {
                slot: 2,
                what: "y_zero_point",
                got: z.dtype(),
                expected: "the output dtype",
            })
        }
        Some(z) => {
            if z.shape() != scale.shape() && z.len() != scale.len() {
                return Err(invalid!(
                    "zero point shape {:?} differs from scale shape {:?}",
                    z.shape(),
                    scale.shape()
                ));
            }
            z.to_f64_vec()
        }
        None => vec![0.0; scale.len()],
    };
    let pi = param_index(q, x.shape(), scale.shape())?;
    let s = scale.to_f32_vec();
    let xv = x.to_f32_vec();
    let out: Vec<i64> = xv
        .iter()
        .zip(&pi)
        .map(|(&v, &p)| {
            let y = (v / s[p]).round_ties_even() + zp[p] as f32;
            (if y.is_nan() { 0.0 } else { y.clamp(lo, hi) }) as i64
        })
        .collect();
    Ok(Tensor::from_i64(x.shape(), out)
        .expect("size")
        .into_dtype(dtype))
}

/// DequantizeLinear: `(x - zp) * scale`, in the scale's float type.
pub fn dequantize_linear(q: &QuantAxis, i: Inputs) -> EvalResult<Tensor> {
    let x = i.req(0, "x")?;
    let scale = i.req(1, "x_scale")?;
    if !matches!(x.dtype(), DType::U8 | DType::I8 | DType::I32) {
        return Err(EvalError::DType {
            slot: 0,
            what: "x",
            got: x.dtype(),
            expected: "u8, i8 or i32",
        });
    }
    if !scale.dtype().is_float() {
        return Err(EvalError::DType {
            slot: 1,
            what: "x_scale",
            got: scale.dtype(),
            expected: "a float type",
        });
    }
    let zp = match i.opt(2) {
        Some(z) if z.dtype() != x.dtype() => {
            return Err(EvalError::DType {
                slot: 2,
                what: "x_zero_point",
                got: z.dtype(),
                expected: "x's dtype",
            })
        }
        Some(z) if z.len() != scale.len() => {
            return Err(invalid!(
                "zero point shape {:?} differs from scale shape {:?}",
                z.shape(),
                scale.shape()
            ))
        }
        Some(z) => z.to_i64_vec(),
        None => vec![0; scale.len()],
    };
    let pi = param_index(q, x.shape(), scale.shape())?;
    let s = scale.to_f32_vec();
    let out: Vec<f32> = x
        .to_i64_vec()
        .iter()
        .zip(&pi)
        .map(|(&v, &p)| (v - zp[p]) as i32 as f32 * s[p])
        .collect();
    Ok(Tensor::from_f32(x.shape(), out)
        .expect("size")
        .into_dtype(scale.dtype()))
}

/// DynamicQuantizeLinear: u8 with a range that includes 0.
pub fn dynamic_quantize_linear(x: &Tensor) -> EvalResult<Vec<Tensor>> {
    let v = x.as_f32().map_err(|_| EvalError::DType {
        slot: 0,
        what: "x",
        got: x.dtype(),
        expected: "f32",
    })?;
    if v.iter().any(|e| !e.is_finite()) {
        return Err(invalid!("x contains NaN or infinity"));
    }
    let min = v.iter().copied().fold(0.0f32, f32::min);
    let max = v.iter().copied().fold(0.0f32, f32::max);
    let scale = (max - min) / 255.0;
    let zp = if scale == 0.0 {
        0.0
    } else {
        (-min / scale).round_ties_even().clamp(0.0, 255.0)
    };
    let y: Vec<u8> = v
        .iter()
        .map(|&e| {
            if scale == 0.0 {
                zp as u8
            } else {
                ((e / scale).round_ties_even() + zp).clamp(0.0, 255.0) as u8
            }
        })
        .collect();
    Ok(vec![
        Tensor::from_u8(x.shape(), y).expect("size"),
        Tensor::from_f32(&[], vec![scale]).expect("size"),
        Tensor::from_u8(&[], vec![zp as u8]).expect("size"),
    ])
}

/// OpenVINO FakeQuantize-1, computed in f32:
/// `x <= min(il,ih) → ol; x > max(il,ih) → oh;
///  else round((x-il)/(ih-il)*(levels-1))/(levels-1)*(oh-ol)+ol` (round half to even).
/// Inverted input ranges (il > ih) follow the same formula, as OpenVINO's reference does.
pub fn fake_quantize(levels: u32, i: Inputs) -> EvalResult<Tensor> {
    let x = i.req(0, "x")?;
    if levels < 2 {
        return Err(invalid!("levels must be at least 2, got {levels}"));
    }
    let xv = x.as_f32().map_err(|_| EvalError::DType {
        slot: 0,
        what: "x",
        got: x.dtype(),
        expected: "f32",
    })?;
    let names = ["input_low", "input_high", "output_low", "output_high"];
    let mut bounds = vec![];
    for (k, what) in names.iter().enumerate() {
        let t = i.req(k + 1, what)?;
        let v = t.to_f32_vec();
        if v.iter().any(|e| e.is_nan()) {
            return Err(invalid!("{what} contains NaN"));
        }
        let sh = broadcast_shapes(t.shape(), x.shape())?;
        if sh != x.shape() {
            return Err(invalid!(
                "{what} of shape {:?} does not broadcast to x {:?}",
                t.shape(),
                x.shape()
            ));
        }
        bounds.push((v, BroadcastIndex::new(t.shape(), x.shape())));
    }
    let l = (levels - 1) as f32;
    let out = xv
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            let il = bounds[0].0[bounds[0].1.at(k)];
            let ih = bounds[1].0[bounds[1].1.at(k)];
            let ol = bounds[2].0[bounds[2].1.at(k)];
            let oh = bounds[3].0[bounds[3].1.at(k)];
            if v <= il.min(ih) {
                ol
            } else if v > il.max(ih) {
                oh
            } else {
                ((v - il) / (ih - il) * l).round_ties_even() / l * (oh - ol) + ol
            }
        })
        .collect();
    Ok(Tensor::from_f32(x.shape(), out).expect("size"))
}
