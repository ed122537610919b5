//! The fused f32 elementwise chain kernel (`ChainSpec` -> `define_chain` -> `ChainKernel`).
//!
//! A *chain* is a tree of f32 elementwise nodes (Add, Sub, Mul, Div, Max, Min, PRelu, Relu,
//! LeakyRelu, Clip with constant bounds, HardSigmoid, HardSwish, Neg, Abs, Sqrt, Reciprocal,
//! a NaN replacement `Where(IsNaN(x), c, x)`,
//! Ceil, Floor, Round, Identity, Pow by 2 or 3, Exp, Sigmoid, Tanh, Erf, GELU) whose inner values
//! each have one consumer and the root's shape.
//! It runs as one loop that reads its external operands once and writes one output. Operands are
//! indexed on an `outer × inner` split of the output: *full* (same shape), *row* (one value per
//! outer index modulo a period: scalars, per-channel `[1,C,1,1]`, per-(n,c) `[N,C,1,1]`) or
//! *column* (the same `inner` values for every outer index). One-element constants are compiled
//! in. Anything else stays with lpc-ref. Which nodes form a chain is decided in
//! `lower/float_chains.rs`.
//!
//! Arithmetic follows lpc-ref's f32 formulas operation for operation (true division, the same
//! NaN rules; fused multiply-adds only where lpc-ref has `mul_add`: the tanh of
//! `lpc_ref::transcendental`, emitted with its Exp and Sigmoid by
//! `kernels/float/transcendental.rs`), so results are
//! bit-identical except for the sign of a zero produced by Max/Min/Clip, which lpc-ref itself
//! leaves to Rust's `f32::max`/`min` (unspecified for `±0`; debug and release builds differ).

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::immediates::Ieee32;
use cranelift_codegen::ir::types::{F32, F32X4, I32, I32X4, I64, I8, I8X16};
use cranelift_codegen::ir::{
    InstBuilder, MemFlagsData, StackSlot, StackSlotData, StackSlotKind, Type, Value,
};
use cranelift_frontend::FunctionBuilder;
use cranelift_module::FuncId;
use lpc_ir::DType;
use rayon::prelude::*;

use super::transcendental::{
    emit_erf, emit_exp, emit_gelu, emit_gelu_tanh, emit_sigmoid, emit_tanh, ExpConsts,
};
use super::{SendPtr, PAR_MIN};
use crate::kernels::emit::{
    byte_range, dequantize_lanes, emit_copy, emit_loop, load_chunk, mem, narrow_bytes,
    quantize_lanes, spec_err, store_chunk, unique_name, widen_bytes, Chunk,
};
use crate::kernels::tier::{VecCode, VecTier};
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
    /// `eˣ` (`lpc_ref::transcendental::exp_f32`; +inf above ≈ 88.72, 0 below ≈ −103.97).
    Exp,
    /// `1 / (1 + e⁻ˣ)` (`lpc_ref::transcendental::sigmoid_f32`).
    Sigmoid,
    /// `tanh x` (`lpc_ref::transcendental::tanh_f32`).
    Tanh,
    /// `x·x` (Pow by a constant 2, as lpc-ref's `pow_f32`).
    Square,
    /// `(x·x)·x` (Pow by a constant 3).
    Cube,
    /// `erf x` (`lpc_ref::transcendental::erf_f32`).
    Erf,
    /// GELU, erf form (`lpc_ref::transcendental::gelu_f32`).
    Gelu,
    /// GELU, tanh form (`lpc_ref::transcendental::gelu_tanh_f32`).
    GeluTanh,
    /// `x is NaN ? c : x` (ONNX's `Where(IsNaN(x), c, x)`, after a masked Softmax).
    NanTo(f32),
}

impl FUnary {
    /// Whether the operation is one of `lpc_ref::transcendental`'s (needs the prelude's
    /// `ExpConsts`, and FMA).
    pub fn is_transcendental(self) -> bool {
        matches!(
            self,
            FUnary::Exp
                | FUnary::Sigmoid
                | FUnary::Tanh
                | FUnary::Erf
                | FUnary::Gelu
                | FUnary::GeluTanh
        )
    }
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

/// A DequantizeLinear fused into a chain's operand: the operand is u8/i8 in memory and enters
/// the program as `f32(x − zero_point) · scale`, exactly the dequantize kernel's lanes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dequant {
    /// u8 or i8.
    pub from: DType,
    /// The scale.
    pub scale: f32,
    /// The zero point.
    pub zero_point: i32,
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
    /// One per operand: `Some` when it is u8/i8 dequantized on load (full or column operands
    /// only), `None` for f32.
    pub dequant: Vec<Option<Dequant>>,
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

