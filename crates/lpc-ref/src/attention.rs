//! ONNX Attention (opsets 23–25): scaled dot-product attention with grouped-query heads, a
//! boolean or additive mask, causal and sliding-window masking, a soft cap, an in-op KV cache
//! (past → present) and the optional `qk_matmul_output`.
//!
//! Arithmetic is f64 rounded to the inputs' dtype where the ONNX reference holds a tensor of
//! that dtype (Q and K scaled by `sqrt(scale)`, the scores, each soft-cap step, the biased
//! scores, the probabilities and Y; the softmax steps in `softmax_precision`), so f16 models
//! match the reference's f16 results; f32 rounding at those points is harmless.

use crate::{invalid, EvalError, EvalResult, Inputs};
use lpc_ir::{AttentionAttrs, DType, QkOutput, Tensor};

/// Rounds an f64 to the nearest value of a float dtype.
fn rounder(d: DType) -> fn(f64) -> f64 {
    match d {
        DType::F16 => |x| half::f16::from_f64(x).to_f64(),
        DType::F32 => |x| x as f32 as f64,
        _ => |x| x,
    }
}

/// Q, K or V as `[batch, heads, seq, size]` values, row-major.
struct Heads {
    batch: usize,
    heads: usize,
    seq: usize,
    size: usize,
    data: Vec<f64>,
}

impl Heads {
    /// Reads a 4-D tensor as it is, or a 3-D `[batch, seq, heads·size]` one with `heads`.
    fn read(t: &Tensor, what: &str, heads: usize) -> EvalResult<Heads> {
        let s = t.shape();
        let v = t.to_f64_vec();
        match *s {
            [batch, h, seq, size] => {
                if heads != 0 && heads != h {
                    return Err(invalid!(
                        "{what} has {h} heads but the head attribute says {heads}"
                    ));
                }
                Ok(Heads {
                    batch,
                    heads: h,
                    seq,
                    size,
                    data: v,
                })
            }
            [batch, seq, hidden] => {
                if heads == 0 || hidden % heads != 0 {
                    return Err(invalid!(
                        "3-D {what} of hidden size {hidden} needs a head count dividing it (got {heads})"
                    ));
                }
                let size = hidden / heads;
                let mut data = vec![0.0; v.len()];
                for b in 0..batch {
                    for t in 0..seq {
                        for h in 0..heads {
                            let src = ((b * seq + t) * heads + h) * size;
                            let dst = ((b * heads + h) * seq + t) * size;
                            data[dst..dst + size].copy_from_slice(&v[src..src + size]);
                        }
                    }
                }
                Ok(Heads {
                    batch,
                    heads,
                    seq,
                    size,
                    data,
                })
            }
            _ => Err(invalid!("{what} must be 3-D or 4-D, got {s:?}")),
        }
    }

    /// The row of one head and position.
    fn row(&self, b: usize, h: usize, t: usize) -> &[f64] {
        let at = ((b * self.heads + h) * self.seq + t) * self.size;
        &self.data[at..at + self.size]
    }

    /// `past` followed by `self` along the sequence axis (the present cache).
    fn after(self, past: &Tensor, what: &str) -> EvalResult<Heads> {
        let p = Heads::read(past, what, 0)?;
        if p.batch != self.batch || p.heads != self.heads || p.size != self.size {
            return Err(invalid!(
                "{what} of shape {:?} does not match [{}, {}, _, {}]",
                past.shape(),
                self.batch,
                self.heads,
                self.size
            ));
        }
        let seq = p.seq + self.seq;
        let mut data = Vec::with_capacity(self.batch * self.heads * seq * self.size);
        for b in 0..self.batch {
            for h in 0..self.heads {
                for t in 0..p.seq {
                    data.extend_from_slice(p.row(b, h, t));
                }
                for t in 0..self.seq {
                    data.extend_from_slice(self.row(b, h, t));
                }
            }
        }
        Ok(Heads { seq, data, ..self })
    }

    fn shape(&self) -> [usize; 4] {
        [self.batch, self.heads, self.seq, self.size]
    }
}

/// The attention mask, right-aligned against `[batch, q_heads, q_seq, total]`, as an
/// additive bias (bool: 0 where true, −inf where false); positions past its last axis are
/// masked.
struct Mask {
    values: Vec<f64>,
    /// Element stride per axis of `[batch, q_heads, q_seq, last]`, 0 where broadcast.
    strides: [usize; 4],
    last: usize,
}

