//! `lpc bench`: a model's latency, the median of warm runs on given (or seeded random) inputs.

use crate::inputs::{parse_dims, read_inputs, InputShapes};
use crate::jit::{jit_compile, Backend, Isa};
use crate::runtime::{prepare, FoldArg};
use crate::threads::set_threads;
use anyhow::{Context, Result};
use lpc_ir::{Graph, Tensor};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `lpc bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Model file (.onnx or .lir).
    pub model: PathBuf,
    /// Input as NAME=PATH; inputs not given are seeded uniform random in [-1, 1], their symbolic
    /// dims from the given inputs' data, else from --dim, else 1 (with a note).
    #[arg(long = "input", short = 'i')]
    pub inputs: Vec<String>,
    /// Execution backend.
    #[arg(long, value_enum, default_value_t = Backend::Ref)]
    pub backend: Backend,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = crate::threads::threads_arg())]
    pub threads: Option<usize>,
    /// Timed runs after one warm-up run (1 to 1000000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub runs: u32,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also print the time spent per op kind (ref) or per kernel kind and slowest steps (jit).
    #[arg(long)]
    pub profile: bool,
    /// Bind a symbolic dimension of the random inputs, e.g. `--dim N=64` (default 1, with a note).
    #[arg(long = "dim", value_name = "SYM=SIZE")]
    pub dims: Vec<String>,
    /// JIT GEMM code tier (an error when the host lacks it).
    #[arg(long, value_enum, default_value_t = Isa::Auto)]
    pub isa: Isa,
    /// `--no-fold`.
    #[command(flatten)]
    pub fold: FoldArg,
}

/// Runs `lpc bench`: one warm-up run, `--runs` timed runs, then one line (or JSON object).
pub fn run(a: &BenchArgs) -> Result<()> {
    let BenchArgs {
        model,
        inputs,
        backend,
        threads,
        runs,
        json,
        profile,
        dims,
        isa,
        fold,
    } = a;
    let (backend, threads, runs, isa, json, profile) =
        (*backend, *threads, *runs as usize, *isa, *json, *profile);
    set_threads(threads)?;
    let t0 = Instant::now();
    let p = prepare(lpc_load::load_model(model)?, *fold, model)?;
    let (g, folded) = (p.graph, p.fold_stats.is_some());
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let given = read_inputs(&g, inputs)?;
    let shapes = InputShapes::of(&g, &parse_dims(dims)?, &given)?;
    if let Some(n) = shapes.note() {
        eprintln!("note: {n}");
    }
    let ctx = shapes.context(model);
    let ins = bench_inputs(&g, given, &shapes.shapes)?;
    let compiled = match backend {
        Backend::Ref => None,
        Backend::Jit => Some(jit_compile(&g, &ins, threads, isa).context(ctx.clone())?),
    };
    let compile_ms = compiled.as_ref().map_or(0.0, |m| m.compile_ms());
    let run_once = || -> Result<()> {
        match &compiled {
            None => lpc_ref::run(&g, &ins).context(ctx.clone())?,
            Some(m) => m.run(&ins).context(ctx.clone())?,
        };
        Ok(())
    };
    run_once()?; // warm-up
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        run_once()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    if profile {
        let n = runs.max(1) as f64;
        match &compiled {
            None => {
                let mut p = HashMap::new();
                for _ in 0..runs.max(1) {
                    lpc_ref::run_profiled(&g, &ins, &mut p)?;
                }
                let mut rows: Vec<_> = p.into_iter().collect();
                rows.sort_by(|a, b| b.1.total_cmp(&a.1));
                for (op, secs) in rows {
                    eprintln!("{op:>24} {:9.3} ms/run", secs * 1e3 / n);
                }
            }
            Some(m) => {
                let mut times = Vec::new();
                for _ in 0..runs.max(1) {
                    m.run_profiled(&ins, &mut times)
                        .with_context(|| model.display().to_string())?;
                }
                print_jit_profile(m, &times, n);
            }
        }
    }
    let median = times[times.len() / 2];
    let threads = compiled
        .as_ref()
        .map_or_else(rayon::current_num_threads, |m| m.threads());
    let bname = backend.name();
    let shapes: Vec<Vec<usize>> = ins.iter().map(|t| t.shape().to_vec()).collect();
    if json {
        println!(
                "{{\"model\": {:?}, \"backend\": \"{bname}\", \"threads\": {threads}, \"input_shapes\": {shapes:?}, \"runs\": {}, \"median_ms\": {median:.4}, \"min_ms\": {:.4}, \"load_ms\": {load_ms:.3}, \"compile_ms\": {compile_ms:.3}, \"folded\": {folded}}}",
                model.display().to_string(),
                times.len(),
                times[0]
            );
    } else {
        println!(
                "{}: backend {bname}, {threads} thread(s), inputs {shapes:?}, median {median:.3} ms, min {:.3} ms over {} runs (load{} {load_ms:.1} ms, compile {compile_ms:.1} ms)",
                model.display(),
                times[0],
                times.len(),
                if folded { " + fold" } else { "" }
            );
    }
    Ok(())
}

/// `lpc bench --backend jit --profile`: time per kernel kind, then the ten slowest steps.
fn print_jit_profile(m: &lpc_jit::CompiledModel, times: &[std::time::Duration], runs: f64) {
    let steps = &m.plan().steps;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3 / runs;
    let mut by_kind: std::collections::BTreeMap<String, (usize, f64)> = Default::default();
    for (st, &t) in steps.iter().zip(times) {
        let e = by_kind.entry(st.kind()).or_default();
        e.0 += 1;
        e.1 += ms(t);
    }
    let total: f64 = by_kind.values().map(|v| v.1).sum();
    let mut rows: Vec<_> = by_kind.into_iter().collect();
    rows.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
    eprintln!(
        "{:>36} {:>6} {:>10} {:>6}",
        "kernel kind", "steps", "ms/run", "share"
    );
    for (kind, (count, t)) in rows {
        eprintln!(
            "{kind:>36} {count:6} {t:10.3} {:5.1}%",
            100.0 * t / total.max(1e-12)
        );
    }
    let mut idx: Vec<usize> = (0..steps.len().min(times.len())).collect();
    idx.sort_by(|&a, &b| times[b].cmp(&times[a]));
    eprintln!("slowest steps:");
    for &k in idx.iter().take(10) {
        eprintln!(
            "{k:6} {:>28} {:<32} {:9.3} ms/run",
            steps[k].kind(),
            steps[k].node,
            ms(times[k])
        );
    }
}

/// Inputs for `bench`: the given tensors, else seeded uniform [-1, 1] data of `shapes`
/// ([`InputShapes`]) in the input's dtype.
fn bench_inputs(
    g: &Graph,
    given: Vec<Option<Tensor>>,
    shapes: &[Vec<usize>],
) -> Result<Vec<Tensor>> {
    let mut state = 0x9e3779b97f4a7c15u64;
    given
        .into_iter()
        .zip(g.inputs().iter().zip(shapes))
        .map(|(t, (&n, dims))| {
            if let Some(t) = t {
                return Ok(t);
            }
            let count: usize = dims.iter().product();
            let vals: Vec<f32> = (0..count)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 40) as f32 / (1u64 << 23) as f32 * 2.0 - 1.0
                })
                .collect();
            let dtype = g.node(n).outputs[0].ty.dtype.unwrap_or(lpc_ir::DType::F32);
            Ok(Tensor::from_f32(dims, vals)?.cast(dtype))
        })
        .collect()
}
