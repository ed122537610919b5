//! lpc's fused integer ops (QConv, QMatMul, Requantize, QAdd, Lut): the exact definitions the
//! fold stage rewrites to and every JIT kernel must match bit for bit.

use crate::nn::requantize;
use crate::util::{broadcast_index, broadcast_shapes};
use crate::{invalid, EvalError, EvalResult, Inputs};
use lpc_ir::{ConvAttrs, DType, Tensor};

/// The integer range of a quantized dtype.
fn qrange(d: DType) -> EvalResult<(i32, i32)> {
    match d {
        DType::U8 => Ok((0, 255)),
        DType::I8 => Ok((-128, 127)),
        DType::I32 => Ok((i32::MIN, i32::MAX)),
        DType::F32 | DType::F16 | DType::F64 | DType::I64 | DType::Bool => {
            Err(invalid!("quantized values must be u8, i8 or i32, got {d}"))
        }
    }
}

/// A rank-0 (or one-element) integer parameter.
fn scalar_int(t: &Tensor, slot: usize, what: &'static str) -> EvalResult<i32> {
    if !t.dtype().is_int() || t.len() != 1 {
        return Err(EvalError::DType {
            slot,
            what,
            got: t.dtype(),
            expected: "a one-element integer tensor",
        });
    }
    Ok(t.to_i64_vec()[0] as i32)
}

/// Per-channel f32 parameters: one value or `len` values.
fn per_channel_f32(
    t: &Tensor,
    len: usize,
    slot: usize,
    what: &'static str,
) -> EvalResult<Vec<f32>> {
    if t.dtype() != DType::F32 {
        return Err(EvalError::DType {
            slot,
            what,
            got: t.dtype(),
            expected: "f32",
        });
    }
    let v = t.to_f32_vec();
    match v.len() {
        1 => Ok(vec![v[0]; len]),
        l if l == len => Ok(v),
        l => Err(invalid!("{what} has {l} values, expected 1 or {len}")),
    }
}

/// The epilogue shared by QConv and QMatMul. `acc` is laid out with the channel of element `k`
/// at `chan(k)`; slots: bias 3, scale 4, y_zero_point 5, lo 6, hi 7.
fn epilogue(
    i: Inputs,
    mut acc: Vec<i32>,
    shape: &[usize],
    m: usize,
    chan: impl Fn(usize) -> usize,
) -> EvalResult<Tensor> {
    if let Some(b) = i.opt(3) {
        let bv = b.as_i32().map_err(|_| EvalError::DType {
            slot: 3,
            what: "bias",
            got: b.dtype(),
            expected: "i32",
        })?;
        if bv.len() != m {
            return Err(invalid!(
                "bias has {} values, {m} output channels",
                bv.len()
            ));
        }
        for (k, v) in acc.iter_mut().enumerate() {
            *v = v.wrapping_add(bv[chan(k)]);
        }
    }
    let scale = per_channel_f32(i.req(4, "scale")?, m, 4, "scale")?;
    let Some(yz) = i.opt(5) else {
        let out: Vec<f32> = acc
            .iter()
            .enumerate()
            .map(|(k, &v)| v as f32 * scale[chan(k)])
            .collect();
        return Ok(Tensor::from_f32(shape, out).expect("size"));
    };
    let yd = yz.dtype();
    let (dlo, dhi) = qrange(yd)?;
    if yd == DType::I32 {
        return Err(invalid!("y_zero_point must be u8 or i8, got i32"));
    }
    let zp = scalar_int(yz, 5, "y_zero_point")?;
    let lo = i
        .opt(6)
        .map(|t| scalar_int(t, 6, "lo"))
        .transpose()?
        .unwrap_or(dlo)
        .max(dlo);
    let hi = i
        .opt(7)
        .map(|t| scalar_int(t, 7, "hi"))
        .transpose()?
        .unwrap_or(dhi)
        .min(dhi);
    let out: Vec<i64> = acc
        .iter()
        .enumerate()
        .map(|(k, &v)| requantize(v, scale[chan(k)], zp, lo, hi) as i64)
        .collect();
    Ok(Tensor::from_i64(shape, out).expect("size").cast(yd))
}

