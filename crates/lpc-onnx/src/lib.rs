//! ONNX import and export.
#![deny(missing_docs)]
