//! Activation ranges: one per placement group from its merged statistics, per channel for
//! depthwise inputs, and the split of Concat joins whose inputs differ too much to share one.

use crate::config::{Config, Preset};
use crate::fq::ActQuant;
use crate::placement::{ActPoint, Placement};
use crate::stats::{estimate, Grid, TensorStats};
use lpc_ir::{Graph, Op};

/// Chooses the range of one group from its merged statistics.
pub(crate) fn group_range(
    st: &TensorStats,
    cfg: &Config,
    name: &str,
) -> (ActQuant, Option<String>) {
    let unsigned = st.min >= 0.0;
    let grid = if unsigned {
        Grid::Unsigned
    } else {
        match cfg.preset {
            Preset::Performance => Grid::Symmetric,
            Preset::Mixed => Grid::Asymmetric,
        }
    };
    let mk = |lo: f32, hi: f32| match grid {
        Grid::Unsigned => ActQuant::unsigned(hi),
        Grid::Symmetric => ActQuant::symmetric(hi.max(-lo)),
        Grid::Asymmetric => ActQuant::asymmetric(lo, hi, true),
    };
    let Some((lo, hi)) = estimate(st, cfg.estimator, grid) else {
        return (
            ActQuant::unsigned(1.0),
            Some(format!("{name}: no finite values seen; range [0, 1] used")),
        );
    };
    let ok = |lo: f32, hi: f32| {
        lo.is_finite() && hi.is_finite() && hi - lo > 0.0 && hi > 0.0
            || lo < 0.0 && hi >= 0.0 && hi - lo > 0.0
    };
    if ok(lo, hi) && !(grid == Grid::Unsigned && hi <= 0.0) {
        return (mk(lo, hi), None);
    }
    // Estimator collapsed the range: fall back to min/max including 0, then to [0, 1].
    let (mn, mx) = (st.min.min(0.0), st.max.max(0.0));
    if mx - mn > 0.0 && mx.is_finite() && mn.is_finite() {
        let q = if mn >= 0.0 {
            ActQuant::unsigned(mx)
        } else {
            mk(mn, mx.max(f32::MIN_POSITIVE))
        };
        return (
            q,
            Some(format!(
                "{name}: estimator gave an empty range; min/max including 0 used"
            )),
        );
    }
    (
        ActQuant::unsigned(1.0),
        Some(format!(
            "{name}: constant zero tensor; range [0, 1] used (0 stays exact)"
        )),
    )
}

const CONCAT_RATIO: f32 = 16.0;

pub(crate) fn split_wide_concats(
    g: &Graph,
    plan: &mut Placement,
    stats: &[TensorStats],
    warnings: &mut Vec<String>,
) {
    for &cg in &plan.concat_groups.clone() {
        let members: Vec<usize> = (0..plan.acts.len())
            .filter(|&i| plan.acts[i].group == cg)
            .collect();
        let mags: Vec<f32> = members
            .iter()
            .map(|&i| stats[i].min.abs().max(stats[i].max.abs()))
            .collect();
        let (lo, hi) = mags
            .iter()
            .fold((f32::INFINITY, 0f32), |(a, b), &m| (a.min(m), b.max(m)));
        if lo > 0.0 && hi / lo <= CONCAT_RATIO {
            continue;
        }
        warnings.push(format!(
            "group '{}': input ranges differ by {:.0}x; its Concat inputs keep float (no shared scale)",
            plan.groups[cg],
            if lo > 0.0 { hi / lo } else { f32::INFINITY }
        ));
        for &i in &members {
            let a: &mut ActPoint = &mut plan.acts[i];
            a.consumers
                .retain(|&(n, _)| !matches!(g.node(n).op, Op::Concat { .. }));
            plan.groups.push(g.value_name(a.value).to_string());
            a.group = plan.groups.len() - 1;
        }
    }
    plan.acts.retain(|a| !a.consumers.is_empty());
}

/// True when every consumer of the point is a depthwise Conv reading it as its input.
pub(crate) fn depthwise_only(g: &Graph, a: &ActPoint) -> bool {
    a.consumers.iter().all(|&(n, slot)| {
        let Op::Conv(attrs) = &g.node(n).op else {
            return false;
        };
        let w = g.node_input(n, 1).and_then(|w| g.const_value(w).cloned());
        slot == 0
            && w.is_some_and(|w| {
                w.rank() >= 3 && w.shape()[1] == 1 && w.shape()[0] == attrs.group && attrs.group > 1
            })
    })
}

/// Per-channel min/max ranges with one dtype and one zero point for all channels: unsigned
/// (zero point 0) when every channel is non-negative; otherwise symmetric (performance) or
/// asymmetric around a common zero point (mixed: the median of the channels' own zero points),
/// each channel's scale the smallest that covers its range. A depthwise conv reads each channel
/// alone, so per-channel scales fold into its output scale; the shared zero point is what keeps
/// that fold exact (the conv pads with one input zero point).
pub(crate) fn channel_ranges(
    st: &TensorStats,
    cfg: &Config,
    warnings: &mut Vec<String>,
    name: &str,
) -> Vec<ActQuant> {
    let mut ranges = vec![];
    for (c, (&lo, &hi)) in st.channel_min.iter().zip(&st.channel_max).enumerate() {
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        if !(hi - lo > 0.0) || !lo.is_finite() || !hi.is_finite() {
            warnings.push(format!(
                "{name} channel {c}: constant zero; range [0, 1] used"
            ));
            ranges.push((0.0, 1.0));
        } else {
            ranges.push((lo, hi));
        }
    }
    if ranges.iter().all(|&(lo, _)| lo >= 0.0) {
        return ranges
            .iter()
            .map(|&(_, hi)| ActQuant::unsigned(hi))
            .collect();
    }
    if cfg.preset == Preset::Performance {
        let a = |&(lo, hi): &(f32, f32)| hi.max(-lo);
        return ranges.iter().map(|r| ActQuant::symmetric(a(r))).collect();
    }
    let mut zps: Vec<f32> = ranges
        .iter()
        .filter(|&&(lo, _)| lo < 0.0)
        .map(|&(lo, hi)| (-lo / (hi - lo) * 255.0).round_ties_even())
        .collect();
    zps.sort_by(f32::total_cmp);
    let zp = zps[zps.len() / 2].clamp(1.0, 254.0);
    ranges
        .iter()
        .map(|&(lo, hi)| {
            let s = (hi / (255.0 - zp)).max(-lo / zp);
            ActQuant::asymmetric(-zp * s, (255.0 - zp) * s, true)
        })
        .collect()
}
