//! Per-tap input sums of a 2-D convolution: the bias shift of a Conv without a second
//! convolution.

use crate::fq::{ActQuant, WeightQuant};
use crate::insert::fq_tensor;
use crate::QuantError;
use lpc_ir::{Graph, Op, Tensor};

/// A Conv whose bias shift comes from per-tap input sums (no second convolution): 2-D, constant
/// weights, one activation input.
pub(super) struct TapConv {
    /// Weights `[O, C/g, KH, KW]`, FP32 and fake-quantized.
    w: Vec<f32>,
    wq: Vec<f32>,
    o: usize,
    c: usize,
    group: usize,
    kernel: [usize; 2],
    attrs: lpc_ir::ConvAttrs,
    q: Vec<ActQuant>,
}

/// Sums over the batch and the output positions of the input each kernel tap reads:
/// `t[c][ky][kx] += Σ_{n,oy,ox} x[n, c, iy(ky, oy), ix(kx, ox)]` (padding reads 0). Since a
/// convolution is linear, the mean of its output channel o is `Σ w[o,c,ky,kx]·t[c,ky,kx]`
/// divided by the output positions, plus the bias.
fn tap_sums(x: &[f32], dims: [usize; 4], taps: &[Vec<Vec<Option<usize>>>], t: &mut [f64]) {
    let [n, c, h, w] = dims;
    let (kh, kw) = (taps[0].len(), taps[1].len());
    let cols: Vec<Vec<usize>> = taps[1]
        .iter()
        .map(|k| k.iter().flatten().copied().collect())
        .collect();
    // The columns a kernel column reads form an arithmetic progression a, a+s, ..., b (the map
    // ox → ox·stride + kx·dilation − pad); its sum is q[b] − q[a−s] with q the running sums of
    // every s-th element, so each row is summed once per distinct step instead of once per
    // kernel column.
    let prog: Vec<Option<(usize, usize, usize)>> = cols
        .iter()
        .map(|cs| {
            let (&a, &b) = (cs.first()?, cs.last()?);
            let s = if cs.len() > 1 { cs[1] - a } else { 1 };
            let ok = s > 0 && cs.windows(2).all(|p| p[1] == p[0] + s);
            ok.then_some((a, b, s))
        })
        .collect();
    let mut steps: Vec<usize> = prog.iter().flatten().map(|p| p.2).collect();
    steps.sort_unstable();
    steps.dedup();
    // Running sums of ROWS rows at a time, interleaved per column (`q[si][ix·ROWS + r]`).
    let mut q = vec![vec![0f64; w * ROWS]; steps.len()];
    let mut rows = vec![vec![0f64; h]; kw];
    for plane in x.chunks(h * w).take(n * c).enumerate() {
        let (i, p) = plane;
        let ch = i % c;
        for y0 in (0..h).step_by(ROWS) {
            let line = |r: usize| &p[(y0 + r) * w..(y0 + r + 1) * w];
            let nr = ROWS.min(h - y0);
            for (qs, &s) in q.iter_mut().zip(&steps) {
                if nr == ROWS {
                    running_sums::<ROWS>(std::array::from_fn(line), s, qs);
                } else {
                    for r in 0..nr {
                        let mut one = vec![0f64; w];
                        running_sums([line(r)], s, &mut one);
                        for (ix, &v) in one.iter().enumerate() {
                            qs[ix * ROWS + r] = v;
                        }
                    }
                }
            }
            for r in 0..nr {
                for (kx, cs) in cols.iter().enumerate() {
                    rows[kx][y0 + r] = match prog[kx] {
                        Some((a, b, s)) => {
                            let qs = &q[steps.partition_point(|&t| t < s)];
                            qs[b * ROWS + r] - if a >= s { qs[(a - s) * ROWS + r] } else { 0.0 }
                        }
                        None => cs.iter().map(|&ix| line(r)[ix] as f64).sum(),
                    };
                }
            }
        }
        for (kx, rows) in rows.iter().enumerate() {
            for (ky, tk) in taps[0].iter().enumerate() {
                let s: f64 = tk.iter().flatten().map(|&iy| rows[iy]).sum();
                t[(ch * kh + ky) * kw + kx] += s;
            }
        }
    }
}

