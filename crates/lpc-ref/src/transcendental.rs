//! `eˣ`, sigmoid, tanh, erf and GELU on f32: lpc's definition of them, one implementation shared by
//! lpc-ref (these scalar functions) and the JIT's vector kernels
//! (`lpc-jit/src/kernels/float/transcendental.rs` emits the same operations in the same order
//! from the same constants), so JIT and reference agree bit for bit.
//!
//! - `eˣ`: Cephes' single-precision algorithm (`expf.c`), no fused multiply-add: `x` clamped to
//!   `[−104, 89]` (NaN passes), `x = n·ln 2 + r` with `n = round_ties_even(x·log₂e)` and `ln 2`
//!   in two parts, `eʳ = 1 + r + r²·P(r)`, then scaled by `2ⁿ` in two normal-float steps so
//!   results down to the subnormals round once. Within 1 ulp of the correctly rounded `eˣ`;
//!   `+inf` above `≈ 88.72`, `+0` below `≈ −103.97`.
//! - sigmoid: `1 / (1 + e⁻ˣ)` on that `eˣ`: accurate in relative terms for both signs (for
//!   `x ≪ 0` the sum is `e⁻ˣ` itself). ONNX Runtime's MLAS computes `p(x)/q(x) + ½` instead,
//!   whose absolute error (≈10⁻⁷, the ulp of ½) is a large relative one for outputs below
//!   10⁻³ — detection heads end in such maps — so lpc does not take it; the two agree within
//!   2·10⁻⁷ absolute.
//! - tanh: the rational approximation ONNX Runtime's MLAS uses (Eigen's coefficients): `x`
//!   clamped to `[−9, 9]` (NaN passes), odd `p(x)` over even `q(x)` in `x²`, each Horner step a
//!   fused multiply-add. On an x86 host with FMA this is ONNX Runtime's Tanh bit for bit;
//!   absolute error below 4·10⁻⁷, and relatively accurate near 0 (no cancellation).
//! - erf: the published faithfully-rounded `erff` approximation (N. Juffa's, which ONNX
//!   Runtime's MLAS uses too): for `|x| ≤ 0.921875` an odd polynomial `x + x·P(x²)`, above it
//!   `1 − e^(−(t + t·B(t)))` with `t = min(|x|, 3.925)` (erf is 1 in f32 past it) and the sign
//!   of `x`; every Horner step a fused multiply-add, the `eˣ` above. Within 2·10⁻⁷ absolute of
//!   erf. (lpc-ref had evaluated erf in f64 from a Chebyshev fit, ~30 ns an element.)
//! - GELU: `(0.5·x)·(1 + erf(x·(1/√2)))`; the tanh form
//!   `(0.5·x)·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` with `x³ = (x·x)·x`.

/// Cephes' `expf` polynomial for `(eʳ − 1 − r) / r²`, highest degree first (the last,
/// 0.5000000120 in Cephes, is 0.5 as an f32).
pub const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_6e-1,
    0.5,
];
/// `eˣ`'s input clamp: below `LO` the result is `+0`, above `HI` `+inf`.
pub const EXP_LO: f32 = -104.0;
/// See [`EXP_LO`].
pub const EXP_HI: f32 = 89.0;
/// `ln 2`'s high part (9 significant bits, so `n · LN2_HI` is exact for `|n| ≤ 150`).
pub const LN2_HI: f32 = 0.693_359_4;
/// `ln 2 − LN2_HI`.
pub const LN2_LO: f32 = -2.121_944_4e-4;

/// Tanh's input clamp `[−TANH_CLAMP, TANH_CLAMP]`.
pub const TANH_CLAMP: f32 = 9.0;
/// Tanh's numerator `p(x) = x · P(x²)`, P highest degree first.
pub const TANH_P: [f32; 7] = [
    -2.7607684e-16,
    2.000188e-13,
    -8.604672e-11,
    5.1222973e-8,
    1.48572235e-5,
    6.3726195e-4,
    4.8935246e-3,
];
/// Tanh's denominator `Q(x²)`, highest degree first.
pub const TANH_Q: [f32; 4] = [1.1982584e-6, 1.1853471e-4, 2.2684347e-3, 4.893525e-3];

