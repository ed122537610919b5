//! Resize: nearest, linear and cubic over any axes, every coordinate transformation, applied
//! one axis at a time (the interpolation kernels are separable). Coordinates in f64.

use crate::util::ints;
use crate::{invalid, EvalError, EvalResult, Inputs};
use lpc_ir::{AspectPolicy, CoordTransform, NearestMode, ResizeAttrs, ResizeMode, Tensor};

/// Per output position of one axis: the (input index, weight) taps, or `None` for
/// tf_crop_and_resize extrapolation.
type AxisTaps = Vec<Option<Vec<(usize, f64)>>>;

fn cubic_weight(x: f64, a: f64) -> f64 {
    let x = x.abs();
    if x <= 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    } else {
        0.0
    }
}

fn axis_taps(
    a: &ResizeAttrs,
    in_len: usize,
    out_len: usize,
    scale: f64,
    roi: (f64, f64),
) -> AxisTaps {
    let inl = in_len as f64;
    // ONNX computes coordinates with the unrounded resized length in * scale.
    let lr = inl * scale;
    (0..out_len)
        .map(|o| {
            let x = o as f64;
            let src = match a.coord {
                CoordTransform::HalfPixel => (x + 0.5) / scale - 0.5,
                CoordTransform::HalfPixelSymmetric => {
                    let adj = out_len as f64 / lr;
                    let center = inl / 2.0;
                    let offset = center * (1.0 - adj);
                    offset + (x + 0.5) / scale - 0.5
                }
                CoordTransform::PytorchHalfPixel => {
                    if out_len > 1 {
                        (x + 0.5) / scale - 0.5
                    } else {
                        0.0
                    }
                }
                CoordTransform::AlignCorners => {
                    if out_len == 1 || lr == 1.0 {
                        0.0
                    } else {
                        x * (inl - 1.0) / (lr - 1.0)
                    }
                }
                CoordTransform::Asymmetric => x / scale,
                CoordTransform::TfCropAndResize => {
                    if out_len > 1 {
                        roi.0 * (inl - 1.0)
                            + x * (roi.1 - roi.0) * (inl - 1.0) / (out_len as f64 - 1.0)
                    } else {
                        0.5 * (roi.0 + roi.1) * (inl - 1.0)
                    }
                }
            };
            if a.coord == CoordTransform::TfCropAndResize && (src < 0.0 || src > inl - 1.0) {
                return None;
            }
            let last = in_len as i64 - 1;
            Some(match a.mode {
                ResizeMode::Nearest => {
                    let i = match a.nearest {
                        NearestMode::RoundPreferFloor => {
                            if src.fract() == 0.5 {
                                src.floor()
                            } else {
                                src.round()
                            }
                        }
                        NearestMode::RoundPreferCeil => {
                            if src.fract() == 0.5 {
                                src.ceil()
                            } else {
                                src.round()
                            }
                        }
                        NearestMode::Floor => src.floor(),
                        NearestMode::Ceil => src.ceil(),
                    };
                    vec![((i as i64).clamp(0, last) as usize, 1.0)]
                }
                ResizeMode::Linear | ResizeMode::Cubic if a.antialias && scale < 1.0 => {
                    // Filter stretched by 1/scale, weights renormalised.
                    let support = if a.mode == ResizeMode::Linear {
                        1.0
                    } else {
                        2.0
                    } / scale;
                    let lo = (src - support).floor() as i64 + 1;
                    let hi = (src + support).ceil() as i64 - 1;
                    let mut taps = vec![];
                    for i in lo..=hi {
                        let d = (i as f64 - src) * scale;
                        let w = if a.mode == ResizeMode::Linear {
                            (1.0 - d.abs()).max(0.0)
                        } else {
                            cubic_weight(d, a.cubic_a as f64)
                        };
                        if w == 0.0 {
                            continue;
                        }
                        if (i < 0 || i > last) && a.exclude_outside {
                            continue;
                        }
                        taps.push((i.clamp(0, last) as usize, w));
                    }
                    let s: f64 = taps.iter().map(|t| t.1).sum();
                    taps.iter().map(|&(i, w)| (i, w / s)).collect()
                }
                ResizeMode::Linear => {
                    let s = src.clamp(0.0, inl - 1.0);
                    let i0 = s.floor();
                    let f = s - i0;
                    let i0 = i0 as i64;
                    let i1 = (i0 + 1).min(last);
                    vec![(i0 as usize, 1.0 - f), (i1 as usize, f)]
                }
                ResizeMode::Cubic => {
                    let i0 = src.floor();
                    let f = src - i0;
                    let i0 = i0 as i64;
                    let mut taps = vec![];
                    for k in -1..=2i64 {
                        let w = cubic_weight(k as f64 - f, a.cubic_a as f64);
                        let i = i0 + k;
                        if (i < 0 || i > last) && a.exclude_outside {
                            continue;
                        }
                        taps.push((i.clamp(0, last) as usize, w));
                    }
                    if a.exclude_outside {
                        let s: f64 = taps.iter().map(|t| t.1).sum();
                        taps = taps.iter().map(|&(i, w)| (i, w / s)).collect();
                    }
                    taps
                }
            })
        })
        .collect()
}

