//! Indexing and rearranging ops: GatherElements, GatherND, ScatterElements, ScatterND, Tile,
//! DepthToSpace and SpaceToDepth. Gathers and rearrangements are "take these flat source
//! indices" (`take`, every dtype); scatters write into a copy of the data.

use crate::shape_ops::{check_count, take};
use crate::util::{ints, norm_axis, strides};
use crate::{invalid, EvalResult};
use lpc_ir::{ArgAttrs, BlockOrder, DType, ScatterReduction, Tensor, TensorData};

/// An index along an axis of length `len`, negative counting from the end.
fn index_in(i: i64, len: usize, what: &str) -> EvalResult<usize> {
    let j = if i < 0 { i + len as i64 } else { i };
    if j < 0 || j >= len as i64 {
        return Err(invalid!(
            "{what} {i} out of range for an axis of length {len}"
        ));
    }
    Ok(j as usize)
}

/// The flat positions in a tensor of `shape` of the elements of `idx` (a tensor of the same
/// rank), each with its coordinate along `axis` replaced by its value.
fn element_positions(shape: &[usize], idx: &Tensor, axis: i64) -> EvalResult<Vec<usize>> {
    if idx.rank() != shape.len() {
        return Err(invalid!(
            "indices have rank {}, data rank {}",
            idx.rank(),
            shape.len()
        ));
    }
    let ax = norm_axis(axis, shape.len())?;
    let (ds, is) = (strides(shape), strides(idx.shape()));
    let values = ints(idx, "indices")?;
    let mut out = Vec::with_capacity(values.len());
    for (flat, &v) in values.iter().enumerate() {
        let mut pos = 0;
        for d in 0..shape.len() {
            let c = (flat / is[d]) % idx.shape()[d];
            let c = if d == ax {
                index_in(v, shape[d], "index")?
            } else if c >= shape[d] {
                return Err(invalid!(
                    "indices of shape {:?} do not fit data of shape {shape:?} off axis {ax}",
                    idx.shape()
                ));
            } else {
                c
            };
            pos += c * ds[d];
        }
        out.push(pos);
    }
    Ok(out)
}

/// GatherElements: the output has the shape of indices.
pub fn gather_elements(axis: i64, data: &Tensor, idx: &Tensor) -> EvalResult<Tensor> {
    let pos = element_positions(data.shape(), idx, axis)?;
    take(data, &pos, idx.shape(), None)
}

/// The index tuples of `idx`'s last axis as offsets of slices of `data_shape`, starting at
/// axis `batch_dims`; returns (offsets, slice length). Batch `b` of the leading `batch_dims`
/// axes addresses only its own part of the data.
fn tuple_offsets(
    data_shape: &[usize],
    idx: &Tensor,
    batch_dims: usize,
) -> EvalResult<(Vec<usize>, usize)> {
    let (r, q) = (data_shape.len(), idx.rank());
    if q == 0 || batch_dims >= q.min(r) {
        return Err(invalid!(
            "batch_dims {batch_dims} must be below the ranks of data ({r}) and indices ({q})"
        ));
    }
    let k = idx.shape()[q - 1];
    if k == 0 || batch_dims + k > r {
        return Err(invalid!(
            "index tuples of length {k} with batch_dims {batch_dims} do not fit data of rank {r}"
        ));
    }
    if idx.shape()[..batch_dims] != data_shape[..batch_dims] {
        return Err(invalid!(
            "batch axes of indices {:?} and data {data_shape:?} differ",
            idx.shape()
        ));
    }
    let ds = strides(data_shape);
    let slice: usize = data_shape[batch_dims + k..].iter().product();
    let batch_len: usize = data_shape[batch_dims..].iter().product();
    let per_batch: usize = idx.shape()[batch_dims..q - 1].iter().product();
    let values = ints(idx, "indices")?;
    let mut out = Vec::with_capacity(values.len() / k);
    for (t, tuple) in values.chunks(k).enumerate() {
        let mut pos = (t / per_batch.max(1)) * batch_len;
        for (j, &v) in tuple.iter().enumerate() {
            let a = batch_dims + j;
            pos += index_in(v, data_shape[a], "index")? * ds[a];
        }
        out.push(pos);
    }
    Ok((out, slice))
}

