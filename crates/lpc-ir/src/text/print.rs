//! The `.lir` printer: nodes in `Graph::topo_order()`, one per line.

use super::attrs::{op_attrs, Attr};
use super::weights::Weights;
use crate::{Dim, Graph, Op, Tensor, TensorData, ValueType};
use std::fmt::Write;

/// Constants with at most this many elements are printed inline; larger ones by digest.
pub const INLINE_MAX: usize = 16;

/// True for names printed bare (`%conv1`); others are quoted (`%"gpu_0/conv1"`).
pub(crate) fn is_bare(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

pub(crate) fn quote(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{{{:x}}}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn name(s: &str) -> String {
    if is_bare(s) {
        s.to_string()
    } else {
        quote(s)
    }
}

fn dim(d: &Dim) -> String {
    match d {
        Dim::Known(n) => n.to_string(),
        Dim::Sym(s) if is_bare(s) && !s.starts_with(|c: char| c.is_ascii_digit()) => s.clone(),
        Dim::Sym(s) => quote(s),
    }
}

pub(crate) fn vtype(t: &ValueType) -> String {
    let d = t.dtype.map_or("?".to_string(), |d| d.name().to_string());
    match &t.shape {
        None => format!("{d}[*]"),
        Some(s) => format!("{d}[{}]", s.0.iter().map(dim).collect::<Vec<_>>().join(",")),
    }
}

fn f32s(v: f32) -> String {
    format!("{v:?}")
}

fn tensor_values(t: &Tensor) -> String {
    let items: Vec<String> = match t.data() {
        TensorData::F32(v) => v.iter().map(|&x| f32s(x)).collect(),
        TensorData::F16(v) => v.iter().map(|&x| f32s(x.to_f32())).collect(),
        TensorData::F64(v) => v.iter().map(|x| format!("{x:?}")).collect(),
        TensorData::I8(v) => v.iter().map(|x| x.to_string()).collect(),
        TensorData::U8(v) => v.iter().map(|x| x.to_string()).collect(),
        TensorData::I32(v) => v.iter().map(|x| x.to_string()).collect(),
        TensorData::I64(v) => v.iter().map(|x| x.to_string()).collect(),
        TensorData::Bool(v) => v.iter().map(|x| x.to_string()).collect(),
    };
    format!("[{}]", items.join(", "))
}

fn tensor_type(t: &Tensor) -> String {
    format!("{}[{}]", t.dtype(), t.shape().iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","))
}

fn attr(a: &Attr) -> String {
    match a {
        Attr::Int(v) => v.to_string(),
        Attr::Float(v) => f32s(*v),
        Attr::Bool(v) => v.to_string(),
        Attr::Ints(v) => format!("[{}]", v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")),
        Attr::Ident(s) => s.clone(),
        Attr::Tensor(t) => format!("{} {}", tensor_type(t), tensor_values(t)),
    }
}

/// Prints `g`; large constants appear as digests (see [`print_with_weights`]).
pub fn print(g: &Graph) -> String {
    print_impl(g, None)
}

/// Prints `g` and collects its large constants.
pub fn print_with_weights(g: &Graph) -> (String, Weights) {
    let mut w = Weights::default();
    let s = print_impl(g, Some(&mut w));
    (s, w)
}

fn print_impl(g: &Graph, mut weights: Option<&mut Weights>) -> String {
    let mut s = format!("graph {} {{\n", quote(&g.name));
    let order = match g.topo_order() {
        Ok(o) => o,
        Err(e) => return format!("# cannot print: {e}\n"),
    };
    for n in order {
        let node = g.node(n);
        let outs: Vec<String> = node.outputs.iter().map(|o| format!("%{}", name(&o.name))).collect();
        let _ = write!(s, "  {} = ", outs.join(", "));
        match &node.op {
            Op::Const(t) => {
                if t.len() <= INLINE_MAX {
                    let _ = write!(s, "const {} {}", tensor_type(t), tensor_values(t));
                } else {
                    let _ = write!(s, "const {} sha256:{}", tensor_type(t), t.digest());
                    if let Some(w) = weights.as_deref_mut() {
                        w.insert(t.clone());
                    }
                }
            }
            op => {
                let ins: Vec<String> = g
                    .node_inputs(n)
                    .iter()
                    .map(|v| match v {
                        Some(v) => format!("%{}", name(g.value_name(*v))),
                        None => "_".into(),
                    })
                    .collect();
                let _ = write!(s, "{}({})", op.name(), ins.join(", "));
                let attrs = op_attrs(op);
                if !attrs.is_empty() {
                    let a: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={}", attr(v))).collect();
                    let _ = write!(s, " {{{}}}", a.join(", "));
                }
                let tys: Vec<String> = node.outputs.iter().map(|o| vtype(&o.ty)).collect();
                let _ = write!(s, " : {}", tys.join(", "));
            }
        }
        if node.name != node.outputs.first().map_or("", |o| o.name.as_str()) {
            let _ = write!(s, " @{}", quote(&node.name));
        }
        s.push('\n');
    }
    let outs: Vec<String> = g.outputs().iter().map(|v| format!("%{}", name(g.value_name(*v)))).collect();
    let _ = writeln!(s, "  return {}", outs.join(", "));
    s.push_str("}\n");
    s
}
