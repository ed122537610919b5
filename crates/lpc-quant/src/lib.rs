//! Post-training quantization: calibration statistics over a few hundred inputs, range
//! estimators, quantizer placement, FakeQuantize insertion, FastBiasCorrection, reports and
//! accuracy measurement. See `docs/quantization.md` for the policy and its reasons.
#![deny(missing_docs)]

pub mod accuracy;
pub mod batch;
pub mod budget;
pub mod fq;
pub mod json;
pub mod passes;
mod progress;
pub mod quantize;
pub mod stats;

pub use accuracy::evaluate;
pub use budget::{quantize_within_budget, Metric, SearchConfig, SearchOptions, Target};
pub use json::Json;
pub use lpc_data::{SampleSource, Samples};
pub use quantize::{quantize, BiasCorrectionMode, Config, Preset, Quantized, Report};
pub use stats::Estimator;

/// Why quantization could not be done.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    /// Calibration or evaluation data is unusable (file, shape, dtype, count, NaN/Inf).
    #[error("{0}")]
    Data(String),
    /// An `--ignore` pattern is invalid or matches nothing.
    #[error("--ignore {0}")]
    Ignore(String),
    /// The model or a parameter cannot be quantized as asked.
    #[error("{0}")]
    Invalid(String),
    /// Reading or checking the samples failed.
    #[error(transparent)]
    Samples(#[from] lpc_data::DataError),
    /// Running the model on a sample failed.
    #[error("running the model on sample {sample}: {source}")]
    Run {
        /// First sample index of the failing batch.
        sample: usize,
        /// The interpreter's error.
        source: lpc_ref::RunError,
    },
}
