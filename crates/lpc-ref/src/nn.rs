//! Convolutions and matrix products. Float: im2col + `matrixmultiply` SGEMM (threaded), a
//! direct path for depthwise 2-D convs, rayon over the batch. Integer: exact i32 accumulation
//! and the one canonical requantization of DESIGN.md.

use crate::geom::{geometry, Geom};
use crate::shape_ops::for_each_index;
use crate::util::{broadcast_shapes, float_in};
use crate::{invalid, EvalError, EvalResult, Inputs};
use lpc_ir::{AutoPad, ConvAttrs, DType, Tensor};
use rayon::prelude::*;

/// C[m×n] = A[m×k] · B[k×n] (+ C when `accumulate`), row-major, via matrixmultiply.
pub fn sgemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    sgemm_strided(
        m,
        k,
        n,
        Strided::rows(a, k),
        Strided::rows(b, n),
        c,
        accumulate,
    );
}

/// A matrix operand of [`sgemm_strided`]: its values and its (row, column) strides.
#[derive(Debug, Clone, Copy)]
pub struct Strided<'a> {
    /// The values.
    pub data: &'a [f32],
    /// Distance between rows and between columns, in values.
    pub strides: (isize, isize),
}

impl<'a> Strided<'a> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Strided {
            data,
            strides: (cols as isize, 1),
        }
    }
}

/// SGEMM with explicit (row, column) strides for A and B. Large products are split by rows of
/// C over the rayon pool (matrixmultiply's own threading is slower than one thread on this
/// class of machine, so lpc runs it single-threaded and parallelises here).
pub fn sgemm_strided(
    m: usize,
    k: usize,
    n: usize,
    a: Strided,
    b: Strided,
    c: &mut [f32],
    accumulate: bool,
) {
    let sa = a.strides;
    let threads = crate::util::threads();
    if threads > 1 && m >= 2 * threads && (m * n * k) >= (1 << 18) && sa.0 >= 0 {
        let rows = m.div_ceil(threads);
        c[..m * n]
            .par_chunks_mut(rows * n)
            .enumerate()
            .for_each(|(t, ct)| {
                let r0 = t * rows;
                let mr = ct.len() / n.max(1);
                let a = Strided {
                    data: &a.data[(r0 as isize * sa.0) as usize..],
                    ..a
                };
                sgemm_serial(mr, k, n, a, b, ct, accumulate);
            });
    } else {
        sgemm_serial(m, k, n, a, b, c, accumulate);
    }
}

