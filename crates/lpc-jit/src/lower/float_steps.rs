//! Lowering of the f32 pooling ops to their kernels: GlobalAveragePool and MaxPool with
//! windows inside the input (`kernels/float/{gap,max_pool}.rs`).

use cranelift_module::FuncId;
use lpc_ir::{Graph, NodeId, Tensor, ValueRef};

use super::float_chains::{bad, is_f32, known_shape};
use crate::kernels::float::{
    define_gap, define_max_pool_f32, GapKernel, GapSpec, MaxPoolF32Kernel, MaxPoolF32Spec,
    GAP_LANES,
};
use crate::runtime::memory::BufferPool;
use crate::{CodeModule, JitError};

/// A GlobalAveragePool step on f32.
pub struct GapPlan {
    spec: GapSpec,
    func: FuncId,
    kernel: Option<GapKernel>,
    out_shape: Vec<usize>,
}

/// Lowers a GlobalAveragePool of a known-shape f32 tensor of rank ≥ 3 with non-empty planes.
pub fn lower_gap(
    g: &Graph,
    n: NodeId,
    module: &mut CodeModule,
) -> Result<Option<GapPlan>, JitError> {
    let Some(x) = g.node_input(n, 0) else {
        return Ok(None);
    };
    let (Some(xs), Some(out_shape)) = (known_shape(g, x), known_shape(g, ValueRef::first(n)))
    else {
        return Ok(None);
    };
    if !is_f32(g, x) || xs.len() < 3 || g.node(n).outputs.len() != 1 {
        return Ok(None);
    }
    let spec = GapSpec {
        planes: xs[0] * xs[1],
        plane: xs[2..].iter().product(),
    };
    // Empty planes, or planes too long for the kernel's 32-bit load offsets, stay with lpc-ref.
    let too_long = spec.plane.saturating_mul(4 * GAP_LANES) > i32::MAX as usize;
    if spec.plane == 0 || too_long || out_shape.iter().product::<usize>() != spec.planes {
        return Ok(None);
    }
    let func = define_gap(module, &spec)?;
    Ok(Some(GapPlan {
        spec,
        func,
        kernel: None,
        out_shape,
    }))
}

impl GapPlan {
    /// Binds the compiled kernel (after the module is finalized).
    pub fn link(&mut self, m: &CodeModule) -> Result<(), JitError> {
        // SAFETY: `func` was defined by `define_gap` with `self.spec` on this module.
        self.kernel = Some(unsafe { GapKernel::new(m, self.func, &self.spec)? });
        Ok(())
    }

    /// Averages every plane of `x`.
    pub fn run(&self, x: &Tensor, pool: &mut BufferPool) -> Result<Tensor, JitError> {
        let k = self
            .kernel
            .as_ref()
            .ok_or_else(|| JitError::Codegen("global_average_pool kernel not linked".into()))?;
        let mut y = pool.take_f32(self.spec.planes);
        k.run_raw(x.as_f32().map_err(bad)?, &mut y)?;
        Tensor::from_f32(&self.out_shape, y).map_err(bad)
    }
}

/// An f32 MaxPool step.
pub struct MaxPoolF32Plan {
    spec: MaxPoolF32Spec,
    func: FuncId,
    kernel: Option<MaxPoolF32Kernel>,
    out_shape: Vec<usize>,
}

/// Lowers a 2-D f32 MaxPool with one output whose windows all lie inside the input.
pub fn lower_max_pool_f32(
    g: &Graph,
    n: NodeId,
    attrs: &lpc_ir::PoolAttrs,
    module: &mut CodeModule,
) -> Result<Option<MaxPoolF32Plan>, JitError> {
    let Some(x) = g.node_input(n, 0) else {
        return Ok(None);
    };
    let (Some(xs), Some(out_shape)) = (known_shape(g, x), known_shape(g, ValueRef::first(n)))
    else {
        return Ok(None);
    };
    if !is_f32(g, x) || xs.len() != 4 || g.node(n).outputs.len() != 1 {
        return Ok(None);
    }
    let Ok(geo) = lpc_ref::geom::geometry(
        &xs[2..],
        &attrs.kernel,
        &attrs.strides,
        &attrs.dilations,
        &attrs.pads,
        attrs.auto_pad,
        attrs.ceil_mode,
    ) else {
        return Ok(None);
    };
    if geo.pad_begin.iter().any(|&p| p != 0) || geo.dilations.iter().any(|&d| d != 1) {
        return Ok(None);
    }
    let spec = MaxPoolF32Spec {
        planes: xs[0] * xs[1],
        in_hw: [xs[2], xs[3]],
        out_hw: [geo.output[0], geo.output[1]],
        kernel: [geo.kernel[0], geo.kernel[1]],
        strides: [geo.strides[0], geo.strides[1]],
    };
    let want = [xs[0], xs[1], spec.out_hw[0], spec.out_hw[1]];
    if out_shape != want || spec.check().is_err() {
        return Ok(None);
    }
    let func = define_max_pool_f32(module, &spec)?;
    Ok(Some(MaxPoolF32Plan {
        spec,
        func,
        kernel: None,
        out_shape,
    }))
}

impl MaxPoolF32Plan {
    /// Binds the compiled kernel (after the module is finalized).
    pub fn link(&mut self, m: &CodeModule) -> Result<(), JitError> {
        // SAFETY: `func` was defined by `define_max_pool_f32` with `self.spec` on this module.
        self.kernel = Some(unsafe { MaxPoolF32Kernel::new(m, self.func, &self.spec)? });
        Ok(())
    }

    /// Pools `x`.
    pub fn run(&self, x: &Tensor, pool: &mut BufferPool) -> Result<Tensor, JitError> {
        let k = self
            .kernel
            .as_ref()
            .ok_or_else(|| JitError::Codegen("max_pool f32 kernel not linked".into()))?;
        let n: usize = self.out_shape.iter().product();
        let mut y = pool.take_f32(n);
        k.run_raw(x.as_f32().map_err(bad)?, &mut y)?;
        Tensor::from_f32(&self.out_shape, y).map_err(bad)
    }
}
