//! Data movement and shape ops. Most are expressed as "take these flat source indices"
//! (`take`), which works for every dtype; constant padding uses a fill marker.

use crate::util::{broadcast_shapes, ints, norm_axis, strides};
use crate::{invalid, EvalError, EvalResult, Inputs};
use lpc_ir::{PadMode, Tensor, TensorData};

/// Marks an output element that takes the fill value instead of a source element.
pub(crate) const FILL: usize = usize::MAX;

/// Largest element count an op may create from data-dependent shapes.
const MAX_ELEMENTS: usize = 1 << 31;

pub(crate) fn check_count(shape: &[usize]) -> EvalResult<usize> {
    let mut n: usize = 1;
    for &d in shape {
        n = n
            .checked_mul(d)
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or_else(|| invalid!("shape {shape:?} is too large"))?;
    }
    Ok(n)
}

/// A new tensor of `shape` whose elements are `t`'s at `idx` (or `fill`'s single element).
pub fn take(
    t: &Tensor,
    idx: &[usize],
    shape: &[usize],
    fill: Option<&Tensor>,
) -> EvalResult<Tensor> {
    macro_rules! go {
        ($v:expr, $var:ident, $zero:expr) => {{
            let f = match fill.map(|f| f.data()) {
                Some(TensorData::$var(fv)) if !fv.is_empty() => fv[0],
                Some(_) => return Err(invalid!("fill value has the wrong dtype")),
                None => $zero,
            };
            TensorData::$var(
                idx.iter()
                    .map(|&i| if i == FILL { f } else { $v[i] })
                    .collect(),
            )
        }};
    }
    let data = match t.data() {
        TensorData::F32(v) => go!(v, F32, 0.0),
        TensorData::F16(v) => go!(v, F16, half::f16::ZERO),
        TensorData::F64(v) => go!(v, F64, 0.0),
        TensorData::I8(v) => go!(v, I8, 0),
        TensorData::U8(v) => go!(v, U8, 0),
        TensorData::I32(v) => go!(v, I32, 0),
        TensorData::I64(v) => go!(v, I64, 0),
        TensorData::Bool(v) => go!(v, Bool, false),
    };
    Tensor::new(shape, data).map_err(|e| invalid!("{e}"))
}

/// The elements of `v` at `offset + Σ iₐ·strides[a]` for every index `i` of `shape`, in
/// row-major order (one pass, the innermost axis a strided run): a transpose, a broadcast or a
/// slice as a copy.
fn strided_copy<T: Copy>(v: &[T], shape: &[usize], strides: &[usize], offset: usize) -> Vec<T> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let Some((&inner, outer)) = shape.split_last() else {
        out.extend_from_slice(&v[offset..offset + n]);
        return out;
    };
    if n == 0 {
        return out;
    }
    let step = strides[outer.len()];
    if step != 1 && inner >= TILE {
        // An axis read contiguously that is not the last (NHWC ↔ NCHW): in tiles.
        if let Some(a) = (0..outer.len()).find(|&a| strides[a] == 1 && outer[a] >= TILE) {
            return tiled_copy(v, shape, strides, offset, a);
        }
    }
    let mut ix = vec![0usize; outer.len()];
    let mut base = offset;
    loop {
        if step == 1 {
            out.extend_from_slice(&v[base..base + inner]);
        } else {
            out.extend((0..inner).map(|i| v[base + i * step]));
        }
        // The next outer index, last axis fastest.
        let mut a = outer.len();
        loop {
            if a == 0 {
                return out;
            }
            a -= 1;
            ix[a] += 1;
            base += strides[a];
            if ix[a] < outer[a] {
                break;
            }
            base -= strides[a] * outer[a];
            ix[a] = 0;
        }
    }
}

/// The tile side of [`tiled_copy`].
const TILE: usize = 16;

