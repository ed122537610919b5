//! The parsed `.xml`: layers with their ports and attributes, and the edges between them.

use crate::OpenVinoError;
use lpc_ir::DType;
use std::collections::{HashMap, HashSet};

/// One `<port>` of a layer.
#[derive(Clone, Debug)]
pub(crate) struct Port {
    pub id: u64,
    /// `None` when the precision is absent or UNSPECIFIED/DYNAMIC.
    pub dtype: Option<DType>,
    /// The precision as written (for messages).
    pub precision: String,
    /// Dimensions; `None` stands for a dynamic dimension.
    pub dims: Vec<Option<usize>>,
    /// Tensor names (`names` attribute).
    pub names: Vec<String>,
}

/// One `<layer>`.
#[derive(Clone, Debug)]
pub(crate) struct Layer {
    pub id: u64,
    pub name: String,
    pub ty: String,
    pub version: String,
    pub data: HashMap<String, String>,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
}

impl Layer {
    /// `Type/opsetN`, for messages.
    pub fn ty_version(&self) -> String {
        if self.version.is_empty() {
            self.ty.clone()
        } else {
            format!("{}/{}", self.ty, self.version)
        }
    }

    /// An error about this layer.
    pub fn err(&self, msg: impl Into<String>) -> OpenVinoError {
        OpenVinoError::Layer {
            id: self.id,
            name: self.name.clone(),
            ty: self.ty_version(),
            msg: msg.into(),
        }
    }

    /// The opset number of `version="opsetN"` (0 when absent or another form).
    pub fn opset(&self) -> u32 {
        self.version
            .strip_prefix("opset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// One `<edge>`: from a layer's output port to another layer's input port.
pub(crate) struct Edge {
    pub from_layer: u64,
    pub from_port: u64,
    pub to_layer: u64,
    pub to_port: u64,
}

/// The whole `<net>`.
pub(crate) struct Net {
    pub name: String,
    pub layers: Vec<Layer>,
    pub edges: Vec<Edge>,
}

fn precision_dtype(p: &str) -> Result<Option<DType>, String> {
    Ok(Some(match p.to_ascii_uppercase().as_str() {
        "" | "UNSPECIFIED" | "DYNAMIC" | "UNDEFINED" => return Ok(None),
        "FP32" | "F32" => DType::F32,
        "FP16" | "F16" => DType::F16,
        "FP64" | "F64" => DType::F64,
        "I8" => DType::I8,
        "U8" => DType::U8,
        "I32" => DType::I32,
        "I64" => DType::I64,
        "BOOL" | "BOOLEAN" => DType::Bool,
        other => return Err(format!("precision {other} is not supported by lpc")),
    }))
}

/// Parses an `element_type` attribute (`f32`, `i8`, `boolean`, ...).
pub(crate) fn element_type(s: &str) -> Result<DType, String> {
    Ok(match s {
        "f32" => DType::F32,
        "f16" => DType::F16,
        "f64" => DType::F64,
        "i8" => DType::I8,
        "u8" => DType::U8,
        "i32" => DType::I32,
        "i64" => DType::I64,
        "boolean" => DType::Bool,
        other => return Err(format!("element type '{other}' is not supported by lpc")),
    })
}

/// Parses a non-negative integer attribute; `what` names it in the error.
pub(crate) fn parse_u64(s: &str, what: &str) -> Result<u64, OpenVinoError> {
    s.trim()
        .parse::<u64>()
        .map_err(|_| OpenVinoError::Invalid(format!("{what} '{s}' is not a non-negative integer")))
}

/// Largest dimension accepted (keeps element counts far from overflow).
const MAX_DIM: u64 = 1 << 40;

fn parse_dim(s: &str) -> Result<Option<usize>, String> {
    let s = s.trim();
    if s == "-1" || s == "?" || s.contains("..") {
        return Ok(None);
    }
    match s.parse::<u64>() {
        Ok(d) if d <= MAX_DIM => Ok(Some(d as usize)),
        _ => Err(format!("dimension '{s}' is neither a size nor -1/?")),
    }
}

/// Parses a comma-separated dimension list such as `"16, 1, 3, 3"` or `""` (rank 0).
pub(crate) fn parse_dim_list(s: &str) -> Result<Vec<Option<usize>>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(vec![]);
    }
    s.split(',').map(parse_dim).collect()
}

fn parse_port(n: roxmltree::Node, layer: &str) -> Result<Port, OpenVinoError> {
    let id = parse_u64(
        n.attribute("id").unwrap_or(""),
        &format!("port id in layer {layer}"),
    )?;
    let precision = n.attribute("precision").unwrap_or("").to_string();
    let dtype = precision_dtype(&precision)
        .map_err(|m| OpenVinoError::Invalid(format!("layer {layer} port {id}: {m}")))?;
    let mut dims = vec![];
    for d in n.children().filter(|c| c.has_tag_name("dim")) {
        dims.push(
            parse_dim(d.text().unwrap_or(""))
                .map_err(|m| OpenVinoError::Invalid(format!("layer {layer} port {id}: {m}")))?,
        );
    }
    let names = match n.attribute("names") {
        None => vec![],
        Some(s) => split_names(s),
    };
    Ok(Port {
        id,
        dtype,
        precision,
        dims,
        names,
    })
}

/// Splits a `names` attribute on commas not escaped by a backslash.
fn split_names(s: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ',' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, tag: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(tag))
}