    /// Bytes per element of operand `k` in memory.
    pub(crate) fn operand_size(&self, k: usize) -> usize {
        match self.dequant.get(k) {
            Some(Some(_)) => 1,
            _ => 4,
        }
    }

    pub(crate) fn check(&self) -> Result<(), JitError> {
        let bad = |why: String| Err(spec_err("float chain", why));
        if self.prog.is_empty() {
            return bad("empty program".into());
        }
        if self.dequant.len() != self.operands.len() {
            return bad(format!(
                "{} dequantize entries for {} operands",
                self.dequant.len(),
                self.operands.len()
            ));
        }
        for (k, (d, op)) in self.dequant.iter().zip(&self.operands).enumerate() {
            if let Some(d) = d {
                if byte_range(d.from).is_none() || matches!(op, Operand::Row { .. }) {
                    return bad(format!(
                        "operand {k}: only full or column u8/i8 operands dequantize, not {op:?} {}",
                        d.from
                    ));
                }
            }
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
pub(super) fn mask(b: &mut FunctionBuilder, cc: FloatCC, x: Value, y: Value) -> Value {
    let m = b.ins().fcmp(cc, x, y);
    b.ins().bitcast(F32X4, MemFlagsData::new(), m)
}

/// `c ? x : y` lane by lane.
pub(super) fn sel(b: &mut FunctionBuilder, c: Value, x: Value, y: Value) -> Value {
    b.ins().bitselect(c, x, y)
}

/// A constant in all four lanes.
pub(super) fn splat_f32(b: &mut FunctionBuilder, v: f32) -> Value {
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
    /// The constants of `eˣ`, made when the program has Exp, Sigmoid or Tanh.
    exp: Option<ExpConsts>,
}

/// The splatted constant parameters of a unary operation (bounds, slopes), made once before
/// the loop and passed to [`emit_unary`] in this order.
fn unary_params(b: &mut FunctionBuilder, op: FUnary) -> Vec<Value> {
    match op {
        FUnary::LeakyRelu(alpha) => vec![splat_f32(b, alpha)],
        FUnary::HardSigmoid(alpha, beta) => vec![splat_f32(b, alpha), splat_f32(b, beta)],
        FUnary::Clip(lo, hi) => vec![splat_f32(b, lo), splat_f32(b, hi)],
        FUnary::NanTo(c) => vec![splat_f32(b, c)],
        FUnary::Neg
        | FUnary::Abs
        | FUnary::Relu
        | FUnary::Sqrt
        | FUnary::Reciprocal
        | FUnary::Ceil
        | FUnary::Floor
        | FUnary::Round
        | FUnary::Identity
        | FUnary::HardSwish
        | FUnary::Square
        | FUnary::Cube
        | FUnary::Exp
        | FUnary::Sigmoid
        | FUnary::Tanh
        | FUnary::Erf
        | FUnary::Gelu
        | FUnary::GeluTanh => vec![],
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
        // x < 0 ? 0 : x, as lpc-ref: NaN and −0 pass unchanged.
        FUnary::Relu => {
            let lt = mask(b, FloatCC::LessThan, x, k.zero);
            sel(b, lt, k.zero, x)
        }
        FUnary::Sqrt => b.ins().sqrt(x),
        FUnary::Reciprocal => b.ins().fdiv(k.one, x),
        FUnary::Ceil => b.ins().ceil(x),
        FUnary::Floor => b.ins().floor(x),
        FUnary::Round => b.ins().nearest(x),
        FUnary::Identity => x,
        FUnary::Square => b.ins().fmul(x, x),
        FUnary::Cube => {
            let x2 = b.ins().fmul(x, x);
            b.ins().fmul(x2, x)
        }
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
        FUnary::NanTo(_) => {
            let nan = mask(b, FloatCC::Unordered, x, x);
            sel(b, nan, p[0], x)
        }
        FUnary::Clip(..) => {
            // lo > e ? lo : e, then hi < t ? hi : t: a NaN e passes both unchanged (the same
            // NaN, as lpc-ref keeps e), a NaN bound compares false and keeps e.
            let t = max_keep_y_on_nan(b, p[0], x);
            min_keep_y_on_nan(b, p[1], t)
        }
        FUnary::Exp
        | FUnary::Sigmoid
        | FUnary::Tanh
        | FUnary::Erf
        | FUnary::Gelu
        | FUnary::GeluTanh => {
            let e = k
                .exp
                .as_ref()
                .expect("the prelude makes the exp constants for a transcendental program");
            match op {
                FUnary::Exp => emit_exp(b, e, k.one, x),
                FUnary::Sigmoid => emit_sigmoid(b, e, x),
                FUnary::Tanh => emit_tanh(b, e, x),
                FUnary::Erf => emit_erf(b, e, x),
                FUnary::Gelu => emit_gelu(b, e, x),
                _ => emit_gelu_tanh(b, e, x),
            }
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
type ChainFn = unsafe extern "C" fn(*const *const u8, *mut u8, i64, i64, i64, i64);

/// Defines a chain kernel on the best tier `tier` allows; returns it and the tier it got.
pub fn define_chain(
    m: &mut CodeModule,
    spec: &ChainSpec,
    tier: VecTier,
) -> Result<(FuncId, VecCode), JitError> {
    spec.check()?;
    let p = m.ptr();
    let params = [p, p, I64, I64, I64, I64];
    if tier.use_zmm(m, "float chain")? {
        if let Some(code) = super::chain_zmm::emit(spec)? {
            let id = m.define_bytes(&unique_name("float_chain_zmm"), &params, &code)?;
            return Ok((id, VecCode::Zmm));
        }
    }
    let spec = spec.clone();
    let out_d = spec.out_dtype();
    let osize = crate::kernels::emit::elem_size(out_d) as i64;
    let id = m.define(&unique_name("float_chain"), &params, |b, args| {
        let (table, out, o0, o1, i0, i1) = (args[0], args[1], args[2], args[3], args[4], args[5]);
        let c = ChainCode::prelude(b, &spec, p, osize, table);
        emit_loop(b, o0, o1, 1, |b, o| c.emit_row(b, out, o, i0, i1));
        b.ins().return_(&[]);
    })?;
    Ok((id, VecCode::Xmm))
}

/// What a chain kernel computes before its loops (operand pointers, splatted constants and
/// parameters, stack buffers for row tails) and the spec it emits code for.
struct ChainCode<'s> {
    spec: &'s ChainSpec,
    /// The pointer type.
    p: Type,
    /// Bytes per output element.
    osize: i64,
    /// Operand `k`'s base pointer, read from the table.
    ptrs: Vec<Value>,
    k: Consts,
    /// Per program instruction: its unary parameters (see [`unary_params`]).
    params: Vec<Vec<Value>>,
    /// Per program instruction: the splat of an immediate.
    imms: Vec<Option<Value>>,
    /// The fused quantize: scale/zero point, the splatted bounds, and whether it is unsigned.
    q: Option<(QArgs, Value, Value, bool)>,
    /// One 64-byte stack buffer per operand, and one for the output.
    slots: Vec<StackSlot>,
    /// Per operand: the splatted zero point (i32) and scale of a dequantized one.
    dq: Vec<Option<(Value, Value, bool)>>,
}

impl<'s> ChainCode<'s> {
    /// Emits the code before the loops: loads of the operand pointers from `table`, then the
    /// splats, in the order the kernel has always made them.
    fn prelude(
        b: &mut FunctionBuilder,
        spec: &'s ChainSpec,
        p: Type,
        osize: i64,
        table: Value,
    ) -> ChainCode<'s> {
        let ptrs: Vec<Value> = (0..spec.operands.len())
            .map(|k| b.ins().load(p, mem(), table, 8 * k as i32))
            .collect();
        let k = Consts {
            zero: splat_f32(b, 0.0),
            one: splat_f32(b, 1.0),
            sixth: splat_f32(b, 1.0 / 6.0),
            half: splat_f32(b, 0.5),
            nan: splat_f32(b, f32::NAN),
            exp: spec
                .prog
                .iter()
                .any(|n| matches!(n, FNode::Unary(f, _) if f.is_transcendental()))
                .then(|| ExpConsts::new(b)),
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
        let dq = spec
            .dequant
            .iter()
            .map(|d| {
                d.map(|d| {
                    let zp = b.ins().iconst(I32, d.zero_point as i64);
                    let zp = b.ins().splat(I32X4, zp);
                    (zp, splat_f32(b, d.scale), d.from == DType::I8)
                })
            })
            .collect();
        let nops = spec.operands.len();
        let slots: Vec<_> = (0..=nops)
            .map(|_| {
                b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 64, 4))
            })
            .collect();
        ChainCode {
            spec,
            p,
            osize,
            ptrs,
            k,
            params,
            imms,
            q,
            slots,
            dq,
        }
    }

    /// Evaluates the program on 16 elements: `vals[k]` are operand k's four vectors.
    fn eval(&self, b: &mut FunctionBuilder, vals: &[[Value; 4]]) -> Chunk {
        let k = &self.k;
        let mut res = [k.zero; 4];
        for (lane, r) in res.iter_mut().enumerate() {
            let mut v: Vec<Value> = Vec::with_capacity(self.spec.prog.len());
            for (j, n) in self.spec.prog.iter().enumerate() {
                let x = match *n {
                    FNode::Input(op) => vals[op][lane],
                    FNode::Imm(_) => self.imms[j].unwrap_or(k.zero),
                    FNode::Unary(f, a) => emit_unary(b, k, f, &self.params[j], v[a]),
                    FNode::Binary(f, a, c) => emit_binary(b, k, f, v[a], v[c]),
                };
                v.push(x);
            }
            *r = v[v.len() - 1];
        }
        match self.q {
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
    }

    /// Per row `o`: the base of every full or column operand and the splat of every row
    /// operand; and the row's first element index.
    fn row_operands(&self, b: &mut FunctionBuilder, o: Value) -> RowOperands {
        let nops = self.spec.operands.len();
        let row_elem = b.ins().imul_imm_s(o, self.spec.inner as i64);
        let mut bases: Vec<Option<Value>> = Vec::with_capacity(nops);
        let mut rowv: Vec<Option<Value>> = Vec::with_capacity(nops);
        for (kk, op) in self.spec.operands.iter().enumerate() {
            match *op {
                Operand::Full => {
                    let size = self.spec.operand_size(kk) as i64;
                    let row_off = b.ins().imul_imm_s(row_elem, size);
                    bases.push(Some(b.ins().iadd(self.ptrs[kk], row_off)));
                    rowv.push(None);
                }
                Operand::Col => {
                    bases.push(Some(self.ptrs[kk]));
                    rowv.push(None);
                }
                Operand::Row { period } => {
                    let idx = b.ins().urem_imm_u(o, period as i64);
                    let off = b.ins().imul_imm_s(idx, 4);
                    let a = b.ins().iadd(self.ptrs[kk], off);
                    let s = b.ins().load(F32, mem(), a, 0);
                    bases.push(None);
                    rowv.push(Some(b.ins().splat(F32X4, s)));
                }
            }
        }
        RowOperands {
            row_elem,
            bases,
            rowv,
        }
    }

    /// Every operand's four vectors at element `i` of the row (or from its stack buffer).
    fn gather(
        &self,
        b: &mut FunctionBuilder,
        row: &RowOperands,
        i: Value,
        from_slot: bool,
    ) -> Vec<[Value; 4]> {
        (0..self.spec.operands.len())
            .map(|kk| match (row.bases[kk], row.rowv[kk]) {
                (_, Some(v)) => [v; 4],
                (Some(base), None) => {
                    let a = if from_slot {
                        b.ins().stack_addr(self.p, self.slots[kk], 0)
                    } else {
                        let off = b.ins().imul_imm_s(i, self.spec.operand_size(kk) as i64);
                        b.ins().iadd(base, off)
                    };
                    match self.dq[kk] {
                        Some((zp, s, signed)) => match load_chunk(b, DType::U8, a) {
                            Chunk::Bytes(v) => {
                                widen_bytes(b, signed, v).map(|x| dequantize_lanes(b, x, zp, s))
                            }
                            Chunk::Words(w) => w,
                        },
                        None => match load_chunk(b, DType::F32, a) {
                            Chunk::Words(w) => w,
                            Chunk::Bytes(v) => [v; 4],
                        },
                    }
                }
                (None, None) => [self.k.zero; 4],
            })
            .collect()
    }

    /// Row `o`, elements `i0..i1`: 16 at a time, then the last `rem` (< 16) through the stack
    /// buffers.
    fn emit_row(&self, b: &mut FunctionBuilder, out: Value, o: Value, i0: Value, i1: Value) {
        let osize = self.osize;
        let row = self.row_operands(b, o);
        let out_off = b.ins().imul_imm_s(row.row_elem, osize);
        let out_row = b.ins().iadd(out, out_off);
        let len = b.ins().isub(i1, i0);
        let full_len = b.ins().band_imm_s(len, !15i64);
        let full_end = b.ins().iadd(i0, full_len);
        emit_loop(b, i0, full_end, 16, |b, i| {
            let vals = self.gather(b, &row, i, false);
            let y = self.eval(b, &vals);
            let off = b.ins().imul_imm_s(i, osize);
            let a = b.ins().iadd(out_row, off);
            store_chunk(b, a, y);
        });
        self.emit_tail(b, &row, out_row, full_end, i1);
    }

    /// The row's last `rem = i1 - full_end` (< 16) elements: copied into zeroed stack buffers,
    /// computed as one chunk, and `rem` outputs copied back.
    fn emit_tail(
        &self,
        b: &mut FunctionBuilder,
        row: &RowOperands,
        out_row: Value,
        full_end: Value,
        i1: Value,
    ) {
        let (p, osize, nops) = (self.p, self.osize, self.spec.operands.len());
        let rem = b.ins().isub(i1, full_end);
        let tail = b.create_block();
        let done = b.create_block();
        b.ins().brif(rem, tail, &[], done, &[]);
        b.switch_to_block(tail);
        for kk in 0..nops {
            if let (Some(base), None) = (row.bases[kk], row.rowv[kk]) {
                let size = self.spec.operand_size(kk) as i64;
                let nbytes = b.ins().imul_imm_s(rem, size);
                let s = b.ins().stack_addr(p, self.slots[kk], 0);
                let zv = b.ins().iconst(I8, 0);
                let zv = b.ins().splat(I8X16, zv);
                for j in 0..4 {
                    b.ins().store(mem(), zv, s, 16 * j);
                }
                let off = b.ins().imul_imm_s(full_end, size);
                let a = b.ins().iadd(base, off);
                emit_copy(b, s, a, nbytes);
            }
        }
        let vals = self.gather(b, row, full_end, true);
        let y = self.eval(b, &vals);
        let s = b.ins().stack_addr(p, self.slots[nops], 0);
        store_chunk(b, s, y);
        let off = b.ins().imul_imm_s(full_end, osize);
        let a = b.ins().iadd(out_row, off);
        let n = b.ins().imul_imm_s(rem, osize);
        emit_copy(b, a, s, n);
        b.ins().jump(done, &[]);
        b.switch_to_block(done);
    }
}

/// A row's operands in a chain kernel (see [`ChainCode::row_operands`]).
struct RowOperands {
    /// Index of the row's first element (`o·inner`).
    row_elem: Value,
    /// Full and column operands: their base for this row.
    bases: Vec<Option<Value>>,
    /// Row operands: the splat of their value for this row.
    rowv: Vec<Option<Value>>,
}

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
        // The caller guarantees `id` has this signature (see `CodeModule::func`).
        let f: ChainFn = m.func(id)?;
        Ok(ChainKernel {
            f,
            spec: spec.clone(),
        })
    }

    /// The spec the kernel was compiled from.
    pub fn spec(&self) -> &ChainSpec {
        &self.spec
    }

    /// Runs the chain on `ins` (the bytes of each operand: f32, or u8/i8 for a dequantized one,
    /// as many elements as its indexing needs) into `out` (`outer·inner` elements of the output
    /// dtype), splitting rows (or, with one row, the row) over the threads.
    pub fn run_raw(&self, ins: &[&[u8]], out: &mut [u8]) -> Result<(), JitError> {
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
            let want = op.len(s.inner, s.outer) * s.operand_size(k);
            if x.len() != want {
                return Err(JitError::Input {
                    name: format!("operand {k}"),
                    why: format!("has {} bytes, expected {want}", x.len()),
                });
            }
        }
        let n = s.outer * s.inner;
        let osize = crate::kernels::emit::elem_size(s.out_dtype());
        if out.len() != n * osize {
            return Err(JitError::Input {
                name: "out".into(),
                why: format!("has {} bytes, expected {}", out.len(), n * osize),
            });
        }
        if n == 0 {
            return Ok(());
        }
        let table: Vec<*const u8> = ins.iter().map(|x| x.as_ptr()).collect();
        let tp = SendPtr(table.as_ptr() as *mut u8);
        let op = SendPtr(out.as_mut_ptr());
        let call = |o0: usize, o1: usize, i0: usize, i1: usize| {
            let (tp, op) = (tp, op);
            // SAFETY: every operand holds the elements its indexing reads for rows o0..o1 and
            // columns i0..i1 (checked above), and `out` the outer·inner outputs; threads write
            // disjoint (row, column) ranges.
            unsafe {
                (self.f)(
                    tp.0 as *const *const u8,
                    op.0,
                    o0 as i64,
                    o1 as i64,
                    i0 as i64,
                    i1 as i64,
                )
            }
        };
        let threads = crate::runtime::par::threads();
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
