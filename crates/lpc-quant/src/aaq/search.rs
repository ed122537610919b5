//! The accuracy-aware search: from the fully quantized model, widen the activation ranges,
//! rank the units, return the shortest prefix of the order within budget to FP32 (galloping,
//! re-ranking, bisection), then trim and refine the FP32 set.

use super::evaluator::Evaluator;
use super::measure::Measure;
use super::options::{SearchConfig, SearchOptions};
use super::order::{rel_noise, search_order};
use super::outcome::{Outcome, Step};
use super::sensitivity::{first_samples, rank_on_first, RankData, Sensitivity};
use super::target::Target;
use super::units::{int8_fraction, layer_macs, units, with_fp32, Unit};
use super::widen::minmax_ranges;
use crate::report::RangeInfo;
use crate::QuantError;
use lpc_data::{InMemory, SampleSource};
use lpc_ir::Graph;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// What a search starts from: the fully quantized graph `q` with its activation `ranges` (the
/// quantization report's, when known), the FP32 `reference` after the same folding, and the
/// evaluator `ev` over the evaluation data `eval_data`.
#[derive(Clone, Copy)]
pub struct SearchInput<'a> {
    /// The fully quantized graph.
    pub q: &'a Graph,
    /// The quantization report's activation ranges, when known.
    pub ranges: Option<&'a [RangeInfo]>,
    /// The FP32 graph after the same folding.
    pub reference: &'a Graph,
    /// Measures on the evaluation data.
    pub ev: &'a Evaluator<'a>,
    /// The evaluation data.
    pub eval_data: &'a dyn SampleSource,
}

/// Accuracy-aware search. `q` is the fully quantized graph and `reference` the FP32 graph after
/// the same folding ([`crate::Quantized`]'s `graph` and `reference`); `ev` measures on the
/// evaluation data. Ranks units on the first `rank_samples` evaluation samples, then returns
/// the ranking's prefix to FP32, growing it 1, 2, 4, ... units and bisecting, until the
/// smallest prefix within budget is found. `log` receives one line per step.
///
/// When `ranges` (the quantization report's activation ranges) are given, the first step
/// widens every activation range to the observed min/max ([`minmax_ranges`]); that graph
/// replaces `q` when it measures better, before any layer goes to FP32.
///
/// Uses the default [`SearchOptions`] (gain-per-MAC order, refine pass over the 8 largest
/// FP32 layers; the trim pass is off: it did worse on ppocr det, see docs/accuracy-aware.md);
/// see [`search_with`].
pub fn search(
    q: &Graph,
    ranges: Option<&[RangeInfo]>,
    reference: &Graph,
    ev: &Evaluator,
    eval_data: &dyn SampleSource,
    cfg: &SearchConfig,
    log: impl FnMut(&str),
) -> Result<Outcome, QuantError> {
    let opts = SearchOptions::default();
    let input = SearchInput {
        q,
        ranges,
        reference,
        ev,
        eval_data,
    };
    search_with(&input, cfg, &opts, log)
}

/// [`search`] with explicit [`SearchOptions`]: the unit order walked by the prefix search
/// ([`search_order`]) and the refine pass that returns expensive FP32 layers to INT8 when the
/// budget still holds without them.
pub fn search_with(
    input: &SearchInput,
    cfg: &SearchConfig,
    opts: &SearchOptions,
    log: impl FnMut(&str),
) -> Result<Outcome, QuantError> {
    search_from(input, cfg, opts, None, log)
}

