//! Accuracy of a (quantized) model: top-1 against labels and agreement with an FP32 reference;
//! per-output SQNR and cosine similarity; per-layer SQNR ranking, worst first.

use crate::aaq::{layer_macs, rank_on_first, units, RankData, Target};
use crate::argmax::{argmax_rows, check_labels};
use crate::batch::for_batches;
use crate::compare::{compare_values, sqnr_db};
use crate::json::Json;
use crate::pipeline::prepare;
use crate::QuantError;
use lpc_data::SampleSource;
use lpc_ir::{Graph, Op};
use std::collections::HashSet;

/// Comparison of one output with the reference.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputCmp {
    /// Output name.
    pub name: String,
    /// SQNR in dB (reference as signal).
    pub sqnr_db: f64,
    /// Cosine similarity over all elements.
    pub cosine: f64,
}

/// The result of [`evaluate`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Accuracy {
    /// Samples evaluated.
    pub samples: usize,
    /// Top-1 of the model against labels.
    pub top1: Option<f64>,
    /// Top-1 of the reference against labels.
    pub reference_top1: Option<f64>,
    /// Fraction of samples whose top-1 equals the reference's.
    pub agreement: Option<f64>,
    /// Number of samples whose top-1 differs from the reference's.
    pub flips: Option<usize>,
    /// Per-output comparison with the reference.
    pub outputs: Vec<OutputCmp>,
    /// (value, SQNR dB) for values present in both models, worst first.
    pub per_layer: Vec<(String, f64)>,
    /// The quantized units ranked the way `lpc quantize --max-drop/--min-sqnr` reverts them
    /// (see [`Accuracy::rank_units`]), most sensitive first.
    pub sensitivity: Vec<UnitSensitivity>,
    /// Samples the sensitivity was measured on.
    pub sensitivity_samples: usize,
}

/// One unit of the sensitivity ranking: the model measured with only this unit in FP32.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitSensitivity {
    /// Node name.
    pub name: String,
    /// Op name.
    pub op: &'static str,
    /// Its share of the model's MACs.
    pub macs_share: f64,
    /// Output SQNR (worst output) with this unit alone in FP32, dB.
    pub sqnr_db: f64,
    /// Top-1 flips against FP32 with this unit alone in FP32.
    pub flips: usize,
}

