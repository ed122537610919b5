//! The decoder ops of ONNX 23–28: RotaryEmbedding, TensorScatter, LinearAttention and SwiGLU.

use crate::shape_ops::{concat, for_each_index, take};
use crate::util::{ints, norm_axis, want_float};
use crate::{invalid, EvalResult, Inputs};
use lpc_ir::{DType, Tensor};

/// RotaryEmbedding: x `[B, H, S, D]` (or `[B, S, H·D]` with `num_heads`) rotated pairwise by
/// the cos/sin caches, `[B, S, ≥rot/2]`, or `[positions, ≥rot/2]` indexed by position_ids
/// `[B, S]`. Only the first `rot` (default D) elements of each head rotate; `interleaved`
/// pairs (2j, 2j+1), else (j, j + rot/2).
pub fn rotary_embedding(
    interleaved: bool,
    rotary_embedding_dim: usize,
    num_heads: usize,
    i: Inputs,
) -> EvalResult<Tensor> {
    let x = i.req(0, "x")?;
    let cos = i.req(1, "cos_cache")?;
    let sin = i.req(2, "sin_cache")?;
    want_float(x, 0, "x")?;
    want_float(cos, 1, "cos_cache")?;
    want_float(sin, 2, "sin_cache")?;
    let sh = x.shape();
    // (batch, heads, seq, head size) and the element offset of (b, h, s, 0).
    let (b_n, h_n, s_n, d_n, three_d) = match *sh {
        [b, h, s, d] => (b, h, s, d, false),
        [b, s, hidden] if num_heads > 0 => {
            if hidden % num_heads != 0 {
                return Err(invalid!(
                    "hidden size {hidden} is not a multiple of num_heads {num_heads}"
                ));
            }
            (b, num_heads, s, hidden / num_heads, true)
        }
        _ => {
            return Err(invalid!(
                "x must be 4-D, or 3-D with num_heads set; got shape {sh:?}"
            ))
        }
    };
    let base = |b: usize, h: usize, s: usize| {
        if three_d {
            (b * s_n + s) * h_n * d_n + h * d_n
        } else {
            ((b * h_n + h) * s_n + s) * d_n
        }
    };
    let rot = if rotary_embedding_dim == 0 {
        d_n
    } else {
        rotary_embedding_dim
    };
    if rot > d_n || rot % 2 != 0 {
        return Err(invalid!(
            "rotary_embedding_dim {rot} must be even and at most the head size {d_n}"
        ));
    }
    let half = rot / 2;
    if cos.shape() != sin.shape() {
        return Err(invalid!(
            "cos_cache {:?} and sin_cache {:?} differ in shape",
            cos.shape(),
            sin.shape()
        ));
    }
    let last = *cos.shape().last().unwrap_or(&0);
    if last < half {
        return Err(invalid!(
            "the caches' last axis {last} is shorter than rotary_embedding_dim / 2 = {half}"
        ));
    }
    let pos = i.opt(3).map(|p| ints(p, "position_ids")).transpose()?;
    let rows = cos.len() / last.max(1);
    // The cache row of (b, s).
    let row = |b: usize, s: usize| -> EvalResult<usize> {
        let r = match (&pos, cos.rank()) {
            (Some(p), _) => {
                let v = *p
                    .get(b * s_n + s)
                    .ok_or_else(|| invalid!("position_ids has fewer than {} entries", b_n * s_n))?;
                usize::try_from(v).map_err(|_| invalid!("position id {v} is negative"))?
            }
            (None, 3) => b * s_n + s,
            (None, _) => s,
        };
        if r >= rows {
            return Err(invalid!("cache row {r} is out of range for {rows} rows"));
        }
        Ok(r)
    };
    let xv = x.to_f64_vec();
    let (cv, sv) = (cos.to_f64_vec(), sin.to_f64_vec());
    let mut out = xv.clone();
    for b in 0..b_n {
        for s in 0..s_n {
            let r = row(b, s)? * last;
            for h in 0..h_n {
                let o = base(b, h, s);
                for j in 0..half {
                    let (i1, i2) = if interleaved {
                        (o + 2 * j, o + 2 * j + 1)
                    } else {
                        (o + j, o + j + half)
                    };
                    let (c, sn) = (cv[r + j], sv[r + j]);
                    let (x1, x2) = (xv[i1], xv[i2]);
                    out[i1] = c * x1 - sn * x2;
                    out[i2] = sn * x1 + c * x2;
                }
            }
        }
    }
    Ok(Tensor::from_f64(sh, out)
        .map_err(|e| invalid!("{e}"))?
        .into_dtype(x.dtype()))
}

