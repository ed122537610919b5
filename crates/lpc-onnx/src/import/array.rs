//! Shape and data-movement ONNX ops: Concat, Split, Reshape, Transpose, Gather, Slice, Pad,
//! Resize, Shape, Range and the constants.

use super::table::{Converted, Cx, Table};
use crate::ImportError;
use lpc_ir::*;
use std::sync::Arc;

/// Registers this family's converters.
pub(super) fn register(t: &mut Table) {
    t.add("Concat", concat);
    t.add("Split", split);
    t.add("Flatten", flatten);
    t.add("Reshape", reshape);
    t.add("Squeeze", squeeze_unsqueeze);
    t.add("Unsqueeze", squeeze_unsqueeze);
    t.add("Transpose", transpose);
    t.add("Expand", |_, _| Ok(Converted::Op(Op::Expand)));
    t.add("Gather", gather);
    t.add("Shape", shape_of);
    t.add("Slice", slice);
    t.add("Pad", pad);
    t.add("Resize", resize);
    t.add("Upsample", resize);
    t.add("Range", |_, _| Ok(Converted::Op(Op::Range)));
    t.add("ConstantOfShape", constant_of_shape);
    t.add("Constant", constant);
}

/// `Concat`.
fn concat(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    if cx.opset >= 4 && !a.has("axis") {
        return Err(a.err("attribute 'axis' is required"));
    }
    Ok(Converted::Op(Op::Concat {
        axis: a.int("axis", 1)?,
    }))
}

/// `Split`.
fn split(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    if cx.opset < 13 {
        cx.ins.truncate(1);
        cx.put(
            g,
            1,
            a.ints("split")?
                .filter(|v| !v.is_empty())
                .map(|v| Tensor::vec_i64(&v)),
        );
    }
    if cx.n_out != cx.out_names.len() || cx.out_names.iter().any(|s| s.is_empty()) {
        return Err(a.err("every output of Split must be named"));
    }
    if a.has("num_outputs") && a.int("num_outputs", 0)? as usize != cx.n_out {
        return Err(a.err("num_outputs does not match the number of outputs"));
    }
    Ok(Converted::Op(Op::Split {
        axis: a.int("axis", 0)?,
        num_outputs: cx.n_out,
    }))
}

/// `Flatten`.
fn flatten(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    Ok(Converted::Op(Op::Flatten {
        axis: a.int("axis", 1)?,
    }))
}

/// `Reshape`.
fn reshape(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    if cx.opset < 5 {
        cx.ins.truncate(1);
        cx.put(g, 1, a.ints("shape")?.map(|v| Tensor::vec_i64(&v)));
    }
    Ok(Converted::Op(Op::Reshape {
        allowzero: a.bool("allowzero", false)?,
    }))
}

/// `Squeeze`, `Unsqueeze`.
fn squeeze_unsqueeze(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    if cx.opset < 13 {
        cx.ins.truncate(1);
        cx.put(g, 1, a.ints("axes")?.map(|v| Tensor::vec_i64(&v)));
    }
    Ok(Converted::Op(if cx.op_type == "Squeeze" {
        Op::Squeeze
    } else {
        Op::Unsqueeze
    }))
}

/// `Transpose`.
fn transpose(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    Ok(Converted::Op(Op::Transpose {
        perm: a.usizes("perm")?,
    }))
}

/// `Gather`.
fn gather(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    Ok(Converted::Op(Op::Gather {
        axis: a.int("axis", 0)?,
    }))
}

/// `Shape`.
fn shape_of(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    Ok(Converted::Op(Op::ShapeOf {
        start: a.int("start", 0)?,
        end: if a.has("end") {
            Some(a.int("end", 0)?)
        } else {
            None
        },
    }))
}

