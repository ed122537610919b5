//! Inference rule of the recurrent ops (LSTM, GRU, RNN): operand dtypes and shapes against
//! the attributes, and the output shapes (`Y`, `Y_h`, and LSTM's `Y_c`).

use super::{vt, Cx, InferError, SymGen};
use crate::{DType, Dim, RnnAttrs, Shape, ValueType};

type R = Result<Vec<ValueType>, InferError>;

/// What distinguishes the three ops: weight blocks per direction (LSTM 4, GRU 3, RNN 1),
/// activation functions per direction (3, 2, 1) and output count (3, 2, 2).
pub(super) struct Cell {
    /// Weight blocks (gates) per direction.
    pub gates: usize,
    /// Activation functions per direction.
    pub functions: usize,
    /// Outputs the op produces.
    pub outputs: usize,
}

/// LSTM: gates i, o, f, c; activations f, g, h; outputs Y, Y_h, Y_c.
pub(super) const LSTM: Cell = Cell {
    gates: 4,
    functions: 3,
    outputs: 3,
};
/// GRU: gates z, r, h; activations f, g; outputs Y, Y_h.
pub(super) const GRU: Cell = Cell {
    gates: 3,
    functions: 2,
    outputs: 2,
};
/// RNN: one gate and activation; outputs Y, Y_h.
pub(super) const RNN: Cell = Cell {
    gates: 1,
    functions: 1,
    outputs: 2,
};

/// The LSTM, GRU or RNN rule.
pub(super) fn recurrent(cx: &Cx, a: &RnnAttrs, cell: &Cell, syms: &mut SymGen) -> R {
    check_attrs(cx, a, cell)?;
    let x = cx.req(0, "x")?;
    cx.req(1, "w")?;
    cx.req(2, "r")?;
    cx.check_dtype(0, "x", "a float type", DType::is_float)?;
    for (slot, what) in [
        (1, "w"),
        (2, "r"),
        (3, "b"),
        (5, "initial_h"),
        (6, "initial_c"),
        (7, "p"),
    ] {
        if cx.has(slot) {
            cx.same_dtype(0, slot, &format!("x and {what} dtypes differ"))?;
        }
    }
    cx.check_dtype(4, "sequence_lens", "i32", |d| d == DType::I32)?;
    let (seq, batch, input) = match x.shape.as_ref().map(|s| s.0.as_slice()) {
        Some([d0, d1, d2]) if a.batch_first => (d1.clone(), d0.clone(), d2.clone()),
        Some([d0, d1, d2]) => (d0.clone(), d1.clone(), d2.clone()),
        Some(d) => {
            return Err(cx.err(format!(
            "x must be 3-D [seq, batch, input] (or [batch, seq, input] with batch_first), got {}",
            Shape(d.to_vec())
        )))
        }
        None => (syms.dim(), syms.dim(), syms.dim()),
    };
    let k = Dim::Known;
    let (dirs, h) = (a.direction.count(), a.hidden_size);
    let gh = cell.gates.saturating_mul(h);
    let state = if a.batch_first {
        vec![batch.clone(), k(dirs), k(h)]
    } else {
        vec![k(dirs), batch.clone(), k(h)]
    };
    let operands = [
        (1, "w", vec![k(dirs), k(gh), input]),
        (2, "r", vec![k(dirs), k(gh), k(h)]),
        (3, "b", vec![k(dirs), k(gh.saturating_mul(2))]),
        (4, "sequence_lens", vec![batch.clone()]),
        (5, "initial_h", state.clone()),
        (6, "initial_c", state.clone()),
        (7, "p", vec![k(dirs), k(h.saturating_mul(3))]),
    ];
    for (slot, what, want) in operands {
        check_shape(cx, slot, what, &want)?;
    }
    let y = if a.batch_first {
        vec![batch, seq, k(dirs), k(h)]
    } else {
        vec![seq, k(dirs), batch, k(h)]
    };
    let dtype = x.dtype;
    let mut out = vec![vt(dtype, y), vt(dtype, state.clone())];
    if cell.outputs == 3 {
        out.push(vt(dtype, state));
    }
    Ok(out)
}

/// The attributes the shapes do not show: activation count, hidden size, clip.
fn check_attrs(cx: &Cx, a: &RnnAttrs, cell: &Cell) -> Result<(), InferError> {
    let want = cell.functions * a.direction.count();
    if a.activations.len() != want {
        return Err(cx.err(format!(
            "activations: {} given, the op takes {want} ({} per direction)",
            a.activations.len(),
            cell.functions
        )));
    }
    if a.hidden_size == 0 {
        return Err(cx.err("hidden_size must be positive"));
    }
    if let Some(c) = a.clip {
        if c.is_nan() || c <= 0.0 {
            return Err(cx.err(format!("clip must be positive, got {c}")));
        }
    }
    Ok(())
}

/// Checks an operand's shape, when known, against the expected dims (known dims must match).
fn check_shape(cx: &Cx, slot: usize, what: &str, want: &[Dim]) -> Result<(), InferError> {
    let Some(got) = cx.opt(slot).and_then(|t| t.shape.as_ref()) else {
        return Ok(());
    };
    let clash = got.rank() != want.len()
        || got
            .0
            .iter()
            .zip(want)
            .any(|(g, w)| matches!((g, w), (Dim::Known(p), Dim::Known(q)) if p != q));
    if clash {
        return Err(cx.err(format!(
            "{what} has shape {got}, expected {}",
            Shape(want.to_vec())
        )));
    }
    Ok(())
}