/// GatherND: shape `indices.shape[..q-1] ++ data.shape[batch_dims + k..]`.
pub fn gather_nd(batch_dims: usize, data: &Tensor, idx: &Tensor) -> EvalResult<Tensor> {
    let (offsets, slice) = tuple_offsets(data.shape(), idx, batch_dims)?;
    let k = idx.shape()[idx.rank() - 1];
    let mut shape = idx.shape()[..idx.rank() - 1].to_vec();
    shape.extend_from_slice(&data.shape()[batch_dims + k..]);
    let mut src = Vec::with_capacity(check_count(&shape)?);
    for o in offsets {
        src.extend(o..o + slice);
    }
    take(data, &src, &shape, None)
}

/// A copy of `data` with `updates[j]` combined into element `pos[j]`, in order.
fn scatter_at(
    data: &Tensor,
    pos: &[usize],
    updates: &Tensor,
    red: ScatterReduction,
) -> EvalResult<Tensor> {
    if updates.len() != pos.len() {
        return Err(invalid!(
            "{} updates for {} positions",
            updates.len(),
            pos.len()
        ));
    }
    macro_rules! go {
        ($d:expr, $u:expr, $var:ident, $add:expr, $mul:expr) => {{
            let mut out = $d.clone();
            for (&p, &u) in pos.iter().zip($u.iter()) {
                let o = out[p];
                out[p] = match red {
                    ScatterReduction::None => u,
                    ScatterReduction::Add => $add(o, u),
                    ScatterReduction::Mul => $mul(o, u),
                    ScatterReduction::Max if u > o => u,
                    ScatterReduction::Min if u < o => u,
                    ScatterReduction::Max | ScatterReduction::Min => o,
                };
            }
            TensorData::$var(out)
        }};
    }
    let out = match (data.data(), updates.data()) {
        (TensorData::F32(d), TensorData::F32(u)) => go!(d, u, F32, |a, b| a + b, |a, b| a * b),
        (TensorData::F64(d), TensorData::F64(u)) => go!(d, u, F64, |a, b| a + b, |a, b| a * b),
        (TensorData::F16(d), TensorData::F16(u)) => go!(d, u, F16, |a, b| a + b, |a, b| a * b),
        (TensorData::I8(d), TensorData::I8(u)) => {
            go!(d, u, I8, i8::wrapping_add, i8::wrapping_mul)
        }
        (TensorData::U8(d), TensorData::U8(u)) => {
            go!(d, u, U8, u8::wrapping_add, u8::wrapping_mul)
        }
        (TensorData::I32(d), TensorData::I32(u)) => {
            go!(d, u, I32, i32::wrapping_add, i32::wrapping_mul)
        }
        (TensorData::I64(d), TensorData::I64(u)) => {
            go!(d, u, I64, i64::wrapping_add, i64::wrapping_mul)
        }
        (TensorData::Bool(d), TensorData::Bool(u)) => {
            go!(d, u, Bool, |a: bool, b: bool| a | b, |a: bool, b: bool| a
                & b)
        }
        _ => {
            return Err(invalid!(
                "updates are {}, data {}",
                updates.dtype(),
                data.dtype()
            ))
        }
    };
    Tensor::new(data.shape(), out).map_err(|e| invalid!("{e}"))
}

/// ScatterElements: indices and updates of one shape.
pub fn scatter_elements(
    axis: i64,
    red: ScatterReduction,
    data: &Tensor,
    idx: &Tensor,
    updates: &Tensor,
) -> EvalResult<Tensor> {
    if idx.shape() != updates.shape() {
        return Err(invalid!(
            "indices {:?} and updates {:?} differ in shape",
            idx.shape(),
            updates.shape()
        ));
    }
    let pos = element_positions(data.shape(), idx, axis)?;
    scatter_at(data, &pos, updates, red)
}

