//! `load_model`: read a model file by extension (`.onnx`, OpenVINO IR `.xml` (+ `.bin`) or
//! `.lir`), then [`prepare`] it: types inferred, constant (shape) subgraphs folded and the graph
//! verified.

use crate::{prepare, PrepareError};
use lpc_ir::Graph;
use std::path::{Path, PathBuf};

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
    /// The graph has no outputs: nothing to compute.
    #[error("{0}: the model has no outputs")]
    NoOutputs(String),
    /// The imported graph does not type-check, fold or verify.
    #[error("{path}: {error}")]
    Graph {
        /// The file.
        path: String,
        /// What is wrong, naming the node.
        error: PrepareError,
    },
}

/// Every file [`load_model`] reads for `path`, `path` first: a `.lir`'s `.lir.weights`, an
/// OpenVINO IR's `.bin`, an ONNX model's external data files (whether they exist or not; a
/// model that cannot be decoded lists only itself, and loading it fails).
pub fn model_files(path: &Path) -> Vec<PathBuf> {
    let mut files = vec![path.to_path_buf()];
    match extension(path) {
        "onnx" => files.extend(lpc_onnx::external_data_files(path).unwrap_or_default()),
        "xml" => files.push(lpc_openvino::bin_path(path)),
        "lir" => files.push(lpc_ir::text::weights_path(path)),
        _ => {}
    }
    files
}

fn extension(path: &Path) -> &str {
    path.extension().and_then(|e| e.to_str()).unwrap_or("")
}

/// Reads a model file by extension and [`prepare`]s it.
pub fn load_model(path: &Path) -> Result<Graph, LoadError> {
    let p = path.display().to_string();
    if !path.exists() {
        return Err(LoadError::Missing(p));
    }
    let mut g = match extension(path) {
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
    if g.outputs().is_empty() {
        return Err(LoadError::NoOutputs(p));
    }
    prepare(&mut g).map_err(|error| LoadError::Graph { path: p, error })?;
    Ok(g)
}
