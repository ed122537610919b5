//! Activation ranges: one per placement group from its merged statistics, per channel for
//! depthwise inputs, and the split of Concat joins whose inputs differ too much to share one.

use crate::config::{Config, Preset};
use crate::fq::ActQuant;
use crate::placement::{ActPoint, Placement};
use crate::stats::{estimate, Grid, TensorStats};
use lpc_ir::quant::spans_min_range;
use lpc_ir::{Graph, Op};

/// Chooses the range of one group from its merged statistics: the estimator's, else (when
/// it spans less than `lpc_ir::quant::MIN_RANGE`) the observed min/max including 0, else — the values are
/// numerically zero — u8 `[0, 1]`, in which they quantize to exactly 0. Each fallback comes
/// with a note.
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
    if spans_min_range(lo, hi) {
        return (mk(lo, hi), None);
    }
    let (mn, mx) = (st.min.min(0.0), st.max.max(0.0));
    if spans_min_range(mn, mx) {
        return (
            mk(mn, mx),
            Some(format!(
                "{name}: estimator gave an empty range; min/max including 0 used"
            )),
        );
    }
    let why = if (mx - mn).is_finite() {
        numerically_zero(mn, mx)
    } else {
        format!("range [{mn:e}, {mx:e}] too wide for f32")
    };
    (
        ActQuant::unsigned(1.0),
        Some(format!(
            "{name}: {why}; range [0, 1] used (its values quantize to 0)"
        )),
    )
}

/// Why a tensor spanning `[lo, hi]` (less than `MIN_RANGE`) gets a fixed range.
fn numerically_zero(lo: f32, hi: f32) -> String {
    if lo == 0.0 && hi == 0.0 {
        "all zero".into()
    } else {
        format!("numerically zero (values in [{lo:e}, {hi:e}])")
    }
}

const CONCAT_RATIO: f32 = 16.0;

/// Gives the inputs of each Concat whose input ranges differ by more than [`CONCAT_RATIO`]
/// their own groups and keeps them float at the Concat; points left with no quantized reader
/// are dropped, with their statistics (`stats[i]` stays that of `plan.acts[i]`).
pub(crate) fn split_wide_concats(
    g: &Graph,
    plan: &mut Placement,
    stats: &mut Vec<TensorStats>,
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
    let (acts, kept): (Vec<ActPoint>, Vec<TensorStats>) = plan
        .acts
        .drain(..)
        .zip(stats.drain(..))
        .filter(|(a, _)| !a.consumers.is_empty())
        .unzip();
    (plan.acts, *stats) = (acts, kept);
    drop_empty_groups(plan);
}

