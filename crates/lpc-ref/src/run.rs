//! Runs a whole graph: topological order, inputs checked against the declared types,
//! intermediate tensors freed after their last use.

use crate::EvalError;
use lpc_ir::{Dim, Graph, Op, Tensor, ValueRef};
use std::borrow::Cow;
use std::collections::HashMap;

/// Why a graph run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Wrong number of inputs given.
    #[error("model has {expected} inputs, {got} given")]
    InputCount {
        /// Declared inputs.
        expected: usize,
        /// Given inputs.
        got: usize,
    },
    /// An input tensor does not fit the declared type.
    #[error("input '{name}': {msg}")]
    InputMismatch {
        /// Input name.
        name: String,
        /// What does not fit.
        msg: String,
    },
    /// A node failed.
    #[error("node '{node}' ({op}): {error}")]
    Node {
        /// Node name.
        node: String,
        /// Op name.
        op: &'static str,
        /// The failure.
        error: EvalError,
    },
    /// The graph is malformed (cycle, dangling value).
    #[error("invalid graph: {0}")]
    Graph(String),
}

fn check_input(
    g: &Graph,
    v: ValueRef,
    t: &Tensor,
    syms: &mut HashMap<String, usize>,
) -> Result<(), RunError> {
    let out = g.output(v);
    let bad = |msg: String| RunError::InputMismatch {
        name: out.name.clone(),
        msg,
    };
    if let Some(d) = out.ty.dtype {
        if d != t.dtype() {
            return Err(bad(format!("expected dtype {d}, got {}", t.dtype())));
        }
    }
    if let Some(s) = &out.ty.shape {
        if s.rank() != t.rank() {
            return Err(bad(format!(
                "expected shape {s}, got {:?} (rank {})",
                t.shape(),
                t.rank()
            )));
        }
        for (d, &n) in s.0.iter().zip(t.shape()) {
            match d {
                Dim::Known(k) if *k != n => {
                    return Err(bad(format!("expected shape {s}, got {:?}", t.shape())))
                }
                Dim::Known(_) => {}
                Dim::Sym(name) => {
                    let prev = *syms.entry(name.clone()).or_insert(n);
                    if prev != n {
                        return Err(bad(format!(
                            "dimension {name} is {prev} elsewhere, got {n}"
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Runs `g` on `inputs` (one per graph input, in order) and returns the graph outputs.
pub fn run(g: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, RunError> {
    run_observed(g, inputs, |_, _| {})
}

/// Like [`run`], calling `observe(value, tensor)` for every value computed by a non-constant
/// node (calibration statistics hook in here).
pub fn run_observed(
    g: &Graph,
    inputs: &[Tensor],
    observe: impl FnMut(ValueRef, &Tensor),
) -> Result<Vec<Tensor>, RunError> {
    run_impl(g, inputs, observe, None)
}

/// Like [`run`], adding the time spent in each op kind to `profile` (op name → seconds).
pub fn run_profiled(
    g: &Graph,
    inputs: &[Tensor],
    profile: &mut HashMap<&'static str, f64>,
) -> Result<Vec<Tensor>, RunError> {
    run_impl(g, inputs, |_, _| {}, Some(profile))
}

fn run_impl(
    g: &Graph,
    inputs: &[Tensor],
    mut observe: impl FnMut(ValueRef, &Tensor),
    mut profile: Option<&mut HashMap<&'static str, f64>>,
) -> Result<Vec<Tensor>, RunError> {
    if inputs.len() != g.inputs().len() {
        return Err(RunError::InputCount {
            expected: g.inputs().len(),
            got: inputs.len(),
        });
    }
    let order = g.topo_order().map_err(|e| RunError::Graph(e.to_string()))?;
    // Remaining reads of each value; graph outputs count as one extra read that never happens.
    let mut reads: HashMap<ValueRef, usize> = HashMap::new();
    for &n in &order {
        for v in g.node_inputs(n).into_iter().flatten() {
            *reads.entry(v).or_default() += 1;
        }
    }
    for &v in g.outputs() {
        *reads.entry(v).or_default() += 1;
    }
    let mut syms = HashMap::new();
    // Constants are borrowed from the graph, never copied.
    let mut values: HashMap<ValueRef, Cow<'_, Tensor>> = HashMap::new();
    for &n in &order {
        let node = g.node(n);
        let outs = match &node.op {
            Op::Const(t) => {
                let v = ValueRef::first(n);
                if reads.get(&v).copied().unwrap_or(0) > 0 {
                    values.insert(v, Cow::Borrowed(t.as_ref()));
                }
                continue;
            }
            Op::Input { index } => {
                let t = inputs
                    .get(*index)
                    .ok_or_else(|| RunError::Graph(format!("input index {index} out of range")))?;
                check_input(g, ValueRef::first(n), t, &mut syms)?;
                let v = ValueRef::first(n);
                observe(v, t);
                if reads.get(&v).copied().unwrap_or(0) > 0 {
                    values.insert(v, Cow::Borrowed(t));
                }
                continue;
            }
            op => {
                let slots = g.node_inputs(n);
                for v in slots.iter().flatten() {
                    if !values.contains_key(v) {
                        return Err(RunError::Graph(format!(
                            "node '{}' reads output {} of '{}', which does not exist",
                            node.name,
                            v.output,
                            g.node(v.node).name
                        )));
                    }
                }
                let ins: Vec<Option<&Tensor>> = slots
                    .iter()
                    .map(|s| s.as_ref().map(|v| values[v].as_ref()))
                    .collect();
                let t0 = profile.is_some().then(std::time::Instant::now);
                let outs =
                    crate::eval(op, &ins, node.outputs.len()).map_err(|source| RunError::Node {
                        node: node.name.clone(),
                        op: op.name(),
                        error: source,
                    })?;
                if let (Some(p), Some(t0)) = (profile.as_deref_mut(), t0) {
                    *p.entry(op.name()).or_default() += t0.elapsed().as_secs_f64();
                }
                if outs.len() < node.outputs.len() {
                    return Err(RunError::Node {
                        node: node.name.clone(),
                        op: op.name(),
                        error: EvalError::Invalid(format!(
                            "produced {} outputs, node declares {}",
                            outs.len(),
                            node.outputs.len()
                        )),
                    });
                }
                // Free inputs read for the last time.
                for v in slots.iter().flatten() {
                    let r = reads.get_mut(v).expect("counted");
                    *r -= 1;
                    if *r == 0 {
                        values.remove(v);
                    }
                }
                outs
            }
        };
        for (k, t) in outs.into_iter().enumerate().take(node.outputs.len()) {
            let v = ValueRef { node: n, output: k };
            observe(v, &t);
            if reads.get(&v).copied().unwrap_or(0) > 0 {
                values.insert(v, Cow::Owned(t));
            }
        }
    }
    // Move outputs out (copy only when one value is returned twice or is borrowed).
    let outs = g.outputs();
    let mut result = Vec::with_capacity(outs.len());
    for (k, v) in outs.iter().enumerate() {
        let missing = || RunError::Graph(format!("output '{}' was not computed", g.value_name(*v)));
        let t = if outs[k + 1..].contains(v) {
            values.get(v).ok_or_else(missing)?.as_ref().clone()
        } else {
            values.remove(v).ok_or_else(missing)?.into_owned()
        };
        result.push(t);
    }
    Ok(result)
}