/// Erf's branch point: the small-argument polynomial up to it, the exponential form above.
pub const ERF_SPLIT: f32 = 0.921_875;
/// Erf's input clamp in the exponential form: `erf(3.925)` rounds to 1 in f32.
pub const ERF_CLAMP: f32 = 3.925;
/// Erf's small-argument polynomial `P(x²)` (`erf x = x + x·P(x²)`), highest degree first.
pub const ERF_SMALL: [f32; 6] = [
    -5.991_049_7e-4,
    4.993_396e-3,
    -2.676_673_4e-2,
    1.128_180_25e-1,
    -3.761_248_6e-1,
    1.283_791_5e-1,
];
/// Erf's large-argument polynomial `B(t)` (`erf t = 1 − e^(−(t + t·B(t)))`), highest first.
pub const ERF_BIG: [f32; 7] = [
    1.729_489_3e-5,
    -3.832_086_8e-4,
    3.883_934_3e-3,
    -2.425_456e-2,
    1.067_778_5e-1,
    6.348_467e-1,
    1.287_175_1e-1,
];
/// `√(2/π)`, the tanh-form GELU's scale.
pub const GELU_TANH_SCALE: f32 = 0.797_884_6;
/// The tanh-form GELU's cubic coefficient.
pub const GELU_TANH_CUBIC: f32 = 0.044_715;

/// `x < lo ? lo : x`, then `hi < t ? hi : t`: NaN passes both.
#[inline]
fn clamp_nan_passing(x: f32, lo: f32, hi: f32) -> f32 {
    let t = if x < lo { lo } else { x };
    if hi < t {
        hi
    } else {
        t
    }
}

/// `2ⁿ` for `n` in `[−75, 64]`, built in the exponent bits.
#[inline]
fn pow2(n: i32) -> f32 {
    f32::from_bits(((n + 127) as u32) << 23)
}

/// `eˣ` (see the module docs).
#[inline]
pub fn exp_f32(x: f32) -> f32 {
    let t = clamp_nan_passing(x, EXP_LO, EXP_HI);
    let nf = (t * std::f32::consts::LOG2_E).round_ties_even();
    let r = t - nf * LN2_HI;
    let r = r - nf * LN2_LO;
    let mut p = EXP_POLY[0];
    for &c in &EXP_POLY[1..] {
        p = p * r + c;
    }
    let er = p * (r * r) + r + 1.0;
    // A NaN converts to 0 (2⁰ = 1), so the NaN of `er` comes out.
    let nf = if nf.is_nan() { 0.0 } else { nf };
    // SAFETY: nf is an integer in [EXP_LO, EXP_HI]·log2(e) (t is clamped), well inside i32;
    // the unchecked form is what lets the compiler vectorise the conversion.
    let n = unsafe { nf.to_int_unchecked::<i32>() };
    let n1 = n >> 1;
    er * pow2(n1) * pow2(n - n1)
}

/// `x · P(x²) / Q(x²)` with fused multiply-add Horner steps.
fn rational(x: f32, p: &[f32], q: &[f32]) -> f32 {
    let x2 = x * x;
    let mut num = x2.mul_add(p[0], p[1]);
    for &c in &p[2..] {
        num = num.mul_add(x2, c);
    }
    let num = num * x;
    let mut den = x2.mul_add(q[0], q[1]);
    for &c in &q[2..] {
        den = den.mul_add(x2, c);
    }
    num / den
}

/// `1 / (1 + e⁻ˣ)` (see the module docs).
pub fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

/// `tanh x` (see the module docs).
pub fn tanh_f32(x: f32) -> f32 {
    let v = clamp_nan_passing(x, -TANH_CLAMP, TANH_CLAMP);
    rational(v, &TANH_P, &TANH_Q)
}

