//! The fused INT8 GEMM kernel: `C[M×N] = epilogue(A[M×K] · B[K×N] + bias[M])`, JIT-compiled.
//!
//! # Orientation and layouts
//!
//! * **A** = i8 weights, one row per output channel (M rows, K columns), known when the kernel
//!   is compiled and packed once by [`pack_a`] into a [`PackedA`]: row-major, each row
//!   zero-padded to `round_up(K, 16)` bytes (the zero weights make any padded k contribute 0).
//! * **B** = u8 activations, packed at run time into column panels of NR columns, a property of
//!   the compiled kernel ([`GemmKernel::nr`], [`GemmTier::nr`]): [`NR`] = 8 for the 128-bit
//!   Cranelift tiers, [`NR_ZMM`] = 32 for the AVX-512 tier.
//!   Panel `p` holds columns `p*NR .. p*NR+NR`; inside it the k values are grouped by 4:
//!   `[N/NR panels][K4/4 groups][NR columns][4 k]` with `K4 = round_up(K, 4)`, so
//!   `B[k][n]` lives at byte `(n / NR) * panel_len(NR, K) + (k / 4) * NR * 4 + (n % NR) * 4 + k % 4`
//!   and one panel is [`panel_len`]`(NR, K) = K4 * NR` bytes. The last panel of a width that is not
//!   a multiple of NR is still full-size: its extra columns may hold anything (they are
//!   computed but never stored); padded k entries (`K <= k < K4`) may hold anything too (their
//!   weights are 0). [`pack_b`]/[`pack_b_i8`] pack a row-major matrix; a runtime's
//!   im2col may write panels directly with the formula above.
//! * **C** is row-major with a row stride `ldc` (elements): `C[m][n]` at `out[m * ldc + n]`,
//!   so a conv writes NCHW directly (m = channel, n = pixel).
//!
//! # Arithmetic (exact)
//!
//! `acc[m][n] = bias[m] + Σ_k A[m][k]·B[k][n]` in i32 with wrapping adds (products are exact:
//! `vpdpbusd` adds four u8·i8 products straight into i32; the non-VNNI path widens to i16 and
//! uses `pmaddwd`, never the saturating `pmaddubsw`). Zero points are the caller's: the true
//! activation is `B - zp`, and [`fold_zero_point`] returns `bias - zp·Σ_k A[m][k]`; i8
//! activations are shifted to u8 by [`pack_b_i8`] (`x + 128`), so their zero point is
//! `zp_i8 + 128`. Epilogues ([`Epilogue`]):
//!
//! * `Quant { zp, lo, hi, signed }`: `clamp(round_ties_even(f32(acc)·scale[m]) + zp, lo, hi)`
//!   stored as u8 (i8 when `signed`), bit-exact to `lpc_ref::nn::requantize`. The kernel clamps
//!   in f32 to `[lo-zp, hi-zp]` before the truncating conversion (exact, and `cvttps2dq` never
//!   overflows), then adds zp. Non-finite scales are replaced by the wrapper with values giving
//!   the same results (NaN → 0, ±inf → ±f32::MAX), since NaN would not survive `minps`/`maxps`.
//! * `F32`: `f32(acc)·scale[m]`, bit-exact to `acc as f32 * scale`.
//! * `I32`: the raw accumulator.
//!
//! # Code
//!
//! One function per [`GemmSpec`] (M, K and the epilogue are constants; N is an argument):
//! row blocks of [`MR_VNNI`] = 6 rows (then one tail block of `M % 6`) outer, panels inner, and a
//! 6×8 register tile (12 i32x4 accumulators, starting at the bias) over K, unrolled by 4
//! k-groups. Per k-group: two 16-byte panel loads, and per row a 16-byte weight load + `pshufd`
//! broadcast of the group's 4 weights and two `vpdpbusd`. The tree emitted is the one Cranelift
//! folds into `vpdpbusd` (`notes/cranelift-int8.md`). Without VNNI the tile is 4×8 and uses
//! `pmovzxbw`/`pmovsxbw` + `pmaddwd` + `phaddd`. The safe wrappers call the function once per
//! chunk of panels of at most ~256 KB (cache blocking), and [`GemmKernel::run_par`] splits row
//! blocks or panels over the rayon pool.
//!
//! **zmm tier** ([`Dot::Zmm`], chosen by [`Dot::Auto`] on AVX512F+BW+VNNI hosts): the same
//! function as hand-assembled x86-64 code (iced-x86, `gemm/zmm.rs`) defined in the same module
//! with `define_function_bytes`: a [`MR_ZMM`]×32 tile (24 zmm accumulators), per row one
//! `vpbroadcastd` of its 4 weights feeding two `vpdpbusd zmm`, the epilogues with embedded
//! rounding and `vpmovdb`, and opmask stores for the partial last panel.

