//! Lowering: binds a graph's input shapes, then turns every node into one step of a plan (a JIT
//! kernel, a zero-copy view, or a fallback to `lpc-ref`), with value slots and liveness.
//!
//! `lower_node` is the one place that picks a kernel for an op; each `lower_*` it calls reads the
//! graph, fills the kernel's spec (`crate::kernels`) and returns a step plan, or `None` for the
//! fallback.

mod action;
mod bind;
mod float_chains;
mod float_steps;
mod gemv;
mod qconv;
mod quant_steps;

pub(crate) use action::Action;
pub(crate) use bind::bind_shapes;

use crate::kernels::gemm::Dot;
use crate::kernels::tier::VecTier;
use crate::{CodeModule, JitError};
use float_chains::{ChainGroup, Chains};
use lpc_ir::{DType, Graph, NodeId, Op, Shape, Tensor, ValueRef};
use qconv::QConvPlan;
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

/// One step of a plan: a node, its action, the slots it reads and writes, and the slots whose
/// last use it is (freed right after it runs).
pub struct Step {
    /// The node's name.
    pub node: String,
    /// The node's op name.
    pub op: &'static str,
    /// What runs.
    pub(crate) action: Action,
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
        self.action.kind(self.op)
    }

    /// The code tier of the step's kernel, for kernels with several (see [`Action::tier`]).
    pub fn tier(&self) -> Option<&'static str> {
        self.action.tier()
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

/// Lowers a shape-bound graph (see [`bind_shapes`]) to a plan; kernels are defined in `module`.
pub(crate) fn lower(
    g: &Graph,
    module: &mut CodeModule,
    opts: &LowerOptions,
) -> Result<Plan, JitError> {
    let order = g.topo_order().map_err(|e| JitError::Lower {
        node: "(graph)".into(),
        why: e.to_string(),
    })?;
    let chains = if opts.float {
        // Tanh uses fused multiply-adds (lpc-ref's `mul_add`): FMA hosts only.
        let transcendental = opts.float_transcendental && module.features().fma;
        float_chains::find_chains(g, &order, transcendental)
    } else {
        Chains::default()
    };
    let mut b = Builder {
        g,
        slots: Vec::new(),
        slot_of: HashMap::new(),
        inputs: Vec::new(),
        steps: Vec::new(),
    };
    for &n in &order {
        // A chain member other than its root is computed inside the root's step.
        if chains.absorbed.contains(&n) {
            continue;
        }
        if let Some(group) = chains.roots.get(&n) {
            b.chain_step(n, group, module, opts.vec_tier)?;
            continue;
        }
        match &g.node(n).op {
            Op::Input { index } => b.input(n, *index)?,
            Op::Const(t) => {
                b.bind(ValueRef::first(n), SlotSource::Const(t.clone()));
            }
            op => b.node_step(n, op, module, opts)?,
        }
    }
    b.finish()
}

/// A plan under construction: its slots, the slot of each graph value computed so far, the
/// graph inputs (keyed by input number) and the steps.
struct Builder<'g> {
    g: &'g Graph,
    slots: Vec<Slot>,
    slot_of: HashMap<ValueRef, usize>,
    inputs: Vec<(usize, PlanInput)>,
    steps: Vec<Step>,
}

/// A graph input of a plan: (slot, name, dtype, bound shape), as in [`Plan::inputs`].
type PlanInput = (usize, String, Option<DType>, Vec<usize>);

