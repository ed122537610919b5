//! The one way every stage reads a model file: [`load_model`] picks the reader by extension
//! (`.onnx`, OpenVINO IR `.xml` + `.bin`, or `.lir`) and then [`prepare`]s the graph.
#![deny(missing_docs)]

mod load;
mod prepare;

pub use load::{load_model, model_files, LoadError};
pub use prepare::{prepare, PrepareError};
