//! f32 kernels compiled with Cranelift for the float ops left between integer kernels.
//!
//! Two kinds: fused elementwise chains (with an optional QuantizeLinear epilogue, per tensor or per channel) and
//! GlobalAveragePool.
//!
//! A *chain* is a tree of f32 elementwise nodes (Add, Sub, Mul, Div, Max, Min, PRelu, Relu,
//! LeakyRelu, Clip with constant bounds, HardSigmoid, HardSwish, Neg, Abs, Sqrt, Reciprocal,
//! Ceil, Floor, Round, Identity) whose inner values each have one consumer and the root's shape.
//! It runs as one loop that reads its external operands once and writes one output. Operands are
//! indexed on an `outer × inner` split of the output: *full* (same shape), *row* (one value per
//! outer index modulo a period: scalars, per-channel `[1,C,1,1]`, per-(n,c) `[N,C,1,1]`) or
//! *column* (the same `inner` values for every outer index). One-element constants are compiled
//! in. Anything else stays with lpc-ref.
//!
//! Arithmetic follows lpc-ref's f32 formulas operation for operation (true division, no fused
//! multiply-add, the same NaN rules), so results are bit-identical except for the sign of a zero
//! produced by Relu/Max/Min/Clip, which lpc-ref itself leaves to Rust's `f32::max`/`min`
//! (unspecified for `±0`; debug and release builds differ).

use std::collections::{HashMap, HashSet};

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::types::{F32, F32X4, F64, I64, I8, I8X16};
use cranelift_codegen::ir::{
    BlockArg, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Value,
};
use cranelift_frontend::FunctionBuilder;
use cranelift_module::FuncId;
use lpc_ir::{BinaryOp, DType, Graph, NodeId, Op, Tensor, UnaryOp, ValueRef};
use rayon::prelude::*;

use crate::elementwise::{
    byte_range, emit_copy, emit_loop, load_chunk, mem, narrow_bytes, quantize_lanes, spec_err,
    store_chunk, unique_name, Chunk,
};
use crate::memory::BufferPool;
use crate::{CodeModule, JitError};

/// A unary f32 operation of a chain, with lpc-ref's formula.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FUnary {
    /// `-x` (flips the sign bit).
    Neg,
    /// `|x|` (clears the sign bit).
    Abs,
    /// `x > 0 ? x : 0` (NaN → 0).
    Relu,
    /// `√x`.
    Sqrt,
    /// `1 / x`.
    Reciprocal,
    /// Round up.
    Ceil,
    /// Round down.
    Floor,
    /// Round half to even.
    Round,
    /// `x`.
    Identity,
    /// `x >= 0 ? x : alpha·x`.
    LeakyRelu(f32),
    /// `clamp(alpha·x + beta, 0, 1)` (NaN stays NaN).
    HardSigmoid(f32, f32),
    /// `x · clamp(x·(1/6) + 0.5, 0, 1)`.
    HardSwish,
    /// NaN stays NaN, else `max(x, lo)` then `min(·, hi)`.
    Clip(f32, f32),
}

/// A binary f32 operation of a chain (`a op b`, in that order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FBinary {
    /// `a + b`.
    Add,
    /// `a − b`.
    Sub,
    /// `a · b`.
    Mul,
    /// `a / b` (a true division).
    Div,
    /// NaN if either is NaN, else the larger.
    Max,
    /// NaN if either is NaN, else the smaller.
    Min,
    /// `a < 0 ? a·b : a`.
    PRelu,
}

/// One instruction of a chain program; operands name earlier instructions by index.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FNode {
    /// External operand `k` of the chain.
    Input(usize),
    /// A constant.
    Imm(f32),
    /// A unary operation of an earlier instruction.
    Unary(FUnary, usize),
    /// A binary operation of two earlier instructions.
    Binary(FBinary, usize, usize),
}

/// How an external operand is indexed on the `outer × inner` iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// Element `o·inner + i` (the output's own shape).
    Full,
    /// Element `o % period`, the same for the whole row.
    Row {
        /// The number of distinct rows (divides `outer`).
        period: usize,
    },
    /// Element `i`, the same for every row.
    Col,
}

impl Operand {
    /// Elements the operand's buffer must hold.
    fn len(self, inner: usize, outer: usize) -> usize {
        match self {
            Operand::Full => inner * outer,
            Operand::Row { period } => period,
            Operand::Col => inner,
        }
    }
}

/// A QuantizeLinear fused after a chain: `saturate(round_ties_even(x / scale) + zp)`, NaN → 0,
/// exactly like the quantize kernel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuantOut {
    /// u8 or i8.
    pub to: DType,
    /// The scale and zero point.
    pub params: QuantParams,
}

/// Where a fused quantize's scale and zero point come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum QuantParams {
    /// One scale and zero point (inside the output dtype's range) for every element.
    Tensor {
        /// The scale.
        scale: f32,
        /// The zero point.
        zero_point: i32,
    },
    /// Per row of the iteration (per channel): row operands holding the scales and the zero
    /// points (as f32, each inside the output dtype's range).
    Rows {
        /// The operand of the scales.
        scale: usize,
        /// The operand of the zero points.
        zero_point: usize,
    },
}

/// A fused elementwise chain: a program whose last instruction is the result, its operands'
/// indexing, the iteration shape, and an optional quantize epilogue.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainSpec {
    /// Instructions in order; the last is the chain's value.
    pub prog: Vec<FNode>,
    /// One per external operand (`FNode::Input(k)` reads operand `k`).
    pub operands: Vec<Operand>,
    /// Rows of the iteration.
    pub outer: usize,
    /// Elements per row.
    pub inner: usize,
    /// Quantize the result instead of writing f32.
    pub quant: Option<QuantOut>,
}

impl ChainSpec {
    /// The output dtype.
    pub fn out_dtype(&self) -> DType {
        self.quant.map_or(DType::F32, |q| q.to)
    }

    /// Float operations in the program (what `jit float (chain of N)` counts).
    pub fn ops(&self) -> usize {
        self.prog
            .iter()
            .filter(|n| matches!(n, FNode::Unary(..) | FNode::Binary(..)))
            .count()
    }

