//! Sensitivity ranking: each unit alone returned to FP32 and the model measured on a small
//! subset. Used by the search and by `lpc accuracy --per-layer`.

use super::evaluator::Evaluator;
use super::measure::Measure;
use super::target::Target;
use super::units::{with_fp32, Unit};
use crate::QuantError;
use lpc_data::{InMemory, SampleSource};
use lpc_ir::Graph;
use std::sync::atomic::Ordering;

/// Sensitivity of one unit: the model measured on the ranking subset with only it in FP32.
#[derive(Clone, Debug, PartialEq)]
pub struct Sensitivity {
    /// Index into the units.
    pub unit: usize,
    /// The measurement with this unit alone in FP32.
    pub measure: Measure,
}

/// Ranks `units` of the quantized graph `g`, most sensitive first: each unit alone is returned
/// to FP32 and the model is measured on `ev` (a small ranking subset). Order: lowest budget
/// value first for drop metrics (ties: higher SQNR), highest output SQNR for SQNR.
pub fn rank(
    g: &Graph,
    reference: &Graph,
    units: &[Unit],
    ev: &Evaluator,
    target: &Target,
) -> Result<Vec<Sensitivity>, QuantError> {
    let mut out = vec![];
    for (i, u) in units.iter().enumerate() {
        let m = ev.measure(&with_fp32(g, reference, &[u])?)?;
        out.push(Sensitivity {
            unit: i,
            measure: m,
        });
    }
    out.sort_by(|a, b| {
        let key = |s: &Sensitivity| match target {
            Target::MaxDrop { .. } => (target.value(&s.measure), -s.measure.sqnr_db),
            Target::MinSqnr(_) => (-s.measure.sqnr_db, 0.0),
        };
        let (ka, kb) = (key(a), key(b));
        ka.0.total_cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then(a.unit.cmp(&b.unit))
    });
    Ok(out)
}

/// The first `n` samples of `data`, in memory (the ranking subset).
pub(crate) fn first_samples(data: &dyn SampleSource, n: usize) -> Result<InMemory, QuantError> {
    Ok(InMemory(
        (0..n).map(|i| data.get(i)).collect::<Result<Vec<_>, _>>()?,
    ))
}

/// The ranking subset: the first `n` samples of `data` (clamped to 1..=len) and their labels,
/// run `batch` samples at a time.
#[derive(Clone, Copy)]
pub struct RankData<'a> {
    /// The evaluation data.
    pub data: &'a dyn SampleSource,
    /// Labels of `data` for top-1, when known.
    pub labels: Option<&'a [i64]>,
    /// Samples in the subset.
    pub n: usize,
    /// Samples per interpreter run.
    pub batch: usize,
    /// Progress bars.
    pub progress: bool,
}

/// The ranking the search uses, on the subset `sub` of the evaluation data: the fully
/// quantized model's measurement there, the units most sensitive first, and the number of
/// one-sample model runs it took. `lpc accuracy --per-layer` prints the same ranking.
pub fn rank_on_first(
    q: &Graph,
    reference: &Graph,
    units: &[Unit],
    sub: &RankData,
    target: &Target,
) -> Result<(Measure, Vec<Sensitivity>, usize), QuantError> {
    let data = sub.data;
    let n = sub.n.clamp(1, data.len().max(1));
    let first = first_samples(data, n)?;
    let labels = sub.labels.map(|l| &l[..n.min(l.len())]);
    let ev = Evaluator::new(reference, &first, labels, sub.batch, sub.progress)?;
    let base = ev.measure(q)?;
    let ranking = rank(q, reference, units, &ev, target)?;
    Ok((base, ranking, ev.sample_runs.load(Ordering::Relaxed)))
}
