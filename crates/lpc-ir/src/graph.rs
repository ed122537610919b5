//! The graph: nodes with ordered input slots and typed outputs, stored in a petgraph
//! `StableDiGraph` whose edges are the only record of who feeds whom.

use crate::{Op, Tensor, ValueType};
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, NodeIndexable};
use petgraph::Direction;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

/// Identifies a node of a [`Graph`].
pub type NodeId = NodeIndex<u32>;

/// One output of one node: the unit of data flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueRef {
    /// The producing node.
    pub node: NodeId,
    /// Which of its outputs.
    pub output: usize,
}

impl ValueRef {
    /// Output 0 of `node`.
    pub fn first(node: NodeId) -> ValueRef {
        ValueRef { node, output: 0 }
    }
}

/// A named, typed output of a node.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// Value name, unique in the graph.
    pub name: String,
    /// What is known of its dtype and shape.
    pub ty: ValueType,
}

impl Output {
    /// An output with nothing known of its type yet.
    pub fn named(name: impl Into<String>) -> Output {
        Output {
            name: name.into(),
            ty: ValueType::unknown(),
        }
    }
}

/// A node: an operation, its number of input slots and its outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Node name (from the source model, or made up); used in messages.
    pub name: String,
    /// The operation.
    pub op: Op,
    /// Number of input slots (some may be unconnected: absent optional inputs).
    pub num_inputs: usize,
    /// Outputs, in order.
    pub outputs: Vec<Output>,
}

/// An edge: which output of the source feeds which input slot of the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Output index on the producer.
    pub output: usize,
    /// Input slot on the consumer.
    pub slot: usize,
}

/// Errors of graph construction and checking.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GraphError {
    /// The graph has a cycle through the named node.
    #[error("graph has a cycle through node '{0}'")]
    Cycle(String),
    /// A value reference points at a node or output that does not exist.
    #[error(
        "dangling reference to output {output} of a missing node or output (used by '{user}')"
    )]
    Dangling {
        /// Output index referenced.
        output: usize,
        /// The node that used it.
        user: String,
    },
}

/// A dataflow graph of [`Op`]s.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// Graph name.
    pub name: String,
    g: StableDiGraph<Node, Edge>,
    inputs: Vec<NodeId>,
    outputs: Vec<ValueRef>,
    consts: HashMap<String, NodeId>,
}

impl Graph {
    /// An empty graph.
    pub fn new(name: impl Into<String>) -> Graph {
        Graph {
            name: name.into(),
            ..Graph::default()
        }
    }

    /// Adds graph input number `inputs().len()`.
    pub fn add_input(&mut self, name: impl Into<String>, ty: ValueType) -> ValueRef {
        let index = self.inputs.len();
        let id = self.g.add_node(Node {
            name: String::new(),
            op: Op::Input { index },
            num_inputs: 0,
            outputs: vec![Output {
                name: name.into(),
                ty,
            }],
        });
        let name = self.g[id].outputs[0].name.clone();
        self.g[id].name = name;
        self.inputs.push(id);
        ValueRef::first(id)
    }

    /// Adds a constant, or returns the existing node holding equal content (interning).
    pub fn add_const(&mut self, name: impl Into<String>, t: impl Into<Arc<Tensor>>) -> ValueRef {
        let t: Arc<Tensor> = t.into();
        let key = t.digest();
        if let Some(&id) = self.consts.get(&key) {
            if self.g.contains_node(id) {
                return ValueRef::first(id);
            }
        }
        let name = name.into();
        let ty = ValueType::new(t.dtype(), crate::Shape::known(t.shape()));
        let id = self.g.add_node(Node {
            name: name.clone(),
            op: Op::Const(t),
            num_inputs: 0,
            outputs: vec![Output { name, ty }],
        });
        self.consts.insert(key, id);
        ValueRef::first(id)
    }

    /// Adds an operation node fed by `inputs` (None = absent optional input).
    pub fn add_node(
        &mut self,
        name: impl Into<String>,
        op: Op,
        inputs: &[Option<ValueRef>],
        outputs: Vec<Output>,
    ) -> NodeId {
        let id = self.g.add_node(Node {
            name: name.into(),
            op,
            num_inputs: inputs.len(),
            outputs,
        });
        for (slot, v) in inputs.iter().enumerate() {
            if let Some(v) = v {
                self.g.add_edge(
                    v.node,
                    id,
                    Edge {
                        output: v.output,
                        slot,
                    },
                );
            }
        }
        id
    }