/// ScatterND: updates of shape `indices.shape[..q-1] ++ data.shape[k..]`.
pub fn scatter_nd(
    red: ScatterReduction,
    data: &Tensor,
    idx: &Tensor,
    updates: &Tensor,
) -> EvalResult<Tensor> {
    // batch_dims 0: `tuple_offsets` needs the data rank above 0, which ScatterND has too.
    let (offsets, slice) = tuple_offsets(data.shape(), idx, 0)?;
    let k = idx.shape()[idx.rank() - 1];
    let mut want = idx.shape()[..idx.rank() - 1].to_vec();
    want.extend_from_slice(&data.shape()[k..]);
    if updates.shape() != want.as_slice() {
        return Err(invalid!(
            "updates have shape {:?}, indices {:?} and data {:?} need {want:?}",
            updates.shape(),
            idx.shape(),
            data.shape()
        ));
    }
    let pos: Vec<usize> = offsets.iter().flat_map(|&o| o..o + slice).collect();
    scatter_at(data, &pos, updates, red)
}

/// Tile: each axis repeated `repeats[i]` times.
pub fn tile(x: &Tensor, repeats: &Tensor) -> EvalResult<Tensor> {
    let reps = ints(repeats, "repeats")?;
    if reps.len() != x.rank() {
        return Err(invalid!(
            "repeats has {} values for an input of rank {}",
            reps.len(),
            x.rank()
        ));
    }
    let mut shape = Vec::with_capacity(x.rank());
    for (&d, &r) in x.shape().iter().zip(&reps) {
        let r =
            usize::try_from(r).map_err(|_| invalid!("repeats {reps:?} has a negative value"))?;
        shape.push(
            d.checked_mul(r)
                .ok_or_else(|| invalid!("repeats {reps:?} overflow"))?,
        );
    }
    check_count(&shape)?;
    // Output axis a is (repeat, element) = [reps[a], d[a]] in row-major order: the input read
    // with stride 0 across the repeats.
    let xs = strides(x.shape());
    let mut view = Vec::with_capacity(2 * x.rank());
    let mut st = Vec::with_capacity(2 * x.rank());
    for (a, &d) in x.shape().iter().enumerate() {
        view.extend([shape[a] / d.max(1), d]);
        st.extend([0, xs[a]]);
    }
    crate::shape_ops::strided(x, &view, &st, 0)?
        .reshape(&shape)
        .map_err(|e| invalid!("{e}"))
}

fn nchw(x: &Tensor, what: &str) -> EvalResult<[usize; 4]> {
    match *x.shape() {
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(invalid!(
            "{what} needs an NCHW input, got shape {:?}",
            x.shape()
        )),
    }
}

/// DepthToSpace: `[N, C, H, W]` → `[N, C/b², H·b, W·b]`.
pub fn depth_to_space(b: usize, mode: BlockOrder, x: &Tensor) -> EvalResult<Tensor> {
    let [n, c, h, w] = nchw(x, "DepthToSpace")?;
    let blocks = b.checked_mul(b).filter(|&bb| bb > 0 && c % bb == 0);
    let (Some(bb), Some(ho), Some(wo)) = (blocks, h.checked_mul(b), w.checked_mul(b)) else {
        return Err(invalid!(
            "{c} channels of {h}x{w} do not split into {b}x{b} blocks"
        ));
    };
    let co = c / bb;
    let shape = [n, co, ho, wo];
    let mut src = Vec::with_capacity(check_count(&shape)?);
    for ni in 0..n {
        for ci in 0..co {
            for y in 0..ho {
                for xx in 0..wo {
                    let (i, j) = (y % b, xx % b);
                    let cin = match mode {
                        BlockOrder::Dcr => (i * b + j) * co + ci,
                        BlockOrder::Crd => ci * b * b + i * b + j,
                    };
                    src.push(((ni * c + cin) * h + y / b) * w + xx / b);
                }
            }
        }
    }
    take(x, &src, &shape, None)
}

