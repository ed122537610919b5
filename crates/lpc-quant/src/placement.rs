//! Quantizer placement before calibration: which values get an activation quantizer, which
//! weights a per-channel one, which values must share a range, which nodes `--ignore` excludes.

use crate::QuantError;
use lpc_ir::{BinaryOp, Graph, NodeId, Op, UnaryOp, ValueRef};
use std::collections::{BTreeMap, BTreeSet};

/// What a quantizable layer is, for placement and bias correction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// Conv: weights `[O, I/g, k...]`, output channels on axis 1.
    Conv,
    /// ConvTranspose: weights `[I, O/g, k...]`, output channels on axis 1.
    ConvTranspose,
    /// Gemm; `trans_b` says whether B is `[N, K]`.
    Gemm {
        /// B is transposed.
        trans_b: bool,
    },
    /// MatMul; output channels on the last axis.
    MatMul,
}

/// A quantized layer: its activation inputs and its weight quantizer.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// The node.
    pub node: NodeId,
    /// What it is.
    pub kind: LayerKind,
    /// Input slots read through activation quantizers.
    pub act_slots: Vec<usize>,
    /// Constant-weight slot and its output-channel axis, if the layer has constant weights.
    pub weight: Option<(usize, usize)>,
}

/// An activation quantization point: one value, read through one FakeQuantize by `consumers`.
#[derive(Clone, Debug, PartialEq)]
pub struct ActPoint {
    /// The quantized value.
    pub value: ValueRef,
    /// The (node, slot) pairs that read the quantized version.
    pub consumers: Vec<(NodeId, usize)>,
    /// Index of the group of points that share one range (unified scales).
    pub group: usize,
}

/// Where quantizers go.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Placement {
    /// Quantized layers, in topological order.
    pub layers: Vec<Layer>,
    /// Activation quantization points, in topological order of their values.
    pub acts: Vec<ActPoint>,
    /// Groups of points that share a range: why each group was formed (node name).
    pub groups: Vec<String>,
    /// Concat nodes whose inputs share a group (a group may be dropped when ranges differ).
    pub concat_groups: Vec<usize>,
    /// Node names excluded by `--ignore`.
    pub ignored: Vec<String>,
}

/// `--ignore` patterns resolved to nodes: an exact node name, an op type (ONNX spelling like
/// `Conv`/`MatMul` or lpc's `conv`/`mat_mul`, case-insensitive), or a regular expression
/// matched against whole node names. A pattern that selects nothing is an error.
pub fn resolve_ignore(g: &Graph, patterns: &[String]) -> Result<BTreeSet<NodeId>, QuantError> {
    let mut out = BTreeSet::new();
    let ids = g.node_ids();
    let canon = |s: &str| s.to_ascii_lowercase().replace('_', "");
    for p in patterns {
        let mut hit: Vec<NodeId> = ids
            .iter()
            .copied()
            .filter(|&n| g.node(n).name == *p)
            .collect();
        if hit.is_empty() {
            let cp = canon(p);
            hit = ids
                .iter()
                .copied()
                .filter(|&n| {
                    let op = &g.node(n).op;
                    let onnx_alias = match op {
                        Op::BatchNorm { .. } => "batchnormalization",
                        Op::Binary(BinaryOp::Add) => "add",
                        Op::Reduce { .. } => "reduce",
                        _ => "",
                    };
                    canon(op.name()) == cp || (!onnx_alias.is_empty() && onnx_alias == cp)
                })
                .collect();
        }
        if hit.is_empty() {
            let re = regex::Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                QuantError::Ignore(format!(
                    "'{p}' is no node name or op type, and not a valid regex: {e}"
                ))
            })?;
            hit = ids
                .iter()
                .copied()
                .filter(|&n| re.is_match(&g.node(n).name))
                .collect();
        }
        if hit.is_empty() {
            return Err(QuantError::Ignore(format!(
                "'{p}' matches no node name, op type or node-name regex in the model"
            )));
        }
        out.extend(hit);
    }
    Ok(out)
}

fn is_const(g: &Graph, v: Option<ValueRef>) -> bool {
    v.is_some_and(|v| g.const_value(v).is_some())
}

