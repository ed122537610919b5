//! FakeQuantize insertion: the activation and weight quantizers of a placement, and the
//! graph nodes that apply them.

use crate::fq::{ActQuant, WeightQuant};
use crate::placement::Placement;
use crate::QuantError;
use lpc_ir::{Graph, NodeId, Op, Output, Tensor, ValueRef};

/// An activation quantizer as [`insert_fake_quantize`] takes it: the value, its quantized
/// consumers (node, input slot) and its ranges.
pub(crate) type ActPoint = (ValueRef, Vec<(NodeId, usize)>, Vec<ActQuant>);
/// Every activation point.
pub(crate) type ActPoints = Vec<ActPoint>;
/// Weight quantizers: (layer, weight slot, quantizer).
pub(crate) type WeightPoints = Vec<(NodeId, usize, WeightQuant)>;

pub(crate) fn quantizers(
    plan: &Placement,
    act_q: &[Vec<ActQuant>],
    wq: &[Option<WeightQuant>],
) -> (ActPoints, WeightPoints) {
    let acts = plan
        .acts
        .iter()
        .zip(act_q)
        .map(|(a, q)| (a.value, a.consumers.clone(), q.clone()))
        .collect();
    let weights = plan
        .layers
        .iter()
        .zip(wq)
        .filter_map(|(l, q)| Some((l.node, l.weight?.0, q.clone()?)))
        .collect();
    (acts, weights)
}

/// Inserts activation and weight FakeQuantize nodes into `g`. Each activation point gets one
/// FakeQuantize (levels 256) read by its consumers; each weight one (levels 255, per channel).
pub fn insert_fake_quantize(
    g: &mut Graph,
    acts: &[ActPoint],
    weights: &[(NodeId, usize, WeightQuant)],
) -> Result<(), QuantError> {
    for (v, consumers, q) in acts {
        let name = g.value_name(*v).to_string();
        let ty = g.value_type(*v).clone();
        let (lo_t, hi_t) = if q.len() == 1 {
            (Tensor::scalar_f32(q[0].lo), Tensor::scalar_f32(q[0].hi))
        } else {
            // Per channel on axis 1: shape [1, C, 1, ...] of the value's rank.
            let rank = ty.shape.as_ref().map_or(4, |s| s.rank()).max(2);
            let mut shape = vec![1usize; rank];
            shape[1] = q.len();
            let mk =
                |f: &dyn Fn(&ActQuant) -> f32| Tensor::from_f32(&shape, q.iter().map(f).collect());
            (
                mk(&|a| a.lo).map_err(QuantError::from)?,
                mk(&|a| a.hi).map_err(QuantError::from)?,
            )
        };
        let lo = g.add_const(format!("{name}__fq_lo"), lo_t);
        let hi = g.add_const(format!("{name}__fq_hi"), hi_t);
        let n = g.add_node(
            format!("{name}__fq"),
            Op::FakeQuantize {
                levels: ActQuant::LEVELS,
            },
            &[Some(*v), Some(lo), Some(hi), Some(lo), Some(hi)],
            vec![Output {
                name: format!("{name}__fq"),
                ty,
            }],
        );
        for &(c, slot) in consumers {
            g.set_node_input(c, slot, Some(ValueRef::first(n)));
        }
    }
    for (layer, slot, q) in weights {
        let w = g
            .node_input(*layer, *slot)
            .ok_or_else(|| QuantError::Internal("weight input vanished".into()))?;
        let t = g
            .const_value(w)
            .ok_or_else(|| QuantError::Internal("weight is not constant".into()))?
            .clone();
        let name = g.node(*layer).name.clone();
        let (lo, hi) = q.range_tensors(t.rank());
        let lo = g.add_const(format!("{name}__wfq_lo"), lo);
        let hi = g.add_const(format!("{name}__wfq_hi"), hi);
        let ty = g.value_type(w).clone();
        let n = g.add_node(
            format!("{name}__wfq"),
            Op::FakeQuantize {
                levels: WeightQuant::LEVELS,
            },
            &[Some(w), Some(lo), Some(hi), Some(lo), Some(hi)],
            vec![Output {
                name: format!("{name}__wfq"),
                ty,
            }],
        );
        g.set_node_input(*layer, *slot, Some(ValueRef::first(n)));
    }
    Ok(())
}

pub(crate) fn fq_tensor(t: &Tensor, q: &[ActQuant]) -> Result<Tensor, QuantError> {
    let v = t.as_f32().map_err(QuantError::from)?;
    let c = q.len();
    let inner: usize = if t.rank() >= 2 {
        t.shape()[2..].iter().product()
    } else {
        1
    };
    if c > 1 && t.shape().get(1) != Some(&c) {
        return Err(QuantError::ChannelAxis {
            what: format!("per-channel quantizer of {c} channels"),
            axis: 1,
            shape: t.shape().to_vec(),
        });
    }
    // Runs of `inner` elements share a channel: no division per element.
    let mut out = Vec::with_capacity(v.len());
    if c == 1 {
        out.extend(v.iter().map(|&x| q[0].apply(x)));
    } else {
        for (i, run) in v.chunks(inner.max(1)).enumerate() {
            let qc = &q[i % c];
            out.extend(run.iter().map(|&x| qc.apply(x)));
        }
    }
    Tensor::from_f32(t.shape(), out).map_err(QuantError::from)
}
