//! The lpc driver: `lpc show | import | run | compile | bench | ...`.

use clap::{Parser, Subcommand};
use lpc_cli::cmd::{
    accuracy, bench, calibrate, compile, explain, fold, import, quantize, rules, run, show,
};
use lpc_cli::threads::progress_bar;
use std::process::ExitCode;

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
    Show(show::ShowArgs),
    /// Import a model and write it as .lir (+ .lir.weights for large constants) or ONNX.
    Import(import::ImportArgs),
    /// Run a model on inputs and write or summarise its outputs.
    Run(run::RunArgs),
    /// Collect calibration statistics and print (or write) the chosen ranges as JSON.
    Calibrate(calibrate::CalibrateArgs),
    /// Post-training quantization: write QDQ ONNX (.onnx) or the FakeQuantize graph (.lir).
    Quantize(quantize::QuantizeArgs),
    /// Accuracy of a model on data: top-1/agreement with labels, else SQNR and cosine vs a reference.
    Accuracy(accuracy::AccuracyArgs),
    /// Fold FakeQuantize/QDQ into integer ops with the e-graph rules (passes/), write .lir.
    Fold(fold::FoldArgs),
    /// Explain what the fold did to one node: which rules fired, or why it stayed float.
    Explain(explain::ExplainArgs),
    /// Rule-file tools.
    Rules(rules::RulesArgs),
    /// Measure a model's latency: median of warm runs on given (or zero/seeded random) inputs.
    Bench(bench::BenchArgs),
    /// JIT-compile a model for fixed input shapes: write the reloadable artefact (the
    /// shape-bound graph as .lir with the plan as a header) and/or print the plan.
    Compile(compile::CompileArgs),
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Show(a) => show::run(&a),
        Cmd::Import(a) => import::run(&a),
        Cmd::Run(a) => run::run(&a),
        Cmd::Calibrate(a) => calibrate::run(&a, progress_bar()).map(|s| print!("{s}")),
        Cmd::Quantize(a) => quantize::run(&a, progress_bar()).map(|s| print!("{s}")),
        Cmd::Accuracy(a) => accuracy::run(&a, progress_bar()).map(|s| print!("{s}")),
        Cmd::Fold(a) => fold::run(&a),
        Cmd::Explain(a) => explain::run(&a),
        Cmd::Rules(a) => rules::run(&a),
        Cmd::Bench(a) => bench::run(&a),
        Cmd::Compile(a) => compile::run(&a),
    }
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