impl Mask {
    fn new(t: &Tensor, want: [usize; 4], round: fn(f64) -> f64) -> EvalResult<Mask> {
        let s = t.shape();
        if s.is_empty() || s.len() > 4 {
            return Err(invalid!("attn_mask must have rank 1 to 4, got {s:?}"));
        }
        let last = s[s.len() - 1];
        if last > want[3] {
            return Err(invalid!(
                "attn_mask's last axis ({last}) is longer than the total sequence ({})",
                want[3]
            ));
        }
        let mut full = [1usize; 4];
        full[4 - s.len()..].copy_from_slice(s);
        let mut strides = [0usize; 4];
        let mut step = 1;
        for ax in (0..4).rev() {
            let target = if ax == 3 { last } else { want[ax] };
            if full[ax] != 1 && full[ax] != target {
                return Err(invalid!(
                    "attn_mask of shape {s:?} does not broadcast to {want:?}"
                ));
            }
            strides[ax] = if full[ax] == 1 { 0 } else { step };
            step *= full[ax];
        }
        let values = match t.dtype() {
            DType::Bool => t
                .as_bool()
                .expect("bool")
                .iter()
                .map(|&keep| if keep { 0.0 } else { f64::NEG_INFINITY })
                .collect(),
            d if d.is_float() => t.to_f64_vec().into_iter().map(round).collect(),
            got => {
                return Err(EvalError::DType {
                    slot: 3,
                    what: "attn_mask",
                    got,
                    expected: "bool or a float type",
                })
            }
        };
        Ok(Mask {
            values,
            strides,
            last,
        })
    }

    fn at(&self, b: usize, h: usize, i: usize, j: usize) -> f64 {
        if j >= self.last {
            return f64::NEG_INFINITY;
        }
        let s = &self.strides;
        self.values[b * s[0] + h * s[1] + i * s[2] + j * s[3]]
    }
}

/// numpy's `max`: NaN when any element is NaN, −inf for an empty row.
fn max_nan(xs: &[f64]) -> f64 {
    xs.iter().fold(f64::NEG_INFINITY, |m, &x| {
        if x.is_nan() || m.is_nan() {
            f64::NAN
        } else {
            m.max(x)
        }
    })
}

