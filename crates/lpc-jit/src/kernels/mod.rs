//! The JIT kernels, one file (or folder) per kernel family. Each follows one shape: a plain
//! `XSpec` (what to compile), `define_x(&mut CodeModule, &XSpec) -> FuncId` (emits the code) and
//! an `XKernel` (binds the finalized function and checks buffers before calling it). None of them
//! reads a graph: choosing a kernel for a node is `lower`'s job. Public for the bit-exact kernel
//! tests and benches (`crates/lpc-jit/tests`, `benches`).

pub(crate) mod asm;
pub mod dwconv;
pub(crate) mod emit;
pub mod float;
pub mod gemm;
pub mod int8_eltwise;
mod int8_zmm;
pub mod pool;
pub mod tier;

pub use tier::{VecCode, VecTier};
