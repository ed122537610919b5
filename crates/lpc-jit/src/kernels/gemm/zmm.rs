//! The 512-bit tier of the GEMM function: x86-64 AVX512-VNNI machine code emitted with iced-x86's
//! code assembler (Cranelift lowers only 128-bit vectors), placed in the same JIT module.
//!
//! Same signature and loop structure as the Cranelift function (`codegen.rs`): row blocks of
//! `mr` rows outer, panels of [`NR_ZMM`] = 32 columns inner, an `mr × 2` tile of zmm
//! accumulators (16 i32 columns each, starting at the bias) over K, unrolled by 4 k-groups.
//! Per k-group: two 64-byte panel loads (unsigned activations), two `prefetcht0` of the panel
//! stream [`PREFETCH_AHEAD`] bytes further, and per row one `vpbroadcastd`
//! of the row's 4 signed weights (the packed A row, 16-byte padded, read at `4·g`) feeding two
//! `vpdpbusd zmm` (a `{1to16}` memory operand on each instead measured slower). The last, partial panel stores through
//! opmasks built once from `rem` (its other columns are computed and never stored).
//!
//! Registers (System V): `rdi` A row block, `rsi` B, `rdx` bias, `rcx` scale, `r8` C row block,
//! `r9` ldc bytes; stack: nfull, rem, nblocks (counted down in place), tail.
//! `r10` k counter, `r11` row store pointer, `r12` panels, `r13` nfull, `r14` panel index,
//! `r15` panel pointer, `rbx` C panel pointer, `rax` A k pointer, `rbp` B k pointer.
//! zmm0..zmm(2mr-1) accumulators, zmm30/31 B vectors, zmm28/29 weight broadcasts (and the
//! epilogue constants in zmm28..30),
//! k1/k2 the partial-panel store masks.

use iced_x86::code_asm::*;

use super::Epilogue;
use crate::kernels::asm::ZMM;
use crate::JitError;

/// Columns per B panel of the zmm tier (two 16-lane i32 accumulators per row).
pub const NR_ZMM: usize = 32;
/// Rows per register tile of the zmm tier (2·12 accumulators + 2 B vectors of 32 registers).
pub const MR_ZMM: usize = 12;

/// Broadcast each row's 4 weights into a register once (`vpbroadcastd`) and use it for both
/// vectors, instead of a `{1to16}` memory operand per `vpdpbusd` (one load per row instead of
/// two; measured below in `docs/jit.md`).
const BROADCAST_TO_REGISTER: bool = true;

/// Bytes of packed B that each k-group prefetches ahead of its own two loads (`prefetcht0` of
/// both lines; B is one stream, so near a panel's end this reaches into the next panel, and past
/// the last one it touches addresses that are never loaded: prefetches do not fault). Measured
/// on the 64×3136×576 conv shape: +4% (aligned B) to +7% (16-byte aligned B) over no prefetch;
/// 1 KB and 4 KB ahead, or one panel ahead, were no better.
const PREFETCH_AHEAD: i32 = 2048;

/// Compile-time shape of one zmm GEMM function.
pub(super) struct ZmmShape {
    /// Rows per full block (at most 14).
    pub mr: usize,
    /// Rows of the tail block (M % mr), 0 when none.
    pub tail: usize,
    /// K.
    pub k: usize,
    /// Packed A row stride in bytes (K rounded up to 16).
    pub ka: usize,
    pub epilogue: Epilogue,
}

impl ZmmShape {
    fn k_groups(&self) -> usize {
        self.k.div_ceil(4)
    }
    fn panel_len(&self) -> usize {
        self.k_groups() * 4 * NR_ZMM
    }
    fn out_size(&self) -> usize {
        match self.epilogue {
            Epilogue::Quant { .. } => 1,
            Epilogue::F32 | Epilogue::I32 => 4,
        }
    }
}

fn err(e: iced_x86::IcedError) -> JitError {
    JitError::Codegen(format!("zmm gemm assembler: {e}"))
}

/// Saved callee-saved registers; the stack arguments start 8 bytes (return address) above them.
const SAVED: [AsmRegister64; 6] = [rbx, rbp, r12, r13, r14, r15];
const ARG_NFULL: i32 = 8 + 8 * SAVED.len() as i32;
const ARG_REM: i32 = ARG_NFULL + 8;
const ARG_NBLOCKS: i32 = ARG_NFULL + 16;
const ARG_TAIL: i32 = ARG_NFULL + 24;

/// Position-independent machine code of the whole function for `s`.
pub(super) fn emit(s: &ZmmShape) -> Result<Vec<u8>, JitError> {
    let mut a = CodeAssembler::new(64).map_err(err)?;
    body(&mut a, s).map_err(err)?;
    a.assemble(0).map_err(err)
}

