//! Lowering of f32 elementwise chains: the greedy float fusion that groups single-use f32
//! elementwise nodes (and a QuantizeLinear of their result) into one `ChainSpec`, and the plan
//! step that runs the chain's kernel (`kernels/float/chain.rs`).

use std::collections::{HashMap, HashSet};

use cranelift_module::FuncId;
use lpc_ir::{BinaryOp, DType, Graph, NodeId, Op, Tensor, UnaryOp, ValueRef};

use crate::kernels::emit::{byte_range, Elem};
use crate::kernels::float::{
    canonicalize, define_chain, ChainKernel, ChainSpec, Dequant, FBinary, FNode, FUnary, Operand,
    QuantOut, QuantParams,
};
use crate::kernels::tier::{VecCode, VecTier};
use crate::runtime::memory::BufferPool;
use crate::{CodeModule, JitError};

pub(super) fn known_shape(g: &Graph, v: ValueRef) -> Option<Vec<usize>> {
    g.value_type(v).shape.as_ref()?.as_known()
}

pub(super) fn is_f32(g: &Graph, v: ValueRef) -> bool {
    g.value_type(v).dtype == Some(DType::F32)
}

/// A one-element f32 constant's value.
fn scalar_const(g: &Graph, v: ValueRef) -> Option<f32> {
    let t = g.const_value(v)?;
    (t.dtype() == DType::F32 && t.len() == 1).then(|| t.to_f32_vec()[0])
}

/// The chain operation of an f32 elementwise node with known shapes, and its data inputs;
/// Exp, Sigmoid and Tanh only when `transcendental`.
fn chain_op(g: &Graph, n: NodeId, transcendental: bool) -> Option<(ChainOp, Vec<ValueRef>)> {
    let node = g.node(n);
    if node.outputs.len() != 1 || !is_f32(g, ValueRef::first(n)) {
        return None;
    }
    known_shape(g, ValueRef::first(n))?;
    let data = |k: usize| data_of(g, g.node_input(n, k)?);
    if let Op::Unary(u) = &node.op {
        let f = match u {
            UnaryOp::Neg => FUnary::Neg,
            UnaryOp::Abs => FUnary::Abs,
            UnaryOp::Relu => FUnary::Relu,
            UnaryOp::Sqrt => FUnary::Sqrt,
            UnaryOp::Reciprocal => FUnary::Reciprocal,
            UnaryOp::Ceil => FUnary::Ceil,
            UnaryOp::Floor => FUnary::Floor,
            UnaryOp::Round => FUnary::Round,
            UnaryOp::Identity => FUnary::Identity,
            UnaryOp::LeakyRelu { alpha } => FUnary::LeakyRelu(*alpha),
            UnaryOp::HardSigmoid { alpha, beta } => FUnary::HardSigmoid(*alpha, *beta),
            UnaryOp::HardSwish => FUnary::HardSwish,
            UnaryOp::Exp if transcendental => FUnary::Exp,
            UnaryOp::Sigmoid if transcendental => FUnary::Sigmoid,
            UnaryOp::Tanh if transcendental => FUnary::Tanh,
            UnaryOp::Erf if transcendental => FUnary::Erf,
            UnaryOp::Gelu { tanh: false } if transcendental => FUnary::Gelu,
            UnaryOp::Gelu { tanh: true } if transcendental => FUnary::GeluTanh,
            UnaryOp::Exp
            | UnaryOp::Log
            | UnaryOp::Erf
            | UnaryOp::Sigmoid
            | UnaryOp::Tanh
            | UnaryOp::Elu { .. }
            | UnaryOp::Gelu { .. }
            | UnaryOp::Not
            | UnaryOp::IsNaN
            | UnaryOp::IsInf { .. }
            | UnaryOp::Sign
            | UnaryOp::Sin
            | UnaryOp::Cos
            | UnaryOp::Tan
            | UnaryOp::Asin
            | UnaryOp::Acos
            | UnaryOp::Atan
            | UnaryOp::Sinh
            | UnaryOp::Cosh
            | UnaryOp::Asinh
            | UnaryOp::Acosh
            | UnaryOp::Atanh
            | UnaryOp::BitwiseNot
            | UnaryOp::BitCast { .. }
            | UnaryOp::Swish { .. }
            | UnaryOp::ThresholdedRelu { .. }
            | UnaryOp::Softplus
            | UnaryOp::Selu { .. }
            | UnaryOp::Softsign
            | UnaryOp::Shrink { .. }
            | UnaryOp::Celu { .. }
            | UnaryOp::Mish
            | UnaryOp::Cast { .. } => return None,
        };
        return Some((ChainOp::Unary(f), vec![data(0)?]));
    }
    if let Op::Binary(bop) = &node.op {
        // Squares and cubes by a constant exponent: products, as lpc-ref's `pow_f32`.
        if *bop == BinaryOp::Pow {
            let power = match g.node_input(n, 1).and_then(|v| scalar_const(g, v)) {
                Some(2.0) => FUnary::Square,
                Some(3.0) => FUnary::Cube,
                _ => return None,
            };
            return Some((ChainOp::Unary(power), vec![data(0)?]));
        }
        let f = match bop {
            BinaryOp::Add => FBinary::Add,
            BinaryOp::Sub => FBinary::Sub,
            BinaryOp::Mul => FBinary::Mul,
            BinaryOp::Div => FBinary::Div,
            BinaryOp::Max => FBinary::Max,
            BinaryOp::Min => FBinary::Min,
            BinaryOp::PRelu => FBinary::PRelu,
            BinaryOp::Pow
            | BinaryOp::Mod
            | BinaryOp::Fmod
            | BinaryOp::Equal
            | BinaryOp::Greater
            | BinaryOp::Less
            | BinaryOp::GreaterOrEqual
            | BinaryOp::LessOrEqual
            | BinaryOp::And
            | BinaryOp::Or
            | BinaryOp::Xor
            | BinaryOp::BitwiseAnd
            | BinaryOp::BitwiseOr
            | BinaryOp::BitwiseXor
            | BinaryOp::BitShiftLeft
            | BinaryOp::BitShiftRight => return None,
        };
        return Some((ChainOp::Binary(f), vec![data(0)?, data(1)?]));
    }
    if let Some((x, c)) = nan_replacement(g, n) {
        return Some((ChainOp::Unary(FUnary::NanTo(c)), vec![data_of(g, x)?]));
    }
    if !matches!(node.op, Op::Clip) {
        return None;
    }
    let bound = |k: usize, absent: f32| -> Option<f32> {
        match g.node_input(n, k) {
            None => Some(absent),
            Some(v) => scalar_const(g, v),
        }
    };
    let lo = bound(1, f32::NEG_INFINITY)?;
    let hi = bound(2, f32::INFINITY)?;
    Some((ChainOp::Unary(FUnary::Clip(lo, hi)), vec![data(0)?]))
}

