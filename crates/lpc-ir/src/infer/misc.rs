//! Inference rules of the cumulative ops (CumSum, CumProd), of OneHot, EyeLike,
//! ReverseSequence, CenterCropPad and Det, and of the ops whose output shape depends on input
//! values (Compress, NonZero, Unique): those get a fresh symbol for the data-dependent dim.

use super::{vt, vt_unranked, Cx, InferError, SymGen};
use crate::{DType, Dim, Op, PixelFormat, TfIdfAttrs, ValueType};

type R = Result<Vec<ValueType>, InferError>;

fn dims(t: &ValueType) -> Option<&[Dim]> {
    t.shape.as_ref().map(|s| s.0.as_slice())
}

/// Checks that input `slot` holds one element (rank 0 or shape `[1]`), when its shape is known.
fn single(cx: &Cx, slot: usize, what: &str) -> Result<(), InferError> {
    if let Some(d) = cx.opt(slot).and_then(dims) {
        if d.len() > 1 || d.iter().any(|d| matches!(d, Dim::Known(n) if *n != 1)) {
            return Err(cx.err(format!(
                "input {slot} ({what}) must hold one element, got shape {}",
                cx.ty(slot)
            )));
        }
    }
    Ok(())
}

/// CumSum / CumProd: x's type; the axis is a one-element integer tensor within x's rank.
pub(super) fn cumulative(cx: &Cx) -> R {
    let x = cx.req(0, "x")?;
    cx.req(1, "axis")?;
    cx.check_dtype(0, "x", "a numeric type", |d| d != DType::Bool)?;
    cx.check_dtype(1, "axis", "i32 or i64", |d| {
        matches!(d, DType::I32 | DType::I64)
    })?;
    single(cx, 1, "axis")?;
    if let Some(xd) = dims(x) {
        if xd.is_empty() {
            return Err(cx.err("input must have rank 1 or more, got a scalar"));
        }
        if let Some([a]) = cx.ints(1).as_deref() {
            cx.axis(*a, xd.len(), "axis")?;
        }
    }
    Ok(vec![x.clone()])
}

/// OneHot: values' dtype; indices' shape with an axis of size depth inserted at `axis`.
pub(super) fn one_hot(cx: &Cx, axis: i64, syms: &mut SymGen) -> R {
    let idx = cx.req(0, "indices")?;
    cx.req(1, "depth")?;
    let values = cx.req(2, "values")?;
    cx.check_dtype(0, "indices", "a numeric type", |d| d != DType::Bool)?;
    cx.check_dtype(1, "depth", "a numeric type", |d| d != DType::Bool)?;
    single(cx, 1, "depth")?;
    if let Some(vd) = dims(values) {
        if vd.len() != 1 || matches!(vd[0], Dim::Known(n) if n != 2) {
            return Err(cx.err(format!(
                "values must be [off, on] (shape [2]), got {values}"
            )));
        }
    }
    let Some(id) = dims(idx) else {
        return Ok(vec![vt_unranked(values.dtype)]);
    };
    let ax = cx.axis(axis, id.len() + 1, "axis")?;
    let depth = match cx.const_in(1).map(|t| t.to_f64_vec()).as_deref() {
        Some([d]) if *d < 1.0 => return Err(cx.err(format!("depth {d} must be at least 1"))),
        Some([d]) => Dim::Known(*d as usize),
        _ => syms.dim(),
    };
    let mut out = id.to_vec();
    out.insert(ax, depth);
    Ok(vec![vt(values.dtype, out)])
}

/// EyeLike: x's type; x must be 2-D.
pub(super) fn eye_like(cx: &Cx) -> R {
    let x = cx.req(0, "x")?;
    if let Some(r) = dims(x).map(<[Dim]>::len) {
        if r != 2 {
            return Err(cx.err(format!("input must have rank 2, got {r}")));
        }
    }
    Ok(vec![x.clone()])
}