fn is_float(g: &Graph, v: ValueRef) -> bool {
    match g.value_type(v).dtype {
        Some(d) => d.is_float() && d == lpc_ir::DType::F32,
        None => match g.const_value(v) {
            Some(t) => t.dtype() == lpc_ir::DType::F32,
            None => true,
        },
    }
}

/// True when `v` reaches a quantized reader (a layer's activation point, or a kept Add/Concat)
/// through ops a Quantize moves across exactly (a ReLU, pooling by max, reshapes, slices).
fn read_quantized(
    g: &Graph,
    v: ValueRef,
    points: &BTreeMap<ValueRef, Point>,
    kept: &BTreeSet<NodeId>,
) -> bool {
    let mut stack = vec![v];
    let mut seen = BTreeSet::new();
    while let Some(v) = stack.pop() {
        if !seen.insert(v) {
            continue;
        }
        if points.get(&v).is_some_and(|(c, _)| !c.is_empty()) {
            return true;
        }
        for (u, slot) in g.users(v) {
            let through = match &g.node(u).op {
                _ if kept.contains(&u) => return true,
                Op::Unary(UnaryOp::Relu | UnaryOp::Identity)
                | Op::MaxPool { .. }
                | Op::GlobalMaxPool
                | Op::Reshape { .. }
                | Op::Flatten { .. }
                | Op::Transpose { .. }
                | Op::Squeeze
                | Op::Unsqueeze
                | Op::Slice => slot == 0,
                _ => false,
            };
            if through {
                stack.push(ValueRef::first(u));
            }
        }
    }
    false
}

/// An activation point being placed: its quantized consumers (node, input slot) and its
/// group of points that share one quantizer.
type Point = (Vec<(NodeId, usize)>, Option<usize>);

