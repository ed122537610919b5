//! The verbs of `lpc`: each module holds its clap `Args` struct and the `run` function.

pub mod accuracy;
pub mod bench;
pub mod budget_args;
pub mod calibrate;
pub mod compile;
pub mod data_args;
pub mod explain;
pub mod fold;
pub mod import;
pub mod quant_args;
pub mod quantize;
pub mod rules;
pub mod run;
pub mod show;
