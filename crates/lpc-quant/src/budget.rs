//! Accuracy-aware quantization: rank the quantized layers of a FakeQuantize (or QDQ) graph by
//! sensitivity and return the worst ones to FP32 until a metric is within a budget.
//! See `docs/accuracy-aware.md` for the method and its cost.

use crate::accuracy::argmax_rows;
use crate::batch::for_batches;
use crate::fq::ActQuant;
use crate::json::Json;
use crate::quantize::{quantize, sqnr_db, BiasCorrectionMode, Config, Quantized, RangeInfo};
use crate::QuantError;
use lpc_data::{InMemory, InputSpec, SampleSource};
use lpc_ir::{DType, Graph, Op, Tensor, ValueRef};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// What the budget is measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Top-1 against labels; the drop is FP32 top-1 minus INT8 top-1, in percentage points.
    Top1,
    /// Top-1 agreement with the FP32 model; the drop is the share of flipped samples, in points.
    Agreement,
    /// SQNR of the outputs against FP32 (the worst output), in dB; the budget is a minimum.
    Sqnr,
}

impl std::str::FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Metric, String> {
        match s {
            "top1" => Ok(Metric::Top1),
            "agreement" => Ok(Metric::Agreement),
            "sqnr" => Ok(Metric::Sqnr),
            _ => Err(format!("unknown metric '{s}' (top1, agreement, sqnr)")),
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Metric::Top1 => "top1",
            Metric::Agreement => "agreement",
            Metric::Sqnr => "sqnr",
        })
    }
}

/// The accuracy budget.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// At most this drop, in percentage points, of top-1 or agreement.
    MaxDrop {
        /// [`Metric::Top1`] or [`Metric::Agreement`].
        metric: Metric,
        /// Allowed drop (percentage points; negative asks top-1 to beat FP32).
        points: f64,
    },
    /// At least this output SQNR against FP32, in dB.
    MinSqnr(f64),
}

impl Target {
    /// Checks the combination (agreement drop ≥ 0, finite numbers, sqnr only as a minimum).
    pub fn new(metric: Metric, value: f64) -> Result<Target, QuantError> {
        if !value.is_finite() {
            return Err(QuantError::Invalid(format!(
                "budget {value} is not a finite number"
            )));
        }
        match metric {
            Metric::Sqnr => Ok(Target::MinSqnr(value)),
            Metric::Agreement if value < 0.0 => Err(QuantError::Invalid(format!(
                "--max-drop {value}: an agreement drop cannot be negative"
            ))),
            Metric::Agreement | Metric::Top1 => Ok(Target::MaxDrop {
                metric,
                points: value,
            }),
        }
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        match self {
            Target::MaxDrop { metric, .. } => *metric,
            Target::MinSqnr(_) => Metric::Sqnr,
        }
    }

    /// The measured value the budget reads: drop in points, or SQNR in dB.
    pub fn value(&self, m: &Measure) -> f64 {
        match self.metric() {
            Metric::Top1 => match (m.reference_top1, m.top1) {
                (Some(r), Some(t)) => (r - t) * 100.0,
                _ => f64::INFINITY,
            },
            Metric::Agreement => 100.0 * m.flips as f64 / m.samples.max(1) as f64,
            Metric::Sqnr => m.sqnr_db,
        }
    }

    /// True when `m` is within the budget.
    pub fn met(&self, m: &Measure) -> bool {
        let v = self.value(m);
        match self {
            Target::MaxDrop { points, .. } => v <= points + 1e-9,
            Target::MinSqnr(db) => v >= *db,
        }
    }

    /// `a` is better than `b` for this budget.
    pub fn better(&self, a: &Measure, b: &Measure) -> bool {
        match self {
            Target::MaxDrop { .. } => {
                let (x, y) = (self.value(a), self.value(b));
                x < y || x == y && a.sqnr_db > b.sqnr_db
            }
            Target::MinSqnr(_) => a.sqnr_db > b.sqnr_db,
        }
    }

    /// "agreement drop ≤ 0 points", "SQNR ≥ 25 dB".
    pub fn describe(&self) -> String {
        match self {
            Target::MaxDrop { metric, points } => format!("{metric} drop ≤ {points} points"),
            Target::MinSqnr(db) => format!("output SQNR ≥ {db} dB"),
        }
    }

    /// The measured value as text ("0.20 points", "24.1 dB").
    pub fn show(&self, m: &Measure) -> String {
        match self {
            Target::MaxDrop { metric, .. } => {
                let extra = match metric {
                    Metric::Agreement => format!(" ({} flips)", m.flips),
                    _ => format!(" (top-1 {:.2}%)", m.top1.unwrap_or(f64::NAN) * 100.0),
                };
                format!("{metric} drop {:.2} points{extra}", self.value(m))
            }
            Target::MinSqnr(_) => format!("SQNR {:.2} dB", m.sqnr_db),
        }
    }
}

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
    fn to_json(&self) -> Json {
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

/// Runs models over a data set and compares them with FP32 outputs computed once.
pub struct Evaluator<'a> {
    data: &'a dyn SampleSource,
    labels: Option<&'a [i64]>,
    batch: usize,
    progress: bool,
    /// FP32 outputs per batch, keyed by the batch's first sample.
    reference: BTreeMap<usize, Vec<Tensor>>,
    /// FP32 top-1 per sample.
    ref_preds: Vec<usize>,
    /// Model runs done (a sample counts once per run).
    pub sample_runs: AtomicUsize,
}

#[derive(Default)]
struct EvalState {
    preds: Vec<(usize, usize)>,
    sums: Vec<[f64; 2]>,
}

