//! Memory a verb is about to allocate, checked against the memory available first: an input
//! shape too large for the host (a big `--dim`) is an error naming it, not an abort.

use anyhow::{bail, Result};

/// The memory assumed available where the host does not say (not Linux): 16 GiB.
const UNKNOWN_AVAILABLE: usize = 16 << 30;

/// The bytes the host can give: Linux's `MemAvailable`, else [`UNKNOWN_AVAILABLE`].
pub fn available() -> usize {
    lpc_ir::host::available_memory().unwrap_or(UNKNOWN_AVAILABLE)
}

/// Refuses `bytes` (`None`: more than a `usize` holds) for `what` when they exceed
/// [`available`].
pub fn check(what: impl FnOnce() -> String, bytes: Option<usize>) -> Result<()> {
    let avail = available();
    match bytes {
        Some(b) if b <= avail => Ok(()),
        Some(b) => bail!(
            "{} needs {b} bytes, more than the {avail} bytes of memory available",
            what()
        ),
        None => bail!(
            "{} needs more bytes than the address space holds ({avail} bytes of memory available)",
            what()
        ),
    }
}
