//! `FoldError`, the error type of the fold stage.

use crate::rules::RuleError;
use lpc_ir::{GraphError, InferError};
use std::path::PathBuf;

/// Errors of the fold stage.
#[derive(Debug, thiserror::Error)]
pub enum FoldError {
    /// The built-in pipeline names a rule file or directory that `passes/` does not have.
    #[error("built-in pipeline: no rule file or directory '{spec}'")]
    NoBuiltinRules {
        /// The path asked for, relative to `passes/`.
        spec: String,
    },
    /// Rule files and a pipeline file were both given.
    #[error("give rule files or a pipeline file, not both")]
    RulesAndPipeline,
    /// egg refuses a rule's pattern.
    #[error("{loc}: rule '{rule}': {msg}")]
    BadPattern {
        /// `file:line:col` of the rule.
        loc: String,
        /// The rule's name.
        rule: String,
        /// egg's message.
        msg: String,
    },
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
    /// A rule's two sides differ on one of its matches in the graph being folded.
    #[error("{loc}: rule '{rule}' is unsound (phase '{phase}', {failure}); nothing was written. `lpc rules check` checks a rule file on its cases; --trust-rules skips this check")]
    UnsoundRule {
        /// `file:line:col` of the rule.
        loc: String,
        /// The rule's name.
        rule: String,
        /// The phase.
        phase: String,
        /// The counterexample: where, and by how much the sides differ.
        failure: String,
    },
    /// The graph's structure is broken (a cycle, a node reading a value no node makes).
    #[error("graph: {0}")]
    Structure(#[from] GraphError),
    /// Type inference fails on the graph loaded or rebuilt.
    #[error("graph: {0}")]
    Types(#[from] InferError),
    /// The graph's facts contradict each other as it is loaded into the e-graph.
    #[error("graph: {0}")]
    Load(String),
    /// The extracted e-graph term cannot be turned back into a graph.
    #[error("rebuilding the graph: {0}")]
    Rebuild(String),
    /// A rule's `.lir` case file does not parse.
    #[error("{}: {source}", path.display())]
    Case {
        /// The case file.
        path: PathBuf,
        /// The parse error (line and column).
        source: lpc_ir::text::ParseError,
    },
    /// `explain` names a node the graph does not have.
    #[error("no node named '{0}'")]
    NoSuchNode(String),
    /// A file cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}
