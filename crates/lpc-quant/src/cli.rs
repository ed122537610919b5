//! The `lpc calibrate`, `lpc quantize` and `lpc accuracy` verbs: clap argument structs and the
//! functions that run them (lpc-cli wires them in as subcommands).

use crate::accuracy::evaluate;
use crate::calib::{read_npy, ImageOptions, Layout, LoadOptions, Samples};
use crate::quantize::{quantize, Config, Preset};
use crate::stats::Estimator;
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
    /// Calibration data: .npy (samples stacked on axis 0), .npz, or a folder of .npy/.pb/.png.
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
    /// Turn FastBiasCorrection off.
    #[arg(long)]
    pub no_bias_correction: bool,
    /// Samples per interpreter run.
    #[arg(long, default_value_t = 32)]
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
    /// Output: .onnx (QDQ) or .lir (FakeQuantize graph).
    #[arg(short, long)]
    pub output: PathBuf,
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
    /// Inputs: .npy (stacked), .npz, or a folder of .npy/.pb/.png.
    #[arg(long)]
    pub data: PathBuf,
    /// Labels: .npy of integer classes, one per sample.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// FP32 reference model for agreement, SQNR and cosine.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Rank the values both models share by SQNR, worst first (needs --reference).
    #[arg(long)]
    pub per_layer: bool,
    /// Samples per interpreter run.
    #[arg(long, default_value_t = 32)]
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
        bias_correction: !q.no_bias_correction,
        batch: q.batch,
        progress,
        ..Config::default()
    })
}

fn run_quantize(q: &QuantArgs, progress: bool) -> Result<crate::Quantized> {
    let g = lpc_onnx::load_model(&q.model)?;
    let data = Samples::open(&q.calib, &g, &q.data.options(true)?).context("calibration data")?;
    let out = quantize(&g, &data, &config(q, progress)?)?;
    if let Some(p) = &q.report {
        std::fs::write(p, out.report.to_json().to_string_pretty())
            .with_context(|| format!("{}: cannot write", p.display()))?;
    }
    Ok(out)
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
    let out = run_quantize(&a.q, progress)?;
    write_model(&out.graph, &a.output)?;
    let r = &out.report;
    let total = r.times.iter().find(|t| t.0 == "total").map_or(0.0, |t| t.1);
    let mut s = format!(
        "quantized {} layers, {} activation quantizers ({} samples, preset {}, estimator {}) in {total:.2} s → {}\n",
        r.layers.len(),
        r.ranges.len(),
        r.samples,
        r.preset,
        r.estimator,
        a.output.display()
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
    let g = lpc_onnx::load_model(&a.model)?;
    let reference = a
        .reference
        .as_deref()
        .map(lpc_onnx::load_model)
        .transpose()?;
    if a.per_layer && reference.is_none() {
        bail!("--per-layer needs --reference");
    }
    let data =
        Samples::open(&a.data, &g, &a.data_args.options(false)?).context("evaluation data")?;
    let labels = match &a.labels {
        Some(p) => {
            let t = read_npy(p)?;
            if !t.dtype().is_int() {
                bail!(
                    "{}: labels must be integers, got {}",
                    p.display(),
                    t.dtype()
                );
            }
            Some(t.to_i64_vec())
        }
        None => None,
    };
    if labels.is_none() && reference.is_none() {
        bail!("give --labels and/or --reference");
    }
    let acc = evaluate(
        &g,
        reference.as_ref(),
        &data,
        labels.as_deref(),
        a.per_layer,
        a.batch,
        progress,
    )?;
    Ok(if a.json {
        acc.to_json().to_string_pretty()
    } else {
        acc.summary()
    })
}