/// [`search_with`] where `known`, when given, is `q` already measured by `ev`.
pub(crate) fn search_from(
    input: &SearchInput,
    cfg: &SearchConfig,
    opts: &SearchOptions,
    known: Option<Measure>,
    mut log: impl FnMut(&str),
) -> Result<Outcome, QuantError> {
    let t0 = Instant::now();
    let log: &mut dyn FnMut(&str) = &mut log;
    let first = input.eval_data.get(0)?;
    let macs = layer_macs(input.reference, &first)?;
    let total_macs: u64 = macs.values().sum();
    let units = units(input.q, &macs)?;
    let target = cfg.target;
    let mut initial = match known {
        Some(m) => m,
        None => input.ev.measure(input.q)?,
    };
    let full_frac = int8_fraction(&units, &[], total_macs);
    log(&format!(
        "fully quantized: {} ({} units, {:.1}% of MACs INT8)",
        target.show(&initial),
        units.len(),
        full_frac * 100.0
    ));
    let widened = widen_ranges(input, &target, &mut initial, log)?;
    let q = widened.as_ref().unwrap_or(input.q);
    let mut s = Search {
        q,
        reference: input.reference,
        ev: input.ev,
        eval_data: input.eval_data,
        cfg,
        opts,
        log,
        units,
        total_macs,
        target,
        steps: vec![],
        times: vec![],
        last_k: 0,
        cache: BTreeMap::new(),
    };
    s.times
        .push(("measure_int8".to_string(), t0.elapsed().as_secs_f64()));
    s.steps.push(Step {
        fp32_units: 0,
        added: vec![],
        back_to_int8: vec![],
        measure: initial.clone(),
        int8_macs: full_frac,
        met: target.met(&initial),
    });
    let mut out = Outcome {
        graph: q.clone(),
        target,
        reached: target.met(&initial),
        initial: initial.clone(),
        fin: initial.clone(),
        units: s.units.clone(),
        ranking: vec![],
        rank_base: None,
        order: vec![],
        order_kind: opts.order,
        fp32: vec![],
        steps: vec![],
        total_macs,
        int8_macs: full_frac,
        sample_runs: (0, 0),
        times: vec![],
        message: String::new(),
    };
    if out.reached {
        out.message = format!(
            "budget met by the fully quantized model: {}",
            target.show(&initial)
        );
        out.sample_runs = (0, s.ev.sample_runs.load(Ordering::Relaxed));
        s.times.push(("total".into(), t0.elapsed().as_secs_f64()));
        out.steps = s.steps;
        out.times = s.times;
        return Ok(out);
    }
    let (base, ranking, mut order) = s.rank(&mut out)?;
    let kmax = s.mac_floor(&order);
    let hi = s.find_prefix(&mut order, kmax, &mut out)?;
    s.choose(hi, &order, &initial, &mut out);
    if out.reached && opts.trim {
        s.trim(&mut out)?;
    }
    if out.reached && opts.refine > 0 {
        s.refine(&mut out)?;
    }
    s.conclude(&order, kmax, &mut out);
    out.ranking = ranking;
    out.rank_base = Some(base);
    out.order = order;
    s.times.push(("total".into(), t0.elapsed().as_secs_f64()));
    out.steps = s.steps;
    out.times = s.times;
    Ok(out)
}

/// Step 1, when the fully quantized model misses the budget and `ranges` are known: every
/// activation range widened to the observed min/max ([`minmax_ranges`]). Returns that graph
/// when it measures better (and updates `initial`), before any layer goes to FP32.
fn widen_ranges(
    input: &SearchInput,
    target: &Target,
    initial: &mut Measure,
    log: &mut dyn FnMut(&str),
) -> Result<Option<Graph>, QuantError> {
    let mut widened = None;
    if let (Some(r), false) = (input.ranges, target.met(initial)) {
        let (g2, k) = minmax_ranges(input.q, r)?;
        if k > 0 {
            let m = input.ev.measure(&g2)?;
            let take = target.better(&m, initial);
            log(&format!(
                "min/max ranges on {k} activation quantizers: {}{}",
                target.show(&m),
                if take {
                    " (kept)"
                } else {
                    " (not better: dropped)"
                }
            ));
            if take {
                *initial = m;
                widened = Some(g2);
            }
        }
    }
    Ok(widened)
}

/// The search after its first step: the graph it returns units of to FP32, what it measures
/// with, and what it has done so far.
struct Search<'a> {
    /// The fully quantized graph (ranges widened when that measured better).
    q: &'a Graph,
    /// The FP32 graph after the same folding.
    reference: &'a Graph,
    /// Measures on the evaluation data.
    ev: &'a Evaluator<'a>,
    /// The evaluation data.
    eval_data: &'a dyn SampleSource,
    cfg: &'a SearchConfig,
    opts: &'a SearchOptions,
    /// Receives one line per step.
    log: &'a mut dyn FnMut(&str),
    /// All units of `q`.
    units: Vec<Unit>,
    /// MACs per sample of all layers.
    total_macs: u64,
    target: Target,
    /// Evaluated steps, in evaluation order.
    steps: Vec<Step>,
    /// Wall time per stage (seconds).
    times: Vec<(String, f64)>,
    /// The prefix length of the last prefix evaluated.
    last_k: usize,
    /// Prefixes measured: length → (measurement, graph).
    cache: BTreeMap<usize, (Measure, Graph)>,
}

