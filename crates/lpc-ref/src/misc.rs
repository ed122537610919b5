//! CumSum/CumProd, OneHot, EyeLike, Compress, NonZero, Unique, ReverseSequence,
//! CenterCropPad and Det.

use crate::shape_ops::{for_each_index, take, FILL};
use crate::util::{ints, norm_axis};
use crate::{invalid, EvalError, EvalResult};
use lpc_ir::{DType, Tensor, TensorData};
use std::cmp::Ordering;

/// The one integer of a one-element tensor input.
fn one_int(t: &Tensor, what: &str) -> EvalResult<i64> {
    match ints(t, what)?.as_slice() {
        [v] => Ok(*v),
        other => Err(invalid!("{what} must hold one integer, got {other:?}")),
    }
}

/// `(outer, len, inner)` of a shape split at axis `ax`.
fn split_at(shape: &[usize], ax: usize) -> (usize, usize, usize) {
    (
        shape[..ax].iter().product(),
        shape[ax],
        shape[ax + 1..].iter().product(),
    )
}

/// A running fold of `v` along an axis (outer, len, inner), starting at `id`.
fn scan<T: Copy>(
    v: &[T],
    (outer, len, inner): (usize, usize, usize),
    exclusive: bool,
    reverse: bool,
    id: T,
    f: impl Fn(T, T) -> T,
) -> Vec<T> {
    let mut out = v.to_vec();
    for o in 0..outer {
        for c in 0..inner {
            let mut acc = id;
            for step in 0..len {
                let j = if reverse { len - 1 - step } else { step };
                let at = (o * len + j) * inner + c;
                let x = v[at];
                if exclusive {
                    out[at] = acc;
                    acc = f(acc, x);
                } else {
                    acc = f(acc, x);
                    out[at] = acc;
                }
            }
        }
    }
    out
}

/// CumSum (`prod` false) or CumProd along the axis given by a one-element integer tensor.
/// Integers wrap (exact in i64, then wrapped to the dtype); f32 accumulates in f32 as ONNX
/// Runtime does, f16/f64 in f64.
pub fn cumulative(
    prod: bool,
    exclusive: bool,
    reverse: bool,
    x: &Tensor,
    axis: &Tensor,
) -> EvalResult<Tensor> {
    if x.rank() == 0 {
        return Err(invalid!("input must have rank 1 or more, got a scalar"));
    }
    let ax = norm_axis(one_int(axis, "axis")?, x.rank())?;
    let dims = split_at(x.shape(), ax);
    let d = x.dtype();
    let out = match x.data() {
        TensorData::F32(v) => {
            let (id, f): (f32, fn(f32, f32) -> f32) = if prod {
                (1.0, |a, b| a * b)
            } else {
                (0.0, |a, b| a + b)
            };
            TensorData::F32(scan(v, dims, exclusive, reverse, id, f))
        }
        _ if d.is_float() => {
            let (id, f): (f64, fn(f64, f64) -> f64) = if prod {
                (1.0, |a, b| a * b)
            } else {
                (0.0, |a, b| a + b)
            };
            let v = scan(&x.to_f64_vec(), dims, exclusive, reverse, id, f);
            return Ok(Tensor::from_f64(x.shape(), v).expect("size").into_dtype(d));
        }
        _ if d.is_int() => {
            let (id, f): (i64, fn(i64, i64) -> i64) = if prod {
                (1, i64::wrapping_mul)
            } else {
                (0, i64::wrapping_add)
            };
            let v = scan(&x.to_i64_vec(), dims, exclusive, reverse, id, f);
            return Ok(Tensor::from_i64(x.shape(), v).expect("size").into_dtype(d));
        }
        _ => {
            return Err(EvalError::DType {
                slot: 0,
                what: "x",
                got: d,
                expected: "a numeric type",
            })
        }
    };
    Tensor::new(x.shape(), out).map_err(|e| invalid!("{e}"))
}

