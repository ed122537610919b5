//! The `.lir` printer: the graph header, then one line per node in `Graph::topo_order()`.

use super::attrs::{activation_word, visit, Visitor, Word};
use super::weights::Weights;
use crate::{Dim, Graph, Node, NodeId, Op, RnnActivation, Tensor, TensorData, ValueRef, ValueType};
use half::f16;
use std::fmt::Write;
use std::sync::Arc;

/// Constants with at most this many elements are printed inline; larger ones by digest.
pub const INLINE_MAX: usize = 16;

/// True for a name printed bare after `%` or `@` (`%conv1`, `%481`); others are quoted.
pub(crate) fn is_bare_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// True for a word the lexer reads as one identifier (`N`, `batch_size`).
pub(crate) fn is_ident(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A double-quoted string with `\\`, `\"`, `\n`, `\t`, `\r` and `\u{..}` escapes.
pub(crate) fn quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(o, "\\u{{{:x}}}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A value, node or graph name after its sigil.
pub(crate) fn name(s: &str) -> String {
    if is_bare_name(s) {
        s.to_string()
    } else {
        quote(s)
    }
}

/// An f32 that parses back to the same bits: shortest round-trip decimal, `inf`, `-inf`,
/// `nan` (the canonical quiet NaN) or `nan:0x7fc00001` (any other NaN, by its bits).
pub(crate) fn f32_text(x: f32) -> String {
    if x.is_nan() {
        if x.to_bits() == f32::NAN.to_bits() {
            "nan".into()
        } else {
            format!("nan:0x{:08x}", x.to_bits())
        }
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{x:?}")
    }
}

/// An f64, like [`f32_text`].
pub(crate) fn f64_text(x: f64) -> String {
    if x.is_nan() {
        if x.to_bits() == f64::NAN.to_bits() {
            "nan".into()
        } else {
            format!("nan:0x{:016x}", x.to_bits())
        }
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{x:?}")
    }
}

/// An f16, like [`f32_text`] (the f32 of an f16 is exact, so the decimal round-trips).
pub(crate) fn f16_text(x: f16) -> String {
    if x.is_nan() {
        if x.to_bits() == f16::NAN.to_bits() {
            "nan".into()
        } else {
            format!("nan:0x{:04x}", x.to_bits())
        }
    } else {
        f32_text(x.to_f32())
    }
}

fn dim(d: &Dim) -> String {
    match d {
        Dim::Known(n) => n.to_string(),
        Dim::Sym(s) if is_ident(s) => s.clone(),
        Dim::Sym(s) => quote(s),
    }
}

/// A value type: `f32[N,3,224,224]`, `?[*]`, `i64[]`.
pub(crate) fn vtype(t: &ValueType) -> String {
    let d = t.dtype.map_or("?", |d| d.name());
    match &t.shape {
        None => format!("{d}[*]"),
        Some(s) => format!("{d}[{}]", s.0.iter().map(dim).collect::<Vec<_>>().join(",")),
    }
}

fn join<T>(v: &[T], f: impl Fn(&T) -> String) -> String {
    v.iter().map(f).collect::<Vec<_>>().join(", ")
}

fn tensor_values(t: &Tensor) -> String {
    let items = match t.data() {
        TensorData::F32(v) => join(v, |&x| f32_text(x)),
        TensorData::F16(v) => join(v, |&x| f16_text(x)),
        TensorData::F64(v) => join(v, |&x| f64_text(x)),
        TensorData::I8(v) => join(v, |x| x.to_string()),
        TensorData::U8(v) => join(v, |x| x.to_string()),
        TensorData::I32(v) => join(v, |x| x.to_string()),
        TensorData::I64(v) => join(v, |x| x.to_string()),
        TensorData::Bool(v) => join(v, |x| x.to_string()),
    };
    format!("[{items}]")
}

/// A tensor literal: `f32[2] [0.5, nan]`, or `f32[64,3,7,7] sha256:<hex>` for a large one
/// (collected into `weights` when given).
fn tensor_literal(t: &Arc<Tensor>, weights: &mut Option<&mut Weights>) -> String {
    let ty = format!(
        "{}[{}]",
        t.dtype(),
        t.shape()
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    if t.len() <= INLINE_MAX {
        format!("{ty} {}", tensor_values(t))
    } else {
        let digest = match weights {
            Some(w) => w.insert(t.clone()),
            None => t.digest(),
        };
        format!("{ty} sha256:{digest}")
    }
}

/// `sigmoid`, `leaky_relu(0.1)`, `hard_sigmoid(0.2, 0.5)`: the word and the parameters the
/// activation takes.
fn activation_text(a: RnnActivation) -> String {
    let params: Vec<String> = match a.params() {
        (Some(x), Some(y)) => vec![f32_text(x), f32_text(y)],
        (Some(x), None) | (None, Some(x)) => vec![f32_text(x)],
        (None, None) => vec![],
    };
    if params.is_empty() {
        activation_word(a).to_string()
    } else {
        format!("{}({})", activation_word(a), params.join(", "))
    }
}

/// Collects `key=value` for attributes that differ from their defaults.
struct AttrPrinter<'a, 'w> {
    out: Vec<String>,
    weights: &'a mut Option<&'w mut Weights>,
}

impl AttrPrinter<'_, '_> {
    fn put(&mut self, key: &str, show: bool, text: impl FnOnce() -> String) {
        if show {
            self.out.push(format!("{key}={}", text()));
        }
    }
}

impl Visitor for AttrPrinter<'_, '_> {
    fn usize(&mut self, key: &'static str, v: &mut usize, default: Option<usize>) {
        self.put(key, default != Some(*v), || v.to_string());
    }
    fn u32(&mut self, key: &'static str, v: &mut u32, default: Option<u32>) {
        self.put(key, default != Some(*v), || v.to_string());
    }
    fn i64(&mut self, key: &'static str, v: &mut i64, default: Option<i64>) {
        self.put(key, default != Some(*v), || v.to_string());
    }
    fn opt_i64(&mut self, key: &'static str, v: &mut Option<i64>) {
        self.put(key, v.is_some(), || {
            v.map_or("none".into(), |x| x.to_string())
        });
    }
    fn f32(&mut self, key: &'static str, v: &mut f32, default: Option<f32>) {
        self.put(key, default.map(f32::to_bits) != Some(v.to_bits()), || {
            f32_text(*v)
        });
    }
    fn opt_f32(&mut self, key: &'static str, v: &mut Option<f32>) {
        self.put(key, v.is_some(), || v.map_or("none".into(), f32_text));
    }
    fn bool(&mut self, key: &'static str, v: &mut bool, default: Option<bool>) {
        self.put(key, default != Some(*v), || v.to_string());
    }
    fn activations(
        &mut self,
        key: &'static str,
        v: &mut Vec<RnnActivation>,
        default: Vec<RnnActivation>,
    ) {
        self.put(key, *v != default, || {
            let items: Vec<String> = v.iter().map(|&a| activation_text(a)).collect();
            format!("[{}]", items.join(", "))
        });
    }
    fn usizes(&mut self, key: &'static str, v: &mut Vec<usize>) {
        self.put(key, !v.is_empty(), || {
            format!(
                "[{}]",
                v.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        });
    }
    fn i64s(&mut self, key: &'static str, v: &mut Vec<i64>) {
        self.put(key, !v.is_empty(), || {
            format!(
                "[{}]",
                v.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        });
    }
    fn word<W: Word>(&mut self, key: &'static str, v: &mut W, default: Option<W>) {
        self.put(key, default != Some(*v), || v.word().to_string());
    }
    fn string(&mut self, key: &'static str, v: &mut String) {
        self.put(key, true, || quote(v));
    }
    fn tensor(&mut self, key: &'static str, v: &mut Arc<Tensor>) {
        let text = tensor_literal(v, self.weights);
        self.put(key, true, || text);
    }
    fn graph(&mut self, key: &'static str, v: &mut Arc<Graph>) {
        let text = Printer {
            g: v,
            weights: self.weights.as_deref_mut(),
        }
        .graph();
        // The body's lines after the header are indented one level more than the node line.
        let mut lines = text.trim_end().lines();
        let mut out = lines.next().unwrap_or_default().to_string();
        for l in lines {
            out.push_str("\n  ");
            out.push_str(l);
        }
        self.put(key, true, || out);
    }
}

/// Prints `g` in the `.lir` text format; large constants appear by digest only.
pub fn print(g: &Graph) -> String {
    Printer { g, weights: None }.graph()
}

/// Prints `g` and collects its large constants (more than [`INLINE_MAX`] elements) for the
/// weights sidecar.
pub fn print_with_weights(g: &Graph) -> (String, Weights) {
    let mut w = Weights::default();
    let text = Printer {
        g,
        weights: Some(&mut w),
    }
    .graph();
    (text, w)
}

struct Printer<'a, 'w> {
    g: &'a Graph,
    weights: Option<&'w mut Weights>,
}

impl Printer<'_, '_> {
    fn node(&self, id: NodeId) -> Option<&Node> {
        self.g.petgraph().node_weight(id)
    }

    fn value(&self, v: ValueRef) -> String {
        match self.node(v.node).and_then(|n| n.outputs.get(v.output)) {
            Some(o) => format!("%{}", name(&o.name)),
            None => "%\"<missing value>\"".to_string(),
        }
    }

    fn graph(&mut self) -> String {
        let g = self.g;
        let mut out = String::new();
        let order = match g.topo_order() {
            Ok(o) => o,
            Err(e) => {
                let _ = writeln!(out, "# not parseable: {e}; nodes in index order");
                g.node_ids()
            }
        };
        let params: Vec<String> = g
            .inputs()
            .iter()
            .map(|&id| {
                match self
                    .node(id)
                    .and_then(|n| n.outputs.first().map(|o| (n, o)))
                {
                    Some((n, o)) => {
                        let mut s = format!("%{}: {}", name(&o.name), vtype(&o.ty));
                        if n.name != o.name {
                            let _ = write!(s, " @{}", name(&n.name));
                        }
                        s
                    }
                    None => "%\"<missing input>\": ?[*]".to_string(),
                }
            })
            .collect();
        let outs = join(g.outputs(), |&v| self.value(v));
        let _ = writeln!(
            out,
            "graph @{}({}) -> ({outs}) {{",
            name(&g.name),
            params.join(", ")
        );
        // Graph inputs are placed first unless the topological order says otherwise; then
        // `input %x` lines place them explicitly.
        let implicit = order.len() >= g.inputs().len() && order[..g.inputs().len()] == *g.inputs();
        let mut placed = 0;
        for &id in &order {
            if let Some(k) = g.inputs().iter().position(|&i| i == id) {
                if !implicit && k >= placed {
                    let _ = writeln!(out, "  input {}", self.value(ValueRef::first(id)));
                    placed = k + 1;
                }
                continue;
            }
            if let Some(line) = self.node_line(id) {
                let _ = writeln!(out, "  {line}");
            }
        }
        if outs.is_empty() {
            out.push_str("  return\n}\n");
        } else {
            let _ = writeln!(out, "  return {outs}\n}}");
        }
        out
    }

    fn node_line(&mut self, id: NodeId) -> Option<String> {
        let g = self.g;
        let n = g.petgraph().node_weight(id)?;
        let mut s = if n.outputs.is_empty() {
            "()".to_string()
        } else {
            join(&n.outputs, |o| format!("%{}", name(&o.name)))
        };
        let args = join(&g.node_inputs(id), |a| {
            a.map_or("_".to_string(), |v| self.value(v))
        });
        let _ = write!(s, " = {}", n.op.name());
        let default_ty = match &n.op {
            Op::Const(t) => {
                if n.num_inputs > 0 {
                    let _ = write!(s, "({args})");
                }
                let _ = write!(s, " {}", tensor_literal(t, &mut self.weights));
                ValueType::new(t.dtype(), crate::Shape::known(t.shape()))
            }
            other => {
                let _ = write!(s, "({args})");
                let mut op = other.clone();
                let mut p = AttrPrinter {
                    out: vec![],
                    weights: &mut self.weights,
                };
                visit(&mut op, &mut p);
                if !p.out.is_empty() {
                    let _ = write!(s, " {{{}}}", p.out.join(", "));
                }
                ValueType::unknown()
            }
        };
        if n.outputs.iter().any(|o| o.ty != default_ty) {
            let _ = write!(s, " : {}", join(&n.outputs, |o| vtype(&o.ty)));
        }
        let default_name = n.outputs.first().map_or("", |o| o.name.as_str());
        if n.name != default_name {
            let _ = write!(s, " @{}", name(&n.name));
        }
        Some(s)
    }
}
