//! The two things lpc asks of the host system: writing output files atomically, and how much
//! memory is available. Every crate that writes a file goes through [`write_atomic`] (or
//! [`write_all_atomic`] for a file pair), so a failure half-way never leaves a truncated file.

use std::io::Write;
use std::path::{Path, PathBuf};

/// An output file could not be written; whatever was at `path` before is unchanged.
#[derive(Debug, thiserror::Error)]
#[error("{}: cannot write: {source}", path.display())]
pub struct WriteError {
    /// The file.
    pub path: PathBuf,
    /// The operating system's error.
    pub source: std::io::Error,
}

/// Writes `bytes` to `path` atomically: see [`write_all_atomic`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_all_atomic(&[(path, bytes)])
}

/// Writes each file to a temporary file in its folder, then renames the temporary files into
/// place in the order given. Until the first rename nothing visible has changed, so an error
/// while writing (disk full, no permission, ...) leaves every old file intact; a rename within
/// one folder does not fail half-way. A path that is a symbolic link is followed: the link
/// stays and its target gets the new content. A path that exists but is not a regular file (a
/// device or pipe such as `/dev/stdout`) cannot be replaced and is written directly.
pub fn write_all_atomic(files: &[(&Path, &[u8])]) -> Result<(), WriteError> {
    let mut staged = Vec::with_capacity(files.len());
    for &(path, bytes) in files {
        let err = |source| WriteError {
            path: path.to_path_buf(),
            source,
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix(".lpc-").suffix(".tmp");
        let target = match std::fs::metadata(path) {
            Ok(m) if !m.is_file() => {
                std::fs::write(path, bytes).map_err(err)?;
                continue;
            }
            Ok(m) => {
                builder.permissions(m.permissions());
                std::fs::canonicalize(path).map_err(err)?
            }
            Err(_) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    // What `File::create` gives: 0o666 less the umask.
                    builder.permissions(std::fs::Permissions::from_mode(0o666));
                }
                path.to_path_buf()
            }
        };
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = builder.tempfile_in(dir).map_err(err)?;
        tmp.write_all(bytes).map_err(err)?;
        staged.push((tmp, target));
    }
    for (tmp, target) in staged {
        tmp.persist(&target).map_err(|e| WriteError {
            path: target.clone(),
            source: e.error,
        })?;
    }
    Ok(())
}

/// The memory Linux reports available (`MemAvailable` of `/proc/meminfo`), in bytes; `None`
/// elsewhere or when it cannot be read.
pub fn available_memory() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: usize = info
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lpc-ir-host-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn replaces_and_leaves_no_temporary_file() {
        let d = dir("replace");
        let p = d.join("a.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn follows_a_symbolic_link() {
        let d = dir("link");
        let (target, link) = (d.join("target.txt"), d.join("link.txt"));
        std::fs::write(&target, b"old").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }

    #[test]
    fn a_failed_pair_changes_nothing() {
        let d = dir("pair");
        let a = d.join("a.txt");
        std::fs::write(&a, b"old").unwrap();
        // The second file's folder does not exist: no temporary file for it, so no rename.
        let missing = d.join("no/such/dir/b.txt");
        let e = write_all_atomic(&[(&a, b"new"), (&missing, b"x")]).unwrap_err();
        assert_eq!(e.path, missing);
        assert_eq!(std::fs::read(&a).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
    }

    #[test]
    fn available_memory_is_plausible_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(available_memory().is_some_and(|b| b > 1 << 20));
        }
    }
}
