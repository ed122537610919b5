//! Helpers shared by the op implementations: axes, broadcasting, strides.

use crate::{EvalError, EvalResult};
use lpc_ir::Tensor;

/// Normalises a possibly negative axis against `rank` (`-1` is the last axis).
pub fn norm_axis(axis: i64, rank: usize) -> EvalResult<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    // Rank 0 accepts axis 0 (ONNX treats a scalar as one axis for these ops).
    if a < 0 || a >= r.max(1) {
        return Err(EvalError::Invalid(format!(
            "axis {axis} out of range for rank {rank}"
        )));
    }
    Ok(a as usize)
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The numpy broadcast of two shapes.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> EvalResult<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(EvalError::Invalid(format!(
                "shapes {a:?} and {b:?} do not broadcast"
            )));
        };
    }
    Ok(out)
}

/// Maps flat indices of `out_shape` to flat indices of an `in_shape` operand broadcast to it,
/// without materializing the map in the common cases: an operand whose non-1 axes form one
/// contiguous run equal to the output's (scalar, same shape, per-channel `[C,1,1]`, per-sample
/// `[N,C,1,1]`) reads `(k / inner) % len`; any other shape uses a table.
pub enum BroadcastIndex {
    /// `k` (the operand has the output's shape).
    Same,
    /// `(k / inner) % len`.
    Block {
        /// Product of the output axes after the run.
        inner: usize,
        /// Product of the run's axes.
        len: usize,
    },
    /// The materialized map ([`broadcast_index`]).
    Table(Vec<usize>),
}

impl BroadcastIndex {
    /// The map for `in_shape` broadcast to `out_shape` (which it must broadcast to).
    pub fn new(in_shape: &[usize], out_shape: &[usize]) -> BroadcastIndex {
        let r = out_shape.len();
        let off = r.saturating_sub(in_shape.len());
        let dim = |i: usize| if i >= off { in_shape[i - off] } else { 1 };
        let non1: Vec<usize> = (0..r).filter(|&i| dim(i) != 1).collect();
        let (a, b) = match (non1.first(), non1.last()) {
            (Some(&a), Some(&b)) => (a, b + 1),
            _ => (r, r),
        };
        if in_shape == out_shape {
            BroadcastIndex::Same
        } else if (a..b).all(|i| dim(i) == out_shape[i]) && in_shape.len() <= r {
            BroadcastIndex::Block {
                inner: out_shape[b..].iter().product(),
                len: out_shape[a..b].iter().product(),
            }
        } else {
            BroadcastIndex::Table(broadcast_index(in_shape, out_shape))
        }
    }

    /// How the operand is read over aligned runs of output elements: for every `k` that is a
    /// multiple of the run's length, output elements `k .. k + len` read `at(k)` throughout
    /// ([`Run::Const`]) or `at(k) .. at(k) + len` ([`Run::Contig`]). `n` is the output's
    /// element count; a table reads runs of one element.
    pub fn run(&self, n: usize) -> Run {
        match self {
            BroadcastIndex::Same => Run::Contig(n),
            BroadcastIndex::Block { len: 1, .. } => Run::Const(n),
            BroadcastIndex::Block { inner: 1, len } => Run::Contig(*len),
            BroadcastIndex::Block { inner, .. } => Run::Const(*inner),
            BroadcastIndex::Table(_) => Run::Const(1),
        }
    }

    /// The operand's flat index for output element `k`.
    #[inline]
    pub fn at(&self, k: usize) -> usize {
        match self {
            BroadcastIndex::Same => k,
            // Before `inner: 1`: a scalar operand must not pay an integer division per element.
            BroadcastIndex::Block { len: 1, .. } => 0,
            BroadcastIndex::Block { inner: 1, len } => k % len,
            BroadcastIndex::Block { inner, len } => (k / inner) % len,
            BroadcastIndex::Table(t) => t[k],
        }
    }
}

/// A run of output elements reading one operand element or a contiguous slice of it (see
/// [`BroadcastIndex::run`]); the value is the run's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Run {
    /// Every element of the run reads the same operand element.
    Const(usize),
    /// The run reads consecutive operand elements.
    Contig(usize),
}

