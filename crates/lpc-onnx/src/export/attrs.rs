//! Builders of ONNX protobuf pieces: attributes (one per ONNX attribute type), the conv / pool
//! attribute sets, and `ValueInfoProto` types.

use crate::proto::{self, AttributeProto, TensorProto, ValueInfoProto};
use crate::tensor::dtype_to_onnx;
use lpc_ir::{AutoPad, ConvAttrs, Dim, PoolAttrs, ValueType};

pub(super) fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(2),
        i: Some(v),
        ..Default::default()
    }
}
pub(super) fn attr_f(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(1),
        f: Some(v),
        ..Default::default()
    }
}
pub(super) fn attr_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(3),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}
pub(super) fn attr_fs(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(6),
        floats: v.to_vec(),
        ..Default::default()
    }
}
pub(super) fn attr_ss(name: &str, v: &[&str]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(8),
        strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}
pub(super) fn attr_is(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(7),
        ints: v.to_vec(),
        ..Default::default()
    }
}
pub(super) fn attr_t(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(4),
        t: Some(t),
        ..Default::default()
    }
}
pub(super) fn us(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&x| x as i64).collect()
}

pub(super) fn auto_pad(p: AutoPad) -> &'static str {
    match p {
        AutoPad::NotSet => "NOTSET",
        AutoPad::SameUpper => "SAME_UPPER",
        AutoPad::SameLower => "SAME_LOWER",
        AutoPad::Valid => "VALID",
    }
}

pub(super) fn conv_attrs(a: &ConvAttrs) -> Vec<AttributeProto> {
    let mut v = vec![
        attr_i("group", a.group as i64),
        attr_s("auto_pad", auto_pad(a.auto_pad)),
    ];
    for (k, x) in [
        ("kernel_shape", &a.kernel),
        ("strides", &a.strides),
        ("pads", &a.pads),
        ("dilations", &a.dilations),
    ] {
        if !x.is_empty() {
            v.push(attr_is(k, &us(x)));
        }
    }
    v
}

pub(super) fn pool_attrs(a: &PoolAttrs) -> Vec<AttributeProto> {
    let mut v = vec![
        attr_i("ceil_mode", a.ceil_mode as i64),
        attr_s("auto_pad", auto_pad(a.auto_pad)),
    ];
    for (k, x) in [
        ("kernel_shape", &a.kernel),
        ("strides", &a.strides),
        ("pads", &a.pads),
        ("dilations", &a.dilations),
    ] {
        if !x.is_empty() {
            v.push(attr_is(k, &us(x)));
        }
    }
    v
}

pub(super) fn value_info(name: &str, ty: &ValueType) -> ValueInfoProto {
    use proto::tensor_shape_proto::{dimension, Dimension};
    let shape = ty.shape.as_ref().map(|s| proto::TensorShapeProto {
        dim: s
            .0
            .iter()
            .map(|d| Dimension {
                value: Some(match d {
                    Dim::Known(k) => dimension::Value::DimValue(*k as i64),
                    Dim::Sym(s) => dimension::Value::DimParam(s.clone()),
                }),
                ..Default::default()
            })
            .collect(),
    });
    let tt = proto::type_proto::Tensor {
        elem_type: ty.dtype.map(dtype_to_onnx),
        shape,
    };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(proto::TypeProto {
            value: Some(proto::type_proto::Value::TensorType(tt)),
            ..Default::default()
        }),
        ..Default::default()
    }
}