impl<'a> Evaluator<'a> {
    /// Runs `reference` once over `data` and keeps its outputs.
    pub fn new(
        reference: &Graph,
        data: &'a dyn SampleSource,
        labels: Option<&'a [i64]>,
        batch: usize,
        progress: bool,
    ) -> Result<Evaluator<'a>, QuantError> {
        if data.is_empty() {
            return Err(QuantError::Data("no evaluation samples".into()));
        }
        if let Some(l) = labels {
            if l.len() != data.len() {
                return Err(QuantError::Data(format!(
                    "{} labels for {} evaluation samples",
                    l.len(),
                    data.len()
                )));
            }
        }
        let batchable = InputSpec::of(reference).iter().all(|s| s.batchable());
        let batch = if batchable { batch } else { 1 };
        type Acc = (BTreeMap<usize, Vec<Tensor>>, Vec<(usize, usize)>);
        let (refs, preds): Acc = for_batches(
            data,
            batch,
            "fp32",
            progress,
            Acc::default,
            |st: &mut Acc, inputs, first, k| {
                let outs = lpc_ref::run(reference, inputs).map_err(|source| QuantError::Run {
                    sample: first,
                    source,
                })?;
                let p = argmax_rows(&outs[0], k)?;
                st.1.extend(p.into_iter().enumerate().map(|(j, p)| (first + j, p)));
                st.0.insert(first, outs);
                Ok(())
            },
            |a, b| {
                a.0.extend(b.0);
                a.1.extend(b.1);
            },
        )?;
        let mut ref_preds = vec![0; data.len()];
        for (i, p) in preds {
            ref_preds[i] = p;
        }
        Ok(Evaluator {
            data,
            labels,
            batch,
            progress,
            reference: refs,
            ref_preds,
            sample_runs: AtomicUsize::new(0),
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True with no samples.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Runs `model` and compares it with the FP32 outputs.
    pub fn measure(&self, model: &Graph) -> Result<Measure, QuantError> {
        let n_out = self.reference.values().next().map_or(0, |v| v.len());
        if model.outputs().len() != n_out {
            return Err(QuantError::Data(format!(
                "model has {} outputs, FP32 reference {n_out}",
                model.outputs().len()
            )));
        }
        let st = for_batches(
            self.data,
            self.batch,
            "measure",
            self.progress,
            EvalState::default,
            |st: &mut EvalState, inputs, first, k| {
                let outs = lpc_ref::run(model, inputs).map_err(|source| QuantError::Run {
                    sample: first,
                    source,
                })?;
                let refs = self.reference.get(&first).ok_or_else(|| {
                    QuantError::Invalid(format!("no FP32 outputs cached for sample {first}"))
                })?;
                for (j, p) in argmax_rows(&outs[0], k)?.into_iter().enumerate() {
                    st.preds.push((first + j, p));
                }
                st.sums.resize(n_out, [0.0; 2]);
                for (o, (r, x)) in refs.iter().zip(&outs).enumerate() {
                    if r.shape() != x.shape() {
                        return Err(QuantError::Data(format!(
                            "output {o}: model shape {:?}, FP32 {:?}",
                            x.shape(),
                            r.shape()
                        )));
                    }
                    let s = &mut st.sums[o];
                    for (a, b) in r.to_f64_vec().into_iter().zip(x.to_f64_vec()) {
                        s[0] += a * a;
                        s[1] += (a - b) * (a - b);
                    }
                }
                Ok(())
            },
            |a, b| {
                a.preds.extend(b.preds);
                if a.sums.is_empty() {
                    a.sums = b.sums;
                } else {
                    for (x, y) in a.sums.iter_mut().zip(b.sums) {
                        x[0] += y[0];
                        x[1] += y[1];
                    }
                }
            },
        )?;
        self.sample_runs
            .fetch_add(self.data.len(), Ordering::Relaxed);
        let flips = st
            .preds
            .iter()
            .filter(|(i, p)| self.ref_preds[*i] != *p)
            .count();
        let (top1, reference_top1) = match self.labels {
            Some(l) => {
                let n = l.len().max(1) as f64;
                let hits = st.preds.iter().filter(|(i, p)| l[*i] == *p as i64).count();
                let rhits = (0..l.len())
                    .filter(|&i| l[i] == self.ref_preds[i] as i64)
                    .count();
                (Some(hits as f64 / n), Some(rhits as f64 / n))
            }
            None => (None, None),
        };
        let sqnr = st
            .sums
            .iter()
            .map(|s| sqnr_db(s[0], s[1]))
            .fold(f64::INFINITY, f64::min);
        Ok(Measure {
            samples: self.data.len(),
            flips,
            top1,
            reference_top1,
            sqnr_db: sqnr,
        })
    }
}

/// What a unit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitKind {
    /// A Conv, ConvTranspose, MatMul or Gemm whose inputs are quantized (it has MACs).
    Layer,
    /// Another node reading quantized inputs that share one range (Concat, residual Add):
    /// its inputs change together.
    Join,
}

/// A group of quantizers that returns to FP32 together: the quantized inputs (and weights) of
/// one node.
#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    /// Node name.
    pub name: String,
    /// Op name.
    pub op: &'static str,
    /// Layer or join.
    pub kind: UnitKind,
    /// Multiply-accumulates per sample (layers), 0 for joins.
    pub macs: u64,
    /// True when both multiplicands are quantized (the layer can run in INT8).
    pub int8: bool,
}

fn is_layer(op: &Op) -> bool {
    matches!(
        op,
        Op::Conv(_) | Op::ConvTranspose { .. } | Op::MatMul | Op::Gemm { .. }
    )
}

/// The float value a quantizer reads, when `v` is the output of a FakeQuantize or of a
/// DequantizeLinear (of a QuantizeLinear, or of a constant).
fn quantizer_input(g: &Graph, v: ValueRef) -> Option<ValueRef> {
    let n = g.node(v.node);
    if let Op::FakeQuantize { .. } = n.op {
        return g.node_input(v.node, 0);
    }
    if let Op::DequantizeLinear { .. } = n.op {
        let x = g.node_input(v.node, 0)?;
        if let Op::QuantizeLinear { .. } = g.node(x.node).op {
            return g.node_input(x.node, 0);
        }
        // Integer weights (a QDQ model's i8 constant) have no float form to restore: keep the
        // DequantizeLinear.
        return g
            .const_value(x)
            .is_some_and(|t| t.dtype().is_float())
            .then_some(x);
    }
    None
}