mod codegen;

pub(crate) use codegen::vnni_dot;
mod zmm;

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use cranelift_codegen::ir::types::I64;
use cranelift_module::FuncId;

use crate::{CodeModule, JitError};
use codegen::{DotKind, Shape};
pub use zmm::{MR_ZMM, NR_ZMM};

/// Columns per B panel of the 128-bit (Cranelift) tiers (two 4-lane i32 accumulators per row).
pub const NR: usize = 8;
/// Rows per register tile of the VNNI kernel.
pub const MR_VNNI: usize = 6;
/// Rows per register tile of the exact i16 (non-VNNI) kernel.
pub const MR_I16: usize = 4;

/// Packed B bytes per kernel call inside one run (cache blocking).
const CHUNK_BYTES: usize = 256 * 1024;

/// Bytes of one packed B panel of `nr` columns for a depth of `k`: `round_up(k, 4) * nr`.
pub fn panel_len(nr: usize, k: usize) -> usize {
    k.div_ceil(4) * 4 * nr
}

/// Number of panels of `nr` columns for `n` columns: `ceil(n / nr)`.
pub fn panels(nr: usize, n: usize) -> usize {
    n.div_ceil(nr)
}

/// Bytes of the packed B for a `k × n` matrix: `panels(nr, n) * panel_len(nr, k)`.
pub fn packed_b_len(nr: usize, k: usize, n: usize) -> usize {
    panels(nr, n) * panel_len(nr, k)
}

/// What the kernel does with each accumulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epilogue {
    /// `clamp(round_ties_even(f32(acc) * scale[m]) + zp, lo, hi)` stored as u8, or i8 when
    /// `signed`. `lo <= hi` must lie in the output type's range.
    Quant {
        /// Output zero point (added after rounding); `|zp| <= 2^24`.
        zp: i32,
        /// Lowest output value (ReLU-style bounds fold here).
        lo: i32,
        /// Highest output value.
        hi: i32,
        /// i8 output (else u8).
        signed: bool,
    },
    /// `f32(acc) * scale[m]` stored as f32.
    F32,
    /// The raw i32 accumulator.
    I32,
}

/// Which dot-product instruction sequence to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dot {
    /// The zmm tier when the host has AVX512F+BW+VNNI, else 128-bit VNNI when it has VNNI, else
    /// the exact i16 path.
    Auto,
    /// The hand-assembled 512-bit `vpdpbusd zmm` tier (an error when the host lacks
    /// AVX512F+BW+VNNI or the calling convention is not System V).
    Zmm,
    /// 128-bit `vpdpbusd` emitted by Cranelift (an error when the host lacks VNNI).
    Vnni,
    /// The exact i16 `pmaddwd` path (any SSE4.1 host; slower).
    ExactI16,
}

/// The compile-time description of one GEMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmSpec {
    /// Rows of A and C (output channels).
    pub m: usize,
    /// Depth (input channels × kernel area for a conv).
    pub k: usize,
    /// What to store.
    pub epilogue: Epilogue,
    /// Instruction selection.
    pub dot: Dot,
}

impl GemmSpec {
    /// A spec with [`Dot::Auto`].
    pub fn new(m: usize, k: usize, epilogue: Epilogue) -> Self {
        GemmSpec {
            m,
            k,
            epilogue,
            dot: Dot::Auto,
        }
    }