fn sgemm_serial(
    m: usize,
    k: usize,
    n: usize,
    a: Strided,
    b: Strided,
    c: &mut [f32],
    accumulate: bool,
) {
    let (
        Strided {
            data: a,
            strides: sa,
        },
        Strided {
            data: b,
            strides: sb,
        },
    ) = (a, b);
    assert!(c.len() >= m * n, "sgemm output too small");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    let last = |rows: usize, cols: usize, s: (isize, isize)| {
        (rows as isize - 1) * s.0 + (cols as isize - 1) * s.1
    };
    assert!(
        (last(m, k, sa) as usize) < a.len() && (last(k, n, sb) as usize) < b.len(),
        "sgemm operand too small"
    );
    // SAFETY: the asserts above keep every access of A, B and C inside their slices.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            sa.0,
            sa.1,
            b.as_ptr(),
            sb.0,
            sb.1,
            if accumulate { 1.0 } else { 0.0 },
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// C[m×n] = A[m×k] · B[k×n] in i32 with wrapping adds (u8/i8 products never overflow i32 for
/// K < 2^16).
pub fn igemm(m: usize, k: usize, n: usize, a: &[i32], b: &[i32]) -> Vec<i32> {
    let mut c = vec![0i32; m * n];
    for i in 0..m {
        let row = &mut c[i * n..(i + 1) * n];
        for p in 0..k {
            let av = a[i * k + p];
            if av == 0 {
                continue;
            }
            let brow = &b[p * n..(p + 1) * n];
            for (cv, &bv) in row.iter_mut().zip(brow) {
                *cv = cv.wrapping_add(av.wrapping_mul(bv));
            }
        }
    }
    c
}

/// im2col of one image's `cg` channels (`x`: cg × prod(input)) into `col`:
/// rows (c, kernel tap) × columns (output position); padding reads `pad`.
fn im2col<T: Copy + Send + Sync>(
    x: &[T],
    cg: usize,
    g: &Geom,
    taps: &[Vec<Vec<Option<usize>>>],
    pad: T,
    col: &mut [T],
) {
    let in_n: usize = g.input.iter().product();
    let on: usize = g.output.iter().product();
    let kn: usize = g.kernel.iter().product();
    if g.input.len() == 2 {
        crate::util::for_chunks(col, kn * on, |c, cc| {
            im2col_2d_channel(
                &x[c * in_n..(c + 1) * in_n],
                g,
                taps,
                pad,
                0,
                g.output[0],
                cc,
            )
        });
        return;
    }
    let r = g.input.len();
    let mut istr = vec![1usize; r];
    for a in (0..r.saturating_sub(1)).rev() {
        istr[a] = istr[a + 1] * g.input[a + 1];
    }
    let mut rowi = 0;
    for c in 0..cg {
        for_each_index(&g.kernel, |kk| {
            let row = &mut col[rowi * on..(rowi + 1) * on];
            let mut o = 0;
            for_each_index(&g.output, |oo| {
                let mut flat = c * in_n;
                let mut inside = true;
                for a in 0..r {
                    match taps[a][kk[a]][oo[a]] {
                        Some(i) => flat += i * istr[a],
                        None => inside = false,
                    }
                }
                row[o] = if inside { x[flat] } else { pad };
                o += 1;
            });
            rowi += 1;
        });
    }
}

/// The im2col rows (kernel tap) × columns (output positions of output rows `oy0..oy1`) of one
/// channel `xc` of a 2-D input.
fn im2col_2d_channel<T: Copy>(
    xc: &[T],
    g: &Geom,
    taps: &[Vec<Vec<Option<usize>>>],
    pad: T,
    oy0: usize,
    oy1: usize,
    cc: &mut [T],
) {
    let (kh, kw) = (g.kernel[0], g.kernel[1]);
    let (ow, iw) = (g.output[1], g.input[1]);
    let on = (oy1 - oy0) * ow;
    // Per kernel column: the output columns lo..hi reading inside the row, at input columns
    // first, first+step, ... (an arithmetic progression for every conv geometry; anything
    // else takes the per-element table).
    let runs: Vec<Option<(usize, usize, usize, usize)>> = taps[1]
        .iter()
        .map(|t| {
            let lo = t.iter().position(Option::is_some)?;
            let hi = t.iter().rposition(Option::is_some)? + 1;
            let first = t[lo]?;
            let step = if hi - lo > 1 {
                t[lo + 1]?.checked_sub(first)?
            } else {
                1
            };
            let ok = (lo..hi).all(|ox| t[ox] == Some(first + (ox - lo) * step));
            ok.then_some((lo, hi, first, step))
        })
        .collect();
    for ky in 0..kh {
        for kx in 0..kw {
            let row = &mut cc[(ky * kw + kx) * on..(ky * kw + kx + 1) * on];
            for oy in oy0..oy1 {
                let dst = &mut row[(oy - oy0) * ow..(oy - oy0 + 1) * ow];
                match (taps[0][ky][oy], runs[kx]) {
                    (None, _) => dst.fill(pad),
                    (Some(iy), Some((lo, hi, first, step))) => {
                        let src = &xc[iy * iw..(iy + 1) * iw];
                        dst[..lo].fill(pad);
                        dst[hi..].fill(pad);
                        if step == 1 {
                            dst[lo..hi].copy_from_slice(&src[first..first + hi - lo]);
                        } else {
                            for (d, &v) in dst[lo..hi]
                                .iter_mut()
                                .zip(src[first..].iter().step_by(step))
                            {
                                *d = v;
                            }
                        }
                    }
                    (Some(iy), None) => {
                        let src = &xc[iy * iw..(iy + 1) * iw];
                        for (ox, d) in dst.iter_mut().enumerate() {
                            *d = match taps[1][kx][ox] {
                                Some(ix) => src[ix],
                                None => pad,
                            };
                        }
                    }
                }
            }
        }
    }
}

/// Column-buffer size (values) a 2-D float convolution aims for per im2col panel: a panel of
/// whole output rows whose columns stay in the core's L2 cache while the GEMM packs them,
/// instead of one image-sized buffer streamed through memory twice (~1.5× faster convs on
/// ppocr det 320×320).
const PANEL_VALUES: usize = 1 << 16;

/// 2-D float convolution of one group by im2col + GEMM in panels of output rows (parallel
/// over panels): `og` (mg × on) = `wg` (mg × cg·kn) · columns of `xg`.
fn conv2d_panels(
    xg: &[f32],
    wg: &[f32],
    (cg, mg): (usize, usize),
    g: &Geom,
    taps: &[Vec<Vec<Option<usize>>>],
    og: &mut [f32],
) {
    let (oh, ow) = (g.output[0], g.output[1]);
    let (in_n, kn, on) = (
        g.input.iter().product::<usize>(),
        g.kernel.iter().product::<usize>(),
        oh * ow,
    );
    let k = cg * kn;
    let rows = (PANEL_VALUES / (k * ow).max(1)).clamp(1, oh.max(1));
    let panel = |oy0: usize, oy1: usize, c: &mut [f32]| {
        let np = (oy1 - oy0) * ow;
        let mut col = vec![0f32; k * np];
        for (ci, cc) in col.chunks_mut((kn * np).max(1)).enumerate() {
            im2col_2d_channel(&xg[ci * in_n..(ci + 1) * in_n], g, taps, 0.0, oy0, oy1, cc);
        }
        sgemm_serial(
            mg,
            k,
            np,
            Strided::rows(wg, k),
            Strided::rows(&col, np),
            c,
            false,
        );
    };
    if rows >= oh {
        panel(0, oh, og);
        return;
    }
    let starts: Vec<usize> = (0..oh).step_by(rows).collect();
    let one = |&a: &usize| {
        let b = (a + rows).min(oh);
        let mut c = vec![0f32; mg * (b - a) * ow];
        panel(a, b, &mut c);
        c
    };
    // Panels keep the column buffer in cache on one thread too.
    let parts: Vec<Vec<f32>> = if crate::util::threads() > 1 {
        starts.par_iter().map(one).collect()
    } else {
        starts.iter().map(one).collect()
    };
    for (&a, c) in starts.iter().zip(&parts) {
        let np = c.len() / mg.max(1);
        for (m, src) in c.chunks(np.max(1)).enumerate() {
            og[m * on + a * ow..m * on + a * ow + np].copy_from_slice(src);
        }
    }
}

/// The sizes of a convolution: batch, input and output channels, groups, and the window.
pub(crate) struct ConvShape {
    pub n: usize,
    pub c: usize,
    pub m: usize,
    pub group: usize,
    pub geom: Geom,
}

/// Checks x and w against the attributes and resolves the window geometry.
pub(crate) fn conv_shape(
    a: &ConvAttrs,
    x: &Tensor,
    w: &Tensor,
    transpose: bool,
) -> EvalResult<ConvShape> {
    if x.rank() < 3 || w.rank() != x.rank() {
        return Err(invalid!(
            "conv input {:?} and weights {:?} must have equal rank >= 3",
            x.shape(),
            w.shape()
        ));
    }
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let group = a.group;
    let kernel = w.shape()[2..].to_vec();
    if !a.kernel.is_empty() && a.kernel != kernel {
        return Err(invalid!(
            "kernel_shape {:?} differs from the weights' {:?}",
            a.kernel,
            kernel
        ));
    }
    if group == 0 || c % group != 0 {
        return Err(invalid!("group {group} does not divide {c} input channels"));
    }
    let m = if transpose {
        if w.shape()[0] != c {
            return Err(invalid!(
                "weights {:?} expect {} input channels, input has {c}",
                w.shape(),
                w.shape()[0]
            ));
        }
        w.shape()[1] * group
    } else {
        if w.shape()[1] * group != c {
            return Err(invalid!(
                "weights {:?} with group {group} expect {} input channels, input has {c}",
                w.shape(),
                w.shape()[1] * group
            ));
        }
        if !w.shape()[0].is_multiple_of(group) {
            return Err(invalid!(
                "group {group} does not divide {} output channels",
                w.shape()[0]
            ));
        }
        w.shape()[0]
    };
    let geom = if transpose {
        Geom {
            input: x.shape()[2..].to_vec(),
            kernel,
            strides: vec![],
            dilations: vec![],
            pad_begin: vec![],
            pad_end: vec![],
            output: vec![],
        }
    } else {
        geometry(
            &x.shape()[2..],
            &kernel,
            &a.strides,
            &a.dilations,
            &a.pads,
            a.auto_pad,
            false,
        )?
    };
    Ok(ConvShape {
        n,
        c,
        m,
        group,
        geom,
    })
}

/// Float convolution.
pub fn conv(a: &ConvAttrs, i: Inputs) -> EvalResult<Tensor> {
    let (x, w) = (i.req(0, "x")?, i.req(1, "w")?);
    let s = conv_shape(a, x, w, false)?;
    let xv = float_in(x, 0, "x")?;
    let wv = float_in(w, 1, "w")?;
    let bias = match i.opt(2) {
        Some(b) if b.len() != s.m => {
            return Err(invalid!(
                "bias has {} values, {} output channels",
                b.len(),
                s.m
            ))
        }
        Some(b) => Some(float_in(b, 2, "bias")?),
        None => None,
    };
    let g = &s.geom;
    let (in_n, on, kn) = (
        g.input.iter().product::<usize>(),
        g.output.iter().product::<usize>(),
        g.kernel.iter().product::<usize>(),
    );
    let (cg, mg) = (s.c / s.group, s.m / s.group);
    let mut out = vec![0f32; s.n * s.m * on];
    let depthwise_2d = g.input.len() == 2 && cg == 1 && mg == 1;
    let pointwise = kn == 1
        && g.strides.iter().all(|&v| v == 1)
        && g.pad_begin.iter().chain(&g.pad_end).all(|&p| p == 0);
    // A 1×1 kernel over a one-pixel input without padding (squeeze-and-excitation gates): one
    // output pixel whatever the strides.
    let one_pixel = kn == 1 && in_n == 1 && g.pad_begin.iter().chain(&g.pad_end).all(|&p| p == 0);
    let taps = g.taps();
    let per_image = |n: usize, o: &mut [f32]| {
        let xn = &xv[n * s.c * in_n..(n + 1) * s.c * in_n];
        if one_pixel {
            // Each output is the sum over its input channels in order (a separate multiply and
            // add per channel, starting from +0), then the bias. A defined order, so that the
            // JIT's kernel for these (`lpc_jit::gemv`) can match it bit for bit.
            for gi in 0..s.group {
                let xg = &xn[gi * cg..(gi + 1) * cg];
                for (mo, y) in o[gi * mg..(gi + 1) * mg].iter_mut().enumerate() {
                    let wr = &wv[(gi * mg + mo) * cg..(gi * mg + mo + 1) * cg];
                    *y = wr.iter().zip(xg).fold(0f32, |acc, (w, x)| acc + w * x);
                }
            }
        } else if depthwise_2d {
            depthwise(xn, &wv, g, &taps, o);
        } else if g.input.len() == 2 && !pointwise {
            for gi in 0..s.group {
                let xg = &xn[gi * cg * in_n..(gi + 1) * cg * in_n];
                let wg = &wv[gi * mg * cg * kn..(gi + 1) * mg * cg * kn];
                let og = &mut o[gi * mg * on..(gi + 1) * mg * on];
                conv2d_panels(xg, wg, (cg, mg), g, &taps, og);
            }
        } else {
            let mut col = if pointwise {
                vec![]
            } else {
                vec![0f32; cg * kn * on]
            };
            for gi in 0..s.group {
                let xg = &xn[gi * cg * in_n..(gi + 1) * cg * in_n];
                let wg = &wv[gi * mg * cg * kn..(gi + 1) * mg * cg * kn];
                let og = &mut o[gi * mg * on..(gi + 1) * mg * on];
                if pointwise {
                    sgemm(mg, cg, on, wg, xg, og, false);
                } else {
                    im2col(xg, cg, g, &taps, 0.0, &mut col);
                    sgemm(mg, cg * kn, on, wg, &col, og, false);
                }
            }
        }
        if let Some(b) = &bias {
            for (m, ch) in o.chunks_mut(on).enumerate() {
                let bv = b[m];
                ch.iter_mut().for_each(|v| *v += bv);
            }
        }
    };
    if s.n > 1 {
        crate::util::for_chunks(&mut out, s.m * on.max(1), |n, o| per_image(n, o));
    } else if s.n == 1 {
        per_image(0, &mut out);
    }
    let mut shape = vec![s.n, s.m];
    shape.extend_from_slice(&g.output);
    Ok(Tensor::from_f32(&shape, out)
        .expect("size")
        .into_dtype(x.dtype()))
}

/// Direct depthwise 2-D convolution (one input and one output channel per group).
fn depthwise(x: &[f32], w: &[f32], g: &Geom, taps: &[Vec<Vec<Option<usize>>>], out: &mut [f32]) {
    let (ih, iw) = (g.input[0], g.input[1]);
    let (oh, ow) = (g.output[0], g.output[1]);
    let (kh, kw) = (g.kernel[0], g.kernel[1]);
    let (sx, dx, px) = (g.strides[1], g.dilations[1], g.pad_begin[1] as i64);
    // Per kernel column: the output columns whose input column is inside the image (a range,
    // since the map ox → ox·stride + kx·dilation − pad is increasing) and the input offset.
    let ranges: Vec<(usize, usize, i64)> = (0..kw)
        .map(|kx| {
            let off = (kx * dx) as i64 - px;
            let lo = (0..ow)
                .find(|&ox| ox as i64 * sx as i64 + off >= 0)
                .unwrap_or(ow);
            let hi = (0..ow)
                .rev()
                .find(|&ox| ((ox * sx) as i64 + off) < iw as i64)
                .map_or(0, |h| h + 1);
            (lo, hi.max(lo), off)
        })
        .collect();
    crate::util::for_chunks(out, oh * ow, |c, o| {
        let xc = &x[c * ih * iw..(c + 1) * ih * iw];
        let wc = &w[c * kh * kw..(c + 1) * kh * kw];
        o.fill(0.0);
        for ky in 0..kh {
            for oy in 0..oh {
                let Some(iy) = taps[0][ky][oy] else { continue };
                let src = &xc[iy * iw..(iy + 1) * iw];
                let dst = &mut o[oy * ow..(oy + 1) * ow];
                for (kx, &(lo, hi, off)) in ranges.iter().enumerate() {
                    let wv = wc[ky * kw + kx];
                    if lo >= hi {
                        continue;
                    }
                    let first = (lo as i64 * sx as i64 + off) as usize;
                    if sx == 1 {
                        let s = &src[first..first + (hi - lo)];
                        for (d, &v) in dst[lo..hi].iter_mut().zip(s) {
                            *d += wv * v;
                        }
                    } else {
                        for (k, d) in dst[lo..hi].iter_mut().enumerate() {
                            *d += wv * src[first + k * sx];
                        }
                    }
                }
            }
        }
    });
}

/// Output geometry of a transposed convolution: per spatial axis, the stride, dilation,
/// leading pad (possibly negative) and output extent.
struct TransposeGeom {
    strides: Vec<usize>,
    dil: Vec<usize>,
    pb: Vec<i64>,
    out_sp: Vec<usize>,
}

/// Transposed convolution: GEMM into columns, then col2im scatter-add.
pub fn conv_transpose(
    a: &ConvAttrs,
    output_padding: &[usize],
    output_shape: &[usize],
    i: Inputs,
) -> EvalResult<Tensor> {
    let (x, w) = (i.req(0, "x")?, i.req(1, "w")?);
    let s = conv_shape(a, x, w, true)?;
    let t = transpose_geometry(a, output_padding, output_shape, &s)?;
    let xv = float_in(x, 0, "x")?;
    let wv = float_in(w, 1, "w")?;
    let r = x.rank() - 2;
    let inp = &s.geom.input;
    let k = &s.geom.kernel;
    let (cg, mg) = (s.c / s.group, s.m / s.group);
    let (in_n, kn, on) = (
        inp.iter().product::<usize>(),
        k.iter().product::<usize>(),
        t.out_sp.iter().product::<usize>(),
    );
    let mut out = vec![0f32; s.n * s.m * on];
    let mut ostr = vec![1usize; r];
    for d in (0..r.saturating_sub(1)).rev() {
        ostr[d] = ostr[d + 1] * t.out_sp[d + 1];
    }
    let scatter = Col2Im {
        geom: &t,
        inp,
        k,
        ostr: &ostr,
        mg,
        in_n,
        on,
    };
    crate::util::for_chunks(&mut out, (s.m * on).max(1), |n, o| {
        let mut col = vec![0f32; mg * kn * in_n];
        for gi in 0..s.group {
            let xg = &xv[(n * s.c + gi * cg) * in_n..(n * s.c + (gi + 1) * cg) * in_n];
            // W_g is [cg, mg*kn]; col = W_gᵀ · x_g : [mg*kn, in_n].
            let wg = &wv[gi * cg * mg * kn..(gi + 1) * cg * mg * kn];
            sgemm_strided(
                mg * kn,
                cg,
                in_n,
                Strided {
                    data: wg,
                    strides: (1, (mg * kn) as isize),
                },
                Strided::rows(xg, in_n),
                &mut col,
                false,
            );
            let og = &mut o[gi * mg * on..(gi + 1) * mg * on];
            if r == 1 || r == 2 {
                scatter.add_2d(&col, og);
            } else {
                scatter.add_nd(&col, og);
            }
        }
    });
    if let Some(b) = i.opt(2) {
        add_channel_bias(&mut out, b, s.m, on)?;
    }
    let mut shape = vec![s.n, s.m];
    shape.extend_from_slice(&t.out_sp);
    Ok(Tensor::from_f32(&shape, out)
        .expect("size")
        .into_dtype(x.dtype()))
}

/// Strides, dilations, pads and output extents of a transposed convolution, from its
/// attributes (explicit `output_shape` and SAME auto-padding override the pads).
fn transpose_geometry(
    a: &ConvAttrs,
    output_padding: &[usize],
    output_shape: &[usize],
    s: &ConvShape,
) -> EvalResult<TransposeGeom> {
    let inp = &s.geom.input;
    let k = &s.geom.kernel;
    let r = inp.len();
    let ones = vec![1usize; r];
    let pick = |v: &[usize], what: &str| -> EvalResult<Vec<usize>> {
        if v.is_empty() {
            Ok(ones.clone())
        } else if v.len() == r {
            Ok(v.to_vec())
        } else {
            Err(invalid!("{what} {v:?} does not fit {r} spatial axes"))
        }
    };
    let strides = pick(&a.strides, "strides")?;
    let dil = pick(&a.dilations, "dilations")?;
    let opad = if output_padding.is_empty() {
        vec![0; r]
    } else {
        output_padding.to_vec()
    };
    if opad.len() != r {
        return Err(invalid!(
            "output_padding {output_padding:?} does not fit {r} spatial axes"
        ));
    }
    // Pads may end up negative when output_shape asks for more than the full size.
    let (mut pb, mut pe): (Vec<i64>, Vec<i64>) = if a.pads.is_empty() {
        (vec![0; r], vec![0; r])
    } else if a.pads.len() == 2 * r {
        (
            a.pads[..r].iter().map(|&p| p as i64).collect(),
            a.pads[r..].iter().map(|&p| p as i64).collect(),
        )
    } else {
        return Err(invalid!("pads {:?} do not fit {r} spatial axes", a.pads));
    };
    let mut out_sp = vec![0usize; r];
    for d in 0..r {
        let ek = (k[d] - 1) * dil[d] + 1;
        let full = strides[d] * (inp[d].max(1) - 1) + opad[d] + ek;
        let target = if !output_shape.is_empty() {
            if output_shape.len() != r {
                return Err(invalid!(
                    "output_shape {output_shape:?} does not fit {r} spatial axes"
                ));
            }
            Some(output_shape[d])
        } else if matches!(a.auto_pad, AutoPad::SameUpper | AutoPad::SameLower) {
            Some(inp[d] * strides[d])
        } else {
            None
        };
        match target {
            Some(t) => {
                let total = full as i64 - t as i64;
                let half = total.div_euclid(2); // floor, as ONNX's reference computes it
                let (b, e) = if a.auto_pad == AutoPad::SameUpper {
                    (half, total - half)
                } else {
                    (total - half, half)
                };
                pb[d] = b;
                pe[d] = e;
                out_sp[d] = t;
            }
            None => {
                let o = full as i64 - pb[d] - pe[d];
                if o <= 0 {
                    return Err(invalid!("pads leave no output on spatial axis {d}"));
                }
                out_sp[d] = o as usize;
            }
        }
    }
    Ok(TransposeGeom {
        strides,
        dil,
        pb,
        out_sp,
    })
}

/// CausalConvWithState: (input [N, C, L], weight [C, 1, K], bias [C]?, past_state
/// [N, C, K-1]?) → (output, present_state). Each channel of `past_state ++ input` (zeros
/// for an absent state) is convolved with its own kernel without padding, in f32, plus the
/// bias, then SiLU when `silu`; present_state is the last K-1 positions of that sequence.
pub fn causal_conv_with_state(silu: bool, i: Inputs) -> EvalResult<Vec<Tensor>> {
    let x = i.req(0, "input")?;
    let w = i.req(1, "weight")?;
    let (n, c, l) = match *x.shape() {
        [n, c, l] => (n, c, l),
        _ => return Err(invalid!("input must be [N, C, L], got {:?}", x.shape())),
    };
    let k = match *w.shape() {
        [wc, 1, k] if wc == c && k > 0 => k,
        _ => {
            return Err(invalid!(
                "weight must be [C={c}, 1, K>0], got {:?}",
                w.shape()
            ))
        }
    };
    let s = k - 1;
    let mut parts = vec![];
    for (slot, what, shape) in [
        (1, "weight", vec![c, 1, k]),
        (2, "bias", vec![c]),
        (3, "past_state", vec![n, c, s]),
    ] {
        match i.opt(slot) {
            Some(t) if t.dtype() != x.dtype() || t.shape() != shape => {
                return Err(invalid!(
                    "{what} must be {:?}{shape:?}, got {:?}{:?}",
                    x.dtype(),
                    t.dtype(),
                    t.shape()
                ))
            }
            Some(t) => parts.push(Some(float_in(t, slot, what)?.into_owned())),
            None => parts.push(None),
        }
    }
    let xv = float_in(x, 0, "input")?;
    let wv = parts[0].as_deref().unwrap_or_default();
    let (bias, past) = (parts[1].as_deref(), parts[2].as_deref());
    let (mut out, mut state) = (vec![0f32; n * c * l], vec![0f32; n * c * s]);
    let mut seq = vec![0f32; s + l];
    for nc in 0..n * c {
        let ch = nc % c;
        match past {
            Some(p) => seq[..s].copy_from_slice(&p[nc * s..(nc + 1) * s]),
            None => seq[..s].fill(0.0),
        }
        seq[s..].copy_from_slice(&xv[nc * l..(nc + 1) * l]);
        let kern = &wv[ch * k..(ch + 1) * k];
        for (t, y) in out[nc * l..(nc + 1) * l].iter_mut().enumerate() {
            let mut acc = bias.map_or(0.0, |b| b[ch]);
            for (wj, xj) in kern.iter().zip(&seq[t..t + k]) {
                acc += wj * xj;
            }
            *y = if silu {
                acc / (1.0 + (-acc).exp())
            } else {
                acc
            };
        }
        state[nc * s..(nc + 1) * s].copy_from_slice(&seq[l..]);
    }
    Ok(vec![
        Tensor::from_f32(&[n, c, l], out)
            .expect("size")
            .into_dtype(x.dtype()),
        Tensor::from_f32(&[n, c, s], state)
            .expect("size")
            .into_dtype(x.dtype()),
    ])
}

/// The col2im scatter-add of one group: column rows `[mg*kn, in_n]` into its `mg` output
/// channels.
struct Col2Im<'a> {
    geom: &'a TransposeGeom,
    inp: &'a [usize],
    k: &'a [usize],
    /// Row-major strides of the output's spatial axes.
    ostr: &'a [usize],
    mg: usize,
    in_n: usize,
    on: usize,
}