impl<'a> Search<'a> {
    /// Evaluation samples in the ranking subset.
    fn n_rank(&self) -> usize {
        self.cfg.rank_samples.clamp(1, self.eval_data.len())
    }

    /// `q` with the units `fp32` (indices into `units`) in FP32.
    fn with_units(&self, fp32: &[usize]) -> Result<Graph, QuantError> {
        let restored: Vec<&Unit> = fp32.iter().map(|&i| &self.units[i]).collect();
        with_fp32(self.q, self.reference, &restored)
    }

    /// The ranking subset (the first [`Search::n_rank`] evaluation samples) and its labels.
    fn rank_subset(&self) -> Result<(InMemory, Option<&'a [i64]>), QuantError> {
        let n_rank = self.n_rank();
        let sub = first_samples(self.eval_data, n_rank)?;
        let labels = self.ev.labels.map(|l| &l[..n_rank.min(l.len())]);
        Ok((sub, labels))
    }

    /// Step 2: the units ranked on the ranking subset, most sensitive first, and the order the
    /// prefix search walks. Returns the fully quantized model's measurement there, the
    /// ranking and the order.
    fn rank(
        &mut self,
        out: &mut Outcome,
    ) -> Result<(Measure, Vec<Sensitivity>, Vec<usize>), QuantError> {
        let t = Instant::now();
        let n_rank = self.n_rank();
        let sub = RankData {
            data: self.eval_data,
            labels: self.ev.labels,
            n: n_rank,
            batch: self.ev.batch,
            progress: self.ev.progress,
        };
        let target = self.target;
        let (base, ranking, runs) =
            rank_on_first(self.q, self.reference, &self.units, &sub, &target)?;
        out.sample_runs.0 = runs;
        self.times.push(("rank".into(), t.elapsed().as_secs_f64()));
        (self.log)(&format!(
            "ranked {} units on {n_rank} samples ({runs} model runs of one sample) in {:.1} s; fully quantized there: {}",
            self.units.len(),
            t.elapsed().as_secs_f64(),
            target.show(&base)
        ));
        let order = search_order(
            &ranking,
            &base,
            &self.units,
            &target,
            self.total_macs,
            self.opts.order,
        );
        Ok((base, ranking, order))
    }

    /// Largest prefix of `order` allowed by the MAC floor.
    fn mac_floor(&self, order: &[usize]) -> usize {
        let mut kmax = 0;
        while kmax < order.len()
            && int8_fraction(&self.units, &order[..kmax + 1], self.total_macs) + 1e-12
                >= self.cfg.min_int8_macs
        {
            kmax += 1;
        }
        kmax
    }

    /// Measures the first `k` units of `order` in FP32 (once per `k`), logs and records the
    /// step. Returns whether the budget is met.
    fn eval_prefix(&mut self, k: usize, order: &[usize]) -> Result<bool, QuantError> {
        let target = self.target;
        if let Some((m, _)) = self.cache.get(&k) {
            return Ok(target.met(m));
        }
        let g = self.with_units(&order[..k])?;
        let m = self.ev.measure(&g)?;
        let frac = int8_fraction(&self.units, &order[..k], self.total_macs);
        let added: Vec<String> = if k > self.last_k {
            order[self.last_k..k]
                .iter()
                .map(|&i| self.units[i].name.clone())
                .collect()
        } else {
            vec![]
        };
        let met = target.met(&m);
        (self.log)(&format!(
            "{} units in FP32{}: {} ({:.1}% of MACs INT8){}",
            k,
            if added.is_empty() {
                String::new()
            } else {
                format!(" (+{})", added.join(", "))
            },
            target.show(&m),
            frac * 100.0,
            if met { " ✓" } else { "" }
        ));
        self.steps.push(Step {
            fp32_units: k,
            added,
            back_to_int8: vec![],
            measure: m.clone(),
            int8_macs: frac,
            met,
        });
        self.last_k = k;
        self.cache.insert(k, (m, g));
        Ok(met)
    }

