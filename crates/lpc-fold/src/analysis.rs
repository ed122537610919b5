//! The e-graph analysis: per e-class dtype, shape and constant value (constant folding through
//! `lpc-ref`), and the conflict check that turns a rule unioning incompatible classes into an
//! error naming the rule.

use crate::lang::{FNode, Head, HeadKind, DQ, Q};
use egg::{Analysis, DidMerge, EGraph, Id, Symbol};
use lpc_ir::{DType, Dim, Graph, Op, OpKind, Output, QuantAxis, Shape, Tensor, ValueType};
use std::sync::Arc;

/// The e-graph type used by the fold stage.
pub type FGraph = EGraph<FNode, FoldAnalysis>;

/// Constants with more elements than this are not produced by folding (kept symbolic).
pub const FOLD_LIMIT: usize = 1 << 22;
/// Constants up to this many elements are handed to type inference as values (shape operands).
const INFER_CONST_LIMIT: usize = 64;

/// What is known of one e-class.
#[derive(Clone, Debug)]
pub struct Facts {
    /// Dtype and shape of the value (of output 0 for a tuple).
    pub ty: ValueType,
    /// The constant value, when every input is constant.
    pub value: Option<Arc<Tensor>>,
    /// Types of every output of a multi-output node (empty otherwise).
    pub outs: Vec<ValueType>,
    /// Attribute leaf, absent leaf or tuple: not a tensor value.
    pub not_value: bool,
}

/// The analysis state: graph input types, the rule being applied and what went wrong.
#[derive(Clone, Debug, Default)]
pub struct FoldAnalysis {
    /// Types of the graph inputs, by index.
    pub inputs: Vec<ValueType>,
    /// The rule whose right-hand side is being added (for conflict messages).
    pub current_rule: Option<Symbol>,
    /// Contradictions found (a rule unioned classes of different dtype or shape, or built an
    /// ill-typed node).
    pub conflicts: Vec<String>,
    /// (rule, e-class) of every successful rule application.
    pub fired: Vec<(Symbol, Id)>,
    /// Bytes of the constant values the classes hold (loaded constants and folded results).
    pub value_bytes: usize,
}

/// One input slot of a lowered node.
#[derive(Clone, Debug)]
pub enum Slot {
    /// Unconnected.
    None,
    /// An e-class.
    Class(Id),
    /// A constant made while lowering (reshaped quantization parameters).
    Value(Arc<Tensor>),
}

/// The constant of a class, if known.
pub fn const_of(eg: &FGraph, id: Id) -> Option<Arc<Tensor>> {
    eg[id].data.value.clone()
}

/// True for the class of `none`.
pub fn is_absent(eg: &FGraph, id: Id) -> bool {
    eg[id].nodes.iter().any(|n| n.head == Head::Absent)
}

/// The attribute op held by a class of attribute leaves.
pub fn attr_of(eg: &FGraph, id: Id) -> Option<Arc<Op>> {
    eg[id].nodes.iter().find_map(|n| match &n.head {
        Head::Attr(a) => Some(a.op.clone()),
        _ => None,
    })
}

/// A broadcast-shaped quantization parameter as ONNX wants it: rank 0 for one value, else 1-D
/// along the single non-1 axis (returned counted from the left of a rank-`rank` operand).
pub fn param_axis(p: &Tensor, rank: usize) -> Result<(Tensor, i64), String> {
    if p.len() == 1 {
        return Ok((p.clone().reshape(&[]).map_err(|e| e.to_string())?, 1));
    }
    let big: Vec<usize> = (0..p.rank()).filter(|&d| p.shape()[d] != 1).collect();
    if big.len() != 1 || p.rank() > rank {
        return Err(format!(
            "quantization parameter of shape {:?} varies along more than one axis",
            p.shape()
        ));
    }
    let axis = big[0] + rank - p.rank();
    Ok((
        p.clone().reshape(&[p.len()]).map_err(|e| e.to_string())?,
        axis as i64,
    ))
}

