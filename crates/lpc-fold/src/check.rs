//! `lpc rules check`: every match of a rule in example graphs is turned into two small graphs
//! (left and right side, the match's constants kept, every other variable a graph input),
//! both run by lpc-ref on random inputs, and any difference above one quantization step is
//! reported. Also the random-input comparison used by the `.lir` case files.

use crate::analysis::{attr_of, const_of, is_absent, FGraph, FoldAnalysis};
use crate::apply::{bind, Refusal};
use crate::extract::extract;
use crate::lang::{AttrKey, ConstKey, FNode, Head, HeadKind};
use crate::rules::RuleDef;
use crate::to_egraph::load;
use crate::FoldError;
use egg::{ENodeOrVar, Id, Pattern, Searcher, Subst};
use lpc_ir::{DType, Dim, Graph, OpKind, Shape, Tensor, ValueType};
use std::collections::HashMap;
use std::sync::Arc;

/// A small deterministic random generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A random tensor of a type (symbolic dims become 2): floats in [-4, 4], integers over their
/// whole u8/i8 range (i32 in ±1000). `None` for an unknown type.
pub fn random_tensor(ty: &ValueType, rng: &mut Rng) -> Option<Tensor> {
    let shape: Vec<usize> = ty
        .shape
        .as_ref()?
        .0
        .iter()
        .map(|d| d.known().unwrap_or(2))
        .collect();
    let n: usize = shape.iter().product();
    let u = |rng: &mut Rng, lo: f64, hi: f64| lo + (hi - lo) * rng.unit();
    let t = match ty.dtype? {
        DType::F32 => Tensor::from_f32(&shape, (0..n).map(|_| u(rng, -4.0, 4.0) as f32).collect()),
        DType::U8 => Tensor::from_u8(&shape, (0..n).map(|_| u(rng, 0.0, 256.0) as u8).collect()),
        DType::I8 => Tensor::from_i8(
            &shape,
            (0..n)
                .map(|_| u(rng, -128.0, 128.0).floor() as i8)
                .collect(),
        ),
        DType::I32 => Tensor::from_i32(
            &shape,
            (0..n).map(|_| u(rng, -1000.0, 1000.0) as i32).collect(),
        ),
        DType::F16 | DType::F64 | DType::I64 | DType::Bool => return None,
    };
    t.ok()
}

/// Runs two graphs with the same inputs on `trials` random input sets; returns the largest
/// absolute difference of any output element and the largest |output| of `a`.
pub fn compare_random(
    a: &Graph,
    b: &Graph,
    trials: usize,
    seed: u64,
) -> Result<(f64, f64), String> {
    let mut rng = Rng::new(seed);
    let mut worst = 0f64;
    let mut mag = 0f64;
    for _ in 0..trials {
        let mut ins = vec![];
        for &n in a.inputs() {
            let o = &a.node(n).outputs[0];
            ins.push(
                random_tensor(&o.ty, &mut rng)
                    .ok_or_else(|| format!("input '{}' has no known type ({})", o.name, o.ty))?,
            );
        }
        let ra = lpc_ref::run(a, &ins).map_err(|e| format!("left side: {e}"))?;
        let rb = lpc_ref::run(b, &ins).map_err(|e| format!("right side: {e}"))?;
        for (x, y) in ra.iter().zip(&rb) {
            if x.shape() != y.shape() {
                return Err(format!(
                    "output shapes differ: {:?} vs {:?}",
                    x.shape(),
                    y.shape()
                ));
            }
            for (p, q) in x.to_f64_vec().iter().zip(y.to_f64_vec()) {
                worst = worst.max((p - q).abs());
                mag = mag.max(p.abs());
            }
        }
    }
    Ok((worst, mag))
}

/// The verdict on one rule.
#[derive(Clone, Debug)]
pub struct RuleReport {
    /// Rule name.
    pub rule: String,
    /// Matches checked (both sides run).
    pub checked: usize,
    /// Matches where the conditions or helpers refused (not a failure).
    pub refused: usize,
    /// Largest error seen, in quantization steps (integer outputs: in units).
    pub worst_steps: f64,
    /// Problems: a difference above one step, or a side that cannot run.
    pub failures: Vec<String>,
}

