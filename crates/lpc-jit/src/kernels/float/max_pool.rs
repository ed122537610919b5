//! The f32 MaxPool kernel for windows inside the input (`MaxPoolF32Spec` ->
//! `define_max_pool_f32` -> `MaxPoolF32Kernel`), bit-exact to lpc-ref.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::immediates::Ieee32;
use cranelift_codegen::ir::types::{F32, F32X4, I64, I8X16};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData};
use cranelift_module::FuncId;
use rayon::prelude::*;

use super::chain::{mask, sel, splat_f32};
use super::{SendPtr, PAR_MIN};
use crate::kernels::emit::{emit_loop, mem, spec_err, unique_name};
use crate::{CodeModule, JitError};

/// MaxPool of f32 NCHW planes whose windows all lie inside the input (no padding, dilation 1,
/// no ceil-mode overhang): per output, the taps in row-major order with lpc-ref's update
/// `if e > best || e is NaN { best = e }` from −∞, so the result is bit-identical.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaxPoolF32Spec {
    /// Planes (`N·C`).
    pub planes: usize,
    /// Input height and width.
    pub in_hw: [usize; 2],
    /// Output height and width.
    pub out_hw: [usize; 2],
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Vertical and horizontal strides.
    pub strides: [usize; 2],
}

/// Windows larger than this stay with lpc-ref (the taps are unrolled).
const MAX_TAPS: usize = 64;

impl MaxPoolF32Spec {
    pub(crate) fn check(&self) -> Result<(), JitError> {
        let [h, w] = self.in_hw;
        let [oh, ow] = self.out_hw;
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.strides;
        let inside = oh >= 1
            && ow >= 1
            && kh >= 1
            && kw >= 1
            && sh >= 1
            && sw >= 1
            && (oh - 1) * sh + kh <= h
            && (ow - 1) * sw + kw <= w;
        if !inside || kh * kw > MAX_TAPS || h * w * 4 > i32::MAX as usize {
            return Err(spec_err(
                "max_pool f32",
                format!("windows must lie inside the input: {self:?}"),
            ));
        }
        Ok(())
    }
}

/// Defines an f32 MaxPool kernel `fn(x, y, p0, p1)` over planes `p0..p1`.
pub fn define_max_pool_f32(m: &mut CodeModule, spec: &MaxPoolF32Spec) -> Result<FuncId, JitError> {
    spec.check()?;
    let p = m.ptr();
    let s = spec.clone();
    m.define(
        &unique_name("float_max_pool"),
        &[p, p, I64, I64],
        |b, args| {
            let (x, y, p0, p1) = (args[0], args[1], args[2], args[3]);
            let [h, w] = s.in_hw;
            let [oh, ow] = s.out_hw;
            let ninf = b
                .ins()
                .f32const(Ieee32::with_bits(f32::NEG_INFINITY.to_bits()));
            emit_loop(b, p0, p1, 1, |b, pl| {
                let xo = b.ins().imul_imm_s(pl, (h * w * 4) as i64);
                let xp = b.ins().iadd(x, xo);
                let yo = b.ins().imul_imm_s(pl, (oh * ow * 4) as i64);
                let yp = b.ins().iadd(y, yo);
                let zero = b.ins().iconst(I64, 0);
                let end_y = b.ins().iconst(I64, oh as i64);
                emit_loop(b, zero, end_y, 1, |b, oy| {
                    let row = b.ins().imul_imm_s(oy, (s.strides[0] * w * 4) as i64);
                    let xr = b.ins().iadd(xp, row);
                    let orow = b.ins().imul_imm_s(oy, (ow * 4) as i64);
                    let yr = b.ins().iadd(yp, orow);
                    // Four outputs per step while every 16-byte load (two for stride 2, whose
                    // even lanes are the taps) stays inside the row; then one at a time.
                    let [sw, kw] = [s.strides[1], s.kernel[1]];
                    let vec_ok = |ox: usize| (ox + 3) * sw + kw - 1 + (sw - 1) < w;
                    let groups = if sw <= 2 {
                        (0..ow / 4).take_while(|&g| vec_ok(4 * g)).count()
                    } else {
                        0
                    };
                    if groups > 0 {
                        let zero = b.ins().iconst(I64, 0);
                        let end_v = b.ins().iconst(I64, (4 * groups) as i64);
                        emit_loop(b, zero, end_v, 4, |b, ox| {
                            let col = b.ins().imul_imm_s(ox, (sw * 4) as i64);
                            let a = b.ins().iadd(xr, col);
                            let mut best = splat_f32(b, f32::NEG_INFINITY);
                            for ky in 0..s.kernel[0] {
                                for kx in 0..kw {
                                    let off = ((ky * w + kx) * 4) as i32;
                                    let e = b.ins().load(F32X4, mem(), a, off);
                                    let e = if sw == 2 {
                                        let f = b.ins().load(F32X4, mem(), a, off + 16);
                                        let even: Vec<u8> = [0u8, 2, 4, 6]
                                            .iter()
                                            .flat_map(|&l| (0..4).map(move |k| 4 * l + k))
                                            .collect();
                                        let imm = b.func.dfg.immediates.push(even.into());
                                        let le = MemFlagsData::new().with_endianness(
                                            cranelift_codegen::ir::Endianness::Little,
                                        );
                                        let ei = b.ins().bitcast(I8X16, le, e);
                                        let fi = b.ins().bitcast(I8X16, le, f);
                                        let v = b.ins().shuffle(ei, fi, imm);
                                        b.ins().bitcast(F32X4, le, v)
                                    } else {
                                        e
                                    };
                                    let gt = mask(b, FloatCC::GreaterThan, e, best);
                                    best = sel(b, gt, e, best);
                                    let nan = mask(b, FloatCC::Unordered, e, e);
                                    best = sel(b, nan, e, best);
                                }
                            }
                            let o = b.ins().imul_imm_s(ox, 4);
                            let d = b.ins().iadd(yr, o);
                            b.ins().store(mem(), best, d, 0);
                        });
                    }
                    let start_x = b.ins().iconst(I64, (4 * groups) as i64);
                    let end_x = b.ins().iconst(I64, ow as i64);
                    emit_loop(b, start_x, end_x, 1, |b, ox| {
                        let col = b.ins().imul_imm_s(ox, (s.strides[1] * 4) as i64);
                        let a = b.ins().iadd(xr, col);
                        let mut best = ninf;
                        for ky in 0..s.kernel[0] {
                            for kx in 0..s.kernel[1] {
                                let e = b.ins().load(F32, mem(), a, ((ky * w + kx) * 4) as i32);
                                let gt = b.ins().fcmp(FloatCC::GreaterThan, e, best);
                                let nan = b.ins().fcmp(FloatCC::Unordered, e, e);
                                let take = b.ins().bor(gt, nan);
                                best = b.ins().select(take, e, best);
                            }
                        }
                        let o = b.ins().imul_imm_s(ox, 4);
                        let d = b.ins().iadd(yr, o);
                        b.ins().store(mem(), best, d, 0);
                    });
                });
            });
            b.ins().return_(&[]);
        },
    )
}

