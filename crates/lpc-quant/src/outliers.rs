//! Outlier channels of matmul inputs, computed in float beside the INT8 layer.
//!
//! Transformer activations (LayerNorm outputs, GELU outputs) carry a few channels whose values
//! are ten or more times those of all the others; a per-tensor INT8 range that covers them
//! leaves the other channels a few levels. For a MatMul/Gemm with constant weights `W [K, N]`
//! fed by such a value `x [.., K]`, the layer is split by input channel (the decomposition of
//! LLM.int8()): `x·W = (x·m)·W' + x[.., J]·W[J, :]`, where `J` are the outlier channels,
//! `m` is 1 except 0 on `J` and `W'` is `W` with the rows `J` zeroed. The first product is
//! quantized as usual, its input range now set by the ordinary channels; the second has `|J|`
//! of the `K` inputs and stays in float.
//!
//! Which channels: with `c` the calibration set's largest `|x|` per channel in descending
//! order, the fewest `j ≤ K/32` channels such that `c[j] ≤ c[0] / 4`, i.e. the rest's range is
//! at most a quarter of the whole (two bits more resolution for them); no split when none.

use crate::batch::for_batches;
use crate::error::run_err;
use crate::QuantError;
use lpc_data::SampleSource;
use lpc_ir::{DType, Graph, NodeId, Op, Output, Tensor, ValueRef, ValueType};
use std::collections::{BTreeMap, BTreeSet};

/// The rest's range is at most this fraction of the whole after the split.
const RANGE_GAIN: f32 = 4.0;
/// At most one channel in this many goes to the float path.
const MAX_SHARE: usize = 32;

/// A layer whose input may be split; `trans_b`: its weight is `[N, K]` (a Gemm's transposed B).
struct Candidate {
    node: NodeId,
    trans_b: bool,
}

/// The layers eligible for the split, by the activation they read: MatMul with a constant 2-D
/// f32 weight, Gemm with one and no transposed A; the input's last dimension is `K ≥ 64`.
fn candidates(g: &Graph, ignore: &BTreeSet<NodeId>) -> BTreeMap<ValueRef, Vec<Candidate>> {
    let mut out: BTreeMap<ValueRef, Vec<Candidate>> = BTreeMap::new();
    for n in g.node_ids() {
        if ignore.contains(&n) {
            continue;
        }
        let trans_b = match g.node(n).op {
            Op::MatMul => false,
            Op::Gemm {
                trans_a: false,
                trans_b,
                ..
            } => trans_b,
            _ => continue,
        };
        let (Some(x), Some(w)) = (g.node_input(n, 0), g.node_input(n, 1)) else {
            continue;
        };
        let Some(wt) = g.const_value(w) else { continue };
        if g.const_value(x).is_some() || wt.dtype() != DType::F32 || wt.rank() != 2 {
            continue;
        }
        let k = if trans_b {
            wt.shape()[1]
        } else {
            wt.shape()[0]
        };
        let ty = g.value_type(x);
        let last = ty.shape.as_ref().and_then(|s| s.0.last()?.known());
        if ty.dtype != Some(DType::F32) || last != Some(k) || k < 2 * MAX_SHARE {
            continue;
        }
        out.entry(x)
            .or_default()
            .push(Candidate { node: n, trans_b });
    }
    out
}

/// The outlier channels of a value whose largest `|x|` per channel is `c`, ascending.
pub(crate) fn outlier_channels(c: &[f32]) -> Option<Vec<usize>> {
    if c.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut order: Vec<usize> = (0..c.len()).collect();
    order.sort_by(|&a, &b| c[b].total_cmp(&c[a]).then(a.cmp(&b)));
    let top = c[*order.first()?];
    if top <= 0.0 {
        return None;
    }
    let limit = (c.len() / MAX_SHARE).max(1).min(c.len() - 1);
    let j = (1..=limit).find(|&j| c[order[j]] <= top / RANGE_GAIN)?;
    let mut idx = order[..j].to_vec();
    idx.sort_unstable();
    Some(idx)
}

