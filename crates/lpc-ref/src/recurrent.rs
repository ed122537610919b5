//! The recurrent ops LSTM, GRU and RNN with ONNX semantics, as ONNX Runtime's CPU kernels
//! compute them: every direction, `batch_first` (ONNX `layout` = 1), `sequence_lens`,
//! initial states, LSTM peepholes and `input_forget`, GRU `linear_before_reset`, the ONNX
//! activation list and `clip` (applied to every gate pre-activation, not to the cell state).
//!
//! Per direction, the input projection X·Wᵀ is one GEMM over all time steps; each step then
//! adds H·Rᵀ (one GEMM per step; GRU without `linear_before_reset` needs a second one for
//! (r ⊙ H)·Rhᵀ) and applies the gates row by row. Sequence `b` of length `L` runs positions
//! `0..L` (reverse: `L−1` down to 0); `Y` is zero past `L`, `Y_h`/`Y_c` hold the state after
//! the last position run, and a sequence of length 0 gives zero states (ONNX Runtime's
//! LSTM and GRU). Other float dtypes compute in f32.

use crate::nn::{sgemm_strided, Strided};
use crate::transcendental::{sigmoid_f32, tanh_f32};
use crate::{invalid, EvalError, EvalResult, Inputs};
use lpc_ir::{DType, RnnActivation, RnnAttrs, RnnDirection, Tensor};

/// Which cell, with its own attribute.
#[derive(Clone, Copy)]
enum Cell {
    Lstm { input_forget: bool },
    Gru { linear_before_reset: bool },
    Rnn,
}

impl Cell {
    /// Weight blocks per direction.
    fn gates(self) -> usize {
        match self {
            Cell::Lstm { .. } => 4,
            Cell::Gru { .. } => 3,
            Cell::Rnn => 1,
        }
    }
    /// Activation functions per direction.
    fn functions(self) -> usize {
        match self {
            Cell::Lstm { .. } => 3,
            Cell::Gru { .. } => 2,
            Cell::Rnn => 1,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Cell::Lstm { .. } => "LSTM",
            Cell::Gru { .. } => "GRU",
            Cell::Rnn => "RNN",
        }
    }
}

/// ONNX LSTM: (x, w, r, b?, sequence_lens?, initial_h?, initial_c?, p?) → (y, y_h, y_c).
pub fn lstm(a: &RnnAttrs, input_forget: bool, i: Inputs, n_out: usize) -> EvalResult<Vec<Tensor>> {
    recurrent(a, Cell::Lstm { input_forget }, i, n_out)
}

/// ONNX GRU: (x, w, r, b?, sequence_lens?, initial_h?) → (y, y_h).
pub fn gru(
    a: &RnnAttrs,
    linear_before_reset: bool,
    i: Inputs,
    n_out: usize,
) -> EvalResult<Vec<Tensor>> {
    recurrent(
        a,
        Cell::Gru {
            linear_before_reset,
        },
        i,
        n_out,
    )
}

/// ONNX RNN: (x, w, r, b?, sequence_lens?, initial_h?) → (y, y_h).
pub fn rnn(a: &RnnAttrs, i: Inputs, n_out: usize) -> EvalResult<Vec<Tensor>> {
    recurrent(a, Cell::Rnn, i, n_out)
}

fn recurrent(a: &RnnAttrs, cell: Cell, i: Inputs, n_out: usize) -> EvalResult<Vec<Tensor>> {
    let o = Operands::read(a, cell, i)?;
    let outs: Vec<DirOut> = (0..o.dirs)
        .map(|d| {
            let dir = Direction::new(&o, a, cell, d);
            match cell {
                Cell::Lstm { input_forget } => lstm_direction(&o, &dir, input_forget),
                Cell::Gru {
                    linear_before_reset,
                } => gru_direction(&o, &dir, linear_before_reset),
                Cell::Rnn => rnn_direction(&o, &dir),
            }
        })
        .collect();
    let mut result = vec![assemble_y(&o, a.batch_first, &outs)?];
    let states = if matches!(cell, Cell::Lstm { .. }) {
        2
    } else {
        1
    };
    for k in 0..states.min(n_out.saturating_sub(1)) {
        let per_dir: Vec<&[f32]> = outs
            .iter()
            .map(|d| if k == 0 { &d.h[..] } else { &d.c[..] })
            .collect();
        result.push(assemble_state(&o, a.batch_first, &per_dir)?);
    }
    Ok(result)
}

/// The operands as f32, X in [seq, batch, input] order and the initial states in
/// [dirs, batch, hidden] order whatever the layout.
struct Operands {
    dtype: DType,
    seq: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    dirs: usize,
    gates: usize,
    x: Vec<f32>,
    w: Vec<f32>,
    r: Vec<f32>,
    b: Option<Vec<f32>>,
    lens: Vec<usize>,
    h0: Option<Vec<f32>>,
    c0: Option<Vec<f32>>,
    p: Option<Vec<f32>>,
}