/// The quantization step of a left-hand side's result (0 when it is not a quantization op):
/// the scale of a root `dq`, or (hi − lo)/(levels − 1) of a root FakeQuantize.
fn lhs_step(eg: &FGraph, lhs: &egg::PatternAst<FNode>, subst: &Subst) -> f64 {
    let nodes = lhs.as_ref();
    let Some(ENodeOrVar::ENode(root)) = nodes.last() else {
        return 0.0;
    };
    let class_of = |i: Id| -> Option<Id> {
        match &nodes[usize::from(i)] {
            ENodeOrVar::Var(v) => subst.get(*v).copied(),
            ENodeOrVar::ENode(_) => None,
        }
    };
    let max_of = |id: Option<Id>| {
        id.and_then(|c| const_of(eg, c))
            .map(|t| t.to_f64_vec().into_iter().fold(0f64, f64::max))
    };
    match root.head {
        Head::Op {
            kind: HeadKind::Dq, ..
        } => max_of(root.children.get(1).and_then(|&c| class_of(c))).unwrap_or(0.0),
        Head::Op {
            kind: HeadKind::Op(OpKind::FakeQuantize),
            ..
        } => {
            let lv = root
                .children
                .first()
                .and_then(|&c| class_of(c))
                .and_then(|c| attr_of(eg, c));
            let (Some(lo), Some(hi)) = (
                max_of(root.children.get(4).and_then(|&c| class_of(c))),
                max_of(root.children.get(5).and_then(|&c| class_of(c))),
            ) else {
                return 0.0;
            };
            match lv.as_deref() {
                Some(lpc_ir::Op::FakeQuantize { levels }) => {
                    (hi - lo).abs() / (*levels as f64 - 1.0)
                }
                _ => 0.0,
            }
        }
        _ => 0.0,
    }
}

/// Builds the two sides of one match as graphs: a fresh e-graph holds the match's constants,
/// attributes and absent inputs; every other variable is a graph input of its type.
fn sides(
    eg: &FGraph,
    def: &RuleDef,
    root: Id,
    subst: &Subst,
) -> Result<Option<(Graph, Graph)>, String> {
    let mut inputs: Vec<ValueType> = vec![];
    let mut leaves: Vec<(egg::Var, Head)> = vec![];
    let mut seen: HashMap<Id, usize> = HashMap::new();
    for node in def.lhs.as_ref() {
        let ENodeOrVar::Var(v) = node else { continue };
        if leaves.iter().any(|(w, _)| w == v) {
            continue;
        }
        let c = eg.find(subst[*v]);
        let head = if is_absent(eg, c) {
            Head::Absent
        } else if let Some(op) = attr_of(eg, c) {
            Head::Attr(AttrKey::new((*op).clone()))
        } else if let Some(t) = const_of(eg, c) {
            Head::Const(ConstKey::new(t))
        } else {
            let k = *seen.entry(c).or_insert_with(|| {
                let mut ty = eg[c].data.ty.clone();
                if let Some(s) = &ty.shape {
                    ty.shape = Some(Shape(
                        s.0.iter()
                            .map(|d| Dim::Known(d.known().unwrap_or(2)))
                            .collect(),
                    ));
                }
                inputs.push(ty);
                inputs.len() - 1
            });
            Head::Input(k)
        };
        leaves.push((*v, head));
    }
    let mut tmp = FGraph::new(FoldAnalysis {
        inputs: inputs.clone(),
        ..Default::default()
    });
    let mut s = Subst::default();
    for (v, h) in leaves {
        let id = tmp.add(FNode {
            head: h,
            children: vec![],
        });
        s.insert(v, id);
    }
    let l = tmp.add_instantiation(&def.lhs, &s);
    tmp.rebuild();
    let s2 = match bind(&mut tmp, def, l, &s) {
        Ok(s2) => s2,
        Err(Refusal::Condition(_) | Refusal::Helper(_)) => return Ok(None),
    };
    let r = tmp.add_instantiation(&def.rhs, &s2);
    tmp.rebuild();
    if let Some(c) = tmp.analysis.conflicts.first() {
        return Err(c.clone());
    }
    let _ = root;
    let ins: Vec<(String, ValueType)> = inputs
        .iter()
        .enumerate()
        .map(|(k, t)| (format!("x{k}"), t.clone()))
        .collect();
    let names = HashMap::new();
    let gl = extract(&tmp, "lhs", &ins, &[(l, "y".into())], &names).map_err(|e| e.to_string())?;
    let gr = extract(&tmp, "rhs", &ins, &[(r, "y".into())], &names).map_err(|e| e.to_string())?;
    Ok(Some((gl, gr)))
}

