//! [`quantize_within_budget`]: quantization followed by the accuracy-aware search, and the
//! final pass that brings sequential bias correction back.

use super::evaluator::Evaluator;
use super::options::{SearchConfig, SearchOptions};
use super::outcome::{Outcome, Step};
use super::search::{search_from, SearchInput};
use crate::config::{BiasCorrectionMode, Config};
use crate::pipeline::{quantize, Quantized};
use crate::QuantError;
use lpc_data::SampleSource;
use lpc_ir::{Graph, Op};
use std::time::Instant;

/// What [`quantize_within_budget`] quantizes, and the data it calibrates and evaluates on.
#[derive(Clone, Copy)]
pub struct BudgetJob<'a> {
    /// The FP32 model.
    pub graph: &'a Graph,
    /// Calibration samples.
    pub calib: &'a dyn SampleSource,
    /// How to quantize.
    pub config: &'a Config,
    /// Evaluation samples the budget is measured on.
    pub eval: &'a dyn SampleSource,
    /// Labels of `eval` for top-1, when known.
    pub labels: Option<&'a [i64]>,
}

/// Quantizes `job.graph` on `job.calib` with `job.config` and searches for the smallest FP32
/// set within `cfg`'s budget on `job.eval` (`job.labels` for top-1): what `lpc quantize --max-drop/--min-sqnr` does.
/// With sequential bias correction (the default) the fully quantized model is measured first
/// and returned when it meets the budget; otherwise the search runs on a model with fast
/// corrections and [`sequential_pass`] follows (sequential corrections assume every upstream
/// layer quantized, so they cannot be searched over). Returns the quantization whose report
/// describes the returned graph, and the outcome.
pub fn quantize_within_budget(
    job: &BudgetJob,
    cfg: &SearchConfig,
    opts: &SearchOptions,
    mut log: impl FnMut(&str),
) -> Result<(Quantized, Outcome), QuantError> {
    let &BudgetJob {
        graph: g,
        calib,
        config: qcfg,
        eval,
        labels,
    } = job;
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
    let input = SearchInput {
        q: &q.graph,
        ranges: Some(&q.report.ranges),
        reference: &q.reference,
        ev: &ev,
        eval_data: eval,
    };
    let mut o = search_from(&input, cfg, opts, known, &mut log)?;
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
