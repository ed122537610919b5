//! lpc's fold stage: quantized graphs (FakeQuantize or Q/DQ) rewritten by equality saturation
//! (egg) with rules read from rule files, and the cheapest integer graph extracted.
#![deny(missing_docs)]

pub mod analysis;
pub mod apply;
pub mod check;
pub mod cost;
pub mod driver;
pub mod extract;
pub mod filetest;
pub mod lang;
pub mod pipeline;
pub mod registry;
pub mod report;
pub mod rules;
pub mod rules_check;
pub mod to_egraph;

mod error;

pub use driver::{fold, fold_graph, has_quantizers, FoldOptions, FoldResult, PhaseStats};
pub use error::FoldError;
pub use pipeline::{Limits, Phase, Pipeline};
pub use report::{explain, stats_text};
pub use rules::{parse_rules, RuleDef, RuleError};
pub use rules_check::{rules_check, CheckReport};
