//! Graph ↔ e-graph: loading an lpc graph into the e-graph (Q/DQ with constant parameters
//! become canonical `q`/`dq` nodes with broadcast-shaped parameters) and building a graph
//! back from the cheapest e-node of each needed class.

use crate::analysis::{is_absent, lower, FGraph, FoldAnalysis, Slot};
use crate::lang::{has_attrs, AttrKey, ConstKey, FNode, Head, DQ, Q};
use crate::FoldError;
use egg::{CostFunction, Extractor, Id};
use lpc_ir::{DType, Graph, NodeId, Op, Output, Tensor, UnaryOp, ValueRef};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A graph loaded into an e-graph.
pub struct Loaded {
    /// Graph name.
    pub name: String,
    /// The e-graph.
    pub eg: FGraph,
    /// The class of every graph output, in order, with its value name.
    pub outputs: Vec<(Id, String)>,
    /// Graph inputs: (name, type), in order.
    pub inputs: Vec<(String, lpc_ir::ValueType)>,
    /// Source node names and the class of their first output.
    pub node_classes: Vec<(String, Id)>,
    /// Value names of the source graph, by class (first one wins).
    pub names: HashMap<Id, String>,
}

fn leaf(eg: &mut FGraph, head: Head) -> Id {
    eg.add(FNode {
        head,
        children: vec![],
    })
}

/// A constant leaf.
pub fn add_const(eg: &mut FGraph, t: Tensor) -> Id {
    leaf(eg, Head::Const(ConstKey::new(Arc::new(t))))
}

/// Reshapes a per-tensor or per-axis ONNX quantization parameter to broadcast against a
/// rank-`rank` operand (rank 0 for a single value).
fn broadcast_param(p: &Tensor, axis: i64, rank: usize) -> Option<Tensor> {
    if p.len() == 1 {
        return p.clone().reshape(&[]).ok();
    }
    if p.rank() != 1 {
        return None;
    }
    let ax = if axis < 0 { axis + rank as i64 } else { axis };
    if ax < 0 || ax as usize >= rank {
        return None;
    }
    let mut shape = vec![1; rank];
    shape[ax as usize] = p.len();
    p.clone().reshape(&shape).ok()
}

/// The canonical `(q x s z)` / `(dq x s z)` children of a QuantizeLinear/DequantizeLinear node
/// with constant parameters, or `None` when they are not constant or blocked.
fn canonical_q(
    g: &Graph,
    n: NodeId,
    x_dtype: Option<DType>,
    rank: Option<usize>,
) -> Option<(Tensor, Tensor)> {
    let node = g.node(n);
    let (q, out_dtype) = match &node.op {
        Op::QuantizeLinear { q, dtype } => (q, Some(*dtype)),
        Op::DequantizeLinear { q } => (q, None),
        _ => return None,
    };
    if q.block_size != 0 {
        return None;
    }
    let s = g.const_value(g.node_input(n, 1)?)?;
    let zdtype = match out_dtype {
        Some(d) => d,
        None => x_dtype?,
    };
    let z = match g.node_input(n, 2) {
        Some(v) => (**g.const_value(v)?).clone(),
        None => Tensor::zeros(zdtype, s.shape()),
    };
    if s.dtype() != DType::F32 || z.dtype() != zdtype {
        return None;
    }
    let rank = rank?;
    Some((
        broadcast_param(s, q.axis, rank)?,
        broadcast_param(&z, q.axis, rank)?,
    ))
}