/// Nearest sampling as a gather: output element `(i0, …, ir)` is input element
/// `(maps[0][i0], …, maps[r][ir])`. Row by row over the last axis; an output row reading the
/// same input row as the one before (upsampling) is a copy of it.
fn gather_nearest<T: Copy>(x: &[T], shape: &[usize], maps: &[Vec<usize>]) -> Vec<T> {
    let Some((last, outer)) = maps.split_last() else {
        return x.to_vec();
    };
    let st = crate::util::strides(shape);
    let outer_shape: Vec<usize> = outer.iter().map(Vec::len).collect();
    let ow = last.len();
    let mut out = Vec::with_capacity(outer_shape.iter().product::<usize>() * ow);
    let mut prev = None;
    crate::shape_ops::for_each_index(&outer_shape, |ix| {
        let src: usize = ix
            .iter()
            .zip(outer)
            .zip(&st)
            .map(|((&i, m), &s)| m[i] * s)
            .sum();
        if prev == Some(src) {
            let start = out.len() - ow;
            out.extend_from_within(start..start + ow);
        } else {
            let row = &x[src..];
            out.extend(last.iter().map(|&si| row[si]));
        }
        prev = Some(src);
    });
    out
}

/// Resize.
pub fn resize(a: &ResizeAttrs, i: Inputs) -> EvalResult<Tensor> {
    let x = i.req(0, "x")?;
    if !x.dtype().is_float() && !matches!(x.dtype(), lpc_ir::DType::U8 | lpc_ir::DType::I8) {
        return Err(EvalError::DType {
            slot: 0,
            what: "x",
            got: x.dtype(),
            expected: "a float type, u8 or i8",
        });
    }
    let r = x.rank();
    let axes: Vec<usize> = if a.axes.is_empty() {
        (0..r).collect()
    } else {
        a.axes
            .iter()
            .map(|&ax| crate::util::norm_axis(ax, r))
            .collect::<EvalResult<_>>()?
    };
    let t = target(a, x, &axes, i.opt(2), i.opt(3))?;
    let n: usize = t.out_shape.iter().product();
    if n > (1 << 31) {
        return Err(invalid!("output shape {:?} is too large", t.out_shape));
    }
    let roi = Roi {
        values: i.opt(1).filter(|t| !t.is_empty()).map(|t| t.to_f64_vec()),
        axes: &axes,
        rank: r,
    };
    if x.shape().contains(&0) && n > 0 {
        return Err(invalid!("cannot resize an empty axis"));
    }
    // Nearest sampling (every output element reads one input element with weight 1): a
    // gather in the input's own dtype, no f64 round trip (upsampling in FPNs).
    if a.mode == ResizeMode::Nearest && a.coord != CoordTransform::TfCropAndResize && n > 0 {
        if let Some(out) = nearest_gather(a, x, &t, &roi)? {
            return Ok(out);
        }
    }
    let (cur, shape) = resample(a, x, &t, &roi)?;
    let d = x.dtype();
    if d.is_int() {
        let v: Vec<i64> = cur.iter().map(|&e| e.round_ties_even() as i64).collect();
        let (lo, hi) = if d == lpc_ir::DType::U8 {
            (0, 255)
        } else {
            (-128, 127)
        };
        return Ok(
            Tensor::from_i64(&shape, v.into_iter().map(|e| e.clamp(lo, hi)).collect())
                .expect("size")
                .into_dtype(d),
        );
    }
    Ok(Tensor::from_f64(&shape, cur).expect("size").into_dtype(d))
}

