//! The unit order the search walks: sensitivity, or gain per MAC.

use super::measure::Measure;
use super::options::Order;
use super::sensitivity::Sensitivity;
use super::target::Target;
use super::units::Unit;

/// Relative output noise power (noise / signal) of a measurement.
pub(crate) fn rel_noise(m: &Measure) -> f64 {
    10f64.powf(-m.sqnr_db / 10.0)
}

/// The unit order the search walks: `ranking` (most sensitive first) reordered per `order`.
/// `base` is the fully quantized model's measurement on the ranking subset.
pub fn search_order(
    ranking: &[Sensitivity],
    base: &Measure,
    units: &[Unit],
    target: &Target,
    total_macs: u64,
    order: Order,
) -> Vec<usize> {
    match order {
        Order::Sensitivity => ranking.iter().map(|s| s.unit).collect(),
        Order::GainPerMac => {
            // Cost: MACs that leave INT8 (0 for joins and layers that are not INT8 anyway),
            // plus 0.01% of the model so that gains, not only zero costs, decide among the
            // free units.
            let eps = (total_macs.max(1) as f64) * 1e-4;
            let gains = |s: &Sensitivity| -> (f64, f64) {
                let noise = rel_noise(base) - rel_noise(&s.measure);
                match target {
                    Target::MinSqnr(_) => (noise, 0.0),
                    Target::MaxDrop { .. } => {
                        (target.value(base) - target.value(&s.measure), noise)
                    }
                }
            };
            let mut helpful = vec![];
            let mut rest = vec![];
            for (pos, s) in ranking.iter().enumerate() {
                let (g0, g1) = gains(s);
                if g0 > 0.0 || (g0 == 0.0 && g1 > 0.0) {
                    let u = &units[s.unit];
                    let cost = if u.int8 { u.macs as f64 } else { 0.0 } + eps;
                    helpful.push((g0 / cost, g1 / cost, pos, s.unit));
                } else {
                    rest.push(s.unit);
                }
            }
            helpful.sort_by(|a, b| {
                b.0.total_cmp(&a.0)
                    .then(b.1.total_cmp(&a.1))
                    .then(a.2.cmp(&b.2))
            });
            helpful.into_iter().map(|h| h.3).chain(rest).collect()
        }
    }
}