impl Run {
    /// The run's length.
    pub fn len(self) -> usize {
        match self {
            Run::Const(l) | Run::Contig(l) => l,
        }
    }

    /// Whether the run is empty (only for an empty output).
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// Greatest common divisor (`gcd(0, b) = b`): the length of runs that split evenly into runs
/// of both lengths.
pub fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// For each element of `out_shape` (row-major), the flat index into a tensor of shape `in_shape`
/// broadcast to it. `in_shape` must broadcast to `out_shape`.
pub fn broadcast_index(in_shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let r = out_shape.len();
    let ist = strides(in_shape);
    // Effective stride per output axis: 0 where the input is broadcast.
    let mut eff = vec![0usize; r];
    for (i, e) in eff.iter_mut().enumerate() {
        if i + in_shape.len() >= r {
            let k = i + in_shape.len() - r;
            *e = if in_shape[k] == 1 { 0 } else { ist[k] };
        }
    }
    offsets(out_shape, &eff)
}

/// `Σ iₐ·strides[a]` for every index `i` of `shape`, in row-major order (an odometer).
pub fn offsets(shape: &[usize], strides: &[usize]) -> Vec<usize> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let mut ix = vec![0usize; shape.len()];
    let mut cur = 0usize;
    for _ in 0..n {
        out.push(cur);
        for a in (0..shape.len()).rev() {
            ix[a] += 1;
            cur += strides[a];
            if ix[a] < shape[a] {
                break;
            }
            cur -= strides[a] * shape[a];
            ix[a] = 0;
        }
    }
    out
}

/// Reads a 1-D (or scalar) integer tensor as i64 values.
pub fn ints(t: &Tensor, what: &str) -> EvalResult<Vec<i64>> {
    if !t.dtype().is_int() {
        return Err(EvalError::Invalid(format!(
            "{what} must be an integer tensor, got {}",
            t.dtype()
        )));
    }
    Ok(t.to_i64_vec())
}

/// A dtype error naming input `slot` (`what`) unless `t` is a float tensor.
pub fn want_float(t: &Tensor, slot: usize, what: &'static str) -> EvalResult<()> {
    if !t.dtype().is_float() {
        return Err(EvalError::DType {
            slot,
            what,
            got: t.dtype(),
            expected: "a float type",
        });
    }
    Ok(())
}