    fn check(&self) -> Result<(), JitError> {
        let bad = |why: String| {
            Err(JitError::Lower {
                node: format!("gemm {}x{}", self.m, self.k),
                why,
            })
        };
        if self.m == 0 || self.k == 0 {
            return bad("M and K must be at least 1".into());
        }
        // Offsets of A rows inside a block must fit the 32-bit displacements.
        if self.k > (1 << 24) || self.m > (1 << 30) {
            return bad("M or K too large".into());
        }
        if let Epilogue::Quant { zp, lo, hi, signed } = self.epilogue {
            let (tlo, thi) = if signed { (-128, 127) } else { (0, 255) };
            if !(tlo <= lo && lo <= hi && hi <= thi) {
                return bad(format!(
                    "output bounds [{lo}, {hi}] not inside [{tlo}, {thi}] or empty"
                ));
            }
            if zp.unsigned_abs() > 1 << 24 {
                return bad(format!("output zero point {zp} out of range"));
            }
        }
        Ok(())
    }
}

/// What one GEMM call reads: packed weights A (M×K), B as panels of [`GemmKernel::nr`]
/// columns (at least `panels(nr, n)` of them), and M bias values and M scales (`scale` is unused
/// by the I32 epilogue and may be empty then).
#[derive(Debug, Clone, Copy)]
pub struct GemmInputs<'a> {
    /// The packed weights.
    pub a: &'a PackedA,
    /// B, packed by [`pack_b`] or [`pack_b_i8`].
    pub b_panels: &'a [u8],
    /// Columns of B and C.
    pub n: usize,
    /// One i32 bias per row.
    pub bias: &'a [i32],
    /// One requantization scale per row.
    pub scale: &'a [f32],
}

/// Weights packed for the kernel (see the module doc), with their row sums.
#[derive(Debug, Clone)]
pub struct PackedA {
    m: usize,
    k: usize,
    ka: usize,
    data: Vec<i8>,
    row_sums: Vec<i32>,
}

impl PackedA {
    /// Rows.
    pub fn m(&self) -> usize {
        self.m
    }
    /// Depth.
    pub fn k(&self) -> usize {
        self.k
    }
    /// `Σ_k A[m][k]` per row (for zero-point folding).
    pub fn row_sums(&self) -> &[i32] {
        &self.row_sums
    }
}

/// Packs row-major i8 weights `w[m * k + kk]` (M×K).
pub fn pack_a(w: &[i8], m: usize, k: usize) -> Result<PackedA, JitError> {
    let len = m
        .checked_mul(k)
        .ok_or_else(|| input("gemm weights", format!("{m}x{k} overflows")))?;
    if w.len() != len {
        return Err(input(
            "gemm weights",
            format!("{} values, expected {m}x{k} = {len}", w.len()),
        ));
    }
    let ka = k.div_ceil(16) * 16;
    let mut data = vec![0i8; m * ka];
    let mut row_sums = Vec::with_capacity(m);
    for r in 0..m {
        let src = &w[r * k..(r + 1) * k];
        data[r * ka..r * ka + k].copy_from_slice(src);
        row_sums.push(src.iter().fold(0i32, |s, &x| s.wrapping_add(x as i32)));
    }
    Ok(PackedA {
        m,
        k,
        ka,
        data,
        row_sums,
    })
}

/// `bias[m] - zp * Σ_k A[m][k]` (wrapping i32): folds the activation zero point into the bias,
/// so the kernel can multiply the stored u8 activations directly.
pub fn fold_zero_point(bias: &[i32], a: &PackedA, zp: i32) -> Result<Vec<i32>, JitError> {
    if bias.len() != a.m {
        return Err(input(
            "gemm bias",
            format!("{} values, expected M = {}", bias.len(), a.m),
        ));
    }
    Ok(bias
        .iter()
        .zip(&a.row_sums)
        .map(|(&b, &s)| b.wrapping_sub(zp.wrapping_mul(s)))
        .collect())
}

