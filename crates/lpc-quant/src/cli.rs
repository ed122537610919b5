//! The `lpc calibrate`, `lpc quantize` and `lpc accuracy` verbs: clap argument structs and the
//! functions that run them (lpc-cli wires them in as subcommands).

use crate::{
    evaluate, quantize, quantize_within_budget, read_npy, BiasCorrectionMode, Config, Estimator,
    ImageOptions, Json, Layout, LoadOptions, Metric, Preset, SampleSource, Samples, SearchConfig,
    SearchOptions, Target,
};
use anyhow::{bail, Context, Result};
use lpc_ir::Graph;
use std::path::{Path, PathBuf};

/// How to read and preprocess data (calibration or evaluation).
#[derive(clap::Args, Clone, Debug)]
pub struct DataArgs {
    /// Number of samples to use, drawn with a seeded shuffle (0 = all).
    #[arg(long, default_value_t = 300)]
    pub subset: usize,
    /// Seed of the subset sampling and of random image crops.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images: target size HxW (default: the model input's).
    #[arg(long, value_name = "HxW")]
    pub size: Option<String>,
    /// Images: stretch to HxW instead of resize-and-centre-crop.
    #[arg(long)]
    pub stretch: bool,
    /// Images: BGR channel order instead of RGB.
    #[arg(long)]
    pub bgr: bool,
    /// Images: pixel multiplier applied before mean/std.
    #[arg(long, default_value_t = 1.0 / 255.0)]
    pub scale: f32,
    /// Images: per-channel mean, comma-separated (1 or C values).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub mean: Vec<f32>,
    /// Images: per-channel std, comma-separated (1 or C values).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub std: Vec<f32>,
    /// Images: input layout, nchw or nhwc.
    #[arg(long, default_value = "nchw")]
    pub layout: String,
    /// Images: number of seeded random crops per image (0 = the whole image once).
    #[arg(long, default_value_t = 0)]
    pub crops: usize,
}

impl DataArgs {
    /// The load options these arguments describe.
    pub fn options(&self, subset: bool) -> Result<LoadOptions> {
        let size = match &self.size {
            None => None,
            Some(s) => {
                let (h, w) = s
                    .split_once(['x', 'X'])
                    .with_context(|| format!("--size '{s}': expected HxW"))?;
                Some((
                    h.trim().parse().with_context(|| format!("--size '{s}'"))?,
                    w.trim().parse().with_context(|| format!("--size '{s}'"))?,
                ))
            }
        };
        let layout = match self.layout.as_str() {
            "nchw" | "NCHW" => Layout::Nchw,
            "nhwc" | "NHWC" => Layout::Nhwc,
            o => bail!("--layout '{o}': expected nchw or nhwc"),
        };
        Ok(LoadOptions {
            subset: (subset && self.subset > 0).then_some(self.subset),
            seed: self.seed,
            image: ImageOptions {
                size,
                crop: !self.stretch,
                bgr: self.bgr,
                scale: self.scale,
                mean: self.mean.clone(),
                std: self.std.clone(),
                layout,
                crops_per_image: self.crops,
            },
        })
    }
}

