//! `lpc calibrate`: collect calibration statistics and print (or write) the chosen ranges as
//! JSON.

use crate::cmd::quant_args::{files, run_quantize, QuantArgs};
use crate::outputs::write_text;
use anyhow::Result;
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
    let mut paths = files(&a.q)?;
    if let Some(p) = &a.output {
        paths.output("-o", p)?;
    }
    let mut q = a.q.clone();
    q.no_bias_correction = true;
    let out = run_quantize(&q, progress)?;
    let text = out.report.to_json().to_string_pretty();
    match &a.output {
        Some(p) => {
            write_text(p, &text)?;
            Ok(format!(
                "{} activation ranges → {}\n",
                out.report.ranges.len(),
                p.display()
            ))
        }
        None => Ok(text),
    }
}
