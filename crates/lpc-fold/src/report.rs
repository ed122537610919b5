//! What a fold did, as text: the `--stats` report, the float ops left with reasons, and
//! `lpc explain` (which rules fired on a node, or why it stayed float).

use crate::apply::{bind, Refusal};
use crate::driver::{fold, FoldOptions, FoldResult};
use crate::pipeline::Pipeline;
use crate::FoldError;
use egg::{Pattern, Searcher};
use lpc_ir::{Graph, Op};
use std::fmt::Write;
use std::path::{Path, PathBuf};

fn is_compute(op: &Op) -> bool {
    matches!(
        op,
        Op::Conv(_) | Op::ConvTranspose { .. } | Op::MatMul | Op::Gemm { .. }
    )
}

/// Why a float op of the folded graph stayed float (a short diagnosis from its inputs).
pub fn float_reason(g: &Graph, n: lpc_ir::NodeId) -> String {
    let node = g.node(n);
    let from = |slot: usize| g.node_input(n, slot).map(|v| &g.node(v.node).op);
    match &node.op {
        Op::FakeQuantize { .. } => {
            "no lowering applies (levels, unequal in/out ranges or zero not on the grid)".into()
        }
        Op::QConv(_) | Op::QMatMul => {
            "integer kernel with an f32 epilogue (what consumes it is float, no Quantize follows)"
                .into()
        }
        op if is_compute(op) => {
            if !matches!(from(0), Some(Op::DequantizeLinear { .. })) {
                "its input is not dequantized from u8/i8 (not quantized upstream)".into()
            } else if !matches!(from(1), Some(Op::DequantizeLinear { .. })) {
                "its weights are not i8 constants behind a DequantizeLinear".into()
            } else {
                "no fusion rule matched (per-tensor activation parameters, i8 weights with zero point 0 and plain Gemm attributes are required)".into()
            }
        }
        op => format!("no integer rule for {}", op.name()),
    }
}

/// Float ops left in a graph (constants and graph inputs aside), grouped by op and reason.
pub fn float_ops(g: &Graph) -> Vec<(String, String, usize)> {
    let mut out: Vec<(String, String, usize)> = vec![];
    for n in g.node_ids() {
        let node = g.node(n);
        if matches!(
            node.op,
            Op::Input { .. }
                | Op::Const(_)
                | Op::QuantizeLinear { .. }
                | Op::DequantizeLinear { .. }
        ) {
            continue;
        }
        let float_out = node
            .outputs
            .iter()
            .any(|o| o.ty.dtype.is_some_and(|d| d.is_float()));
        if !float_out {
            continue;
        }
        let reason = float_reason(g, n);
        let name = node.op.name().to_string();
        match out.iter_mut().find(|(o, r, _)| *o == name && *r == reason) {
            Some(e) => e.2 += 1,
            None => out.push((name, reason, 1)),
        }
    }
    out.sort();
    out
}

/// The `--stats` report of a fold.
pub fn stats_text(r: &FoldResult) -> String {
    let mut s = String::new();
    for p in &r.phases {
        let _ = writeln!(
            s,
            "phase {}: {} iterations, {} e-nodes, {} e-classes, stop: {}, {:.1} ms, {} graph nodes",
            p.name,
            p.iterations,
            p.nodes,
            p.classes,
            p.stop,
            p.time.as_secs_f64() * 1e3,
            p.graph_nodes
        );
        for (rule, n) in &p.applied {
            let _ = writeln!(s, "  {rule}: {n}");
        }
    }
    let left = float_ops(&r.graph);
    if left.is_empty() {
        let _ = writeln!(s, "float ops left: none");
    } else {
        let _ = writeln!(s, "float ops left:");
        for (op, why, n) in left {
            let _ = writeln!(s, "  {n} × {op}: {why}");
        }
    }
    s
}

/// `lpc explain --node NAME`: the rules that fired on the node's value, what it became, and,
/// when it stayed float, which rules come close and what stopped them.
pub fn explain(
    g: &Graph,
    rules: &[PathBuf],
    pipeline_file: Option<&Path>,
    node: &str,
) -> Result<String, FoldError> {
    if g.find_node(node).is_none() {
        return Err(FoldError::NoSuchNode(node.to_string()));
    }
    let p = Pipeline::from_args(rules, pipeline_file)?;
    let r = fold(g, &p, &FoldOptions::default())?;
    let mut s = String::new();
    let op = g.node(g.find_node(node).expect("checked")).op.name();
    let _ = writeln!(s, "node '{node}' ({op})");
    match r.fired.get(node) {
        Some(f) if !f.is_empty() => {
            let _ = writeln!(s, "rules that fired on its value:");
            for (ph, rule) in f {
                let _ = writeln!(s, "  [{ph}] {rule}");
            }
        }
        _ => {
            let _ = writeln!(s, "no rule fired on its value");
        }
    }
    // What the value became: the folded node producing the same value name, if any.
    let out_name = g
        .node(g.find_node(node).expect("checked"))
        .outputs
        .first()
        .map(|o| o.name.clone())
        .unwrap_or_default();
    match r.graph.find_value(&out_name) {
        Some(v) => {
            let n = r.graph.node(v.node);
            let _ = writeln!(
                s,
                "now computed by: {} ({}) : {}",
                n.name,
                n.op.name(),
                n.outputs[v.output].ty
            );
            let float = n.outputs[v.output].ty.dtype.is_some_and(|d| d.is_float());
            if matches!(n.op, Op::QConv(_) | Op::QMatMul) {
                let _ = writeln!(
                    s,
                    "integer kernel{}",
                    if float {
                        " with an f32 epilogue (what consumes it is float)"
                    } else {
                        ""
                    }
                );
            } else if float && !matches!(n.op, Op::DequantizeLinear { .. } | Op::Input { .. }) {
                let _ = writeln!(s, "stays float: {}", float_reason(&r.graph, v.node));
                if let Some(last) = &r.last {
                    // The last phase's graph names the node after its output value.
                    if let Some((_, class)) = last
                        .node_classes
                        .iter()
                        .find(|(nm, _)| nm == node || *nm == out_name)
                    {
                        let c = last.eg.find(*class);
                        for def in p.all_rules() {
                            let pat = Pattern::new(def.lhs.clone());
                            for m in pat.search(&last.eg) {
                                let touches = |id: egg::Id| last.eg.find(id) == c;
                                for subst in &m.substs {
                                    if !(touches(m.eclass) || def.lhs.as_ref().iter().any(|n| matches!(n, egg::ENodeOrVar::Var(v) if subst.get(*v).is_some_and(|&i| touches(i))))) {
                                        continue;
                                    }
                                    let mut eg = last.eg.clone();
                                    let why = match bind(&mut eg, &def, m.eclass, subst) {
                                        Ok(_) => "matches and applies (a cheaper alternative won)"
                                            .to_string(),
                                        Err(Refusal::Condition(c)) => {
                                            format!("condition false: {c}")
                                        }
                                        Err(Refusal::Helper(h)) => h.to_string(),
                                    };
                                    let _ = writeln!(s, "  rule {} ({}): {why}", def.name, def.loc);
                                }
                            }
                        }
                    }
                }
            }
        }
        None => {
            let _ = writeln!(
                s,
                "its value was folded away (merged into a fused op or removed)"
            );
        }
    }
    Ok(s)
}
