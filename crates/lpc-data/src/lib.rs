//! Tensor files and sample data for lpc: `.npy` (read and write), `.npz`, ONNX TensorProto
//! `.pb`, `.wav` audio, PNG/JPEG images with preprocessing, and sample sets checked against a model's inputs.
#![deny(missing_docs)]

mod error;
mod files;
pub mod images;
pub mod npy;
pub mod npz;
pub mod pb;
pub mod rng;
pub mod rows;
pub mod samples;
pub mod spec;
pub mod wav;

pub use error::{DataError, WriteError};
pub use images::{image_tensor, ImageOptions, Layout};
pub use npy::{read_npy, read_npy_bytes, write_npy};
pub use npz::read_npz;
pub use pb::{read_pb, read_tensor};
pub use rng::{choose, Rng};
pub use rows::{concat_rows, slice_rows};
pub use samples::{InMemory, LoadOptions, SampleSource, Samples};
pub use spec::InputSpec;
pub use wav::read_wav;