/// Compress: the kept axis (or the flattened x) has the number of true conditions: known for
/// a constant condition, else a fresh symbol.
pub(super) fn compress(cx: &Cx, axis: Option<i64>, syms: &mut SymGen) -> R {
    let x = cx.req(0, "x")?;
    let cond = cx.req(1, "condition")?;
    cx.check_dtype(1, "condition", "bool", |d| d == DType::Bool)?;
    if let Some(cd) = dims(cond) {
        if cd.len() != 1 {
            return Err(cx.err(format!("condition must be 1-D, got {cond}")));
        }
    }
    let kept = match cx.const_in(1) {
        Some(t) => Dim::Known(t.to_i64_vec().iter().filter(|&&c| c != 0).count()),
        None => syms.dim(),
    };
    let Some(a) = axis else {
        return Ok(vec![vt(x.dtype, vec![kept])]);
    };
    let Some(xd) = dims(x) else {
        return Ok(vec![vt_unranked(x.dtype)]);
    };
    let ax = cx.axis(a, xd.len(), "axis")?;
    let mut out = xd.to_vec();
    out[ax] = kept;
    Ok(vec![vt(x.dtype, out)])
}

/// NonZero: i64 `[rank, count]`, the count a fresh symbol (a scalar counts as rank 1, as in
/// ONNX Runtime).
pub(super) fn non_zero(cx: &Cx, syms: &mut SymGen) -> R {
    let x = cx.req(0, "x")?;
    let rank = match dims(x) {
        Some(d) => Dim::Known(d.len().max(1)),
        None => syms.dim(),
    };
    Ok(vec![vt(Some(DType::I64), vec![rank, syms.dim()])])
}

/// Unique: y with the unique count (a fresh symbol) along `axis` (or flattened), and i64
/// indices `[count]`, inverse_indices `[axis size]` and counts `[count]`.
pub(super) fn unique(cx: &Cx, axis: Option<i64>, syms: &mut SymGen) -> R {
    let x = cx.req(0, "x")?;
    let i64s = |d: Vec<Dim>| vt(Some(DType::I64), d);
    let Some(xd) = dims(x) else {
        let u = syms.dim();
        let y = match axis {
            None => vt(x.dtype, vec![u.clone()]),
            Some(_) => vt_unranked(x.dtype),
        };
        return Ok(vec![
            y,
            i64s(vec![u.clone()]),
            i64s(vec![syms.dim()]),
            i64s(vec![u]),
        ]);
    };
    let u = syms.dim();
    let (y, n) = match axis {
        None => (vec![u.clone()], super::dim_product(xd, syms)),
        Some(a) => {
            let ax = cx.axis(a, xd.len(), "axis")?;
            let mut y = xd.to_vec();
            y[ax] = u.clone();
            (y, xd[ax].clone())
        }
    };
    Ok(vec![
        vt(x.dtype, y),
        i64s(vec![u.clone()]),
        i64s(vec![n]),
        i64s(vec![u]),
    ])
}

/// ReverseSequence: x's type; batch and time axes are 0 and 1 (either order) and
/// sequence_lens is i64 `[batch]`.
pub(super) fn reverse_sequence(cx: &Cx, batch_axis: usize, time_axis: usize) -> R {
    let x = cx.req(0, "x")?;
    let lens = cx.req(1, "sequence_lens")?;
    cx.check_dtype(1, "sequence_lens", "i64", |d| d == DType::I64)?;
    if batch_axis > 1 || time_axis > 1 || batch_axis == time_axis {
        return Err(cx.err(format!(
            "batch_axis {batch_axis} and time_axis {time_axis} must be 0 and 1"
        )));
    }
    if let Some(xd) = dims(x) {
        if xd.len() < 2 {
            return Err(cx.err(format!("input must have rank 2 or more, got {}", xd.len())));
        }
        if let (Some([l]), Dim::Known(b)) = (dims(lens), &xd[batch_axis]) {
            if matches!(l, Dim::Known(n) if n != b) {
                return Err(cx.err(format!(
                    "sequence_lens has {l} entries but the batch axis has size {b}"
                )));
            }
        }
    }
    Ok(vec![x.clone()])
}

