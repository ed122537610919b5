//! GridSample and AffineGrid: sampling an input at normalised coordinates, and the grid of an
//! affine transform. Both compute in f64.

use crate::shape_ops::for_each_index;
use crate::{invalid, EvalError, EvalResult};
use lpc_ir::{GridPadding, ResizeMode, Tensor};

/// The coordinate in elements of normalised `n` ∈ [-1, 1] along an axis of `len` elements.
fn denormalize(n: f64, len: usize, align_corners: bool) -> f64 {
    if align_corners {
        (n + 1.0) / 2.0 * (len as f64 - 1.0)
    } else {
        ((n + 1.0) * len as f64 - 1.0) / 2.0
    }
}

/// Mirrors `x` into `[lo, hi]` (repeatedly, as ONNX Runtime does).
fn reflect(x: f64, lo: f64, hi: f64) -> f64 {
    let range = hi - lo;
    if range <= 0.0 {
        return lo;
    }
    let fold = |d: f64| {
        let n = (d / range).trunc();
        (n, d - n * range)
    };
    if x < lo {
        let (n, r) = fold(lo - x);
        if n % 2.0 == 0.0 {
            lo + r
        } else {
            hi - r
        }
    } else if x > hi {
        let (n, r) = fold(x - hi);
        if n % 2.0 == 0.0 {
            hi - r
        } else {
            lo + r
        }
    } else {
        x
    }
}

