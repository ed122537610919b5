//! OpenVINO IR (v10/v11 `model.xml` + `model.bin`) import straight into an `lpc_ir::Graph`.
//!
//! The reader parses the XML with `roxmltree`, checks every layer, port and edge (ids, port
//! precisions and shapes on both ends of each edge, constant offsets and sizes against the
//! `.bin` length), converts the layers in dependency order with [`ops`], and finally rewrites
//! OpenVINO's "compressed weights" (integer `Const` → `Convert` → `Subtract` → `Multiply`) into
//! `DequantizeLinear` of an integer constant (see `docs/openvino-ir.md`).

mod ops;
mod weights;

use lpc_ir::{DType, Dim, Graph, NodeId, Op, Output, Shape, Tensor, ValueRef, ValueType};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// Why an OpenVINO IR model could not be imported.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OpenVinoError {
    /// A file could not be read.
    #[error("{path}: {msg}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        msg: String,
    },
    /// The `.xml` is not well-formed XML.
    #[error("malformed XML: {0}")]
    Xml(String),
    /// The XML is well-formed but not a valid IR (missing element, bad attribute, bad edge, ...).
    #[error("invalid IR: {0}")]
    Invalid(String),
    /// One layer cannot be imported: unknown type, bad attribute, unsupported variant, bad data.
    #[error("layer {id} '{name}' ({ty}): {msg}")]
    Layer {
        /// Layer id in the XML.
        id: u64,
        /// Layer name.
        name: String,
        /// Layer type and opset, e.g. `MaxPool/opset8`.
        ty: String,
        /// What is wrong.
        msg: String,
    },
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
    let bin_path = xml.with_extension("bin");
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

struct Edge {
    from_layer: u64,
    from_port: u64,
    to_layer: u64,
    to_port: u64,
}

