//! Lowering: binds a graph's input shapes, then turns every node into one step of a plan (a JIT
//! kernel, a zero-copy view, or a fallback to `lpc-ref`), with value slots and liveness.

use crate::JitError;
use lpc_ir::{DType, Dim, Graph, NodeId, Op, Shape, Tensor, ValueRef};
use std::collections::HashMap;
use std::sync::Arc;

/// Where a value lives while the plan runs.
#[derive(Clone, Debug)]
pub enum SlotSource {
    /// Graph input number `k` (borrowed from the caller).
    Input(usize),
    /// A constant of the graph (borrowed from the plan).
    Const(Arc<Tensor>),
    /// Computed by a step.
    Step,
}

/// One value of the plan: its name, dtype, concrete shape (when known) and origin.
#[derive(Clone, Debug)]
pub struct Slot {
    /// The value's name in the graph.
    pub name: String,
    /// Its dtype, when known.
    pub dtype: Option<DType>,
    /// Its concrete shape, when known after binding the input shapes.
    pub shape: Option<Vec<usize>>,
    /// Where it comes from.
    pub source: SlotSource,
}

impl Slot {
    /// Bytes of the value, when its dtype and shape are known.
    pub fn bytes(&self) -> Option<usize> {
        let n: usize = self.shape.as_ref()?.iter().product();
        Some(n * self.dtype?.size())
    }
}

/// What a step does. The kernel variants carry everything the executor needs.
pub enum Action {
    /// Evaluate the node with `lpc_ref::eval` (float ops, shape ops, anything not lowered).
    Fallback {
        /// The op.
        op: Op,
        /// Number of outputs the node declares.
        n_outputs: usize,
    },
    /// Reshape/Flatten/Squeeze/Unsqueeze of contiguous data: the same elements under a new
    /// shape (no copy when the input dies here).
    View {
        /// The output shape.
        shape: Vec<usize>,
    },
    /// QConv or QMatMul on the JIT GEMM.
    Gemm(Box<crate::conv::GemmPlan>),
    /// Depthwise QConv on its JIT kernel.
    DwConv(Box<crate::conv::DwPlan>),
    /// u8/i8 MaxPool on its JIT kernel.
    MaxPool(Box<crate::steps::MaxPoolPlan>),
    /// QuantizeLinear (per-tensor or per-axis) on its JIT kernel.
    Quantize(Box<crate::steps::QuantizePlan>),
    /// DequantizeLinear (per-tensor or per-axis) on its JIT kernel.
    Dequantize(Box<crate::steps::DequantizePlan>),
    /// Per-tensor Requantize on its JIT kernel.
    Requantize(Box<crate::steps::RequantizePlan>),
    /// Same-shape, per-tensor QAdd on its JIT kernel.
    QAdd(Box<crate::steps::QAddPlan>),
    /// Lut with a constant table on its JIT kernel.
    Lut(Box<crate::steps::LutPlan>),
    /// A fused chain of f32 elementwise nodes (maybe ending in a per-tensor quantize); reads the
    /// chain's external operands, in order.
    FloatChain(Box<crate::float::ChainPlan>),
    /// f32 GlobalAveragePool on its JIT kernel.
    GlobalAvgPool(Box<crate::float::GapPlan>),
    /// f32 MaxPool (windows inside the input) on its JIT kernel.
    MaxPoolF32(Box<crate::float::MaxPoolF32Plan>),
    /// f32 Conv of one pixel (squeeze-and-excitation gates), lpc-ref's summation order.
    Gemv(Box<crate::gemv::GemvPlan>),
}

impl Action {
    /// Binds compiled kernels once the module is finalized.
    pub fn link(&mut self, m: &crate::CodeModule) -> Result<(), JitError> {
        match self {
            Action::Fallback { .. } | Action::View { .. } => Ok(()),
            Action::Gemm(p) => p.link(m),
            Action::DwConv(p) => p.link(m),
            Action::MaxPool(p) => p.link(m),
            Action::Quantize(p) => p.link(m),
            Action::Dequantize(p) => p.link(m),
            Action::Requantize(p) => p.link(m),
            Action::QAdd(p) => p.link(m),
            Action::Lut(p) => p.link(m),
            Action::FloatChain(p) => p.link(m),
            Action::GlobalAvgPool(p) => p.link(m),
            Action::MaxPoolF32(p) => p.link(m),
            Action::Gemv(_) => Ok(()),
        }
    }
}