/// SpaceToDepth: `[N, C, H, W]` → `[N, C·b², H/b, W/b]`, the inverse of DepthToSpace.
pub fn space_to_depth(b: usize, mode: BlockOrder, x: &Tensor) -> EvalResult<Tensor> {
    let [n, c, h, w] = nchw(x, "SpaceToDepth")?;
    if b == 0 || h % b != 0 || w % b != 0 {
        return Err(invalid!("{h}x{w} does not split into {b}x{b} blocks"));
    }
    let (ho, wo) = (h / b, w / b);
    let shape = [n, c * b * b, ho, wo];
    let mut src = Vec::with_capacity(check_count(&shape)?);
    for ni in 0..n {
        for co in 0..c * b * b {
            let (blk, ci) = match mode {
                BlockOrder::Dcr => (co / c, co % c),
                BlockOrder::Crd => (co % (b * b), co / (b * b)),
            };
            let (i, j) = (blk / b, blk % b);
            for y in 0..ho {
                for xx in 0..wo {
                    src.push(((ni * c + ci) * h + y * b + i) * w + xx * b + j);
                }
            }
        }
    }
    take(x, &src, &shape, None)
}

/// For each (outer, inner) position of `v` viewed as `[outer, len, inner]`, the index along
/// `len` of the largest (`max`) or smallest value: the first one, or the last with `last`.
/// NaN (a value unordered with itself) is never picked over a number.
fn pick_extreme<T: Copy + PartialOrd>(
    v: &[T],
    (outer, len, inner): (usize, usize, usize),
    max: bool,
    last: bool,
) -> Vec<i64> {
    let is_nan = |x: T| x.partial_cmp(&x).is_none();
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for k in 0..inner {
            let at = |j: usize| v[(o * len + j) * inner + k];
            let mut best = 0;
            for j in 1..len {
                let (c, b) = (at(j), at(best));
                let better = if max { c > b } else { c < b };
                if better || (c == b && last) || (is_nan(b) && !is_nan(c)) {
                    best = j;
                }
            }
            out.push(best as i64);
        }
    }
    out
}

/// ArgMax (`max`) or ArgMin along `a.axis`: the first index of the extreme value, or the last
/// with `select_last_index`. Integers compare exactly; NaN is never selected.
pub fn arg(a: &ArgAttrs, max: bool, x: &Tensor) -> EvalResult<Tensor> {
    let ax = norm_axis(a.axis, x.rank())?;
    let shape = x.shape();
    let len = *shape.get(ax).unwrap_or(&1);
    if len == 0 {
        return Err(invalid!("ArgMax/ArgMin over an empty axis {ax}"));
    }
    let outer: usize = shape[..ax.min(shape.len())].iter().product();
    let inner: usize = shape.get(ax + 1..).map_or(1, |s| s.iter().product());
    let (dims, last) = ((outer, len, inner), a.select_last_index);
    let idx = match x.dtype() {
        DType::Bool => return Err(invalid!("ArgMax/ArgMin of bool")),
        DType::I64 => pick_extreme(&x.to_i64_vec(), dims, max, last),
        _ => pick_extreme(&x.to_f64_vec(), dims, max, last),
    };
    let mut out_shape = shape.to_vec();
    if ax < out_shape.len() {
        if a.keepdims {
            out_shape[ax] = 1;
        } else {
            out_shape.remove(ax);
        }
    }
    Tensor::from_i64(&out_shape, idx).map_err(|e| invalid!("{e}"))
}