/// The scale and output length of every axis.
struct Target {
    scales: Vec<f64>,
    out_shape: Vec<usize>,
}

/// Scales and output shape from the `scales` or `sizes` input (exactly one of them), the
/// aspect-ratio policy applying to `sizes`.
fn target(
    a: &ResizeAttrs,
    x: &Tensor,
    axes: &[usize],
    scales_in: Option<&Tensor>,
    sizes_in: Option<&Tensor>,
) -> EvalResult<Target> {
    let mut scales = vec![1.0f64; x.rank()];
    let mut out_shape = x.shape().to_vec();
    let sizes = sizes_in.filter(|t| !t.is_empty());
    let sc = scales_in.filter(|t| !t.is_empty());
    match (sc, sizes) {
        (Some(_), Some(_)) => return Err(invalid!("give scales or sizes, not both")),
        (Some(s), None) => {
            let v = s.to_f64_vec();
            if v.len() != axes.len() {
                return Err(invalid!(
                    "scales has {} values for {} axes",
                    v.len(),
                    axes.len()
                ));
            }
            for (k, &ax) in axes.iter().enumerate() {
                if v[k].is_nan() || v[k] <= 0.0 {
                    return Err(invalid!("scale {} must be positive", v[k]));
                }
                scales[ax] = v[k];
                out_shape[ax] = (x.shape()[ax] as f64 * v[k]).floor() as usize;
            }
        }
        (None, Some(s)) => {
            let v = ints(s, "sizes")?;
            if v.len() != axes.len() || v.iter().any(|&e| e < 0) {
                return Err(invalid!("sizes {v:?} do not fit {} axes", axes.len()));
            }
            let ratio = |k: usize| v[k] as f64 / x.shape()[axes[k]] as f64;
            match a.policy {
                AspectPolicy::Stretch => {
                    for (k, &ax) in axes.iter().enumerate() {
                        scales[ax] = ratio(k);
                        out_shape[ax] = v[k] as usize;
                    }
                }
                AspectPolicy::NotLarger | AspectPolicy::NotSmaller => {
                    let rs = (0..axes.len()).map(ratio);
                    let s = if a.policy == AspectPolicy::NotLarger {
                        rs.fold(f64::INFINITY, f64::min)
                    } else {
                        rs.fold(0.0, f64::max)
                    };
                    for &ax in axes {
                        scales[ax] = s;
                        out_shape[ax] = (x.shape()[ax] as f64 * s).round() as usize;
                    }
                }
            }
        }
        (None, None) => return Err(invalid!("resize needs scales or sizes")),
    }
    Ok(Target { scales, out_shape })
}

/// The region of interest (tf_crop_and_resize): given for the resized axes or for all.
struct Roi<'a> {
    values: Option<Vec<f64>>,
    axes: &'a [usize],
    rank: usize,
}

impl Roi<'_> {
    /// The (start, end) of axis `ax`; (0, 1) when not given.
    fn of(&self, ax: usize) -> (f64, f64) {
        let (axes, r) = (self.axes, self.rank);
        match &self.values {
            Some(v) if v.len() == 2 * axes.len() => {
                let k = axes.iter().position(|&q| q == ax).unwrap_or(0);
                (v[k], v[k + axes.len()])
            }
            Some(v) if v.len() == 2 * r => (v[ax], v[ax + r]),
            _ => (0.0, 1.0),
        }
    }
}

