//! Search settings: [`SearchConfig`], [`Order`] and [`SearchOptions`].

use super::target::Target;

/// Search settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchConfig {
    /// The budget.
    pub target: Target,
    /// Evaluation samples used to rank units (the first ones).
    pub rank_samples: usize,
    /// Smallest fraction of MACs that must stay INT8; the search stops before going below.
    pub min_int8_macs: f64,
    /// Samples per interpreter run.
    pub batch: usize,
    /// Progress bars.
    pub progress: bool,
}

/// The order in which the search returns ranked units to FP32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Most sensitive first (the unit whose return alone helps the metric most).
    Sensitivity,
    /// Most gain per MAC returned to FP32 first: cheap sensitive units (joins, small layers)
    /// before expensive ones. Gain is the metric's improvement on the ranking subset (for SQNR:
    /// the relative noise power removed, which adds up across units); units that do not help
    /// come last, most sensitive first.
    GainPerMac,
}

/// Search strategy beyond [`SearchConfig`].
#[derive(Clone, Debug, PartialEq)]
pub struct SearchOptions {
    /// Order of the ranked units.
    pub order: Order,
    /// After the smallest prefix within budget is found, trim it: each INT8-capable layer of
    /// the FP32 set is returned to INT8 alone on the ranking subset, the layers are ordered by
    /// metric loss per MAC regained (smallest first), and the longest prefix of that order that
    /// can go back to INT8 within budget is found on the full data (galloping, bisection).
    pub trim: bool,
    /// Then try returning up to this many of the remaining FP32 set's
    /// INT8-capable layers (largest MACs first, each at least 0.5% of all MACs) to INT8, one
    /// full evaluation each, keeping every one the budget still allows.
    pub refine: usize,
    /// When the galloping search first meets the budget at `k` units after a miss at `j`,
    /// re-rank the units `j..k` of the order on the ranking subset with the first `j` already
    /// in FP32 (gains on ppocr det are super-additive: a unit's gain alone in FP32 says little
    /// about its gain next to 30 others), reorder them per [`SearchOptions::order`], and bisect
    /// along the new order. Costs `(k − j) × rank_samples` one-sample runs.
    pub rerank: bool,
}

impl Default for SearchOptions {
    fn default() -> SearchOptions {
        SearchOptions {
            order: Order::GainPerMac,
            trim: false,
            refine: 8,
            rerank: true,
        }
    }
}
