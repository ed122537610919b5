//! BatchNormalization, LayerNormalization, InstanceNormalization, GroupNormalization, LRN,
//! MeanVarianceNormalization, Softmax, LogSoftmax, Hardmax and LpNormalization.

use crate::util::{float_in as floats, norm_axis};
use crate::{invalid, EvalResult, Inputs};
use lpc_ir::Tensor;

/// BatchNormalization over axis 1; training mode uses batch statistics and also returns the
/// updated running mean and variance.
pub fn batch_norm(
    eps: f32,
    training: bool,
    momentum: f32,
    i: Inputs,
    n_outputs: usize,
) -> EvalResult<Vec<Tensor>> {
    let x = i.req(0, "x")?;
    if x.rank() < 2 {
        return Err(invalid!(
            "batch norm input must have rank >= 2, got {:?}",
            x.shape()
        ));
    }
    let c = x.shape()[1];
    let n = x.shape()[0];
    let sp: usize = x.shape()[2..].iter().product();
    let names = ["scale", "bias", "mean", "var"];
    let mut p = vec![];
    for (k, what) in names.iter().enumerate() {
        let t = i.req(k + 1, what)?;
        if t.len() != c {
            return Err(invalid!(
                "{what} has {} values, input has {c} channels",
                t.len()
            ));
        }
        p.push(floats(t, k + 1, what)?.into_owned());
    }
    let xv = floats(x, 0, "x")?;
    let (scale, bias, mut mean, mut var) = (p[0].clone(), p[1].clone(), p[2].clone(), p[3].clone());
    let (run_mean, run_var) = (mean.clone(), var.clone());
    if training {
        let cnt = (n * sp) as f64;
        for ch in 0..c {
            let mut s = 0.0f64;
            for b in 0..n {
                s += xv[(b * c + ch) * sp..(b * c + ch + 1) * sp]
                    .iter()
                    .map(|&e| e as f64)
                    .sum::<f64>();
            }
            let m = s / cnt;
            let mut q = 0.0f64;
            for b in 0..n {
                q += xv[(b * c + ch) * sp..(b * c + ch + 1) * sp]
                    .iter()
                    .map(|&e| (e as f64 - m).powi(2))
                    .sum::<f64>();
            }
            mean[ch] = m as f32;
            var[ch] = (q / cnt) as f32;
        }
    }
    let mut out = vec![0f32; xv.len()];
    crate::util::for_chunks(&mut out, sp.max(1), |bc, o| {
        let ch = bc % c;
        let k = scale[ch] / (var[ch] + eps).sqrt();
        let off = bias[ch] - mean[ch] * k;
        for (d, &e) in o.iter_mut().zip(&xv[bc * sp..(bc + 1) * sp]) {
            *d = e * k + off;
        }
    });
    let mut outs = vec![Tensor::from_f32(x.shape(), out)
        .expect("size")
        .into_dtype(x.dtype())];
    if n_outputs > 1 {
        let rm: Vec<f32> = (0..c)
            .map(|k| run_mean[k] * momentum + mean[k] * (1.0 - momentum))
            .collect();
        let rv: Vec<f32> = (0..c)
            .map(|k| run_var[k] * momentum + var[k] * (1.0 - momentum))
            .collect();
        outs.push(
            Tensor::from_f32(&[c], rm)
                .expect("size")
                .into_dtype(x.dtype()),
        );
        outs.push(
            Tensor::from_f32(&[c], rv)
                .expect("size")
                .into_dtype(x.dtype()),
        );
    }
    Ok(outs.into_iter().take(n_outputs.max(1)).collect())
}