fn check_b_src(len: usize, k: usize, n: usize, ldb: usize) -> Result<(), JitError> {
    if k == 0 || n == 0 {
        return Err(input("gemm B", format!("empty {k}x{n} matrix")));
    }
    if ldb < n {
        return Err(input("gemm B", format!("ldb {ldb} < N {n}")));
    }
    let need = (k - 1)
        .checked_mul(ldb)
        .and_then(|x| x.checked_add(n))
        .ok_or_else(|| input("gemm B", "size overflows".into()))?;
    if len < need {
        return Err(input(
            "gemm B",
            format!("{len} values, a {k}x{n} matrix with ldb {ldb} needs {need}"),
        ));
    }
    Ok(())
}

fn pack_b_with<T: Copy>(
    b: &[T],
    k: usize,
    n: usize,
    ldb: usize,
    nr: usize,
    out: &mut [u8],
    conv: impl Fn(T) -> u8,
) -> Result<(), JitError> {
    check_b_src(b.len(), k, n, ldb)?;
    if nr == 0 || !nr.is_multiple_of(4) {
        return Err(input(
            "gemm panel width",
            format!("{nr} is not a positive multiple of 4"),
        ));
    }
    let need = packed_b_len(nr, k, n);
    if out.len() < need {
        return Err(input(
            "gemm packed B",
            format!("{} bytes, {k}x{n} needs {need}", out.len()),
        ));
    }
    let pl = panel_len(nr, k);
    let k4 = k.div_ceil(4) * 4;
    for p in 0..panels(nr, n) {
        let panel = &mut out[p * pl..(p + 1) * pl];
        for kk in 0..k4 {
            for c in 0..nr {
                let col = p * nr + c;
                let v = if kk < k && col < n {
                    conv(b[kk * ldb + col])
                } else {
                    0
                };
                panel[(kk / 4) * nr * 4 + c * 4 + kk % 4] = v;
            }
        }
    }
    Ok(())
}

/// Packs a row-major u8 `k × n` matrix (`b[kk * ldb + col]`) into panels of `nr` columns (the
/// kernel's [`GemmKernel::nr`]) in `out[..packed_b_len(nr, k, n)]`. Padding is written as 0.
pub fn pack_b(
    b: &[u8],
    k: usize,
    n: usize,
    ldb: usize,
    nr: usize,
    out: &mut [u8],
) -> Result<(), JitError> {
    pack_b_with(b, k, n, ldb, nr, out, |x| x)
}

/// Like [`pack_b`] for i8 activations, shifted to u8 (`x + 128`): fold `zp_i8 + 128`.
pub fn pack_b_i8(
    b: &[i8],
    k: usize,
    n: usize,
    ldb: usize,
    nr: usize,
    out: &mut [u8],
) -> Result<(), JitError> {
    pack_b_with(b, k, n, ldb, nr, out, |x| (x as u8) ^ 0x80)
}

/// Output element types of the kernel (u8, i8, f32, i32). Sealed.
pub trait GemmOut: Copy + sealed::Sealed {
    /// Name for error messages.
    const NAME: &'static str;
    /// Whether this type is what `epilogue` stores.
    fn matches(epilogue: &Epilogue) -> bool;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for i8 {}
    impl Sealed for f32 {}
    impl Sealed for i32 {}
}

impl GemmOut for u8 {
    const NAME: &'static str = "u8";
    fn matches(e: &Epilogue) -> bool {
        matches!(e, Epilogue::Quant { signed: false, .. })
    }
}
impl GemmOut for i8 {
    const NAME: &'static str = "i8";
    fn matches(e: &Epilogue) -> bool {
        matches!(e, Epilogue::Quant { signed: true, .. })
    }
}
impl GemmOut for f32 {
    const NAME: &'static str = "f32";
    fn matches(e: &Epilogue) -> bool {
        matches!(e, Epilogue::F32)
    }
}
impl GemmOut for i32 {
    const NAME: &'static str = "i32";
    fn matches(e: &Epilogue) -> bool {
        matches!(e, Epilogue::I32)
    }
}

