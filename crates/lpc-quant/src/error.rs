//! The crate's error type, [`QuantError`].

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
    /// Running the model on a sample failed.
    #[error("running the model on sample {sample}: {source}")]
    Run {
        /// First sample index of the failing batch.
        sample: usize,
        /// The interpreter's error.
        source: lpc_ref::RunError,
    },
}

/// Maps an interpreter error on the batch starting at `sample` to [`QuantError::Run`].
pub(crate) fn run_err(sample: usize) -> impl Fn(lpc_ref::RunError) -> QuantError {
    move |source| QuantError::Run { sample, source }
}