/// `v` if it is an f32 value of known shape.
fn data_of(g: &Graph, v: ValueRef) -> Option<ValueRef> {
    (is_f32(g, v) && known_shape(g, v).is_some()).then_some(v)
}

/// `Where(IsNaN(x), c, x)` with a one-element constant `c`, the IsNaN read by this Where alone:
/// its `x` and `c`.
fn nan_replacement(g: &Graph, n: NodeId) -> Option<(ValueRef, f32)> {
    if !matches!(g.node(n).op, Op::Where) {
        return None;
    }
    let (cond, c, x) = (
        g.node_input(n, 0)?,
        g.node_input(n, 1)?,
        g.node_input(n, 2)?,
    );
    let isnan = cond.node;
    let only_here = g.users(cond).len() == 1 && !g.outputs().contains(&cond);
    let is_isnan = matches!(g.node(isnan).op, Op::Unary(UnaryOp::IsNaN));
    (is_isnan && only_here && g.node_input(isnan, 0)? == x)
        .then(|| scalar_const(g, c).map(|c| (x, c)))
        .flatten()
}

#[derive(Clone, Copy, Debug)]
enum ChainOp {
    Unary(FUnary),
    Binary(FBinary),
}

/// A chain found in a graph: its root (the node whose output the step produces), its member
/// nodes in topological order (the root last, or just before a fused QuantizeLinear root), and
/// its external operands.
#[derive(Clone, Debug)]
pub struct ChainGroup {
    /// The node whose output the chain's step writes.
    pub root: NodeId,
    /// Float members in topological order (the last is the float result).
    pub members: Vec<NodeId>,
    /// Other nodes computed inside the step: DequantizeLinear nodes read through (their u8/i8
    /// inputs are externals) and the IsNaN of a NaN replacement.
    pub inner_nodes: Vec<NodeId>,
    /// The spec: operands in the order of `externals`, then `consts`.
    pub spec: ChainSpec,
    /// External values read by the chain, one per operand (f32, or the u8/i8 input of a
    /// DequantizeLinear read through).
    pub externals: Vec<ValueRef>,
    /// Constant operands after the externals (a per-channel quantize's scales and zero points).
    pub consts: Vec<Vec<f32>>,
}