/// TensorScatter: a copy of past_cache with update written along `axis` from each batch's
/// write index (write_indices `[B]`, default 0), wrapping around the axis when `circular`.
pub fn tensor_scatter(axis: i64, circular: bool, i: Inputs) -> EvalResult<Tensor> {
    let past = i.req(0, "past_cache")?;
    let upd = i.req(1, "update")?;
    if past.dtype() != upd.dtype() {
        return Err(invalid!(
            "update is {} but past_cache is {}",
            upd.dtype(),
            past.dtype()
        ));
    }
    let (ps, us) = (past.shape(), upd.shape());
    let a = norm_axis(axis, ps.len())?;
    if a == 0 {
        return Err(invalid!("axis must not be the batch axis 0"));
    }
    if us.len() != ps.len()
        || us
            .iter()
            .zip(ps)
            .enumerate()
            .any(|(k, (u, p))| if k == a { u > p } else { u != p })
    {
        return Err(invalid!(
            "update {us:?} does not fit past_cache {ps:?} along axis {a}"
        ));
    }
    let w = match i.opt(2) {
        Some(t) => ints(t, "write_indices")?,
        None => vec![0; ps[0]],
    };
    if w.len() != ps[0] {
        return Err(invalid!(
            "write_indices has {} entries for batch {}",
            w.len(),
            ps[0]
        ));
    }
    let max = ps[a] as i64;
    let pst = crate::util::strides(ps);
    let mut src: Vec<usize> = (0..past.len()).collect();
    let mut k = past.len();
    let mut bad = None;
    for_each_index(us, |ix| {
        let mut at = w[ix[0]] + ix[a] as i64;
        if circular && max > 0 {
            at = at.rem_euclid(max);
        }
        if !(0..max).contains(&at) {
            bad = Some(at);
        } else {
            let flat: usize = ix
                .iter()
                .enumerate()
                .map(|(d, &v)| if d == a { at as usize } else { v } * pst[d])
                .sum();
            src[flat] = k;
        }
        k += 1;
    });
    if let Some(at) = bad {
        return Err(invalid!(
            "write position {at} is out of range for axis size {max}"
        ));
    }
    let pf = past
        .clone()
        .reshape(&[past.len()])
        .map_err(|e| invalid!("{e}"))?;
    let uf = upd
        .clone()
        .reshape(&[upd.len()])
        .map_err(|e| invalid!("{e}"))?;
    let both = concat(0, Inputs::new(&[Some(&pf), Some(&uf)]))?;
    take(&both, &src, ps, None)
}

/// The attributes of LinearAttention (see `Op::LinearAttention`).
#[derive(Clone, Copy, Debug)]
pub struct LinearAttention {
    /// Query heads.
    pub q_num_heads: usize,
    /// Key/value heads.
    pub kv_num_heads: usize,
    /// Output scale (0: `1/sqrt(d_k)`).
    pub scale: f32,
    /// Decay the state by `exp(decay)`.
    pub gated: bool,
    /// The delta rule with rate beta.
    pub delta: bool,
}

/// A rank-3 `[batch, seq, last]` input's last axis, checked against batch and seq.
fn packed(t: &Tensor, what: &str, b: usize, s: usize) -> EvalResult<usize> {
    match *t.shape() {
        [tb, ts, last] if tb == b && ts == s => Ok(last),
        _ => Err(invalid!(
            "{what} {:?} must be [{b}, {s}, _] like query",
            t.shape()
        )),
    }
}

