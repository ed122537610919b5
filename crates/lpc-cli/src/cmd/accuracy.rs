//! `lpc accuracy`: top-1/agreement with labels, else SQNR and cosine against a reference.

use crate::cmd::data_args::{check_label_count, name_labels, read_labels, DataArgs};
use anyhow::{bail, Context, Result};
use lpc_data::SampleSource;
use lpc_data::Samples;
use lpc_quant::{evaluate, Metric, RankData, Target};
use std::path::PathBuf;

/// `lpc accuracy MODEL --data X [--labels Y] [--reference FP32]`.
#[derive(clap::Args, Clone, Debug)]
pub struct AccuracyArgs {
    /// The model to evaluate (.onnx or .lir).
    pub model: PathBuf,
    /// Inputs: .npy (stacked), .npz, a .wav clip, or a folder of .npy/.pb/.wav/.png/.jpg.
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

/// `lpc accuracy`: returns the text (or JSON) summary.
pub fn run(a: &AccuracyArgs, progress: bool) -> Result<String> {
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
    if let (Some(p), Some(l)) = (&a.labels, &labels) {
        check_label_count(p, l, data.len())?;
    }
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
    )
    .map_err(|e| name_labels(e, a.labels.as_deref()))?;
    if let (true, Some(r)) = (a.per_layer, reference.as_ref()) {
        // Classifiers (labels given) rank by top-1 drop, anything else by output SQNR.
        let target = match labels {
            Some(_) => Target::new(Metric::Top1, 0.0)?,
            None => Target::new(Metric::Sqnr, 0.0)?,
        };
        let sub = RankData {
            data: &data,
            labels: labels.as_deref(),
            n: a.rank_samples,
            batch: a.batch,
            progress,
        };
        acc.rank_units(&g, r, &sub, &target)
            .map_err(|e| name_labels(e, a.labels.as_deref()))?;
    }
    Ok(if a.json {
        acc.to_json().to_string_pretty()
    } else {
        acc.summary()
    })
}