/// Chains of a graph: groups by root, and the member nodes that produce no step of their own.
#[derive(Default)]
pub struct Chains {
    /// Groups keyed by their root node.
    pub roots: HashMap<NodeId, ChainGroup>,
    /// Non-root members (computed inside their root's step).
    pub absorbed: HashSet<NodeId>,
}

/// A QuantizeLinear f32 → u8/i8 that can end a chain, with constant parameters as lpc-ref
/// reads them.
#[derive(Clone, Debug)]
pub enum QuantFuse {
    /// One-element scale and zero point (absent: 0).
    Tensor(QuantOut),
    /// Per channel: the scales and zero points (as f32) along one axis, and the shape that
    /// broadcasts one parameter vector to the output (1 except on that axis).
    Channels {
        /// u8 or i8.
        to: DType,
        /// One scale per channel.
        scales: Vec<f32>,
        /// One zero point per channel, inside `to`'s range.
        zero_points: Vec<f32>,
        /// `[1, …, C, …, 1]`, the output's rank.
        shape: Vec<usize>,
    },
}

/// The `len` constant zero points of Quantize/DequantizeLinear node `n` (input 2, of `dtype`;
/// absent: zeros).
fn zero_points(g: &Graph, n: NodeId, dtype: DType, len: usize) -> Option<Vec<i64>> {
    match g.node_input(n, 2) {
        None => Some(vec![0; len]),
        Some(v) => {
            let z = g.const_value(v)?;
            (z.dtype() == dtype && z.len() == len).then(|| z.to_i64_vec())
        }
    }
}

/// The fusable form of QuantizeLinear node `n`, if it has one.
fn fusable_quant(g: &Graph, n: NodeId) -> Option<QuantFuse> {
    let Op::QuantizeLinear { q, dtype } = &g.node(n).op else {
        return None;
    };
    let (lo, hi) = byte_range(*dtype)?;
    let s = g.const_value(g.node_input(n, 1)?)?;
    if s.dtype() != DType::F32 || q.block_size != 0 || g.node(n).outputs.len() != 1 {
        return None;
    }
    let zero_points = zero_points(g, n, *dtype, s.len())?;
    if zero_points.iter().any(|&z| z < lo as i64 || z > hi as i64) {
        return None;
    }
    if s.len() == 1 {
        return Some(QuantFuse::Tensor(QuantOut {
            to: *dtype,
            params: QuantParams::Tensor {
                scale: s.to_f32_vec()[0],
                zero_point: zero_points[0] as i32,
            },
        }));
    }
    // Per axis: a 1-D scale along a known axis of the output.
    let out = known_shape(g, ValueRef::first(n))?;
    let axis = if q.axis < 0 {
        q.axis + out.len() as i64
    } else {
        q.axis
    };
    let axis = usize::try_from(axis).ok().filter(|&a| a < out.len())?;
    if s.shape().len() != 1 || out[axis] != s.len() {
        return None;
    }
    let mut shape = vec![1; out.len()];
    shape[axis] = s.len();
    Some(QuantFuse::Channels {
        to: *dtype,
        scales: s.to_f32_vec(),
        zero_points: zero_points.iter().map(|&z| z as f32).collect(),
        shape,
    })
}