/// [`strided_copy`] where output axis `a` is contiguous in `v` and the last is not: the two
/// axes in `TILE × TILE` tiles, so that the reads of one tile share their cache lines.
fn tiled_copy<T: Copy>(
    v: &[T],
    shape: &[usize],
    strides: &[usize],
    offset: usize,
    a: usize,
) -> Vec<T> {
    let r = shape.len();
    let ost = crate::util::strides(shape);
    let others: Vec<usize> = (0..r - 1).filter(|&d| d != a).collect();
    let pick = |s: &[usize]| -> Vec<usize> { others.iter().map(|&d| s[d]).collect() };
    let (oshape, sst, dst) = (pick(shape), pick(strides), pick(&ost));
    let src_at = crate::util::offsets(&oshape, &sst);
    let out_at = crate::util::offsets(&oshape, &dst);
    let (na, nl, sl, oa) = (shape[a], shape[r - 1], strides[r - 1], ost[a]);
    let mut out = vec![v[offset]; shape.iter().product()];
    for (&sb, &ob) in src_at.iter().zip(&out_at) {
        let sb = sb + offset;
        for i0 in (0..na).step_by(TILE) {
            for j0 in (0..nl).step_by(TILE) {
                for i in i0..(i0 + TILE).min(na) {
                    for j in j0..(j0 + TILE).min(nl) {
                        out[ob + i * oa + j] = v[sb + i + j * sl];
                    }
                }
            }
        }
    }
    out
}

/// [`strided_copy`] of a tensor of any dtype.
pub(crate) fn strided(
    t: &Tensor,
    shape: &[usize],
    strides: &[usize],
    offset: usize,
) -> EvalResult<Tensor> {
    let data = match t.data() {
        TensorData::F32(v) => TensorData::F32(strided_copy(v, shape, strides, offset)),
        TensorData::F16(v) => TensorData::F16(strided_copy(v, shape, strides, offset)),
        TensorData::F64(v) => TensorData::F64(strided_copy(v, shape, strides, offset)),
        TensorData::I8(v) => TensorData::I8(strided_copy(v, shape, strides, offset)),
        TensorData::U8(v) => TensorData::U8(strided_copy(v, shape, strides, offset)),
        TensorData::I32(v) => TensorData::I32(strided_copy(v, shape, strides, offset)),
        TensorData::I64(v) => TensorData::I64(strided_copy(v, shape, strides, offset)),
        TensorData::Bool(v) => TensorData::Bool(strided_copy(v, shape, strides, offset)),
    };
    Tensor::new(shape, data).map_err(|e| invalid!("{e}"))
}

/// Iterates the multi-indices of `shape` in row-major order, calling `f(index)`.
pub fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    let n: usize = shape.iter().product();
    if n == 0 {
        return;
    }
    let mut ix = vec![0usize; shape.len()];
    for _ in 0..n {
        f(&ix);
        for ax in (0..shape.len()).rev() {
            ix[ax] += 1;
            if ix[ax] < shape[ax] {
                break;
            }
            ix[ax] = 0;
        }
    }
}

/// Concatenation along an axis.
pub fn concat(axis: i64, i: Inputs) -> EvalResult<Tensor> {
    let parts: Vec<&Tensor> = (0..i.len()).filter_map(|k| i.opt(k)).collect();
    let first = *parts.first().ok_or(EvalError::MissingInput {
        slot: 0,
        what: "x0",
    })?;
    let rank = first.rank();
    let ax = norm_axis(axis, rank)?;
    let mut out_shape = first.shape().to_vec();
    out_shape[ax] = 0;
    for p in &parts {
        if p.rank() != rank || p.dtype() != first.dtype() {
            return Err(invalid!(
                "cannot concatenate {} {:?} with {} {:?}",
                p.dtype(),
                p.shape(),
                first.dtype(),
                first.shape()
            ));
        }
        for d in 0..rank {
            if d != ax && p.shape()[d] != first.shape()[d] {
                return Err(invalid!(
                    "cannot concatenate {:?} with {:?} on axis {ax}",
                    p.shape(),
                    first.shape()
                ));
            }
        }
        out_shape[ax] += p.shape()[ax];
    }
    let outer: usize = out_shape[..ax].iter().product();
    let inner: usize = out_shape[ax + 1..].iter().product();
    let mut bytes = Vec::with_capacity(check_count(&out_shape)? * first.dtype().size());
    let raw: Vec<Vec<u8>> = parts.iter().map(|p| p.to_le_bytes()).collect();
    let es = first.dtype().size();
    for o in 0..outer {
        for (p, r) in parts.iter().zip(&raw) {
            let chunk = p.shape()[ax] * inner * es;
            bytes.extend_from_slice(&r[o * chunk..(o + 1) * chunk]);
        }
    }
    Tensor::from_le_bytes(first.dtype(), &out_shape, &bytes).map_err(|e| invalid!("{e}"))
}