/// Nearest resize as a gather in `x`'s own dtype, or `None` when some output element does
/// not read exactly one input element with weight 1.
fn nearest_gather(
    a: &ResizeAttrs,
    x: &Tensor,
    t: &Target,
    roi: &Roi,
) -> EvalResult<Option<Tensor>> {
    let (scales, out_shape) = (&t.scales, &t.out_shape);
    let r = x.rank();
    let maps: Vec<Vec<usize>> = (0..r)
        .map(|ax| {
            if out_shape[ax] == x.shape()[ax] && scales[ax] == 1.0 {
                return Some((0..out_shape[ax]).collect());
            }
            axis_taps(a, x.shape()[ax], out_shape[ax], scales[ax], roi.of(ax))
                .into_iter()
                .map(|t| match t.as_deref() {
                    Some(&[(si, 1.0)]) => Some(si),
                    _ => None,
                })
                .collect::<Option<Vec<usize>>>()
        })
        .collect::<Option<_>>()
        .unwrap_or_default();
    if maps.len() != r {
        return Ok(None);
    }
    use lpc_ir::TensorData as D;
    let data = match x.data() {
        D::F32(v) => D::F32(gather_nearest(v, x.shape(), &maps)),
        D::F16(v) => D::F16(gather_nearest(v, x.shape(), &maps)),
        D::F64(v) => D::F64(gather_nearest(v, x.shape(), &maps)),
        D::U8(v) => D::U8(gather_nearest(v, x.shape(), &maps)),
        D::I8(v) => D::I8(gather_nearest(v, x.shape(), &maps)),
        D::I32(v) => D::I32(gather_nearest(v, x.shape(), &maps)),
        D::I64(v) => D::I64(gather_nearest(v, x.shape(), &maps)),
        D::Bool(v) => D::Bool(gather_nearest(v, x.shape(), &maps)),
    };
    Tensor::new(out_shape, data)
        .map(Some)
        .map_err(|e| invalid!("{e}"))
}

/// Interpolates `x` in f64 one axis at a time; returns the values and their shape.
fn resample(
    a: &ResizeAttrs,
    x: &Tensor,
    t: &Target,
    roi: &Roi,
) -> EvalResult<(Vec<f64>, Vec<usize>)> {
    let (scales, out_shape) = (&t.scales, &t.out_shape);
    let mut cur = x.to_f64_vec();
    let mut shape = x.shape().to_vec();
    for ax in 0..x.rank() {
        if out_shape[ax] == shape[ax]
            && scales[ax] == 1.0
            && a.coord != CoordTransform::TfCropAndResize
        {
            continue;
        }
        let roi_ax = roi.of(ax);
        if shape[ax] == 0 {
            return Err(invalid!("cannot resize an empty axis"));
        }
        let taps = axis_taps(a, shape[ax], out_shape[ax], scales[ax], roi_ax);
        let outer: usize = shape[..ax].iter().product();
        let inner: usize = shape[ax + 1..].iter().product();
        let (il, ol) = (shape[ax], out_shape[ax]);
        let mut next = vec![0f64; outer * ol * inner];
        for o in 0..outer {
            for (p, t) in taps.iter().enumerate() {
                let dst = &mut next[(o * ol + p) * inner..(o * ol + p + 1) * inner];
                match t {
                    None => dst.fill(a.extrapolation as f64),
                    Some(t) => {
                        for &(si, w) in t {
                            let src = &cur[(o * il + si) * inner..(o * il + si + 1) * inner];
                            for (d, &s) in dst.iter_mut().zip(src) {
                                *d += w * s;
                            }
                        }
                    }
                }
            }
        }
        cur = next;
        shape[ax] = ol;
    }
    Ok((cur, shape))
}