/// The signature of an f32 MaxPool kernel: `(x, y, p0, p1)` pools planes `p0..p1`.
type MaxPoolF32Fn = unsafe extern "C" fn(*const f32, *mut f32, i64, i64);

/// A finalized f32 MaxPool kernel. The [`CodeModule`] it came from must outlive it.
#[derive(Debug)]
pub struct MaxPoolF32Kernel {
    f: MaxPoolF32Fn,
    spec: MaxPoolF32Spec,
}

impl MaxPoolF32Kernel {
    /// The kernel `id` of the finalized module `m`.
    ///
    /// # Safety
    /// `id` must come from [`define_max_pool_f32`] on `m` with a spec equal to `spec`.
    pub unsafe fn new(m: &CodeModule, id: FuncId, spec: &MaxPoolF32Spec) -> Result<Self, JitError> {
        spec.check()?;
        // The caller guarantees `id` has this signature (see `CodeModule::func`).
        let f: MaxPoolF32Fn = m.func(id)?;
        Ok(MaxPoolF32Kernel {
            f,
            spec: spec.clone(),
        })
    }

    /// Pools every plane of `x` into `y`, planes split over the threads.
    pub fn run_raw(&self, x: &[f32], y: &mut [f32]) -> Result<(), JitError> {
        let s = &self.spec;
        let (inp, outp) = (s.in_hw[0] * s.in_hw[1], s.out_hw[0] * s.out_hw[1]);
        if x.len() != s.planes * inp || y.len() != s.planes * outp {
            return Err(JitError::Input {
                name: "x".into(),
                why: format!(
                    "{} inputs and {} outputs, compiled for {} planes of {:?} -> {:?}",
                    x.len(),
                    y.len(),
                    s.planes,
                    s.in_hw,
                    s.out_hw
                ),
            });
        }
        let (xp, yp) = (
            SendPtr(x.as_ptr() as *mut u8),
            SendPtr(y.as_mut_ptr().cast()),
        );
        let call = |p0: usize, p1: usize| {
            let (xp, yp) = (xp, yp);
            // SAFETY: planes p0..p1 lie inside x and y (checked above) and every window lies
            // inside its plane (checked by the spec); threads write disjoint planes.
            unsafe { (self.f)(xp.0 as *const f32, yp.0.cast(), p0 as i64, p1 as i64) }
        };
        let threads = crate::runtime::par::threads();
        if threads == 1 || x.len() < PAR_MIN || s.planes < 2 {
            call(0, s.planes);
        } else {
            let per = s.planes.div_ceil(threads * 2).max(1);
            (0..s.planes.div_ceil(per))
                .into_par_iter()
                .for_each(|j| call(j * per, ((j + 1) * per).min(s.planes)));
        }
        Ok(())
    }
}