/// CenterCropPad: x's dims with the `axes` (all when empty) set to the shape input's values
/// (fresh symbols when they are not known).
pub(super) fn center_crop_pad(cx: &Cx, axes: &[i64], syms: &mut SymGen) -> R {
    let x = cx.req(0, "x")?;
    cx.req(1, "shape")?;
    cx.check_dtype(1, "shape", "i32 or i64", |d| {
        matches!(d, DType::I32 | DType::I64)
    })?;
    let Some(xd) = dims(x) else {
        return Ok(vec![vt_unranked(x.dtype)]);
    };
    let axes: Vec<usize> = if axes.is_empty() {
        (0..xd.len()).collect()
    } else {
        axes.iter()
            .map(|&a| cx.axis(a, xd.len(), "axis"))
            .collect::<Result<_, _>>()?
    };
    let shape = cx.ints(1);
    if let Some(s) = &shape {
        if s.len() != axes.len() {
            return Err(cx.err(format!(
                "shape has {} entries for {} axes",
                s.len(),
                axes.len()
            )));
        }
        if let Some(v) = s.iter().find(|&&v| v < 0) {
            return Err(cx.err(format!("shape entry {v} is negative")));
        }
    }
    let mut out = xd.to_vec();
    for (i, &a) in axes.iter().enumerate() {
        out[a] = match &shape {
            Some(s) => Dim::Known(s[i] as usize),
            None => syms.dim(),
        };
    }
    Ok(vec![vt(x.dtype, out)])
}

/// Det: a float type; the last two axes are square and are removed.
pub(super) fn det(cx: &Cx) -> R {
    let x = cx.req(0, "x")?;
    cx.check_dtype(0, "x", "a float type", DType::is_float)?;
    let Some(xd) = dims(x) else {
        return Ok(vec![vt_unranked(x.dtype)]);
    };
    let r = xd.len();
    if r < 2 {
        return Err(cx.err(format!("input must have rank 2 or more, got {r}")));
    }
    if let (Dim::Known(m), Dim::Known(n)) = (&xd[r - 2], &xd[r - 1]) {
        if m != n {
            return Err(cx.err(format!("matrices must be square, got {m}x{n}")));
        }
    }
    Ok(vec![vt(x.dtype, xd[..r - 2].to_vec())])
}

/// Col2Im: x `[N, C·∏block_shape, L]` gives `[N, C, *image_shape]` (image_shape constant;
/// else fresh symbols); with block_shape constant, x's channels must divide and L match.
pub(super) fn col2im(
    cx: &Cx,
    dilations: &[usize],
    pads: &[usize],
    strides: &[usize],
    syms: &mut SymGen,
) -> R {
    let x = cx.req(0, "x")?;
    cx.req(1, "image_shape")?;
    cx.req(2, "block_shape")?;
    for (slot, what) in [(1, "image_shape"), (2, "block_shape")] {
        cx.check_dtype(slot, what, "i64", |d| d == DType::I64)?;
    }
    if let Some(xd) = dims(x) {
        if xd.len() != 3 {
            return Err(cx.err(format!("input must have rank 3, got {}", xd.len())));
        }
    }
    let (image, block) = (cx.ints(1), cx.ints(2));
    let mut channels = syms.dim();
    if let (Some(image), Some(block)) = (&image, &block) {
        let n =
            crate::col2im_blocks(image, block, dilations, pads, strides).map_err(|e| cx.err(e))?;
        let (prod, l) = (
            block.iter().product::<i64>() as usize,
            n.iter().product::<usize>(),
        );
        if let Some(xd) = dims(x) {
            if let Dim::Known(c) = xd[1] {
                if c % prod != 0 {
                    return Err(cx.err(format!(
                        "input channels {c} are not a multiple of the block size {prod}"
                    )));
                }
                channels = Dim::Known(c / prod);
            }
            if matches!(xd[2], Dim::Known(got) if got != l) {
                return Err(cx.err(format!(
                    "input has {} block positions, the attributes give {l}",
                    xd[2]
                )));
            }
        }
    }
    let batch = dims(x).map_or_else(|| syms.dim(), |xd| xd[0].clone());
    let mut out = vec![batch, channels];
    match image {
        Some(image) => out.extend(image.iter().map(|&v| Dim::Known(v as usize))),
        None => match cx.opt(1).and_then(dims) {
            Some([Dim::Known(r)]) => out.extend((0..*r).map(|_| syms.dim())),
            _ => return Ok(vec![vt_unranked(x.dtype)]),
        },
    }
    Ok(vec![vt(x.dtype, out)])
}

