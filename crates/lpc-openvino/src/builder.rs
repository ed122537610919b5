//! `Builder`: the state of converting one parsed net into an lpc `Graph`, layer by layer in
//! dependency order.

use crate::net::{element_type, parse_dim_list, parse_u64, show_dims, Layer, Net, Port};
use crate::{ops, weights, OpenVinoError};
use lpc_ir::{Dim, Graph, NodeId, Op, Output, Shape, Tensor, ValueRef, ValueType};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

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
    pub fn new(net: &'a Net, bin: Option<&'a [u8]>) -> Builder<'a> {
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

    pub fn build(mut self) -> Result<Graph, OpenVinoError> {
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