/// Loads a graph (types inferred) into a fresh e-graph.
pub fn load(g: &Graph) -> Result<Loaded, FoldError> {
    let order = g
        .topo_order()
        .map_err(|e| FoldError::Graph(e.to_string()))?;
    let mut inputs = vec![];
    for &n in g.inputs() {
        let o = &g.node(n).outputs[0];
        inputs.push((o.name.clone(), o.ty.clone()));
    }
    let analysis = FoldAnalysis {
        inputs: inputs.iter().map(|(_, t)| t.clone()).collect(),
        ..Default::default()
    };
    let mut eg = FGraph::new(analysis);
    let absent = leaf(&mut eg, Head::Absent);
    let mut vals: HashMap<ValueRef, Id> = HashMap::new();
    let mut node_classes = vec![];
    let mut names = HashMap::new();
    for n in order {
        let node = g.node(n);
        let ins = g.node_inputs(n);
        let class = |v: &Option<ValueRef>, vals: &HashMap<ValueRef, Id>| -> Result<Id, FoldError> {
            match v {
                None => Ok(absent),
                Some(v) => vals.get(v).copied().ok_or_else(|| {
                    FoldError::Graph(format!("node '{}' reads a missing value", node.name))
                }),
            }
        };
        let id = match &node.op {
            Op::Input { index } => leaf(&mut eg, Head::Input(*index)),
            Op::Const(t) => leaf(&mut eg, Head::Const(ConstKey::new(t.clone()))),
            op => {
                let x_ty = ins
                    .first()
                    .copied()
                    .flatten()
                    .map(|v| g.value_type(v).clone());
                let canon = match op {
                    Op::QuantizeLinear { .. } | Op::DequantizeLinear { .. } => canonical_q(
                        g,
                        n,
                        x_ty.as_ref().and_then(|t| t.dtype),
                        x_ty.as_ref()
                            .and_then(|t| t.shape.as_ref().map(|s| s.rank())),
                    ),
                    _ => None,
                };
                let nout = node.outputs.len().max(1);
                let children = if let Some((s, z)) = canon {
                    let x = class(&ins[0], &vals)?;
                    let name = if matches!(op, Op::QuantizeLinear { .. }) {
                        Q
                    } else {
                        DQ
                    };
                    let (s, z) = (add_const(&mut eg, s), add_const(&mut eg, z));
                    eg.add(FNode {
                        head: Head::Op { name, nout: 1 },
                        children: vec![x, s, z],
                    })
                } else {
                    let mut ch = vec![];
                    if has_attrs(op) {
                        ch.push(leaf(&mut eg, Head::Attr(AttrKey::new(op.clone()))));
                    }
                    let (_, max) = op.arity();
                    let nslots = max.unwrap_or(ins.len()).max(ins.len());
                    for k in 0..nslots {
                        ch.push(class(&ins.get(k).copied().flatten(), &vals)?);
                    }
                    eg.add(FNode {
                        head: Head::Op {
                            name: op.name(),
                            nout,
                        },
                        children: ch,
                    })
                };
                children
            }
        };
        if node.outputs.len() > 1 {
            for k in 0..node.outputs.len() {
                let o = eg.add(FNode {
                    head: Head::Out(k),
                    children: vec![id],
                });
                vals.insert(ValueRef { node: n, output: k }, o);
                names
                    .entry(o)
                    .or_insert_with(|| node.outputs[k].name.clone());
            }
        } else {
            vals.insert(ValueRef::first(n), id);
            if let Some(o) = node.outputs.first() {
                names.entry(id).or_insert_with(|| o.name.clone());
            }
        }
        node_classes.push((node.name.clone(), vals[&ValueRef::first(n)]));
    }
    let outputs = g
        .outputs()
        .iter()
        .map(|v| {
            Ok((
                vals.get(v)
                    .copied()
                    .ok_or_else(|| FoldError::Graph("dangling graph output".into()))?,
                g.value_name(*v).to_string(),
            ))
        })
        .collect::<Result<Vec<_>, FoldError>>()?;
    eg.rebuild();
    if let Some(c) = eg.analysis.conflicts.first() {
        return Err(FoldError::Graph(c.clone()));
    }
    Ok(Loaded {
        name: g.name.clone(),
        eg,
        outputs,
        inputs,
        node_classes,
        names,
    })
}

/// The cost model: float compute is expensive, fused integer kernels cheap, constants free.
/// Classes in `shared` cost nothing as children: the extracted graph computes them anyway
/// (see [`extract`]).
pub struct CostModel<'a> {
    /// The e-graph (for child dtypes).
    pub eg: &'a FGraph,
    /// Classes already computed by the current selection.
    pub shared: HashSet<Id>,
}

/// True when any input value of the node is a float tensor (attributes and constants aside).
fn float_inputs(eg: &FGraph, n: &FNode) -> bool {
    n.children.iter().any(|&c| {
        let d = &eg[c].data;
        d.value.is_none() && d.ty.dtype.is_some_and(DType::is_float)
    })
}

