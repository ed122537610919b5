//! ONNX for lpc: protobuf decoding with prost (generated code committed in `proto.rs`, so no
//! protoc is needed), import of every supported operator of opsets 1–28 to lpc-ir's `Op`, and
//! QDQ export. (OpenVINO IR is `lpc-openvino`; the model-file loader is `lpc-load`.)
#![deny(missing_docs)]

pub mod export;
mod import;
mod names;
#[allow(missing_docs)]
pub mod proto;
mod tensor;

pub use import::{external_data_files, import_bytes, import_file, NEWEST_OPSET};
pub use tensor::{dtype_from_onnx, dtype_to_onnx, tensor_from_proto, tensor_to_proto};

use std::path::Path;

/// Why a model or tensor file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("{path}: {msg}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        msg: String,
    },
    /// The bytes are not a valid protobuf message of the expected type.
    #[error("not a valid ONNX protobuf ({0})")]
    Decode(String),
    /// The model is structurally invalid (missing graph, undefined value, ...).
    #[error("{0}")]
    Invalid(String),
    /// A tensor's data does not match its declared type and shape.
    #[error("{0}")]
    Tensor(String),
    /// A node cannot be represented: unknown op, domain or attribute value.
    #[error("node '{node}' ({op_type}, opset {opset}): {msg}")]
    Node {
        /// Node name.
        node: String,
        /// ONNX op type.
        op_type: String,
        /// The opset in force.
        opset: i64,
        /// What is wrong.
        msg: String,
    },
    /// A valid model using something lpc does not support.
    #[error("{0}")]
    Unsupported(String),
    /// The model imports a default-domain opset newer than lpc knows.
    #[error(
        "the model imports ONNX opset {version}, newer than the newest lpc knows ({newest}); \
         re-export it at opset {newest} or lower"
    )]
    OpsetTooNew {
        /// The opset the model imports.
        version: i64,
        /// [`NEWEST_OPSET`].
        newest: i64,
    },
}

/// Reads an ONNX TensorProto file (such as `test_data_set_0/input_0.pb`).
pub fn read_tensor_pb(path: &Path) -> Result<lpc_ir::Tensor, ImportError> {
    use prost::Message;
    let bytes = std::fs::read(path).map_err(|e| ImportError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    let t = proto::TensorProto::decode(bytes.as_slice()).map_err(|e| ImportError::Io {
        path: path.display().to_string(),
        msg: format!("not a TensorProto: {e}"),
    })?;
    tensor_from_proto(&t, path.parent()).map_err(|e| ImportError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    })
}