fn body(a: &mut CodeAssembler, s: &ZmmShape) -> Result<(), iced_x86::IcedError> {
    for &r in &SAVED {
        a.push(r)?;
    }
    let mut exit = a.create_label();
    let mut full_loop = a.create_label();
    let mut after_full = a.create_label();
    // r13 = nfull, r12 = panels = nfull + (rem != 0).
    a.mov(r13, qword_ptr(rsp + ARG_NFULL))?;
    a.mov(rax, qword_ptr(rsp + ARG_REM))?;
    a.xor(r10d, r10d)?;
    a.test(rax, rax)?;
    a.setne(r10b)?;
    a.lea(r12, qword_ptr(r13 + r10))?;
    a.test(r12, r12)?;
    a.je(exit)?;
    // Store masks of the partial panel: low `rem` bits of 32 (rem < 32).
    a.mov(r10d, -1i32)?;
    a.bzhi(r10d, r10d, eax)?;
    a.kmovw(k1, r10d)?;
    a.shr(r10d, 16)?;
    a.kmovw(k2, r10d)?;
    a.cmp(qword_ptr(rsp + ARG_NBLOCKS), 0)?;
    a.je(after_full)?;

    a.set_label(&mut full_loop)?;
    row_block(a, s, s.mr)?;
    a.add(rdi, (s.mr * s.ka) as i32)?;
    a.add(rdx, (4 * s.mr) as i32)?;
    a.add(rcx, (4 * s.mr) as i32)?;
    a.imul_3(r10, r9, s.mr as i32)?;
    a.add(r8, r10)?;
    a.dec(qword_ptr(rsp + ARG_NBLOCKS))?;
    a.jne(full_loop)?;

    a.set_label(&mut after_full)?;
    if s.tail > 0 {
        a.cmp(qword_ptr(rsp + ARG_TAIL), 0)?;
        a.je(exit)?;
        row_block(a, s, s.tail)?;
    } else {
        // Two labels cannot mark the same instruction.
        a.nop()?;
    }
    a.set_label(&mut exit)?;
    a.vzeroupper()?;
    for &r in SAVED.iter().rev() {
        a.pop(r)?;
    }
    a.ret()?;
    Ok(())
}

/// One block of `rows` rows over every panel.
fn row_block(a: &mut CodeAssembler, s: &ZmmShape, rows: usize) -> Result<(), iced_x86::IcedError> {
    let mut panel = a.create_label();
    let mut partial = a.create_label();
    let mut next = a.create_label();
    a.xor(r14d, r14d)?;
    a.mov(r15, rsi)?;
    a.mov(rbx, r8)?;
    a.set_label(&mut panel)?;
    for r in 0..rows {
        a.vpbroadcastd(ZMM[2 * r], dword_ptr(rdx + (4 * r) as i32))?;
        a.vmovdqa32(ZMM[2 * r + 1], ZMM[2 * r])?;
    }
    a.mov(rax, rdi)?;
    a.mov(rbp, r15)?;
    let groups = s.k_groups();
    let chunks = groups / 4;
    if chunks > 0 {
        let mut kloop = a.create_label();
        a.mov(r10d, chunks as u32)?;
        a.set_label(&mut kloop)?;
        for g in 0..4 {
            group(a, s, rows, g)?;
        }
        a.add(rax, 16)?;
        a.add(rbp, (16 * NR_ZMM) as i32)?;
        a.dec(r10)?;
        a.jne(kloop)?;
    }
    for g in 0..groups % 4 {
        group(a, s, rows, g)?;
    }
    epilogue(a, s, rows)?;

    // Full panel: plain stores; the last, partial one: masked by k1/k2.
    a.cmp(r14, r13)?;
    a.jae(partial)?;
    stores(a, s, rows, false)?;
    a.jmp(next)?;
    a.set_label(&mut partial)?;
    stores(a, s, rows, true)?;
    a.set_label(&mut next)?;
    a.inc(r14)?;
    a.add(r15, s.panel_len() as i32)?;
    a.add(rbx, (NR_ZMM * s.out_size()) as i32)?;
    a.cmp(r14, r12)?;
    a.jb(panel)?;
    Ok(())
}