impl Operands {
    fn read(a: &RnnAttrs, cell: Cell, i: Inputs) -> EvalResult<Operands> {
        let x = i.req(0, "x")?;
        let &[d0, d1, input] = x.shape() else {
            return Err(invalid!(
                "{}: x must be 3-D, got {:?}",
                cell.name(),
                x.shape()
            ));
        };
        let (seq, batch) = if a.batch_first { (d1, d0) } else { (d0, d1) };
        let (hidden, dirs, gates) = (a.hidden_size, a.direction.count(), cell.gates());
        if a.activations.len() != dirs * cell.functions() {
            return Err(invalid!(
                "{}: {} activations, expected {}",
                cell.name(),
                a.activations.len(),
                dirs * cell.functions()
            ));
        }
        // The largest buffers: X·Wᵀ [seq·batch, gates·hidden] and Y [seq, dirs, batch, hidden].
        let big = [seq.max(1), batch.max(1), gates.max(dirs), hidden.max(1)]
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= isize::MAX as usize / 8);
        if big.is_none() {
            return Err(invalid!(
                "{}: seq {seq} × batch {batch} × hidden {hidden} is too large",
                cell.name()
            ));
        }
        let gh = gates * hidden;
        let state = if a.batch_first {
            [batch, dirs, hidden]
        } else {
            [dirs, batch, hidden]
        };
        let opt = |slot: usize, what: &'static str, shape: &[usize]| -> EvalResult<_> {
            match i.opt(slot) {
                Some(t) => Ok(Some(floats(t, slot, what, shape, cell)?)),
                None => Ok(None),
            }
        };
        let mut h0 = opt(5, "initial_h", &state)?;
        let mut c0 = opt(6, "initial_c", &state)?;
        if a.batch_first {
            for s in [&mut h0, &mut c0].into_iter().flatten() {
                *s = swap_01(s, batch, dirs, hidden);
            }
        }
        let mut x_seq = floats(x, 0, "x", x.shape(), cell)?;
        if a.batch_first {
            x_seq = swap_01(&x_seq, batch, seq, input);
        }
        Ok(Operands {
            dtype: x.dtype(),
            seq,
            batch,
            input,
            hidden,
            dirs,
            gates,
            x: x_seq,
            w: floats(i.req(1, "w")?, 1, "w", &[dirs, gh, input], cell)?,
            r: floats(i.req(2, "r")?, 2, "r", &[dirs, gh, hidden], cell)?,
            b: opt(3, "b", &[dirs, 2 * gh])?,
            lens: lengths(i.opt(4), seq, batch, cell)?,
            h0,
            c0,
            p: opt(7, "p", &[dirs, 3 * hidden])?,
        })
    }
}

/// A float operand of the expected shape, as f32.
fn floats(
    t: &Tensor,
    slot: usize,
    what: &'static str,
    shape: &[usize],
    cell: Cell,
) -> EvalResult<Vec<f32>> {
    let v = crate::util::float_in(t, slot, what)?;
    if t.shape() != shape {
        return Err(invalid!(
            "{}: {what} has shape {:?}, expected {shape:?}",
            cell.name(),
            t.shape()
        ));
    }
    Ok(v.into_owned())
}

/// `sequence_lens` (i32 [batch], each in 0..=seq), or `seq` for every sequence.
fn lengths(t: Option<&Tensor>, seq: usize, batch: usize, cell: Cell) -> EvalResult<Vec<usize>> {
    let Some(t) = t else {
        return Ok(vec![seq; batch]);
    };
    if t.dtype() != DType::I32 {
        return Err(EvalError::DType {
            slot: 4,
            what: "sequence_lens",
            got: t.dtype(),
            expected: "i32",
        });
    }
    if t.shape() != [batch] {
        return Err(invalid!(
            "{}: sequence_lens has shape {:?}, expected [{batch}]",
            cell.name(),
            t.shape()
        ));
    }
    t.to_i64_vec()
        .into_iter()
        .map(|l| match usize::try_from(l) {
            Ok(l) if l <= seq => Ok(l),
            _ => Err(invalid!(
                "{}: sequence length {l} is outside 0..={seq}",
                cell.name()
            )),
        })
        .collect()
}

/// [p, q, n] → [q, p, n].
fn swap_01(v: &[f32], p: usize, q: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for i in 0..p {
        for j in 0..q {
            let src = (i * q + j) * n;
            let dst = (j * p + i) * n;
            out[dst..dst + n].copy_from_slice(&v[src..src + n]);
        }
    }
    out
}

/// `x · y` with eight partial sums (lane `l` takes the elements `≡ l mod 8`, added in order),
/// combined as `((s₀+s₄)+(s₂+s₆))+((s₁+s₅)+(s₃+s₇))`, then the tail in order: a loop the compiler
/// vectorises.
fn dot8(x: &[f32], y: &[f32]) -> f32 {
    let mut s = [0f32; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xt, yt) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..8 {
            s[l] += a[l] * b[l];
        }
    }
    let mut t = ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
    for (a, b) in xt.iter().zip(yt) {
        t += a * b;
    }
    t
}

/// `a · wᵀ` for `a` [m, k] and `w` [n, k] (row-major): [m, n] (the input projection of every
/// position at once). A few rows as dot products of contiguous rows, more through the GEMM;
/// the recurrent product of each step is [`WeightT::times`].
fn times_transposed(a: &[f32], m: usize, k: usize, w: &[f32], n: usize) -> Vec<f32> {
    let mut out = vec![0.0; m * n];
    if m > 0 && n > 0 && m <= 4 && k > 0 {
        for (i, row) in out.chunks_exact_mut(n).enumerate() {
            let x = &a[i * k..(i + 1) * k];
            for (o, wr) in row.iter_mut().zip(w.chunks_exact(k)) {
                *o = dot8(x, wr);
            }
        }
        return out;
    }
    if m > 0 && n > 0 {
        let b = Strided {
            data: w,
            strides: (1, k as isize),
        };
        sgemm_strided(m, k, n, Strided::rows(a, k), b, &mut out, false);
    }
    out
}

/// A recurrent weight `R` [n, k] (row-major) kept transposed, `[k][n]`, for the products with
/// the few rows of one step's hidden state: each output row accumulates `h[kk] · Rᵀ[kk]` over
/// `kk` in order, whole rows at a time (vectorised across the outputs), instead of one
/// horizontal dot product per output.
struct WeightT {
    t: Vec<f32>,
    k: usize,
    n: usize,
}