    /// Step 3: the shortest prefix of `order` (at most `kmax` units) within budget. Gallop: 1,
    /// 2, 4, ... (capped at `kmax`), then re-rank between the last miss and first hit
    /// ([`SearchOptions::rerank`]) and bisect there. `None` when no prefix meets the budget.
    fn find_prefix(
        &mut self,
        order: &mut Vec<usize>,
        kmax: usize,
        out: &mut Outcome,
    ) -> Result<Option<usize>, QuantError> {
        let t = Instant::now();
        let mut lo = 0; // known miss
        let mut hi = None; // known hit
        let mut k = 1;
        while k <= kmax {
            if self.eval_prefix(k, order)? {
                hi = Some(k);
                break;
            }
            lo = k;
            if k == kmax {
                break;
            }
            k = (k * 2).min(kmax);
        }
        if let (Some(h), true) = (hi, self.opts.rerank) {
            if h - lo > 2 {
                self.rerank(order, lo, h, out)?;
            }
        }
        if let Some(mut h) = hi {
            while h - lo > 1 {
                let mid = (lo + h) / 2;
                if self.eval_prefix(mid, order)? {
                    h = mid;
                } else {
                    lo = mid;
                }
            }
            hi = Some(h);
        }
        self.times
            .push(("search".into(), t.elapsed().as_secs_f64()));
        Ok(hi)
    }

    /// Re-ranks the units `lo..h` of `order` on the ranking subset with the first `lo` already
    /// in FP32, and reorders them per [`SearchOptions::order`].
    fn rerank(
        &mut self,
        order: &mut Vec<usize>,
        lo: usize,
        h: usize,
        out: &mut Outcome,
    ) -> Result<(), QuantError> {
        let t = Instant::now();
        let target = self.target;
        let n_rank = self.n_rank();
        let (sub, labels) = self.rank_subset()?;
        let sev = Evaluator::new(
            self.reference,
            &sub,
            labels,
            self.ev.batch,
            self.ev.progress,
        )?;
        let here = sev.measure(&self.with_units(&order[..lo])?)?;
        let mut again = vec![];
        for &u in &order[lo..h] {
            let mut with_u = order[..lo].to_vec();
            with_u.push(u);
            again.push(Sensitivity {
                unit: u,
                measure: sev.measure(&self.with_units(&with_u)?)?,
            });
        }
        // The same ordering rule, now relative to the prefix already in FP32.
        again.sort_by(|a, b| match target {
            Target::MaxDrop { .. } => target
                .value(&a.measure)
                .total_cmp(&target.value(&b.measure))
                .then(b.measure.sqnr_db.total_cmp(&a.measure.sqnr_db)),
            Target::MinSqnr(_) => b.measure.sqnr_db.total_cmp(&a.measure.sqnr_db),
        });
        let tail = search_order(
            &again,
            &here,
            &self.units,
            &target,
            self.total_macs,
            self.opts.order,
        );
        order.splice(lo..h, tail);
        out.sample_runs.0 += sev.sample_runs.load(Ordering::Relaxed);
        (self.log)(&format!(
            "re-ranked units {}..{h} with the first {lo} in FP32 on {n_rank} samples in {:.1} s (there: {})",
            lo + 1,
            t.elapsed().as_secs_f64(),
            target.show(&here)
        ));
        self.times
            .push(("rerank".into(), t.elapsed().as_secs_f64()));
        Ok(())
    }

    /// The prefix chosen: the shortest within budget (`hi`), else the best measured one (fewest
    /// FP32 units among equals; `initial` for none), into `out`.
    fn choose(&mut self, hi: Option<usize>, order: &[usize], initial: &Measure, out: &mut Outcome) {
        let target = self.target;
        let chosen = match hi {
            Some(h) => h,
            None => {
                // Best measured model (fewest FP32 units among equals).
                let mut best = 0;
                let mut best_m = initial.clone();
                for (&k, (m, _)) in &self.cache {
                    if target.better(m, &best_m) {
                        best = k;
                        best_m = m.clone();
                    }
                }
                best
            }
        };
        out.reached = hi.is_some();
        out.fp32 = order[..chosen].to_vec();
        if let Some((m, g)) = self.cache.remove(&chosen) {
            out.fin = m;
            out.graph = g;
        }
    }

