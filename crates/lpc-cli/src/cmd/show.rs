//! `lpc show`: print a model as .lir text (or Graphviz dot).

use anyhow::Result;
use std::path::PathBuf;

/// Arguments of `lpc show`.
#[derive(clap::Args)]
pub struct ShowArgs {
    /// Model file (.onnx or .lir).
    pub model: PathBuf,
    /// Print Graphviz dot instead of .lir.
    #[arg(long)]
    pub dot: bool,
}

/// Runs `lpc show`.
pub fn run(a: &ShowArgs) -> Result<()> {
    let g = lpc_load::load_model(&a.model)?;
    if a.dot {
        print!("{}", lpc_ir::to_dot(&g));
    } else {
        print!("{}", lpc_ir::text::print(&g));
    }
    Ok(())
}
