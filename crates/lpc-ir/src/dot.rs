//! Graphviz output: `lpc show --dot`.

use crate::Graph;
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The graph as a Graphviz digraph: nodes labelled with op and node name, edges with the
/// value's type.
pub fn to_dot(g: &Graph) -> String {
    let mut s = format!("digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n", esc(&g.name));
    let order = g.topo_order().unwrap_or_else(|_| g.node_ids());
    for &n in &order {
        let node = g.node(n);
        let _ = writeln!(s, "  n{} [label=\"{}\\n{}\"];", n.index(), node.op.name(), esc(&node.name));
    }
    for &n in &order {
        for v in g.node_inputs(n).into_iter().flatten() {
            let _ = writeln!(
                s,
                "  n{} -> n{} [label=\"{}\"];",
                v.node.index(),
                n.index(),
                esc(&crate::text::vtype_string(g.value_type(v)))
            );
        }
    }
    s.push_str("}\n");
    s
}
