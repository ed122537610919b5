//! Max, average and global pooling over 1–3 (or more) spatial axes, and MaxUnpool.

use crate::geom::geometry;
use crate::shape_ops::for_each_index;
use crate::{invalid, EvalError, EvalResult};
use lpc_ir::{DType, PoolAttrs, Tensor};
use rayon::prelude::*;

fn check(x: &Tensor, p: &PoolAttrs) -> EvalResult<crate::geom::Geom> {
    if x.rank() < 3 {
        return Err(invalid!(
            "pooling input must have rank >= 3, got {:?}",
            x.shape()
        ));
    }
    geometry(
        &x.shape()[2..],
        &p.kernel,
        &p.strides,
        &p.dilations,
        &p.pads,
        p.auto_pad,
        p.ceil_mode,
    )
}

/// MaxPool; the optional second output holds i64 flat indices (storage_order 0: row-major).
pub fn max_pool(
    p: &PoolAttrs,
    storage_order: i64,
    x: &Tensor,
    n_outputs: usize,
) -> EvalResult<Vec<Tensor>> {
    let g = check(x, p)?;
    let d = x.dtype();
    if d == DType::Bool || d == DType::I32 || d == DType::I64 {
        return Err(EvalError::DType {
            slot: 0,
            what: "x",
            got: d,
            expected: "a float type, u8 or i8",
        });
    }
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let taps = g.taps();
    if let (2, 1) = (g.input.len(), n_outputs) {
        // The common case: 2-D, no indices (f32 NaN wins, as in the general path's f64).
        let mut shape = vec![n, c];
        shape.extend_from_slice(&g.output);
        let t = match x.data() {
            lpc_ir::TensorData::F32(v) => {
                let out = max_pool_2d(v, &g, &taps, n * c, f32::NEG_INFINITY, |e, d| {
                    e > d || e.is_nan()
                });
                Tensor::from_f32(&shape, out)
            }
            lpc_ir::TensorData::U8(v) => {
                Tensor::from_u8(&shape, max_pool_2d(v, &g, &taps, n * c, 0, |e, d| e > d))
            }
            lpc_ir::TensorData::I8(v) => Tensor::from_i8(
                &shape,
                max_pool_2d(v, &g, &taps, n * c, i8::MIN, |e, d| e > d),
            ),
            _ => return max_pool_nd(storage_order, x, n_outputs, &g, &taps),
        };
        return Ok(vec![t.expect("size")]);
    }
    max_pool_nd(storage_order, x, n_outputs, &g, &taps)
}

/// 2-D max pooling without indices over `planes` planes of `v`, starting from `init` (the
/// smallest value; a window always has a tap), `wins(e, best)` deciding when `e` replaces it.
fn max_pool_2d<T: Copy + Send + Sync>(
    v: &[T],
    g: &crate::geom::Geom,
    taps: &[Vec<Vec<Option<usize>>>],
    planes: usize,
    init: T,
    wins: impl Fn(T, T) -> bool + Sync,
) -> Vec<T> {
    let in_n: usize = g.input.iter().product();
    let on: usize = g.output.iter().product();
    let (iw, ow) = (g.input[1], g.output[1]);
    let mut out = vec![init; planes * on];
    crate::util::for_chunks(&mut out, on.max(1), |nc, o| {
        let xc = &v[nc * in_n..(nc + 1) * in_n];
        for ty in &taps[0] {
            for (oy, iy) in ty.iter().enumerate() {
                let Some(iy) = iy else { continue };
                let row = &xc[iy * iw..(iy + 1) * iw];
                let dst = &mut o[oy * ow..(oy + 1) * ow];
                for tx in &taps[1] {
                    for (d, ix) in dst.iter_mut().zip(tx) {
                        if let Some(ix) = ix {
                            let e = row[*ix];
                            if wins(e, *d) {
                                *d = e;
                            }
                        }
                    }
                }
            }
        }
    });
    out
}