/// MACs per sample of every Conv/ConvTranspose/MatMul/Gemm of `g` (by node name), measured from
/// the shapes of one run on `sample`.
pub fn layer_macs(g: &Graph, sample: &[Tensor]) -> Result<HashMap<String, u64>, QuantError> {
    let mut shapes: HashMap<ValueRef, Vec<usize>> = HashMap::new();
    lpc_ref::run_observed(g, sample, |v, t| {
        if is_layer(&g.node(v.node).op) || g.users(v).iter().any(|u| is_layer(&g.node(u.0).op)) {
            shapes.insert(v, t.shape().to_vec());
        }
    })
    .map_err(|source| QuantError::Run { sample: 0, source })?;
    let shape = |v: Option<ValueRef>| -> Option<Vec<usize>> {
        let v = v?;
        shapes
            .get(&v)
            .cloned()
            .or_else(|| g.const_value(v).map(|t| t.shape().to_vec()))
    };
    let mut out = HashMap::new();
    for n in g.node_ids() {
        let node = g.node(n);
        if !is_layer(&node.op) {
            continue;
        }
        let (Some(a), Some(b), Some(y)) = (
            shape(g.node_input(n, 0)),
            shape(g.node_input(n, 1)),
            shape(Some(ValueRef::first(n))),
        ) else {
            continue;
        };
        let prod = |s: &[usize]| s.iter().map(|&d| d as u64).product::<u64>();
        let tail = prod(b.get(1..).unwrap_or(&[]));
        // One sample: no batch division needed.
        let macs = if let Op::Conv(_) = node.op {
            prod(&y) * tail
        } else if let Op::ConvTranspose { .. } = node.op {
            prod(&a) * tail
        } else if let Op::Gemm { trans_a, .. } = node.op {
            prod(&y) * a.get(usize::from(!trans_a)).copied().unwrap_or(1) as u64
        } else {
            // MatMul: [.., M, K] x [.., K, N].
            prod(&y) * a.last().copied().unwrap_or(1) as u64
        };
        out.insert(node.name.clone(), macs);
    }
    Ok(out)
}

/// The restorable units of a quantized graph, in topological order.
pub fn units(g: &Graph, macs: &HashMap<String, u64>) -> Result<Vec<Unit>, QuantError> {
    let order = g
        .topo_order()
        .map_err(|e| QuantError::Invalid(e.to_string()))?;
    let mut out = vec![];
    for n in order {
        let node = g.node(n);
        if matches!(
            node.op,
            Op::FakeQuantize { .. } | Op::QuantizeLinear { .. } | Op::DequantizeLinear { .. }
        ) {
            continue;
        }
        let quantized: Vec<bool> = g
            .node_inputs(n)
            .iter()
            .map(|v| v.is_some_and(|v| quantizer_input(g, v).is_some()))
            .collect();
        if !quantized.iter().any(|&q| q) {
            continue;
        }
        let layer = is_layer(&node.op);
        out.push(Unit {
            name: node.name.clone(),
            op: node.op.name(),
            kind: if layer {
                UnitKind::Layer
            } else {
                UnitKind::Join
            },
            macs: if layer {
                macs.get(&node.name).copied().unwrap_or(0)
            } else {
                0
            },
            int8: layer && quantized.len() >= 2 && quantized[0] && quantized[1],
        });
    }
    Ok(out)
}

/// Returns `unit` to FP32 in `g`: its inputs read the float values behind their quantizers,
/// layer weights and biases come from `reference` (the FP32 graph after the same folding, so
/// bias correction is undone), and a MatMul's bias-correction Add is zeroed.
pub fn restore(g: &mut Graph, reference: &Graph, unit: &Unit) -> Result<(), QuantError> {
    let n = g
        .find_node(&unit.name)
        .ok_or_else(|| QuantError::Invalid(format!("unit '{}' is not in the graph", unit.name)))?;
    let rn = reference.find_node(&unit.name);
    for (slot, v) in g.node_inputs(n).into_iter().enumerate() {
        let Some(v) = v else { continue };
        if let Some(x) = quantizer_input(g, v) {
            g.set_node_input(n, slot, Some(x));
        }
    }
    if unit.kind == UnitKind::Join {
        return Ok(());
    }
    // Weights and bias from the FP32 graph (same node name and op kind).
    if let Some(rn) = rn.filter(|&r| reference.node(r).op.name() == unit.op) {
        let slots = if unit.op == Op::MatMul.name() {
            1..2
        } else {
            1..3
        };
        for slot in slots {
            let cur = g.node_input(n, slot);
            let want = reference.node_input(rn, slot);
            match want.and_then(|w| reference.const_value(w)) {
                Some(t) => {
                    if cur
                        .and_then(|c| g.const_value(c))
                        .is_some_and(|c| c.same_content(t))
                    {
                        continue;
                    }
                    let c = g.add_const(format!("{}__fp32_{slot}", unit.name), t.clone());
                    g.set_node_input(n, slot, Some(c));
                }
                None if want.is_none() && slot == 2 => g.set_node_input(n, slot, None),
                None => {}
            }
        }
    }
    // A MatMul's bias correction is a separate Add named after it.
    let add_name = format!("{}__bias_add", unit.name);
    if let Some(add) = g.find_node(&add_name) {
        if let Some(s) = g.node_input(add, 1) {
            if let Some(t) = g.const_value(s).cloned() {
                let z = g.add_const(
                    format!("{}__bias_zero", unit.name),
                    Tensor::zeros(DType::F32, t.shape()),
                );
                g.set_node_input(add, 1, Some(z));
            }
        }
    }
    Ok(())
}

