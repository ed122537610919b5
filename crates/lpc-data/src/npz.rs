//! `.npz` archives (zip files of `.npy` arrays).

use crate::error::DataError;
use crate::npy::read_npy_bytes;
use lpc_ir::Tensor;
use std::io::Read;
use std::path::Path;

/// Reads every array of a `.npz` file, by name (without the `.npy` suffix), in archive order.
pub fn read_npz(path: &Path) -> Result<Vec<(String, Tensor)>, DataError> {
    let what = path.display().to_string();
    let file = |msg: String| DataError::File {
        what: what.clone(),
        msg,
    };
    let f = std::fs::File::open(path).map_err(|error| DataError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let mut z =
        zip::ZipArchive::new(f).map_err(|e| file(format!("not a valid .npz archive ({e})")))?;
    let mut out = vec![];
    for i in 0..z.len() {
        let mut e = z.by_index(i).map_err(|e| file(format!("entry {i}: {e}")))?;
        let name = e.name().to_string();
        let Some(key) = name.strip_suffix(".npy") else {
            continue;
        };
        if e.size() > (1 << 34) {
            return Err(file(format!("entry '{name}' is too large")));
        }
        let mut buf = Vec::with_capacity(e.size() as usize);
        e.read_to_end(&mut buf)
            .map_err(|e| file(format!("entry '{name}': {e}")))?;
        out.push((
            key.to_string(),
            read_npy_bytes(&buf, &format!("{what}:{name}"))?,
        ));
    }
    if out.is_empty() {
        return Err(file("the archive holds no .npy arrays".into()));
    }
    Ok(out)
}