/// `Slice`.
fn slice(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    if cx.opset < 10 {
        cx.ins.truncate(1);
        let starts = a
            .ints("starts")?
            .ok_or_else(|| a.err("starts is required"))?;
        let ends = a.ints("ends")?.ok_or_else(|| a.err("ends is required"))?;
        cx.put(g, 1, Some(Tensor::vec_i64(&starts)));
        cx.put(g, 2, Some(Tensor::vec_i64(&ends)));
        cx.put(g, 3, a.ints("axes")?.map(|v| Tensor::vec_i64(&v)));
    }
    Ok(Converted::Op(Op::Slice))
}

/// `Pad`.
fn pad(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let mode = match a.string("mode", "constant")?.as_str() {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        "wrap" => PadMode::Wrap,
        o => return Err(a.err(format!("unknown pad mode '{o}'"))),
    };
    if cx.opset < 11 {
        cx.ins.truncate(1);
        let pads = a
            .ints("pads")?
            .or(a.ints("paddings")?)
            .ok_or_else(|| a.err("pads is required"))?;
        cx.put(g, 1, Some(Tensor::vec_i64(&pads)));
        cx.put(g, 2, Some(Tensor::scalar_f32(a.float("value", 0.0)?)));
    }
    Ok(Converted::Op(Op::Pad { mode }))
}

/// `Resize`, `Upsample`.
fn resize(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let mode = match a.string("mode", "nearest")?.as_str() {
        "nearest" => ResizeMode::Nearest,
        "linear" | "bilinear" => ResizeMode::Linear,
        "cubic" => ResizeMode::Cubic,
        o => return Err(a.err(format!("unknown resize mode '{o}'"))),
    };
    let old = cx.opset < 11 || cx.op_type == "Upsample";
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
            o => return Err(a.err(format!("unknown coordinate_transformation_mode '{o}'"))),
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
        let scales = if cx.op_type == "Upsample" && cx.opset < 9 {
            let s = a
                .floats("scales")?
                .ok_or_else(|| a.err("scales is required"))?;
            Some(cx.me.konst(
                g,
                &cx.first_out,
                Tensor::from_f32(&[s.len()], s).map_err(|e| a.err(e.to_string()))?,
            ))
        } else {
            cx.ins.get(1).copied().flatten()
        };
        cx.ins = vec![cx.ins.first().copied().flatten(), None, scales];
    }
    Ok(Converted::Op(Op::Resize(ResizeAttrs {
        mode,
        coord,
        nearest,
        cubic_a: a.float("cubic_coeff_a", -0.75)?,
        exclude_outside: a.bool("exclude_outside", false)?,
        extrapolation: a.float("extrapolation_value", 0.0)?,
        antialias: a.bool("antialias", false)?,
        axes: a.ints("axes")?.unwrap_or_default(),
        policy,
    })))
}

/// `ConstantOfShape`.
fn constant_of_shape(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let value = match a.tensor("value", cx.me.base_dir)? {
        Some(t) if t.len() == 1 => t.reshape(&[]).map_err(|e| a.err(e.to_string()))?,
        Some(_) => return Err(a.err("value must have exactly one element")),
        None => Tensor::scalar_f32(0.0),
    };
    Ok(Converted::Op(Op::ConstantOfShape {
        value: Arc::new(value),
    }))
}

/// `Constant`.
fn constant(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let t = if let Some(t) = a.tensor("value", cx.me.base_dir)? {
        t
    } else if a.has("value_float") {
        Tensor::scalar_f32(a.float("value_float", 0.0)?)
    } else if let Some(v) = a.floats("value_floats")?.filter(|_| a.has("value_floats")) {
        Tensor::from_f32(&[v.len()], v).map_err(|e| a.err(e.to_string()))?
    } else if a.has("value_int") {
        Tensor::scalar_i64(a.int("value_int", 0)?)
    } else if let Some(v) = a.ints("value_ints")? {
        Tensor::vec_i64(&v)
    } else {
        return Err(a.err("only tensor/float/int Constant values are supported"));
    };
    let v = g.add_const(cx.first_out.clone(), t);
    cx.me.bind(&cx.first_out, v, a)?;
    Ok(Converted::Bound)
}
