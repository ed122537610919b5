//! Quantization settings shared by `lpc calibrate` and `lpc quantize`, and running the
//! quantizer with them.

use crate::cmd::data_args::{open_samples, DataArgs};
use crate::outputs::{write_text, Files};
use anyhow::Result;
use lpc_data::Samples;
use lpc_ir::Graph;
use lpc_quant::{quantize, BiasCorrectionMode, Config, Estimator, Json, Preset, Quantized};
use std::path::{Path, PathBuf};

/// Quantization settings shared by `calibrate` and `quantize`.
#[derive(clap::Args, Clone, Debug)]
pub struct QuantArgs {
    /// The FP32 model (.onnx or .lir).
    pub model: PathBuf,
    /// Calibration data: .npy (samples stacked on axis 0), .npz (arrays by input name), or a
    /// folder of .npy/.pb/.wav/.png/.jpg (one sample each); or NAME=PATH, repeated, one stacked
    /// .npy (or one .wav clip) per model input. Required except by `quantize --mode dynamic`.
    #[arg(long)]
    pub calib: Vec<PathBuf>,
    #[command(flatten)]
    /// Data reading.
    pub data: DataArgs,
    /// Activation preset: performance (symmetric) or mixed (asymmetric).
    #[arg(long, default_value = "mixed")]
    pub preset: Preset,
    /// Activation range estimator: mse, minmax, mean-minmax, quantile:Q.
    #[arg(long, default_value = "mse")]
    pub estimator: Estimator,
    /// Keep nodes in float: node name, op type (Conv, MatMul...) or node-name regex; repeatable.
    #[arg(long)]
    pub ignore: Vec<String>,
    /// Keep matmul inputs whole: no float path for the few channels whose range is 4× or more
    /// that of the others (on by default; see docs/quantization.md).
    #[arg(long)]
    pub no_outlier_split: bool,
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

/// The quantizer configuration these settings describe.
pub fn config(q: &QuantArgs, progress: bool) -> Result<Config> {
    Ok(Config {
        preset: q.preset,
        estimator: q.estimator,
        ignore: q.ignore.clone(),
        bias_correction: !q.no_bias_correction && q.bias_correction != "off",
        bias_correction_mode: match q.bias_correction.as_str() {
            "off" => BiasCorrectionMode::Fast,
            m => m.parse().map_err(anyhow::Error::msg)?,
        },
        batch: q.batch,
        progress,
        split_outliers: !q.no_outlier_split,
        ..Config::default()
    }
    .with_bias_samples(q.bias_samples))
}

/// The files these settings read (the model, --calib), with `--report` checked against them.
pub fn files(q: &QuantArgs) -> Result<Files> {
    let mut f = Files::default();
    f.model("MODEL", &q.model);
    for p in &q.calib {
        // NAME=PATH values: the path part (the model is not loaded yet; a file named with an
        // '=' is checked as given as well).
        f.input_file("--calib", p);
        if let Some((_, path)) = p.to_str().and_then(|s| s.split_once('=')) {
            f.input_file("--calib", Path::new(path));
        }
    }
    if let Some(p) = &q.report {
        f.output("--report", p)?;
    }
    Ok(f)
}

/// Opens `--calib` for `g` (required: static quantization fixes its ranges from it).
pub fn open_calib(q: &QuantArgs, g: &Graph) -> Result<Samples> {
    if q.calib.is_empty() {
        anyhow::bail!("--calib DATA is required: static quantization fixes activation ranges from calibration data (quantize --mode dynamic needs none)");
    }
    open_samples(
        &q.calib,
        g,
        &q.data.options(true)?,
        "calibration data",
        "--subset",
    )
}

/// Loads the model and the calibration data and quantizes (no budget), writing `--report`.
pub fn run_quantize(q: &QuantArgs, progress: bool) -> Result<Quantized> {
    let g = lpc_load::load_model(&q.model)?;
    let data = open_calib(q, &g)?;
    let out = quantize(&g, &data, &config(q, progress)?)?;
    write_report(q, &report_json(&out, None))?;
    Ok(out)
}

/// The `--report` JSON: the quantization report, with the accuracy-aware search under
/// `"accuracy_aware"` when there was one.
pub fn report_json(out: &Quantized, aaq: Option<Json>) -> Json {
    let mut j = out.report.to_json();
    if let (Json::Obj(m), Some(a)) = (&mut j, aaq) {
        m.push(("accuracy_aware".into(), a));
    }
    j
}

/// Writes `report` to `--report` when it is given.
pub fn write_report(q: &QuantArgs, report: &Json) -> Result<()> {
    match &q.report {
        Some(p) => write_text(p, &report.to_string_pretty()),
        None => Ok(()),
    }
}