impl Col2Im<'_> {
    /// The 1-D or 2-D scatter (1-D as 2-D of height 1): the same as [`Col2Im::add_nd`], in the
    /// same order, without per-element closures or bounds checks.
    fn add_2d(&self, col: &[f32], og: &mut [f32]) {
        let (g, in_n, on) = (self.geom, self.in_n, self.on);
        let (r, last) = (self.inp.len(), self.inp.len().saturating_sub(1));
        // The leading axis, or a height of 1 for one spatial axis.
        let lead = |v: &[usize], one: usize| if r == 2 { v[0] } else { one };
        let strides = [lead(&g.strides, 1), g.strides[last]];
        let dil = [lead(&g.dil, 1), g.dil[last]];
        let pb = [if r == 2 { g.pb[0] } else { 0 }, g.pb[last]];
        let ostr0 = lead(self.ostr, 0);
        let (ih, iw, kh, kw) = (
            lead(self.inp, 1),
            self.inp[last],
            lead(self.k, 1),
            self.k[last],
        );
        let (oh, ow) = (lead(&g.out_sp, 1) as i64, g.out_sp[last] as i64);
        for mo in 0..self.mg {
            for ky in 0..kh {
                for kx in 0..kw {
                    let row = (mo * kh + ky) * kw + kx;
                    let src = &col[row * in_n..(row + 1) * in_n];
                    // The inputs ix whose px = ix·s + kx·d − pb falls inside [0, ow), and the
                    // first such px: a strided run without per-element bounds checks.
                    let (s, off) = (strides[1] as i64, (kx * dil[1]) as i64 - pb[1]);
                    let first = if off >= 0 { 0 } else { (-off + s - 1) / s };
                    let end = if ow <= off { 0 } else { (ow - off + s - 1) / s };
                    let (first, end) = ((first as usize).min(iw), (end as usize).min(iw));
                    if first >= end {
                        continue;
                    }
                    let px0 = (first as i64 * s + off) as usize;
                    for iy in 0..ih {
                        let py = (iy * strides[0] + ky * dil[0]) as i64 - pb[0];
                        if py < 0 || py >= oh {
                            continue;
                        }
                        let orow = mo * on + py as usize * ostr0;
                        let dst = og[orow + px0..].iter_mut().step_by(s as usize);
                        for (o, &v) in dst.zip(&src[iy * iw + first..iy * iw + end]) {
                            *o += v;
                        }
                    }
                }
            }
        }
    }

    /// The scatter for any number of spatial axes.
    fn add_nd(&self, col: &[f32], og: &mut [f32]) {
        let (g, in_n, on) = (self.geom, self.in_n, self.on);
        let r = self.inp.len();
        let mut row = 0;
        for mo in 0..self.mg {
            for_each_index(self.k, |kk| {
                let src = &col[row * in_n..(row + 1) * in_n];
                let mut ii = 0;
                for_each_index(self.inp, |ix| {
                    let mut flat = mo * on;
                    let mut inside = true;
                    for d in 0..r {
                        let p = (ix[d] * g.strides[d] + kk[d] * g.dil[d]) as i64 - g.pb[d];
                        if p < 0 || p as usize >= g.out_sp[d] {
                            inside = false;
                            break;
                        }
                        flat += p as usize * self.ostr[d];
                    }
                    if inside {
                        og[flat] += src[ii];
                    }
                    ii += 1;
                });
                row += 1;
            });
        }
    }
}

