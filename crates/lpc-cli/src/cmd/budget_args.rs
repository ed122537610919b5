//! The accuracy-aware flags of `lpc quantize`: a budget (`--max-drop` or `--min-sqnr`), its
//! metric and the evaluation data.

use anyhow::{bail, Result};
use lpc_quant::{Metric, Target};
use std::path::PathBuf;

/// Accuracy-aware quantization: return the most sensitive layers to FP32 until a budget holds.
#[derive(clap::Args, Clone, Debug)]
pub struct BudgetArgs {
    /// Allowed drop in percentage points of --metric top1 or agreement (e.g. 0, 0.5).
    #[arg(long, value_name = "POINTS", allow_negative_numbers = true, value_parser = finite)]
    pub max_drop: Option<f64>,
    /// Smallest allowed output SQNR against FP32, in dB (implies --metric sqnr).
    #[arg(long, value_name = "DB", allow_negative_numbers = true, value_parser = finite)]
    pub min_sqnr: Option<f64>,
    /// Budget metric: top1 (needs --labels), agreement (top-1 agreement with FP32), sqnr.
    #[arg(long)]
    pub metric: Option<Metric>,
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

/// The value parser of `--max-drop` and `--min-sqnr`: a finite number (clap names the flag).
fn finite(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err("not a finite number".into()),
        Err(e) => Err(e.to_string()),
    }
}

impl BudgetArgs {
    /// The budget these flags ask for, or None when no budget flag is given.
    pub fn target(&self) -> Result<Option<Target>> {
        self.target_for(self.eval.is_some(), self.labels.is_some())
    }

    /// [`BudgetArgs::target`] when evaluation data (`eval`) and labels (`labels`) are given or
    /// not, whether as `--data`/`--labels` files or otherwise (the Python package's arrays).
    pub fn target_for(&self, eval: bool, labels: bool) -> Result<Option<Target>> {
        let t = match (self.max_drop, self.min_sqnr, self.metric) {
            (None, None, None) => {
                if eval || labels {
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
        if t.metric() == Metric::Top1 && !labels {
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