/// Quantizes `g` on `calib` with `qcfg` and searches for the smallest FP32 set within `cfg`'s
/// budget on `eval` (`labels` for top-1): what `lpc quantize --max-drop/--min-sqnr` does.
/// With sequential bias correction (the default) the fully quantized model is measured first
/// and returned when it meets the budget; otherwise the search runs on a model with fast
/// corrections and [`sequential_pass`] follows (sequential corrections assume every upstream
/// layer quantized, so they cannot be searched over). Returns the quantization whose report
/// describes the returned graph, and the outcome.
#[allow(clippy::too_many_arguments)]
pub fn quantize_within_budget(
    g: &Graph,
    calib: &dyn SampleSource,
    qcfg: &Config,
    eval: &dyn SampleSource,
    labels: Option<&[i64]>,
    cfg: &SearchConfig,
    opts: &SearchOptions,
    mut log: impl FnMut(&str),
) -> Result<(Quantized, Outcome), QuantError> {
    let sequential =
        qcfg.bias_correction && qcfg.bias_correction_mode == BiasCorrectionMode::Sequential;
    let t = Instant::now();
    let mut q = quantize(g, calib, qcfg)?;
    let ev = Evaluator::new(&q.reference, eval, labels, cfg.batch, cfg.progress)?;
    // The sequential model's measurement, when the search starts from that model.
    let mut known = None;
    if sequential {
        let m = ev.measure(&q.graph)?;
        let met = cfg.target.met(&m);
        log(&format!(
            "fully quantized with sequential bias correction: {}{}",
            cfg.target.show(&m),
            if met {
                " (within budget)"
            } else {
                "; searching on fast bias corrections"
            }
        ));
        if met {
            known = Some(m);
        } else {
            q = quantize(
                g,
                calib,
                &Config {
                    bias_correction_mode: BiasCorrectionMode::Fast,
                    ..qcfg.clone()
                },
            )?;
        }
    }
    let t_quant = t.elapsed().as_secs_f64();
    let mut o = search_from(
        &q.graph,
        Some(&q.report.ranges),
        &q.reference,
        &ev,
        eval,
        cfg,
        opts,
        known,
        &mut log,
    )?;
    o.times.push(("quantize".into(), t_quant));
    if sequential && !o.fp32.is_empty() {
        let t = Instant::now();
        let (line, q2) = sequential_pass(&mut o, g, calib, qcfg, &ev)?;
        log(&line);
        if let Some(q2) = q2 {
            q = q2;
        }
        o.times
            .push(("sequential".into(), t.elapsed().as_secs_f64()));
    }
    Ok((q, o))
}

/// The final pass of a search run on fast bias corrections when the user asked for sequential
/// ones (`cfg`): sequential corrections assume every upstream layer quantized, so they cannot
/// be searched over, but once the FP32 units are chosen the model can be quantized again
/// (`g`, `calib`) with those units ignored and sequential corrections. That model replaces
/// `o`'s when it has the same quantizers and measures better (and no worse on the budget).
/// Returns the log line and the new quantization when it was taken.
fn sequential_pass(
    o: &mut Outcome,
    g: &Graph,
    calib: &dyn SampleSource,
    cfg: &Config,
    ev: &Evaluator,
) -> Result<(String, Option<Quantized>), QuantError> {
    let mut ignore = cfg.ignore.clone();
    ignore.extend(o.fp32.iter().map(|&i| o.units[i].name.clone()));
    let q2 = quantize(
        g,
        calib,
        &Config {
            ignore,
            bias_correction: true,
            bias_correction_mode: BiasCorrectionMode::Sequential,
            ..cfg.clone()
        },
    )?;
    let count = |g: &Graph| {
        g.node_ids()
            .into_iter()
            .filter(|&n| matches!(g.node(n).op, Op::FakeQuantize { .. }))
            .count()
    };
    let (a, b) = (count(&q2.graph), count(&o.graph));
    if a != b {
        return Ok((
            format!("sequential bias correction: the model quantized again has {a} quantizers, the search's {b}: kept the search's"),
            None,
        ));
    }
    let m = ev.measure(&q2.graph)?;
    let met = o.target.met(&m);
    let take = met >= o.reached && o.target.better(&m, &o.fin);
    let line = format!(
        "sequential bias correction with the same {} units in FP32: {}{}",
        o.fp32.len(),
        o.target.show(&m),
        if take {
            " (kept)"
        } else {
            " (not better: dropped)"
        }
    );
    if !take {
        return Ok((line, None));
    }
    let old = o.target.show(&o.fin);
    o.message = if met {
        format!(
            "budget met ({}) with {} units in FP32: {} (sequential bias correction), {:.1}% of MACs INT8",
            o.target.describe(),
            o.fp32.len(),
            o.target.show(&m),
            o.int8_macs * 100.0
        )
    } else {
        o.message.replace(&old, &o.target.show(&m))
    };
    o.steps.push(Step {
        fp32_units: o.fp32.len(),
        added: vec![],
        back_to_int8: vec![],
        measure: m.clone(),
        int8_macs: o.int8_macs,
        met,
    });
    o.reached = met;
    o.fin = m;
    o.graph = q2.graph.clone();
    Ok((line, Some(q2)))
}

/// A copy of `g` with `restored` units in FP32 and dead quantizers removed.
pub fn with_fp32(g: &Graph, reference: &Graph, restored: &[&Unit]) -> Result<Graph, QuantError> {
    let mut out = g.clone();
    for u in restored {
        restore(&mut out, reference, u)?;
    }
    out.remove_dead();
    Ok(out)
}