/// GridSample: x `[N, C, *spatial]` (numeric) and grid `[N, *out_spatial, r]` (float) with
/// r = rank(x) − 2 give `[N, C, *out_spatial]` in x's dtype.
pub(super) fn grid_sample(cx: &Cx) -> R {
    let x = cx.req(0, "x")?;
    let grid = cx.req(1, "grid")?;
    cx.check_dtype(0, "x", "a numeric type", |d| d.is_float() || d.is_int())?;
    cx.check_dtype(1, "grid", "a float type", |d| d.is_float())?;
    let (Some(xd), Some(gd)) = (dims(x), dims(grid)) else {
        return Ok(vec![vt_unranked(x.dtype)]);
    };
    if xd.len() < 3 || gd.len() != xd.len() {
        return Err(cx.err(format!(
            "x {} must have rank >= 3 and grid {} the same rank",
            cx.ty(0),
            cx.ty(1)
        )));
    }
    if matches!(gd[gd.len() - 1], Dim::Known(r) if r != xd.len() - 2) {
        return Err(cx.err(format!(
            "grid {} must end in {} coordinates (one per spatial axis of x)",
            cx.ty(1),
            xd.len() - 2
        )));
    }
    let batch = match (&xd[0], &gd[0]) {
        (Dim::Known(a), Dim::Known(b)) if a != b => {
            return Err(cx.err(format!("x has batch {a} but grid has {b}")))
        }
        (Dim::Known(_), _) => xd[0].clone(),
        _ => gd[0].clone(),
    };
    let mut out = vec![batch, xd[1].clone()];
    out.extend(gd[1..gd.len() - 1].iter().cloned());
    Ok(vec![vt(x.dtype, out)])
}

/// AffineGrid: theta `[N, r, r+1]` (float) and size (i64 `[r + 2]`: N, C, *spatial) give
/// the grid `[N, *spatial, r]` (spatial from size's value; else fresh symbols).
pub(super) fn affine_grid(cx: &Cx) -> R {
    let theta = cx.req(0, "theta")?;
    cx.req(1, "size")?;
    cx.check_dtype(0, "theta", "a float type", |d| d.is_float())?;
    cx.check_dtype(1, "size", "i64", |d| d == DType::I64)?;
    if let Some(td) = dims(theta) {
        let ok = td.len() == 3
            && match (&td[1], &td[2]) {
                (Dim::Known(r), Dim::Known(c)) => (*r == 2 || *r == 3) && *c == r + 1,
                _ => true,
            };
        if !ok {
            return Err(cx.err(format!("theta {} must be [N, 2, 3] or [N, 3, 4]", cx.ty(0))));
        }
    }
    let Some(size) = cx.ints(1) else {
        return Ok(vec![vt_unranked(theta.dtype)]);
    };
    if !(size.len() == 4 || size.len() == 5) || size.iter().any(|&v| v < 0) {
        return Err(cx.err(format!(
            "size {size:?} must be [N, C, H, W] or [N, C, D, H, W] with no negative entry"
        )));
    }
    let r = size.len() - 2;
    if let Some(td) = dims(theta) {
        if matches!(td[1], Dim::Known(tr) if tr != r) {
            return Err(cx.err(format!(
                "theta {} does not match size {size:?} ({r} spatial axes)",
                cx.ty(0)
            )));
        }
    }
    let mut out = vec![Dim::Known(size[0] as usize)];
    out.extend(size[2..].iter().map(|&v| Dim::Known(v as usize)));
    out.push(Dim::Known(r));
    Ok(vec![vt(theta.dtype, out)])
}

