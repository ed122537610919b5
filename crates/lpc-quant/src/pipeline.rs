//! The quantization pipeline: fold, place, collect statistics, choose ranges, correct biases,
//! insert FakeQuantize, and measure the result per layer. [`quantize`] calls one function per
//! pass; the passes themselves live in their own modules.

use crate::batch::for_batches;
use crate::bias::fast::bias_shifts;
use crate::bias::sequential::sequential_shifts;
use crate::bias::shift::apply_bias_shift;
use crate::bias::snap::snap_biases;
use crate::bias::Spread;
use crate::bn_fold::fold_batchnorm;
use crate::compare::{compare_values, sqnr_db};
use crate::config::{BiasCorrectionMode, Config};
use crate::error::run_err;
use crate::float_layers::{gate_layers, sigmoid_output_layers};
use crate::fq::{ActQuant, WeightQuant};
use crate::insert::{insert_fake_quantize, quantizers, ActPoints, WeightPoints};
use crate::outliers::split_outliers;
use crate::placement::{place, resolve_ignore, Placement};
use crate::ranges::{channel_ranges, depthwise_only, group_range, split_wide_concats};
use crate::report::{LayerInfo, RangeInfo, Report};
use crate::stats::TensorStats;
use crate::QuantError;
use lpc_data::{InMemory, InputSpec, SampleSource};
use lpc_ir::{Graph, NodeId, Op, ValueRef};
use std::collections::HashMap;
use std::time::Instant;

/// The result of [`quantize`].
pub struct Quantized {
    /// The FakeQuantize graph (BatchNorm folded, biases corrected).
    pub graph: Graph,
    /// The FP32 reference after the same folding (for comparisons).
    pub reference: Graph,
    /// What was done.
    pub report: Report,
}

/// The FP32 graph quantization starts from: constants folded, BatchNorm folded into the
/// preceding convs (returns their names). The accuracy-aware search restores FP32 weights from
/// this graph, so `lpc accuracy --per-layer` prepares its reference the same way.
pub fn prepare(g: &mut Graph) -> Result<Vec<String>, QuantError> {
    lpc_ref::fold_constants(g).map_err(QuantError::ConstantFolding)?;
    fold_batchnorm(g)
}

/// Refuses a model that is already quantized (FakeQuantize, Q/DQ or integer ops): quantizing
/// it again would stack a second layer of quantizers on the first.
pub(crate) fn check_not_quantized(g: &Graph) -> Result<(), QuantError> {
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
        Some(first) => Err(QuantError::AlreadyQuantized {
            count: found.len(),
            node: first.name.clone(),
            op: first.op.name(),
        }),
    }
}

/// Largest calibration set (bytes) decoded once and kept in memory for all passes.
const CACHE_BYTES: usize = 1 << 30;

/// What every pass of [`quantize`] reads: the settings, the calibration data (decoded once
/// when it fits in memory) and the samples per interpreter run.
struct Pass<'a> {
    cfg: &'a Config,
    data: &'a dyn SampleSource,
    batch: usize,
}

/// The quantizers chosen: ranges per activation point and a quantizer per layer with constant
/// weights, and the same as the insertion points [`insert_fake_quantize`] takes.
struct Quantizers {
    act_q: Vec<Vec<ActQuant>>,
    wq: Vec<Option<WeightQuant>>,
    acts: ActPoints,
    weights: WeightPoints,
}

