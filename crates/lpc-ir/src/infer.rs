//! Type inference: the dtype of every value and, where it can be known, its shape (symbolic
//! dims flow through). Shapes that depend on run-time values are left unknown (`shape: None`);
//! types declared by the model (ONNX value_info) are checked against what is inferred.

use crate::{DType, Dim, Graph, NodeId, Op, Shape, ValueRef, ValueType};

/// A contradiction found by inference.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("node '{node}' ({op}): {msg}")]
pub struct InferError {
    /// Node name.
    pub node: String,
    /// Op name.
    pub op: &'static str,
    /// What is wrong.
    pub msg: String,
}

/// Numpy broadcast of two dim lists (`Sym` against 1 gives `Sym`; unequal symbols give the first).
pub fn broadcast_dims(a: &[Dim], b: &[Dim]) -> Result<Vec<Dim>, String> {
    let r = a.len().max(b.len());
    let one = Dim::Known(1);
    (0..r)
        .map(|i| {
            let da = if i + a.len() >= r { &a[i + a.len() - r] } else { &one };
            let db = if i + b.len() >= r { &b[i + b.len() - r] } else { &one };
            match (da, db) {
                (Dim::Known(1), d) | (d, Dim::Known(1)) => Ok(d.clone()),
                (Dim::Known(x), Dim::Known(y)) if x == y => Ok(da.clone()),
                (Dim::Known(x), Dim::Known(y)) => Err(format!("dims {x} and {y} do not broadcast")),
                (Dim::Known(_), Dim::Sym(_)) => Ok(da.clone()),
                (Dim::Sym(_), _) => Ok(da.clone()),
            }
        })
        .collect()
}


struct Ctx<'g> {
    g: &'g Graph,
    n: NodeId,
}

impl Ctx<'_> {
    fn input(&self, slot: usize) -> Option<ValueRef> {
        self.g.node_input(self.n, slot)
    }
    fn ty(&self, slot: usize) -> ValueType {
        self.input(slot).map(|v| self.g.value_type(v).clone()).unwrap_or_else(ValueType::unknown)
    }
    fn dtype(&self, slot: usize) -> Option<DType> {
        self.ty(slot).dtype
    }
    fn shape(&self, slot: usize) -> Option<Vec<Dim>> {
        self.ty(slot).shape.map(|s| s.0)
    }
    fn ints(&self, slot: usize) -> Option<Vec<i64>> {
        let t = self.g.const_value(self.input(slot)?)?;
        t.dtype().is_int().then(|| t.to_i64_vec())
    }
    fn floats(&self, slot: usize) -> Option<Vec<f64>> {
        let t = self.g.const_value(self.input(slot)?)?;
        Some(t.to_f64_vec())
    }
}

fn axis(a: i64, r: usize) -> Option<usize> {
    let v = if a < 0 { a + r as i64 } else { a };
    (v >= 0 && (v as usize) < r.max(1)).then_some(v as usize)
}