/// A DequantizeLinear producing `v` that a chain can read through: u8/i8 data with one-element
/// constant parameters. Returns its data input and the parameters.
fn fusable_dequant(g: &Graph, v: ValueRef) -> Option<(ValueRef, Dequant)> {
    let n = v.node;
    let Op::DequantizeLinear { q } = &g.node(n).op else {
        return None;
    };
    if v.output != 0 || q.block_size != 0 || g.node(n).outputs.len() != 1 || !is_f32(g, v) {
        return None;
    }
    let x = g.node_input(n, 0)?;
    let from = g.value_type(x).dtype?;
    byte_range(from)?;
    let s = g.const_value(g.node_input(n, 1)?)?;
    if s.dtype() != DType::F32 || s.len() != 1 {
        return None;
    }
    let zero_point = zero_points(g, n, from, 1)?[0] as i32;
    (known_shape(g, x)? == known_shape(g, v)?).then_some((
        x,
        Dequant {
            from,
            scale: s.to_f32_vec()[0],
            zero_point,
        },
    ))
}

/// Builds the chain rooted at `root` over `members` (topological order, the float result last).
fn build_group(
    g: &Graph,
    transcendental: bool,
    root: NodeId,
    members: &[NodeId],
    quant: Option<&QuantFuse>,
) -> Option<ChainGroup> {
    let last = *members.last()?;
    let out_shape = known_shape(g, ValueRef::first(last))?;
    let mut prog: Vec<FNode> = Vec::new();
    let mut at: HashMap<ValueRef, usize> = HashMap::new();
    let mut externals: Vec<ValueRef> = Vec::new();
    let mut dequant: Vec<Option<Dequant>> = Vec::new();
    let mut inner_nodes: Vec<NodeId> = Vec::new();
    // A DequantizeLinear whose every reader is in the chain (and that is not a graph output)
    // is read through: the chain loads its u8/i8 input.
    let inside: HashSet<NodeId> = members.iter().copied().collect();
    let read_through = |v: ValueRef| {
        let only_chain =
            !g.outputs().contains(&v) && g.users(v).iter().all(|(u, _)| inside.contains(u));
        only_chain.then(|| fusable_dequant(g, v)).flatten()
    };
    for &m in members {
        let (op, ins) = chain_op(g, m, transcendental)?;
        if let (ChainOp::Unary(FUnary::NanTo(_)), Some(cond)) = (op, g.node_input(m, 0)) {
            inner_nodes.push(cond.node);
        }
        let mut idx = Vec::with_capacity(ins.len());
        for v in ins {
            let k = match at.get(&v) {
                Some(&k) => k,
                None => {
                    let node = match scalar_const(g, v) {
                        Some(c) => FNode::Imm(c),
                        None => {
                            match read_through(v) {
                                Some((x, d)) => {
                                    externals.push(x);
                                    dequant.push(Some(d));
                                    inner_nodes.push(v.node);
                                }
                                None => {
                                    externals.push(v);
                                    dequant.push(None);
                                }
                            }
                            FNode::Input(externals.len() - 1)
                        }
                    };
                    prog.push(node);
                    at.insert(v, prog.len() - 1);
                    prog.len() - 1
                }
            };
            idx.push(k);
        }
        prog.push(match op {
            ChainOp::Unary(f) => FNode::Unary(f, idx[0]),
            ChainOp::Binary(f) => FNode::Binary(f, idx[0], idx[1]),
        });
        at.insert(ValueRef::first(m), prog.len() - 1);
    }
    let mut shapes: Vec<Vec<usize>> = externals
        .iter()
        .map(|&v| known_shape(g, v))
        .collect::<Option<_>>()?;
    let mut consts = vec![];
    let quant = match quant {
        None => None,
        Some(QuantFuse::Tensor(q)) => Some(*q),
        Some(QuantFuse::Channels {
            to,
            scales,
            zero_points,
            shape,
        }) => {
            shapes.extend([shape.clone(), shape.clone()]);
            dequant.extend([None, None]);
            consts = vec![scales.clone(), zero_points.clone()];
            Some(QuantOut {
                to: *to,
                params: QuantParams::Rows {
                    scale: externals.len(),
                    zero_point: externals.len() + 1,
                },
            })
        }
    };
    let (outer, inner, operands) = canonicalize(&out_shape, &shapes)?;
    // A dequantized operand must be full or column indexed: else it is read as f32.
    if dequant
        .iter()
        .zip(&operands)
        .any(|(d, op)| d.is_some() && matches!(op, Operand::Row { .. }))
    {
        return None;
    }
    let spec = ChainSpec {
        prog,
        operands,
        dequant,
        outer,
        inner,
        quant,
    };
    spec.check().ok()?;
    Some(ChainGroup {
        root,
        members: members.to_vec(),
        inner_nodes,
        spec,
        externals,
        consts,
    })
}

