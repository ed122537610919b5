//! The fold driver: one egg run per phase within its limits, extraction by the cost model
//! between phases, and the rule log per source node.

use crate::analysis::FoldAnalysis;
use crate::apply::rewrites;
use crate::extract::extract_loaded;
use crate::lang::FNode;
use crate::pipeline::{Phase, Pipeline};
use crate::to_egraph::{load, Loaded};
use crate::FoldError;
use egg::{Rewrite, RewriteScheduler, Runner, SearchMatches, StopReason};
use lpc_ir::Graph;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What one phase did.
#[derive(Clone, Debug)]
pub struct PhaseStats {
    /// Phase name.
    pub name: String,
    /// Iterations run.
    pub iterations: usize,
    /// E-nodes at the end.
    pub nodes: usize,
    /// E-classes at the end.
    pub classes: usize,
    /// Why the run stopped.
    pub stop: String,
    /// How often each rule fired.
    pub applied: BTreeMap<String, usize>,
    /// Wall time.
    pub time: Duration,
    /// Graph nodes after extraction.
    pub graph_nodes: usize,
}

/// Options of one fold.
#[derive(Clone, Debug, Default)]
pub struct FoldOptions {
    /// Stop after this phase.
    pub stop_after: Option<String>,
    /// Check the rules before trusting them (rules not shipped with lpc): after each phase's
    /// run, every rule is checked on its matches in the e-graph as `lpc rules check` does
    /// ([`crate::check::check_matches`], at most [`CHECKED_MATCHES`] per rule and phase), and a
    /// failure stops the fold with [`FoldError::UnsoundRule`] before anything is extracted.
    pub check_rules: bool,
}

/// Matches of one rule checked per phase when [`FoldOptions::check_rules`] is set.
pub const CHECKED_MATCHES: usize = 32;

/// The result of a fold: the graph, per-phase statistics, and the rule log per source node.
pub struct FoldResult {
    /// The folded graph.
    pub graph: Graph,
    /// One entry per phase run.
    pub phases: Vec<PhaseStats>,
    /// For each source node name: (phase, rule) pairs that fired on its value's class.
    pub fired: BTreeMap<String, Vec<(String, String)>>,
    /// The last phase's e-graph (for explanations) with its node classes.
    pub last: Option<Loaded>,
    /// With [`FoldOptions::check_rules`]: the rules that no match of this graph exercised
    /// (unchecked, and never applied either), in pipeline order.
    pub unexercised: Vec<String>,
}

fn stop_text(s: &Option<StopReason>) -> String {
    match s {
        Some(StopReason::Saturated) => "saturated".into(),
        Some(StopReason::IterationLimit(n)) => format!("iteration limit ({n})"),
        Some(StopReason::NodeLimit(n)) => format!("node limit ({n})"),
        Some(StopReason::TimeLimit(t)) => format!("time limit ({t:.2} s)"),
        Some(StopReason::Other(m)) => m.clone(),
        None => "not run".into(),
    }
}

/// Bytes one e-node is counted for against [`crate::Limits::bytes`]: the node (head and
/// children), its entries in the hash-cons and its class, and the class's facts, rounded up.
pub const BYTES_PER_NODE: usize = 512;

/// Matches applied between two checks of the limits.
const APPLY_CHUNK: usize = 64;

/// egg checks a phase's limits between two rules, so one rule's search or application can run
/// far past them (an associative rule on a large e-graph: seconds and gigabytes). This
/// scheduler checks them inside a rule too: matches are applied [`APPLY_CHUNK`] at a time with
/// the limits checked between, and once a limit is hit nothing more is searched or applied;
/// `hit` says which. (Searches are not cut short: a search limited to the first matches finds
/// old ones again and would make a growing e-graph look saturated.)
struct Bounded {
    start: Instant,
    limits: crate::pipeline::Limits,
    hit: std::rc::Rc<std::cell::RefCell<Option<String>>>,
}

impl Bounded {
    /// True (and `hit` set) when a limit is reached.
    fn over(&self, eg: &crate::analysis::FGraph) -> bool {
        if self.hit.borrow().is_some() {
            return true;
        }
        let l = &self.limits;
        let bytes = eg.total_size() * BYTES_PER_NODE + eg.analysis.value_bytes;
        let hit = if self.start.elapsed() > l.time {
            format!("time limit ({:.2} s)", l.time.as_secs_f64())
        } else if eg.total_size() > l.nodes {
            format!("node limit ({})", l.nodes)
        } else if bytes > l.bytes {
            format!("memory limit ({} MiB)", l.bytes >> 20)
        } else {
            return false;
        };
        *self.hit.borrow_mut() = Some(hit);
        true
    }
}

