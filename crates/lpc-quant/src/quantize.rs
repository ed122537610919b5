//! The quantization pipeline: fold, place, collect statistics, choose ranges, correct biases,
//! insert FakeQuantize, and measure the result per layer.

use crate::batch::for_batches;
use crate::fq::{ActQuant, WeightQuant};
use crate::json::Json;
use crate::passes::{fold_batchnorm, place, resolve_ignore, ActPoint, LayerKind, Placement};
use crate::stats::{estimate, Estimator, Grid, TensorStats};
use crate::QuantError;
use lpc_data::SampleSource;
use lpc_ir::{BinaryOp, Graph, NodeId, Op, Output, Tensor, UnaryOp, ValueRef};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

/// Quantization presets (as in OpenVINO POT/NNCF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Symmetric activations (i8 `[-a, a·127/128]`, u8 `[0, a]` after ReLU-like values).
    Performance,
    /// Asymmetric activations (`[lo, hi]` with an integer zero point).
    Mixed,
}

impl std::str::FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Preset, String> {
        match s {
            "performance" => Ok(Preset::Performance),
            "mixed" => Ok(Preset::Mixed),
            _ => Err(format!("unknown preset '{s}' (performance, mixed)")),
        }
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Preset::Performance => "performance",
            Preset::Mixed => "mixed",
        })
    }
}

/// How bias correction computes the shift of each quantized layer's bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BiasCorrectionMode {
    /// FastBiasCorrection: each layer's own error, measured on FP32 inputs
    /// (`bias_samples` samples; upstream quantization error is not seen).
    Fast,
    /// Sequential ("empirical") bias correction: layers in topological order, each measured in
    /// the quantized model with the corrections of all earlier layers applied, so its inputs
    /// carry the upstream quantization error (`sequential_samples` samples, kept in memory
    /// together).
    Sequential,
}

impl std::str::FromStr for BiasCorrectionMode {
    type Err = String;
    fn from_str(s: &str) -> Result<BiasCorrectionMode, String> {
        match s {
            "fast" => Ok(BiasCorrectionMode::Fast),
            "sequential" => Ok(BiasCorrectionMode::Sequential),
            _ => Err(format!(
                "unknown bias correction mode '{s}' (fast, sequential)"
            )),
        }
    }
}

impl std::fmt::Display for BiasCorrectionMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BiasCorrectionMode::Fast => "fast",
            BiasCorrectionMode::Sequential => "sequential",
        })
    }
}

/// Quantization settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Activation grid preset.
    pub preset: Preset,
    /// Activation range estimator.
    pub estimator: Estimator,
    /// `--ignore` patterns (node names, op types, node-name regexes).
    pub ignore: Vec<String>,
    /// Bias correction on/off.
    pub bias_correction: bool,
    /// How bias correction measures the shifts (when `bias_correction` is on).
    pub bias_correction_mode: BiasCorrectionMode,
    /// Samples per interpreter run (models with a symbolic batch dimension; 0 = auto, see
    /// [`crate::batch::resolve_batch`]).
    pub batch: usize,
    /// Show progress bars on a terminal.
    pub progress: bool,
    /// Samples used for the per-layer SQNR of the report (0 skips it).
    pub report_samples: usize,
    /// Per-channel (axis 1) activation ranges for values read only by depthwise convolutions
    /// (integer-friendly: each output channel reads one input channel).
    pub per_channel_depthwise: bool,
    /// Calibration samples used by bias correction, spread evenly over the set (NNCF's
    /// FastBiasCorrection uses 100); the statistics always use every sample.
    pub bias_samples: usize,
    /// Calibration samples used by sequential bias correction, spread evenly over the set. Their
    /// live activations are all held at once (quantized model), so memory grows with this.
    pub sequential_samples: usize,
    /// Most bytes of activations sequential bias correction may hold (0 = half the available
    /// memory); past it, fast correction runs instead, reported.
    pub sequential_memory: usize,
    /// Keep in float the layers that feed a graph output through a Sigmoid/HardSigmoid and
    /// elementwise ops only (near-saturated probability maps such as DBNet's).
    pub float_sigmoid_outputs: bool,
    /// Keep in float the layers of squeeze-and-excitation gates: layers whose 1×1-pixel output
    /// reaches, through elementwise ops and further such layers only, a Mul with a larger
    /// activation (one step of error in a gate value scales a whole channel).
    pub float_gates: bool,
}

impl Config {
    /// Sets the sample count of both bias correction modes to `n` (0 keeps the defaults).
    pub fn with_bias_samples(self, n: usize) -> Config {
        if n == 0 {
            return self;
        }
        Config {
            bias_samples: n,
            sequential_samples: n,
            ..self
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            preset: Preset::Mixed,
            estimator: Estimator::Mse,
            ignore: vec![],
            bias_correction: true,
            bias_correction_mode: BiasCorrectionMode::Sequential,
            batch: 0,
            progress: false,
            report_samples: 32,
            per_channel_depthwise: true,
            bias_samples: 100,
            sequential_samples: 32,
            sequential_memory: 0,
            float_sigmoid_outputs: true,
            float_gates: true,
        }
    }
}

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

/// The result of [`quantize`].
pub struct Quantized {
    /// The FakeQuantize graph (BatchNorm folded, biases corrected).
    pub graph: Graph,
    /// The FP32 reference after the same folding (for comparisons).
    pub reference: Graph,
    /// What was done.
    pub report: Report,
}

/// Signal-to-quantization-noise ratio in dB from accumulated Σref² and Σ(ref-x)².
pub fn sqnr_db(signal: f64, noise: f64) -> f64 {
    if noise == 0.0 {
        f64::INFINITY
    } else if signal == 0.0 {
        f64::NEG_INFINITY
    } else {
        10.0 * (signal / noise).log10()
    }
}

/// Inserts activation and weight FakeQuantize nodes into `g`. Each activation point gets one
/// FakeQuantize (levels 256) read by its consumers; each weight one (levels 255, per channel).
pub fn insert_fake_quantize(
    g: &mut Graph,
    acts: &[(ValueRef, Vec<(NodeId, usize)>, Vec<ActQuant>)],
    weights: &[(NodeId, usize, WeightQuant)],
) -> Result<(), QuantError> {
    for (v, consumers, q) in acts {
        let name = g.value_name(*v).to_string();
        let ty = g.value_type(*v).clone();
        let (lo_t, hi_t) = if q.len() == 1 {
            (Tensor::scalar_f32(q[0].lo), Tensor::scalar_f32(q[0].hi))
        } else {
            // Per channel on axis 1: shape [1, C, 1, ...] of the value's rank.
            let rank = ty.shape.as_ref().map_or(4, |s| s.rank()).max(2);
            let mut shape = vec![1usize; rank];
            shape[1] = q.len();
            let mk =
                |f: &dyn Fn(&ActQuant) -> f32| Tensor::from_f32(&shape, q.iter().map(f).collect());
            (
                mk(&|a| a.lo).map_err(|e| QuantError::Invalid(e.to_string()))?,
                mk(&|a| a.hi).map_err(|e| QuantError::Invalid(e.to_string()))?,
            )
        };
        let lo = g.add_const(format!("{name}__fq_lo"), lo_t);
        let hi = g.add_const(format!("{name}__fq_hi"), hi_t);
        let n = g.add_node(
            format!("{name}__fq"),
            Op::FakeQuantize {
                levels: ActQuant::LEVELS,
            },
            &[Some(*v), Some(lo), Some(hi), Some(lo), Some(hi)],
            vec![Output {
                name: format!("{name}__fq"),
                ty,
            }],
        );
        for &(c, slot) in consumers {
            g.set_node_input(c, slot, Some(ValueRef::first(n)));
        }
    }
    for (layer, slot, q) in weights {
        let w = g
            .node_input(*layer, *slot)
            .ok_or_else(|| QuantError::Invalid("weight input vanished".into()))?;
        let t = g
            .const_value(w)
            .ok_or_else(|| QuantError::Invalid("weight is not constant".into()))?
            .clone();
        let name = g.node(*layer).name.clone();
        let (lo, hi) = q.range_tensors(t.rank());
        let lo = g.add_const(format!("{name}__wfq_lo"), lo);
        let hi = g.add_const(format!("{name}__wfq_hi"), hi);
        let ty = g.value_type(w).clone();
        let n = g.add_node(
            format!("{name}__wfq"),
            Op::FakeQuantize {
                levels: WeightQuant::LEVELS,
            },
            &[Some(w), Some(lo), Some(hi), Some(lo), Some(hi)],
            vec![Output {
                name: format!("{name}__wfq"),
                ty,
            }],
        );
        g.set_node_input(*layer, *slot, Some(ValueRef::first(n)));
    }
    Ok(())
}

fn run_err(sample: usize) -> impl Fn(lpc_ref::RunError) -> QuantError {
    move |source| QuantError::Run { sample, source }
}

/// The FP32 graph quantization starts from: constants folded, BatchNorm folded into the
/// preceding convs (returns their names). The accuracy-aware search restores FP32 weights from
/// this graph, so `lpc accuracy --per-layer` prepares its reference the same way.
pub fn prepare(g: &mut Graph) -> Result<Vec<String>, QuantError> {
    lpc_ref::fold_constants(g)
        .map_err(|e| QuantError::Invalid(format!("constant folding: {e}")))?;
    fold_batchnorm(g)
}

