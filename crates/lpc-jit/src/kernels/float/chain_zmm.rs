//! The 512-bit tier of the float chain kernel: the function `chain.rs` defines, as x86-64
//! AVX-512F machine code emitted with iced-x86's code assembler (Cranelift lowers only 128-bit
//! vectors) and placed in the same JIT module. 16 lanes per instruction where the Cranelift
//! tier has 4; the last, partial 16 of a row through an opmask (masked loads never touch the
//! elements past the row, masked stores never write them).
//!
//! Every operation is the Cranelift tier's, in the same order, from the same constants
//! (`lpc_ref::transcendental`'s): `maxps`/`minps` where that tier's compare-and-select lowers
//! to them (x86 returns the second operand when either is NaN), `vblendmps` on a compare's
//! opmask for its other selects, `vfmadd213ps` for its fused multiply-adds (the product's
//! operands commute exactly), `vrndscaleps` for its roundings. So both tiers, and lpc-ref, give
//! the same bits (`tests/float.rs` runs every case on every tier the host has).
//!
//! Constants live in a pool after the code and are read as `{1to16}` broadcast operands (a
//! load, no shuffle); where an instruction needs a constant as its first source, one
//! `vbroadcastss` into a scratch register. Registers: program values and scratch from a pool of
//! zmm registers, freed when their last reader is done; row operands (one value per row) each
//! hold a zmm for the row. A program that needs more registers than there are, or more than
//! nine full/column operands, is not emitted (`None`: the Cranelift tier takes it).
//!
//! Registers (System V): arguments `rdi` table, `rsi` out, `rdx` o0, `rcx` o1, `r8` i0, `r9`
//! i1; the table, out, o1 and i0 are kept on the stack. `r10` the row, `rbx` the element,
//! `rbp` the output row, `r9` i1, `rax`/`rdx` scratch, the full/column operands' bases in
//! [`BASES`]; `k1` the tail mask, `k2` each compare's result (used by the next instruction).

use std::collections::HashMap;

use iced_x86::code_asm::*;
use lpc_ref::transcendental::{
    ERF_BIG, ERF_CLAMP, ERF_SMALL, ERF_SPLIT, EXP_HI, EXP_LO, EXP_POLY, GELU_TANH_CUBIC,
    GELU_TANH_SCALE, LN2_HI, LN2_LO, TANH_CLAMP, TANH_P, TANH_Q,
};

use lpc_ir::DType;

use super::chain::{ChainSpec, Dequant, FBinary, FNode, FUnary, Operand, QuantParams};
use crate::kernels::asm::{chunks_of_16, XMM, ZMM};
use crate::kernels::emit::byte_range;
use crate::JitError;

/// The low 128 bits of `z`.
fn xmm_of(z: AsmRegisterZmm) -> AsmRegisterXmm {
    let k = ZMM.iter().position(|&r| r == z).unwrap_or(0);
    XMM[k]
}

/// Saved callee-saved registers.
const SAVED: [AsmRegister64; 6] = [rbx, rbp, r12, r13, r14, r15];
/// The registers that hold the full and column operands' bases (row base or column base).
const BASES: [AsmRegister64; 9] = [r11, r12, r13, r14, r15, rcx, rdi, rsi, r8];
/// Stack frame: the arguments the loops reread.
const FRAME: i32 = 32;
const AT_TABLE: i32 = 0;
const AT_OUT: i32 = 8;
const AT_O1: i32 = 16;
const AT_I0: i32 = 24;

/// `vcmpps` predicates (the signalling/quiet choice only matters for exceptions, all masked).
const LT: i32 = 1;
const UNORD: i32 = 3;
const ORD: i32 = 7;
const GE: i32 = 13;
const GT: i32 = 14;
/// `vrndscaleps` immediates: precision exception suppressed, rounding to nearest even, down, up.
const NEAREST: u32 = 0x08;
const FLOOR: u32 = 0x09;
const CEIL: u32 = 0x0A;

const SIGN: u32 = 0x8000_0000;
const ONE: f32 = 1.0;

/// Why a body could not be emitted.
enum Fail {
    Asm(IcedError),
    /// The program needs more zmm registers than the pool has.
    Registers,
}

