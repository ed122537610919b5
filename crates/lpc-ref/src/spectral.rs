//! Signal processing: DFT, STFT and the window functions (HannWindow, HammingWindow,
//! BlackmanWindow), computed in f64.

use crate::util::ints;
use crate::{invalid, EvalError, EvalResult, Inputs};
use lpc_ir::{dft_axis, dft_lengths, stft_dims, DType, Tensor, WindowKind};
use std::f64::consts::PI;

/// The one integer of a one-element integer input.
fn one_int(t: &Tensor, what: &str) -> EvalResult<i64> {
    match ints(t, what)?.as_slice() {
        [v] => Ok(*v),
        other => Err(invalid!("{what} must hold one integer, got {other:?}")),
    }
}

/// `e^{sign·2πi·k/n}` as (cos, sin), with `k` reduced modulo `n` first for accuracy.
fn twiddle(k: usize, n: usize, sign: f64) -> (f64, f64) {
    let a = sign * 2.0 * PI * (k % n) as f64 / n as f64;
    (a.cos(), a.sin())
}

/// The first `out_len` frequencies of the DFT of `z` (length n), or of its inverse (divided by
/// n): `Σ_k z[k] e^{∓2πi fk/n}`.
fn dft_line(
    z: &[(f64, f64)],
    out_len: usize,
    inverse: bool,
) -> impl Iterator<Item = (f64, f64)> + '_ {
    let n = z.len();
    let sign = if inverse { 1.0 } else { -1.0 };
    (0..out_len).map(move |f| {
        let (mut re, mut im) = (0f64, 0f64);
        for (k, &(zr, zi)) in z.iter().enumerate() {
            let (wc, ws) = twiddle(f * k, n, sign);
            re += zr * wc - zi * ws;
            im += zr * ws + zi * wc;
        }
        if inverse {
            (re / n as f64, im / n as f64)
        } else {
            (re, im)
        }
    })
}

/// DFT: (x, dft_length?, axis?); see `Op::Dft`. Each line along the axis is transformed by
/// the direct O(n²) sum in f64.
pub fn dft(inverse: bool, onesided: bool, i: Inputs) -> EvalResult<Tensor> {
    let x = i.req(0, "x")?;
    crate::util::want_float(x, 0, "x")?;
    let r = x.rank();
    let c = *x.shape().last().unwrap_or(&0);
    if r < 2 || !(c == 1 || c == 2) {
        return Err(invalid!(
            "DFT x must have rank 2 or more and a last axis of 1 or 2, got shape {:?}",
            x.shape()
        ));
    }
    let axis = match i.opt(2) {
        Some(t) => one_int(t, "axis")?,
        None => -2,
    };
    let ax = dft_axis(axis, r).map_err(|e| invalid!("DFT {e}"))?;
    let length = i.opt(1).map(|t| one_int(t, "dft_length")).transpose()?;
    let shape = x.shape();
    let len = shape[ax];
    let (n, out_len) =
        dft_lengths(len, length, inverse, onesided).map_err(|e| invalid!("DFT {e}"))?;
    let (outer, inner) = (
        shape[..ax].iter().product::<usize>(),
        shape[ax + 1..r - 1].iter().product::<usize>(),
    );
    let co = if inverse && onesided { 1 } else { 2 };
    let xv = x.to_f64_vec();
    let mut out = vec![0f64; outer * out_len * inner * co];
    // The input sequence used: the half spectrum (m values) for an inverse one-sided transform.
    let used = if inverse && onesided { n / 2 + 1 } else { n };
    let mut z = vec![(0f64, 0f64); n];
    for o in 0..outer {
        for q in 0..inner {
            z.iter_mut().for_each(|v| *v = (0.0, 0.0));
            for (k, zk) in z.iter_mut().enumerate().take(used.min(len)) {
                let at = ((o * len + k) * inner + q) * c;
                *zk = (xv[at], if c == 2 { xv[at + 1] } else { 0.0 });
            }
            if inverse && onesided {
                // The Hermitian extension of the half spectrum.
                for k in used..n {
                    let (re, im) = z[n - k];
                    z[k] = (re, -im);
                }
            }
            for (f, (re, im)) in dft_line(&z, out_len, inverse).enumerate() {
                let at = ((o * out_len + f) * inner + q) * co;
                out[at] = re;
                if co == 2 {
                    out[at + 1] = im;
                }
            }
        }
    }
    let mut out_shape = shape.to_vec();
    out_shape[ax] = out_len;
    out_shape[r - 1] = co;
    Ok(Tensor::from_f64(&out_shape, out)
        .expect("size")
        .into_dtype(x.dtype()))
}

