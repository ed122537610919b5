//! DeformConv: a convolution whose kernel taps sample the input bilinearly at learned
//! offsets (ONNX `DeformConv`, any number of spatial axes).

use crate::nn::conv_shape;
use crate::shape_ops::for_each_index;
use crate::util::want_float;
use crate::{invalid, EvalResult, Inputs};
use lpc_ir::{ConvAttrs, Tensor};

/// Multilinear interpolation of one channel `img` (spatial shape `dims`) at `pos`, reading
/// zeros outside.
fn sample(img: &[f64], dims: &[usize], pos: &[f64]) -> f64 {
    let r = dims.len();
    let mut total = 0.0;
    // Each corner of the cell around pos: bit d picks floor or floor + 1 along axis d.
    'corner: for corner in 0..1usize << r {
        let (mut flat, mut weight) = (0usize, 1.0);
        for d in 0..r {
            let lo = pos[d].floor();
            let frac = pos[d] - lo;
            let up = corner >> d & 1 == 1;
            let at = lo + up as usize as f64;
            if at < 0.0 || at >= dims[d] as f64 {
                continue 'corner;
            }
            flat = flat * dims[d] + at as usize;
            weight *= if up { frac } else { 1.0 - frac };
        }
        total += weight * img[flat];
    }
    total
}

/// DeformConv: (x `[N, C, *in]`, w `[M, C/group, *kernel]`, offset `[N,
/// offset_group·K·r, *out]`, bias `[M]`?, mask `[N, offset_group·K, *out]`?) with `K` kernel
/// taps and `r` spatial axes. Tap `k` of output position `o` reads x at
/// `o·stride - pad_begin + k·dilation + offset`, interpolated, times the mask.
pub fn deform_conv(a: &ConvAttrs, offset_group: usize, i: Inputs) -> EvalResult<Tensor> {
    let (x, w, off) = (i.req(0, "x")?, i.req(1, "w")?, i.req(2, "offset")?);
    want_float(x, 0, "x")?;
    want_float(w, 1, "w")?;
    want_float(off, 2, "offset")?;
    let s = conv_shape(a, x, w, false)?;
    let g = &s.geom;
    let r = g.input.len();
    let taps: usize = g.kernel.iter().product();
    if offset_group == 0 || s.c % offset_group != 0 {
        return Err(invalid!(
            "offset_group {offset_group} does not divide {} input channels",
            s.c
        ));
    }
    let out_sp: usize = g.output.iter().product();
    let expect = |t: &Tensor, what: &str, per_tap: usize| -> EvalResult<()> {
        let mut want = vec![s.n, offset_group * taps * per_tap];
        want.extend(&g.output);
        if t.shape() != want {
            return Err(invalid!("{what} {:?} must be {want:?}", t.shape()));
        }
        Ok(())
    };
    expect(off, "offset", r)?;
    let mask = match i.opt(4) {
        Some(m) => {
            want_float(m, 4, "mask")?;
            expect(m, "mask", 1)?;
            Some(m.to_f64_vec())
        }
        None => None,
    };
    let bias = match i.opt(3) {
        Some(b) if b.shape() != [s.m] => {
            return Err(invalid!("bias {:?} must be [{}]", b.shape(), s.m));
        }
        Some(b) => b.to_f64_vec(),
        None => vec![0.0; s.m],
    };
    let (xv, wv, ov) = (x.to_f64_vec(), w.to_f64_vec(), off.to_f64_vec());
    let in_sp: usize = g.input.iter().product();
    let (cg, mg, cog) = (s.c / s.group, s.m / s.group, s.c / offset_group);
    // cols[(c·taps + k)·out_sp + o]: the masked sample of channel c for tap k at output o.
    let mut cols = vec![0.0; crate::shape_ops::check_count(&[s.c, taps, out_sp])?];
    let mut out = vec![0.0; crate::shape_ops::check_count(&[s.n, s.m, out_sp])?];
    let mut pos = vec![0.0; r];
    for n in 0..s.n {
        let mut o = 0;
        for_each_index(&g.output, |oix| {
            let mut k = 0;
            for_each_index(&g.kernel, |kix| {
                for og in 0..offset_group {
                    let tap = (n * offset_group + og) * taps + k;
                    for d in 0..r {
                        let base = oix[d] as f64 * g.strides[d] as f64 - g.pad_begin[d] as f64
                            + (kix[d] * g.dilations[d]) as f64;
                        pos[d] = base + ov[(tap * r + d) * out_sp + o];
                    }
                    let m = mask.as_ref().map_or(1.0, |m| m[tap * out_sp + o]);
                    for c in og * cog..(og + 1) * cog {
                        let img = &xv[(n * s.c + c) * in_sp..][..in_sp];
                        cols[(c * taps + k) * out_sp + o] = m * sample(img, &g.input, &pos);
                    }
                }
                k += 1;
            });
            o += 1;
        });
        for m in 0..s.m {
            let grp = m / mg;
            let y = &mut out[(n * s.m + m) * out_sp..][..out_sp];
            y.iter_mut().for_each(|v| *v = bias[m]);
            for cl in 0..cg {
                let c = grp * cg + cl;
                for k in 0..taps {
                    let wt = wv[(m * cg + cl) * taps + k];
                    let col = &cols[(c * taps + k) * out_sp..][..out_sp];
                    y.iter_mut().zip(col).for_each(|(v, s)| *v += wt * s);
                }
            }
        }
    }
    let mut shape = vec![s.n, s.m];
    shape.extend(&g.output);
    Ok(Tensor::from_f64(&shape, out)
        .map_err(|e| invalid!("{e}"))?
        .into_dtype(x.dtype()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_offsets_are_a_convolution_and_offsets_interpolate() {
        // 1×1 input channel 2×2, 1×1 kernel of weight 2: y = 2·x at the offset positions.
        let x = Tensor::from_f32(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let w = Tensor::from_f32(&[1, 1, 1, 1], vec![2.0]).unwrap();
        let zero = Tensor::from_f32(&[1, 2, 2, 2], vec![0.0; 8]).unwrap();
        let a = ConvAttrs::default();
        let y = deform_conv(&a, 1, Inputs::new(&[Some(&x), Some(&w), Some(&zero)])).unwrap();
        assert_eq!(y.to_f32_vec(), vec![2.0, 4.0, 6.0, 8.0]);
        // Offsets (dy, dx) = (0.5, 0.5) everywhere: the centre average 2.5 at (0, 0); half
        // outside at (0, 1) reads zeros: (2 + 4) / 4 = 1.5; a mask of 0.5 halves it all.
        let off = Tensor::from_f32(&[1, 2, 2, 2], vec![0.5; 8]).unwrap();
        let mask = Tensor::from_f32(&[1, 1, 2, 2], vec![0.5; 4]).unwrap();
        let b = Tensor::from_f32(&[1], vec![1.0]).unwrap();
        let y = deform_conv(
            &a,
            1,
            Inputs::new(&[Some(&x), Some(&w), Some(&off), Some(&b), Some(&mask)]),
        )
        .unwrap();
        assert_eq!(y.to_f32_vec(), vec![3.5, 2.5, 2.75, 2.0]);
        // A wrong offset shape is an error.
        let bad = Tensor::from_f32(&[1, 1, 2, 2], vec![0.0; 4]).unwrap();
        assert!(deform_conv(&a, 1, Inputs::new(&[Some(&x), Some(&w), Some(&bad)])).is_err());
        assert!(deform_conv(&a, 0, Inputs::new(&[Some(&x), Some(&w), Some(&zero)])).is_err());
    }
}