/// Decides where quantizers go (see the crate docs for the policy).
pub fn place(g: &Graph, ignore: &BTreeSet<NodeId>) -> Result<Placement, QuantError> {
    let order = g.topo_order().map_err(QuantError::from)?;
    let mut p = Placement {
        ignored: ignore.iter().map(|&n| g.node(n).name.clone()).collect(),
        ..Default::default()
    };
    // value → (consumers, group)
    let mut points: BTreeMap<ValueRef, Point> = BTreeMap::new();
    let mut parent: Vec<usize> = vec![];
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let add_point =
        |g: &Graph, n: NodeId, slot: usize, points: &mut BTreeMap<_, (Vec<_>, Option<usize>)>| {
            if let Some(v) = g.node_input(n, slot) {
                if is_float(g, v) {
                    points.entry(v).or_insert((vec![], None)).0.push((n, slot));
                    return true;
                }
            }
            false
        };
    // Pass 1: layers (their activation inputs become points) and the joined candidates.
    let mut joined: Vec<(NodeId, Vec<usize>)> = vec![];
    for &n in &order {
        if ignore.contains(&n) {
            continue;
        }
        let op = &g.node(n).op;
        let kind = match op {
            Op::Conv(_) => Some(LayerKind::Conv),
            Op::ConvTranspose { .. } => Some(LayerKind::ConvTranspose),
            Op::Gemm { trans_b, .. } => Some(LayerKind::Gemm { trans_b: *trans_b }),
            Op::MatMul => Some(LayerKind::MatMul),
            _ => None,
        };
        if let Some(kind) = kind {
            let (w_slot, w_axis) = match kind {
                LayerKind::Conv => (1, Some(0)),
                LayerKind::ConvTranspose => (1, Some(1)),
                LayerKind::Gemm { trans_b } => (1, Some(usize::from(!trans_b))),
                LayerKind::MatMul => {
                    let r = g
                        .node_input(n, 1)
                        .and_then(|v| g.const_value(v))
                        .map_or(0, |t| t.rank());
                    (1, if r >= 2 { Some(r - 1) } else { None })
                }
            };
            let mut act_slots = vec![];
            let mut weight = None;
            for slot in 0..2 {
                let v = g.node_input(n, slot);
                if slot == w_slot && is_const(g, v) {
                    let t = g.const_value(v.expect("const")).expect("const");
                    if t.dtype() == lpc_ir::DType::F32 {
                        if let Some(ax) = w_axis.filter(|&a| a < t.rank()) {
                            weight = Some((slot, ax));
                        }
                    }
                } else if !is_const(g, v) && add_point(g, n, slot, &mut points) {
                    act_slots.push(slot);
                }
            }
            if !act_slots.is_empty() || weight.is_some() {
                p.layers.push(Layer {
                    node: n,
                    kind,
                    act_slots,
                    weight,
                });
            }
            continue;
        }
        // Residual Add of two activations and Concat of activations: one shared range.
        let slots: Option<Vec<usize>> = match op {
            Op::Binary(BinaryOp::Add) => {
                let ins = g.node_inputs(n);
                (ins.len() == 2 && ins.iter().all(|v| v.is_some() && !is_const(g, *v)))
                    .then(|| vec![0, 1])
            }
            Op::Concat { .. } => {
                let ins = g.node_inputs(n);
                (ins.len() >= 2 && ins.iter().all(|v| v.is_some() && !is_const(g, *v)))
                    .then(|| (0..ins.len()).collect())
            }
            _ => None,
        };
        if let Some(slots) = slots {
            joined.push((n, slots));
        }
    }
    // An Add or Concat is integer only when its result is read quantized too: by a layer, or
    // by another such Add/Concat that is, through data-movement ops and a ReLU (what the fold
    // moves a Quantize across: passes/propagate, `add-relu-q`). Elsewhere (into a LayerNorm, a
    // Softmax, a graph output) quantizing its inputs only adds error: a transformer's residual
    // stream and its attention-mask Add stay float.
    let mut kept: BTreeSet<NodeId> = BTreeSet::new();
    for (n, _) in joined.iter().rev() {
        if read_quantized(g, ValueRef::first(*n), &points, &kept) {
            kept.insert(*n);
        }
    }
    // Pass 2: points of the kept ones, unified.
    for (n, slots) in joined.into_iter().filter(|(n, _)| kept.contains(n)) {
        let gid = parent.len();
        parent.push(gid);
        p.groups.push(g.node(n).name.clone());
        if let Op::Concat { .. } = g.node(n).op {
            p.concat_groups.push(gid);
        }
        // A Concat's result read quantized (a layer's input, or a join's) shares its inputs'
        // range: it holds the same values, so its reader takes the Concat's integers as they
        // are (no requantize).
        if let Op::Concat { .. } = g.node(n).op {
            if let Some(e) = points.get_mut(&ValueRef::first(n)) {
                match e.1 {
                    Some(other) => {
                        let (a, b) = (find(&mut parent, other), find(&mut parent, gid));
                        parent[a] = b;
                    }
                    None => e.1 = Some(gid),
                }
            }
        }
        for slot in slots {
            if add_point(g, n, slot, &mut points) {
                let v = g.node_input(n, slot).expect("connected");
                let e = points.get_mut(&v).expect("just added");
                match e.1 {
                    Some(other) => {
                        let (a, b) = (find(&mut parent, other), find(&mut parent, gid));
                        parent[a] = b;
                    }
                    None => e.1 = Some(gid),
                }
            }
        }
    }
    // Assign groups: unified points share their root; every other point gets its own group.
    let mut root_to_group: BTreeMap<usize, usize> = BTreeMap::new();
    let mut names = vec![];
    let mut concat = BTreeSet::new();
    let pos: BTreeMap<NodeId, usize> = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let mut pts: Vec<(ValueRef, Point)> = points.into_iter().collect();
    pts.sort_by_key(|(v, _)| (pos[&v.node], v.output));
    for (v, (consumers, gid)) in pts {
        let group = match gid {
            Some(gid) => {
                let r = find(&mut parent, gid);
                *root_to_group.entry(r).or_insert_with(|| {
                    names.push(p.groups[r].clone());
                    names.len() - 1
                })
            }
            None => {
                names.push(g.value_name(v).to_string());
                names.len() - 1
            }
        };
        if let Some(gid) = gid {
            if p.concat_groups.contains(&find(&mut parent, gid)) || p.concat_groups.contains(&gid) {
                concat.insert(group);
            }
        }
        p.acts.push(ActPoint {
            value: v,
            consumers,
            group,
        });
    }
    p.groups = names;
    p.concat_groups = concat.into_iter().collect();
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bn_fold::fold_batchnorm;
    use lpc_ir::Tensor;
    use lpc_ir::{ConvAttrs, DType, Output, Shape, ValueType};

    fn conv_bn() -> Graph {
        let mut g = Graph::new("t");
        let x = g.add_input("x", ValueType::new(DType::F32, Shape::known(&[1, 1, 3, 3])));
        let w = g.add_const(
            "w",
            Tensor::from_f32(&[2, 1, 1, 1], vec![1.0, -2.0]).unwrap(),
        );
        let c = g.add_node(
            "conv",
            Op::Conv(ConvAttrs::default()),
            &[Some(x), Some(w), None],
            vec![Output::named("c")],
        );
        let s = g.add_const("s", Tensor::from_f32(&[2], vec![2.0, 1.0]).unwrap());
        let b = g.add_const("b", Tensor::from_f32(&[2], vec![0.5, 0.0]).unwrap());
        let m = g.add_const("m", Tensor::from_f32(&[2], vec![1.0, -1.0]).unwrap());
        let v = g.add_const("v", Tensor::from_f32(&[2], vec![4.0, 1.0]).unwrap());
        let bn = g.add_node(
            "bn",
            Op::BatchNorm {
                epsilon: 0.0,
                training: false,
                momentum: 0.9,
            },
            &[Some(ValueRef::first(c)), Some(s), Some(b), Some(m), Some(v)],
            vec![Output::named("y")],
        );
        let r = g.add_node(
            "relu",
            Op::Unary(lpc_ir::UnaryOp::Relu),
            &[Some(ValueRef::first(bn))],
            vec![Output::named("r")],
        );
        let x2 = g.add_node(
            "relu2",
            Op::Unary(lpc_ir::UnaryOp::Relu),
            &[Some(x)],
            vec![Output::named("r2")],
        );
        let cat = g.add_node(
            "cat",
            Op::Concat { axis: 1 },
            &[Some(ValueRef::first(r)), Some(ValueRef::first(x2))],
            vec![Output::named("cat")],
        );
        g.set_outputs(vec![ValueRef::first(cat)]);
        g
    }

    #[test]
    fn batchnorm_folds_into_conv() {
        let mut g = conv_bn();
        let folded = fold_batchnorm(&mut g).unwrap();
        assert_eq!(folded, vec!["bn".to_string()]);
        let conv = g.find_node("conv").unwrap();
        let w = g.const_value(g.node_input(conv, 1).unwrap()).unwrap();
        let b = g.const_value(g.node_input(conv, 2).unwrap()).unwrap();
        // k = s / sqrt(v) = [1, 1]; w' = w·k; b' = k·(0 - m) + beta = [-1 + 0.5, 1 + 0]
        assert_eq!(w.as_f32().unwrap(), &[1.0, -2.0]);
        assert_eq!(b.as_f32().unwrap(), &[-0.5, 1.0]);
        assert_eq!(g.value_name(ValueRef::first(conv)), "y");
        assert!(g.find_node("bn").is_none());
    }

    #[test]
    fn placement_weights_acts_and_unified_concat() {
        let mut g = conv_bn();
        fold_batchnorm(&mut g).unwrap();
        // The Concat feeds a conv: its inputs are read quantized.
        let cat = g.find_node("cat").unwrap();
        let w = g.add_const("w2", Tensor::from_f32(&[1, 3, 1, 1], vec![1.0; 3]).unwrap());
        let head = g.add_node(
            "head",
            Op::Conv(ConvAttrs::default()),
            &[Some(ValueRef::first(cat)), Some(w), None],
            vec![Output::named("h")],
        );
        g.set_outputs(vec![ValueRef::first(head)]);
        let p = place(&g, &BTreeSet::new()).unwrap();
        assert_eq!(p.layers.len(), 2);
        assert_eq!(p.layers[0].weight, Some((1, 0)));
        assert_eq!(p.layers[0].act_slots, vec![0]);
        // x (conv input), r and r2 (concat inputs), cat (head input); r, r2 and cat share
        // one group (the head reads the Concat's integers as they are), x has its own.
        assert_eq!(p.acts.len(), 4);
        let by = |n: &str| p.acts.iter().find(|a| g.value_name(a.value) == n).expect(n);
        let (x, r, r2, c) = (by("x"), by("r"), by("r2"), by("cat"));
        assert_eq!(r.group, r2.group);
        assert_eq!(c.group, r.group);
        assert_ne!(x.group, r.group);
        // x feeds the conv and relu2; only the conv reads it through the quantizer.
        assert_eq!(x.consumers.len(), 1);
        assert_eq!(p.concat_groups, vec![r.group]);
    }

    #[test]
    fn ignore_patterns() {
        let g = conv_bn();
        let by_name = resolve_ignore(&g, &["conv".into()]).unwrap();
        assert_eq!(by_name.len(), 1);
        let by_type = resolve_ignore(&g, &["Relu".into()]).unwrap();
        assert_eq!(by_type.len(), 2);
        let by_regex = resolve_ignore(&g, &["rel.*".into()]).unwrap();
        assert_eq!(by_regex.len(), 2);
        assert!(matches!(
            resolve_ignore(&g, &["nothing".into()]),
            Err(QuantError::Ignore(_))
        ));
        assert!(matches!(
            resolve_ignore(&g, &["(".into()]),
            Err(QuantError::Ignore(_))
        ));
        let p = place(&g, &by_name).unwrap();
        assert!(p.layers.is_empty());
        assert_eq!(p.ignored, vec!["conv".to_string()]);
    }
    #[test]
    fn joins_are_quantized_only_when_read_quantized() {
        // A post-LN transformer block: the residual Add feeds a LayerNorm and the attention
        // scores' mask Add a Softmax (both stay float); a ResNet Add → ReLU → conv keeps its
        // shared quantizers.
        let g = lpc_ir::text::parse(
            r#"graph @blk(%x: f32[1,4,8], %m: f32[1,4,4], %c: f32[1,2,3,3]) -> (%ln, %o, %cv) {
  %w = const f32[8,8] [1,0,0,0,0,0,0,0, 0,1,0,0,0,0,0,0, 0,0,1,0,0,0,0,0, 0,0,0,1,0,0,0,0, 0,0,0,0,1,0,0,0, 0,0,0,0,0,1,0,0, 0,0,0,0,0,0,1,0, 0,0,0,0,0,0,0,1]
  %g = const f32[8] [1,1,1,1,1,1,1,1]
  %h = matmul(%x, %w) : f32[1,4,8] @proj
  %r = add(%h, %x) : f32[1,4,8] @residual
  %ln = layer_norm(%r, %g) {axis=-1, epsilon=0.00001} : f32[1,4,8] @ln
  %s = matmul(%m, %m) : f32[1,4,4] @scores
  %sm = add(%s, %m) : f32[1,4,4] @masked
  %p = softmax(%sm) {axis=-1} : f32[1,4,4]
  %o = matmul(%p, %m) : f32[1,4,4] @context
  %wc = const f32[2,2,1,1] [1,0, 0,1]
  %c1 = conv(%c, %wc) {kernel=[1,1]} : f32[1,2,3,3] @c1
  %a = add(%c1, %c) : f32[1,2,3,3] @res2
  %ra = relu(%a) : f32[1,2,3,3]
  %cv = conv(%ra, %wc) {kernel=[1,1]} : f32[1,2,3,3] @c2
  return %ln, %o, %cv
}"#,
        )
        .unwrap();
        let p = place(&g, &BTreeSet::new()).unwrap();
        let quantized: BTreeSet<&str> = p.acts.iter().map(|a| g.value_name(a.value)).collect();
        // h only feeds the residual Add: no point; x feeds proj (a point) and the Add (not).
        assert!(!quantized.contains("h"), "{quantized:?}");
        let x = p
            .acts
            .iter()
            .find(|a| g.value_name(a.value) == "x")
            .unwrap();
        assert_eq!(x.consumers.len(), 1);
        assert!(!quantized.contains("s"), "{quantized:?}");
        assert!(
            quantized.contains("p") && quantized.contains("ra"),
            "{quantized:?}"
        );
        // The ResNet join: c1 and c share one group (c also feeds conv c1 through it).
        let by = |n: &str| p.acts.iter().find(|a| g.value_name(a.value) == n).expect(n);
        assert_eq!(by("c1").group, by("c").group);
        assert_eq!(p.groups[by("c1").group], "res2");
    }
}
