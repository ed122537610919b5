//! What `run`, `bench` and `compile` execute. A model that holds FakeQuantize or Q/DQ is
//! folded to integer ops first, with the same built-in pipeline as `lpc fold`: the low-precision
//! runtime runs a quantized model as INT8, not as float ops between quantize and dequantize.
//! `--no-fold` runs the graph as given.

use anyhow::{Context, Result};
use lpc_ir::Graph;
use std::path::Path;

/// The `--no-fold` flag of `run`, `bench` and `compile`.
#[derive(clap::Args, Clone, Copy, Default)]
pub struct FoldArg {
    /// Run a model with FakeQuantize or Q/DQ as given (float ops around the quantizers)
    /// instead of folding it to integer ops first (as `lpc fold` does).
    #[arg(long)]
    pub no_fold: bool,
}

/// What was done to the model before it ran.
pub struct Prepared {
    /// The graph to run.
    pub graph: Graph,
    /// The fold's statistics (`lpc fold --stats` text) when the model was folded.
    pub fold_stats: Option<String>,
}

/// The graph to run for `model`: folded when it holds quantizers and `--no-fold` is not set.
pub fn prepare(g: Graph, arg: FoldArg, model: &Path) -> Result<Prepared> {
    if arg.no_fold || !lpc_fold::has_quantizers(&g) {
        return Ok(Prepared {
            graph: g,
            fold_stats: None,
        });
    }
    let r = lpc_fold::fold_graph(&g, &[], None, None).with_context(|| {
        format!(
            "{}: folding the quantized model to integer ops (--no-fold runs it as given)",
            model.display()
        )
    })?;
    Ok(Prepared {
        fold_stats: Some(lpc_fold::stats_text(&r)),
        graph: r.graph,
    })
}
