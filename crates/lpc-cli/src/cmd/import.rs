//! `lpc import`: import a model and write it as .lir (+ .lir.weights for large constants) or
//! ONNX.

use crate::outputs::{write_model, Files, Format};
use anyhow::Result;
use std::path::PathBuf;

/// Arguments of `lpc import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// Model file (.onnx, .xml or .lir).
    pub model: PathBuf,
    /// Output: .lir (lpc graph text) or .onnx.
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Runs `lpc import`.
pub fn run(a: &ImportArgs) -> Result<()> {
    let format = Format::of("-o", &a.output, &[Format::Lir, Format::Onnx])?;
    Files::default()
        .model("MODEL", &a.model)
        .output("-o", &a.output)?;
    let g = lpc_load::load_model(&a.model)?;
    write_model(&g, &a.output, format)
}