/// OneHot: `values[1]` where the (depth-wrapped) index equals the position along the new axis,
/// `values[0]` elsewhere; an index outside `[-depth, depth)` gives an all-off row.
pub fn one_hot(axis: i64, indices: &Tensor, depth: &Tensor, values: &Tensor) -> EvalResult<Tensor> {
    if depth.dtype() == DType::Bool || indices.dtype() == DType::Bool {
        return Err(invalid!("indices and depth must be numeric"));
    }
    let depth = match depth.to_f64_vec().as_slice() {
        [d] if *d >= 1.0 => *d as i64,
        other => {
            return Err(invalid!(
                "depth must be one value of at least 1, got {other:?}"
            ))
        }
    };
    if values.len() != 2 {
        return Err(invalid!(
            "values must hold [off, on], got {} elements",
            values.len()
        ));
    }
    let ax = norm_axis(axis, indices.rank() + 1)?;
    let (outer, inner) = (
        indices.shape()[..ax].iter().product::<usize>(),
        indices.shape()[ax..].iter().product::<usize>(),
    );
    let d = depth as usize;
    let mut shape = indices.shape().to_vec();
    shape.insert(ax, d);
    let n = outer
        .checked_mul(d)
        .and_then(|n| n.checked_mul(inner))
        .filter(|&n| n <= 1 << 31)
        .ok_or_else(|| invalid!("output of {shape:?} is too large"))?;
    let idx = indices.to_i64_vec();
    let mut src = vec![0usize; n];
    for o in 0..outer {
        for c in 0..inner {
            let i = idx[o * inner + c];
            let i = if i < 0 { i + depth } else { i };
            if (0..depth).contains(&i) {
                src[(o * d + i as usize) * inner + c] = 1;
            }
        }
    }
    take(values, &src, &shape, None)
}

/// EyeLike: x's shape and dtype, ones on diagonal `k` (`j - i == k`), zeros elsewhere.
pub fn eye_like(k: i64, x: &Tensor) -> EvalResult<Tensor> {
    let [rows, cols] = *x.shape() else {
        return Err(invalid!("input must have rank 2, got {}", x.rank()));
    };
    let v = (0..rows * cols)
        .map(|f| i64::from((f % cols) as i64 - (f / cols) as i64 == k))
        .collect();
    Ok(Tensor::from_i64(x.shape(), v)
        .expect("size")
        .into_dtype(x.dtype()))
}

/// Compress: the slices of x along `axis` (the elements of flattened x when `None`) whose
/// condition is true; a condition shorter than the axis drops the rest, extra entries are
/// ignored (ONNX Runtime).
pub fn compress(axis: Option<i64>, x: &Tensor, cond: &Tensor) -> EvalResult<Tensor> {
    let c = cond.as_bool().map_err(|_| EvalError::DType {
        slot: 1,
        what: "condition",
        got: cond.dtype(),
        expected: "bool",
    })?;
    if cond.rank() != 1 {
        return Err(invalid!("condition must be 1-D, got rank {}", cond.rank()));
    }
    let (flat, ax) = match axis {
        None => (vec![x.len()], 0),
        Some(a) => (x.shape().to_vec(), norm_axis(a, x.rank())?),
    };
    if flat.is_empty() {
        return Err(invalid!("compress along an axis needs rank 1 or more"));
    }
    let (outer, len, inner) = split_at(&flat, ax);
    let kept: Vec<usize> = (0..len).filter(|&j| c.get(j) == Some(&true)).collect();
    let mut src = Vec::with_capacity(outer * kept.len() * inner);
    for o in 0..outer {
        for &j in &kept {
            src.extend((0..inner).map(|i| (o * len + j) * inner + i));
        }
    }
    let mut shape = flat;
    shape[ax] = kept.len();
    take(x, &src, &shape, None)
}

/// NonZero: the multi-indices of the non-zero (true, NaN included) elements in row-major
/// order, as i64 `[rank, count]`; a scalar counts as rank 1.
pub fn non_zero(x: &Tensor) -> EvalResult<Tensor> {
    let shape: Vec<usize> = if x.rank() == 0 {
        vec![1]
    } else {
        x.shape().to_vec()
    };
    let v = x.to_f64_vec();
    let mut hits: Vec<Vec<usize>> = vec![];
    let mut flat = 0;
    for_each_index(&shape, |ix| {
        if v[flat] != 0.0 {
            hits.push(ix.to_vec());
        }
        flat += 1;
    });
    let r = shape.len();
    let n = hits.len();
    let mut out = vec![0i64; r * n];
    for (k, ix) in hits.iter().enumerate() {
        for (a, &i) in ix.iter().enumerate() {
            out[a * n + k] = i as i64;
        }
    }
    Tensor::from_i64(&[r, n], out).map_err(|e| invalid!("{e}"))
}

