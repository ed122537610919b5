//! The 512-bit tier of the blocked INT8 elementwise kernels (`int8_eltwise.rs`): QuantizeLinear,
//! DequantizeLinear, Requantize and QAdd as AVX-512F/BW machine code emitted with iced-x86 and
//! placed in the same module — the same function signature, runs and parameter table as the
//! Cranelift tier, 16 lanes per instruction, each run's last 1–15 elements through an opmask.
//!
//! The arithmetic is the Cranelift tier's instruction for instruction, so both are `lpc-ref`'s
//! bit for bit: dequantize `f32(x − zp)·s` (`vpsubd`, `vcvtdq2ps`, `vmulps`), quantize
//! `round_ties_even(v / s) + zp` clamped to `[lo, hi]` in f32 (`vdivps`, `vrndscaleps`,
//! `vaddps`, `vmaxps`, `vminps`), converted (`vcvttps2dq`, NaN lanes zeroed through the ordered
//! compare's mask) and narrowed (`vpmovdb`: the lanes are inside the byte range already).
//!
//! Registers (System V): `rdi` a, `rsi` b, `rdx` out (moved to `r15`), `rcx` runs, `r8` inner,
//! `r9` c0; on the stack: channels, params. `r12` channels, `r13` the table, `r14` the run,
//! `r10`/`r11`/`rbp` the run's a/b/out pointers, `rbx` the element; zmm16.. the run's
//! parameters (zmm24/25 quantize's bounds), zmm0..2 the lanes, xmm15 a tail's bytes; `k1` the tail mask, `k2` the ordered mask.

use iced_x86::code_asm::*;
use lpc_ir::DType;

use crate::kernels::asm::chunks_of_16;
use crate::kernels::emit::{byte_range, elem_size};
use crate::JitError;

/// The operation of a blocked kernel, with the dtypes compiled in. Parameter words per run are
/// the Cranelift tier's, in its order.
#[derive(Clone, Copy, Debug)]
pub(crate) enum BlockedOp {
    /// f32 → u8/i8; params: scale, zero point (f32).
    Quantize { to: DType },
    /// u8/i8/i32 → f32; params: scale, zero point (i32).
    Dequantize { from: DType },
    /// u8/i8/i32 → u8/i8; params: x scale, x zero point (i32), y scale, y zero point, lo, hi (f32).
    Requantize { from: DType, to: DType },
    /// (u8/i8/i32, u8/i8/i32) → u8/i8; params: a scale, a zero point (i32), b scale, b zero
    /// point (i32), y scale, y zero point, lo, hi (f32).
    QAdd { a: DType, b: DType, to: DType },
}

impl BlockedOp {
    fn nparams(self) -> usize {
        match self {
            BlockedOp::Quantize { .. } | BlockedOp::Dequantize { .. } => 2,
            BlockedOp::Requantize { .. } => 6,
            BlockedOp::QAdd { .. } => 8,
        }
    }
}

const SAVED: [AsmRegister64; 6] = [rbx, rbp, r12, r13, r14, r15];
/// The stack arguments, above the return address and the saved registers.
const ARG_CHANNELS: i32 = 8 + 8 * SAVED.len() as i32;
const ARG_PARAMS: i32 = ARG_CHANNELS + 8;
const PARAM: [AsmRegisterZmm; 8] = [zmm16, zmm17, zmm18, zmm19, zmm20, zmm21, zmm22, zmm23];
/// Quantize's lo and hi.
const BOUNDS: [AsmRegisterZmm; 2] = [zmm24, zmm25];
/// `vrndscaleps`: round to nearest even, precision exception suppressed.
const NEAREST: u32 = 0x08;
const ORD: i32 = 7;

/// The machine code of the blocked function for `op`.
pub(crate) fn emit(op: BlockedOp) -> Result<Vec<u8>, JitError> {
    let err = |e: IcedError| JitError::Codegen(format!("zmm elementwise assembler: {e}"));
    let mut a = CodeAssembler::new(64).map_err(err)?;
    function(&mut a, op).map_err(err)?;
    a.assemble(0).map_err(err)
}

fn function(a: &mut CodeAssembler, op: BlockedOp) -> Result<(), IcedError> {
    let (ins, out): (Vec<DType>, DType) = match op {
        BlockedOp::Quantize { to } => (vec![DType::F32], to),
        BlockedOp::Dequantize { from } => (vec![from], DType::F32),
        BlockedOp::Requantize { from, to } => (vec![from], to),
        BlockedOp::QAdd { a, b, to } => (vec![a, b], to),
    };
    for &r in &SAVED {
        a.push(r)?;
    }
    a.mov(r15, rdx)?;
    a.mov(r12, qword_ptr(rsp + ARG_CHANNELS))?;
    a.mov(r13, qword_ptr(rsp + ARG_PARAMS))?;
    a.xor(r14d, r14d)?;
    let mut run_loop = a.create_label();
    let mut exit = a.create_label();

    a.set_label(&mut run_loop)?;
    a.cmp(r14, rcx)?;
    a.jge(exit)?;
    // Parameter row (c0 + r) % channels, broadcast.
    a.lea(rax, qword_ptr(r9 + r14))?;
    a.xor(edx, edx)?;
    a.div(r12)?;
    a.imul_3(rdx, rdx, 4 * op.nparams() as i32)?;
    a.add(rdx, r13)?;
    for (k, &z) in PARAM[..op.nparams()].iter().enumerate() {
        a.vbroadcastss(z, dword_ptr(rdx + 4 * k as i32))?;
    }
    if let BlockedOp::Quantize { to } = op {
        // Quantize's bounds are its dtype's range, compiled in.
        splat_bounds(a, to, BOUNDS[0], BOUNDS[1])?;
    }
    // The run's pointers: element r·inner of each buffer.
    a.mov(rax, r14)?;
    a.imul_2(rax, r8)?;
    let run_ptr = |a: &mut CodeAssembler, dst, base, d: DType| -> Result<(), IcedError> {
        a.imul_3(dst, rax, elem_size(d) as i32)?;
        a.add(dst, base)
    };
    run_ptr(a, r10, rdi, ins[0])?;
    if ins.len() > 1 {
        run_ptr(a, r11, rsi, ins[1])?;
    }
    run_ptr(a, rbp, r15, out)?;
    a.xor(ebx, ebx)?;

    chunks_of_16(a, rbx, r8, |a, masked| chunk(a, op, &ins, out, masked))?;
    a.inc(r14)?;
    a.jmp(run_loop)?;

    a.set_label(&mut exit)?;
    a.vzeroupper()?;
    for &r in SAVED.iter().rev() {
        a.pop(r)?;
    }
    a.ret()
}

