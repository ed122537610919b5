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

/// The LinearAttention rule: q/k/v `[B, T, heads·size]` of one float dtype, decay `[B, T,
/// kv·d_k or kv]` exactly when gated, beta `[B, T, kv or 1]` exactly when delta, past_state
/// `[B, kv, d_k, d_v]`; output `[B, T, q_heads·d_v]` and present_state `[B, kv, d_k, d_v]`
/// (past_state's dtype, else q's).
pub(super) fn linear_attention(cx: &Cx, syms: &mut SymGen) -> R {
    let crate::Op::LinearAttention {
        q_num_heads: qh,
        kv_num_heads: kvh,
        gated,
        delta,
        ..
    } = *cx.op()
    else {
        unreachable!("linear_attention on another op")
    };
    let q = cx.req(0, "query")?;
    cx.req(1, "key")?;
    cx.req(2, "value")?;
    cx.check_dtype(0, "query", "a float type", DType::is_float)?;
    cx.check_dtype(3, "past_state", "a float type", DType::is_float)?;
    for (slot, what) in [(1, "key"), (2, "value"), (4, "decay"), (5, "beta")] {
        if cx.has(slot) {
            cx.same_dtype(0, slot, &format!("query and {what} dtypes differ"))?;
        }
    }
    if qh == 0 || kvh == 0 || qh % kvh != 0 {
        return Err(cx.err(format!(
            "q_num_heads {qh} must be a positive multiple of kv_num_heads {kvh}"
        )));
    }
    for (slot, what, want, rule) in [(4, "decay", gated, "gated"), (5, "beta", delta, "delta")] {
        match (cx.has(slot), want) {
            (false, true) => return Err(cx.err(format!("a {rule} update rule needs {what}"))),
            (true, false) => {
                return Err(cx.err(format!("{what} is given but the update rule is not {rule}")))
            }
            _ => {}
        }
    }
    // The rank-3 inputs' dims, fresh symbols where unknown.
    let mut dims3 = |slot: usize, what: &str| -> Result<Option<Vec<Dim>>, InferError> {
        let Some(t) = cx.opt(slot) else {
            return Ok(None);
        };
        match &t.shape {
            Some(s) if s.0.len() != 3 => Err(cx.err(format!(
                "{what} must be 3-D [batch, seq, heads·size], got {t}"
            ))),
            Some(s) => Ok(Some(s.0.clone())),
            None => Ok(Some(syms.dims(3))),
        }
    };
    let qd = dims3(0, "query")?.expect("required");
    let kd = dims3(1, "key")?.expect("required");
    let vd = dims3(2, "value")?.expect("required");
    let decay = dims3(4, "decay")?;
    let beta = dims3(5, "beta")?;
    for (what, d) in [("key", &kd), ("value", &vd)]
        .into_iter()
        .chain(decay.as_ref().map(|d| ("decay", d)))
        .chain(beta.as_ref().map(|d| ("beta", d)))
    {
        same(cx, &format!("query and {what} batch sizes"), &qd[0], &d[0])?;
        same(
            cx,
            &format!("query and {what} sequence lengths"),
            &qd[1],
            &d[1],
        )?;
    }
    let per_head = |what: &str, d: &Dim, heads: usize| -> Result<Option<usize>, InferError> {
        match d.known() {
            Some(n) if n % heads != 0 => Err(cx.err(format!(
                "{what} hidden size {n} is not a multiple of {heads} heads"
            ))),
            n => Ok(n.map(|n| n / heads)),
        }
    };
    let dk = per_head("query", &qd[2], qh)?;
    let dk_from_key = per_head("key", &kd[2], kvh)?;
    if let (Some(a), Some(b)) = (dk, dk_from_key) {
        if a != b {
            return Err(cx.err(format!("query has head size {a} but key has head size {b}")));
        }
    }
    let dk = dk.or(dk_from_key);
    let dv = per_head("value", &vd[2], kvh)?;
    if let (Some(d), Some(dk)) = (&decay, dk) {
        if let Some(n) = d[2].known().filter(|&n| n != kvh && n != kvh * dk) {
            return Err(cx.err(format!(
                "decay's last axis {n} is neither kv_num_heads {kvh} nor kv_num_heads·d_k {}",
                kvh * dk
            )));
        }
    }
    if let Some(n) = beta.as_ref().and_then(|b| b[2].known()) {
        if n != kvh && n != 1 {
            return Err(cx.err(format!(
                "beta's last axis {n} is neither kv_num_heads {kvh} nor 1"
            )));
        }
    }
    let known_or =
        |n: Option<usize>, syms: &mut SymGen| n.map(Dim::Known).unwrap_or_else(|| syms.dim());
    let mut state = vec![
        qd[0].clone(),
        Dim::Known(kvh),
        known_or(dk, syms),
        known_or(dv, syms),
    ];
    if let Some(p) = cx.opt(3) {
        if let Some(s) = &p.shape {
            if s.0.len() != 4 {
                return Err(cx.err(format!(
                    "past_state must be 4-D [batch, kv_heads, d_k, d_v], got {p}"
                )));
            }
            for (k, what) in ["batch size", "kv head count", "d_k", "d_v"]
                .iter()
                .enumerate()
            {
                same(
                    cx,
                    &format!("past_state's {what} and the inputs'"),
                    &s.0[k],
                    &state[k],
                )?;
                if state[k].known().is_none() {
                    state[k] = s.0[k].clone();
                }
            }
        }
    }
    let out_hidden = match dv {
        Some(dv) => Dim::Known(qh * dv),
        None => syms.dim(),
    };
    let state_dtype = cx.opt(3).map_or(q.dtype, |p| p.dtype);
    Ok(vec![
        vt(q.dtype, vec![qd[0].clone(), qd[1].clone(), out_hidden]),
        vt(state_dtype, state),
    ])
}
