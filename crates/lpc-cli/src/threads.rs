//! Worker threads and progress output: `--threads`, and progress bars only on a terminal.

use anyhow::{Context, Result};
use clap::builder::{RangedU64ValueParser, TypedValueParser};

/// The most worker threads `--threads` accepts: far more than any host has cores, and few enough
/// that starting them cannot exhaust the process's thread limit on an ordinary system.
pub const MAX_THREADS: u64 = 1024;

/// The value parser of every `--threads` flag: 1..=[`MAX_THREADS`] (clap names the flag), and
/// at most the cores the host has: more workers than cores only contend (a tiny model on 2
/// cores ran 450 times slower with 1024 threads), so a larger count is lowered with a note.
pub fn threads_arg() -> impl TypedValueParser<Value = usize> {
    RangedU64ValueParser::<usize>::new()
        .range(1..=MAX_THREADS)
        .map(at_most_cores)
}

/// `n` worker threads lowered to the cores the host has, with a note on stderr when it is.
pub fn at_most_cores(n: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(n, |c| c.get());
    if n > cores {
        eprintln!("note: --threads {n}: this host has {cores} cores; using {cores}");
    }
    n.min(cores)
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