impl RewriteScheduler<FNode, FoldAnalysis> for Bounded {
    fn search_rewrite<'a>(
        &mut self,
        _iteration: usize,
        eg: &crate::analysis::FGraph,
        rw: &'a Rewrite<FNode, FoldAnalysis>,
    ) -> Vec<SearchMatches<'a, FNode>> {
        if self.over(eg) {
            return vec![];
        }
        rw.search(eg)
    }

    fn apply_rewrite(
        &mut self,
        _iteration: usize,
        eg: &mut crate::analysis::FGraph,
        rw: &Rewrite<FNode, FoldAnalysis>,
        matches: Vec<SearchMatches<FNode>>,
    ) -> usize {
        let mut applied = 0;
        for chunk in matches.chunks(APPLY_CHUNK) {
            if self.over(eg) {
                break;
            }
            applied += rw.apply(eg, chunk).len();
        }
        applied
    }
}

/// Runs one phase on a loaded graph; returns the runner's e-graph and the stats.
pub fn run_phase(loaded: Loaded, phase: &Phase) -> Result<(Loaded, PhaseStats), FoldError> {
    let start = Instant::now();
    let rws = rewrites(&phase.rules)?;
    let Loaded {
        name,
        eg,
        outputs,
        inputs,
        node_classes,
        names,
    } = loaded;
    let hit = std::rc::Rc::new(std::cell::RefCell::new(None));
    let runner = Runner::<FNode, FoldAnalysis, ()>::new(FoldAnalysis::default())
        .with_egraph(eg)
        .with_scheduler(Bounded {
            start,
            limits: phase.limits.clone(),
            hit: hit.clone(),
        })
        .with_iter_limit(phase.limits.iterations)
        .with_node_limit(phase.limits.nodes)
        .with_time_limit(phase.limits.time)
        .with_hook(|r| match r.egraph.analysis.conflicts.first() {
            Some(c) => Err(format!("conflict: {c}")),
            None => Ok(()),
        })
        .run(&rws);
    let mut eg = runner.egraph;
    eg.rebuild();
    if let Some(c) = eg.analysis.conflicts.first() {
        return Err(FoldError::Conflict {
            phase: phase.name.clone(),
            msg: c.clone(),
        });
    }
    let mut applied = BTreeMap::new();
    for it in &runner.iterations {
        for (r, n) in &it.applied {
            *applied.entry(r.to_string()).or_insert(0) += n;
        }
    }
    let stats = PhaseStats {
        name: phase.name.clone(),
        iterations: runner.iterations.len(),
        nodes: eg.total_number_of_nodes(),
        classes: eg.number_of_classes(),
        // A limit the scheduler hit inside an iteration is the reason the run stopped, even
        // when the iteration then ended as if saturated (it applied nothing more).
        stop: hit
            .borrow()
            .clone()
            .unwrap_or_else(|| stop_text(&runner.stop_reason)),
        applied,
        time: start.elapsed(),
        graph_nodes: 0,
    };
    Ok((
        Loaded {
            name,
            eg,
            outputs,
            inputs,
            node_classes,
            names,
        },
        stats,
    ))
}