/// Renumbers the groups so that each one has a point: a split leaves the Concat's group, and
/// the new groups of points read by the Concat alone, without any (those values stay float).
fn drop_empty_groups(plan: &mut Placement) {
    let mut index: Vec<Option<usize>> = vec![None; plan.groups.len()];
    let mut groups = vec![];
    for a in &mut plan.acts {
        a.group = *index[a.group].get_or_insert_with(|| {
            groups.push(plan.groups[a.group].clone());
            groups.len() - 1
        });
    }
    plan.concat_groups = plan
        .concat_groups
        .iter()
        .filter_map(|&c| index[c])
        .collect();
    plan.groups = groups;
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
        if !spans_min_range(lo, hi) {
            warnings.push(format!(
                "{name} channel {c}: {}; range [0, 1] used",
                numerically_zero(lo, hi)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Estimator;
    use lpc_ir::quant::FqRanges;
    use lpc_ir::Tensor;

    fn stats(xs: &[f32], shape: &[usize]) -> TensorStats {
        let mut s = TensorStats::default();
        s.observe(xs, shape, shape[0]);
        s
    }

    /// The quantizer has integer parameters (what the QDQ export and the fold need) with
    /// normal f32 scales.
    fn check_qparams(q: &[ActQuant]) {
        let lo = Tensor::from_f32(&[q.len()], q.iter().map(|q| q.lo).collect()).unwrap();
        let hi = Tensor::from_f32(&[q.len()], q.iter().map(|q| q.hi).collect()).unwrap();
        let r = FqRanges::new([&lo, &hi, &lo, &hi], ActQuant::LEVELS, Some(1)).unwrap();
        match r.qparams() {
            Ok(p) => assert!(p.scale.iter().all(|s| s.is_normal()), "{q:?}: {p:?}"),
            Err(e) => panic!("{q:?}: {e}"),
        }
    }

    /// Every estimator and preset on a tensor of one repeated value (in a batch of 2 and as a
    /// single element): a usable range, and the value quantized to itself (or to 0 when it is
    /// numerically zero), with a note exactly when a fallback was used.
    fn constant(v: f32, expect: f32, note: Option<&str>) {
        let estimators = [
            Estimator::Mse,
            Estimator::MinMax,
            Estimator::MeanMinMax,
            Estimator::Quantile(0.999),
        ];
        for st in [stats(&[v; 8], &[2, 4]), stats(&[v], &[1])] {
            for estimator in estimators {
                for preset in [Preset::Mixed, Preset::Performance] {
                    let cfg = Config {
                        estimator,
                        preset,
                        ..Config::default()
                    };
                    let (q, n) = group_range(&st, &cfg, "x");
                    check_qparams(&[q]);
                    let what = format!("{v} {estimator} {preset}: {q:?} {n:?}");
                    // Asymmetric ranges are widened by a few ulps to put 0 on a level.
                    let y = q.apply(v);
                    assert!(
                        y == expect || (y - expect).abs() <= 1e-5 * expect.abs(),
                        "{what}"
                    );
                    match note {
                        Some(m) => assert!(n.as_ref().is_some_and(|n| n.contains(m)), "{what}"),
                        None => assert!(n.as_ref().is_none_or(|n| !n.contains("[0, 1]")), "{what}"),
                    }
                }
            }
        }
    }

    #[test]
    fn zero_subnormal_and_constant_activations() {
        constant(0.0, 0.0, Some("range [0, 1] used"));
        constant(-0.0, 0.0, Some("range [0, 1] used"));
        constant(3.1e-39, 0.0, Some("range [0, 1] used"));
        constant(-3.1e-39, 0.0, Some("range [0, 1] used"));
        constant(1e-18, 0.0, Some("range [0, 1] used"));
        // Constant non-zero values stay exact: 0 and the value are the range's ends.
        constant(2.5, 2.5, None);
        constant(-2.5, -2.5, None);
        constant(1e-10, 1e-10, None);
        constant(-7e-12, -7e-12, None);
        // A subnormal minimum beside normal values: the normal range is used as it is.
        let st = stats(&[-3.1e-39, 0.5, 1.0, 0.25], &[1, 4]);
        let (q, n) = group_range(&st, &Config::default(), "x");
        check_qparams(&[q]);
        assert!(n.is_none() && q.hi >= 0.99, "{q:?} {n:?}");
        // Nothing seen (an empty tensor): [0, 1] with its own note.
        let (q, n) = group_range(&TensorStats::default(), &Config::default(), "x");
        assert_eq!((q.lo, q.hi), (0.0, 1.0));
        assert!(n.unwrap().contains("no finite values"));
    }

    #[test]
    fn zero_and_subnormal_depthwise_channels() {
        // [1, 4 channels, 2]: zero, subnormal, constant negative, normal.
        let xs = [0.0, 0.0, 3.1e-39, -3.1e-39, -2.0, -2.0, -1.0, 3.0];
        let st = stats(&xs, &[1, 4, 2]);
        for preset in [Preset::Mixed, Preset::Performance] {
            let cfg = Config {
                preset,
                ..Config::default()
            };
            let mut warnings = vec![];
            let q = channel_ranges(&st, &cfg, &mut warnings, "x");
            check_qparams(&q);
            assert_eq!(warnings.len(), 2, "{warnings:?}");
            assert!(warnings[0].ends_with("channel 0: all zero; range [0, 1] used"));
            assert!(
                warnings[1].contains("channel 1: numerically zero (values in [-3.1e-39, 3.1e-39])")
            );
            assert_eq!(q[1].apply(3.1e-39), 0.0);
            assert_eq!(q[2].apply(-2.0), -2.0, "{preset}: {:?}", q[2]);
        }
    }
}
