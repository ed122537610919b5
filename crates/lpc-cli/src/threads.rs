//! Worker threads and progress output: `--threads`, and progress bars only on a terminal.

use anyhow::{Context, Result};
use clap::builder::RangedU64ValueParser;

/// The most worker threads `--threads` accepts: far more than any host has cores, and few enough
/// that starting them cannot exhaust the process's thread limit on an ordinary system.
pub const MAX_THREADS: u64 = 1024;

/// The value parser of every `--threads` flag: 1..=[`MAX_THREADS`] (clap names the flag).
pub fn threads_arg() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(1..=MAX_THREADS)
}

/// Sets the worker thread count (the rayon pool, which lpc-ref's GEMMs and loops use).
pub fn set_threads(threads: Option<usize>) -> Result<()> {
    let Some(n) = threads else { return Ok(()) };
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .with_context(|| format!("--threads {n}: cannot start the thread pool"))?;
    Ok(())
}

/// Progress bars only on a terminal; quiet when piped.
pub fn progress_bar() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}