/// Cost of one e-node on its own.
pub fn node_cost(eg: &FGraph, n: &FNode) -> f64 {
    let Head::Op { name, .. } = &n.head else {
        return 0.0;
    };
    let float = float_inputs(eg, n);
    match *name {
        "conv" | "conv_transpose" | "matmul" | "gemm" => {
            if float {
                1000.0
            } else {
                400.0
            }
        }
        // Float pooling reads every element once, like a depthwise conv: a qconv (integer
        // pooling) must win over Dequantize → pool → Quantize.
        "global_average_pool" | "average_pool" | "reduce_mean" | "reduce_sum" if float => 150.0,
        "conv_integer" | "matmul_integer" | "qlinear_conv" | "qlinear_matmul" => 300.0,
        "qconv" | "qmatmul" => 100.0,
        "fake_quantize" => 500.0,
        "q" | "dq" | "quantize_linear" | "dequantize_linear" | "requantize" | "qadd" => 20.0,
        "lut" => 10.0,
        _ => {
            if float {
                50.0
            } else {
                10.0
            }
        }
    }
}

impl CostFunction<FNode> for CostModel<'_> {
    type Cost = f64;
    fn cost<C: FnMut(Id) -> f64>(&mut self, n: &FNode, mut costs: C) -> f64 {
        let children: f64 = n
            .children
            .iter()
            .map(|&c| {
                if self.shared.contains(&self.eg.find(c)) {
                    0.0
                } else {
                    costs(c)
                }
            })
            .sum();
        node_cost(self.eg, n) + children
    }
}

struct Builder<'a, 'e> {
    eg: &'e FGraph,
    ex: &'a Extractor<'e, CostModel<'e>, FNode, FoldAnalysis>,
    g: Graph,
    memo: HashMap<Id, ValueRef>,
    inputs: Vec<ValueRef>,
    names: &'a HashMap<Id, String>,
    used: HashSet<String>,
    counter: usize,
}

impl Builder<'_, '_> {
    fn fresh(&mut self, base: &str) -> String {
        loop {
            self.counter += 1;
            let n = format!("{base}_{}", self.counter);
            if self.used.insert(n.clone()) {
                return n;
            }
        }
    }

    fn name_for(&mut self, id: Id, base: &str) -> String {
        match self.names.get(&id) {
            Some(n) if self.used.insert(n.clone()) => n.clone(),
            _ => self.fresh(base),
        }
    }

    fn build(&mut self, id: Id) -> Result<ValueRef, FoldError> {
        let id = self.eg.find(id);
        if let Some(&v) = self.memo.get(&id) {
            return Ok(v);
        }
        let n = self.ex.find_best_node(id).clone();
        let v = match &n.head {
            Head::Input(k) => *self
                .inputs
                .get(*k)
                .ok_or_else(|| FoldError::Graph(format!("input {k} out of range")))?,
            Head::Const(c) => {
                let name = self.name_for(id, "const");
                self.g.add_const(name, c.t.clone())
            }
            Head::Absent | Head::Attr(_) => {
                return Err(FoldError::Graph(format!("{n} used as a value")))
            }
            Head::Out(k) => {
                let t = self.build(n.children[0])?;
                ValueRef {
                    node: t.node,
                    output: *k,
                }
            }
            Head::Op { name, nout } => {
                let (op, slots) = lower(self.eg, &n).map_err(FoldError::Graph)?;
                let mut ins = vec![];
                for s in &slots {
                    ins.push(match s {
                        Slot::None => None,
                        Slot::Class(c) if is_absent(self.eg, *c) => None,
                        Slot::Class(c) => Some(self.build(*c)?),
                        Slot::Value(t) => {
                            let nm = self.fresh("qparam");
                            Some(self.g.add_const(nm, t.clone()))
                        }
                    });
                }
                while ins.last().is_some_and(Option::is_none) {
                    ins.pop();
                }
                let outs = if *nout > 1 {
                    let base = self.name_for(id, name);
                    (0..*nout)
                        .map(|k| Output::named(format!("{base}.{k}")))
                        .collect()
                } else {
                    vec![Output::named(self.name_for(id, name))]
                };
                let node_name = outs[0].name.clone();
                let nid = self.g.add_node(node_name, op, &ins, outs);
                ValueRef::first(nid)
            }
        };
        self.memo.insert(id, v);
        Ok(v)
    }
}