/// LayerNormalization over the axes from `axis` on; optional Mean and InvStdDev outputs.
pub fn layer_norm(axis: i64, eps: f32, i: Inputs, n_outputs: usize) -> EvalResult<Vec<Tensor>> {
    let x = i.req(0, "x")?;
    let ax = norm_axis(axis, x.rank())?;
    let inner: usize = x.shape()[ax..].iter().product();
    let outer: usize = x.shape()[..ax].iter().product();
    let xv = floats(x, 0, "x")?;
    let bc = |t: &Tensor, what: &str| -> EvalResult<Vec<f32>> {
        let v = t.to_f32_vec();
        let idx = crate::util::broadcast_index(t.shape(), &x.shape()[ax..]);
        if crate::util::broadcast_shapes(t.shape(), &x.shape()[ax..])? != x.shape()[ax..] {
            return Err(invalid!(
                "{what} of shape {:?} does not broadcast to {:?}",
                t.shape(),
                &x.shape()[ax..]
            ));
        }
        Ok(idx.into_iter().map(|j| v[j]).collect())
    };
    let scale = bc(i.req(1, "scale")?, "scale")?;
    let bias = match i.opt(2) {
        Some(b) => bc(b, "bias")?,
        None => vec![0.0; inner],
    };
    let mut out = vec![0f32; xv.len()];
    let mut means = vec![0f32; outer];
    let mut inv = vec![0f32; outer];
    for o in 0..outer {
        let row = &xv[o * inner..(o + 1) * inner];
        let m = crate::util::sum8(row, |e| e as f64) / inner as f64;
        let var = crate::util::sum8(row, |e| (e as f64 - m).powi(2)) / inner as f64;
        let is = 1.0 / (var + eps as f64).sqrt();
        for (k, (&e, d)) in row
            .iter()
            .zip(&mut out[o * inner..(o + 1) * inner])
            .enumerate()
        {
            *d = (((e as f64 - m) * is) as f32) * scale[k] + bias[k];
        }
        means[o] = m as f32;
        inv[o] = is as f32;
    }
    let mut stat_shape = x.shape().to_vec();
    for d in stat_shape.iter_mut().skip(ax) {
        *d = 1;
    }
    let mut outs = vec![Tensor::from_f32(x.shape(), out)
        .expect("size")
        .into_dtype(x.dtype())];
    if n_outputs > 1 {
        outs.push(Tensor::from_f32(&stat_shape, means).expect("size"));
    }
    if n_outputs > 2 {
        outs.push(Tensor::from_f32(&stat_shape, inv).expect("size"));
    }
    Ok(outs)
}

/// RMSNormalization over the axes from `axis` on: x / sqrt(mean(x²) + eps) · scale.
pub fn rms_norm(axis: i64, eps: f32, i: Inputs) -> EvalResult<Tensor> {
    let x = i.req(0, "x")?;
    let ax = norm_axis(axis, x.rank())?;
    let inner: usize = x.shape()[ax..].iter().product();
    let xv = floats(x, 0, "x")?;
    let s = i.req(1, "scale")?;
    if crate::util::broadcast_shapes(s.shape(), &x.shape()[ax..])? != x.shape()[ax..] {
        return Err(invalid!(
            "scale of shape {:?} does not broadcast to {:?}",
            s.shape(),
            &x.shape()[ax..]
        ));
    }
    let sv = floats(s, 1, "scale")?;
    let scale: Vec<f32> = crate::util::broadcast_index(s.shape(), &x.shape()[ax..])
        .into_iter()
        .map(|j| sv[j])
        .collect();
    let mut out = vec![0f32; xv.len()];
    for (row, dst) in xv.chunks(inner.max(1)).zip(out.chunks_mut(inner.max(1))) {
        let ms = row.iter().map(|&e| (e as f64).powi(2)).sum::<f64>() / inner as f64;
        let inv = 1.0 / (ms + eps as f64).sqrt();
        for ((&e, d), &k) in row.iter().zip(dst).zip(&scale) {
            *d = ((e as f64 * inv) as f32) * k;
        }
    }
    Ok(Tensor::from_f32(x.shape(), out)
        .expect("size")
        .into_dtype(x.dtype()))
}

/// The largest element of `v` (NaN passed over, −∞ when there is none) over 8 lanes.
fn max8(v: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; 8];
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        for j in 0..8 {
            m[j] = if c[j] > m[j] { c[j] } else { m[j] };
        }
    }
    for (j, &e) in chunks.remainder().iter().enumerate() {
        m[j] = if e > m[j] { e } else { m[j] };
    }
    m.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