/// The QuantizeLinear (`is_q`) or DequantizeLinear of a canonical `q`/`dq` e-node, with
/// per-tensor or per-axis parameters.
fn lower_q(eg: &FGraph, n: &FNode, is_q: bool) -> Result<(Op, Vec<Slot>), String> {
    let name = if is_q { Q } else { DQ };
    let [x, s, z] = n.children[..] else {
        return Err(format!("{name} needs 3 children"));
    };
    let (Some(st), Some(zt)) = (const_of(eg, s), const_of(eg, z)) else {
        return Err(format!("{name}: scale and zero point must be constants"));
    };
    let rank = eg[x]
        .data
        .ty
        .shape
        .as_ref()
        .map(Shape::rank)
        .unwrap_or(st.rank().max(zt.rank()));
    let (sp, ax) = param_axis(&st, rank)?;
    let (zp, zax) = param_axis(&zt, rank)?;
    if sp.len() > 1 && zp.len() > 1 && ax != zax {
        return Err(format!(
            "{name}: scale and zero point vary along different axes"
        ));
    }
    let zp = if zp.len() == 1 && sp.len() > 1 {
        let v = vec![zp.to_i64_vec()[0]; sp.len()];
        Tensor::from_i64(&[sp.len()], v)
            .map_err(|e| e.to_string())?
            .cast(zp.dtype())
    } else {
        zp
    };
    let axis = if sp.len() > 1 { ax } else { zax };
    let q = QuantAxis {
        axis,
        block_size: 0,
    };
    let op = if is_q {
        Op::QuantizeLinear {
            q,
            dtype: zp.dtype(),
        }
    } else {
        Op::DequantizeLinear { q }
    };
    Ok((
        op,
        vec![
            Slot::Class(x),
            Slot::Value(Arc::new(sp)),
            Slot::Value(Arc::new(zp)),
        ],
    ))
}

/// The IR op of an e-node and its input slots. Canonical `q`/`dq` become QuantizeLinear /
/// DequantizeLinear with per-tensor or per-axis parameters.
pub fn lower(eg: &FGraph, n: &FNode) -> Result<(Op, Vec<Slot>), String> {
    let Head::Op { kind, .. } = &n.head else {
        return Err(format!("{n} is not an op"));
    };
    let name = kind.name();
    let slot = |id: Id| {
        if is_absent(eg, id) {
            Slot::None
        } else {
            Slot::Class(id)
        }
    };
    let kind = match *kind {
        HeadKind::Q => return lower_q(eg, n, true),
        HeadKind::Dq => return lower_q(eg, n, false),
        HeadKind::Op(k) => k,
    };
    if !kind.has_attrs() {
        return Ok((
            kind.template(),
            n.children.iter().map(|&c| slot(c)).collect(),
        ));
    }
    let Some(&a) = n.children.first() else {
        return Err(format!("{name} has no attribute child"));
    };
    let op =
        attr_of(eg, a).ok_or_else(|| format!("{name}: first child is not an attribute leaf"))?;
    let op = adopt_attrs(kind, &op)
        .ok_or_else(|| format!("{name}: attribute leaf belongs to {}", op.name()))?;
    Ok((op, n.children[1..].iter().map(|&c| slot(c)).collect()))
}

/// The op of kind `kind` built from another op's attributes: the same op, or any conv flavour
/// for another (so `(qconv ?a ...)` can reuse the `?a` of a matched `(conv ?a ...)`).
pub fn adopt_attrs(kind: OpKind, op: &Op) -> Option<Op> {
    if op.kind() == kind {
        return Some(op.clone());
    }
    let conv = match op {
        Op::Conv(a) | Op::ConvInteger(a) | Op::QLinearConv(a) | Op::QConv(a) => a.clone(),
        _ => return None,
    };
    match kind {
        OpKind::Conv => Some(Op::Conv(conv)),
        OpKind::ConvInteger => Some(Op::ConvInteger(conv)),
        OpKind::QLinearConv => Some(Op::QLinearConv(conv)),
        OpKind::QConv => Some(Op::QConv(conv)),
        _ => None,
    }
}

/// The facts of one input slot of a lowered node: its type and, when constant, its value.
type InputFacts = Option<(ValueType, Option<Arc<Tensor>>)>;

