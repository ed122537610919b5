//! `lpc quantize`: post-training quantization to QDQ ONNX (.onnx) or the FakeQuantize graph
//! (.lir), optionally searching for the layers to keep in FP32 under an accuracy budget.
//!
//! [`quantize_model`] is the verb without its files: the CLI opens `--calib`/`--data`/`--labels`
//! ([`QuantizeData::open`]) and writes `-o`/`--report`; the Python package (`crates/lpc-py`)
//! hands it arrays and keeps the result in memory.

use crate::cmd::budget_args::BudgetArgs;
use crate::cmd::data_args::{check_label_count, name_labels, open_samples, read_labels, Labels};
use crate::cmd::quant_args::{config, files, open_calib, report_json, write_report, QuantArgs};
use crate::outputs::{write_model, Format};
use anyhow::{bail, Result};
use lpc_data::{LoadOptions, SampleSource, Samples};
use lpc_ir::Graph;
use lpc_quant::{quantize_within_budget, BudgetJob, Json, SearchConfig, SearchOptions, Target};
use std::path::{Path, PathBuf};

/// `lpc quantize MODEL --calib PATH -o OUT.onnx|OUT.lir`.
#[derive(clap::Args, Clone, Debug)]
pub struct QuantizeArgs {
    #[command(flatten)]
    /// What to quantize and how.
    pub opts: QuantizeOptions,
    /// Output: .onnx (QDQ) or .lir (FakeQuantize graph); repeat to write both.
    #[arg(short, long, required = true)]
    pub output: Vec<PathBuf>,
}

/// The settings of `lpc quantize` other than its outputs.
#[derive(clap::Args, Clone, Debug)]
pub struct QuantizeOptions {
    #[command(flatten)]
    /// Settings.
    pub q: QuantArgs,
    /// static: INT8 activations with ranges fixed from --calib (FakeQuantize / QDQ); dynamic:
    /// int8 weights of MatMul/Gemm, activations quantized per tensor at run time
    /// (DynamicQuantizeLinear + MatMulInteger; --calib optional: it finds the outlier
    /// channels that go through float; --data measures the result).
    #[arg(long, value_enum, default_value_t = Mode::Static)]
    pub mode: Mode,
    #[command(flatten)]
    /// Accuracy-aware search (off unless --max-drop or --min-sqnr is given).
    pub budget: BudgetArgs,
}

/// What `lpc quantize` makes of activations.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Ranges fixed from calibration data.
    Static,
    /// Quantized at run time.
    Dynamic,
}

/// The data a quantization reads, opened for the model.
pub struct QuantizeData {
    /// Calibration samples (`--calib`; optional with `--mode dynamic`).
    pub calib: Option<Samples>,
    /// Evaluation samples (`--data`).
    pub eval: Option<Samples>,
    /// Their labels (`--labels`).
    pub labels: Option<Labels>,
}

impl QuantizeData {
    /// Opens the files `o` names for `g`: `--calib`, `--data` (with [`eval_options`]) and
    /// `--labels`; those not given are `None` ([`quantize_model`] says which it needs).
    pub fn open(o: &QuantizeOptions, g: &Graph) -> Result<QuantizeData> {
        let calib = match o.q.calib.is_empty() {
            true => None,
            false => Some(open_calib(&o.q, g)?),
        };
        let eval = match &o.budget.eval {
            Some(p) => Some(open_samples(
                &[p.to_path_buf()],
                g,
                &eval_options(o)?,
                "evaluation data (--data)",
                "--eval-subset",
            )?),
            None => None,
        };
        let labels = match &o.budget.labels {
            Some(p) => Some(Labels {
                name: p.clone(),
                classes: read_labels(p)?,
            }),
            None => None,
        };
        Ok(QuantizeData {
            calib,
            eval,
            labels,
        })
    }
}

/// How the evaluation set (`--data`) is read: the data options with `--eval-subset`,
/// `--eval-seed` and `--eval-crops` in place of the calibration ones.
pub fn eval_options(o: &QuantizeOptions) -> Result<LoadOptions> {
    let b = &o.budget;
    let mut opts = o.q.data.options(false)?;
    opts.subset = (b.eval_subset > 0).then_some(b.eval_subset);
    opts.seed = b.eval_seed;
    if let Some(c) = b.eval_crops {
        opts.image.crops_per_image = c;
    }
    Ok(opts)
}

/// What a quantization made.
pub struct Quantization {
    /// The quantized graph (FakeQuantize; with a budget, the best model found).
    pub graph: Graph,
    /// The `--report` JSON.
    pub report: Json,
    /// The summary up to where the CLI names its outputs (`... in 0.52 s`).
    pub summary: String,
    /// The summary lines after it (SQNR per output, notes).
    pub details: String,
    /// With a budget that no model met: what was missed (the CLI's error).
    pub unreached: Option<String>,
}

