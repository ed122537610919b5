//! How many threads a kernel may split its work over.
//!
//! A model compiled for one thread runs on its caller's thread ([`serial`]), without a rayon
//! pool: handing each run to a one-worker pool and waiting for it costs two thread wake-ups per
//! run, and on this 2-vCPU VM a process sometimes ends up paying ~0.1 ms for them (digits_cnn
//! b1 at one thread: 0.015 ms or 0.11 ms per run depending on the process). Every kernel that
//! can split its work asks [`threads`] and takes its serial path when it returns 1; lpc-ref
//! (fallback ops) reads the same flag, so nothing reaches a rayon pool.

/// Threads the running kernel may use: 1 inside [`serial`], else the current rayon pool's.
pub fn threads() -> usize {
    lpc_ref::util::threads()
}

/// Runs `f` on this thread with [`threads`] = 1, for lpc-ref's fallback ops too
/// ([`lpc_ref::util::serial`]).
pub fn serial<R>(f: impl FnOnce() -> R) -> R {
    lpc_ref::util::serial(f)
}