impl WeightT {
    fn new(w: &[f32], n: usize, k: usize) -> WeightT {
        let mut t = vec![0.0; n * k];
        for (j, row) in w.chunks_exact(k.max(1)).take(n).enumerate() {
            for (kk, &v) in row.iter().enumerate() {
                t[kk * n + j] = v;
            }
        }
        WeightT { t, k, n }
    }

    /// `a · R[cols]ᵀ` for `a` [m, k]: [m, cols.len()] (rows `cols` of R). Each output is
    /// `((a₀·r₀ + a₁·r₁) + a₂·r₂) + …`, in `k` order, four terms per pass over the row.
    fn times(&self, a: &[f32], m: usize, cols: std::ops::Range<usize>) -> Vec<f32> {
        let (k, n, w) = (self.k, self.n, cols.len());
        let mut out = vec![0.0; m * w];
        for (i, row) in out.chunks_exact_mut(w.max(1)).take(m).enumerate() {
            let x = &a[i * k..(i + 1) * k];
            let col = |kk: usize| &self.t[kk * n + cols.start..][..w];
            let mut kk = 0;
            while kk + 4 <= k {
                let (x0, x1, x2, x3) = (x[kk], x[kk + 1], x[kk + 2], x[kk + 3]);
                let (r0, r1, r2, r3) = (col(kk), col(kk + 1), col(kk + 2), col(kk + 3));
                for j in 0..w {
                    row[j] = (((row[j] + x0 * r0[j]) + x1 * r1[j]) + x2 * r2[j]) + x3 * r3[j];
                }
                kk += 4;
            }
            while kk < k {
                let (x0, r0) = (x[kk], col(kk));
                for j in 0..w {
                    row[j] += x0 * r0[j];
                }
                kk += 1;
            }
        }
        out
    }
}

/// One direction's view of the operands.
struct Direction<'a> {
    reverse: bool,
    acts: &'a [RnnActivation],
    clip: Option<f32>,
    /// X·Wᵀ for every position: [seq·batch, gates·hidden].
    xw: Vec<f32>,
    /// This direction's R ([gates·hidden, hidden]), transposed.
    r: WeightT,
    /// Wb and Rb, each [gates·hidden] (zeros without B).
    wb: Vec<f32>,
    rb: Vec<f32>,
    /// Initial states [batch, hidden] (zeros when absent).
    h0: Vec<f32>,
    c0: Vec<f32>,
    /// Peepholes i, o, f, each [hidden], zeros without P.
    p: Vec<f32>,
}

impl<'a> Direction<'a> {
    fn new(o: &'a Operands, a: &'a RnnAttrs, cell: Cell, d: usize) -> Direction<'a> {
        let (h, gh) = (o.hidden, o.gates * o.hidden);
        let nf = cell.functions();
        let w = &o.w[d * gh * o.input..(d + 1) * gh * o.input];
        let slice = |v: &Option<Vec<f32>>, len: usize, at: usize| match v {
            Some(v) => v[at..at + len].to_vec(),
            None => vec![0.0; len],
        };
        let bh = o.batch * h;
        Direction {
            reverse: a.direction == RnnDirection::Reverse || d == 1,
            acts: &a.activations[d * nf..(d + 1) * nf],
            clip: a.clip,
            xw: times_transposed(&o.x, o.seq * o.batch, o.input, w, gh),
            r: WeightT::new(&o.r[d * gh * h..(d + 1) * gh * h], gh, h),
            wb: slice(&o.b, gh, d * 2 * gh),
            rb: slice(&o.b, gh, d * 2 * gh + gh),
            h0: slice(&o.h0, bh, d * bh),
            c0: slice(&o.c0, bh, d * bh),
            p: slice(&o.p, 3 * h, d * 3 * h),
        }
    }

    /// The position sequence `b` of length `len` runs at step `t`, if it runs then.
    fn position(&self, t: usize, len: usize) -> Option<usize> {
        (t < len).then(|| if self.reverse { len - 1 - t } else { t })
    }

    /// Gate pre-activations clipped, then activation `k`, in place: one pass per operation
    /// with the choice of activation made once, so the compiler vectorises the common ones.
    fn act(&self, k: usize, xs: &mut [f32]) {
        if let Some(c) = self.clip {
            xs.iter_mut().for_each(|x| *x = x.clamp(-c, c));
        }
        match self.acts[k] {
            RnnActivation::Sigmoid => xs.iter_mut().for_each(|x| *x = sigmoid_f32(*x)),
            RnnActivation::Tanh => xs.iter_mut().for_each(|x| *x = tanh_f32(*x)),
            a => xs.iter_mut().for_each(|x| *x = activation(a, *x)),
        }
    }
}

/// One direction's results: Y [seq, batch, hidden] and the final states [batch, hidden].
struct DirOut {
    y: Vec<f32>,
    h: Vec<f32>,
    c: Vec<f32>,
}

impl DirOut {
    /// Zero states for the sequences of length 0 (ONNX Runtime's LSTM and GRU).
    fn finish(mut self, o: &Operands) -> DirOut {
        let hsz = o.hidden;
        for (b, &len) in o.lens.iter().enumerate() {
            if len == 0 {
                self.h[b * hsz..(b + 1) * hsz].fill(0.0);
                self.c[b * hsz..(b + 1) * hsz].fill(0.0);
            }
        }
        self
    }
}

fn max_len(o: &Operands) -> usize {
    o.lens.iter().copied().max().unwrap_or(0)
}