/// MaxPool of any rank and dtype, with indices (through f64).
fn max_pool_nd(
    storage_order: i64,
    x: &Tensor,
    n_outputs: usize,
    g: &crate::geom::Geom,
    taps: &[Vec<Vec<Option<usize>>>],
) -> EvalResult<Vec<Tensor>> {
    let d = x.dtype();
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let in_n: usize = g.input.iter().product();
    let on: usize = g.output.iter().product();
    let v = x.to_f64_vec();
    let r = g.input.len();
    let mut istr = vec![1usize; r];
    for a in (0..r.saturating_sub(1)).rev() {
        istr[a] = istr[a + 1] * g.input[a + 1];
    }
    // Column-major index strides over the full (spatial) input for storage_order 1.
    let mut cstr = vec![1usize; r];
    for a in 1..r {
        cstr[a] = cstr[a - 1] * g.input[a - 1];
    }
    let mut vals = vec![0f64; n * c * on];
    let mut idxs = vec![0i64; n * c * on];
    let plane = |(nc, (vo, io)): (usize, (&mut [f64], &mut [i64]))| {
        let base = nc * in_n;
        let mut o = 0;
        for_each_index(&g.output, |oo| {
            let mut best = f64::NEG_INFINITY;
            let mut best_i = 0usize;
            let mut best_c = 0usize;
            let mut any = false;
            for_each_index(&g.kernel, |kk| {
                let mut flat = 0;
                let mut cflat = 0;
                for a in 0..r {
                    match taps[a][kk[a]][oo[a]] {
                        Some(i) => {
                            flat += i * istr[a];
                            cflat += i * cstr[a];
                        }
                        None => return,
                    }
                }
                let e = v[base + flat];
                if !any || e > best {
                    best = e;
                    best_i = flat;
                    best_c = cflat;
                    any = true;
                }
            });
            vo[o] = best;
            io[o] = (nc * in_n + if storage_order == 1 { best_c } else { best_i }) as i64;
            o += 1;
        });
    };
    let on1 = on.max(1);
    if crate::util::threads() > 1 {
        vals.par_chunks_mut(on1)
            .zip(idxs.par_chunks_mut(on1))
            .enumerate()
            .for_each(plane);
    } else {
        vals.chunks_mut(on1)
            .zip(idxs.chunks_mut(on1))
            .enumerate()
            .for_each(plane);
    }
    let mut shape = vec![n, c];
    shape.extend_from_slice(&g.output);
    let mut outs = vec![Tensor::from_f64(&shape, vals).expect("size").into_dtype(d)];
    if n_outputs > 1 {
        outs.push(Tensor::from_i64(&shape, idxs).expect("size"));
    }
    Ok(outs)
}

/// AveragePool (count_include_pad counts padding, but not the ceil_mode overhang).
pub fn average_pool(p: &PoolAttrs, count_include_pad: bool, x: &Tensor) -> EvalResult<Tensor> {
    let g = check(x, p)?;
    if g.input.len() == 2 && x.dtype().is_float() {
        return Ok(average_pool_2d(x, &g, count_include_pad));
    }
    float_pool(x, p, |window| window_average(window, count_include_pad))
}

/// The average of one window of [`float_pool`] (0 when nothing counts).
fn window_average(window: &[(Option<f64>, bool)], count_include_pad: bool) -> f64 {
    let (mut sum, mut valid, mut padded) = (0.0, 0usize, 0usize);
    for &(v, in_pad_region) in window {
        padded += usize::from(in_pad_region);
        if let Some(v) = v {
            sum += v;
            valid += 1;
        }
    }
    let div = if count_include_pad { padded } else { valid };
    if div == 0 {
        0.0
    } else {
        sum / div as f64
    }
}

