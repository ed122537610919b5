//! Neural-network OpenVINO operations: convolutions (grouped, transposed), MatMul, pooling,
//! softmax and BatchNormInference.

use super::{need, Table, R};
use crate::builder::Builder;
use crate::net::{element_type, Layer};
use crate::weights;
use lpc_ir::{DType, Op, UnaryOp, ValueRef};

/// Registers this family's converters.
pub(super) fn register(t: &mut Table) {
    t.add("Convolution", convolution);
    t.add("GroupConvolution", group_convolution);
    t.add("ConvolutionBackpropData", convolution_backprop_data);
    t.add("GroupConvolutionBackpropData", convolution_backprop_data);
    t.add("MatMul", mat_mul);
    t.add("MaxPool", max_pool);
    t.add("AvgPool", avg_pool);
    t.add("Softmax", softmax);
    t.add("SoftMax", softmax);
    t.add("LogSoftmax", softmax);
    t.add("BatchNormInference", batch_norm_inference);
}

/// `Convolution`.
fn convolution(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 2, 2)?;
    Ok(b.main(l, Op::Conv(l.conv_attrs(1)?), &[Some(ins[0]), Some(ins[1])]))
}

/// `GroupConvolution`.
fn group_convolution(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 2, 2)?;
    let dims = l.known_dims(1, "GroupConvolution")?;
    if dims.len() < 3 {
        return Err(l.err(format!(
            "weights of rank {} (expected [G, O/G, I/G, k...])",
            dims.len()
        )));
    }
    let w = weights::merge_groups(b, l, ins[1], &dims);
    Ok(b.main(
        l,
        Op::Conv(l.conv_attrs(dims[0])?),
        &[Some(ins[0]), Some(w)],
    ))
}

/// `ConvolutionBackpropData`, `GroupConvolutionBackpropData`.
fn convolution_backprop_data(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 2, 3)?;
    if ins.len() == 3 {
        return Err(l.err("the output_shape input is not supported"));
    }
    let (w, group) = if l.ty == "GroupConvolutionBackpropData" {
        let dims = l.known_dims(1, "GroupConvolutionBackpropData")?;
        if dims.len() < 3 {
            return Err(l.err(format!(
                "weights of rank {} (expected [G, I/G, O/G, k...])",
                dims.len()
            )));
        }
        (weights::merge_groups(b, l, ins[1], &dims), dims[0])
    } else {
        (ins[1], 1)
    };
    let output_padding = l.usizes_or_empty("output_padding")?;
    let output_padding = if output_padding.iter().all(|&p| p == 0) {
        vec![]
    } else {
        output_padding
    };
    let op = Op::ConvTranspose {
        conv: l.conv_attrs(group)?,
        output_padding,
        output_shape: vec![],
    };
    Ok(b.main(l, op, &[Some(ins[0]), Some(w)]))
}

/// `MatMul`.
fn mat_mul(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 2, 2)?;
    let (mut x, mut w) = (ins[0], ins[1]);
    if l.bool_attr("transpose_a", false)? && l.rank(0) >= 2 {
        let r = l.rank(0);
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 2, r - 1);
        let ty = weights::permuted(b.g.value_type(x), &perm);
        x = b.aux(&l.name, Op::Transpose { perm }, &[Some(x)], ty);
    }
    if l.bool_attr("transpose_b", false)? && l.rank(1) >= 2 {
        w = weights::swap_last2(b, l, w, l.rank(1));
    }
    Ok(b.main(l, Op::MatMul, &[Some(x), Some(w)]))
}

/// `MaxPool`.
fn max_pool(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 1, 1)?;
    let pool = l.pool_attrs()?;
    let op = Op::MaxPool {
        pool,
        storage_order: 0,
    };
    if l.outputs.len() < 2 || !b.is_used(l, 1) {
        let vs = b.main_n(l, op, &[Some(ins[0])], 1);
        // An unused indices port maps to the values; nothing reads it.
        return Ok(vec![vs[0]; l.outputs.len()]);
    }
    if l.i64_attr("axis", 0)? != 0 {
        return Err(l.err("indices counted from an axis other than 0 are not supported"));
    }
    let vs = b.main_n(l, op, &[Some(ins[0])], 2);
    let idx_type = element_type(l.str_attr("index_element_type", "i64")).map_err(|m| l.err(m))?;
    let ty = b.g.value_type(vs[1]).clone();
    b.g.output_mut(vs[1]).ty.dtype = Some(DType::I64);
    if idx_type == DType::I64 {
        return Ok(vs);
    }
    let base = b.g.value_name(vs[1]).to_string();
    let cast = b.aux(
        &base,
        Op::Unary(UnaryOp::Cast { to: idx_type }),
        &[Some(vs[1])],
        ty,
    );
    Ok(vec![vs[0], cast])
}

/// `AvgPool`.
fn avg_pool(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 1, 1)?;
    let pool = l.pool_attrs()?;
    let count_include_pad = !l.bool_attr("exclude-pad", false)?;
    Ok(b.main(
        l,
        Op::AveragePool {
            pool,
            count_include_pad,
        },
        &[Some(ins[0])],
    ))
}

/// `Softmax`, `SoftMax`, `LogSoftmax`.
fn softmax(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 1, 1)?;
    let axis = l.i64_attr("axis", 1)?;
    let op = if l.ty == "LogSoftmax" {
        Op::LogSoftmax {
            axis,
            coerce_2d: false,
        }
    } else {
        Op::Softmax {
            axis,
            coerce_2d: false,
        }
    };
    Ok(b.main(l, op, &[Some(ins[0])]))
}

/// `BatchNormInference`.
fn batch_norm_inference(b: &mut Builder, l: &Layer, ins: &[ValueRef]) -> R<Vec<ValueRef>> {
    need(l, ins, 5, 5)?;
    let epsilon = l.f64_attr("epsilon")? as f32;
    // opset1 takes (gamma, beta, data, mean, variance); opset5 puts data first.
    let order = if l.opset() >= 5 {
        [0, 1, 2, 3, 4]
    } else {
        [2, 0, 1, 3, 4]
    };
    let inputs: Vec<_> = order.iter().map(|&k| Some(ins[k])).collect();
    Ok(b.main(
        l,
        Op::BatchNorm {
            epsilon,
            training: false,
            momentum: 0.9,
        },
        &inputs,
    ))
}