/// Softmax / LogSoftmax along an axis (or over the flattened trailing dims with `coerce_2d`).
pub fn softmax(axis: i64, coerce_2d: bool, log: bool, x: &Tensor) -> EvalResult<Tensor> {
    let (outer, len, inner) = rows(axis, coerce_2d, x)?;
    let xv = floats(x, 0, "x")?;
    let mut out = vec![0f32; xv.len()];
    let len1 = len.max(1);
    if inner == 1 {
        for (row, dst) in xv.chunks_exact(len1).zip(out.chunks_exact_mut(len1)) {
            softmax_row(row, dst, log);
        }
    } else {
        // Rows along a strided axis: copied out, computed as contiguous ones, copied back.
        let (mut row, mut dst) = (vec![0f32; len], vec![0f32; len]);
        for o in 0..outer {
            for q in 0..inner {
                let at = |k: usize| (o * len + k) * inner + q;
                for (k, r) in row.iter_mut().enumerate() {
                    *r = xv[at(k)];
                }
                softmax_row(&row, &mut dst, log);
                for (k, &d) in dst.iter().enumerate() {
                    out[at(k)] = d;
                }
            }
        }
    }
    Ok(Tensor::from_f32(x.shape(), out)
        .expect("size")
        .into_dtype(x.dtype()))
}

/// One row: `e^(x − max)` per element, summed in lpc-ref's 8-lane order (`util::sum8`), then
/// divided by the sum (LogSoftmax: `x − max − ln Σ`). Passes the compiler vectorises.
fn softmax_row(row: &[f32], dst: &mut [f32], log: bool) {
    let exp = crate::transcendental::exp_f32;
    let mx = max8(row);
    for (d, &x) in dst.iter_mut().zip(row) {
        *d = exp(x - mx);
    }
    let sum: f32 = crate::util::sum8(dst, |e| e);
    if log {
        let ls = sum.ln();
        for (d, &x) in dst.iter_mut().zip(row) {
            *d = (x - mx) - ls;
        }
    } else {
        for d in dst.iter_mut() {
            *d /= sum;
        }
    }
}

/// Hardmax: 1 at the first largest element of each row along `axis` (all of the row's
/// elements from `axis` on when `coerce_2d`), 0 elsewhere. As ONNX Runtime: the maximum is
/// taken left to right keeping the current value unless a later one is larger, so a NaN
/// first element makes the maximum NaN and the row all 0; later NaNs are passed over.
pub fn hardmax(axis: i64, coerce_2d: bool, x: &Tensor) -> EvalResult<Tensor> {
    let (outer, len, inner) = rows(axis, coerce_2d, x)?;
    let xv = floats(x, 0, "x")?;
    let mut out = vec![0f32; xv.len()];
    for o in 0..outer {
        for q in 0..inner {
            let at = |k: usize| (o * len + k) * inner + q;
            let Some(first) = (0..len).map(|k| xv[at(k)]).next() else {
                continue;
            };
            let mx = (1..len)
                .map(|k| xv[at(k)])
                .fold(first, |m, v| if m < v { v } else { m });
            if let Some(k) = (0..len).find(|&k| xv[at(k)] == mx) {
                out[at(k)] = 1.0;
            }
        }
    }
    Ok(Tensor::from_f32(x.shape(), out)
        .expect("size")
        .into_dtype(x.dtype()))
}

/// InstanceNormalization: (x [N, C, d...], scale [C], bias [C]); each `(n, c)` plane is
/// normalised by its mean and population variance (in f64), `(x - mean) / sqrt(var + eps)`,
/// then multiplied by `scale[c]` and shifted by `bias[c]`.
pub fn instance_norm(eps: f32, i: Inputs) -> EvalResult<Tensor> {
    let x = i.req(0, "x")?;
    // One group per channel (at least one, so that an empty C is no error).
    let c = x.shape().get(1).copied().unwrap_or(0);
    grouped_norm(eps, c.max(1), i)
}

