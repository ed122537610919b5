//! Rules as egg rewrites, phases as data (`passes/pipeline.toml`), and the fold driver: one
//! egg run per phase within its limits, extraction by the cost model between phases.

use crate::analysis::{FGraph, FoldAnalysis};
use crate::convert::{add_const, extract, load, Loaded};
use crate::lang::{FNode, Head};
use crate::registry::{HOut, HVal, HelperCtx};
use crate::rules::{parse_rules, HArg, RuleDef};
use crate::FoldError;
use egg::{
    Applier, Id, Pattern, PatternAst, Rewrite, Runner, SimpleScheduler, StopReason, Subst, Symbol,
    Var,
};
use lpc_ir::Graph;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a rule did not apply to one match.
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    /// A condition is false (its text).
    Condition(String),
    /// A helper gave no value.
    Helper(String),
}

/// Checks a rule's conditions and computes its `let` bindings for one match; the new
/// constants are added to the e-graph. `Err` says which condition or helper refused.
pub fn bind(eg: &mut FGraph, def: &RuleDef, root: Id, subst: &Subst) -> Result<Subst, Refusal> {
    for c in &def.conds {
        let ids: Vec<Id> = c.vars.iter().map(|v| subst[*v]).collect();
        if !(c.spec.eval)(eg, &ids, c.cmp.as_ref()) {
            let vars: Vec<String> = c.vars.iter().map(|v| v.to_string()).collect();
            let cmp = c
                .cmp
                .as_ref()
                .map(|(_, w)| format!(" .. {}", w.join("|")))
                .unwrap_or_default();
            return Err(Refusal::Condition(format!(
                "{} {}{cmp} (at {})",
                c.spec.name,
                vars.join(" "),
                c.loc
            )));
        }
    }
    let mut s = subst.clone();
    for l in &def.lets {
        let args: Vec<HVal> = l
            .args
            .iter()
            .map(|a| match a {
                HArg::Var(v) => HVal::Class(s[*v]),
                HArg::Num(x) => HVal::Num(*x),
            })
            .collect();
        let out = {
            let ctx = HelperCtx {
                eg,
                root,
                lhs: &def.lhs,
                subst: &s,
            };
            (l.spec.eval)(&ctx, &args)
        };
        let id = match out {
            Some(HOut::Tensor(t)) => add_const(eg, t),
            Some(HOut::Attr(op)) => eg.add(FNode {
                head: Head::Attr(crate::lang::AttrKey::new(op)),
                children: vec![],
            }),
            Some(HOut::Absent) => eg.add(FNode {
                head: Head::Absent,
                children: vec![],
            }),
            None => {
                return Err(Refusal::Helper(format!(
                    "{} gave no value (at {})",
                    l.spec.name, l.loc
                )))
            }
        };
        s.insert(l.var, id);
    }
    Ok(s)
}

/// A parsed rule as an egg applier.
pub struct RuleApplier {
    /// The rule.
    pub def: Arc<RuleDef>,
}

impl Applier<FNode, FoldAnalysis> for RuleApplier {
    fn apply_one(
        &self,
        eg: &mut FGraph,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<FNode>>,
        rule_name: Symbol,
    ) -> Vec<Id> {
        let Ok(s) = bind(eg, &self.def, eclass, subst) else {
            return vec![];
        };
        eg.analysis.current_rule = Some(rule_name);
        let id = eg.add_instantiation(&self.def.rhs, &s);
        let changed = eg.union(eclass, id);
        eg.analysis.current_rule = None;
        if changed {
            eg.analysis.fired.push((rule_name, eclass));
            vec![eclass]
        } else {
            vec![]
        }
    }

    fn vars(&self) -> Vec<Var> {
        vec![]
    }
}

/// Turns parsed rules into egg rewrites.
pub fn rewrites(defs: &[Arc<RuleDef>]) -> Result<Vec<Rewrite<FNode, FoldAnalysis>>, FoldError> {
    defs.iter()
        .map(|d| {
            Rewrite::new(
                d.name.clone(),
                Pattern::new(d.lhs.clone()),
                RuleApplier { def: d.clone() },
            )
            .map_err(|e| FoldError::Rules(format!("{}: rule '{}': {e}", d.loc, d.name)))
        })
        .collect()
}

/// E-graph limits of one phase.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Maximum iterations.
    pub iterations: usize,
    /// Maximum e-nodes.
    pub nodes: usize,
    /// Maximum time.
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            iterations: 30,
            nodes: 200_000,
            time: Duration::from_secs(10),
        }
    }
}