/// Quantizes `model` with calibration data `data`.
pub fn quantize(
    model: &Graph,
    data: &dyn SampleSource,
    cfg: &Config,
) -> Result<Quantized, QuantError> {
    let t_start = Instant::now();
    let mut report = new_report(cfg, data.len());
    check_not_quantized(model)?;
    if data.is_empty() {
        return Err(QuantError::NoSamples {
            what: "calibration",
        });
    }
    let cached = decode_once(data)?;
    let data: &dyn SampleSource = match &cached {
        Some(c) => c,
        None => data,
    };
    let mut g = model.clone();
    report.folded_batchnorm = prepare(&mut g)?;
    let batchable = InputSpec::of(&g).iter().all(|s| s.batchable());
    let batch = if batchable { cfg.batch } else { 1 };
    let pass = Pass { cfg, data, batch };
    let mut plan = place_quantizers(&pass, &mut g, &mut report)?;
    report
        .times
        .push(("prepare".into(), t_start.elapsed().as_secs_f64()));

    let mut stats = statistics(&pass, &g, &plan, &mut report)?;
    // Concat joins of very different ranges keep their own scales and stay in float.
    split_wide_concats(&g, &mut plan, &mut stats, &mut report.warnings);
    let act_q = activation_ranges(&pass, &g, &plan, &stats, &mut report);
    let wq = weight_quantizers(&g, &plan)?;
    let reference = g.clone();
    let (acts, weights) = quantizers(&plan, &act_q, &wq);
    let qz = Quantizers {
        act_q,
        wq,
        acts,
        weights,
    };
    let shifts = correct_biases(&pass, &mut g, &plan, &qz, &mut report)?;

    // FakeQuantize insertion.
    insert_fake_quantize(&mut g, &qz.acts, &qz.weights)?;
    let layer_nodes: Vec<NodeId> = plan.layers.iter().map(|l| l.node).collect();
    snap_biases(&mut g, &layer_nodes)?;

    per_layer_report(&pass, &reference, &g, &plan, &qz.wq, &shifts, &mut report)?;
    report
        .times
        .push(("total".into(), t_start.elapsed().as_secs_f64()));
    Ok(Quantized {
        graph: g,
        reference,
        report,
    })
}

/// The report before any pass: the settings it runs with.
fn new_report(cfg: &Config, samples: usize) -> Report {
    Report {
        preset: cfg.preset.to_string(),
        estimator: cfg.estimator.to_string(),
        samples,
        bias_correction: cfg.bias_correction,
        bias_correction_mode: if cfg.bias_correction {
            cfg.bias_correction_mode.to_string()
        } else {
            "off".into()
        },
        ..Default::default()
    }
}

/// Decoded images/files are read by every pass: decodes them once when they fit in memory
/// ([`CACHE_BYTES`]). `None` when `data` is read as it is.
fn decode_once(data: &dyn SampleSource) -> Result<Option<InMemory>, QuantError> {
    if !data.decodes() {
        return Ok(None);
    }
    let first = data.get(0)?;
    let bytes: usize = first.iter().map(|t| t.len() * t.dtype().size()).sum();
    if bytes.saturating_mul(data.len()) > CACHE_BYTES {
        return Ok(None);
    }
    use rayon::prelude::*;
    Ok(Some(InMemory(
        (0..data.len())
            .into_par_iter()
            .map(|i| data.get(i))
            .collect::<Result<Vec<_>, _>>()?,
    )))
}