/// Finds the chains of `g` (`order` its topological order): every f32 elementwise node not fed
/// by constants only becomes part of exactly one chain; a producer joins its consumer's chain
/// when it has one use, the consumer's shape, and is not a graph output; a
/// QuantizeLinear of a chain's result becomes the chain's root. Exp, Sigmoid and Tanh join
/// chains only when `transcendental`.
pub fn find_chains(g: &Graph, order: &[NodeId], transcendental: bool) -> Chains {
    // Nodes computed from constants only (lowering evaluates them once).
    let mut const_like: HashSet<NodeId> = HashSet::new();
    for &n in order {
        let ins = g.node_inputs(n);
        let present: Vec<&ValueRef> = ins.iter().flatten().collect();
        let fed_by_consts = matches!(g.node(n).op, Op::Const(_))
            || (!present.is_empty() && present.iter().all(|v| const_like.contains(&v.node)));
        if fed_by_consts {
            const_like.insert(n);
        }
    }
    let outputs: HashSet<ValueRef> = g.outputs().iter().copied().collect();
    let single_use = |v: ValueRef| g.users(v).len() == 1 && !outputs.contains(&v);
    let fusible = |n: NodeId| !const_like.contains(&n) && chain_op(g, n, transcendental).is_some();
    let pos: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let mut chains = Chains::default();
    for &n in order.iter().rev() {
        if chains.absorbed.contains(&n) || chains.roots.contains_key(&n) {
            continue;
        }
        // The float result node and an optional quantize root.
        let (top, quant) = match fusable_quant(g, n) {
            Some(q) => match g.node_input(n, 0) {
                Some(v)
                    if v.output == 0
                        && is_f32(g, v)
                        && fusible(v.node)
                        && single_use(v)
                        && !chains.absorbed.contains(&v.node)
                        && !chains.roots.contains_key(&v.node) =>
                {
                    (v.node, Some(q))
                }
                _ => continue,
            },
            None if fusible(n) => (n, None),
            None => continue,
        };
        let Some(numel) = known_shape(g, ValueRef::first(top)).map(|s| s.iter().product::<usize>())
        else {
            continue;
        };
        // Grow the tree from `top` through single-use producers of the same size.
        let mut members = vec![top];
        let mut k = 0;
        while k < members.len() {
            let m = members[k];
            k += 1;
            let Some((_, ins)) = chain_op(g, m, transcendental) else {
                continue;
            };
            // A NaN replacement's input is read by its IsNaN too, inside the step.
            let guarded = nan_replacement(g, m).map(|(x, _)| x);
            for v in ins {
                let p = v.node;
                let same = known_shape(g, v).map(|s| s.iter().product::<usize>()) == Some(numel);
                let used_here = single_use(v)
                    || (guarded == Some(v) && g.users(v).len() == 2 && !outputs.contains(&v));
                if v.output == 0
                    && same
                    && fusible(p)
                    && used_here
                    && !members.contains(&p)
                    && !chains.absorbed.contains(&p)
                    && !chains.roots.contains_key(&p)
                {
                    members.push(p);
                }
            }
        }
        members.sort_by_key(|m| pos.get(m).copied().unwrap_or(0));
        let root = if quant.is_some() { n } else { top };
        let group = build_group(g, transcendental, root, &members, quant.as_ref())
            .or_else(|| build_group(g, transcendental, root, &[top], quant.as_ref()))
            .or_else(|| {
                // Without its quantize epilogue the float node may still run alone.
                quant
                    .as_ref()
                    .and_then(|_| build_group(g, transcendental, top, &[top], None))
            });
        let Some(group) = group else { continue };
        for &m in group.members.iter().chain(&group.inner_nodes) {
            if m != group.root {
                chains.absorbed.insert(m);
            }
        }
        chains.roots.insert(group.root, group);
    }
    chains
}

