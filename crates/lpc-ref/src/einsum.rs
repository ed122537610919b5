//! Einsum: every label assignment walked once, products of the inputs summed over the labels
//! not in the output. Repeated labels in a term (diagonals) add their strides; a size-1 axis
//! broadcasts against its label's size elsewhere (as in NumPy and ONNX Runtime).

use crate::{invalid, EvalError, EvalResult};
use lpc_ir::{einsum_spec, DType, Tensor};

/// Einsum of `xs` (one numeric dtype) by `equation`; floats accumulate in f64, integers in
/// wrapping i64, the result in the inputs' dtype.
pub fn einsum(equation: &str, xs: &[&Tensor]) -> EvalResult<Tensor> {
    let Some(first) = xs.first() else {
        return Err(invalid!("Einsum needs at least one input"));
    };
    let dtype = first.dtype();
    for (k, x) in xs.iter().enumerate() {
        if x.dtype() != dtype {
            return Err(EvalError::DType {
                slot: k,
                what: "inputs",
                got: x.dtype(),
                expected: "the dtype of input 0",
            });
        }
    }
    if dtype == DType::Bool {
        return Err(EvalError::DType {
            slot: 0,
            what: "inputs",
            got: dtype,
            expected: "a numeric type",
        });
    }
    let ranks: Vec<usize> = xs.iter().map(|x| x.rank()).collect();
    let spec = einsum_spec(equation, &ranks).map_err(EvalError::Invalid)?;
    let mut size = vec![1usize; spec.labels];
    let mut seen = vec![false; spec.labels];
    for (axes, x) in spec.inputs.iter().zip(xs) {
        for (&l, &d) in axes.iter().zip(x.shape()) {
            if !seen[l] || size[l] == 1 {
                size[l] = d;
                seen[l] = true;
            } else if d != size[l] && d != 1 {
                return Err(invalid!(
                    "equation '{equation}': a label has sizes {} and {d}",
                    size[l]
                ));
            }
        }
    }
    // Per input, the element stride of each label (0 where the input lacks it or broadcasts).
    let strides: Vec<Vec<usize>> = spec
        .inputs
        .iter()
        .zip(xs)
        .map(|(axes, x)| {
            let st = crate::util::strides(x.shape());
            let mut s = vec![0usize; spec.labels];
            for (a, &l) in axes.iter().enumerate() {
                if x.shape()[a] != 1 || size[l] == 1 {
                    s[l] += st[a];
                }
            }
            s
        })
        .collect();
    let mut order = spec.output.clone();
    order.extend((0..spec.labels).filter(|l| !spec.output.contains(l)));
    let out_shape: Vec<usize> = spec.output.iter().map(|&l| size[l]).collect();
    // Every assignment of the labels is visited: bound their number (and so the output's).
    let all: Vec<usize> = order.iter().map(|&l| size[l]).collect();
    let total = crate::shape_ops::check_count(&all)?;
    let out_len: usize = out_shape.iter().product();
    let inner: usize = order[spec.output.len()..]
        .iter()
        .map(|&l| size[l])
        .product();
    // Walks every assignment (output labels outer), calling f(output position, offsets).
    let walk = |f: &mut dyn FnMut(usize, &[usize])| {
        let mut idx = vec![0usize; order.len()];
        let mut off = vec![0usize; xs.len()];
        for n in 0..total {
            f(n / inner.max(1), &off);
            // Odometer step from the last label.
            for p in (0..order.len()).rev() {
                let l = order[p];
                idx[p] += 1;
                for (o, s) in off.iter_mut().zip(&strides) {
                    *o += s[l];
                }
                if idx[p] < size[l] {
                    break;
                }
                for (o, s) in off.iter_mut().zip(&strides) {
                    *o -= s[l] * size[l];
                }
                idx[p] = 0;
            }
        }
    };
    let t = if dtype.is_float() {
        let vs: Vec<Vec<f64>> = xs.iter().map(|x| x.to_f64_vec()).collect();
        let mut out = vec![0f64; out_len];
        walk(&mut |o, off| {
            out[o] += vs.iter().zip(off).map(|(v, &k)| v[k]).product::<f64>();
        });
        Tensor::from_f64(&out_shape, out)
    } else {
        let vs: Vec<Vec<i64>> = xs.iter().map(|x| x.to_i64_vec()).collect();
        let mut out = vec![0i64; out_len];
        walk(&mut |o, off| {
            let p = vs
                .iter()
                .zip(off)
                .fold(1i64, |a, (v, &k)| a.wrapping_mul(v[k]));
            out[o] = out[o].wrapping_add(p);
        });
        Tensor::from_i64(&out_shape, out)
    };
    Ok(t.map_err(|e| invalid!("{e}"))?.into_dtype(dtype))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape, v.to_vec()).unwrap()
    }

    #[test]
    fn matmul_trace_diagonal_transpose_and_broadcast() {
        let a = t(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let b = t(&[2, 2], &[5.0, 6.0, 7.0, 8.0]);
        let y = einsum("ij,jk->ik", &[&a, &b]).unwrap();
        assert_eq!(y.to_f32_vec(), vec![19.0, 22.0, 43.0, 50.0]);
        assert_eq!(einsum("ii", &[&a]).unwrap().to_f32_vec(), vec![5.0]);
        assert_eq!(einsum("ii->i", &[&a]).unwrap().to_f32_vec(), vec![1.0, 4.0]);
        assert_eq!(
            einsum("ji", &[&a]).unwrap().to_f32_vec(),
            vec![1.0, 3.0, 2.0, 4.0]
        );
        assert_eq!(einsum("ij->", &[&a]).unwrap().to_f32_vec(), vec![10.0]);
        // A size-1 ellipsis axis broadcasts against 2.
        let c = t(&[1, 2], &[1.0, 10.0]);
        let y = einsum("...i,...i->...", &[&a, &c]).unwrap();
        assert_eq!(y.shape(), &[2]);
        assert_eq!(y.to_f32_vec(), vec![21.0, 43.0]);
        // A size-1 letter axis broadcasts too.
        let y = einsum("ij,ij->i", &[&a, &c]).unwrap();
        assert_eq!(y.to_f32_vec(), vec![21.0, 43.0]);
        let i = Tensor::from_i64(&[2], vec![2, 3]).unwrap();
        assert_eq!(einsum("i,i", &[&i, &i]).unwrap().to_i64_vec(), vec![13]);
        assert!(einsum("ij,jk", &[&a, &t(&[3, 1], &[0.0; 3])]).is_err());
    }
}
