//! TfIdfVectorizer: counts the pool's n-grams in each row of integers.
//!
//! An n-gram of length n starting at item `s` with gap `k` (1 + skipped items) is the items
//! `s, s + k, ..., s + (n - 1)k` of one row; every gap from 1 to `max_skip_count + 1` is
//! counted, except for unigrams, which are counted once per position. A pool that lists the
//! same n-gram twice counts it at the later entry's index (as ONNX Runtime).

use crate::{invalid, EvalError, EvalResult};
use lpc_ir::{DType, Tensor, TfIdfAttrs, TfIdfMode};
use std::collections::HashMap;

/// TfIdfVectorizer on x (i32 or i64, `[C]` or `[B, C]`): f32 `[out]` or `[B, out]`.
pub fn tf_idf_vectorizer(a: &TfIdfAttrs, x: &Tensor) -> EvalResult<Tensor> {
    let out = a.check().map_err(|e| invalid!("TfIdfVectorizer: {e}"))?;
    if !matches!(x.dtype(), DType::I32 | DType::I64) {
        return Err(EvalError::DType {
            slot: 0,
            what: "x",
            got: x.dtype(),
            expected: "i32 or i64",
        });
    }
    let (rows, cols, shape) = match *x.shape() {
        [c] => (1, c, vec![out]),
        [b, c] => (b, c, vec![b, out]),
        _ => {
            return Err(invalid!(
                "TfIdfVectorizer: x must have shape [C] or [B, C], got {:?}",
                x.shape()
            ))
        }
    };
    // One map per n-gram length: items → output index (the pool has no n-gram longer than
    // ngram_counts has entries).
    let top = a.max_gram_length.min(a.ngram_counts.len());
    let mut by_len: Vec<HashMap<&[i64], usize>> = vec![HashMap::new(); top + 1];
    for (g, idx) in a.grams() {
        by_len[g.len()].insert(g, idx);
    }
    let xv = x.to_i64_vec();
    crate::shape_ops::check_count(&[rows, out])?;
    let mut counts = vec![0u64; rows * out];
    let mut gram = Vec::with_capacity(top);
    for r in 0..rows {
        let row = &xv[r * cols..(r + 1) * cols];
        let hits = &mut counts[r * out..(r + 1) * out];
        for start in 0..cols {
            // by_len[n] for n from min_gram_length to top.
            for (n, grams) in by_len.iter().enumerate().skip(a.min_gram_length) {
                let gaps = if n == 1 {
                    1
                } else {
                    a.max_skip_count.saturating_add(1)
                };
                for gap in 1..=gaps {
                    if start + (n - 1) * gap >= cols {
                        break;
                    }
                    gram.clear();
                    gram.extend((0..n).map(|k| row[start + k * gap]));
                    if let Some(&idx) = grams.get(gram.as_slice()) {
                        hits[idx] += 1;
                    }
                }
            }
        }
    }
    let w = a.weights.to_f32_vec();
    let v = counts
        .iter()
        .enumerate()
        .map(|(k, &c)| {
            let weight = w.get(k % out.max(1)).copied();
            match (a.mode, weight) {
                (TfIdfMode::Tf, _) | (TfIdfMode::TfIdf, None) => c as f32,
                (TfIdfMode::Idf, None) => (c > 0) as u8 as f32,
                (TfIdfMode::Idf, Some(w)) => {
                    if c > 0 {
                        w
                    } else {
                        0.0
                    }
                }
                (TfIdfMode::TfIdf, Some(w)) => w * c as f32,
            }
        })
        .collect();
    Tensor::from_f32(&shape, v).map_err(|e| invalid!("TfIdfVectorizer: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(mode: TfIdfMode, min: usize, max: usize, skip: usize, w: Vec<f32>) -> TfIdfAttrs {
        // Unigrams 2, 3; bigrams (2, 3), (3, 2).
        TfIdfAttrs {
            mode,
            min_gram_length: min,
            max_gram_length: max,
            max_skip_count: skip,
            ngram_counts: vec![0, 2],
            ngram_indexes: vec![0, 1, 2, 3],
            pool: vec![2, 3, 2, 3, 3, 2],
            weights: Tensor::from_f32(&[w.len()], w).unwrap().into_arc(),
        }
    }

    fn run(a: &TfIdfAttrs, x: &[i64], shape: &[usize]) -> Vec<f32> {
        let x = Tensor::from_i64(shape, x.to_vec()).unwrap();
        tf_idf_vectorizer(a, &x).unwrap().to_f32_vec()
    }

    #[test]
    fn counts_unigrams_once_and_bigrams_per_gap() {
        let x = [2, 3, 2, 9, 3];
        // Unigrams: 2 twice, 3 twice. Bigrams gap 1: (2,3), (3,2); gap 2: (2,2) no, (3,9)
        // no, (2,3) yes; gap 3: (2,9) no, (3,3) no; gap 4: (2,3) yes.
        let a = attrs(TfIdfMode::Tf, 1, 2, 3, vec![]);
        assert_eq!(run(&a, &x, &[5]), vec![2.0, 2.0, 3.0, 1.0]);
        let a = attrs(TfIdfMode::Tf, 2, 2, 0, vec![]);
        assert_eq!(run(&a, &x, &[5]), vec![0.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn weights_and_batches() {
        let x = [2, 3, 3, 3, 9, 9];
        let w = vec![0.5, 2.0, 4.0, 8.0];
        let a = attrs(TfIdfMode::TfIdf, 1, 2, 0, w.clone());
        assert_eq!(
            run(&a, &x, &[2, 3]),
            vec![0.5, 4.0, 4.0, 0.0, 0.0, 2.0, 0.0, 0.0]
        );
        let a = attrs(TfIdfMode::Idf, 1, 2, 0, w);
        assert_eq!(
            run(&a, &x, &[2, 3]),
            vec![0.5, 2.0, 4.0, 0.0, 0.0, 2.0, 0.0, 0.0]
        );
        let a = attrs(TfIdfMode::Idf, 1, 1, 0, vec![]);
        assert_eq!(
            run(&a, &x, &[2, 3]),
            vec![1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let a = attrs(TfIdfMode::Tf, 1, 2, 0, vec![]);
        let f = Tensor::from_f32(&[2], vec![0.0; 2]).unwrap();
        assert!(matches!(
            tf_idf_vectorizer(&a, &f),
            Err(EvalError::DType { .. })
        ));
        let x3 = Tensor::from_i64(&[1, 1, 2], vec![2, 3]).unwrap();
        assert!(tf_idf_vectorizer(&a, &x3).is_err());
        let mut bad = a.clone();
        bad.ngram_indexes.pop();
        let x = Tensor::from_i64(&[2], vec![2, 3]).unwrap();
        assert!(tf_idf_vectorizer(&bad, &x).is_err());
        let mut bad = a.clone();
        bad.ngram_counts = vec![0, 3];
        assert!(tf_idf_vectorizer(&bad, &x).is_err());
    }
}
