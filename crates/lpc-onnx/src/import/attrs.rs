//! `Attrs`: a node's ONNX attributes, read with ONNX defaults and errors naming the node.

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
    pub fn int(&self, key: &str, default: i64) -> Result<i64, ImportError> {
        match self.get(key) {
            None => Ok(default),
            Some(a) => {
                a.i.ok_or_else(|| self.err(format!("attribute '{key}' must be an int")))
            }
        }
    }
    pub fn float(&self, key: &str, default: f32) -> Result<f32, ImportError> {
        match self.get(key) {
            None => Ok(default),
            Some(a) => {
                a.f.ok_or_else(|| self.err(format!("attribute '{key}' must be a float")))
            }
        }
    }
    pub fn ints(&self, key: &str) -> Option<Vec<i64>> {
        self.get(key).map(|a| a.ints.clone())
    }
    pub fn floats(&self, key: &str) -> Option<Vec<f32>> {
        self.get(key).map(|a| a.floats.clone())
    }
    pub fn string(&self, key: &str, default: &str) -> Result<String, ImportError> {
        match self.get(key) {
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
        let Some(a) = self.get(key) else {
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
        match self.get(key).and_then(|a| a.t.as_ref()) {
            None => Ok(None),
            Some(t) => tensor_from_proto(t, base)
                .map(Some)
                .map_err(|e| self.err(e.to_string())),
        }
    }
}
