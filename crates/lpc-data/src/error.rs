//! `DataError`: why a tensor file or a sample set could not be read, written or used.

use std::path::PathBuf;

/// Why a tensor file or a sample set could not be read, written or used. Every message names
/// the file (or the option) it is about.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be opened or read.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// A tensor file (`.npy`, a `.npz` archive or entry, a `.pb` sample) is malformed,
    /// unsupported or too large.
    #[error("{what}: {msg}")]
    File {
        /// The file (or `archive:entry`).
        what: String,
        /// What is wrong with it.
        msg: String,
    },
    /// An ONNX TensorProto file could not be read (lpc-onnx's error, unchanged).
    #[error(transparent)]
    Pb(#[from] lpc_onnx::ImportError),
    /// A tensor file has an extension that is none of `.npy`, `.pb`, `.wav`.
    #[error("{}: unknown tensor file type (expected .npy, .pb or .wav)", path.display())]
    UnknownTensorFile {
        /// The file.
        path: PathBuf,
    },
    /// An image cannot be decoded or turned into the model input.
    #[error("{what}: {msg}")]
    Image {
        /// The image file.
        what: String,
        /// What is wrong.
        msg: String,
    },
    /// A sample does not fit its model input (dtype or shape).
    #[error("{what}: {msg}")]
    Mismatch {
        /// The sample (file, or `origin: sample N`).
        what: String,
        /// How it differs from the input.
        msg: String,
    },
    /// A sample holds NaN or Inf.
    #[error("{what}: element {index} is {value} (NaN/Inf in calibration data)")]
    NonFinite {
        /// The sample.
        what: String,
        /// Flat index of the first bad element.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// The data as a whole does not fit the model: its layout, kind or number of samples.
    #[error("{0}")]
    Set(String),
    /// The load or preprocessing options are invalid (`--subset`, `--mean`, `--std`).
    #[error("{0}")]
    Options(String),
    /// A sample number past the end of the set.
    #[error("sample {0} out of range")]
    OutOfRange(usize),
    /// Samples cannot be stacked along axis 0.
    #[error("{0}")]
    Stack(String),
    /// A tensor could not be built or reshaped.
    #[error("{0}")]
    Shape(lpc_ir::TensorError),
    /// A tensor file could not be written.
    #[error("{}: write failed", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: WriteError,
    },
}

/// Why writing a tensor file failed (the source of [`DataError::Write`]).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The array could not be encoded as `.npy`.
    #[error("encoding the array: {0}")]
    Encode(std::io::Error),
    /// The file could not be written (the old file, if any, is unchanged).
    #[error(transparent)]
    File(lpc_ir::host::WriteError),
}
