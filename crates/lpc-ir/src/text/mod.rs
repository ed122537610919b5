//! The `.lir` text format of the graph IR: printer, parser and the `.lir.weights` sidecar for
//! large constants. The format is described in `docs/ir-text-format.md`.

mod attrs;
mod lex;
mod parse;
mod print;
mod weights;

pub use parse::{parse, parse_with_weights, ParseError};
pub use print::{print, print_with_weights, INLINE_MAX};
pub use weights::{Weights, WeightsError};

use crate::{Graph, ValueType};
use std::path::{Path, PathBuf};

/// Errors reading or writing a `.lir` file pair.
#[derive(Debug, thiserror::Error)]
pub enum LirFileError {
    /// A file system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The text does not parse.
    #[error("{path}:{source}")]
    Parse {
        /// The `.lir` file.
        path: String,
        /// Where and what (`line:col: message`).
        source: ParseError,
    },
    /// The weights file is unreadable or corrupt.
    #[error("{path}: {source}")]
    Weights {
        /// The `.lir.weights` file.
        path: String,
        /// What is wrong.
        source: WeightsError,
    },
}

/// The weights sidecar of a `.lir` path: `model.lir` → `model.lir.weights`.
pub fn weights_path(lir: &Path) -> PathBuf {
    let mut s = lir.as_os_str().to_owned();
    s.push(".weights");
    PathBuf::from(s)
}

/// Writes `g` to `path` and its large constants to `path.weights` (see [`write_lir_parts`]).
pub fn write_lir(path: &Path, g: &Graph) -> Result<(), LirFileError> {
    let (text, w) = print_with_weights(g);
    write_lir_parts(path, &text, &w)
}

/// Writes `.lir` text to `path` and `w` to `path.weights`, atomically: both go to temporary
/// files first and are renamed into place weights first, so a failure leaves the old pair as
/// it was. With no weights, a stale `path.weights` is removed once the text is in place, so
/// that the pair stays consistent.
pub fn write_lir_parts(path: &Path, text: &str, w: &Weights) -> Result<(), LirFileError> {
    let io = |e: crate::host::WriteError| LirFileError::Io {
        path: e.path.display().to_string(),
        source: e.source,
    };
    let wp = weights_path(path);
    if w.is_empty() {
        crate::host::write_atomic(path, text.as_bytes()).map_err(io)?;
        if wp.exists() {
            std::fs::remove_file(&wp).map_err(|source| LirFileError::Io {
                path: wp.display().to_string(),
                source,
            })?;
        }
        Ok(())
    } else {
        crate::host::write_all_atomic(&[(&wp, &w.to_bytes()), (path, text.as_bytes())]).map_err(io)
    }
}

/// Reads `path` and, when it exists, `path.weights`.
pub fn read_lir(path: &Path) -> Result<Graph, LirFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| LirFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let wp = weights_path(path);
    let w = if wp.exists() {
        let bytes = std::fs::read(&wp).map_err(|source| LirFileError::Io {
            path: wp.display().to_string(),
            source,
        })?;
        Weights::from_bytes(&bytes).map_err(|source| LirFileError::Weights {
            path: wp.display().to_string(),
            source,
        })?
    } else {
        Weights::default()
    };
    parse_with_weights(&text, &w).map_err(|source| LirFileError::Parse {
        path: path.display().to_string(),
        source,
    })
}

/// A value type as `.lir` writes it (`f32[N,3,224,224]`, `?[*]`), with symbolic dimensions
/// quoted when they are not plain identifiers.
pub fn vtype_string(t: &ValueType) -> String {
    print::vtype(t)
}
