//! A compiled model: the shape-bound graph, its plan, the JIT code and a thread pool; runs with
//! the same input/output contract as `lpc_ref::run`.

use crate::lower::{self, Action, LowerOptions, Plan, SlotSource};
use crate::runtime::memory::BufferPool;
use crate::{CodeModule, JitError};
use lpc_ir::{Graph, Tensor};
use std::sync::Mutex;
use std::time::Instant;

/// How to compile.
#[derive(Clone, Debug, Default)]
pub struct CompileOptions {
    /// Worker threads (default: all cores).
    pub threads: Option<usize>,
    /// Which kernels lowering may use.
    pub lower: LowerOptions,
}

/// The part of a compiled model that runs (shared by the worker threads).
struct Runtime {
    plan: Plan,
    buffers: Mutex<BufferPool>,
}

/// A model compiled for fixed input shapes. Running it with other shapes is an error naming
/// the input: compile again for them (compiling is fast).
pub struct CompiledModel {
    graph: Graph,
    rt: Runtime,
    pool: rayon::ThreadPool,
    compile_ms: f64,
    // Owns the code the kernels of `rt` point into; dropped last.
    _module: OwnedCode,
}

/// The JIT module, kept only so that the code the plan points into lives as long as the plan.
struct OwnedCode(#[allow(dead_code)] CodeModule);

// SAFETY: the module is never read or changed after `compile` (the field is private and
// unused), so sharing its owner between threads cannot race on its interior state (the
// Cranelift module's RefCell maps and raw pointers); and its mapped code is not tied to the
// thread that made it, so it may be moved and dropped on another thread. This lets a compiled
// model be owned by a Python object and run without the GIL.
unsafe impl Send for OwnedCode {}
unsafe impl Sync for OwnedCode {}

/// A value while the plan runs: borrowed (inputs, constants) or owned (computed).
enum Val<'a> {
    Borrowed(&'a Tensor),
    Owned(Tensor),
}

impl Val<'_> {
    fn get(&self) -> &Tensor {
        match self {
            Val::Borrowed(t) => t,
            Val::Owned(t) => t,
        }
    }
}