/// TopK: the `k` largest (or smallest) elements along `axis`, in that order (ties: the lower
/// index first), and their i64 indices. NaN sorts as the largest value, as in ONNX Runtime.
pub fn top_k(axis: i64, largest: bool, x: &Tensor, k: &Tensor) -> EvalResult<Vec<Tensor>> {
    let ax = norm_axis(axis, x.rank())?;
    let k = match ints(k, "k")?.as_slice() {
        [k] if *k >= 0 => *k as usize,
        other => {
            return Err(invalid!(
                "k must be one non-negative integer, got {other:?}"
            ))
        }
    };
    let shape = x.shape();
    let len = shape[ax];
    if k > len {
        return Err(invalid!("k {k} exceeds the axis size {len}"));
    }
    let outer: usize = shape[..ax].iter().product();
    let inner: usize = shape[ax + 1..].iter().product();
    let v = x.to_f64_vec();
    let key = |a: f64| if a.is_nan() { f64::INFINITY } else { a };
    let mut src = Vec::with_capacity(outer * k * inner);
    let mut idx = vec![0i64; outer * k * inner];
    for o in 0..outer {
        for c in 0..inner {
            let at = |j: usize| (o * len + j) * inner + c;
            let mut order: Vec<usize> = (0..len).collect();
            order.sort_by(|&p, &q| {
                let (a, b) = (key(v[at(p)]), key(v[at(q)]));
                let by = if largest {
                    b.total_cmp(&a)
                } else {
                    a.total_cmp(&b)
                };
                by.then(p.cmp(&q))
            });
            for (r, &j) in order.iter().take(k).enumerate() {
                idx[(o * k + r) * inner + c] = j as i64;
            }
        }
    }
    for o in 0..outer {
        for r in 0..k {
            for c in 0..inner {
                let j = idx[(o * k + r) * inner + c] as usize;
                src.push((o * len + j) * inner + c);
            }
        }
    }
    let mut out_shape = shape.to_vec();
    out_shape[ax] = k;
    Ok(vec![
        take(x, &src, &out_shape, None)?,
        Tensor::from_i64(&out_shape, idx).map_err(|e| invalid!("{e}"))?,
    ])
}

