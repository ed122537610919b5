//! How many threads a kernel may split its work over.
//!
//! A model compiled for one thread runs on its caller's thread ([`serial`]), without a rayon
//! pool: handing each run to a one-worker pool and waiting for it costs two thread wake-ups per
//! run, and on this 2-vCPU VM a process sometimes ends up paying ~0.1 ms for them (digits_cnn
//! b1 at one thread: 0.015 ms or 0.11 ms per run depending on the process). Every kernel that
//! can split its work asks [`threads`] and takes its serial path when it returns 1, so nothing
//! reaches rayon's global pool either.

use std::cell::Cell;

thread_local! {
    static SERIAL: Cell<bool> = const { Cell::new(false) };
}

/// Threads the running kernel may use: 1 inside [`serial`], else the current rayon pool's.
pub fn threads() -> usize {
    if SERIAL.get() {
        1
    } else {
        rayon::current_num_threads().max(1)
    }
}

/// Whether kernels on this thread run serially (inside [`serial`]).
pub fn is_serial() -> bool {
    SERIAL.get()
}

/// Runs `f` on this thread with [`threads`] = 1 (restored after, also on panic).
pub fn serial<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SERIAL.set(self.0);
        }
    }
    let _restore = Restore(SERIAL.replace(true));
    f()
}
