//! Quantization scales read off FakeQuantize ranges: a value's QDQ scales, a layer's
//! accumulator scales and its bias as integers in those units.

use lpc_ir::{DType, Graph, NodeId, Op, ValueRef};

/// Scales of a FakeQuantize output with constant ranges (`il == ol`, `ih == oh`):
/// `(hi − lo)/(levels − 1)` per range element, the QDQ scale the export writes. `None` when the
/// value is not such a FakeQuantize output.
fn fq_scales(g: &Graph, v: ValueRef) -> Option<Vec<f32>> {
    let Op::FakeQuantize { levels } = g.node(v.node).op else {
        return None;
    };
    let ins = g.node_inputs(v.node);
    let c = |k: usize| ins.get(k).copied().flatten().and_then(|v| g.const_value(v));
    let (il, ih, ol, oh) = (c(1)?, c(2)?, c(3)?, c(4)?);
    let (lo, hi) = (il.to_f32_vec(), ih.to_f32_vec());
    if lo != ol.to_f32_vec() || hi != oh.to_f32_vec() || levels < 2 {
        return None;
    }
    let steps = (levels - 1) as f32;
    Some(lo.iter().zip(&hi).map(|(&l, &h)| (h - l) / steps).collect())
}

/// The scale of one accumulator unit per output channel, `s_x · s_w`, of a Conv,
/// ConvTranspose (group 1) or Gemm (alpha = beta = 1, B constant) whose activation input and
/// constant weights are both FakeQuantize outputs with constant ranges (per-tensor, or
/// per-output-channel weights; per-channel activations only for a Conv whose groups each read
/// one input channel). An integer runtime adds the bias in these units, so a bias that is an
/// integer multiple of them is exact in both the FakeQuantize graph and its QDQ export
/// (`lpc quantize` rounds biases onto this grid; the export writes them as i32 +
/// DequantizeLinear). `None` when the layer is not of that form.
pub fn accumulator_scales(g: &Graph, n: NodeId) -> Option<Vec<f32>> {
    let ins = g.node_inputs(n);
    let (x, w) = (
        ins.first().copied().flatten()?,
        ins.get(1).copied().flatten()?,
    );
    let wq = g.node_inputs(w.node).first().copied().flatten()?;
    let wt = g.const_value(wq)?;
    let (sx, sw) = (fq_scales(g, x)?, fq_scales(g, w)?);
    let shape = wt.shape();
    let (m, group) = match &g.node(n).op {
        Op::Conv(a) => (*shape.first()?, a.group.max(1)),
        Op::ConvTranspose { conv, .. } if conv.group <= 1 => (*shape.get(1)?, 1),
        Op::Gemm {
            alpha,
            beta,
            trans_a: false,
            trans_b,
        } if *alpha == 1.0 && *beta == 1.0 && shape.len() == 2 => {
            (if *trans_b { shape[0] } else { shape[1] }, 1)
        }
        _ => return None,
    };
    if m == 0 || (sw.len() != 1 && sw.len() != m) {
        return None;
    }
    // Input channel read by output channel o: one per group when the activation is per-channel.
    let per_group = m / group;
    if sx.len() != 1 && (sx.len() != group || per_group * group != m) {
        return None;
    }
    Some(
        (0..m)
            .map(|o| {
                let a = if sx.len() == 1 {
                    sx[0]
                } else {
                    sx[o / per_group]
                };
                let b = if sw.len() == 1 { sw[0] } else { sw[o] };
                a * b
            })
            .collect(),
    )
}

/// The bias of layer `n` as integers in its accumulator units ([`accumulator_scales`]) when
/// every element is exactly such a multiple (and fits i32): `(q, scales)`.
pub fn integer_bias(g: &Graph, n: NodeId) -> Option<(Vec<i32>, Vec<f32>)> {
    let s = accumulator_scales(g, n)?;
    let b = g.const_value(g.node_inputs(n).get(2).copied().flatten()?)?;
    if b.dtype() != DType::F32
        || b.len() != s.len()
        || b.rank() > 1 && b.shape()[..b.rank() - 1].iter().any(|&d| d != 1)
    {
        return None;
    }
    let bv = b.to_f32_vec();
    let mut q = Vec::with_capacity(bv.len());
    for (&v, &sc) in bv.iter().zip(&s) {
        let k = (v / sc).round_ties_even();
        if !(sc > 0.0) || !k.is_finite() || k.abs() >= 2147483648.0 || k * sc != v {
            return None;
        }
        q.push(k as i32);
    }
    Some((q, s))
}