/// The elements of a float tensor as f32: borrowed for f32 tensors, converted for f16/f64;
/// a non-float tensor is a dtype error naming input `slot` (`what`).
pub fn float_in<'t>(
    t: &'t Tensor,
    slot: usize,
    what: &'static str,
) -> EvalResult<std::borrow::Cow<'t, [f32]>> {
    want_float(t, slot, what)?;
    Ok(match t.as_f32() {
        Ok(v) => std::borrow::Cow::Borrowed(v),
        Err(_) => std::borrow::Cow::Owned(t.to_f32_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_index_matches_definition() {
        let idx = broadcast_index(&[3, 1], &[2, 3, 4]);
        assert_eq!(idx.len(), 24);
        assert_eq!(&idx[..8], &[0, 0, 0, 0, 1, 1, 1, 1]);
        assert_eq!(&idx[12..16], &[0, 0, 0, 0]);
        assert_eq!(
            broadcast_shapes(&[2, 1, 4], &[3, 1]).unwrap(),
            vec![2, 3, 4]
        );
        assert!(broadcast_shapes(&[2], &[3]).is_err());
    }

    #[test]
    fn block_index_matches_table() {
        let out = [2, 3, 4, 5];
        for sh in [
            &[][..],
            &[1],
            &[5],
            &[4, 1],
            &[3, 1, 1],
            &[2, 3, 1, 1],
            &[2, 3, 4, 5],
            &[1, 3, 4, 1],
            &[2, 1, 4, 1],
            &[3, 1, 5],
            &[1, 1, 1, 1],
        ] {
            let t = broadcast_index(sh, &out);
            let b = BroadcastIndex::new(sh, &out);
            let n: usize = out.iter().product();
            assert!((0..n).all(|k| b.at(k) == t[k]), "{sh:?}");
        }
        assert!(matches!(
            BroadcastIndex::new(&[2, 1, 4, 1], &out),
            BroadcastIndex::Table(_)
        ));
        assert!(matches!(
            BroadcastIndex::new(&[2, 3, 1, 1], &out),
            BroadcastIndex::Block { inner: 20, len: 6 }
        ));
    }

    #[test]
    fn runs_match_table() {
        let out = [2, 3, 4, 5];
        let n: usize = out.iter().product();
        for sh in [
            &[][..],
            &[1],
            &[5],
            &[4, 1],
            &[4, 5],
            &[3, 1, 1],
            &[2, 3, 1, 1],
            &[2, 3, 4, 5],
            &[1, 3, 4, 1],
            &[2, 1, 4, 1],
            &[3, 1, 5],
        ] {
            let t = broadcast_index(sh, &out);
            let b = BroadcastIndex::new(sh, &out);
            let r = b.run(n);
            assert!(!r.is_empty() && n.is_multiple_of(r.len()), "{sh:?}");
            assert_eq!(t.len(), n);
            for (k, &got) in t.iter().enumerate() {
                let start = k - k % r.len();
                let want = match r {
                    Run::Const(_) => b.at(start),
                    Run::Contig(_) => b.at(start) + k % r.len(),
                };
                assert_eq!(got, want, "{sh:?} at {k}");
            }
        }
        assert_eq!(BroadcastIndex::new(&[3, 1, 1], &out).run(n), Run::Const(20));
        assert_eq!(BroadcastIndex::new(&[4, 5], &out).run(n), Run::Contig(20));
        assert_eq!(BroadcastIndex::new(&[], &out).run(n), Run::Const(n));
        assert_eq!(gcd(20, 120), 20);
        assert_eq!(gcd(0, 7), 7);
        assert_eq!(gcd(6, 4), 2);
    }

    #[test]
    fn axes() {
        assert_eq!(norm_axis(-1, 4).unwrap(), 3);
        assert!(norm_axis(4, 4).is_err());
        assert!(norm_axis(-5, 4).is_err());
    }
}

/// Runs `f(index, chunk)` over `chunk`-sized pieces of `data`: on the rayon pool when it has
/// more than one thread and the work is big enough to pay for the hand-off, else on this
/// thread (a one-thread pool would only add a wake-up per call).
pub fn for_chunks<T: Send>(
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    use rayon::prelude::*;
    let chunk = chunk.max(1);
    if threads() > 1 && data.len() >= 1 << 14 && data.len() > chunk {
        data.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    } else {
        data.chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    }
}

thread_local! {
    static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Threads an op may split its work over: 1 inside [`serial`] on this thread, else the current
/// rayon pool's. Every parallel loop of the interpreter asks this first.
pub fn threads() -> usize {
    if SERIAL.get() {
        1
    } else {
        rayon::current_num_threads().max(1)
    }
}

/// Runs `f` on this thread with [`threads`] = 1 (restored after, also on panic): nothing it
/// evaluates reaches a rayon pool. lpc-jit runs one-thread models this way.
pub fn serial<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SERIAL.set(self.0);
        }
    }
    let _restore = Restore(SERIAL.replace(true));
    f()
}

/// Σ f(v[k]) in 8 interleaved partial sums (element k into sum k mod 8, each in order), then
/// `((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))`: lpc-ref's order for row sums. Eight
/// independent chains instead of one, which the compiler vectorises.
pub fn sum8<T, F>(v: &[f32], f: F) -> T
where
    T: Copy + Default + std::ops::Add<Output = T>,
    F: Fn(f32) -> T,
{
    let mut s = [T::default(); 8];
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        for j in 0..8 {
            s[j] = s[j] + f(c[j]);
        }
    }
    for (j, &e) in chunks.remainder().iter().enumerate() {
        s[j] = s[j] + f(e);
    }
    ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
}
