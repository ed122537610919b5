//! Shape and data-movement OpenVINO operations: Const, Reshape, Transpose, (Un)Squeeze, Concat,
//! ShapeOf, Gather, Interpolate, Pad, Split, Slice, StridedSlice and Broadcast.

use super::{const_ints, need, one, to_i64, Table, R};
use crate::builder::Builder;
use crate::net::{element_type, Layer};
use lpc_ir::{
    AspectPolicy, CoordTransform, DType, NearestMode, Op, PadMode, ResizeAttrs, ResizeMode, Tensor,
    UnaryOp, ValueRef,
};

/// Registers this family's converters.
pub(super) fn register(t: &mut Table) {
    t.add("Const", constant);
    t.add("Reshape", reshape);
    t.add("Transpose", transpose);
    t.add("Squeeze", squeeze);
    t.add("Unsqueeze", unsqueeze);
    t.add("Concat", concat);
    t.add("ShapeOf", shape_of);
    t.add("Gather", gather);
    t.add("Interpolate", interpolate);
    t.add("Pad", pad);
    t.add("Split", split);
    t.add("VariadicSplit", split);
    t.add("Slice", slice);
    t.add("StridedSlice", strided_slice);
    t.add("Broadcast", broadcast);
}

/// `Const`.
fn constant(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 0, 0)?;
    let t = b.const_tensor(l)?;
    let base = l
        .outputs
        .first()
        .and_then(|p| p.names.first())
        .unwrap_or(&l.name)
        .clone();
    one(b.konst(&base, t))
}

/// `Reshape`.
fn reshape(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 2, 2)?;
    let special_zero = l.bool_attr("special_zero", false)?;
    let shape = to_i64(b, l, ins[1]);
    Ok(b.main(
        l,
        Op::Reshape {
            allowzero: !special_zero,
        },
        &[Some(ins[0]), Some(shape)],
    ))
}

/// `Transpose`.
fn transpose(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 2, 2)?;
    let order = const_ints(b, l, ins[1], "order")?;
    let r = l.rank(0);
    let mut seen = vec![false; order.len()];
    for &p in &order {
        if p < 0 || p as usize >= order.len() || std::mem::replace(&mut seen[p as usize], true) {
            return Err(l.err(format!("order {order:?} is not a permutation")));
        }
    }
    if !order.is_empty() && order.len() != r {
        return Err(l.err(format!("order {order:?} does not fit an input of rank {r}")));
    }
    let perm = order.into_iter().map(|p| p as usize).collect();
    Ok(b.main(l, Op::Transpose { perm }, &[Some(ins[0])]))
}

/// `Squeeze`.
fn squeeze(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 1, 2)?;
    let axes = ins.get(1).map(|&a| to_i64(b, l, a));
    Ok(b.main(l, Op::Squeeze, &[Some(ins[0]), axes]))
}

/// `Unsqueeze`.
fn unsqueeze(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 2, 2)?;
    let axes = to_i64(b, l, ins[1]);
    Ok(b.main(l, Op::Unsqueeze, &[Some(ins[0]), Some(axes)]))
}

/// `Concat`.
fn concat(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    if ins.is_empty() {
        return Err(l.err("needs at least one input"));
    }
    let axis = l.i64_attr("axis", i64::MIN)?;
    if axis == i64::MIN {
        return Err(l.err("missing attribute 'axis'"));
    }
    let inputs: Vec<_> = ins.iter().map(|&v| Some(v)).collect();
    Ok(b.main(l, Op::Concat { axis }, &inputs))
}

/// `ShapeOf`.
fn shape_of(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 1, 1)?;
    let to = element_type(l.str_attr("output_type", "i64")).map_err(|m| l.err(m))?;
    let vs = b.main(
        l,
        Op::ShapeOf {
            start: 0,
            end: None,
        },
        &[Some(ins[0])],
    );
    if to == DType::I64 {
        return Ok(vs);
    }
    let ty = b.g.value_type(vs[0]).clone();
    b.g.output_mut(vs[0]).ty.dtype = Some(DType::I64);
    let base = b.g.value_name(vs[0]).to_string();
    one(b.aux(&base, Op::Unary(UnaryOp::Cast { to }), &[Some(vs[0])], ty))
}