/// Quantizer placement on the prepared graph: `--ignore`d layers and the layers kept in float
/// by rule (each reported with why) get none; outlier channels of matmul inputs are split off
/// first (`Config::split_outliers`, one pass over the data).
fn place_quantizers(
    pass: &Pass,
    g: &mut Graph,
    report: &mut Report,
) -> Result<Placement, QuantError> {
    let cfg = pass.cfg;
    let mut ignore = resolve_ignore(g, &cfg.ignore)?;
    report.ignored = ignore.iter().map(|&n| g.node(n).name.clone()).collect();
    // Layers kept in float by rule (each reported with why).
    type FloatRule = (bool, fn(&Graph) -> Vec<NodeId>, &'static str);
    let rules: [FloatRule; 2] = [
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
        for n in if on { layers(g) } else { vec![] } {
            if ignore.insert(n) {
                report
                    .warnings
                    .push(format!("layer '{}' {why}: kept in float", g.node(n).name));
            }
        }
    }
    if cfg.split_outliers {
        let t = Instant::now();
        let (float, notes) = split_outliers(g, pass.data, pass.batch, cfg.progress, &ignore)?;
        ignore.extend(float);
        report.warnings.extend(notes);
        report
            .times
            .push(("outliers".into(), t.elapsed().as_secs_f64()));
    }
    place(g, &ignore)
}

/// Pass 1: statistics of every activation point. Refuses values that took NaN/Inf.
fn statistics(
    pass: &Pass,
    g: &Graph,
    plan: &Placement,
    report: &mut Report,
) -> Result<Vec<TensorStats>, QuantError> {
    let t = Instant::now();
    let index: HashMap<ValueRef, usize> = plan
        .acts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.value, i))
        .collect();
    let n_acts = plan.acts.len();
    let stats = for_batches(
        pass.data,
        pass.batch,
        "calibrate",
        pass.cfg.progress,
        || vec![TensorStats::default(); n_acts],
        |st, inputs, first, k| {
            lpc_ref::run_observed(g, inputs, |v, t| {
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
            return Err(QuantError::NonFinite {
                value: g.value_name(a.value).to_string(),
                count: s.nonfinite,
            });
        }
    }
    report
        .times
        .push(("statistics".into(), t.elapsed().as_secs_f64()));
    Ok(stats)
}

/// Ranges per group (per channel for points read by depthwise convs alone), reported.
fn activation_ranges(
    pass: &Pass,
    g: &Graph,
    plan: &Placement,
    stats: &[TensorStats],
    report: &mut Report,
) -> Vec<Vec<ActQuant>> {
    let cfg = pass.cfg;
    let n_groups = plan.groups.len();
    let mut merged: Vec<TensorStats> = vec![TensorStats::default(); n_groups];
    for (a, s) in plan.acts.iter().zip(stats) {
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
            if alone && depthwise_only(g, a) && stats[i].channel_min.len() > 1 {
                act_q[i] =
                    channel_ranges(&stats[i], cfg, &mut report.warnings, g.value_name(a.value));
            }
        }
    }
    for ((a, s), q) in plan.acts.iter().zip(stats).zip(&act_q) {
        report.ranges.push(RangeInfo {
            value: g.value_name(a.value).to_string(),
            group: plan.groups[a.group].clone(),
            q: q[0],
            channels: q.len(),
            observed: [s.min, s.max, s.mean_min(), s.mean_max()],
            fallback: group_q[a.group].1.clone(),
        });
    }
    act_q
}

/// The per-channel weight quantizer of every layer with constant weights.
fn weight_quantizers(g: &Graph, plan: &Placement) -> Result<Vec<Option<WeightQuant>>, QuantError> {
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
    Ok(wq)
}

/// Pass 2: bias correction of `g` (the FP32 graph) per [`Config::bias_correction_mode`] for the
/// quantizers `qz`. Returns the shift of each layer. Sequential correction runs on a copy: any failure leaves `g` untouched and fast
/// correction runs instead, reported.
fn correct_biases(
    pass: &Pass,
    g: &mut Graph,
    plan: &Placement,
    qz: &Quantizers,
    report: &mut Report,
) -> Result<Vec<Option<Vec<f32>>>, QuantError> {
    let (cfg, data) = (pass.cfg, pass.data);
    let t = Instant::now();
    let mut shifts: Vec<Option<Vec<f32>>> = vec![None; plan.layers.len()];
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
                plan,
                &qz.acts,
                &qz.weights,
                &sub,
                &pass_run(pass),
                &mut notes,
            ) {
                Ok(s) => {
                    shifts = s;
                    *g = g2;
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
            shifts = bias_shifts(g, plan, &qz.act_q, &qz.wq, &sub, pass.batch, cfg.progress)?;
            for (l, s) in plan.layers.iter().zip(&shifts) {
                if let Some(s) = s {
                    if let Some(w) = apply_bias_shift(g, l.node, l.kind, s)? {
                        report.warnings.push(w);
                    }
                }
            }
        }
    }
    report
        .times
        .push(("bias_correction".into(), t.elapsed().as_secs_f64()));
    Ok(shifts)
}