/// Dft: x `[..., 1 or 2]` (float) gives x's shape with the axis resized by
/// [`crate::dft_lengths`] and the last axis 2 (1 for an inverse one-sided transform); an axis or
/// length that is not constant gives fresh symbols.
pub(super) fn dft(cx: &Cx, inverse: bool, onesided: bool, syms: &mut SymGen) -> R {
    let x = cx.req(0, "x")?;
    cx.check_dtype(0, "x", "a float type", DType::is_float)?;
    for (slot, what) in [(1, "dft_length"), (2, "axis")] {
        cx.check_dtype(slot, what, "i32 or i64", |d| {
            matches!(d, DType::I32 | DType::I64)
        })?;
        single(cx, slot, what)?;
    }
    let Some(xd) = dims(x) else {
        return Ok(vec![vt_unranked(x.dtype)]);
    };
    let r = xd.len();
    if r < 2 {
        return Err(cx.err(format!("x must have rank 2 or more, got {x}")));
    }
    if matches!(xd[r - 1], Dim::Known(c) if c != 1 && c != 2) {
        return Err(cx.err(format!(
            "the last axis of x must be 1 (real) or 2 (complex), got {x}"
        )));
    }
    let complex_out = if inverse && onesided { 1 } else { 2 };
    let axis = if cx.has(2) {
        cx.ints(2).and_then(|v| v.first().copied())
    } else {
        Some(-2)
    };
    let Some(axis) = axis else {
        let mut out: Vec<Dim> = (0..r - 1).map(|_| syms.dim()).collect();
        out.push(Dim::Known(complex_out));
        return Ok(vec![vt(x.dtype, out)]);
    };
    let ax = crate::dft_axis(axis, r).map_err(|e| cx.err(e))?;
    let length = if cx.has(1) {
        cx.ints(1).and_then(|v| v.first().copied()).map(Some)
    } else {
        Some(None)
    };
    let mut out = xd.to_vec();
    out[r - 1] = Dim::Known(complex_out);
    out[ax] = match (&xd[ax], length) {
        (Dim::Known(len), Some(l)) => Dim::Known(
            crate::dft_lengths(*len, l, inverse, onesided)
                .map_err(|e| cx.err(e))?
                .1,
        ),
        (_, Some(Some(l))) => Dim::Known(
            crate::dft_lengths(0, Some(l), inverse, onesided)
                .map_err(|e| cx.err(e))?
                .1,
        ),
        _ => syms.dim(),
    };
    Ok(vec![vt(x.dtype, out)])
}

/// Window: `size` is one integer; a 1-D `dtype` output of `size` values (a fresh symbol when
/// size is not constant).
pub(super) fn window(cx: &Cx, dtype: DType, syms: &mut SymGen) -> R {
    cx.req(0, "size")?;
    cx.check_dtype(0, "size", "i32 or i64", |d| {
        matches!(d, DType::I32 | DType::I64)
    })?;
    single(cx, 0, "size")?;
    if !dtype.is_float() {
        return Err(cx.err(format!(
            "the output dtype must be a float type, got {dtype}"
        )));
    }
    let n = match cx.ints(0).and_then(|v| v.first().copied()) {
        Some(n) if n < 0 => return Err(cx.err(format!("size must not be negative, got {n}"))),
        Some(n) => Dim::Known(n as usize),
        None => syms.dim(),
    };
    Ok(vec![vt(Some(dtype), vec![n])])
}

/// Stft: signal `[batch, length, 1 or 2]` (float) gives `[batch, frames, bins, 2]` by
/// [`crate::stft_dims`]; what is not known (a non-constant frame_step or frame_length) gets a
/// fresh symbol.
pub(super) fn stft(cx: &Cx, onesided: bool, syms: &mut SymGen) -> R {
    let x = cx.req(0, "signal")?;
    cx.req(1, "frame_step")?;
    cx.check_dtype(0, "signal", "a float type", DType::is_float)?;
    cx.check_dtype(2, "window", "a float type", DType::is_float)?;
    for (slot, what) in [(1, "frame_step"), (3, "frame_length")] {
        cx.check_dtype(slot, what, "i32 or i64", |d| {
            matches!(d, DType::I32 | DType::I64)
        })?;
        single(cx, slot, what)?;
    }
    let xd = dims(x);
    if let Some(xd) = xd {
        if xd.len() != 3 || matches!(xd[2], Dim::Known(c) if c != 1 && c != 2) {
            return Err(cx.err(format!(
                "signal must have shape [batch, length, 1 or 2], got {x}"
            )));
        }
    }
    let batch = xd.map_or_else(|| syms.dim(), |d| d[0].clone());
    let one = |slot: usize| cx.ints(slot).and_then(|v| v.first().copied());
    let window: Option<Option<Vec<usize>>> = match cx.opt(2) {
        None => Some(None),
        Some(w) => dims(w).and_then(|d| {
            d.iter()
                .map(|d| match d {
                    Dim::Known(k) => Some(*k),
                    _ => None,
                })
                .collect::<Option<Vec<usize>>>()
                .map(Some)
        }),
    };
    let frame_length = if cx.has(3) {
        one(3).map(Some)
    } else {
        Some(None)
    };
    let len = match xd.map(|d| &d[1]) {
        Some(Dim::Known(l)) => Some(*l),
        _ => None,
    };
    let (frames, bins) = match (len, one(1), window, frame_length) {
        (Some(len), Some(step), Some(w), Some(l)) => {
            let (f, _, b) =
                crate::stft_dims(len, step, w.as_deref(), l, onesided).map_err(|e| cx.err(e))?;
            (Dim::Known(f), Dim::Known(b))
        }
        _ => (syms.dim(), syms.dim()),
    };
    Ok(vec![vt(x.dtype, vec![batch, frames, bins, Dim::Known(2)])])
}

