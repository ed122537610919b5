//! `lpc calibrate`: collect calibration statistics and print (or write) the chosen ranges as
//! JSON.

use crate::cmd::quant_args::{run_quantize, QuantArgs};
use anyhow::{Context, Result};
use std::path::PathBuf;

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

/// `lpc calibrate`: writes (or returns) the JSON report with the chosen ranges.
pub fn run(a: &CalibrateArgs, progress: bool) -> Result<String> {
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