/// Rows whose running sums [`tap_sums`] computes together.
const ROWS: usize = 4;

/// Running sums of every `s`-th element of `R` rows at once, interleaved:
/// `q[ix·R + r] = lines[r][ix] + q[(ix − s)·R + r]` (`+ 0.0` for `ix < s`). Each row gets
/// exactly the additions, in the same order, of summing it alone; the R rows' independent
/// chains of f64 additions overlap instead of each waiting on the latency of the previous add.
fn running_sums<const R: usize>(lines: [&[f32]; R], s: usize, q: &mut [f64]) {
    let w = lines[0].len();
    for ix in 0..w {
        for r in 0..R {
            q[ix * R + r] = lines[r][ix] as f64 + if ix >= s { q[(ix - s) * R + r] } else { 0.0 };
        }
    }
}

impl TapConv {
    pub(super) fn new(
        g: &Graph,
        l: &crate::placement::Layer,
        q: &[ActQuant],
        wq: &WeightQuant,
    ) -> Result<Option<TapConv>, QuantError> {
        let Op::Conv(attrs) = &g.node(l.node).op else {
            return Ok(None);
        };
        let (Some((1, 0)), [0]) = (l.weight, l.act_slots.as_slice()) else {
            return Ok(None);
        };
        let Some(w) = g.node_input(l.node, 1).and_then(|v| g.const_value(v)) else {
            return Ok(None);
        };
        if w.rank() != 4 || attrs.group == 0 || w.shape()[0] % attrs.group != 0 {
            return Ok(None);
        }
        let Ok(wv) = w.as_f32() else { return Ok(None) };
        let wqt = wq.apply(w)?;
        let s = w.shape();
        Ok(Some(TapConv {
            w: wv.to_vec(),
            wq: wqt.as_f32().map_err(QuantError::from)?.to_vec(),
            o: s[0],
            c: s[1] * attrs.group,
            group: attrs.group,
            kernel: [s[2], s[3]],
            attrs: attrs.clone(),
            q: q.to_vec(),
        }))
    }

    /// Adds the tap sums of `x` and of its fake-quantized version to `acc` (Σt, Σtq, positions).
    pub(super) fn observe(
        &self,
        x: &Tensor,
        acc: &mut Option<(Vec<f64>, Vec<f64>, u64)>,
    ) -> Result<(), QuantError> {
        let s = x.shape();
        let bad = || QuantError::Internal(format!("bias correction: conv input of shape {s:?}"));
        if s.len() != 4 || s[1] != self.c {
            return Err(bad());
        }
        let a = &self.attrs;
        let geom = lpc_ref::geom::geometry(
            &s[2..],
            &self.kernel,
            &a.strides,
            &a.dilations,
            &a.pads,
            a.auto_pad,
            false,
        )
        .map_err(|e| QuantError::Internal(format!("bias correction: {e}")))?;
        let taps = geom.taps();
        let len = self.c * self.kernel[0] * self.kernel[1];
        let (t, tq, positions) = acc.get_or_insert_with(|| (vec![0.0; len], vec![0.0; len], 0));
        let dims = [s[0], s[1], s[2], s[3]];
        let xv = x.as_f32().map_err(QuantError::from)?;
        tap_sums(xv, dims, &taps, t);
        let xq = fq_tensor(x, &self.q)?;
        tap_sums(xq.as_f32().map_err(QuantError::from)?, dims, &taps, tq);
        *positions += (s[0] * geom.output.iter().product::<usize>()) as u64;
        Ok(())
    }