/// Einsum: one numeric dtype for every input; each output axis has its label's size (an axis
/// of size 1 broadcasts).
pub(super) fn einsum(cx: &Cx, equation: &str, syms: &mut SymGen) -> R {
    let x = cx.req(0, "inputs")?;
    cx.check_dtype(0, "inputs", "a numeric type", |d| d != DType::Bool)?;
    for k in 1..cx.num_inputs() {
        cx.req(k, "inputs")?;
        cx.same_dtype(0, k, "Einsum inputs")?;
    }
    let shapes: Option<Vec<&[Dim]>> = (0..cx.num_inputs())
        .map(|k| cx.opt(k).and_then(dims))
        .collect();
    let Some(shapes) = shapes else {
        return Ok(vec![vt_unranked(x.dtype)]);
    };
    let ranks: Vec<usize> = shapes.iter().map(|s| s.len()).collect();
    let spec = crate::einsum_spec(equation, &ranks).map_err(|e| cx.err(e))?;
    let mut size: Vec<Option<Dim>> = vec![None; spec.labels];
    for (axes, sh) in spec.inputs.iter().zip(&shapes) {
        for (&l, d) in axes.iter().zip(sh.iter()) {
            size[l] = match (&size[l], d) {
                (None, d) => Some(d.clone()),
                (Some(Dim::Known(1)), d) => Some(d.clone()),
                (Some(s), Dim::Known(1)) => Some(s.clone()),
                (Some(Dim::Known(a)), Dim::Known(b)) if a != b => {
                    return Err(cx.err(format!(
                        "equation '{equation}': a label has sizes {a} and {b}"
                    )))
                }
                (Some(Dim::Known(a)), _) => Some(Dim::Known(*a)),
                (Some(_), d) => Some(d.clone()),
            };
        }
    }
    let out = spec
        .output
        .iter()
        .map(|&l| size[l].clone().unwrap_or_else(|| syms.dim()))
        .collect();
    Ok(vec![vt(x.dtype, out)])
}

/// RotaryEmbedding: x's type; x float of rank 4, or rank 3 with `num_heads`; the caches have
/// x's dtype and position_ids is i64.
pub(super) fn rotary_embedding(cx: &Cx) -> R {
    let x = cx.req(0, "x")?;
    cx.req(1, "cos_cache")?;
    cx.req(2, "sin_cache")?;
    cx.check_dtype(0, "x", "a float type", DType::is_float)?;
    cx.same_dtype(0, 1, "RotaryEmbedding x and cos_cache")?;
    cx.same_dtype(0, 2, "RotaryEmbedding x and sin_cache")?;
    cx.check_dtype(3, "position_ids", "i64", |d| d == DType::I64)?;
    let Op::RotaryEmbedding { num_heads, .. } = cx.op() else {
        unreachable!("rotary_embedding on another op")
    };
    if let Some(r) = dims(x).map(<[Dim]>::len) {
        if r != 4 && !(r == 3 && *num_heads > 0) {
            return Err(cx.err(format!(
                "x must have rank 4, or rank 3 with num_heads set; got rank {r}"
            )));
        }
    }
    Ok(vec![x.clone()])
}

/// TensorScatter: past_cache's type; update has its rank and dtype; `axis` is not the batch
/// axis; write_indices is i64.
pub(super) fn tensor_scatter(cx: &Cx, axis: i64) -> R {
    let past = cx.req(0, "past_cache")?;
    let upd = cx.req(1, "update")?;
    cx.same_dtype(0, 1, "TensorScatter past_cache and update")?;
    cx.check_dtype(2, "write_indices", "i64", |d| d == DType::I64)?;
    if let Some(pd) = dims(past) {
        let a = cx.axis(axis, pd.len(), "axis")?;
        if a == 0 {
            return Err(cx.err("axis must not be the batch axis 0"));
        }
        if let Some(ud) = dims(upd) {
            if ud.len() != pd.len() {
                return Err(cx.err(format!(
                    "update has rank {} but past_cache has rank {}",
                    ud.len(),
                    pd.len()
                )));
            }
        }
    }
    Ok(vec![past.clone()])
}