/// One step of a plan: a node, its action, the slots it reads and writes, and the slots whose
/// last use it is (freed right after it runs).
pub struct Step {
    /// The node's name.
    pub node: String,
    /// The node's op name.
    pub op: &'static str,
    /// What runs.
    pub action: Action,
    /// Input slots (`None` for unconnected optional inputs).
    pub inputs: Vec<Option<usize>>,
    /// Output slots.
    pub outputs: Vec<usize>,
    /// Slots read for the last time by this step.
    pub frees: Vec<usize>,
}

impl Step {
    /// The kernel kind shown by `lpc compile --stats`: `jit gemm`, `view`, `fallback:<op>`, ...
    pub fn kind(&self) -> String {
        match &self.action {
            Action::Fallback { .. } => format!("fallback:{}", self.op),
            Action::View { .. } => "view".into(),
            Action::Gemm(p) => p.kind(),
            Action::DwConv(_) => "jit dwconv".into(),
            Action::MaxPool(_) => "jit pool".into(),
            Action::Quantize(_) => "jit elementwise (quantize)".into(),
            Action::Dequantize(_) => "jit elementwise (dequantize)".into(),
            Action::Requantize(_) => "jit elementwise (requantize)".into(),
            Action::QAdd(_) => "jit elementwise (qadd)".into(),
            Action::Lut(_) => "jit elementwise (lut)".into(),
            Action::FloatChain(p) => p.kind(),
            Action::GlobalAvgPool(_) => "jit float (global_average_pool)".into(),
            Action::Gemv(_) => "jit float (one-pixel conv)".into(),
            Action::MaxPoolF32(_) => "jit float (max_pool)".into(),
        }
    }
}

/// A lowered graph: slots, steps in topological order, graph inputs and outputs.
pub struct Plan {
    /// Every value of the graph that a step reads or the graph returns.
    pub slots: Vec<Slot>,
    /// Steps in topological order.
    pub steps: Vec<Step>,
    /// Graph inputs: (slot, name, dtype, bound shape), in order.
    pub inputs: Vec<(usize, String, Option<DType>, Vec<usize>)>,
    /// Graph outputs, in order.
    pub outputs: Vec<usize>,
}

/// Memory statistics of a plan, from the concrete shapes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes of every computed value added up (what running without reuse allocates).
    pub total_bytes: usize,
    /// The most bytes of computed values alive at once (what buffer reuse needs).
    pub peak_bytes: usize,
}

impl Plan {
    /// Total and peak bytes of the computed values under the plan's liveness.
    pub fn memory(&self) -> MemoryStats {
        let size = |s: usize| self.slots[s].bytes().unwrap_or(0);
        let mut st = MemoryStats::default();
        let mut live = 0usize;
        for step in &self.steps {
            let made: usize = step.outputs.iter().map(|&s| size(s)).sum();
            st.total_bytes += made;
            live += made;
            st.peak_bytes = st.peak_bytes.max(live);
            for &s in &step.frees {
                if matches!(self.slots[s].source, SlotSource::Step) {
                    live = live.saturating_sub(size(s));
                }
            }
        }
        st
    }
}

