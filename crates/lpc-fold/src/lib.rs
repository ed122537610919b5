//! lpc's fold stage: quantized graphs (FakeQuantize or Q/DQ) rewritten by equality saturation
//! (egg) with rules read from rule files, and the cheapest integer graph extracted.
#![deny(missing_docs)]

pub mod analysis;
pub mod cases;
pub mod check;
pub mod cli;

pub mod convert;
pub mod engine;

pub mod lang;
pub mod registry;
pub mod rules;

pub use engine::{fold, FoldOptions, FoldResult, Limits, Phase, PhaseStats, Pipeline};
pub use rules::{parse_rules, RuleDef, RuleError};

/// Errors of the fold stage.
#[derive(Debug, thiserror::Error)]
pub enum FoldError {
    /// A rule file or pipeline file is malformed.
    #[error("{0}")]
    Rules(String),
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
    /// File system error.
    #[error("{0}")]
    Io(String),
}