/// [`average_pool`] over two spatial axes: the same f64 sums in kernel order and the same
/// divisor as the generic window walk, without building the windows.
fn average_pool_2d(x: &Tensor, g: &crate::geom::Geom, count_include_pad: bool) -> Tensor {
    let v = x.to_f64_vec();
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let (in_n, on) = (g.input[0] * g.input[1], g.output[0] * g.output[1]);
    let (iw, ow) = (g.input[1], g.output[1]);
    let taps = g.taps();
    // Per axis, tap and output: inside the padded region (not the ceil_mode overhang).
    let inside: Vec<Vec<Vec<bool>>> = (0..2)
        .map(|a| {
            (0..g.kernel[a])
                .map(|k| {
                    (0..g.output[a])
                        .map(|o| {
                            o * g.strides[a] + k * g.dilations[a]
                                < g.pad_begin[a] + g.input[a] + g.pad_end[a]
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let mut out = vec![0f64; n * c * on];
    crate::util::for_chunks(&mut out, on.max(1), |nc, oc| {
        let xc = &v[nc * in_n..(nc + 1) * in_n];
        for (oy, orow) in oc.chunks_exact_mut(ow.max(1)).enumerate() {
            for (ox, o) in orow.iter_mut().enumerate() {
                let (mut sum, mut valid, mut padded) = (0.0, 0usize, 0usize);
                for (ty, iny) in taps[0].iter().zip(&inside[0]) {
                    for (tx, inx) in taps[1].iter().zip(&inside[1]) {
                        padded += usize::from(iny[oy] && inx[ox]);
                        if let (Some(iy), Some(ix)) = (ty[oy], tx[ox]) {
                            sum += xc[iy * iw + ix];
                            valid += 1;
                        }
                    }
                }
                let div = if count_include_pad { padded } else { valid };
                *o = if div == 0 { 0.0 } else { sum / div as f64 };
            }
        }
    });
    let mut shape = vec![n, c];
    shape.extend_from_slice(&g.output);
    Tensor::from_f64(&shape, out)
        .expect("size")
        .into_dtype(x.dtype())
}

/// LpPool: `(Σ |x|^p)^(1/p)` over each window (in f64), padded positions counting as 0.
pub fn lp_pool(pool: &PoolAttrs, p: i64, x: &Tensor) -> EvalResult<Tensor> {
    let p = i32::try_from(p)
        .ok()
        .filter(|&p| p >= 1)
        .ok_or_else(|| invalid!("LpPool p must be at least 1, got {p}"))?;
    float_pool(x, pool, |window| {
        let sum: f64 = window
            .iter()
            .filter_map(|&(v, _)| v)
            .map(|v| v.abs().powi(p))
            .sum();
        sum.powf(1.0 / f64::from(p))
    })
}

/// A float pool in f64: each output is `reduce` of its window's taps in kernel order, each
/// `(value, in the padded region)`: the value is `None` at a padding position or in the
/// ceil_mode overhang, and only the overhang is outside the padded region.
fn float_pool(
    x: &Tensor,
    p: &PoolAttrs,
    reduce: impl Fn(&[(Option<f64>, bool)]) -> f64 + Sync + Send,
) -> EvalResult<Tensor> {
    let g = check(x, p)?;
    crate::util::want_float(x, 0, "x")?;
    let v = x.to_f64_vec();
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let in_n: usize = g.input.iter().product();
    let on: usize = g.output.iter().product();
    let taps = g.taps();
    let r = g.input.len();
    let mut istr = vec![1usize; r];
    for a in (0..r.saturating_sub(1)).rev() {
        istr[a] = istr[a + 1] * g.input[a + 1];
    }
    let mut out = vec![0f64; n * c * on];
    crate::util::for_chunks(&mut out, on.max(1), |nc, oc| {
        let base = nc * in_n;
        let mut o = 0;
        let mut window = vec![];
        for_each_index(&g.output, |oo| {
            window.clear();
            for_each_index(&g.kernel, |kk| {
                let mut flat = Some(0);
                let mut in_pad_region = true;
                for a in 0..r {
                    let pos = (oo[a] * g.strides[a] + kk[a] * g.dilations[a]) as i64
                        - g.pad_begin[a] as i64;
                    if pos >= (g.input[a] + g.pad_end[a]) as i64 {
                        in_pad_region = false;
                    }
                    flat = flat
                        .zip(taps[a][kk[a]][oo[a]])
                        .map(|(f, i)| f + i * istr[a]);
                }
                window.push((flat.map(|f| v[base + f]), in_pad_region));
            });
            oc[o] = reduce(&window);
            o += 1;
        });
    });
    let mut shape = vec![n, c];
    shape.extend_from_slice(&g.output);
    Ok(Tensor::from_f64(&shape, out)
        .expect("size")
        .into_dtype(x.dtype()))
}

/// GlobalMaxPool / GlobalAveragePool: reduce all spatial axes, keeping them as size 1.
pub fn global_pool(max: bool, x: &Tensor) -> EvalResult<Tensor> {
    if x.rank() < 3 {
        return Err(invalid!(
            "global pooling input must have rank >= 3, got {:?}",
            x.shape()
        ));
    }
    crate::util::want_float(x, 0, "x")?;
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let sp: usize = x.shape()[2..].iter().product();
    let mut shape = vec![n, c];
    shape.extend(std::iter::repeat_n(1, x.rank() - 2));
    let reduce = |ch: &[f32]| -> f32 {
        if max {
            // NaN propagates (sticks once seen), as MaxPool's windows.
            ch.iter().fold(
                f32::NEG_INFINITY,
                |m, &e| if e > m || e.is_nan() { e } else { m },
            )
        } else {
            (ch.iter().map(|&e| e as f64).sum::<f64>() / sp as f64) as f32
        }
    };
    if let Ok(v) = x.as_f32() {
        let out: Vec<f32> = if sp == 0 {
            vec![0.0; n * c]
        } else {
            v.chunks(sp).map(reduce).collect()
        };
        return Ok(Tensor::from_f32(&shape, out).expect("size"));
    }
    let v = x.to_f32_vec();
    let out: Vec<f32> = if sp == 0 {
        vec![0.0; n * c]
    } else {
        v.chunks(sp).map(reduce).collect()
    };
    Ok(Tensor::from_f32(&shape, out)
        .expect("size")
        .into_dtype(x.dtype()))
}

/// MaxUnpool: a zero tensor of `output_shape` (or the window attributes' default shape,
/// [`lpc_ir::max_unpool_shape`]) with `y.flat[indices[i]] = x.flat[i]`, later entries
/// winning; an index outside y is an error.
pub fn max_unpool(
    kernel: &[usize],
    pads: &[usize],
    strides: &[usize],
    x: &Tensor,
    indices: &Tensor,
    output_shape: Option<&Tensor>,
) -> EvalResult<Tensor> {
    let xv = crate::util::float_in(x, 0, "x")?;
    if indices.dtype() != DType::I64 || indices.shape() != x.shape() {
        return Err(invalid!(
            "indices must be i64 of x's shape {:?}, got {:?}{:?}",
            x.shape(),
            indices.dtype(),
            indices.shape()
        ));
    }
    let default =
        lpc_ir::max_unpool_shape(x.shape(), kernel, pads, strides).map_err(|e| invalid!("{e}"))?;
    let shape = match output_shape {
        None => default,
        Some(t) => {
            let s = crate::util::ints(t, "output_shape")?;
            if s.len() != x.rank() || s.iter().any(|&v| v < 0) {
                return Err(invalid!(
                    "output_shape {s:?} must have x's rank {} and no negative dims",
                    x.rank()
                ));
            }
            s.iter().map(|&v| v as usize).collect()
        }
    };
    let mut out = vec![0f32; shape.iter().product()];
    for (&v, &k) in xv.iter().zip(&indices.to_i64_vec()) {
        let slot = usize::try_from(k).ok().and_then(|k| out.get_mut(k));
        match slot {
            Some(y) => *y = v,
            None => {
                return Err(invalid!(
                    "index {k} is outside the output of shape {shape:?}"
                ))
            }
        }
    }
    Ok(Tensor::from_f32(&shape, out)
        .expect("size")
        .into_dtype(x.dtype()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_unpool_scatters_into_default_or_given_shape() {
        let x = Tensor::from_f32(&[1, 1, 2], vec![5.0, 6.0]).unwrap();
        let ind = Tensor::from_i64(&[1, 1, 2], vec![1, 2]).unwrap();
        // Default length (2 - 1) · 2 + 2 = 4.
        let y = max_unpool(&[2], &[], &[2], &x, &ind, None).unwrap();
        assert_eq!(y.shape(), [1, 1, 4]);
        assert_eq!(y.to_f32_vec(), [0.0, 5.0, 6.0, 0.0]);
        let shape = Tensor::from_i64(&[3], vec![1, 1, 5]).unwrap();
        let y = max_unpool(&[2], &[], &[2], &x, &ind, Some(&shape)).unwrap();
        assert_eq!(y.to_f32_vec(), [0.0, 5.0, 6.0, 0.0, 0.0]);
        let bad = Tensor::from_i64(&[1, 1, 2], vec![1, 4]).unwrap();
        assert!(
            max_unpool(&[2], &[], &[2], &x, &bad, None).is_err(),
            "index 4 of 4"
        );
        assert!(
            max_unpool(&[2, 2], &[], &[], &x, &ind, None).is_err(),
            "kernel rank"
        );
    }

    fn attrs(kernel: &[usize], strides: &[usize], pads: &[usize]) -> PoolAttrs {
        PoolAttrs {
            kernel: kernel.to_vec(),
            strides: strides.to_vec(),
            pads: pads.to_vec(),
            dilations: vec![],
            ceil_mode: false,
            auto_pad: lpc_ir::AutoPad::NotSet,
        }
    }

    #[test]
    fn average_pool_2d_matches_the_generic_window_walk() {
        let mut seed = 7u32;
        let x: Vec<f32> = (0..2 * 3 * 9 * 11)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
            })
            .collect();
        let x = Tensor::from_f32(&[2, 3, 9, 11], x).unwrap();
        for (kernel, strides, pads, dil, ceil) in [
            ([3, 3], [1, 1], [1, 1, 1, 1], [1, 1], false),
            ([2, 3], [2, 2], [0, 1, 1, 0], [1, 1], true),
            ([3, 2], [2, 3], [1, 0, 0, 1], [2, 1], true),
            ([9, 11], [1, 1], [0, 0, 0, 0], [1, 1], false),
        ] {
            let mut p = attrs(&kernel, &strides, &pads);
            p.dilations = dil.to_vec();
            p.ceil_mode = ceil;
            for include in [false, true] {
                let fast = average_pool(&p, include, &x).unwrap();
                let walk = float_pool(&x, &p, |w| window_average(w, include)).unwrap();
                assert_eq!(fast.shape(), walk.shape());
                assert_eq!(
                    fast.to_f32_vec(),
                    walk.to_f32_vec(),
                    "{kernel:?} {strides:?}"
                );
            }
        }
    }

    #[test]
    fn lp_pool_windows_padding_and_orders() {
        // [1, 1, 4]: windows of 2, stride 2 → |3|,|-4| and |1|,|0|.
        let x = Tensor::from_f32(&[1, 1, 4], vec![3.0, -4.0, 1.0, 0.0]).unwrap();
        let run = |a: &PoolAttrs, p| lp_pool(a, p, &x).unwrap().to_f32_vec();
        assert_eq!(run(&attrs(&[2], &[2], &[]), 2), [5.0, 1.0]);
        assert_eq!(run(&attrs(&[2], &[2], &[]), 1), [7.0, 1.0]);
        // Padding 1 on each side, window 2 stride 3: the pads add nothing.
        assert_eq!(run(&attrs(&[2], &[3], &[1, 1]), 1), [3.0, 1.0]);
        let y = run(&attrs(&[4], &[1], &[]), 3);
        assert!((y[0] - 92f32.cbrt()).abs() < 1e-5, "{y:?}");
        assert!(lp_pool(&attrs(&[2], &[2], &[]), 0, &x).is_err(), "p = 0");
        let xi = Tensor::from_i64(&[1, 1, 2], vec![1, 2]).unwrap();
        assert!(
            lp_pool(&attrs(&[2], &[], &[]), 2, &xi).is_err(),
            "integer x"
        );
    }
}
