//! `lpc quantize`: post-training quantization to QDQ ONNX (.onnx) or the FakeQuantize graph
//! (.lir), optionally searching for the layers to keep in FP32 under an accuracy budget.

use crate::cmd::budget_args::BudgetArgs;
use crate::cmd::data_args::{check_label_count, name_labels, open_data, open_samples, read_labels};
use crate::cmd::quant_args::{config, files, run_quantize, write_report, QuantArgs};
use crate::outputs::{write_model, Format};
use anyhow::{bail, Result};
use lpc_data::{SampleSource, Samples};
use lpc_ir::Graph;
use lpc_quant::{quantize_within_budget, BudgetJob, SearchConfig, SearchOptions, Target};
use std::path::{Path, PathBuf};

/// `lpc quantize MODEL --calib PATH -o OUT.onnx|OUT.lir`.
#[derive(clap::Args, Clone, Debug)]
pub struct QuantizeArgs {
    #[command(flatten)]
    /// Settings.
    pub q: QuantArgs,
    /// Output: .onnx (QDQ) or .lir (FakeQuantize graph); repeat to write both.
    #[arg(short, long, required = true)]
    pub output: Vec<PathBuf>,
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

/// `lpc quantize --mode dynamic`: rewrite, measure on `--data` when given, write.
fn quantize_dynamic_cmd(a: &QuantizeArgs, progress: bool) -> Result<String> {
    let b = &a.budget;
    if b.max_drop.is_some() || b.min_sqnr.is_some() {
        bail!("--max-drop/--min-sqnr search over static quantizers; with --mode dynamic, keep layers in float with --ignore");
    }
    let g = lpc_load::load_model(&a.q.model)?;
    let cfg = config(&a.q, progress)?;
    let calib = match a.q.calib.is_empty() {
        true => None,
        false => {
            let opts = a.q.data.options(true)?;
            Some(open_samples(
                &a.q.calib,
                &g,
                &opts,
                "calibration data",
                "--subset",
            )?)
        }
    };
    let out =
        lpc_quant::quantize_dynamic(&g, calib.as_ref().map(|c| c as &dyn SampleSource), &cfg)?;
    write_report(&a.q, &out, None)?;
    write_models(&out.graph, &a.output)?;
    let r = &out.report;
    let total = r.times.iter().find(|t| t.0 == "total").map_or(0.0, |t| t.1);
    let mut s = format!(
        "dynamic INT8: {} MatMul/Gemm layers with int8 weights, activations quantized at run time, in {total:.2} s → {}\n",
        r.layers.len(),
        shown(&a.output)
    );
    if b.labels.is_some() && b.eval.is_none() {
        bail!("--labels go with --data (the evaluation set they label)");
    }
    if let Some(p) = &b.eval {
        let data = open_eval(a, &g, p)?;
        let labels = eval_labels(a, data.len())?;
        let acc = lpc_quant::evaluate(
            &out.graph,
            Some(&out.reference),
            &data,
            labels.as_deref(),
            false,
            cfg.batch,
            progress,
        )?;
        s += &dynamic_summary(&acc);
    }
    for w in &r.warnings {
        s += &format!("note: {w}\n");
    }
    Ok(s)
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

/// The evaluation set `--data` (`--eval-subset`, `--eval-seed`, `--eval-crops` applied).
fn open_eval(a: &QuantizeArgs, g: &Graph, path: &Path) -> Result<Samples> {
    let b = &a.budget;
    let mut opts = a.q.data.options(false)?;
    opts.subset = (b.eval_subset > 0).then_some(b.eval_subset);
    opts.seed = b.eval_seed;
    if let Some(c) = b.eval_crops {
        opts.image.crops_per_image = c;
    }
    open_samples(
        &[path.to_path_buf()],
        g,
        &opts,
        "evaluation data (--data)",
        "--eval-subset",
    )
}

/// `--labels`, checked against the `samples` of the evaluation set they label.
fn eval_labels(a: &QuantizeArgs, samples: usize) -> Result<Option<Vec<i64>>> {
    let b = &a.budget;
    let labels = b.labels.as_deref().map(read_labels).transpose()?;
    if let (Some(p), Some(l)) = (&b.labels, &labels) {
        if b.eval_subset > 0 {
            bail!("--labels cannot be combined with --eval-subset (the subset is shuffled)");
        }
        check_label_count(p, l, samples)?;
    }
    Ok(labels)
}

/// `lpc quantize` with a budget: quantize, search, write the best model. Steps go to stdout as
/// they are measured; the returned text is the final table. An unreachable budget writes the
/// best model found and returns an error (exit status 1) saying so.
fn quantize_budget_cmd(a: &QuantizeArgs, target: Target, progress: bool) -> Result<String> {
    let b = &a.budget;
    let g = lpc_load::load_model(&a.q.model)?;
    let calib_opts = a.q.data.options(true)?;
    let calib = open_samples(&a.q.calib, &g, &calib_opts, "calibration data", "--subset")?;
    let eval = match &b.eval {
        Some(p) => open_eval(a, &g, p)?,
        None => {
            println!("note: no --data: the budget is measured on the calibration data");
            open_data(&a.q.calib, &g, &calib_opts, "calibration data")?
        }
    };
    let labels = eval_labels(a, eval.len())?;
    let t = std::time::Instant::now();
    println!(
        "quantizing; searching for {} on {} samples",
        target.describe(),
        eval.len()
    );
    let cfg = SearchConfig {
        target,
        rank_samples: b.rank_samples,
        min_int8_macs: b.min_int8_macs,
        batch: a.q.batch,
        progress,
    };
    let job = BudgetJob {
        graph: &g,
        calib: &calib,
        config: &config(&a.q, progress)?,
        eval: &eval,
        labels: labels.as_deref(),
    };
    let (q, mut o) =
        quantize_within_budget(&job, &cfg, &SearchOptions::default(), |l| println!("  {l}"))
            .map_err(|e| name_labels(e, b.labels.as_deref()))?;
    o.times.push(("wall".into(), t.elapsed().as_secs_f64()));
    write_models(&o.graph, &a.output)?;
    write_report(&a.q, &q, Some(o.to_json()))?;
    let table = format!(
        "{}wall time (quantize + search): {:.1} s → {}\n",
        o.table(),
        t.elapsed().as_secs_f64(),
        shown(&a.output)
    );
    if o.reached {
        Ok(table)
    } else {
        print!("{table}");
        bail!(
            "{}; the best model found was written to {}",
            o.message,
            shown(&a.output)
        )
    }
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
    let mut files = files(&a.q)?;
    for p in a.budget.eval.iter() {
        files.input_file("--data", p);
    }
    for p in a.budget.labels.iter() {
        files.input_file("--labels", p);
    }
    a.output.iter().try_for_each(|p| files.output("-o", p))
}

/// Writes a quantized graph to each path, in the format its extension names.
fn write_models(g: &Graph, paths: &[PathBuf]) -> Result<()> {
    paths
        .iter()
        .try_for_each(|p| write_model(g, p, Format::of("-o", p, FORMATS)?))
}

/// `lpc quantize`: returns a one-paragraph summary for the terminal.
pub fn run(a: &QuantizeArgs, progress: bool) -> Result<String> {
    check_outputs(a)?;
    if a.mode == Mode::Dynamic {
        return quantize_dynamic_cmd(a, progress);
    }
    if let Some(t) = a.budget.target()? {
        return quantize_budget_cmd(a, t, progress);
    }
    let out = run_quantize(&a.q, progress)?;
    write_models(&out.graph, &a.output)?;
    let r = &out.report;
    let total = r.times.iter().find(|t| t.0 == "total").map_or(0.0, |t| t.1);
    let mut s = format!(
        "quantized {} layers, {} activation quantizers ({} samples, preset {}, estimator {}) in {total:.2} s → {}\n",
        r.layers.len(),
        r.ranges.len(),
        r.samples,
        r.preset,
        r.estimator,
        shown(&a.output)
    );
    for (n, d) in &r.outputs {
        s += &format!("output {n}: SQNR {d:.2} dB vs FP32 on the calibration data\n");
    }
    for w in &r.warnings {
        s += &format!("note: {w}\n");
    }
    Ok(s)
}
