//! Activation ranges widened to their observed min/max: the search's first, free step.

use crate::fq::ActQuant;
use crate::report::RangeInfo;
use crate::QuantError;
use lpc_ir::quant::spans_min_range;
use lpc_ir::{Graph, Tensor};

/// A copy of `g` whose per-tensor activation quantizers (named `VALUE__fq`, as
/// [`crate::insert_fake_quantize`] names them) take the observed min/max of
/// `ranges` instead of the estimator's range (same grid: u8, symmetric or asymmetric i8).
/// Returns the graph and the number of quantizers widened. Free in MACs: everything stays INT8.
pub fn minmax_ranges(g: &Graph, ranges: &[RangeInfo]) -> Result<(Graph, usize), QuantError> {
    let mut out = g.clone();
    let mut changed = 0;
    for r in ranges {
        if r.channels != 1 {
            continue;
        }
        let Some(n) = out.find_node(&format!("{}__fq", r.value)) else {
            continue;
        };
        let (mn, mx) = (r.observed[0].min(0.0), r.observed[1].max(0.0));
        if !spans_min_range(mn, mx) || r.fallback.is_some() {
            continue;
        }
        let q = r.q;
        let symmetric = q.signed && (q.lo + q.hi * 128.0 / 127.0).abs() <= 1e-6 * q.hi.abs();
        let nq = if !q.signed {
            ActQuant::unsigned(mx)
        } else if symmetric {
            ActQuant::symmetric(mx.max(-mn))
        } else {
            ActQuant::asymmetric(mn, mx, true)
        };
        if nq.lo >= q.lo && nq.hi <= q.hi {
            continue; // already at least as wide
        }
        let lo = out.add_const(format!("{}__fq_lo_mm", r.value), Tensor::scalar_f32(nq.lo));
        let hi = out.add_const(format!("{}__fq_hi_mm", r.value), Tensor::scalar_f32(nq.hi));
        for (slot, v) in [(1, lo), (2, hi), (3, lo), (4, hi)] {
            out.set_node_input(n, slot, Some(v));
        }
        changed += 1;
    }
    out.remove_dead();
    Ok((out, changed))
}
