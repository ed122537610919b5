//! The lpc driver: `lpc show | import | run | compile | bench | ...`.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use lpc_cli::npy;
use lpc_ir::{Graph, Tensor, TensorData};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// lpc: a low-precision model compiler.
#[derive(Parser)]
#[command(name = "lpc", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print a model as .lir text (or Graphviz dot).
    Show {
        /// Model file (.onnx or .lir).
        model: PathBuf,
        /// Print Graphviz dot instead of .lir.
        #[arg(long)]
        dot: bool,
    },
    /// Import a model and write it as .lir (+ .lir.weights for large constants).
    Import {
        /// Model file (.onnx or .lir).
        model: PathBuf,
        /// Output .lir path.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Run a model on inputs and write or summarise its outputs.
    Run {
        /// Model file (.onnx or .lir).
        model: PathBuf,
        /// Input as NAME=PATH (.npy or TensorProto .pb); just PATH for a single-input model.
        #[arg(long = "input", short = 'i')]
        inputs: Vec<String>,
        /// Write each output to DIR/<name>.npy.
        #[arg(long)]
        output_dir: Option<PathBuf>,
        /// Execution backend.
        #[arg(long, value_enum, default_value_t = Backend::Ref)]
        backend: Backend,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Collect calibration statistics and print (or write) the chosen ranges as JSON.
    Calibrate(lpc_quant::cli::CalibrateArgs),
    /// Post-training quantization: write QDQ ONNX (.onnx) or the FakeQuantize graph (.lir).
    Quantize(lpc_quant::cli::QuantizeArgs),
    /// Accuracy of a model on data: top-1/agreement with labels, else SQNR and cosine vs a reference.
    Accuracy(lpc_quant::cli::AccuracyArgs),
    /// Fold FakeQuantize/QDQ into integer ops with the e-graph rules (passes/), write .lir.
    Fold {
        /// Model file (.onnx, .xml or .lir) holding FakeQuantize or Q/DQ.
        model: PathBuf,
        /// Extra rule files or folders (added to the built-in rules of their phase).
        #[arg(long = "rules")]
        rules: Vec<PathBuf>,
        /// A pipeline file replacing the built-in passes/pipeline.toml.
        #[arg(long)]
        pipeline: Option<PathBuf>,
        // The help lists the built-in phases (passes/pipeline.toml); `fold` checks the name.
        #[arg(long, help = stop_after_help())]
        stop_after: Option<String>,
        /// Print e-graph statistics per phase and the ops left in float, with reasons.
        #[arg(long)]
        stats: bool,
        /// Output .lir path.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Explain what the fold did to one node: which rules fired, or why it stayed float.
    Explain {
        /// Model file.
        model: PathBuf,
        /// Node name.
        #[arg(long)]
        node: String,
        /// Extra rule files or folders.
        #[arg(long = "rules")]
        rules: Vec<PathBuf>,
        /// A pipeline file replacing the built-in one.
        #[arg(long)]
        pipeline: Option<PathBuf>,
    },
    /// Rule-file tools.
    Rules {
        #[command(subcommand)]
        cmd: RulesCmd,
    },
    /// Measure a model's latency: median of warm runs on given (or zero/seeded random) inputs.
    Bench {
        /// Model file (.onnx or .lir).
        model: PathBuf,
        /// Input as NAME=PATH; inputs not given are seeded uniform random in [-1, 1] (symbolic dims = 1).
        #[arg(long = "input", short = 'i')]
        inputs: Vec<String>,
        /// Execution backend.
        #[arg(long, value_enum, default_value_t = Backend::Ref)]
        backend: Backend,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Timed runs after one warm-up run.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Also print the time spent per op kind (ref) or per kernel kind and slowest steps (jit).
        #[arg(long)]
        profile: bool,
        /// Bind a symbolic dimension of the random inputs, e.g. `--dim N=64` (default 1).
        #[arg(long = "dim", value_name = "SYM=SIZE")]
        dims: Vec<String>,
        /// JIT GEMM code tier (an error when the host lacks it).
        #[arg(long, value_enum, default_value_t = Isa::Auto)]
        isa: Isa,
    },
    /// JIT-compile a model for fixed input shapes: write the reloadable artefact (the
    /// shape-bound graph as .lir with the plan as a header) and/or print the plan.
    Compile {
        /// Model file (.onnx, .xml or .lir).
        model: PathBuf,
        /// Output .lir path (reload with `lpc run OUT --backend jit`).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Bind a symbolic input dimension, e.g. `--dim N=8` (default 1).
        #[arg(long = "dim", value_name = "SYM=SIZE")]
        dims: Vec<String>,
        /// Print each step with its kernel kind, the memory plan and the compile time.
        #[arg(long)]
        stats: bool,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// JIT GEMM code tier (an error when the host lacks it).
        #[arg(long, value_enum, default_value_t = Isa::Auto)]
        isa: Isa,
    },
}

#[derive(Subcommand)]
enum RulesCmd {
    /// Check every rule by running both sides through lpc-ref on the matches in its cases.
    Check {
        /// Rule file or folder.
        file: PathBuf,
        /// Case file (default: the .lir beside the rule file).
        #[arg(long)]
        cases: Option<PathBuf>,
    },
}

/// The JIT's GEMM code tier.
#[derive(Clone, Copy, ValueEnum)]
enum Isa {
    /// The best the host has (zmm, then 128-bit VNNI, then exact i16).
    Auto,
    /// Hand-assembled AVX512-VNNI `vpdpbusd zmm`.
    Zmm,
    /// Cranelift's 128-bit `vpdpbusd xmm`.
    Vnni,
    /// Exact i16 products (any SSE4.1 host).
    I16,
}

impl Isa {
    fn dot(self) -> lpc_jit::Dot {
        use lpc_jit::Dot;
        match self {
            Isa::Auto => Dot::Auto,
            Isa::Zmm => Dot::Zmm,
            Isa::Vnni => Dot::Vnni,
            Isa::I16 => Dot::ExactI16,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    /// The reference interpreter (lpc-ref).
    Ref,
    /// Fused INT8 kernels JIT-compiled with Cranelift (lpc-jit); other ops run lpc-ref's code.
    Jit,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Ref => "ref",
            Backend::Jit => "jit",
        }
    }
}

/// Parses `--dim SYM=SIZE` bindings.
/// `--stop-after` help, with the phase names of the built-in pipeline.
fn stop_after_help() -> String {
    let names = lpc_fold::Pipeline::builtin()
        .map(|p| p.phase_names().join(", "))
        .unwrap_or_default();
    format!("Stop after this phase of the pipeline (built-in: {names})")
}

fn parse_dims(specs: &[String]) -> Result<std::collections::HashMap<String, usize>> {
    let mut m = std::collections::HashMap::new();
    for s in specs {
        let (k, v) = s
            .split_once('=')
            .with_context(|| format!("--dim '{s}': expected SYM=SIZE"))?;
        let n: usize = v
            .trim()
            .parse()
            .with_context(|| format!("--dim '{s}': size must be a positive integer"))?;
        if n == 0 {
            bail!("--dim '{s}': size must be at least 1");
        }
        m.insert(k.trim().to_string(), n);
    }
    Ok(m)
}

/// The concrete shape of every graph input: declared dims, symbolic ones from `dims` (else 1).
fn input_shapes(
    g: &Graph,
    dims: &std::collections::HashMap<String, usize>,
) -> Result<Vec<Vec<usize>>> {
    for k in dims.keys() {
        let used = g.inputs().iter().any(|&n| {
            g.node(n).outputs[0].ty.shape.as_ref().is_some_and(|s| {
                s.0.iter()
                    .any(|d| matches!(d, lpc_ir::Dim::Sym(x) if x == k))
            })
        });
        if !used {
            bail!("--dim {k}: no input of the model has a dimension named {k}");
        }
    }
    g.inputs()
        .iter()
        .map(|&n| {
            let out = &g.node(n).outputs[0];
            let shape = out.ty.shape.as_ref().ok_or_else(|| {
                anyhow::anyhow!("input '{}' has unknown rank; pass --input", out.name)
            })?;
            Ok(shape
                .0
                .iter()
                .map(|d| match d {
                    lpc_ir::Dim::Known(k) => *k,
                    lpc_ir::Dim::Sym(s) => dims.get(s).copied().unwrap_or(1),
                })
                .collect())
        })
        .collect()
}

/// JIT-compiles `g` for the shapes of `ins`.
fn jit_compile(
    g: &Graph,
    ins: &[Tensor],
    threads: Option<usize>,
    isa: Isa,
) -> Result<lpc_jit::CompiledModel> {
    let shapes: Vec<Vec<usize>> = ins.iter().map(|t| t.shape().to_vec()).collect();
    Ok(lpc_jit::CompiledModel::compile(
        g,
        &shapes,
        &jit_options(threads, isa),
    )?)
}

fn jit_options(threads: Option<usize>, isa: Isa) -> lpc_jit::CompileOptions {
    lpc_jit::CompileOptions {
        threads,
        lower: lpc_jit::LowerOptions {
            dot: isa.dot(),
            ..Default::default()
        },
    }
}

/// A file name for a value name: every character outside `[A-Za-z0-9._-]` becomes `_`.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn bind_inputs(g: &Graph, specs: &[String]) -> Result<Vec<Tensor>> {
    bind_inputs_or(g, specs, |g, n| {
        let name = &g.node(n).outputs[0].name;
        bail!("missing input '{name}' (pass --input {name}=PATH)")
    })
}

/// Binds `--input` specs to graph inputs; inputs not given come from `missing`.
fn bind_inputs_or(
    g: &Graph,
    specs: &[String],
    mut missing: impl FnMut(&Graph, lpc_ir::NodeId) -> Result<Tensor>,
) -> Result<Vec<Tensor>> {
    let names: Vec<String> = g
        .inputs()
        .iter()
        .map(|&n| g.node(n).outputs[0].name.clone())
        .collect();
    let mut bound: Vec<Option<Tensor>> = vec![None; names.len()];
    for spec in specs {
        let (name, path) = match spec.split_once('=') {
            Some((n, p)) if names.iter().any(|x| x == n) => (Some(n.to_string()), p.to_string()),
            _ => (None, spec.clone()),
        };
        let idx = match name {
            Some(n) => names.iter().position(|x| *x == n).expect("checked above"),
            None if names.len() == 1 => 0,
            None => bail!(
                "--input '{spec}': the model has {} inputs ({}); use NAME=PATH",
                names.len(),
                names.join(", ")
            ),
        };
        if bound[idx].is_some() {
            bail!("input '{}' given twice", names[idx]);
        }
        let t = npy::read_tensor(Path::new(&path))
            .with_context(|| format!("input '{}'", names[idx]))?;
        bound[idx] = Some(t);
    }
    bound
        .into_iter()
        .zip(g.inputs())
        .map(|(t, &n)| match t {
            Some(t) => Ok(t),
            None => missing(g, n),
        })
        .collect()
}

fn summary(name: &str, t: &Tensor) -> String {
    let mut s = format!("{name}: {}{:?}", t.dtype(), t.shape());
    if !t.is_empty() && !matches!(t.data(), TensorData::Bool(_)) {
        let v = t.to_f64_vec();
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        s += &format!("  min {min:.6} max {max:.6} mean {mean:.6}");
        let head: Vec<String> = v.iter().take(6).map(|x| format!("{x:.5}")).collect();
        s += &format!(
            "  [{}{}]",
            head.join(", "),
            if v.len() > 6 { ", ..." } else { "" }
        );
    }
    s
}

fn real_main(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Show { model, dot } => {
            let g = lpc_load::load_model(&model)?;
            if dot {
                print!("{}", lpc_ir::to_dot(&g));
            } else {
                print!("{}", lpc_ir::text::print(&g));
            }
        }
        Cmd::Import { model, output } => {
            let g = lpc_load::load_model(&model)?;
            lpc_ir::text::write_lir(&output, &g).with_context(|| output.display().to_string())?;
        }
        Cmd::Run {
            model,
            inputs,
            output_dir,
            backend,
            threads,
        } => {
            set_threads(threads)?;
            let g = lpc_load::load_model(&model)?;
            let ins = bind_inputs(&g, &inputs)?;
            let outs = match backend {
                Backend::Ref => {
                    lpc_ref::run(&g, &ins).with_context(|| model.display().to_string())?
                }
                Backend::Jit => jit_compile(&g, &ins, threads, Isa::Auto)
                    .and_then(|m| Ok(m.run(&ins)?))
                    .with_context(|| model.display().to_string())?,
            };
            if let Some(dir) = output_dir {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("{}: cannot create", dir.display()))?;
                for (v, t) in g.outputs().iter().zip(&outs) {
                    npy::write_npy(&dir.join(format!("{}.npy", file_stem(g.value_name(*v)))), t)?;
                }
            } else {
                for (v, t) in g.outputs().iter().zip(&outs) {
                    println!("{}", summary(g.value_name(*v), t));
                }
            }
        }
        Cmd::Calibrate(a) => print!("{}", lpc_quant::cli::calibrate_cmd(&a, progress_bar())?),
        Cmd::Quantize(a) => print!("{}", lpc_quant::cli::quantize_cmd(&a, progress_bar())?),
        Cmd::Accuracy(a) => print!("{}", lpc_quant::cli::accuracy_cmd(&a, progress_bar())?),
        Cmd::Fold {
            model,
            rules,
            pipeline,
            stop_after,
            stats,
            output,
        } => {
            let g = lpc_load::load_model(&model)?;
            let r = lpc_fold::fold_graph(&g, &rules, pipeline.as_deref(), stop_after.as_deref())
                .with_context(|| model.display().to_string())?;
            lpc_ir::text::write_lir(&output, &r.graph)
                .with_context(|| output.display().to_string())?;
            if stats {
                print!("{}", lpc_fold::stats_text(&r));
            }
        }
        Cmd::Explain {
            model,
            node,
            rules,
            pipeline,
        } => {
            let g = lpc_load::load_model(&model)?;
            print!(
                "{}",
                lpc_fold::explain(&g, &rules, pipeline.as_deref(), &node)
                    .with_context(|| model.display().to_string())?
            );
        }
        Cmd::Rules {
            cmd: RulesCmd::Check { file, cases },
        } => {
            let r = lpc_fold::rules_check(&file, cases.as_deref())?;
            print!("{}", r.text);
            if !r.ok {
                bail!("{}: some rules failed the check", file.display());
            }
        }
        Cmd::Compile {
            model,
            output,
            dims,
            stats,
            threads,
            isa,
        } => compile_cmd(&model, output.as_deref(), &dims, stats, threads, isa)?,
        Cmd::Bench {
            model,
            inputs,
            backend,
            threads,
            runs,
            json,
            profile,
            dims,
            isa,
        } => {
            set_threads(threads)?;
            let t0 = Instant::now();
            let g = lpc_load::load_model(&model)?;
            let load_ms = t0.elapsed().as_secs_f64() * 1e3;
            let ins = bench_inputs(&g, &inputs, &parse_dims(&dims)?)?;
            let compiled = match backend {
                Backend::Ref => None,
                Backend::Jit => Some(
                    jit_compile(&g, &ins, threads, isa)
                        .with_context(|| model.display().to_string())?,
                ),
            };
            let compile_ms = compiled.as_ref().map_or(0.0, |m| m.compile_ms());
            let run_once = || -> Result<()> {
                match &compiled {
                    None => lpc_ref::run(&g, &ins).with_context(|| model.display().to_string())?,
                    Some(m) => m.run(&ins).with_context(|| model.display().to_string())?,
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
                        let mut p = std::collections::HashMap::new();
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
                    "{{\"model\": {:?}, \"backend\": \"{bname}\", \"threads\": {threads}, \"input_shapes\": {shapes:?}, \"runs\": {}, \"median_ms\": {median:.4}, \"min_ms\": {:.4}, \"load_ms\": {load_ms:.3}, \"compile_ms\": {compile_ms:.3}}}",
                    model.display().to_string(),
                    times.len(),
                    times[0]
                );
            } else {
                println!(
                    "{}: backend {bname}, {threads} thread(s), inputs {shapes:?}, median {median:.3} ms, min {:.3} ms over {} runs (load {load_ms:.1} ms, compile {compile_ms:.1} ms)",
                    model.display(),
                    times[0],
                    times.len()
                );
            }
        }
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

/// `lpc compile`: JIT-compiles, writes the artefact, prints the plan.
fn compile_cmd(
    model: &Path,
    output: Option<&Path>,
    dims: &[String],
    stats: bool,
    threads: Option<usize>,
    isa: Isa,
) -> Result<()> {
    let g = lpc_load::load_model(model)?;
    let shapes = input_shapes(&g, &parse_dims(dims)?)?;
    let m = lpc_jit::CompiledModel::compile(&g, &shapes, &jit_options(threads, isa))
        .with_context(|| model.display().to_string())?;
    if let Some(out) = output {
        if out.extension().and_then(|e| e.to_str()) != Some("lir") {
            bail!("{}: the compiled artefact is a .lir file", out.display());
        }
        lpc_ir::text::write_lir(out, m.graph()).with_context(|| out.display().to_string())?;
        // The plan goes first as comments: the file stays a plain .lir that any verb loads.
        let body = std::fs::read_to_string(out).with_context(|| out.display().to_string())?;
        let mut head = format!(
            "# lpc compile {}: JIT plan for input shapes {shapes:?}; reload with `lpc run {} --backend jit`\n",
            model.display(),
            out.display()
        );
        for line in m.stats().lines() {
            head += &format!("#   {line}\n");
        }
        std::fs::write(out, head + &body).with_context(|| out.display().to_string())?;
    }
    if stats || output.is_none() {
        print!("{}", m.stats());
    }
    Ok(())
}

/// Progress bars only on a terminal; quiet when piped.
fn progress_bar() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// Sets the worker thread count (the rayon pool, which lpc-ref's GEMMs and loops use).
fn set_threads(threads: Option<usize>) -> Result<()> {
    let Some(n) = threads else { return Ok(()) };
    if n == 0 {
        bail!("--threads must be at least 1");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .context("thread pool")?;
    Ok(())
}

/// Inputs for `bench`: given files, else seeded uniform [-1, 1] data of the declared shape
/// (symbolic dims from `--dim`, else 1).
fn bench_inputs(
    g: &Graph,
    specs: &[String],
    syms: &std::collections::HashMap<String, usize>,
) -> Result<Vec<Tensor>> {
    let mut state = 0x9e3779b97f4a7c15u64;
    let shapes = input_shapes(g, syms)?;
    bind_inputs_or(g, specs, |g, n| {
        let out = &g.node(n).outputs[0];
        let k = g.inputs().iter().position(|&x| x == n).unwrap_or(0);
        let dims: Vec<usize> = shapes[k].clone();
        let count: usize = dims.iter().product();
        let vals: Vec<f32> = (0..count)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 23) as f32 * 2.0 - 1.0
            })
            .collect();
        Ok(Tensor::from_f32(&dims, vals)?.cast(out.ty.dtype.unwrap_or(lpc_ir::DType::F32)))
    })
}

/// Interpreting a model allocates and frees many large tensors; glibc returns each one to the
/// kernel and the next op page-faults it back in. Keeping them in the heap is ~20% faster on
/// small models.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    // lpc-ref parallelises GEMMs itself (over the rayon pool); matrixmultiply's own threads
    // measured slower than one thread here, so keep it single-threaded.
    std::env::set_var("MATMUL_NUM_THREADS", "1");
    let cli = Cli::parse(); // usage errors exit 2
    match real_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_stems() {
        assert_eq!(super::file_stem("gpu_0/softmax:0"), "gpu_0_softmax_0");
        assert_eq!(super::file_stem("a.b-c_9"), "a.b-c_9");
    }
}
