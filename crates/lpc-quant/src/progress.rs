//! A minimal progress line on stderr, shown only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Counts finished samples and redraws `label done/total` on a terminal.
pub struct Progress {
    label: String,
    total: usize,
    done: AtomicUsize,
    show: bool,
    last: Mutex<usize>,
}

impl Progress {
    /// A progress line; `enabled` false (or a non-terminal stderr) keeps it silent.
    pub fn new(label: &str, total: usize, enabled: bool) -> Progress {
        Progress {
            label: label.to_string(),
            total,
            done: AtomicUsize::new(0),
            show: enabled && std::io::stderr().is_terminal(),
            last: Mutex::new(0),
        }
    }

    /// Records `n` more finished samples.
    pub fn add(&self, n: usize) {
        let d = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if !self.show {
            return;
        }
        if let Ok(mut last) = self.last.lock() {
            if d >= *last {
                *last = d;
                let width = 30;
                let filled = (d * width / self.total.max(1)).min(width);
                let bar: String = "#".repeat(filled) + &"-".repeat(width - filled);
                let _ = write!(
                    std::io::stderr(),
                    "\r{:<12} [{bar}] {d}/{}",
                    self.label,
                    self.total
                );
            }
        }
    }

    /// Ends the line.
    pub fn finish(&self) {
        if self.show {
            let _ = writeln!(std::io::stderr());
        }
    }
}
