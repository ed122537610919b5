//! The ONNX ops with subgraphs: If, Loop and Scan. A body may name values of the graphs
//! around it; those captures are made explicit here: each becomes an extra trailing input
//! of the node and a matching extra input of the body (after its declared inputs), so that
//! every lpc graph is self-contained. A name no enclosing graph defines is an error naming
//! the node.

use super::attrs::Attrs;
use super::table::{Converted, Cx, Table};
use super::Importer;
use crate::proto::attribute_proto::AttributeType;
use crate::proto::GraphProto;
use crate::ImportError;
use lpc_ir::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Bodies nested deeper than this are refused (a guard against runaway recursion).
const MAX_DEPTH: usize = 64;

/// Registers this family's converters.
pub(super) fn register(t: &mut Table) {
    t.add("If", |cx, g| {
        cx.need(1)?;
        let a = cx.a;
        let (then_gp, else_gp) = (graph_attr(a, "then_branch")?, graph_attr(a, "else_branch")?);
        let mut names = free_names(then_gp);
        for n in free_names(else_gp) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        let caps = resolve(cx, &names)?;
        let then_branch = body(cx, g, "then_branch", then_gp, &caps)?;
        let else_branch = body(cx, g, "else_branch", else_gp, &caps)?;
        set_outputs(cx, then_branch.outputs().len());
        cx.ins.truncate(1);
        cx.ins.extend(caps.iter().map(|&(_, v)| Some(v)));
        Ok(Converted::Op(Op::If {
            then_branch,
            else_branch,
        }))
    });
    t.add("Loop", |cx, g| {
        let a = cx.a;
        let gp = graph_attr(a, "body")?;
        if cx.ins.len() < 2 {
            cx.ins.resize(2, None);
        }
        if cx.ins[0].is_none() && cx.ins[1].is_none() {
            return Err(a.err(
                "a Loop needs a trip count (input 0) or a condition (input 1); with neither it never ends",
            ));
        }
        let carried = cx.ins.len() - 2;
        cx.need_from(2, carried)?;
        let caps = resolve(cx, &free_names(gp))?;
        let body = body(cx, g, "body", gp, &caps)?;
        set_outputs(cx, body.outputs().len().saturating_sub(1));
        cx.ins.extend(caps.iter().map(|&(_, v)| Some(v)));
        Ok(Converted::Op(Op::Loop {
            body,
            captures: caps.len(),
        }))
    });
    t.add("Scan", |cx, g| {
        let a = cx.a;
        if cx.opset < 9 {
            return Err(a.err("Scan before opset 9 (batched, with sequence_lens) is not supported"));
        }
        let gp = graph_attr(a, "body")?;
        let m = a.int("num_scan_inputs", -1)?;
        let n_in = cx.ins.len();
        if m < 1 || m as usize > n_in {
            return Err(a.err(format!(
                "num_scan_inputs must be between 1 and the {n_in} inputs, got {m}"
            )));
        }
        cx.need_from(0, n_in)?;
        let caps = resolve(cx, &free_names(gp))?;
        let body = body(cx, g, "body", gp, &caps)?;
        let ints = |k: &str| Ok::<_, ImportError>(a.ints(k)?.unwrap_or_default());
        let attrs = ScanAttrs {
            body,
            captures: caps.len(),
            num_scan_inputs: m as usize,
            input_axes: ints("scan_input_axes")?,
            input_directions: ints("scan_input_directions")?,
            output_axes: ints("scan_output_axes")?,
            output_directions: ints("scan_output_directions")?,
        };
        for (k, v) in [
            ("scan_input_directions", &attrs.input_directions),
            ("scan_output_directions", &attrs.output_directions),
        ] {
            if let Some(d) = v.iter().find(|&&d| d != 0 && d != 1) {
                return Err(a.err(format!("attribute '{k}' has invalid value {d}")));
            }
        }
        set_outputs(cx, attrs.body.outputs().len());
        cx.ins.extend(caps.iter().map(|&(_, v)| Some(v)));
        Ok(Converted::Op(Op::Scan(attrs)))
    });
}

/// The graph attribute `key` (required).
fn graph_attr<'n>(a: &Attrs<'n>, key: &str) -> Result<&'n GraphProto, ImportError> {
    a.typed(key, AttributeType::Graph)?
        .and_then(|at| at.g.as_ref())
        .ok_or_else(|| a.err(format!("attribute '{key}' (a graph) is missing")))
}

/// The names `gp` reads without defining them (as a graph input, an initializer or a node
/// output), its nested graphs included, in order of first use.
fn free_names(gp: &GraphProto) -> Vec<String> {
    let mut defined: HashSet<&str> = gp
        .input
        .iter()
        .filter_map(|v| v.name.as_deref())
        .chain(gp.initializer.iter().filter_map(|t| t.name.as_deref()))
        .collect();
    let mut free: Vec<String> = vec![];
    let add = |n: &str, defined: &HashSet<&str>, free: &mut Vec<String>| {
        if !n.is_empty() && !defined.contains(n) && !free.iter().any(|f| f == n) {
            free.push(n.to_string());
        }
    };
    for node in &gp.node {
        for i in &node.input {
            add(i, &defined, &mut free);
        }
        for at in &node.attribute {
            for sub in at.g.iter().chain(&at.graphs) {
                for n in free_names(sub) {
                    add(&n, &defined, &mut free);
                }
            }
        }
        defined.extend(node.output.iter().map(String::as_str));
    }
    for o in gp.output.iter().filter_map(|v| v.name.as_deref()) {
        add(o, &defined, &mut free);
    }
    free
}

/// The outer values of captured names; a name that no enclosing graph defines is an error.
fn resolve(cx: &Cx, names: &[String]) -> Result<Vec<(String, ValueRef)>, ImportError> {
    names
        .iter()
        .map(|n| match cx.me.values.get(n) {
            Some(&v) => Ok((n.clone(), v)),
            None => Err(cx.a.err(format!(
                "a subgraph uses '{n}', which no enclosing graph defines before this node"
            ))),
        })
        .collect()
}

/// Imports body `key` with the captured values as extra inputs; errors name the node.
fn body(
    cx: &Cx,
    g: &Graph,
    key: &str,
    gp: &GraphProto,
    caps: &[(String, ValueRef)],
) -> Result<Arc<Graph>, ImportError> {
    let me = &cx.me;
    if me.depth >= MAX_DEPTH {
        return Err(cx
            .a
            .err(format!("subgraphs are nested more than {MAX_DEPTH} deep")));
    }
    let typed: Vec<(String, ValueType)> = caps
        .iter()
        .map(|(n, v)| (n.clone(), g.value_type(*v).clone()))
        .collect();
    let sub = Importer {
        opset: me.opset,
        base_dir: me.base_dir,
        values: HashMap::new(),
        node_names: HashSet::new(),
        fresh: 0,
        depth: me.depth + 1,
    };
    sub.graph(gp, &typed)
        .map(Arc::new)
        .map_err(|e| cx.a.err(format!("{key}: {e}")))
}

/// The node has `n` outputs (the body's; more when the ONNX node names more, which inference
/// then reports); unnamed ones get fresh names.
fn set_outputs(cx: &mut Cx, n: usize) {
    let n = n.max(cx.n_out);
    cx.n_out = n;
    cx.out_names.resize(n, String::new());
}
