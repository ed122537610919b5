//! ONNX TensorProto `.pb` files (read through lpc-onnx), and reading a tensor file by extension.

use crate::error::DataError;
use crate::npy::read_npy;
use lpc_ir::Tensor;
use std::path::Path;

/// Reads an ONNX TensorProto `.pb` file.
pub fn read_pb(path: &Path) -> Result<Tensor, DataError> {
    Ok(lpc_onnx::read_tensor_pb(path)?)
}

/// Reads a tensor from `.npy`, ONNX TensorProto `.pb` or `.wav` audio, by extension.
pub fn read_tensor(path: &Path) -> Result<Tensor, DataError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("npy") => read_npy(path),
        Some("pb") => read_pb(path),
        Some("wav") => crate::wav::read_wav(path),
        _ => Err(DataError::UnknownTensorFile {
            path: path.to_path_buf(),
        }),
    }
}
