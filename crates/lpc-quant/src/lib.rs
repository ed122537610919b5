//! Post-training quantization: calibration statistics over a few hundred inputs, range
//! estimators, quantizer placement, FakeQuantize insertion, FastBiasCorrection, reports and
//! accuracy measurement. See `docs/quantization.md` for the policy and its reasons.
#![deny(missing_docs)]

pub mod aaq;
pub mod accuracy;
mod argmax;
pub mod batch;
mod bias;
pub mod bn_fold;
mod compare;
mod config;
mod dynamic;
mod error;
mod float_layers;
pub mod fq;
mod insert;
pub mod json;
mod outliers;
mod pipeline;
pub mod placement;
mod progress;
mod ranges;
mod report;
pub mod stats;

pub use aaq::{
    quantize_within_budget, BudgetJob, Evaluator, Measure, Metric, Order, Outcome, RankData,
    SearchConfig, SearchOptions, Target,
};
pub use accuracy::{evaluate, Accuracy};
pub use compare::{compare_values, sqnr_db};
pub use config::{BiasCorrectionMode, Config, Preset};
pub use dynamic::quantize_dynamic;
pub use error::QuantError;
pub use insert::insert_fake_quantize;
pub use json::Json;
pub use pipeline::{prepare, quantize, Quantized};
pub use report::{LayerInfo, RangeInfo, Report};
pub use stats::Estimator;