/// Adds a per-output-channel bias `b` (`m` values) to NC… data with `on` values per channel.
fn add_channel_bias(out: &mut [f32], b: &Tensor, m: usize, on: usize) -> EvalResult<()> {
    if b.len() != m {
        return Err(invalid!(
            "bias has {} values, {} output channels",
            b.len(),
            m
        ));
    }
    let bv = float_in(b, 2, "bias")?;
    for (idx, ch) in out.chunks_mut(on.max(1)).enumerate() {
        let v = bv[idx % m];
        ch.iter_mut().for_each(|e| *e += v);
    }
    Ok(())
}

fn int8_in(t: &Tensor, slot: usize, what: &'static str) -> EvalResult<Vec<i32>> {
    if !matches!(t.dtype(), DType::U8 | DType::I8) {
        return Err(EvalError::DType {
            slot,
            what,
            got: t.dtype(),
            expected: "u8 or i8",
        });
    }
    Ok(t.to_i64_vec().into_iter().map(|v| v as i32).collect())
}

/// Zero points: per tensor (one value) or per `len` channels; must match `like`'s dtype.
fn zero_points(
    z: Option<&Tensor>,
    like: &Tensor,
    len: usize,
    slot: usize,
    what: &'static str,
) -> EvalResult<Vec<i32>> {
    match z {
        None => Ok(vec![0; len]),
        Some(z) => {
            if z.dtype() != like.dtype() {
                return Err(EvalError::DType {
                    slot,
                    what,
                    got: z.dtype(),
                    expected: "the quantized operand's dtype",
                });
            }
            let v: Vec<i32> = z.to_i64_vec().into_iter().map(|v| v as i32).collect();
            match v.len() {
                1 => Ok(vec![v[0]; len]),
                l if l == len => Ok(v),
                l => Err(invalid!("{what} has {l} values, expected 1 or {len}")),
            }
        }
    }
}

