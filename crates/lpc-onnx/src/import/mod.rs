//! ModelProto → lpc `Graph`: inputs, initializers, nodes (normalised to lpc's `Op` conventions),
//! value_info types and outputs. The walk is here; each node goes to the converter that
//! [`table::Table`] registers for its op type, grouped by op family in `math`, `logic`, `nn`,
//! `array` and `quant`.

mod array;
mod attrs;
mod contrib;
mod control;
mod index;
mod logic;
mod math;
mod misc;
mod nn;
mod optional;
mod quant;
mod recurrent;
mod spectral;
mod table;

use crate::proto::{self, NodeProto, ValueInfoProto};
use crate::tensor::{dtype_from_onnx, external_data, onnx_type_name, tensor_from_proto};
use crate::ImportError;
use attrs::Attrs;
use lpc_ir::*;
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use table::{Converted, Cx, Table};

/// Every supported op type's converter, built on first use.
static TABLE: LazyLock<Table> = LazyLock::new(Table::all);

/// Imports an `.onnx` file; external data is resolved relative to its folder.
pub fn import_file(path: &Path) -> Result<Graph, ImportError> {
    let bytes = std::fs::read(path).map_err(|e| ImportError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    import_bytes(&bytes, path.parent())
}

/// The external data files an `.onnx` model references (those [`import_file`] reads), each
/// once; an error when the model cannot be read or decoded.
pub fn external_data_files(path: &Path) -> Result<Vec<PathBuf>, ImportError> {
    let bytes = std::fs::read(path).map_err(|e| ImportError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    let model = proto::ModelProto::decode(bytes.as_slice())
        .map_err(|e| ImportError::Decode(e.to_string()))?;
    let mut files = vec![];
    // The graphs still to visit (subgraphs of attributes too): no recursion on nesting depth.
    let mut graphs: Vec<&proto::GraphProto> = model.graph.iter().collect();
    while let Some(gp) = graphs.pop() {
        let attrs = gp.node.iter().flat_map(|n| &n.attribute);
        let tensors = gp
            .initializer
            .iter()
            .chain(attrs.clone().flat_map(|a| a.t.iter().chain(&a.tensors)));
        for t in tensors {
            // A malformed reference is left out: importing fails on it, or never reads it.
            if let Ok(Some(ext)) = external_data(t, path.parent(), "") {
                if !files.contains(&ext.path) {
                    files.push(ext.path);
                }
            }
        }
        graphs.extend(attrs.flat_map(|a| a.g.iter().chain(&a.graphs)));
    }
    Ok(files)
}

/// ONNX Runtime's contrib op domain; `import::contrib` has the ops of it lpc takes.
const CONTRIB_DOMAIN: &str = "com.microsoft";

/// The newest default-domain ONNX opset lpc's importer knows (onnx 1.23). A model importing a
/// newer one is refused: its ops may have semantics lpc would silently get wrong.
pub const NEWEST_OPSET: i64 = 28;

/// Imports a serialized ModelProto.
pub fn import_bytes(bytes: &[u8], base_dir: Option<&Path>) -> Result<Graph, ImportError> {
    let model = proto::ModelProto::decode(bytes).map_err(|e| ImportError::Decode(e.to_string()))?;
    let mut opset = None;
    for o in &model.opset_import {
        match o.domain.as_deref().unwrap_or("") {
            "" | "ai.onnx" => opset = Some(o.version.unwrap_or(1)),
            _ => {}
        }
    }
    let opset = opset.unwrap_or(if model.opset_import.is_empty() { 1 } else { 0 });
    if opset <= 0 {
        return Err(ImportError::Invalid(
            "the model imports no version of the default ONNX opset".into(),
        ));
    }
    if opset > NEWEST_OPSET {
        return Err(ImportError::OpsetTooNew {
            version: opset,
            newest: NEWEST_OPSET,
        });
    }
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| ImportError::Invalid("the model has no graph".into()))?;
    Importer {
        opset,
        base_dir,
        values: HashMap::new(),
        node_names: HashSet::new(),
        fresh: 0,
        depth: 0,
    }
    .graph(graph, &[])
}

struct Importer<'a> {
    opset: i64,
    base_dir: Option<&'a Path>,
    values: HashMap<String, ValueRef>,
    node_names: HashSet<String>,
    fresh: usize,
    /// How deeply the graph being imported is nested in bodies (0: the model's graph).
    depth: usize,
}