/// LSTM, gates i, o, f, c; activations f (gates), g (cell input), h (output).
fn lstm_direction(o: &Operands, dir: &Direction, input_forget: bool) -> DirOut {
    let (hs, gh) = (o.hidden, 4 * o.hidden);
    let (mut h, mut c) = (dir.h0.clone(), dir.c0.clone());
    let mut y = vec![0.0; o.seq * o.batch * hs];
    let (pi, po, pf) = (&dir.p[..hs], &dir.p[hs..2 * hs], &dir.p[2 * hs..]);
    // Per row: the gates i, f, c, o and h's activation of the new cell state, element j of
    // each computed as the scalar recurrence would, one operation over the row at a time.
    let (mut ig, mut fg, mut cg, mut og, mut hc) = (
        vec![0f32; hs],
        vec![0f32; hs],
        vec![0f32; hs],
        vec![0f32; hs],
        vec![0f32; hs],
    );
    for t in 0..max_len(o) {
        let hr = dir.r.times(&h, o.batch, 0..gh);
        for (b, &len) in o.lens.iter().enumerate() {
            let Some(pos) = dir.position(t, len) else {
                continue;
            };
            let xw = &dir.xw[(pos * o.batch + b) * gh..][..gh];
            let hr = &hr[b * gh..(b + 1) * gh];
            let pre = |k: usize, j: usize| {
                let q = k * hs + j;
                xw[q] + hr[q] + dir.wb[q] + dir.rb[q]
            };
            let row = b * hs..(b + 1) * hs;
            let c_prev = &c[row.clone()];
            for j in 0..hs {
                ig[j] = pre(0, j) + pi[j] * c_prev[j];
                cg[j] = pre(3, j);
            }
            dir.act(0, &mut ig);
            if input_forget {
                for j in 0..hs {
                    fg[j] = 1.0 - ig[j];
                }
            } else {
                for j in 0..hs {
                    fg[j] = pre(2, j) + pf[j] * c_prev[j];
                }
                dir.act(0, &mut fg);
            }
            dir.act(1, &mut cg);
            let c_row = &mut c[row.clone()];
            for j in 0..hs {
                let c_new = fg[j] * c_row[j] + ig[j] * cg[j];
                c_row[j] = c_new;
                og[j] = pre(1, j) + po[j] * c_new;
                hc[j] = c_new;
            }
            dir.act(0, &mut og);
            // h's activation takes the cell state unclipped.
            apply(dir.acts[2], &mut hc);
            for (j, hv) in h[row.clone()].iter_mut().enumerate() {
                *hv = og[j] * hc[j];
            }
            y[(pos * o.batch + b) * hs..][..hs].copy_from_slice(&h[row]);
        }
    }
    DirOut { y, h, c }.finish(o)
}

/// GRU, gates z, r, h; activations f (z, r) and g (h).
fn gru_direction(o: &Operands, dir: &Direction, linear_before_reset: bool) -> DirOut {
    let (hs, gh) = (o.hidden, 3 * o.hidden);
    let mut h = dir.h0.clone();
    let mut y = vec![0.0; o.seq * o.batch * hs];
    let mut reset = vec![0.0; o.batch * hs];
    let mut update = vec![0.0; o.batch * hs];
    for t in 0..max_len(o) {
        // H·R[zr]ᵀ, and H·Rhᵀ too when it is applied before the reset gate.
        let n = if linear_before_reset { gh } else { 2 * hs };
        let hr = dir.r.times(&h, o.batch, 0..n);
        let rows: Vec<(usize, usize)> = (0..o.batch)
            .filter_map(|b| dir.position(t, o.lens[b]).map(|p| (b, p)))
            .collect();
        let xw_at = |b: usize, pos: usize| &dir.xw[(pos * o.batch + b) * gh..][..gh];
        for &(b, pos) in &rows {
            let (xw, hr) = (xw_at(b, pos), &hr[b * n..(b + 1) * n]);
            let pre = |q: usize| xw[q] + hr[q] + dir.wb[q] + dir.rb[q];
            let (u, r) = (
                &mut update[b * hs..(b + 1) * hs],
                &mut reset[b * hs..(b + 1) * hs],
            );
            for j in 0..hs {
                u[j] = pre(j);
                r[j] = pre(hs + j);
            }
            dir.act(0, u);
            dir.act(0, r);
        }
        // The hidden gate's recurrent term: r ⊙ (H·Rhᵀ + Rbh), or (r ⊙ H)·Rhᵀ + Rbh.
        let hidden_term = if linear_before_reset {
            let mut v = vec![0.0; o.batch * hs];
            for &(b, _) in &rows {
                for j in 0..hs {
                    let q = b * hs + j;
                    v[q] = reset[q] * (hr[b * n + 2 * hs + j] + dir.rb[2 * hs + j]);
                }
            }
            v
        } else {
            let gated: Vec<f32> = reset.iter().zip(&h).map(|(r, h)| r * h).collect();
            let mut v = dir.r.times(&gated, o.batch, 2 * hs..gh);
            for row in v.chunks_mut(hs.max(1)) {
                row.iter_mut()
                    .zip(&dir.rb[2 * hs..])
                    .for_each(|(x, b)| *x += b);
            }
            v
        };
        let mut cand = vec![0f32; hs];
        for &(b, pos) in &rows {
            let xw = xw_at(b, pos);
            for (j, cv) in cand.iter_mut().enumerate() {
                *cv = xw[2 * hs + j] + dir.wb[2 * hs + j] + hidden_term[b * hs + j];
            }
            dir.act(1, &mut cand);
            for (j, &cv) in cand.iter().enumerate() {
                let q = b * hs + j;
                let z = update[q];
                h[q] = (1.0 - z) * cv + z * h[q];
            }
            y[(pos * o.batch + b) * hs..][..hs].copy_from_slice(&h[b * hs..(b + 1) * hs]);
        }
    }
    let c = vec![0.0; h.len()];
    DirOut { y, h, c }.finish(o)
}