/// Integer convolution accumulators [N, M, out...] of (x - x_zp) * (w - w_zp).
fn conv_acc(
    a: &ConvAttrs,
    x: &Tensor,
    w: &Tensor,
    xzp: i32,
    wzp: &[i32],
) -> EvalResult<(Vec<i32>, Vec<usize>, usize)> {
    let s = conv_shape(a, x, w, false)?;
    let g = &s.geom;
    let xv: Vec<i32> = int8_in(x, 0, "x")?.into_iter().map(|v| v - xzp).collect();
    let wv = int8_in(w, 3, "w")?;
    let (in_n, on, kn) = (
        g.input.iter().product::<usize>(),
        g.output.iter().product::<usize>(),
        g.kernel.iter().product::<usize>(),
    );
    let (cg, mg) = (s.c / s.group, s.m / s.group);
    let wz: Vec<i32> = wv
        .iter()
        .enumerate()
        .map(|(k, &v)| v - wzp[k / (cg * kn)])
        .collect();
    let taps = g.taps();
    let mut out = vec![0i32; s.n * s.m * on];
    let mut col = vec![0i32; cg * kn * on];
    for n in 0..s.n {
        for gi in 0..s.group {
            let xg = &xv[(n * s.c + gi * cg) * in_n..(n * s.c + (gi + 1) * cg) * in_n];
            im2col(xg, cg, g, &taps, 0, &mut col);
            let wg = &wz[gi * mg * cg * kn..(gi + 1) * mg * cg * kn];
            let acc = igemm(mg, cg * kn, on, wg, &col);
            out[(n * s.m + gi * mg) * on..(n * s.m + (gi + 1) * mg) * on].copy_from_slice(&acc);
        }
    }
    let mut shape = vec![s.n, s.m];
    shape.extend_from_slice(&g.output);
    Ok((out, shape, s.m))
}