    /// The mean output difference per output channel, FP32 minus quantized.
    pub(super) fn shift(&self, t: &[f64], tq: &[f64], positions: u64) -> Vec<f32> {
        let k = self.kernel[0] * self.kernel[1];
        let (cg, og) = (self.c / self.group, self.o / self.group);
        (0..self.o)
            .map(|o| {
                let base = (o / og.max(1)) * cg * k;
                let mut d = 0f64;
                for j in 0..cg * k {
                    let wi = o * cg * k + j;
                    d += self.w[wi] as f64 * t[base + j] - self.wq[wi] as f64 * tq[base + j];
                }
                (d / positions.max(1) as f64) as f32
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tap_sums` as it was, one row's running sums at a time: the rows-together version must
    /// give bit-identical sums (the bias shifts, and so the quantized model, depend on them).
    fn tap_sums_by_row(
        x: &[f32],
        dims: [usize; 4],
        taps: &[Vec<Vec<Option<usize>>>],
        t: &mut [f64],
    ) {
        let [n, c, h, w] = dims;
        let (kh, kw) = (taps[0].len(), taps[1].len());
        let cols: Vec<Vec<usize>> = taps[1]
            .iter()
            .map(|k| k.iter().flatten().copied().collect())
            .collect();
        let prog: Vec<Option<(usize, usize, usize)>> = cols
            .iter()
            .map(|cs| {
                let (&a, &b) = (cs.first()?, cs.last()?);
                let s = if cs.len() > 1 { cs[1] - a } else { 1 };
                let ok = s > 0 && cs.windows(2).all(|p| p[1] == p[0] + s);
                ok.then_some((a, b, s))
            })
            .collect();
        let mut rows = vec![vec![0f64; h]; kw];
        for (i, p) in x.chunks(h * w).take(n * c).enumerate() {
            for iy in 0..h {
                let line = &p[iy * w..(iy + 1) * w];
                for (kx, cs) in cols.iter().enumerate() {
                    rows[kx][iy] = match prog[kx] {
                        Some((a, b, s)) => {
                            let mut q = vec![0f64; w];
                            for ix in 0..w {
                                q[ix] = line[ix] as f64 + if ix >= s { q[ix - s] } else { 0.0 };
                            }
                            q[b] - if a >= s { q[a - s] } else { 0.0 }
                        }
                        None => cs.iter().map(|&ix| line[ix] as f64).sum(),
                    };
                }
            }
            for (kx, rows) in rows.iter().enumerate() {
                for (ky, tk) in taps[0].iter().enumerate() {
                    let s: f64 = tk.iter().flatten().map(|&iy| rows[iy]).sum();
                    t[((i % c) * kh + ky) * kw + kx] += s;
                }
            }
        }
    }

    #[test]
    fn tap_sums_match_row_by_row() {
        // Heights that are and are not multiples of ROWS, strides 1-3, dilation, padding,
        // values of very different magnitudes (so that summation order would show).
        for (h, w, k, stride, dil, pad) in [
            (7, 9, 3, 1, 1, 1),
            (8, 8, 3, 2, 1, 1),
            (5, 11, 5, 1, 2, 2),
            (9, 6, 1, 1, 1, 0),
            (10, 13, 3, 3, 1, 0),
            (1, 4, 3, 1, 1, 1),
        ] {
            let (n, c) = (2, 3);
            let x: Vec<f32> = (0..n * c * h * w)
                .map(|i| (i as f32 * 0.7).sin() * 10f32.powi((i % 9) as i32 - 4))
                .collect();
            let geom = lpc_ref::geom::geometry(
                &[h, w],
                &[k, k],
                &[stride, stride],
                &[dil, dil],
                &[pad, pad, pad, pad],
                lpc_ir::AutoPad::NotSet,
                false,
            )
            .unwrap();
            let taps = geom.taps();
            let mut got = vec![0f64; c * k * k];
            let mut want = got.clone();
            for _ in 0..2 {
                tap_sums(&x, [n, c, h, w], &taps, &mut got);
                tap_sums_by_row(&x, [n, c, h, w], &taps, &mut want);
            }
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&got),
                bits(&want),
                "{h}x{w} k{k} s{stride} d{dil} p{pad}"
            );
        }
    }
}