/// A copy of `g` whose per-tensor activation quantizers (named `VALUE__fq`, as
/// [`crate::quantize::insert_fake_quantize`] names them) take the observed min/max of
/// `ranges` instead of the estimator's range (same grid: u8, symmetric or asymmetric i8).
/// Returns the graph and the number of quantizers widened. Free in MACs: everything stays INT8.
pub fn minmax_ranges(g: &Graph, ranges: &[RangeInfo]) -> Result<(Graph, usize), QuantError> {
    let mut out = g.clone();
    let mut changed = 0;
    for r in ranges {
        if r.channels != 1 {
            continue;
        }
        let Some(n) = out.find_node(&format!("{}__fq", r.value)) else {
            continue;
        };
        let (mn, mx) = (r.observed[0].min(0.0), r.observed[1].max(0.0));
        if !(mn.is_finite() && mx.is_finite() && mx - mn > 0.0) || r.fallback.is_some() {
            continue;
        }
        let q = r.q;
        let symmetric = q.signed && (q.lo + q.hi * 128.0 / 127.0).abs() <= 1e-6 * q.hi.abs();
        let nq = if !q.signed {
            ActQuant::unsigned(mx)
        } else if symmetric {
            ActQuant::symmetric(mx.max(-mn))
        } else {
            ActQuant::asymmetric(mn, mx, true)
        };
        if nq.lo >= q.lo && nq.hi <= q.hi {
            continue; // already at least as wide
        }
        let lo = out.add_const(format!("{}__fq_lo_mm", r.value), Tensor::scalar_f32(nq.lo));
        let hi = out.add_const(format!("{}__fq_hi_mm", r.value), Tensor::scalar_f32(nq.hi));
        for (slot, v) in [(1, lo), (2, hi), (3, lo), (4, hi)] {
            out.set_node_input(n, slot, Some(v));
        }
        changed += 1;
    }
    out.remove_dead();
    Ok((out, changed))
}

/// Sensitivity of one unit: the model measured on the ranking subset with only it in FP32.
#[derive(Clone, Debug, PartialEq)]
pub struct Sensitivity {
    /// Index into the units.
    pub unit: usize,
    /// The measurement with this unit alone in FP32.
    pub measure: Measure,
}

/// Ranks `units` of the quantized graph `g`, most sensitive first: each unit alone is returned
/// to FP32 and the model is measured on `ev` (a small ranking subset). Order: lowest budget
/// value first for drop metrics (ties: higher SQNR), highest output SQNR for SQNR.
pub fn rank(
    g: &Graph,
    reference: &Graph,
    units: &[Unit],
    ev: &Evaluator,
    target: &Target,
) -> Result<Vec<Sensitivity>, QuantError> {
    let mut out = vec![];
    for (i, u) in units.iter().enumerate() {
        let m = ev.measure(&with_fp32(g, reference, &[u])?)?;
        out.push(Sensitivity {
            unit: i,
            measure: m,
        });
    }
    out.sort_by(|a, b| {
        let key = |s: &Sensitivity| match target {
            Target::MaxDrop { .. } => (target.value(&s.measure), -s.measure.sqnr_db),
            Target::MinSqnr(_) => (-s.measure.sqnr_db, 0.0),
        };
        let (ka, kb) = (key(a), key(b));
        ka.0.total_cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then(a.unit.cmp(&b.unit))
    });
    Ok(out)
}

/// The first `n` samples of `data`, in memory (the ranking subset).
fn first_samples(data: &dyn SampleSource, n: usize) -> Result<InMemory, QuantError> {
    Ok(InMemory(
        (0..n).map(|i| data.get(i)).collect::<Result<Vec<_>, _>>()?,
    ))
}

/// The ranking the search uses, on the first `n` samples of `data` (clamped to 1..=len): the
/// fully quantized model's measurement there, the units most sensitive first, and the number of
/// one-sample model runs it took. `lpc accuracy --per-layer` prints the same ranking.
#[allow(clippy::too_many_arguments)]
pub fn rank_on_first(
    q: &Graph,
    reference: &Graph,
    units: &[Unit],
    data: &dyn SampleSource,
    labels: Option<&[i64]>,
    n: usize,
    batch: usize,
    progress: bool,
    target: &Target,
) -> Result<(Measure, Vec<Sensitivity>, usize), QuantError> {
    let n = n.clamp(1, data.len().max(1));
    let sub = first_samples(data, n)?;
    let labels = labels.map(|l| &l[..n.min(l.len())]);
    let ev = Evaluator::new(reference, &sub, labels, batch, progress)?;
    let base = ev.measure(q)?;
    let ranking = rank(q, reference, units, &ev, target)?;
    Ok((base, ranking, ev.sample_runs.load(Ordering::Relaxed)))
}

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

/// Relative output noise power (noise / signal) of a measurement.
fn rel_noise(m: &Measure) -> f64 {
    10f64.powf(-m.sqnr_db / 10.0)
}

/// The unit order the search walks: `ranking` (most sensitive first) reordered per `order`.
/// `base` is the fully quantized model's measurement on the ranking subset.
pub fn search_order(
    ranking: &[Sensitivity],
    base: &Measure,
    units: &[Unit],
    target: &Target,
    total_macs: u64,
    order: Order,
) -> Vec<usize> {
    match order {
        Order::Sensitivity => ranking.iter().map(|s| s.unit).collect(),
        Order::GainPerMac => {
            // Cost: MACs that leave INT8 (0 for joins and layers that are not INT8 anyway),
            // plus 0.01% of the model so that gains, not only zero costs, decide among the
            // free units.
            let eps = (total_macs.max(1) as f64) * 1e-4;
            let gains = |s: &Sensitivity| -> (f64, f64) {
                let noise = rel_noise(base) - rel_noise(&s.measure);
                match target {
                    Target::MinSqnr(_) => (noise, 0.0),
                    Target::MaxDrop { .. } => {
                        (target.value(base) - target.value(&s.measure), noise)
                    }
                }
            };
            let mut helpful = vec![];
            let mut rest = vec![];
            for (pos, s) in ranking.iter().enumerate() {
                let (g0, g1) = gains(s);
                if g0 > 0.0 || (g0 == 0.0 && g1 > 0.0) {
                    let u = &units[s.unit];
                    let cost = if u.int8 { u.macs as f64 } else { 0.0 } + eps;
                    helpful.push((g0 / cost, g1 / cost, pos, s.unit));
                } else {
                    rest.push(s.unit);
                }
            }
            helpful.sort_by(|a, b| {
                b.0.total_cmp(&a.0)
                    .then(b.1.total_cmp(&a.1))
                    .then(a.2.cmp(&b.2))
            });
            helpful.into_iter().map(|h| h.3).chain(rest).collect()
        }
    }
}

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

