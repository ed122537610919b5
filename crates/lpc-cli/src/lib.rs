//! The pieces of the lpc driver that tests and benchmarks share: model loading and tensor files.
#![deny(missing_docs)]

pub mod model;
pub mod npy;