/// Largest `|x|` per channel of the last axis (NaN ignored).
fn observe(acc: &mut Vec<f32>, x: &[f32], k: usize) {
    if acc.len() != k {
        *acc = vec![0.0; k];
    }
    for row in x.chunks_exact(k) {
        for (a, v) in acc.iter_mut().zip(row) {
            *a = a.max(v.abs());
        }
    }
}

/// Splits the layers fed by outlier channels (see the module docs) after one statistics pass
/// over `data`. Returns the float outlier layers it added (for the caller to keep unquantized)
/// and a note per split value.
pub(crate) fn split_outliers(
    g: &mut Graph,
    data: &dyn SampleSource,
    batch: usize,
    progress: bool,
    ignore: &BTreeSet<NodeId>,
) -> Result<(Vec<NodeId>, Vec<String>), QuantError> {
    let cands = candidates(g, ignore);
    if cands.is_empty() {
        return Ok((vec![], vec![]));
    }
    let values: Vec<ValueRef> = cands.keys().copied().collect();
    let index: BTreeMap<ValueRef, usize> =
        values.iter().enumerate().map(|(i, &v)| (v, i)).collect();
    let graph: &Graph = g;
    let maxima = for_batches(
        data,
        batch,
        "outliers",
        progress,
        || vec![vec![]; values.len()],
        |st: &mut Vec<Vec<f32>>, inputs, first, _| {
            lpc_ref::run_observed(graph, inputs, |v, t| {
                if let (Some(&i), Ok(x)) = (index.get(&v), t.as_f32()) {
                    let k = t.shape().last().copied().unwrap_or(1).max(1);
                    observe(&mut st[i], x, k);
                }
            })
            .map_err(run_err(first))?;
            Ok(())
        },
        |a, b| {
            for (x, y) in a.iter_mut().zip(b) {
                if x.is_empty() {
                    *x = y;
                } else if x.len() == y.len() {
                    x.iter_mut().zip(&y).for_each(|(p, q)| *p = p.max(*q));
                }
            }
        },
    )?;
    let mut added = vec![];
    let mut notes = vec![];
    for (x, c) in values.into_iter().zip(maxima) {
        let Some(idx) = outlier_channels(&c) else {
            continue;
        };
        let k = c.len();
        let rest = (0..k)
            .filter(|i| idx.binary_search(i).is_err())
            .map(|i| c[i])
            .fold(0.0f32, f32::max);
        let top = idx.iter().map(|&i| c[i]).fold(0.0f32, f32::max);
        let layers: Vec<String> = cands[&x]
            .iter()
            .map(|l| g.node(l.node).name.clone())
            .collect();
        added.extend(split_value(g, x, &idx, &cands[&x])?);
        notes.push(format!(
            "value '{}': {} of {k} channels reach |x| = {top:.3} (the others {rest:.3}); \
             they go through float beside the INT8 {}",
            g.value_name(x),
            idx.len(),
            layers.join(", ")
        ));
    }
    if !added.is_empty() {
        lpc_ir::infer_types(g).map_err(|e| QuantError::Internal(e.to_string()))?;
    }
    Ok((added, notes))
}

/// An output named `name` with `x`'s type, its last dimension `last` when given.
fn like(g: &Graph, x: ValueRef, name: String, last: Option<usize>) -> Output {
    let mut ty: ValueType = g.value_type(x).clone();
    if let (Some(n), Some(s)) = (last, ty.shape.as_mut()) {
        if let Some(d) = s.0.last_mut() {
            *d = lpc_ir::Dim::Known(n);
        }
    }
    Output { name, ty }
}

