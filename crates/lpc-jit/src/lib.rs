//! lpc's JIT backend: lowers a folded graph to a plan of fused INT8 kernels compiled with
//! Cranelift for the host CPU, and runs it bit-exact to `lpc-ref`.
//!
//! The crate reads in pipeline order: `lower` (graph -> plan of steps, picking a kernel per
//! node), `kernels` (the Cranelift code of each kernel: `XSpec -> define_x -> XKernel`), and
//! `runtime` (running a plan: buffers, threads). `module` owns the compiled code. See
//! `docs/adding-a-kernel.md`.
#![deny(missing_docs)]

mod error;
pub mod kernels;
mod lower;
mod module;
mod runtime;

pub use error::JitError;
pub use kernels::gemm::Dot;
pub use kernels::{VecCode, VecTier};
pub use lower::{LowerOptions, MemoryStats, Plan, Slot, SlotSource, Step};
pub use module::{CodeModule, HostFeatures};
pub use runtime::exec::{CompileOptions, CompiledModel};