/// A copy of `g` with every graph input bound to the given concrete shape (one per input, in
/// order), types re-inferred and the now-constant shape subgraphs folded.
pub fn bind_shapes(g: &Graph, shapes: &[Vec<usize>]) -> Result<Graph, JitError> {
    if shapes.len() != g.inputs().len() {
        return Err(JitError::Input {
            name: "(inputs)".into(),
            why: format!(
                "model has {} inputs, {} shapes given",
                g.inputs().len(),
                shapes.len()
            ),
        });
    }
    let mut b = g.clone();
    let mut syms: HashMap<String, usize> = HashMap::new();
    for (&n, dims) in g.inputs().iter().zip(shapes) {
        let out = &g.node(n).outputs[0];
        let bad = |why: String| JitError::Input {
            name: out.name.clone(),
            why,
        };
        if let Some(s) = &out.ty.shape {
            if s.rank() != dims.len() {
                return Err(bad(format!("expected shape {s}, got {dims:?}")));
            }
            for (d, &k) in s.0.iter().zip(dims) {
                match d {
                    Dim::Known(x) if *x != k => {
                        return Err(bad(format!("expected shape {s}, got {dims:?}")))
                    }
                    Dim::Known(_) => {}
                    Dim::Sym(name) => {
                        let prev = *syms.entry(name.clone()).or_insert(k);
                        if prev != k {
                            return Err(bad(format!(
                                "dimension {name} is {prev} elsewhere, got {k}"
                            )));
                        }
                    }
                }
            }
        }
        b.output_mut(ValueRef::first(n)).ty.shape = Some(Shape::known(dims));
    }
    let graph_err = |e: String| JitError::Lower {
        node: "(graph)".into(),
        why: e,
    };
    lpc_ir::infer_types(&mut b).map_err(|e| graph_err(e.to_string()))?;
    for _ in 0..4 {
        let s = lpc_ref::fold_constants(&mut b).map_err(|e| graph_err(e.to_string()))?;
        lpc_ir::infer_types(&mut b).map_err(|e| graph_err(e.to_string()))?;
        if s.folded == 0 {
            break;
        }
    }
    lpc_ir::verify(&b).map_err(|e| graph_err(e.to_string()))?;
    Ok(b)
}