    fn check(&self) -> Result<(), JitError> {
        let bad = |why: String| Err(spec_err("float chain", why));
        if self.prog.is_empty() {
            return bad("empty program".into());
        }
        for (k, n) in self.prog.iter().enumerate() {
            let ok = match *n {
                FNode::Input(j) => j < self.operands.len(),
                FNode::Imm(_) => true,
                FNode::Unary(_, a) => a < k,
                FNode::Binary(_, a, b) => a < k && b < k,
            };
            if !ok {
                return bad(format!("instruction {k} ({n:?}) reads an undefined value"));
            }
        }
        for op in &self.operands {
            if let Operand::Row { period } = op {
                if *period == 0 || !self.outer.is_multiple_of(*period) {
                    return bad(format!(
                        "row period {period} does not divide {} rows",
                        self.outer
                    ));
                }
            }
        }
        if let Some(q) = self.quant {
            let (lo, hi) = byte_range(q.to).ok_or_else(|| {
                spec_err(
                    "float chain",
                    format!("can quantize to u8 or i8, not {}", q.to),
                )
            })?;
            match q.params {
                QuantParams::Tensor { zero_point, .. } => {
                    if zero_point < lo || zero_point > hi {
                        return bad(format!("zero point {zero_point} is outside {}", q.to));
                    }
                }
                QuantParams::Rows { scale, zero_point } => {
                    for k in [scale, zero_point] {
                        if !matches!(self.operands.get(k), Some(Operand::Row { .. })) {
                            return bad(format!("quantize parameter operand {k} is not per row"));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A fused quantize's scale and zero point in the kernel: splats made once, or the splats of two
/// row operands.
#[derive(Clone, Copy)]
enum QArgs {
    Splats(Value, Value),
    Rows(usize, usize),
}

/// A 4-lane mask from `fcmp`, as f32 lanes for `bitselect`.
fn mask(b: &mut FunctionBuilder, cc: FloatCC, x: Value, y: Value) -> Value {
    let m = b.ins().fcmp(cc, x, y);
    b.ins().bitcast(F32X4, MemFlagsData::new(), m)
}

/// `c ? x : y` lane by lane.
fn sel(b: &mut FunctionBuilder, c: Value, x: Value, y: Value) -> Value {
    b.ins().bitselect(c, x, y)
}

fn splat_f32(b: &mut FunctionBuilder, v: f32) -> Value {
    let s = b.ins().f32const(Ieee32::with_bits(v.to_bits()));
    b.ins().splat(F32X4, s)
}

/// Splats of 0, 1, 1/6, 0.5 and lpc-ref's canonical NaN shared by the operations, made once
/// before the loop (at `opt_level=none` a splat inside the loop is reloaded every time).
struct Consts {
    zero: Value,
    one: Value,
    sixth: Value,
    half: Value,
    nan: Value,
}

/// The splatted constant parameters of a unary operation (bounds, slopes), made once before
/// the loop and passed to [`emit_unary`] in this order.
fn unary_params(b: &mut FunctionBuilder, op: FUnary) -> Vec<Value> {
    match op {
        FUnary::LeakyRelu(alpha) => vec![splat_f32(b, alpha)],
        FUnary::HardSigmoid(alpha, beta) => vec![splat_f32(b, alpha), splat_f32(b, beta)],
        FUnary::Clip(lo, hi) => vec![splat_f32(b, lo), splat_f32(b, hi)],
        FUnary::Neg
        | FUnary::Abs
        | FUnary::Relu
        | FUnary::Sqrt
        | FUnary::Reciprocal
        | FUnary::Ceil
        | FUnary::Floor
        | FUnary::Round
        | FUnary::Identity
        | FUnary::HardSwish => vec![],
    }
}

/// `y < x ? x : y`: one `maxps x, y` (x86 returns its second operand `y` when either is NaN,
/// exactly what the comparison form gives). Cranelift lowers only this operand shape of the
/// compare-and-select to `maxps`.
fn max_keep_y_on_nan(b: &mut FunctionBuilder, x: Value, y: Value) -> Value {
    let c = mask(b, FloatCC::LessThan, y, x);
    sel(b, c, x, y)
}

/// `x < y ? x : y`: one `minps x, y` (second operand `y` when either is NaN).
fn min_keep_y_on_nan(b: &mut FunctionBuilder, x: Value, y: Value) -> Value {
    let c = mask(b, FloatCC::LessThan, x, y);
    sel(b, c, x, y)
}

/// Emits one unary operation on four lanes, as lpc-ref's f32 formula; `p` holds its
/// [`unary_params`].
fn emit_unary(b: &mut FunctionBuilder, k: &Consts, op: FUnary, p: &[Value], x: Value) -> Value {
    // clamp(t, 0, 1) as Rust's f32::clamp: NaN passes, −0 stays (0 < −0 is false).
    let clamp01 = |b: &mut FunctionBuilder, t: Value| {
        let t = max_keep_y_on_nan(b, k.zero, t);
        min_keep_y_on_nan(b, k.one, t)
    };
    match op {
        FUnary::Neg => b.ins().fneg(x),
        FUnary::Abs => b.ins().fabs(x),
        // x > 0 ? x : 0, NaN → 0.
        FUnary::Relu => max_keep_y_on_nan(b, x, k.zero),
        FUnary::Sqrt => b.ins().sqrt(x),
        FUnary::Reciprocal => b.ins().fdiv(k.one, x),
        FUnary::Ceil => b.ins().ceil(x),
        FUnary::Floor => b.ins().floor(x),
        FUnary::Round => b.ins().nearest(x),
        FUnary::Identity => x,
        FUnary::LeakyRelu(_) => {
            let ax = b.ins().fmul(p[0], x);
            let ge = mask(b, FloatCC::GreaterThanOrEqual, x, k.zero);
            sel(b, ge, x, ax)
        }
        FUnary::HardSigmoid(..) => {
            let t = b.ins().fmul(p[0], x);
            let t = b.ins().fadd(t, p[1]);
            clamp01(b, t)
        }
        FUnary::HardSwish => {
            let t = b.ins().fmul(x, k.sixth);
            let t = b.ins().fadd(t, k.half);
            let t = clamp01(b, t);
            b.ins().fmul(x, t)
        }
        FUnary::Clip(..) => {
            // lo > e ? lo : e, then hi < t ? hi : t: a NaN e passes both unchanged (the same
            // NaN, as lpc-ref keeps e), a NaN bound compares false and keeps e.
            let t = max_keep_y_on_nan(b, p[0], x);
            min_keep_y_on_nan(b, p[1], t)
        }
    }
}

/// Emits one binary operation on four lanes, as lpc-ref's f32 formula.
fn emit_binary(b: &mut FunctionBuilder, k: &Consts, op: FBinary, x: Value, y: Value) -> Value {
    match op {
        FBinary::Add => b.ins().fadd(x, y),
        FBinary::Sub => b.ins().fsub(x, y),
        FBinary::Mul => b.ins().fmul(x, y),
        FBinary::Div => b.ins().fdiv(x, y),
        FBinary::Max | FBinary::Min => {
            let cc = if op == FBinary::Max {
                FloatCC::LessThan
            } else {
                FloatCC::GreaterThan
            };
            let take_y = mask(b, cc, x, y);
            let t = sel(b, take_y, y, x);
            // lpc-ref gives its canonical NaN when either is NaN.
            let nan = mask(b, FloatCC::Unordered, x, y);
            sel(b, nan, k.nan, t)
        }
        FBinary::PRelu => {
            let p = b.ins().fmul(x, y);
            let lt = mask(b, FloatCC::LessThan, x, k.zero);
            sel(b, lt, p, x)
        }
    }
}

/// The signature of a chain kernel: `(operand pointers, out, o0, o1, i0, i1)` computes rows
/// `o0..o1`, elements `i0..i1` of each row.
type ChainFn = unsafe extern "C" fn(*const *const f32, *mut u8, i64, i64, i64, i64);

/// Defines a chain kernel.
pub fn define_chain(m: &mut CodeModule, spec: &ChainSpec) -> Result<FuncId, JitError> {
    spec.check()?;
    let p = m.ptr();
    let spec = spec.clone();
    let out_d = spec.out_dtype();
    let osize = crate::elementwise::elem_size(out_d) as i64;
    let inner = spec.inner as i64;
    m.define(
        &unique_name("float_chain"),
        &[p, p, I64, I64, I64, I64],
        |b, args| {
            let (table, out, o0, o1, i0, i1) =
                (args[0], args[1], args[2], args[3], args[4], args[5]);
            let ptrs: Vec<Value> = (0..spec.operands.len())
                .map(|k| b.ins().load(p, mem(), table, 8 * k as i32))
                .collect();
            let k = Consts {
                zero: splat_f32(b, 0.0),
                one: splat_f32(b, 1.0),
                sixth: splat_f32(b, 1.0 / 6.0),
                half: splat_f32(b, 0.5),
                nan: splat_f32(b, f32::NAN),
            };
            let params: Vec<Vec<Value>> = spec
                .prog
                .iter()
                .map(|n| match *n {
                    FNode::Unary(f, _) => unary_params(b, f),
                    FNode::Input(_) | FNode::Imm(_) | FNode::Binary(..) => vec![],
                })
                .collect();
            let imms: Vec<Option<Value>> = spec
                .prog
                .iter()
                .map(|n| match n {
                    FNode::Imm(v) => Some(splat_f32(b, *v)),
                    FNode::Input(_) | FNode::Unary(..) | FNode::Binary(..) => None,
                })
                .collect();
            // Per-tensor parameters as splats; per-row ones are read with the row's operands.
            let q = spec.quant.map(|q| {
                let (lo, hi) = byte_range(q.to).unwrap_or((0, 255));
                let sz = match q.params {
                    QuantParams::Tensor { scale, zero_point } => {
                        QArgs::Splats(splat_f32(b, scale), splat_f32(b, zero_point as f32))
                    }
                    QuantParams::Rows { scale, zero_point } => QArgs::Rows(scale, zero_point),
                };
                let lo = splat_f32(b, lo as f32);
                let hi = splat_f32(b, hi as f32);
                (sz, lo, hi, q.to == DType::U8)
            });
            let nops = spec.operands.len();
            let slots: Vec<_> = (0..=nops)
                .map(|_| {
                    b.create_sized_stack_slot(StackSlotData::new(
                        StackSlotKind::ExplicitSlot,
                        64,
                        4,
                    ))
                })
                .collect();
            // Evaluates the program on 16 elements: `vals[k]` are operand k's four vectors.
            let eval = |b: &mut FunctionBuilder, vals: &[[Value; 4]]| -> Chunk {
                let mut res = [k.zero; 4];
                for (lane, r) in res.iter_mut().enumerate() {
                    let mut v: Vec<Value> = Vec::with_capacity(spec.prog.len());
                    for (j, n) in spec.prog.iter().enumerate() {
                        let x = match *n {
                            FNode::Input(op) => vals[op][lane],
                            FNode::Imm(_) => imms[j].unwrap_or(k.zero),
                            FNode::Unary(f, a) => emit_unary(b, &k, f, &params[j], v[a]),
                            FNode::Binary(f, a, c) => emit_binary(b, &k, f, v[a], v[c]),
                        };
                        v.push(x);
                    }
                    *r = v[v.len() - 1];
                }
                match q {
                    None => Chunk::Words(res),
                    Some((sz, lo, hi, unsigned)) => {
                        let (s, zp) = match sz {
                            QArgs::Splats(s, zp) => (s, zp),
                            QArgs::Rows(s, zp) => (vals[s][0], vals[zp][0]),
                        };
                        let w = res.map(|x| quantize_lanes(b, x, s, zp, lo, hi));
                        Chunk::Bytes(narrow_bytes(b, unsigned, w))
                    }
                }
            };
            emit_loop(b, o0, o1, 1, |b, o| {
                // Per row: the base of every full operand and of the output, the splat of every row
                // operand.
                let row_elem = b.ins().imul_imm_s(o, inner);
                let row_off = b.ins().imul_imm_s(row_elem, 4);
                let mut bases: Vec<Option<Value>> = Vec::with_capacity(nops);
                let mut rowv: Vec<Option<Value>> = Vec::with_capacity(nops);
                for (kk, op) in spec.operands.iter().enumerate() {
                    match *op {
                        Operand::Full => {
                            bases.push(Some(b.ins().iadd(ptrs[kk], row_off)));
                            rowv.push(None);
                        }
                        Operand::Col => {
                            bases.push(Some(ptrs[kk]));
                            rowv.push(None);
                        }
                        Operand::Row { period } => {
                            let idx = b.ins().urem_imm_u(o, period as i64);
                            let off = b.ins().imul_imm_s(idx, 4);
                            let a = b.ins().iadd(ptrs[kk], off);
                            let s = b.ins().load(F32, mem(), a, 0);
                            bases.push(None);
                            rowv.push(Some(b.ins().splat(F32X4, s)));
                        }
                    }
                }
                let out_off = b.ins().imul_imm_s(row_elem, osize);
                let out_row = b.ins().iadd(out, out_off);
                let len = b.ins().isub(i1, i0);
                let full_len = b.ins().band_imm_s(len, !15i64);
                let full_end = b.ins().iadd(i0, full_len);
                let gather =
                    |b: &mut FunctionBuilder, i: Value, from_slot: bool| -> Vec<[Value; 4]> {
                        (0..nops)
                            .map(|kk| match (bases[kk], rowv[kk]) {
                                (_, Some(v)) => [v; 4],
                                (Some(base), None) => {
                                    let a = if from_slot {
                                        b.ins().stack_addr(p, slots[kk], 0)
                                    } else {
                                        let off = b.ins().imul_imm_s(i, 4);
                                        b.ins().iadd(base, off)
                                    };
                                    match load_chunk(b, DType::F32, a) {
                                        Chunk::Words(w) => w,
                                        Chunk::Bytes(v) => [v; 4],
                                    }
                                }
                                (None, None) => [k.zero; 4],
                            })
                            .collect()
                    };
                emit_loop(b, i0, full_end, 16, |b, i| {
                    let vals = gather(b, i, false);
                    let y = eval(b, &vals);
                    let off = b.ins().imul_imm_s(i, osize);
                    let a = b.ins().iadd(out_row, off);
                    store_chunk(b, a, y);
                });
                // The row's last `rem` (< 16) elements go through stack buffers.
                let rem = b.ins().isub(i1, full_end);
                let tail = b.create_block();
                let done = b.create_block();
                b.ins().brif(rem, tail, &[], done, &[]);
                b.switch_to_block(tail);
                let nbytes = b.ins().imul_imm_s(rem, 4);
                for kk in 0..nops {
                    if let (Some(base), None) = (bases[kk], rowv[kk]) {
                        let s = b.ins().stack_addr(p, slots[kk], 0);
                        let zv = b.ins().iconst(I8, 0);
                        let zv = b.ins().splat(I8X16, zv);
                        for j in 0..4 {
                            b.ins().store(mem(), zv, s, 16 * j);
                        }
                        let off = b.ins().imul_imm_s(full_end, 4);
                        let a = b.ins().iadd(base, off);
                        emit_copy(b, s, a, nbytes);
                    }
                }
                let vals = gather(b, full_end, true);
                let y = eval(b, &vals);
                let s = b.ins().stack_addr(p, slots[nops], 0);
                store_chunk(b, s, y);
                let off = b.ins().imul_imm_s(full_end, osize);
                let a = b.ins().iadd(out_row, off);
                let n = b.ins().imul_imm_s(rem, osize);
                emit_copy(b, a, s, n);
                b.ins().jump(done, &[]);
                b.switch_to_block(done);
            });
            b.ins().return_(&[]);
        },
    )
}

/// A raw pointer that may cross threads (each thread writes a disjoint part).
#[derive(Clone, Copy)]
struct SendPtr(*mut u8);
// SAFETY: the kernels write disjoint ranges of the buffer behind it.
unsafe impl Send for SendPtr {}
// SAFETY: as above.
unsafe impl Sync for SendPtr {}

/// Elements below which a kernel runs on one thread.
const PAR_MIN: usize = 1 << 14;

/// A finalized chain kernel. The [`CodeModule`] it came from must outlive it.
#[derive(Debug)]
pub struct ChainKernel {
    f: ChainFn,
    spec: ChainSpec,
}

impl ChainKernel {
    /// The kernel `id` of the finalized module `m`.
    ///
    /// # Safety
    /// `id` must come from [`define_chain`] on `m` with a spec equal to `spec`.
    pub unsafe fn new(m: &CodeModule, id: FuncId, spec: &ChainSpec) -> Result<Self, JitError> {
        spec.check()?;
        let p = m.address(id)?;
        // SAFETY: the caller guarantees the function has this signature.
        let f = unsafe { std::mem::transmute::<*const u8, ChainFn>(p) };
        Ok(ChainKernel {
            f,
            spec: spec.clone(),
        })
    }

    /// The spec the kernel was compiled from.
    pub fn spec(&self) -> &ChainSpec {
        &self.spec
    }

    /// Runs the chain on `ins` (one slice per operand, of the lengths its indexing needs) into
    /// `out` (`outer·inner` bytes of the output dtype), splitting rows (or, with one row, the
    /// row) over the threads.
    pub fn run_raw(&self, ins: &[&[f32]], out: &mut [u8]) -> Result<(), JitError> {
        let s = &self.spec;
        if ins.len() != s.operands.len() {
            return Err(spec_err(
                "float chain",
                format!(
                    "{} operands given, {} compiled",
                    ins.len(),
                    s.operands.len()
                ),
            ));
        }
        for (k, (x, op)) in ins.iter().zip(&s.operands).enumerate() {
            let want = op.len(s.inner, s.outer);
            if x.len() != want {
                return Err(JitError::Input {
                    name: format!("operand {k}"),
                    why: format!("has {} elements, expected {want}", x.len()),
                });
            }
        }
        let n = s.outer * s.inner;
        let osize = crate::elementwise::elem_size(s.out_dtype());
        if out.len() != n * osize {
            return Err(JitError::Input {
                name: "out".into(),
                why: format!("has {} bytes, expected {}", out.len(), n * osize),
            });
        }
        if n == 0 {
            return Ok(());
        }
        let table: Vec<*const f32> = ins.iter().map(|x| x.as_ptr()).collect();
        let tp = SendPtr(table.as_ptr() as *mut u8);
        let op = SendPtr(out.as_mut_ptr());
        let call = |o0: usize, o1: usize, i0: usize, i1: usize| {
            let (tp, op) = (tp, op);
            // SAFETY: every operand holds the elements its indexing reads for rows o0..o1 and
            // columns i0..i1 (checked above), and `out` the outer·inner outputs; threads write
            // disjoint (row, column) ranges.
            unsafe {
                (self.f)(
                    tp.0 as *const *const f32,
                    op.0,
                    o0 as i64,
                    o1 as i64,
                    i0 as i64,
                    i1 as i64,
                )
            }
        };
        let threads = crate::par::threads();
        if threads == 1 || n < PAR_MIN {
            call(0, s.outer, 0, s.inner);
        } else if s.outer >= threads {
            let per = s.outer.div_ceil(threads * 4).max(1);
            (0..s.outer.div_ceil(per)).into_par_iter().for_each(|j| {
                call(j * per, ((j + 1) * per).min(s.outer), 0, s.inner);
            });
        } else {
            let per = s.inner.div_ceil(threads * 4).div_ceil(16).max(1) * 16;
            (0..s.inner.div_ceil(per)).into_par_iter().for_each(|j| {
                call(0, s.outer, j * per, ((j + 1) * per).min(s.inner));
            });
        }
        Ok(())
    }
}

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
const GAP_LANES: usize = 4;

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
        let p = m.address(id)?;
        // SAFETY: the caller guarantees the function has this signature.
        let f = unsafe { std::mem::transmute::<*const u8, GapFn>(p) };
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
        let threads = crate::par::threads();
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

// ---------------------------------------------------------------------------------------------
// Lowering: finding chains in a graph and the plan steps that run them.
// ---------------------------------------------------------------------------------------------

fn known_shape(g: &Graph, v: ValueRef) -> Option<Vec<usize>> {
    g.value_type(v).shape.as_ref()?.as_known()
}

fn is_f32(g: &Graph, v: ValueRef) -> bool {
    g.value_type(v).dtype == Some(DType::F32)
}

/// A one-element f32 constant's value.
fn scalar_const(g: &Graph, v: ValueRef) -> Option<f32> {
    let t = g.const_value(v)?;
    (t.dtype() == DType::F32 && t.len() == 1).then(|| t.to_f32_vec()[0])
}

/// The chain operation of an f32 elementwise node with known shapes, and its data inputs.
fn chain_op(g: &Graph, n: NodeId) -> Option<(ChainOp, Vec<ValueRef>)> {
    let node = g.node(n);
    if node.outputs.len() != 1 || !is_f32(g, ValueRef::first(n)) {
        return None;
    }
    known_shape(g, ValueRef::first(n))?;
    let data = |k: usize| -> Option<ValueRef> {
        let v = g.node_input(n, k)?;
        (is_f32(g, v) && known_shape(g, v).is_some()).then_some(v)
    };
    if let Op::Unary(u) = &node.op {
        let f = match u {
            UnaryOp::Neg => FUnary::Neg,
            UnaryOp::Abs => FUnary::Abs,
            UnaryOp::Relu => FUnary::Relu,
            UnaryOp::Sqrt => FUnary::Sqrt,
            UnaryOp::Reciprocal => FUnary::Reciprocal,
            UnaryOp::Ceil => FUnary::Ceil,
            UnaryOp::Floor => FUnary::Floor,
            UnaryOp::Round => FUnary::Round,
            UnaryOp::Identity => FUnary::Identity,
            UnaryOp::LeakyRelu { alpha } => FUnary::LeakyRelu(*alpha),
            UnaryOp::HardSigmoid { alpha, beta } => FUnary::HardSigmoid(*alpha, *beta),
            UnaryOp::HardSwish => FUnary::HardSwish,
            UnaryOp::Exp
            | UnaryOp::Log
            | UnaryOp::Erf
            | UnaryOp::Sigmoid
            | UnaryOp::Tanh
            | UnaryOp::Elu { .. }
            | UnaryOp::Gelu { .. }
            | UnaryOp::Cast { .. } => return None,
        };
        return Some((ChainOp::Unary(f), vec![data(0)?]));
    }
    if let Op::Binary(bop) = &node.op {
        let f = match bop {
            BinaryOp::Add => FBinary::Add,
            BinaryOp::Sub => FBinary::Sub,
            BinaryOp::Mul => FBinary::Mul,
            BinaryOp::Div => FBinary::Div,
            BinaryOp::Max => FBinary::Max,
            BinaryOp::Min => FBinary::Min,
            BinaryOp::PRelu => FBinary::PRelu,
            BinaryOp::Pow | BinaryOp::Equal => return None,
        };
        return Some((ChainOp::Binary(f), vec![data(0)?, data(1)?]));
    }
    if !matches!(node.op, Op::Clip) {
        return None;
    }
    let bound = |k: usize, absent: f32| -> Option<f32> {
        match g.node_input(n, k) {
            None => Some(absent),
            Some(v) => scalar_const(g, v),
        }
    };
    let lo = bound(1, f32::NEG_INFINITY)?;
    let hi = bound(2, f32::INFINITY)?;
    Some((ChainOp::Unary(FUnary::Clip(lo, hi)), vec![data(0)?]))
}

#[derive(Clone, Copy, Debug)]
enum ChainOp {
    Unary(FUnary),
    Binary(FBinary),
}

/// A chain found in a graph: its root (the node whose output the step produces), its member
/// nodes in topological order (the root last, or just before a fused QuantizeLinear root), and
/// its external operands.
#[derive(Clone, Debug)]
pub struct ChainGroup {
    /// The node whose output the chain's step writes.
    pub root: NodeId,
    /// Float members in topological order (the last is the float result).
    pub members: Vec<NodeId>,
    /// The spec: operands in the order of `externals`, then `consts`.
    pub spec: ChainSpec,
    /// External f32 values read by the chain, one per operand.
    pub externals: Vec<ValueRef>,
    /// Constant operands after the externals (a per-channel quantize's scales and zero points).
    pub consts: Vec<Vec<f32>>,
}

/// Chains of a graph: groups by root, and the member nodes that produce no step of their own.
#[derive(Default)]
pub struct Chains {
    /// Groups keyed by their root node.
    pub roots: HashMap<NodeId, ChainGroup>,
    /// Non-root members (computed inside their root's step).
    pub absorbed: HashSet<NodeId>,
}

/// A QuantizeLinear f32 → u8/i8 that can end a chain, with constant parameters as lpc-ref
/// reads them.
#[derive(Clone, Debug)]
pub enum QuantFuse {
    /// One-element scale and zero point (absent: 0).
    Tensor(QuantOut),
    /// Per channel: the scales and zero points (as f32) along one axis, and the shape that
    /// broadcasts one parameter vector to the output (1 except on that axis).
    Channels {
        /// u8 or i8.
        to: DType,
        /// One scale per channel.
        scales: Vec<f32>,
        /// One zero point per channel, inside `to`'s range.
        zero_points: Vec<f32>,
        /// `[1, …, C, …, 1]`, the output's rank.
        shape: Vec<usize>,
    },
}

/// The fusable form of QuantizeLinear node `n`, if it has one.
fn fusable_quant(g: &Graph, n: NodeId) -> Option<QuantFuse> {
    let Op::QuantizeLinear { q, dtype } = &g.node(n).op else {
        return None;
    };
    let (lo, hi) = byte_range(*dtype)?;
    let s = g.const_value(g.node_input(n, 1)?)?;
    if s.dtype() != DType::F32 || q.block_size != 0 || g.node(n).outputs.len() != 1 {
        return None;
    }
    let zero_points: Vec<i64> = match g.node_input(n, 2) {
        None => vec![0; s.len()],
        Some(v) => {
            let z = g.const_value(v)?;
            if z.dtype() != *dtype || z.len() != s.len() {
                return None;
            }
            z.to_i64_vec()
        }
    };
    if zero_points.iter().any(|&z| z < lo as i64 || z > hi as i64) {
        return None;
    }
    if s.len() == 1 {
        return Some(QuantFuse::Tensor(QuantOut {
            to: *dtype,
            params: QuantParams::Tensor {
                scale: s.to_f32_vec()[0],
                zero_point: zero_points[0] as i32,
            },
        }));
    }
    // Per axis: a 1-D scale along a known axis of the output.
    let out = known_shape(g, ValueRef::first(n))?;
    let axis = if q.axis < 0 {
        q.axis + out.len() as i64
    } else {
        q.axis
    };
    let axis = usize::try_from(axis).ok().filter(|&a| a < out.len())?;
    if s.shape().len() != 1 || out[axis] != s.len() {
        return None;
    }
    let mut shape = vec![1; out.len()];
    shape[axis] = s.len();
    Some(QuantFuse::Channels {
        to: *dtype,
        scales: s.to_f32_vec(),
        zero_points: zero_points.iter().map(|&z| z as f32).collect(),
        shape,
    })
}

/// Splits `out` into `outer × inner` so every operand shape is full, row or column indexed;
/// the split with the longest rows wins. `None` if no split fits every operand.
pub fn canonicalize(out: &[usize], shapes: &[Vec<usize>]) -> Option<(usize, usize, Vec<Operand>)> {
    let r = out.len();
    let padded: Vec<Vec<usize>> = shapes
        .iter()
        .map(|s| {
            let off = r.checked_sub(s.len())?;
            let mut p = vec![1; off];
            p.extend_from_slice(s);
            // Each dim must equal the output's or broadcast from 1.
            p.iter()
                .zip(out)
                .all(|(&a, &o)| a == o || a == 1)
                .then_some(p)
        })
        .collect::<Option<_>>()?;
    'split: for k in 0..=r {
        let outer: usize = out[..k].iter().product();
        let inner: usize = out[k..].iter().product();
        let mut ops = Vec::with_capacity(padded.len());
        for p in &padded {
            let op = if p == out {
                Operand::Full
            } else if p[k..].iter().all(|&d| d == 1) {
                // Row: ones, then the output's dims up to the split.
                let j = (0..=k)
                    .rev()
                    .find(|&j| p[..j].iter().all(|&d| d == 1))
                    .unwrap_or(0);
                if p[j..k] != out[j..k] {
                    continue 'split;
                }
                Operand::Row {
                    period: out[j..k].iter().product(),
                }
            } else if p[..k].iter().all(|&d| d == 1) && p[k..] == out[k..] {
                Operand::Col
            } else {
                continue 'split;
            };
            ops.push(op);
        }
        return Some((outer, inner, ops));
    }
    None
}

/// Builds the chain rooted at `root` over `members` (topological order, the float result last).
fn build_group(
    g: &Graph,
    root: NodeId,
    members: &[NodeId],
    quant: Option<&QuantFuse>,
) -> Option<ChainGroup> {
    let last = *members.last()?;
    let out_shape = known_shape(g, ValueRef::first(last))?;
    let mut prog: Vec<FNode> = Vec::new();
    let mut at: HashMap<ValueRef, usize> = HashMap::new();
    let mut externals: Vec<ValueRef> = Vec::new();
    for &m in members {
        let (op, ins) = chain_op(g, m)?;
        let mut idx = Vec::with_capacity(ins.len());
        for v in ins {
            let k = match at.get(&v) {
                Some(&k) => k,
                None => {
                    let node = match scalar_const(g, v) {
                        Some(c) => FNode::Imm(c),
                        None => {
                            externals.push(v);
                            FNode::Input(externals.len() - 1)
                        }
                    };
                    prog.push(node);
                    at.insert(v, prog.len() - 1);
                    prog.len() - 1
                }
            };
            idx.push(k);
        }
        prog.push(match op {
            ChainOp::Unary(f) => FNode::Unary(f, idx[0]),
            ChainOp::Binary(f) => FNode::Binary(f, idx[0], idx[1]),
        });
        at.insert(ValueRef::first(m), prog.len() - 1);
    }
    let mut shapes: Vec<Vec<usize>> = externals
        .iter()
        .map(|&v| known_shape(g, v))
        .collect::<Option<_>>()?;
    let mut consts = vec![];
    let quant = match quant {
        None => None,
        Some(QuantFuse::Tensor(q)) => Some(*q),
        Some(QuantFuse::Channels {
            to,
            scales,
            zero_points,
            shape,
        }) => {
            shapes.extend([shape.clone(), shape.clone()]);
            consts = vec![scales.clone(), zero_points.clone()];
            Some(QuantOut {
                to: *to,
                params: QuantParams::Rows {
                    scale: externals.len(),
                    zero_point: externals.len() + 1,
                },
            })
        }
    };
    let (outer, inner, operands) = canonicalize(&out_shape, &shapes)?;
    let spec = ChainSpec {
        prog,
        operands,
        outer,
        inner,
        quant,
    };
    spec.check().ok()?;
    Some(ChainGroup {
        root,
        members: members.to_vec(),
        spec,
        externals,
        consts,
    })
}

/// Finds the chains of `g` (`order` its topological order): every f32 elementwise node not fed
/// by constants only becomes part of exactly one chain; a producer joins its consumer's chain
/// when it has one use, the consumer's shape, and is not a graph output; a
/// QuantizeLinear of a chain's result becomes the chain's root.
pub fn find_chains(g: &Graph, order: &[NodeId]) -> Chains {
    // Nodes computed from constants only (lowering evaluates them once).
    let mut const_like: HashSet<NodeId> = HashSet::new();
    for &n in order {
        let ins = g.node_inputs(n);
        let present: Vec<&ValueRef> = ins.iter().flatten().collect();
        let fed_by_consts = matches!(g.node(n).op, Op::Const(_))
            || (!present.is_empty() && present.iter().all(|v| const_like.contains(&v.node)));
        if fed_by_consts {
            const_like.insert(n);
        }
    }
    let outputs: HashSet<ValueRef> = g.outputs().iter().copied().collect();
    let single_use = |v: ValueRef| g.users(v).len() == 1 && !outputs.contains(&v);
    let fusible = |n: NodeId| !const_like.contains(&n) && chain_op(g, n).is_some();
    let pos: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let mut chains = Chains::default();
    for &n in order.iter().rev() {
        if chains.absorbed.contains(&n) || chains.roots.contains_key(&n) {
            continue;
        }
        // The float result node and an optional quantize root.
        let (top, quant) = match fusable_quant(g, n) {
            Some(q) => match g.node_input(n, 0) {
                Some(v)
                    if v.output == 0
                        && is_f32(g, v)
                        && fusible(v.node)
                        && single_use(v)
                        && !chains.absorbed.contains(&v.node)
                        && !chains.roots.contains_key(&v.node) =>
                {
                    (v.node, Some(q))
                }
                _ => continue,
            },
            None if fusible(n) => (n, None),
            None => continue,
        };
        let Some(numel) = known_shape(g, ValueRef::first(top)).map(|s| s.iter().product::<usize>())
        else {
            continue;
        };
        // Grow the tree from `top` through single-use producers of the same size.
        let mut members = vec![top];
        let mut k = 0;
        while k < members.len() {
            let m = members[k];
            k += 1;
            let Some((_, ins)) = chain_op(g, m) else {
                continue;
            };
            for v in ins {
                let p = v.node;
                let same = known_shape(g, v).map(|s| s.iter().product::<usize>()) == Some(numel);
                if v.output == 0
                    && same
                    && fusible(p)
                    && single_use(v)
                    && !members.contains(&p)
                    && !chains.absorbed.contains(&p)
                    && !chains.roots.contains_key(&p)
                {
                    members.push(p);
                }
            }
        }
        members.sort_by_key(|m| pos.get(m).copied().unwrap_or(0));
        let root = if quant.is_some() { n } else { top };
        let group = build_group(g, root, &members, quant.as_ref())
            .or_else(|| build_group(g, root, &[top], quant.as_ref()))
            .or_else(|| {
                // Without its quantize epilogue the float node may still run alone.
                quant
                    .as_ref()
                    .and_then(|_| build_group(g, top, &[top], None))
            });
        let Some(group) = group else { continue };
        for &m in &group.members {
            if m != group.root {
                chains.absorbed.insert(m);
            }
        }
        chains.roots.insert(group.root, group);
    }
    chains
}

/// A fused float chain step.
pub struct ChainPlan {
    spec: ChainSpec,
    func: FuncId,
    kernel: Option<ChainKernel>,
    out_shape: Vec<usize>,
    /// Constant operands passed after the step's inputs.
    consts: Vec<Vec<f32>>,
}

/// Defines the kernel of a chain found by [`find_chains`].
pub fn lower_chain(
    g: &Graph,
    group: &ChainGroup,
    module: &mut CodeModule,
) -> Result<ChainPlan, JitError> {
    let out_shape = known_shape(g, ValueRef::first(group.root)).ok_or_else(|| JitError::Lower {
        node: g.node(group.root).name.clone(),
        why: "output shape not known".into(),
    })?;
    let func = define_chain(module, &group.spec)?;
    Ok(ChainPlan {
        spec: group.spec.clone(),
        func,
        kernel: None,
        out_shape,
        consts: group.consts.clone(),
    })
}

fn bad(e: lpc_ir::TensorError) -> JitError {
    JitError::Input {
        name: "x".into(),
        why: e.to_string(),
    }
}

impl ChainPlan {
    /// Binds the compiled kernel (after the module is finalized).
    pub fn link(&mut self, m: &CodeModule) -> Result<(), JitError> {
        // SAFETY: `func` was defined by `define_chain` with `self.spec` on this module.
        self.kernel = Some(unsafe { ChainKernel::new(m, self.func, &self.spec)? });
        Ok(())
    }

    /// The kernel kind: `jit float (chain of N)`, `+ quantize` when fused.
    pub fn kind(&self) -> String {
        match self.spec.quant {
            None => format!("jit float (chain of {})", self.spec.ops()),
            Some(_) => format!("jit float (chain of {} + quantize)", self.spec.ops()),
        }
    }

    /// Runs the chain on its external operands (in order; the constant ones are added).
    pub fn run(&self, ins: &[&Tensor], pool: &mut BufferPool) -> Result<Tensor, JitError> {
        let k = self
            .kernel
            .as_ref()
            .ok_or_else(|| JitError::Codegen("float chain kernel not linked".into()))?;
        let mut xs: Vec<&[f32]> = ins
            .iter()
            .map(|t| t.as_f32().map_err(bad))
            .collect::<Result<_, _>>()?;
        xs.extend(self.consts.iter().map(Vec::as_slice));
        let n: usize = self.out_shape.iter().product();
        match self.spec.out_dtype() {
            DType::U8 => {
                let mut y = pool.take_u8(n);
                k.run_raw(&xs, &mut y)?;
                Tensor::from_u8(&self.out_shape, y).map_err(bad)
            }
            DType::I8 => {
                let mut y = pool.take_i8(n);
                k.run_raw(&xs, bytes_mut(&mut y))?;
                Tensor::from_i8(&self.out_shape, y).map_err(bad)
            }
            _ => {
                let mut y = pool.take_f32(n);
                k.run_raw(&xs, bytes_mut(&mut y))?;
                Tensor::from_f32(&self.out_shape, y).map_err(bad)
            }
        }
    }
}

/// The bytes of a slice of plain numbers, mutably.
fn bytes_mut<T: crate::elementwise::Elem>(x: &mut [T]) -> &mut [u8] {
    // SAFETY: every `Elem` is a plain number type without padding or invalid bit patterns.
    unsafe { std::slice::from_raw_parts_mut(x.as_mut_ptr().cast(), std::mem::size_of_val(x)) }
}

/// A GlobalAveragePool step on f32.
pub struct GapPlan {
    spec: GapSpec,
    func: FuncId,
    kernel: Option<GapKernel>,
    out_shape: Vec<usize>,
}

/// Lowers a GlobalAveragePool of a known-shape f32 tensor of rank ≥ 3 with non-empty planes.
pub fn lower_gap(
    g: &Graph,
    n: NodeId,
    module: &mut CodeModule,
) -> Result<Option<GapPlan>, JitError> {
    let Some(x) = g.node_input(n, 0) else {
        return Ok(None);
    };
    let (Some(xs), Some(out_shape)) = (known_shape(g, x), known_shape(g, ValueRef::first(n)))
    else {
        return Ok(None);
    };
    if !is_f32(g, x) || xs.len() < 3 || g.node(n).outputs.len() != 1 {
        return Ok(None);
    }
    let spec = GapSpec {
        planes: xs[0] * xs[1],
        plane: xs[2..].iter().product(),
    };
    // Empty planes, or planes too long for the kernel's 32-bit load offsets, stay with lpc-ref.
    let too_long = spec.plane.saturating_mul(4 * GAP_LANES) > i32::MAX as usize;
    if spec.plane == 0 || too_long || out_shape.iter().product::<usize>() != spec.planes {
        return Ok(None);
    }
    let func = define_gap(module, &spec)?;
    Ok(Some(GapPlan {
        spec,
        func,
        kernel: None,
        out_shape,
    }))
}

impl GapPlan {
    /// Binds the compiled kernel (after the module is finalized).
    pub fn link(&mut self, m: &CodeModule) -> Result<(), JitError> {
        // SAFETY: `func` was defined by `define_gap` with `self.spec` on this module.
        self.kernel = Some(unsafe { GapKernel::new(m, self.func, &self.spec)? });
        Ok(())
    }

    /// Averages every plane of `x`.
    pub fn run(&self, x: &Tensor, pool: &mut BufferPool) -> Result<Tensor, JitError> {
        let k = self
            .kernel
            .as_ref()
            .ok_or_else(|| JitError::Codegen("global_average_pool kernel not linked".into()))?;
        let mut y = pool.take_f32(self.spec.planes);
        k.run_raw(x.as_f32().map_err(bad)?, &mut y)?;
        Tensor::from_f32(&self.out_shape, y).map_err(bad)
    }
}

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
    fn check(&self) -> Result<(), JitError> {
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

/// A finalized f32 MaxPool kernel. The [`CodeModule`] it came from must outlive it.
#[derive(Debug)]
pub struct MaxPoolF32Kernel {
    f: GapFn,
    spec: MaxPoolF32Spec,
}

impl MaxPoolF32Kernel {
    /// The kernel `id` of the finalized module `m`.
    ///
    /// # Safety
    /// `id` must come from [`define_max_pool_f32`] on `m` with a spec equal to `spec`.
    pub unsafe fn new(m: &CodeModule, id: FuncId, spec: &MaxPoolF32Spec) -> Result<Self, JitError> {
        spec.check()?;
        let p = m.address(id)?;
        // SAFETY: the caller guarantees the function has this signature.
        let f = unsafe { std::mem::transmute::<*const u8, GapFn>(p) };
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
        let threads = crate::par::threads();
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

/// An f32 MaxPool step.
pub struct MaxPoolF32Plan {
    spec: MaxPoolF32Spec,
    func: FuncId,
    kernel: Option<MaxPoolF32Kernel>,
    out_shape: Vec<usize>,
}

/// Lowers a 2-D f32 MaxPool with one output whose windows all lie inside the input.
pub fn lower_max_pool_f32(
    g: &Graph,
    n: NodeId,
    attrs: &lpc_ir::PoolAttrs,
    module: &mut CodeModule,
) -> Result<Option<MaxPoolF32Plan>, JitError> {
    let Some(x) = g.node_input(n, 0) else {
        return Ok(None);
    };
    let (Some(xs), Some(out_shape)) = (known_shape(g, x), known_shape(g, ValueRef::first(n)))
    else {
        return Ok(None);
    };
    if !is_f32(g, x) || xs.len() != 4 || g.node(n).outputs.len() != 1 {
        return Ok(None);
    }
    let Ok(geo) = lpc_ref::geom::geometry(
        &xs[2..],
        &attrs.kernel,
        &attrs.strides,
        &attrs.dilations,
        &attrs.pads,
        attrs.auto_pad,
        attrs.ceil_mode,
    ) else {
        return Ok(None);
    };
    if geo.pad_begin.iter().any(|&p| p != 0) || geo.dilations.iter().any(|&d| d != 1) {
        return Ok(None);
    }
    let spec = MaxPoolF32Spec {
        planes: xs[0] * xs[1],
        in_hw: [xs[2], xs[3]],
        out_hw: [geo.output[0], geo.output[1]],
        kernel: [geo.kernel[0], geo.kernel[1]],
        strides: [geo.strides[0], geo.strides[1]],
    };
    let want = [xs[0], xs[1], spec.out_hw[0], spec.out_hw[1]];
    if out_shape != want || spec.check().is_err() {
        return Ok(None);
    }
    let func = define_max_pool_f32(module, &spec)?;
    Ok(Some(MaxPoolF32Plan {
        spec,
        func,
        kernel: None,
        out_shape,
    }))
}

impl MaxPoolF32Plan {
    /// Binds the compiled kernel (after the module is finalized).
    pub fn link(&mut self, m: &CodeModule) -> Result<(), JitError> {
        // SAFETY: `func` was defined by `define_max_pool_f32` with `self.spec` on this module.
        self.kernel = Some(unsafe { MaxPoolF32Kernel::new(m, self.func, &self.spec)? });
        Ok(())
    }

    /// Pools `x`.
    pub fn run(&self, x: &Tensor, pool: &mut BufferPool) -> Result<Tensor, JitError> {
        let k = self
            .kernel
            .as_ref()
            .ok_or_else(|| JitError::Codegen("max_pool f32 kernel not linked".into()))?;
        let n: usize = self.out_shape.iter().product();
        let mut y = pool.take_f32(n);
        k.run_raw(x.as_f32().map_err(bad)?, &mut y)?;
        Tensor::from_f32(&self.out_shape, y).map_err(bad)
    }
}
