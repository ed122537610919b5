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

/// Checks that the labels of samples `first..first + k` name classes of `t` (one row of scores
/// per sample): a label at or past the row's length can never be hit, so it is an error.
pub(crate) fn check_labels(
    t: &Tensor,
    labels: &[i64],
    first: usize,
    k: usize,
) -> Result<(), QuantError> {
    let classes = t.len() / k.max(1);
    for (i, &label) in labels.iter().enumerate().skip(first).take(k) {
        if label < 0 || label as u64 >= classes as u64 {
            return Err(QuantError::LabelRange {
                sample: i,
                label,
                classes,
            });
        }
    }
    Ok(())
}
