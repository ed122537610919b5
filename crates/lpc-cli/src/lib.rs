//! The pieces of the lpc driver that tests share: tensor files.
#![deny(missing_docs)]

pub mod npy;