/// `Gather`.
fn gather(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 3, 3)?;
    if l.i64_attr("batch_dims", 0)? != 0 {
        return Err(l.err("batch_dims other than 0 is not supported"));
    }
    let axis = match const_ints(b, l, ins[2], "axis")?.as_slice() {
        [a] => *a,
        other => return Err(l.err(format!("axis must hold one value, got {other:?}"))),
    };
    Ok(b.main(l, Op::Gather { axis }, &[Some(ins[0]), Some(ins[1])]))
}

/// `Pad`.
fn pad(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 3, 4)?;
    let mode = match l.str_attr("pad_mode", "constant") {
        "constant" => PadMode::Constant,
        "edge" => PadMode::Edge,
        "reflect" => PadMode::Reflect,
        other => return Err(l.err(format!("pad_mode '{other}' is not supported"))),
    };
    let begin = const_ints(b, l, ins[1], "pads_begin")?;
    let end = const_ints(b, l, ins[2], "pads_end")?;
    if begin.len() != end.len() {
        return Err(l.err(format!(
            "pads_begin has {} values, pads_end {}",
            begin.len(),
            end.len()
        )));
    }
    let pads = b.konst(&l.name, Tensor::vec_i64(&[begin, end].concat()));
    Ok(b.main(
        l,
        Op::Pad { mode },
        &[Some(ins[0]), Some(pads), ins.get(3).copied(), None],
    ))
}

/// `Split`, `VariadicSplit`.
fn split(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 2, 3)?;
    let axis = match const_ints(b, l, ins[1], "axis")?.as_slice() {
        [a] => *a,
        other => return Err(l.err(format!("axis must hold one value, got {other:?}"))),
    };
    let n = l.outputs.len();
    let split = if l.ty == "VariadicSplit" {
        need(l, ins, 3, 3)?;
        let mut lens = const_ints(b, l, ins[2], "split_lengths")?;
        if let Some(k) = lens.iter().position(|&x| x == -1) {
            let r = l.rank(0) as i64;
            let ax = if axis < 0 { axis + r } else { axis };
            let dims = l.known_dims(0, "VariadicSplit with -1")?;
            let total = *dims
                .get(ax as usize)
                .ok_or_else(|| l.err(format!("axis {axis} out of range")))?
                as i64;
            lens[k] = total - lens.iter().filter(|&&x| x != -1).sum::<i64>();
        }
        Some(b.konst(&l.name, Tensor::vec_i64(&lens)))
    } else {
        need(l, ins, 2, 2)?;
        let num = l.i64_attr("num_splits", -1)?;
        if num != n as i64 {
            return Err(l.err(format!("num_splits {num} does not match {n} output ports")));
        }
        None
    };
    Ok(b.main(
        l,
        Op::Split {
            axis,
            num_outputs: n,
        },
        &[Some(ins[0]), split],
    ))
}

/// `Slice`.
fn slice(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 4, 5)?;
    let (start, stop, step) = (
        to_i64(b, l, ins[1]),
        to_i64(b, l, ins[2]),
        to_i64(b, l, ins[3]),
    );
    let axes = ins.get(4).map(|&a| to_i64(b, l, a));
    Ok(b.main(
        l,
        Op::Slice,
        &[Some(ins[0]), Some(start), Some(stop), axes, Some(step)],
    ))
}

/// `Broadcast`.
fn broadcast(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 2, 2)?;
    match l.str_attr("mode", "numpy").to_ascii_lowercase().as_str() {
        "numpy" | "bidirectional" => {}
        other => return Err(l.err(format!("broadcast mode '{other}' is not supported"))),
    }
    let shape = to_i64(b, l, ins[1]);
    Ok(b.main(l, Op::Expand, &[Some(ins[0]), Some(shape)]))
}

