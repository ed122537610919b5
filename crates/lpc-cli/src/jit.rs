//! Backend and JIT choices shared by `run`, `bench` and `compile`: `--backend`, `--isa`, and
//! the JIT compile options they give.

use anyhow::Result;
use clap::ValueEnum;
use lpc_ir::{Graph, Tensor};

/// The JIT's GEMM code tier.
#[derive(Clone, Copy, ValueEnum)]
pub enum Isa {
    /// The best the host has (zmm, then 128-bit VNNI, then exact i16).
    Auto,
    /// Hand-assembled AVX512-VNNI `vpdpbusd zmm`.
    Zmm,
    /// Cranelift's 128-bit `vpdpbusd xmm`.
    Vnni,
    /// Exact i16 products (any SSE4.1 host).
    I16,
}

impl Isa {
    fn dot(self) -> lpc_jit::Dot {
        use lpc_jit::Dot;
        match self {
            Isa::Auto => Dot::Auto,
            Isa::Zmm => Dot::Zmm,
            Isa::Vnni => Dot::Vnni,
            Isa::I16 => Dot::ExactI16,
        }
    }
}

/// Execution backend.
#[derive(Clone, Copy, ValueEnum)]
pub enum Backend {
    /// The reference interpreter (lpc-ref).
    Ref,
    /// Fused INT8 kernels JIT-compiled with Cranelift (lpc-jit); other ops run lpc-ref's code.
    Jit,
}

impl Backend {
    /// The backend's name in messages and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Ref => "ref",
            Backend::Jit => "jit",
        }
    }
}

/// JIT-compiles `g` for the shapes of `ins`.
pub fn jit_compile(
    g: &Graph,
    ins: &[Tensor],
    threads: Option<usize>,
    isa: Isa,
) -> Result<lpc_jit::CompiledModel> {
    let shapes: Vec<Vec<usize>> = ins.iter().map(|t| t.shape().to_vec()).collect();
    jit_compile_shapes(g, &shapes, threads, isa)
}

/// JIT-compiles `g` for input `shapes` (one per graph input), refusing a plan whose values do
/// not fit in memory: what `lpc run --backend jit` runs and the Python package's `lpc.compile`
/// returns.
pub fn jit_compile_shapes(
    g: &Graph,
    shapes: &[Vec<usize>],
    threads: Option<usize>,
    isa: Isa,
) -> Result<lpc_jit::CompiledModel> {
    let m = lpc_jit::CompiledModel::compile(g, shapes, &jit_options(threads, isa))?;
    check_plan_memory(&m)?;
    Ok(m)
}

/// Refuses a compiled model whose intermediate values need more memory at once than is
/// available (before it runs).
pub fn check_plan_memory(m: &lpc_jit::CompiledModel) -> Result<()> {
    let shapes: Vec<&[usize]> = m.plan().inputs.iter().map(|i| i.3.as_slice()).collect();
    crate::memory::check(
        || format!("the JIT plan for input shapes {shapes:?} (values live at once)"),
        Some(m.plan().memory().peak_bytes),
    )
}

/// The JIT compile options for `--threads` and `--isa`.
pub fn jit_options(threads: Option<usize>, isa: Isa) -> lpc_jit::CompileOptions {
    lpc_jit::CompileOptions {
        threads,
        lower: lpc_jit::LowerOptions {
            dot: isa.dot(),
            ..Default::default()
        },
    }
}