/// How sequential bias correction runs: batch, progress bar, memory limit.
fn pass_run(pass: &Pass) -> crate::bias::sequential::Run {
    crate::bias::sequential::Run {
        batch: pass.batch,
        progress: pass.cfg.progress,
        memory: pass.cfg.sequential_memory,
    }
}

/// Pass 3: per-layer SQNR of `g` against FP32 (`reference`) on the first
/// [`Config::report_samples`] samples, and each layer's weight range (`wq`) and bias shift
/// (`shifts`), into the report.
fn per_layer_report(
    pass: &Pass,
    reference: &Graph,
    g: &Graph,
    plan: &Placement,
    wq: &[Option<WeightQuant>],
    shifts: &[Option<Vec<f32>>],
    report: &mut Report,
) -> Result<(), QuantError> {
    let (cfg, data) = (pass.cfg, pass.data);
    let t = Instant::now();
    let layer_names: Vec<String> = plan
        .layers
        .iter()
        .map(|l| reference.value_name(ValueRef::first(l.node)).to_string())
        .collect();
    let mut sq: HashMap<String, (f64, f64)> = HashMap::new();
    if cfg.report_samples > 0 {
        let sub = InMemory(
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
        sq = compare_values(reference, g, &sub, &names, pass.batch, cfg.progress)?;
    }
    for ((l, q), s) in plan.layers.iter().zip(wq).zip(shifts) {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Estimator;
    use lpc_ir::Tensor;

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

    /// A Concat whose inputs differ by more than 16x keeps them in float: the split leaves its
    /// shared group, and the groups of inputs read by the Concat alone, without quantizers, and
    /// nothing is said about the ranges of those (no "no finite values seen" for tensors that
    /// stay float). The quantized values still get their own ranges.
    #[test]
    fn float_kept_concat_inputs_get_no_range_notes() {
        let g = lpc_ir::text::parse(
            r#"graph @cat(%x: f32[1,2,4,4]) -> (%z) {
  %w1 = const f32[2,2,1,1] [0.5, -0.25, 0.125, 0.75]
  %w2 = const f32[2,2,1,1] [50.0, -25.0, 12.5, 75.0]
  %a = conv(%x, %w1) {kernel=[1,1]} : f32[1,2,4,4] @small
  %b = conv(%x, %w2) {kernel=[1,1]} : f32[1,2,4,4] @large
  %c = concat(%a, %b) {axis=1} : f32[1,4,4,4] @cat
  %w3 = const f32[1,4,1,1] [1.0, -1.0, 0.5, 0.25]
  %z = conv(%c, %w3) {kernel=[1,1]} : f32[1,1,4,4] @head
  return %z
}"#,
        )
        .unwrap();
        let data = lpc_data::InMemory(
            (0..4)
                .map(|s| {
                    let x = (0..32)
                        .map(|i| ((s * 32 + i) as f32 * 0.37).sin())
                        .collect();
                    vec![Tensor::from_f32(&[1, 2, 4, 4], x).unwrap()]
                })
                .collect(),
        );
        let cfg = Config {
            report_samples: 0,
            ..Config::default()
        };
        let q = quantize(&g, &data, &cfg).unwrap();
        let w = &q.report.warnings;
        assert!(w.iter().any(|w| w.contains("keep float")), "{w:?}");
        assert!(!w.iter().any(|w| w.contains("no finite values")), "{w:?}");
        let quantized: Vec<&str> = q.report.ranges.iter().map(|r| r.value.as_str()).collect();
        assert_eq!(quantized, ["x", "c"]);
        // Each range comes from its own value's statistics (not those of a dropped point).
        for r in &q.report.ranges {
            let (mut mn, mut mx) = (f32::INFINITY, f32::NEG_INFINITY);
            for x in &data.0 {
                lpc_ref::run_observed(&q.reference, x, |v, t| {
                    if q.reference.value_name(v) == r.value {
                        for &e in t.as_f32().unwrap() {
                            (mn, mx) = (mn.min(e), mx.max(e));
                        }
                    }
                })
                .unwrap();
            }
            assert_eq!([r.observed[0], r.observed[1]], [mn, mx], "{}", r.value);
        }
    }
}
