//! Tensors from and to `.npy` files (via npyz) and ONNX TensorProto `.pb` files.

use anyhow::{bail, Context, Result};
use lpc_ir::{DType, Tensor, TensorData};
use npyz::WriterBuilder;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

/// Reads a `.npy` file (little-endian, C order; f32/f16/f64/i8/u8/i32/i64/bool).
pub fn read_npy(path: &Path) -> Result<Tensor> {
    let f = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let npy = npyz::NpyFile::new(BufReader::new(f))
        .with_context(|| format!("{}: not a valid .npy file", path.display()))?;
    if npy.order() != npyz::Order::C {
        bail!(
            "{}: Fortran-order arrays are not supported; save with C order",
            path.display()
        );
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let n: u128 = shape.iter().map(|&d| d as u128).product();
    if n > (1u128 << 31) {
        bail!("{}: array of shape {shape:?} is too large", path.display());
    }
    let descr = npy.dtype().descr();
    let ctx = || {
        format!(
            "{}: truncated or unreadable data for shape {shape:?}",
            path.display()
        )
    };
    let data = match descr.trim_matches('\'') {
        "<f4" => TensorData::F32(npy.into_vec::<f32>().with_context(ctx)?),
        "<f2" => TensorData::F16(npy.into_vec::<half::f16>().with_context(ctx)?),
        "<f8" => TensorData::F64(npy.into_vec::<f64>().with_context(ctx)?),
        "|i1" => TensorData::I8(npy.into_vec::<i8>().with_context(ctx)?),
        "|u1" => TensorData::U8(npy.into_vec::<u8>().with_context(ctx)?),
        "<i4" => TensorData::I32(npy.into_vec::<i32>().with_context(ctx)?),
        "<i8" => TensorData::I64(npy.into_vec::<i64>().with_context(ctx)?),
        "|b1" => TensorData::Bool(npy.into_vec::<bool>().with_context(ctx)?),
        other => bail!(
            "{}: unsupported .npy dtype {other} (use little-endian f32/f16/f64/i8/u8/i32/i64/bool)",
            path.display()
        ),
    };
    Tensor::new(&shape, data)
        .with_context(|| format!("{}: element count does not match shape", path.display()))
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

/// A tensor's dtype name, for summaries.
pub fn dtype_name(d: DType) -> &'static str {
    d.name()
}