/// Input `k`'s 16 elements at `rbx` into `z`: i32 lanes (integers) or f32 lanes.
fn load(
    a: &mut CodeAssembler,
    z: AsmRegisterZmm,
    base: AsmRegister64,
    d: DType,
    masked: bool,
) -> Result<(), IcedError> {
    match d {
        DType::U8 | DType::I8 => {
            let at = xmmword_ptr(base + rbx);
            let signed = d == DType::I8;
            if masked {
                // The tail's bytes through a masked byte load (faults suppressed past the run).
                a.vmovdqu8(xmm15.k1().z(), at)?;
                if signed {
                    a.vpmovsxbd(z, xmm15)
                } else {
                    a.vpmovzxbd(z, xmm15)
                }
            } else if signed {
                a.vpmovsxbd(z, at)
            } else {
                a.vpmovzxbd(z, at)
            }
        }
        _ => {
            let at = zmmword_ptr(base + rbx * 4);
            if masked {
                a.vmovdqu32(z.k1().z(), at)
            } else {
                a.vmovdqu32(z, at)
            }
        }
    }
}

/// `z = f32(z − zp)·s` in place.
fn dequantize(
    a: &mut CodeAssembler,
    z: AsmRegisterZmm,
    s: AsmRegisterZmm,
    zp: AsmRegisterZmm,
) -> Result<(), IcedError> {
    a.vpsubd(z, z, zp)?;
    a.vcvtdq2ps(z, z)?;
    a.vmulps(z, z, s)
}

/// `z = i32(clamp(round(z / s) + zp, lo, hi))`, NaN → 0, in place (`t` scratch).
fn quantize(
    a: &mut CodeAssembler,
    z: AsmRegisterZmm,
    [s, zp, lo, hi]: [AsmRegisterZmm; 4],
    t: AsmRegisterZmm,
) -> Result<(), IcedError> {
    a.vdivps(z, z, s)?;
    a.vrndscaleps(z, z, NEAREST)?;
    a.vaddps(z, z, zp)?;
    a.vmaxps(t, z, lo)?;
    a.vminps(t, t, hi)?;
    a.vcmpps(k2, z, z, ORD)?;
    a.vcvttps2dq(z.k2().z(), t)
}

/// One 16-element step (`rbx` the element), through k1 when `masked`.
fn chunk(
    a: &mut CodeAssembler,
    op: BlockedOp,
    ins: &[DType],
    out: DType,
    masked: bool,
) -> Result<(), IcedError> {
    let p = PARAM;
    load(a, zmm0, r10, ins[0], masked)?;
    if ins.len() > 1 {
        load(a, zmm1, r11, ins[1], masked)?;
    }
    match op {
        BlockedOp::Quantize { .. } => quantize(a, zmm0, [p[0], p[1], BOUNDS[0], BOUNDS[1]], zmm2)?,
        BlockedOp::Dequantize { .. } => dequantize(a, zmm0, p[0], p[1])?,
        BlockedOp::Requantize { .. } => {
            dequantize(a, zmm0, p[0], p[1])?;
            quantize(a, zmm0, [p[2], p[3], p[4], p[5]], zmm2)?;
        }
        BlockedOp::QAdd { .. } => {
            dequantize(a, zmm0, p[0], p[1])?;
            dequantize(a, zmm1, p[2], p[3])?;
            a.vaddps(zmm0, zmm0, zmm1)?;
            quantize(a, zmm0, [p[4], p[5], p[6], p[7]], zmm2)?;
        }
    }
    if out == DType::F32 {
        let at = zmmword_ptr(rbp + rbx * 4);
        if masked {
            a.vmovups(at.k1(), zmm0)
        } else {
            a.vmovups(at, zmm0)
        }
    } else {
        // Clamped to the byte range already: truncation is exact for u8 and i8.
        let at = xmmword_ptr(rbp + rbx);
        if masked {
            a.vpmovdb(at.k1(), zmm0)
        } else {
            a.vpmovdb(at, zmm0)
        }
    }
}

/// The output dtype's integer range as f32 splats (through `eax`).
fn splat_bounds(
    a: &mut CodeAssembler,
    to: DType,
    lo: AsmRegisterZmm,
    hi: AsmRegisterZmm,
) -> Result<(), IcedError> {
    let (l, h) = byte_range(to).unwrap_or((0, 255));
    a.mov(eax, (l as f32).to_bits())?;
    a.vpbroadcastd(lo, eax)?;
    a.mov(eax, (h as f32).to_bits())?;
    a.vpbroadcastd(hi, eax)
}
