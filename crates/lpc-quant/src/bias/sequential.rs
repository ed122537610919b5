//! Sequential ("empirical") bias correction: each quantized layer corrected on the inputs of
//! the quantized model, upstream corrections included.

use super::out_axis;
use super::shift::apply_bias_shift;
use crate::batch::for_batches;
use crate::error::run_err;
use crate::insert::{insert_fake_quantize, ActPoints, WeightPoints};
use crate::placement::{Layer, LayerKind, Placement};
use crate::QuantError;
use lpc_data::SampleSource;
use lpc_ir::{Graph, NodeId, Op, Tensor, ValueRef};
use std::collections::{HashMap, HashSet};

/// Adds the per-channel sums of a layer output (channel axis by layer kind) to `acc`
/// (sums, values per channel). Non-f32 or rank-0 outputs, or a channel count that changes
/// between batches, are not counted.
fn channel_sums(t: &Tensor, kind: LayerKind, acc: &mut Option<(Vec<f64>, u64)>) {
    let Ok(x) = t.as_f32() else { return };
    if t.rank() == 0 {
        return;
    }
    let ax = out_axis(kind, t.rank());
    let c = t.shape()[ax];
    let inner: usize = t.shape()[ax + 1..].iter().product();
    if c == 0 {
        return;
    }
    let (sums, n) = acc.get_or_insert_with(|| (vec![0.0; c], 0));
    if sums.len() != c {
        return;
    }
    for (i, run) in x.chunks(inner.max(1)).enumerate() {
        sums[i % c] += run.iter().map(|&v| v as f64).sum::<f64>();
    }
    *n += (x.len() / c) as u64;
}

/// Adds `shift[c]` to channel c (axis by layer kind) of a layer output.
fn add_channel_shift(t: &mut Tensor, kind: LayerKind, shift: &[f32]) -> Result<(), QuantError> {
    let ax = out_axis(kind, t.rank());
    let inner: usize = t.shape()[ax + 1..].iter().product();
    let c = shift.len();
    let x = t.as_f32_mut().map_err(QuantError::from)?;
    for (i, run) in x.chunks_mut(inner.max(1)).enumerate() {
        let s = shift[i % c];
        run.iter_mut().for_each(|v| *v += s);
    }
    Ok(())
}

/// A value during sequential bias correction: computed once from constants only (weight
/// quantizers), or one tensor per chunk of samples.
enum SeqValue {
    Shared(Tensor),
    Chunks(Vec<Tensor>),
}

impl SeqValue {
    fn bytes(&self) -> usize {
        let one = |t: &Tensor| t.len() * t.dtype().size();
        match self {
            SeqValue::Shared(t) => one(t),
            SeqValue::Chunks(ts) => ts.iter().map(one).sum(),
        }
    }
}

/// The most bytes of activations sequential bias correction holds at once by default: half
/// the memory Linux reports available, 4 GiB when that is unknown.
fn sequential_memory_limit() -> usize {
    lpc_ir::host::available_memory().map_or(4 << 30, |b| b / 2)
}