fn input(name: &str, why: String) -> JitError {
    JitError::Input {
        name: name.into(),
        why,
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The code tier a [`GemmSpec`] compiles to on a module's host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GemmTier {
    /// Hand-assembled AVX512-VNNI `vpdpbusd zmm`, [`MR_ZMM`]×[`NR_ZMM`] tile.
    Zmm,
    /// Cranelift, 128-bit `vpdpbusd`, [`MR_VNNI`]×[`NR`] tile.
    Vnni,
    /// Cranelift, exact i16 `pmaddwd`, [`MR_I16`]×[`NR`] tile.
    ExactI16,
}

impl GemmTier {
    /// Columns per B panel.
    pub fn nr(self) -> usize {
        match self {
            GemmTier::Zmm => NR_ZMM,
            GemmTier::Vnni | GemmTier::ExactI16 => NR,
        }
    }
    /// Rows per register tile.
    pub fn mr(self) -> usize {
        match self {
            GemmTier::Zmm => MR_ZMM,
            GemmTier::Vnni => MR_VNNI,
            GemmTier::ExactI16 => MR_I16,
        }
    }
    /// A short name (`zmm`, `vnni`, `i16`).
    pub fn name(self) -> &'static str {
        match self {
            GemmTier::Zmm => "zmm",
            GemmTier::Vnni => "vnni",
            GemmTier::ExactI16 => "i16",
        }
    }
}

/// The tier `spec` compiles to in `m` (an error when the requested one is not available).
pub fn gemm_tier(m: &CodeModule, spec: &GemmSpec) -> Result<GemmTier, JitError> {
    let f = m.features();
    let zmm = f.zmm_vnni && m.system_v();
    match spec.dot {
        Dot::Auto | Dot::Zmm if zmm => return Ok(GemmTier::Zmm),
        Dot::Zmm => {
            return Err(JitError::Codegen(
                "Dot::Zmm requested but the host lacks AVX512F+BW+VNNI (or System V calls)".into(),
            ))
        }
        Dot::Auto | Dot::Vnni | Dot::ExactI16 => {}
    }
    if !f.sse41 {
        return Err(JitError::Codegen(
            "the GEMM kernel needs SSE4.1 on the host".into(),
        ));
    }
    match spec.dot {
        Dot::Auto | Dot::Vnni if f.vnni => Ok(GemmTier::Vnni),
        Dot::Vnni => Err(JitError::Codegen(
            "Dot::Vnni requested but the host has no VNNI".into(),
        )),
        Dot::Auto | Dot::ExactI16 | Dot::Zmm => Ok(GemmTier::ExactI16),
    }
}