/// QConv: `Σ (x − x_zp)·w + bias`, then the canonical requantize (or an f32 scale).
pub fn qconv(a: &ConvAttrs, i: Inputs) -> EvalResult<Tensor> {
    let (x, xz, w) = (i.req(0, "x")?, i.req(1, "x_zero_point")?, i.req(2, "w")?);
    if w.dtype() != DType::I8 {
        return Err(EvalError::DType {
            slot: 2,
            what: "w",
            got: w.dtype(),
            expected: "i8",
        });
    }
    let acc = crate::nn::conv_integer(a, Inputs::new(&[Some(x), Some(w), Some(xz), None]))?;
    let shape = acc.shape().to_vec();
    let m = shape.get(1).copied().unwrap_or(1);
    let on: usize = shape.iter().skip(2).product();
    epilogue(
        i,
        acc.into_i32().expect("i32 accumulators"),
        &shape,
        m,
        |k| (k / on.max(1)) % m.max(1),
    )
}

/// QMatMul: `Σ_k (a − a_zp)·b + bias` with b [K, N], then the canonical requantize.
pub fn qmatmul(i: Inputs) -> EvalResult<Tensor> {
    let (a, az, b) = (i.req(0, "a")?, i.req(1, "a_zero_point")?, i.req(2, "b")?);
    if b.dtype() != DType::I8 || b.rank() != 2 {
        return Err(invalid!("b must be a 2-D i8 tensor, got {b}"));
    }
    let acc = crate::nn::matmul_integer(Inputs::new(&[Some(a), Some(b), Some(az), None]))?;
    let shape = acc.shape().to_vec();
    let n = b.shape()[1];
    epilogue(
        i,
        acc.into_i32().expect("i32 accumulators"),
        &shape,
        n,
        |k| k % n.max(1),
    )
}

/// One quantized operand: integer values with broadcast scale and zero point.
struct QOperand {
    vals: Vec<i64>,
    scale: Vec<f32>,
    zp: Vec<i64>,
    shape: Vec<usize>,
    sshape: Vec<usize>,
    zshape: Vec<usize>,
}

fn qoperand(i: Inputs, slot: usize, what: &'static str) -> EvalResult<QOperand> {
    let x = i.req(slot, what)?;
    qrange(x.dtype())?;
    let s = i.req(slot + 1, "scale")?;
    if s.dtype() != DType::F32 {
        return Err(EvalError::DType {
            slot: slot + 1,
            what: "scale",
            got: s.dtype(),
            expected: "f32",
        });
    }
    let z = i.req(slot + 2, "zero_point")?;
    if z.dtype() != x.dtype() {
        return Err(EvalError::DType {
            slot: slot + 2,
            what: "zero_point",
            got: z.dtype(),
            expected: "the operand's dtype",
        });
    }
    Ok(QOperand {
        vals: x.to_i64_vec(),
        scale: s.to_f32_vec(),
        zp: z.to_i64_vec(),
        shape: x.shape().to_vec(),
        sshape: s.shape().to_vec(),
        zshape: z.shape().to_vec(),
    })
}

impl QOperand {
    /// `f32(x − zp)·scale` at every element of `out` (a broadcast of the operand's shape).
    fn dequant(&self, out: &[usize]) -> EvalResult<Vec<f32>> {
        for s in [&self.sshape, &self.zshape] {
            if broadcast_shapes(s, &self.shape)? != self.shape {
                return Err(invalid!(
                    "parameter of shape {s:?} does not broadcast to {:?}",
                    self.shape
                ));
            }
        }
        let (si, zi) = (
            broadcast_index(&self.sshape, &self.shape),
            broadcast_index(&self.zshape, &self.shape),
        );
        let d: Vec<f32> = (0..self.vals.len())
            .map(|k| (self.vals[k] - self.zp[zi[k]]) as i32 as f32 * self.scale[si[k]])
            .collect();
        let xi = broadcast_index(&self.shape, out);
        Ok(xi.into_iter().map(|k| d[k]).collect())
    }
}