fn window_out(input: &Dim, k: usize, s: usize, d: usize, pb: usize, pe: usize, auto: crate::AutoPad, ceil: bool) -> Dim {
    let Dim::Known(i) = input else { return input.clone() };
    let ek = (k.max(1) - 1) * d + 1;
    match auto {
        crate::AutoPad::SameUpper | crate::AutoPad::SameLower => Dim::Known(i.div_ceil(s)),
        crate::AutoPad::Valid | crate::AutoPad::NotSet => {
            let (pb, pe) = if auto == crate::AutoPad::Valid { (0, 0) } else { (pb, pe) };
            let span = i + pb + pe;
            if span < ek {
                return Dim::Known(0);
            }
            let mut o = if ceil { (span - ek).div_ceil(s) + 1 } else { (span - ek) / s + 1 };
            if ceil && (o - 1) * s >= i + pb {
                o -= 1;
            }
            Dim::Known(o)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn spatial(x: &[Dim], kernel: &[usize], strides: &[usize], dil: &[usize], pads: &[usize], auto: crate::AutoPad, ceil: bool) -> Vec<Dim> {
    let r = kernel.len();
    (0..r)
        .map(|a| {
            let at = |v: &[usize], i: usize, def: usize| v.get(i).copied().unwrap_or(def);
            window_out(&x[2 + a], kernel[a], at(strides, a, 1), at(dil, a, 1), at(pads, a, 0), at(pads, a + r, 0), auto, ceil)
        })
        .collect()
}

/// Output types of one node; `Err` for inputs the op cannot take.
fn node_types(c: &Ctx) -> Result<Vec<ValueType>, String> {
    let node = c.g.node(c.n);
    let nout = node.outputs.len();
    let same = |slot: usize| -> Vec<ValueType> { vec![c.ty(slot); nout.max(1)] };
    let vt = |d: Option<DType>, s: Option<Vec<Dim>>| ValueType { dtype: d, shape: s.map(Shape) };
    let x = c.shape(0);
    Ok(match &node.op {
        Op::Input { .. } => vec![node.outputs[0].ty.clone()],
        Op::Const(t) => vec![ValueType::new(t.dtype(), Shape::known(t.shape()))],
        Op::Unary(crate::UnaryOp::Cast { to }) => vec![vt(Some(*to), x)],
        Op::Unary(_) | Op::Clip | Op::FakeQuantize { .. } => same(0),
        Op::Binary(b) => {
            let d = if *b == crate::BinaryOp::Equal { Some(DType::Bool) } else { c.dtype(0) };
            if *b != crate::BinaryOp::Pow {
                if let (Some(p), Some(q)) = (c.dtype(0), c.dtype(1)) {
                    if p != q {
                        return Err(format!("operands have different dtypes {p} and {q}"));
                    }
                }
            }
            let s = match (c.shape(0), c.shape(1)) {
                (Some(p), Some(q)) => Some(broadcast_dims(&p, &q)?),
                _ => None,
            };
            vec![vt(d, s)]
        }
        Op::Where => {
            let s = match (c.shape(0), c.shape(1), c.shape(2)) {
                (Some(p), Some(q), Some(r)) => Some(broadcast_dims(&broadcast_dims(&p, &q)?, &r)?),
                _ => None,
            };
            vec![vt(c.dtype(1), s)]
        }
        Op::Conv(a) | Op::ConvInteger(a) | Op::QLinearConv(a) | Op::QConv(a) => {
            let wslot = match node.op {
                Op::QLinearConv(_) => 3,
                Op::QConv(_) => 2,
                _ => 1,
            };
            let d = match &node.op {
                Op::ConvInteger(_) => Some(DType::I32),
                Op::QLinearConv(_) => c.dtype(7),
                Op::QConv(_) => if c.input(5).is_some() { c.dtype(5) } else { Some(DType::F32) },
                _ => c.dtype(0),
            };
            if let (Op::Conv(_), Some(dt)) = (&node.op, c.dtype(0)) {
                if !dt.is_float() {
                    return Err(format!("conv input must be a float type, got {dt}"));
                }
            }
            let s = match (x, c.shape(wslot)) {
                (Some(x), Some(w)) if x.len() >= 3 && w.len() == x.len() => {
                    if let (Dim::Known(ci), Dim::Known(wc)) = (&x[1], &w[1]) {
                        if *ci != wc * a.group {
                            return Err(format!("input has {ci} channels, weights expect {} (group {})", wc * a.group, a.group));
                        }
                    }
                    let kernel: Option<Vec<usize>> = w[2..].iter().map(Dim::known).collect();
                    kernel.map(|k| {
                        let mut s = vec![x[0].clone(), w[0].clone()];
                        s.extend(spatial(&x, &k, &a.strides, &a.dilations, &a.pads, a.auto_pad, false));
                        s
                    })
                }
                (Some(x), Some(w)) => return Err(format!("conv input rank {} and weight rank {} do not fit", x.len(), w.len())),
                _ => None,
            };
            vec![vt(d, s)]
        }
        Op::ConvTranspose { .. } => vec![vt(c.dtype(0), None)],
        Op::MaxPool { pool, .. } | Op::AveragePool { pool, .. } => {
            let s = x.filter(|x| x.len() == pool.kernel.len() + 2).map(|x| {
                let mut s = vec![x[0].clone(), x[1].clone()];
                s.extend(spatial(&x, &pool.kernel, &pool.strides, &pool.dilations, &pool.pads, pool.auto_pad, pool.ceil_mode));
                s
            });
            let mut v = vec![vt(c.dtype(0), s.clone())];
            if nout > 1 {
                v.push(vt(Some(DType::I64), s));
            }
            v
        }
        Op::GlobalAveragePool | Op::GlobalMaxPool => {
            vec![vt(c.dtype(0), x.map(|x| x.iter().enumerate().map(|(i, d)| if i < 2 { d.clone() } else { Dim::Known(1) }).collect()))]
        }
        Op::BatchNorm { .. } => {
            let mut v = vec![c.ty(0)];
            for _ in 1..nout {
                v.push(c.ty(3));
            }
            v
        }
        Op::LayerNorm { axis: ax, .. } => {
            let mut v = vec![c.ty(0)];
            let stat = x.as_ref().and_then(|x| {
                axis(*ax, x.len()).map(|a| x.iter().enumerate().map(|(i, d)| if i < a { d.clone() } else { Dim::Known(1) }).collect())
            });
            for _ in 1..nout {
                v.push(vt(Some(DType::F32), stat.clone()));
            }
            v
        }
        Op::Softmax { .. } | Op::LogSoftmax { .. } => same(0),
        Op::MatMul | Op::MatMulInteger | Op::QLinearMatMul | Op::QMatMul => {
            let bslot = match node.op {
                Op::QLinearMatMul => 3,
                Op::QMatMul => 2,
                _ => 1,
            };
            let d = match node.op {
                Op::MatMulInteger => Some(DType::I32),
                Op::QLinearMatMul => c.dtype(7),
                Op::QMatMul => if c.input(5).is_some() { c.dtype(5) } else { Some(DType::F32) },
                _ => c.dtype(0),
            };
            let s = match (x, c.shape(bslot)) {
                (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => {
                    let a2 = if a.len() == 1 { vec![Dim::Known(1), a[0].clone()] } else { a.clone() };
                    let b2 = if b.len() == 1 { vec![b[0].clone(), Dim::Known(1)] } else { b.clone() };
                    if let (Dim::Known(k1), Dim::Known(k2)) = (&a2[a2.len() - 1], &b2[b2.len() - 2]) {
                        if k1 != k2 {
                            return Err(format!("matmul inner dimensions {k1} and {k2} differ"));
                        }
                    }
                    let mut s = broadcast_dims(&a2[..a2.len() - 2], &b2[..b2.len() - 2])?;
                    if a.len() > 1 {
                        s.push(a2[a2.len() - 2].clone());
                    }
                    if b.len() > 1 {
                        s.push(b2[b2.len() - 1].clone());
                    }
                    Some(s)
                }
                _ => None,
            };
            vec![vt(d, s)]
        }
        Op::Gemm { trans_a, trans_b, .. } => {
            let s = match (x, c.shape(1)) {
                (Some(a), Some(b)) if a.len() == 2 && b.len() == 2 => {
                    Some(vec![a[if *trans_a { 1 } else { 0 }].clone(), b[if *trans_b { 0 } else { 1 }].clone()])
                }
                (Some(_), Some(_)) => return Err("gemm operands must be 2-D".into()),
                _ => None,
            };
            vec![vt(c.dtype(0), s)]
        }
        Op::Reduce { keepdims, noop_with_empty_axes, .. } => {
            let s = x.and_then(|x| {
                let axes = match c.input(1) {
                    None => vec![],
                    Some(_) => c.ints(1)?,
                };
                if axes.is_empty() && *noop_with_empty_axes {
                    return Some(x);
                }
                let red: Vec<usize> =
                    if axes.is_empty() { (0..x.len()).collect() } else { axes.iter().map(|&a| axis(a, x.len())).collect::<Option<_>>()? };
                Some(
                    x.iter()
                        .enumerate()
                        .filter_map(|(i, d)| {
                            if !red.contains(&i) {
                                Some(d.clone())
                            } else if *keepdims {
                                Some(Dim::Known(1))
                            } else {
                                None
                            }
                        })
                        .collect(),
                )
            });
            vec![vt(c.dtype(0), s)]
        }
        Op::Concat { axis: ax } => {
            let n = node.num_inputs;
            let shapes: Option<Vec<Vec<Dim>>> = (0..n).map(|k| c.shape(k)).collect();
            let s = shapes.and_then(|sh| {
                let first = sh.first()?.clone();
                let a = axis(*ax, first.len())?;
                let mut total = 0usize;
                for s in &sh {
                    total += s.get(a)?.known()?;
                }
                let mut out = first;
                out[a] = Dim::Known(total);
                Some(out)
            });
            vec![vt(c.dtype(0), s)]
        }
        Op::Split { axis: ax, num_outputs } => {
            let parts = x.clone().and_then(|x| {
                let a = axis(*ax, x.len())?;
                let len = x[a].known()?;
                let sizes: Vec<usize> = match c.input(1) {
                    Some(_) => c.ints(1)?.into_iter().map(|v| v.max(0) as usize).collect(),
                    None => {
                        let p = len.div_ceil((*num_outputs).max(1));
                        (0..*num_outputs).map(|k| p.min(len.saturating_sub(k * p))).collect()
                    }
                };
                Some(sizes.into_iter().map(|s| {
                    let mut o = x.clone();
                    o[a] = Dim::Known(s);
                    o
                }).collect::<Vec<_>>())
            });
            (0..nout).map(|k| vt(c.dtype(0), parts.as_ref().and_then(|p| p.get(k).cloned()))).collect()
        }
        Op::Flatten { axis: ax } => {
            let s = x.and_then(|x| {
                let r = x.len() as i64;
                let a = if *ax < 0 { ax + r } else { *ax };
                if a < 0 || a > r {
                    return None;
                }
                let prod = |d: &[Dim]| -> Dim {
                    match d.iter().map(Dim::known).collect::<Option<Vec<_>>>() {
                        Some(v) => Dim::Known(v.iter().product()),
                        None if d.len() == 1 => d[0].clone(),
                        None => Dim::Sym(format!("flat{}", d.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("x"))),
                    }
                };
                Some(vec![prod(&x[..a as usize]), prod(&x[a as usize..])])
            });
            vec![vt(c.dtype(0), s)]
        }
        Op::Reshape { allowzero } => {
            let s = c.ints(1).map(|spec| {
                let total = x.as_ref().and_then(|x| x.iter().map(Dim::known).collect::<Option<Vec<_>>>()).map(|v| v.iter().product::<usize>());
                let mut out: Vec<Option<Dim>> = spec
                    .iter()
                    .enumerate()
                    .map(|(k, &d)| match d {
                        0 if !allowzero => x.as_ref().and_then(|x| x.get(k).cloned()),
                        d if d > 0 || (d == 0 && *allowzero) => Some(Dim::Known(d as usize)),
                        _ => None,
                    })
                    .collect();
                if let Some(p) = spec.iter().position(|&d| d == -1) {
                    let rest: Option<usize> = out.iter().enumerate().filter(|(k, _)| *k != p).map(|(_, d)| d.as_ref().and_then(Dim::known)).product();
                    if let (Some(t), Some(r)) = (total, rest) {
                        if r > 0 {
                            out[p] = Some(Dim::Known(t / r));
                        }
                    }
                }
                out.into_iter().enumerate().map(|(k, d)| d.unwrap_or(Dim::Sym(format!("{}_{k}", node.outputs[0].name)))).collect()
            });
            vec![vt(c.dtype(0), s)]
        }
        Op::Squeeze | Op::Unsqueeze => {
            let s = x.and_then(|x| {
                let axes = if c.input(1).is_some() { Some(c.ints(1)?) } else { None };
                if matches!(node.op, Op::Squeeze) {
                    match axes {
                        None => {
                            if x.iter().any(|d| d.known().is_none()) {
                                return None;
                            }
                            Some(x.into_iter().filter(|d| *d != Dim::Known(1)).collect())
                        }
                        Some(axes) => {
                            let a: Vec<usize> = axes.iter().map(|&a| axis(a, x.len())).collect::<Option<_>>()?;
                            Some(x.into_iter().enumerate().filter(|(i, _)| !a.contains(i)).map(|(_, d)| d).collect())
                        }
                    }
                } else {
                    let axes = axes?;
                    let r = x.len() + axes.len();
                    let a: Vec<usize> = axes.iter().map(|&a| axis(a, r)).collect::<Option<_>>()?;
                    let mut it = x.into_iter();
                    (0..r).map(|i| if a.contains(&i) { Some(Dim::Known(1)) } else { it.next() }).collect()
                }
            });
            vec![vt(c.dtype(0), s)]
        }
        Op::Transpose { perm } => {
            let s = x.and_then(|x| {
                let p: Vec<usize> = if perm.is_empty() { (0..x.len()).rev().collect() } else { perm.clone() };
                p.iter().map(|&i| x.get(i).cloned()).collect()
            });
            vec![vt(c.dtype(0), s)]
        }
        Op::Gather { axis: ax } => {
            let s = match (x, c.shape(1)) {
                (Some(x), Some(ix)) => axis(*ax, x.len()).map(|a| {
                    let mut s = x[..a].to_vec();
                    s.extend(ix);
                    s.extend_from_slice(&x[a + 1..]);
                    s
                }),
                _ => None,
            };
            vec![vt(c.dtype(0), s)]
        }
        Op::ShapeOf { start, end } => {
            let s = x.map(|x| {
                let r = x.len() as i64;
                let cl = |v: i64| if v < 0 { (v + r).clamp(0, r) } else { v.clamp(0, r) };
                vec![Dim::Known((cl(end.unwrap_or(r)) - cl(*start)).max(0) as usize)]
            });
            vec![vt(Some(DType::I64), s)]
        }
        Op::Expand | Op::Slice | Op::Pad { .. } | Op::Resize(_) => {
            // Shapes follow from constant operands; without them the rank is still known for
            // Slice/Pad/Resize.
            let s = match &node.op {
                Op::Expand => c.ints(1).and_then(|sh| {
                    let t: Vec<Dim> = sh.iter().map(|&d| Dim::Known(d.max(0) as usize)).collect();
                    broadcast_dims(x.as_ref()?, &t).ok()
                }),
                Op::Resize(_) => x.clone().and_then(|x| {
                    if let Some(sz) = c.input(3).and_then(|_| c.ints(3)).filter(|v| v.len() == x.len()) {
                        return Some(sz.iter().map(|&d| Dim::Known(d.max(0) as usize)).collect());
                    }
                    let sc = c.input(2).and_then(|_| c.floats(2)).filter(|v| v.len() == x.len())?;
                    x.iter().zip(&sc).map(|(d, &s)| d.known().map(|d| Dim::Known((d as f64 * s).floor() as usize))).collect()
                }),
                _ => None,
            };
            let rank_known = !matches!(node.op, Op::Expand);
            let s = s.or_else(|| {
                x.filter(|_| rank_known).map(|x| (0..x.len()).map(|k| Dim::Sym(format!("{}_{k}", node.outputs[0].name))).collect())
            });
            vec![vt(c.dtype(0), s)]
        }
        Op::Range => vec![vt(c.dtype(0), Some(vec![Dim::Sym(format!("{}_0", node.outputs[0].name))]))],
        Op::ConstantOfShape { value } => {
            let s = c.ints(0).map(|v| v.iter().map(|&d| Dim::Known(d.max(0) as usize)).collect());
            let s = s.or_else(|| c.shape(0).and_then(|sh| sh[0].known()).map(|r| (0..r).map(|k| Dim::Sym(format!("{}_{k}", node.outputs[0].name))).collect()));
            vec![vt(Some(value.dtype()), s)]
        }
        Op::QuantizeLinear { dtype, .. } => vec![vt(Some(*dtype), x)],
        Op::DequantizeLinear { .. } => vec![vt(c.dtype(1), x)],
        Op::Requantize => vec![vt(c.dtype(4), x)],
        Op::QAdd => {
            let s = match (x, c.shape(3)) {
                (Some(p), Some(q)) => Some(broadcast_dims(&p, &q)?),
                _ => None,
            };
            vec![vt(c.dtype(7), s)]
        }
        Op::Lut => vec![vt(c.dtype(1), x)],
        Op::DynamicQuantizeLinear => vec![
            vt(Some(DType::U8), x),
            vt(Some(DType::F32), Some(vec![])),
            vt(Some(DType::U8), Some(vec![])),
        ],
    })
}

/// Merges a declared type with an inferred one; `Err` when they contradict.
fn merge(declared: &ValueType, inferred: &ValueType) -> Result<ValueType, String> {
    let dtype = match (declared.dtype, inferred.dtype) {
        (Some(a), Some(b)) if a != b => return Err(format!("declared dtype {a}, inferred {b}")),
        (a, b) => a.or(b),
    };
    let shape = match (&declared.shape, &inferred.shape) {
        (Some(a), Some(b)) => {
            if a.rank() != b.rank() {
                return Err(format!("declared shape {a}, inferred {b}"));
            }
            let mut dims = vec![];
            for (x, y) in a.0.iter().zip(&b.0) {
                dims.push(match (x, y) {
                    (Dim::Known(p), Dim::Known(q)) if p != q => return Err(format!("declared shape {a}, inferred {b}")),
                    (Dim::Known(_), _) => x.clone(),
                    (Dim::Sym(_), Dim::Known(_)) => y.clone(),
                    (Dim::Sym(_), Dim::Sym(_)) => x.clone(),
                });
            }
            Some(Shape(dims))
        }
        (a, b) => a.clone().or_else(|| b.clone()),
    };
    Ok(ValueType { dtype, shape })
}

/// Infers the types of every value in topological order, merging with declared types.
pub fn infer_types(g: &mut Graph) -> Result<(), InferError> {
    let order = g.topo_order().map_err(|e| InferError { node: String::new(), op: "graph", msg: e.to_string() })?;
    for n in order {
        let (name, op) = (g.node(n).name.clone(), g.node(n).op.name());
        let err = |msg: String| InferError { node: name.clone(), op, msg };
        let inferred = node_types(&Ctx { g, n }).map_err(err)?;
        let k = g.node(n).outputs.len();
        if inferred.len() < k {
            return Err(err(format!("op gives {} outputs, node declares {k}", inferred.len())));
        }
        for (i, t) in inferred.into_iter().take(k).enumerate() {
            let out = g.output_mut(ValueRef { node: n, output: i });
            out.ty = merge(&out.ty, &t).map_err(|m| InferError { node: name.clone(), op, msg: format!("output '{}': {m}", out.name) })?;
        }
    }
    Ok(())
}

/// Known shape of a value as plain sizes, if fully known.
pub fn known_shape(g: &Graph, v: ValueRef) -> Option<Vec<usize>> {
    g.value_type(v).shape.as_ref().and_then(Shape::as_known)
}

