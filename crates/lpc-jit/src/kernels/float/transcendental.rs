//! `eˣ`, sigmoid, tanh, erf and GELU on four f32 lanes in Cranelift IR, for the float chain
//! kernel: the operations of `lpc_ref::transcendental` (its module docs give the algorithms),
//! in the same order and from the same constants, so the kernel and lpc-ref agree bit for bit.
//! Tanh and erf use fused multiply-adds (`fma`, as lpc-ref's `mul_add`), so chains with these
//! are only formed on FMA hosts (`HostFeatures::fma`). Erf computes both of its branches in
//! every lane and selects, each lane's operations those of lpc-ref's branch for it.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::types::{F32X4, I32, I32X4};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;

use super::chain::{mask, sel, splat_f32};

use lpc_ref::transcendental::{
    ERF_BIG, ERF_CLAMP, ERF_SMALL, ERF_SPLIT, EXP_HI, EXP_LO, EXP_POLY, GELU_TANH_CUBIC,
    GELU_TANH_SCALE, LN2_HI, LN2_LO, TANH_CLAMP, TANH_P, TANH_Q,
};

/// The splatted constants of [`emit_exp`], [`emit_sigmoid`] and [`emit_tanh`], made once before
/// the chain's loop.
pub(super) struct ExpConsts {
    lo: Value,
    hi: Value,
    log2e: Value,
    /// `ln 2` in two parts: the high part, 0.693359375 (written as the f32 literal 0.6933594), has
    /// 9 significant bits, so `n · LN2_HI` is exact for
    /// every `|n| ≤ 150`.
    ln2_hi: Value,
    ln2_lo: Value,
    exp_poly: [Value; 6],
    tanh_lo: Value,
    tanh_hi: Value,
    tanh_p: [Value; 7],
    tanh_q: [Value; 4],
    erf_split: Value,
    erf_clamp: Value,
    erf_small: [Value; 6],
    erf_big: [Value; 7],
    half: Value,
    inv_sqrt2: Value,
    gelu_scale: Value,
    gelu_cubic: Value,
    /// `−0.0`: the sign bit alone.
    neg_zero: Value,
    one: Value,
    /// The exponent bias 127 in every i32 lane.
    bias: Value,
}

impl ExpConsts {
    /// Emits the splats (before the loop).
    pub(super) fn new(b: &mut FunctionBuilder) -> ExpConsts {
        let bias = b.ins().iconst(I32, 127);
        ExpConsts {
            lo: splat_f32(b, EXP_LO),
            hi: splat_f32(b, EXP_HI),
            log2e: splat_f32(b, std::f32::consts::LOG2_E),
            ln2_hi: splat_f32(b, LN2_HI),
            ln2_lo: splat_f32(b, LN2_LO),
            exp_poly: EXP_POLY.map(|c| splat_f32(b, c)),
            tanh_lo: splat_f32(b, -TANH_CLAMP),
            tanh_hi: splat_f32(b, TANH_CLAMP),
            tanh_p: TANH_P.map(|c| splat_f32(b, c)),
            tanh_q: TANH_Q.map(|c| splat_f32(b, c)),
            erf_split: splat_f32(b, ERF_SPLIT),
            erf_clamp: splat_f32(b, ERF_CLAMP),
            erf_small: ERF_SMALL.map(|c| splat_f32(b, c)),
            erf_big: ERF_BIG.map(|c| splat_f32(b, c)),
            half: splat_f32(b, 0.5),
            inv_sqrt2: splat_f32(b, std::f32::consts::FRAC_1_SQRT_2),
            gelu_scale: splat_f32(b, GELU_TANH_SCALE),
            gelu_cubic: splat_f32(b, GELU_TANH_CUBIC),
            neg_zero: splat_f32(b, -0.0),
            one: splat_f32(b, 1.0),
            bias: b.ins().splat(I32X4, bias),
        }
    }
}

/// `((c₀·t + c₁)·t + …)·t + cₙ` (Horner, no fused multiply-add).
fn horner(b: &mut FunctionBuilder, coeffs: &[Value], t: Value) -> Value {
    let mut acc = coeffs[0];
    for &c in &coeffs[1..] {
        let m = b.ins().fmul(acc, t);
        acc = b.ins().fadd(m, c);
    }
    acc
}

/// `2ⁿ` for integer lanes `n` in `[−75, 64]` (normal floats), built in the exponent bits.
fn pow2(b: &mut FunctionBuilder, e: &ExpConsts, n: Value) -> Value {
    let biased = b.ins().iadd(n, e.bias);
    let bits = b.ins().ishl_imm_u(biased, 23);
    b.ins().bitcast(F32X4, MemFlagsData::new(), bits)
}

/// `eˣ` on four lanes: `x = n·ln 2 + r` with `n = round(x·log₂e)`, `eʳ` by the polynomial, then
/// scaled by `2ⁿ` in two steps (`2^⌊n/2⌋ · 2^(n − ⌊n/2⌋)`, each a normal float) so results down
/// to the subnormals round once.
pub(super) fn emit_exp(b: &mut FunctionBuilder, e: &ExpConsts, one: Value, x: Value) -> Value {
    let t = clamp_nan_passing(b, x, e.lo, e.hi);
    let scaled = b.ins().fmul(t, e.log2e);
    let nf = b.ins().nearest(scaled);
    let hi = b.ins().fmul(nf, e.ln2_hi);
    let r = b.ins().fsub(t, hi);
    let lo = b.ins().fmul(nf, e.ln2_lo);
    let r = b.ins().fsub(r, lo);
    // eʳ ≈ 1 + r + r²·P(r).
    let p = horner(b, &e.exp_poly, r);
    let r2 = b.ins().fmul(r, r);
    let p = b.ins().fmul(p, r2);
    let p = b.ins().fadd(p, r);
    let er = b.ins().fadd(p, one);
    // A NaN lane converts to 0 (2⁰ = 1), so the NaN of `er` comes out.
    let n = b.ins().fcvt_to_sint_sat(I32X4, nf);
    let n1 = b.ins().sshr_imm_u(n, 1);
    let n2 = b.ins().isub(n, n1);
    let s1 = pow2(b, e, n1);
    let s2 = pow2(b, e, n2);
    let y = b.ins().fmul(er, s1);
    b.ins().fmul(y, s2)
}

