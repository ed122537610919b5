//! `load_model`: read a model file by extension (`.onnx`, OpenVINO IR `.xml` (+ `.bin`) or
//! `.lir`), then [`prepare`] it: types inferred, constant (shape) subgraphs folded and the graph
//! verified.

use crate::{prepare, PrepareError};
use lpc_ir::Graph;
use std::path::Path;

/// Why a model file could not be loaded; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No such file.
    #[error("{0}: no such file")]
    Missing(String),
    /// An extension lpc does not read.
    #[error("{0}: unknown model type (expected .onnx, .xml (OpenVINO IR) or .lir)")]
    UnknownType(String),
    /// ONNX import failed.
    #[error("{path}: {error}")]
    Onnx {
        /// The file.
        path: String,
        /// What went wrong.
        error: lpc_onnx::ImportError,
    },
    /// OpenVINO IR import failed.
    #[error("{path}: {error}")]
    OpenVino {
        /// The file.
        path: String,
        /// What went wrong.
        error: lpc_openvino::OpenVinoError,
    },
    /// The `.lir` text or its weights file is invalid (the message names the file and line).
    #[error("{0}")]
    Lir(lpc_ir::text::LirFileError),
    /// The imported graph does not type-check, fold or verify.
    #[error("{path}: {error}")]
    Graph {
        /// The file.
        path: String,
        /// What is wrong, naming the node.
        error: PrepareError,
    },
}

/// Reads a model file by extension and [`prepare`]s it.
pub fn load_model(path: &Path) -> Result<Graph, LoadError> {
    let p = path.display().to_string();
    if !path.exists() {
        return Err(LoadError::Missing(p));
    }
    let mut g = match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "onnx" => lpc_onnx::import_file(path).map_err(|error| LoadError::Onnx {
            path: p.clone(),
            error,
        })?,
        "xml" => lpc_openvino::import_openvino(path).map_err(|error| LoadError::OpenVino {
            path: p.clone(),
            error,
        })?,
        "lir" => lpc_ir::text::read_lir(path).map_err(LoadError::Lir)?,
        _ => return Err(LoadError::UnknownType(p)),
    };
    prepare(&mut g).map_err(|error| LoadError::Graph { path: p, error })?;
    Ok(g)
}