    /// Step 4 ([`SearchOptions::trim`]): the prefix may hold layers that later ones made
    /// unnecessary. Ranked again, now from the FP32 set's side (loss per MAC when one goes back
    /// to INT8), and the longest prefix of that order that can go back within budget is found
    /// (galloping, bisection).
    fn trim(&mut self, out: &mut Outcome) -> Result<(), QuantError> {
        let t = Instant::now();
        let n_rank = self.n_rank();
        let back = self.trim_order(out)?;
        (self.log)(&format!(
            "trim: {} FP32 layers ranked by loss per MAC back in INT8 on {n_rank} samples in {:.1} s",
            back.len(),
            t.elapsed().as_secs_f64()
        ));
        // j = how many of `back` return to INT8; j = 0 is the (met) prefix.
        let mut tried: BTreeMap<usize, (bool, Measure, Graph)> = BTreeMap::new();
        let mut good = 0; // known within budget
        let mut bad = None; // known over
        let mut j = 1;
        while j <= back.len() {
            if self.try_back(j, &back, out, &mut tried)? {
                good = j;
                if j == back.len() {
                    break;
                }
                j = (j * 2).min(back.len());
            } else {
                bad = Some(j);
                break;
            }
        }
        if let Some(mut b) = bad {
            while b - good > 1 {
                let mid = (good + b) / 2;
                if self.try_back(mid, &back, out, &mut tried)? {
                    good = mid;
                } else {
                    b = mid;
                }
            }
        }
        if good > 0 {
            if let Some((true, m, g)) = tried.remove(&good) {
                out.fp32.retain(|i| !back[..good].contains(i));
                out.fin = m;
                out.graph = g;
            }
        }
        self.times.push(("trim".into(), t.elapsed().as_secs_f64()));
        Ok(())
    }