/// Trilu: the upper (`j - i >= k`) or lower (`j - i <= k`) triangle of each matrix of the last
/// two axes; the other elements are zero.
pub fn trilu(upper: bool, x: &Tensor, k: Option<&Tensor>) -> EvalResult<Tensor> {
    if x.rank() < 2 {
        return Err(invalid!("Trilu needs rank 2 or more, got {}", x.rank()));
    }
    let k = match k.map(|t| ints(t, "k")).transpose()?.as_deref() {
        None => 0,
        Some([k]) => *k,
        Some(other) => return Err(invalid!("k must be one integer, got {other:?}")),
    };
    let (rows, cols) = (x.shape()[x.rank() - 2], x.shape()[x.rank() - 1]);
    let zero = Tensor::zeros(x.dtype(), &[1]);
    let src: Vec<usize> = (0..x.len())
        .map(|flat| {
            let (i, j) = ((flat / cols.max(1)) % rows.max(1), flat % cols.max(1));
            let d = j as i64 - i as i64;
            if (upper && d >= k) || (!upper && d <= k) {
                flat
            } else {
                crate::shape_ops::FILL
            }
        })
        .collect();
    take(x, &src, x.shape(), Some(&zero))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape, v.to_vec()).unwrap()
    }
    fn i(shape: &[usize], v: &[i64]) -> Tensor {
        Tensor::from_i64(shape, v.to_vec()).unwrap()
    }

    #[test]
    fn gather_elements_follows_the_spec_example() {
        // ONNX spec: data [[1,2],[3,4]], indices [[0,0],[1,0]], axis 1 → [[1,1],[4,3]].
        let d = f(&[2, 2], &[1., 2., 3., 4.]);
        let out = gather_elements(1, &d, &i(&[2, 2], &[0, 0, 1, 0])).unwrap();
        assert_eq!(out.as_f32().unwrap(), &[1., 1., 4., 3.]);
        // Negative indices count from the end; out of range is an error.
        let out = gather_elements(0, &d, &i(&[1, 2], &[-1, 0])).unwrap();
        assert_eq!(out.as_f32().unwrap(), &[3., 2.]);
        assert!(gather_elements(0, &d, &i(&[1, 2], &[2, 0])).is_err());
    }

    #[test]
    fn gather_nd_with_and_without_batch_dims() {
        // data [[[0,1],[2,3]],[[4,5],[6,7]]], indices [[0,1],[1,0]] → [[2,3],[4,5]].
        let d = f(&[2, 2, 2], &[0., 1., 2., 3., 4., 5., 6., 7.]);
        let out = gather_nd(0, &d, &i(&[2, 2], &[0, 1, 1, 0])).unwrap();
        assert_eq!(out.shape(), &[2, 2]);
        assert_eq!(out.as_f32().unwrap(), &[2., 3., 4., 5.]);
        // batch_dims 1, indices [[1],[0]] → [[2,3],[4,5]].
        let out = gather_nd(1, &d, &i(&[2, 1], &[1, 0])).unwrap();
        assert_eq!(out.as_f32().unwrap(), &[2., 3., 4., 5.]);
        assert!(gather_nd(0, &d, &i(&[1, 4], &[0, 0, 0, 0])).is_err());
    }

    #[test]
    fn scatters_replace_and_reduce_in_order() {
        let d = f(&[1, 5], &[1., 2., 3., 4., 5.]);
        let idx = i(&[1, 2], &[1, 1]);
        let up = f(&[1, 2], &[1.1, 2.1]);
        let none = scatter_elements(1, ScatterReduction::None, &d, &idx, &up).unwrap();
        assert_eq!(none.as_f32().unwrap(), &[1., 2.1, 3., 4., 5.]);
        let add = scatter_elements(1, ScatterReduction::Add, &d, &idx, &up).unwrap();
        assert_eq!(add.as_f32().unwrap()[1], 2. + 1.1 + 2.1);
        let max = scatter_elements(1, ScatterReduction::Max, &d, &idx, &up).unwrap();
        assert_eq!(max.as_f32().unwrap()[1], 2.1);
        // ScatterND: rows 0 and 2 of a 4x2 replaced.
        let d = f(&[4, 2], &[0.; 8]);
        let up = f(&[2, 2], &[1., 2., 3., 4.]);
        let out = scatter_nd(ScatterReduction::None, &d, &i(&[2, 1], &[0, 2]), &up).unwrap();
        assert_eq!(out.as_f32().unwrap(), &[1., 2., 0., 0., 3., 4., 0., 0.]);
        assert!(scatter_nd(ScatterReduction::None, &d, &i(&[1, 1], &[0]), &up).is_err());
    }

    #[test]
    fn tile_repeats_each_axis() {
        let x = f(&[2, 2], &[1., 2., 3., 4.]);
        let out = tile(&x, &i(&[2], &[1, 2])).unwrap();
        assert_eq!(out.shape(), &[2, 4]);
        assert_eq!(out.as_f32().unwrap(), &[1., 2., 1., 2., 3., 4., 3., 4.]);
        assert!(tile(&x, &i(&[2], &[1, -1])).is_err());
    }

    #[test]
    fn space_to_depth_inverts_depth_to_space_dcr() {
        let v: Vec<f32> = (0..2 * 8 * 2 * 3).map(|k| k as f32).collect();
        let x = f(&[2, 8, 2, 3], &v);
        let up = depth_to_space(2, BlockOrder::Dcr, &x).unwrap();
        assert_eq!(up.shape(), &[2, 2, 4, 6]);
        let back = space_to_depth(2, BlockOrder::Dcr, &up).unwrap();
        assert_eq!(back.as_f32().unwrap(), x.as_f32().unwrap());
        // CRD: channel c's block is channels c·4 .. c·4+3.
        let crd = depth_to_space(2, BlockOrder::Crd, &x).unwrap();
        let back = space_to_depth(2, BlockOrder::Crd, &crd).unwrap();
        assert_eq!(back.as_f32().unwrap(), x.as_f32().unwrap());
        let c = crd.as_f32().unwrap();
        // out[0,0,0,1] = x[0, 1, 0, 0] = 6 in CRD, x[0, 2, 0, 0] = 12 in DCR.
        assert_eq!(c[1], 6.0);
        assert_eq!(up.as_f32().unwrap()[1], 12.0);
        // A blocksize whose square or output size overflows is an error, not a panic.
        for b in [1usize << 33, usize::MAX] {
            assert!(depth_to_space(b, BlockOrder::Dcr, &x).is_err());
            assert!(space_to_depth(b, BlockOrder::Dcr, &x).is_err());
        }
    }
}