/// RNN: Ht = f(Xt·Wᵀ + Ht−1·Rᵀ + Wb + Rb).
fn rnn_direction(o: &Operands, dir: &Direction) -> DirOut {
    let hs = o.hidden;
    let mut h = dir.h0.clone();
    let mut y = vec![0.0; o.seq * o.batch * hs];
    for t in 0..max_len(o) {
        let hr = dir.r.times(&h, o.batch, 0..hs);
        for (b, &len) in o.lens.iter().enumerate() {
            let Some(pos) = dir.position(t, len) else {
                continue;
            };
            let xw = &dir.xw[(pos * o.batch + b) * hs..][..hs];
            let hr = &hr[b * hs..(b + 1) * hs];
            let hb = &mut h[b * hs..(b + 1) * hs];
            for (j, hv) in hb.iter_mut().enumerate() {
                *hv = xw[j] + hr[j] + dir.wb[j] + dir.rb[j];
            }
            dir.act(0, hb);
            y[(pos * o.batch + b) * hs..][..hs].copy_from_slice(&h[b * hs..(b + 1) * hs]);
        }
    }
    let c = vec![0.0; h.len()];
    DirOut { y, h, c }.finish(o)
}

/// `activation(a, x)` on every element, the choice of activation made once.
fn apply(a: RnnActivation, xs: &mut [f32]) {
    match a {
        RnnActivation::Sigmoid => xs.iter_mut().for_each(|x| *x = sigmoid_f32(*x)),
        RnnActivation::Tanh => xs.iter_mut().for_each(|x| *x = tanh_f32(*x)),
        a => xs.iter_mut().for_each(|x| *x = activation(a, *x)),
    }
}

/// One ONNX recurrent activation (ONNX Runtime's formulas: ThresholdedRelu is `x > alpha`).
/// Sigmoid and Tanh are lpc's (`crate::transcendental`: Tanh is MLAS's rational form, as ONNX
/// Runtime's recurrent kernels compute it).
pub fn activation(a: RnnActivation, x: f32) -> f32 {
    match a {
        RnnActivation::Relu => x.max(0.0),
        RnnActivation::Tanh => tanh_f32(x),
        RnnActivation::Sigmoid => sigmoid_f32(x),
        RnnActivation::Affine { alpha, beta } => alpha * x + beta,
        RnnActivation::LeakyRelu { alpha } => {
            if x >= 0.0 {
                x
            } else {
                alpha * x
            }
        }
        RnnActivation::ThresholdedRelu { alpha } => {
            if x > alpha {
                x
            } else {
                0.0
            }
        }
        RnnActivation::ScaledTanh { alpha, beta } => alpha * (beta * x).tanh(),
        RnnActivation::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
        RnnActivation::Elu { alpha } => {
            if x >= 0.0 {
                x
            } else {
                alpha * (x.exp() - 1.0)
            }
        }
        RnnActivation::Softsign => x / (1.0 + x.abs()),
        RnnActivation::Softplus => (1.0 + x.exp()).ln(),
    }
}

/// Y from the directions' [seq, batch, hidden]: [seq, dirs, batch, hidden], or
/// [batch, seq, dirs, hidden] batch-first.
fn assemble_y(o: &Operands, batch_first: bool, outs: &[DirOut]) -> EvalResult<Tensor> {
    let (s, bsz, hs, dirs) = (o.seq, o.batch, o.hidden, o.dirs);
    let mut y = vec![0.0; s * dirs * bsz * hs];
    for (d, out) in outs.iter().enumerate() {
        for t in 0..s {
            for b in 0..bsz {
                let src = &out.y[(t * bsz + b) * hs..][..hs];
                let dst = if batch_first {
                    ((b * s + t) * dirs + d) * hs
                } else {
                    ((t * dirs + d) * bsz + b) * hs
                };
                y[dst..dst + hs].copy_from_slice(src);
            }
        }
    }
    let shape = if batch_first {
        [bsz, s, dirs, hs]
    } else {
        [s, dirs, bsz, hs]
    };
    tensor(o, &shape, y)
}

/// A final state from the directions' [batch, hidden]: [dirs, batch, hidden], or
/// [batch, dirs, hidden] batch-first.
fn assemble_state(o: &Operands, batch_first: bool, per_dir: &[&[f32]]) -> EvalResult<Tensor> {
    let (bsz, hs, dirs) = (o.batch, o.hidden, o.dirs);
    let stacked: Vec<f32> = per_dir.concat();
    if batch_first {
        tensor(o, &[bsz, dirs, hs], swap_01(&stacked, dirs, bsz, hs))
    } else {
        tensor(o, &[dirs, bsz, hs], stacked)
    }
}