/// Chooses the range of one group from its merged statistics.
fn group_range(st: &TensorStats, cfg: &Config, name: &str) -> (ActQuant, Option<String>) {
    let unsigned = st.min >= 0.0;
    let grid = if unsigned {
        Grid::Unsigned
    } else {
        match cfg.preset {
            Preset::Performance => Grid::Symmetric,
            Preset::Mixed => Grid::Asymmetric,
        }
    };
    let mk = |lo: f32, hi: f32| match grid {
        Grid::Unsigned => ActQuant::unsigned(hi),
        Grid::Symmetric => ActQuant::symmetric(hi.max(-lo)),
        Grid::Asymmetric => ActQuant::asymmetric(lo, hi, true),
    };
    let Some((lo, hi)) = estimate(st, cfg.estimator, grid) else {
        return (
            ActQuant::unsigned(1.0),
            Some(format!("{name}: no finite values seen; range [0, 1] used")),
        );
    };
    let ok = |lo: f32, hi: f32| {
        lo.is_finite() && hi.is_finite() && hi - lo > 0.0 && hi > 0.0
            || lo < 0.0 && hi >= 0.0 && hi - lo > 0.0
    };
    if ok(lo, hi) && !(grid == Grid::Unsigned && hi <= 0.0) {
        return (mk(lo, hi), None);
    }
    // Estimator collapsed the range: fall back to min/max including 0, then to [0, 1].
    let (mn, mx) = (st.min.min(0.0), st.max.max(0.0));
    if mx - mn > 0.0 && mx.is_finite() && mn.is_finite() {
        let q = if mn >= 0.0 {
            ActQuant::unsigned(mx)
        } else {
            mk(mn, mx.max(f32::MIN_POSITIVE))
        };
        return (
            q,
            Some(format!(
                "{name}: estimator gave an empty range; min/max including 0 used"
            )),
        );
    }
    (
        ActQuant::unsigned(1.0),
        Some(format!(
            "{name}: constant zero tensor; range [0, 1] used (0 stays exact)"
        )),
    )
}

/// Layers whose output reaches a graph output through elementwise ops only (bias Add,
/// BatchNorm, Clip, unary functions), one of which is a Sigmoid or HardSigmoid: a near-saturated
/// probability map (DBNet's text mask), where a logit error of a fraction of one quantization
/// step changes the small probabilities by a large relative amount. They keep float inputs and
/// weights; all other layers stay integer.
fn sigmoid_output_layers(g: &Graph) -> Vec<NodeId> {
    let mut out = vec![];
    for n in g.node_ids() {
        if !matches!(
            g.node(n).op,
            Op::Conv(_) | Op::ConvTranspose { .. } | Op::Gemm { .. } | Op::MatMul
        ) {
            continue;
        }
        let mut v = ValueRef::first(n);
        let mut sigmoid = false;
        for _ in 0..8 {
            if g.outputs().contains(&v) {
                break;
            }
            let users = g.users(v);
            let [(u, _)] = users.as_slice() else { break };
            let elementwise = match &g.node(*u).op {
                Op::Unary(op) => {
                    sigmoid |= matches!(op, UnaryOp::Sigmoid | UnaryOp::HardSigmoid { .. });
                    true
                }
                Op::Binary(_) => g
                    .node_inputs(*u)
                    .iter()
                    .flatten()
                    .all(|&x| x == v || g.const_value(x).is_some()),
                Op::BatchNorm { .. } | Op::Clip => g
                    .node_inputs(*u)
                    .iter()
                    .skip(1)
                    .flatten()
                    .all(|&x| g.const_value(x).is_some()),
                _ => false,
            };
            if !elementwise {
                break;
            }
            v = ValueRef::first(*u);
        }
        if sigmoid && g.outputs().contains(&v) {
            out.push(n);
        }
    }
    out
}

/// True when every dimension after the first two (batch, channels) is known to be 1 and there
/// is at least one such dimension: one value per channel.
fn one_pixel(g: &Graph, v: ValueRef) -> bool {
    g.value_type(v)
        .shape
        .as_ref()
        .is_some_and(|s| s.rank() >= 3 && s.0[2..].iter().all(|d| d.known() == Some(1)))
}

/// Layers of squeeze-and-excitation gates (`Config::float_gates`): a Conv/Gemm/MatMul whose
/// output has one pixel per channel and reaches, through single-reader elementwise ops (unary,
/// binary with a constant, Clip) and further such layers only, one input of a Mul whose other
/// input is an activation with more than one pixel. Measured on PP-OCR cls: with the gates
/// quantized, one rounding tie decided differently upstream (e.g. by another runtime's
/// summation order) moves a gate by a fraction of a step, which moves every element of its
/// channel, so two faithful INT8 runtimes drift apart; the gate layers hold < 1% of the MACs.
fn gate_layers(g: &Graph) -> Vec<NodeId> {
    let layer = |op: &Op| matches!(op, Op::Conv(_) | Op::Gemm { .. } | Op::MatMul);
    let mut out = vec![];
    for n in g.node_ids() {
        if !layer(&g.node(n).op) || !one_pixel(g, ValueRef::first(n)) {
            continue;
        }
        let mut v = ValueRef::first(n);
        for _ in 0..12 {
            if g.outputs().contains(&v) {
                break;
            }
            let users = g.users(v);
            let [(u, _)] = users.as_slice() else { break };
            let ins: Vec<ValueRef> = g.node_inputs(*u).into_iter().flatten().collect();
            let others_const = |skip: usize| {
                ins.iter()
                    .skip(skip)
                    .filter(|&&x| x != v)
                    .all(|&x| g.const_value(x).is_some())
            };
            let through = match &g.node(*u).op {
                Op::Binary(BinaryOp::Mul) => {
                    let other = ins.iter().find(|&&x| x != v);
                    if let Some(&o) = other {
                        if g.const_value(o).is_none() && !one_pixel(g, o) {
                            out.push(n);
                            break;
                        }
                    }
                    others_const(0)
                }
                Op::Unary(_) | Op::Binary(_) => others_const(0),
                Op::Clip => others_const(1),
                op if layer(op) => one_pixel(g, ValueRef::first(*u)) && others_const(1),
                _ => false,
            };
            if !through {
                break;
            }
            v = ValueRef::first(*u);
        }
    }
    out
}

/// Refuses a model that is already quantized (FakeQuantize, Q/DQ or integer ops): quantizing
/// it again would stack a second layer of quantizers on the first.
fn check_not_quantized(g: &Graph) -> Result<(), QuantError> {
    let found: Vec<&lpc_ir::Node> = g
        .node_ids()
        .into_iter()
        .map(|n| g.node(n))
        .filter(|n| {
            matches!(
                n.op,
                Op::FakeQuantize { .. }
                    | Op::QuantizeLinear { .. }
                    | Op::DequantizeLinear { .. }
                    | Op::DynamicQuantizeLinear
                    | Op::QLinearConv(_)
                    | Op::QLinearMatMul
                    | Op::ConvInteger(_)
                    | Op::MatMulInteger
                    | Op::QConv(_)
                    | Op::QMatMul
                    | Op::Requantize
                    | Op::QAdd
            )
        })
        .collect();
    match found.first() {
        None => Ok(()),
        Some(first) => Err(QuantError::Invalid(format!(
            "the model is already quantized ({} quantization node(s), e.g. '{}' ({})); \
             quantizing it again would add a second layer of quantizers. \
             Use `lpc fold` to lower it to integer operations",
            found.len(),
            first.name,
            first.op.name()
        ))),
    }
}

/// Largest calibration set (bytes) decoded once and kept in memory for all passes.
const CACHE_BYTES: usize = 1 << 30;

