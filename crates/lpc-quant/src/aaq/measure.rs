//! One measurement of a model against FP32: top-1 flips, top-1 against labels, SQNR.

use crate::json::Json;

/// One measurement of a model against the cached FP32 outputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measure {
    /// Samples measured.
    pub samples: usize,
    /// Samples whose top-1 (argmax of the first output) differs from FP32's.
    pub flips: usize,
    /// Top-1 against labels, when labels are given.
    pub top1: Option<f64>,
    /// FP32 top-1 against labels, when labels are given.
    pub reference_top1: Option<f64>,
    /// SQNR of the worst output against FP32 (dB).
    pub sqnr_db: f64,
}

impl Measure {
    pub(crate) fn to_json(&self) -> Json {
        let opt = |x: Option<f64>| x.map_or(Json::Null, Json::num);
        Json::obj([
            ("samples", Json::num(self.samples as f64)),
            ("flips", Json::num(self.flips as f64)),
            ("top1", opt(self.top1)),
            ("reference_top1", opt(self.reference_top1)),
            ("sqnr_db", Json::num(self.sqnr_db)),
        ])
    }
}