/// NonMaxSuppression: i64 `[selected, 3]`, the count a fresh symbol.
pub(super) fn non_max_suppression(cx: &Cx, syms: &mut SymGen) -> R {
    let b = cx.req(0, "boxes")?;
    let s = cx.req(1, "scores")?;
    cx.check_dtype(0, "boxes", "a float type", DType::is_float)?;
    cx.check_dtype(1, "scores", "a float type", DType::is_float)?;
    if let Some(r) = dims(b).map(<[Dim]>::len).filter(|&r| r != 3) {
        return Err(cx.err(format!("boxes must have rank 3, got {r}")));
    }
    if let Some(r) = dims(s).map(<[Dim]>::len).filter(|&r| r != 3) {
        return Err(cx.err(format!("scores must have rank 3, got {r}")));
    }
    Ok(vec![vt(Some(DType::I64), vec![syms.dim(), Dim::Known(3)])])
}

/// SwiGLU: a and b of one float dtype and one shape (no broadcasting); a's type.
pub(super) fn swiglu(cx: &Cx) -> R {
    let a = cx.req(0, "a")?;
    let b = cx.req(1, "b")?;
    cx.check_dtype(0, "a", "a float type", DType::is_float)?;
    cx.same_dtype(0, 1, "SwiGLU a and b")?;
    if let (Some(x), Some(y)) = (dims(a), dims(b)) {
        let differ = x.len() != y.len()
            || x.iter()
                .zip(y)
                .any(|(p, q)| matches!((p.known(), q.known()), (Some(m), Some(n)) if m != n));
        if differ {
            return Err(cx.err(format!(
                "a {a} and b {b} must have one shape (SwiGLU does not broadcast)"
            )));
        }
    }
    let shape = match (dims(a), dims(b)) {
        // Prefer known sizes from either side.
        (Some(x), Some(y)) => Some(
            x.iter()
                .zip(y)
                .map(|(p, q)| {
                    if p.known().is_some() {
                        p.clone()
                    } else {
                        q.clone()
                    }
                })
                .collect(),
        ),
        (Some(x), None) | (None, Some(x)) => Some(x.to_vec()),
        (None, None) => None,
    };
    Ok(vec![match shape {
        Some(s) => vt(a.dtype.or(b.dtype), s),
        None => vt_unranked(a.dtype.or(b.dtype)),
    }])
}

/// RoiAlign: x float `[N, C, H, W]`, rois `[R, 4]` of x's dtype, batch_indices integer `[R]`;
/// `[R, C, output_height, output_width]`.
pub(super) fn roi_align(
    cx: &Cx,
    output_height: usize,
    output_width: usize,
    syms: &mut SymGen,
) -> R {
    let x = cx.req(0, "x")?;
    let rois = cx.req(1, "rois")?;
    let idx = cx.req(2, "batch_indices")?;
    cx.check_dtype(0, "x", "a float type", DType::is_float)?;
    cx.same_dtype(0, 1, "RoiAlign x and rois")?;
    cx.check_dtype(2, "batch_indices", "an integer type", DType::is_int)?;
    if output_height == 0 || output_width == 0 {
        return Err(cx.err("output_height and output_width must be at least 1"));
    }
    let xd = dims(x);
    if let Some(d) = xd.filter(|d| d.len() != 4) {
        return Err(cx.err(format!("x must be 4-D [N, C, H, W], got rank {}", d.len())));
    }
    let rd = dims(rois);
    if let Some(d) = rd {
        if d.len() != 2 || d[1].known().is_some_and(|n| n != 4) {
            return Err(cx.err(format!("rois must be [num_rois, 4], got {rois}")));
        }
    }
    let id = dims(idx);
    if let Some(d) = id.filter(|d| d.len() != 1) {
        return Err(cx.err(format!("batch_indices must be 1-D, got rank {}", d.len())));
    }
    let r = match (rd.map(|d| &d[0]), id.map(|d| &d[0])) {
        (Some(a), Some(b)) => {
            if let (Some(m), Some(n)) = (a.known(), b.known()) {
                if m != n {
                    return Err(cx.err(format!(
                        "rois has {m} regions but batch_indices has {n} entries"
                    )));
                }
            }
            if a.known().is_some() {
                a.clone()
            } else {
                b.clone()
            }
        }
        (Some(a), None) | (None, Some(a)) => a.clone(),
        (None, None) => syms.dim(),
    };
    let mut out = vec![r];
    out.push(xd.map_or_else(|| syms.dim(), |d| d[1].clone()));
    out.push(Dim::Known(output_height));
    out.push(Dim::Known(output_width));
    Ok(vec![vt(x.dtype, out)])
}

