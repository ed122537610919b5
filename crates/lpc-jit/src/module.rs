//! One Cranelift JIT module for the host CPU: every kernel of a compiled model lives in it.

use cranelift_codegen::ir::{AbiParam, Signature, Type, UserFuncName};
use cranelift_codegen::isa::{CallConv, OwnedTargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};

use crate::JitError;

/// What the host CPU offers, as Cranelift's native detection sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFeatures {
    /// `vpdpbusd` on 128-bit vectors (AVX-VNNI, or AVX512-VNNI with VL).
    pub vnni: bool,
    /// SSE4.1 (`pmovsx/zx`, `roundps`, `pminsd`): the minimum the vector kernels need.
    pub sse41: bool,
    /// AVX512F + AVX512BW + AVX512-VNNI (+ BMI2): `vpdpbusd zmm`, opmasks, the zmm GEMM tier.
    pub zmm_vnni: bool,
    /// FMA3 (`vfmadd`): the fused multiply-adds of tanh (`kernels/float/transcendental.rs`);
    /// without it Exp, Sigmoid and Tanh stay with lpc-ref.
    pub fma: bool,
    /// AVX512F + BW + VL + BMI2: the 16-lane vector kernels (`kernels/tier.rs`).
    pub zmm_f32: bool,
}

impl HostFeatures {
    /// Detects the features of the CPU this process runs on.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let vnni = std::arch::is_x86_feature_detected!("avxvnni")
                || (std::arch::is_x86_feature_detected!("avx512vnni")
                    && std::arch::is_x86_feature_detected!("avx512vl"));
            let zmm_vnni = std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
                && std::arch::is_x86_feature_detected!("bmi2");
            HostFeatures {
                vnni,
                sse41: std::arch::is_x86_feature_detected!("sse4.1"),
                zmm_vnni,
                fma: std::arch::is_x86_feature_detected!("fma"),
                zmm_f32: std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("bmi2"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            HostFeatures {
                vnni: false,
                sse41: false,
                zmm_vnni: false,
                fma: false,
                zmm_f32: false,
            }
        }
    }
}

/// A JIT module for the host plus the reusable contexts needed to define functions in it.
/// Function addresses stay valid as long as the `CodeModule` lives (it never frees code).
pub struct CodeModule {
    module: JITModule,
    ctx: Context,
    fctx: FunctionBuilderContext,
    features: HostFeatures,
    disasm: bool,
    last_disasm: Option<String>,
    finalized: bool,
}

impl CodeModule {
    /// A module for the host CPU. Kernels are emitted at `opt_level=none`: they are written in the
    /// order they should run, and Cranelift's optimiser reorders loads and spills in hand-blocked
    /// loops (measured in `../shared/notes/cranelift-int8.md`).
    pub fn new() -> Result<Self, JitError> {
        let mut flags = settings::builder();
        let set = |f: &mut settings::Builder, k: &str, v: &str| {
            f.set(k, v)
                .map_err(|e| JitError::Codegen(format!("flag {k}={v}: {e}")))
        };
        set(&mut flags, "opt_level", "none")?;
        set(&mut flags, "use_colocated_libcalls", "false")?;
        set(&mut flags, "is_pic", "false")?;
        let isa_builder = cranelift_native::builder()
            .map_err(|e| JitError::Codegen(format!("host CPU not supported by Cranelift: {e}")))?;
        let isa: OwnedTargetIsa = isa_builder
            .finish(settings::Flags::new(flags))
            .map_err(|e| JitError::Codegen(format!("target ISA: {e}")))?;
        let module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        Ok(CodeModule {
            ctx: module.make_context(),
            module,
            fctx: FunctionBuilderContext::new(),
            features: HostFeatures::detect(),
            disasm: false,
            last_disasm: None,
            finalized: false,
        })
    }

    /// The host's features.
    pub fn features(&self) -> HostFeatures {
        self.features
    }

    /// Whether functions use the System V calling convention (what hand-assembled code assumes).
    pub fn system_v(&self) -> bool {
        self.module.isa().default_call_conv() == CallConv::SystemV
    }

    /// The pointer type (i64 on x86-64).
    pub fn ptr(&self) -> Type {
        self.module.target_config().pointer_type()
    }

    /// Keep the disassembly of each defined function (for tests that check the instructions).
    pub fn set_disasm(&mut self, on: bool) {
        self.disasm = on;
    }

    /// The disassembly (Cranelift's vcode listing) of the last defined function, when enabled.
    pub fn last_disasm(&self) -> Option<&str> {
        self.last_disasm.as_deref()
    }

    /// Declares a local function `name(params...)` with no results (module not yet finalized).
    fn declare(&mut self, name: &str, params: &[Type]) -> Result<(FuncId, Signature), JitError> {
        if self.finalized {
            return Err(JitError::Codegen(format!(
                "cannot define {name}: the module is already finalized"
            )));
        }
        let mut sig = Signature::new(self.module.isa().default_call_conv());
        for &t in params {
            sig.params.push(AbiParam::new(t));
        }
        let id = self
            .module
            .declare_function(name, Linkage::Local, &sig)
            .map_err(|e| JitError::Codegen(format!("declare {name}: {e}")))?;
        Ok((id, sig))
    }

