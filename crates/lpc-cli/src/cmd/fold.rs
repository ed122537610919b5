//! `lpc fold`: fold FakeQuantize/QDQ into integer ops with the e-graph rules (passes/).

use crate::outputs::{write_model, Files, Format};
use anyhow::{Context, Result};
use std::path::PathBuf;

/// Arguments of `lpc fold`.
#[derive(clap::Args)]
pub struct FoldArgs {
    /// Model file (.onnx, .xml or .lir) holding FakeQuantize or Q/DQ.
    pub model: PathBuf,
    /// Rule files or folders to fold with, as one phase, instead of the built-in pipeline.
    /// Their rules are checked on this model's matches before they are trusted.
    #[arg(long = "rules")]
    pub rules: Vec<PathBuf>,
    /// A pipeline file replacing the built-in passes/pipeline.toml.
    #[arg(long)]
    pub pipeline: Option<PathBuf>,
    /// Stop after this phase (the help lists the built-in phases of passes/pipeline.toml).
    #[arg(long, help = stop_after_help())]
    pub stop_after: Option<String>,
    /// Apply --rules / --pipeline rules without checking them first (the built-in rules are
    /// checked by lpc's tests and never at fold time).
    #[arg(long)]
    pub trust_rules: bool,
    /// Print e-graph statistics per phase and the ops left in float, with reasons.
    #[arg(long)]
    pub stats: bool,
    /// Output .lir path (.lir only: the fused integer ops have no ONNX form).
    #[arg(short, long)]
    pub output: PathBuf,
}

/// The `--stop-after` help: the phase names of the built-in pipeline.
fn stop_after_help() -> String {
    let names = lpc_fold::Pipeline::builtin()
        .map(|p| p.phase_names().join(", "))
        .unwrap_or_default();
    format!("Stop after this phase of the pipeline (built-in: {names})")
}

/// Runs `lpc fold`: writes the folded graph, prints the statistics with `--stats`.
pub fn run(a: &FoldArgs) -> Result<()> {
    let format = Format::of("-o", &a.output, &[Format::Lir])?;
    let mut files = Files::default();
    files.model("MODEL", &a.model);
    for r in &a.rules {
        files.input_file("--rules", r);
    }
    if let Some(p) = &a.pipeline {
        files.input_file("--pipeline", p);
    }
    files.output("-o", &a.output)?;
    let g = lpc_load::load_model(&a.model)?;
    let user_rules = !a.rules.is_empty() || a.pipeline.is_some();
    let opts = lpc_fold::FoldOptions {
        stop_after: a.stop_after.clone(),
        check_rules: user_rules && !a.trust_rules,
    };
    let p = lpc_fold::Pipeline::from_args(&a.rules, a.pipeline.as_deref())?;
    let r = lpc_fold::fold(&g, &p, &opts).with_context(|| a.model.display().to_string())?;
    if !r.unexercised.is_empty() {
        println!(
            "note: {} rule(s) matched nothing in {} (not checked, not applied): {}",
            r.unexercised.len(),
            a.model.display(),
            r.unexercised.join(", ")
        );
    }
    write_model(&r.graph, &a.output, format)?;
    if a.stats {
        print!("{}", lpc_fold::stats_text(&r));
    }
    Ok(())
}
