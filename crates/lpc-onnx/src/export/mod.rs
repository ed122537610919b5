//! lpc `Graph` → ONNX ModelProto (opset 21, or the first opset that has every op written), with every FakeQuantize written as a
//! QuantizeLinear/DequantizeLinear pair (constant weights as i8 initializers + DequantizeLinear,
//! per-axis when the ranges are per channel): the QDQ form ONNX Runtime and OpenVINO load.
//!
//! The pieces: `attrs` builds protobuf attributes and value types, `node` writes one lpc node,
//! `qdq` writes a FakeQuantize as QDQ. Scales, zero points and integer biases come from
//! [`lpc_ir::quant`].

mod attrs;
mod node;
mod qdq;
#[cfg(test)]
mod tests;

use crate::proto::{self, AttributeProto, GraphProto, ModelProto, NodeProto};
use crate::tensor::tensor_to_proto;
use attrs::value_info;
use lpc_ir::*;
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The default-domain opset the exporter writes (unless a node needs a later one: see
/// [`node_opset`]).
pub const OPSET: i64 = 21;

/// The first default-domain opset that has `node`'s op with the inputs and attributes it
/// uses; [`OPSET`] for ops that opset already has.
fn node_opset(node: &NodeProto) -> i64 {
    let has_attr = |k: &str| node.attribute.iter().any(|a| a.name.as_deref() == Some(k));
    let has_input = |i: usize| node.input.get(i).is_some_and(|s| !s.is_empty());
    match node.op_type.as_deref() {
        Some("Attention") if has_attr("left_window_size") || has_attr("right_window_size") => 25,
        Some("Attention") if has_input(6) => 24,
        Some("Attention" | "RMSNormalization" | "RotaryEmbedding") => 23,
        Some("TensorScatter") => 24,
        Some("CausalConvWithState" | "LinearAttention") => 27,
        Some("SwiGLU") => 28,
        _ => OPSET,
    }
}

/// Why a graph cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A node has no ONNX equivalent at the exported opset.
    #[error("node '{node}' ({op}): {msg}")]
    Node {
        /// Node name.
        node: String,
        /// lpc op name.
        op: &'static str,
        /// Why.
        msg: String,
    },
    /// The graph is malformed.
    #[error("{0}")]
    Graph(String),
    /// Writing the file failed.
    #[error("{path}: {msg}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        msg: String,
    },
}

/// The state of one export: value names, emitted initializers, the graph being written.
struct Exporter<'g> {
    g: &'g Graph,
    names: HashMap<ValueRef, String>,
    used: HashSet<String>,
    emitted: HashSet<ValueRef>,
    out: GraphProto,
}

impl<'g> Exporter<'g> {
    fn fresh(&mut self, base: &str) -> String {
        let mut n = base.to_string();
        let mut k = 1;
        while !self.used.insert(n.clone()) {
            n = format!("{base}_{k}");
            k += 1;
        }
        n
    }

    fn init(&mut self, base: &str, t: &Tensor) -> String {
        let name = self.fresh(base);
        self.out.initializer.push(tensor_to_proto(&name, t));
        name
    }

    /// The ONNX name of a value; constants become initializers on first use.
    fn name(&mut self, v: ValueRef) -> String {
        let n = self.names[&v].clone();
        if let Some(t) = self.g.const_value(v) {
            if self.emitted.insert(v) {
                self.out.initializer.push(tensor_to_proto(&n, t));
            }
        }
        n
    }

    fn push(
        &mut self,
        name: &str,
        op_type: &str,
        inputs: Vec<String>,
        outputs: Vec<String>,
        attribute: Vec<AttributeProto>,
    ) {
        self.out.node.push(NodeProto {
            input: inputs,
            output: outputs,
            name: Some(name.into()),
            op_type: Some(op_type.into()),
            attribute,
            ..Default::default()
        });
    }

    fn err(&self, n: NodeId, msg: impl Into<String>) -> ExportError {
        let node = self.g.node(n);
        ExportError::Node {
            node: node.name.clone(),
            op: node.op.name(),
            msg: msg.into(),
        }
    }
}