/// Folds a graph through the pipeline.
pub fn fold(g: &Graph, p: &Pipeline, opts: &FoldOptions) -> Result<FoldResult, FoldError> {
    if let Some(s) = &opts.stop_after {
        if !p.phases.iter().any(|ph| &ph.name == s) {
            return Err(FoldError::UnknownPhase {
                name: s.clone(),
                known: p.phase_names().join(", "),
            });
        }
    }
    let mut g = g.clone();
    lpc_ir::infer_types(&mut g)?;
    let mut stats = vec![];
    let mut fired: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut last = None;
    // Per rule name: matches checked (only with `check_rules`).
    let mut checked: Vec<(String, usize)> = vec![];
    // Extracted graphs name each node after its (first) output value, so a later phase sees
    // the source node "fc" as "logits": rules are reported under the source node's name.
    let first_out = |g: &Graph| -> Vec<(String, String)> {
        g.node_ids()
            .into_iter()
            .filter_map(|n| {
                let node = g.node(n);
                node.outputs
                    .first()
                    .map(|o| (node.name.clone(), o.name.clone()))
            })
            .collect()
    };
    let origin: std::collections::HashMap<String, String> = first_out(&g)
        .into_iter()
        .map(|(node, value)| (value, node))
        .collect();
    for ph in &p.phases {
        let source: std::collections::HashMap<String, String> = first_out(&g)
            .into_iter()
            .map(|(node, value)| {
                let src = origin.get(&value).cloned().unwrap_or_else(|| node.clone());
                (node, src)
            })
            .collect();
        let loaded = load(&g)?;
        let (l, mut st) = run_phase(loaded, ph)?;
        if opts.check_rules {
            let mut reports = crate::check::new_reports(&ph.rules);
            crate::check::check_matches(&l.eg, &g.name, &ph.rules, &mut reports, CHECKED_MATCHES);
            for (def, r) in ph.rules.iter().zip(&reports) {
                if let Some(f) = r.failures.first() {
                    return Err(FoldError::UnsoundRule {
                        loc: def.loc.to_string(),
                        rule: def.name.clone(),
                        phase: ph.name.clone(),
                        failure: f.clone(),
                    });
                }
                match checked.iter_mut().find(|(n, _)| *n == def.name) {
                    Some((_, k)) => *k += r.checked,
                    None => checked.push((def.name.clone(), r.checked)),
                }
            }
        }
        let mut by_class: std::collections::HashMap<egg::Id, Vec<egg::Symbol>> = Default::default();
        for (rule, at) in &l.eg.analysis.fired {
            let rules = by_class.entry(l.eg.find(*at)).or_default();
            if !rules.contains(rule) {
                rules.push(*rule);
            }
        }
        for (node, class) in &l.node_classes {
            let node = source.get(node).unwrap_or(node);
            for rule in by_class.get(&l.eg.find(*class)).into_iter().flatten() {
                let e = fired.entry(node.clone()).or_default();
                let item = (ph.name.clone(), rule.to_string());
                if !e.contains(&item) {
                    e.push(item);
                }
            }
        }
        g = extract_loaded(&l)?;
        st.graph_nodes = g.len();
        stats.push(st);
        last = Some(l);
        if opts.stop_after.as_deref() == Some(ph.name.as_str()) {
            break;
        }
    }
    Ok(FoldResult {
        graph: g,
        phases: stats,
        fired,
        last,
        unexercised: checked
            .into_iter()
            .filter(|(_, k)| *k == 0)
            .map(|(n, _)| n)
            .collect(),
    })
}

/// True when `g` holds quantizers or ONNX integer ops the fold lowers (FakeQuantize,
/// Quantize/DequantizeLinear, DynamicQuantizeLinear, MatMulInteger, ConvInteger, QLinearConv,
/// QLinearMatMul): what `run`, `bench` and `compile` fold before they run a model.
pub fn has_quantizers(g: &Graph) -> bool {
    g.node_ids().into_iter().any(|n| {
        matches!(
            g.node(n).op,
            lpc_ir::Op::FakeQuantize { .. }
                | lpc_ir::Op::QuantizeLinear { .. }
                | lpc_ir::Op::DequantizeLinear { .. }
                | lpc_ir::Op::DynamicQuantizeLinear
                | lpc_ir::Op::MatMulInteger
                | lpc_ir::Op::ConvInteger(_)
                | lpc_ir::Op::QLinearConv(_)
                | lpc_ir::Op::QLinearMatMul
        )
    })
}

/// Folds a loaded graph with the built-in pipeline, or with rule files or a pipeline file
/// (whose rules are then checked first, [`FoldOptions::check_rules`]); returns the result.
pub fn fold_graph(
    g: &Graph,
    rules: &[PathBuf],
    pipeline_file: Option<&Path>,
    stop_after: Option<&str>,
) -> Result<FoldResult, FoldError> {
    let p = Pipeline::from_args(rules, pipeline_file)?;
    fold(
        g,
        &p,
        &FoldOptions {
            stop_after: stop_after.map(str::to_string),
            check_rules: !rules.is_empty() || pipeline_file.is_some(),
        },
    )
}
