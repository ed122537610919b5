//! E-graph → graph: building a graph back from the cheapest e-node of each needed class.

use crate::analysis::{is_absent, lower, FGraph, Slot};
use crate::cost::node_cost;
use crate::lang::{FNode, Head};
use crate::to_egraph::Loaded;
use crate::FoldError;
use egg::Id;
use lpc_ir::{Graph, Op, Output, UnaryOp, ValueRef};
use std::collections::{HashMap, HashSet};

/// The cheapest e-node of every class: its [`node_cost`] plus its children's costs, where a
/// child in `shared` costs nothing. Computed as Knuth's generalisation of Dijkstra's shortest
/// paths: classes are settled in order of cost from the leaves up, and a node is priced once,
/// when the last of its children is settled. (egg's `Extractor` sweeps every class until
/// nothing changes, which is quadratic in the depth of the graph: seconds on an e-graph of
/// 10^5 nodes.) Of the nodes of least cost the first in the class wins.
struct Choice<'e> {
    eg: &'e FGraph,
    best: HashMap<Id, (f64, usize)>,
}

/// [`node_cost`] of every node, by class (computed once for all rounds of [`extract`]).
fn own_costs(eg: &FGraph) -> HashMap<Id, Vec<f64>> {
    eg.classes()
        .map(|c| {
            (
                c.id,
                c.nodes.iter().map(|n| node_cost(eg, c.id, n)).collect(),
            )
        })
        .collect()
}

impl<'e> Choice<'e> {
    fn new(eg: &'e FGraph, own: &HashMap<Id, Vec<f64>>, shared: &HashSet<Id>) -> Choice<'e> {
        use std::cmp::Reverse;
        // For every node, the distinct children still to settle; for every class, the nodes
        // waiting on it.
        let mut waiting: HashMap<(Id, usize), usize> = HashMap::new();
        let mut users: HashMap<Id, Vec<(Id, usize)>> = HashMap::new();
        // Tentative (cost, node) per class; costs are >= 0, so their bits order like them.
        let mut best: HashMap<Id, (f64, usize)> = HashMap::new();
        let mut heap: std::collections::BinaryHeap<Reverse<(u64, Id)>> = Default::default();
        let offer = |best: &mut HashMap<Id, (f64, usize)>,
                     heap: &mut std::collections::BinaryHeap<_>,
                     id: Id,
                     cost: f64,
                     i: usize| {
            if best
                .get(&id)
                .is_none_or(|&(b, j)| cost < b || (cost == b && i < j))
            {
                best.insert(id, (cost, i));
                heap.push(Reverse((cost.to_bits(), id)));
            }
        };
        for c in eg.classes() {
            for (i, n) in c.nodes.iter().enumerate() {
                let mut kids: Vec<Id> = n
                    .children
                    .iter()
                    .map(|&k| eg.find(k))
                    .filter(|k| !shared.contains(k))
                    .collect();
                kids.sort();
                kids.dedup();
                if kids.is_empty() {
                    offer(&mut best, &mut heap, c.id, own[&c.id][i], i);
                } else {
                    waiting.insert((c.id, i), kids.len());
                    for k in kids {
                        users.entry(k).or_default().push((c.id, i));
                    }
                }
            }
        }
        let mut settled: HashSet<Id> = HashSet::new();
        while let Some(Reverse((bits, id))) = heap.pop() {
            if best.get(&id).is_none_or(|&(b, _)| b.to_bits() != bits) || !settled.insert(id) {
                continue;
            }
            for &(p, i) in users.get(&id).map_or(&[][..], Vec::as_slice) {
                let w = waiting.get_mut(&(p, i)).expect("a waiting node");
                *w -= 1;
                if *w > 0 || settled.contains(&p) {
                    continue;
                }
                let cost = own[&p][i]
                    + eg[p].nodes[i]
                        .children
                        .iter()
                        .map(|&k| eg.find(k))
                        .filter(|k| !shared.contains(k))
                        .map(|k| best[&k].0)
                        .sum::<f64>();
                offer(&mut best, &mut heap, p, cost, i);
            }
        }
        Choice { eg, best }
    }

    /// The cheapest node of class `id`.
    fn find_best_node(&self, id: Id) -> &'e FNode {
        let id = self.eg.find(id);
        let i = self.best.get(&id).map_or(0, |&(_, i)| i);
        &self.eg[id].nodes[i]
    }
}

struct Builder<'a, 'e> {
    eg: &'e FGraph,
    ex: &'a Choice<'e>,
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
    ex: &Choice<'_>,
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
            cost += node_cost(eg, id, n);
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

/// The classes that e-nodes of more than one other class read.
fn read_by_several(eg: &FGraph) -> HashSet<Id> {
    let mut first: HashMap<Id, Id> = HashMap::new();
    let mut several = HashSet::new();
    for c in eg.classes() {
        for n in &c.nodes {
            for &k in &n.children {
                let k = eg.find(k);
                match first.get(&k) {
                    None => {
                        first.insert(k, c.id);
                    }
                    Some(&p) if p != c.id => {
                        several.insert(k);
                    }
                    Some(_) => {}
                }
            }
        }
    }
    several
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
    let own = own_costs(eg);
    // Two starting points, the cheaper selection kept: pure tree costs, and tree costs where a
    // class read by several classes is free. Tree costs alone grow with the number of paths
    // to a class, exponentially with depth in a residual network (a transformer's blocks each
    // read their input along four or more paths): past ~1e16 the few units that tell two
    // e-nodes apart vanish in the sum and the first node of the class wins whatever it costs.
    let mut ex = Choice::new(eg, &own, &HashSet::new());
    let mut start = selection_cost(eg, &ex, outputs);
    let multi = Choice::new(eg, &own, &read_by_several(eg));
    if let Some(m) = selection_cost(eg, &multi, outputs) {
        if start.as_ref().is_none_or(|(c, _)| m.0 < *c) {
            start = Some(m);
            ex = multi;
        }
    }
    if let Some((mut best, mut shared)) = start {
        for _ in 0..4 {
            let next = Choice::new(eg, &own, &shared);
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