/// Lowers a shape-bound graph (see [`bind_shapes`]) to a plan; kernels are defined in `module`.
pub fn lower(
    g: &Graph,
    module: &mut crate::CodeModule,
    opts: &LowerOptions,
) -> Result<Plan, JitError> {
    let order = g.topo_order().map_err(|e| JitError::Lower {
        node: "(graph)".into(),
        why: e.to_string(),
    })?;
    let mut slot_of: HashMap<ValueRef, usize> = HashMap::new();
    let mut slots: Vec<Slot> = Vec::new();
    let new_slot = |g: &Graph, v: ValueRef, source: SlotSource, slots: &mut Vec<Slot>| {
        let out = g.output(v);
        slots.push(Slot {
            name: out.name.clone(),
            dtype: out.ty.dtype,
            shape: out.ty.shape.as_ref().and_then(Shape::as_known),
            source,
        });
        slots.len() - 1
    };
    let mut inputs = Vec::new();
    let mut steps = Vec::new();
    let chains = if opts.float {
        crate::float::find_chains(g, &order)
    } else {
        crate::float::Chains::default()
    };
    for &n in &order {
        let node = g.node(n);
        // A chain member other than its root is computed inside the root's step.
        if chains.absorbed.contains(&n) {
            continue;
        }
        if let Some(group) = chains.roots.get(&n) {
            let ins: Vec<Option<usize>> = group
                .externals
                .iter()
                .map(|v| {
                    slot_of
                        .get(v)
                        .copied()
                        .map(Some)
                        .ok_or_else(|| JitError::Lower {
                            node: node.name.clone(),
                            why: format!("reads {}, which is not computed before it", v.output),
                        })
                })
                .collect::<Result<_, _>>()?;
            let v = ValueRef::first(n);
            let out = new_slot(g, v, SlotSource::Step, &mut slots);
            slot_of.insert(v, out);
            let plan = crate::float::lower_chain(g, group, module)?;
            steps.push(Step {
                node: node.name.clone(),
                op: node.op.name(),
                action: Action::FloatChain(Box::new(plan)),
                inputs: ins,
                outputs: vec![out],
                frees: vec![],
            });
            continue;
        }
        match &node.op {
            Op::Input { index } => {
                let v = ValueRef::first(n);
                let s = new_slot(g, v, SlotSource::Input(*index), &mut slots);
                slot_of.insert(v, s);
                let shape = slots[s].shape.clone().ok_or_else(|| JitError::Input {
                    name: node.outputs[0].name.clone(),
                    why: "shape not bound".into(),
                })?;
                inputs.push((*index, (s, slots[s].name.clone(), slots[s].dtype, shape)));
            }
            Op::Const(t) => {
                let v = ValueRef::first(n);
                let s = new_slot(g, v, SlotSource::Const(t.clone()), &mut slots);
                slot_of.insert(v, s);
            }
            op => {
                let ins: Vec<Option<usize>> = g
                    .node_inputs(n)
                    .iter()
                    .map(|v| {
                        v.map(|v| {
                            slot_of.get(&v).copied().ok_or_else(|| JitError::Lower {
                                node: node.name.clone(),
                                why: format!("reads {}, which is not computed before it", v.output),
                            })
                        })
                        .transpose()
                    })
                    .collect::<Result<_, _>>()?;
                // A node of constants only (e.g. a weight DequantizeLinear that constant folding
                // keeps) is evaluated once here; its outputs become constants.
                let consts: Option<Vec<Option<&Tensor>>> = ins
                    .iter()
                    .map(|s| match s {
                        None => Some(None),
                        Some(s) => match &slots[*s].source {
                            SlotSource::Const(t) => Some(Some(t.as_ref())),
                            SlotSource::Input(_) | SlotSource::Step => None,
                        },
                    })
                    .collect();
                if let Some(cins) = consts.filter(|c| c.iter().any(Option::is_some)) {
                    let vals = lpc_ref::eval(op, &cins, node.outputs.len()).map_err(|source| {
                        JitError::Eval {
                            node: node.name.clone(),
                            source,
                        }
                    })?;
                    if vals.len() >= node.outputs.len() {
                        for (k, t) in vals.into_iter().enumerate().take(node.outputs.len()) {
                            let v = ValueRef { node: n, output: k };
                            let s = new_slot(g, v, SlotSource::Const(Arc::new(t)), &mut slots);
                            slot_of.insert(v, s);
                        }
                        continue;
                    }
                }
                let outs: Vec<usize> = (0..node.outputs.len())
                    .map(|k| {
                        let v = ValueRef { node: n, output: k };
                        let s = new_slot(g, v, SlotSource::Step, &mut slots);
                        slot_of.insert(v, s);
                        s
                    })
                    .collect();
                let action = lower_node(g, n, module, opts)?.unwrap_or(Action::Fallback {
                    op: op.clone(),
                    n_outputs: node.outputs.len(),
                });
                steps.push(Step {
                    node: node.name.clone(),
                    op: op.name(),
                    action,
                    inputs: ins,
                    outputs: outs,
                    frees: vec![],
                });
            }
        }
    }
    inputs.sort_by_key(|(k, _)| *k);
    let inputs: Vec<_> = inputs.into_iter().map(|(_, i)| i).collect();
    let outputs: Vec<usize> = g
        .outputs()
        .iter()
        .map(|v| {
            slot_of.get(v).copied().ok_or_else(|| JitError::Lower {
                node: "(graph)".into(),
                why: format!("output {} is not computed", g.value_name(*v)),
            })
        })
        .collect::<Result<_, _>>()?;
    // Liveness: each slot is freed after the last step that reads it, unless it is an output.
    let mut last: HashMap<usize, usize> = HashMap::new();
    for (k, st) in steps.iter().enumerate() {
        for &s in st.inputs.iter().flatten() {
            last.insert(s, k);
        }
    }
    for (s, k) in last {
        if !outputs.contains(&s) {
            steps[k].frees.push(s);
        }
    }
    // A step's outputs that nothing reads die right away.
    for k in 0..steps.len() {
        let dead: Vec<usize> = steps[k]
            .outputs
            .iter()
            .copied()
            .filter(|s| !outputs.contains(s) && !steps.iter().any(|t| t.inputs.contains(&Some(*s))))
            .collect();
        steps[k].frees.extend(dead);
        steps[k].frees.sort_unstable();
        steps[k].frees.dedup();
    }
    Ok(Plan {
        slots,
        steps,
        inputs,
        outputs,
    })
}

/// Which kernels lowering may use (tests switch kernels off to compare paths).
#[derive(Clone, Debug)]
pub struct LowerOptions {
    /// Lower QConv/QMatMul to the JIT GEMM.
    pub gemm: bool,
    /// Zero-copy views for reshape-like ops.
    pub views: bool,
    /// Depthwise QConv, MaxPool and the elementwise kernels (Quantize/DequantizeLinear,
    /// Requantize, QAdd, Lut).
    pub elementwise: bool,
    /// The f32 kernels: fused elementwise chains and GlobalAveragePool.
    pub float: bool,
    /// The GEMM code tier (`Dot::Auto`: the best the host has; forcing one the host lacks is
    /// a compile error naming it).
    pub dot: crate::gemm::Dot,
}

impl Default for LowerOptions {
    fn default() -> LowerOptions {
        LowerOptions {
            gemm: true,
            views: true,
            elementwise: true,
            float: true,
            dot: crate::gemm::Dot::Auto,
        }
    }
}

