//! Rows of tensors along axis 0: slicing out samples and stacking them into batches.

use crate::error::DataError;
use lpc_ir::{Tensor, TensorData};

/// Rows `[start, start+count)` of a tensor along axis 0.
pub fn slice_rows(t: &Tensor, start: usize, count: usize) -> Tensor {
    let row: usize = t.shape()[1..].iter().product();
    let (a, b) = (start * row, (start + count) * row);
    let data = match t.data() {
        TensorData::F32(v) => TensorData::F32(v[a..b].to_vec()),
        TensorData::F16(v) => TensorData::F16(v[a..b].to_vec()),
        TensorData::F64(v) => TensorData::F64(v[a..b].to_vec()),
        TensorData::I8(v) => TensorData::I8(v[a..b].to_vec()),
        TensorData::U8(v) => TensorData::U8(v[a..b].to_vec()),
        TensorData::I32(v) => TensorData::I32(v[a..b].to_vec()),
        TensorData::I64(v) => TensorData::I64(v[a..b].to_vec()),
        TensorData::Bool(v) => TensorData::Bool(v[a..b].to_vec()),
    };
    let mut shape = t.shape().to_vec();
    shape[0] = count;
    Tensor::new(&shape, data).expect("slice of a valid tensor")
}

/// Tensors of equal trailing shape and dtype stacked along axis 0.
pub fn concat_rows(ts: &[Tensor]) -> Result<Tensor, DataError> {
    let first = ts
        .first()
        .ok_or_else(|| DataError::Stack("no tensors to stack".into()))?;
    let mut shape = first.shape().to_vec();
    if shape.is_empty() {
        return Err(DataError::Stack("cannot stack rank-0 tensors".into()));
    }
    let mut bytes = Vec::new();
    let mut rows = 0;
    for t in ts {
        if t.dtype() != first.dtype() || t.shape()[1..] != first.shape()[1..] {
            return Err(DataError::Stack(format!(
                "samples of different shapes: {:?} and {:?}",
                first.shape(),
                t.shape()
            )));
        }
        rows += t.shape()[0];
        bytes.extend_from_slice(&t.to_le_bytes());
    }
    shape[0] = rows;
    Tensor::from_le_bytes(first.dtype(), &shape, &bytes).map_err(DataError::Shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows() {
        let t = Tensor::from_f32(&[3, 2], vec![0., 1., 2., 3., 4., 5.]).unwrap();
        let s = slice_rows(&t, 1, 2);
        assert_eq!(s.shape(), &[2, 2]);
        assert_eq!(s.as_f32().unwrap(), &[2., 3., 4., 5.]);
        let c = concat_rows(&[slice_rows(&t, 0, 1), s]).unwrap();
        assert_eq!(c, t);
        assert!(
            concat_rows(&[t.clone(), Tensor::from_f32(&[1, 3], vec![0.; 3]).unwrap()]).is_err()
        );
    }
}