impl Builder<'_> {
    /// A new slot for value `v` from `source`, recorded as `v`'s slot.
    fn bind(&mut self, v: ValueRef, source: SlotSource) -> usize {
        let out = self.g.output(v);
        self.slots.push(Slot {
            name: out.name.clone(),
            dtype: out.ty.dtype,
            shape: out.ty.shape.as_ref().and_then(Shape::as_known),
            source,
        });
        let s = self.slots.len() - 1;
        self.slot_of.insert(v, s);
        s
    }

    /// The slot of `v`, read by node `n`: an error when nothing computed it before `n`.
    fn slot(&self, n: NodeId, v: ValueRef) -> Result<usize, JitError> {
        self.slot_of
            .get(&v)
            .copied()
            .ok_or_else(|| JitError::Lower {
                node: self.g.node(n).name.clone(),
                why: format!("reads {}, which is not computed before it", v.output),
            })
    }

    /// Graph input number `index`, node `n`.
    fn input(&mut self, n: NodeId, index: usize) -> Result<(), JitError> {
        let s = self.bind(ValueRef::first(n), SlotSource::Input(index));
        let slot = &self.slots[s];
        let shape = slot.shape.clone().ok_or_else(|| JitError::Input {
            name: self.g.node(n).outputs[0].name.clone(),
            why: "shape not bound".into(),
        })?;
        self.inputs
            .push((index, (s, slot.name.clone(), slot.dtype, shape)));
        Ok(())
    }

    /// The step of a float chain rooted at `n`.
    fn chain_step(
        &mut self,
        n: NodeId,
        group: &ChainGroup,
        module: &mut CodeModule,
        tier: VecTier,
    ) -> Result<(), JitError> {
        let ins: Vec<Option<usize>> = group
            .externals
            .iter()
            .map(|&v| self.slot(n, v).map(Some))
            .collect::<Result<_, _>>()?;
        let out = self.bind(ValueRef::first(n), SlotSource::Step);
        let plan = float_chains::lower_chain(self.g, group, module, tier)?;
        let node = self.g.node(n);
        self.steps.push(Step {
            node: node.name.clone(),
            op: node.op.name(),
            action: Action::FloatChain(Box::new(plan)),
            inputs: ins,
            outputs: vec![out],
            frees: vec![],
        });
        Ok(())
    }

    /// The step of node `n` (op `op`): a kernel, a view or the fallback; or no step when its
    /// inputs are constants, which are evaluated here.
    fn node_step(
        &mut self,
        n: NodeId,
        op: &Op,
        module: &mut CodeModule,
        opts: &LowerOptions,
    ) -> Result<(), JitError> {
        let g = self.g;
        let node = g.node(n);
        let ins: Vec<Option<usize>> = g
            .node_inputs(n)
            .iter()
            .map(|v| v.map(|v| self.slot(n, v)).transpose())
            .collect::<Result<_, _>>()?;
        if self.fold_constants(n, op, &ins)? {
            return Ok(());
        }
        let outs: Vec<usize> = (0..node.outputs.len())
            .map(|k| self.bind(ValueRef { node: n, output: k }, SlotSource::Step))
            .collect();
        let action = lower_node(g, n, module, opts)?.unwrap_or(Action::Fallback {
            op: op.clone(),
            n_outputs: node.outputs.len(),
        });
        self.steps.push(Step {
            node: node.name.clone(),
            op: op.name(),
            action,
            inputs: ins,
            outputs: outs,
            frees: vec![],
        });
        Ok(())
    }

    /// A node of constants only (e.g. a weight DequantizeLinear that constant folding keeps) is
    /// evaluated once here; its outputs become constants. Whether it was.
    fn fold_constants(
        &mut self,
        n: NodeId,
        op: &Op,
        ins: &[Option<usize>],
    ) -> Result<bool, JitError> {
        let node = self.g.node(n);
        let consts: Option<Vec<Option<&Tensor>>> = ins
            .iter()
            .map(|s| match s {
                None => Some(None),
                Some(s) => match &self.slots[*s].source {
                    SlotSource::Const(t) => Some(Some(t.as_ref())),
                    SlotSource::Input(_) | SlotSource::Step => None,
                },
            })
            .collect();
        let Some(cins) = consts.filter(|c| c.iter().any(Option::is_some)) else {
            return Ok(false);
        };
        let vals =
            lpc_ref::eval(op, &cins, node.outputs.len()).map_err(|source| JitError::Eval {
                node: node.name.clone(),
                source,
            })?;
        if vals.len() < node.outputs.len() {
            return Ok(false);
        }
        for (k, t) in vals.into_iter().enumerate().take(node.outputs.len()) {
            let v = ValueRef { node: n, output: k };
            self.bind(v, SlotSource::Const(Arc::new(t)));
        }
        Ok(true)
    }

    /// The plan: inputs in order, the graph outputs, and each slot's last use.
    fn finish(self) -> Result<Plan, JitError> {
        let Builder {
            g,
            slots,
            slot_of,
            mut inputs,
            mut steps,
        } = self;
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
        liveness(&mut steps, &outputs);
        Ok(Plan {
            slots,
            steps,
            inputs,
            outputs,
        })
    }
}

/// Fills each step's `frees`: every slot is freed after the last step that reads it, unless it
/// is a graph output, and a step's outputs that nothing reads die right away.
fn liveness(steps: &mut [Step], outputs: &[usize]) {
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
    /// Exp, Sigmoid and Tanh inside the fused f32 chains (with `float`; on FMA hosts), bit for
    /// bit `lpc_ref::transcendental`'s; off, they run in lpc-ref.
    pub float_transcendental: bool,
    /// The GEMM code tier (`Dot::Auto`: the best the host has; forcing one the host lacks is
    /// a compile error naming it).
    pub dot: Dot,
    /// The code tier of the float chains and the quantize/dequantize/requantize/QAdd kernels
    /// (`VecTier::Auto`: zmm where the host has it).
    pub vec_tier: VecTier,
}

