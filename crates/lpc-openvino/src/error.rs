//! `OpenVinoError`: why an OpenVINO IR model could not be imported.

/// Why an OpenVINO IR model could not be imported.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OpenVinoError {
    /// A file could not be read.
    #[error("{path}: {msg}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        msg: String,
    },
    /// The `.xml` is not well-formed XML.
    #[error("malformed XML: {0}")]
    Xml(String),
    /// The XML is well-formed but not a valid IR (missing element, bad attribute, bad edge, ...).
    #[error("invalid IR: {0}")]
    Invalid(String),
    /// One layer cannot be imported: unknown type, bad attribute, unsupported variant, bad data.
    #[error("layer {id} '{name}' ({ty}): {msg}")]
    Layer {
        /// Layer id in the XML.
        id: u64,
        /// Layer name.
        name: String,
        /// Layer type and opset, e.g. `MaxPool/opset8`.
        ty: String,
        /// What is wrong.
        msg: String,
    },
}