/// Split along an axis into given sizes or `num_outputs` parts (the last may be smaller).
pub fn split(
    axis: i64,
    num_outputs: usize,
    x: &Tensor,
    split: Option<&Tensor>,
) -> EvalResult<Vec<Tensor>> {
    let ax = norm_axis(axis, x.rank())?;
    let len = x.shape()[ax];
    let sizes: Vec<usize> = match split {
        Some(s) => {
            let v = ints(s, "split")?;
            if v.len() != num_outputs
                || v.iter().any(|&e| e < 0)
                || v.iter().sum::<i64>() != len as i64
            {
                return Err(invalid!("split sizes {v:?} do not divide axis {ax} of length {len} into {num_outputs} parts"));
            }
            v.into_iter().map(|e| e as usize).collect()
        }
        None => {
            if num_outputs == 0 {
                return Err(invalid!("split into 0 outputs"));
            }
            let part = len.div_ceil(num_outputs);
            (0..num_outputs)
                .map(|k| part.min(len.saturating_sub(k * part)))
                .collect()
        }
    };
    let mut outs = vec![];
    let mut start = 0;
    for s in sizes {
        let starts = Tensor::vec_i64(&[start as i64]);
        let ends = Tensor::vec_i64(&[(start + s) as i64]);
        let axes = Tensor::vec_i64(&[ax as i64]);
        let ins = [Some(x), Some(&starts), Some(&ends), Some(&axes)];
        outs.push(slice(Inputs::new(&ins))?);
        start += s;
    }
    Ok(outs)
}

/// Flatten to 2-D at an axis (axis may equal the rank).
pub fn flatten(axis: i64, x: &Tensor) -> EvalResult<Tensor> {
    let r = x.rank() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a > r {
        return Err(invalid!("axis {axis} out of range for rank {r}"));
    }
    let a = a as usize;
    let outer: usize = x.shape()[..a].iter().product();
    let inner: usize = x.shape()[a..].iter().product();
    x.clone()
        .reshape(&[outer, inner])
        .map_err(|e| invalid!("{e}"))
}

/// The output shape of Reshape.
pub fn reshape_shape(allowzero: bool, in_shape: &[usize], spec: &[i64]) -> EvalResult<Vec<usize>> {
    let total: usize = in_shape.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (k, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(k);
                out.push(1);
            }
            -1 => return Err(invalid!("shape {spec:?} has more than one -1")),
            0 if !allowzero => out.push(
                *in_shape
                    .get(k)
                    .ok_or_else(|| invalid!("shape {spec:?}: 0 at {k} beyond the input rank"))?,
            ),
            d if d >= 0 => out.push(d as usize),
            d => return Err(invalid!("shape {spec:?} has invalid dimension {d}")),
        }
    }
    if let Some(k) = infer {
        let known: usize = out.iter().product();
        if known == 0 || !total.is_multiple_of(known) {
            return Err(invalid!("cannot reshape {in_shape:?} to {spec:?}"));
        }
        out[k] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return Err(invalid!(
            "cannot reshape {in_shape:?} ({total} elements) to {spec:?}"
        ));
    }
    Ok(out)
}

/// Reshape.
pub fn reshape(allowzero: bool, x: &Tensor, shape: &Tensor) -> EvalResult<Tensor> {
    let out = reshape_shape(allowzero, x.shape(), &ints(shape, "shape")?)?;
    x.clone().reshape(&out).map_err(|e| invalid!("{e}"))
}

fn norm_axes(axes: &[i64], rank: usize) -> EvalResult<Vec<usize>> {
    let mut v: Vec<usize> = axes
        .iter()
        .map(|&a| norm_axis(a, rank))
        .collect::<EvalResult<_>>()?;
    v.sort();
    if v.windows(2).any(|w| w[0] == w[1]) {
        return Err(invalid!("repeated axes in {axes:?}"));
    }
    Ok(v)
}

/// Squeeze (all size-1 axes when none are given).
pub fn squeeze(x: &Tensor, axes: Option<&Tensor>) -> EvalResult<Tensor> {
    let axes = match axes {
        Some(a) => norm_axes(&ints(a, "axes")?, x.rank())?,
        None => (0..x.rank()).filter(|&d| x.shape()[d] == 1).collect(),
    };
    for &a in &axes {
        if x.shape()[a] != 1 {
            return Err(invalid!("cannot squeeze axis {a} of size {}", x.shape()[a]));
        }
    }
    let shape: Vec<usize> = (0..x.rank())
        .filter(|d| !axes.contains(d))
        .map(|d| x.shape()[d])
        .collect();
    x.clone().reshape(&shape).map_err(|e| invalid!("{e}"))
}

