//! The f32 GlobalAveragePool kernel (`GapSpec` -> `define_gap` -> `GapKernel`), bit-exact to
//! lpc-ref's `global_pool`.

use cranelift_codegen::ir::immediates::Ieee64;
use cranelift_codegen::ir::types::{F32, F64, I64};
use cranelift_codegen::ir::{BlockArg, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use cranelift_module::FuncId;
use rayon::prelude::*;

use super::{SendPtr, PAR_MIN};
use crate::kernels::emit::{emit_loop, mem, spec_err, unique_name};
use crate::{CodeModule, JitError};

/// GlobalAveragePool of f32 `[N, C, spatial...]`: per plane, the f64 sum of its elements in
/// order divided by their count, rounded to f32 — exactly lpc-ref's `global_pool`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GapSpec {
    /// Planes (`N·C`).
    pub planes: usize,
    /// Elements per plane (at least 1).
    pub plane: usize,
}

/// Channels summed side by side (independent f64 accumulators).
pub(crate) const GAP_LANES: usize = 4;

/// Defines a GlobalAveragePool kernel `fn(x, y, c0, c1)` over planes `c0..c1`.
pub fn define_gap(m: &mut CodeModule, spec: &GapSpec) -> Result<FuncId, JitError> {
    if spec.plane == 0 {
        return Err(spec_err("global_average_pool", "empty planes".into()));
    }
    let p = m.ptr();
    let plane = spec.plane as i64;
    m.define(&unique_name("float_gap"), &[p, p, I64, I64], |b, args| {
        let (x, y, c0, c1) = (args[0], args[1], args[2], args[3]);
        let count = b
            .ins()
            .f64const(Ieee64::with_bits((plane as f64).to_bits()));
        let neg0 = b.ins().f64const(Ieee64::with_bits((-0.0f64).to_bits()));
        // Sums planes c..c+lanes side by side, each in its own accumulator, in element order.
        let sum_planes = |b: &mut FunctionBuilder, c: Value, lanes: usize| {
            let base = b.ins().imul_imm_s(c, plane * 4);
            let base = b.ins().iadd(x, base);
            let head = b.create_block();
            b.append_block_param(head, I64);
            for _ in 0..lanes {
                b.append_block_param(head, F64);
            }
            let body = b.create_block();
            let exit = b.create_block();
            for _ in 0..lanes {
                b.append_block_param(exit, F64);
            }
            let zero = b.ins().iconst(I64, 0);
            let mut init = vec![BlockArg::Value(zero)];
            init.extend((0..lanes).map(|_| BlockArg::Value(neg0)));
            b.ins().jump(head, &init);
            b.switch_to_block(head);
            let params = b.block_params(head).to_vec();
            let (j, accs) = (params[0], &params[1..]);
            let end = b.ins().iconst(I64, plane);
            let more = b.ins().icmp(
                cranelift_codegen::ir::condcodes::IntCC::SignedLessThan,
                j,
                end,
            );
            let out_args: Vec<BlockArg> = accs.iter().map(|&a| BlockArg::Value(a)).collect();
            b.ins().brif(more, body, &[], exit, &out_args);
            b.switch_to_block(body);
            let off = b.ins().imul_imm_s(j, 4);
            let a = b.ins().iadd(base, off);
            let mut next = Vec::with_capacity(lanes + 1);
            let j1 = b.ins().iadd_imm_s(j, 1);
            next.push(BlockArg::Value(j1));
            for (l, &acc) in accs.iter().enumerate() {
                let v = b.ins().load(F32, mem(), a, (l as i64 * plane * 4) as i32);
                let v = b.ins().fpromote(F64, v);
                next.push(BlockArg::Value(b.ins().fadd(acc, v)));
            }
            b.ins().jump(head, &next);
            b.switch_to_block(exit);
            let sums = b.block_params(exit).to_vec();
            for (l, s) in sums.into_iter().enumerate() {
                let mean = b.ins().fdiv(s, count);
                let mean = b.ins().fdemote(F32, mean);
                let ci = b.ins().iadd_imm_s(c, l as i64);
                let off = b.ins().imul_imm_s(ci, 4);
                let a = b.ins().iadd(y, off);
                b.ins().store(mem(), mean, a, 0);
            }
        };
        let len = b.ins().isub(c1, c0);
        let wide = b.ins().band_imm_s(len, !(GAP_LANES as i64 - 1));
        let wide_end = b.ins().iadd(c0, wide);
        emit_loop(b, c0, wide_end, GAP_LANES as i64, |b, c| {
            sum_planes(b, c, GAP_LANES)
        });
        emit_loop(b, wide_end, c1, 1, |b, c| sum_planes(b, c, 1));
        b.ins().return_(&[]);
    })
}

type GapFn = unsafe extern "C" fn(*const f32, *mut f32, i64, i64);

/// A finalized GlobalAveragePool kernel. The [`CodeModule`] it came from must outlive it.
#[derive(Debug)]
pub struct GapKernel {
    f: GapFn,
    spec: GapSpec,
}

impl GapKernel {
    /// The kernel `id` of the finalized module `m`.
    ///
    /// # Safety
    /// `id` must come from [`define_gap`] on `m` with a spec equal to `spec`.
    pub unsafe fn new(m: &CodeModule, id: FuncId, spec: &GapSpec) -> Result<Self, JitError> {
        // The caller guarantees `id` has this signature (see `CodeModule::func`).
        let f: GapFn = m.func(id)?;
        Ok(GapKernel {
            f,
            spec: spec.clone(),
        })
    }

    /// Averages each of the `planes` planes of `x` into `y`, planes split over the threads.
    pub fn run_raw(&self, x: &[f32], y: &mut [f32]) -> Result<(), JitError> {
        let s = &self.spec;
        if x.len() != s.planes * s.plane || y.len() != s.planes {
            return Err(JitError::Input {
                name: "x".into(),
                why: format!(
                    "{} inputs and {} outputs, compiled for {} planes of {}",
                    x.len(),
                    y.len(),
                    s.planes,
                    s.plane
                ),
            });
        }
        let (xp, yp) = (
            SendPtr(x.as_ptr() as *mut u8),
            SendPtr(y.as_mut_ptr().cast()),
        );
        let call = |c0: usize, c1: usize| {
            let (xp, yp) = (xp, yp);
            // SAFETY: planes c0..c1 lie inside x and y (checked above); threads write disjoint
            // outputs.
            unsafe { (self.f)(xp.0 as *const f32, yp.0.cast(), c0 as i64, c1 as i64) }
        };
        let threads = crate::runtime::par::threads();
        if threads == 1 || x.len() < PAR_MIN || s.planes < 2 * GAP_LANES {
            call(0, s.planes);
        } else {
            let per = s.planes.div_ceil(threads * 2).div_ceil(GAP_LANES).max(1) * GAP_LANES;
            (0..s.planes.div_ceil(per))
                .into_par_iter()
                .for_each(|j| call(j * per, ((j + 1) * per).min(s.planes)));
        }
        Ok(())
    }
}