impl From<IcedError> for Fail {
    fn from(e: IcedError) -> Fail {
        Fail::Asm(e)
    }
}

type R<T> = Result<T, Fail>;

/// A value of the program: a register, or a constant (its bits) read from the pool.
#[derive(Clone, Copy)]
enum V {
    Z(AsmRegisterZmm),
    C(u32),
}

fn c(v: f32) -> V {
    V::C(v.to_bits())
}

/// The lane instructions with a register-or-broadcast second source.
#[derive(Clone, Copy)]
enum Ins {
    Add,
    Sub,
    Mul,
    Div,
    /// `vmaxps d, x, y`: `y < x ? x : y` (NaN → y).
    Max,
    /// `vminps d, x, y`: `x < y ? x : y` (NaN → y).
    Min,
    And,
    Or,
    Xor,
    /// i32 lanes.
    AddI,
    /// i32 lanes.
    SubI,
}

/// The machine code of a chain kernel for `spec`, or `None` when it does not fit the tier's
/// registers.
pub(super) fn emit(spec: &ChainSpec) -> Result<Option<Vec<u8>>, JitError> {
    let asm_err = |e: IcedError| JitError::Codegen(format!("zmm float chain assembler: {e}"));
    let mut a = CodeAssembler::new(64).map_err(asm_err)?;
    match function(&mut a, spec) {
        Ok(()) => {}
        Err(Fail::Registers) => return Ok(None),
        Err(Fail::Asm(e)) => return Err(asm_err(e)),
    }
    a.assemble(0).map(Some).map_err(asm_err)
}

/// Where each operand lives during a row.
#[derive(Clone, Copy)]
enum Place {
    /// Loaded from `base + 4·i` (f32), or from `base + i` and dequantized.
    Base(AsmRegister64, Option<Dequant>),
    /// One value for the row, broadcast into a register.
    Row(AsmRegisterZmm),
}

fn function(a: &mut CodeAssembler, spec: &ChainSpec) -> R<()> {
    // Places: full/column operands get a base register, row operands a zmm from the top.
    let mut places = Vec::with_capacity(spec.operands.len());
    let (mut nbase, mut nrow) = (0, 0);
    for (op, dq) in spec.operands.iter().zip(&spec.dequant) {
        places.push(match op {
            Operand::Full | Operand::Col => {
                let r = *BASES.get(nbase).ok_or(Fail::Registers)?;
                nbase += 1;
                Place::Base(r, *dq)
            }
            Operand::Row { .. } => {
                // At most 16 row operands hold registers (from the top); the rest is the pool.
                if nrow == 16 {
                    return Err(Fail::Registers);
                }
                nrow += 1;
                Place::Row(ZMM[32 - nrow])
            }
        });
    }
    let pool: Vec<AsmRegisterZmm> = ZMM[..32 - nrow].to_vec();
    let osize: u64 = if spec.quant.is_some() { 1 } else { 4 };
    let inner = spec.inner as u64;

    for &r in &SAVED {
        a.push(r)?;
    }
    a.sub(rsp, FRAME)?;
    a.mov(qword_ptr(rsp + AT_TABLE), rdi)?;
    a.mov(qword_ptr(rsp + AT_OUT), rsi)?;
    a.mov(qword_ptr(rsp + AT_O1), rcx)?;
    a.mov(qword_ptr(rsp + AT_I0), r8)?;
    a.mov(r10, rdx)?;

    let mut consts = Pool::default();
    let mut row_loop = a.create_label();
    let mut exit = a.create_label();

    a.set_label(&mut row_loop)?;
    a.cmp(r10, qword_ptr(rsp + AT_O1))?;
    a.jge(exit)?;
    // Row operands: operand[o % period] broadcast (`div` leaves the remainder in rdx).
    for (k, (op, place)) in spec.operands.iter().zip(&places).enumerate() {
        if let (Operand::Row { period }, Place::Row(z)) = (op, place) {
            a.mov(rax, r10)?;
            a.xor(edx, edx)?;
            a.mov(rbx, *period as u64)?;
            a.div(rbx)?;
            a.mov(rbx, qword_ptr(rsp + AT_TABLE))?;
            a.mov(rax, qword_ptr(rbx + 8 * k as i32))?;
            a.vbroadcastss(*z, dword_ptr(rax + rdx * 4))?;
        }
    }
    // Full operands at their row, column operands at their start; the output row.
    a.mov(rdx, qword_ptr(rsp + AT_TABLE))?;
    a.mov(rax, inner)?;
    a.imul_2(rax, r10)?;
    for (k, (op, place)) in spec.operands.iter().zip(&places).enumerate() {
        if let Place::Base(r, dq) = *place {
            a.mov(r, qword_ptr(rdx + 8 * k as i32))?;
            if *op == Operand::Full {
                let size = if dq.is_some() { 1 } else { 4 };
                a.lea(r, qword_ptr(r + rax * size))?;
            }
        }
    }
    a.mov(rax, inner * osize)?;
    a.imul_2(rax, r10)?;
    a.mov(rbp, qword_ptr(rsp + AT_OUT))?;
    a.add(rbp, rax)?;
    a.mov(rbx, qword_ptr(rsp + AT_I0))?;

    // 16 elements at a time, the last 1..15 through k1.
    chunks_of_16(a, rbx, r9, |a, masked| {
        Body::new(a, &mut consts, &pool, masked).chunk(spec, &places)
    })?;
    a.inc(r10)?;
    a.jmp(row_loop)?;

    a.set_label(&mut exit)?;
    a.vzeroupper()?;
    a.add(rsp, FRAME)?;
    for &r in SAVED.iter().rev() {
        a.pop(r)?;
    }
    a.ret()?;
    for (bits, mut label) in consts.order {
        a.set_label(&mut label)?;
        a.dd(&[bits])?;
    }
    Ok(())
}