/// Output types of an op on inputs of the given facts, by lpc-ir's own inference.
fn infer(op: &Op, ins: &[InputFacts], nout: usize) -> Result<Vec<ValueType>, String> {
    let mut g = Graph::new("infer");
    let mut refs = vec![];
    for (k, i) in ins.iter().enumerate() {
        refs.push(match i {
            None => None,
            Some((_, Some(t))) if t.len() <= INFER_CONST_LIMIT => {
                Some(g.add_const(format!("c{k}"), t.clone()))
            }
            Some((ty, _)) => Some(g.add_input(format!("i{k}"), ty.clone())),
        });
    }
    let outs = (0..nout).map(|k| Output::named(format!("o{k}"))).collect();
    let n = g.add_node("n", op.clone(), &refs, outs);
    lpc_ir::infer_types(&mut g).map_err(|e| e.to_string())?;
    Ok(g.node(n).outputs.iter().map(|o| o.ty.clone()).collect())
}

fn value_facts(t: &Arc<Tensor>) -> Facts {
    Facts {
        ty: ValueType::new(t.dtype(), Shape::known(t.shape())),
        value: Some(t.clone()),
        outs: vec![],
        not_value: false,
    }
}

fn blank(not_value: bool) -> Facts {
    Facts {
        ty: ValueType::unknown(),
        value: None,
        outs: vec![],
        not_value,
    }
}

/// Facts of an op node: inferred type and, with all inputs constant, the folded value.
fn op_facts(eg: &FGraph, n: &FNode, nout: usize) -> Result<Facts, String> {
    let (op, slots) = lower(eg, n)?;
    let mut ins = vec![];
    let mut all_const = true;
    let mut size = 0usize;
    for s in &slots {
        ins.push(match s {
            Slot::None => None,
            Slot::Class(c) => {
                let d = &eg[*c].data;
                if d.not_value {
                    return Err(format!("{}: an input is not a tensor value", op.name()));
                }
                all_const &= d.value.is_some();
                size += d.value.as_ref().map_or(0, |t| t.len());
                Some((d.ty.clone(), d.value.clone()))
            }
            Slot::Value(t) => Some((
                ValueType::new(t.dtype(), Shape::known(t.shape())),
                Some(t.clone()),
            )),
        });
    }
    let tys = infer(&op, &ins, nout)?;
    let mut f = blank(nout > 1);
    if nout > 1 {
        f.outs = tys;
        return Ok(f);
    }
    f.ty = tys.into_iter().next().unwrap_or_else(ValueType::unknown);
    let foldable = !matches!(op, Op::Input { .. } | Op::Const(_));
    // The result's size is known before it is computed: a small constant can ask for a huge
    // one (ConstantOfShape, Expand, Tile), which is not folded.
    let small_result =
        f.ty.shape
            .as_ref()
            .and_then(|s| s.as_known())
            .and_then(|d| d.iter().try_fold(1usize, |a, &x| a.checked_mul(x)))
            .is_some_and(|n| n <= FOLD_LIMIT);
    if all_const && foldable && small_result && size <= FOLD_LIMIT {
        let ts: Vec<Option<&Tensor>> = ins
            .iter()
            .map(|i| i.as_ref().and_then(|(_, v)| v.as_deref()))
            .collect();
        if let Ok(mut out) = lpc_ref::eval(&op, &ts, 1) {
            if let Some(t) = out.drain(..).next() {
                if t.len() <= FOLD_LIMIT {
                    f = value_facts(&Arc::new(t));
                }
            }
        }
    }
    Ok(f)
}

fn merge_dtype(a: Option<DType>, b: Option<DType>) -> Result<Option<DType>, String> {
    match (a, b) {
        (Some(x), Some(y)) if x != y => Err(format!("dtype {x} vs {y}")),
        (x, y) => Ok(x.or(y)),
    }
}

fn merge_shape(a: &Option<Shape>, b: &Option<Shape>) -> Result<Option<Shape>, String> {
    match (a, b) {
        (Some(x), Some(y)) => {
            if x.rank() != y.rank() {
                return Err(format!("shape {x} vs {y}"));
            }
            let mut dims = vec![];
            for (p, q) in x.0.iter().zip(&y.0) {
                dims.push(match (p, q) {
                    (Dim::Known(i), Dim::Known(j)) if i != j => {
                        return Err(format!("shape {x} vs {y}"))
                    }
                    (Dim::Known(_), _) => p.clone(),
                    (Dim::Sym(_), Dim::Known(_)) => q.clone(),
                    (Dim::Sym(_), Dim::Sym(_)) => p.clone(),
                });
            }
            Ok(Some(Shape(dims)))
        }
        (x, y) => Ok(x.clone().or_else(|| y.clone())),
    }
}

