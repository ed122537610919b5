//! `lpc compile`: JIT-compile a model for fixed input shapes, write the reloadable artefact
//! and/or print the plan.

use crate::inputs::{parse_dims, InputShapes};
use crate::jit::{check_plan_memory, jit_options, Isa};
use crate::outputs::{Files, Format};
use crate::runtime::{prepare, FoldArg};
use anyhow::{Context, Result};
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
    #[arg(long, value_parser = crate::threads::threads_arg())]
    pub threads: Option<usize>,
    /// JIT GEMM code tier (an error when the host lacks it).
    #[arg(long, value_enum, default_value_t = Isa::Auto)]
    pub isa: Isa,
    /// `--no-fold`.
    #[command(flatten)]
    pub fold: FoldArg,
}

/// `lpc compile`: JIT-compiles, writes the artefact, prints the plan.
pub fn run(a: &CompileArgs) -> Result<()> {
    let model = &a.model;
    let output = a.output.as_deref();
    if let Some(out) = output {
        Format::of("-o", out, &[Format::Lir])?;
        Files::default().model("MODEL", model).output("-o", out)?;
    }
    let p = prepare(lpc_load::load_model(model)?, a.fold, model)?;
    let g = p.graph;
    let bound = InputShapes::of(&g, &parse_dims(&a.dims)?, &[])?;
    if let Some(n) = bound.note() {
        eprintln!("note: {n}");
    }
    let shapes = &bound.shapes;
    let m = lpc_jit::CompiledModel::compile(&g, shapes, &jit_options(a.threads, a.isa))
        .context(bound.context(model))?;
    check_plan_memory(&m)?;
    let dynamic = m.data_dependent();
    if !dynamic.is_empty() {
        eprintln!(
            "note: {} step(s) have output shapes that depend on the input data ({}): the plan cannot bind them; they run through lpc-ref and are allocated at run time",
            dynamic.len(),
            dynamic.iter().take(3).copied().collect::<Vec<_>>().join(", ")
                + if dynamic.len() > 3 { ", ..." } else { "" }
        );
    }
    if let Some(out) = output {
        // The plan goes first as comments: the file stays a plain .lir that any verb loads.
        let mut text = format!(
            "# lpc compile {}: JIT plan for input shapes {shapes:?}; reload with `lpc run {} --backend jit`\n",
            model.display(),
            out.display()
        );
        for line in m.stats().lines() {
            text += &format!("#   {line}\n");
        }
        let (body, weights) = lpc_ir::text::print_with_weights(m.graph());
        text += &body;
        lpc_ir::text::write_lir_parts(out, &text, &weights)?;
    }
    if a.stats || output.is_none() {
        if let Some(s) = &p.fold_stats {
            println!(
                "folded to integer ops (the built-in pipeline of `lpc fold`; --no-fold skips it):"
            );
            for line in s.lines() {
                println!("  {line}");
            }
        }
        print!("{}", m.stats());
    }
    Ok(())
}