/// Attention: (q, k, v, attn_mask?, past_key?, past_value?, nonpad_kv_seqlen?) →
/// (y, present_key, present_value, qk_matmul_output), the first `n_outputs` of them.
pub fn attention(a: &AttentionAttrs, i: Inputs, n_outputs: usize) -> EvalResult<Vec<Tensor>> {
    let qt = i.req(0, "q")?;
    let dtype = qt.dtype();
    if !dtype.is_float() {
        return Err(EvalError::DType {
            slot: 0,
            what: "q",
            got: dtype,
            expected: "a float type",
        });
    }
    for (slot, what) in [(1, "k"), (2, "v"), (4, "past_key"), (5, "past_value")] {
        if let Some(t) = i.opt(slot) {
            if t.dtype() != dtype {
                return Err(EvalError::DType {
                    slot,
                    what,
                    got: t.dtype(),
                    expected: "q's dtype",
                });
            }
        }
    }
    let (kt, vt) = (i.req(1, "k")?, i.req(2, "v")?);
    if kt.rank() != qt.rank() || vt.rank() != qt.rank() {
        return Err(invalid!(
            "q, k and v must have one rank, got {:?}, {:?} and {:?}",
            qt.shape(),
            kt.shape(),
            vt.shape()
        ));
    }
    let three_d = qt.rank() == 3;
    let q = Heads::read(qt, "q", a.q_num_heads)?;
    let mut k = Heads::read(kt, "k", a.kv_num_heads)?;
    let mut v = Heads::read(vt, "v", a.kv_num_heads)?;
    if k.batch != q.batch || v.batch != q.batch {
        return Err(invalid!("q, k and v batch sizes differ"));
    }
    if k.heads != v.heads || k.seq != v.seq {
        return Err(invalid!(
            "k and v disagree on heads or sequence length ({:?} and {:?})",
            k.shape(),
            v.shape()
        ));
    }
    if k.size != q.size {
        return Err(invalid!(
            "q and k head sizes differ ({} and {})",
            q.size,
            k.size
        ));
    }
    if k.heads == 0 || q.heads % k.heads != 0 {
        return Err(invalid!(
            "{} query heads are not a multiple of {} key/value heads",
            q.heads,
            k.heads
        ));
    }
    let past = match (i.opt(4), i.opt(5)) {
        (Some(pk), Some(pv)) => {
            k = k.after(pk, "past_key")?;
            v = v.after(pv, "past_value")?;
            Some(pk.shape()[2])
        }
        (None, None) => None,
        _ => return Err(invalid!("past_key and past_value must be given together")),
    };
    let nonpad = match i.opt(6) {
        Some(_) if past.is_some() => {
            return Err(invalid!(
                "nonpad_kv_seqlen cannot be combined with past_key/past_value"
            ))
        }
        Some(t) if t.dtype() != DType::I64 => {
            return Err(EvalError::DType {
                slot: 6,
                what: "nonpad_kv_seqlen",
                got: t.dtype(),
                expected: "i64",
            })
        }
        Some(t) if t.len() != q.batch => {
            return Err(invalid!(
                "nonpad_kv_seqlen has {} values for a batch of {}",
                t.len(),
                q.batch
            ))
        }
        Some(t) => Some(t.to_i64_vec()),
        None => None,
    };
    let r = rounder(dtype);
    let rp = rounder(a.softmax_precision.unwrap_or(dtype));
    let (batch, qh, sq, total, dv) = (q.batch, q.heads, q.seq, k.seq, v.size);
    let mask = match i.opt(3) {
        Some(m) => Some(Mask::new(m, [batch, qh, sq, total], r)?),
        None => None,
    };
    let scale = a.scale.map_or(1.0 / (q.size as f64).sqrt(), f64::from);
    let s = r(scale.sqrt());
    let qs: Vec<f64> = q.data.iter().map(|&x| r(x * s)).collect();
    let ks: Vec<f64> = k.data.iter().map(|&x| r(x * s)).collect();
    let group = qh / k.heads;
    let cap = f64::from(a.softcap);
    // The first valid key of the query block minus the query index: past length, the
    // per-batch cached length before the block, or 0.
    let offset = |b: usize| -> i64 {
        match (past, &nonpad) {
            (Some(p), _) => p as i64,
            (None, Some(n)) => n[b] - sq as i64,
            (None, None) => 0,
        }
    };
    let mut y = vec![0.0; batch * qh * sq * dv];
    let mut qk_out = vec![0.0; batch * qh * sq * total];
    let (mut bias, mut raw, mut capped, mut biased, mut p) = (
        vec![0.0; total],
        vec![0.0; total],
        vec![0.0; total],
        vec![0.0; total],
        vec![0.0; total],
    );
    for b in 0..batch {
        let off = offset(b);
        for h in 0..qh {
            let kh = h / group;
            for t in 0..sq {
                let qrow = &qs[((b * qh + h) * sq + t) * q.size..][..q.size];
                for j in 0..total {
                    let mut bj = mask.as_ref().map_or(0.0, |m| m.at(b, h, t, j));
                    let diff = t as i64 + off - j as i64;
                    let hidden = (a.is_causal && diff < 0)
                        || (a.left_window >= 0 && diff > a.left_window)
                        || (a.right_window >= 0 && -diff > a.right_window)
                        || nonpad.as_ref().is_some_and(|n| j as i64 >= n[b]);
                    if hidden {
                        bj += f64::NEG_INFINITY;
                    }
                    bias[j] = bj;
                    let krow = &ks[((b * k.heads + kh) * total + j) * k.size..][..k.size];
                    raw[j] = r(qrow.iter().zip(krow).map(|(x, y)| x * y).sum());
                    capped[j] = if cap > 0.0 {
                        r(r(r(raw[j] / cap).tanh()) * cap)
                    } else {
                        raw[j]
                    };
                    biased[j] = r(capped[j] + bj);
                }
                // Softmax in the softmax precision; a row of −inf gives 0, not NaN.
                for (d, &x) in p.iter_mut().zip(&biased) {
                    *d = rp(x);
                }
                let m = max_nan(&p);
                let m = if m == f64::NEG_INFINITY { 0.0 } else { m };
                for e in p.iter_mut() {
                    *e = rp(rp(*e - m).exp());
                }
                let sum = rp(p.iter().sum());
                let sum = if sum == 0.0 { 1.0 } else { sum };
                // A row every key of which is masked (decided on the bias) attends nothing.
                let empty = max_nan(&bias) == f64::NEG_INFINITY;
                for e in p.iter_mut() {
                    *e = if empty { 0.0 } else { r(rp(*e / sum)) };
                }
                let row = ((b * qh + h) * sq + t) * total;
                let shown = match a.qk_output {
                    QkOutput::Raw => &raw,
                    QkOutput::Softcapped => &capped,
                    QkOutput::Biased => &biased,
                    QkOutput::Softmax => &p,
                };
                qk_out[row..row + total].copy_from_slice(shown);
                let yrow = &mut y[((b * qh + h) * sq + t) * dv..][..dv];
                for (d, out) in yrow.iter_mut().enumerate() {
                    let acc: f64 = (0..total)
                        .map(|j| p[j] * v.data[((b * v.heads + kh) * total + j) * dv + d])
                        .sum();
                    *out = r(acc);
                }
            }
        }
    }
    let y = if three_d {
        let mut out = vec![0.0; y.len()];
        for b in 0..batch {
            for h in 0..qh {
                for t in 0..sq {
                    let src = ((b * qh + h) * sq + t) * dv;
                    let dst = ((b * sq + t) * qh + h) * dv;
                    out[dst..dst + dv].copy_from_slice(&y[src..src + dv]);
                }
            }
        }
        tensor(&[batch, sq, qh * dv], out, dtype)
    } else {
        tensor(&[batch, qh, sq, dv], y, dtype)
    };
    let mut outs = vec![y];
    if n_outputs > 1 {
        let ks = k.shape();
        outs.push(tensor(&ks, k.data, dtype));
    }
    if n_outputs > 2 {
        let vs = v.shape();
        outs.push(tensor(&vs, v.data, dtype));
    }
    if n_outputs > 3 {
        outs.push(tensor(&[batch, qh, sq, total], qk_out, dtype));
    }
    Ok(outs)
}

