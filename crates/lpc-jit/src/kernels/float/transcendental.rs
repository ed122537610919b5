//! `eˣ`, sigmoid and tanh on four f32 lanes in Cranelift IR, for the float chain kernel.
//!
//! lpc-ref computes these with libm (`f32::exp`, `1 / (1 + (−x).exp())`, `f32::tanh`), which
//! the kernel cannot call per lane; it uses Cephes' single-precision polynomials instead
//! (`expf.c`, `tanhf.c`), with no fused multiply-add. The results are within a few ulp of
//! lpc-ref's (the float tests measure the bound), and the edges are lpc-ref's exactly:
//!
//! - `eˣ`: `x` is clamped to `[−104, 89]` (NaN passes), so `+inf` and every `x` above
//!   `ln(f32::MAX) ≈ 88.72` overflow to `+inf`, `−inf` and every `x` below `≈ −103.97` give
//!   `+0`, and subnormal results are rounded once. NaN stays NaN.
//! - sigmoid: lpc-ref's formula `1 / (1 + e⁻ˣ)` on the kernel's `eˣ`. It is accurate for both
//!   signs (for `x ≪ 0` the sum is `e⁻ˣ` itself, so no cancellation), and gives lpc-ref's
//!   results at the edges: `1` for `x ≥ 17` and `+inf`, `+0` where `e⁻ˣ` overflows
//!   (`x < −88.72`, and `−inf`), NaN for NaN.
//! - tanh: `tanh |x|` with the sign of `x` copied back (so `tanh(−0) = −0`): an odd polynomial
//!   for `|x| < 0.625`, `1 − 2 / (e²ˣ + 1)` above (`1` once `e²ˣ` is large or `+inf`). NaN stays
//!   NaN.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::types::{F32X4, I32, I32X4};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;

use super::chain::{mask, sel, splat_f32};

/// Cephes' `expf` polynomial for `eʳ − 1 − r` over `r²`, highest degree first (its decimals
/// written as the f32 they round to: the last, 0.5000000120, is 0.5).
const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_6e-1,
    0.5,
];

/// Cephes' `tanhf` polynomial for `(tanh x − x) / x³` in `x²`, highest degree first.
const TANH_POLY: [f32; 5] = [
    -5.704_988_7e-3,
    2.063_908_8e-2,
    -5.373_971_5e-2,
    1.333_144_2e-1,
    -3.333_328e-1,
];

/// Below this `|x|` tanh uses its polynomial (Cephes' bound).
const TANH_SMALL: f32 = 0.625;

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
    tanh_poly: [Value; 5],
    tanh_small: Value,
    two: Value,
    /// `−0.0`: the sign bit alone.
    sign: Value,
    /// The exponent bias 127 in every i32 lane.
    bias: Value,
}

impl ExpConsts {
    /// Emits the splats (before the loop).
    pub(super) fn new(b: &mut FunctionBuilder) -> ExpConsts {
        let bias = b.ins().iconst(I32, 127);
        ExpConsts {
            lo: splat_f32(b, -104.0),
            hi: splat_f32(b, 89.0),
            log2e: splat_f32(b, std::f32::consts::LOG2_E),
            ln2_hi: splat_f32(b, 0.693_359_4),
            ln2_lo: splat_f32(b, -2.121_944_4e-4),
            exp_poly: EXP_POLY.map(|c| splat_f32(b, c)),
            tanh_poly: TANH_POLY.map(|c| splat_f32(b, c)),
            tanh_small: splat_f32(b, TANH_SMALL),
            two: splat_f32(b, 2.0),
            sign: splat_f32(b, -0.0),
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
    // x < lo ? lo : x, then hi < t ? hi : t: NaN passes both.
    let lt = mask(b, FloatCC::LessThan, x, e.lo);
    let t = sel(b, lt, e.lo, x);
    let gt = mask(b, FloatCC::LessThan, e.hi, t);
    let t = sel(b, gt, e.hi, t);
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

/// `1 / (1 + e⁻ˣ)` on four lanes (lpc-ref's formula).
pub(super) fn emit_sigmoid(b: &mut FunctionBuilder, e: &ExpConsts, one: Value, x: Value) -> Value {
    let nx = b.ins().fneg(x);
    let en = emit_exp(b, e, one, nx);
    let d = b.ins().fadd(one, en);
    b.ins().fdiv(one, d)
}

/// `tanh x` on four lanes: `tanh |x|` by the polynomial or `1 − 2 / (e²ˣ + 1)`, then the sign
/// bit of `x`.
pub(super) fn emit_tanh(b: &mut FunctionBuilder, e: &ExpConsts, one: Value, x: Value) -> Value {
    let a = b.ins().fabs(x);
    // Small: a + a³·P(a²).
    let a2 = b.ins().fmul(a, a);
    let p = horner(b, &e.tanh_poly, a2);
    let p = b.ins().fmul(p, a2);
    let p = b.ins().fmul(p, a);
    let small = b.ins().fadd(p, a);
    // Large: 1 − 2 / (e²ᵃ + 1); NaN stays NaN.
    let a2x = b.ins().fadd(a, a);
    let ea = emit_exp(b, e, one, a2x);
    let d = b.ins().fadd(ea, one);
    let q = b.ins().fdiv(e.two, d);
    let large = b.ins().fsub(one, q);
    let is_small = mask(b, FloatCC::LessThan, a, e.tanh_small);
    let r = sel(b, is_small, small, large);
    // The sign of x on the magnitude.
    sel(b, e.sign, x, r)
}