/// The constant pool: one 4-byte entry per distinct constant, placed after the code.
#[derive(Default)]
struct Pool {
    order: Vec<(u32, CodeLabel)>,
    at: HashMap<u32, usize>,
}

/// Emits one 16-element chunk (at element `rbx` of the row).
struct Body<'a> {
    a: &'a mut CodeAssembler,
    consts: &'a mut Pool,
    free: Vec<AsmRegisterZmm>,
    /// Registers of the current operation's scratch (freed when it is done).
    scratch: Vec<AsmRegisterZmm>,
    /// Loads and stores through k1.
    masked: bool,
}

/// Emits `$d = $x op $y` for a register-or-constant `$y` (`$x` lifted into a register).
macro_rules! lane_op {
    ($s:expr, $ins:ident, $d:expr, $x:expr, $y:expr) => {{
        let x = $s.lift($x)?;
        match $y {
            V::Z(y) => $s.a.$ins($d, x, y)?,
            V::C(bits) => {
                let l = $s.label(bits);
                $s.a.$ins($d, x, dword_bcst(l))?
            }
        }
    }};
}

impl<'a> Body<'a> {
    fn new(
        a: &'a mut CodeAssembler,
        consts: &'a mut Pool,
        pool: &[AsmRegisterZmm],
        masked: bool,
    ) -> Body<'a> {
        Body {
            a,
            consts,
            free: pool.iter().rev().copied().collect(),
            scratch: Vec::new(),
            masked,
        }
    }

    fn label(&mut self, bits: u32) -> CodeLabel {
        if let Some(&k) = self.consts.at.get(&bits) {
            return self.consts.order[k].1;
        }
        let l = self.a.create_label();
        self.consts.at.insert(bits, self.consts.order.len());
        self.consts.order.push((bits, l));
        l
    }

    /// A register kept until [`Body::release`].
    fn keep(&mut self) -> R<AsmRegisterZmm> {
        self.free.pop().ok_or(Fail::Registers)
    }

    /// A register freed when the current operation is done.
    fn tmp(&mut self) -> R<AsmRegisterZmm> {
        let z = self.keep()?;
        self.scratch.push(z);
        Ok(z)
    }

    fn release(&mut self, z: AsmRegisterZmm) {
        self.free.push(z);
    }

    /// Frees the scratch of the operation just emitted.
    fn end_op(&mut self) {
        while let Some(z) = self.scratch.pop() {
            self.free.push(z);
        }
    }

    /// `v` in a register (a constant broadcast into scratch).
    fn lift(&mut self, v: V) -> R<AsmRegisterZmm> {
        match v {
            V::Z(z) => Ok(z),
            V::C(bits) => {
                let t = self.tmp()?;
                let l = self.label(bits);
                self.a.vbroadcastss(t, dword_ptr(l))?;
                Ok(t)
            }
        }
    }

    fn op(&mut self, ins: Ins, d: AsmRegisterZmm, x: V, y: V) -> R<()> {
        match ins {
            Ins::Add => lane_op!(self, vaddps, d, x, y),
            Ins::Sub => lane_op!(self, vsubps, d, x, y),
            Ins::Mul => lane_op!(self, vmulps, d, x, y),
            Ins::Div => lane_op!(self, vdivps, d, x, y),
            Ins::Max => lane_op!(self, vmaxps, d, x, y),
            Ins::Min => lane_op!(self, vminps, d, x, y),
            Ins::And => lane_op!(self, vpandd, d, x, y),
            Ins::Or => lane_op!(self, vpord, d, x, y),
            Ins::Xor => lane_op!(self, vpxord, d, x, y),
            Ins::AddI => lane_op!(self, vpaddd, d, x, y),
            Ins::SubI => lane_op!(self, vpsubd, d, x, y),
        }
        Ok(())
    }

    /// `k2 = x pred y`.
    fn cmp(&mut self, x: V, y: V, pred: i32) -> R<()> {
        let x = self.lift(x)?;
        match y {
            V::Z(y) => self.a.vcmpps(k2, x, y, pred)?,
            V::C(bits) => {
                let l = self.label(bits);
                self.a.vcmpps(k2, x, dword_bcst(l), pred)?
            }
        }
        Ok(())
    }

    /// `d = k2 ? t : f`.
    fn select(&mut self, d: AsmRegisterZmm, t: V, f: V) -> R<()> {
        let f = self.lift(f)?;
        match t {
            V::Z(t) => self.a.vblendmps(d.k2(), f, t)?,
            V::C(bits) => {
                let l = self.label(bits);
                self.a.vblendmps(d.k2(), f, dword_bcst(l))?
            }
        }
        Ok(())
    }

    /// `acc = acc·t + y`, fused (the Cranelift tier's `fma(acc, t, y)`).
    fn fma_into(&mut self, acc: AsmRegisterZmm, t: AsmRegisterZmm, y: V) -> R<()> {
        match y {
            V::Z(y) => self.a.vfmadd213ps(acc, t, y)?,
            V::C(bits) => {
                let l = self.label(bits);
                self.a.vfmadd213ps(acc, t, dword_bcst(l))?
            }
        }
        Ok(())
    }

    /// A scratch register holding `v`.
    fn splat(&mut self, v: f32) -> R<AsmRegisterZmm> {
        let t = self.tmp()?;
        let l = self.label(v.to_bits());
        self.a.vbroadcastss(t, dword_ptr(l))?;
        Ok(t)
    }

    /// One chunk: the operands' loads, the program, the store.
    fn chunk(mut self, spec: &ChainSpec, places: &[Place]) -> R<()> {
        let prog = &spec.prog;
        // Readers left per instruction; the result is read by the store.
        let mut left = vec![0usize; prog.len()];
        for n in prog {
            match *n {
                FNode::Unary(_, x) => left[x] += 1,
                FNode::Binary(_, x, y) => {
                    left[x] += 1;
                    left[y] += 1;
                }
                FNode::Input(_) | FNode::Imm(_) => {}
            }
        }
        let last = prog.len() - 1;
        left[last] += 1;
        // Each value and whether it owns its register.
        let mut vals: Vec<(V, bool)> = Vec::with_capacity(prog.len());
        for n in prog {
            let v = match *n {
                FNode::Input(k) => match places[k] {
                    Place::Row(z) => (V::Z(z), false),
                    Place::Base(base, dq) => {
                        let z = self.keep()?;
                        match dq {
                            None => {
                                let at = zmmword_ptr(base + rbx * 4);
                                if self.masked {
                                    self.a.vmovups(z.k1().z(), at)?;
                                } else {
                                    self.a.vmovups(z, at)?;
                                }
                            }
                            Some(d) => self.dequantize(z, base, d)?,
                        }
                        (V::Z(z), true)
                    }
                },
                FNode::Imm(v) => (c(v), false),
                FNode::Unary(f, x) => {
                    let d = self.keep()?;
                    self.unary(f, d, vals[x].0)?;
                    (V::Z(d), true)
                }
                FNode::Binary(f, x, y) => {
                    let d = self.keep()?;
                    self.binary(f, d, vals[x].0, vals[y].0)?;
                    (V::Z(d), true)
                }
            };
            self.end_op();
            let reads: &[usize] = match n {
                FNode::Unary(_, x) => &[*x],
                FNode::Binary(_, x, y) => &[*x, *y],
                FNode::Input(_) | FNode::Imm(_) => &[],
            };
            for &r in reads {
                left[r] -= 1;
                if left[r] == 0 {
                    if let (V::Z(z), true) = vals[r] {
                        self.release(z);
                    }
                }
            }
            vals.push(v);
        }
        let y = self.lift(vals[last].0)?;
        match spec.quant {
            None => {
                let at = zmmword_ptr(rbp + rbx * 4);
                if self.masked {
                    self.a.vmovups(at.k1(), y)?;
                } else {
                    self.a.vmovups(at, y)?;
                }
            }
            Some(q) => {
                let (s, zp) = match q.params {
                    QuantParams::Tensor { scale, zero_point } => (c(scale), c(zero_point as f32)),
                    QuantParams::Rows { scale, zero_point } => {
                        let row = |k: usize| match places[k] {
                            Place::Row(z) => Ok(V::Z(z)),
                            Place::Base(..) => Err(Fail::Registers),
                        };
                        (row(scale)?, row(zero_point)?)
                    }
                };
                let (lo, hi) = byte_range(q.to).unwrap_or((0, 255));
                let i = self.quantize(y, s, zp, lo as f32, hi as f32)?;
                let at = xmmword_ptr(rbp + rbx);
                // The lanes are clamped to the output type's range: truncating is exact.
                if self.masked {
                    self.a.vpmovdb(at.k1(), i)?;
                } else {
                    self.a.vpmovdb(at, i)?;
                }
            }
        }
        Ok(())
    }

    /// 16 u8/i8 elements at `base + rbx` into `z` as `f32(x − zp) · scale` (the dequantize
    /// kernel's lanes).
    fn dequantize(&mut self, z: AsmRegisterZmm, base: AsmRegister64, d: Dequant) -> R<()> {
        let at = xmmword_ptr(base + rbx);
        let signed = d.from == DType::I8;
        if self.masked {
            // The tail's bytes through a masked byte load (faults suppressed past the row).
            let x = xmm_of(z);
            self.a.vmovdqu8(x.k1().z(), at)?;
            if signed {
                self.a.vpmovsxbd(z, x)?;
            } else {
                self.a.vpmovzxbd(z, x)?;
            }
        } else if signed {
            self.a.vpmovsxbd(z, at)?;
        } else {
            self.a.vpmovzxbd(z, at)?;
        }
        self.op(Ins::SubI, z, V::Z(z), V::C(d.zero_point as u32))?;
        self.a.vcvtdq2ps(z, z)?;
        self.op(Ins::Mul, z, V::Z(z), c(d.scale))
    }

    /// lpc-ref's quantize step (the Cranelift tier's `quantize_lanes`): `r = round(v / s) + zp`,
    /// clamped to `[lo, hi]` in f32, converted, NaN → 0. Returns the i32 lanes (scratch).
    fn quantize(&mut self, v: AsmRegisterZmm, s: V, zp: V, lo: f32, hi: f32) -> R<AsmRegisterZmm> {
        let r = self.tmp()?;
        self.op(Ins::Div, r, V::Z(v), s)?;
        self.a.vrndscaleps(r, r, NEAREST)?;
        self.op(Ins::Add, r, V::Z(r), zp)?;
        let clamped = self.tmp()?;
        self.op(Ins::Max, clamped, V::Z(r), c(lo))?;
        self.op(Ins::Min, clamped, V::Z(clamped), c(hi))?;
        self.cmp(V::Z(r), V::Z(r), ORD)?;
        let i = self.tmp()?;
        self.a.vcvttps2dq(i.k2().z(), clamped)?;
        Ok(i)
    }

    /// `d = op(x)`, the Cranelift tier's `emit_unary`.
    fn unary(&mut self, op: FUnary, d: AsmRegisterZmm, x: V) -> R<()> {
        let xz = self.lift(x)?;
        let x = V::Z(xz);
        match op {
            FUnary::Neg => self.op(Ins::Xor, d, x, V::C(SIGN))?,
            FUnary::Abs => self.op(Ins::And, d, x, V::C(!SIGN))?,
            // x < 0 ? 0 : x: NaN and −0 pass.
            FUnary::Relu => self.op(Ins::Max, d, c(0.0), x)?,
            FUnary::Sqrt => self.a.vsqrtps(d, xz)?,
            FUnary::Reciprocal => self.op(Ins::Div, d, c(ONE), x)?,
            FUnary::Ceil => self.a.vrndscaleps(d, xz, CEIL)?,
            FUnary::Floor => self.a.vrndscaleps(d, xz, FLOOR)?,
            FUnary::Round => self.a.vrndscaleps(d, xz, NEAREST)?,
            FUnary::Identity => self.a.vmovaps(d, xz)?,
            FUnary::Square => self.op(Ins::Mul, d, x, x)?,
            FUnary::Cube => {
                self.op(Ins::Mul, d, x, x)?;
                self.op(Ins::Mul, d, V::Z(d), x)?;
            }
            FUnary::LeakyRelu(alpha) => {
                let scaled = self.tmp()?;
                self.op(Ins::Mul, scaled, x, c(alpha))?;
                self.cmp(x, c(0.0), GE)?;
                self.select(d, x, V::Z(scaled))?;
            }
            FUnary::HardSigmoid(alpha, beta) => {
                let t = self.tmp()?;
                self.op(Ins::Mul, t, x, c(alpha))?;
                self.op(Ins::Add, t, V::Z(t), c(beta))?;
                self.clamp01(d, t)?;
            }
            FUnary::HardSwish => {
                let t = self.tmp()?;
                self.op(Ins::Mul, t, x, c(1.0 / 6.0))?;
                self.op(Ins::Add, t, V::Z(t), c(0.5))?;
                let u = self.tmp()?;
                self.clamp01(u, t)?;
                self.op(Ins::Mul, d, x, V::Z(u))?;
            }
            FUnary::NanTo(v) => {
                self.cmp(x, x, UNORD)?;
                self.select(d, c(v), x)?;
            }
            FUnary::Clip(lo, hi) => {
                // lo > e ? lo : e, then hi < t ? hi : t: NaN passes both.
                let t = self.tmp()?;
                self.op(Ins::Max, t, c(lo), x)?;
                self.op(Ins::Min, d, c(hi), V::Z(t))?;
            }
            FUnary::Exp => self.exp(d, xz)?,
            FUnary::Sigmoid => self.sigmoid(d, xz)?,
            FUnary::Tanh => self.tanh(d, xz)?,
            FUnary::Erf => self.erf(d, xz)?,
            FUnary::Gelu => {
                let t = self.tmp()?;
                self.op(Ins::Mul, t, x, c(std::f32::consts::FRAC_1_SQRT_2))?;
                let er = self.tmp()?;
                self.erf(er, t)?;
                self.gelu_tail(d, x, er)?;
            }
            FUnary::GeluTanh => {
                let t = self.tmp()?;
                self.op(Ins::Mul, t, x, x)?;
                self.op(Ins::Mul, t, V::Z(t), x)?;
                self.op(Ins::Mul, t, c(GELU_TANH_CUBIC), V::Z(t))?;
                self.op(Ins::Add, t, x, V::Z(t))?;
                self.op(Ins::Mul, t, c(GELU_TANH_SCALE), V::Z(t))?;
                let th = self.tmp()?;
                self.tanh(th, t)?;
                self.gelu_tail(d, x, th)?;
            }
        }
        Ok(())
    }

    /// `d = (0.5·x)·(1 + e)`.
    fn gelu_tail(&mut self, d: AsmRegisterZmm, x: V, e: AsmRegisterZmm) -> R<()> {
        let u = self.tmp()?;
        self.op(Ins::Add, u, c(ONE), V::Z(e))?;
        let h = self.tmp()?;
        self.op(Ins::Mul, h, c(0.5), x)?;
        self.op(Ins::Mul, d, V::Z(h), V::Z(u))
    }

    /// `clamp(t, 0, 1)` as Rust's `f32::clamp`: NaN passes, −0 stays.
    fn clamp01(&mut self, d: AsmRegisterZmm, t: AsmRegisterZmm) -> R<()> {
        let u = self.tmp()?;
        self.op(Ins::Max, u, c(0.0), V::Z(t))?;
        self.op(Ins::Min, d, c(ONE), V::Z(u))
    }

    /// `d = x op y`, the Cranelift tier's `emit_binary`.
    fn binary(&mut self, op: FBinary, d: AsmRegisterZmm, x: V, y: V) -> R<()> {
        match op {
            FBinary::Add => self.op(Ins::Add, d, x, y),
            FBinary::Sub => self.op(Ins::Sub, d, x, y),
            FBinary::Mul => self.op(Ins::Mul, d, x, y),
            FBinary::Div => self.op(Ins::Div, d, x, y),
            FBinary::Max | FBinary::Min => {
                // Max: x < y ? y : x; Min: x > y ? y : x; lpc-ref's NaN when either is NaN.
                let ins = if op == FBinary::Max {
                    Ins::Max
                } else {
                    Ins::Min
                };
                self.op(ins, d, y, x)?;
                self.cmp(x, y, UNORD)?;
                let l = self.label(f32::NAN.to_bits());
                self.a.vbroadcastss(d.k2(), dword_ptr(l))?;
                Ok(())
            }
            FBinary::PRelu => {
                let p = self.tmp()?;
                self.op(Ins::Mul, p, x, y)?;
                self.cmp(x, c(0.0), LT)?;
                self.select(d, V::Z(p), x)
            }
        }
    }

    /// `x < lo ? lo : x`, then `hi < t ? hi : t` into `d`: NaN passes both.
    fn clamp_nan_passing(
        &mut self,
        d: AsmRegisterZmm,
        x: AsmRegisterZmm,
        lo: f32,
        hi: f32,
    ) -> R<()> {
        self.op(Ins::Max, d, c(lo), V::Z(x))?;
        self.op(Ins::Min, d, c(hi), V::Z(d))
    }

    /// `2ⁿ` for integer lanes `n` in `[−75, 64]`, into `n` itself.
    fn pow2(&mut self, n: AsmRegisterZmm) -> R<()> {
        self.op(Ins::AddI, n, V::Z(n), V::C(127))?;
        self.a.vpslld(n, n, 23u32)?;
        Ok(())
    }

    /// `eˣ` (the Cranelift tier's `emit_exp`, its comments for the algorithm).
    fn exp(&mut self, d: AsmRegisterZmm, x: AsmRegisterZmm) -> R<()> {
        let r = self.tmp()?;
        self.clamp_nan_passing(r, x, EXP_LO, EXP_HI)?;
        let nf = self.tmp()?;
        self.op(Ins::Mul, nf, V::Z(r), c(std::f32::consts::LOG2_E))?;
        self.a.vrndscaleps(nf, nf, NEAREST)?;
        let h = self.tmp()?;
        self.op(Ins::Mul, h, V::Z(nf), c(LN2_HI))?;
        self.op(Ins::Sub, r, V::Z(r), V::Z(h))?;
        self.op(Ins::Mul, h, V::Z(nf), c(LN2_LO))?;
        self.op(Ins::Sub, r, V::Z(r), V::Z(h))?;
        // eʳ ≈ 1 + r + r²·P(r), P by Horner without fused multiply-adds.
        let p = h;
        self.op(Ins::Mul, p, V::Z(r), c(EXP_POLY[0]))?;
        self.op(Ins::Add, p, V::Z(p), c(EXP_POLY[1]))?;
        for &k in &EXP_POLY[2..] {
            self.op(Ins::Mul, p, V::Z(p), V::Z(r))?;
            self.op(Ins::Add, p, V::Z(p), c(k))?;
        }
        let r2 = self.tmp()?;
        self.op(Ins::Mul, r2, V::Z(r), V::Z(r))?;
        self.op(Ins::Mul, p, V::Z(p), V::Z(r2))?;
        self.op(Ins::Add, p, V::Z(p), V::Z(r))?;
        self.op(Ins::Add, p, V::Z(p), c(ONE))?;
        // n as i32, a NaN lane 0 (the saturating conversion's).
        let n = r2;
        self.cmp(V::Z(nf), V::Z(nf), ORD)?;
        self.a.vcvttps2dq(n.k2().z(), nf)?;
        let n1 = nf;
        self.a.vpsrad(n1, n, 1u32)?;
        self.a.vpsubd(n, n, n1)?;
        self.pow2(n1)?;
        self.pow2(n)?;
        self.op(Ins::Mul, p, V::Z(p), V::Z(n1))?;
        self.op(Ins::Mul, d, V::Z(p), V::Z(n))
    }

    /// `1 / (1 + e⁻ˣ)`.
    fn sigmoid(&mut self, d: AsmRegisterZmm, x: AsmRegisterZmm) -> R<()> {
        let nx = self.tmp()?;
        self.op(Ins::Xor, nx, V::Z(x), V::C(SIGN))?;
        let en = self.tmp()?;
        self.exp(en, nx)?;
        self.op(Ins::Add, en, c(ONE), V::Z(en))?;
        self.op(Ins::Div, d, c(ONE), V::Z(en))
    }

    /// `x·P(x²)/Q(x²)` on the clamped input, each Horner step fused.
    fn tanh(&mut self, d: AsmRegisterZmm, x: AsmRegisterZmm) -> R<()> {
        let v = self.tmp()?;
        self.clamp_nan_passing(v, x, -TANH_CLAMP, TANH_CLAMP)?;
        let x2 = self.tmp()?;
        self.op(Ins::Mul, x2, V::Z(v), V::Z(v))?;
        let num = self.splat(TANH_P[0])?;
        for &k in &TANH_P[1..] {
            self.fma_into(num, x2, c(k))?;
        }
        self.op(Ins::Mul, num, V::Z(num), V::Z(v))?;
        let den = self.splat(TANH_Q[0])?;
        for &k in &TANH_Q[1..] {
            self.fma_into(den, x2, c(k))?;
        }
        self.op(Ins::Div, d, V::Z(num), V::Z(den))
    }

    /// `erf x`: both branches, then the one lpc-ref takes for each lane.
    fn erf(&mut self, d: AsmRegisterZmm, x: AsmRegisterZmm) -> R<()> {
        let a = self.tmp()?;
        self.op(Ins::And, a, V::Z(x), V::C(!SIGN))?;
        // |x| > split: 1 − e^(−(t + t·B(t))) with t = min(|x|, clamp), the sign of x.
        let t = self.tmp()?;
        self.op(Ins::Min, t, c(ERF_CLAMP), V::Z(a))?;
        let r = self.splat(ERF_BIG[0])?;
        for &k in &ERF_BIG[1..] {
            self.fma_into(r, t, c(k))?;
        }
        self.fma_into(r, t, V::Z(t))?;
        self.op(Ins::Xor, r, V::Z(r), V::C(SIGN))?;
        let big = self.tmp()?;
        self.exp(big, r)?;
        self.op(Ins::Sub, big, c(ONE), V::Z(big))?;
        // copysign: `big` is positive there, so x's sign bit or'ed in.
        self.op(Ins::And, t, V::Z(x), V::C(SIGN))?;
        self.op(Ins::Or, big, V::Z(big), V::Z(t))?;
        // Otherwise x + x·P(x²).
        self.op(Ins::Mul, t, V::Z(x), V::Z(x))?;
        let small = self.splat(ERF_SMALL[0])?;
        for &k in &ERF_SMALL[1..] {
            self.fma_into(small, t, c(k))?;
        }
        self.fma_into(small, x, V::Z(x))?;
        self.cmp(V::Z(a), c(ERF_SPLIT), GT)?;
        self.select(d, V::Z(big), V::Z(small))
    }
}