/// LinearAttention: runs the recurrence token by token in f64 and returns (output,
/// present_state), the first `n_outputs` of them. Query head `h` reads the state of key/value
/// head `h / (q_num_heads / kv_num_heads)`.
pub fn linear_attention(
    a: LinearAttention,
    i: Inputs,
    n_outputs: usize,
) -> EvalResult<Vec<Tensor>> {
    let (qh, kvh) = (a.q_num_heads, a.kv_num_heads);
    if qh == 0 || kvh == 0 || qh % kvh != 0 {
        return Err(invalid!(
            "q_num_heads {qh} must be a positive multiple of kv_num_heads {kvh}"
        ));
    }
    let q = i.req(0, "query")?;
    let k = i.req(1, "key")?;
    let v = i.req(2, "value")?;
    want_float(q, 0, "query")?;
    want_float(k, 1, "key")?;
    want_float(v, 2, "value")?;
    let [b, t, q_hidden] = *q.shape() else {
        return Err(invalid!("query must be 3-D, got {:?}", q.shape()));
    };
    let k_hidden = packed(k, "key", b, t)?;
    let v_hidden = packed(v, "value", b, t)?;
    if q_hidden % qh != 0 || v_hidden % kvh != 0 {
        return Err(invalid!(
            "query's {q_hidden} or value's {v_hidden} features do not split into heads"
        ));
    }
    let (dk, dv) = (q_hidden / qh, v_hidden / kvh);
    if k_hidden != kvh * dk {
        return Err(invalid!(
            "key has {k_hidden} features, expected kv_num_heads·d_k = {}",
            kvh * dk
        ));
    }
    // decay (gated rules) and beta (delta rules): their values and last axis.
    let gate = |slot, what: &'static str, want| -> EvalResult<Option<(Vec<f64>, usize)>> {
        match (i.opt(slot), want) {
            (None, false) => Ok(None),
            (None, true) => Err(invalid!("the update rule needs {what}")),
            (Some(_), false) => Err(invalid!(
                "{what} is given but the update rule has no use for it"
            )),
            (Some(x), true) => {
                want_float(x, slot, what)?;
                Ok(Some((x.to_f64_vec(), packed(x, what, b, t)?)))
            }
        }
    };
    let decay = gate(4, "decay", a.gated)?;
    let beta = gate(5, "beta", a.delta)?;
    if let Some((_, n)) = &decay {
        if *n != kvh && *n != kvh * dk {
            return Err(invalid!(
                "decay's last axis {n} is neither kv_num_heads nor kv_num_heads·d_k"
            ));
        }
    }
    if let Some((_, n)) = &beta {
        if *n != kvh && *n != 1 {
            return Err(invalid!(
                "beta's last axis {n} is neither kv_num_heads nor 1"
            ));
        }
    }
    let state_shape = [b, kvh, dk, dv];
    let mut state = match i.opt(3) {
        Some(p) => {
            want_float(p, 3, "past_state")?;
            if p.shape() != state_shape {
                return Err(invalid!(
                    "past_state {:?} must be {state_shape:?}",
                    p.shape()
                ));
            }
            p.to_f64_vec()
        }
        None => vec![0.0; crate::shape_ops::check_count(&[b, kvh, dk, dv])?],
    };
    let scale = if a.scale == 0.0 {
        1.0 / (dk as f64).sqrt()
    } else {
        a.scale as f64
    };
    let (qv, kv, vv) = (q.to_f64_vec(), k.to_f64_vec(), v.to_f64_vec());
    let group = qh / kvh;
    let mut out = vec![0.0; crate::shape_ops::check_count(&[b, t, qh, dv])?];
    let mut upd = vec![0.0; dv];
    for bb in 0..b {
        for tt in 0..t {
            let row = bb * t + tt;
            for h in 0..kvh {
                let s = &mut state[(bb * kvh + h) * dk * dv..][..dk * dv];
                let kt = &kv[row * k_hidden + h * dk..][..dk];
                upd.copy_from_slice(&vv[row * v_hidden + h * dv..][..dv]);
                if let Some((g, n)) = &decay {
                    for d in 0..dk {
                        let e = g[row * n + if *n == kvh { h } else { h * dk + d }].exp();
                        s[d * dv..][..dv].iter_mut().for_each(|x| *x *= e);
                    }
                }
                if let Some((bt, n)) = &beta {
                    let r = bt[row * n + if *n == 1 { 0 } else { h }];
                    for (m, u) in upd.iter_mut().enumerate() {
                        let got: f64 = (0..dk).map(|d| s[d * dv + m] * kt[d]).sum();
                        *u = r * (*u - got);
                    }
                }
                for d in 0..dk {
                    for m in 0..dv {
                        s[d * dv + m] += kt[d] * upd[m];
                    }
                }
                for qi in h * group..(h + 1) * group {
                    let qt = &qv[row * q_hidden + qi * dk..][..dk];
                    let o = &mut out[(row * qh + qi) * dv..][..dv];
                    for (m, x) in o.iter_mut().enumerate() {
                        *x = scale * (0..dk).map(|d| qt[d] * s[d * dv + m]).sum::<f64>();
                    }
                }
            }
        }
    }
    let state_dtype = i.opt(3).map_or(q.dtype(), Tensor::dtype);
    let f = |shape: &[usize], data: Vec<f64>, d: DType| {
        Tensor::from_f64(shape, data)
            .map(|x| x.into_dtype(d))
            .map_err(|e| invalid!("{e}"))
    };
    let mut outs = vec![f(&[b, t, qh * dv], out, q.dtype())?];
    if n_outputs > 1 {
        outs.push(f(&state_shape, state, state_dtype)?);
    }
    Ok(outs)
}

