//! Plan steps for the elementwise and pooling kernels: u8/i8 MaxPool and per-tensor
//! QuantizeLinear from f32, split over the threads.

use crate::elementwise::{define_quantize, Elem, QuantizeKernel, QuantizeSpec};
use crate::memory::BufferPool;
use crate::pool::{define_max_pool, MaxPoolKernel, MaxPoolSpec};
use crate::{CodeModule, JitError};
use cranelift_module::FuncId;
use lpc_ir::{DType, Graph, NodeId, PoolAttrs, Tensor};
use rayon::prelude::*;

fn bad(e: lpc_ir::TensorError) -> JitError {
    JitError::Input {
        name: "x".into(),
        why: e.to_string(),
    }
}

fn known_shape(g: &Graph, v: lpc_ir::ValueRef) -> Option<Vec<usize>> {
    g.value_type(v).shape.as_ref()?.as_known()
}

/// A MaxPool over u8/i8 NCHW planes.
pub struct MaxPoolPlan {
    spec: MaxPoolSpec,
    func: FuncId,
    kernel: Option<MaxPoolKernel>,
    out_shape: Vec<usize>,
}

/// Lowers a MaxPool with one output, u8/i8 4-D input, to the pooling kernel.
pub fn lower_max_pool(
    g: &Graph,
    n: NodeId,
    attrs: &PoolAttrs,
    module: &mut CodeModule,
) -> Result<Option<MaxPoolPlan>, JitError> {
    let node = g.node(n);
    let Some(x) = g.node_input(n, 0) else {
        return Ok(None);
    };
    let (Some(dtype), Some(xs), Some(out_shape)) = (
        g.value_type(x).dtype,
        known_shape(g, x),
        node.outputs[0].ty.shape.as_ref().and_then(|s| s.as_known()),
    ) else {
        return Ok(None);
    };
    if node.outputs.len() != 1 || xs.len() != 4 || !matches!(dtype, DType::U8 | DType::I8) {
        return Ok(None);
    }
    let spec = MaxPoolSpec {
        dtype,
        in_hw: [xs[2], xs[3]],
        attrs: attrs.clone(),
    };
    // Unsupported geometries (dilations, wide strides) stay with lpc-ref.
    let Ok(func) = define_max_pool(module, &spec) else {
        return Ok(None);
    };
    Ok(Some(MaxPoolPlan {
        spec,
        func,
        kernel: None,
        out_shape,
    }))
}

impl MaxPoolPlan {
    /// Binds the compiled kernel (after the module is finalized).
    pub fn link(&mut self, m: &CodeModule) -> Result<(), JitError> {
        // SAFETY: `func` was defined by `define_max_pool` with `self.spec` on this module.
        self.kernel = Some(unsafe { MaxPoolKernel::new(m, self.func, &self.spec)? });
        Ok(())
    }

    /// Pools `x`, planes split over the threads.
    pub fn run(&self, x: &Tensor, pool: &mut BufferPool) -> Result<Tensor, JitError> {
        let k = self
            .kernel
            .as_ref()
            .ok_or_else(|| JitError::Codegen("max_pool kernel not linked".into()))?;
        let [oh, ow] = k.out_hw();
        let in_n = self.spec.in_hw[0] * self.spec.in_hw[1];
        let len: usize = self.out_shape.iter().product();
        fn planes<T: Elem>(
            k: &MaxPoolKernel,
            x: &[T],
            y: &mut [T],
            in_n: usize,
            on: usize,
        ) -> Result<(), JitError> {
            if in_n == 0 || on == 0 {
                return Ok(());
            }
            let per = (x.len() / in_n)
                .div_ceil(rayon::current_num_threads().max(1))
                .max(1);
            x.par_chunks(per * in_n)
                .zip(y.par_chunks_mut(per * on))
                .try_for_each(|(xs, ys)| k.run(xs, ys))
        }
        let t = match x.dtype() {
            DType::U8 => {
                let mut y = pool.take_u8(len);
                planes(k, x.as_u8().map_err(bad)?, &mut y, in_n, oh * ow)?;
                Tensor::from_u8(&self.out_shape, y)
            }
            _ => {
                let mut y = pool.take_i8(len);
                planes(k, x.as_i8().map_err(bad)?, &mut y, in_n, oh * ow)?;
                Tensor::from_i8(&self.out_shape, y)
            }
        };
        t.map_err(bad)
    }
}

/// A per-tensor QuantizeLinear from f32 to u8/i8.
pub struct QuantizePlan {
    spec: QuantizeSpec,
    func: FuncId,
    kernel: Option<QuantizeKernel>,
}

/// Lowers a per-tensor QuantizeLinear of f32 with constant scale and zero point.
pub fn lower_quantize(
    g: &Graph,
    n: NodeId,
    to: DType,
    module: &mut CodeModule,
) -> Result<Option<QuantizePlan>, JitError> {
    let konst = |slot| {
        g.node_input(n, slot)
            .and_then(|v| g.const_value(v))
            .map(|t| t.as_ref())
    };
    let Some(x) = g.node_input(n, 0) else {
        return Ok(None);
    };
    let (Some(s), Some(z)) = (konst(1), konst(2)) else {
        return Ok(None);
    };
    if g.value_type(x).dtype != Some(DType::F32)
        || s.dtype() != DType::F32
        || s.len() != 1
        || z.len() != 1
        || z.dtype() != to
        || !matches!(to, DType::U8 | DType::I8)
    {
        return Ok(None);
    }
    let spec = QuantizeSpec {
        to,
        scale: s.to_f32_vec(),
        zero_point: vec![z.to_i64_vec()[0] as i32],
        inner: 1,
    };
    let Ok(func) = define_quantize(module, &spec) else {
        return Ok(None);
    };
    Ok(Some(QuantizePlan {
        spec,
        func,
        kernel: None,
    }))
}

/// Elements per parallel chunk of elementwise kernels.
const CHUNK: usize = 1 << 14;

impl QuantizePlan {
    /// Binds the compiled kernel (after the module is finalized).
    pub fn link(&mut self, m: &CodeModule) -> Result<(), JitError> {
        // SAFETY: `func` was defined by `define_quantize` with `self.spec` on this module.
        self.kernel = Some(unsafe { QuantizeKernel::new(m, self.func, &self.spec)? });
        Ok(())
    }

    /// Quantizes `x`.
    pub fn run(&self, x: &Tensor, pool: &mut BufferPool) -> Result<Tensor, JitError> {
        let k = self
            .kernel
            .as_ref()
            .ok_or_else(|| JitError::Codegen("quantize kernel not linked".into()))?;
        let xv = x.as_f32().map_err(bad)?;
        fn go<Y: Elem>(k: &QuantizeKernel, x: &[f32], y: &mut [Y]) -> Result<(), JitError> {
            x.par_chunks(CHUNK)
                .zip(y.par_chunks_mut(CHUNK))
                .enumerate()
                .try_for_each(|(j, (xs, ys))| k.run(xs, ys, j * CHUNK))
        }
        let t = match self.spec.to {
            DType::U8 => {
                let mut y = pool.take_u8(xv.len());
                go(k, xv, &mut y)?;
                Tensor::from_u8(x.shape(), y)
            }
            _ => {
                let mut y = pool.take_i8(xv.len());
                go(k, xv, &mut y)?;
                Tensor::from_i8(x.shape(), y)
            }
        };
        t.map_err(bad)
    }
}
