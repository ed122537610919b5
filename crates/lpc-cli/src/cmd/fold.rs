//! `lpc fold`: fold FakeQuantize/QDQ into integer ops with the e-graph rules (passes/).

use crate::outputs::{write_model, Files, Format};
use anyhow::{Context, Result};
use lpc_ir::Graph;
use std::path::{Path, PathBuf};

/// Arguments of `lpc fold`.
#[derive(clap::Args)]
pub struct FoldArgs {
    /// Model file (.onnx, .xml or .lir) holding FakeQuantize or Q/DQ.
    pub model: PathBuf,
    #[command(flatten)]
    /// The rules.
    pub rules: FoldRules,
    /// Print e-graph statistics per phase and the ops left in float, with reasons.
    #[arg(long)]
    pub stats: bool,
    /// Output .lir path (.lir only: the fused integer ops have no ONNX form).
    #[arg(short, long)]
    pub output: PathBuf,
}

/// The rules `lpc fold` folds with: the built-in pipeline unless `--rules` or `--pipeline`.
#[derive(clap::Args, Clone, Debug)]
pub struct FoldRules {
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
}

/// The `--stop-after` help: the phase names of the built-in pipeline.
fn stop_after_help() -> String {
    let names = lpc_fold::Pipeline::builtin()
        .map(|p| p.phase_names().join(", "))
        .unwrap_or_default();
    format!("Stop after this phase of the pipeline (built-in: {names})")
}

/// `lpc fold` without its files: folds `g` (read from `model`, named in errors) with `r`.
pub fn fold_model(r: &FoldRules, g: &Graph, model: &Path) -> Result<lpc_fold::FoldResult> {
    let user_rules = !r.rules.is_empty() || r.pipeline.is_some();
    let opts = lpc_fold::FoldOptions {
        stop_after: r.stop_after.clone(),
        check_rules: user_rules && !r.trust_rules,
    };
    let p = lpc_fold::Pipeline::from_args(&r.rules, r.pipeline.as_deref())?;
    lpc_fold::fold(g, &p, &opts).with_context(|| model.display().to_string())
}

/// Runs `lpc fold`: writes the folded graph, prints the statistics with `--stats`.
pub fn run(a: &FoldArgs) -> Result<()> {
    let format = Format::of("-o", &a.output, &[Format::Lir])?;
    let mut files = Files::default();
    files.model("MODEL", &a.model);
    for r in &a.rules.rules {
        files.input_file("--rules", r);
    }
    if let Some(p) = &a.rules.pipeline {
        files.input_file("--pipeline", p);
    }
    files.output("-o", &a.output)?;
    let g = lpc_load::load_model(&a.model)?;
    let r = fold_model(&a.rules, &g, &a.model)?;
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