/// Quantizes `model` with calibration data `data`.
pub fn quantize(
    model: &Graph,
    data: &dyn SampleSource,
    cfg: &Config,
) -> Result<Quantized, QuantError> {
    let t_start = Instant::now();
    let mut report = Report {
        preset: cfg.preset.to_string(),
        estimator: cfg.estimator.to_string(),
        samples: data.len(),
        bias_correction: cfg.bias_correction,
        bias_correction_mode: if cfg.bias_correction {
            cfg.bias_correction_mode.to_string()
        } else {
            "off".into()
        },
        ..Default::default()
    };
    check_not_quantized(model)?;
    if data.is_empty() {
        return Err(QuantError::Data("no calibration samples".into()));
    }
    // Decoded images/files are read by every pass: decode them once when they fit in memory.
    let cached;
    let data: &dyn SampleSource = if data.decodes() {
        let first = data.get(0)?;
        let bytes: usize = first.iter().map(|t| t.len() * t.dtype().size()).sum();
        if bytes.saturating_mul(data.len()) <= CACHE_BYTES {
            use rayon::prelude::*;
            cached = lpc_data::InMemory(
                (0..data.len())
                    .into_par_iter()
                    .map(|i| data.get(i))
                    .collect::<Result<Vec<_>, _>>()?,
            );
            &cached
        } else {
            data
        }
    } else {
        data
    };
    let mut g = model.clone();
    report.folded_batchnorm = prepare(&mut g)?;
    let mut ignore = resolve_ignore(&g, &cfg.ignore)?;
    report.ignored = ignore.iter().map(|&n| g.node(n).name.clone()).collect();
    // Layers kept in float by rule (each reported with why).
    let rules: [(bool, fn(&Graph) -> Vec<NodeId>, &str); 2] = [
        (
            cfg.float_sigmoid_outputs,
            sigmoid_output_layers,
            "feeds a sigmoid output map",
        ),
        (
            cfg.float_gates,
            gate_layers,
            "computes a squeeze-and-excitation gate",
        ),
    ];
    for (on, layers, why) in rules {
        for n in if on { layers(&g) } else { vec![] } {
            if ignore.insert(n) {
                report
                    .warnings
                    .push(format!("layer '{}' {why}: kept in float", g.node(n).name));
            }
        }
    }
    let mut plan = place(&g, &ignore)?;
    let batchable = lpc_data::InputSpec::of(&g).iter().all(|s| s.batchable());
    let batch = if batchable { cfg.batch } else { 1 };
    report
        .times
        .push(("prepare".into(), t_start.elapsed().as_secs_f64()));

    // Pass 1: statistics of every activation point.
    let t = Instant::now();
    let index: HashMap<ValueRef, usize> = plan
        .acts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.value, i))
        .collect();
    let n_acts = plan.acts.len();
    let stats = for_batches(
        data,
        batch,
        "calibrate",
        cfg.progress,
        || vec![TensorStats::default(); n_acts],
        |st, inputs, first, k| {
            lpc_ref::run_observed(&g, inputs, |v, t| {
                if let (Some(&i), Ok(x)) = (index.get(&v), t.as_f32()) {
                    st[i].observe(x, t.shape(), k);
                }
            })
            .map_err(run_err(first))?;
            Ok(())
        },
        |a, b| a.iter_mut().zip(&b).for_each(|(x, y)| x.merge(y)),
    )?;
    for (a, s) in plan.acts.iter().zip(&stats) {
        if s.nonfinite > 0 {
            return Err(QuantError::Data(format!(
                "value '{}' took {} NaN/Inf values on the calibration data; cannot quantize it",
                g.value_name(a.value),
                s.nonfinite
            )));
        }
    }
    report
        .times
        .push(("statistics".into(), t.elapsed().as_secs_f64()));

    // Concat joins of very different ranges keep their own scales and stay in float.
    split_wide_concats(&g, &mut plan, &stats, &mut report.warnings);

    // Ranges per group.
    let n_groups = plan.groups.len();
    let mut merged: Vec<TensorStats> = vec![TensorStats::default(); n_groups];
    for (a, s) in plan.acts.iter().zip(&stats) {
        merged[a.group].merge(s);
    }
    let mut group_q = vec![];
    for (gi, st) in merged.iter().enumerate() {
        let (q, note) = group_range(st, cfg, &plan.groups[gi]);
        if let Some(n) = &note {
            report.warnings.push(n.clone());
        }
        group_q.push((q, note));
    }
    let mut act_q: Vec<Vec<ActQuant>> =
        plan.acts.iter().map(|a| vec![group_q[a.group].0]).collect();
    if cfg.per_channel_depthwise {
        for (i, a) in plan.acts.iter().enumerate() {
            let alone = plan.acts.iter().filter(|b| b.group == a.group).count() == 1;
            if alone && depthwise_only(&g, a) && stats[i].channel_min.len() > 1 {
                act_q[i] =
                    channel_ranges(&stats[i], cfg, &mut report.warnings, g.value_name(a.value));
            }
        }
    }
    for ((a, s), q) in plan.acts.iter().zip(&stats).zip(&act_q) {
        report.ranges.push(RangeInfo {
            value: g.value_name(a.value).to_string(),
            group: plan.groups[a.group].clone(),
            q: q[0],
            channels: q.len(),
            observed: [s.min, s.max, s.mean_min(), s.mean_max()],
            fallback: group_q[a.group].1.clone(),
        });
    }
    // Weights.
    let mut wq: Vec<Option<WeightQuant>> = vec![];
    for l in &plan.layers {
        wq.push(match l.weight {
            Some((slot, axis)) => {
                let w = g
                    .const_value(g.node_input(l.node, slot).expect("weight"))
                    .expect("const")
                    .clone();
                Some(WeightQuant::from_weights(
                    &w,
                    axis,
                    &format!("layer '{}' weights", g.node(l.node).name),
                )?)
            }
            None => None,
        });
    }
    let reference = g.clone();

    // Pass 2: bias correction.
    let t = Instant::now();
    let mut shifts: Vec<Option<Vec<f32>>> = vec![None; plan.layers.len()];
    let (acts, weights) = quantizers(&plan, &act_q, &wq);
    if cfg.bias_correction {
        let mut mode = cfg.bias_correction_mode;
        if mode == BiasCorrectionMode::Sequential {
            // Evaluated op by op on a copy: an op lpc-ref cannot evaluate alone (or any other
            // failure) leaves `g` untouched and fast correction runs instead, reported.
            let sub = Spread {
                src: data,
                n: cfg.sequential_samples.max(1),
            };
            let mut g2 = g.clone();
            let mut notes = vec![];
            match sequential_shifts(
                &mut g2,
                &plan,
                &acts,
                &weights,
                &sub,
                batch,
                cfg.progress,
                cfg.sequential_memory,
                &mut notes,
            ) {
                Ok(s) => {
                    shifts = s;
                    g = g2;
                    report.warnings.extend(notes);
                }
                Err(e) => {
                    report.warnings.push(format!(
                        "sequential bias correction failed ({e}); fast bias correction used instead"
                    ));
                    report.bias_correction_mode = BiasCorrectionMode::Fast.to_string();
                    mode = BiasCorrectionMode::Fast;
                }
            }
        }
        if mode == BiasCorrectionMode::Fast {
            let sub = Spread {
                src: data,
                n: cfg.bias_samples.max(1),
            };
            shifts = bias_shifts(&g, &plan, &act_q, &wq, &sub, batch, cfg.progress)?;
            for (l, s) in plan.layers.iter().zip(&shifts) {
                if let Some(s) = s {
                    if let Some(w) = apply_bias_shift(&mut g, l.node, l.kind, s)? {
                        report.warnings.push(w);
                    }
                }
            }
        }
    }
    report
        .times
        .push(("bias_correction".into(), t.elapsed().as_secs_f64()));

    // FakeQuantize insertion.
    insert_fake_quantize(&mut g, &acts, &weights)?;
    let layer_nodes: Vec<NodeId> = plan.layers.iter().map(|l| l.node).collect();
    snap_biases(&mut g, &layer_nodes)?;

    // Pass 3: per-layer SQNR against FP32.
    let t = Instant::now();
    let layer_names: Vec<String> = plan
        .layers
        .iter()
        .map(|l| reference.value_name(ValueRef::first(l.node)).to_string())
        .collect();
    let mut sq: HashMap<String, (f64, f64)> = HashMap::new();
    if cfg.report_samples > 0 {
        let sub = lpc_data::InMemory(
            (0..cfg.report_samples.min(data.len()))
                .map(|i| data.get(i))
                .collect::<Result<Vec<_>, _>>()?,
        );
        let mut names: Vec<String> = layer_names.clone();
        names.extend(
            reference
                .outputs()
                .iter()
                .map(|&v| reference.value_name(v).to_string()),
        );
        sq = compare_values(&reference, &g, &sub, &names, batch, cfg.progress)?;
    }
    for ((l, q), s) in plan.layers.iter().zip(&wq).zip(&shifts) {
        let name = reference.value_name(ValueRef::first(l.node)).to_string();
        report.layers.push(LayerInfo {
            name: g.node(l.node).name.clone(),
            op: g.node(l.node).op.name(),
            weight_range: q.as_ref().map(|q| {
                let mn = q.max_abs.iter().copied().fold(f32::INFINITY, f32::min);
                let mx = q.max_abs.iter().copied().fold(0f32, f32::max);
                (mn, mx)
            }),
            bias_shift: s
                .as_ref()
                .map(|s| s.iter().fold(0f32, |m, x| m.max(x.abs()))),
            sqnr_db: sq.get(&name).map(|&(s, n)| sqnr_db(s, n)),
        });
    }
    for &v in reference.outputs() {
        let name = reference.value_name(v).to_string();
        if let Some(&(s, n)) = sq.get(&name) {
            report.outputs.push((name, sqnr_db(s, n)));
        }
    }
    report
        .times
        .push(("report".into(), t.elapsed().as_secs_f64()));
    report
        .times
        .push(("total".into(), t_start.elapsed().as_secs_f64()));
    Ok(Quantized {
        graph: g,
        reference,
        report,
    })
}

const CONCAT_RATIO: f32 = 16.0;

fn split_wide_concats(
    g: &Graph,
    plan: &mut Placement,
    stats: &[TensorStats],
    warnings: &mut Vec<String>,
) {
    for &cg in &plan.concat_groups.clone() {
        let members: Vec<usize> = (0..plan.acts.len())
            .filter(|&i| plan.acts[i].group == cg)
            .collect();
        let mags: Vec<f32> = members
            .iter()
            .map(|&i| stats[i].min.abs().max(stats[i].max.abs()))
            .collect();
        let (lo, hi) = mags
            .iter()
            .fold((f32::INFINITY, 0f32), |(a, b), &m| (a.min(m), b.max(m)));
        if lo > 0.0 && hi / lo <= CONCAT_RATIO {
            continue;
        }
        warnings.push(format!(
            "group '{}': input ranges differ by {:.0}x; its Concat inputs keep float (no shared scale)",
            plan.groups[cg],
            if lo > 0.0 { hi / lo } else { f32::INFINITY }
        ));
        for &i in &members {
            let a: &mut ActPoint = &mut plan.acts[i];
            a.consumers
                .retain(|&(n, _)| !matches!(g.node(n).op, Op::Concat { .. }));
            plan.groups.push(g.value_name(a.value).to_string());
            a.group = plan.groups.len() - 1;
        }
    }
    plan.acts.retain(|a| !a.consumers.is_empty());
}

/// Output-channel axis of a layer's output.
fn out_axis(kind: LayerKind, rank: usize) -> usize {
    match kind {
        LayerKind::Conv | LayerKind::ConvTranspose | LayerKind::Gemm { .. } => {
            1.min(rank.saturating_sub(1))
        }
        LayerKind::MatMul => rank.saturating_sub(1),
    }
}

fn fq_tensor(t: &Tensor, q: &[ActQuant]) -> Result<Tensor, QuantError> {
    let v = t.as_f32().map_err(|e| QuantError::Invalid(e.to_string()))?;
    let c = q.len();
    let inner: usize = if t.rank() >= 2 {
        t.shape()[2..].iter().product()
    } else {
        1
    };
    if c > 1 && t.shape().get(1) != Some(&c) {
        return Err(QuantError::Invalid(format!(
            "per-channel quantizer of {c} channels on shape {:?}",
            t.shape()
        )));
    }
    // Runs of `inner` elements share a channel: no division per element.
    let mut out = Vec::with_capacity(v.len());
    if c == 1 {
        out.extend(v.iter().map(|&x| q[0].apply(x)));
    } else {
        for (i, run) in v.chunks(inner.max(1)).enumerate() {
            let qc = &q[i % c];
            out.extend(run.iter().map(|&x| qc.apply(x)));
        }
    }
    Tensor::from_f32(t.shape(), out).map_err(|e| QuantError::Invalid(e.to_string()))
}

/// True when every consumer of the point is a depthwise Conv reading it as its input.
fn depthwise_only(g: &Graph, a: &ActPoint) -> bool {
    a.consumers.iter().all(|&(n, slot)| {
        let Op::Conv(attrs) = &g.node(n).op else {
            return false;
        };
        let w = g.node_input(n, 1).and_then(|w| g.const_value(w).cloned());
        slot == 0
            && w.is_some_and(|w| {
                w.rank() >= 3 && w.shape()[1] == 1 && w.shape()[0] == attrs.group && attrs.group > 1
            })
    })
}

