//! `lpc accuracy`: top-1/agreement with labels, else SQNR and cosine against a reference.

use crate::cmd::data_args::{check_label_count, name_labels, read_labels, DataArgs, Labels};
use anyhow::{bail, Context, Result};
use lpc_data::SampleSource;
use lpc_data::Samples;
use lpc_ir::Graph;
use lpc_quant::{evaluate, Accuracy, Metric, RankData, Target};
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
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    /// How to measure.
    pub opts: AccuracyOptions,
}

/// The settings of `lpc accuracy` other than its files.
#[derive(clap::Args, Clone, Debug)]
pub struct AccuracyOptions {
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
    #[command(flatten)]
    /// Data reading (--subset 0 = all samples, the default here is all).
    pub data_args: DataArgs,
}

/// What `lpc accuracy` measures: a model, its reference, the data and its labels, opened.
pub struct AccuracyJob<'a> {
    /// The model evaluated.
    pub model: &'a Graph,
    /// The FP32 reference (`--reference`).
    pub reference: Option<&'a Graph>,
    /// The evaluation data (`--data`).
    pub data: &'a Samples,
    /// Its labels (`--labels`).
    pub labels: Option<&'a Labels>,
}

/// `lpc accuracy` without its files: measures `job.model` as the verb does with options `o`.
pub fn measure(o: &AccuracyOptions, job: &AccuracyJob, progress: bool) -> Result<Accuracy> {
    let (g, data) = (job.model, job.data);
    if o.per_layer && job.reference.is_none() {
        bail!("--per-layer needs --reference");
    }
    if let Some(l) = job.labels {
        check_label_count(&l.name, &l.classes, data.len())?;
    }
    if job.labels.is_none() && job.reference.is_none() {
        bail!("give --labels and/or --reference");
    }
    let labels = job.labels.map(|l| l.classes.as_slice());
    let labels_file = job.labels.map(|l| l.name.as_path());
    let mut acc = evaluate(
        g,
        job.reference,
        data,
        labels,
        o.per_layer,
        o.batch,
        progress,
    )
    .map_err(|e| name_labels(e, labels_file))?;
    if let (true, Some(r)) = (o.per_layer, job.reference) {
        // Classifiers (labels given) rank by top-1 drop, anything else by output SQNR.
        let target = match labels {
            Some(_) => Target::new(Metric::Top1, 0.0)?,
            None => Target::new(Metric::Sqnr, 0.0)?,
        };
        let sub = RankData {
            data,
            labels,
            n: o.rank_samples,
            batch: o.batch,
            progress,
        };
        acc.rank_units(g, r, &sub, &target)
            .map_err(|e| name_labels(e, labels_file))?;
    }
    Ok(acc)
}

/// `lpc accuracy`: returns the text (or JSON) summary.
pub fn run(a: &AccuracyArgs, progress: bool) -> Result<String> {
    let g = lpc_load::load_model(&a.model)?;
    let reference = a
        .reference
        .as_deref()
        .map(lpc_load::load_model)
        .transpose()?;
    if a.opts.per_layer && reference.is_none() {
        bail!("--per-layer needs --reference");
    }
    let data =
        Samples::open(&a.data, &g, &a.opts.data_args.options(false)?).context("evaluation data")?;
    let labels = match &a.labels {
        Some(p) => Some(Labels {
            name: p.clone(),
            classes: read_labels(p)?,
        }),
        None => None,
    };
    let job = AccuracyJob {
        model: &g,
        reference: reference.as_ref(),
        data: &data,
        labels: labels.as_ref(),
    };
    let acc = measure(&a.opts, &job, progress)?;
    Ok(if a.json {
        acc.to_json().to_string_pretty()
    } else {
        acc.summary()
    })
}