impl FoldAnalysis {
    fn blame(&self) -> String {
        match self.current_rule {
            Some(r) => format!("rule '{r}'"),
            None => "the input graph".to_string(),
        }
    }
}

/// The facts of a new e-node.
fn node_facts(eg: &mut FGraph, n: &FNode) -> Facts {
    match &n.head {
        Head::Const(c) => value_facts(&c.t),
        Head::Input(k) => {
            let mut f = blank(false);
            f.ty = eg
                .analysis
                .inputs
                .get(*k)
                .cloned()
                .unwrap_or_else(ValueType::unknown);
            f
        }
        Head::Attr(_) | Head::Absent => blank(true),
        Head::Out(k) => {
            let mut f = blank(false);
            f.ty = n
                .children
                .first()
                .and_then(|&c| eg[c].data.outs.get(*k).cloned())
                .unwrap_or_else(ValueType::unknown);
            f
        }
        Head::Op { nout, .. } => match op_facts(eg, n, *nout) {
            Ok(f) => f,
            Err(e) => {
                let msg = format!("{} built an ill-typed node ({n}): {e}", eg.analysis.blame());
                eg.analysis.conflicts.push(msg);
                blank(*nout > 1)
            }
        },
    }
}

impl Analysis<FNode> for FoldAnalysis {
    type Data = Facts;

    fn make(eg: &mut FGraph, n: &FNode, _id: Id) -> Facts {
        let f = node_facts(eg, n);
        if let Some(t) = &f.value {
            eg.analysis.value_bytes += t.len() * t.dtype().size();
        }
        f
    }

    fn merge(&mut self, a: &mut Facts, b: Facts) -> DidMerge {
        let before = (a.ty.clone(), a.value.is_some(), a.outs.len());
        let conflict = |what: String, this: &mut FoldAnalysis| {
            let msg = format!("{} unioned values of different types: {what}", this.blame());
            this.conflicts.push(msg);
        };
        if a.not_value != b.not_value {
            conflict(
                "a tensor value with an attribute, absent input or tuple".into(),
                self,
            );
        }
        match merge_dtype(a.ty.dtype, b.ty.dtype) {
            Ok(d) => a.ty.dtype = d,
            Err(e) => conflict(e, self),
        }
        match merge_shape(&a.ty.shape, &b.ty.shape) {
            Ok(s) => a.ty.shape = s,
            Err(e) => conflict(e, self),
        }
        if a.value.is_none() {
            a.value = b.value;
        }
        if a.outs.len() < b.outs.len() {
            a.outs = b.outs;
        }
        let a_changed = before != (a.ty.clone(), a.value.is_some(), a.outs.len());
        DidMerge(a_changed, true)
    }

    /// A folded value becomes a constant leaf of its class, except in classes holding a
    /// quantization op: there the integer form (i8 weights + Dequantize, i32 bias + ...) is
    /// what later rules match and what the graph should keep, so the float copy is not added.
    fn modify(eg: &mut FGraph, id: Id) {
        let Some(t) = eg[id].data.value.clone() else {
            return;
        };
        let quant = |n: &FNode| {
            matches!(
                n.head,
                Head::Op {
                    kind: HeadKind::Q
                        | HeadKind::Dq
                        | HeadKind::Op(
                            OpKind::FakeQuantize
                                | OpKind::QuantizeLinear
                                | OpKind::DequantizeLinear
                        ),
                    ..
                }
            )
        };
        if eg[id]
            .nodes
            .iter()
            .any(|n| matches!(n.head, Head::Const(_)) || quant(n))
        {
            return;
        }
        let c = eg.add(FNode {
            head: Head::Const(crate::lang::ConstKey::new(t)),
            children: vec![],
        });
        eg.union(id, c);
    }
}