fn value_type(vi: &ValueInfoProto, unk: &mut usize) -> Result<ValueType, ImportError> {
    let name = vi.name.clone().unwrap_or_default();
    let Some(tp) = vi.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Ok(ValueType::unknown());
    };
    let proto::type_proto::Value::TensorType(tt) = tp else {
        return Err(ImportError::Unsupported(format!(
            "value '{name}': only tensor types are supported"
        )));
    };
    let code = tt.elem_type.unwrap_or(0);
    let dtype = if code == 0 {
        None
    } else {
        Some(dtype_from_onnx(code).ok_or_else(|| {
            ImportError::Unsupported(format!(
                "value '{name}': data type {} is not supported by lpc",
                onnx_type_name(code)
            ))
        })?)
    };
    let shape = tt.shape.as_ref().map(|s| {
        Shape(
            s.dim
                .iter()
                .map(|d| match &d.value {
                    Some(proto::tensor_shape_proto::dimension::Value::DimValue(v)) if *v >= 0 => {
                        Dim::Known(*v as usize)
                    }
                    // "?" is used by some exporters for "unknown", not as a shared name.
                    Some(proto::tensor_shape_proto::dimension::Value::DimParam(p))
                        if !p.is_empty() && p != "?" =>
                    {
                        Dim::Sym(p.clone())
                    }
                    _ => {
                        *unk += 1;
                        Dim::Sym(format!("unk{}", *unk - 1))
                    }
                })
                .collect(),
        )
    });
    Ok(ValueType { dtype, shape })
}

impl<'a> Importer<'a> {
    fn unique_node_name(&mut self, name: Option<&str>, op_type: &str) -> String {
        let base = match name {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => format!("{op_type}_{}", self.node_names.len()),
        };
        let mut name = base.clone();
        let mut k = 1;
        while !self.node_names.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        name
    }

    fn fresh_value(&mut self, base: &str) -> String {
        self.fresh += 1;
        format!("{base}__{}", self.fresh)
    }

