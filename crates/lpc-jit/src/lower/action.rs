//! What a plan step does: a fallback to `lpc-ref`, a zero-copy view, or one lowered kernel step.

use super::float_chains::ChainPlan;
use super::float_steps::{GapPlan, MaxPoolF32Plan};
use super::gemv::GemvPlan;
use super::qconv::{DwPlan, GemmPlan};
use super::quant_steps::{
    DequantizePlan, LutPlan, MaxPoolPlan, QAddPlan, QuantizePlan, RequantizePlan,
};
use crate::{CodeModule, JitError};
use lpc_ir::Op;

/// What a step does. The kernel variants carry everything the executor needs.
pub enum Action {
    /// Evaluate the node with `lpc_ref::eval` (float ops, shape ops, anything not lowered).
    Fallback {
        /// The op.
        op: Op,
        /// Number of outputs the node declares.
        n_outputs: usize,
    },
    /// Reshape/Flatten/Squeeze/Unsqueeze of contiguous data: the same elements under a new
    /// shape (no copy when the input dies here).
    View {
        /// The output shape.
        shape: Vec<usize>,
    },
    /// QConv or QMatMul on the JIT GEMM.
    Gemm(Box<GemmPlan>),
    /// Depthwise QConv on its JIT kernel.
    DwConv(Box<DwPlan>),
    /// u8/i8 MaxPool on its JIT kernel.
    MaxPool(Box<MaxPoolPlan>),
    /// QuantizeLinear (per-tensor or per-axis) on its JIT kernel.
    Quantize(Box<QuantizePlan>),
    /// DequantizeLinear (per-tensor or per-axis) on its JIT kernel.
    Dequantize(Box<DequantizePlan>),
    /// Per-tensor Requantize on its JIT kernel.
    Requantize(Box<RequantizePlan>),
    /// Same-shape, per-tensor QAdd on its JIT kernel.
    QAdd(Box<QAddPlan>),
    /// Lut with a constant table on its JIT kernel.
    Lut(Box<LutPlan>),
    /// A fused chain of f32 elementwise nodes (maybe ending in a per-tensor quantize); reads the
    /// chain's external operands, in order.
    FloatChain(Box<ChainPlan>),
    /// f32 GlobalAveragePool on its JIT kernel.
    GlobalAvgPool(Box<GapPlan>),
    /// f32 MaxPool (windows inside the input) on its JIT kernel.
    MaxPoolF32(Box<MaxPoolF32Plan>),
    /// f32 Conv of one pixel (squeeze-and-excitation gates), lpc-ref's summation order.
    Gemv(Box<GemvPlan>),
}

impl Action {
    /// Binds compiled kernels once the module is finalized.
    pub fn link(&mut self, m: &CodeModule) -> Result<(), JitError> {
        match self {
            Action::Fallback { .. } | Action::View { .. } => Ok(()),
            Action::Gemm(p) => p.link(m),
            Action::DwConv(p) => p.link(m),
            Action::MaxPool(p) => p.link(m),
            Action::Quantize(p) => p.link(m),
            Action::Dequantize(p) => p.link(m),
            Action::Requantize(p) => p.link(m),
            Action::QAdd(p) => p.link(m),
            Action::Lut(p) => p.link(m),
            Action::FloatChain(p) => p.link(m),
            Action::GlobalAvgPool(p) => p.link(m),
            Action::MaxPoolF32(p) => p.link(m),
            Action::Gemv(_) => Ok(()),
        }
    }

    /// The code tier of a step whose kernel has several (`zmm`, `vnni`, `i16` for the GEMM,
    /// `zmm`, `xmm` for a float chain).
    pub fn tier(&self) -> Option<&'static str> {
        match self {
            Action::Gemm(p) => Some(p.tier().name()),
            Action::FloatChain(p) => Some(p.tier().name()),
            Action::Fallback { .. }
            | Action::View { .. }
            | Action::DwConv(_)
            | Action::MaxPool(_)
            | Action::Quantize(_)
            | Action::Dequantize(_)
            | Action::Requantize(_)
            | Action::QAdd(_)
            | Action::Lut(_)
            | Action::GlobalAvgPool(_)
            | Action::MaxPoolF32(_)
            | Action::Gemv(_) => None,
        }
    }

    /// The kernel kind shown by `lpc compile --stats` for a step of op `op`: `jit gemm`,
    /// `view`, `fallback:<op>`, ...
    pub fn kind(&self, op: &str) -> String {
        match self {
            Action::Fallback { .. } => format!("fallback:{op}"),
            Action::View { .. } => "view".into(),
            Action::Gemm(p) => p.kind(),
            Action::DwConv(_) => "jit dwconv".into(),
            Action::MaxPool(_) => "jit pool".into(),
            Action::Quantize(_) => "jit elementwise (quantize)".into(),
            Action::Dequantize(_) => "jit elementwise (dequantize)".into(),
            Action::Requantize(_) => "jit elementwise (requantize)".into(),
            Action::QAdd(_) => "jit elementwise (qadd)".into(),
            Action::Lut(_) => "jit elementwise (lut)".into(),
            Action::FloatChain(p) => p.kind(),
            Action::GlobalAvgPool(_) => "jit float (global_average_pool)".into(),
            Action::Gemv(_) => "jit float (one-pixel conv)".into(),
            Action::MaxPoolF32(_) => "jit float (max_pool)".into(),
        }
    }
}
