//! f32 convolutions of one pixel (1×1 kernel on a 1×1 input, group 1): the squeeze-and-excitation
//! gate layers that quantization keeps in float. A matrix-vector product per image, in lpc-ref's
//! defined order for these (each output: the sum over input channels in order, then the bias),
//! with the weights transposed at compile time to `[C][M]` so the loop over output channels is
//! contiguous: rustc vectorizes it across outputs, and every output keeps its own sequential sum,
//! so the result is bit-identical to `lpc_ref`'s.

use lpc_ir::{DType, Graph, NodeId, Op, Tensor, ValueRef};

use crate::runtime::memory::BufferPool;
use crate::JitError;

/// A lowered one-pixel f32 convolution.
pub struct GemvPlan {
    /// Images.
    n: usize,
    /// Input channels.
    c: usize,
    /// Output channels.
    m: usize,
    /// Weights transposed: `wt[c·m + o] = w[o, c]`.
    wt: Vec<f32>,
    /// Bias per output channel, if any.
    bias: Option<Vec<f32>>,
    out_shape: Vec<usize>,
}

fn known_shape(g: &Graph, v: ValueRef) -> Option<Vec<usize>> {
    g.value_type(v).shape.as_ref()?.as_known()
}

/// Lowers a Conv with an f32 input of known shape `[N, C, 1, ...]`, constant f32 weights
/// `[M, C, 1, ...]` (C, M ≥ 1), group 1, no padding, any strides, and an optional constant f32
/// bias `[M]`. Any other Conv stays with lpc-ref (`None`).
pub fn lower_gemv(g: &Graph, n: NodeId) -> Option<GemvPlan> {
    let Op::Conv(a) = &g.node(n).op else {
        return None;
    };
    let x = g.node_input(n, 0)?;
    let xs = known_shape(g, x)?;
    let out_shape = known_shape(g, ValueRef::first(n))?;
    let w = g.const_value(g.node_input(n, 1)?)?;
    let one_pixel = |s: &[usize]| s.len() >= 3 && s[2..].iter().all(|&d| d == 1);
    let spatial = xs.len().saturating_sub(2);
    // Attributes lpc-ref would reject (wrong lengths, a kernel other than the weights') stay
    // with it, so that the error is its.
    let attrs_ok = (a.kernel.is_empty() || a.kernel == w.shape()[2..])
        && [0, spatial].contains(&a.strides.len())
        && [0, spatial].contains(&a.dilations.len())
        && [0, 2 * spatial].contains(&a.pads.len())
        && a.strides.iter().chain(&a.dilations).all(|&v| v > 0);
    if g.value_type(x).dtype != Some(DType::F32)
        || w.dtype() != DType::F32
        || a.group != 1
        || !attrs_ok
        || a.pads.iter().any(|&p| p != 0)
        || !one_pixel(&xs)
        || !one_pixel(w.shape())
        || !one_pixel(&out_shape)
        || w.rank() != xs.len()
        || w.shape()[1] != xs[1]
        || out_shape[..2] != [xs[0], w.shape()[0]]
        || xs[1] == 0
        || w.shape()[0] == 0
        || g.node(n).outputs.len() != 1
    {
        return None;
    }
    let (c, m) = (xs[1], w.shape()[0]);
    let bias = match g.node_input(n, 2) {
        None => None,
        Some(b) => {
            let b = g.const_value(b)?;
            if b.dtype() != DType::F32 || b.len() != m {
                return None;
            }
            Some(b.to_f32_vec())
        }
    };
    let wv = w.to_f32_vec();
    let mut wt = vec![0f32; c * m];
    for o in 0..m {
        for k in 0..c {
            wt[k * m + o] = wv[o * c + k];
        }
    }
    Some(GemvPlan {
        n: xs[0],
        c,
        m,
        wt,
        bias,
        out_shape,
    })
}

impl GemvPlan {
    /// `y[i, o] = (Σ_k w[o, k]·x[i, k], k in order) + bias[o]`.
    pub fn run(&self, x: &Tensor, pool: &mut BufferPool) -> Result<Tensor, JitError> {
        let bad = |why: String| JitError::Input {
            name: "x".into(),
            why,
        };
        let xv = x.as_f32().map_err(|e| bad(e.to_string()))?;
        if xv.len() != self.n * self.c {
            return Err(bad(format!(
                "{} values, the compiled one-pixel conv takes {}",
                xv.len(),
                self.n * self.c
            )));
        }
        let mut y = pool.take_f32(self.n * self.m);
        for (xi, yi) in xv.chunks(self.c).zip(y.chunks_mut(self.m)) {
            yi.fill(0.0);
            for (&xk, wk) in xi.iter().zip(self.wt.chunks(self.m)) {
                for (acc, &w) in yi.iter_mut().zip(wk) {
                    *acc += w * xk;
                }
            }
            if let Some(b) = &self.bias {
                for (acc, &bo) in yi.iter_mut().zip(b) {
                    *acc += bo;
                }
            }
        }
        Tensor::from_f32(&self.out_shape, y).map_err(|e| bad(e.to_string()))
    }
}
