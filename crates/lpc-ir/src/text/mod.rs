//! The `.lir` text format: printer, parser and the `.lir.weights` sidecar for large constants.
//! See `docs/ir-text-format.md`.

mod attrs;
mod parse;
mod print;
mod weights;

pub use parse::{parse, parse_with_weights, ParseError};
pub use print::{print, print_with_weights, INLINE_MAX};
pub use weights::{Weights, WeightsError};

use std::path::{Path, PathBuf};

/// Errors reading or writing a `.lir` file pair.
#[derive(Debug, thiserror::Error)]
pub enum LirFileError {
    /// File system error.
    #[error("{path}: {msg}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        msg: String,
    },
    /// The text does not parse.
    #[error("{path}:{err}")]
    Parse {
        /// The file.
        path: String,
        /// The parse error (line:col: message).
        err: ParseError,
    },
    /// The weights file is corrupt.
    #[error("{path}: {err}")]
    Weights {
        /// The file.
        path: String,
        /// What is wrong.
        err: WeightsError,
    },
}

/// The weights sidecar of a `.lir` path: `model.lir` → `model.lir.weights`.
pub fn weights_path(lir: &Path) -> PathBuf {
    let mut s = lir.as_os_str().to_owned();
    s.push(".weights");
    PathBuf::from(s)
}

/// Writes `g` as `path` plus, when it has large constants, `path.weights`.
pub fn write_lir(path: &Path, g: &crate::Graph) -> Result<(), LirFileError> {
    let (text, w) = print_with_weights(g);
    let io = |p: &Path, e: std::io::Error| LirFileError::Io { path: p.display().to_string(), msg: e.to_string() };
    std::fs::write(path, text).map_err(|e| io(path, e))?;
    let wp = weights_path(path);
    if w.is_empty() {
        if wp.exists() {
            std::fs::remove_file(&wp).map_err(|e| io(&wp, e))?;
        }
    } else {
        std::fs::write(&wp, w.to_bytes()).map_err(|e| io(&wp, e))?;
    }
    Ok(())
}

/// Reads `path` and, if present, `path.weights`.
pub fn read_lir(path: &Path) -> Result<crate::Graph, LirFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| LirFileError::Io { path: path.display().to_string(), msg: e.to_string() })?;
    let wp = weights_path(path);
    let w = if wp.exists() {
        let bytes = std::fs::read(&wp).map_err(|e| LirFileError::Io { path: wp.display().to_string(), msg: e.to_string() })?;
        Weights::from_bytes(&bytes).map_err(|err| LirFileError::Weights { path: wp.display().to_string(), err })?
    } else {
        Weights::default()
    };
    parse_with_weights(&text, &w).map_err(|err| LirFileError::Parse { path: path.display().to_string(), err })
}

/// A value type as printed in `.lir` (`f32[N,3,224,224]`).
pub fn vtype_string(t: &crate::ValueType) -> String {
    print::vtype(t)
}