/// Unsqueeze.
pub fn unsqueeze(x: &Tensor, axes: &Tensor) -> EvalResult<Tensor> {
    let a = ints(axes, "axes")?;
    let r = x.rank() + a.len();
    let axes = norm_axes(&a, r)?;
    let mut shape = Vec::with_capacity(r);
    let mut src = x.shape().iter();
    for d in 0..r {
        if axes.contains(&d) {
            shape.push(1);
        } else {
            shape.push(
                *src.next()
                    .ok_or_else(|| invalid!("bad unsqueeze axes {a:?}"))?,
            );
        }
    }
    x.clone().reshape(&shape).map_err(|e| invalid!("{e}"))
}

/// Transpose (empty perm reverses the axes).
pub fn transpose(perm: &[usize], x: &Tensor) -> EvalResult<Tensor> {
    let r = x.rank();
    let perm: Vec<usize> = if perm.is_empty() {
        (0..r).rev().collect()
    } else {
        perm.to_vec()
    };
    let mut seen = vec![false; r];
    if perm.len() != r
        || perm
            .iter()
            .any(|&p| p >= r || std::mem::replace(&mut seen[p], true))
    {
        return Err(invalid!("perm {perm:?} is not a permutation of rank {r}"));
    }
    let ist = strides(x.shape());
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape()[p]).collect();
    let st: Vec<usize> = perm.iter().map(|&p| ist[p]).collect();
    strided(x, &shape, &st, 0)
}

/// Expand (bidirectional broadcast to a shape).
pub fn expand(x: &Tensor, shape: &Tensor) -> EvalResult<Tensor> {
    let s = ints(shape, "shape")?;
    if s.iter().any(|&d| d < 0) {
        return Err(invalid!("negative dimension in shape {s:?}"));
    }
    let s: Vec<usize> = s.iter().map(|&d| d as usize).collect();
    let out = broadcast_shapes(x.shape(), &s)?;
    check_count(&out)?;
    // Stride 0 along the broadcast axes.
    let ist = strides(x.shape());
    let lead = out.len() - x.rank();
    let st: Vec<usize> = (0..out.len())
        .map(|a| match a.checked_sub(lead) {
            Some(k) if x.shape()[k] != 1 => ist[k],
            _ => 0,
        })
        .collect();
    strided(x, &out, &st, 0)
}

/// Gather along an axis (negative indices count from the end).
pub fn gather(axis: i64, data: &Tensor, indices: &Tensor) -> EvalResult<Tensor> {
    let ax = norm_axis(axis, data.rank())?;
    let len = data.shape()[ax] as i64;
    let idx = ints(indices, "indices")?;
    let mut norm = Vec::with_capacity(idx.len());
    for &i in &idx {
        let j = if i < 0 { i + len } else { i };
        if j < 0 || j >= len {
            return Err(invalid!(
                "index {i} out of range for axis {ax} of length {len}"
            ));
        }
        norm.push(j as usize);
    }
    let outer: usize = data.shape()[..ax].iter().product();
    let inner: usize = data.shape()[ax + 1..].iter().product();
    let mut shape = data.shape()[..ax].to_vec();
    shape.extend_from_slice(indices.shape());
    shape.extend_from_slice(&data.shape()[ax + 1..]);
    let mut src = Vec::with_capacity(check_count(&shape)?);
    for o in 0..outer {
        for &j in &norm {
            for k in 0..inner {
                src.push((o * len as usize + j) * inner + k);
            }
        }
    }
    take(data, &src, &shape, None)
}

/// Shape as i64[..], sliced by start/end (clamped, ONNX-15).
pub fn shape_of(start: i64, end: Option<i64>, x: &Tensor) -> EvalResult<Tensor> {
    let r = x.rank() as i64;
    let clamp = |v: i64| if v < 0 { (v + r).clamp(0, r) } else { v.clamp(0, r) } as usize;
    let (s, e) = (clamp(start), clamp(end.unwrap_or(r)));
    let dims: Vec<i64> = if s < e {
        x.shape()[s..e].iter().map(|&d| d as i64).collect()
    } else {
        vec![]
    };
    Ok(Tensor::vec_i64(&dims))
}