fn tensor(o: &Operands, shape: &[usize], v: Vec<f32>) -> EvalResult<Tensor> {
    Tensor::from_f32(shape, v)
        .map(|t| t.into_dtype(o.dtype))
        .map_err(|e| invalid!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lpc_ir::rnn_default_activations;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape, v.to_vec()).unwrap()
    }

    fn attrs(direction: RnnDirection, hidden: usize, functions: usize) -> RnnAttrs {
        RnnAttrs {
            direction,
            hidden_size: hidden,
            activations: rnn_default_activations(functions, direction.count()),
            clip: None,
            batch_first: false,
        }
    }

    /// Runs `f` on the given input slots.
    fn run(
        f: impl Fn(Inputs, usize) -> EvalResult<Vec<Tensor>>,
        ins: &[Option<&Tensor>],
        n_out: usize,
    ) -> Vec<Vec<f32>> {
        f(Inputs::new(ins), n_out)
            .unwrap()
            .iter()
            .map(Tensor::to_f32_vec)
            .collect()
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-6 * (1.0 + y.abs()), "{a:?} vs {b:?}");
        }
    }

    /// Deterministic values in [-1, 1).
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// One LSTM step with every operand (I = H = 1), computed by hand in f64:
    /// i = σ(0.5 + 0.1·0.5 + 0.1 + 0.3·(−0.5)), f = σ(−1 + 0.3·0.5 + 0.2 + 0.1·(−0.5)),
    /// c = tanh(2 + 0.4·0.5), C = f·(−0.5) + i·c, o = σ(1 + 0.2·0.5 + 0.2·C), H = o·tanh(C).
    #[test]
    fn lstm_one_step_by_hand() {
        let x = t(&[1, 1, 1], &[1.0]);
        let w = t(&[1, 4, 1], &[0.5, 1.0, -1.0, 2.0]);
        let r = t(&[1, 4, 1], &[0.1, 0.2, 0.3, 0.4]);
        let b = t(&[1, 8], &[0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 0.0]);
        let h0 = t(&[1, 1, 1], &[0.5]);
        let c0 = t(&[1, 1, 1], &[-0.5]);
        let p = t(&[1, 3], &[0.3, 0.2, 0.1]);
        let ins = [
            Some(&x),
            Some(&w),
            Some(&r),
            Some(&b),
            None,
            Some(&h0),
            Some(&c0),
            Some(&p),
        ];
        let a = attrs(RnnDirection::Forward, 1, 3);
        let out = run(|i, n| lstm(&a, false, i, n), &ins, 3);
        close(&out[0], &[0.317_955_05]);
        close(&out[1], &[0.317_955_05]);
        close(&out[2], &[0.441_454_3]);
        // input_forget: f = 1 − i.
        let out = run(|i, n| lstm(&a, true, i, n), &ins, 3);
        close(&out[1], &[0.302_986_26]);
        close(&out[2], &[0.418_590_07]);
    }

    /// One GRU step (I = H = 1) by hand: z = σ(0.5 + 0.2·0.5 + 0.1), r = σ(−0.5 + 0.3·0.5 +
    /// 0.2 + 0.1); h = tanh(1 + (r·0.5)·0.4 + 0.2 + 0.3), or with linear_before_reset
    /// tanh(1 + r·(0.5·0.4 + 0.2) + 0.3); H = (1 − z)·h + z·0.5.
    #[test]
    fn gru_one_step_by_hand() {
        let x = t(&[1, 1, 1], &[1.0]);
        let w = t(&[1, 3, 1], &[0.5, -0.5, 1.0]);
        let r = t(&[1, 3, 1], &[0.2, 0.3, 0.4]);
        let b = t(&[1, 6], &[0.1, 0.2, 0.3, 0.0, 0.1, 0.2]);
        let h0 = t(&[1, 1, 1], &[0.5]);
        let ins = [Some(&x), Some(&w), Some(&r), Some(&b), None, Some(&h0)];
        let a = attrs(RnnDirection::Forward, 1, 2);
        let out = run(|i, n| gru(&a, false, i, n), &ins, 2);
        close(&out[1], &[0.639_789_64]);
        let out = run(|i, n| gru(&a, true, i, n), &ins, 2);
        close(&out[1], &[0.634_132]);
    }

    /// Two RNN steps with Relu: relu(2 − 0.5 + 0.25 − 0.5) = 1.25, then
    /// relu(−2 − 1.25 + 0.25 − 0.5) = 0.
    #[test]
    fn rnn_two_steps_by_hand() {
        let x = t(&[2, 1, 1], &[1.0, -1.0]);
        let w = t(&[1, 1, 1], &[2.0]);
        let r = t(&[1, 1, 1], &[-1.0]);
        let b = t(&[1, 2], &[0.25, -0.5]);
        let h0 = t(&[1, 1, 1], &[0.5]);
        let mut a = attrs(RnnDirection::Forward, 1, 1);
        a.activations = vec![RnnActivation::Relu];
        let ins = [Some(&x), Some(&w), Some(&r), Some(&b), None, Some(&h0)];
        let out = run(|i, n| rnn(&a, i, n), &ins, 2);
        close(&out[0], &[1.25, 0.0]);
        close(&out[1], &[0.0]);
    }

    /// Random operands for a cell with `gates` blocks: x [seq, batch, input], w, r, b for
    /// `dirs` directions, initial_h [dirs, batch, hidden].
    struct Case {
        seq: usize,
        batch: usize,
        hidden: usize,
        x: Vec<f32>,
        w: Vec<f32>,
        r: Vec<f32>,
        b: Vec<f32>,
        h0: Vec<f32>,
        input: usize,
    }

    fn case(gates: usize, dirs: usize, seed: u64) -> Case {
        let (seq, batch, input, hidden) = (5, 3, 4, 3);
        let gh = gates * hidden;
        Case {
            seq,
            batch,
            hidden,
            input,
            x: noise(seq * batch * input, seed),
            w: noise(dirs * gh * input, seed + 1),
            r: noise(dirs * gh * hidden, seed + 2),
            b: noise(dirs * 2 * gh, seed + 3),
            h0: noise(dirs * batch * hidden, seed + 4),
        }
    }

    /// Runs one of the three ops on a case (LSTM also with initial_c = initial_h / 2).
    fn eval_case(
        cell: Cell,
        a: &RnnAttrs,
        c: &Case,
        x: &[f32],
        lens: Option<&[i32]>,
    ) -> Vec<Vec<f32>> {
        let dirs = a.direction.count();
        let gh = cell.gates() * c.hidden;
        let xt = t(&[c.seq, c.batch, c.input], x);
        let w = t(&[dirs, gh, c.input], &c.w);
        let r = t(&[dirs, gh, c.hidden], &c.r);
        let b = t(&[dirs, 2 * gh], &c.b);
        let h0 = t(&[dirs, c.batch, c.hidden], &c.h0);
        let c0v: Vec<f32> = c.h0.iter().map(|v| v / 2.0).collect();
        let c0 = t(&[dirs, c.batch, c.hidden], &c0v);
        let l = lens.map(|l| Tensor::from_i32(&[c.batch], l.to_vec()).unwrap());
        let mut ins = vec![
            Some(&xt),
            Some(&w),
            Some(&r),
            Some(&b),
            l.as_ref(),
            Some(&h0),
        ];
        if matches!(cell, Cell::Lstm { .. }) {
            ins.push(Some(&c0));
        }
        let n_out = if matches!(cell, Cell::Lstm { .. }) {
            3
        } else {
            2
        };
        run(|i, n| recurrent(a, cell, i, n), &ins, n_out)
    }

    const CELLS: [Cell; 4] = [
        Cell::Lstm {
            input_forget: false,
        },
        Cell::Gru {
            linear_before_reset: false,
        },
        Cell::Gru {
            linear_before_reset: true,
        },
        Cell::Rnn,
    ];

    /// x with each sequence's first `len` steps reversed (the rest kept).
    fn reverse_within(x: &[f32], lens: &[usize], batch: usize, row: usize) -> Vec<f32> {
        let mut out = x.to_vec();
        for (b, &len) in lens.iter().enumerate() {
            for t in 0..len {
                let (src, dst) = (((len - 1 - t) * batch + b) * row, (t * batch + b) * row);
                out[dst..dst + row].copy_from_slice(&x[src..src + row]);
            }
        }
        out
    }

    #[test]
    fn reverse_is_forward_on_the_reversed_sequence() {
        for (k, cell) in CELLS.into_iter().enumerate() {
            let c = case(cell.gates(), 1, 10 * k as u64);
            let fwd = attrs(RnnDirection::Forward, c.hidden, cell.functions());
            let rev = attrs(RnnDirection::Reverse, c.hidden, cell.functions());
            for lens in [vec![5usize, 5, 5], vec![5, 2, 0]] {
                let l32: Vec<i32> = lens.iter().map(|&l| l as i32).collect();
                let xr = reverse_within(&c.x, &lens, c.batch, c.input);
                let a = eval_case(cell, &rev, &c, &c.x, Some(&l32));
                let b = eval_case(cell, &fwd, &c, &xr, Some(&l32));
                close(&a[0], &reverse_within(&b[0], &lens, c.batch, c.hidden));
                for k in 1..a.len() {
                    close(&a[k], &b[k]);
                }
            }
        }
    }

    #[test]
    fn bidirectional_is_the_two_directions_stacked() {
        for (k, cell) in CELLS.into_iter().enumerate() {
            let c = case(cell.gates(), 2, 100 + k as u64);
            let bi = attrs(RnnDirection::Bidirectional, c.hidden, cell.functions());
            let both = eval_case(cell, &bi, &c, &c.x, None);
            let half = |v: &[f32], d: usize| v[v.len() / 2 * d..v.len() / 2 * (d + 1)].to_vec();
            let bh = c.batch * c.hidden;
            for (d, direction) in [RnnDirection::Forward, RnnDirection::Reverse]
                .into_iter()
                .enumerate()
            {
                let one = Case {
                    x: c.x.clone(),
                    w: half(&c.w, d),
                    r: half(&c.r, d),
                    b: half(&c.b, d),
                    h0: half(&c.h0, d),
                    ..c
                };
                let a = attrs(direction, c.hidden, cell.functions());
                let single = eval_case(cell, &a, &one, &c.x, None);
                // Y [seq, 2, batch, hidden]: direction d of each step.
                let y: Vec<f32> = (0..c.seq)
                    .flat_map(|t| both[0][(t * 2 + d) * bh..][..bh].to_vec())
                    .collect();
                close(&y, &single[0]);
                for k in 1..single.len() {
                    close(&half(&both[k], d), &single[k]);
                }
            }
        }
    }

    #[test]
    fn sequence_lens_zero_fill_and_states() {
        for (k, cell) in CELLS.into_iter().enumerate() {
            let c = case(cell.gates(), 1, 200 + k as u64);
            let a = attrs(RnnDirection::Forward, c.hidden, cell.functions());
            let full = eval_case(cell, &a, &c, &c.x, None);
            let part = eval_case(cell, &a, &c, &c.x, Some(&[5, 2, 0]));
            let hs = c.hidden;
            for t in 0..c.seq {
                for (b, len) in [5, 2, 0].into_iter().enumerate() {
                    let at = (t * c.batch + b) * hs;
                    let want = if t < len {
                        &full[0][at..at + hs]
                    } else {
                        &[0.0; 3][..]
                    };
                    close(&part[0][at..at + hs], want);
                }
            }
            // Y_h: length 5 the full run's, length 2 Y at step 1, length 0 zeros; Y_c alike.
            close(&part[1][..hs], &full[1][..hs]);
            close(&part[1][hs..2 * hs], &part[0][(c.batch + 1) * hs..][..hs]);
            close(&part[1][2 * hs..], &[0.0; 3]);
            if let Some(yc) = part.get(2) {
                close(&yc[..hs], &full[2][..hs]);
                close(&yc[2 * hs..], &[0.0; 3]);
            }
        }
    }

    #[test]
    fn batch_first_is_the_transposed_layout() {
        for (k, cell) in CELLS.into_iter().enumerate() {
            let c = case(cell.gates(), 2, 300 + k as u64);
            let seq_first = attrs(RnnDirection::Bidirectional, c.hidden, cell.functions());
            let want = eval_case(cell, &seq_first, &c, &c.x, Some(&[5, 3, 1]));
            let batch_first = RnnAttrs {
                batch_first: true,
                ..seq_first.clone()
            };
            let gh = cell.gates() * c.hidden;
            let xt = t(
                &[c.batch, c.seq, c.input],
                &swap_01(&c.x, c.seq, c.batch, c.input),
            );
            let w = t(&[2, gh, c.input], &c.w);
            let r = t(&[2, gh, c.hidden], &c.r);
            let b = t(&[2, 2 * gh], &c.b);
            let h0v = swap_01(&c.h0, 2, c.batch, c.hidden);
            let h0 = t(&[c.batch, 2, c.hidden], &h0v);
            let c0v: Vec<f32> = h0v.iter().map(|v| v / 2.0).collect();
            let c0 = t(&[c.batch, 2, c.hidden], &c0v);
            let l = Tensor::from_i32(&[c.batch], vec![5, 3, 1]).unwrap();
            let mut ins = vec![Some(&xt), Some(&w), Some(&r), Some(&b), Some(&l), Some(&h0)];
            if matches!(cell, Cell::Lstm { .. }) {
                ins.push(Some(&c0));
            }
            let got = run(|i, n| recurrent(&batch_first, cell, i, n), &ins, want.len());
            // Y: [seq, 2, batch, H] → [batch, seq, 2, H].
            let per_step = 2 * c.hidden;
            let mut y = vec![0.0; want[0].len()];
            for tt in 0..c.seq {
                for d in 0..2 {
                    for bb in 0..c.batch {
                        let src = ((tt * 2 + d) * c.batch + bb) * c.hidden;
                        let dst = (bb * c.seq + tt) * per_step + d * c.hidden;
                        y[dst..dst + c.hidden].copy_from_slice(&want[0][src..src + c.hidden]);
                    }
                }
            }
            close(&got[0], &y);
            for k in 1..want.len() {
                close(&got[k], &swap_01(&want[k], 2, c.batch, c.hidden));
            }
        }
    }

    #[test]
    fn activations_and_clip() {
        use RnnActivation::*;
        let cases = [
            (Relu, -1.0, 0.0),
            (Tanh, 0.5, 0.5f32.tanh()),
            (Sigmoid, -100.0, 0.0),
            (Sigmoid, 0.0, 0.5),
            (
                Affine {
                    alpha: 2.0,
                    beta: 1.0,
                },
                3.0,
                7.0,
            ),
            (LeakyRelu { alpha: 0.1 }, -2.0, -0.2),
            (ThresholdedRelu { alpha: 1.0 }, 1.0, 0.0),
            (ThresholdedRelu { alpha: 1.0 }, 1.5, 1.5),
            (
                ScaledTanh {
                    alpha: 2.0,
                    beta: 0.5,
                },
                1.0,
                2.0 * 0.5f32.tanh(),
            ),
            (
                HardSigmoid {
                    alpha: 0.2,
                    beta: 0.5,
                },
                1.0,
                0.7,
            ),
            (
                HardSigmoid {
                    alpha: 0.2,
                    beta: 0.5,
                },
                10.0,
                1.0,
            ),
            (Elu { alpha: 1.0 }, -1.0, (-1.0f32).exp() - 1.0),
            (Softsign, -3.0, -0.75),
            (Softplus, 0.0, 2f32.ln()),
        ];
        for (a, x, want) in cases {
            close(&[activation(a, x)], &[want]);
        }
        // clip bounds the pre-activation: RNN with Affine(1, 0) and clip 0.5 gives 0.5.
        let x = t(&[1, 1, 1], &[3.0]);
        let w = t(&[1, 1, 1], &[1.0]);
        let r = t(&[1, 1, 1], &[0.0]);
        let mut a = attrs(RnnDirection::Forward, 1, 1);
        a.activations = vec![Affine {
            alpha: 1.0,
            beta: 0.0,
        }];
        a.clip = Some(0.5);
        let out = run(|i, n| rnn(&a, i, n), &[Some(&x), Some(&w), Some(&r)], 2);
        close(&out[0], &[0.5]);
    }

    #[test]
    fn bad_operands_are_errors() {
        let x = t(&[2, 1, 1], &[1.0, 2.0]);
        let w = t(&[1, 4, 1], &[0.0; 4]);
        let r = t(&[1, 4, 1], &[0.0; 4]);
        let a = attrs(RnnDirection::Forward, 1, 3);
        let err = |ins: &[Option<&Tensor>]| {
            lstm(&a, false, Inputs::new(ins), 3)
                .unwrap_err()
                .to_string()
        };
        let bad_w = t(&[1, 3, 1], &[0.0; 3]);
        assert!(err(&[Some(&x), Some(&bad_w), Some(&r)]).contains("w has shape [1, 3, 1]"));
        let lens = Tensor::from_i32(&[1], vec![3]).unwrap();
        let e = err(&[Some(&x), Some(&w), Some(&r), None, Some(&lens)]);
        assert!(e.contains("sequence length 3 is outside 0..=2"), "{e}");
        let lens = Tensor::from_i64(&[1], vec![1]).unwrap();
        let e = err(&[Some(&x), Some(&w), Some(&r), None, Some(&lens)]);
        assert!(e.contains("expected i32"), "{e}");
        assert!(err(&[Some(&x), Some(&w)]).contains("missing required input 2"));
        let x2 = t(&[2, 1], &[1.0, 2.0]);
        assert!(err(&[Some(&x2), Some(&w), Some(&r)]).contains("x must be 3-D"));
    }
}