/// The checks of `o` that need no data: a budget with `--mode dynamic`, the budget flags, and
/// `eval`/`labels` (given or not) without what they go with.
pub fn check_options(o: &QuantizeOptions, eval: bool, labels: bool) -> Result<Option<Target>> {
    let b = &o.budget;
    if o.mode == Mode::Dynamic {
        if b.max_drop.is_some() || b.min_sqnr.is_some() {
            bail!("--max-drop/--min-sqnr search over static quantizers; with --mode dynamic, keep layers in float with --ignore");
        }
        if labels && !eval {
            bail!("--labels go with --data (the evaluation set they label)");
        }
        return Ok(None);
    }
    b.target_for(eval, labels)
}

/// Quantizes `g` on `data` as `lpc quantize` does with options `o`, writing nothing; `log`
/// gets the budget search's steps as they are measured.
pub fn quantize_model(
    o: &QuantizeOptions,
    g: &Graph,
    data: &QuantizeData,
    progress: bool,
    log: &mut dyn FnMut(&str),
) -> Result<Quantization> {
    let target = check_options(o, data.eval.is_some(), data.labels.is_some())?;
    if let Some(l) = &data.labels {
        if o.budget.eval_subset > 0 {
            bail!("--labels cannot be combined with --eval-subset (the subset is shuffled)");
        }
        // They label the evaluation set: --data, else (a budget without it) the calibration data.
        if let Some(e) = data.eval.as_ref().or(data.calib.as_ref()) {
            check_label_count(&l.name, &l.classes, e.len())?;
        }
    }
    if o.mode == Mode::Dynamic {
        return quantize_dynamic(o, g, data, progress);
    }
    let Some(calib) = &data.calib else {
        bail!("--calib DATA is required: static quantization fixes activation ranges from calibration data (quantize --mode dynamic needs none)");
    };
    if let Some(t) = target {
        return quantize_budget(o, g, calib, data, t, progress, log);
    }
    let out = lpc_quant::quantize(g, calib, &config(&o.q, progress)?)?;
    let r = &out.report;
    let summary = format!(
        "quantized {} layers, {} activation quantizers ({} samples, preset {}, estimator {}) in {:.2} s",
        r.layers.len(),
        r.ranges.len(),
        r.samples,
        r.preset,
        r.estimator,
        total_time(r)
    );
    let mut details = String::new();
    for (n, d) in &r.outputs {
        details += &format!("output {n}: SQNR {d:.2} dB vs FP32 on the calibration data\n");
    }
    Ok(finished(out, summary, details))
}

/// A quantization without a budget: its report, graph and text, the quantizer's warnings
/// appended as notes to `details`.
fn finished(out: lpc_quant::Quantized, summary: String, mut details: String) -> Quantization {
    for w in &out.report.warnings {
        details += &format!("note: {w}\n");
    }
    Quantization {
        report: report_json(&out, None),
        graph: out.graph,
        summary,
        details,
        unreached: None,
    }
}

/// The quantizer's total time from its report.
fn total_time(r: &lpc_quant::Report) -> f64 {
    r.times.iter().find(|t| t.0 == "total").map_or(0.0, |t| t.1)
}

/// `--mode dynamic`: rewrite, and measure on the evaluation data when given.
fn quantize_dynamic(
    o: &QuantizeOptions,
    g: &Graph,
    data: &QuantizeData,
    progress: bool,
) -> Result<Quantization> {
    let cfg = config(&o.q, progress)?;
    let calib = data.calib.as_ref().map(|c| c as &dyn SampleSource);
    let out = lpc_quant::quantize_dynamic(g, calib, &cfg)?;
    let r = &out.report;
    let summary = format!(
        "dynamic INT8: {} MatMul/Gemm layers with int8 weights, activations quantized at run time, in {:.2} s",
        r.layers.len(),
        total_time(r)
    );
    let mut details = String::new();
    if let Some(e) = &data.eval {
        let labels = data.labels.as_ref().map(|l| l.classes.as_slice());
        let acc = lpc_quant::evaluate(
            &out.graph,
            Some(&out.reference),
            e,
            labels,
            false,
            cfg.batch,
            progress,
        )?;
        details += &dynamic_summary(&acc);
    }
    Ok(finished(out, summary, details))
}

