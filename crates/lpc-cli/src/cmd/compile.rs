//! `lpc compile`: JIT-compile a model for fixed input shapes, write the reloadable artefact
//! and/or print the plan.

use crate::inputs::{parse_dims, InputShapes};
use crate::jit::{jit_options, Isa};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// Arguments of `lpc compile`.
#[derive(clap::Args)]
pub struct CompileArgs {
    /// Model file (.onnx, .xml or .lir).
    pub model: PathBuf,
    /// Output .lir path (reload with `lpc run OUT --backend jit`).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Bind a symbolic input dimension, e.g. `--dim N=8` (default 1, with a note).
    #[arg(long = "dim", value_name = "SYM=SIZE")]
    pub dims: Vec<String>,
    /// Print each step with its kernel kind, the memory plan and the compile time.
    #[arg(long)]
    pub stats: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// JIT GEMM code tier (an error when the host lacks it).
    #[arg(long, value_enum, default_value_t = Isa::Auto)]
    pub isa: Isa,
}

/// `lpc compile`: JIT-compiles, writes the artefact, prints the plan.
pub fn run(a: &CompileArgs) -> Result<()> {
    let model = &a.model;
    let output = a.output.as_deref();
    let g = lpc_load::load_model(model)?;
    let bound = InputShapes::of(&g, &parse_dims(&a.dims)?, &[])?;
    if let Some(n) = bound.note() {
        eprintln!("note: {n}");
    }
    let shapes = &bound.shapes;
    let m = lpc_jit::CompiledModel::compile(&g, shapes, &jit_options(a.threads, a.isa))
        .context(bound.context(model))?;
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
    if a.stats || output.is_none() {
        print!("{}", m.stats());
    }
    Ok(())
}
