//! Loading a model from any supported file into a checked, constant-folded, typed graph.

use anyhow::{bail, Context, Result};
use lpc_ir::Graph;
use std::path::Path;

/// Reads `.onnx`, OpenVINO IR `.xml` (+ `.bin`) or `.lir`, folds constant subgraphs, infers types and verifies the graph.
pub fn load(path: &Path) -> Result<Graph> {
    if !path.exists() {
        bail!("{}: no such file", path.display());
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let mut g = match ext {
        "onnx" => lpc_onnx::import_file(path).with_context(|| path.display().to_string())?,
        "lir" => lpc_ir::text::read_lir(path).with_context(|| path.display().to_string())?,
        "xml" => {
            lpc_onnx::openvino::import_openvino(path).with_context(|| path.display().to_string())?
        }
        _ => bail!(
            "{}: unknown model type (expected .onnx, .xml (OpenVINO IR) or .lir)",
            path.display()
        ),
    };
    prepare(&mut g).with_context(|| path.display().to_string())?;
    Ok(g)
}

/// Infers types, folds constants (twice: folding exposes more static shapes) and verifies.
pub fn prepare(g: &mut Graph) -> Result<()> {
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
