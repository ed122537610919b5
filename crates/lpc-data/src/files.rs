//! Files by extension: the lower-case extension of a path, and the files of a folder.

use crate::error::DataError;
use std::path::{Path, PathBuf};

/// The files (not folders) of `dir`, sorted by path.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let rd = std::fs::read_dir(dir).map_err(|error| DataError::Io {
        path: dir.to_path_buf(),
        error,
    })?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    Ok(v)
}

/// The extension of `p` in lower case (`""` without one).
pub(crate) fn ext(p: &Path) -> String {
    p.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}
