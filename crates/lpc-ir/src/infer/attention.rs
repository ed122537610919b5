//! Inference rule of ONNX Attention: operand dtypes, the head layout of 3-D and 4-D Q/K/V
//! against the attributes, and the shapes of Y, present_key, present_value and
//! qk_matmul_output.

use super::{dim_product, vt, Cx, InferError, SymGen};
use crate::{AttentionAttrs, DType, Dim, Shape, ValueType};

type R = Result<Vec<ValueType>, InferError>;

/// The dims of Q, K or V seen as `[batch, heads, seq, head_size]`.
struct Heads {
    batch: Dim,
    heads: Dim,
    seq: Dim,
    size: Dim,
}

/// The Attention rule.
pub(super) fn attention(cx: &Cx, a: &AttentionAttrs, syms: &mut SymGen) -> R {
    let q = cx.req(0, "q")?;
    cx.req(1, "k")?;
    cx.req(2, "v")?;
    cx.check_dtype(0, "q", "a float type", DType::is_float)?;
    for (slot, what) in [(1, "k"), (2, "v"), (4, "past_key"), (5, "past_value")] {
        if cx.has(slot) {
            cx.same_dtype(0, slot, &format!("q and {what} dtypes differ"))?;
        }
    }
    cx.check_dtype(3, "attn_mask", "bool or a float type", |d| {
        d == DType::Bool || d.is_float()
    })?;
    cx.check_dtype(6, "nonpad_kv_seqlen", "i64", |d| d == DType::I64)?;
    if cx.has(4) != cx.has(5) {
        return Err(cx.err("past_key and past_value must be given together"));
    }
    if cx.has(6) && cx.has(4) {
        return Err(cx.err("nonpad_kv_seqlen cannot be combined with past_key/past_value"));
    }
    check_attrs(cx, a)?;
    let dtype = q.dtype;
    let shapes: Vec<Option<Vec<Dim>>> = (0..3)
        .map(|s| cx.ty(s).shape.as_ref().map(|s| s.0.clone()))
        .collect();
    let rank = shapes.iter().flatten().map(Vec::len).next();
    let Some(rank) = rank else {
        let unknown = || ValueType { dtype, shape: None };
        return Ok(vec![unknown(), unknown(), unknown(), unknown()]);
    };
    if rank != 3 && rank != 4 {
        return Err(cx.err(format!("q, k and v must be 3-D or 4-D, got rank {rank}")));
    }
    let names = ["q", "k", "v"];
    let mut views = vec![];
    for (slot, s) in shapes.into_iter().enumerate() {
        let d = s.unwrap_or_else(|| syms.dims(rank));
        if d.len() != rank {
            return Err(cx.err(format!(
                "q, k and v must have one rank: {} is {}",
                names[slot],
                Shape(d)
            )));
        }
        let want = if slot == 0 {
            a.q_num_heads
        } else {
            a.kv_num_heads
        };
        views.push(heads(cx, names[slot], d, want, syms)?);
    }
    let (qh, kh, vh) = (&views[0], &views[1], &views[2]);
    same(cx, "k and v sequence lengths", &kh.seq, &vh.seq)?;
    same(cx, "k and v head counts", &kh.heads, &vh.heads)?;
    same(cx, "q and k head sizes", &qh.size, &kh.size)?;
    if let (Some(nq), Some(nk)) = (qh.heads.known(), kh.heads.known()) {
        if nk == 0 || nq % nk != 0 {
            return Err(cx.err(format!(
                "{nq} query heads are not a multiple of {nk} key/value heads"
            )));
        }
    }
    let past = match cx.opt(4).and_then(|t| t.shape.as_ref()) {
        Some(s) if s.rank() != 4 => {
            return Err(cx.err(format!("past_key must be 4-D, got {s}")));
        }
        Some(s) => Some(s.0[2].clone()),
        None if cx.has(4) => Some(syms.dim()),
        None => None,
    };
    let total = match past {
        Some(p) => match (p.known(), kh.seq.known()) {
            (Some(x), Some(y)) => Dim::Known(x + y),
            _ => syms.dim(),
        },
        None => kh.seq.clone(),
    };
    let y = if rank == 3 {
        let hidden = dim_product(&[qh.heads.clone(), vh.size.clone()], syms);
        vec![qh.batch.clone(), qh.seq.clone(), hidden]
    } else {
        vec![
            qh.batch.clone(),
            qh.heads.clone(),
            qh.seq.clone(),
            vh.size.clone(),
        ]
    };
    let present = |size: &Dim| {
        vt(
            dtype,
            vec![
                kh.batch.clone(),
                kh.heads.clone(),
                total.clone(),
                size.clone(),
            ],
        )
    };
    Ok(vec![
        vt(dtype, y),
        present(&kh.size),
        present(&vh.size),
        vt(
            dtype,
            vec![
                qh.batch.clone(),
                qh.heads.clone(),
                qh.seq.clone(),
                total.clone(),
            ],
        ),
    ])
}

/// The attribute values the shapes do not check.
fn check_attrs(cx: &Cx, a: &AttentionAttrs) -> Result<(), InferError> {
    if !a.softcap.is_finite() || a.softcap < 0.0 {
        return Err(cx.err(format!("softcap must be >= 0, got {}", a.softcap)));
    }
    if let Some(s) = a.scale {
        if !s.is_finite() || s <= 0.0 {
            return Err(cx.err(format!("scale must be positive, got {s}")));
        }
    }
    if a.softmax_precision.is_some_and(|d| !d.is_float()) {
        return Err(cx.err("softmax_precision must be a float type"));
    }
    for (what, w) in [
        ("left_window", a.left_window),
        ("right_window", a.right_window),
    ] {
        if w < -1 {
            return Err(cx.err(format!("{what} must be -1 or non-negative, got {w}")));
        }
    }
    Ok(())
}

/// Reads one of Q, K, V as `[batch, heads, seq, head_size]`: 4-D as it is (the head
/// attribute, when set, must agree), 3-D `[batch, seq, heads·head_size]` with the attribute.
fn heads(
    cx: &Cx,
    what: &str,
    d: Vec<Dim>,
    want: usize,
    syms: &mut SymGen,
) -> Result<Heads, InferError> {
    if d.len() == 4 {
        if want != 0 && d[1].known().is_some_and(|h| h != want) {
            return Err(cx.err(format!(
                "{what} has {} heads but the head attribute says {want}",
                d[1]
            )));
        }
        let mut it = d.into_iter();
        let mut next = || it.next().expect("rank 4");
        return Ok(Heads {
            batch: next(),
            heads: next(),
            seq: next(),
            size: next(),
        });
    }
    if want == 0 {
        return Err(cx.err(format!("3-D {what} needs q_num_heads and kv_num_heads")));
    }
    let size = match d[2].known() {
        Some(h) if h % want != 0 => {
            return Err(cx.err(format!(
                "{what} hidden size {h} is not a multiple of {want} heads"
            )))
        }
        Some(h) => Dim::Known(h / want),
        None => syms.dim(),
    };
    Ok(Heads {
        batch: d[0].clone(),
        heads: Dim::Known(want),
        seq: d[1].clone(),
        size,
    })
}

/// Two dims that must agree when both are known.
fn same(cx: &Cx, what: &str, a: &Dim, b: &Dim) -> Result<(), InferError> {
    match (a.known(), b.known()) {
        (Some(x), Some(y)) if x != y => Err(cx.err(format!("{what} differ: {x} and {y}"))),
        _ => Ok(()),
    }
}
