//! Graphviz output: a graph as a `digraph` with op/name labels and shapes on the edges.

use crate::{Graph, Op, ValueRef};
use petgraph::visit::{EdgeRef, IntoEdgeReferences};
use std::collections::HashMap;
use std::fmt::Write;

/// Escapes a string for a double-quoted Graphviz label.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' | '\t' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// The graph in Graphviz dot: one box per node labelled with its op and name (constants with
/// their dtype and shape), one ellipse per graph output, and edges labelled with the type of
/// the value they carry. Nodes are numbered in topological order, so the output is deterministic.
pub fn to_dot(g: &Graph) -> String {
    let order = g.topo_order().unwrap_or_else(|_| g.node_ids());
    let pos: HashMap<_, _> = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let pg = g.petgraph();
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", esc(&g.name));
    out.push_str("  node [shape=box, fontname=\"monospace\"];\n  edge [fontname=\"monospace\", fontsize=10];\n");
    for (i, &id) in order.iter().enumerate() {
        let Some(n) = pg.node_weight(id) else {
            continue;
        };
        let (label, style) = match &n.op {
            Op::Input { index } => (format!("input {index}\n{}", n.name), ", shape=ellipse"),
            Op::Const(t) => (
                format!("const {t}\n{}", n.name),
                ", style=filled, fillcolor=\"#eeeeee\"",
            ),
            op => (format!("{}\n{}", op.name(), n.name), ""),
        };
        let _ = writeln!(out, "  n{i} [label=\"{}\"{style}];", esc(&label));
    }
    let mut edges: Vec<(usize, usize, usize, usize)> = pg
        .edge_references()
        .filter_map(|e| {
            Some((
                *pos.get(&e.source())?,
                *pos.get(&e.target())?,
                e.weight().output,
                e.weight().slot,
            ))
        })
        .collect();
    edges.sort();
    let ty = |id: crate::NodeId, output: usize| -> String {
        match pg.node_weight(id).and_then(|n| n.outputs.get(output)) {
            Some(o) => crate::text::vtype_string(&o.ty),
            None => "?".to_string(),
        }
    };
    for (s, t, output, slot) in edges {
        let mut label = ty(order[s], output);
        if pg
            .node_weight(order[s])
            .is_some_and(|n| n.outputs.len() > 1)
        {
            label = format!("#{output} {label}");
        }
        let _ = writeln!(
            out,
            "  n{s} -> n{t} [label=\"{}\", headlabel=\"{slot}\"];",
            esc(&label)
        );
    }
    for (k, &ValueRef { node, output }) in g.outputs().iter().enumerate() {
        let name = pg
            .node_weight(node)
            .and_then(|n| n.outputs.get(output))
            .map_or("?", |o| o.name.as_str());
        let _ = writeln!(
            out,
            "  out{k} [label=\"{}\", shape=ellipse];",
            esc(&format!("output {k}\n{name}"))
        );
        if let Some(&s) = pos.get(&node) {
            let _ = writeln!(
                out,
                "  n{s} -> out{k} [label=\"{}\"];",
                esc(&ty(node, output))
            );
        }
    }
    out.push_str("}\n");
    out
}
