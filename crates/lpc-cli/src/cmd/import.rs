//! `lpc import`: import a model and write it as .lir (+ .lir.weights for large constants).

use anyhow::{Context, Result};
use std::path::PathBuf;

/// Arguments of `lpc import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// Model file (.onnx or .lir).
    pub model: PathBuf,
    /// Output .lir path.
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Runs `lpc import`.
pub fn run(a: &ImportArgs) -> Result<()> {
    let g = lpc_load::load_model(&a.model)?;
    lpc_ir::text::write_lir(&a.output, &g).with_context(|| a.output.display().to_string())?;
    Ok(())
}
