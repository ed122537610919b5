//! `.npy` files: read (little-endian, C order; f32/f16/f64/i8/u8/i32/i64/bool) and write.

use crate::error::{DataError, WriteError};
use lpc_ir::{Tensor, TensorData};
use npyz::WriterBuilder;
use std::path::Path;

/// Reads a `.npy` array (little-endian, C order).
pub fn read_npy_bytes(bytes: &[u8], what: &str) -> Result<Tensor, DataError> {
    let err = |m: String| DataError::File {
        what: what.to_string(),
        msg: m,
    };
    let npy =
        npyz::NpyFile::new(bytes).map_err(|e| err(format!("not a valid .npy array ({e})")))?;
    if npy.order() != npyz::Order::C {
        return Err(err(
            "Fortran-order arrays are not supported; save with C order".into(),
        ));
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let n: u128 = shape.iter().map(|&d| d as u128).product();
    if n > (1u128 << 31) {
        return Err(err(format!("array of shape {shape:?} is too large")));
    }
    let descr = npy.dtype().descr();
    let rd = |e: std::io::Error| {
        err(format!(
            "truncated or unreadable data for shape {shape:?} ({e})"
        ))
    };
    let data = match descr.trim_matches('\'') {
        "<f4" => TensorData::F32(npy.into_vec::<f32>().map_err(rd)?),
        "<f2" => TensorData::F16(npy.into_vec::<half::f16>().map_err(rd)?),
        "<f8" => TensorData::F64(npy.into_vec::<f64>().map_err(rd)?),
        "|i1" => TensorData::I8(npy.into_vec::<i8>().map_err(rd)?),
        "|u1" => TensorData::U8(npy.into_vec::<u8>().map_err(rd)?),
        "<i4" => TensorData::I32(npy.into_vec::<i32>().map_err(rd)?),
        "<i8" => TensorData::I64(npy.into_vec::<i64>().map_err(rd)?),
        "|b1" => TensorData::Bool(npy.into_vec::<bool>().map_err(rd)?),
        other => {
            return Err(err(format!(
                "unsupported dtype {other} (use little-endian f32/f16/f64/i8/u8/i32/i64/bool)"
            )))
        }
    };
    Tensor::new(&shape, data).map_err(|e| err(e.to_string()))
}

/// Reads a whole file.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|error| DataError::Io {
        path: path.to_path_buf(),
        error,
    })
}

/// Reads a `.npy` file; `lpc run` inputs and calibration data share this reader, so they
/// accept the same files.
pub fn read_npy(path: &Path) -> Result<Tensor, DataError> {
    read_npy_bytes(&read_file(path)?, &path.display().to_string())
}

fn npy_bytes<T: npyz::AutoSerialize>(shape: &[u64], v: &[T]) -> std::io::Result<Vec<u8>> {
    let mut bytes = vec![];
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut bytes)
        .begin_nd()?;
    w.extend(v.iter())?;
    w.finish()?;
    Ok(bytes)
}

/// Writes a tensor as `.npy` (atomically: the old file stays when it fails).
pub fn write_npy(path: &Path, t: &Tensor) -> Result<(), DataError> {
    let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
    let bytes = match t.data() {
        TensorData::F32(v) => npy_bytes(&shape, v),
        TensorData::F16(v) => npy_bytes(&shape, v),
        TensorData::F64(v) => npy_bytes(&shape, v),
        TensorData::I8(v) => npy_bytes(&shape, v),
        TensorData::U8(v) => npy_bytes(&shape, v),
        TensorData::I32(v) => npy_bytes(&shape, v),
        TensorData::I64(v) => npy_bytes(&shape, v),
        TensorData::Bool(v) => npy_bytes(&shape, v),
    }
    .map_err(WriteError::Encode)
    .and_then(|b| lpc_ir::host::write_atomic(path, &b).map_err(WriteError::File));
    bytes.map_err(|source| DataError::Write {
        path: path.to_path_buf(),
        source,
    })
}
