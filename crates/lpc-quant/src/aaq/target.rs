//! The budget: [`Metric`] and [`Target`] (a metric with its limit).

use super::measure::Measure;
use crate::QuantError;

/// What the budget is measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Top-1 against labels; the drop is FP32 top-1 minus INT8 top-1, in percentage points.
    Top1,
    /// Top-1 agreement with the FP32 model; the drop is the share of flipped samples, in points.
    Agreement,
    /// SQNR of the outputs against FP32 (the worst output), in dB; the budget is a minimum.
    Sqnr,
}

impl std::str::FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Metric, String> {
        match s {
            "top1" => Ok(Metric::Top1),
            "agreement" => Ok(Metric::Agreement),
            "sqnr" => Ok(Metric::Sqnr),
            _ => Err(format!("unknown metric '{s}' (top1, agreement, sqnr)")),
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Metric::Top1 => "top1",
            Metric::Agreement => "agreement",
            Metric::Sqnr => "sqnr",
        })
    }
}

/// The accuracy budget.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// At most this drop, in percentage points, of top-1 or agreement.
    MaxDrop {
        /// [`Metric::Top1`] or [`Metric::Agreement`].
        metric: Metric,
        /// Allowed drop (percentage points; negative asks top-1 to beat FP32).
        points: f64,
    },
    /// At least this output SQNR against FP32, in dB.
    MinSqnr(f64),
}

impl Target {
    /// Checks the combination (agreement drop ≥ 0, finite numbers, sqnr only as a minimum).
    pub fn new(metric: Metric, value: f64) -> Result<Target, QuantError> {
        let flag = match metric {
            Metric::Sqnr => "--min-sqnr",
            Metric::Agreement | Metric::Top1 => "--max-drop",
        };
        if !value.is_finite() {
            return Err(QuantError::Budget {
                flag,
                value,
                why: "not a finite number",
            });
        }
        match metric {
            Metric::Sqnr => Ok(Target::MinSqnr(value)),
            Metric::Agreement if value < 0.0 => Err(QuantError::Budget {
                flag,
                value,
                why: "an agreement drop cannot be negative",
            }),
            Metric::Agreement | Metric::Top1 => Ok(Target::MaxDrop {
                metric,
                points: value,
            }),
        }
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        match self {
            Target::MaxDrop { metric, .. } => *metric,
            Target::MinSqnr(_) => Metric::Sqnr,
        }
    }

    /// The measured value the budget reads: drop in points, or SQNR in dB.
    pub fn value(&self, m: &Measure) -> f64 {
        match self.metric() {
            Metric::Top1 => match (m.reference_top1, m.top1) {
                (Some(r), Some(t)) => (r - t) * 100.0,
                _ => f64::INFINITY,
            },
            Metric::Agreement => 100.0 * m.flips as f64 / m.samples.max(1) as f64,
            Metric::Sqnr => m.sqnr_db,
        }
    }

    /// True when `m` is within the budget.
    pub fn met(&self, m: &Measure) -> bool {
        let v = self.value(m);
        match self {
            Target::MaxDrop { points, .. } => v <= points + 1e-9,
            Target::MinSqnr(db) => v >= *db,
        }
    }

    /// `a` is better than `b` for this budget.
    pub fn better(&self, a: &Measure, b: &Measure) -> bool {
        match self {
            Target::MaxDrop { .. } => {
                let (x, y) = (self.value(a), self.value(b));
                x < y || x == y && a.sqnr_db > b.sqnr_db
            }
            Target::MinSqnr(_) => a.sqnr_db > b.sqnr_db,
        }
    }

    /// "agreement drop ≤ 0 points", "SQNR ≥ 25 dB".
    pub fn describe(&self) -> String {
        match self {
            Target::MaxDrop { metric, points } => format!("{metric} drop ≤ {points} points"),
            Target::MinSqnr(db) => format!("output SQNR ≥ {db} dB"),
        }
    }

    /// The measured value as text ("0.20 points", "24.1 dB").
    pub fn show(&self, m: &Measure) -> String {
        match self {
            Target::MaxDrop { metric, .. } => {
                let extra = match metric {
                    Metric::Agreement => format!(" ({} flips)", m.flips),
                    _ => format!(" (top-1 {:.2}%)", m.top1.unwrap_or(f64::NAN) * 100.0),
                };
                format!("{metric} drop {:.2} points{extra}", self.value(m))
            }
            Target::MinSqnr(_) => format!("SQNR {:.2} dB", m.sqnr_db),
        }
    }
}