/// `erf x` (see the module docs).
pub fn erf_f32(x: f32) -> f32 {
    let a = x.abs();
    if a > ERF_SPLIT {
        let t = if ERF_CLAMP < a { ERF_CLAMP } else { a };
        let mut r = ERF_BIG[0];
        for &c in &ERF_BIG[1..] {
            r = r.mul_add(t, c);
        }
        let r = r.mul_add(t, t);
        (1.0 - exp_f32(-r)).copysign(x)
    } else {
        let s = x * x;
        let mut r = ERF_SMALL[0];
        for &c in &ERF_SMALL[1..] {
            r = r.mul_add(s, c);
        }
        r.mul_add(x, x)
    }
}

/// GELU, `(0.5·x)·(1 + erf(x·(1/√2)))` (see the module docs).
pub fn gelu_f32(x: f32) -> f32 {
    (0.5 * x) * (1.0 + erf_f32(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The tanh form of GELU (see the module docs).
pub fn gelu_tanh_f32(x: f32) -> f32 {
    let inner = GELU_TANH_SCALE * (x + GELU_TANH_CUBIC * ((x * x) * x));
    (0.5 * x) * (1.0 + tanh_f32(inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_to_libm_and_exact_at_the_edges() {
        let mut x = -120.0f32;
        while x < 120.0 {
            let (e, want) = (exp_f32(x), (x as f64).exp());
            if want < f32::MAX as f64 && want > 1e-37 {
                assert!(
                    ((e as f64 - want) / want).abs() < 1.5e-7,
                    "exp({x}) = {e}, {want}"
                );
            }
            let s = sigmoid_f32(x) as f64;
            assert!(
                (s - 1.0 / (1.0 + (-x as f64).exp())).abs() < 2e-7,
                "sigmoid({x}) = {s}"
            );
            let t = tanh_f32(x) as f64;
            assert!((t - (x as f64).tanh()).abs() < 4e-7, "tanh({x}) = {t}");
            x += 1.0 / 64.0;
        }
        // erf within 2e-7 absolute of the f64 reference (erfc-based where it is small).
        let mut x = -6.0f32;
        while x < 6.0 {
            let e = erf_f32(x) as f64;
            let want = erf_f64(x as f64);
            assert!((e - want).abs() < 2.5e-7, "erf({x}) = {e}, {want}");
            x += 1.0 / 256.0;
        }
        assert_eq!(erf_f32(0.0), 0.0);
        assert_eq!(erf_f32(10.0), 1.0);
        assert_eq!(erf_f32(-10.0), -1.0);
        assert_eq!(erf_f32(f32::INFINITY), 1.0);
        assert!(erf_f32(f32::NAN).is_nan() && gelu_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert!(exp_f32(f32::NAN).is_nan() && sigmoid_f32(f32::NAN).is_nan());
        assert!(tanh_f32(f32::NAN).is_nan());
        assert_eq!(tanh_f32(0.0), 0.0);
        assert_eq!(tanh_f32(f32::INFINITY), tanh_f32(TANH_CLAMP));
        assert_eq!(sigmoid_f32(0.0), 0.5);
        assert_eq!(sigmoid_f32(-1e30), 0.0);
        assert_eq!(sigmoid_f32(1e30), 1.0);
    }

    /// erf in f64 by its Maclaurin series below 2.5, the continued fraction of erfc above:
    /// far more accurate than the f32 functions tested.
    fn erf_f64(x: f64) -> f64 {
        let a = x.abs();
        let v = if a < 2.5 {
            let (mut term, mut sum, mut n) = (a, a, 0.0);
            while term.abs() > 1e-18 * sum.abs() {
                n += 1.0;
                term *= -a * a / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc a = e^(−a²)/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + ...))))
            let mut f = a;
            for k in (1..60).rev() {
                f = a + (k as f64 / 2.0) / f;
            }
            1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / f
        };
        v.copysign(x)
    }
}