/// The result of [`search`].
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

fn int8_fraction(units: &[Unit], fp32: &[usize], total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let int8: u64 = units
        .iter()
        .enumerate()
        .filter(|(i, u)| u.int8 && !fp32.contains(i))
        .map(|(_, u)| u.macs)
        .sum();
    int8 as f64 / total as f64
}

/// Accuracy-aware search. `q` is the fully quantized graph and `reference` the FP32 graph after
/// the same folding ([`crate::Quantized`]'s `graph` and `reference`); `ev` measures on the
/// evaluation data. Ranks units on the first `rank_samples` evaluation samples, then returns
/// the ranking's prefix to FP32, growing it 1, 2, 4, ... units and bisecting, until the
/// smallest prefix within budget is found. `log` receives one line per step.
///
/// When `ranges` (the quantization report's activation ranges) are given, the first step
/// widens every activation range to the observed min/max ([`minmax_ranges`]); that graph
/// replaces `q` when it measures better, before any layer goes to FP32.
///
/// Uses the default [`SearchOptions`] (gain-per-MAC order, refine pass over the 8 largest
/// FP32 layers; the trim pass is off: it did worse on ppocr det, see docs/accuracy-aware.md);
/// see [`search_with`].
pub fn search(
    q: &Graph,
    ranges: Option<&[RangeInfo]>,
    reference: &Graph,
    ev: &Evaluator,
    eval_data: &dyn SampleSource,
    cfg: &SearchConfig,
    log: impl FnMut(&str),
) -> Result<Outcome, QuantError> {
    let opts = SearchOptions::default();
    search_with(q, ranges, reference, ev, eval_data, cfg, &opts, log)
}

/// [`search`] with explicit [`SearchOptions`]: the unit order walked by the prefix search
/// ([`search_order`]) and the refine pass that returns expensive FP32 layers to INT8 when the
/// budget still holds without them.
#[allow(clippy::too_many_arguments)]
pub fn search_with(
    q: &Graph,
    ranges: Option<&[RangeInfo]>,
    reference: &Graph,
    ev: &Evaluator,
    eval_data: &dyn SampleSource,
    cfg: &SearchConfig,
    opts: &SearchOptions,
    log: impl FnMut(&str),
) -> Result<Outcome, QuantError> {
    search_from(q, ranges, reference, ev, eval_data, cfg, opts, None, log)
}