/// One phase: a name, its rules and its limits.
#[derive(Clone, Debug)]
pub struct Phase {
    /// Phase name (the `--stop-after` value).
    pub name: String,
    /// Its rules, in file order.
    pub rules: Vec<Arc<RuleDef>>,
    /// Its limits.
    pub limits: Limits,
}

/// An ordered list of phases.
#[derive(Clone, Debug, Default)]
pub struct Pipeline {
    /// The phases, in order.
    pub phases: Vec<Phase>,
}

/// The built-in pipeline and rule files, compiled into the binary.
const BUILTIN: &[(&str, &str)] = &[
    (
        "pipeline.toml",
        include_str!("../../../passes/pipeline.toml"),
    ),
    (
        "lower/fake-quantize.rules",
        include_str!("../../../passes/lower/fake-quantize.rules"),
    ),
    (
        "propagate/move-dequantize.rules",
        include_str!("../../../passes/propagate/move-dequantize.rules"),
    ),
    (
        "fuse/conv-gemm.rules",
        include_str!("../../../passes/fuse/conv-gemm.rules"),
    ),
    (
        "fuse/depthwise.rules",
        include_str!("../../../passes/fuse/depthwise.rules"),
    ),
    (
        "fuse/eltwise.rules",
        include_str!("../../../passes/fuse/eltwise.rules"),
    ),
    (
        "fuse/epilogue.rules",
        include_str!("../../../passes/fuse/epilogue.rules"),
    ),
    (
        "fuse/requantize.rules",
        include_str!("../../../passes/fuse/requantize.rules"),
    ),
];

fn rule_sources(spec: &str, base: Option<&Path>) -> Result<Vec<(String, String)>, FoldError> {
    match base {
        None => {
            let prefix = format!("{}/", spec.trim_end_matches('/'));
            let found: Vec<(String, String)> = BUILTIN
                .iter()
                .filter(|(p, _)| *p == spec || p.starts_with(&prefix))
                .filter(|(p, _)| p.ends_with(".rules"))
                .map(|(p, s)| (format!("passes/{p}"), s.to_string()))
                .collect();
            if found.is_empty() {
                return Err(FoldError::Rules(format!(
                    "built-in pipeline: no rule file or directory '{spec}'"
                )));
            }
            Ok(found)
        }
        Some(b) => read_rule_path(&b.join(spec)),
    }
}

/// Reads a rule file, or every `*.rules` file of a directory (sorted by name).
pub fn read_rule_path(p: &Path) -> Result<Vec<(String, String)>, FoldError> {
    let io = |e: std::io::Error| FoldError::Io(format!("{}: {e}", p.display()));
    if p.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| f.extension().is_some_and(|x| x == "rules"))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|f| {
                Ok((
                    f.display().to_string(),
                    std::fs::read_to_string(&f)
                        .map_err(|e| FoldError::Io(format!("{}: {e}", f.display())))?,
                ))
            })
            .collect()
    } else {
        Ok(vec![(
            p.display().to_string(),
            std::fs::read_to_string(p).map_err(io)?,
        )])
    }
}

/// Parses rule sources into rules, checking names are unique.
pub fn parse_sources(srcs: &[(String, String)]) -> Result<Vec<Arc<RuleDef>>, FoldError> {
    let mut all = vec![];
    for (f, s) in srcs {
        all.extend(parse_rules(f, s)?);
    }
    crate::rules::check_unique(&all)?;
    Ok(all.into_iter().map(Arc::new).collect())
}

impl Pipeline {
    /// The built-in pipeline (`passes/pipeline.toml` and its rule files, compiled in).
    pub fn builtin() -> Result<Pipeline, FoldError> {
        Pipeline::from_toml("passes/pipeline.toml", BUILTIN[0].1, None)
    }

    /// Reads a pipeline file; its rule paths are relative to its directory.
    pub fn from_file(path: &Path) -> Result<Pipeline, FoldError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| FoldError::Io(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Pipeline::from_toml(&path.display().to_string(), &text, Some(base))
    }

    /// One phase made of the given rule files or directories.
    pub fn from_rule_paths(name: &str, paths: &[PathBuf]) -> Result<Pipeline, FoldError> {
        let mut srcs = vec![];
        for p in paths {
            srcs.extend(read_rule_path(p)?);
        }
        Ok(Pipeline {
            phases: vec![Phase {
                name: name.into(),
                rules: parse_sources(&srcs)?,
                limits: Limits::default(),
            }],
        })
    }

