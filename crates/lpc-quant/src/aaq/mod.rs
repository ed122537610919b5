//! Accuracy-aware quantization: rank the quantized layers of a FakeQuantize (or QDQ) graph by
//! sensitivity and return the worst ones to FP32 until a metric is within a budget.
//! See `docs/accuracy-aware.md` for the method and its cost.

mod budget;
mod evaluator;
mod measure;
mod options;
mod order;
mod outcome;
mod search;
mod sensitivity;
mod target;
mod units;
mod widen;

pub use budget::{quantize_within_budget, BudgetJob};
pub use evaluator::Evaluator;
pub use measure::Measure;
pub use options::{Order, SearchConfig, SearchOptions};
pub use order::search_order;
pub use outcome::{Outcome, Step};
pub use search::{search, search_with, SearchInput};
pub use sensitivity::{rank, rank_on_first, RankData, Sensitivity};
pub use target::{Metric, Target};
pub use units::{layer_macs, restore, units, with_fp32, Unit, UnitKind};
pub use widen::minmax_ranges;
