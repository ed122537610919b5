//! FastBiasCorrection: each quantized layer evaluated on the FP32 model's inputs.

use super::out_axis;
use super::taps::TapConv;
use crate::batch::for_batches;
use crate::error::run_err;
use crate::fq::{ActQuant, WeightQuant};
use crate::insert::fq_tensor;
use crate::placement::Placement;
use crate::QuantError;
use lpc_data::SampleSource;
use lpc_ir::{Graph, NodeId, Tensor, ValueRef};
use std::collections::HashMap;

/// Per-layer bias-correction accumulators: tap sums for 2-D convs, output differences otherwise.
#[derive(Clone)]
enum BiasAcc {
    Taps(Option<(Vec<f64>, Vec<f64>, u64)>),
    Out(Option<(Vec<f64>, u64)>),
}

/// FastBiasCorrection: for each quantized layer, the mean per output channel of
/// `FP32 output − output of the quantized layer on the same FP32 inputs` over `data`.
/// 2-D convolutions (nearly all of a CNN's layers) get it exactly from per-tap input sums,
/// without a second convolution; other layers are evaluated again on quantized inputs.
pub(crate) fn bias_shifts(
    g: &Graph,
    plan: &Placement,
    act_q: &[Vec<ActQuant>],
    wq: &[Option<WeightQuant>],
    data: &dyn SampleSource,
    batch: usize,
    progress: bool,
) -> Result<Vec<Option<Vec<f32>>>, QuantError> {
    // Quantizer per (consumer, slot).
    let mut slot_q: HashMap<(NodeId, usize), Vec<ActQuant>> = HashMap::new();
    for (a, q) in plan.acts.iter().zip(act_q) {
        for &c in &a.consumers {
            slot_q.insert(c, q.clone());
        }
    }
    // Tap-sum layers by input value; the others by output value, with their inputs stashed.
    let mut taps: Vec<Option<TapConv>> = vec![];
    let mut tap_in: HashMap<ValueRef, Vec<usize>> = HashMap::new();
    let mut need: HashMap<ValueRef, usize> = HashMap::new();
    let mut out_of: HashMap<ValueRef, usize> = HashMap::new();
    let mut wfq: Vec<Option<Tensor>> = vec![];
    for (li, (l, q)) in plan.layers.iter().zip(wq).enumerate() {
        let tc = match (q, slot_q.get(&(l.node, 0))) {
            (Some(q), Some(aq)) => TapConv::new(g, l, aq, q)?,
            _ => None,
        };
        if tc.is_some() {
            let x = g.node_input(l.node, 0).expect("act slot 0");
            tap_in.entry(x).or_default().push(li);
            taps.push(tc);
            wfq.push(None);
            continue;
        }
        taps.push(None);
        for v in g.node_inputs(l.node).into_iter().flatten() {
            if g.const_value(v).is_none() {
                *need.entry(v).or_default() += 1;
            }
        }
        out_of.insert(ValueRef::first(l.node), li);
        wfq.push(match (l.weight, q) {
            (Some((slot, _)), Some(q)) => Some(
                q.apply(
                    g.const_value(g.node_input(l.node, slot).expect("w"))
                        .expect("const"),
                )?,
            ),
            _ => None,
        });
    }
    let layers = Quantized {
        g,
        plan,
        slot_q: &slot_q,
        wfq: &wfq,
    };
    let init: Vec<BiasAcc> = taps
        .iter()
        .map(|t| match t {
            Some(_) => BiasAcc::Taps(None),
            None => BiasAcc::Out(None),
        })
        .collect();
    let acc: Vec<BiasAcc> = for_batches(
        data,
        batch,
        "bias",
        progress,
        || init.clone(),
        |acc: &mut Vec<BiasAcc>, inputs, first, _k| {
            let mut stash: HashMap<ValueRef, (Tensor, usize)> = HashMap::new();
            let mut err: Option<QuantError> = None;
            lpc_ref::run_observed(g, inputs, |v, t| {
                if err.is_some() {
                    return;
                }
                for &li in tap_in.get(&v).map_or(&[][..], |v| v.as_slice()) {
                    let (Some(tc), BiasAcc::Taps(a)) = (&taps[li], &mut acc[li]) else {
                        continue;
                    };
                    if let Err(e) = tc.observe(t, a) {
                        err = Some(e);
                    }
                }
                if let Some(&uses) = need.get(&v) {
                    stash.insert(v, (t.clone(), uses));
                }
                if let Some(&li) = out_of.get(&v) {
                    if let BiasAcc::Out(a) = &mut acc[li] {
                        if let Err(e) = layers.layer_error(li, &stash, t, a) {
                            err = Some(e);
                        }
                    }
                    // Drop inputs no other layer still needs.
                    for x in g.node_inputs(plan.layers[li].node).into_iter().flatten() {
                        if let Some(e) = stash.get_mut(&x) {
                            e.1 -= 1;
                            if e.1 == 0 {
                                stash.remove(&x);
                            }
                        }
                    }
                }
            })
            .map_err(run_err(first))?;
            err.map_or(Ok(()), Err)
        },
        |a, b| {
            for (x, y) in a.iter_mut().zip(b) {
                match (x, y) {
                    (BiasAcc::Taps(x), BiasAcc::Taps(Some(y))) => match x {
                        Some((t, tq, n)) => {
                            t.iter_mut().zip(&y.0).for_each(|(p, q)| *p += q);
                            tq.iter_mut().zip(&y.1).for_each(|(p, q)| *p += q);
                            *n += y.2;
                        }
                        None => *x = Some(y),
                    },
                    (BiasAcc::Out(x), BiasAcc::Out(Some(y))) => match x {
                        Some((s, n)) => {
                            s.iter_mut().zip(&y.0).for_each(|(p, q)| *p += q);
                            *n += y.1;
                        }
                        None => *x = Some(y),
                    },
                    _ => {}
                }
            }
        },
    )?;
    Ok(acc
        .into_iter()
        .zip(&taps)
        .map(|(a, tc)| match (a, tc) {
            (BiasAcc::Taps(Some((t, tq, n))), Some(tc)) if n > 0 => Some(tc.shift(&t, &tq, n)),
            (BiasAcc::Out(Some((s, n))), _) if n > 0 => {
                Some(s.iter().map(|x| (x / n as f64) as f32).collect())
            }
            _ => None,
        })
        .collect())
}