/// ImageDecoder: a 1-D u8 input; u8 `[height, width, channels]`, the height and width fresh
/// symbols (they are in the encoded bytes).
pub(super) fn image_decoder(cx: &Cx, pixel_format: PixelFormat, syms: &mut SymGen) -> R {
    let x = cx.req(0, "encoded_stream")?;
    cx.check_dtype(0, "encoded_stream", "u8", |d| d == DType::U8)?;
    if let Some(r) = dims(x).map(<[Dim]>::len).filter(|&r| r != 1) {
        return Err(cx.err(format!("encoded_stream must have rank 1, got {r}")));
    }
    let c = match pixel_format {
        PixelFormat::Rgb | PixelFormat::Bgr => 3,
        PixelFormat::Grayscale => 1,
    };
    Ok(vec![vt(
        Some(DType::U8),
        vec![syms.dim(), syms.dim(), Dim::Known(c)],
    )])
}

/// TfIdfVectorizer: x i32 or i64 `[C]` or `[B, C]`; f32 `[out]` or `[B, out]`.
pub(super) fn tf_idf_vectorizer(cx: &Cx, a: &TfIdfAttrs) -> R {
    let out = a.check().map_err(|e| cx.err(e))?;
    let x = cx.req(0, "x")?;
    cx.check_dtype(0, "x", "i32 or i64", |d| {
        matches!(d, DType::I32 | DType::I64)
    })?;
    Ok(vec![match dims(x) {
        Some([_]) => vt(Some(DType::F32), vec![Dim::Known(out)]),
        Some([b, _]) => vt(Some(DType::F32), vec![b.clone(), Dim::Known(out)]),
        Some(d) => {
            return Err(cx.err(format!(
                "x must have shape [C] or [B, C], got rank {}",
                d.len()
            )))
        }
        None => vt_unranked(Some(DType::F32)),
    }])
}

/// MelWeightMatrix: five scalars (three integers, two floats); `dtype`
/// `[dft_length / 2 + 1, num_mel_bins]`, fresh symbols where the inputs are not constant.
pub(super) fn mel_weight_matrix(cx: &Cx, dtype: DType, syms: &mut SymGen) -> R {
    for (slot, what) in [(0, "num_mel_bins"), (1, "dft_length"), (2, "sample_rate")] {
        cx.req(slot, what)?;
        cx.check_dtype(slot, what, "i32 or i64", |d| {
            matches!(d, DType::I32 | DType::I64)
        })?;
        single(cx, slot, what)?;
    }
    for (slot, what) in [(3, "lower_edge_hertz"), (4, "upper_edge_hertz")] {
        cx.req(slot, what)?;
        cx.check_dtype(slot, what, "a float type", DType::is_float)?;
        single(cx, slot, what)?;
    }
    if dtype == DType::Bool {
        return Err(cx.err("the output dtype must be numeric, got bool"));
    }
    let mut known = |slot: usize, what: &str, f: fn(i64) -> i64| -> Result<Dim, InferError> {
        Ok(match cx.ints(slot).and_then(|v| v.first().copied()) {
            Some(n) if n <= 0 => {
                return Err(cx.err(format!("{what} must be positive, got {n}")));
            }
            Some(n) => Dim::Known(f(n) as usize),
            None => syms.dim(),
        })
    };
    let bins = known(1, "dft_length", |n| n / 2 + 1)?;
    let mels = known(0, "num_mel_bins", |n| n)?;
    Ok(vec![vt(Some(dtype), vec![bins, mels])])
}