impl CompiledModel {
    /// Binds `g`'s inputs to `shapes` (one per input, in order), lowers it and JIT-compiles its
    /// kernels.
    pub fn compile(
        g: &Graph,
        shapes: &[Vec<usize>],
        opts: &CompileOptions,
    ) -> Result<CompiledModel, JitError> {
        let t0 = Instant::now();
        let graph = lower::bind_shapes(g, shapes)?;
        let mut module = CodeModule::new()?;
        let mut plan = lower::lower(&graph, &mut module, &opts.lower)?;
        module.finalize()?;
        for st in &mut plan.steps {
            st.action.link(&module)?;
        }
        let threads = match opts.threads {
            Some(0) => {
                return Err(JitError::Codegen("threads must be at least 1".into()));
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| JitError::Codegen(format!("thread pool: {e}")))?;
        Ok(CompiledModel {
            graph,
            rt: Runtime {
                plan,
                buffers: Mutex::new(BufferPool::default()),
            },
            pool,
            compile_ms: t0.elapsed().as_secs_f64() * 1e3,
            _module: OwnedCode(module),
        })
    }

    /// The graph with its input shapes bound (what `lpc compile` writes).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The lowered plan.
    pub fn plan(&self) -> &Plan {
        &self.rt.plan
    }

    /// Milliseconds spent compiling (binding, lowering, code generation).
    pub fn compile_ms(&self) -> f64 {
        self.compile_ms
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs the model on `inputs` (one per graph input, in order, with the compiled shapes)
    /// and returns the graph outputs in order.
    pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, JitError> {
        let rt = &self.rt;
        if self.pool.current_num_threads() == 1 {
            // On the caller's thread, lpc-ref fallbacks included (see `crate::par`).
            return crate::runtime::par::serial(|| rt.run(inputs, None));
        }
        self.pool.install(|| rt.run(inputs, None))
    }

    /// Like [`CompiledModel::run`], and adds each step's wall time to `times` (one entry per
    /// step of [`CompiledModel::plan`], resized to fit), for `lpc bench --profile`.
    pub fn run_profiled(
        &self,
        inputs: &[Tensor],
        times: &mut Vec<std::time::Duration>,
    ) -> Result<Vec<Tensor>, JitError> {
        let rt = &self.rt;
        times.resize(rt.plan.steps.len(), std::time::Duration::ZERO);
        if self.pool.current_num_threads() == 1 {
            return crate::runtime::par::serial(|| rt.run(inputs, Some(times)));
        }
        self.pool.install(|| rt.run(inputs, Some(times)))
    }

    /// The nodes whose output shapes depend on the data (NonZero, TopK with a computed k, a
    /// Loop's stacked outputs, and what follows them): the compile cannot bind them, so they run
    /// through lpc-ref and their values are allocated when computed, outside the memory plan.
    pub fn data_dependent(&self) -> Vec<&str> {
        let p = &self.rt.plan;
        p.steps
            .iter()
            .filter(|st| st.outputs.iter().any(|&o| p.slots[o].shape.is_none()))
            .map(|st| st.node.as_str())
            .collect()
    }

    /// A per-step listing: kernel kind, node, and output shape; then the memory plan.
    pub fn stats(&self) -> String {
        use std::fmt::Write;
        let p = &self.rt.plan;
        let mut s = String::new();
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for (k, st) in p.steps.iter().enumerate() {
            let kind = st.kind();
            let shape = st
                .outputs
                .first()
                .and_then(|&o| p.slots[o].shape.as_ref())
                .map_or("?".into(), |sh| format!("{sh:?}"));
            let _ = writeln!(s, "{k:4}  {kind:<28} {:<32} -> {shape}", st.node);
            let class = kind.split(':').next().unwrap_or("").to_string();
            *counts.entry(class).or_default() += 1;
        }
        let m = p.memory();
        let kinds: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let _ = writeln!(s, "steps: {} ({})", p.steps.len(), kinds.join(", "));
        let _ = writeln!(
            s,
            "memory: {:.1} KiB of intermediate values, {:.1} KiB live at most (buffers freed after last use and reused)",
            m.total_bytes as f64 / 1024.0,
            m.peak_bytes as f64 / 1024.0
        );
        let _ = writeln!(
            s,
            "compile: {:.2} ms, {} thread(s)",
            self.compile_ms,
            self.threads()
        );
        s
    }
}

/// The tensor in a step's first input slot.
fn first_input<'v>(st: &lower::Step, vals: &'v [Option<Val>]) -> Result<&'v Tensor, JitError> {
    input(st, vals, 0)
}

/// The tensor in a step's input slot `k`, if the slot is connected and holds a value.
fn opt_input<'v>(st: &lower::Step, vals: &'v [Option<Val>], k: usize) -> Option<&'v Tensor> {
    st.inputs
        .get(k)
        .copied()
        .flatten()
        .and_then(|s| vals[s].as_ref())
        .map(Val::get)
}

/// The tensor in a step's input slot `k`.
fn input<'v>(st: &lower::Step, vals: &'v [Option<Val>], k: usize) -> Result<&'v Tensor, JitError> {
    opt_input(st, vals, k).ok_or_else(|| JitError::Lower {
        node: st.node.clone(),
        why: format!("data input {k} not available"),
    })
}

/// Names the node in a kernel's error.
fn in_node(st: &lower::Step, e: JitError) -> JitError {
    match e {
        JitError::Lower { .. } => e,
        other => JitError::Lower {
            node: st.node.clone(),
            why: other.to_string(),
        },
    }
}

impl Runtime {
    fn check_inputs(&self, inputs: &[Tensor]) -> Result<(), JitError> {
        let p = &self.plan;
        if inputs.len() != p.inputs.len() {
            return Err(JitError::Input {
                name: "(inputs)".into(),
                why: format!(
                    "model has {} inputs, {} given",
                    p.inputs.len(),
                    inputs.len()
                ),
            });
        }
        for ((_, name, dtype, shape), t) in p.inputs.iter().zip(inputs) {
            if let Some(d) = dtype {
                if *d != t.dtype() {
                    return Err(JitError::Input {
                        name: name.clone(),
                        why: format!("expected dtype {d}, got {}", t.dtype()),
                    });
                }
            }
            if t.shape() != shape.as_slice() {
                return Err(JitError::Input {
                    name: name.clone(),
                    why: format!(
                        "the model was compiled for shape {shape:?}, got {:?} (compile again for this shape)",
                        t.shape()
                    ),
                });
            }
        }
        Ok(())
    }