/// `x` rounded to `d`'s precision.
fn round_as(d: DType, x: f64) -> f64 {
    match d {
        DType::F16 => half::f16::from_f64(x).to_f64(),
        DType::F32 => x as f32 as f64,
        _ => x,
    }
}

/// SwiGLU: `a · sigmoid(alpha·a) · b` for a and b of one shape and dtype, rounding after
/// the sigmoid and each product as ONNX's reference does.
pub fn swiglu(alpha: f32, i: Inputs) -> EvalResult<Tensor> {
    let a = i.req(0, "a")?;
    let b = i.req(1, "b")?;
    want_float(a, 0, "a")?;
    if a.dtype() != b.dtype() || a.shape() != b.shape() {
        return Err(invalid!(
            "a ({} {:?}) and b ({} {:?}) must have one dtype and shape",
            a.dtype(),
            a.shape(),
            b.dtype(),
            b.shape()
        ));
    }
    let d = a.dtype();
    let alpha = alpha as f64;
    let y = a
        .to_f64_vec()
        .into_iter()
        .zip(b.to_f64_vec())
        .map(|(x, y)| {
            let sig = round_as(d, 1.0 / (1.0 + (-alpha * x).exp()));
            round_as(d, round_as(d, x * sig) * y)
        })
        .collect();
    Ok(Tensor::from_f64(a.shape(), y)
        .map_err(|e| invalid!("{e}"))?
        .into_dtype(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotary_halves_interleaved_and_positions() {
        // One head of size 4, one position: cos 0, sin 1 rotates by 90 degrees.
        let x = Tensor::from_f32(&[1, 1, 1, 4], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let c = Tensor::from_f32(&[1, 1, 2], vec![0.0, 0.0]).unwrap();
        let s = Tensor::from_f32(&[1, 1, 2], vec![1.0, 1.0]).unwrap();
        let y = rotary_embedding(false, 0, 0, Inputs::new(&[Some(&x), Some(&c), Some(&s)]));
        assert_eq!(y.unwrap().to_f32_vec(), vec![-3.0, -4.0, 1.0, 2.0]);
        let y = rotary_embedding(true, 0, 0, Inputs::new(&[Some(&x), Some(&c), Some(&s)]));
        assert_eq!(y.unwrap().to_f32_vec(), vec![-2.0, 1.0, -4.0, 3.0]);
        // position_ids pick row 1 of a [2, 1] cache; rotary dim 2 leaves the rest.
        let c = Tensor::from_f32(&[2, 1], vec![1.0, 0.0]).unwrap();
        let s = Tensor::from_f32(&[2, 1], vec![0.0, 1.0]).unwrap();
        let p = Tensor::from_i64(&[1, 1], vec![1]).unwrap();
        let x3 = x.clone().reshape(&[1, 1, 4]).unwrap();
        let y = rotary_embedding(
            false,
            2,
            1,
            Inputs::new(&[Some(&x3), Some(&c), Some(&s), Some(&p)]),
        );
        assert_eq!(y.unwrap().to_f32_vec(), vec![-2.0, 1.0, 3.0, 4.0]);
    }

    #[test]
    fn tensor_scatter_linear_and_circular() {
        let past = Tensor::from_f32(&[2, 3], vec![0.0; 6]).unwrap();
        let upd = Tensor::from_f32(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let w = Tensor::from_i64(&[2], vec![0, 2]).unwrap();
        let i = [Some(&past), Some(&upd), Some(&w)];
        let y = tensor_scatter(-1, true, Inputs::new(&i)).unwrap();
        assert_eq!(y.to_f32_vec(), vec![1.0, 2.0, 0.0, 4.0, 0.0, 3.0]);
        assert!(tensor_scatter(-1, false, Inputs::new(&i)).is_err());
        assert!(tensor_scatter(0, false, Inputs::new(&i)).is_err());
    }

    #[test]
    fn linear_attention_rules_and_gqa() {
        // One head with d_k = d_v = 1, two tokens: q = [1, 2], k = [1, 1], v = [3, 4].
        let t = |v: &[f32]| Tensor::from_f32(&[1, v.len(), 1], v.to_vec()).unwrap();
        let (q, k, v) = (t(&[1.0, 2.0]), t(&[1.0, 1.0]), t(&[3.0, 4.0]));
        let decay = t(&[0.5f32.ln(), 0.5f32.ln()]);
        let beta = t(&[0.5, 0.5]);
        let att = |gated, delta| LinearAttention {
            q_num_heads: 1,
            kv_num_heads: 1,
            scale: 1.0,
            gated,
            delta,
        };
        let run = |a, ins: &[Option<&Tensor>]| {
            linear_attention(a, Inputs::new(ins), 2)
                .map(|o| o.iter().map(|x| x.to_f32_vec()).collect::<Vec<_>>())
        };
        let close = |got: Vec<Vec<f32>>, want: &[&[f32]]| {
            for (g, w) in got.iter().zip(want) {
                assert!(
                    g.iter().zip(*w).all(|(a, b)| (a - b).abs() < 1e-5),
                    "{g:?} {w:?}"
                );
            }
        };
        // linear: S = 3, 7; o = 1·3, 2·7.
        let lin = run(att(false, false), &[Some(&q), Some(&k), Some(&v)]).unwrap();
        close(lin, &[&[3.0, 14.0], &[7.0]]);
        // gated (decay ½): S = 3, 3·½ + 4 = 5.5.
        let ins = [Some(&q), Some(&k), Some(&v), None, Some(&decay)];
        close(
            run(att(true, false), &ins).unwrap(),
            &[&[3.0, 11.0], &[5.5]],
        );
        // delta (β ½): S = ½·3 = 1.5, then 1.5 + ½·(4 - 1.5) = 2.75.
        let ins = [Some(&q), Some(&k), Some(&v), None, None, Some(&beta)];
        close(
            run(att(false, true), &ins).unwrap(),
            &[&[1.5, 5.5], &[2.75]],
        );
        // Two query heads share one kv head; a past state of 1 adds to it.
        let q2 = Tensor::from_f32(&[1, 1, 2], vec![1.0, 2.0]).unwrap();
        let past = Tensor::from_f32(&[1, 1, 1, 1], vec![1.0]).unwrap();
        let gqa = LinearAttention {
            q_num_heads: 2,
            ..att(false, false)
        };
        let ins = [Some(&q2), Some(&t(&[1.0])), Some(&t(&[3.0])), Some(&past)];
        close(run(gqa, &ins).unwrap(), &[&[4.0, 8.0], &[4.0]]);
        // decay without a gated rule, a delta rule without beta: errors.
        let ins = [Some(&q), Some(&k), Some(&v), None, Some(&decay)];
        assert!(run(att(false, false), &ins).is_err());
        assert!(run(att(false, true), &[Some(&q), Some(&k), Some(&v)]).is_err());
    }

    #[test]
    fn swiglu_values_and_shape_check() {
        let a = Tensor::from_f32(&[2], vec![0.0, 1.0]).unwrap();
        let b = Tensor::from_f32(&[2], vec![2.0, 3.0]).unwrap();
        let y = swiglu(1.0, Inputs::new(&[Some(&a), Some(&b)])).unwrap();
        let want = [0.0, 3.0 / (1.0 + (-1.0f32).exp())];
        assert!(y
            .to_f32_vec()
            .iter()
            .zip(want)
            .all(|(g, w)| (g - w).abs() < 1e-6));
        let c = Tensor::from_f32(&[1], vec![1.0]).unwrap();
        assert!(swiglu(1.0, Inputs::new(&[Some(&a), Some(&c)])).is_err());
    }
}