    /// Imports a graph; `captures` (outer values a body uses, with their types) become extra
    /// graph inputs after the declared ones.
    fn graph(
        mut self,
        gp: &proto::GraphProto,
        captures: &[(String, ValueType)],
    ) -> Result<Graph, ImportError> {
        let mut g = Graph::new(gp.name.clone().unwrap_or_default());
        let mut unk = 0usize;
        if !gp.sparse_initializer.is_empty() {
            return Err(ImportError::Unsupported(
                "sparse initializers are not supported".into(),
            ));
        }
        let init_names: HashSet<String> = gp
            .initializer
            .iter()
            .filter_map(|t| t.name.clone())
            .collect();
        for vi in &gp.input {
            let name = vi.name.clone().unwrap_or_default();
            if init_names.contains(&name) {
                continue;
            }
            if name.is_empty() {
                return Err(ImportError::Invalid("a graph input has no name".into()));
            }
            let ty = value_type(vi, &mut unk)?;
            let v = g.add_input(name.clone(), ty);
            self.node_names.insert(name.clone());
            if self.values.insert(name.clone(), v).is_some() {
                return Err(ImportError::Invalid(format!(
                    "graph input '{name}' is declared twice"
                )));
            }
        }
        for (name, ty) in captures {
            let v = g.add_input(name.clone(), ty.clone());
            self.node_names.insert(name.clone());
            self.values.insert(name.clone(), v);
        }
        for t in &gp.initializer {
            let name = t.name.clone().unwrap_or_default();
            if name.is_empty() {
                return Err(ImportError::Invalid("an initializer has no name".into()));
            }
            let tensor = tensor_from_proto(t, self.base_dir)?;
            let v = g.add_const(name.clone(), tensor);
            self.values.insert(name, v);
        }
        for node in &gp.node {
            let op_type = node.op_type.clone().unwrap_or_default();
            let name = self.unique_node_name(node.name.as_deref(), &op_type);
            let domain = node.domain.clone().unwrap_or_default();
            let attrs = Attrs {
                node,
                name: name.clone(),
                opset: self.opset,
            };
            if !(domain.is_empty() || domain == "ai.onnx" || domain == CONTRIB_DOMAIN) {
                return Err(attrs.err(format!(
                    "operator domain '{domain}' is not supported (only the default ONNX domain \
                     and ONNX Runtime's {CONTRIB_DOMAIN})"
                )));
            }
            self.node(&mut g, node, &attrs)?;
        }
        // Types from value_info and graph outputs.
        for vi in gp.value_info.iter().chain(&gp.output) {
            let name = vi.name.clone().unwrap_or_default();
            if let Some(&v) = self.values.get(&name) {
                if matches!(g.node(v.node).op, Op::Const(_)) {
                    continue;
                }
                let ty = value_type(vi, &mut unk)?;
                let out = g.output_mut(v);
                if out.name == name && (ty.dtype.is_some() || ty.shape.is_some()) {
                    out.ty = ty;
                }
            }
        }
        let mut outs = vec![];
        for vi in &gp.output {
            let name = vi.name.clone().unwrap_or_default();
            let v = *self.values.get(&name).ok_or_else(|| {
                ImportError::Invalid(format!("graph output '{name}' is not produced by any node"))
            })?;
            outs.push(v);
        }
        g.set_outputs(outs);
        g.topo_order()
            .map_err(|e| ImportError::Invalid(e.to_string()))?;
        Ok(g)
    }

    fn input(
        &self,
        node: &NodeProto,
        attrs: &Attrs,
        i: usize,
    ) -> Result<Option<ValueRef>, ImportError> {
        match node.input.get(i) {
            None => Ok(None),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => {
                self.values.get(s).copied().map(Some).ok_or_else(|| {
                    attrs.err(format!("input '{s}' is not defined before this node"))
                })
            }
        }
    }

    fn konst(&mut self, g: &mut Graph, base: &str, t: Tensor) -> ValueRef {
        let name = self.fresh_value(base);
        g.add_const(name, t)
    }

    fn node(&mut self, g: &mut Graph, node: &NodeProto, a: &Attrs) -> Result<(), ImportError> {
        let op_type = node.op_type.clone().unwrap_or_default();
        let ins: Vec<Option<ValueRef>> = (0..node.input.len())
            .map(|i| self.input(node, a, i))
            .collect::<Result<_, _>>()?;
        let out_names: Vec<String> = node.output.clone();
        let n_out = out_names
            .iter()
            .rposition(|s| !s.is_empty())
            .map_or(0, |p| p + 1);
        if n_out == 0 {
            return Err(a.err("node has no outputs"));
        }
        let contrib = node.domain.as_deref() == Some(CONTRIB_DOMAIN);
        let key = if contrib {
            format!("{CONTRIB_DOMAIN}.{op_type}")
        } else {
            op_type.clone()
        };
        let Some(convert) = TABLE.get(&key) else {
            return Err(a.err(if contrib {
                format!("unsupported operator '{op_type}' of domain {CONTRIB_DOMAIN}")
            } else {
                format!("unsupported operator '{op_type}'")
            }));
        };
        let mut cx = Cx {
            me: self,
            a,
            op_type,
            name: a.name.clone(),
            opset: a.opset,
            ins,
            first_out: out_names[0].clone(),
            out_names,
            n_out,
        };
        match convert(&mut cx, g)? {
            Converted::Op(op) => cx.add_main(g, op),
            Converted::Bound => Ok(()),
        }
    }

    fn bind(&mut self, name: &str, v: ValueRef, a: &Attrs) -> Result<(), ImportError> {
        if self.values.insert(name.to_string(), v).is_some() {
            return Err(a.err(format!("value '{name}' is produced twice")));
        }
        Ok(())
    }
}
