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
    /// A tensor a pass builds or reads has the wrong dtype or shape. (Not a `#[source]`: the
    /// message is the tensor error's own, as printed before.)
    #[error("{0}")]
    Tensor(lpc_ir::TensorError),
    /// The graph cannot be ordered (a cycle). (Not a `#[source]`, as for `Tensor`.)
    #[error("{0}")]
    Graph(lpc_ir::GraphError),
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

impl From<lpc_ir::TensorError> for QuantError {
    fn from(e: lpc_ir::TensorError) -> QuantError {
        QuantError::Tensor(e)
    }
}

impl From<lpc_ir::GraphError> for QuantError {
    fn from(e: lpc_ir::GraphError) -> QuantError {
        QuantError::Graph(e)
    }
}

/// Maps an interpreter error on the batch starting at `sample` to [`QuantError::Run`].
pub(crate) fn run_err(sample: usize) -> impl Fn(lpc_ref::RunError) -> QuantError {
    move |source| QuantError::Run { sample, source }
}