/// Converts `g` to an ONNX model (opset [`OPSET`] or later); FakeQuantize nodes become QDQ pairs.
pub fn export(g: &Graph) -> Result<ModelProto, ExportError> {
    let mut ex = Exporter {
        g,
        names: HashMap::new(),
        used: HashSet::new(),
        emitted: HashSet::new(),
        out: GraphProto::default(),
    };
    ex.graph(&[])?;
    let opset = ex.out.node.iter().map(node_opset).fold(OPSET, i64::max);
    Ok(ModelProto {
        ir_version: Some(10),
        opset_import: vec![proto::OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        producer_name: Some("lpc".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(ex.out),
        ..Default::default()
    })
}

impl Exporter<'_> {
    /// Writes the whole graph into `out`. A body's last `captured.len()` inputs are captured
    /// outer values: they take the outer values' ONNX names and are not graph inputs (ONNX
    /// bodies read enclosing values by name).
    fn graph(&mut self, captured: &[String]) -> Result<(), ExportError> {
        let g = self.g;
        let order = g
            .topo_order()
            .map_err(|e| ExportError::Graph(e.to_string()))?;
        self.out.name = Some(if g.name.is_empty() {
            "lpc".into()
        } else {
            g.name.clone()
        });
        let own = g.inputs().len().saturating_sub(captured.len());
        // Graph inputs and outputs keep their names; other values are made unique.
        for (i, &n) in g.inputs().iter().enumerate() {
            let v = ValueRef::first(n);
            let name = match i.checked_sub(own) {
                Some(k) => captured[k].clone(),
                None => self.fresh(g.value_name(v)),
            };
            self.names.insert(v, name);
        }
        for &n in &order {
            for k in 0..g.node(n).outputs.len() {
                let v = ValueRef { node: n, output: k };
                if !self.names.contains_key(&v) {
                    let name = self.fresh(g.value_name(v));
                    self.names.insert(v, name);
                }
            }
        }
        for &n in &g.inputs()[..own] {
            let v = ValueRef::first(n);
            self.out
                .input
                .push(value_info(&self.names[&v], g.value_type(v)));
        }
        for &n in &order {
            self.node(n)?;
        }
        for &v in g.outputs() {
            if matches!(g.node(v.node).op, Op::Const(_) | Op::Input { .. }) {
                // ONNX outputs must be produced by a node: route through Identity.
                let src = self.name(v);
                let name = self.fresh(&format!("{src}_out"));
                self.push(
                    &format!("{name}_Identity"),
                    "Identity",
                    vec![src],
                    vec![name.clone()],
                    vec![],
                );
                self.out.output.push(value_info(&name, g.value_type(v)));
            } else {
                self.out
                    .output
                    .push(value_info(&self.names[&v].clone(), g.value_type(v)));
            }
        }
        Ok(())
    }

    /// A body as an ONNX GraphProto; `captured` are the ONNX names of the outer values its
    /// last inputs stand for. Names stay unique across the whole model (ONNX forbids a body
    /// to reuse an enclosing graph's names).
    fn body(&mut self, body: &Graph, captured: &[String]) -> Result<GraphProto, ExportError> {
        let mut sub = Exporter {
            g: body,
            names: HashMap::new(),
            used: std::mem::take(&mut self.used),
            emitted: HashSet::new(),
            out: GraphProto::default(),
        };
        let r = sub.graph(captured);
        self.used = sub.used;
        r.map(|()| sub.out)
    }
}

/// Serialized ONNX bytes of [`export`].
pub fn export_bytes(g: &Graph) -> Result<Vec<u8>, ExportError> {
    Ok(export(g)?.encode_to_vec())
}

/// Writes the QDQ ONNX model of `g` to `path` (atomically: the old file stays when it fails).
pub fn write_qdq(g: &Graph, path: &Path) -> Result<(), ExportError> {
    let bytes = export_bytes(g)?;
    lpc_ir::host::write_atomic(path, &bytes).map_err(|e| ExportError::Io {
        path: e.path.display().to_string(),
        msg: e.source.to_string(),
    })
}