    fn from_toml(file: &str, text: &str, base: Option<&Path>) -> Result<Pipeline, FoldError> {
        let bad = |m: String| FoldError::Rules(format!("{file}: {m}"));
        let v: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| bad(e.to_string()))?;
        let phases = v
            .get("phase")
            .and_then(|p| p.as_array())
            .ok_or_else(|| bad("expected [[phase]] tables".into()))?;
        let mut out = vec![];
        let mut seen = vec![];
        for (i, p) in phases.iter().enumerate() {
            let t = p
                .as_table()
                .ok_or_else(|| bad(format!("phase {i} is not a table")))?;
            for k in t.keys() {
                if !matches!(
                    k.as_str(),
                    "name" | "rules" | "iterations" | "nodes" | "time_ms"
                ) {
                    return Err(bad(format!("phase {i}: unknown key '{k}'")));
                }
            }
            let name = t
                .get("name")
                .and_then(|x| x.as_str())
                .ok_or_else(|| bad(format!("phase {i} has no name")))?;
            let files = t
                .get("rules")
                .and_then(|x| x.as_array())
                .ok_or_else(|| bad(format!("phase '{name}' has no rules list")))?;
            let mut srcs = vec![];
            for f in files {
                let f = f
                    .as_str()
                    .ok_or_else(|| bad(format!("phase '{name}': rules entries are strings")))?;
                srcs.extend(rule_sources(f, base)?);
            }
            let num = |k: &str, d: u64| -> Result<u64, FoldError> {
                match t.get(k) {
                    None => Ok(d),
                    Some(x) => x
                        .as_integer()
                        .filter(|&n| n > 0)
                        .map(|n| n as u64)
                        .ok_or_else(|| {
                            bad(format!("phase '{name}': {k} must be a positive integer"))
                        }),
                }
            };
            let d = Limits::default();
            let limits = Limits {
                iterations: num("iterations", d.iterations as u64)? as usize,
                nodes: num("nodes", d.nodes as u64)? as usize,
                time: Duration::from_millis(num("time_ms", d.time.as_millis() as u64)?),
            };
            let rules = parse_sources(&srcs)?;
            seen.extend(rules.iter().map(|r| (**r).clone()));
            crate::rules::check_unique(&seen)?;
            if out.iter().any(|q: &Phase| q.name == name) {
                return Err(bad(format!("duplicate phase name '{name}'")));
            }
            out.push(Phase {
                name: name.to_string(),
                rules,
                limits,
            });
        }
        Ok(Pipeline { phases: out })
    }

    /// Every rule of every phase.
    pub fn all_rules(&self) -> Vec<Arc<RuleDef>> {
        self.phases
            .iter()
            .flat_map(|p| p.rules.iter().cloned())
            .collect()
    }
}

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
}

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
    let runner = Runner::<FNode, FoldAnalysis, ()>::new(FoldAnalysis::default())
        .with_egraph(eg)
        .with_scheduler(SimpleScheduler)
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
        stop: stop_text(&runner.stop_reason),
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

/// Extracts the cheapest graph of a loaded e-graph.
pub fn extract_loaded(l: &Loaded) -> Result<Graph, FoldError> {
    let mut names = std::collections::HashMap::new();
    let mut keys: Vec<_> = l.names.iter().collect();
    keys.sort();
    for (id, n) in keys {
        names.entry(l.eg.find(*id)).or_insert_with(|| n.clone());
    }
    extract(&l.eg, &l.name, &l.inputs, &l.outputs, &names)
}

/// Folds a graph through the pipeline.
pub fn fold(g: &Graph, p: &Pipeline, opts: &FoldOptions) -> Result<FoldResult, FoldError> {
    if let Some(s) = &opts.stop_after {
        if !p.phases.iter().any(|ph| &ph.name == s) {
            let names: Vec<&str> = p.phases.iter().map(|ph| ph.name.as_str()).collect();
            return Err(FoldError::Rules(format!(
                "no phase '{s}' (phases: {})",
                names.join(", ")
            )));
        }
    }
    let mut g = g.clone();
    lpc_ir::infer_types(&mut g).map_err(|e| FoldError::Graph(e.to_string()))?;
    let mut stats = vec![];
    let mut fired: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut last = None;
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
        for (node, class) in &l.node_classes {
            let c = l.eg.find(*class);
            let node = source.get(node).unwrap_or(node);
            for (rule, at) in &l.eg.analysis.fired {
                if l.eg.find(*at) == c {
                    let e = fired.entry(node.clone()).or_default();
                    let item = (ph.name.clone(), rule.to_string());
                    if !e.contains(&item) {
                        e.push(item);
                    }
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
    })
}