/// Sequential ("empirical") bias correction. The FP32 graph `g` is run once over `data` for the
/// per-channel mean of every quantized layer's output. Then the FakeQuantize graph is evaluated
/// node by node in topological order over all of `data` at once (chunks of samples evaluated in
/// parallel; values freed after their last reader): at each quantized layer, the shift is the
/// FP32 mean minus the mean of the layer's output in the quantized model — whose inputs carry
/// the quantization error of everything upstream, corrections of earlier layers included. The
/// shift is added to the layer's bias in `g` and to the computed output (the same as
/// evaluating the layer again with the new bias: the bias is added per output channel) before
/// the walk goes on. Only the nodes quantized layers depend on are evaluated.
pub(crate) fn sequential_shifts(
    g: &mut Graph,
    plan: &Placement,
    acts: &ActPoints,
    weights: &WeightPoints,
    data: &dyn SampleSource,
    run: &Run,
    warnings: &mut Vec<String>,
) -> Result<Vec<Option<Vec<f32>>>, QuantError> {
    let fp = fp32_sums(g, plan, data, run)?;
    let mut walk = Walk::new(g, plan, acts, weights, data, run)?;
    let bar = crate::progress::Progress::new("bias sequential", walk.needed.len(), run.progress);
    let mut shifts: Vec<Option<Vec<f32>>> = vec![None; plan.layers.len()];
    let order: Vec<NodeId> = walk
        .order
        .iter()
        .copied()
        .filter(|n| walk.needed.contains(n))
        .collect();
    for nid in order {
        bar.add(1);
        let Some(mut outs) = walk.eval_node(nid)? else {
            continue;
        };
        if let Some(&li) = walk.layer_at.get(&nid) {
            let l = &plan.layers[li];
            if let (Some(SeqValue::Chunks(ts)), Some(fp)) = (outs.first_mut(), &fp[li]) {
                if let Some(shift) = correct_layer(g, l, fp, ts, warnings)? {
                    shifts[li] = Some(shift);
                }
            }
        }
        walk.hold(nid, outs)?;
    }
    bar.finish();
    Ok(shifts)
}

/// How sequential bias correction runs.
pub(crate) struct Run {
    /// Samples per interpreter run of the FP32 pass, and most samples per chunk.
    pub(crate) batch: usize,
    /// Progress bars.
    pub(crate) progress: bool,
    /// Most bytes of activations held at once; 0 for [`sequential_memory_limit`].
    pub(crate) memory: usize,
}

/// Per-channel output sums (sums, values per channel) of every quantized layer.
type Sums = Vec<Option<(Vec<f64>, u64)>>;

/// Step 1: the FP32 graph `g` run once over `data` for the per-channel output sums of every
/// quantized layer.
fn fp32_sums(
    g: &Graph,
    plan: &Placement,
    data: &dyn SampleSource,
    run: &Run,
) -> Result<Sums, QuantError> {
    let n_layers = plan.layers.len();
    let out_of: HashMap<ValueRef, usize> = plan
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| (ValueRef::first(l.node), i))
        .collect();
    for_batches(
        data,
        run.batch,
        "bias fp32",
        run.progress,
        || vec![None; n_layers],
        |acc: &mut Sums, inputs, first, _k| {
            lpc_ref::run_observed(g, inputs, |v, t| {
                if let Some(&li) = out_of.get(&v) {
                    channel_sums(t, plan.layers[li].kind, &mut acc[li]);
                }
            })
            .map_err(run_err(first))?;
            Ok(())
        },
        |a, b| {
            for (x, y) in a.iter_mut().zip(b) {
                match (x.as_mut(), y) {
                    (Some((s, n)), Some((t, m))) if s.len() == t.len() => {
                        s.iter_mut().zip(&t).for_each(|(p, q)| *p += q);
                        *n += m;
                    }
                    (None, y) => *x = y,
                    _ => {}
                }
            }
        },
    )
}

/// Step 3, at a quantized layer `l`: the shift is the FP32 mean (`fp`: sums, count) minus the
/// mean of the layer's output in the quantized model (`ts`, one tensor per chunk). Added to the
/// layer's bias in `g` and to `ts`; returns it, or `None` when it was not applied (a note in
/// `warnings` says why) or the channel counts differ.
fn correct_layer(
    g: &mut Graph,
    l: &Layer,
    fp: &(Vec<f64>, u64),
    ts: &mut [Tensor],
    warnings: &mut Vec<String>,
) -> Result<Option<Vec<f32>>, QuantError> {
    let (fs, fnum) = fp;
    let mut q = None;
    for t in ts.iter() {
        channel_sums(t, l.kind, &mut q);
    }
    let Some((qs, qnum)) = q.filter(|(qs, _)| qs.len() == fs.len()) else {
        return Ok(None);
    };
    let shift: Vec<f32> = fs
        .iter()
        .zip(&qs)
        .map(|(f, q)| (f / (*fnum).max(1) as f64 - q / qnum.max(1) as f64) as f32)
        .collect();
    match apply_bias_shift(g, l.node, l.kind, &shift)? {
        Some(note) => {
            warnings.push(note);
            Ok(None)
        }
        None => {
            for t in ts.iter_mut() {
                add_channel_shift(t, l.kind, &shift)?;
            }
            Ok(Some(shift))
        }
    }
}

