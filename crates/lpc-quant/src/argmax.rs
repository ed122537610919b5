//! Top-1 per sample: the argmax of each row of a model output.

use crate::QuantError;
use lpc_ir::Tensor;

/// Argmax per sample of a `[k, classes]` (or `[k, ..., classes]` with one row per sample) tensor.
pub(crate) fn argmax_rows(t: &Tensor, k: usize) -> Result<Vec<usize>, QuantError> {
    let v = t.to_f32_vec();
    if k == 0 || !v.len().is_multiple_of(k) || v.is_empty() {
        return Err(QuantError::NotRows(t.shape().to_vec()));
    }
    let per = v.len() / k;
    Ok(v.chunks(per)
        .map(|r| {
            r.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| {
                    if x > bv {
                        (i, x)
                    } else {
                        (bi, bv)
                    }
                })
                .0
        })
        .collect())
}
