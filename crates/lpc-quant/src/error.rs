//! The crate's error type, [`QuantError`].

/// Why quantization could not be done.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    /// There are no samples to calibrate or evaluate on.
    #[error("no {what} samples")]
    NoSamples {
        /// "calibration" or "evaluation".
        what: &'static str,
    },
    /// Labels and samples differ in number.
    #[error("{labels} labels for {samples} samples")]
    LabelCount {
        /// Labels given.
        labels: usize,
        /// Samples given.
        samples: usize,
    },
    /// A label is not one of the classifier's classes.
    #[error("sample {sample}: label {label} is not a class of the model's {classes} (0 to {})", classes.saturating_sub(1))]
    LabelRange {
        /// Sample index.
        sample: usize,
        /// The label.
        label: i64,
        /// Classes the model's first output scores.
        classes: usize,
    },
    /// The model and its reference (the FP32 model) have different numbers of outputs.
    #[error("the model has {model} outputs, the reference {reference}")]
    OutputCount {
        /// The model's outputs.
        model: usize,
        /// The reference's outputs.
        reference: usize,
    },
    /// An output of the model and of its reference differ in shape.
    #[error("output {output}: model shape {model:?}, reference {reference:?}")]
    OutputShape {
        /// Output index.
        output: usize,
        /// The model's shape.
        model: Vec<usize>,
        /// The reference's shape.
        reference: Vec<usize>,
    },
    /// A classifier output does not hold one row of scores per sample.
    #[error("output of shape {0:?} does not hold one row per sample")]
    NotRows(Vec<usize>),
    /// A value took NaN or Inf on the calibration data.
    #[error(
        "value '{value}' took {count} NaN/Inf values on the calibration data; cannot quantize it"
    )]
    NonFinite {
        /// The value's name.
        value: String,
        /// How many of its elements.
        count: u64,
    },
    /// The model already holds quantization nodes.
    #[error(
        "the model is already quantized ({count} quantization node(s), e.g. '{node}' ({op})); \
         quantizing it again would add a second layer of quantizers. \
         Use `lpc fold` to lower it to integer operations"
    )]
    AlreadyQuantized {
        /// Quantization nodes found.
        count: usize,
        /// The first one's name.
        node: String,
        /// Its op.
        op: &'static str,
    },
    /// A tensor that must be f32 is not.
    #[error("{what} must be f32, got {dtype}")]
    NotF32 {
        /// What it is (names the node).
        what: String,
        /// Its dtype.
        dtype: lpc_ir::DType,
    },
    /// A weight tensor holds NaN or Inf.
    #[error("{what}: weight {index} is {value}")]
    NonFiniteWeight {
        /// The layer's weights.
        what: String,
        /// Flat index of the bad weight.
        index: usize,
        /// Its value.
        value: f32,
    },
    /// A per-channel quantizer does not fit the tensor it quantizes.
    #[error("{what}: channel axis {axis} does not fit shape {shape:?}")]
    ChannelAxis {
        /// The quantized tensor.
        what: String,
        /// The channel axis (or channel count for an activation quantizer).
        axis: usize,
        /// The tensor's shape.
        shape: Vec<usize>,
    },
    /// A FakeQuantize `levels` outside what lpc quantizes to.
    #[error("FakeQuantize levels must be in 2..=65536, got {0}")]
    Levels(u32),
    /// An `--ignore` pattern is invalid or matches nothing.
    #[error("--ignore {0}")]
    Ignore(String),
    /// An accuracy budget that cannot be met by definition.
    #[error("{flag} {value}: {why}")]
    Budget {
        /// The flag (`--max-drop`, `--min-sqnr`).
        flag: &'static str,
        /// The value given.
        value: f64,
        /// Why it is refused.
        why: &'static str,
    },
    /// Constant folding before quantization failed.
    #[error("constant folding: {0}")]
    ConstantFolding(lpc_ref::RunError),
    /// Bias correction could not evaluate a layer.
    #[error("bias correction of '{node}': {msg}")]
    BiasCorrection {
        /// The layer.
        node: String,
        /// What failed.
        msg: String,
    },
    /// Sequential bias correction would hold more activations than its memory limit.
    #[error("holding {samples} samples' activations at node '{node}' takes more than {limit_mb} MB (lower --bias-samples)")]
    ActivationMemory {
        /// Samples held.
        samples: usize,
        /// Where the limit was reached.
        node: String,
        /// The limit.
        limit_mb: usize,
    },
    /// An invariant of the quantizer itself failed (a bug in lpc, not in the input).
    #[error("internal error (a bug in lpc): {0}")]
    Internal(String),
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