    fn run(
        &self,
        inputs: &[Tensor],
        mut times: Option<&mut Vec<std::time::Duration>>,
    ) -> Result<Vec<Tensor>, JitError> {
        self.check_inputs(inputs)?;
        let p = &self.plan;
        let mut vals: Vec<Option<Val>> = Vec::with_capacity(p.slots.len());
        for s in &p.slots {
            vals.push(match &s.source {
                SlotSource::Input(k) => Some(Val::Borrowed(&inputs[*k])),
                SlotSource::Const(t) => Some(Val::Borrowed(t.as_ref())),
                SlotSource::Step => None,
            });
        }
        // One run at a time uses the shared pool; a concurrent run gets a private one.
        let mut shared = self.buffers.try_lock().ok();
        let mut private = BufferPool::default();
        let pool: &mut BufferPool = match shared.as_deref_mut() {
            Some(b) => b,
            None => &mut private,
        };
        for (k, st) in p.steps.iter().enumerate() {
            let started = times.as_ref().map(|_| std::time::Instant::now());
            let outs = self.run_step(st, &mut vals, pool)?;
            self.store_outputs(st, outs, &mut vals)?;
            for &s in &st.frees {
                if let Some(Val::Owned(t)) = vals[s].take() {
                    pool.give(t);
                }
            }
            if let (Some(ts), Some(t0)) = (times.as_deref_mut(), started) {
                ts[k] += t0.elapsed();
            }
        }
        self.take_outputs(&mut vals)
    }

    /// The error for a step whose input slot `s` holds no value.
    fn missing(&self, st: &lower::Step, s: usize) -> JitError {
        JitError::Lower {
            node: st.node.clone(),
            why: format!("input {} is not available", self.plan.slots[s].name),
        }
    }

    /// Runs one step on the current values; returns its outputs.
    fn run_step(
        &self,
        st: &lower::Step,
        vals: &mut [Option<Val>],
        pool: &mut BufferPool,
    ) -> Result<Vec<Tensor>, JitError> {
        let outs: Vec<Tensor> = match &st.action {
            Action::Fallback { op, n_outputs } => self.fallback(st, vals, op, *n_outputs)?,
            Action::Gemm(k) if k.is_dynamic() => vec![k
                .run_dynamic(
                    first_input(st, vals)?,
                    opt_input(st, vals, 1),
                    opt_input(st, vals, 4),
                    pool,
                )
                .map_err(|e| in_node(st, e))?],
            Action::Gemm(k) => vec![k
                .run(first_input(st, vals)?, pool)
                .map_err(|e| in_node(st, e))?],
            Action::DwConv(k) => vec![k
                .run(first_input(st, vals)?, pool)
                .map_err(|e| in_node(st, e))?],
            Action::MaxPool(k) => vec![k
                .run(first_input(st, vals)?, pool)
                .map_err(|e| in_node(st, e))?],
            Action::Quantize(k) => vec![k
                .run(first_input(st, vals)?, pool)
                .map_err(|e| in_node(st, e))?],
            Action::Dequantize(k) => vec![k
                .run(first_input(st, vals)?, pool)
                .map_err(|e| in_node(st, e))?],
            Action::Requantize(k) => vec![k
                .run(first_input(st, vals)?, pool)
                .map_err(|e| in_node(st, e))?],
            Action::Lut(k) => vec![k
                .run(first_input(st, vals)?, pool)
                .map_err(|e| in_node(st, e))?],
            Action::MaxPoolF32(k) => vec![k
                .run(first_input(st, vals)?, pool)
                .map_err(|e| in_node(st, e))?],
            Action::GlobalAvgPool(k) => vec![k
                .run(first_input(st, vals)?, pool)
                .map_err(|e| in_node(st, e))?],
            Action::Gemv(k) => vec![k
                .run(first_input(st, vals)?, pool)
                .map_err(|e| in_node(st, e))?],
            Action::FloatChain(k) => {
                let ins: Vec<&Tensor> = (0..st.inputs.len())
                    .map(|j| input(st, vals, j))
                    .collect::<Result<_, _>>()?;
                vec![k.run(&ins, pool).map_err(|e| in_node(st, e))?]
            }
            Action::QAdd(k) => {
                let b = input(st, vals, 3)?;
                vec![k
                    .run(first_input(st, vals)?, b, pool)
                    .map_err(|e| in_node(st, e))?]
            }
            Action::View { shape } => vec![self.view(st, vals, shape)?],
        };
        Ok(outs)
    }