/// Compares two elements of one tensor: integers as i64 (exact), floats as f64 with NaN
/// after every number and equal to itself.
fn element_order(x: &Tensor) -> Box<dyn Fn(usize, usize) -> Ordering + '_> {
    if x.dtype().is_float() {
        let v = x.to_f64_vec();
        Box::new(move |a, b| {
            let (p, q) = (v[a], v[b]);
            p.partial_cmp(&q)
                .unwrap_or_else(|| p.is_nan().cmp(&q.is_nan()))
        })
    } else {
        let v = x.to_i64_vec();
        Box::new(move |a, b| v[a].cmp(&v[b]))
    }
}

/// Unique: the distinct elements (flattened x, `axis` `None`) or slices along `axis`, sorted
/// ascending (slices lexicographically) or in order of first occurrence, with their first
/// indices, the inverse indices of every input element/slice and the counts (i64).
pub fn unique(
    sorted: bool,
    axis: Option<i64>,
    x: &Tensor,
    n_outputs: usize,
) -> EvalResult<Vec<Tensor>> {
    let (flat, ax) = match axis {
        None => (vec![x.len()], 0),
        Some(a) => (x.shape().to_vec(), norm_axis(a, x.rank())?),
    };
    if flat.is_empty() {
        return Err(invalid!("unique along an axis needs rank 1 or more"));
    }
    let (outer, len, inner) = split_at(&flat, ax);
    let elem = element_order(x);
    let slice_cmp = |p: usize, q: usize| {
        for o in 0..outer {
            for c in 0..inner {
                let ord = elem((o * len + p) * inner + c, (o * len + q) * inner + c);
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
        Ordering::Equal
    };
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by(|&p, &q| slice_cmp(p, q).then(p.cmp(&q)));
    // Groups of equal slices in sorted order: (first index, count).
    let mut groups: Vec<(usize, usize)> = vec![];
    let mut group_of = vec![0usize; len];
    for (k, &j) in order.iter().enumerate() {
        if k == 0 || slice_cmp(order[k - 1], j) != Ordering::Equal {
            groups.push((j, 0));
        }
        let g = groups.len() - 1;
        groups[g].1 += 1;
        group_of[j] = g;
    }
    // Output rank of each group: sorted order, or by first occurrence.
    let mut rank: Vec<usize> = (0..groups.len()).collect();
    if !sorted {
        let mut by_first = rank.clone();
        by_first.sort_by_key(|&g| groups[g].0);
        for (r, &g) in by_first.iter().enumerate() {
            rank[g] = r;
        }
    }
    let u = groups.len();
    let mut firsts = vec![0i64; u];
    let mut counts = vec![0i64; u];
    for (g, &(first, count)) in groups.iter().enumerate() {
        firsts[rank[g]] = first as i64;
        counts[rank[g]] = count as i64;
    }
    let inverse: Vec<i64> = group_of.iter().map(|&g| rank[g] as i64).collect();
    let mut src = Vec::with_capacity(outer * u * inner);
    for o in 0..outer {
        for &j in &firsts {
            src.extend((0..inner).map(|c| (o * len + j as usize) * inner + c));
        }
    }
    let mut shape = flat;
    shape[ax] = u;
    let i64s = |v: Vec<i64>| Tensor::from_i64(&[v.len()], v).map_err(|e| invalid!("{e}"));
    let mut out = vec![take(x, &src, &shape, None)?];
    if n_outputs > 1 {
        out.push(i64s(firsts)?);
        out.push(i64s(inverse)?);
        out.push(i64s(counts)?);
    }
    Ok(out)
}

/// ReverseSequence: along `time_axis`, the first `sequence_lens[b]` elements of each batch
/// entry `b` (along `batch_axis`) are reversed, the rest copied.
pub fn reverse_sequence(
    batch_axis: usize,
    time_axis: usize,
    x: &Tensor,
    lens: &Tensor,
) -> EvalResult<Tensor> {
    if x.rank() < 2 || batch_axis > 1 || time_axis > 1 || batch_axis == time_axis {
        return Err(invalid!(
            "needs rank 2 or more (got {}) with batch_axis and time_axis 0 and 1",
            x.rank()
        ));
    }
    let lens = ints(lens, "sequence_lens")?;
    let (batch, time) = (x.shape()[batch_axis], x.shape()[time_axis]);
    if lens.len() != batch {
        return Err(invalid!(
            "sequence_lens has {} entries for batch size {batch}",
            lens.len()
        ));
    }
    if let Some(l) = lens.iter().find(|&&l| l < 0 || l as usize > time) {
        return Err(invalid!("sequence length {l} is outside [0, {time}]"));
    }
    let inner: usize = x.shape()[2..].iter().product();
    let (d0, d1) = (x.shape()[0], x.shape()[1]);
    let mut src = Vec::with_capacity(x.len());
    for i0 in 0..d0 {
        for i1 in 0..d1 {
            let (b, t) = if batch_axis == 0 { (i0, i1) } else { (i1, i0) };
            let l = lens[b] as usize;
            let t2 = if t < l { l - 1 - t } else { t };
            let (j0, j1) = if batch_axis == 0 { (i0, t2) } else { (t2, i1) };
            src.extend((0..inner).map(|c| (j0 * d1 + j1) * inner + c));
        }
    }
    take(x, &src, x.shape(), None)
}

/// CenterCropPad: each of `axes` (all when empty) is cropped to or zero-padded to the size in
/// `shape`, centred (an odd difference puts the extra element at the end).
pub fn center_crop_pad(axes: &[i64], x: &Tensor, shape: &Tensor) -> EvalResult<Tensor> {
    let target = ints(shape, "shape")?;
    let axes: Vec<usize> = if axes.is_empty() {
        (0..x.rank()).collect()
    } else {
        axes.iter()
            .map(|&a| norm_axis(a, x.rank()))
            .collect::<EvalResult<_>>()?
    };
    if target.len() != axes.len() {
        return Err(invalid!(
            "shape has {} entries for {} axes",
            target.len(),
            axes.len()
        ));
    }
    let mut out_shape = x.shape().to_vec();
    // Offset of output index 0 in the input, per axis (negative: padding before).
    let mut offset = vec![0i64; x.rank()];
    for (&a, &t) in axes.iter().zip(&target) {
        if t < 0 {
            return Err(invalid!("shape entry {t} is negative"));
        }
        let n = x.shape()[a] as i64;
        offset[a] = if t <= n { (n - t) / 2 } else { -((t - n) / 2) };
        out_shape[a] = t as usize;
    }
    let in_strides = crate::util::strides(x.shape());
    let n: usize = out_shape.iter().product();
    let mut src = Vec::with_capacity(n);
    for_each_index(&out_shape, |ix| {
        let mut at = 0;
        for (a, &i) in ix.iter().enumerate() {
            let j = i as i64 + offset[a];
            if j < 0 || j >= x.shape()[a] as i64 {
                src.push(FILL);
                return;
            }
            at += j as usize * in_strides[a];
        }
        src.push(at);
    });
    take(x, &src, &out_shape, None)
}

/// Determinant of one row-major `n`×`n` matrix: LU decomposition with partial pivoting in f64.
fn det_f64(mut m: Vec<f64>, n: usize) -> f64 {
    let mut det = 1.0;
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&p, &q| m[p * n + col].abs().total_cmp(&m[q * n + col].abs()))
            .expect("non-empty range");
        if m[pivot * n + col] == 0.0 {
            return 0.0;
        }
        if pivot != col {
            for k in 0..n {
                m.swap(pivot * n + k, col * n + k);
            }
            det = -det;
        }
        let p = m[col * n + col];
        det *= p;
        for r in col + 1..n {
            let f = m[r * n + col] / p;
            for k in col..n {
                m[r * n + k] -= f * m[col * n + k];
            }
        }
    }
    det
}