/// Per-channel min/max ranges with one dtype and one zero point for all channels: unsigned
/// (zero point 0) when every channel is non-negative; otherwise symmetric (performance) or
/// asymmetric around a common zero point (mixed: the median of the channels' own zero points),
/// each channel's scale the smallest that covers its range. A depthwise conv reads each channel
/// alone, so per-channel scales fold into its output scale; the shared zero point is what keeps
/// that fold exact (the conv pads with one input zero point).
fn channel_ranges(
    st: &TensorStats,
    cfg: &Config,
    warnings: &mut Vec<String>,
    name: &str,
) -> Vec<ActQuant> {
    let mut ranges = vec![];
    for (c, (&lo, &hi)) in st.channel_min.iter().zip(&st.channel_max).enumerate() {
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        if !(hi - lo > 0.0) || !lo.is_finite() || !hi.is_finite() {
            warnings.push(format!(
                "{name} channel {c}: constant zero; range [0, 1] used"
            ));
            ranges.push((0.0, 1.0));
        } else {
            ranges.push((lo, hi));
        }
    }
    if ranges.iter().all(|&(lo, _)| lo >= 0.0) {
        return ranges
            .iter()
            .map(|&(_, hi)| ActQuant::unsigned(hi))
            .collect();
    }
    if cfg.preset == Preset::Performance {
        let a = |&(lo, hi): &(f32, f32)| hi.max(-lo);
        return ranges.iter().map(|r| ActQuant::symmetric(a(r))).collect();
    }
    let mut zps: Vec<f32> = ranges
        .iter()
        .filter(|&&(lo, _)| lo < 0.0)
        .map(|&(lo, hi)| (-lo / (hi - lo) * 255.0).round_ties_even())
        .collect();
    zps.sort_by(f32::total_cmp);
    let zp = zps[zps.len() / 2].clamp(1.0, 254.0);
    ranges
        .iter()
        .map(|&(lo, hi)| {
            let s = (hi / (255.0 - zp)).max(-lo / zp);
            ActQuant::asymmetric(-zp * s, (255.0 - zp) * s, true)
        })
        .collect()
}

/// Every `len / n`-th sample of a source (all of it when `n >= len`): the bias-correction subset.
struct Spread<'a> {
    src: &'a dyn SampleSource,
    n: usize,
}

impl SampleSource for Spread<'_> {
    fn len(&self) -> usize {
        self.n.min(self.src.len())
    }
    fn get(&self, i: usize) -> Result<Vec<Tensor>, lpc_data::DataError> {
        self.src.get(i * self.src.len() / self.len().max(1))
    }
}

/// A Conv whose bias shift comes from per-tap input sums (no second convolution): 2-D, constant
/// weights, one activation input.
struct TapConv {
    /// Weights `[O, C/g, KH, KW]`, FP32 and fake-quantized.
    w: Vec<f32>,
    wq: Vec<f32>,
    o: usize,
    c: usize,
    group: usize,
    kernel: [usize; 2],
    attrs: lpc_ir::ConvAttrs,
    q: Vec<ActQuant>,
}

/// Sums over the batch and the output positions of the input each kernel tap reads:
/// `t[c][ky][kx] += Σ_{n,oy,ox} x[n, c, iy(ky, oy), ix(kx, ox)]` (padding reads 0). Since a
/// convolution is linear, the mean of its output channel o is `Σ w[o,c,ky,kx]·t[c,ky,kx]`
/// divided by the output positions, plus the bias.
fn tap_sums(x: &[f32], dims: [usize; 4], taps: &[Vec<Vec<Option<usize>>>], t: &mut [f64]) {
    let [n, c, h, w] = dims;
    let (kh, kw) = (taps[0].len(), taps[1].len());
    let cols: Vec<Vec<usize>> = taps[1]
        .iter()
        .map(|k| k.iter().flatten().copied().collect())
        .collect();
    // The columns a kernel column reads form an arithmetic progression a, a+s, ..., b (the map
    // ox → ox·stride + kx·dilation − pad); its sum is q[b] − q[a−s] with q the running sums of
    // every s-th element, so each row is summed once per distinct step instead of once per
    // kernel column.
    let prog: Vec<Option<(usize, usize, usize)>> = cols
        .iter()
        .map(|cs| {
            let (&a, &b) = (cs.first()?, cs.last()?);
            let s = if cs.len() > 1 { cs[1] - a } else { 1 };
            let ok = s > 0 && cs.windows(2).all(|p| p[1] == p[0] + s);
            ok.then_some((a, b, s))
        })
        .collect();
    let mut steps: Vec<usize> = prog.iter().flatten().map(|p| p.2).collect();
    steps.sort_unstable();
    steps.dedup();
    // Running sums of ROWS rows at a time, interleaved per column (`q[si][ix·ROWS + r]`).
    let mut q = vec![vec![0f64; w * ROWS]; steps.len()];
    let mut rows = vec![vec![0f64; h]; kw];
    for plane in x.chunks(h * w).take(n * c).enumerate() {
        let (i, p) = plane;
        let ch = i % c;
        for y0 in (0..h).step_by(ROWS) {
            let line = |r: usize| &p[(y0 + r) * w..(y0 + r + 1) * w];
            let nr = ROWS.min(h - y0);
            for (qs, &s) in q.iter_mut().zip(&steps) {
                if nr == ROWS {
                    running_sums::<ROWS>(std::array::from_fn(line), s, qs);
                } else {
                    for r in 0..nr {
                        let mut one = vec![0f64; w];
                        running_sums([line(r)], s, &mut one);
                        for (ix, &v) in one.iter().enumerate() {
                            qs[ix * ROWS + r] = v;
                        }
                    }
                }
            }
            for r in 0..nr {
                for (kx, cs) in cols.iter().enumerate() {
                    rows[kx][y0 + r] = match prog[kx] {
                        Some((a, b, s)) => {
                            let qs = &q[steps.partition_point(|&t| t < s)];
                            qs[b * ROWS + r] - if a >= s { qs[(a - s) * ROWS + r] } else { 0.0 }
                        }
                        None => cs.iter().map(|&ix| line(r)[ix] as f64).sum(),
                    };
                }
            }
        }
        for (kx, rows) in rows.iter().enumerate() {
            for (ky, tk) in taps[0].iter().enumerate() {
                let s: f64 = tk.iter().flatten().map(|&iy| rows[iy]).sum();
                t[(ch * kh + ky) * kw + kx] += s;
            }
        }
    }
}

/// Rows whose running sums [`tap_sums`] computes together.
const ROWS: usize = 4;

/// Running sums of every `s`-th element of `R` rows at once, interleaved:
/// `q[ix·R + r] = lines[r][ix] + q[(ix − s)·R + r]` (`+ 0.0` for `ix < s`). Each row gets
/// exactly the additions, in the same order, of summing it alone; the R rows' independent
/// chains of f64 additions overlap instead of each waiting on the latency of the previous add.
fn running_sums<const R: usize>(lines: [&[f32]; R], s: usize, q: &mut [f64]) {
    let w = lines[0].len();
    for ix in 0..w {
        for r in 0..R {
            q[ix * R + r] = lines[r][ix] as f64 + if ix >= s { q[(ix - s) * R + r] } else { 0.0 };
        }
    }
}

impl TapConv {
    fn new(
        g: &Graph,
        l: &crate::passes::Layer,
        q: &[ActQuant],
        wq: &WeightQuant,
    ) -> Result<Option<TapConv>, QuantError> {
        let Op::Conv(attrs) = &g.node(l.node).op else {
            return Ok(None);
        };
        let (Some((1, 0)), [0]) = (l.weight, l.act_slots.as_slice()) else {
            return Ok(None);
        };
        let Some(w) = g.node_input(l.node, 1).and_then(|v| g.const_value(v)) else {
            return Ok(None);
        };
        if w.rank() != 4 || attrs.group == 0 || w.shape()[0] % attrs.group != 0 {
            return Ok(None);
        }
        let Ok(wv) = w.as_f32() else { return Ok(None) };
        let wqt = wq.apply(w)?;
        let s = w.shape();
        Ok(Some(TapConv {
            w: wv.to_vec(),
            wq: wqt
                .as_f32()
                .map_err(|e| QuantError::Invalid(e.to_string()))?
                .to_vec(),
            o: s[0],
            c: s[1] * attrs.group,
            group: attrs.group,
            kernel: [s[2], s[3]],
            attrs: attrs.clone(),
            q: q.to_vec(),
        }))
    }

    /// Adds the tap sums of `x` and of its fake-quantized version to `acc` (Σt, Σtq, positions).
    fn observe(
        &self,
        x: &Tensor,
        acc: &mut Option<(Vec<f64>, Vec<f64>, u64)>,
    ) -> Result<(), QuantError> {
        let s = x.shape();
        let bad = || QuantError::Invalid(format!("bias correction: conv input of shape {s:?}"));
        if s.len() != 4 || s[1] != self.c {
            return Err(bad());
        }
        let a = &self.attrs;
        let geom = lpc_ref::geom::geometry(
            &s[2..],
            &self.kernel,
            &a.strides,
            &a.dilations,
            &a.pads,
            a.auto_pad,
            false,
        )
        .map_err(|e| QuantError::Invalid(format!("bias correction: {e}")))?;
        let taps = geom.taps();
        let len = self.c * self.kernel[0] * self.kernel[1];
        let (t, tq, positions) = acc.get_or_insert_with(|| (vec![0.0; len], vec![0.0; len], 0));
        let dims = [s[0], s[1], s[2], s[3]];
        let xv = x.as_f32().map_err(|e| QuantError::Invalid(e.to_string()))?;
        tap_sums(xv, dims, &taps, t);
        let xq = fq_tensor(x, &self.q)?;
        tap_sums(
            xq.as_f32()
                .map_err(|e| QuantError::Invalid(e.to_string()))?,
            dims,
            &taps,
            tq,
        );
        *positions += (s[0] * geom.output.iter().product::<usize>()) as u64;
        Ok(())
    }