/// Step 2: the walk over the FakeQuantize graph, node by node in topological order, over all
/// samples at once in chunks.
struct Walk {
    /// The quantized graph, without corrections; its original nodes keep their ids.
    gq: Graph,
    /// Topological order of `gq`.
    order: Vec<NodeId>,
    /// Layer index of each quantized layer node.
    layer_at: HashMap<NodeId, usize>,
    /// Nodes some quantized layer depends on.
    needed: HashSet<NodeId>,
    /// Readers left per value (among the needed nodes).
    reads: HashMap<ValueRef, usize>,
    /// Samples, concatenated per input, one entry per chunk.
    chunks: Vec<Vec<Tensor>>,
    /// Samples in all chunks.
    samples: usize,
    /// Values computed and still to be read.
    values: HashMap<ValueRef, SeqValue>,
    /// Bytes of the values held.
    live: usize,
    /// Most bytes held; past it the pass stops (the caller falls back to fast correction)
    /// instead of running the machine out of memory.
    limit: usize,
}

impl Walk {
    /// The quantized graph of `g` (`acts`, `weights`), the nodes the quantized layers depend
    /// on, and `data` in chunks.
    fn new(
        g: &Graph,
        plan: &Placement,
        acts: &ActPoints,
        weights: &WeightPoints,
        data: &dyn SampleSource,
        run: &Run,
    ) -> Result<Walk, QuantError> {
        let mut gq = g.clone();
        insert_fake_quantize(&mut gq, acts, weights)?;
        let order = gq.topo_order().map_err(QuantError::from)?;
        let layer_at: HashMap<NodeId, usize> = plan
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| (l.node, i))
            .collect();
        // Nodes some quantized layer depends on (reverse topological order: users first).
        let mut needed: HashSet<NodeId> = layer_at.keys().copied().collect();
        for &n in order.iter().rev() {
            if needed.contains(&n) {
                for v in gq.node_inputs(n).into_iter().flatten() {
                    needed.insert(v.node);
                }
            }
        }
        let mut reads: HashMap<ValueRef, usize> = HashMap::new();
        for &n in order.iter().filter(|n| needed.contains(n)) {
            for v in gq.node_inputs(n).into_iter().flatten() {
                *reads.entry(v).or_default() += 1;
            }
        }
        let chunks = sample_chunks(data, run.batch)?;
        let limit = match run.memory {
            0 => sequential_memory_limit(),
            m => m,
        };
        Ok(Walk {
            gq,
            order,
            layer_at,
            needed,
            reads,
            chunks,
            samples: data.len(),
            values: HashMap::new(),
            live: 0,
            limit,
        })
    }

    /// Evaluates node `nid` on every chunk (once when all its inputs are shared) and frees the
    /// inputs it read last. `None` for constants, which are read from the graph.
    fn eval_node(&mut self, nid: NodeId) -> Result<Option<Vec<SeqValue>>, QuantError> {
        use rayon::prelude::*;
        let gq = &self.gq;
        let node = gq.node(nid);
        let op = match &node.op {
            Op::Const(_) => return Ok(None),
            Op::Input { index } => {
                let per_chunk = self
                    .chunks
                    .iter()
                    .map(|c| {
                        c.get(*index).cloned().ok_or_else(|| {
                            QuantError::Internal(format!("input index {index} out of range"))
                        })
                    })
                    .collect::<Result<_, _>>()?;
                return Ok(Some(vec![SeqValue::Chunks(per_chunk)]));
            }
            op => op,
        };
        let values = &self.values;
        let slots = gq.node_inputs(nid);
        let fail = |e: String| QuantError::BiasCorrection {
            node: node.name.clone(),
            msg: format!("{} (sequential): {e}", op.name()),
        };
        let mut shared = true;
        for v in slots.iter().flatten() {
            match (gq.const_value(*v), values.get(v)) {
                (Some(_), _) | (None, Some(SeqValue::Shared(_))) => {}
                (None, Some(SeqValue::Chunks(_))) => shared = false,
                (None, None) => {
                    return Err(fail(format!("input '{}' not computed", gq.value_name(*v))))
                }
            }
        }
        let eval_chunk = |c: usize| -> Result<Vec<Tensor>, QuantError> {
            let ins: Vec<Option<&Tensor>> = slots
                .iter()
                .map(|s| match s {
                    None => Ok(None),
                    Some(v) => match (gq.const_value(*v), values.get(v)) {
                        (Some(t), _) => Ok(Some(t.as_ref())),
                        (None, Some(SeqValue::Shared(t))) => Ok(Some(t)),
                        (None, Some(SeqValue::Chunks(ts))) => Ok(ts.get(c)),
                        (None, None) => {
                            Err(fail(format!("input '{}' not computed", gq.value_name(*v))))
                        }
                    },
                })
                .collect::<Result<_, _>>()?;
            let o = lpc_ref::eval(op, &ins, node.outputs.len()).map_err(|e| fail(e.to_string()))?;
            if o.len() < node.outputs.len() {
                return Err(fail(format!(
                    "produced {} outputs, node declares {}",
                    o.len(),
                    node.outputs.len()
                )));
            }
            Ok(o)
        };
        let outs = if shared {
            eval_chunk(0)?.into_iter().map(SeqValue::Shared).collect()
        } else {
            let per_chunk: Vec<Vec<Tensor>> = (0..self.chunks.len())
                .into_par_iter()
                .map(eval_chunk)
                .collect::<Result<_, _>>()?;
            let mut by_out: Vec<Vec<Tensor>> = vec![vec![]; node.outputs.len()];
            for o in per_chunk {
                for (k, t) in o.into_iter().take(node.outputs.len()).enumerate() {
                    by_out[k].push(t);
                }
            }
            by_out.into_iter().map(SeqValue::Chunks).collect()
        };
        for v in slots.iter().flatten() {
            if let Some(r) = self.reads.get_mut(v) {
                *r -= 1;
                if *r == 0 {
                    if let Some(gone) = self.values.remove(v) {
                        self.live = self.live.saturating_sub(gone.bytes());
                    }
                }
            }
        }
        Ok(Some(outs))
    }

    /// Keeps the outputs of node `nid` that are still to be read; fails past the memory limit.
    fn hold(&mut self, nid: NodeId, outs: Vec<SeqValue>) -> Result<(), QuantError> {
        for (k, v) in outs.into_iter().enumerate() {
            let vr = ValueRef {
                node: nid,
                output: k,
            };
            if self.reads.get(&vr).copied().unwrap_or(0) > 0 {
                self.live += v.bytes();
                if self.live > self.limit {
                    return Err(QuantError::ActivationMemory {
                        samples: self.samples,
                        node: self.gq.node(nid).name.clone(),
                        limit_mb: self.limit >> 20,
                    });
                }
                self.values.insert(vr, v);
            }
        }
        Ok(())
    }
}

/// `data` in chunks of samples, concatenated per input: at most the run batch, and at least one
/// chunk per thread.
fn sample_chunks(data: &dyn SampleSource, batch: usize) -> Result<Vec<Vec<Tensor>>, QuantError> {
    let n = data.len();
    let threads = rayon::current_num_threads().max(1);
    let per = crate::batch::resolve_batch(data, batch)?
        .min(n.div_ceil(threads))
        .max(1);
    (0..n)
        .step_by(per)
        .map(|i| {
            let samples: Vec<Vec<Tensor>> = (i..(i + per).min(n))
                .map(|j| data.get(j))
                .collect::<Result<_, _>>()?;
            (0..samples[0].len())
                .map(|x| {
                    let col: Vec<Tensor> = samples.iter().map(|s| s[x].clone()).collect();
                    if col.len() == 1 {
                        Ok(col.into_iter().next().expect("one"))
                    } else {
                        lpc_data::concat_rows(&col).map_err(QuantError::from)
                    }
                })
                .collect::<Result<Vec<_>, QuantError>>()
        })
        .collect()
}