/// Quantizes f32 values `v` (already divided by nothing) with broadcast y scale and zero point.
fn quantize_out(
    v: &[f32],
    shape: &[usize],
    ys: &Tensor,
    yz: &Tensor,
    lo: i32,
    hi: i32,
) -> EvalResult<Tensor> {
    let yd = yz.dtype();
    for s in [ys.shape(), yz.shape()] {
        if broadcast_shapes(s, shape)? != shape {
            return Err(invalid!(
                "output parameter of shape {s:?} does not broadcast to {shape:?}"
            ));
        }
    }
    let (sv, zv) = (ys.to_f32_vec(), yz.to_i64_vec());
    let (si, zi) = (
        broadcast_index(ys.shape(), shape),
        broadcast_index(yz.shape(), shape),
    );
    let out: Vec<i64> = v
        .iter()
        .enumerate()
        .map(|(k, &x)| {
            let r = (x / sv[si[k]]).round_ties_even() + zv[zi[k]] as f32;
            (if r.is_nan() {
                0.0
            } else {
                r.clamp(lo as f32, hi as f32)
            }) as i64
        })
        .collect();
    Ok(Tensor::from_i64(shape, out).expect("size").cast(yd))
}

/// Requantize: bit-exact DequantizeLinear → QuantizeLinear with broadcast parameters.
pub fn requantize_op(i: Inputs) -> EvalResult<Tensor> {
    let x = qoperand(i, 0, "x")?;
    let (ys, yz) = (i.req(3, "y_scale")?, i.req(4, "y_zero_point")?);
    if ys.dtype() != DType::F32 {
        return Err(EvalError::DType {
            slot: 3,
            what: "y_scale",
            got: ys.dtype(),
            expected: "f32",
        });
    }
    let (lo, hi) = qrange(yz.dtype())?;
    let d = x.dequant(&x.shape)?;
    quantize_out(&d, &x.shape, ys, yz, lo, hi)
}

/// QAdd: bit-exact DQ(a) + DQ(b) → QuantizeLinear, then the fused clamp.
pub fn qadd(i: Inputs) -> EvalResult<Tensor> {
    let a = qoperand(i, 0, "a")?;
    let b = qoperand(i, 3, "b")?;
    let (ys, yz) = (i.req(6, "y_scale")?, i.req(7, "y_zero_point")?);
    if ys.dtype() != DType::F32 {
        return Err(EvalError::DType {
            slot: 6,
            what: "y_scale",
            got: ys.dtype(),
            expected: "f32",
        });
    }
    let (dlo, dhi) = qrange(yz.dtype())?;
    let lo = i
        .opt(8)
        .map(|t| scalar_int(t, 8, "lo"))
        .transpose()?
        .unwrap_or(dlo)
        .max(dlo);
    let hi = i
        .opt(9)
        .map(|t| scalar_int(t, 9, "hi"))
        .transpose()?
        .unwrap_or(dhi)
        .min(dhi);
    let shape = broadcast_shapes(&a.shape, &b.shape)?;
    let (da, db) = (a.dequant(&shape)?, b.dequant(&shape)?);
    let sum: Vec<f32> = da.iter().zip(&db).map(|(p, q)| p + q).collect();
    quantize_out(&sum, &shape, ys, yz, lo, hi)
}

/// Lut: `table[x − min(dtype)]` for u8/i8 x and a 256-entry table.
pub fn lut(i: Inputs) -> EvalResult<Tensor> {
    let (x, t) = (i.req(0, "x")?, i.req(1, "table")?);
    if t.len() != 256 {
        return Err(invalid!(
            "lookup table must have 256 entries, got {}",
            t.len()
        ));
    }
    let idx: Vec<usize> = match x.dtype() {
        DType::U8 => x.to_i64_vec().into_iter().map(|v| v as usize).collect(),
        DType::I8 => x
            .to_i64_vec()
            .into_iter()
            .map(|v| (v + 128) as usize)
            .collect(),
        d => {
            return Err(EvalError::DType {
                slot: 0,
                what: "x",
                got: d,
                expected: "u8 or i8",
            })
        }
    };
    let tv = t.to_f64_vec();
    let vals: Vec<f64> = idx.iter().map(|&k| tv[k]).collect();
    let out = Tensor::from_f64(x.shape(), vals).expect("size");
    Ok(match t.dtype() {
        DType::F64 => out,
        d => out.cast(d),
    })
}