/// Rewrites every candidate layer reading `x` as inlier layer + float outlier layer.
fn split_value(
    g: &mut Graph,
    x: ValueRef,
    idx: &[usize],
    layers: &[Candidate],
) -> Result<Vec<NodeId>, QuantError> {
    let xname = g.value_name(x).to_string();
    let k = g
        .value_type(x)
        .shape
        .as_ref()
        .and_then(|s| s.0.last()?.known())
        .ok_or_else(|| QuantError::Internal(format!("'{xname}': last dimension unknown")))?;
    let mut mask = vec![1.0f32; k];
    for &i in idx {
        mask[i] = 0.0;
    }
    let mask = g.add_const(
        format!("{xname}__inlier_mask"),
        Tensor::from_f32(&[k], mask).map_err(QuantError::from)?,
    );
    let ids: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
    let ids = g.add_const(
        format!("{xname}__outlier_channels"),
        Tensor::from_i64(&[idx.len()], ids).map_err(QuantError::from)?,
    );
    let inl = g.add_node(
        format!("{xname}__inliers"),
        Op::Binary(lpc_ir::BinaryOp::Mul),
        &[Some(x), Some(mask)],
        vec![like(g, x, format!("{xname}__inliers"), None)],
    );
    let outl = g.add_node(
        format!("{xname}__outliers"),
        Op::Gather { axis: -1 },
        &[Some(x), Some(ids)],
        vec![like(g, x, format!("{xname}__outliers"), Some(idx.len()))],
    );
    let mut added = vec![];
    for l in layers {
        let n = l.node;
        let w = g.node_input(n, 1).expect("candidate weight");
        let wt = g.const_value(w).expect("candidate weight").clone();
        let (rows, cols) = (wt.shape()[0], wt.shape()[1]);
        let wv = wt.as_f32().map_err(QuantError::from)?;
        // Inlier weights: the outlier rows (columns of a transposed B) zeroed; outlier weights:
        // those rows alone.
        let mut w_in = wv.to_vec();
        let (w_out, out_shape): (Vec<f32>, [usize; 2]) = if l.trans_b {
            let mut o = Vec::with_capacity(rows * idx.len());
            for r in 0..rows {
                for &i in idx {
                    o.push(wv[r * cols + i]);
                    w_in[r * cols + i] = 0.0;
                }
            }
            (o, [rows, idx.len()])
        } else {
            let mut o = Vec::with_capacity(idx.len() * cols);
            for &i in idx {
                o.extend_from_slice(&wv[i * cols..(i + 1) * cols]);
                w_in[i * cols..(i + 1) * cols].fill(0.0);
            }
            (o, [idx.len(), cols])
        };
        let name = g.node(n).name.clone();
        let wname = g.value_name(w).to_string();
        let tensor = |s: &[usize], v: Vec<f32>| Tensor::from_f32(s, v).map_err(QuantError::from);
        let w_in = g.add_const(
            format!("{wname}__{name}__inliers"),
            tensor(&[rows, cols], w_in)?,
        );
        let w_out = g.add_const(
            format!("{wname}__{name}__outliers"),
            tensor(&out_shape, w_out)?,
        );
        g.set_node_input(n, 0, Some(ValueRef::first(inl)));
        g.set_node_input(n, 1, Some(w_in));
        let y = ValueRef::first(n);
        let yname = g.value_name(y).to_string();
        let op = match g.node(n).op.clone() {
            Op::Gemm { alpha, trans_b, .. } => Op::Gemm {
                alpha,
                beta: 1.0,
                trans_a: false,
                trans_b,
            },
            op => op,
        };
        let ly = like(g, y, format!("{yname}__outliers"), None);
        let side = g.add_node(
            format!("{name}__outliers"),
            op,
            &[Some(ValueRef::first(outl)), Some(w_out)],
            vec![ly],
        );
        let sum_out = like(g, y, yname.clone(), None);
        g.output_mut(y).name = format!("{yname}__inliers");
        let sum = g.add_node(
            format!("{name}__sum"),
            Op::Binary(lpc_ir::BinaryOp::Add),
            &[None, Some(ValueRef::first(side))],
            vec![sum_out],
        );
        g.replace_uses(y, ValueRef::first(sum));
        g.set_node_input(sum, 0, Some(y));
        added.push(side);
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlier_channels_are_the_few_large_ones() {
        let mut c = vec![1.0f32; 64];
        assert_eq!(outlier_channels(&c), None);
        c[5] = 24.0;
        assert_eq!(outlier_channels(&c), Some(vec![5]));
        // Two outliers, the second not yet 4× below the first: both go.
        c[9] = 7.0;
        assert_eq!(outlier_channels(&c), Some(vec![5, 9]));
        // More outliers than K/32 allows: no split.
        c[11] = 20.0;
        c[13] = 20.0;
        assert_eq!(outlier_channels(&c), None);
        assert_eq!(outlier_channels(&[0.0; 64]), None);
        let mut nan = vec![1.0f32; 64];
        nan[0] = f32::NAN;
        assert_eq!(outlier_channels(&nan), None);
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;
    use crate::{quantize, Config};

    /// `y = x·W` (MatMul) and `z = x·Bᵀ` (Gemm, transposed B) over an input whose channel 3 is
    /// 40× the others.
    fn model_and_data() -> (Graph, lpc_data::InMemory) {
        let w: Vec<String> = (0..64 * 8)
            .map(|i| format!("{:.3}", ((i as f32) * 0.37).sin() * 0.5))
            .collect();
        let text = format!(
            r#"graph @mm(%x: f32[1,6,64]) -> (%y, %z) {{
  %w = const f32[64,8] [{w}]
  %b = const f32[8,64] [{w}]
  %y = matmul(%x, %w) : f32[1,6,8] @mm
  %s = const i64[2] [6, 64]
  %x2 = reshape(%x, %s) : f32[6,64]
  %z = gemm(%x2, %b) {{alpha=1.0, beta=1.0, trans_a=false, trans_b=true}} : f32[6,8] @gemm
  return %y, %z
}}"#,
            w = w.join(", ")
        );
        let g = lpc_ir::text::parse(&text).unwrap();
        let samples = (0..8)
            .map(|s| {
                let x: Vec<f32> = (0..6 * 64)
                    .map(|i| {
                        let v = ((s * 384 + i) as f32 * 0.713).sin();
                        if i % 64 == 3 {
                            40.0 * v
                        } else {
                            v
                        }
                    })
                    .collect();
                vec![Tensor::from_f32(&[1, 6, 64], x).unwrap()]
            })
            .collect();
        (g, lpc_data::InMemory(samples))
    }

    #[test]
    fn split_keeps_the_float_function_and_adds_float_layers() {
        let (g, data) = model_and_data();
        let mut s = g.clone();
        let (float, notes) = split_outliers(&mut s, &data, 1, false, &BTreeSet::new()).unwrap();
        assert_eq!(float.len(), 2, "{notes:?}");
        assert!(notes[0].contains("1 of 64 channels"), "{notes:?}");
        for x in &data.0 {
            let a = lpc_ref::run(&g, x).unwrap();
            let b = lpc_ref::run(&s, x).unwrap();
            for (p, q) in a.iter().zip(&b) {
                for (u, v) in p.as_f32().unwrap().iter().zip(q.as_f32().unwrap()) {
                    assert!((u - v).abs() <= 1e-4 * (1.0 + u.abs()), "{u} vs {v}");
                }
            }
        }
        // Output names are kept.
        let names: Vec<&str> = s.outputs().iter().map(|&v| s.value_name(v)).collect();
        assert_eq!(names, ["y", "z"]);
    }

    #[test]
    fn split_raises_the_sqnr_of_an_outlier_input() {
        let (g, data) = model_and_data();
        let sqnr = |split: bool| {
            let cfg = Config {
                split_outliers: split,
                bias_correction: false,
                ..Config::default()
            };
            let q = quantize(&g, &data, &cfg).unwrap();
            let mut worst = f64::INFINITY;
            for x in &data.0 {
                let a = lpc_ref::run(&g, x).unwrap();
                let b = lpc_ref::run(&q.graph, x).unwrap();
                for (p, r) in a.iter().zip(&b) {
                    let (p, r) = (p.as_f32().unwrap(), r.as_f32().unwrap());
                    worst = worst.min(crate::compare::sqnr_of(p, r));
                }
            }
            worst
        };
        let (with, without) = (sqnr(true), sqnr(false));
        assert!(
            with > without + 6.0,
            "{with} dB with the split, {without} without"
        );
    }
}