    /// The mean output difference per output channel, FP32 minus quantized.
    fn shift(&self, t: &[f64], tq: &[f64], positions: u64) -> Vec<f32> {
        let k = self.kernel[0] * self.kernel[1];
        let (cg, og) = (self.c / self.group, self.o / self.group);
        (0..self.o)
            .map(|o| {
                let base = (o / og.max(1)) * cg * k;
                let mut d = 0f64;
                for j in 0..cg * k {
                    let wi = o * cg * k + j;
                    d += self.w[wi] as f64 * t[base + j] - self.wq[wi] as f64 * tq[base + j];
                }
                (d / positions.max(1) as f64) as f32
            })
            .collect()
    }
}

/// Activation quantizers (value, its quantized consumers, ranges) and weight quantizers
/// (layer, weight slot, quantizer) as [`insert_fake_quantize`] takes them.
type ActPoints = Vec<(ValueRef, Vec<(NodeId, usize)>, Vec<ActQuant>)>;
type WeightPoints = Vec<(NodeId, usize, WeightQuant)>;

fn quantizers(
    plan: &Placement,
    act_q: &[Vec<ActQuant>],
    wq: &[Option<WeightQuant>],
) -> (ActPoints, WeightPoints) {
    let acts = plan
        .acts
        .iter()
        .zip(act_q)
        .map(|(a, q)| (a.value, a.consumers.clone(), q.clone()))
        .collect();
    let weights = plan
        .layers
        .iter()
        .zip(wq)
        .filter_map(|(l, q)| Some((l.node, l.weight?.0, q.clone()?)))
        .collect();
    (acts, weights)
}

/// Adds the per-channel sums of a layer output (channel axis by layer kind) to `acc`
/// (sums, values per channel). Non-f32 or rank-0 outputs, or a channel count that changes
/// between batches, are not counted.
fn channel_sums(t: &Tensor, kind: LayerKind, acc: &mut Option<(Vec<f64>, u64)>) {
    let Ok(x) = t.as_f32() else { return };
    if t.rank() == 0 {
        return;
    }
    let ax = out_axis(kind, t.rank());
    let c = t.shape()[ax];
    let inner: usize = t.shape()[ax + 1..].iter().product();
    if c == 0 {
        return;
    }
    let (sums, n) = acc.get_or_insert_with(|| (vec![0.0; c], 0));
    if sums.len() != c {
        return;
    }
    for (i, run) in x.chunks(inner.max(1)).enumerate() {
        sums[i % c] += run.iter().map(|&v| v as f64).sum::<f64>();
    }
    *n += (x.len() / c) as u64;
}

/// Adds `shift[c]` to channel c (axis by layer kind) of a layer output.
fn add_channel_shift(t: &mut Tensor, kind: LayerKind, shift: &[f32]) -> Result<(), QuantError> {
    let ax = out_axis(kind, t.rank());
    let inner: usize = t.shape()[ax + 1..].iter().product();
    let c = shift.len();
    let x = t
        .as_f32_mut()
        .map_err(|e| QuantError::Invalid(e.to_string()))?;
    for (i, run) in x.chunks_mut(inner.max(1)).enumerate() {
        let s = shift[i % c];
        run.iter_mut().for_each(|v| *v += s);
    }
    Ok(())
}

/// A value during sequential bias correction: computed once from constants only (weight
/// quantizers), or one tensor per chunk of samples.
enum SeqValue {
    Shared(Tensor),
    Chunks(Vec<Tensor>),
}

impl SeqValue {
    fn bytes(&self) -> usize {
        let one = |t: &Tensor| t.len() * t.dtype().size();
        match self {
            SeqValue::Shared(t) => one(t),
            SeqValue::Chunks(ts) => ts.iter().map(one).sum(),
        }
    }
}

/// The most bytes of activations sequential bias correction holds at once by default: half
/// the memory Linux reports available, 4 GiB when that is unknown.
fn sequential_memory_limit() -> usize {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<usize>().ok())
        })
        .map_or(4 << 30, |kb| (kb << 10) / 2)
}