/// GroupNormalization (opset 21): as [`instance_norm`], but the statistics are over each
/// `(n, group)` block of `C / num_groups` channels; scale and bias stay per channel.
pub fn group_norm(eps: f32, num_groups: usize, i: Inputs) -> EvalResult<Tensor> {
    grouped_norm(eps, num_groups, i)
}

/// Instance and group normalization: `groups` (dividing C) blocks of channels per batch
/// entry, each normalised by its own mean and population variance in f64.
fn grouped_norm(eps: f32, groups: usize, i: Inputs) -> EvalResult<Tensor> {
    let x = i.req(0, "x")?;
    if x.rank() < 3 {
        return Err(invalid!(
            "normalization input must have rank >= 3, got {:?}",
            x.shape()
        ));
    }
    let (c, sp) = (x.shape()[1], x.shape()[2..].iter().product::<usize>());
    if groups == 0 || c % groups != 0 {
        return Err(invalid!(
            "num_groups {groups} does not divide the {c} channels"
        ));
    }
    let xv = floats(x, 0, "x")?;
    let mut p = vec![];
    for (k, what) in [(1, "scale"), (2, "bias")] {
        let t = i.req(k, what)?;
        if t.dtype() != x.dtype() || t.shape() != [c] {
            return Err(invalid!(
                "{what} must be {:?}[{c}] like x {:?}, got {:?}{:?}",
                x.dtype(),
                x.shape(),
                t.dtype(),
                t.shape()
            ));
        }
        p.push(floats(t, k, what)?.into_owned());
    }
    let per = c / groups;
    let block = (per * sp).max(1);
    let mut out = vec![0f32; xv.len()];
    for (b, (xs, ys)) in xv.chunks(block).zip(out.chunks_mut(block)).enumerate() {
        let first = (b % groups) * per;
        let n = (per * sp) as f64;
        let mean = xs.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = xs
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        let inv = 1.0 / (var + f64::from(eps)).sqrt();
        for (k, (y, &v)) in ys.iter_mut().zip(xs).enumerate() {
            let ch = first + k / sp.max(1);
            *y = ((f64::from(v) - mean) * inv * f64::from(p[0][ch]) + f64::from(p[1][ch])) as f32;
        }
    }
    Ok(Tensor::from_f32(x.shape(), out)
        .expect("size")
        .into_dtype(x.dtype()))
}

/// LRN: `y = x / (bias + alpha / size · Σ x²)^beta`, the sum over the channels
/// `c - ⌊(size-1)/2⌋ ..= c + ⌈(size-1)/2⌉` that exist (x `[N, C, d...]`), in f64.
pub fn lrn(alpha: f32, beta: f32, bias: f32, size: usize, x: &Tensor) -> EvalResult<Tensor> {
    if x.rank() < 2 || size == 0 {
        return Err(invalid!(
            "LRN needs x of rank >= 2 and size >= 1, got {:?} and size {size}",
            x.shape()
        ));
    }
    let (c, sp) = (x.shape()[1], x.shape()[2..].iter().product::<usize>());
    let xv = floats(x, 0, "x")?;
    let (below, above) = ((size - 1) / 2, size / 2);
    let scale = f64::from(alpha) / size as f64;
    let mut out = vec![0f32; xv.len()];
    for (k, y) in out.iter_mut().enumerate() {
        let (n, ch, s) = (k / (c * sp), k / sp % c, k % sp);
        let sum: f64 = (ch.saturating_sub(below)..(ch + above + 1).min(c))
            .map(|j| f64::from(xv[(n * c + j) * sp + s]).powi(2))
            .sum();
        *y = (f64::from(xv[k]) / (f64::from(bias) + scale * sum).powf(f64::from(beta))) as f32;
    }
    Ok(Tensor::from_f32(x.shape(), out)
        .expect("size")
        .into_dtype(x.dtype()))
}

