//! Per-value comparison of a model with its FP32 reference: accumulated signal and noise
//! power, and the SQNR they give.

use crate::batch::for_batches;
use crate::error::run_err;
use crate::QuantError;
use lpc_data::SampleSource;
use lpc_ir::{Graph, Tensor, ValueRef};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Signal-to-quantization-noise ratio in dB from accumulated Σref² and Σ(ref-x)².
pub fn sqnr_db(signal: f64, noise: f64) -> f64 {
    if noise == 0.0 {
        f64::INFINITY
    } else if signal == 0.0 {
        f64::NEG_INFINITY
    } else {
        10.0 * (signal / noise).log10()
    }
}

/// SQNR (dB) of `got` against `reference`, elementwise (tests compare two runs with it).
#[cfg(test)]
pub(crate) fn sqnr_of(reference: &[f32], got: &[f32]) -> f64 {
    let signal: f64 = reference.iter().map(|&v| (v as f64).powi(2)).sum();
    let noise: f64 = reference
        .iter()
        .zip(got)
        .map(|(&u, &v)| (u as f64 - v as f64).powi(2))
        .sum();
    sqnr_db(signal, noise)
}

/// Runs `reference` and `model` on `data` and accumulates, per value name in `names` present in
/// both (same shape), Σref² and Σ(ref−x)².
pub fn compare_values(
    reference: &Graph,
    model: &Graph,
    data: &dyn SampleSource,
    names: &[String],
    batch: usize,
    progress: bool,
) -> Result<HashMap<String, (f64, f64)>, QuantError> {
    let by_name = |g: &Graph| -> HashMap<ValueRef, String> {
        let want: HashSet<&String> = names.iter().collect();
        let mut m = HashMap::new();
        for n in g.node_ids() {
            for (k, o) in g.node(n).outputs.iter().enumerate() {
                if want.contains(&o.name) {
                    m.insert(ValueRef { node: n, output: k }, o.name.clone());
                }
            }
        }
        m
    };
    let (rn, mn) = (by_name(reference), by_name(model));
    type Acc = BTreeMap<String, (f64, f64)>;
    let acc: Acc = for_batches(
        data,
        batch,
        "compare",
        progress,
        Acc::new,
        |acc: &mut Acc, inputs, first, _k| {
            let mut stash: HashMap<String, Tensor> = HashMap::new();
            lpc_ref::run_observed(reference, inputs, |v, t| {
                if let Some(name) = rn.get(&v) {
                    if t.as_f32().is_ok() {
                        stash.insert(name.clone(), t.clone());
                    }
                }
            })
            .map_err(run_err(first))?;
            lpc_ref::run_observed(model, inputs, |v, t| {
                if let (Some(name), Ok(x)) = (mn.get(&v), t.as_f32()) {
                    if let Some(r) = stash.get(name) {
                        if r.shape() == t.shape() {
                            let r = r.as_f32().expect("checked");
                            let e = acc.entry(name.clone()).or_default();
                            for (a, b) in r.iter().zip(x) {
                                e.0 += (*a as f64) * (*a as f64);
                                e.1 += ((a - b) as f64) * ((a - b) as f64);
                            }
                        }
                    }
                }
            })
            .map_err(run_err(first))?;
            Ok(())
        },
        |a, b| {
            for (k, (s, n)) in b {
                let e = a.entry(k).or_default();
                e.0 += s;
                e.1 += n;
            }
        },
    )?;
    Ok(acc.into_iter().collect())
}