/// Fresh reports, one per rule.
pub fn new_reports(rules: &[Arc<RuleDef>]) -> Vec<RuleReport> {
    rules
        .iter()
        .map(|r| RuleReport {
            rule: r.name.clone(),
            checked: 0,
            refused: 0,
            worst_steps: 0.0,
            failures: vec![],
        })
        .collect()
}

/// Checks rules against every match in the example graphs (saturated with the same rules) (at most `per_rule` matches each).
pub fn check_rules(
    rules: &[Arc<RuleDef>],
    examples: &[Graph],
    per_rule: usize,
) -> Result<Vec<RuleReport>, FoldError> {
    let mut reports = new_reports(rules);
    for g in examples {
        let mut g = g.clone();
        lpc_ir::infer_types(&mut g)?;
        // Matches are searched in the saturated e-graph, so rules that only apply after others
        // (a Dequantize moved next to a Flatten, ...) are exercised too.
        let phase = crate::pipeline::Phase {
            name: "check".into(),
            rules: rules.to_vec(),
            limits: crate::pipeline::Limits::default(),
        };
        let (loaded, _) = crate::driver::run_phase(load(&g)?, &phase)?;
        check_matches(&loaded.eg, &g.name, rules, &mut reports, per_rule);
    }
    Ok(reports)
}

/// Checks each rule on its matches in the e-graph `eg` (of the graph `name`), at most
/// `per_rule` checked matches per rule in all: both sides run by lpc-ref on random inputs of
/// the shapes the match has, a difference above one quantization step (one unit for integer
/// results) is a failure. `reports[i]` is `rules[i]`'s report.
pub fn check_matches(
    eg: &FGraph,
    name: &str,
    rules: &[Arc<RuleDef>],
    reports: &mut [RuleReport],
    per_rule: usize,
) {
    'rule: for (def, rep) in rules.iter().zip(reports.iter_mut()) {
        let pat = Pattern::new(def.lhs.clone());
        for m in pat.search(eg) {
            for subst in &m.substs {
                if rep.checked >= per_rule {
                    continue 'rule;
                }
                match sides(eg, def, m.eclass, subst) {
                    Ok(None) => rep.refused += 1,
                    Err(e) => rep.failures.push(format!("in '{name}': {e}")),
                    Ok(Some((gl, gr))) => {
                        rep.checked += 1;
                        let out_int = gl
                            .value_type(gl.outputs()[0])
                            .dtype
                            .is_some_and(|d| !d.is_float());
                        let step = lhs_step(eg, &def.lhs, subst);
                        match compare_random(&gl, &gr, 4, 0x5eed + rep.checked as u64) {
                            Err(e) => rep.failures.push(format!("in '{name}': {e}")),
                            Ok((worst, mag)) => {
                                let unit = if out_int {
                                    1.0
                                } else if step > 0.0 {
                                    step
                                } else {
                                    1e-3 * mag.max(1.0)
                                };
                                let steps = worst / unit;
                                rep.worst_steps = rep.worst_steps.max(steps);
                                if steps > 1.0 + 1e-6 {
                                    rep.failures.push(format!(
                                        "in '{name}': sides differ by {worst:.6} ({steps:.2} steps of {unit:.6})"
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