/// [`search_with`] where `known`, when given, is `q` already measured by `ev`.
#[allow(clippy::too_many_arguments)]
fn search_from(
    q: &Graph,
    ranges: Option<&[RangeInfo]>,
    reference: &Graph,
    ev: &Evaluator,
    eval_data: &dyn SampleSource,
    cfg: &SearchConfig,
    opts: &SearchOptions,
    known: Option<Measure>,
    mut log: impl FnMut(&str),
) -> Result<Outcome, QuantError> {
    let t0 = Instant::now();
    let mut times = vec![];
    let first = eval_data.get(0)?;
    let macs = layer_macs(reference, &first)?;
    let total_macs: u64 = macs.values().sum();
    let units = units(q, &macs)?;
    let target = cfg.target;
    let mut initial = match known {
        Some(m) => m,
        None => ev.measure(q)?,
    };
    let full_frac = int8_fraction(&units, &[], total_macs);
    log(&format!(
        "fully quantized: {} ({} units, {:.1}% of MACs INT8)",
        target.show(&initial),
        units.len(),
        full_frac * 100.0
    ));
    let mut widened = None;
    if let (Some(r), false) = (ranges, target.met(&initial)) {
        let (g2, k) = minmax_ranges(q, r)?;
        if k > 0 {
            let m = ev.measure(&g2)?;
            let take = target.better(&m, &initial);
            log(&format!(
                "min/max ranges on {k} activation quantizers: {}{}",
                target.show(&m),
                if take {
                    " (kept)"
                } else {
                    " (not better: dropped)"
                }
            ));
            if take {
                initial = m;
                widened = Some(g2);
            }
        }
    }
    let q = widened.as_ref().unwrap_or(q);
    times.push(("measure_int8".to_string(), t0.elapsed().as_secs_f64()));
    let mut steps = vec![Step {
        fp32_units: 0,
        added: vec![],
        back_to_int8: vec![],
        measure: initial.clone(),
        int8_macs: full_frac,
        met: target.met(&initial),
    }];
    let mut out = Outcome {
        graph: q.clone(),
        target,
        reached: target.met(&initial),
        initial: initial.clone(),
        fin: initial.clone(),
        units: units.clone(),
        ranking: vec![],
        rank_base: None,
        order: vec![],
        order_kind: opts.order,
        fp32: vec![],
        steps: vec![],
        total_macs,
        int8_macs: full_frac,
        sample_runs: (0, 0),
        times: vec![],
        message: String::new(),
    };
    if out.reached {
        out.message = format!(
            "budget met by the fully quantized model: {}",
            target.show(&initial)
        );
        out.steps = steps;
        out.sample_runs = (0, ev.sample_runs.load(Ordering::Relaxed));
        times.push(("total".into(), t0.elapsed().as_secs_f64()));
        out.times = times;
        return Ok(out);
    }

    // Ranking on a small subset.
    let t = Instant::now();
    let n_rank = cfg.rank_samples.clamp(1, eval_data.len());
    let (base, ranking, runs) = rank_on_first(
        q,
        reference,
        &units,
        eval_data,
        ev.labels,
        n_rank,
        ev.batch,
        ev.progress,
        &target,
    )?;
    out.sample_runs.0 = runs;
    times.push(("rank".into(), t.elapsed().as_secs_f64()));
    log(&format!(
        "ranked {} units on {n_rank} samples ({runs} model runs of one sample) in {:.1} s; fully quantized there: {}",
        units.len(),
        t.elapsed().as_secs_f64(),
        target.show(&base)
    ));
    let mut order = search_order(&ranking, &base, &units, &target, total_macs, opts.order);

    // Largest prefix allowed by the MAC floor.
    let mut kmax = 0;
    while kmax < order.len()
        && int8_fraction(&units, &order[..kmax + 1], total_macs) + 1e-12 >= cfg.min_int8_macs
    {
        kmax += 1;
    }
    let t = Instant::now();
    let mut cache: BTreeMap<usize, (Measure, Graph)> = BTreeMap::new();
    let mut last_k = 0;
    let mut eval_k = |k: usize,
                      order: &[usize],
                      steps: &mut Vec<Step>,
                      cache: &mut BTreeMap<usize, (Measure, Graph)>,
                      log: &mut dyn FnMut(&str)|
     -> Result<bool, QuantError> {
        if let Some((m, _)) = cache.get(&k) {
            return Ok(target.met(m));
        }
        let restored: Vec<&Unit> = order[..k].iter().map(|&i| &units[i]).collect();
        let g = with_fp32(q, reference, &restored)?;
        let m = ev.measure(&g)?;
        let frac = int8_fraction(&units, &order[..k], total_macs);
        let added: Vec<String> = if k > last_k {
            order[last_k..k]
                .iter()
                .map(|&i| units[i].name.clone())
                .collect()
        } else {
            vec![]
        };
        let met = target.met(&m);
        log(&format!(
            "{} units in FP32{}: {} ({:.1}% of MACs INT8){}",
            k,
            if added.is_empty() {
                String::new()
            } else {
                format!(" (+{})", added.join(", "))
            },
            target.show(&m),
            frac * 100.0,
            if met { " ✓" } else { "" }
        ));
        steps.push(Step {
            fp32_units: k,
            added,
            back_to_int8: vec![],
            measure: m.clone(),
            int8_macs: frac,
            met,
        });
        last_k = k;
        cache.insert(k, (m, g));
        Ok(met)
    };
    // Gallop: 1, 2, 4, ... (capped at kmax), then bisect between the last miss and first hit.
    let mut lo = 0; // known miss
    let mut hi = None; // known hit
    let mut k = 1;
    while k <= kmax {
        if eval_k(k, &order, &mut steps, &mut cache, &mut log)? {
            hi = Some(k);
            break;
        }
        lo = k;
        if k == kmax {
            break;
        }
        k = (k * 2).min(kmax);
    }
    if let (Some(h), true) = (hi, opts.rerank) {
        if h - lo > 2 {
            let t = Instant::now();
            let n_rank = cfg.rank_samples.clamp(1, eval_data.len());
            let sub = first_samples(eval_data, n_rank)?;
            let labels = ev.labels.map(|l| &l[..n_rank.min(l.len())]);
            let sev = Evaluator::new(reference, &sub, labels, ev.batch, ev.progress)?;
            let done: Vec<&Unit> = order[..lo].iter().map(|&i| &units[i]).collect();
            let here = sev.measure(&with_fp32(q, reference, &done)?)?;
            let mut again = vec![];
            for &u in &order[lo..h] {
                let mut with_u = done.clone();
                with_u.push(&units[u]);
                again.push(Sensitivity {
                    unit: u,
                    measure: sev.measure(&with_fp32(q, reference, &with_u)?)?,
                });
            }
            // The same ordering rule, now relative to the prefix already in FP32.
            again.sort_by(|a, b| match target {
                Target::MaxDrop { .. } => target
                    .value(&a.measure)
                    .total_cmp(&target.value(&b.measure))
                    .then(b.measure.sqnr_db.total_cmp(&a.measure.sqnr_db)),
                Target::MinSqnr(_) => b.measure.sqnr_db.total_cmp(&a.measure.sqnr_db),
            });
            let tail = search_order(&again, &here, &units, &target, total_macs, opts.order);
            order.splice(lo..h, tail);
            out.sample_runs.0 += sev.sample_runs.load(Ordering::Relaxed);
            log(&format!(
                "re-ranked units {}..{h} with the first {lo} in FP32 on {n_rank} samples in {:.1} s (there: {})",
                lo + 1,
                t.elapsed().as_secs_f64(),
                target.show(&here)
            ));
            times.push(("rerank".into(), t.elapsed().as_secs_f64()));
        }
    }
    if let Some(mut h) = hi {
        while h - lo > 1 {
            let mid = (lo + h) / 2;
            if eval_k(mid, &order, &mut steps, &mut cache, &mut log)? {
                h = mid;
            } else {
                lo = mid;
            }
        }
        hi = Some(h);
    }
    times.push(("search".into(), t.elapsed().as_secs_f64()));
    let chosen = match hi {
        Some(h) => h,
        None => {
            // Best measured model (fewest FP32 units among equals).
            let mut best = 0;
            let mut best_m = initial.clone();
            for (&k, (m, _)) in &cache {
                if target.better(m, &best_m) {
                    best = k;
                    best_m = m.clone();
                }
            }
            best
        }
    };
    out.reached = hi.is_some();
    out.fp32 = order[..chosen].to_vec();
    if let Some((m, g)) = cache.remove(&chosen) {
        out.fin = m;
        out.graph = g;
    }
    // Trim: the prefix may hold layers that later ones made unnecessary; ranked again, now
    // from the FP32 set's side (loss per MAC when one goes back to INT8).
    if out.reached && opts.trim {
        let t = Instant::now();
        let sub = first_samples(eval_data, n_rank)?;
        let labels = ev.labels.map(|l| &l[..n_rank.min(l.len())]);
        let sev = Evaluator::new(reference, &sub, labels, ev.batch, ev.progress)?;
        let here = sev.measure(&out.graph)?;
        let loss = |m: &Measure| -> (f64, f64) {
            let noise = rel_noise(m) - rel_noise(&here);
            match target {
                Target::MinSqnr(_) => (noise, 0.0),
                Target::MaxDrop { .. } => (target.value(m) - target.value(&here), noise),
            }
        };
        let mut cands = vec![];
        for &c in out
            .fp32
            .iter()
            .filter(|&&i| units[i].int8 && units[i].macs > 0)
        {
            let trial: Vec<&Unit> = out
                .fp32
                .iter()
                .filter(|&&i| i != c)
                .map(|&i| &units[i])
                .collect();
            let m = sev.measure(&with_fp32(q, reference, &trial)?)?;
            let (l0, l1) = loss(&m);
            let macs = units[c].macs as f64;
            cands.push((l0 / macs, l1 / macs, c));
        }
        cands.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then(a.1.total_cmp(&b.1))
                .then(a.2.cmp(&b.2))
        });
        let back: Vec<usize> = cands.iter().map(|c| c.2).collect();
        out.sample_runs.0 += sev.sample_runs.load(Ordering::Relaxed);
        log(&format!(
            "trim: {} FP32 layers ranked by loss per MAC back in INT8 on {n_rank} samples in {:.1} s",
            back.len(),
            t.elapsed().as_secs_f64()
        ));
        // j = how many of `back` return to INT8; j = 0 is the (met) prefix.
        let mut tried: BTreeMap<usize, (bool, Measure, Graph)> = BTreeMap::new();
        let mut try_j = |j: usize,
                         steps: &mut Vec<Step>,
                         log: &mut dyn FnMut(&str)|
         -> Result<bool, QuantError> {
            let keep: Vec<usize> = out
                .fp32
                .iter()
                .copied()
                .filter(|i| !back[..j].contains(i))
                .collect();
            let restored: Vec<&Unit> = keep.iter().map(|&i| &units[i]).collect();
            let g = with_fp32(q, reference, &restored)?;
            let m = ev.measure(&g)?;
            let frac = int8_fraction(&units, &keep, total_macs);
            let met = target.met(&m);
            let names: Vec<String> = back[..j].iter().map(|&i| units[i].name.clone()).collect();
            log(&format!(
                "trim: {j} layers back to INT8 ({}): {} ({:.1}% of MACs INT8){}",
                names.join(", "),
                target.show(&m),
                frac * 100.0,
                if met { " ✓" } else { "" }
            ));
            steps.push(Step {
                fp32_units: keep.len(),
                added: vec![],
                back_to_int8: names,
                measure: m.clone(),
                int8_macs: frac,
                met,
            });
            tried.insert(j, (met, m, g));
            Ok(met)
        };
        let mut good = 0; // known within budget
        let mut bad = None; // known over
        let mut j = 1;
        while j <= back.len() {
            if try_j(j, &mut steps, &mut log)? {
                good = j;
                if j == back.len() {
                    break;
                }
                j = (j * 2).min(back.len());
            } else {
                bad = Some(j);
                break;
            }
        }
        if let Some(mut b) = bad {
            while b - good > 1 {
                let mid = (good + b) / 2;
                if try_j(mid, &mut steps, &mut log)? {
                    good = mid;
                } else {
                    b = mid;
                }
            }
        }
        if good > 0 {
            if let Some((true, m, g)) = tried.remove(&good) {
                out.fp32.retain(|i| !back[..good].contains(i));
                out.fin = m;
                out.graph = g;
            }
        }
        times.push(("trim".into(), t.elapsed().as_secs_f64()));
    }
    // Refine: the prefix may hold expensive layers that later (cheaper) ones made unnecessary.
    if out.reached && opts.refine > 0 {
        let t = Instant::now();
        let floor = 0.005 * total_macs as f64;
        let mut cands: Vec<usize> = out
            .fp32
            .iter()
            .copied()
            .filter(|&i| units[i].int8 && units[i].macs as f64 >= floor)
            .collect();
        cands.sort_by(|a, b| units[*b].macs.cmp(&units[*a].macs).then(a.cmp(b)));
        cands.truncate(opts.refine);
        for c in cands {
            let trial: Vec<usize> = out.fp32.iter().copied().filter(|&i| i != c).collect();
            let restored: Vec<&Unit> = trial.iter().map(|&i| &units[i]).collect();
            let g = with_fp32(q, reference, &restored)?;
            let m = ev.measure(&g)?;
            let frac = int8_fraction(&units, &trial, total_macs);
            let met = target.met(&m);
            log(&format!(
                "refine: {} back to INT8: {} ({:.1}% of MACs INT8){}",
                units[c].name,
                target.show(&m),
                frac * 100.0,
                if met {
                    " ✓ kept"
                } else {
                    " (budget missed: stays FP32)"
                }
            ));
            steps.push(Step {
                fp32_units: trial.len(),
                added: vec![],
                back_to_int8: vec![units[c].name.clone()],
                measure: m.clone(),
                int8_macs: frac,
                met,
            });
            if met {
                out.fp32 = trial;
                out.fin = m;
                out.graph = g;
            }
        }
        times.push(("refine".into(), t.elapsed().as_secs_f64()));
    }
    let chosen = out.fp32.len();
    out.int8_macs = int8_fraction(&units, &out.fp32, total_macs);
    out.sample_runs.1 = ev.sample_runs.load(Ordering::Relaxed);
    out.message = if out.reached {
        format!(
            "budget met ({}) with {} units in FP32: {}, {:.1}% of MACs INT8",
            target.describe(),
            chosen,
            target.show(&out.fin),
            out.int8_macs * 100.0
        )
    } else {
        let why = if kmax < order.len() {
            format!(
                "returning more than {kmax} of {} units to FP32 would leave less than {:.1}% of MACs INT8",
                order.len(),
                cfg.min_int8_macs * 100.0
            )
        } else {
            format!("even with all {} units in FP32", order.len())
        };
        format!(
            "budget NOT met ({}): {why}; best model found has {} units in FP32: {}, {:.1}% of MACs INT8",
            target.describe(),
            chosen,
            target.show(&out.fin),
            out.int8_macs * 100.0
        )
    };
    out.ranking = ranking;
    out.rank_base = Some(base);
    out.order = order;
    out.steps = steps;
    times.push(("total".into(), t0.elapsed().as_secs_f64()));
    out.times = times;
    Ok(out)
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