/// Defines the GEMM function for `spec` in `module` (before [`CodeModule::finalize`]).
pub fn define_gemm(module: &mut CodeModule, spec: &GemmSpec) -> Result<FuncId, JitError> {
    spec.check()?;
    let tier = gemm_tier(module, spec)?;
    let mr = tier.mr();
    let name = format!(
        "gemm_{}x{}_{}",
        spec.m,
        spec.k,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let ptr = module.ptr();
    if ptr != I64 {
        return Err(JitError::Codegen(
            "the GEMM kernel needs a 64-bit host".into(),
        ));
    }
    let ka = spec.k.div_ceil(16) * 16;
    let dot = match tier {
        GemmTier::Zmm => {
            let code = zmm::emit(&zmm_shape(spec))?;
            return module.define_bytes(&name, &[I64; 10], &code);
        }
        GemmTier::Vnni => DotKind::Vnni,
        GemmTier::ExactI16 => DotKind::ExactI16,
    };
    let shape = Shape {
        mr,
        tail: spec.m % mr,
        k: spec.k,
        ka,
        epilogue: spec.epilogue,
        dot,
    };
    module.define(&name, &[I64; 10], |fb, params| {
        codegen::emit(fb, params, &shape)
    })
}

/// The machine code [`define_gemm`] places in the module for `spec` on the zmm tier (for
/// inspection, e.g. disassembly tests); `None` when the spec's tier is not zmm.
pub fn zmm_code(module: &CodeModule, spec: &GemmSpec) -> Result<Option<Vec<u8>>, JitError> {
    spec.check()?;
    if gemm_tier(module, spec)? != GemmTier::Zmm {
        return Ok(None);
    }
    zmm::emit(&zmm_shape(spec)).map(Some)
}

/// The zmm tier's compile-time shape of `spec`.
fn zmm_shape(spec: &GemmSpec) -> zmm::ZmmShape {
    zmm::ZmmShape {
        mr: MR_ZMM,
        tail: spec.m % MR_ZMM,
        k: spec.k,
        ka: spec.k.div_ceil(16) * 16,
        epilogue: spec.epilogue,
    }
}

type RawFn = unsafe extern "C" fn(
    a: *const i8,
    b: *const u8,
    bias: *const i32,
    scale: *const f32,
    out: *mut u8,
    ldc_bytes: usize,
    nfull: usize,
    rem: usize,
    nblocks: usize,
    tail: usize,
);

/// A compiled GEMM, callable from any thread.
///
/// It holds a raw pointer into the [`CodeModule`]'s code: the module must outlive the kernel
/// (this is the contract of the `unsafe` [`GemmKernel::new`]; running is then safe).
#[derive(Debug, Clone, Copy)]
pub struct GemmKernel {
    f: RawFn,
    spec: GemmSpec,
    tier: GemmTier,
}

/// Sends a raw output pointer to a worker (the regions written are disjoint).
#[derive(Clone, Copy)]
struct SendPtr(*mut u8);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl GemmKernel {
    /// The kernel `id` (from [`define_gemm`] with this `spec`) of the finalized `module`.
    ///
    /// # Safety
    /// `id` must come from `define_gemm(module, spec)` with an equal `spec`, and `module` must
    /// stay alive (not dropped) as long as the returned kernel or any copy of it is used.
    pub unsafe fn new(module: &CodeModule, id: FuncId, spec: &GemmSpec) -> Result<Self, JitError> {
        spec.check()?;
        let tier = gemm_tier(module, spec)?;
        // The caller guarantees `id` has this signature (see `CodeModule::func`).
        let f: RawFn = module.func(id)?;
        Ok(GemmKernel {
            f,
            spec: *spec,
            tier,
        })
    }

    /// Columns per B panel: pack B with this (`pack_b(.., kernel.nr(), ..)`).
    pub fn nr(&self) -> usize {
        self.tier.nr()
    }

    /// The code tier it was compiled to.
    pub fn tier(&self) -> GemmTier {
        self.tier
    }

    /// The spec it was compiled for.
    pub fn spec(&self) -> &GemmSpec {
        &self.spec
    }

    /// Rows per register tile: row ranges given to [`GemmKernel::run_rows`] start at a multiple
    /// of it and end at one or at M.
    pub fn mr(&self) -> usize {
        self.tier.mr()
    }

    /// `C = epilogue(A·B + bias)` for all M rows and `x.n` columns: `out[m * ldc + col]`.
    pub fn run<T: GemmOut>(
        &self,
        x: &GemmInputs,
        out: &mut [T],
        ldc: usize,
    ) -> Result<(), JitError> {
        self.run_block(x, out, ldc, 0..self.spec.m, 0..panels(self.nr(), x.n))
    }

    /// Rows `rows` only, all columns, for splitting rows over threads: `out` starts at row
    /// `rows.start` (`out[(m - rows.start) * ldc + col]`), so callers can `split_at_mut` C.
    /// `x` holds the full bias, scale and weights.
    pub fn run_rows<T: GemmOut>(
        &self,
        x: &GemmInputs,
        out: &mut [T],
        ldc: usize,
        rows: Range<usize>,
    ) -> Result<(), JitError> {
        self.run_block(x, out, ldc, rows, 0..panels(self.nr(), x.n))
    }

    /// Rows `rows` × panels `cols` (columns `cols.start*nr .. min(cols.end*nr, n)`); `out`
    /// starts at row `rows.start`, column 0. The range checks are all done here.
    pub fn run_block<T: GemmOut>(
        &self,
        x: &GemmInputs,
        out: &mut [T],
        ldc: usize,
        rows: Range<usize>,
        cols: Range<usize>,
    ) -> Result<(), JitError> {
        let fixed = self.check::<T>(x, out.len(), ldc, &rows, &cols)?;
        let x = GemmInputs {
            scale: fixed.as_deref().unwrap_or(x.scale),
            ..*x
        };
        let o = out.as_mut_ptr() as *mut u8;
        // SAFETY: `check` proved every access in bounds.
        unsafe {
            self.call(&x, o, ldc, rows.clone(), cols.clone());
        }
        Ok(())
    }

    /// Like [`GemmKernel::run`], split over the rayon pool (by row blocks when M is large
    /// enough, else by panels).
    pub fn run_par<T: GemmOut + Send>(
        &self,
        x: &GemmInputs,
        out: &mut [T],
        ldc: usize,
    ) -> Result<(), JitError> {
        let threads = crate::runtime::par::threads();
        if threads == 1 {
            return self.run(x, out, ldc);
        }
        let m = self.spec.m;
        let np = panels(self.nr(), x.n);
        let fixed = self.check::<T>(x, out.len(), ldc, &(0..m), &(0..np))?;
        let x = GemmInputs {
            scale: fixed.as_deref().unwrap_or(x.scale),
            ..*x
        };
        let blocks = m.div_ceil(self.mr());
        let o = SendPtr(out.as_mut_ptr() as *mut u8);
        let mut jobs: Vec<(Range<usize>, Range<usize>)> = Vec::new();
        if blocks >= 2 * threads || np < threads {
            let per = blocks.div_ceil(threads).max(1);
            let mut b0 = 0;
            while b0 < blocks {
                let b1 = (b0 + per).min(blocks);
                jobs.push((b0 * self.mr()..(b1 * self.mr()).min(m), 0..np));
                b0 = b1;
            }
        } else {
            let per = np.div_ceil(threads).max(1);
            let mut p0 = 0;
            while p0 < np {
                let p1 = (p0 + per).min(np);
                jobs.push((0..m, p0..p1));
                p0 = p1;
            }
        }
        let esz = std::mem::size_of::<T>();
        let x = &x;
        rayon::scope(|s| {
            for (rows, cols) in jobs {
                s.spawn(move |_| {
                    // Capture the whole `SendPtr` (not its raw-pointer field).
                    let o = o;
                    // SAFETY: checked above for the whole C; the jobs write disjoint rows or
                    // disjoint column ranges. `out` starts at row `rows.start`.
                    unsafe {
                        let base = o.0.add(rows.start * ldc * esz);
                        self.call(x, base, ldc, rows, cols);
                    }
                });
            }
        });
        Ok(())
    }

    /// Checks every length; returns the sanitized scales when some are not finite.
    fn check<T: GemmOut>(
        &self,
        x: &GemmInputs,
        out_len: usize,
        ldc: usize,
        rows: &Range<usize>,
        cols: &Range<usize>,
    ) -> Result<Option<Vec<f32>>, JitError> {
        let GemmInputs {
            a,
            b_panels,
            n,
            bias,
            scale,
        } = *x;
        let s = &self.spec;
        if !T::matches(&s.epilogue) {
            return Err(input(
                "gemm output",
                format!("{} does not match the epilogue {:?}", T::NAME, s.epilogue),
            ));
        }
        if a.m != s.m || a.k != s.k {
            return Err(input(
                "gemm weights",
                format!(
                    "packed {}x{}, kernel compiled for {}x{}",
                    a.m, a.k, s.m, s.k
                ),
            ));
        }
        if bias.len() != s.m {
            return Err(input(
                "gemm bias",
                format!("{} values, expected {}", bias.len(), s.m),
            ));
        }
        let needs_scale = !matches!(s.epilogue, Epilogue::I32);
        if needs_scale && scale.len() != s.m {
            return Err(input(
                "gemm scale",
                format!("{} values, expected {}", scale.len(), s.m),
            ));
        }
        let np = panels(self.nr(), n);
        if rows.start > rows.end || rows.end > s.m {
            return Err(input(
                "gemm rows",
                format!("{rows:?} not inside 0..{}", s.m),
            ));
        }
        if !rows.start.is_multiple_of(self.mr())
            || (!rows.end.is_multiple_of(self.mr()) && rows.end != s.m)
        {
            return Err(input(
                "gemm rows",
                format!(
                    "{rows:?} must start at a multiple of {} and end at one or at M",
                    self.mr()
                ),
            ));
        }
        if cols.start > cols.end || cols.end > np {
            return Err(input("gemm panels", format!("{cols:?} not inside 0..{np}")));
        }
        let need_b = np
            .checked_mul(panel_len(self.nr(), s.k))
            .ok_or_else(|| input("gemm B", "size overflows".into()))?;
        if b_panels.len() < need_b {
            return Err(input(
                "gemm B",
                format!(
                    "{} bytes, {np} panels of K = {} need {need_b}",
                    b_panels.len(),
                    s.k
                ),
            ));
        }
        if rows.is_empty() || cols.is_empty() {
            return Ok(None);
        }
        let last_col = (cols.end * self.nr()).min(n);
        if ldc < last_col {
            return Err(input(
                "gemm output",
                format!("ldc {ldc} < columns {last_col}"),
            ));
        }
        let need_out = (rows.len() - 1)
            .checked_mul(ldc)
            .and_then(|x| x.checked_add(last_col))
            .ok_or_else(|| input("gemm output", "size overflows".into()))?;
        if out_len < need_out {
            return Err(input(
                "gemm output",
                format!("{out_len} values, rows {rows:?} with ldc {ldc} need {need_out}"),
            ));
        }
        if ldc.checked_mul(std::mem::size_of::<T>()).is_none() {
            return Err(input("gemm output", "ldc overflows".into()));
        }
        if matches!(s.epilogue, Epilogue::Quant { .. }) && scale.iter().any(|x| !x.is_finite()) {
            // NaN·x → NaN → 0 in `requantize`; 0 does the same. ±inf·acc saturates to lo/hi
            // when acc ≠ 0 and is NaN (→ 0) when acc = 0: ±f32::MAX does both.
            return Ok(Some(
                scale
                    .iter()
                    .map(|&x| {
                        if x.is_nan() {
                            0.0
                        } else if x.is_infinite() {
                            f32::MAX.copysign(x)
                        } else {
                            x
                        }
                    })
                    .collect(),
            ));
        }
        Ok(None)
    }

    /// Calls the compiled code on rows × panels; `out` points at C[rows.start][0].
    ///
    /// # Safety
    /// The ranges and every buffer must have been validated by `check`; `x.scale` may be the
    /// sanitized copy.
    unsafe fn call(
        &self,
        x: &GemmInputs,
        out: *mut u8,
        ldc: usize,
        rows: Range<usize>,
        cols: Range<usize>,
    ) {
        let GemmInputs {
            a,
            b_panels,
            n,
            bias,
            scale,
        } = *x;
        if rows.is_empty() || cols.is_empty() {
            return;
        }
        let esz = match self.spec.epilogue {
            Epilogue::Quant { .. } => 1,
            Epilogue::F32 | Epilogue::I32 => 4,
        };
        let (nr, pl) = (self.nr(), panel_len(self.nr(), self.spec.k));
        let nblocks = rows.len() / self.mr();
        let tail = usize::from(!rows.len().is_multiple_of(self.mr()));
        // A dummy (never read) scale pointer for I32.
        let sp = if scale.is_empty() {
            std::ptr::NonNull::<f32>::dangling().as_ptr() as *const f32
        } else {
            // SAFETY (caller): `rows` lies within the output rows, and `scale` has one entry per row.
            unsafe { scale.as_ptr().add(rows.start) }
        };
        // Cache blocking: the kernel runs row blocks outer, panels inner, so one chunk of
        // panels is re-read once per row block: keep a chunk within ~256 KB (L2).
        let chunk = (CHUNK_BYTES / pl).max(1);
        let mut p0 = cols.start;
        while p0 < cols.end {
            let p1 = (p0 + chunk).min(cols.end);
            let ncols = (p1 * nr).min(n) - p0 * nr;
            // SAFETY (caller): in bounds.
            unsafe {
                (self.f)(
                    a.data.as_ptr().add(rows.start * a.ka),
                    b_panels.as_ptr().add(p0 * pl),
                    bias.as_ptr().add(rows.start),
                    sp,
                    out.add(p0 * nr * esz),
                    ldc * esz,
                    ncols / nr,
                    ncols % nr,
                    nblocks,
                    tail,
                )
            }
            p0 = p1;
        }
    }
}