impl Accuracy {
    /// As JSON.
    pub fn to_json(&self) -> Json {
        let opt = |x: Option<f64>| x.map_or(Json::Null, Json::num);
        Json::obj([
            ("samples", Json::num(self.samples as f64)),
            ("top1", opt(self.top1)),
            ("reference_top1", opt(self.reference_top1)),
            ("agreement", opt(self.agreement)),
            ("flips", opt(self.flips.map(|f| f as f64))),
            (
                "outputs",
                Json::Arr(
                    self.outputs
                        .iter()
                        .map(|o| {
                            Json::obj([
                                ("name", Json::str(&o.name)),
                                ("sqnr_db", Json::num(o.sqnr_db)),
                                ("cosine", Json::num(o.cosine)),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "per_layer",
                Json::Arr(
                    self.per_layer
                        .iter()
                        .map(|(n, s)| {
                            Json::obj([("value", Json::str(n)), ("sqnr_db", Json::num(*s))])
                        })
                        .collect(),
                ),
            ),
            (
                "sensitivity",
                Json::Arr(
                    self.sensitivity
                        .iter()
                        .map(|u| {
                            Json::obj([
                                ("node", Json::str(&u.name)),
                                ("op", Json::str(u.op)),
                                ("macs_share", Json::num(u.macs_share)),
                                ("sqnr_db_when_fp32", Json::num(u.sqnr_db)),
                                ("flips_when_fp32", Json::num(u.flips as f64)),
                            ])
                        })
                        .collect(),
                ),
            ),
        ])
    }

    /// Ranks the quantized units of `model` (layers and shared-range joins) with
    /// [`crate::aaq::rank_on_first`] on the subset `sub` of the evaluation data — the ranking
    /// the accuracy-aware search reverts in — and stores it. `target` orders it (lowest drop or
    /// highest SQNR first when the unit alone is back in FP32).
    pub fn rank_units(
        &mut self,
        model: &Graph,
        reference: &Graph,
        sub: &RankData,
        target: &Target,
    ) -> Result<(), QuantError> {
        let mut reference = reference.clone();
        prepare(&mut reference)?;
        let reference = &reference;
        let macs = layer_macs(reference, &sub.data.get(0)?)?;
        let total: u64 = macs.values().sum();
        let us = units(model, &macs)?;
        if us.is_empty() {
            return Ok(());
        }
        let (_, ranking, _) = rank_on_first(model, reference, &us, sub, target)?;
        self.sensitivity_samples = sub.n.clamp(1, sub.data.len().max(1));
        self.sensitivity = ranking
            .iter()
            .map(|r| {
                let u = &us[r.unit];
                UnitSensitivity {
                    name: u.name.clone(),
                    op: u.op,
                    macs_share: u.macs as f64 / total.max(1) as f64,
                    sqnr_db: r.measure.sqnr_db,
                    flips: r.measure.flips,
                }
            })
            .collect();
        Ok(())
    }

    /// A human-readable summary.
    pub fn summary(&self) -> String {
        let mut s = format!("samples: {}\n", self.samples);
        if let Some(t) = self.top1 {
            s += &format!("top-1: {:.2}%\n", t * 100.0);
        }
        if let Some(t) = self.reference_top1 {
            s += &format!("reference top-1: {:.2}%\n", t * 100.0);
        }
        if let (Some(a), Some(f)) = (self.agreement, self.flips) {
            s += &format!(
                "top-1 agreement with reference: {:.2}% ({f} flips)\n",
                a * 100.0
            );
        }
        for o in &self.outputs {
            s += &format!(
                "output {}: SQNR {:.2} dB, cosine {:.6}\n",
                o.name, o.sqnr_db, o.cosine
            );
        }
        if !self.per_layer.is_empty() {
            s += "per-layer SQNR (worst first):\n";
            for (n, d) in &self.per_layer {
                s += &format!("  {d:8.2} dB  {n}\n");
            }
        }
        if !self.sensitivity.is_empty() {
            s += &format!(
                "sensitivity: each quantized unit alone back in FP32, on the first {} samples \
                 (the order `lpc quantize --max-drop/--min-sqnr` reverts in), most sensitive first:\n",
                self.sensitivity_samples
            );
            s += "  output SQNR  flips  MACs    unit\n";
            for u in &self.sensitivity {
                s += &format!(
                    "  {:8.2} dB  {:5}  {:5.1}%  {} ({})\n",
                    u.sqnr_db,
                    u.flips,
                    u.macs_share * 100.0,
                    u.name,
                    u.op
                );
            }
        }
        s
    }
}

#[derive(Default)]
struct State {
    preds: Vec<(usize, usize)>,
    ref_preds: Vec<(usize, usize)>,
    /// Per output: Σr², Σ(r−x)², Σr·x, Σx².
    sums: Vec<[f64; 4]>,
}

/// Runs `model` (and `reference`, if given) over `data`; `labels[i]` is sample i's class.
pub fn evaluate(
    model: &Graph,
    reference: Option<&Graph>,
    data: &dyn SampleSource,
    labels: Option<&[i64]>,
    per_layer: bool,
    batch: usize,
    progress: bool,
) -> Result<Accuracy, QuantError> {
    if let Some(l) = labels {
        if l.len() != data.len() {
            return Err(QuantError::LabelCount {
                labels: l.len(),
                samples: data.len(),
            });
        }
    }
    if let Some(r) = reference {
        if r.outputs().len() != model.outputs().len() {
            return Err(QuantError::OutputCount {
                model: model.outputs().len(),
                reference: r.outputs().len(),
            });
        }
    }
    let batchable = lpc_data::InputSpec::of(model).iter().all(|s| s.batchable())
        && reference.is_none_or(|r| lpc_data::InputSpec::of(r).iter().all(|s| s.batchable()));
    let batch = if batchable { batch } else { 1 };
    let n_out = model.outputs().len();
    let st = for_batches(
        data,
        batch,
        "accuracy",
        progress,
        State::default,
        |st: &mut State, inputs, first, k| {
            let outs = lpc_ref::run(model, inputs).map_err(|source| QuantError::Run {
                sample: first,
                source,
            })?;
            if let Some(l) = labels {
                check_labels(&outs[0], l, first, k)?;
            }
            if labels.is_some() || reference.is_some() {
                for (j, p) in argmax_rows(&outs[0], k)?.into_iter().enumerate() {
                    st.preds.push((first + j, p));
                }
            }
            if let Some(r) = reference {
                let routs = lpc_ref::run(r, inputs).map_err(|source| QuantError::Run {
                    sample: first,
                    source,
                })?;
                for (j, p) in argmax_rows(&routs[0], k)?.into_iter().enumerate() {
                    st.ref_preds.push((first + j, p));
                }
                st.sums.resize(n_out, [0.0; 4]);
                for (o, (a, b)) in routs.iter().zip(&outs).enumerate() {
                    if a.shape() != b.shape() {
                        return Err(QuantError::OutputShape {
                            output: o,
                            model: b.shape().to_vec(),
                            reference: a.shape().to_vec(),
                        });
                    }
                    for (x, y) in a.to_f64_vec().into_iter().zip(b.to_f64_vec()) {
                        let s = &mut st.sums[o];
                        s[0] += x * x;
                        s[1] += (x - y) * (x - y);
                        s[2] += x * y;
                        s[3] += y * y;
                    }
                }
            }
            Ok(())
        },
        |a, b| {
            a.preds.extend(b.preds);
            a.ref_preds.extend(b.ref_preds);
            if a.sums.is_empty() {
                a.sums = b.sums;
            } else {
                for (x, y) in a.sums.iter_mut().zip(b.sums) {
                    for i in 0..4 {
                        x[i] += y[i];
                    }
                }
            }
        },
    )?;
    let mut acc = Accuracy {
        samples: data.len(),
        ..Default::default()
    };
    let hits = |preds: &[(usize, usize)], l: &[i64]| {
        preds.iter().filter(|(i, p)| l[*i] == *p as i64).count() as f64 / preds.len().max(1) as f64
    };
    if let Some(l) = labels {
        acc.top1 = Some(hits(&st.preds, l));
        if reference.is_some() {
            acc.reference_top1 = Some(hits(&st.ref_preds, l));
        }
    }
    if let Some(r) = reference {
        let flips = st
            .preds
            .iter()
            .zip(&st.ref_preds)
            .filter(|(a, b)| a.1 != b.1)
            .count();
        acc.flips = Some(flips);
        acc.agreement = Some(1.0 - flips as f64 / st.preds.len().max(1) as f64);
        for (o, s) in st.sums.iter().enumerate() {
            acc.outputs.push(OutputCmp {
                name: r.value_name(r.outputs()[o]).to_string(),
                sqnr_db: sqnr_db(s[0], s[1]),
                cosine: s[2] / (s[0].sqrt() * s[3].sqrt()).max(f64::MIN_POSITIVE),
            });
        }
        if per_layer {
            let names = |g: &Graph| -> HashSet<String> {
                g.node_ids()
                    .into_iter()
                    .filter(|&n| !matches!(g.node(n).op, Op::Const(_) | Op::Input { .. }))
                    .flat_map(|n| {
                        g.node(n)
                            .outputs
                            .iter()
                            .map(|o| o.name.clone())
                            .collect::<Vec<_>>()
                    })
                    .collect()
            };
            let (a, b) = (names(r), names(model));
            let mut common: Vec<String> = a.intersection(&b).cloned().collect();
            common.sort();
            let m = compare_values(r, model, data, &common, batch, progress)?;
            let mut v: Vec<(String, f64)> = m
                .into_iter()
                .map(|(k, (s, n))| (k, sqnr_db(s, n)))
                .collect();
            v.sort_by(|x, y| x.1.total_cmp(&y.1).then(x.0.cmp(&y.0)));
            acc.per_layer = v;
        }
    }
    Ok(acc)
}