    /// Defines a function `name(params...)` with no results; `body` emits its code into a builder
    /// whose entry block is current and has the parameters as block params. The body must
    /// terminate every block it creates; the builder is sealed and finalized here.
    pub fn define(
        &mut self,
        name: &str,
        params: &[Type],
        body: impl FnOnce(&mut FunctionBuilder, &[cranelift_codegen::ir::Value]),
    ) -> Result<FuncId, JitError> {
        let (id, sig) = self.declare(name, params)?;
        self.ctx.clear();
        self.ctx.func.signature = sig;
        self.ctx.func.name = UserFuncName::user(0, id.as_u32());
        self.ctx.set_disasm(self.disasm);
        let cfg = self.module.target_config();
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            let args = b.block_params(entry).to_vec();
            body(&mut b, &args);
            b.seal_all_blocks();
            b.finalize(cfg);
        }
        self.module
            .define_function(id, &mut self.ctx)
            .map_err(|e| JitError::Codegen(format!("compile {name}: {e:?}")))?;
        self.last_disasm = if self.disasm {
            self.ctx.compiled_code().and_then(|c| c.vcode.clone())
        } else {
            None
        };
        self.module.clear_context(&mut self.ctx);
        Ok(id)
    }

    /// Defines a function `name(params...)` with no results from position-independent machine
    /// code for the host (System V calling convention, no relocations), e.g. hand-assembled
    /// AVX-512 kernels that Cranelift cannot emit. The code is aligned to 64 bytes.
    pub fn define_bytes(
        &mut self,
        name: &str,
        params: &[Type],
        code: &[u8],
    ) -> Result<FuncId, JitError> {
        let (id, _) = self.declare(name, params)?;
        self.module
            .define_function_bytes(id, 64, code, &[])
            .map_err(|e| JitError::Codegen(format!("define {name}: {e:?}")))?;
        self.last_disasm = None;
        Ok(id)
    }

    /// Links every defined function; after this, [`CodeModule::func`] may be called and no
    /// more functions can be defined.
    pub fn finalize(&mut self) -> Result<(), JitError> {
        self.module
            .finalize_definitions()
            .map_err(|e| JitError::Codegen(format!("link: {e}")))?;
        self.finalized = true;
        Ok(())
    }

    /// The entry address of a defined function (only after [`CodeModule::finalize`]).
    fn address(&self, id: FuncId) -> Result<*const u8, JitError> {
        if !self.finalized {
            return Err(JitError::Codegen("module not finalized".into()));
        }
        Ok(self.module.get_finalized_function(id))
    }

    /// Defined function `id` as a callable pointer of type `F` (only after
    /// [`CodeModule::finalize`]). The one place where an address becomes a function pointer.
    ///
    /// Getting the pointer is safe; calling it is not. `F` is an `unsafe extern "C" fn` type
    /// (see [`KernelFn`]), so every call is an `unsafe` block whose author asserts what this
    /// function cannot check: that `id` was defined with exactly `F`'s parameters (each
    /// kernel's `unsafe fn new` states this as its contract), and that this module, which owns
    /// the code and never frees it, outlives the pointer.
    pub(crate) fn func<F: KernelFn>(&self, id: FuncId) -> Result<F, JitError> {
        const { assert!(std::mem::size_of::<F>() == std::mem::size_of::<*const u8>()) };
        let p = self.address(id)?;
        // SAFETY: `F` is a function-pointer type (sealed `KernelFn`), the same size as `p`
        // (asserted above), and `p` is the entry of finalized code in this module. Calling the
        // result is `unsafe`; the caller's signature contract is stated above.
        Ok(unsafe { std::mem::transmute_copy::<*const u8, F>(&p) })
    }
}

mod sealed {
    /// Implemented only by the function-pointer types of [`super::KernelFn`].
    pub trait Sealed {}
}

/// A function-pointer type a compiled kernel can be fetched as: `unsafe extern "C" fn(..)`
/// with up to 12 parameters (sealed: no other type implements it).
pub(crate) trait KernelFn: Copy + sealed::Sealed {}

/// Implements [`KernelFn`] for `unsafe extern "C" fn` with the given parameter types.
macro_rules! kernel_fn {
    ($($a:ident),*) => {
        impl<$($a),*> sealed::Sealed for unsafe extern "C" fn($($a),*) {}
        impl<$($a),*> KernelFn for unsafe extern "C" fn($($a),*) {}
    };
}
kernel_fn!();
kernel_fn!(A);
kernel_fn!(A, B);
kernel_fn!(A, B, C);
kernel_fn!(A, B, C, D);
kernel_fn!(A, B, C, D, E);
kernel_fn!(A, B, C, D, E, F);
kernel_fn!(A, B, C, D, E, F, G);
kernel_fn!(A, B, C, D, E, F, G, H);
kernel_fn!(A, B, C, D, E, F, G, H, I);
kernel_fn!(A, B, C, D, E, F, G, H, I, J);
kernel_fn!(A, B, C, D, E, F, G, H, I, J, K);
kernel_fn!(A, B, C, D, E, F, G, H, I, J, K, L);