/// `x < lo ? lo : x`, then `hi < t ? hi : t`: NaN passes both.
fn clamp_nan_passing(b: &mut FunctionBuilder, x: Value, lo: Value, hi: Value) -> Value {
    let lt = mask(b, FloatCC::LessThan, x, lo);
    let t = sel(b, lt, lo, x);
    let gt = mask(b, FloatCC::LessThan, hi, t);
    sel(b, gt, hi, t)
}

/// `x · P(x²) / Q(x²)`, each Horner step a fused multiply-add.
fn rational(b: &mut FunctionBuilder, x: Value, p: &[Value], q: &[Value]) -> Value {
    let x2 = b.ins().fmul(x, x);
    let mut num = b.ins().fma(x2, p[0], p[1]);
    for &c in &p[2..] {
        num = b.ins().fma(num, x2, c);
    }
    let num = b.ins().fmul(num, x);
    let mut den = b.ins().fma(x2, q[0], q[1]);
    for &c in &q[2..] {
        den = b.ins().fma(den, x2, c);
    }
    b.ins().fdiv(num, den)
}

/// `1 / (1 + e⁻ˣ)` on four lanes.
pub(super) fn emit_sigmoid(b: &mut FunctionBuilder, e: &ExpConsts, x: Value) -> Value {
    let nx = b.ins().fneg(x);
    let en = emit_exp(b, e, e.one, nx);
    let d = b.ins().fadd(e.one, en);
    b.ins().fdiv(e.one, d)
}

/// Tanh on four lanes: `p/q` on the clamped input.
pub(super) fn emit_tanh(b: &mut FunctionBuilder, e: &ExpConsts, x: Value) -> Value {
    let v = clamp_nan_passing(b, x, e.tanh_lo, e.tanh_hi);
    rational(b, v, &e.tanh_p, &e.tanh_q)
}

/// `c₀·t + c₁`, then `acc·t + cₖ` for the rest, each step a fused multiply-add.
fn horner_fma(b: &mut FunctionBuilder, coeffs: &[Value], t: Value) -> Value {
    let mut acc = coeffs[0];
    for &c in &coeffs[1..] {
        acc = b.ins().fma(acc, t, c);
    }
    acc
}

/// `erf x` on four lanes: both branches, then the one lpc-ref takes for each lane.
pub(super) fn emit_erf(b: &mut FunctionBuilder, e: &ExpConsts, x: Value) -> Value {
    let a = b.ins().fabs(x);
    // |x| > split: 1 − e^(−(t + t·B(t))) with t = min(|x|, clamp), the sign of x.
    let over = mask(b, FloatCC::LessThan, e.erf_clamp, a);
    let t = sel(b, over, e.erf_clamp, a);
    let r = horner_fma(b, &e.erf_big, t);
    let r = b.ins().fma(r, t, t);
    let nr = b.ins().fneg(r);
    let en = emit_exp(b, e, e.one, nr);
    let big = b.ins().fsub(e.one, en);
    // copysign(big, x): `big` is positive (the exponential is below 1 there), so the sign bit of
    // x or'ed in (x64 has no vector fcopysign in Cranelift).
    let sign = b.ins().band(x, e.neg_zero);
    let big = b.ins().bor(big, sign);
    // Otherwise x + x·P(x²).
    let s = b.ins().fmul(x, x);
    let r = horner_fma(b, &e.erf_small, s);
    let small = b.ins().fma(r, x, x);
    let split = mask(b, FloatCC::GreaterThan, a, e.erf_split);
    sel(b, split, big, small)
}

/// GELU, `(0.5·x)·(1 + erf(x·(1/√2)))`, on four lanes.
pub(super) fn emit_gelu(b: &mut FunctionBuilder, e: &ExpConsts, x: Value) -> Value {
    let t = b.ins().fmul(x, e.inv_sqrt2);
    let er = emit_erf(b, e, t);
    let u = b.ins().fadd(e.one, er);
    let h = b.ins().fmul(e.half, x);
    b.ins().fmul(h, u)
}

/// The tanh form of GELU, `(0.5·x)·(1 + tanh(√(2/π)·(x + 0.044715·((x·x)·x))))`.
pub(super) fn emit_gelu_tanh(b: &mut FunctionBuilder, e: &ExpConsts, x: Value) -> Value {
    let x2 = b.ins().fmul(x, x);
    let x3 = b.ins().fmul(x2, x);
    let c = b.ins().fmul(e.gelu_cubic, x3);
    let inner = b.ins().fadd(x, c);
    let inner = b.ins().fmul(e.gelu_scale, inner);
    let th = emit_tanh(b, e, inner);
    let u = b.ins().fadd(e.one, th);
    let h = b.ins().fmul(e.half, x);
    b.ins().fmul(h, u)
}
