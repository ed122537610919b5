//! `lpc explain`: what the fold did to one node: which rules fired, or why it stayed float.

use anyhow::{Context, Result};
use std::path::PathBuf;

/// Arguments of `lpc explain`. The rule and pipeline flags are those of `lpc fold`, but their
/// help texts are shorter here, so they are not a shared flattened struct.
#[derive(clap::Args)]
pub struct ExplainArgs {
    /// Model file.
    pub model: PathBuf,
    /// Node name.
    #[arg(long)]
    pub node: String,
    /// Extra rule files or folders.
    #[arg(long = "rules")]
    pub rules: Vec<PathBuf>,
    /// A pipeline file replacing the built-in one.
    #[arg(long)]
    pub pipeline: Option<PathBuf>,
}

/// Runs `lpc explain`.
pub fn run(a: &ExplainArgs) -> Result<()> {
    let g = lpc_load::load_model(&a.model)?;
    print!(
        "{}",
        lpc_fold::explain(&g, &a.rules, a.pipeline.as_deref(), &a.node)
            .with_context(|| a.model.display().to_string())?
    );
    Ok(())
}
