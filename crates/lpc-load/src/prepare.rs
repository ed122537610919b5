//! `prepare`: infer types, fold constant (shape) subgraphs and verify an imported graph.

use lpc_ir::Graph;

/// Why an imported graph could not be prepared; the message is the source error's own.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// Type inference failed.
    #[error(transparent)]
    Infer(#[from] lpc_ir::InferError),
    /// Constant folding failed (running a constant subgraph with the reference interpreter).
    #[error(transparent)]
    Fold(#[from] lpc_ref::RunError),
    /// The graph does not verify.
    #[error(transparent)]
    Verify(#[from] lpc_ir::VerifyError),
}

/// Infers types, folds constants (repeatedly: folding exposes more static shapes; quantization
/// ops are kept) and verifies the graph.
pub fn prepare(g: &mut Graph) -> Result<(), PrepareError> {
    lpc_ir::infer_types(g)?;
    for _ in 0..4 {
        let s = lpc_ref::fold_constants(g)?;
        lpc_ir::infer_types(g)?;
        if s.folded == 0 {
            break;
        }
    }
    lpc_ir::verify(g)?;
    Ok(())
}
