//! f32 kernels compiled with Cranelift for the float ops left between integer kernels.
//!
//! Three kinds: fused elementwise chains (with an optional QuantizeLinear epilogue, per tensor or
//! per channel, in `chain.rs`; its `eˣ`, sigmoid and tanh in `transcendental.rs`), GlobalAveragePool (`gap.rs`) and MaxPool with windows inside the
//! input (`max_pool.rs`). Finding the chains of a graph is lowering: `lower/float_chains.rs`.

mod chain;
mod chain_zmm;
mod gap;
mod max_pool;
mod transcendental;

pub use chain::{
    canonicalize, define_chain, ChainKernel, ChainSpec, Dequant, FBinary, FNode, FUnary, Operand,
    QuantOut, QuantParams,
};
pub(crate) use gap::GAP_LANES;
pub use gap::{define_gap, GapKernel, GapSpec};
pub use max_pool::{define_max_pool_f32, MaxPoolF32Kernel, MaxPoolF32Spec};

/// A raw pointer that may cross threads (each thread writes a disjoint part).
#[derive(Clone, Copy)]
pub(super) struct SendPtr(pub(super) *mut u8);
// SAFETY: the kernels write disjoint ranges of the buffer behind it.
unsafe impl Send for SendPtr {}
// SAFETY: as above.
unsafe impl Sync for SendPtr {}

/// Elements below which a kernel runs on one thread.
pub(super) const PAR_MIN: usize = 1 << 14;