/// What [`Quantized::layer_error`] evaluates a layer with: the graph, the placement, the
/// quantizer per (consumer, slot) and the fake-quantized weights per layer.
struct Quantized<'a> {
    g: &'a Graph,
    plan: &'a Placement,
    slot_q: &'a HashMap<(NodeId, usize), Vec<ActQuant>>,
    wfq: &'a [Option<Tensor>],
}

impl Quantized<'_> {
    /// Adds to `acc` (sums per output channel, values per channel) the difference between layer
    /// `li`'s FP32 output `fp32_out` and its output on quantized inputs (from `stash`) and
    /// weights.
    fn layer_error(
        &self,
        li: usize,
        stash: &HashMap<ValueRef, (Tensor, usize)>,
        fp32_out: &Tensor,
        acc: &mut Option<(Vec<f64>, u64)>,
    ) -> Result<(), QuantError> {
        let Quantized {
            g,
            plan,
            slot_q,
            wfq,
        } = *self;
        let l = &plan.layers[li];
        let node = g.node(l.node);
        let mut owned: Vec<Option<Tensor>> = vec![];
        for (slot, v) in g.node_inputs(l.node).into_iter().enumerate() {
            let Some(v) = v else {
                owned.push(None);
                continue;
            };
            let t = if l.weight.map(|w| w.0) == Some(slot) && wfq[li].is_some() {
                wfq[li].clone().expect("checked")
            } else if let Some(c) = g.const_value(v) {
                (**c).clone()
            } else {
                let (x, _) = stash.get(&v).ok_or_else(|| {
                    QuantError::Internal(format!(
                        "bias correction: input of '{}' not seen",
                        node.name
                    ))
                })?;
                match slot_q.get(&(l.node, slot)) {
                    Some(q) => fq_tensor(x, q)?,
                    None => x.clone(),
                }
            };
            owned.push(Some(t));
        }
        let refs: Vec<Option<&Tensor>> = owned.iter().map(Option::as_ref).collect();
        let q = lpc_ref::eval(&node.op, &refs, 1).map_err(|e| QuantError::BiasCorrection {
            node: node.name.clone(),
            msg: e.to_string(),
        })?;
        let (Ok(a), Some(Ok(b))) = (fp32_out.as_f32(), q.first().map(|t| t.as_f32())) else {
            return Ok(());
        };
        if a.len() != b.len() || fp32_out.rank() == 0 {
            return Ok(());
        }
        let ax = out_axis(l.kind, fp32_out.rank());
        let c = fp32_out.shape()[ax];
        let inner: usize = fp32_out.shape()[ax + 1..].iter().product();
        let (sums, n) = acc.get_or_insert_with(|| (vec![0.0; c], 0));
        if sums.len() != c {
            return Ok(());
        }
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            sums[(i / inner.max(1)) % c] += (x - y) as f64;
        }
        *n += (a.len() / c) as u64;
        Ok(())
    }
}
