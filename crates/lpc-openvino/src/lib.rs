//! OpenVINO IR (v10/v11 `model.xml` + `model.bin`) import straight into an `lpc_ir::Graph`.
//!
//! The reader parses the XML with `roxmltree`, checks every layer, port and edge (ids, port
//! precisions and shapes on both ends of each edge, constant offsets and sizes against the
//! `.bin` length), converts the layers in dependency order with [`ops`], and finally rewrites
//! OpenVINO's "compressed weights" (integer `Const` → `Convert` → `Subtract` → `Multiply`) into
//! `DequantizeLinear` of an integer constant (see `docs/openvino-ir.md`).

#![deny(missing_docs)]

mod builder;
mod error;
mod net;
mod ops;
mod weights;

pub use error::OpenVinoError;

use builder::Builder;
use lpc_ir::Graph;
use net::parse_net;
use std::path::Path;

/// The weights file of an IR: the `.bin` with the same stem beside the `.xml`.
pub fn bin_path(xml: &Path) -> std::path::PathBuf {
    xml.with_extension("bin")
}

/// Imports an OpenVINO IR model: `xml` and the `.bin` with the same stem beside it.
///
/// A model without `Const` layers needs no `.bin`; a missing `.bin` is an error only when a
/// constant needs it.
pub fn import_openvino(xml: &Path) -> Result<Graph, OpenVinoError> {
    let io = |p: &Path, e: std::io::Error| OpenVinoError::Io {
        path: p.display().to_string(),
        msg: e.to_string(),
    };
    let text = std::fs::read(xml).map_err(|e| io(xml, e))?;
    let text = String::from_utf8(text).map_err(|e| OpenVinoError::Io {
        path: xml.display().to_string(),
        msg: format!("not UTF-8: {e}"),
    })?;
    let bin_path = bin_path(xml);
    let bin = match std::fs::read(&bin_path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&bin_path, e)),
    };
    import_openvino_parts(&text, bin.as_deref()).map_err(|e| match e {
        OpenVinoError::Layer { id, name, ty, msg } if bin.is_none() && msg.contains("no .bin") => {
            OpenVinoError::Layer {
                id,
                name,
                ty,
                msg: format!("{msg} (looked for {})", bin_path.display()),
            }
        }
        other => other,
    })
}

/// Imports an IR from the XML text and the weights bytes (`None`: there is no `.bin`).
pub fn import_openvino_parts(xml: &str, bin: Option<&[u8]>) -> Result<Graph, OpenVinoError> {
    let net = parse_net(xml)?;
    Builder::new(&net, bin).build()
}