impl Default for LowerOptions {
    fn default() -> LowerOptions {
        LowerOptions {
            gemm: true,
            views: true,
            elementwise: true,
            float: true,
            float_transcendental: true,
            dot: Dot::Auto,
            vec_tier: VecTier::Auto,
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
    module: &mut CodeModule,
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
            match qconv::lower_qconv(g, n, a, module, opts.elementwise, opts.dot)? {
                Some(QConvPlan::Gemm(p)) => Some(Action::Gemm(Box::new(p))),
                Some(QConvPlan::DwConv(p)) => Some(Action::DwConv(Box::new(p))),
                None => None,
            }
        }
        Op::QMatMul if opts.gemm => {
            qconv::lower_qmatmul(g, n, module, opts.dot)?.map(|p| Action::Gemm(Box::new(p)))
        }
        Op::MaxPool { pool, .. } if opts.elementwise || opts.float => {
            let int = match opts.elementwise {
                true => quant_steps::lower_max_pool(g, n, pool, module)?
                    .map(|p| Action::MaxPool(Box::new(p))),
                false => None,
            };
            match (int, opts.float) {
                (Some(a), _) => Some(a),
                (None, true) => float_steps::lower_max_pool_f32(g, n, pool, module)?
                    .map(|p| Action::MaxPoolF32(Box::new(p))),
                (None, false) => None,
            }
        }
        Op::QuantizeLinear { q, dtype } if opts.elementwise => {
            quant_steps::lower_quantize(g, n, q, *dtype, module, opts.vec_tier)?
                .map(|p| Action::Quantize(Box::new(p)))
        }
        Op::DequantizeLinear { q } if opts.elementwise => {
            quant_steps::lower_dequantize(g, n, q, module, opts.vec_tier)?
                .map(|p| Action::Dequantize(Box::new(p)))
        }
        Op::Requantize if opts.elementwise => {
            quant_steps::lower_requantize(g, n, module, opts.vec_tier)?
                .map(|p| Action::Requantize(Box::new(p)))
        }
        Op::QAdd if opts.elementwise => {
            quant_steps::lower_qadd(g, n, module, opts.vec_tier)?
                .map(|p| Action::QAdd(Box::new(p)))
        }
        Op::Lut if opts.elementwise => {
            quant_steps::lower_lut(g, n, module)?.map(|p| Action::Lut(Box::new(p)))
        }
        Op::GlobalAveragePool if opts.float => {
            float_steps::lower_gap(g, n, module)?.map(|p| Action::GlobalAvgPool(Box::new(p)))
        }
        Op::Conv(_) if opts.float => gemv::lower_gemv(g, n).map(|p| Action::Gemv(Box::new(p))),
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
        | Op::RmsNorm { .. }
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::Hardmax { .. }
        | Op::LpNormalization { .. }
        | Op::InstanceNorm { .. }
        | Op::GroupNorm { .. }
        | Op::Lrn { .. }
        | Op::MeanVarianceNorm { .. }
        | Op::MaxUnpool { .. }
        | Op::CausalConvWithState { .. }
        | Op::LpPool { .. }
        | Op::NegativeLogLikelihoodLoss { .. }
        | Op::SoftmaxCrossEntropyLoss { .. }
        | Op::Reduce { .. }
        | Op::Concat { .. }
        | Op::Split { .. }
        | Op::Transpose { .. }
        | Op::Expand
        | Op::Gather { .. }
        | Op::GatherElements { .. }
        | Op::GatherNd { .. }
        | Op::ScatterElements { .. }
        | Op::ScatterNd { .. }
        | Op::Tile
        | Op::CastLike
        | Op::Size
        | Op::ArgMax(_)
        | Op::ArgMin(_)
        | Op::TopK { .. }
        | Op::Trilu { .. }
        | Op::CumSum { .. }
        | Op::CumProd { .. }
        | Op::OneHot { .. }
        | Op::EyeLike { .. }
        | Op::Compress { .. }
        | Op::NonZero
        | Op::Unique { .. }
        | Op::ReverseSequence { .. }
        | Op::CenterCropPad { .. }
        | Op::Det
        | Op::Einsum { .. }
        | Op::RotaryEmbedding { .. }
        | Op::TensorScatter { .. }
        | Op::NonMaxSuppression { .. }
        | Op::LinearAttention { .. }
        | Op::SwiGlu { .. }
        | Op::RoiAlign { .. }
        | Op::DeformConv { .. }
        | Op::ImageDecoder { .. }
        | Op::TfIdfVectorizer(_)
        | Op::MelWeightMatrix { .. }
        | Op::Col2Im { .. }
        | Op::GridSample { .. }
        | Op::AffineGrid { .. }
        | Op::Dft { .. }
        | Op::Window { .. }
        | Op::Stft { .. }
        | Op::DepthToSpace { .. }
        | Op::SpaceToDepth { .. }
        | Op::ShapeOf { .. }
        | Op::Slice
        | Op::Pad { .. }
        | Op::Resize(_)
        | Op::Range
        | Op::ConstantOfShape { .. }
        | Op::DynamicQuantizeLinear
        | Op::FakeQuantize { .. }
        | Op::Lstm { .. }
        | Op::Gru { .. }
        | Op::Rnn(_)
        // Bodies run in lpc-ref with the node.
        | Op::If { .. }
        | Op::Loop { .. }
        | Op::Scan(_)
        | Op::Attention(_) => None,
    })
}