/// ConvInteger → i32.
pub fn conv_integer(a: &ConvAttrs, i: Inputs) -> EvalResult<Tensor> {
    let (x, w) = (i.req(0, "x")?, i.req(1, "w")?);
    let m = w.shape().first().copied().unwrap_or(0);
    let xzp = zero_points(i.opt(2), x, 1, 2, "x_zero_point")?[0];
    let wzp = zero_points(i.opt(3), w, m, 3, "w_zero_point")?;
    let (acc, shape, _) = conv_acc(a, x, w, xzp, &wzp)?;
    Ok(Tensor::from_i32(&shape, acc).expect("size"))
}

fn scales(t: &Tensor, len: usize, what: &str) -> EvalResult<Vec<f32>> {
    if !t.dtype().is_float() {
        return Err(invalid!("{what} must be a float tensor, got {}", t.dtype()));
    }
    let v = t.to_f32_vec();
    match v.len() {
        1 => Ok(vec![v[0]; len]),
        l if l == len => Ok(v),
        l => Err(invalid!("{what} has {l} values, expected 1 or {len}")),
    }
}

/// The canonical requantization: `clamp(round_half_even(f32(acc) * scale) + zp, lo, hi)`.
pub fn requantize(acc: i32, scale: f32, zp: i32, lo: i32, hi: i32) -> i32 {
    let v = (acc as f32 * scale).round_ties_even();
    let v = if v.is_nan() {
        0.0
    } else {
        v.clamp(-2147483648.0, 2147483520.0)
    };
    (v as i32).saturating_add(zp).clamp(lo, hi)
}

fn out_range(d: DType) -> EvalResult<(i32, i32)> {
    match d {
        DType::U8 => Ok((0, 255)),
        DType::I8 => Ok((-128, 127)),
        DType::F32 | DType::F16 | DType::F64 | DType::I32 | DType::I64 | DType::Bool => {
            Err(invalid!("output zero point must be u8 or i8, got {d}"))
        }
    }
}