/// The cubic convolution weights (A = −0.75) of the four taps around a point at fraction `t`.
fn cubic_weights(t: f64) -> [f64; 4] {
    let a = -0.75;
    let far = |x: f64| ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    let near = |x: f64| ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

/// GridSample: for every batch, channel and grid point, the input interpolated (`mode`) at the
/// point's denormalised coordinates; points outside read per `padding` (zeros: 0; border: the
/// coordinate clamped; reflection: mirrored at the borders, −0.5 and len − 0.5 or, with
/// `align_corners`, 0 and len − 1). Nearest rounds half to even.
pub fn grid_sample(
    mode: ResizeMode,
    padding: GridPadding,
    align_corners: bool,
    x: &Tensor,
    grid: &Tensor,
) -> EvalResult<Tensor> {
    let d = x.dtype();
    if !d.is_float() && !d.is_int() {
        return Err(EvalError::DType {
            slot: 0,
            what: "x",
            got: d,
            expected: "a numeric type",
        });
    }
    crate::util::want_float(grid, 1, "grid")?;
    let (xs, gs) = (x.shape(), grid.shape());
    let r = xs.len().saturating_sub(2);
    if xs.len() < 3 || gs.len() != xs.len() || gs[0] != xs[0] || gs[gs.len() - 1] != r {
        return Err(invalid!(
            "x {xs:?} and grid {gs:?} must be [N, C, *spatial] and [N, *out, {r}]"
        ));
    }
    let (n, c) = (xs[0], xs[1]);
    let spatial = &xs[2..];
    let out_sp = &gs[1..gs.len() - 1];
    let (in_len, out_len): (usize, usize) = (spatial.iter().product(), out_sp.iter().product());
    let istrides = crate::util::strides(spatial);
    let (xv, gv) = (x.to_f64_vec(), grid.to_f64_vec());
    let mut out = vec![0.0f64; n * c * out_len];
    // Per axis, the taps (index into the axis, weight) of one point.
    let mut taps: Vec<Vec<(Option<usize>, f64)>> = vec![vec![]; r];
    for b in 0..n {
        for p in 0..out_len {
            let g = &gv[(b * out_len + p) * r..][..r];
            for a in 0..r {
                let len = spatial[a];
                let (lo, hi) = if align_corners {
                    (0.0, len as f64 - 1.0)
                } else {
                    (-0.5, len as f64 - 0.5)
                };
                let mut v = denormalize(g[r - 1 - a], len, align_corners);
                if mode == ResizeMode::Nearest {
                    v = v.round_ties_even();
                }
                if v < lo || v > hi {
                    v = match padding {
                        GridPadding::Zeros => v,
                        GridPadding::Border => v.clamp(0.0, len as f64 - 1.0),
                        GridPadding::Reflection => reflect(v, lo, hi),
                    };
                }
                let index = |i: f64| -> Option<usize> {
                    let i = match padding {
                        GridPadding::Zeros => i,
                        GridPadding::Border => i.clamp(0.0, len as f64 - 1.0),
                        GridPadding::Reflection => reflect(i, lo, hi).trunc(),
                    };
                    (i >= 0.0 && i < len as f64).then_some(i as usize)
                };
                let f = v.floor();
                taps[a] = match mode {
                    ResizeMode::Nearest => vec![(index(v), 1.0)],
                    ResizeMode::Linear => {
                        vec![(index(f), 1.0 - (v - f)), (index(f + 1.0), v - f)]
                    }
                    ResizeMode::Cubic => cubic_weights(v - f)
                        .iter()
                        .enumerate()
                        .map(|(k, &w)| (index(f - 1.0 + k as f64), w))
                        .collect(),
                };
            }
            let counts: Vec<usize> = taps.iter().map(Vec::len).collect();
            for ch in 0..c {
                let base = (b * c + ch) * in_len;
                let mut sum = 0.0;
                for_each_index(&counts, |ix| {
                    let mut w = 1.0;
                    let mut at = base;
                    for a in 0..r {
                        let (i, wa) = taps[a][ix[a]];
                        match i {
                            Some(i) => at += i * istrides[a],
                            None => return,
                        }
                        w *= wa;
                    }
                    sum += w * xv[at];
                });
                out[(b * c + ch) * out_len + p] = sum;
            }
        }
    }
    let mut shape = vec![n, c];
    shape.extend(out_sp);
    Ok(Tensor::from_f64(&shape, out).expect("size").into_dtype(d))
}

/// AffineGrid: the normalised coordinates (x, y[, z]) of every output element of `size`
/// (N, C, *spatial), transformed by theta `[N, r, r+1]`: `theta · (x, y[, z], 1)`.
pub fn affine_grid(align_corners: bool, theta: &Tensor, size: &Tensor) -> EvalResult<Tensor> {
    let d = theta.dtype();
    if !d.is_float() {
        return Err(EvalError::DType {
            slot: 0,
            what: "theta",
            got: d,
            expected: "a float type",
        });
    }
    let size = crate::util::ints(size, "size")?;
    if !(size.len() == 4 || size.len() == 5) || size.iter().any(|&v| v < 0) {
        return Err(invalid!(
            "size {size:?} must be [N, C, H, W] or [N, C, D, H, W] with no negative entry"
        ));
    }
    let r = size.len() - 2;
    let n = size[0] as usize;
    if theta.shape() != [n, r, r + 1] {
        return Err(invalid!(
            "theta {:?} must be [{n}, {r}, {}] for size {size:?}",
            theta.shape(),
            r + 1
        ));
    }
    let spatial: Vec<usize> = size[2..].iter().map(|&v| v as usize).collect();
    let coord = |i: usize, len: usize| -> f64 {
        if align_corners {
            if len <= 1 {
                0.0
            } else {
                -1.0 + 2.0 * i as f64 / (len - 1) as f64
            }
        } else {
            (2.0 * i as f64 + 1.0) / len as f64 - 1.0
        }
    };
    let t = theta.to_f64_vec();
    let mut out = Vec::with_capacity(n * spatial.iter().product::<usize>() * r);
    for b in 0..n {
        let tb = &t[b * r * (r + 1)..][..r * (r + 1)];
        for_each_index(&spatial, |ix| {
            // The point (x, y[, z], 1): the spatial axes reversed.
            let mut pt: Vec<f64> = (0..r)
                .map(|k| coord(ix[r - 1 - k], spatial[r - 1 - k]))
                .collect();
            pt.push(1.0);
            for row in tb.chunks(r + 1) {
                out.push(row.iter().zip(&pt).map(|(a, b)| a * b).sum());
            }
        });
    }
    let mut shape = vec![n];
    shape.extend(&spatial);
    shape.push(r);
    Ok(Tensor::from_f64(&shape, out).expect("size").into_dtype(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f64(shape, v.iter().map(|&x| x as f64).collect())
            .expect("size")
            .into_dtype(lpc_ir::DType::F32)
    }

    #[test]
    fn grid_sample_interpolates_and_pads() {
        // 1x1x1x2 input [1, 2]; x coordinates -1, 0, 2 (no align_corners: -1 is the outer edge).
        let x = f32s(&[1, 1, 1, 2], &[1.0, 2.0]);
        let grid = f32s(&[1, 1, 3, 2], &[-1.0, 0.0, 0.0, 0.0, 2.0, 0.0]);
        let lin = grid_sample(ResizeMode::Linear, GridPadding::Zeros, false, &x, &grid).unwrap();
        // -1 → -0.5: half of x[0]; 0 → 0.5: the mean; 2 → 2.5: outside.
        assert_eq!(lin.to_f64_vec(), [0.5, 1.5, 0.0]);
        let border =
            grid_sample(ResizeMode::Linear, GridPadding::Border, false, &x, &grid).unwrap();
        assert_eq!(border.to_f64_vec(), [1.0, 1.5, 2.0]);
        // Nearest rounds half to even: 0.5 → 0.
        let near = grid_sample(ResizeMode::Nearest, GridPadding::Zeros, false, &x, &grid).unwrap();
        assert_eq!(near.to_f64_vec(), [1.0, 1.0, 0.0]);
        let bad = f32s(&[1, 1, 3, 3], &[0.0; 9]);
        assert!(grid_sample(ResizeMode::Linear, GridPadding::Zeros, false, &x, &bad).is_err());
    }

    #[test]
    fn reflect_mirrors_repeatedly() {
        assert_eq!(reflect(-0.25, 0.0, 1.0), 0.25);
        assert_eq!(reflect(1.25, 0.0, 1.0), 0.75);
        assert_eq!(reflect(2.25, 0.0, 1.0), 0.25);
    }

    #[test]
    fn affine_grid_identity() {
        let theta = f32s(&[1, 2, 3], &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        let size = Tensor::vec_i64(&[1, 1, 1, 2]);
        let g = affine_grid(true, &theta, &size).unwrap();
        assert_eq!(g.shape(), [1, 1, 2, 2]);
        assert_eq!(g.to_f64_vec(), [-1.0, 0.0, 1.0, 0.0]);
        let g = affine_grid(false, &theta, &size).unwrap();
        assert_eq!(g.to_f64_vec(), [-0.5, 0.0, 0.5, 0.0]);
        assert!(affine_grid(false, &theta, &Tensor::vec_i64(&[1, 1, 2])).is_err());
    }
}