/// Slice with starts/ends/axes/steps inputs (ONNX-13 clamping rules).
pub fn slice(i: Inputs) -> EvalResult<Tensor> {
    let x = i.req(0, "data")?;
    let starts = ints(i.req(1, "starts")?, "starts")?;
    let ends = ints(i.req(2, "ends")?, "ends")?;
    let r = x.rank();
    let axes: Vec<usize> = match i.opt(3) {
        Some(a) => ints(a, "axes")?
            .iter()
            .map(|&a| norm_axis(a, r))
            .collect::<EvalResult<_>>()?,
        None => (0..starts.len()).collect(),
    };
    let steps = match i.opt(4) {
        Some(s) => ints(s, "steps")?,
        None => vec![1; starts.len()],
    };
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(invalid!(
            "starts, ends, axes and steps must have the same length"
        ));
    }
    let mut st = vec![0i64; r];
    let mut step = vec![1i64; r];
    let mut cnt: Vec<usize> = x.shape().to_vec();
    let mut seen = vec![false; r];
    for k in 0..starts.len() {
        let a = axes[k];
        if std::mem::replace(&mut seen[a], true) {
            return Err(invalid!("axis {a} appears twice"));
        }
        let d = x.shape()[a] as i64;
        let s = steps[k];
        if s == 0 {
            return Err(invalid!("slice step 0"));
        }
        let fix = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
        let (b, e) = (fix(starts[k]), fix(ends[k]));
        let (b, e) = if s > 0 {
            (b.clamp(0, d), e.clamp(0, d))
        } else {
            (b.clamp(0, d - 1), e.clamp(-1, d - 1))
        };
        let n = if s > 0 {
            (e - b + s - 1).div_euclid(s).max(0)
        } else {
            (b - e + (-s) - 1).div_euclid(-s).max(0)
        };
        st[a] = b;
        step[a] = s;
        cnt[a] = n as usize;
    }
    let ist = strides(x.shape());
    check_count(&cnt)?;
    if step.iter().all(|&s| s > 0) {
        // Forward steps: one strided copy from the first selected element.
        let offset: usize = (0..r).map(|d| st[d] as usize * ist[d]).sum();
        let sst: Vec<usize> = (0..r).map(|d| step[d] as usize * ist[d]).collect();
        return strided(x, &cnt, &sst, offset);
    }
    let mut idx = Vec::with_capacity(cnt.iter().product());
    for_each_index(&cnt, |ix| {
        idx.push(
            (0..r)
                .map(|d| ((st[d] + ix[d] as i64 * step[d]) as usize) * ist[d])
                .sum(),
        );
    });
    take(x, &idx, &cnt, None)
}

/// Pad: pads input `[begins..., ends...]` over `axes` (all by default); negative pads crop.
pub fn pad(mode: PadMode, i: Inputs) -> EvalResult<Tensor> {
    let x = i.req(0, "data")?;
    let p = ints(i.req(1, "pads")?, "pads")?;
    let r = x.rank();
    let axes: Vec<usize> = match i.opt(3) {
        Some(a) => ints(a, "axes")?
            .iter()
            .map(|&a| norm_axis(a, r))
            .collect::<EvalResult<_>>()?,
        None => (0..r).collect(),
    };
    if p.len() != 2 * axes.len() {
        return Err(invalid!(
            "pads has {} values, need {} for {} axes",
            p.len(),
            2 * axes.len(),
            axes.len()
        ));
    }
    let mut before = vec![0i64; r];
    let mut after = vec![0i64; r];
    for (k, &a) in axes.iter().enumerate() {
        before[a] = p[k];
        after[a] = p[k + axes.len()];
    }
    let fill = match i.opt(2) {
        Some(v) if v.len() == 1 => Some(
            v.clone()
                .reshape(&[])
                .map_err(|e| invalid!("{e}"))?
                .cast(x.dtype()),
        ),
        Some(v) if v.is_empty() => None,
        Some(v) => {
            return Err(invalid!(
                "constant_value must be a scalar, has shape {:?}",
                v.shape()
            ))
        }
        None => None,
    };
    let mut shape = vec![0usize; r];
    for d in 0..r {
        let n = x.shape()[d] as i64 + before[d] + after[d];
        if n < 0 {
            return Err(invalid!("pads {p:?} crop axis {d} below zero"));
        }
        shape[d] = n as usize;
    }
    if mode != PadMode::Constant && (0..r).any(|d| x.shape()[d] == 0 && shape[d] > 0) {
        return Err(invalid!("cannot {mode:?}-pad an empty axis"));
    }
    let ist = strides(x.shape());
    let mut idx = Vec::with_capacity(check_count(&shape)?);
    for_each_index(&shape, |ix| {
        let mut flat = 0usize;
        for d in 0..r {
            let n = x.shape()[d] as i64;
            let mut s = ix[d] as i64 - before[d];
            if s < 0 || s >= n {
                match mode {
                    PadMode::Constant => {
                        flat = FILL;
                        break;
                    }
                    PadMode::Edge => s = s.clamp(0, n - 1),
                    PadMode::Wrap => s = s.rem_euclid(n),
                    PadMode::Reflect => {
                        if n == 1 {
                            s = 0;
                        } else {
                            let period = 2 * (n - 1);
                            s = s.rem_euclid(period);
                            if s >= n {
                                s = period - s;
                            }
                        }
                    }
                }
            }
            flat += s as usize * ist[d];
        }
        idx.push(flat);
    });
    take(x, &idx, &shape, fill.as_ref())
}

