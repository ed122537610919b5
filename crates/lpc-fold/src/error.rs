//! `FoldError`, the error type of the fold stage.

use crate::rules::RuleError;
use std::path::PathBuf;

/// Errors of the fold stage.
#[derive(Debug, thiserror::Error)]
pub enum FoldError {
    /// Rule sources are missing or inconsistent (no such built-in file, a rule egg refuses,
    /// rules and a pipeline file given together).
    #[error("{0}")]
    Rules(String),
    /// A pipeline file is malformed.
    #[error("{file}: {msg}")]
    Pipeline {
        /// The pipeline file.
        file: String,
        /// What is wrong.
        msg: String,
    },
    /// `--stop-after` names no phase of the pipeline.
    #[error("no phase '{name}' (phases: {known})")]
    UnknownPhase {
        /// The name asked for.
        name: String,
        /// The pipeline's phase names, comma-separated.
        known: String,
    },
    /// A located rule-file error.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// A rule unioned incompatible values or built an ill-typed node.
    #[error("phase '{phase}': {msg}")]
    Conflict {
        /// The phase.
        phase: String,
        /// What happened (names the rule).
        msg: String,
    },
    /// The graph cannot be loaded or rebuilt.
    #[error("graph: {0}")]
    Graph(String),
    /// A file cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}