/// STFT: (signal [batch, length, 1 or 2], frame_step, window?, frame_length?) →
/// `[batch, frames, bins, 2]`; see `Op::Stft`.
pub fn stft(onesided: bool, i: Inputs) -> EvalResult<Tensor> {
    let x = i.req(0, "signal")?;
    crate::util::want_float(x, 0, "signal")?;
    let &[batch, len, c] = x.shape() else {
        return Err(invalid!(
            "STFT signal must have shape [batch, length, 1 or 2], got {:?}",
            x.shape()
        ));
    };
    if !(c == 1 || c == 2) {
        return Err(invalid!(
            "STFT signal must have shape [batch, length, 1 or 2], got {:?}",
            x.shape()
        ));
    }
    let step = one_int(i.req(1, "frame_step")?, "frame_step")?;
    let window = i.opt(2);
    if let Some(w) = window {
        crate::util::want_float(w, 2, "window")?;
    }
    let frame_length = i.opt(3).map(|t| one_int(t, "frame_length")).transpose()?;
    let (frames, fl, bins) =
        stft_dims(len, step, window.map(|w| w.shape()), frame_length, onesided)
            .map_err(|e| invalid!("STFT {e}"))?;
    let step = step as usize;
    let xv = x.to_f64_vec();
    let wv = window.map_or_else(|| vec![1.0; fl], Tensor::to_f64_vec);
    let mut out = Vec::with_capacity(batch * frames * bins * 2);
    let mut z = vec![(0f64, 0f64); fl];
    for b in 0..batch {
        for f in 0..frames {
            for (k, zk) in z.iter_mut().enumerate() {
                let at = (b * len + f * step + k) * c;
                let im = if c == 2 { xv[at + 1] } else { 0.0 };
                *zk = (xv[at] * wv[k], im * wv[k]);
            }
            for (re, im) in dft_line(&z, bins, false) {
                out.push(re);
                out.push(im);
            }
        }
    }
    Ok(Tensor::from_f64(&[batch, frames, bins, 2], out)
        .expect("size")
        .into_dtype(x.dtype()))
}

/// HannWindow, HammingWindow, BlackmanWindow: `size` values of the window with period `N` =
/// size (periodic) or size - 1 (symmetric), as `dtype`.
pub fn window(
    window: WindowKind,
    periodic: bool,
    dtype: DType,
    size: &Tensor,
) -> EvalResult<Tensor> {
    if !matches!(size.dtype(), DType::I32 | DType::I64) {
        return Err(EvalError::DType {
            slot: 0,
            what: "size",
            got: size.dtype(),
            expected: "i32 or i64",
        });
    }
    let n = one_int(size, "size")?;
    if n < 0 {
        return Err(invalid!("window size must not be negative, got {n}"));
    }
    let n = n as usize;
    let period = if periodic { n } else { n.saturating_sub(1) } as f64;
    let v = (0..n)
        .map(|k| {
            let a = 2.0 * PI * k as f64 / period;
            match window {
                WindowKind::Hann => 0.5 - 0.5 * a.cos(),
                WindowKind::Hamming => 25.0 / 46.0 - 21.0 / 46.0 * a.cos(),
                WindowKind::Blackman => 0.42 - 0.5 * a.cos() + 0.08 * (2.0 * a).cos(),
            }
        })
        .collect();
    Ok(Tensor::from_f64(&[n], v).expect("size").into_dtype(dtype))
}

/// The one number of a one-element float input.
fn one_float(t: &Tensor, slot: usize, what: &'static str) -> EvalResult<f64> {
    crate::util::want_float(t, slot, what)?;
    match t.to_f64_vec().as_slice() {
        [v] => Ok(*v),
        other => Err(invalid!("{what} must hold one number, got {other:?}")),
    }
}

