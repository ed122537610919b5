//! Worker threads and progress output: `--threads`, and progress bars only on a terminal.

use anyhow::{bail, Context, Result};

/// Sets the worker thread count (the rayon pool, which lpc-ref's GEMMs and loops use).
pub fn set_threads(threads: Option<usize>) -> Result<()> {
    let Some(n) = threads else { return Ok(()) };
    if n == 0 {
        bail!("--threads must be at least 1");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .context("thread pool")?;
    Ok(())
}

/// Progress bars only on a terminal; quiet when piped.
pub fn progress_bar() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}
