//! The [`Evaluator`]: FP32 outputs computed once over a data set, and models measured against
//! them.

use super::measure::Measure;
use crate::argmax::{argmax_rows, check_labels};
use crate::batch::for_batches;
use crate::compare::sqnr_db;
use crate::QuantError;
use lpc_data::{InputSpec, SampleSource};
use lpc_ir::{Graph, Tensor};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs models over a data set and compares them with FP32 outputs computed once.
pub struct Evaluator<'a> {
    data: &'a dyn SampleSource,
    pub(crate) labels: Option<&'a [i64]>,
    pub(crate) batch: usize,
    pub(crate) progress: bool,
    /// FP32 outputs per batch, keyed by the batch's first sample.
    reference: BTreeMap<usize, Vec<Tensor>>,
    /// FP32 top-1 per sample.
    ref_preds: Vec<usize>,
    /// Model runs done (a sample counts once per run).
    pub sample_runs: AtomicUsize,
}

#[derive(Default)]
struct EvalState {
    preds: Vec<(usize, usize)>,
    sums: Vec<[f64; 2]>,
}

impl<'a> Evaluator<'a> {
    /// Runs `reference` once over `data` and keeps its outputs.
    pub fn new(
        reference: &Graph,
        data: &'a dyn SampleSource,
        labels: Option<&'a [i64]>,
        batch: usize,
        progress: bool,
    ) -> Result<Evaluator<'a>, QuantError> {
        if data.is_empty() {
            return Err(QuantError::NoSamples { what: "evaluation" });
        }
        if let Some(l) = labels {
            if l.len() != data.len() {
                return Err(QuantError::LabelCount {
                    labels: l.len(),
                    samples: data.len(),
                });
            }
        }
        let batchable = InputSpec::of(reference).iter().all(|s| s.batchable());
        let batch = if batchable { batch } else { 1 };
        type Acc = (BTreeMap<usize, Vec<Tensor>>, Vec<(usize, usize)>);
        let (refs, preds): Acc = for_batches(
            data,
            batch,
            "fp32",
            progress,
            Acc::default,
            |st: &mut Acc, inputs, first, k| {
                let outs = lpc_ref::run(reference, inputs).map_err(|source| QuantError::Run {
                    sample: first,
                    source,
                })?;
                if let Some(l) = labels {
                    check_labels(&outs[0], l, first, k)?;
                }
                let p = argmax_rows(&outs[0], k)?;
                st.1.extend(p.into_iter().enumerate().map(|(j, p)| (first + j, p)));
                st.0.insert(first, outs);
                Ok(())
            },
            |a, b| {
                a.0.extend(b.0);
                a.1.extend(b.1);
            },
        )?;
        let mut ref_preds = vec![0; data.len()];
        for (i, p) in preds {
            ref_preds[i] = p;
        }
        Ok(Evaluator {
            data,
            labels,
            batch,
            progress,
            reference: refs,
            ref_preds,
            sample_runs: AtomicUsize::new(0),
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True with no samples.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Runs `model` and compares it with the FP32 outputs.
    pub fn measure(&self, model: &Graph) -> Result<Measure, QuantError> {
        let n_out = self.reference.values().next().map_or(0, |v| v.len());
        if model.outputs().len() != n_out {
            return Err(QuantError::OutputCount {
                model: model.outputs().len(),
                reference: n_out,
            });
        }
        let st = for_batches(
            self.data,
            self.batch,
            "measure",
            self.progress,
            EvalState::default,
            |st: &mut EvalState, inputs, first, k| {
                let outs = lpc_ref::run(model, inputs).map_err(|source| QuantError::Run {
                    sample: first,
                    source,
                })?;
                let refs = self.reference.get(&first).ok_or_else(|| {
                    QuantError::Internal(format!("no FP32 outputs cached for sample {first}"))
                })?;
                for (j, p) in argmax_rows(&outs[0], k)?.into_iter().enumerate() {
                    st.preds.push((first + j, p));
                }
                st.sums.resize(n_out, [0.0; 2]);
                for (o, (r, x)) in refs.iter().zip(&outs).enumerate() {
                    if r.shape() != x.shape() {
                        return Err(QuantError::OutputShape {
                            output: o,
                            model: x.shape().to_vec(),
                            reference: r.shape().to_vec(),
                        });
                    }
                    let s = &mut st.sums[o];
                    for (a, b) in r.to_f64_vec().into_iter().zip(x.to_f64_vec()) {
                        s[0] += a * a;
                        s[1] += (a - b) * (a - b);
                    }
                }
                Ok(())
            },
            |a, b| {
                a.preds.extend(b.preds);
                if a.sums.is_empty() {
                    a.sums = b.sums;
                } else {
                    for (x, y) in a.sums.iter_mut().zip(b.sums) {
                        x[0] += y[0];
                        x[1] += y[1];
                    }
                }
            },
        )?;
        self.sample_runs
            .fetch_add(self.data.len(), Ordering::Relaxed);
        let flips = st
            .preds
            .iter()
            .filter(|(i, p)| self.ref_preds[*i] != *p)
            .count();
        let (top1, reference_top1) = match self.labels {
            Some(l) => {
                let n = l.len().max(1) as f64;
                let hits = st.preds.iter().filter(|(i, p)| l[*i] == *p as i64).count();
                let rhits = (0..l.len())
                    .filter(|&i| l[i] == self.ref_preds[i] as i64)
                    .count();
                (Some(hits as f64 / n), Some(rhits as f64 / n))
            }
            None => (None, None),
        };
        let sqnr = st
            .sums
            .iter()
            .map(|s| sqnr_db(s[0], s[1]))
            .fold(f64::INFINITY, f64::min);
        Ok(Measure {
            samples: self.data.len(),
            flips,
            top1,
            reference_top1,
            sqnr_db: sqnr,
        })
    }
}