/// The classes a selection computes for `outputs` and its cost as a graph (each class once),
/// or `None` when the selection is cyclic.
fn selection_cost(
    eg: &FGraph,
    ex: &Extractor<'_, CostModel<'_>, FNode, FoldAnalysis>,
    outputs: &[(Id, String)],
) -> Option<(f64, HashSet<Id>)> {
    // Iterative DFS with colours: 1 = on the stack, 2 = done.
    let mut state: HashMap<Id, u8> = HashMap::new();
    let mut cost = 0.0;
    for (out, _) in outputs {
        let mut stack = vec![(eg.find(*out), false)];
        while let Some((id, leaving)) = stack.pop() {
            if leaving {
                state.insert(id, 2);
                continue;
            }
            match state.get(&id) {
                Some(2) => continue,
                Some(_) => return None,
                None => {}
            }
            state.insert(id, 1);
            let n = ex.find_best_node(id);
            cost += node_cost(eg, n);
            stack.push((id, true));
            for &c in &n.children {
                let c = eg.find(c);
                match state.get(&c) {
                    Some(2) => {}
                    Some(_) => return None,
                    None => stack.push((c, false)),
                }
            }
        }
    }
    Some((cost, state.into_keys().collect()))
}

/// Builds the graph of the cheapest e-nodes for the given outputs.
///
/// egg's extractor costs trees: a class used twice is paid twice, so a rewrite that copies
/// shared work (e.g. a conv whose output feeds both `x` and `x + 3` of a HardSwish, with the
/// `+ 3` folded into a second conv's bias) looks cheaper than it is. So extraction iterates:
/// the classes the previous selection computes anyway cost nothing as children, and the
/// selection with the lowest graph cost (each class counted once) wins; at most 4 rounds.
pub fn extract(
    eg: &FGraph,
    name: &str,
    inputs: &[(String, lpc_ir::ValueType)],
    outputs: &[(Id, String)],
    names: &HashMap<Id, String>,
) -> Result<Graph, FoldError> {
    let mut ex = Extractor::new(
        eg,
        CostModel {
            eg,
            shared: HashSet::new(),
        },
    );
    if let Some((mut best, mut shared)) = selection_cost(eg, &ex, outputs) {
        for _ in 0..4 {
            let next = Extractor::new(
                eg,
                CostModel {
                    eg,
                    shared: shared.clone(),
                },
            );
            match selection_cost(eg, &next, outputs) {
                Some((cost, classes)) if cost < best => {
                    best = cost;
                    shared = classes;
                    ex = next;
                }
                _ => break,
            }
        }
    }
    let mut g = Graph::new(name);
    let mut used = HashSet::new();
    let mut ins = vec![];
    for (n, t) in inputs {
        used.insert(n.clone());
        ins.push(g.add_input(n.clone(), t.clone()));
    }
    // Graph outputs keep their names: the output classes are named first.
    let mut names2 = names.clone();
    for (id, n) in outputs.iter().rev() {
        names2.insert(eg.find(*id), n.clone());
    }
    let mut b = Builder {
        eg,
        ex: &ex,
        g,
        memo: HashMap::new(),
        inputs: ins,
        names: &names2,
        used,
        counter: 0,
    };
    let mut outs = vec![];
    for (id, n) in outputs {
        let mut v = b.build(*id)?;
        if b.g.value_name(v) != n {
            let nid = b.g.add_node(
                n.clone(),
                Op::Unary(UnaryOp::Identity),
                &[Some(v)],
                vec![Output::named(n.clone())],
            );
            v = ValueRef::first(nid);
        }
        outs.push(v);
    }
    let mut g = b.g;
    g.set_outputs(outs);
    g.remove_dead();
    lpc_ir::infer_types(&mut g).map_err(|e| FoldError::Graph(e.to_string()))?;
    Ok(g)
}