/// k-group `g` of the current 4-group chunk (A at `rax + 4g`, B at `rbp + 128g`).
fn group(
    a: &mut CodeAssembler,
    s: &ZmmShape,
    rows: usize,
    g: usize,
) -> Result<(), iced_x86::IcedError> {
    let boff = (g * 4 * NR_ZMM) as i32;
    a.vmovdqu32(zmm30, zmmword_ptr(rbp + boff))?;
    a.vmovdqu32(zmm31, zmmword_ptr(rbp + boff + 64))?;
    a.prefetcht0(byte_ptr(rbp + boff + PREFETCH_AHEAD))?;
    a.prefetcht0(byte_ptr(rbp + boff + PREFETCH_AHEAD + 64))?;
    for r in 0..rows {
        let w = (r * s.ka + 4 * g) as i32;
        if BROADCAST_TO_REGISTER {
            // One broadcast load per row, shared by both vectors (alternating registers).
            let t = if r % 2 == 0 { zmm28 } else { zmm29 };
            a.vpbroadcastd(t, dword_ptr(rax + w))?;
            a.vpdpbusd(ZMM[2 * r], zmm30, t)?;
            a.vpdpbusd(ZMM[2 * r + 1], zmm31, t)?;
        } else {
            a.vpdpbusd(ZMM[2 * r], zmm30, dword_bcst(rax + w))?;
            a.vpdpbusd(ZMM[2 * r + 1], zmm31, dword_bcst(rax + w))?;
        }
    }
    Ok(())
}

/// Broadcasts a 32-bit constant into `z` (through `eax`, free after the K loop).
fn splat(a: &mut CodeAssembler, z: AsmRegisterZmm, bits: u32) -> Result<(), iced_x86::IcedError> {
    a.mov(eax, bits)?;
    a.vpbroadcastd(z, eax)
}

/// The epilogue, in place on the accumulators (see `gemm/mod.rs` for the arithmetic).
fn epilogue(a: &mut CodeAssembler, s: &ZmmShape, rows: usize) -> Result<(), iced_x86::IcedError> {
    match s.epilogue {
        Epilogue::I32 => {}
        Epilogue::F32 => {
            for r in 0..rows {
                for j in 0..2 {
                    let v = ZMM[2 * r + j];
                    a.vcvtdq2ps(v, v)?;
                    a.vmulps(v, v, dword_bcst(rcx + (4 * r) as i32))?;
                }
            }
        }
        Epilogue::Quant { zp, lo, hi, .. } => {
            // Clamp in f32 to [lo - zp, hi - zp] (exact integers), round to nearest even with
            // embedded rounding (independent of MXCSR), then add zp: equal to rounding first
            // and clamping after adding zp, since rounding is monotone and the bounds are
            // integers.
            let flo = (lo as i64 - zp as i64) as f32;
            let fhi = (hi as i64 - zp as i64) as f32;
            splat(a, zmm28, flo.to_bits())?;
            splat(a, zmm29, fhi.to_bits())?;
            splat(a, zmm30, zp as u32)?;
            for r in 0..rows {
                for j in 0..2 {
                    let v = ZMM[2 * r + j];
                    a.vcvtdq2ps(v, v)?;
                    a.vmulps(v, v, dword_bcst(rcx + (4 * r) as i32))?;
                    a.vmaxps(v, v, zmm28)?;
                    a.vminps(v, v, zmm29)?;
                    a.vcvtps2dq(v.rn_sae(), v)?;
                    a.vpaddd(v, v, zmm30)?;
                }
            }
        }
    }
    Ok(())
}

/// Stores every row's 32 results at `rbx + r·ldc` (masked by k1/k2 when `masked`).
fn stores(
    a: &mut CodeAssembler,
    s: &ZmmShape,
    rows: usize,
    masked: bool,
) -> Result<(), iced_x86::IcedError> {
    a.mov(r11, rbx)?;
    for r in 0..rows {
        if r > 0 {
            a.add(r11, r9)?;
        }
        let (v0, v1) = (ZMM[2 * r], ZMM[2 * r + 1]);
        match s.epilogue {
            // The values are clamped to the output type's range: truncating is exact.
            Epilogue::Quant { .. } => {
                if masked {
                    a.vpmovdb(xmmword_ptr(r11).k1(), v0)?;
                    a.vpmovdb(xmmword_ptr(r11 + 16).k2(), v1)?;
                } else {
                    a.vpmovdb(xmmword_ptr(r11), v0)?;
                    a.vpmovdb(xmmword_ptr(r11 + 16), v1)?;
                }
            }
            Epilogue::F32 | Epilogue::I32 => {
                if masked {
                    a.vmovdqu32(zmmword_ptr(r11).k1(), v0)?;
                    a.vmovdqu32(zmmword_ptr(r11 + 64).k2(), v1)?;
                } else {
                    a.vmovdqu32(zmmword_ptr(r11), v0)?;
                    a.vmovdqu32(zmmword_ptr(r11 + 64), v1)?;
                }
            }
        }
    }
    Ok(())
}