/// What `--data` measured for a dynamic model: top-1 agreement with FP32 (flips named), labels'
/// top-1, and each output's SQNR.
fn dynamic_summary(acc: &lpc_quant::Accuracy) -> String {
    let mut s = String::new();
    if let Some(ag) = acc.agreement {
        let flips = acc.flips.unwrap_or(0);
        s += &format!(
            "top-1 agreement with FP32: {ag:.4} on {} samples{}\n",
            acc.samples,
            if flips > 0 {
                format!(" — {flips} samples change their top-1 class")
            } else {
                String::new()
            }
        );
    }
    if let (Some(t), Some(rt)) = (acc.top1, acc.reference_top1) {
        s += &format!("top-1 against labels: {t:.4} (FP32 {rt:.4})\n");
    }
    for o in &acc.outputs {
        s += &format!(
            "output {}: SQNR {:.2} dB, cosine {:.5} vs FP32\n",
            o.name, o.sqnr_db, o.cosine
        );
    }
    s
}

/// With a budget: quantize, search, return the best model (an unreachable budget says so in
/// `unreached`). Without evaluation data the budget is measured on the calibration data.
fn quantize_budget(
    o: &QuantizeOptions,
    g: &Graph,
    calib: &Samples,
    data: &QuantizeData,
    target: Target,
    progress: bool,
    log: &mut dyn FnMut(&str),
) -> Result<Quantization> {
    let eval = match &data.eval {
        Some(e) => e,
        None => {
            log("note: no --data: the budget is measured on the calibration data");
            calib
        }
    };
    let t = std::time::Instant::now();
    log(&format!(
        "quantizing; searching for {} on {} samples",
        target.describe(),
        eval.len()
    ));
    let cfg = SearchConfig {
        target,
        rank_samples: o.budget.rank_samples,
        min_int8_macs: o.budget.min_int8_macs,
        batch: o.q.batch,
        progress,
    };
    let job = BudgetJob {
        graph: g,
        calib,
        config: &config(&o.q, progress)?,
        eval,
        labels: data.labels.as_ref().map(|l| l.classes.as_slice()),
    };
    let labels_file = data.labels.as_ref().map(|l| l.name.as_path());
    let (q, mut out) = quantize_within_budget(&job, &cfg, &SearchOptions::default(), |l| {
        log(&format!("  {l}"))
    })
    .map_err(|e| name_labels(e, labels_file))?;
    out.times.push(("wall".into(), t.elapsed().as_secs_f64()));
    let summary = format!(
        "{}wall time (quantize + search): {:.1} s",
        out.table(),
        t.elapsed().as_secs_f64()
    );
    Ok(Quantization {
        report: report_json(&q, Some(out.to_json())),
        unreached: (!out.reached).then(|| out.message.clone()),
        graph: out.graph,
        summary,
        details: String::new(),
    })
}

/// Output paths for messages: `a.onnx, a.lir`.
fn shown(paths: &[PathBuf]) -> String {
    let v: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    v.join(", ")
}

/// The formats quantize writes.
const FORMATS: &[Format] = &[Format::Onnx, Format::Lir];

/// Checks every output path before any work is done: its extension, and that it overwrites
/// no input (the model, --calib, --data, --labels) and no other output.
fn check_outputs(a: &QuantizeArgs) -> Result<()> {
    for p in &a.output {
        Format::of("-o", p, FORMATS)?;
    }
    let o = &a.opts;
    let mut files = files(&o.q)?;
    for p in o.budget.eval.iter() {
        files.input_file("--data", p);
    }
    for p in o.budget.labels.iter() {
        files.input_file("--labels", p);
    }
    a.output.iter().try_for_each(|p| files.output("-o", p))
}

/// Writes a quantized graph to `path`, in the format its extension names (`flag` names it in
/// errors): QDQ ONNX or `.lir`.
pub fn write_quantized(g: &Graph, flag: &str, path: &Path) -> Result<()> {
    write_model(g, path, Format::of(flag, path, FORMATS)?)
}

/// `lpc quantize`: returns a one-paragraph summary for the terminal. With a budget the
/// search's steps go to stdout as they are measured; an unreachable budget writes the best
/// model found and returns an error (exit status 1) saying so.
pub fn run(a: &QuantizeArgs, progress: bool) -> Result<String> {
    check_outputs(a)?;
    let o = &a.opts;
    check_options(o, o.budget.eval.is_some(), o.budget.labels.is_some())?;
    let g = lpc_load::load_model(&o.q.model)?;
    let data = QuantizeData::open(o, &g)?;
    let out = quantize_model(o, &g, &data, progress, &mut |l| println!("{l}"))?;
    for p in &a.output {
        write_quantized(&out.graph, "-o", p)?;
    }
    write_report(&o.q, &out.report)?;
    let text = format!("{} → {}\n{}", out.summary, shown(&a.output), out.details);
    match out.unreached {
        None => Ok(text),
        Some(m) => {
            print!("{text}");
            bail!(
                "{m}; the best model found was written to {}",
                shown(&a.output)
            )
        }
    }
}
