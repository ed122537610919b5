//! What quantization did: [`Report`] with its activation ranges ([`RangeInfo`]) and layers
//! ([`LayerInfo`]), and its JSON form for `--report`.

use crate::fq::ActQuant;
use crate::json::Json;

/// The chosen range of one activation quantizer.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeInfo {
    /// Quantized value.
    pub value: String,
    /// Name of its range group (itself, or the Concat/Add whose inputs share one range).
    pub group: String,
    /// The quantizer (the first channel's when per-channel).
    pub q: ActQuant,
    /// Number of per-channel ranges (1 = per-tensor).
    pub channels: usize,
    /// Observed min, max, mean per-sample min and max.
    pub observed: [f32; 4],
    /// Why a fallback range was used, if one was.
    pub fallback: Option<String>,
}

/// One quantized layer in the report.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerInfo {
    /// Node name.
    pub name: String,
    /// Op name.
    pub op: &'static str,
    /// Weight ranges per channel (min and max of |w|max over channels), if weights are quantized.
    pub weight_range: Option<(f32, f32)>,
    /// Largest |bias shift| applied by bias correction.
    pub bias_shift: Option<f32>,
    /// SQNR of the layer output, quantized model vs FP32 (dB).
    pub sqnr_db: Option<f64>,
}

/// What quantization did, for `--report`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Preset used.
    pub preset: String,
    /// Estimator used.
    pub estimator: String,
    /// Calibration samples used.
    pub samples: usize,
    /// Whether bias correction ran.
    pub bias_correction: bool,
    /// Which bias correction ran: `fast`, `sequential` or `off`.
    pub bias_correction_mode: String,
    /// BatchNorm nodes folded.
    pub folded_batchnorm: Vec<String>,
    /// Nodes excluded by `--ignore`.
    pub ignored: Vec<String>,
    /// Activation ranges.
    pub ranges: Vec<RangeInfo>,
    /// Quantized layers.
    pub layers: Vec<LayerInfo>,
    /// SQNR of each graph output vs FP32 (dB).
    pub outputs: Vec<(String, f64)>,
    /// Fallbacks and other notes.
    pub warnings: Vec<String>,
    /// Wall time per stage (seconds).
    pub times: Vec<(String, f64)>,
}

impl Report {
    /// The report as JSON.
    pub fn to_json(&self) -> Json {
        let f = |x: f32| Json::num(x as f64);
        Json::obj([
            ("preset", Json::str(&self.preset)),
            ("estimator", Json::str(&self.estimator)),
            ("samples", Json::num(self.samples as f64)),
            ("bias_correction", Json::Bool(self.bias_correction)),
            (
                "bias_correction_mode",
                Json::str(&self.bias_correction_mode),
            ),
            (
                "folded_batchnorm",
                Json::Arr(self.folded_batchnorm.iter().map(Json::str).collect()),
            ),
            (
                "ignored",
                Json::Arr(self.ignored.iter().map(Json::str).collect()),
            ),
            (
                "activations",
                Json::Arr(
                    self.ranges
                        .iter()
                        .map(|r| {
                            Json::obj([
                                ("value", Json::str(&r.value)),
                                ("group", Json::str(&r.group)),
                                ("low", f(r.q.lo)),
                                ("high", f(r.q.hi)),
                                ("dtype", Json::str(if r.q.signed { "i8" } else { "u8" })),
                                ("scale", f(r.q.scale())),
                                ("zero_point", Json::num(r.q.zero_point())),
                                ("min", f(r.observed[0])),
                                ("max", f(r.observed[1])),
                                ("mean_min", f(r.observed[2])),
                                ("mean_max", f(r.observed[3])),
                                ("channels", Json::num(r.channels as f64)),
                                (
                                    "fallback",
                                    r.fallback.as_ref().map_or(Json::Null, Json::str),
                                ),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "layers",
                Json::Arr(
                    self.layers
                        .iter()
                        .map(|l| {
                            Json::obj([
                                ("name", Json::str(&l.name)),
                                ("op", Json::str(l.op)),
                                (
                                    "weight_range",
                                    l.weight_range
                                        .map_or(Json::Null, |(a, b)| Json::Arr(vec![f(a), f(b)])),
                                ),
                                ("bias_shift_max", l.bias_shift.map_or(Json::Null, f)),
                                ("sqnr_db", l.sqnr_db.map_or(Json::Null, Json::num)),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "outputs",
                Json::Arr(
                    self.outputs
                        .iter()
                        .map(|(n, s)| {
                            Json::obj([("name", Json::str(n)), ("sqnr_db", Json::num(*s))])
                        })
                        .collect(),
                ),
            ),
            (
                "warnings",
                Json::Arr(self.warnings.iter().map(Json::str).collect()),
            ),
            (
                "seconds",
                Json::Obj(
                    self.times
                        .iter()
                        .map(|(k, v)| (k.clone(), Json::num(*v)))
                        .collect(),
                ),
            ),
        ])
    }
}