/// MeanVarianceNormalization: `(x - mean) / (sqrt(var) + 1e-9)`, mean and population
/// variance over `axes` (in f64), as the ONNX function body.
pub fn mean_variance_norm(axes: &[i64], x: &Tensor) -> EvalResult<Tensor> {
    let shape = x.shape();
    let mut reduced = vec![false; shape.len()];
    for &a in axes {
        let k = norm_axis(a, shape.len())?;
        if reduced[k] {
            return Err(invalid!("axes {axes:?} repeat axis {k}"));
        }
        reduced[k] = true;
    }
    let xv = floats(x, 0, "x")?;
    // The index of each element's group: its multi-index with the reduced axes dropped.
    let mut key = vec![0usize; xv.len()];
    let mut groups = 1;
    let mut stride = 1;
    for ax in (0..shape.len()).rev() {
        if !reduced[ax] {
            let inner: usize = shape[ax + 1..].iter().product();
            for (k, g) in key.iter_mut().enumerate() {
                *g += (k / inner.max(1)) % shape[ax] * stride;
            }
            stride *= shape[ax];
            groups *= shape[ax];
        }
    }
    let (mut sum, mut count) = (vec![0f64; groups], vec![0usize; groups]);
    for (&v, &g) in xv.iter().zip(&key) {
        sum[g] += f64::from(v);
        count[g] += 1;
    }
    let mean: Vec<f64> = sum.iter().zip(&count).map(|(s, &n)| s / n as f64).collect();
    let mut var = vec![0f64; groups];
    for (&v, &g) in xv.iter().zip(&key) {
        var[g] += (f64::from(v) - mean[g]).powi(2);
    }
    let out = xv
        .iter()
        .zip(&key)
        .map(|(&v, &g)| {
            let sd = (var[g] / count[g] as f64).sqrt();
            ((f64::from(v) - mean[g]) / (sd + 1e-9)) as f32
        })
        .collect();
    Ok(Tensor::from_f32(shape, out)
        .expect("size")
        .into_dtype(x.dtype()))
}

/// LpNormalization: each row along `axis` divided by its L1 (`p` = 1) or L2 (`p` = 2) norm,
/// computed in f64; a row whose norm is 0 gives 0 (as ONNX Runtime), a NaN or infinite norm
/// propagates through the division.
pub fn lp_normalization(axis: i64, p: i64, x: &Tensor) -> EvalResult<Tensor> {
    if !matches!(p, 1 | 2) {
        return Err(invalid!("LpNormalization p must be 1 or 2, got {p}"));
    }
    let (outer, len, inner) = rows(axis, false, x)?;
    let xv = floats(x, 0, "x")?;
    let mut out = vec![0f32; xv.len()];
    for o in 0..outer {
        for q in 0..inner {
            let at = |k: usize| (o * len + k) * inner + q;
            let norm = if p == 1 {
                (0..len).map(|k| f64::from(xv[at(k)]).abs()).sum::<f64>()
            } else {
                (0..len)
                    .map(|k| f64::from(xv[at(k)]).powi(2))
                    .sum::<f64>()
                    .sqrt()
            };
            if norm != 0.0 {
                for k in 0..len {
                    out[at(k)] = (f64::from(xv[at(k)]) / norm) as f32;
                }
            }
        }
    }
    Ok(Tensor::from_f32(x.shape(), out)
        .expect("size")
        .into_dtype(x.dtype()))
}