/// Range(start, limit, delta).
pub fn range(start: &Tensor, limit: &Tensor, delta: &Tensor) -> EvalResult<Tensor> {
    let d = start.dtype();
    if limit.dtype() != d
        || delta.dtype() != d
        || start.len() != 1
        || limit.len() != 1
        || delta.len() != 1
    {
        return Err(invalid!(
            "start, limit and delta must be scalars of one dtype"
        ));
    }
    if d.is_float() {
        let (s, l, dl) = (
            start.to_f64_vec()[0],
            limit.to_f64_vec()[0],
            delta.to_f64_vec()[0],
        );
        if dl == 0.0 || !dl.is_finite() {
            return Err(invalid!("range delta {dl}"));
        }
        let n = ((l - s) / dl).ceil().max(0.0);
        if n > MAX_ELEMENTS as f64 {
            return Err(invalid!("range of {n} elements is too large"));
        }
        let n = n as usize;
        // Accumulate as ONNX Runtime does: start + i * delta in the element type.
        return Ok(match start.data() {
            TensorData::F32(_) => {
                let (s, dl) = (s as f32, dl as f32);
                Tensor::from_f32(&[n], (0..n).map(|k| s + k as f32 * dl).collect()).expect("size")
            }
            _ => Tensor::from_f64(&[n], (0..n).map(|k| s + k as f64 * dl).collect())
                .expect("size")
                .into_dtype(d),
        });
    }
    let (s, l, dl) = (
        start.to_i64_vec()[0],
        limit.to_i64_vec()[0],
        delta.to_i64_vec()[0],
    );
    if dl == 0 {
        return Err(invalid!("range delta 0"));
    }
    let n = ((l - s) as f64 / dl as f64).ceil().max(0.0);
    if n > MAX_ELEMENTS as f64 {
        return Err(invalid!("range of {n} elements is too large"));
    }
    Ok(
        Tensor::from_i64(&[n as usize], (0..n as i64).map(|k| s + k * dl).collect())
            .expect("size")
            .into_dtype(d),
    )
}

/// ConstantOfShape.
pub fn constant_of_shape(value: &Tensor, shape: &Tensor) -> EvalResult<Tensor> {
    let s = ints(shape, "shape")?;
    if s.iter().any(|&d| d < 0) {
        return Err(invalid!("negative dimension in shape {s:?}"));
    }
    let s: Vec<usize> = s.iter().map(|&d| d as usize).collect();
    let n = check_count(&s)?;
    let scalar = value
        .clone()
        .reshape(&[1])
        .map_err(|e| invalid!("value: {e}"))?;
    take(&scalar, &vec![0; n], &s, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tiled path is the plain strided copy, element for element: every permutation of a
    /// rank-4 tensor with axes long and short enough to take both paths.
    #[test]
    fn tiled_transposes_equal_the_definition() {
        let shape = [2usize, 17, 33, 20];
        let n: usize = shape.iter().product();
        let x = Tensor::from_f32(&shape, (0..n).map(|i| i as f32).collect()).unwrap();
        let ist = strides(&shape);
        let perms = [
            [0, 3, 1, 2],
            [0, 2, 3, 1],
            [3, 2, 1, 0],
            [1, 0, 3, 2],
            [0, 1, 3, 2],
            [2, 0, 1, 3],
        ];
        for perm in perms {
            let t = transpose(&perm, &x).unwrap();
            let out: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
            let mut want = vec![];
            for_each_index(&out, |ix| {
                want.push(
                    ix.iter()
                        .zip(&perm)
                        .map(|(&i, &p)| i * ist[p])
                        .sum::<usize>() as f32,
                )
            });
            assert_eq!(t.shape(), out.as_slice());
            assert_eq!(t.as_f32().unwrap(), want.as_slice(), "{perm:?}");
        }
    }
}