/// An f64 buffer (already rounded to `dtype`'s values) as a tensor of `dtype`.
fn tensor(shape: &[usize], data: Vec<f64>, dtype: DType) -> Tensor {
    Tensor::from_f64(shape, data).expect("size").cast(dtype)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs() -> AttentionAttrs {
        match lpc_ir::OpKind::Attention.template() {
            lpc_ir::Op::Attention(a) => a,
            _ => unreachable!(),
        }
    }

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape, v.to_vec()).unwrap()
    }

    fn run(a: &AttentionAttrs, ins: &[Option<&Tensor>], n: usize) -> Vec<Vec<f32>> {
        attention(a, Inputs::new(ins), n)
            .unwrap()
            .iter()
            .map(Tensor::to_f32_vec)
            .collect()
    }

    fn close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }

    /// One head, head size 1, scale 1: scores are q·k; two keys with values 10 and 20.
    #[test]
    fn causal_mask_hides_later_keys() {
        let mut a = attrs();
        a.scale = Some(1.0);
        let q = t(&[1, 1, 2, 1], &[1.0, 1.0]);
        let k = t(&[1, 1, 2, 1], &[0.0, 2f32.ln()]);
        let v = t(&[1, 1, 2, 1], &[10.0, 20.0]);
        // Unmasked: weights 1/3, 2/3 (scores 0 and ln 2) → 50/3 for both queries.
        let out = run(&a, &[Some(&q), Some(&k), Some(&v)], 1);
        close(&out[0], &[50.0 / 3.0, 50.0 / 3.0]);
        a.is_causal = true;
        let out = run(&a, &[Some(&q), Some(&k), Some(&v)], 1);
        close(&out[0], &[10.0, 50.0 / 3.0]);
    }

    /// Four query heads share two kv heads: heads 0, 1 read kv head 0; heads 2, 3 kv head 1.
    #[test]
    fn grouped_query_heads_share_kv_heads() {
        let a = attrs();
        let q = t(&[1, 4, 1, 1], &[1.0; 4]);
        let k = t(&[1, 2, 1, 1], &[1.0, 1.0]);
        let v = t(&[1, 2, 1, 1], &[3.0, 7.0]);
        let out = run(&a, &[Some(&q), Some(&k), Some(&v)], 1);
        close(&out[0], &[3.0, 3.0, 7.0, 7.0]);
    }

    /// 3-D inputs with two heads of size 1: the hidden axis splits into heads.
    #[test]
    fn three_d_inputs_split_heads() {
        let mut a = attrs();
        a.q_num_heads = 2;
        a.kv_num_heads = 2;
        let q = t(&[1, 1, 2], &[1.0, 1.0]);
        let k = t(&[1, 1, 2], &[1.0, 1.0]);
        let v = t(&[1, 1, 2], &[3.0, 7.0]);
        let out = run(&a, &[Some(&q), Some(&k), Some(&v)], 1);
        close(&out[0], &[3.0, 7.0]);
    }

    /// The soft cap bounds the score: softcap·tanh(s/softcap), before the mask is added.
    #[test]
    fn softcap_then_mask() {
        let mut a = attrs();
        a.scale = Some(1.0);
        a.softcap = 1.0;
        a.qk_output = QkOutput::Biased;
        let q = t(&[1, 1, 1, 1], &[2.0]);
        let k = t(&[1, 1, 2, 1], &[1.0, 0.0]);
        let v = t(&[1, 1, 2, 1], &[1.0, 0.0]);
        let m = t(&[1, 2], &[0.0, 0.5]);
        let out = run(&a, &[Some(&q), Some(&k), Some(&v), Some(&m)], 4);
        let s0 = 2f32.tanh();
        close(&out[3], &[s0, 0.5]);
        let w0 = s0.exp() / (s0.exp() + 0.5f32.exp());
        close(&out[0], &[w0]);
        a.qk_output = QkOutput::Softcapped;
        let out = run(&a, &[Some(&q), Some(&k), Some(&v), Some(&m)], 4);
        close(&out[3], &[s0, 0.0]);
    }

    /// A row whose every key is masked gives zero probabilities and a zero output, not NaN;
    /// the other row is unaffected.
    #[test]
    fn fully_masked_row_is_zero() {
        let mut a = attrs();
        a.qk_output = QkOutput::Softmax;
        let q = t(&[1, 1, 2, 1], &[1.0, 1.0]);
        let k = t(&[1, 1, 2, 1], &[1.0, 1.0]);
        let v = t(&[1, 1, 2, 1], &[4.0, 8.0]);
        let m = Tensor::from_bool(&[2, 2], vec![false, false, true, true]).unwrap();
        let out = run(&a, &[Some(&q), Some(&k), Some(&v), Some(&m)], 4);
        close(&out[0], &[0.0, 6.0]);
        close(&out[3], &[0.0, 0.0, 0.5, 0.5]);
    }

    /// The past cache comes first in the present outputs, and with it the causal frontier
    /// moves right by the past length; a mask shorter than the total is padded with "masked".
    #[test]
    fn past_cache_concatenates_and_offsets_causal() {
        let mut a = attrs();
        a.is_causal = true;
        let q = t(&[1, 1, 1, 1], &[0.0]);
        let k = t(&[1, 1, 1, 1], &[0.0]);
        let v = t(&[1, 1, 1, 1], &[9.0]);
        let pk = t(&[1, 1, 1, 1], &[0.0]);
        let pv = t(&[1, 1, 1, 1], &[1.0]);
        let ins = [Some(&q), Some(&k), Some(&v), None, Some(&pk), Some(&pv)];
        let out = run(&a, &ins, 3);
        close(&out[0], &[5.0]);
        close(&out[1], &[0.0, 0.0]);
        close(&out[2], &[1.0, 9.0]);
        let m = t(&[1], &[0.0]);
        let ins = [Some(&q), Some(&k), Some(&v), Some(&m), Some(&pk), Some(&pv)];
        close(&run(&a, &ins, 1)[0], &[1.0]);
    }

    #[test]
    fn bad_heads_are_errors() {
        let a = attrs();
        let q = t(&[1, 3, 1, 1], &[1.0; 3]);
        let k = t(&[1, 2, 1, 1], &[1.0; 2]);
        let err = attention(&a, Inputs::new(&[Some(&q), Some(&k), Some(&k)]), 1).unwrap_err();
        assert!(err.to_string().contains("not a multiple"), "{err}");
        let q3 = t(&[1, 1, 3], &[1.0; 3]);
        let err = attention(&a, Inputs::new(&[Some(&q3), Some(&q3), Some(&q3)]), 1).unwrap_err();
        assert!(err.to_string().contains("head count"), "{err}");
    }
}