    /// Sets the graph outputs.
    pub fn set_outputs(&mut self, outputs: Vec<ValueRef>) {
        self.outputs = outputs;
    }

    /// Graph input nodes, in order.
    pub fn inputs(&self) -> &[NodeId] {
        &self.inputs
    }

    /// Graph outputs, in order.
    pub fn outputs(&self) -> &[ValueRef] {
        &self.outputs
    }

    /// A node. Panics on an id not from this graph (a programming error).
    pub fn node(&self, id: NodeId) -> &Node {
        &self.g[id]
    }

    /// A node, mutably.
    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.g[id]
    }

    /// True if the node exists.
    pub fn contains(&self, id: NodeId) -> bool {
        self.g.contains_node(id)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.g.node_count()
    }

    /// True for a graph with no nodes.
    pub fn is_empty(&self) -> bool {
        self.g.node_count() == 0
    }

    /// All node ids in index order.
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.g.node_indices().collect()
    }

    /// The output record behind a value.
    pub fn output(&self, v: ValueRef) -> &Output {
        &self.g[v.node].outputs[v.output]
    }

    /// The output record behind a value, mutably.
    pub fn output_mut(&mut self, v: ValueRef) -> &mut Output {
        &mut self.g[v.node].outputs[v.output]
    }

    /// The type of a value.
    pub fn value_type(&self, v: ValueRef) -> &ValueType {
        &self.output(v).ty
    }

    /// The name of a value.
    pub fn value_name(&self, v: ValueRef) -> &str {
        &self.output(v).name
    }

    /// The tensor of a constant value.
    pub fn const_value(&self, v: ValueRef) -> Option<&Arc<Tensor>> {
        match &self.g[v.node].op {
            Op::Const(t) => Some(t),
            _ => None,
        }
    }

    /// The ordered input slots of a node.
    pub fn node_inputs(&self, id: NodeId) -> Vec<Option<ValueRef>> {
        let mut slots = vec![None; self.g[id].num_inputs];
        for e in self.g.edges_directed(id, Direction::Incoming) {
            let w = e.weight();
            if w.slot < slots.len() {
                slots[w.slot] = Some(ValueRef {
                    node: e.source(),
                    output: w.output,
                });
            }
        }
        slots
    }

    /// The input in slot `slot`, if connected.
    pub fn node_input(&self, id: NodeId, slot: usize) -> Option<ValueRef> {
        self.g
            .edges_directed(id, Direction::Incoming)
            .find(|e| e.weight().slot == slot)
            .map(|e| ValueRef {
                node: e.source(),
                output: e.weight().output,
            })
    }

    /// Every (consumer, slot) reading `v`, sorted.
    pub fn users(&self, v: ValueRef) -> Vec<(NodeId, usize)> {
        let mut u: Vec<(NodeId, usize)> = self
            .g
            .edges_directed(v.node, Direction::Outgoing)
            .filter(|e| e.weight().output == v.output)
            .map(|e| (e.target(), e.weight().slot))
            .collect();
        u.sort();
        u
    }

    /// Connects (or disconnects, with `None`) input slot `slot` of `id`.
    pub fn set_node_input(&mut self, id: NodeId, slot: usize, v: Option<ValueRef>) {
        let old: Vec<_> = self
            .g
            .edges_directed(id, Direction::Incoming)
            .filter(|e| e.weight().slot == slot)
            .map(|e| e.id())
            .collect();
        for e in old {
            self.g.remove_edge(e);
        }
        if slot >= self.g[id].num_inputs {
            self.g[id].num_inputs = slot + 1;
        }
        if let Some(v) = v {
            self.g.add_edge(
                v.node,
                id,
                Edge {
                    output: v.output,
                    slot,
                },
            );
        }
    }

    /// Makes every reader of `old` (graph outputs included) read `new` instead.
    pub fn replace_uses(&mut self, old: ValueRef, new: ValueRef) {
        for (user, slot) in self.users(old) {
            self.set_node_input(user, slot, Some(new));
        }
        for o in &mut self.outputs {
            if *o == old {
                *o = new;
            }
        }
    }

    /// Removes a node and its edges. Graph inputs cannot be removed this way.
    pub fn remove_node(&mut self, id: NodeId) -> Option<Node> {
        if self.inputs.contains(&id) {
            return None;
        }
        self.consts.retain(|_, n| *n != id);
        self.g.remove_node(id)
    }

    /// Removes every node that no graph output depends on (graph inputs stay).
    pub fn remove_dead(&mut self) -> usize {
        let mut live = vec![false; self.g.node_bound()];
        let mut stack: Vec<NodeId> = self.outputs.iter().map(|v| v.node).collect();
        stack.extend(self.inputs.iter().copied());
        while let Some(n) = stack.pop() {
            if std::mem::replace(&mut live[n.index()], true) {
                continue;
            }
            stack.extend(self.g.neighbors_directed(n, Direction::Incoming));
        }
        let dead: Vec<NodeId> = self.g.node_indices().filter(|n| !live[n.index()]).collect();
        for &n in &dead {
            self.remove_node(n);
        }
        dead.len()
    }

    /// Nodes in a deterministic topological order (among ready nodes, lowest index first).
    pub fn topo_order(&self) -> Result<Vec<NodeId>, GraphError> {
        let mut indeg: HashMap<NodeId, usize> = HashMap::new();
        for n in self.g.node_indices() {
            indeg.insert(n, self.g.edges_directed(n, Direction::Incoming).count());
        }
        let mut ready: BinaryHeap<Reverse<NodeId>> = indeg
            .iter()
            .filter(|(_, &d)| d == 0)
            .map(|(&n, _)| Reverse(n))
            .collect();
        let mut order = Vec::with_capacity(indeg.len());
        while let Some(Reverse(n)) = ready.pop() {
            order.push(n);
            for e in self.g.edges_directed(n, Direction::Outgoing) {
                let d = indeg.get_mut(&e.target()).expect("node present");
                *d -= 1;
                if *d == 0 {
                    ready.push(Reverse(e.target()));
                }
            }
        }
        if order.len() != indeg.len() {
            let stuck = indeg
                .iter()
                .filter(|(_, &d)| d > 0)
                .map(|(&n, _)| n)
                .min()
                .expect("some node is stuck");
            return Err(GraphError::Cycle(self.g[stuck].name.clone()));
        }
        Ok(order)
    }

    /// Finds a node by name.
    pub fn find_node(&self, name: &str) -> Option<NodeId> {
        self.g.node_indices().find(|&n| self.g[n].name == name)
    }

    /// Finds a value by name.
    pub fn find_value(&self, name: &str) -> Option<ValueRef> {
        self.g.node_indices().find_map(|n| {
            self.g[n]
                .outputs
                .iter()
                .position(|o| o.name == name)
                .map(|output| ValueRef { node: n, output })
        })
    }

    /// The underlying petgraph graph (read-only), for algorithms and Graphviz output.
    pub fn petgraph(&self) -> &StableDiGraph<Node, Edge> {
        &self.g
    }
}