/// MelWeightMatrix: (num_mel_bins, dft_length, sample_rate, lower_edge_hertz,
/// upper_edge_hertz) → `[dft_length / 2 + 1, num_mel_bins]` of `dtype`. The band edges are
/// `num_mel_bins + 2` points evenly spaced on the mel scale (`2595 log10(1 + f / 700)`)
/// from the lower to the upper edge, each mapped to the spectrogram bin
/// `floor((dft_length + 1) f / sample_rate)`; filter m rises linearly from edge m to edge
/// m + 1 and falls to edge m + 2 (the ONNX reference's construction, in f64).
pub fn mel_weight_matrix(dtype: DType, i: Inputs) -> EvalResult<Tensor> {
    let int = |slot: usize, what: &'static str| -> EvalResult<i64> {
        let t = i.req(slot, what)?;
        if !matches!(t.dtype(), DType::I32 | DType::I64) {
            return Err(EvalError::DType {
                slot,
                what,
                got: t.dtype(),
                expected: "i32 or i64",
            });
        }
        match one_int(t, what)? {
            v if v > 0 => Ok(v),
            v => Err(invalid!("MelWeightMatrix {what} must be positive, got {v}")),
        }
    };
    let mels = int(0, "num_mel_bins")? as usize;
    let dft = int(1, "dft_length")?;
    let rate = int(2, "sample_rate")? as f64;
    let lo = one_float(i.req(3, "lower_edge_hertz")?, 3, "lower_edge_hertz")?;
    let hi = one_float(i.req(4, "upper_edge_hertz")?, 4, "upper_edge_hertz")?;
    if !(0.0 <= lo && lo <= hi && hi.is_finite()) {
        return Err(invalid!(
            "MelWeightMatrix needs 0 <= lower_edge_hertz <= upper_edge_hertz, got {lo} and {hi}"
        ));
    }
    let bins = dft as usize / 2 + 1;
    crate::shape_ops::check_count(&[bins, mels])?;
    let ln10 = std::f64::consts::LN_10;
    let to_mel = |f: f64| 2595.0 * (f / 700.0).ln_1p() / ln10;
    let (lo_mel, hi_mel) = (to_mel(lo), to_mel(hi));
    let step = (hi_mel - lo_mel) / (mels + 2) as f64;
    let edges: Vec<usize> = (0..mels + 2)
        .map(|k| {
            let hz = 700.0 * ((k as f64 * step + lo_mel) / 2595.0 * ln10).exp_m1();
            ((dft + 1) as f64 * hz / rate).floor() as usize
        })
        .collect();
    if let Some(&e) = edges.iter().find(|&&e| e >= bins) {
        return Err(invalid!(
            "MelWeightMatrix: upper_edge_hertz {hi} falls in bin {e}, past the {bins} bins of a {dft}-point DFT at {rate} Hz"
        ));
    }
    let mut out = vec![0f64; bins * mels];
    for m in 0..mels {
        let (l, c, h) = (edges[m], edges[m + 1], edges[m + 2]);
        if c == l {
            out[c * mels + m] = 1.0;
        } else {
            for j in l..=c {
                out[j * mels + m] = (j - l) as f64 / (c - l) as f64;
            }
        }
        for j in c..h {
            out[j * mels + m] = (h - j) as f64 / (h - c) as f64;
        }
    }
    Ok(Tensor::from_f64(&[bins, mels], out)
        .map_err(|e| invalid!("MelWeightMatrix: {e}"))?
        .into_dtype(dtype))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_dft(x: &Tensor, axis: i64, inverse: bool, onesided: bool) -> Tensor {
        let a = Tensor::scalar_i64(axis);
        let ins = [Some(x), None, Some(&a)];
        dft(inverse, onesided, Inputs::new(&ins)).unwrap()
    }

    #[test]
    fn dft_of_a_real_signal_and_back() {
        // x = [1, 2, 3, 4]: X = [10, -2+2i, -2, -2-2i].
        let x = Tensor::from_f32(&[4, 1], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let y = run_dft(&x, 0, false, false);
        assert_eq!(y.shape(), &[4, 2]);
        let want = [10.0, 0.0, -2.0, 2.0, -2.0, 0.0, -2.0, -2.0];
        for (a, b) in y.to_f32_vec().iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let half = run_dft(&x, -2, false, true);
        assert_eq!(half.shape(), &[3, 2]);
        let back = run_dft(&half, 0, true, true);
        assert_eq!(back.shape(), &[4, 1]);
        for (a, b) in back.to_f32_vec().iter().zip([1.0, 2.0, 3.0, 4.0]) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let full = run_dft(&y, 0, true, false);
        for (a, b) in full
            .to_f32_vec()
            .iter()
            .zip([1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0, 0.0])
        {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn dft_rejects_the_complex_axis_and_bad_lengths() {
        let x = Tensor::from_f32(&[4, 1], vec![1.0; 4]).unwrap();
        let a = Tensor::scalar_i64(1);
        let ins = [Some(&x), None, Some(&a)];
        assert!(dft(false, false, Inputs::new(&ins)).is_err());
        let l = Tensor::scalar_i64(0);
        let ins = [Some(&x), Some(&l)];
        assert!(dft(false, false, Inputs::new(&ins)).is_err());
    }

    #[test]
    fn stft_frames() {
        // Frames [1, 2] and [3, 4] (step 2): spectra [3, -1] and [7, -1].
        let x = Tensor::from_f32(&[1, 4, 1], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let (step, len) = (Tensor::scalar_i64(2), Tensor::scalar_i64(2));
        let ins = [Some(&x), Some(&step), None, Some(&len)];
        let y = stft(true, Inputs::new(&ins)).unwrap();
        assert_eq!(y.shape(), &[1, 2, 2, 2]);
        for (a, b) in y
            .to_f32_vec()
            .iter()
            .zip([3.0, 0.0, -1.0, 0.0, 7.0, 0.0, -1.0, 0.0])
        {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        let long = Tensor::scalar_i64(5);
        let ins = [Some(&x), Some(&step), None, Some(&long)];
        assert!(stft(true, Inputs::new(&ins)).is_err());
    }

    fn mel(mels: i64, dft: i64, rate: i64, lo: f32, hi: f32) -> EvalResult<Tensor> {
        let (m, d, r) = (
            Tensor::scalar_i64(mels),
            Tensor::scalar_i64(dft),
            Tensor::scalar_i64(rate),
        );
        let (l, h) = (Tensor::scalar_f32(lo), Tensor::scalar_f32(hi));
        let ins = [Some(&m), Some(&d), Some(&r), Some(&l), Some(&h)];
        mel_weight_matrix(DType::F32, Inputs::new(&ins))
    }

    #[test]
    fn mel_filters_are_triangles_over_the_bins() {
        // 2 filters, 8-point DFT (5 bins) at 8 Hz, 0..4 Hz: 4 edges a quarter of the mel range
        // apart (the last one short of 4 Hz, as in the ONNX reference), at bins
        // floor(9 f / 8) = 0, 1, 2, 3.
        let t = mel(2, 8, 8, 0.0, 4.0).unwrap();
        assert_eq!(t.shape(), &[5, 2]);
        let v = t.to_f32_vec();
        let col = |m: usize| (0..5).map(|j| v[j * 2 + m]).collect::<Vec<f32>>();
        assert_eq!(col(0), vec![0.0, 1.0, 0.0, 0.0, 0.0]);
        assert_eq!(col(1), vec![0.0, 0.0, 1.0, 0.0, 0.0]);
        // Past the Nyquist bin, a non-positive count, a reversed band: errors.
        assert!(mel(2, 8, 8, 0.0, 8.0).is_err());
        assert!(mel(0, 8, 8, 0.0, 4.0).is_err());
        assert!(mel(2, 8, 8, 3.0, 1.0).is_err());
        let f = Tensor::scalar_f32(2.0);
        let ins = [Some(&f); 5];
        assert!(matches!(
            mel_weight_matrix(DType::F32, Inputs::new(&ins)),
            Err(EvalError::DType { slot: 0, .. })
        ));
    }

    #[test]
    fn windows() {
        let size = Tensor::scalar_i64(4);
        let hann = window(WindowKind::Hann, true, DType::F32, &size).unwrap();
        assert_eq!(hann.to_f32_vec(), vec![0.0, 0.5, 1.0, 0.5]);
        let sym = window(WindowKind::Hann, false, DType::F64, &Tensor::scalar_i64(3)).unwrap();
        assert_eq!(sym.to_f64_vec(), vec![0.0, 1.0, 0.0]);
        let b = window(WindowKind::Blackman, true, DType::F32, &size).unwrap();
        assert!((b.to_f32_vec()[2] - 1.0).abs() < 1e-6);
        let h = window(WindowKind::Hamming, true, DType::F32, &size).unwrap();
        assert!((h.to_f32_vec()[0] - 4.0 / 46.0).abs() < 1e-6);
        assert!(window(WindowKind::Hann, true, DType::F32, &Tensor::scalar_i64(-1)).is_err());
    }
}