/// The (outer, len, inner) rows that Softmax-like ops normalise along `axis`.
fn rows(axis: i64, coerce_2d: bool, x: &Tensor) -> EvalResult<(usize, usize, usize)> {
    let ax = norm_axis(axis, x.rank())?;
    Ok(if coerce_2d {
        (
            x.shape()[..ax].iter().product::<usize>(),
            x.shape()[ax..].iter().product::<usize>(),
            1,
        )
    } else {
        (
            x.shape()[..ax].iter().product(),
            x.shape()[ax],
            x.shape()[ax + 1..].iter().product(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_rows_and_scale_broadcast() {
        // Rows [3, 4] and [0, 0]: mean squares 12.5 and 0; eps 0 for the first, the
        // zero row stays finite only with eps > 0 (here 1, giving 0).
        let x = Tensor::from_f32(&[2, 2], vec![3.0, 4.0, 0.0, 0.0]).unwrap();
        let s = Tensor::from_f32(&[1], vec![2.0]).unwrap();
        let y = rms_norm(-1, 1.0, Inputs::new(&[Some(&x), Some(&s)])).unwrap();
        let r = 2.0 / 13.5f32.sqrt();
        assert_eq!(y.to_f32_vec(), vec![3.0 * r, 4.0 * r, 0.0, 0.0]);
        // Axis 0 normalises over everything; a scale that does not broadcast is an error.
        let y = rms_norm(0, 0.0, Inputs::new(&[Some(&x), Some(&s)])).unwrap();
        let r = 2.0 / 6.25f32.sqrt();
        assert_eq!(y.to_f32_vec(), vec![3.0 * r, 4.0 * r, 0.0, 0.0]);
        let bad = Tensor::from_f32(&[3], vec![1.0; 3]).unwrap();
        assert!(rms_norm(-1, 0.0, Inputs::new(&[Some(&x), Some(&bad)])).is_err());
        assert!(rms_norm(2, 0.0, Inputs::new(&[Some(&x), Some(&s)])).is_err());
    }

    fn hm(axis: i64, coerce_2d: bool, shape: &[usize], v: &[f32]) -> Vec<f32> {
        hardmax(
            axis,
            coerce_2d,
            &Tensor::from_f32(shape, v.to_vec()).unwrap(),
        )
        .unwrap()
        .to_f32_vec()
    }

    #[test]
    fn hardmax_first_largest_per_row() {
        let (nan, inf) = (f32::NAN, f32::INFINITY);
        // Ties pick the first; -inf rows still pick one; a leading NaN gives no 1, a later
        // NaN is passed over (ONNX Runtime).
        let x = [
            2.0, 2.0, 1.0, //
            -inf, -inf, -inf, //
            nan, 1.0, 2.0, //
            1.0, nan, 2.0, //
            3.0, inf, nan,
        ];
        assert_eq!(
            hm(1, false, &[5, 3], &x),
            [
                1.0, 0.0, 0.0, //
                1.0, 0.0, 0.0, //
                0.0, 0.0, 0.0, //
                0.0, 0.0, 1.0, //
                0.0, 1.0, 0.0,
            ]
        );
        // Axis 0 of [2, 2] picks per column.
        assert_eq!(
            hm(0, false, &[2, 2], &[1.0, 4.0, 3.0, 2.0]),
            [0.0, 1.0, 1.0, 0.0]
        );
        // coerce_2d at axis 1 of [1, 2, 2] picks once over all four.
        assert_eq!(
            hm(1, true, &[1, 2, 2], &[1.0, 4.0, 3.0, 2.0]),
            [0.0, 1.0, 0.0, 0.0]
        );
        // Without coerce_2d, axis 1 of [1, 2, 2] picks per column.
        assert_eq!(
            hm(-2, false, &[1, 2, 2], &[1.0, 4.0, 3.0, 2.0]),
            [0.0, 1.0, 1.0, 0.0]
        );
        let t = Tensor::from_f32(&[2], vec![0.0, 1.0]).unwrap();
        assert!(hardmax(1, false, &t).is_err(), "axis out of range");
        assert!(hardmax(0, false, &Tensor::from_i64(&[2], vec![0, 1]).unwrap()).is_err());
    }

    #[test]
    fn instance_norm_per_plane() {
        // [N=1, C=2, 2]: plane 0 [1, 3] (mean 2, var 1), plane 1 [5, 5] (var 0).
        let x = Tensor::from_f32(&[1, 2, 2], vec![1.0, 3.0, 5.0, 5.0]).unwrap();
        let scale = Tensor::from_f32(&[2], vec![2.0, 1.0]).unwrap();
        let bias = Tensor::from_f32(&[2], vec![0.5, -1.0]).unwrap();
        let ins = [Some(&x), Some(&scale), Some(&bias)];
        let y = instance_norm(0.0, Inputs::new(&ins)).unwrap().to_f32_vec();
        assert_eq!(&y[..2], [-1.5, 2.5]);
        assert!(y[2].is_nan(), "0/0 with eps 0: {y:?}");
        let y = instance_norm(1.0, Inputs::new(&ins)).unwrap().to_f32_vec();
        assert_eq!(&y[2..], [-1.0, -1.0]);
        let ins = [Some(&x), Some(&bias), Some(&x)];
        assert!(
            instance_norm(1e-5, Inputs::new(&ins)).is_err(),
            "bias shape"
        );
        let ins = [Some(&scale), Some(&scale), Some(&bias)];
        assert!(instance_norm(1e-5, Inputs::new(&ins)).is_err(), "rank 1 x");
    }

    #[test]
    fn group_norm_lrn_and_mvn_by_hand() {
        // [1, C=4, 1], two groups: [1, 3] (mean 2, var 1) and [5, 5] (var 0).
        let x = Tensor::from_f32(&[1, 4, 1], vec![1.0, 3.0, 5.0, 5.0]).unwrap();
        let scale = Tensor::from_f32(&[4], vec![1.0, 2.0, 1.0, 1.0]).unwrap();
        let bias = Tensor::from_f32(&[4], vec![0.0, 0.5, 0.0, -1.0]).unwrap();
        let ins = [Some(&x), Some(&scale), Some(&bias)];
        let y = group_norm(0.0, 2, Inputs::new(&ins)).unwrap().to_f32_vec();
        assert_eq!(&y[..2], [-1.0, 2.5]);
        assert!(
            group_norm(0.0, 3, Inputs::new(&ins)).is_err(),
            "3 does not divide 4"
        );
        // LRN size 2 sums channels c-0 ..= c+1: y0 = 1 / (1 + 1/2·(1 + 9))^1 = 1/6.
        let y = lrn(1.0, 1.0, 1.0, 2, &x).unwrap().to_f32_vec();
        assert_eq!(y, [1.0 / 6.0, 3.0 / 18.0, 5.0 / 26.0, 5.0 / 13.5]);
        assert!(lrn(1.0, 1.0, 1.0, 0, &x).is_err());
        // MVN over axis 1: [1, 3, 5, 5] has mean 3.5, population sd sqrt(2.75).
        let y = mean_variance_norm(&[1], &x).unwrap().to_f32_vec();
        let sd = 2.75f64.sqrt() + 1e-9;
        assert_eq!(y[0], ((1.0 - 3.5) / sd) as f32);
        // Reducing over no axes gives 0 / 1e-9 = 0; repeated axes are refused.
        assert_eq!(mean_variance_norm(&[], &x).unwrap().to_f32_vec(), [0.0; 4]);
        assert!(mean_variance_norm(&[1, -2], &x).is_err());
    }

    #[test]
    fn lp_normalization_rows_zero_and_special_norms() {
        let lp = |axis, p, shape: &[usize], v: &[f32]| {
            lp_normalization(axis, p, &Tensor::from_f32(shape, v.to_vec()).unwrap())
                .unwrap()
                .to_f32_vec()
        };
        let (nan, inf) = (f32::NAN, f32::INFINITY);
        assert_eq!(
            lp(-1, 2, &[2, 2], &[3.0, -4.0, 0.0, 0.0]),
            [0.6, -0.8, 0.0, 0.0]
        );
        assert_eq!(lp(1, 1, &[1, 2], &[3.0, -1.0]), [0.75, -0.25]);
        // Axis 0 normalises columns.
        assert_eq!(
            lp(0, 1, &[2, 2], &[1.0, 2.0, 3.0, 2.0]),
            [0.25, 0.5, 0.75, 0.5]
        );
        // An infinite norm: inf / inf is NaN, finite / inf is 0; a NaN spreads over its row.
        let y = lp(-1, 2, &[2, 2], &[inf, 1.0, nan, 1.0]);
        assert!(y[0].is_nan() && y[1] == 0.0 && y[2].is_nan() && y[3].is_nan());
        let t = Tensor::from_f32(&[2], vec![1.0, 2.0]).unwrap();
        assert!(lp_normalization(0, 3, &t).is_err(), "p = 3");
        assert!(lp_normalization(1, 2, &t).is_err(), "axis out of range");
        let i = Tensor::from_i64(&[2], vec![1, 2]).unwrap();
        assert!(lp_normalization(0, 2, &i).is_err(), "integer x");
    }
}
