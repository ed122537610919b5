//! The result of a search ([`Outcome`], [`Step`]) and its JSON and table forms.

use super::measure::Measure;
use super::options::Order;
use super::sensitivity::Sensitivity;
use super::target::Target;
use super::units::{Unit, UnitKind};
use crate::json::Json;
use lpc_ir::Graph;

/// One evaluated step of the search.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Units in FP32 (a prefix of the ranking).
    pub fp32_units: usize,
    /// The unit(s) this step added to FP32 (names), or none for the fully quantized model.
    pub added: Vec<String>,
    /// The unit(s) this step returned to INT8 (the refine pass), else none.
    pub back_to_int8: Vec<String>,
    /// The measurement on the evaluation data.
    pub measure: Measure,
    /// Fraction of MACs that stay INT8.
    pub int8_macs: f64,
    /// Within budget.
    pub met: bool,
}

/// The result of [`search`](crate::aaq::search()).
pub struct Outcome {
    /// The best model found (the one within budget with the fewest FP32 units, else the best
    /// measured).
    pub graph: Graph,
    /// The budget.
    pub target: Target,
    /// Whether the budget is met.
    pub reached: bool,
    /// The fully quantized model's measurement.
    pub initial: Measure,
    /// The returned model's measurement.
    pub fin: Measure,
    /// All units.
    pub units: Vec<Unit>,
    /// Ranking (empty when the fully quantized model already met the budget).
    pub ranking: Vec<Sensitivity>,
    /// Ranking-subset measurement of the fully quantized model.
    pub rank_base: Option<Measure>,
    /// The order the search walked (indices into `units`; empty when nothing was ranked).
    pub order: Vec<usize>,
    /// How that order was made.
    pub order_kind: Order,
    /// Units in FP32 in the returned model (indices into `units`, ranking order).
    pub fp32: Vec<usize>,
    /// Evaluated steps, in evaluation order.
    pub steps: Vec<Step>,
    /// MACs per sample of all Conv/ConvTranspose/MatMul/Gemm.
    pub total_macs: u64,
    /// Fraction of MACs that stay INT8 in the returned model.
    pub int8_macs: f64,
    /// Sample runs spent ranking and searching.
    pub sample_runs: (usize, usize),
    /// Wall time per stage (seconds).
    pub times: Vec<(String, f64)>,
    /// One-line conclusion.
    pub message: String,
}

impl Outcome {
    /// Why unit `i` is in FP32 (its ranking position and measurement alone).
    fn why(&self, i: usize) -> String {
        match self.ranking.iter().position(|s| s.unit == i) {
            Some(p) => {
                let s = &self.ranking[p];
                let base = self.rank_base.as_ref().map_or(String::new(), |b| {
                    format!(" vs {} fully quantized", self.target.show(b))
                });
                let walk = match self.order.iter().position(|&u| u == i) {
                    Some(w) if self.order_kind == Order::GainPerMac => {
                        format!("gain-per-MAC position {}, ", w + 1)
                    }
                    _ => String::new(),
                };
                format!(
                    "{walk}sensitivity rank {}: alone in FP32 gives {}{base} on the ranking subset",
                    p + 1,
                    self.target.show(&s.measure)
                )
            }
            None => "not ranked".into(),
        }
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Json {
        let unit_json = |i: usize| {
            let u = &self.units[i];
            Json::obj([
                ("name", Json::str(&u.name)),
                ("op", Json::str(u.op)),
                (
                    "kind",
                    Json::str(match u.kind {
                        UnitKind::Layer => "layer",
                        UnitKind::Join => "join",
                    }),
                ),
                ("macs", Json::num(u.macs as f64)),
            ])
        };
        Json::obj([
            (
                "target",
                Json::obj([
                    ("metric", Json::str(self.target.metric().to_string())),
                    (
                        "budget",
                        Json::num(match self.target {
                            Target::MaxDrop { points, .. } => points,
                            Target::MinSqnr(db) => db,
                        }),
                    ),
                    ("description", Json::str(self.target.describe())),
                ]),
            ),
            ("reached", Json::Bool(self.reached)),
            (
                "order",
                Json::str(match self.order_kind {
                    Order::Sensitivity => "sensitivity",
                    Order::GainPerMac => "gain_per_mac",
                }),
            ),
            ("message", Json::str(&self.message)),
            ("initial", self.initial.to_json()),
            ("final", self.fin.to_json()),
            ("final_value", Json::num(self.target.value(&self.fin))),
            ("total_macs", Json::num(self.total_macs as f64)),
            ("int8_mac_fraction", Json::num(self.int8_macs)),
            (
                "fp32_units",
                Json::Arr(
                    self.fp32
                        .iter()
                        .map(|&i| {
                            let mut o = unit_json(i);
                            if let Json::Obj(m) = &mut o {
                                m.push(("why".into(), Json::str(self.why(i))));
                            }
                            o
                        })
                        .collect(),
                ),
            ),
            (
                "ranking",
                Json::Arr(
                    self.ranking
                        .iter()
                        .map(|s| {
                            let mut o = unit_json(s.unit);
                            if let Json::Obj(m) = &mut o {
                                m.push(("alone_fp32".into(), s.measure.to_json()));
                                m.push((
                                    "alone_fp32_value".into(),
                                    Json::num(self.target.value(&s.measure)),
                                ));
                            }
                            o
                        })
                        .collect(),
                ),
            ),
            (
                "steps",
                Json::Arr(
                    self.steps
                        .iter()
                        .map(|s| {
                            Json::obj([
                                ("fp32_units", Json::num(s.fp32_units as f64)),
                                ("added", Json::Arr(s.added.iter().map(Json::str).collect())),
                                (
                                    "back_to_int8",
                                    Json::Arr(s.back_to_int8.iter().map(Json::str).collect()),
                                ),
                                ("measure", s.measure.to_json()),
                                ("value", Json::num(self.target.value(&s.measure))),
                                ("int8_mac_fraction", Json::num(s.int8_macs)),
                                ("met", Json::Bool(s.met)),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "sample_runs",
                Json::obj([
                    ("rank", Json::num(self.sample_runs.0 as f64)),
                    ("search", Json::num(self.sample_runs.1 as f64)),
                ]),
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

    /// A readable table: steps, FP32 units and why, the result.
    pub fn table(&self) -> String {
        let mut s =
            String::from("  FP32 units  metric                                   INT8 MACs\n");
        for st in &self.steps {
            s += &format!(
                "  {:>10}  {:<40} {:>8.1}%{}\n",
                st.fp32_units,
                self.target.show(&st.measure),
                st.int8_macs * 100.0,
                if st.met { "  within budget" } else { "" }
            );
        }
        if !self.fp32.is_empty() {
            s += "layers in FP32:\n";
            for &i in &self.fp32 {
                let u = &self.units[i];
                s += &format!(
                    "  {} ({}, {:.2} MMAC): {}\n",
                    u.name,
                    u.op,
                    u.macs as f64 / 1e6,
                    self.why(i)
                );
            }
        }
        let total = self
            .times
            .iter()
            .find(|t| t.0 == "total")
            .map_or(0.0, |t| t.1);
        s += &format!(
            "result: {} — {:.1}% of {:.1} MMAC/sample INT8, search {total:.1} s\n",
            self.message,
            self.int8_macs * 100.0,
            self.total_macs as f64 / 1e6
        );
        s
    }
}