/// Sequential ("empirical") bias correction. The FP32 graph `g` is run once over `data` for the
/// per-channel mean of every quantized layer's output. Then the FakeQuantize graph is evaluated
/// node by node in topological order over all of `data` at once (chunks of samples evaluated in
/// parallel; values freed after their last reader): at each quantized layer, the shift is the
/// FP32 mean minus the mean of the layer's output in the quantized model — whose inputs carry
/// the quantization error of everything upstream, corrections of earlier layers included. The
/// shift is added to the layer's bias in `g` and to the computed output (the same as
/// evaluating the layer again with the new bias: the bias is added per output channel) before
/// the walk goes on. Only the nodes quantized layers depend on are evaluated.
#[allow(clippy::too_many_arguments)]
fn sequential_shifts(
    g: &mut Graph,
    plan: &Placement,
    acts: &ActPoints,
    weights: &WeightPoints,
    data: &dyn SampleSource,
    batch: usize,
    progress: bool,
    memory: usize,
    warnings: &mut Vec<String>,
) -> Result<Vec<Option<Vec<f32>>>, QuantError> {
    use rayon::prelude::*;
    let n_layers = plan.layers.len();
    // FP32 means.
    let out_of: HashMap<ValueRef, usize> = plan
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| (ValueRef::first(l.node), i))
        .collect();
    type Sums = Vec<Option<(Vec<f64>, u64)>>;
    let graph: &Graph = g;
    let fp: Sums = for_batches(
        data,
        batch,
        "bias fp32",
        progress,
        || vec![None; n_layers],
        |acc: &mut Sums, inputs, first, _k| {
            lpc_ref::run_observed(graph, inputs, |v, t| {
                if let Some(&li) = out_of.get(&v) {
                    channel_sums(t, plan.layers[li].kind, &mut acc[li]);
                }
            })
            .map_err(run_err(first))?;
            Ok(())
        },
        |a, b| {
            for (x, y) in a.iter_mut().zip(b) {
                match (x.as_mut(), y) {
                    (Some((s, n)), Some((t, m))) if s.len() == t.len() => {
                        s.iter_mut().zip(&t).for_each(|(p, q)| *p += q);
                        *n += m;
                    }
                    (None, y) => *x = y,
                    _ => {}
                }
            }
        },
    )?;

    // The quantized graph, without corrections; its original nodes keep their ids.
    let mut gq = g.clone();
    insert_fake_quantize(&mut gq, acts, weights)?;
    let order = gq
        .topo_order()
        .map_err(|e| QuantError::Invalid(e.to_string()))?;
    let layer_at: HashMap<NodeId, usize> = plan
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| (l.node, i))
        .collect();
    // Nodes some quantized layer depends on (reverse topological order: users first).
    let mut needed: HashSet<NodeId> = layer_at.keys().copied().collect();
    for &n in order.iter().rev() {
        if needed.contains(&n) {
            for v in gq.node_inputs(n).into_iter().flatten() {
                needed.insert(v.node);
            }
        }
    }
    let mut reads: HashMap<ValueRef, usize> = HashMap::new();
    for &n in order.iter().filter(|n| needed.contains(n)) {
        for v in gq.node_inputs(n).into_iter().flatten() {
            *reads.entry(v).or_default() += 1;
        }
    }
    // Chunks of samples: at most the run batch, and at least one chunk per thread.
    let n = data.len();
    let threads = rayon::current_num_threads().max(1);
    let per = crate::batch::resolve_batch(data, batch)?
        .min(n.div_ceil(threads))
        .max(1);
    let chunks: Vec<Vec<Tensor>> = (0..n)
        .step_by(per)
        .map(|i| {
            let samples: Vec<Vec<Tensor>> = (i..(i + per).min(n))
                .map(|j| data.get(j))
                .collect::<Result<_, _>>()?;
            (0..samples[0].len())
                .map(|x| {
                    let col: Vec<Tensor> = samples.iter().map(|s| s[x].clone()).collect();
                    if col.len() == 1 {
                        Ok(col.into_iter().next().expect("one"))
                    } else {
                        lpc_data::concat_rows(&col)
                    }
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()?;

    let bar = crate::progress::Progress::new("bias sequential", needed.len(), progress);
    let mut values: HashMap<ValueRef, SeqValue> = HashMap::new();
    let mut shifts: Vec<Option<Vec<f32>>> = vec![None; n_layers];
    // Bytes of the values held; past the limit the pass stops (the caller falls back to fast
    // correction) instead of running the machine out of memory.
    let limit = match memory {
        0 => sequential_memory_limit(),
        m => m,
    };
    let mut live = 0usize;
    for &nid in order.iter().filter(|n| needed.contains(n)) {
        bar.add(1);
        let node = gq.node(nid);
        let outs: Vec<SeqValue> = match &node.op {
            Op::Const(_) => continue,
            Op::Input { index } => {
                let per_chunk = chunks
                    .iter()
                    .map(|c| {
                        c.get(*index).cloned().ok_or_else(|| {
                            QuantError::Invalid(format!("input index {index} out of range"))
                        })
                    })
                    .collect::<Result<_, _>>()?;
                vec![SeqValue::Chunks(per_chunk)]
            }
            op => {
                let slots = gq.node_inputs(nid);
                let fail = |e: String| {
                    QuantError::Invalid(format!(
                        "sequential bias correction: node '{}' ({}): {e}",
                        node.name,
                        op.name()
                    ))
                };
                let mut shared = true;
                for v in slots.iter().flatten() {
                    match (gq.const_value(*v), values.get(v)) {
                        (Some(_), _) | (None, Some(SeqValue::Shared(_))) => {}
                        (None, Some(SeqValue::Chunks(_))) => shared = false,
                        (None, None) => {
                            return Err(fail(format!("input '{}' not computed", gq.value_name(*v))))
                        }
                    }
                }
                let eval_chunk = |c: usize| -> Result<Vec<Tensor>, QuantError> {
                    let ins: Vec<Option<&Tensor>> = slots
                        .iter()
                        .map(|s| match s {
                            None => Ok(None),
                            Some(v) => match (gq.const_value(*v), values.get(v)) {
                                (Some(t), _) => Ok(Some(t.as_ref())),
                                (None, Some(SeqValue::Shared(t))) => Ok(Some(t)),
                                (None, Some(SeqValue::Chunks(ts))) => Ok(ts.get(c)),
                                (None, None) => {
                                    Err(fail(format!("input '{}' not computed", gq.value_name(*v))))
                                }
                            },
                        })
                        .collect::<Result<_, _>>()?;
                    let o = lpc_ref::eval(op, &ins, node.outputs.len())
                        .map_err(|e| fail(e.to_string()))?;
                    if o.len() < node.outputs.len() {
                        return Err(fail(format!(
                            "produced {} outputs, node declares {}",
                            o.len(),
                            node.outputs.len()
                        )));
                    }
                    Ok(o)
                };
                let outs = if shared {
                    eval_chunk(0)?.into_iter().map(SeqValue::Shared).collect()
                } else {
                    let per_chunk: Vec<Vec<Tensor>> = (0..chunks.len())
                        .into_par_iter()
                        .map(eval_chunk)
                        .collect::<Result<_, _>>()?;
                    let mut by_out: Vec<Vec<Tensor>> = vec![vec![]; node.outputs.len()];
                    for o in per_chunk {
                        for (k, t) in o.into_iter().take(node.outputs.len()).enumerate() {
                            by_out[k].push(t);
                        }
                    }
                    by_out.into_iter().map(SeqValue::Chunks).collect()
                };
                for v in slots.iter().flatten() {
                    if let Some(r) = reads.get_mut(v) {
                        *r -= 1;
                        if *r == 0 {
                            if let Some(gone) = values.remove(v) {
                                live = live.saturating_sub(gone.bytes());
                            }
                        }
                    }
                }
                outs
            }
        };
        let mut outs = outs;
        if let Some(&li) = layer_at.get(&nid) {
            let l = &plan.layers[li];
            if let (Some(SeqValue::Chunks(ts)), Some((fs, fnum))) = (outs.first_mut(), &fp[li]) {
                let mut q = None;
                for t in ts.iter() {
                    channel_sums(t, l.kind, &mut q);
                }
                if let Some((qs, qnum)) = q.filter(|(qs, _)| qs.len() == fs.len()) {
                    let shift: Vec<f32> = fs
                        .iter()
                        .zip(&qs)
                        .map(|(f, q)| (f / (*fnum).max(1) as f64 - q / qnum.max(1) as f64) as f32)
                        .collect();
                    match apply_bias_shift(g, l.node, l.kind, &shift)? {
                        Some(note) => warnings.push(note),
                        None => {
                            for t in ts.iter_mut() {
                                add_channel_shift(t, l.kind, &shift)?;
                            }
                            shifts[li] = Some(shift);
                        }
                    }
                }
            }
        }
        for (k, v) in outs.into_iter().enumerate() {
            let vr = ValueRef {
                node: nid,
                output: k,
            };
            if reads.get(&vr).copied().unwrap_or(0) > 0 {
                live += v.bytes();
                if live > limit {
                    return Err(QuantError::Invalid(format!(
                        "holding {} samples' activations at node '{}' takes more than {} MB (lower --bias-samples)",
                        n,
                        gq.node(nid).name,
                        limit >> 20
                    )));
                }
                values.insert(vr, v);
            }
        }
    }
    bar.finish();
    Ok(shifts)
}

/// Per-layer bias-correction accumulators: tap sums for 2-D convs, output differences otherwise.
#[derive(Clone)]
enum BiasAcc {
    Taps(Option<(Vec<f64>, Vec<f64>, u64)>),
    Out(Option<(Vec<f64>, u64)>),
}

/// FastBiasCorrection: for each quantized layer, the mean per output channel of
/// `FP32 output − output of the quantized layer on the same FP32 inputs` over `data`.
/// 2-D convolutions (nearly all of a CNN's layers) get it exactly from per-tap input sums,
/// without a second convolution; other layers are evaluated again on quantized inputs.
fn bias_shifts(
    g: &Graph,
    plan: &Placement,
    act_q: &[Vec<ActQuant>],
    wq: &[Option<WeightQuant>],
    data: &dyn SampleSource,
    batch: usize,
    progress: bool,
) -> Result<Vec<Option<Vec<f32>>>, QuantError> {
    // Quantizer per (consumer, slot).
    let mut slot_q: HashMap<(NodeId, usize), Vec<ActQuant>> = HashMap::new();
    for (a, q) in plan.acts.iter().zip(act_q) {
        for &c in &a.consumers {
            slot_q.insert(c, q.clone());
        }
    }
    // Tap-sum layers by input value; the others by output value, with their inputs stashed.
    let mut taps: Vec<Option<TapConv>> = vec![];
    let mut tap_in: HashMap<ValueRef, Vec<usize>> = HashMap::new();
    let mut need: HashMap<ValueRef, usize> = HashMap::new();
    let mut out_of: HashMap<ValueRef, usize> = HashMap::new();
    let mut wfq: Vec<Option<Tensor>> = vec![];
    for (li, (l, q)) in plan.layers.iter().zip(wq).enumerate() {
        let tc = match (q, slot_q.get(&(l.node, 0))) {
            (Some(q), Some(aq)) => TapConv::new(g, l, aq, q)?,
            _ => None,
        };
        if tc.is_some() {
            let x = g.node_input(l.node, 0).expect("act slot 0");
            tap_in.entry(x).or_default().push(li);
            taps.push(tc);
            wfq.push(None);
            continue;
        }
        taps.push(None);
        for v in g.node_inputs(l.node).into_iter().flatten() {
            if g.const_value(v).is_none() {
                *need.entry(v).or_default() += 1;
            }
        }
        out_of.insert(ValueRef::first(l.node), li);
        wfq.push(match (l.weight, q) {
            (Some((slot, _)), Some(q)) => Some(
                q.apply(
                    g.const_value(g.node_input(l.node, slot).expect("w"))
                        .expect("const"),
                )?,
            ),
            _ => None,
        });
    }
    let init: Vec<BiasAcc> = taps
        .iter()
        .map(|t| match t {
            Some(_) => BiasAcc::Taps(None),
            None => BiasAcc::Out(None),
        })
        .collect();
    let acc: Vec<BiasAcc> = for_batches(
        data,
        batch,
        "bias",
        progress,
        || init.clone(),
        |acc: &mut Vec<BiasAcc>, inputs, first, _k| {
            let mut stash: HashMap<ValueRef, (Tensor, usize)> = HashMap::new();
            let mut err: Option<QuantError> = None;
            lpc_ref::run_observed(g, inputs, |v, t| {
                if err.is_some() {
                    return;
                }
                for &li in tap_in.get(&v).map_or(&[][..], |v| v.as_slice()) {
                    let (Some(tc), BiasAcc::Taps(a)) = (&taps[li], &mut acc[li]) else {
                        continue;
                    };
                    if let Err(e) = tc.observe(t, a) {
                        err = Some(e);
                    }
                }
                if let Some(&uses) = need.get(&v) {
                    stash.insert(v, (t.clone(), uses));
                }
                if let Some(&li) = out_of.get(&v) {
                    if let BiasAcc::Out(a) = &mut acc[li] {
                        if let Err(e) = layer_error(g, plan, li, &slot_q, &wfq, &stash, t, a) {
                            err = Some(e);
                        }
                    }
                    // Drop inputs no other layer still needs.
                    for x in g.node_inputs(plan.layers[li].node).into_iter().flatten() {
                        if let Some(e) = stash.get_mut(&x) {
                            e.1 -= 1;
                            if e.1 == 0 {
                                stash.remove(&x);
                            }
                        }
                    }
                }
            })
            .map_err(run_err(first))?;
            err.map_or(Ok(()), Err)
        },
        |a, b| {
            for (x, y) in a.iter_mut().zip(b) {
                match (x, y) {
                    (BiasAcc::Taps(x), BiasAcc::Taps(Some(y))) => match x {
                        Some((t, tq, n)) => {
                            t.iter_mut().zip(&y.0).for_each(|(p, q)| *p += q);
                            tq.iter_mut().zip(&y.1).for_each(|(p, q)| *p += q);
                            *n += y.2;
                        }
                        None => *x = Some(y),
                    },
                    (BiasAcc::Out(x), BiasAcc::Out(Some(y))) => match x {
                        Some((s, n)) => {
                            s.iter_mut().zip(&y.0).for_each(|(p, q)| *p += q);
                            *n += y.1;
                        }
                        None => *x = Some(y),
                    },
                    _ => {}
                }
            }
        },
    )?;
    Ok(acc
        .into_iter()
        .zip(&taps)
        .map(|(a, tc)| match (a, tc) {
            (BiasAcc::Taps(Some((t, tq, n))), Some(tc)) if n > 0 => Some(tc.shift(&t, &tq, n)),
            (BiasAcc::Out(Some((s, n))), _) if n > 0 => {
                Some(s.iter().map(|x| (x / n as f64) as f32).collect())
            }
            _ => None,
        })
        .collect())
}

#[allow(clippy::too_many_arguments)]
fn layer_error(
    g: &Graph,
    plan: &Placement,
    li: usize,
    slot_q: &HashMap<(NodeId, usize), Vec<ActQuant>>,
    wfq: &[Option<Tensor>],
    stash: &HashMap<ValueRef, (Tensor, usize)>,
    fp32_out: &Tensor,
    acc: &mut Option<(Vec<f64>, u64)>,
) -> Result<(), QuantError> {
    let l = &plan.layers[li];
    let node = g.node(l.node);
    let mut owned: Vec<Option<Tensor>> = vec![];
    for (slot, v) in g.node_inputs(l.node).into_iter().enumerate() {
        let Some(v) = v else {
            owned.push(None);
            continue;
        };
        let t = if l.weight.map(|w| w.0) == Some(slot) && wfq[li].is_some() {
            wfq[li].clone().expect("checked")
        } else if let Some(c) = g.const_value(v) {
            (**c).clone()
        } else {
            let (x, _) = stash.get(&v).ok_or_else(|| {
                QuantError::Invalid(format!(
                    "bias correction: input of '{}' not seen",
                    node.name
                ))
            })?;
            match slot_q.get(&(l.node, slot)) {
                Some(q) => fq_tensor(x, q)?,
                None => x.clone(),
            }
        };
        owned.push(Some(t));
    }
    let refs: Vec<Option<&Tensor>> = owned.iter().map(Option::as_ref).collect();
    let q = lpc_ref::eval(&node.op, &refs, 1)
        .map_err(|e| QuantError::Invalid(format!("bias correction of '{}': {e}", node.name)))?;
    let (Ok(a), Some(Ok(b))) = (fp32_out.as_f32(), q.first().map(|t| t.as_f32())) else {
        return Ok(());
    };
    if a.len() != b.len() || fp32_out.rank() == 0 {
        return Ok(());
    }
    let ax = out_axis(l.kind, fp32_out.rank());
    let c = fp32_out.shape()[ax];
    let inner: usize = fp32_out.shape()[ax + 1..].iter().product();
    let (sums, n) = acc.get_or_insert_with(|| (vec![0.0; c], 0));
    if sums.len() != c {
        return Ok(());
    }
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        sums[(i / inner.max(1)) % c] += (x - y) as f64;
    }
    *n += (a.len() / c) as u64;
    Ok(())
}

/// Adds `shift` (per output channel) to a layer's bias; returns a note when it cannot.
/// Rounds the constant bias of each quantized layer onto its accumulator grid
/// (`lpc_onnx::export::accumulator_scales`: input scale × weight scale per output channel),
/// as integer runtimes store it (i32 in those units). The FakeQuantize graph then computes
/// what the fused integer kernels and the QDQ export (i32 bias + DequantizeLinear) compute;
/// left in float, ONNX Runtime re-rounds the bias itself and the two drift apart. The change
/// is at most half a unit of the accumulator per channel.
fn snap_biases(g: &mut Graph, layers: &[NodeId]) -> Result<(), QuantError> {
    for &n in layers {
        let Some(scales) = lpc_onnx::export::accumulator_scales(g, n) else {
            continue;
        };
        let Some(bv) = g.node_input(n, 2) else {
            continue;
        };
        let Some(b) = g.const_value(bv) else { continue };
        if b.dtype() != lpc_ir::DType::F32 || b.len() != scales.len() {
            continue;
        }
        let shape = b.shape().to_vec();
        let snapped: Vec<f32> = b
            .to_f32_vec()
            .iter()
            .zip(&scales)
            .map(|(&v, &s)| {
                let k = (v / s).round_ties_even();
                if s > 0.0 && k.is_finite() && k.abs() < 2147483648.0 {
                    k * s
                } else {
                    v
                }
            })
            .collect();
        let name = format!("{}__acc_bias", g.node(n).name);
        let t =
            Tensor::from_f32(&shape, snapped).map_err(|e| QuantError::Invalid(e.to_string()))?;
        let v = g.add_const(name, t);
        g.set_node_input(n, 2, Some(v));
    }
    g.remove_dead();
    Ok(())
}

fn apply_bias_shift(
    g: &mut Graph,
    n: NodeId,
    kind: LayerKind,
    shift: &[f32],
) -> Result<Option<String>, QuantError> {
    if shift.iter().all(|&x| x == 0.0) {
        return Ok(None);
    }
    if shift.iter().any(|x| !x.is_finite()) {
        return Ok(Some(format!(
            "layer '{}': non-finite bias correction skipped",
            g.node(n).name
        )));
    }
    let name = g.node(n).name.clone();
    let c = shift.len();
    let mk = |v: Vec<f32>, shape: &[usize]| {
        Tensor::from_f32(shape, v).map_err(|e| QuantError::Invalid(e.to_string()))
    };
    match kind {
        LayerKind::Conv | LayerKind::ConvTranspose => {
            let b = match g.node_input(n, 2) {
                Some(v) => match g.const_value(v) {
                    Some(t) if t.len() == c => t
                        .as_f32()
                        .map_err(|e| QuantError::Invalid(e.to_string()))?
                        .to_vec(),
                    _ => {
                        return Ok(Some(format!(
                            "layer '{name}': bias is not a constant [C]; no bias correction"
                        )))
                    }
                },
                None => vec![0.0; c],
            };
            let nb: Vec<f32> = b.iter().zip(shift).map(|(a, s)| a + s).collect();
            let v = g.add_const(format!("{name}__bias"), mk(nb, &[c])?);
            g.set_node_input(n, 2, Some(v));
        }
        LayerKind::Gemm { .. } => {
            let Op::Gemm { beta, .. } = g.node(n).op else {
                return Ok(None);
            };
            match g.node_input(n, 2) {
                None => {
                    if beta == 0.0 {
                        return Ok(Some(format!(
                            "layer '{name}': Gemm beta is 0; no bias correction"
                        )));
                    }
                    let v = g.add_const(
                        format!("{name}__bias"),
                        mk(shift.iter().map(|s| s / beta).collect(), &[c])?,
                    );
                    g.set_node_input(n, 2, Some(v));
                }
                Some(v) => {
                    let Some(t) = g.const_value(v).cloned() else {
                        return Ok(Some(format!(
                            "layer '{name}': Gemm C is not constant; no bias correction"
                        )));
                    };
                    let Ok(cv) = t.as_f32() else { return Ok(None) };
                    if beta == 0.0 {
                        return Ok(Some(format!(
                            "layer '{name}': Gemm beta is 0; no bias correction"
                        )));
                    }
                    let (shape, nb): (Vec<usize>, Vec<f32>) = if t.len() == 1 {
                        (vec![c], shift.iter().map(|s| cv[0] + s / beta).collect())
                    } else if t.shape().last() == Some(&c) {
                        (
                            t.shape().to_vec(),
                            cv.iter()
                                .enumerate()
                                .map(|(i, x)| x + shift[i % c] / beta)
                                .collect(),
                        )
                    } else {
                        return Ok(Some(format!(
                            "layer '{name}': Gemm C shape {:?} not per-column; no bias correction",
                            t.shape()
                        )));
                    };
                    let v = g.add_const(format!("{name}__bias"), mk(nb, &shape)?);
                    g.set_node_input(n, 2, Some(v));
                }
            }
        }
        LayerKind::MatMul => {
            // y' = MatMul(...) + shift, as a new Add that takes over the output's name.
            let y = ValueRef::first(n);
            let out = g.output(y).clone();
            let users = g.users(y);
            let s = g.add_const(format!("{name}__bias"), mk(shift.to_vec(), &[c])?);
            let add = g.add_node(
                format!("{name}__bias_add"),
                Op::Binary(BinaryOp::Add),
                &[Some(y), Some(s)],
                vec![out.clone()],
            );
            g.output_mut(y).name = format!("{}__pre_bias", out.name);
            for (u, slot) in users {
                g.set_node_input(u, slot, Some(ValueRef::first(add)));
            }
            let outs: Vec<ValueRef> = g
                .outputs()
                .iter()
                .map(|&o| if o == y { ValueRef::first(add) } else { o })
                .collect();
            g.set_outputs(outs);
        }
    }
    Ok(None)
}

/// Runs `reference` and `model` on `data` and accumulates, per value name in `names` present in
/// both (same shape), Σref² and Σ(ref−x)².
pub fn compare_values(
    reference: &Graph,
    model: &Graph,
    data: &dyn SampleSource,
    names: &[String],
    batch: usize,
    progress: bool,
) -> Result<HashMap<String, (f64, f64)>, QuantError> {
    let by_name = |g: &Graph| -> HashMap<ValueRef, String> {
        let want: HashSet<&String> = names.iter().collect();
        let mut m = HashMap::new();
        for n in g.node_ids() {
            for (k, o) in g.node(n).outputs.iter().enumerate() {
                if want.contains(&o.name) {
                    m.insert(ValueRef { node: n, output: k }, o.name.clone());
                }
            }
        }
        m
    };
    let (rn, mn) = (by_name(reference), by_name(model));
    type Acc = BTreeMap<String, (f64, f64)>;
    let acc: Acc = for_batches(
        data,
        batch,
        "compare",
        progress,
        Acc::new,
        |acc: &mut Acc, inputs, first, _k| {
            let mut stash: HashMap<String, Tensor> = HashMap::new();
            lpc_ref::run_observed(reference, inputs, |v, t| {
                if let Some(name) = rn.get(&v) {
                    if t.as_f32().is_ok() {
                        stash.insert(name.clone(), t.clone());
                    }
                }
            })
            .map_err(run_err(first))?;
            lpc_ref::run_observed(model, inputs, |v, t| {
                if let (Some(name), Ok(x)) = (mn.get(&v), t.as_f32()) {
                    if let Some(r) = stash.get(name) {
                        if r.shape() == t.shape() {
                            let r = r.as_f32().expect("checked");
                            let e = acc.entry(name.clone()).or_default();
                            for (a, b) in r.iter().zip(x) {
                                e.0 += (*a as f64) * (*a as f64);
                                e.1 += ((a - b) as f64) * ((a - b) as f64);
                            }
                        }
                    }
                }
            })
            .map_err(run_err(first))?;
            Ok(())
        },
        |a, b| {
            for (k, (s, n)) in b {
                let e = a.entry(k).or_default();
                e.0 += s;
                e.1 += n;
            }
        },
    )?;
    Ok(acc.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_layers_are_the_squeeze_excitation_convs() {
        // x → conv a → [GAP → conv se1 → relu → conv se2 → hard_sigmoid] → mul → conv b;
        // a 1-pixel conv c feeding an output (a classifier head) is no gate.
        let g = lpc_ir::text::parse(
            r#"graph @se(%x: f32[1,4,6,6]) -> (%y, %z) {
  %w = const f32[4,4,1,1] [1,0,0,0, 0,1,0,0, 0,0,1,0, 0,0,0,1]
  %w1 = const f32[2,4,1,1] [1,1,1,1, 1,1,1,1]
  %w2 = const f32[4,2,1,1] [1,1, 1,1, 1,1, 1,1]
  %a = conv(%x, %w) {kernel=[1,1]} : f32[1,4,6,6] @a
  %p = global_average_pool(%a) : f32[1,4,1,1]
  %s1 = conv(%p, %w1) {kernel=[1,1]} : f32[1,2,1,1] @se1
  %r = relu(%s1) : f32[1,2,1,1]
  %s2 = conv(%r, %w2) {kernel=[1,1]} : f32[1,4,1,1] @se2
  %h = hard_sigmoid(%s2) {alpha=0.16666667, beta=0.5} : f32[1,4,1,1]
  %m = mul(%a, %h) : f32[1,4,6,6]
  %y = conv(%m, %w) {kernel=[1,1]} : f32[1,4,6,6] @b
  %z = conv(%p, %w) {kernel=[1,1]} : f32[1,4,1,1] @c
  return %y, %z
}"#,
        )
        .unwrap();
        let mut names: Vec<&str> = gate_layers(&g)
            .into_iter()
            .map(|n| g.node(n).name.as_str())
            .collect();
        names.sort();
        assert_eq!(names, ["se1", "se2"]);
    }

    /// Mean over `data` of the first output, quantized minus FP32, for one bias correction.
    fn output_mean_error(cfg: &Config, data: &lpc_data::InMemory) -> (f64, Quantized) {
        // x = [a, b] with b = 1.4·a + d: conv1 computes y = 0.7a − 0.5b = −0.5d, a tiny value
        // the coarse input grid (one outlier widens the ranges) cannot resolve. Its quantization
        // error is zero-mean after FastBiasCorrection, but ReLU turns it into a positive mean
        // shift of conv2's input, which conv2's own FastBiasCorrection (on FP32 inputs, where
        // ReLU(y) ≈ 0) never sees.
        let g = lpc_ir::text::parse(
            r#"graph @two(%x: f32[1,2,4,4]) -> (%z) {
  %w1 = const f32[1,2,1,1] [0.7, -0.5]
  %w2 = const f32[1,1,1,1] [1.0]
  %y = conv(%x, %w1) {kernel=[1,1]} : f32[1,1,4,4] @conv1
  %r = relu(%y) : f32[1,1,4,4]
  %z = conv(%r, %w2) {kernel=[1,1]} : f32[1,1,4,4] @conv2
  return %z
}"#,
        )
        .unwrap();
        let q = quantize(&g, data, cfg).unwrap();
        let mut err = 0f64;
        let mut count = 0usize;
        for x in &data.0 {
            let a = lpc_ref::run(&q.reference, x).unwrap();
            let b = lpc_ref::run(&q.graph, x).unwrap();
            for (p, r) in b[0].as_f32().unwrap().iter().zip(a[0].as_f32().unwrap()) {
                err += (p - r) as f64;
                count += 1;
            }
        }
        (err / count as f64, q)
    }

    #[test]
    fn sequential_bias_correction_removes_upstream_mean_shift() {
        let samples: Vec<Vec<Tensor>> = (0..40)
            .map(|s| {
                let a: Vec<f32> = (0..16)
                    .map(|i| 0.4 * ((s * 16 + i) as f32 * 1.37).sin())
                    .collect();
                let d: Vec<f32> = (0..16)
                    .map(|i| 0.01 * ((s * 16 + i) as f32 * 0.71 + 0.3).cos())
                    .collect();
                let mut x = a.clone();
                x.extend(a.iter().zip(&d).map(|(a, d)| 1.4 * a + d));
                if s == 0 {
                    // One outlier (y = 30): both quantizers get coarse grids, without clipping.
                    x[0] = 0.0;
                    x[16] = -60.0;
                }
                vec![Tensor::from_f32(&[1, 2, 4, 4], x).unwrap()]
            })
            .collect();
        let data = lpc_data::InMemory(samples);
        let base = Config {
            estimator: Estimator::MinMax,
            bias_samples: 40,
            sequential_samples: 40,
            report_samples: 0,
            bias_correction_mode: BiasCorrectionMode::Fast,
            ..Config::default()
        };
        let (off, _) = output_mean_error(
            &Config {
                bias_correction: false,
                ..base.clone()
            },
            &data,
        );
        let (fast, qf) = output_mean_error(&base, &data);
        let (seq, qs) = output_mean_error(
            &Config {
                bias_correction_mode: BiasCorrectionMode::Sequential,
                ..base.clone()
            },
            &data,
        );
        eprintln!("mean output error: off {off:.3e}, fast {fast:.3e}, sequential {seq:.3e}");
        assert_eq!(qf.report.bias_correction_mode, "fast");
        assert_eq!(qs.report.bias_correction_mode, "sequential");
        // The setup does what it says: fast correction leaves a clear mean shift...
        assert!(fast.abs() > 2e-3, "fast {fast}");
        // ...which sequential correction removes (down to the accumulator-grid bias rounding).
        assert!(
            seq.abs() < fast.abs() / 20.0,
            "sequential {seq} vs fast {fast}"
        );
        // conv2 got a shift (largest |shift|) of about the mean error fast correction leaves.
        let shift = |q: &Quantized, n: &str| {
            q.report
                .layers
                .iter()
                .find(|l| l.name == n)
                .unwrap()
                .bias_shift
        };
        assert!(shift(&qs, "conv2").unwrap() as f64 > fast.abs() / 2.0);
    }

    #[test]
    fn sequential_bias_correction_over_its_memory_limit_falls_back_to_fast() {
        let samples: Vec<Vec<Tensor>> = (0..8)
            .map(|s| {
                let x = (0..32)
                    .map(|i| ((s * 32 + i) as f32 * 0.37).sin())
                    .collect();
                vec![Tensor::from_f32(&[1, 2, 4, 4], x).unwrap()]
            })
            .collect();
        let data = lpc_data::InMemory(samples);
        let g = lpc_ir::text::parse(
            r#"graph @one(%x: f32[1,2,4,4]) -> (%y) {
  %w = const f32[3,2,1,1] [0.7, -0.5, 0.2, 0.1, -0.3, 0.9]
  %y = conv(%x, %w) {kernel=[1,1]} : f32[1,3,4,4] @conv
  return %y
}"#,
        )
        .unwrap();
        let cfg = Config {
            report_samples: 0,
            sequential_memory: 100, // bytes: the 8 inputs alone are 1 KiB
            ..Config::default()
        };
        let q = quantize(&g, &data, &cfg).unwrap();
        assert_eq!(q.report.bias_correction_mode, "fast");
        assert!(
            q.report
                .warnings
                .iter()
                .any(|w| w.contains("sequential bias correction failed")
                    && w.contains("--bias-samples")),
            "{:?}",
            q.report.warnings
        );
        let q = quantize(
            &g,
            &data,
            &Config {
                sequential_memory: 0,
                ..cfg
            },
        )
        .unwrap();
        assert_eq!(q.report.bias_correction_mode, "sequential");
    }

    /// `tap_sums` as it was, one row's running sums at a time: the rows-together version must
    /// give bit-identical sums (the bias shifts, and so the quantized model, depend on them).
    fn tap_sums_by_row(
        x: &[f32],
        dims: [usize; 4],
        taps: &[Vec<Vec<Option<usize>>>],
        t: &mut [f64],
    ) {
        let [n, c, h, w] = dims;
        let (kh, kw) = (taps[0].len(), taps[1].len());
        let cols: Vec<Vec<usize>> = taps[1]
            .iter()
            .map(|k| k.iter().flatten().copied().collect())
            .collect();
        let prog: Vec<Option<(usize, usize, usize)>> = cols
            .iter()
            .map(|cs| {
                let (&a, &b) = (cs.first()?, cs.last()?);
                let s = if cs.len() > 1 { cs[1] - a } else { 1 };
                let ok = s > 0 && cs.windows(2).all(|p| p[1] == p[0] + s);
                ok.then_some((a, b, s))
            })
            .collect();
        let mut rows = vec![vec![0f64; h]; kw];
        for (i, p) in x.chunks(h * w).take(n * c).enumerate() {
            for iy in 0..h {
                let line = &p[iy * w..(iy + 1) * w];
                for (kx, cs) in cols.iter().enumerate() {
                    rows[kx][iy] = match prog[kx] {
                        Some((a, b, s)) => {
                            let mut q = vec![0f64; w];
                            for ix in 0..w {
                                q[ix] = line[ix] as f64 + if ix >= s { q[ix - s] } else { 0.0 };
                            }
                            q[b] - if a >= s { q[a - s] } else { 0.0 }
                        }
                        None => cs.iter().map(|&ix| line[ix] as f64).sum(),
                    };
                }
            }
            for (kx, rows) in rows.iter().enumerate() {
                for (ky, tk) in taps[0].iter().enumerate() {
                    let s: f64 = tk.iter().flatten().map(|&iy| rows[iy]).sum();
                    t[((i % c) * kh + ky) * kw + kx] += s;
                }
            }
        }
    }

    #[test]
    fn tap_sums_match_row_by_row() {
        // Heights that are and are not multiples of ROWS, strides 1-3, dilation, padding,
        // values of very different magnitudes (so that summation order would show).
        for (h, w, k, stride, dil, pad) in [
            (7, 9, 3, 1, 1, 1),
            (8, 8, 3, 2, 1, 1),
            (5, 11, 5, 1, 2, 2),
            (9, 6, 1, 1, 1, 0),
            (10, 13, 3, 3, 1, 0),
            (1, 4, 3, 1, 1, 1),
        ] {
            let (n, c) = (2, 3);
            let x: Vec<f32> = (0..n * c * h * w)
                .map(|i| (i as f32 * 0.7).sin() * 10f32.powi((i % 9) as i32 - 4))
                .collect();
            let geom = lpc_ref::geom::geometry(
                &[h, w],
                &[k, k],
                &[stride, stride],
                &[dil, dil],
                &[pad, pad, pad, pad],
                lpc_ir::AutoPad::NotSet,
                false,
            )
            .unwrap();
            let taps = geom.taps();
            let mut got = vec![0f64; c * k * k];
            let mut want = got.clone();
            for _ in 0..2 {
                tap_sums(&x, [n, c, h, w], &taps, &mut got);
                tap_sums_by_row(&x, [n, c, h, w], &taps, &mut want);
            }
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&got),
                bits(&want),
                "{h}x{w} k{k} s{stride} d{dil} p{pad}"
            );
        }
    }
}