/// Parses and checks the `.xml` text (elements, attributes, dimensions; not the edges' ends).
pub(crate) fn parse_net(xml: &str) -> Result<Net, OpenVinoError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| OpenVinoError::Xml(e.to_string()))?;
    let root = doc.root_element();
    if !root.has_tag_name("net") {
        return Err(OpenVinoError::Invalid(format!(
            "root element is <{}>, expected <net>",
            root.tag_name().name()
        )));
    }
    let version = root.attribute("version").unwrap_or("");
    if version != "10" && version != "11" {
        return Err(OpenVinoError::Invalid(format!(
            "IR version '{version}' is not supported (lpc reads IR v10 and v11)"
        )));
    }
    let layers_el = child(root, "layers")
        .ok_or_else(|| OpenVinoError::Invalid("no <layers> element".into()))?;
    let mut layers = vec![];
    for l in layers_el.children().filter(|c| c.has_tag_name("layer")) {
        let id = parse_u64(l.attribute("id").unwrap_or(""), "layer id")?;
        let name = l.attribute("name").unwrap_or("").to_string();
        let ty = l
            .attribute("type")
            .ok_or_else(|| OpenVinoError::Invalid(format!("layer {id} '{name}' has no type")))?
            .to_string();
        let version = l.attribute("version").unwrap_or("").to_string();
        let label = format!("{id} '{name}'");
        let data = match child(l, "data") {
            Some(d) => d
                .attributes()
                .map(|a| (a.name().to_string(), a.value().to_string()))
                .collect(),
            None => HashMap::new(),
        };
        let ports = |tag: &str| -> Result<Vec<Port>, OpenVinoError> {
            match child(l, tag) {
                None => Ok(vec![]),
                Some(p) => p
                    .children()
                    .filter(|c| c.has_tag_name("port"))
                    .map(|p| parse_port(p, &label))
                    .collect(),
            }
        };
        let inputs = ports("input")?;
        let outputs = ports("output")?;
        let mut seen = HashSet::new();
        for p in inputs.iter().chain(&outputs) {
            if !seen.insert(p.id) {
                return Err(OpenVinoError::Invalid(format!(
                    "layer {label} has two ports with id {}",
                    p.id
                )));
            }
        }
        layers.push(Layer {
            id,
            name,
            ty,
            version,
            data,
            inputs,
            outputs,
        });
    }
    let mut edges = vec![];
    if let Some(e) = child(root, "edges") {
        for e in e.children().filter(|c| c.has_tag_name("edge")) {
            let a =
                |k: &str| parse_u64(e.attribute(k).unwrap_or(""), &format!("edge attribute {k}"));
            edges.push(Edge {
                from_layer: a("from-layer")?,
                from_port: a("from-port")?,
                to_layer: a("to-layer")?,
                to_port: a("to-port")?,
            });
        }
    }
    Ok(Net {
        name: root.attribute("name").unwrap_or("").to_string(),
        layers,
        edges,
    })
}

/// `[1,3,?]`, for messages.
pub(crate) fn show_dims(d: &[Option<usize>]) -> String {
    let v: Vec<String> = d
        .iter()
        .map(|x| x.map_or("?".to_string(), |n| n.to_string()))
        .collect();
    format!("[{}]", v.join(","))
}