/// A fused float chain step.
pub struct ChainPlan {
    spec: ChainSpec,
    func: FuncId,
    tier: VecCode,
    kernel: Option<ChainKernel>,
    out_shape: Vec<usize>,
    /// Constant operands passed after the step's inputs.
    consts: Vec<Vec<f32>>,
}

/// Defines the kernel of a chain found by [`find_chains`].
pub fn lower_chain(
    g: &Graph,
    group: &ChainGroup,
    module: &mut CodeModule,
    tier: VecTier,
) -> Result<ChainPlan, JitError> {
    let out_shape = known_shape(g, ValueRef::first(group.root)).ok_or_else(|| JitError::Lower {
        node: g.node(group.root).name.clone(),
        why: "output shape not known".into(),
    })?;
    let (func, tier) = define_chain(module, &group.spec, tier)?;
    Ok(ChainPlan {
        spec: group.spec.clone(),
        func,
        tier,
        kernel: None,
        out_shape,
        consts: group.consts.clone(),
    })
}

pub(super) fn bad(e: lpc_ir::TensorError) -> JitError {
    JitError::Input {
        name: "x".into(),
        why: e.to_string(),
    }
}

impl ChainPlan {
    /// Binds the compiled kernel (after the module is finalized).
    pub fn link(&mut self, m: &CodeModule) -> Result<(), JitError> {
        // SAFETY: `func` was defined by `define_chain` with `self.spec` on this module.
        self.kernel = Some(unsafe { ChainKernel::new(m, self.func, &self.spec)? });
        Ok(())
    }

    /// The code tier the kernel was compiled to.
    pub fn tier(&self) -> VecCode {
        self.tier
    }

    /// The kernel kind: `jit float (chain of N)`, `+ quantize` when fused.
    pub fn kind(&self) -> String {
        match self.spec.quant {
            None => format!("jit float (chain of {})", self.spec.ops()),
            Some(_) => format!("jit float (chain of {} + quantize)", self.spec.ops()),
        }
    }

    /// Runs the chain on its external operands (in order; the constant ones are added).
    pub fn run(&self, ins: &[&Tensor], pool: &mut BufferPool) -> Result<Tensor, JitError> {
        let k = self
            .kernel
            .as_ref()
            .ok_or_else(|| JitError::Codegen("float chain kernel not linked".into()))?;
        let mut xs: Vec<&[u8]> = ins
            .iter()
            .map(|t| match t.dtype() {
                DType::U8 => t.as_u8().map_err(bad),
                DType::I8 => t.as_i8().map(bytes).map_err(bad),
                _ => t.as_f32().map(bytes).map_err(bad),
            })
            .collect::<Result<_, _>>()?;
        xs.extend(self.consts.iter().map(|c| bytes(c)));
        let n: usize = self.out_shape.iter().product();
        match self.spec.out_dtype() {
            DType::U8 => {
                let mut y = pool.take_u8(n);
                k.run_raw(&xs, &mut y)?;
                Tensor::from_u8(&self.out_shape, y).map_err(bad)
            }
            DType::I8 => {
                let mut y = pool.take_i8(n);
                k.run_raw(&xs, bytes_mut(&mut y))?;
                Tensor::from_i8(&self.out_shape, y).map_err(bad)
            }
            _ => {
                let mut y = pool.take_f32(n);
                k.run_raw(&xs, bytes_mut(&mut y))?;
                Tensor::from_f32(&self.out_shape, y).map_err(bad)
            }
        }
    }
}

/// The bytes of a slice of plain numbers.
fn bytes<T: Elem>(x: &[T]) -> &[u8] {
    // SAFETY: every `Elem` is a plain number type without padding or invalid bit patterns.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast(), std::mem::size_of_val(x)) }
}

/// The bytes of a slice of plain numbers, mutably.
fn bytes_mut<T: Elem>(x: &mut [T]) -> &mut [u8] {
    // SAFETY: every `Elem` is a plain number type without padding or invalid bit patterns.
    unsafe { std::slice::from_raw_parts_mut(x.as_mut_ptr().cast(), std::mem::size_of_val(x)) }
}