/// The known output shape of `n`'s first output.
fn out_shape(g: &Graph, n: NodeId) -> Option<Vec<usize>> {
    g.node(n).outputs[0].ty.shape.as_ref()?.as_known()
}

/// Lowers one node to a kernel, or `None` for the fallback.
fn lower_node(
    g: &Graph,
    n: NodeId,
    module: &mut crate::CodeModule,
    opts: &LowerOptions,
) -> Result<Option<Action>, JitError> {
    let node = g.node(n);
    Ok(match &node.op {
        Op::Reshape { .. } | Op::Flatten { .. } | Op::Squeeze | Op::Unsqueeze => {
            match (opts.views, out_shape(g, n)) {
                (true, Some(shape)) => Some(Action::View { shape }),
                _ => None,
            }
        }
        Op::QConv(a) if opts.gemm => {
            crate::conv::lower_qconv(g, n, a, module, opts.elementwise, opts.dot)?
        }
        Op::QMatMul if opts.gemm => crate::conv::lower_qmatmul(g, n, module, opts.dot)?,
        Op::MaxPool { pool, .. } if opts.elementwise || opts.float => {
            let int = match opts.elementwise {
                true => crate::steps::lower_max_pool(g, n, pool, module)?
                    .map(|p| Action::MaxPool(Box::new(p))),
                false => None,
            };
            match (int, opts.float) {
                (Some(a), _) => Some(a),
                (None, true) => crate::float::lower_max_pool_f32(g, n, pool, module)?
                    .map(|p| Action::MaxPoolF32(Box::new(p))),
                (None, false) => None,
            }
        }
        Op::QuantizeLinear { q, dtype } if opts.elementwise => {
            crate::steps::lower_quantize(g, n, q, *dtype, module)?
                .map(|p| Action::Quantize(Box::new(p)))
        }
        Op::DequantizeLinear { q } if opts.elementwise => {
            crate::steps::lower_dequantize(g, n, q, module)?
                .map(|p| Action::Dequantize(Box::new(p)))
        }
        Op::Requantize if opts.elementwise => {
            crate::steps::lower_requantize(g, n, module)?.map(|p| Action::Requantize(Box::new(p)))
        }
        Op::QAdd if opts.elementwise => {
            crate::steps::lower_qadd(g, n, module)?.map(|p| Action::QAdd(Box::new(p)))
        }
        Op::Lut if opts.elementwise => {
            crate::steps::lower_lut(g, n, module)?.map(|p| Action::Lut(Box::new(p)))
        }
        Op::GlobalAveragePool if opts.float => {
            crate::float::lower_gap(g, n, module)?.map(|p| Action::GlobalAvgPool(Box::new(p)))
        }
        Op::Conv(_) if opts.float => {
            crate::gemv::lower_gemv(g, n).map(|p| Action::Gemv(Box::new(p)))
        }
        Op::QConv(_)
        | Op::QMatMul
        | Op::MaxPool { .. }
        | Op::QuantizeLinear { .. }
        | Op::DequantizeLinear { .. }
        | Op::Requantize
        | Op::QAdd
        | Op::Lut
        | Op::Input { .. }
        | Op::Const(_)
        | Op::Unary(_)
        | Op::Binary(_)
        | Op::Clip
        | Op::Where
        | Op::Conv(_)
        | Op::ConvTranspose { .. }
        | Op::ConvInteger(_)
        | Op::QLinearConv(_)
        | Op::MatMul
        | Op::MatMulInteger
        | Op::QLinearMatMul
        | Op::Gemm { .. }
        | Op::AveragePool { .. }
        | Op::GlobalAveragePool
        | Op::GlobalMaxPool
        | Op::BatchNorm { .. }
        | Op::LayerNorm { .. }
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::Reduce { .. }
        | Op::Concat { .. }
        | Op::Split { .. }
        | Op::Transpose { .. }
        | Op::Expand
        | Op::Gather { .. }
        | Op::ShapeOf { .. }
        | Op::Slice
        | Op::Pad { .. }
        | Op::Resize(_)
        | Op::Range
        | Op::ConstantOfShape { .. }
        | Op::DynamicQuantizeLinear
        | Op::FakeQuantize { .. } => None,
    })
}
