//! E-graph → graph: building a graph back from the cheapest e-node of each needed class.

use crate::analysis::{is_absent, lower, FGraph, FoldAnalysis, Slot};
use crate::cost::{node_cost, CostModel};
use crate::lang::{FNode, Head};
use crate::to_egraph::Loaded;
use crate::FoldError;
use egg::{Extractor, Id};
use lpc_ir::{Graph, Op, Output, UnaryOp, ValueRef};
use std::collections::{HashMap, HashSet};

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

    /// The value of class `root`, building the nodes it needs. The walk is depth-first with
    /// an explicit stack (a graph may be a chain of many thousand nodes): an op's input slots
    /// are built in order, each input's whole subgraph before the next slot, and the op's own
    /// node after them, so names and node order are those of a recursive walk.
    fn build(&mut self, root: Id) -> Result<ValueRef, FoldError> {
        let mut stack: Vec<Frame> = vec![];
        let mut open: HashSet<Id> = HashSet::new();
        let mut call = Some(root);
        let mut ret: Option<ValueRef> = None;
        loop {
            if let Some(id) = call.take() {
                let id = self.eg.find(id);
                if let Some(&v) = self.memo.get(&id) {
                    ret = Some(v);
                } else {
                    if !open.insert(id) {
                        return Err(FoldError::Rebuild(format!(
                            "the extracted graph has a cycle through class {id}"
                        )));
                    }
                    let n = self.ex.find_best_node(id).clone();
                    match &n.head {
                        Head::Input(k) => {
                            let v = *self.inputs.get(*k).ok_or_else(|| {
                                FoldError::Rebuild(format!("input {k} out of range"))
                            })?;
                            ret = Some(self.done(&mut open, id, v));
                        }
                        Head::Const(c) => {
                            let name = self.name_for(id, "const");
                            let v = self.g.add_const(name, c.t.clone());
                            ret = Some(self.done(&mut open, id, v));
                        }
                        Head::Absent | Head::Attr(_) => {
                            return Err(FoldError::Rebuild(format!("{n} used as a value")))
                        }
                        Head::Out(k) => {
                            stack.push(Frame::Out { id, k: *k });
                            call = Some(n.children[0]);
                            continue;
                        }
                        Head::Op { kind, nout } => {
                            let (op, slots) = lower(self.eg, &n).map_err(FoldError::Rebuild)?;
                            stack.push(Frame::Op {
                                id,
                                name: kind.name(),
                                nout: *nout,
                                op: Box::new(op),
                                slots,
                                ins: vec![],
                            });
                            ret = None;
                        }
                    }
                }
            }
            // Hand `ret` (the value last built, if any) to the innermost waiting node.
            let Some(top) = stack.pop() else {
                return ret.ok_or_else(|| FoldError::Rebuild("nothing was built".into()));
            };
            match top {
                Frame::Out { id, k } => {
                    let t = ret
                        .take()
                        .ok_or_else(|| FoldError::Rebuild(format!("no value for class {id}")))?;
                    let v = ValueRef {
                        node: t.node,
                        output: k,
                    };
                    ret = Some(self.done(&mut open, id, v));
                }
                Frame::Op {
                    id,
                    name,
                    nout,
                    op,
                    slots,
                    mut ins,
                } => {
                    if let Some(v) = ret.take() {
                        ins.push(Some(v));
                    }
                    while ins.len() < slots.len() {
                        match &slots[ins.len()] {
                            Slot::None => ins.push(None),
                            Slot::Class(c) if is_absent(self.eg, *c) => ins.push(None),
                            Slot::Class(c) => {
                                call = Some(*c);
                                break;
                            }
                            Slot::Value(t) => {
                                let nm = self.fresh("qparam");
                                ins.push(Some(self.g.add_const(nm, t.clone())));
                            }
                        }
                    }
                    if call.is_some() {
                        stack.push(Frame::Op {
                            id,
                            name,
                            nout,
                            op,
                            slots,
                            ins,
                        });
                        continue;
                    }
                    while ins.last().is_some_and(Option::is_none) {
                        ins.pop();
                    }
                    let outs = if nout > 1 {
                        let base = self.name_for(id, name);
                        (0..nout)
                            .map(|k| Output::named(format!("{base}.{k}")))
                            .collect()
                    } else {
                        vec![Output::named(self.name_for(id, name))]
                    };
                    let node_name = outs[0].name.clone();
                    let nid = self.g.add_node(node_name, *op, &ins, outs);
                    ret = Some(self.done(&mut open, id, ValueRef::first(nid)));
                }
            }
        }
    }

    /// Records the value built for class `id`.
    fn done(&mut self, open: &mut HashSet<Id>, id: Id, v: ValueRef) -> ValueRef {
        open.remove(&id);
        self.memo.insert(id, v);
        v
    }
}

/// A node of [`Builder::build`] waiting for the values of its inputs.
enum Frame {
    /// Output `k` of the tuple class it waits for.
    Out { id: Id, k: usize },
    /// An op whose input slots are filled in order.
    Op {
        id: Id,
        name: &'static str,
        nout: usize,
        op: Box<Op>,
        slots: Vec<Slot>,
        ins: Vec<Option<ValueRef>>,
    },
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
    lpc_ir::infer_types(&mut g)?;
    Ok(g)
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
