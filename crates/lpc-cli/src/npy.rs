//! Tensors from and to `.npy` files (via npyz) and ONNX TensorProto `.pb` files.

use anyhow::{bail, Context, Result};
use lpc_ir::{Tensor, TensorData};
use npyz::WriterBuilder;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

/// Reads a `.npy` file (little-endian, C order; f32/f16/f64/i8/u8/i32/i64/bool); the reader
/// is the calibration loader's, so `lpc run` and `lpc quantize` accept the same files.
pub fn read_npy(path: &Path) -> Result<Tensor> {
    Ok(lpc_quant::calib::read_npy(path)?)
}

fn write_vec<T: npyz::AutoSerialize>(path: &Path, shape: &[u64], v: &[T]) -> Result<()> {
    let f = File::create(path).with_context(|| format!("{}: cannot create", path.display()))?;
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(BufWriter::new(f))
        .begin_nd()?;
    w.extend(v.iter())?;
    w.finish()?;
    Ok(())
}

/// Writes a tensor as `.npy`.
pub fn write_npy(path: &Path, t: &Tensor) -> Result<()> {
    let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
    match t.data() {
        TensorData::F32(v) => write_vec(path, &shape, v),
        TensorData::F16(v) => write_vec(path, &shape, v),
        TensorData::F64(v) => write_vec(path, &shape, v),
        TensorData::I8(v) => write_vec(path, &shape, v),
        TensorData::U8(v) => write_vec(path, &shape, v),
        TensorData::I32(v) => write_vec(path, &shape, v),
        TensorData::I64(v) => write_vec(path, &shape, v),
        TensorData::Bool(v) => write_vec(path, &shape, v),
    }
    .with_context(|| format!("{}: write failed", path.display()))
}

/// Reads a tensor from `.npy` or ONNX TensorProto `.pb`, by extension.
pub fn read_tensor(path: &Path) -> Result<Tensor> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("npy") => read_npy(path),
        Some("pb") => Ok(lpc_onnx::read_tensor_pb(path)?),
        _ => bail!(
            "{}: unknown tensor file type (expected .npy or .pb)",
            path.display()
        ),
    }
}
