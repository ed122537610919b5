//! ModelProto → lpc `Graph`: inputs, initializers, nodes (normalised to lpc's `Op` conventions),
//! value_info types and outputs.

use crate::proto::{self, AttributeProto, NodeProto, ValueInfoProto};
use crate::tensor::{dtype_from_onnx, onnx_type_name, tensor_from_proto};
use crate::ImportError;
use lpc_ir::*;
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// Imports an `.onnx` file; external data is resolved relative to its folder.
pub fn import_file(path: &Path) -> Result<Graph, ImportError> {
    let bytes = std::fs::read(path).map_err(|e| ImportError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    import_bytes(&bytes, path.parent())
}

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
    }
    .graph(graph)
}

struct Importer<'a> {
    opset: i64,
    base_dir: Option<&'a Path>,
    values: HashMap<String, ValueRef>,
    node_names: HashSet<String>,
    fresh: usize,
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

/// Attribute access with ONNX defaults and errors naming the node.
struct Attrs<'n> {
    node: &'n NodeProto,
    name: String,
    opset: i64,
}

impl<'n> Attrs<'n> {
    fn err(&self, msg: impl Into<String>) -> ImportError {
        ImportError::Node {
            node: self.name.clone(),
            op_type: self.node.op_type.clone().unwrap_or_default(),
            opset: self.opset,
            msg: msg.into(),
        }
    }
    fn get(&self, key: &str) -> Option<&'n AttributeProto> {
        self.node
            .attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(key))
    }
    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    fn int(&self, key: &str, default: i64) -> Result<i64, ImportError> {
        match self.get(key) {
            None => Ok(default),
            Some(a) => {
                a.i.ok_or_else(|| self.err(format!("attribute '{key}' must be an int")))
            }
        }
    }
    fn float(&self, key: &str, default: f32) -> Result<f32, ImportError> {
        match self.get(key) {
            None => Ok(default),
            Some(a) => {
                a.f.ok_or_else(|| self.err(format!("attribute '{key}' must be a float")))
            }
        }
    }
    fn ints(&self, key: &str) -> Option<Vec<i64>> {
        self.get(key).map(|a| a.ints.clone())
    }
    fn floats(&self, key: &str) -> Option<Vec<f32>> {
        self.get(key).map(|a| a.floats.clone())
    }
    fn string(&self, key: &str, default: &str) -> Result<String, ImportError> {
        match self.get(key) {
            None => Ok(default.to_string()),
            Some(a) => match &a.s {
                Some(s) => String::from_utf8(s.clone())
                    .map_err(|_| self.err(format!("attribute '{key}' is not UTF-8"))),
                None => Err(self.err(format!("attribute '{key}' must be a string"))),
            },
        }
    }
    fn usizes(&self, key: &str) -> Result<Vec<usize>, ImportError> {
        let v = self.ints(key).unwrap_or_default();
        v.iter()
            .map(|&x| {
                if (0..=(1 << 24)).contains(&x) {
                    Ok(x as usize)
                } else {
                    Err(self.err(format!("attribute '{key}' has invalid value {x}")))
                }
            })
            .collect()
    }
    fn bool(&self, key: &str, default: bool) -> Result<bool, ImportError> {
        Ok(self.int(key, default as i64)? != 0)
    }
    fn auto_pad(&self) -> Result<AutoPad, ImportError> {
        Ok(match self.string("auto_pad", "NOTSET")?.as_str() {
            "NOTSET" | "" => AutoPad::NotSet,
            "SAME_UPPER" => AutoPad::SameUpper,
            "SAME_LOWER" => AutoPad::SameLower,
            "VALID" => AutoPad::Valid,
            other => return Err(self.err(format!("unknown auto_pad '{other}'"))),
        })
    }
    fn conv(&self) -> Result<ConvAttrs, ImportError> {
        let group = self.int("group", 1)?;
        if group < 1 || group > (1 << 24) {
            return Err(self.err(format!("invalid group {group}")));
        }
        Ok(ConvAttrs {
            kernel: self.usizes("kernel_shape")?,
            strides: self.usizes("strides")?,
            pads: self.usizes("pads")?,
            dilations: self.usizes("dilations")?,
            group: group as usize,
            auto_pad: self.auto_pad()?,
        })
    }
    fn pool(&self) -> Result<PoolAttrs, ImportError> {
        let kernel = self.usizes("kernel_shape")?;
        if kernel.is_empty() {
            return Err(self.err("kernel_shape is required"));
        }
        Ok(PoolAttrs {
            kernel,
            strides: self.usizes("strides")?,
            pads: self.usizes("pads")?,
            dilations: self.usizes("dilations")?,
            ceil_mode: self.bool("ceil_mode", false)?,
            auto_pad: self.auto_pad()?,
        })
    }
    fn tensor(&self, key: &str, base: Option<&Path>) -> Result<Option<Tensor>, ImportError> {
        match self.get(key).and_then(|a| a.t.as_ref()) {
            None => Ok(None),
            Some(t) => tensor_from_proto(t, base)
                .map(Some)
                .map_err(|e| self.err(e.to_string())),
        }
    }
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

    fn graph(mut self, gp: &proto::GraphProto) -> Result<Graph, ImportError> {
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
        for t in &gp.initializer {
            let name = t.name.clone().unwrap_or_default();
            if name.is_empty() {
                return Err(ImportError::Invalid("an initializer has no name".into()));
            }
            let tensor = tensor_from_proto(t, self.base_dir)?;
            let v = g.add_const(name.clone(), tensor);
            self.values.insert(name, v);
        }
        for (k, node) in gp.node.iter().enumerate() {
            let op_type = node.op_type.clone().unwrap_or_default();
            let name = self.unique_node_name(node.name.as_deref(), &op_type);
            let domain = node.domain.clone().unwrap_or_default();
            let attrs = Attrs {
                node,
                name: name.clone(),
                opset: self.opset,
            };
            if !(domain.is_empty() || domain == "ai.onnx") {
                return Err(attrs.err(format!(
                    "operator domain '{domain}' is not supported (only the default ONNX domain)"
                )));
            }
            self.node(&mut g, node, &attrs, k)?;
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

    fn node(
        &mut self,
        g: &mut Graph,
        node: &NodeProto,
        a: &Attrs,
        _k: usize,
    ) -> Result<(), ImportError> {
        let op_type = node.op_type.clone().unwrap_or_default();
        let opset = self.opset;
        let name = a.name.clone();
        let mut ins: Vec<Option<ValueRef>> = (0..node.input.len())
            .map(|i| self.input(node, a, i))
            .collect::<Result<_, _>>()?;
        let out_names: Vec<String> = node.output.clone();
        let mut n_out = out_names
            .iter()
            .rposition(|s| !s.is_empty())
            .map_or(0, |p| p + 1);
        if n_out == 0 {
            return Err(a.err("node has no outputs"));
        }
        let first_out = out_names[0].clone();
        let need = |ins: &Vec<Option<ValueRef>>, n: usize| -> Result<(), ImportError> {
            if ins.len() < n || ins[..n].iter().any(Option::is_none) {
                return Err(a.err(format!(
                    "needs {n} inputs, got {}",
                    ins.iter().filter(|x| x.is_some()).count()
                )));
            }
            Ok(())
        };
        let f32c = |v: f32| Tensor::scalar_f32(v);
        let i64v = |v: &[i64]| Tensor::vec_i64(v);
        // Attribute operands of old opsets become constant inputs at `slot`.
        let put = |me: &mut Self,
                   g: &mut Graph,
                   ins: &mut Vec<Option<ValueRef>>,
                   slot: usize,
                   t: Option<Tensor>| {
            if ins.len() <= slot {
                ins.resize(slot + 1, None);
            }
            if let Some(t) = t {
                ins[slot] = Some(me.konst(g, &first_out, t));
            }
        };
        let unary = |u: UnaryOp| Op::Unary(u);
        let op = match op_type.as_str() {
            "Abs" => unary(UnaryOp::Abs),
            "Neg" => unary(UnaryOp::Neg),
            "Ceil" => unary(UnaryOp::Ceil),
            "Floor" => unary(UnaryOp::Floor),
            "Round" => unary(UnaryOp::Round),
            "Sqrt" => unary(UnaryOp::Sqrt),
            "Reciprocal" => unary(UnaryOp::Reciprocal),
            "Exp" => unary(UnaryOp::Exp),
            "Log" => unary(UnaryOp::Log),
            "Erf" => unary(UnaryOp::Erf),
            "Sigmoid" => unary(UnaryOp::Sigmoid),
            "Tanh" => unary(UnaryOp::Tanh),
            "Relu" => unary(UnaryOp::Relu),
            "Identity" => unary(UnaryOp::Identity),
            "Dropout" => {
                // Inference: identity; the optional mask output is all true.
                if n_out > 1 {
                    let x = ins
                        .first()
                        .copied()
                        .flatten()
                        .ok_or_else(|| a.err("needs an input"))?;
                    let shape_name = self.fresh_value(&out_names[1]);
                    let sh = g.add_node(
                        format!("{name}__mask_shape"),
                        Op::ShapeOf {
                            start: 0,
                            end: None,
                        },
                        &[Some(x)],
                        vec![Output::named(shape_name)],
                    );
                    let value = Arc::new(
                        Tensor::from_bool(&[], vec![true]).map_err(|e| a.err(e.to_string()))?,
                    );
                    let m = g.add_node(
                        format!("{name}__mask"),
                        Op::ConstantOfShape { value },
                        &[Some(ValueRef::first(sh))],
                        vec![Output::named(out_names[1].clone())],
                    );
                    self.bind(&out_names[1], ValueRef::first(m), a)?;
                }
                if let Some(t) = ins.get(2).copied().flatten() {
                    if g.const_value(t)
                        .is_none_or(|t| t.to_i64_vec().iter().any(|&x| x != 0))
                    {
                        return Err(a.err("Dropout in training mode is not supported"));
                    }
                }
                ins.truncate(1);
                n_out = 1;
                unary(UnaryOp::Identity)
            }
            "Elu" => unary(UnaryOp::Elu {
                alpha: a.float("alpha", 1.0)?,
            }),
            "LeakyRelu" => unary(UnaryOp::LeakyRelu {
                alpha: a.float("alpha", 0.01)?,
            }),
            "HardSigmoid" => unary(UnaryOp::HardSigmoid {
                alpha: a.float("alpha", 0.2)?,
                beta: a.float("beta", 0.5)?,
            }),
            "HardSwish" => unary(UnaryOp::HardSwish),
            "Gelu" => unary(UnaryOp::Gelu {
                tanh: match a.string("approximate", "none")?.as_str() {
                    "none" => false,
                    "tanh" => true,
                    o => return Err(a.err(format!("unknown approximate '{o}'"))),
                },
            }),
            "Cast" => {
                let to = a.int("to", 0)?;
                let d = dtype_from_onnx(to as i32).ok_or_else(|| {
                    a.err(format!(
                        "cast to {} is not supported",
                        onnx_type_name(to as i32)
                    ))
                })?;
                if a.has("saturate") && a.int("saturate", 1)? != 1 {
                    // Only meaningful for float8 targets, which lpc does not have.
                }
                unary(UnaryOp::Cast { to: d })
            }
            "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Equal" | "PRelu" => {
                if a.has("broadcast") && a.int("axis", -1)? != -1 {
                    return Err(a.err("legacy broadcast with an axis attribute is not supported"));
                }
                need(&ins, 2)?;
                Op::Binary(match op_type.as_str() {
                    "Add" => BinaryOp::Add,
                    "Sub" => BinaryOp::Sub,
                    "Mul" => BinaryOp::Mul,
                    "Div" => BinaryOp::Div,
                    "Pow" => BinaryOp::Pow,
                    "Equal" => BinaryOp::Equal,
                    _ => BinaryOp::PRelu,
                })
            }
            "Max" | "Min" | "Sum" => {
                let b = match op_type.as_str() {
                    "Max" => BinaryOp::Max,
                    "Min" => BinaryOp::Min,
                    _ => BinaryOp::Add,
                };
                let operands: Vec<ValueRef> = ins.iter().flatten().copied().collect();
                if operands.is_empty() {
                    return Err(a.err("needs at least one input"));
                }
                if operands.len() == 1 {
                    ins = vec![Some(operands[0])];
                    Op::Unary(UnaryOp::Identity)
                } else {
                    let mut acc = operands[0];
                    for (i, &x) in operands[1..operands.len() - 1].iter().enumerate() {
                        let vname = self.fresh_value(&first_out);
                        let id = g.add_node(
                            format!("{name}__{i}"),
                            Op::Binary(b),
                            &[Some(acc), Some(x)],
                            vec![Output::named(vname)],
                        );
                        acc = ValueRef::first(id);
                    }
                    ins = vec![Some(acc), Some(operands[operands.len() - 1])];
                    Op::Binary(b)
                }
            }
            "Clip" => {
                if opset < 11 {
                    let lo = a.float("min", f32::NEG_INFINITY)?;
                    let hi = a.float("max", f32::INFINITY)?;
                    ins.truncate(1);
                    put(self, g, &mut ins, 1, a.has("min").then(|| f32c(lo)));
                    put(self, g, &mut ins, 2, a.has("max").then(|| f32c(hi)));
                }
                Op::Clip
            }
            "Where" => Op::Where,
            "Conv" => Op::Conv(a.conv()?),
            "ConvInteger" => Op::ConvInteger(a.conv()?),
            "QLinearConv" => Op::QLinearConv(a.conv()?),
            "ConvTranspose" => Op::ConvTranspose {
                conv: a.conv()?,
                output_padding: a.usizes("output_padding")?,
                output_shape: a.usizes("output_shape")?,
            },
            "MatMul" => Op::MatMul,
            "MatMulInteger" => Op::MatMulInteger,
            "QLinearMatMul" => Op::QLinearMatMul,
            "Gemm" => Op::Gemm {
                alpha: a.float("alpha", 1.0)?,
                beta: a.float("beta", 1.0)?,
                trans_a: a.bool("transA", false)?,
                trans_b: a.bool("transB", false)?,
            },
            "MaxPool" => Op::MaxPool {
                pool: a.pool()?,
                storage_order: a.int("storage_order", 0)?,
            },
            "AveragePool" => Op::AveragePool {
                pool: a.pool()?,
                count_include_pad: a.bool("count_include_pad", false)?,
            },
            "GlobalAveragePool" => Op::GlobalAveragePool,
            "GlobalMaxPool" => Op::GlobalMaxPool,
            "BatchNormalization" => {
                let training = a.bool("training_mode", false)?
                    || (opset < 9 && n_out > 1 && a.int("is_test", 0)? == 0);
                Op::BatchNorm {
                    epsilon: a.float("epsilon", 1e-5)?,
                    training,
                    momentum: a.float("momentum", 0.9)?,
                }
            }
            "LayerNormalization" => {
                if a.int("stash_type", 1)? != 1 {
                    return Err(a.err("only stash_type 1 (float) is supported"));
                }
                Op::LayerNorm {
                    axis: a.int("axis", -1)?,
                    epsilon: a.float("epsilon", 1e-5)?,
                }
            }
            "Softmax" | "LogSoftmax" => {
                let coerce_2d = opset < 13;
                let axis = a.int("axis", if coerce_2d { 1 } else { -1 })?;
                if op_type == "Softmax" {
                    Op::Softmax { axis, coerce_2d }
                } else {
                    Op::LogSoftmax { axis, coerce_2d }
                }
            }
            "ReduceMax" | "ReduceMean" | "ReduceSum" => {
                let (r, axes_input_from) = match op_type.as_str() {
                    "ReduceMax" => (ReduceOp::Max, 18),
                    "ReduceMean" => (ReduceOp::Mean, 18),
                    _ => (ReduceOp::Sum, 13),
                };
                if opset < axes_input_from {
                    ins.truncate(1);
                    put(self, g, &mut ins, 1, a.ints("axes").map(|v| i64v(&v)));
                }
                Op::Reduce {
                    op: r,
                    keepdims: a.bool("keepdims", true)?,
                    noop_with_empty_axes: a.bool("noop_with_empty_axes", false)?,
                }
            }
            "Concat" => {
                if opset >= 4 && !a.has("axis") {
                    return Err(a.err("attribute 'axis' is required"));
                }
                Op::Concat {
                    axis: a.int("axis", 1)?,
                }
            }
            "Split" => {
                if opset < 13 {
                    ins.truncate(1);
                    put(
                        self,
                        g,
                        &mut ins,
                        1,
                        a.ints("split").filter(|v| !v.is_empty()).map(|v| i64v(&v)),
                    );
                }
                if n_out != out_names.len() || out_names.iter().any(|s| s.is_empty()) {
                    return Err(a.err("every output of Split must be named"));
                }
                if a.has("num_outputs") && a.int("num_outputs", 0)? as usize != n_out {
                    return Err(a.err("num_outputs does not match the number of outputs"));
                }
                Op::Split {
                    axis: a.int("axis", 0)?,
                    num_outputs: n_out,
                }
            }
            "Flatten" => Op::Flatten {
                axis: a.int("axis", 1)?,
            },
            "Reshape" => {
                if opset < 5 {
                    ins.truncate(1);
                    put(self, g, &mut ins, 1, a.ints("shape").map(|v| i64v(&v)));
                }
                Op::Reshape {
                    allowzero: a.bool("allowzero", false)?,
                }
            }
            "Squeeze" | "Unsqueeze" => {
                if opset < 13 {
                    ins.truncate(1);
                    put(self, g, &mut ins, 1, a.ints("axes").map(|v| i64v(&v)));
                }
                if op_type == "Squeeze" {
                    Op::Squeeze
                } else {
                    Op::Unsqueeze
                }
            }
            "Transpose" => Op::Transpose {
                perm: a.usizes("perm")?,
            },
            "Expand" => Op::Expand,
            "Gather" => Op::Gather {
                axis: a.int("axis", 0)?,
            },
            "Shape" => Op::ShapeOf {
                start: a.int("start", 0)?,
                end: if a.has("end") {
                    Some(a.int("end", 0)?)
                } else {
                    None
                },
            },
            "Slice" => {
                if opset < 10 {
                    ins.truncate(1);
                    let starts = a
                        .ints("starts")
                        .ok_or_else(|| a.err("starts is required"))?;
                    let ends = a.ints("ends").ok_or_else(|| a.err("ends is required"))?;
                    put(self, g, &mut ins, 1, Some(i64v(&starts)));
                    put(self, g, &mut ins, 2, Some(i64v(&ends)));
                    put(self, g, &mut ins, 3, a.ints("axes").map(|v| i64v(&v)));
                }
                Op::Slice
            }
            "Pad" => {
                let mode = match a.string("mode", "constant")?.as_str() {
                    "constant" => PadMode::Constant,
                    "reflect" => PadMode::Reflect,
                    "edge" => PadMode::Edge,
                    "wrap" => PadMode::Wrap,
                    o => return Err(a.err(format!("unknown pad mode '{o}'"))),
                };
                if opset < 11 {
                    ins.truncate(1);
                    let pads = a
                        .ints("pads")
                        .or_else(|| a.ints("paddings"))
                        .ok_or_else(|| a.err("pads is required"))?;
                    put(self, g, &mut ins, 1, Some(i64v(&pads)));
                    put(self, g, &mut ins, 2, Some(f32c(a.float("value", 0.0)?)));
                }
                Op::Pad { mode }
            }
            "Resize" | "Upsample" => {
                let mode = match a.string("mode", "nearest")?.as_str() {
                    "nearest" => ResizeMode::Nearest,
                    "linear" | "bilinear" => ResizeMode::Linear,
                    "cubic" => ResizeMode::Cubic,
                    o => return Err(a.err(format!("unknown resize mode '{o}'"))),
                };
                let old = opset < 11 || op_type == "Upsample";
                let coord = if old {
                    CoordTransform::Asymmetric
                } else {
                    match a
                        .string("coordinate_transformation_mode", "half_pixel")?
                        .as_str()
                    {
                        "half_pixel" => CoordTransform::HalfPixel,
                        "half_pixel_symmetric" => CoordTransform::HalfPixelSymmetric,
                        "pytorch_half_pixel" => CoordTransform::PytorchHalfPixel,
                        "align_corners" => CoordTransform::AlignCorners,
                        "asymmetric" => CoordTransform::Asymmetric,
                        "tf_crop_and_resize" => CoordTransform::TfCropAndResize,
                        o => {
                            return Err(
                                a.err(format!("unknown coordinate_transformation_mode '{o}'"))
                            )
                        }
                    }
                };
                let nearest = if old {
                    NearestMode::Floor
                } else {
                    match a.string("nearest_mode", "round_prefer_floor")?.as_str() {
                        "round_prefer_floor" => NearestMode::RoundPreferFloor,
                        "round_prefer_ceil" => NearestMode::RoundPreferCeil,
                        "floor" => NearestMode::Floor,
                        "ceil" => NearestMode::Ceil,
                        o => return Err(a.err(format!("unknown nearest_mode '{o}'"))),
                    }
                };
                let policy = match a.string("keep_aspect_ratio_policy", "stretch")?.as_str() {
                    "stretch" => AspectPolicy::Stretch,
                    "not_larger" => AspectPolicy::NotLarger,
                    "not_smaller" => AspectPolicy::NotSmaller,
                    o => return Err(a.err(format!("unknown keep_aspect_ratio_policy '{o}'"))),
                };
                if old {
                    // (X, scales) → (X, roi=None, scales)
                    let scales = if op_type == "Upsample" && opset < 9 {
                        let s = a
                            .floats("scales")
                            .ok_or_else(|| a.err("scales is required"))?;
                        Some(self.konst(
                            g,
                            &first_out,
                            Tensor::from_f32(&[s.len()], s).map_err(|e| a.err(e.to_string()))?,
                        ))
                    } else {
                        ins.get(1).copied().flatten()
                    };
                    ins = vec![ins.first().copied().flatten(), None, scales];
                }
                Op::Resize(ResizeAttrs {
                    mode,
                    coord,
                    nearest,
                    cubic_a: a.float("cubic_coeff_a", -0.75)?,
                    exclude_outside: a.bool("exclude_outside", false)?,
                    extrapolation: a.float("extrapolation_value", 0.0)?,
                    antialias: a.bool("antialias", false)?,
                    axes: a.ints("axes").unwrap_or_default(),
                    policy,
                })
            }
            "Range" => Op::Range,
            "ConstantOfShape" => {
                let value = match a.tensor("value", self.base_dir)? {
                    Some(t) if t.len() == 1 => t.reshape(&[]).map_err(|e| a.err(e.to_string()))?,
                    Some(_) => return Err(a.err("value must have exactly one element")),
                    None => Tensor::scalar_f32(0.0),
                };
                Op::ConstantOfShape {
                    value: Arc::new(value),
                }
            }
            "Constant" => {
                let t = if let Some(t) = a.tensor("value", self.base_dir)? {
                    t
                } else if a.has("value_float") {
                    Tensor::scalar_f32(a.float("value_float", 0.0)?)
                } else if let Some(v) = a.floats("value_floats").filter(|_| a.has("value_floats")) {
                    Tensor::from_f32(&[v.len()], v).map_err(|e| a.err(e.to_string()))?
                } else if a.has("value_int") {
                    Tensor::scalar_i64(a.int("value_int", 0)?)
                } else if let Some(v) = a.ints("value_ints") {
                    Tensor::vec_i64(&v)
                } else {
                    return Err(a.err("only tensor/float/int Constant values are supported"));
                };
                let v = g.add_const(first_out.clone(), t);
                self.bind(&first_out, v, a)?;
                return Ok(());
            }
            "QuantizeLinear" => {
                let zp_dtype = ins
                    .get(2)
                    .copied()
                    .flatten()
                    .and_then(|z| g.const_value(z).map(|t| t.dtype()));
                let out_attr = a.int("output_dtype", 0)?;
                let dtype = match (zp_dtype, out_attr) {
                    (Some(d), _) => d,
                    (None, 0) => DType::U8,
                    (None, c) => dtype_from_onnx(c as i32).ok_or_else(|| {
                        a.err(format!(
                            "output_dtype {} is not supported",
                            onnx_type_name(c as i32)
                        ))
                    })?,
                };
                if !matches!(dtype, DType::U8 | DType::I8 | DType::I32) {
                    return Err(a.err(format!("quantizing to {dtype} is not supported")));
                }
                if a.int("saturate", 1)? != 1 {
                    return Err(a.err("saturate=0 (float8 only) is not supported"));
                }
                let block_size = a.int("block_size", 0)?;
                if block_size < 0 {
                    return Err(a.err("negative block_size"));
                }
                Op::QuantizeLinear {
                    q: QuantAxis {
                        axis: a.int("axis", 1)?,
                        block_size: block_size as usize,
                    },
                    dtype,
                }
            }
            "DequantizeLinear" => {
                let block_size = a.int("block_size", 0)?;
                if block_size < 0 {
                    return Err(a.err("negative block_size"));
                }
                if a.int("output_dtype", 0)? != 0 {
                    return Err(a.err("output_dtype is not supported"));
                }
                Op::DequantizeLinear {
                    q: QuantAxis {
                        axis: a.int("axis", 1)?,
                        block_size: block_size as usize,
                    },
                }
            }
            "DynamicQuantizeLinear" => Op::DynamicQuantizeLinear,
            other => return Err(a.err(format!("unsupported operator '{other}'"))),
        };
        let (req, max) = op.arity();
        let present = ins.iter().rposition(Option::is_some).map_or(0, |p| p + 1);
        if present < req || ins[..req.min(ins.len())].iter().any(Option::is_none) {
            return Err(a.err(format!("needs {req} inputs, got {present}")));
        }
        if let Some(m) = max {
            if present > m {
                return Err(a.err(format!("takes at most {m} inputs, got {present}")));
            }
            ins.truncate(m.max(present));
        }
        ins.truncate(present.max(req));
        let outputs: Vec<Output> = (0..n_out)
            .map(|i| {
                let nm = &out_names[i];
                Output::named(if nm.is_empty() {
                    self.fresh_value(&first_out)
                } else {
                    nm.clone()
                })
            })
            .collect();
        let names: Vec<String> = outputs.iter().map(|o| o.name.clone()).collect();
        let id = g.add_node(name, op, &ins, outputs);
        for (i, nm) in names.iter().enumerate() {
            self.bind(
                nm,
                ValueRef {
                    node: id,
                    output: i,
                },
                a,
            )?;
        }
        Ok(())
    }

    fn bind(&mut self, name: &str, v: ValueRef, a: &Attrs) -> Result<(), ImportError> {
        if self.values.insert(name.to_string(), v).is_some() {
            return Err(a.err(format!("value '{name}' is produced twice")));
        }
        Ok(())
    }
}
