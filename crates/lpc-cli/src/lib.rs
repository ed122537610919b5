//! The lpc driver as a library: one module per verb (its clap arguments and the function that
//! runs it) and the helpers they share. `main.rs` only parses and dispatches.
#![deny(missing_docs)]

pub mod cmd;
pub mod inputs;
pub mod jit;
pub mod memory;
pub mod outputs;
pub mod runtime;
pub mod threads;