    /// The INT8-capable layers of `out`'s FP32 set, by metric loss per MAC regained when each
    /// alone goes back to INT8 on the ranking subset (smallest first).
    fn trim_order(&mut self, out: &mut Outcome) -> Result<Vec<usize>, QuantError> {
        let target = self.target;
        let units = &self.units;
        let (sub, labels) = self.rank_subset()?;
        let sev = Evaluator::new(
            self.reference,
            &sub,
            labels,
            self.ev.batch,
            self.ev.progress,
        )?;
        let here = sev.measure(&out.graph)?;
        let loss = |m: &Measure| -> (f64, f64) {
            let noise = rel_noise(m) - rel_noise(&here);
            match target {
                Target::MinSqnr(_) => (noise, 0.0),
                Target::MaxDrop { .. } => (target.value(m) - target.value(&here), noise),
            }
        };
        let mut cands = vec![];
        for &c in out
            .fp32
            .iter()
            .filter(|&&i| units[i].int8 && units[i].macs > 0)
        {
            let trial: Vec<usize> = out.fp32.iter().copied().filter(|&i| i != c).collect();
            let m = sev.measure(&self.with_units(&trial)?)?;
            let (l0, l1) = loss(&m);
            let macs = units[c].macs as f64;
            cands.push((l0 / macs, l1 / macs, c));
        }
        cands.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then(a.1.total_cmp(&b.1))
                .then(a.2.cmp(&b.2))
        });
        out.sample_runs.0 += sev.sample_runs.load(Ordering::Relaxed);
        Ok(cands.iter().map(|c| c.2).collect())
    }

    /// Measures `out`'s FP32 set with the first `j` layers of `back` returned to INT8, logs and
    /// records the step in `tried`. Returns whether the budget is met.
    fn try_back(
        &mut self,
        j: usize,
        back: &[usize],
        out: &Outcome,
        tried: &mut BTreeMap<usize, (bool, Measure, Graph)>,
    ) -> Result<bool, QuantError> {
        let target = self.target;
        let keep: Vec<usize> = out
            .fp32
            .iter()
            .copied()
            .filter(|i| !back[..j].contains(i))
            .collect();
        let g = self.with_units(&keep)?;
        let m = self.ev.measure(&g)?;
        let frac = int8_fraction(&self.units, &keep, self.total_macs);
        let met = target.met(&m);
        let names: Vec<String> = back[..j]
            .iter()
            .map(|&i| self.units[i].name.clone())
            .collect();
        (self.log)(&format!(
            "trim: {j} layers back to INT8 ({}): {} ({:.1}% of MACs INT8){}",
            names.join(", "),
            target.show(&m),
            frac * 100.0,
            if met { " ✓" } else { "" }
        ));
        self.steps.push(Step {
            fp32_units: keep.len(),
            added: vec![],
            back_to_int8: names,
            measure: m.clone(),
            int8_macs: frac,
            met,
        });
        tried.insert(j, (met, m, g));
        Ok(met)
    }

    /// Step 5 ([`SearchOptions::refine`]): the prefix may hold expensive layers that later
    /// (cheaper) ones made unnecessary. The largest INT8-capable layers of the FP32 set (each at
    /// least 0.5% of all MACs) go back to INT8 one by one, each kept there when the budget
    /// still holds.
    fn refine(&mut self, out: &mut Outcome) -> Result<(), QuantError> {
        let t = Instant::now();
        let target = self.target;
        let floor = 0.005 * self.total_macs as f64;
        let units = &self.units;
        let mut cands: Vec<usize> = out
            .fp32
            .iter()
            .copied()
            .filter(|&i| units[i].int8 && units[i].macs as f64 >= floor)
            .collect();
        cands.sort_by(|a, b| units[*b].macs.cmp(&units[*a].macs).then(a.cmp(b)));
        cands.truncate(self.opts.refine);
        for c in cands {
            let trial: Vec<usize> = out.fp32.iter().copied().filter(|&i| i != c).collect();
            let g = self.with_units(&trial)?;
            let m = self.ev.measure(&g)?;
            let frac = int8_fraction(&self.units, &trial, self.total_macs);
            let met = target.met(&m);
            (self.log)(&format!(
                "refine: {} back to INT8: {} ({:.1}% of MACs INT8){}",
                self.units[c].name,
                target.show(&m),
                frac * 100.0,
                if met {
                    " ✓ kept"
                } else {
                    " (budget missed: stays FP32)"
                }
            ));
            self.steps.push(Step {
                fp32_units: trial.len(),
                added: vec![],
                back_to_int8: vec![self.units[c].name.clone()],
                measure: m.clone(),
                int8_macs: frac,
                met,
            });
            if met {
                out.fp32 = trial;
                out.fin = m;
                out.graph = g;
            }
        }
        self.times
            .push(("refine".into(), t.elapsed().as_secs_f64()));
        Ok(())
    }

    /// The INT8 MAC fraction, sample runs and one-line conclusion of `out` (`order` walked,
    /// at most `kmax` of its units allowed in FP32).
    fn conclude(&self, order: &[usize], kmax: usize, out: &mut Outcome) {
        let target = self.target;
        let cfg = self.cfg;
        let chosen = out.fp32.len();
        out.int8_macs = int8_fraction(&self.units, &out.fp32, self.total_macs);
        out.sample_runs.1 = self.ev.sample_runs.load(Ordering::Relaxed);
        out.message = if out.reached {
            format!(
                "budget met ({}) with {} units in FP32: {}, {:.1}% of MACs INT8",
                target.describe(),
                chosen,
                target.show(&out.fin),
                out.int8_macs * 100.0
            )
        } else {
            let why = if kmax < order.len() {
                format!(
                    "returning more than {kmax} of {} units to FP32 would leave less than {:.1}% of MACs INT8",
                    order.len(),
                    cfg.min_int8_macs * 100.0
                )
            } else {
                format!("even with all {} units in FP32", order.len())
            };
            format!(
                "budget NOT met ({}): {why}; best model found has {} units in FP32: {}, {:.1}% of MACs INT8",
                target.describe(),
                chosen,
                target.show(&out.fin),
                out.int8_macs * 100.0
            )
        };
    }
}
