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
            return scan8(cx, g);
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

/// Scan opset 8: (sequence_lens?, state..., scan_input...), each with a leading batch axis
/// (the scan inputs `[batch, sequence, ...]`); outputs (final state..., scan_output...), the
/// same. It becomes a Loop over the batch whose body takes batch b of every input, runs the
/// opset-9 Scan on it (the scan inputs cut to b's sequence length when sequence_lens is
/// given; a length outside [0, the sequence length] is clamped into it) and pads each scan
/// output back to the full length with zeros; the Loop stacks the results along a new
/// leading axis.
fn scan8(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let gp = graph_attr(a, "body")?;
    let m = a.int("num_scan_inputs", -1)?;
    let vals = cx.ins.len().saturating_sub(1);
    if m < 1 || m as usize > vals {
        return Err(a.err(format!(
            "num_scan_inputs must be between 1 and the {vals} inputs after sequence_lens, got {m}"
        )));
    }
    let m = m as usize;
    cx.need_from(1, vals)?;
    let directions = a.ints("directions")?.unwrap_or_default();
    if !directions.is_empty() && directions.len() != m {
        return Err(a.err(format!(
            "directions has {} entries for {m} scan inputs",
            directions.len()
        )));
    }
    if let Some(d) = directions.iter().find(|&&d| d != 0 && d != 1) {
        return Err(a.err(format!("attribute 'directions' has invalid value {d}")));
    }
    let caps = resolve(cx, &free_names(gp))?;
    let inner = body(cx, g, "body", gp, &caps)?;
    let n_state = vals - m;
    let n_scan_out = inner
        .outputs()
        .len()
        .checked_sub(n_state)
        .ok_or_else(|| a.err(format!("body has fewer outputs than the {n_state} states")))?;
    let seq_lens = cx.ins[0];
    let outer: Vec<ValueRef> = cx.ins[1..].iter().flatten().copied().collect();
    let name = cx.name.clone();
    let fresh = |k: &str| format!("{name}__{k}");

    // The Loop body: (iteration, condition, the node's inputs, sequence_lens?, captures).
    let mut l = Graph::new(fresh("batch"));
    let scalar = |d| ValueType::new(d, Shape::known(&[]));
    let it = l.add_input(fresh("b"), scalar(DType::I64));
    let cond = l.add_input(fresh("cond"), scalar(DType::Bool));
    let ins_l: Vec<ValueRef> = outer
        .iter()
        .enumerate()
        .map(|(k, &v)| l.add_input(fresh(&format!("in{k}")), g.value_type(v).clone()))
        .collect();
    let lens_l = seq_lens.map(|v| l.add_input(fresh("sequence_lens"), g.value_type(v).clone()));
    let caps_l: Vec<ValueRef> = caps
        .iter()
        .map(|(n, v)| l.add_input(fresh(n), g.value_type(*v).clone()))
        .collect();
    let node = |l: &mut Graph, k: &str, op: Op, ins: &[Option<ValueRef>]| {
        let id = l.add_node(fresh(k), op, ins, vec![Output::named(fresh(k))]);
        ValueRef::first(id)
    };
    let zero = l.add_const(fresh("zero"), Tensor::vec_i64(&[0]));
    let picks: Vec<ValueRef> = ins_l
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            let op = Op::Gather { axis: 0 };
            node(&mut l, &format!("pick{k}"), op, &[Some(v), Some(it)])
        })
        .collect();
    // With lengths: the full sequence length (of the first scan input) and the batch's
    // length clamped to [0, full], both `[1]`.
    let lens = lens_l.map(|v| {
        let shape = Op::ShapeOf {
            start: 0,
            end: Some(1),
        };
        let full = node(&mut l, "full", shape, &[Some(picks[n_state])]);
        let len = node(&mut l, "len", Op::Gather { axis: 0 }, &[Some(v), Some(it)]);
        let cast = Op::Unary(UnaryOp::Cast { to: DType::I64 });
        let len = node(&mut l, "len64", cast, &[Some(len)]);
        let len = node(&mut l, "len1", Op::Unsqueeze, &[Some(len), Some(zero)]);
        let len = node(
            &mut l,
            "len_lo",
            Op::Binary(BinaryOp::Max),
            &[Some(len), Some(zero)],
        );
        let len = node(
            &mut l,
            "len_hi",
            Op::Binary(BinaryOp::Min),
            &[Some(len), Some(full)],
        );
        (full, len)
    });
    let mut scan_ins: Vec<Option<ValueRef>> = vec![];
    for (k, &x) in picks.iter().enumerate() {
        scan_ins.push(Some(match lens {
            Some((_, len)) if k >= n_state => node(
                &mut l,
                &format!("cut{k}"),
                Op::Slice,
                &[Some(x), Some(zero), Some(len), Some(zero)],
            ),
            _ => x,
        }));
    }
    scan_ins.extend(caps_l.iter().map(|&v| Some(v)));
    let n_out = n_state + n_scan_out;
    let scan = l.add_node(
        fresh("scan"),
        Op::Scan(ScanAttrs {
            body: inner,
            captures: caps.len(),
            num_scan_inputs: m,
            input_axes: vec![],
            input_directions: directions,
            output_axes: vec![],
            output_directions: vec![],
        }),
        &scan_ins,
        (0..n_out)
            .map(|k| Output::named(fresh(&format!("out{k}"))))
            .collect(),
    );
    let mut outs = vec![cond];
    for k in 0..n_out {
        let y = ValueRef {
            node: scan,
            output: k,
        };
        outs.push(match lens {
            Some((full, len)) if k >= n_state => {
                let rest = node(
                    &mut l,
                    &format!("rest{k}"),
                    Op::Binary(BinaryOp::Sub),
                    &[Some(full), Some(len)],
                );
                let pads = node(
                    &mut l,
                    &format!("pads{k}"),
                    Op::Concat { axis: 0 },
                    &[Some(zero), Some(rest)],
                );
                node(
                    &mut l,
                    &format!("pad{k}"),
                    Op::Pad {
                        mode: PadMode::Constant,
                    },
                    &[Some(y), Some(pads), None, Some(zero)],
                )
            }
            _ => y,
        });
    }
    l.set_outputs(outs);

    // The trip count: the batch size.
    let batch = g.add_node(
        fresh("batch_size"),
        Op::ShapeOf {
            start: 0,
            end: Some(1),
        },
        &[Some(outer[n_state])],
        vec![Output::named(cx.me.fresh_value(&cx.first_out))],
    );
    let n_caps = outer.len() + usize::from(seq_lens.is_some()) + caps.len();
    let mut ins = vec![Some(ValueRef::first(batch)), None];
    ins.extend(outer.iter().map(|&v| Some(v)));
    ins.extend(seq_lens.map(Some));
    ins.extend(caps.iter().map(|&(_, v)| Some(v)));
    cx.ins = ins;
    set_outputs(cx, n_out);
    Ok(Converted::Op(Op::Loop {
        body: Arc::new(l),
        captures: n_caps,
    }))
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