/// Det: the determinant of each square matrix of the last two axes.
pub fn det(x: &Tensor) -> EvalResult<Tensor> {
    let d = x.dtype();
    if !d.is_float() {
        return Err(EvalError::DType {
            slot: 0,
            what: "x",
            got: d,
            expected: "a float type",
        });
    }
    let r = x.rank();
    if r < 2 || x.shape()[r - 1] != x.shape()[r - 2] {
        return Err(invalid!(
            "input must be square matrices (rank 2 or more), got shape {:?}",
            x.shape()
        ));
    }
    let n = x.shape()[r - 1];
    let v = x.to_f64_vec();
    let batch: usize = x.shape()[..r - 2].iter().product();
    let out = (0..batch)
        .map(|b| det_f64(v[b * n * n..(b + 1) * n * n].to_vec(), n))
        .collect();
    Ok(Tensor::from_f64(&x.shape()[..r - 2], out)
        .expect("size")
        .into_dtype(d))
}

/// Col2Im: each column `l` of x `[N, C·∏block, L]` holds one block position; its entries are
/// added into the image `[N, C, *image_shape]` at `position·stride − pad_begin + offset·dilation`
/// (entries falling in the padding are dropped). The float sum is in f64.
pub fn col2im(
    dilations: &[usize],
    pads: &[usize],
    strides: &[usize],
    x: &Tensor,
    image_shape: &Tensor,
    block_shape: &Tensor,
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
    let (image, block) = (
        ints(image_shape, "image_shape")?,
        ints(block_shape, "block_shape")?,
    );
    let grid = lpc_ir::col2im_blocks(&image, &block, dilations, pads, strides)
        .map_err(|e| invalid!("{e}"))?;
    let [n, cb, l] = *x.shape() else {
        return Err(invalid!("input must have rank 3, got {}", x.rank()));
    };
    let block: Vec<usize> = block.iter().map(|&b| b as usize).collect();
    let image: Vec<usize> = image.iter().map(|&v| v as usize).collect();
    let prod: usize = block.iter().product();
    if cb % prod != 0 || l != grid.iter().product::<usize>() {
        return Err(invalid!(
            "input {:?} does not match block size {prod} and {} block positions",
            x.shape(),
            grid.iter().product::<usize>()
        ));
    }
    let c = cb / prod;
    let r = image.len();
    let img_len: usize = image.iter().product();
    let istrides = crate::util::strides(&image);
    let at = |i: usize, dflt: usize, v: &[usize]| v.get(i).copied().unwrap_or(dflt);
    let v = x.to_f64_vec();
    let mut out = vec![0.0f64; n * c * img_len];
    for_each_index(&block, |bix| {
        let b_flat: usize = bix.iter().zip(&block).fold(0, |f, (&i, &s)| f * s + i);
        for_each_index(&grid, |gix| {
            let l_flat: usize = gix.iter().zip(&grid).fold(0, |f, (&i, &s)| f * s + i);
            let mut pos = 0;
            for a in 0..r {
                let p = (gix[a] * at(a, 1, strides) + bix[a] * at(a, 1, dilations)) as i64
                    - at(a, 0, pads) as i64;
                if p < 0 || p >= image[a] as i64 {
                    return;
                }
                pos += p as usize * istrides[a];
            }
            for b in 0..n {
                for ch in 0..c {
                    let src = (b * cb + ch * prod + b_flat) * l + l_flat;
                    out[(b * c + ch) * img_len + pos] += v[src];
                }
            }
        });
    });
    let mut shape = vec![n, c];
    shape.extend(&image);
    Ok(Tensor::from_f64(&shape, out).expect("size").into_dtype(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape, v.to_vec()).expect("size")
    }

    #[test]
    fn cumulative_exclusive_reverse_and_integer_wrap() {
        let x = f32s(&[3], &[1.0, 2.0, 3.0]);
        let ax = Tensor::vec_i64(&[0]);
        let run = |prod, exclusive, reverse| {
            cumulative(prod, exclusive, reverse, &x, &ax)
                .expect("scan")
                .to_f32_vec()
        };
        assert_eq!(run(false, false, false), [1.0, 3.0, 6.0]);
        assert_eq!(run(false, true, true), [5.0, 3.0, 0.0]);
        assert_eq!(run(true, true, false), [1.0, 1.0, 2.0]);
        assert_eq!(run(true, false, true), [6.0, 6.0, 3.0]);
        let big = Tensor::from_i32(&[2], vec![i32::MAX, 1]).expect("size");
        let s = cumulative(false, false, false, &big, &ax).expect("scan");
        assert_eq!(s.into_i32().expect("i32"), [i32::MAX, i32::MIN]);
        let m = f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let rows = cumulative(false, false, false, &m, &Tensor::vec_i64(&[-1])).expect("scan");
        assert_eq!(rows.to_f32_vec(), [1.0, 3.0, 3.0, 7.0]);
        assert!(cumulative(false, false, false, &m, &Tensor::vec_i64(&[2])).is_err());
        assert!(cumulative(false, false, false, &m, &Tensor::vec_i64(&[0, 1])).is_err());
    }

    #[test]
    fn one_hot_wraps_negative_and_drops_out_of_range_indices() {
        let idx = Tensor::vec_i64(&[0, -1, 3]);
        let depth = Tensor::scalar_i64(3);
        let values = f32s(&[2], &[-1.0, 5.0]);
        let y = one_hot(-1, &idx, &depth, &values).expect("one_hot");
        assert_eq!(y.shape(), [3, 3]);
        assert_eq!(
            y.to_f32_vec(),
            [5.0, -1.0, -1.0, -1.0, -1.0, 5.0, -1.0, -1.0, -1.0]
        );
        let t = one_hot(0, &idx, &depth, &values).expect("one_hot");
        assert_eq!(
            t.to_f32_vec(),
            [5.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, 5.0, -1.0]
        );
        assert!(one_hot(-1, &idx, &Tensor::scalar_i64(0), &values).is_err());
        assert!(one_hot(-1, &idx, &depth, &f32s(&[3], &[0.0; 3])).is_err());
    }

    #[test]
    fn eye_like_off_diagonal_keeps_dtype() {
        let x = Tensor::zeros(DType::I32, &[2, 3]);
        let y = eye_like(1, &x).expect("eye");
        assert_eq!(y.into_i32().expect("i32"), [0, 1, 0, 0, 0, 1]);
        let y = eye_like(-1, &Tensor::zeros(DType::F32, &[3, 2])).expect("eye");
        assert_eq!(y.to_f32_vec(), [0.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
        assert!(eye_like(0, &Tensor::zeros(DType::F32, &[2])).is_err());
    }

    #[test]
    fn compress_short_condition_and_flatten() {
        let x = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let c = Tensor::from_bool(&[2], vec![false, true]).expect("size");
        let y = compress(Some(1), &x, &c).expect("compress");
        assert_eq!((y.shape(), y.to_f32_vec()), (&[2, 1][..], vec![2.0, 5.0]));
        let y = compress(None, &x, &c).expect("compress");
        assert_eq!((y.shape(), y.to_f32_vec()), (&[1][..], vec![2.0]));
        let y = compress(Some(-2), &x, &c).expect("compress");
        assert_eq!(y.to_f32_vec(), [4.0, 5.0, 6.0]);
        assert!(compress(Some(0), &x, &Tensor::vec_i64(&[1])).is_err());
    }

    #[test]
    fn non_zero_counts_nan_and_treats_a_scalar_as_rank_1() {
        let x = f32s(&[2, 2], &[0.0, f32::NAN, -0.0, 2.0]);
        let y = non_zero(&x).expect("non_zero");
        assert_eq!(y.shape(), [2, 2]);
        assert_eq!(y.to_i64_vec(), [0, 1, 1, 1]);
        let s = non_zero(&Tensor::scalar_i64(7)).expect("non_zero");
        assert_eq!((s.shape(), s.to_i64_vec()), (&[1, 1][..], vec![0]));
    }

    #[test]
    fn unique_sorted_and_by_first_occurrence() {
        let x = f32s(&[5], &[2.0, 1.0, f32::NAN, 2.0, 1.0]);
        let out = unique(true, None, &x, 4).expect("unique");
        assert_eq!(out[0].to_f32_vec()[..2], [1.0, 2.0]);
        assert!(out[0].to_f32_vec()[2].is_nan());
        assert_eq!(out[1].to_i64_vec(), [1, 0, 2]);
        assert_eq!(out[2].to_i64_vec(), [1, 0, 2, 1, 0]);
        assert_eq!(out[3].to_i64_vec(), [2, 2, 1]);
        let out = unique(false, None, &x, 4).expect("unique");
        assert_eq!(out[1].to_i64_vec(), [0, 1, 2]);
        assert_eq!(out[2].to_i64_vec(), [0, 1, 2, 0, 1]);
        let rows = Tensor::vec_i64(&[3, 3, 1, 1])
            .reshape(&[2, 2])
            .expect("reshape");
        let out = unique(true, Some(1), &rows, 1).expect("unique");
        assert_eq!((out.len(), out[0].shape()), (1, &[2, 1][..]));
        assert_eq!(out[0].to_i64_vec(), [3, 1]);
    }

    #[test]
    fn reverse_sequence_per_batch_lengths() {
        // time_axis 0, batch_axis 1: columns are sequences.
        let x = f32s(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let lens = Tensor::vec_i64(&[3, 1]);
        let y = reverse_sequence(1, 0, &x, &lens).expect("reverse");
        assert_eq!(y.to_f32_vec(), [5.0, 2.0, 3.0, 4.0, 1.0, 6.0]);
        assert!(reverse_sequence(1, 0, &x, &Tensor::vec_i64(&[4, 1])).is_err());
        assert!(reverse_sequence(1, 0, &x, &Tensor::vec_i64(&[1])).is_err());
    }

    #[test]
    fn center_crop_pad_odd_differences() {
        let x = f32s(&[1, 3], &[1.0, 2.0, 3.0]);
        let y = center_crop_pad(&[-1], &x, &Tensor::vec_i64(&[2])).expect("crop");
        assert_eq!(y.to_f32_vec(), [1.0, 2.0]);
        let y = center_crop_pad(&[1], &x, &Tensor::vec_i64(&[6])).expect("pad");
        assert_eq!(y.to_f32_vec(), [0.0, 1.0, 2.0, 3.0, 0.0, 0.0]);
        let y = center_crop_pad(&[], &x, &Tensor::vec_i64(&[2, 1])).expect("both");
        assert_eq!((y.shape(), y.to_f32_vec()), (&[2, 1][..], vec![2.0, 0.0]));
        assert!(center_crop_pad(&[], &x, &Tensor::vec_i64(&[2])).is_err());
    }

    #[test]
    fn col2im_adds_overlapping_blocks_and_drops_padding() {
        // One channel, 1x3 image, 1x2 blocks, stride 1: two positions that overlap at x=1.
        let x = f32s(&[1, 2, 2], &[1.0, 2.0, 10.0, 20.0]);
        let (image, block) = (Tensor::vec_i64(&[1, 3]), Tensor::vec_i64(&[1, 2]));
        let y = col2im(&[], &[], &[], &x, &image, &block).expect("col2im");
        assert_eq!(y.shape(), [1, 1, 1, 3]);
        assert_eq!(y.to_f32_vec(), [1.0, 12.0, 20.0]);
        // A pad of 1 on the left: three positions, the first block's left entry is dropped.
        let x = f32s(&[1, 2, 3], &[1.0, 2.0, 3.0, 10.0, 20.0, 30.0]);
        let y = col2im(&[], &[0, 1, 0, 0], &[], &x, &image, &block).expect("col2im");
        assert_eq!(y.to_f32_vec(), [12.0, 23.0, 30.0]);
        assert!(col2im(&[], &[], &[], &x, &image, &block).is_err());
        assert!(col2im(&[], &[], &[0, 1], &x, &image, &block).is_err());
    }

    #[test]
    fn det_with_pivoting_and_batches() {
        let m = f32s(&[2, 2, 2], &[0.0, 1.0, 1.0, 0.0, 2.0, 1.0, 4.0, 3.0]);
        assert_eq!(det(&m).expect("det").to_f32_vec(), [-1.0, 2.0]);
        let s = f32s(&[3, 3], &[1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 0.0, 1.0, 1.0]);
        assert_eq!(det(&s).expect("det").to_f32_vec(), [0.0]);
        assert!(det(&f32s(&[2, 3], &[0.0; 6])).is_err());
        assert!(det(&Tensor::vec_i64(&[1])).is_err());
    }
}