fn interpolate(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    let v = l.opset();
    if v != 4 && v != 11 {
        return Err(l.err("only Interpolate-4 and Interpolate-11 are supported"));
    }
    let by_sizes = match l.str_attr("shape_calculation_mode", "") {
        "sizes" => true,
        "scales" => false,
        other => return Err(l.err(format!("unknown shape_calculation_mode '{other}'"))),
    };
    // v4: (x, sizes, scales, axes?); v11: (x, scales_or_sizes, axes?).
    let (operand, axes) = if v == 4 {
        need(l, ins, 3, 4)?;
        (if by_sizes { ins[1] } else { ins[2] }, ins.get(3))
    } else {
        need(l, ins, 2, 3)?;
        (ins[1], ins.get(2))
    };
    let axes = match axes {
        Some(&a) => const_ints(b, l, a, "axes")?,
        None => vec![],
    };
    let pads = l.pads()?;
    if !pads.is_empty() {
        return Err(l.err("non-zero pads_begin/pads_end are not supported"));
    }
    if l.bool_attr("antialias", false)? {
        return Err(l.err("antialias is not supported"));
    }
    let mode = match l.str_attr("mode", "") {
        "nearest" => ResizeMode::Nearest,
        "linear_onnx" => ResizeMode::Linear,
        "cubic" => ResizeMode::Cubic,
        other => {
            return Err(l.err(format!(
                "mode '{other}' is not supported (nearest, linear_onnx, cubic)"
            )))
        }
    };
    let coord = match l.str_attr("coordinate_transformation_mode", "half_pixel") {
        "half_pixel" => CoordTransform::HalfPixel,
        "pytorch_half_pixel" => CoordTransform::PytorchHalfPixel,
        "asymmetric" => CoordTransform::Asymmetric,
        "align_corners" => CoordTransform::AlignCorners,
        other => {
            return Err(l.err(format!(
                "coordinate_transformation_mode '{other}' is not supported"
            )))
        }
    };
    let nearest = match l.str_attr("nearest_mode", "round_prefer_floor") {
        "round_prefer_floor" => NearestMode::RoundPreferFloor,
        "round_prefer_ceil" => NearestMode::RoundPreferCeil,
        "floor" => NearestMode::Floor,
        "ceil" => NearestMode::Ceil,
        other => return Err(l.err(format!("nearest_mode '{other}' is not supported"))),
    };
    let attrs = ResizeAttrs {
        mode,
        coord,
        nearest,
        cubic_a: l.f32_attr_or("cube_coeff", -0.75)?,
        exclude_outside: false,
        extrapolation: 0.0,
        antialias: false,
        axes,
        policy: AspectPolicy::Stretch,
    };
    let (scales, sizes) = if by_sizes {
        (None, Some(to_i64(b, l, operand)))
    } else {
        let s = match b.const_of(operand) {
            Some(t) if t.dtype() != DType::F32 => b.konst(&l.name, t.cast(DType::F32)),
            _ => operand,
        };
        (Some(s), None)
    };
    Ok(b.main(l, Op::Resize(attrs), &[Some(ins[0]), None, scales, sizes]))
}

fn strided_slice(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 3, 4)?;
    let mask = |k: &str| -> R<Vec<i64>> {
        if l.attr(k).is_some() {
            l.i64s(k)
        } else {
            Ok(vec![])
        }
    };
    for k in ["new_axis_mask", "shrink_axis_mask", "ellipsis_mask"] {
        if mask(k)?.iter().any(|&m| m != 0) {
            return Err(l.err(format!("{k} is not supported")));
        }
    }
    let (bm, em) = (mask("begin_mask")?, mask("end_mask")?);
    let mut begin = const_ints(b, l, ins[1], "begin")?;
    let mut end = const_ints(b, l, ins[2], "end")?;
    let step = match ins.get(3) {
        Some(&s) => const_ints(b, l, s, "stride")?,
        None => vec![1; begin.len()],
    };
    if end.len() != begin.len() || step.len() != begin.len() {
        return Err(l.err("begin, end and stride differ in length"));
    }
    for k in 0..begin.len() {
        let back = step[k] < 0;
        // A mask bit of 1 ignores the given bound and takes the whole axis.
        if bm.get(k) == Some(&1) {
            begin[k] = if back { i64::MAX } else { 0 };
        }
        if em.get(k) == Some(&1) {
            end[k] = if back { i64::MIN } else { i64::MAX };
        }
    }
    let axes: Vec<i64> = (0..begin.len() as i64).collect();
    let c = |b: &mut Builder, v: &[i64]| Some(b.konst(&l.name, Tensor::vec_i64(v)));
    let (s, e, a, st) = (c(b, &begin), c(b, &end), c(b, &axes), c(b, &step));
    Ok(b.main(l, Op::Slice, &[Some(ins[0]), s, e, a, st]))
}