    /// A step the reference interpreter evaluates.
    fn fallback(
        &self,
        st: &lower::Step,
        vals: &[Option<Val>],
        op: &lpc_ir::Op,
        n_outputs: usize,
    ) -> Result<Vec<Tensor>, JitError> {
        let missing = |s: usize| self.missing(st, s);
        let ins: Vec<Option<&Tensor>> = st
            .inputs
            .iter()
            .map(|s| match s {
                None => Ok(None),
                Some(s) => vals[*s].as_ref().map(|v| Some(v.get())).ok_or(missing(*s)),
            })
            .collect::<Result<_, _>>()?;
        lpc_ref::eval(op, &ins, n_outputs).map_err(|source| JitError::Eval {
            node: st.node.clone(),
            source,
        })
    }

    /// A reshape: moves the data input's tensor when this step frees it, else copies it.
    fn view(
        &self,
        st: &lower::Step,
        vals: &mut [Option<Val>],
        shape: &[usize],
    ) -> Result<Tensor, JitError> {
        let missing = |s: usize| self.missing(st, s);
        let s = st
            .inputs
            .first()
            .copied()
            .flatten()
            .ok_or_else(|| JitError::Lower {
                node: st.node.clone(),
                why: "no data input".into(),
            })?;
        let t = if st.frees.contains(&s) {
            match vals[s].take() {
                Some(Val::Owned(t)) => t,
                Some(Val::Borrowed(t)) => t.clone(),
                None => return Err(missing(s)),
            }
        } else {
            vals[s].as_ref().ok_or(missing(s))?.get().clone()
        };
        t.reshape(shape).map_err(|e| JitError::Lower {
            node: st.node.clone(),
            why: e.to_string(),
        })
    }

    /// Checks a step's outputs against the plan and stores them in their slots.
    fn store_outputs<'a>(
        &self,
        st: &lower::Step,
        outs: Vec<Tensor>,
        vals: &mut [Option<Val<'a>>],
    ) -> Result<(), JitError> {
        let p = &self.plan;
        if outs.len() < st.outputs.len() {
            return Err(JitError::Lower {
                node: st.node.clone(),
                why: format!(
                    "produced {} outputs, the node declares {}",
                    outs.len(),
                    st.outputs.len()
                ),
            });
        }
        for (t, &s) in outs.into_iter().zip(&st.outputs) {
            if let Some(shape) = &p.slots[s].shape {
                if t.shape() != shape.as_slice() {
                    return Err(JitError::Lower {
                        node: st.node.clone(),
                        why: format!(
                            "computed shape {:?} for {}, the compiled plan expects {shape:?}",
                            t.shape(),
                            p.slots[s].name
                        ),
                    });
                }
            }
            vals[s] = Some(Val::Owned(t));
        }
        Ok(())
    }

    /// Takes the graph outputs from their slots (cloning one listed again later).
    fn take_outputs(&self, vals: &mut [Option<Val>]) -> Result<Vec<Tensor>, JitError> {
        let p = &self.plan;
        let mut result = Vec::with_capacity(p.outputs.len());
        for (k, &s) in p.outputs.iter().enumerate() {
            let missing = || JitError::Lower {
                node: "(graph)".into(),
                why: format!("output {} was not computed", p.slots[s].name),
            };
            let t = if p.outputs[k + 1..].contains(&s) {
                vals[s].as_ref().ok_or_else(missing)?.get().clone()
            } else {
                match vals[s].take().ok_or_else(missing)? {
                    Val::Owned(t) => t,
                    Val::Borrowed(t) => t.clone(),
                }
            };
            result.push(t);
        }
        Ok(result)
    }
}