struct Net {
    name: String,
    layers: Vec<Layer>,
    edges: Vec<Edge>,
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

fn parse_u64(s: &str, what: &str) -> Result<u64, OpenVinoError> {
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

fn parse_net(xml: &str) -> Result<Net, OpenVinoError> {
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

fn show_dims(d: &[Option<usize>]) -> String {
    let v: Vec<String> = d
        .iter()
        .map(|x| x.map_or("?".to_string(), |n| n.to_string()))
        .collect();
    format!("[{}]", v.join(","))
}

/// State of the conversion of one net.
pub(crate) struct Builder<'a> {
    net: &'a Net,
    pub bin: Option<&'a [u8]>,
    pub g: Graph,
    /// Value names in use.
    names: HashSet<String>,
    /// True when the model has one Parameter (its dynamic axis 0 is then called `N`).
    single_param: bool,
    /// (layer id, output position) pairs that feed an edge.
    used: HashSet<(u64, usize)>,
}

impl<'a> Builder<'a> {
    fn new(net: &'a Net, bin: Option<&'a [u8]>) -> Builder<'a> {
        let single_param = net.layers.iter().filter(|l| l.ty == "Parameter").count() == 1;
        Builder {
            net,
            bin,
            g: Graph::new(net.name.clone()),
            names: HashSet::new(),
            single_param,
            used: HashSet::new(),
        }
    }

    /// A value name not used yet, based on `base`.
    pub fn unique(&mut self, base: &str) -> String {
        let base = if base.is_empty() { "v" } else { base };
        let mut name = base.to_string();
        let mut k = 1;
        while !self.names.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        name
    }

    /// The lpc type of a port: its precision and its dims. A Parameter's dynamic dims become
    /// symbols (`N` for axis 0 of a lone Parameter, else `<input>_d<axis>`); other ports with a
    /// dynamic dim declare no shape, leaving it to type inference, which relates their dims to
    /// the inputs' symbols (fresh symbols here would hide that the batch is `N` throughout).
    pub fn port_type(&mut self, p: &Port, param: Option<&str>) -> ValueType {
        if param.is_none() && p.dims.iter().any(Option::is_none) {
            return ValueType {
                dtype: p.dtype,
                shape: None,
            };
        }
        let dims = p
            .dims
            .iter()
            .enumerate()
            .map(|(axis, d)| match d {
                Some(n) => Dim::Known(*n),
                None if axis == 0 && self.single_param => Dim::Sym("N".into()),
                None => Dim::Sym(format!("{}_d{axis}", param.unwrap_or("v"))),
            })
            .collect();
        ValueType {
            dtype: p.dtype,
            shape: Some(Shape(dims)),
        }
    }

    /// Output records for the output ports of a layer.
    pub fn port_outputs(&mut self, l: &Layer) -> Vec<Output> {
        let n = l.outputs.len();
        let mut outs = vec![];
        for (k, p) in l.outputs.iter().enumerate() {
            let base = match p.names.first() {
                Some(n) => n.clone(),
                None if n == 1 => l.name.clone(),
                None => format!("{}:{k}", l.name),
            };
            let name = self.unique(&base);
            let ty = self.port_type(p, None);
            outs.push(Output { name, ty });
        }
        outs
    }

    /// Adds a constant (interned: an equal constant already present is reused).
    pub fn konst(&mut self, base: &str, t: Tensor) -> ValueRef {
        let before = self.g.len();
        let name = self.unique(base);
        let v = self.g.add_const(name.clone(), t);
        if self.g.len() == before {
            self.names.remove(&name);
        }
        v
    }

    /// True if output `k` of layer `l` feeds some other layer.
    pub fn is_used(&self, l: &Layer, k: usize) -> bool {
        self.used.contains(&(l.id, k))
    }

    /// Adds a helper node with one output of type `ty`, named after `base`.
    pub fn aux(
        &mut self,
        base: &str,
        op: Op,
        inputs: &[Option<ValueRef>],
        ty: ValueType,
    ) -> ValueRef {
        let name = self.unique(&format!("{base}/{}", op.name()));
        let id = self
            .g
            .add_node(name.clone(), op, inputs, vec![Output { name, ty }]);
        ValueRef::first(id)
    }

    /// The constant behind a value, if it is one.
    pub fn const_of(&self, v: ValueRef) -> Option<Arc<Tensor>> {
        self.g.const_value(v).cloned()
    }

    fn layer_index(&self) -> Result<HashMap<u64, usize>, OpenVinoError> {
        let mut ix = HashMap::new();
        for (i, l) in self.net.layers.iter().enumerate() {
            if ix.insert(l.id, i).is_some() {
                return Err(OpenVinoError::Invalid(format!(
                    "two layers have id {}",
                    l.id
                )));
            }
        }
        Ok(ix)
    }

    /// Resolves the edges: for each layer, the (producer layer index, output position) of each
    /// input port, checking ids, precisions and shapes on both ends.
    fn wire(
        &mut self,
        ix: &HashMap<u64, usize>,
    ) -> Result<Vec<Vec<(usize, usize)>>, OpenVinoError> {
        let layers = &self.net.layers;
        let mut wires: Vec<Vec<Option<(usize, usize)>>> =
            layers.iter().map(|l| vec![None; l.inputs.len()]).collect();
        for e in &self.net.edges {
            let desc = format!(
                "edge {}:{} -> {}:{}",
                e.from_layer, e.from_port, e.to_layer, e.to_port
            );
            let &fi = ix.get(&e.from_layer).ok_or_else(|| {
                OpenVinoError::Invalid(format!("{desc}: no layer has id {}", e.from_layer))
            })?;
            let &ti = ix.get(&e.to_layer).ok_or_else(|| {
                OpenVinoError::Invalid(format!("{desc}: no layer has id {}", e.to_layer))
            })?;
            let (fl, tl) = (&layers[fi], &layers[ti]);
            let fo = fl
                .outputs
                .iter()
                .position(|p| p.id == e.from_port)
                .ok_or_else(|| {
                    OpenVinoError::Invalid(format!(
                        "{desc}: layer {} '{}' has no output port {}",
                        fl.id, fl.name, e.from_port
                    ))
                })?;
            let tp = tl
                .inputs
                .iter()
                .position(|p| p.id == e.to_port)
                .ok_or_else(|| {
                    OpenVinoError::Invalid(format!(
                        "{desc}: layer {} '{}' has no input port {}",
                        tl.id, tl.name, e.to_port
                    ))
                })?;
            if wires[ti][tp].is_some() {
                return Err(OpenVinoError::Invalid(format!(
                    "{desc}: input port {} of layer {} '{}' has two incoming edges",
                    e.to_port, tl.id, tl.name
                )));
            }
            let (a, b) = (&fl.outputs[fo], &tl.inputs[tp]);
            if let (Some(x), Some(y)) = (a.dtype, b.dtype) {
                if x != y {
                    return Err(OpenVinoError::Invalid(format!(
                        "{desc}: precision mismatch, layer {} '{}' produces {} but layer {} '{}' expects {}",
                        fl.id, fl.name, a.precision, tl.id, tl.name, b.precision
                    )));
                }
            }
            let dims_agree = a.dims.len() == b.dims.len()
                && a.dims
                    .iter()
                    .zip(&b.dims)
                    .all(|(x, y)| x.is_none() || y.is_none() || x == y);
            if !dims_agree {
                return Err(OpenVinoError::Invalid(format!(
                    "{desc}: shape mismatch, layer {} '{}' produces {} but layer {} '{}' expects {}",
                    fl.id,
                    fl.name,
                    show_dims(&a.dims),
                    tl.id,
                    tl.name,
                    show_dims(&b.dims)
                )));
            }
            wires[ti][tp] = Some((fi, fo));
            self.used.insert((fl.id, fo));
        }
        wires
            .into_iter()
            .enumerate()
            .map(|(i, w)| {
                w.into_iter()
                    .enumerate()
                    .map(|(k, x)| {
                        x.ok_or_else(|| {
                            let l = &layers[i];
                            l.err(format!(
                                "input port {} has no incoming edge",
                                l.inputs[k].id
                            ))
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// Layer indices in a dependency order (XML order among ready layers).
    fn order(&self, wires: &[Vec<(usize, usize)>]) -> Result<Vec<usize>, OpenVinoError> {
        let n = wires.len();
        let mut indeg: Vec<usize> = wires.iter().map(Vec::len).collect();
        let mut users: Vec<Vec<usize>> = vec![vec![]; n];
        for (i, w) in wires.iter().enumerate() {
            for &(f, _) in w {
                users[f].push(i);
            }
        }
        let mut ready: std::collections::BTreeSet<usize> =
            (0..n).filter(|&i| indeg[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for &u in &users[i] {
                indeg[u] -= 1;
                if indeg[u] == 0 {
                    ready.insert(u);
                }
            }
        }
        if order.len() != n {
            let stuck = (0..n).find(|&i| indeg[i] > 0).unwrap_or(0);
            return Err(self.net.layers[stuck].err("the layer is on a cycle of edges"));
        }
        Ok(order)
    }

    fn build(mut self) -> Result<Graph, OpenVinoError> {
        let ix = self.layer_index()?;
        let wires = self.wire(&ix)?;
        let order = self.order(&wires)?;
        let layers = &self.net.layers;
        // Parameters first, in XML order, so that graph input numbering follows the file.
        let mut values: Vec<Option<Vec<ValueRef>>> = vec![None; layers.len()];
        for (i, l) in layers.iter().enumerate() {
            if l.ty == "Parameter" {
                values[i] = Some(vec![self.parameter(l)?]);
            }
        }
        let mut results: Vec<ValueRef> = vec![];
        for &i in &order {
            let l = &layers[i];
            if l.ty == "Parameter" {
                continue;
            }
            let mut ins = vec![];
            for &(f, o) in &wires[i] {
                let vs = values[f]
                    .as_ref()
                    .ok_or_else(|| l.err("an input was not converted"))?;
                let v = *vs
                    .get(o)
                    .ok_or_else(|| l.err("an input refers to a missing output"))?;
                ins.push(v);
            }
            if l.ty == "Result" {
                if ins.len() != 1 {
                    return Err(l.err(format!("needs 1 input, got {}", ins.len())));
                }
                values[i] = Some(vec![]);
                continue;
            }
            let outs = ops::convert(&mut self, l, &ins)?;
            if outs.len() != l.outputs.len() {
                return Err(l.err(format!(
                    "lpc produced {} outputs for {} output ports",
                    outs.len(),
                    l.outputs.len()
                )));
            }
            values[i] = Some(outs);
        }
        // Results in XML order.
        for (i, l) in layers.iter().enumerate() {
            if l.ty == "Result" {
                let (f, o) = wires[i][0];
                let v = values[f]
                    .as_ref()
                    .and_then(|vs| vs.get(o).copied())
                    .ok_or_else(|| l.err("input missing"))?;
                results.push(v);
            }
        }
        if results.is_empty() {
            return Err(OpenVinoError::Invalid(
                "the model has no Result layer".into(),
            ));
        }
        self.g.set_outputs(results);
        weights::dequantize_compressed(&mut self.g);
        self.g.remove_dead();
        self.g
            .topo_order()
            .map_err(|e| OpenVinoError::Invalid(e.to_string()))?;
        Ok(self.g)
    }

    fn parameter(&mut self, l: &Layer) -> Result<ValueRef, OpenVinoError> {
        if !l.inputs.is_empty() || l.outputs.len() != 1 {
            return Err(l.err("a Parameter has no inputs and one output"));
        }
        let p = &l.outputs[0];
        if let Some(et) = l.data.get("element_type") {
            let d = element_type(et).map_err(|m| l.err(m))?;
            if p.dtype.is_some_and(|pd| pd != d) {
                return Err(l.err(format!(
                    "element_type {et} does not match the port precision {}",
                    p.precision
                )));
            }
        }
        let name = self.unique(p.names.first().unwrap_or(&l.name));
        let mut ty = self.port_type(p, Some(&name));
        if ty.dtype.is_none() {
            let et = l
                .data
                .get("element_type")
                .ok_or_else(|| l.err("no element type"))?;
            ty.dtype = Some(element_type(et).map_err(|m| l.err(m))?);
        }
        Ok(self.g.add_input(name, ty))
    }

    /// Reads the tensor of a `Const` layer from the `.bin`.
    pub fn const_tensor(&self, l: &Layer) -> Result<Tensor, OpenVinoError> {
        let get = |k: &str| {
            l.data
                .get(k)
                .ok_or_else(|| l.err(format!("missing attribute '{k}'")))
        };
        let et = get("element_type")?;
        let dtype = element_type(et).map_err(|m| l.err(m))?;
        let dims = parse_dim_list(get("shape")?).map_err(|m| l.err(format!("shape: {m}")))?;
        let shape: Vec<usize> = dims
            .iter()
            .map(|d| d.ok_or_else(|| l.err("a constant has a dynamic dimension")))
            .collect::<Result<_, _>>()?;
        let port = l
            .outputs
            .first()
            .ok_or_else(|| l.err("a Const has one output port"))?;
        if port.dtype.is_some_and(|d| d != dtype) {
            return Err(l.err(format!(
                "element_type {et} does not match the port precision {}",
                port.precision
            )));
        }
        if port.dims.len() != shape.len()
            || port
                .dims
                .iter()
                .zip(&shape)
                .any(|(p, s)| p.is_some_and(|p| p != *s))
        {
            return Err(l.err(format!(
                "shape {:?} does not match the port dims {}",
                shape,
                show_dims(&port.dims)
            )));
        }
        let offset = parse_u64(get("offset")?, "offset").map_err(|e| l.err(e.to_string()))?;
        let size = parse_u64(get("size")?, "size").map_err(|e| l.err(e.to_string()))?;
        let numel = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64));
        let need = numel.and_then(|n| n.checked_mul(dtype.size() as u64));
        if need != Some(size) {
            return Err(l.err(format!(
                "size {size} bytes does not hold a {dtype} tensor of shape {shape:?} ({} bytes)",
                need.map_or("too many".to_string(), |n| n.to_string())
            )));
        }
        let bin = self
            .bin
            .ok_or_else(|| l.err("the constant needs weights but there is no .bin file"))?;
        let end = offset
            .checked_add(size)
            .filter(|&e| e <= bin.len() as u64)
            .ok_or_else(|| {
                l.err(format!(
                    "bytes {offset}..{} lie outside the .bin ({} bytes)",
                    offset as u128 + size as u128,
                    bin.len()
                ))
            })?;
        Tensor::from_le_bytes(dtype, &shape, &bin[offset as usize..end as usize])
            .map_err(|e| l.err(e.to_string()))
    }

    /// Adds the main node of layer `l` with outputs named and typed from its output ports
    /// (the first `n` of them).
    pub fn main_n(
        &mut self,
        l: &Layer,
        op: Op,
        inputs: &[Option<ValueRef>],
        n: usize,
    ) -> Vec<ValueRef> {
        let mut outs = self.port_outputs(l);
        outs.truncate(n);
        let name = l.name.clone();
        let id: NodeId = self.g.add_node(name, op, inputs, outs);
        (0..n).map(|output| ValueRef { node: id, output }).collect()
    }

    /// Adds the main node of layer `l`, one lpc output per output port.
    pub fn main(&mut self, l: &Layer, op: Op, inputs: &[Option<ValueRef>]) -> Vec<ValueRef> {
        self.main_n(l, op, inputs, l.outputs.len())
    }
}