/// Quantization settings shared by `calibrate` and `quantize`.
#[derive(clap::Args, Clone, Debug)]
pub struct QuantArgs {
    /// The FP32 model (.onnx or .lir).
    pub model: PathBuf,
    /// Calibration data: .npy (samples stacked on axis 0), .npz, or a folder of .npy/.pb/.png/.jpg.
    #[arg(long)]
    pub calib: PathBuf,
    #[command(flatten)]
    /// Data reading.
    pub data: DataArgs,
    /// Activation preset: performance (symmetric) or mixed (asymmetric).
    #[arg(long, default_value = "mixed")]
    pub preset: String,
    /// Activation range estimator: mse, minmax, mean-minmax, quantile:Q.
    #[arg(long, default_value = "mse")]
    pub estimator: String,
    /// Keep nodes in float: node name, op type (Conv, MatMul...) or node-name regex; repeatable.
    #[arg(long)]
    pub ignore: Vec<String>,
    /// Bias correction: fast (each layer's own error on FP32 inputs), sequential (layer by
    /// layer on the quantized model, upstream error included), or off.
    #[arg(long, default_value = "sequential", value_parser = ["sequential", "fast", "off"])]
    pub bias_correction: String,
    /// Turn bias correction off (same as `--bias-correction off`).
    #[arg(long)]
    pub no_bias_correction: bool,
    /// Calibration samples bias correction measures on, spread evenly over the set
    /// (0 = the mode's default: 100 for fast, 32 for sequential, which holds them all at once).
    #[arg(long, default_value_t = 0)]
    pub bias_samples: usize,
    /// Samples per interpreter run (0 = auto: about 64K input values per run, 1 to 32 samples).
    #[arg(long, default_value_t = 0)]
    pub batch: usize,
    /// Write the JSON report (ranges, per-layer SQNR, times) here.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// `lpc quantize MODEL --calib PATH -o OUT.onnx|OUT.lir`.
#[derive(clap::Args, Clone, Debug)]
pub struct QuantizeArgs {
    #[command(flatten)]
    /// Settings.
    pub q: QuantArgs,
    /// Output: .onnx (QDQ) or .lir (FakeQuantize graph); repeat to write both.
    #[arg(short, long, required = true)]
    pub output: Vec<PathBuf>,
    #[command(flatten)]
    /// Accuracy-aware search (off unless --max-drop or --min-sqnr is given).
    pub budget: BudgetArgs,
}

/// Accuracy-aware quantization: return the most sensitive layers to FP32 until a budget holds.
#[derive(clap::Args, Clone, Debug)]
pub struct BudgetArgs {
    /// Allowed drop in percentage points of --metric top1 or agreement (e.g. 0, 0.5).
    #[arg(long, value_name = "POINTS", allow_negative_numbers = true)]
    pub max_drop: Option<f64>,
    /// Smallest allowed output SQNR against FP32, in dB (implies --metric sqnr).
    #[arg(long, value_name = "DB")]
    pub min_sqnr: Option<f64>,
    /// Budget metric: top1 (needs --labels), agreement (top-1 agreement with FP32), sqnr.
    #[arg(long)]
    pub metric: Option<String>,
    /// Evaluation data (same formats as --calib; default: the calibration data).
    #[arg(long = "data", value_name = "EVAL")]
    pub eval: Option<PathBuf>,
    /// Labels of the evaluation data: .npy of integer classes (for --metric top1).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Evaluation samples to use, seeded shuffle (0 = all).
    #[arg(long, default_value_t = 0)]
    pub eval_subset: usize,
    /// Seed of the evaluation subset and of its random image crops.
    #[arg(long, default_value_t = 1)]
    pub eval_seed: u64,
    /// Images: random crops per evaluation image (default: as --crops).
    #[arg(long)]
    pub eval_crops: Option<usize>,
    /// Evaluation samples used to rank layers (the first ones).
    #[arg(long, default_value_t = 32)]
    pub rank_samples: usize,
    /// Smallest fraction of MACs that must stay INT8 (0..1); the search stops before it.
    #[arg(long, default_value_t = 0.0)]
    pub min_int8_macs: f64,
}

impl BudgetArgs {
    /// The budget these flags ask for, or None when no budget flag is given.
    pub fn target(&self) -> Result<Option<Target>> {
        let metric = self
            .metric
            .as_deref()
            .map(|m| m.parse::<Metric>().map_err(anyhow::Error::msg))
            .transpose()?;
        let t = match (self.max_drop, self.min_sqnr, metric) {
            (None, None, None) => {
                if self.eval.is_some() || self.labels.is_some() {
                    bail!("--data/--labels on quantize need a budget: --max-drop POINTS or --min-sqnr DB");
                }
                return Ok(None);
            }
            (None, None, Some(m)) => bail!(
                "--metric {m} needs a budget: {}",
                if m == Metric::Sqnr {
                    "--min-sqnr DB"
                } else {
                    "--max-drop POINTS"
                }
            ),
            (Some(_), Some(_), _) => bail!("give either --max-drop or --min-sqnr, not both"),
            (Some(_), None, Some(Metric::Sqnr)) => {
                bail!("--metric sqnr takes its budget as --min-sqnr DB, not --max-drop")
            }
            (None, Some(_), Some(m)) if m != Metric::Sqnr => {
                bail!("--min-sqnr is the sqnr budget; --metric {m} takes --max-drop POINTS")
            }
            (Some(d), None, m) => Target::new(m.unwrap_or(Metric::Agreement), d)?,
            (None, Some(db), _) => Target::new(Metric::Sqnr, db)?,
        };
        if t.metric() == Metric::Top1 && self.labels.is_none() {
            bail!("--metric top1 needs --labels Y.npy (integer classes of the --data samples)");
        }
        if !(0.0..=1.0).contains(&self.min_int8_macs) {
            bail!(
                "--min-int8-macs {}: expected a fraction in [0, 1]",
                self.min_int8_macs
            );
        }
        if self.rank_samples == 0 {
            bail!("--rank-samples must be at least 1");
        }
        Ok(Some(t))
    }
}

/// `lpc calibrate MODEL --calib PATH [-o RANGES.json]`.
#[derive(clap::Args, Clone, Debug)]
pub struct CalibrateArgs {
    #[command(flatten)]
    /// Settings.
    pub q: QuantArgs,
    /// Write the ranges (the JSON report) here instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// `lpc accuracy MODEL --data X [--labels Y] [--reference FP32]`.
#[derive(clap::Args, Clone, Debug)]
pub struct AccuracyArgs {
    /// The model to evaluate (.onnx or .lir).
    pub model: PathBuf,
    /// Inputs: .npy (stacked), .npz, or a folder of .npy/.pb/.png/.jpg.
    #[arg(long)]
    pub data: PathBuf,
    /// Labels: .npy of integer classes, one per sample.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// FP32 reference model for agreement, SQNR and cosine.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Rank the values both models share by SQNR, worst first, and the quantized layers by
    /// sensitivity (each alone back in FP32, the ranking of `lpc quantize --max-drop`); needs
    /// --reference.
    #[arg(long)]
    pub per_layer: bool,
    /// Samples (the first ones) the --per-layer sensitivity ranking runs on.
    #[arg(long, default_value_t = 32)]
    pub rank_samples: usize,
    /// Samples per interpreter run (0 = auto: about 64K input values per run, 1 to 32 samples).
    #[arg(long, default_value_t = 0)]
    pub batch: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    /// Data reading (--subset 0 = all samples, the default here is all).
    pub data_args: DataArgs,
}

fn config(q: &QuantArgs, progress: bool) -> Result<Config> {
    Ok(Config {
        preset: q.preset.parse::<Preset>().map_err(anyhow::Error::msg)?,
        estimator: q
            .estimator
            .parse::<Estimator>()
            .map_err(anyhow::Error::msg)?,
        ignore: q.ignore.clone(),
        bias_correction: !q.no_bias_correction && q.bias_correction != "off",
        bias_correction_mode: match q.bias_correction.as_str() {
            "off" => BiasCorrectionMode::Fast,
            m => m.parse().map_err(anyhow::Error::msg)?,
        },
        batch: q.batch,
        progress,
        ..Config::default()
    }
    .with_bias_samples(q.bias_samples))
}

fn run_quantize(q: &QuantArgs, progress: bool) -> Result<crate::Quantized> {
    let g = lpc_load::load_model(&q.model)?;
    let data = Samples::open(&q.calib, &g, &q.data.options(true)?).context("calibration data")?;
    let out = quantize(&g, &data, &config(q, progress)?)?;
    write_report(q, &out, None)?;
    Ok(out)
}

/// Writes `--report`: the quantization report, with the accuracy-aware search under
/// `"accuracy_aware"` when there was one.
fn write_report(q: &QuantArgs, out: &crate::Quantized, aaq: Option<Json>) -> Result<()> {
    if let Some(p) = &q.report {
        let mut j = out.report.to_json();
        if let (Json::Obj(m), Some(a)) = (&mut j, aaq) {
            m.push(("accuracy_aware".into(), a));
        }
        std::fs::write(p, j.to_string_pretty())
            .with_context(|| format!("{}: cannot write", p.display()))?;
    }
    Ok(())
}

fn read_labels(p: &Path) -> Result<Vec<i64>> {
    let t = read_npy(p)?;
    if !t.dtype().is_int() {
        bail!(
            "{}: labels must be integers, got {}",
            p.display(),
            t.dtype()
        );
    }
    Ok(t.to_i64_vec())
}

/// `lpc quantize` with a budget: quantize, search, write the best model. Steps go to stdout as
/// they are measured; the returned text is the final table. An unreachable budget writes the
/// best model found and returns an error (exit status 1) saying so.
fn quantize_budget_cmd(a: &QuantizeArgs, target: Target, progress: bool) -> Result<String> {
    let b = &a.budget;
    let g = lpc_load::load_model(&a.q.model)?;
    let calib_opts = a.q.data.options(true)?;
    let calib = Samples::open(&a.q.calib, &g, &calib_opts).context("calibration data")?;
    let mut eval_opts = a.q.data.options(false)?;
    eval_opts.subset = (b.eval_subset > 0).then_some(b.eval_subset);
    eval_opts.seed = b.eval_seed;
    if let Some(c) = b.eval_crops {
        eval_opts.image.crops_per_image = c;
    }
    let eval = match &b.eval {
        Some(p) => Samples::open(p, &g, &eval_opts).context("evaluation data (--data)")?,
        None => {
            println!("note: no --data: the budget is measured on the calibration data");
            Samples::open(&a.q.calib, &g, &calib_opts).context("calibration data")?
        }
    };
    let labels = b.labels.as_deref().map(read_labels).transpose()?;
    if let Some(l) = &labels {
        if l.len() != eval.len() {
            bail!(
                "{} labels for {} evaluation samples (--eval-subset draws a shuffled subset: labels need all samples)",
                l.len(),
                eval.len()
            );
        }
        if b.eval_subset > 0 {
            bail!("--labels cannot be combined with --eval-subset (the subset is shuffled)");
        }
    }
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
    let (q, mut o) = quantize_within_budget(
        &g,
        &calib,
        &config(&a.q, progress)?,
        &eval,
        labels.as_deref(),
        &cfg,
        &SearchOptions::default(),
        |l| println!("  {l}"),
    )?;
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

/// Checks every output path's extension (before any work is done).
fn check_outputs(paths: &[PathBuf]) -> Result<()> {
    for p in paths {
        if !matches!(p.extension().and_then(|e| e.to_str()), Some("onnx" | "lir")) {
            bail!(
                "{}: output must end in .onnx (QDQ) or .lir (FakeQuantize graph)",
                p.display()
            );
        }
    }
    Ok(())
}

/// Writes a quantized graph to each path (see [`write_model`]).
pub fn write_models(g: &Graph, paths: &[PathBuf]) -> Result<()> {
    paths.iter().try_for_each(|p| write_model(g, p))
}

/// Writes a quantized graph: `.onnx` as QDQ ONNX, `.lir` as the FakeQuantize graph.
pub fn write_model(g: &Graph, path: &Path) -> Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("onnx") => lpc_onnx::export::write_qdq(g, path)
            .with_context(|| format!("{}: QDQ export failed", path.display())),
        Some("lir") => Ok(lpc_ir::text::write_lir(path, g)?),
        _ => bail!(
            "{}: output must end in .onnx (QDQ) or .lir (FakeQuantize graph)",
            path.display()
        ),
    }
}

/// `lpc quantize`: returns a one-paragraph summary for the terminal.
pub fn quantize_cmd(a: &QuantizeArgs, progress: bool) -> Result<String> {
    check_outputs(&a.output)?;
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

/// `lpc calibrate`: writes (or returns) the JSON report with the chosen ranges.
pub fn calibrate_cmd(a: &CalibrateArgs, progress: bool) -> Result<String> {
    let mut q = a.q.clone();
    q.no_bias_correction = true;
    let out = run_quantize(&q, progress)?;
    let text = out.report.to_json().to_string_pretty();
    match &a.output {
        Some(p) => {
            std::fs::write(p, &text).with_context(|| format!("{}: cannot write", p.display()))?;
            Ok(format!(
                "{} activation ranges → {}\n",
                out.report.ranges.len(),
                p.display()
            ))
        }
        None => Ok(text),
    }
}

/// `lpc accuracy`: returns the text (or JSON) summary.
pub fn accuracy_cmd(a: &AccuracyArgs, progress: bool) -> Result<String> {
    let g = lpc_load::load_model(&a.model)?;
    let reference = a
        .reference
        .as_deref()
        .map(lpc_load::load_model)
        .transpose()?;
    if a.per_layer && reference.is_none() {
        bail!("--per-layer needs --reference");
    }
    let data =
        Samples::open(&a.data, &g, &a.data_args.options(false)?).context("evaluation data")?;
    let labels = a.labels.as_deref().map(read_labels).transpose()?;
    if labels.is_none() && reference.is_none() {
        bail!("give --labels and/or --reference");
    }
    let mut acc = evaluate(
        &g,
        reference.as_ref(),
        &data,
        labels.as_deref(),
        a.per_layer,
        a.batch,
        progress,
    )?;
    if let (true, Some(r)) = (a.per_layer, reference.as_ref()) {
        // Classifiers (labels given) rank by top-1 drop, anything else by output SQNR.
        let target = match labels {
            Some(_) => Target::new(Metric::Top1, 0.0)?,
            None => Target::new(Metric::Sqnr, 0.0)?,
        };
        acc.rank_units(
            &g,
            r,
            &data,
            labels.as_deref(),
            a.rank_samples,
            a.batch,
            progress,
            &target,
        )?;
    }
    Ok(if a.json {
        acc.to_json().to_string_pretty()
    } else {
        acc.summary()
    })
}