/// QLinearConv: integer conv, i32 bias, requantize to the output zero point's dtype.
pub fn qlinear_conv(a: &ConvAttrs, i: Inputs) -> EvalResult<Tensor> {
    let x = i.req(0, "x")?;
    let w = i.req(3, "w")?;
    let m = w.shape().first().copied().unwrap_or(0);
    let xs = scales(i.req(1, "x_scale")?, 1, "x_scale")?[0];
    let xzp = zero_points(Some(i.req(2, "x_zero_point")?), x, 1, 2, "x_zero_point")?[0];
    let ws = scales(i.req(4, "w_scale")?, m, "w_scale")?;
    let wzp = zero_points(Some(i.req(5, "w_zero_point")?), w, m, 5, "w_zero_point")?;
    let ys = scales(i.req(6, "y_scale")?, 1, "y_scale")?[0];
    let yzt = i.req(7, "y_zero_point")?;
    let (lo, hi) = out_range(yzt.dtype())?;
    let yzp = yzt
        .to_i64_vec()
        .first()
        .copied()
        .ok_or_else(|| invalid!("empty y_zero_point"))? as i32;
    let (mut acc, shape, m) = conv_acc(a, x, w, xzp, &wzp)?;
    let on: usize = shape[2..].iter().product();
    if let Some(b) = i.opt(8) {
        let bv = b.as_i32().map_err(|_| EvalError::DType {
            slot: 8,
            what: "B",
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
            *v = v.wrapping_add(bv[(k / on.max(1)) % m]);
        }
    }
    let mult: Vec<f32> = ws.iter().map(|&w| (xs * w) / ys).collect();
    let out: Vec<i64> = acc
        .iter()
        .enumerate()
        .map(|(k, &v)| requantize(v, mult[(k / on.max(1)) % m], yzp, lo, hi) as i64)
        .collect();
    Ok(Tensor::from_i64(&shape, out)
        .expect("size")
        .into_dtype(yzt.dtype()))
}

/// Shapes of a numpy matmul: (batch shape, m, k, n, a batch index list, b batch index list,
/// output shape).
struct MatShape {
    m: usize,
    k: usize,
    n: usize,
    pairs: Vec<(usize, usize)>,
    out: Vec<usize>,
}

fn mat_shape(a: &[usize], b: &[usize]) -> EvalResult<MatShape> {
    if a.is_empty() || b.is_empty() {
        return Err(invalid!(
            "matmul operands must have rank >= 1, got {a:?} and {b:?}"
        ));
    }
    let a2: Vec<usize> = if a.len() == 1 {
        vec![1, a[0]]
    } else {
        a.to_vec()
    };
    let b2: Vec<usize> = if b.len() == 1 {
        vec![b[0], 1]
    } else {
        b.to_vec()
    };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (k2, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != k2 {
        return Err(invalid!("matmul inner dimensions differ: {a:?} x {b:?}"));
    }
    let (ab, bb) = (&a2[..a2.len() - 2], &b2[..b2.len() - 2]);
    let batch = broadcast_shapes(ab, bb)?;
    let ia = crate::util::broadcast_index(ab, &batch);
    let ib = crate::util::broadcast_index(bb, &batch);
    let pairs = if batch.is_empty() {
        vec![(0, 0)]
    } else {
        ia.into_iter().zip(ib).collect()
    };
    let mut out = batch.clone();
    if a.len() > 1 {
        out.push(m);
    }
    if b.len() > 1 {
        out.push(n);
    }
    Ok(MatShape {
        m,
        k,
        n,
        pairs,
        out,
    })
}

/// Float MatMul with numpy semantics.
pub fn matmul(a: &Tensor, b: &Tensor) -> EvalResult<Tensor> {
    let s = mat_shape(a.shape(), b.shape())?;
    if a.dtype() != b.dtype() {
        return Err(invalid!(
            "operands have different dtypes: {} and {}",
            a.dtype(),
            b.dtype()
        ));
    }
    let av = float_in(a, 0, "a")?;
    let bv = float_in(b, 1, "b")?;
    let (m, k, n) = (s.m, s.k, s.n);
    let mut out = vec![0f32; s.pairs.len() * m * n];
    let work = |(o, &(pa, pb)): (&mut [f32], &(usize, usize))| {
        sgemm(
            m,
            k,
            n,
            &av[pa * m * k..(pa + 1) * m * k],
            &bv[pb * k * n..(pb + 1) * k * n],
            o,
            false,
        );
    };
    if m * n > 0 {
        if s.pairs.len() > 1 && crate::util::threads() > 1 {
            out.par_chunks_mut(m * n)
                .zip(s.pairs.par_iter())
                .for_each(work);
        } else {
            out.chunks_mut(m * n).zip(s.pairs.iter()).for_each(work);
        }
    }
    Ok(Tensor::from_f32(&s.out, out)
        .expect("size")
        .into_dtype(a.dtype()))
}

/// Integer matmul accumulators with per-tensor/per-row a zero points and per-tensor/per-column
/// b zero points.
fn matmul_acc(
    a: &Tensor,
    b: &Tensor,
    azp: Option<&Tensor>,
    bzp: Option<&Tensor>,
) -> EvalResult<(Vec<i32>, MatShape)> {
    let s = mat_shape(a.shape(), b.shape())?;
    let av = int8_in(a, 0, "a")?;
    let bv = int8_in(b, 1, "b")?;
    let az = zero_points(azp, a, s.m, 2, "a_zero_point")?;
    let bz = zero_points(bzp, b, s.n, 3, "b_zero_point")?;
    let (m, k, n) = (s.m, s.k, s.n);
    let mut out = Vec::with_capacity(s.pairs.len() * m * n);
    for &(pa, pb) in &s.pairs {
        let x: Vec<i32> = av[pa * m * k..(pa + 1) * m * k]
            .iter()
            .enumerate()
            .map(|(i, &v)| v - az[i / k.max(1)])
            .collect();
        let y: Vec<i32> = bv[pb * k * n..(pb + 1) * k * n]
            .iter()
            .enumerate()
            .map(|(i, &v)| v - bz[i % n.max(1)])
            .collect();
        out.extend(igemm(m, k, n, &x, &y));
    }
    Ok((out, s))
}

/// MatMulInteger → i32.
pub fn matmul_integer(i: Inputs) -> EvalResult<Tensor> {
    let (acc, s) = matmul_acc(i.req(0, "a")?, i.req(1, "b")?, i.opt(2), i.opt(3))?;
    Ok(Tensor::from_i32(&s.out, acc).expect("size"))
}

/// QLinearMatMul: per-tensor a, per-tensor or per-column b, per-tensor y.
pub fn qlinear_matmul(i: Inputs) -> EvalResult<Tensor> {
    let (a, b) = (i.req(0, "a")?, i.req(3, "b")?);
    let n = b.shape().last().copied().unwrap_or(1);
    let as_ = scales(i.req(1, "a_scale")?, 1, "a_scale")?[0];
    let bs = scales(i.req(4, "b_scale")?, n, "b_scale")?;
    let ys = scales(i.req(6, "y_scale")?, 1, "y_scale")?[0];
    let yzt = i.req(7, "y_zero_point")?;
    let (lo, hi) = out_range(yzt.dtype())?;
    let yzp = yzt
        .to_i64_vec()
        .first()
        .copied()
        .ok_or_else(|| invalid!("empty y_zero_point"))? as i32;
    let (acc, s) = matmul_acc(
        a,
        b,
        Some(i.req(2, "a_zero_point")?),
        Some(i.req(5, "b_zero_point")?),
    )?;
    let mult: Vec<f32> = bs.iter().map(|&w| (as_ * w) / ys).collect();
    let out: Vec<i64> = acc
        .iter()
        .enumerate()
        .map(|(k, &v)| requantize(v, mult[k % s.n.max(1)], yzp, lo, hi) as i64)
        .collect();
    Ok(Tensor::from_i64(&s.out, out)
        .expect("size")
        .into_dtype(yzt.dtype()))
}

/// Gemm: alpha * op(A) · op(B) + beta * C, C broadcast to [M, N].
pub fn gemm(alpha: f32, beta: f32, ta: bool, tb: bool, i: Inputs) -> EvalResult<Tensor> {
    let (a, b) = (i.req(0, "a")?, i.req(1, "b")?);
    if a.rank() != 2 || b.rank() != 2 {
        return Err(invalid!(
            "gemm operands must be 2-D, got {:?} and {:?}",
            a.shape(),
            b.shape()
        ));
    }
    let (m, k) = if ta {
        (a.shape()[1], a.shape()[0])
    } else {
        (a.shape()[0], a.shape()[1])
    };
    let (k2, n) = if tb {
        (b.shape()[1], b.shape()[0])
    } else {
        (b.shape()[0], b.shape()[1])
    };
    if k != k2 {
        return Err(invalid!(
            "gemm inner dimensions differ: {:?} x {:?} (transA={ta}, transB={tb})",
            a.shape(),
            b.shape()
        ));
    }
    let av = float_in(a, 0, "a")?;
    let bv = float_in(b, 1, "b")?;
    let sa = if ta { (1, m as isize) } else { (k as isize, 1) };
    let sb = if tb { (1, k as isize) } else { (n as isize, 1) };
    let mut out = vec![0f32; m * n];
    let (sa, sb) = (
        Strided {
            data: &av,
            strides: sa,
        },
        Strided {
            data: &bv,
            strides: sb,
        },
    );
    sgemm_strided(m, k, n, sa, sb, &mut out, false);
    if alpha != 1.0 {
        out.iter_mut().for_each(|v| *v *= alpha);
    }
    if let Some(c) = i.opt(2) {
        let sh = broadcast_shapes(c.shape(), &[m, n])?;
        if sh != [m, n] {
            return Err(invalid!(
                "C of shape {:?} does not broadcast to [{m}, {n}]",
                c.shape()
            ));
        }
        let cv = float_in(c, 2, "c")?;
        let idx = crate::util::broadcast_index(c.shape(), &[m, n]);
        for (o, &j) in out.iter_mut().zip(&idx) {
            *o += beta * cv[j];
        }
    }
    Ok(Tensor::from_f32(&[m, n], out)
        .expect("size")
        .into_dtype(a.dtype()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_conv_with_state_by_hand() {
        // One channel, K = 2: y[t] = 1·prev + 10·x[t] + 0.5; state [7] then [x[1]].
        let x = Tensor::from_f32(&[1, 1, 2], vec![1.0, 2.0]).unwrap();
        let w = Tensor::from_f32(&[1, 1, 2], vec![1.0, 10.0]).unwrap();
        let b = Tensor::from_f32(&[1], vec![0.5]).unwrap();
        let past = Tensor::from_f32(&[1, 1, 1], vec![7.0]).unwrap();
        let ins = [Some(&x), Some(&w), Some(&b), Some(&past)];
        let y = causal_conv_with_state(false, Inputs::new(&ins)).unwrap();
        assert_eq!(y[0].to_f32_vec(), [17.5, 21.5]);
        assert_eq!(y[1].to_f32_vec(), [2.0]);
        let ins = [Some(&x), Some(&w), None, None];
        let y = causal_conv_with_state(false, Inputs::new(&ins)).unwrap();
        assert_eq!(y[0].to_f32_vec(), [10.0, 21.0]);
        let ins = [Some(&x), Some(&x), Some(&b), Some(&x)];
        assert!(
            causal_conv_with_state(true, Inputs::new(&ins)).is_err(),
            "state shape"
        );
    }

    /// A one-pixel conv (the defined-order path) against the sgemm path it replaced: per image
    /// `sgemm(M, C, 1, w, x)` then the bias, within 1e-5 of the sum of |w·x| and |bias|.
    #[test]
    fn one_pixel_conv_matches_sgemm_path() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut shapes: Vec<(usize, usize, usize, bool)> = vec![
            (1, 1, 1, false),
            (1, 1, 7, true),
            (3, 5, 1, true),
            (3, 1, 1, true),
            (1, 200, 50, true),
            (3, 50, 200, false),
        ];
        for _ in 0..60 {
            let r = next();
            let n = if r & 1 == 0 { 1 } else { 3 };
            let c = 1 + (next() % 97) as usize;
            let m = 1 + (next() % 97) as usize;
            shapes.push((n, c, m, r & 2 == 0));
        }
        for (n, c, m, with_bias) in shapes {
            let mut val = || ((next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0;
            let xv: Vec<f32> = (0..n * c).map(|_| val()).collect();
            let wv: Vec<f32> = (0..m * c).map(|_| val()).collect();
            let bv: Vec<f32> = (0..m).map(|_| val()).collect();
            let x = Tensor::from_f32(&[n, c, 1, 1], xv.clone()).unwrap();
            let w = Tensor::from_f32(&[m, c, 1, 1], wv.clone()).unwrap();
            let b = Tensor::from_f32(&[m], bv.clone()).unwrap();
            let ins = [Some(&x), Some(&w), with_bias.then_some(&b)];
            let got = conv(&ConvAttrs::default(), Inputs::new(&ins)).unwrap();
            assert_eq!(got.shape(), &[n, m, 1, 1]);
            // Strides do not matter for one pixel: the same path, the same bits.
            let strided = ConvAttrs {
                strides: vec![2, 3],
                ..ConvAttrs::default()
            };
            let again = conv(&strided, Inputs::new(&ins)).unwrap();
            assert_eq!(again.shape(), got.shape());
            let bits = |t: &Tensor| {
                t.as_f32()
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&again), bits(&got), "strided n={n} c={c} m={m}");
            let got = got.as_f32().unwrap();
            for i in 0..n {
                let mut want = vec![0f32; m];
                sgemm(m, c, 1, &wv, &xv[i * c..(i + 1) * c], &mut want, false);
                for o in 0..m {
                    let mut mag: f32 = (0..c).map(|k| (wv[o * c + k] * xv[i * c + k]).abs()).sum();
                    if with_bias {
                        want[o] += bv[o];
                        mag += bv[o].abs();
                    }
                    let g = got[i * m + o];
                    assert!(
                        (g - want[o]).abs() <= 1e-5 * mag.max(1.0),
                        "n={n} c={c} m={m} bias={with_bias}: [{i},{o}] {g} vs sgemm {}",
                        want[o]
                    );
                }
            }
        }
    }
}
