//! `Attrs`: a node's ONNX attributes, read with ONNX defaults and errors naming the node.

use crate::proto::attribute_proto::AttributeType;
use crate::proto::{AttributeProto, NodeProto};
use crate::tensor::tensor_from_proto;
use crate::ImportError;
use lpc_ir::{AutoPad, ConvAttrs, PoolAttrs, Tensor};
use std::path::Path;

/// Attribute access with ONNX defaults and errors naming the node.
pub(super) struct Attrs<'n> {
    pub node: &'n NodeProto,
    pub name: String,
    pub opset: i64,
}

impl<'n> Attrs<'n> {
    pub fn err(&self, msg: impl Into<String>) -> ImportError {
        ImportError::Node {
            node: self.name.clone(),
            op_type: self.node.op_type.clone().unwrap_or_default(),
            opset: self.opset,
            msg: msg.into(),
        }
    }
    pub fn get(&self, key: &str) -> Option<&'n AttributeProto> {
        self.node
            .attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(key))
    }
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    /// The attribute `key` when present, checked to be of type `want` (as onnx.checker does:
    /// a FLOAT where an INT is required is an error). An attribute without a type (IR version
    /// 1) is taken by which field it fills.
    pub fn typed(
        &self,
        key: &str,
        want: AttributeType,
    ) -> Result<Option<&'n AttributeProto>, ImportError> {
        let Some(a) = self.get(key) else {
            return Ok(None);
        };
        let declared = a.r#type.and_then(|t| AttributeType::try_from(t).ok());
        let filled = filled_type(a);
        let got = match declared {
            Some(t) if t != AttributeType::Undefined => {
                if filled != AttributeType::Undefined && filled != t {
                    return Err(self.err(format!(
                        "attribute '{key}' declares type {} but holds {}",
                        t.as_str_name(),
                        filled.as_str_name()
                    )));
                }
                t
            }
            _ => filled,
        };
        if got != want {
            return Err(self.err(format!(
                "attribute '{key}' is {}, expected {}",
                got.as_str_name(),
                want.as_str_name()
            )));
        }
        Ok(Some(a))
    }
    pub fn int(&self, key: &str, default: i64) -> Result<i64, ImportError> {
        match self.typed(key, AttributeType::Int)? {
            None => Ok(default),
            Some(a) => {
                a.i.ok_or_else(|| self.err(format!("attribute '{key}' must be an int")))
            }
        }
    }
    pub fn float(&self, key: &str, default: f32) -> Result<f32, ImportError> {
        match self.typed(key, AttributeType::Float)? {
            None => Ok(default),
            Some(a) => {
                a.f.ok_or_else(|| self.err(format!("attribute '{key}' must be a float")))
            }
        }
    }
    /// A list of ints (`None` when absent).
    pub fn ints(&self, key: &str) -> Result<Option<Vec<i64>>, ImportError> {
        Ok(self
            .typed(key, AttributeType::Ints)?
            .map(|a| a.ints.clone()))
    }
    /// A list of floats (`None` when absent).
    pub fn floats(&self, key: &str) -> Result<Option<Vec<f32>>, ImportError> {
        Ok(self
            .typed(key, AttributeType::Floats)?
            .map(|a| a.floats.clone()))
    }
    pub fn string(&self, key: &str, default: &str) -> Result<String, ImportError> {
        match self.typed(key, AttributeType::String)? {
            None => Ok(default.to_string()),
            Some(a) => match &a.s {
                Some(s) => String::from_utf8(s.clone())
                    .map_err(|_| self.err(format!("attribute '{key}' is not UTF-8"))),
                None => Err(self.err(format!("attribute '{key}' must be a string"))),
            },
        }
    }
    /// A list of UTF-8 strings (`None` when absent).
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, ImportError> {
        let Some(a) = self.typed(key, AttributeType::Strings)? else {
            return Ok(None);
        };
        a.strings
            .iter()
            .map(|s| {
                String::from_utf8(s.clone())
                    .map_err(|_| self.err(format!("attribute '{key}' is not UTF-8")))
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }
    pub fn usizes(&self, key: &str) -> Result<Vec<usize>, ImportError> {
        let v = self.ints(key)?.unwrap_or_default();
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
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, ImportError> {
        Ok(self.int(key, default as i64)? != 0)
    }
    pub fn auto_pad(&self) -> Result<AutoPad, ImportError> {
        Ok(match self.string("auto_pad", "NOTSET")?.as_str() {
            "NOTSET" | "" => AutoPad::NotSet,
            "SAME_UPPER" => AutoPad::SameUpper,
            "SAME_LOWER" => AutoPad::SameLower,
            "VALID" => AutoPad::Valid,
            other => return Err(self.err(format!("unknown auto_pad '{other}'"))),
        })
    }
    pub fn conv(&self) -> Result<ConvAttrs, ImportError> {
        let group = self.int("group", 1)?;
        if !(1..=(1 << 24)).contains(&group) {
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
    pub fn pool(&self) -> Result<PoolAttrs, ImportError> {
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
    pub fn tensor(&self, key: &str, base: Option<&Path>) -> Result<Option<Tensor>, ImportError> {
        match self
            .typed(key, AttributeType::Tensor)?
            .and_then(|a| a.t.as_ref())
        {
            None => Ok(None),
            Some(t) => tensor_from_proto(t, base)
                .map(Some)
                .map_err(|e| self.err(e.to_string())),
        }
    }
}

/// The type of an attribute that declares none (IR version 1), by the field it fills; an empty
/// list reads as whichever list is asked for, so it is `Undefined` only when nothing is set.
fn filled_type(a: &AttributeProto) -> AttributeType {
    use AttributeType as T;
    if a.f.is_some() {
        T::Float
    } else if a.i.is_some() {
        T::Int
    } else if a.s.is_some() {
        T::String
    } else if a.t.is_some() {
        T::Tensor
    } else if a.g.is_some() {
        T::Graph
    } else if !a.floats.is_empty() {
        T::Floats
    } else if !a.ints.is_empty() {
        T::Ints
    } else if !a.strings.is_empty() {
        T::Strings
    } else if !a.tensors.is_empty() {
        T::Tensors
    } else if !a.graphs.is_empty() {
        T::Graphs
    } else {
        T::Undefined
    }
}
