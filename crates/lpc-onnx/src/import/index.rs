//! Indexing and rearranging ONNX ops: GatherElements, GatherND, ScatterElements (and the
//! older Scatter), ScatterND, Tile, DepthToSpace and SpaceToDepth.

use super::attrs::Attrs;
use super::table::{Converted, Cx, Table};
use crate::ImportError;
use lpc_ir::*;

/// Registers this family's converters.
pub(super) fn register(t: &mut Table) {
    t.add("GatherElements", |cx, _| {
        Ok(Converted::Op(Op::GatherElements {
            axis: cx.a.int("axis", 0)?,
        }))
    });
    t.add("GatherND", |cx, _| {
        Ok(Converted::Op(Op::GatherNd {
            batch_dims: non_negative(cx.a, "batch_dims")?,
        }))
    });
    t.add("ScatterElements", scatter_elements);
    t.add("Scatter", scatter_elements);
    t.add("ScatterND", |cx, _| {
        Ok(Converted::Op(Op::ScatterNd {
            reduction: reduction(cx.a)?,
        }))
    });
    t.add("Tile", tile);
    t.add("CastLike", |_, _| Ok(Converted::Op(Op::CastLike)));
    t.add("Size", |_, _| Ok(Converted::Op(Op::Size)));
    t.add("ArgMax", arg);
    t.add("TopK", top_k);
    t.add("Trilu", |cx, _| {
        Ok(Converted::Op(Op::Trilu {
            upper: cx.a.bool("upper", true)?,
        }))
    });
    t.add("ArgMin", arg);
    t.add("DepthToSpace", depth_to_space);
    t.add("SpaceToDepth", |cx, _| {
        Ok(Converted::Op(Op::SpaceToDepth {
            blocksize: blocksize(cx.a)?,
            mode: block_order(cx.a)?,
        }))
    });
}

fn non_negative(a: &Attrs, key: &str) -> Result<usize, ImportError> {
    let v = a.int(key, 0)?;
    usize::try_from(v).map_err(|_| a.err(format!("{key} {v} is negative")))
}

fn blocksize(a: &Attrs) -> Result<usize, ImportError> {
    if !a.has("blocksize") {
        return Err(a.err("attribute 'blocksize' is required"));
    }
    match a.int("blocksize", 0)? {
        b if b >= 1 => Ok(b as usize),
        b => Err(a.err(format!("blocksize {b} must be positive"))),
    }
}

fn reduction(a: &Attrs) -> Result<ScatterReduction, ImportError> {
    Ok(match a.string("reduction", "none")?.as_str() {
        "none" => ScatterReduction::None,
        "add" => ScatterReduction::Add,
        "mul" => ScatterReduction::Mul,
        "max" => ScatterReduction::Max,
        "min" => ScatterReduction::Min,
        o => return Err(a.err(format!("unknown reduction '{o}'"))),
    })
}

/// `ScatterElements`, and `Scatter` (opsets 9-10), the same op without a reduction.
fn scatter_elements(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    Ok(Converted::Op(Op::ScatterElements {
        axis: cx.a.int("axis", 0)?,
        reduction: reduction(cx.a)?,
    }))
}

/// `Tile` (opset 6 on: input and repeats; opset 1's `tiles`/`axis` inputs are refused).
fn tile(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    if cx.ins.len() > 2 {
        return Err(cx.a.err(
            "Tile with three inputs (opset 1: tiles and axis) is not supported; re-export with opset 6 or later",
        ));
    }
    Ok(Converted::Op(Op::Tile))
}

/// The `mode` of DepthToSpace (from opset 11) and SpaceToDepth (from opset 25); DCR before.
fn block_order(a: &Attrs) -> Result<BlockOrder, ImportError> {
    match a.string("mode", "DCR")?.as_str() {
        "DCR" => Ok(BlockOrder::Dcr),
        "CRD" => Ok(BlockOrder::Crd),
        o => Err(a.err(format!("unknown mode '{o}' (expected DCR or CRD)"))),
    }
}

/// `DepthToSpace`.
fn depth_to_space(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    Ok(Converted::Op(Op::DepthToSpace {
        blocksize: blocksize(cx.a)?,
        mode: block_order(cx.a)?,
    }))
}

/// `ArgMax`, `ArgMin`.
fn arg(cx: &mut Cx, _g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    let attrs = ArgAttrs {
        axis: a.int("axis", 0)?,
        keepdims: a.bool("keepdims", true)?,
        select_last_index: a.bool("select_last_index", false)?,
    };
    Ok(Converted::Op(if cx.op_type == "ArgMax" {
        Op::ArgMax(attrs)
    } else {
        Op::ArgMin(attrs)
    }))
}

/// `TopK` (opset 10 on: k is an input; opset 1's `k` attribute becomes one). Opset 11's
/// `sorted = 0` allows any order; lpc always returns sorted results.
fn top_k(cx: &mut Cx, g: &mut Graph) -> Result<Converted, ImportError> {
    let a = cx.a;
    if cx.opset < 10 {
        let k = a.int("k", -1)?;
        if k < 0 {
            return Err(a.err("attribute 'k' is required"));
        }
        cx.ins.truncate(1);
        cx.put(g, 1, Some(Tensor::vec_i64(&[k])));
    }
    Ok(Converted::Op(Op::TopK {
        axis: a.int("axis", -1)?,
        largest: a.bool("largest", true)?,
    }))
}