/// Structural equality: same nodes in the same topological order, same ops, names, types,
/// edges, inputs and outputs. This is the equality `parse(print(g)) == g` is checked with.
impl PartialEq for Graph {
    fn eq(&self, other: &Graph) -> bool {
        let (Ok(a), Ok(b)) = (self.topo_order(), other.topo_order()) else {
            return false;
        };
        if a.len() != b.len() || self.name != other.name {
            return false;
        }
        let pa: HashMap<NodeId, usize> = a.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        let pb: HashMap<NodeId, usize> = b.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        let map_a = |v: ValueRef| (pa[&v.node], v.output);
        let map_b = |v: ValueRef| (pb[&v.node], v.output);
        for (&na, &nb) in a.iter().zip(&b) {
            if self.g[na] != other.g[nb] {
                return false;
            }
            let ia: Vec<_> = self
                .node_inputs(na)
                .into_iter()
                .map(|v| v.map(map_a))
                .collect();
            let ib: Vec<_> = other
                .node_inputs(nb)
                .into_iter()
                .map(|v| v.map(map_b))
                .collect();
            if ia != ib {
                return false;
            }
        }
        let ins_a: Vec<_> = self.inputs.iter().map(|n| pa[n]).collect();
        let ins_b: Vec<_> = other.inputs.iter().map(|n| pb[n]).collect();
        let outs_a: Vec<_> = self.outputs.iter().map(|&v| map_a(v)).collect();
        let outs_b: Vec<_> = other.outputs.iter().map(|&v| map_b(v)).collect();
        ins_a == ins_b && outs_a == outs_b
    }
}
