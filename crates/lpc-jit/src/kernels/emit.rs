//! Code-generation helpers shared by the Cranelift kernels (elementwise, depthwise, pool,
//! float): element types, loops and copies, 16-element chunks, byte narrowing and widening,
//! the exact quantize/clamp lanes, kernel names and spec/input errors.

use std::sync::atomic::{AtomicUsize, Ordering};

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32X4, I32X4, I64, I8, I8X16};
use cranelift_codegen::ir::{BlockArg, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;
use lpc_ir::DType;

use crate::JitError;

/// Element types the kernels read and write, tied to their [`DType`].
pub trait Elem: Copy + Send + Sync + 'static {
    /// The dtype of this element type.
    const DTYPE: DType;
}

impl Elem for u8 {
    const DTYPE: DType = DType::U8;
}
impl Elem for i8 {
    const DTYPE: DType = DType::I8;
}
impl Elem for i32 {
    const DTYPE: DType = DType::I32;
}
impl Elem for f32 {
    const DTYPE: DType = DType::F32;
}

/// A fresh function name (kernels of every kind share one module).
pub(crate) fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}_{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The error for a spec a kernel cannot be built from.
pub(crate) fn spec_err(kernel: &str, why: String) -> JitError {
    JitError::Lower {
        node: format!("{kernel} kernel"),
        why,
    }
}

/// The error for a buffer of the wrong length or type at run time.
pub(crate) fn input_err(name: &str, why: String) -> JitError {
    JitError::Input {
        name: name.to_string(),
        why,
    }
}

/// Flags of every load and store: plain, possibly unaligned, never trapping (lengths are
/// checked before the call).
pub(crate) fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Bytes per element of the dtypes these kernels handle (0 for the others).
pub(crate) fn elem_size(d: DType) -> usize {
    match d {
        DType::U8 | DType::I8 => 1,
        DType::I32 | DType::F32 => 4,
        DType::F16 | DType::F64 | DType::I64 | DType::Bool => 0,
    }
}

/// The integer range of a u8/i8 dtype.
pub(crate) fn byte_range(d: DType) -> Option<(i32, i32)> {
    match d {
        DType::U8 => Some((0, 255)),
        DType::I8 => Some((-128, 127)),
        DType::I32 | DType::F32 | DType::F16 | DType::F64 | DType::I64 | DType::Bool => None,
    }
}

/// Emits `for i in (start..end).step_by(step) { body(i) }` (i64 counter); the builder is left
/// in the block after the loop.
pub(crate) fn emit_loop(
    b: &mut FunctionBuilder,
    start: Value,
    end: Value,
    step: i64,
    mut body: impl FnMut(&mut FunctionBuilder, Value),
) {
    let head = b.create_block();
    b.append_block_param(head, I64);
    let inner = b.create_block();
    let exit = b.create_block();
    b.ins().jump(head, &[BlockArg::Value(start)]);
    b.switch_to_block(head);
    let i = b.block_params(head)[0];
    let more = b.ins().icmp(IntCC::SignedLessThan, i, end);
    b.ins().brif(more, inner, &[], exit, &[]);
    b.switch_to_block(inner);
    body(b, i);
    let next = b.ins().iadd_imm_s(i, step);
    b.ins().jump(head, &[BlockArg::Value(next)]);
    b.switch_to_block(exit);
}

/// Emits a byte-by-byte copy of `n` (i64) bytes.
pub(crate) fn emit_copy(b: &mut FunctionBuilder, dst: Value, src: Value, n: Value) {
    let zero = b.ins().iconst(I64, 0);
    emit_loop(b, zero, n, 1, |b, j| {
        let s = b.ins().iadd(src, j);
        let v = b.ins().load(I8, mem(), s, 0);
        let d = b.ins().iadd(dst, j);
        b.ins().store(mem(), v, d, 0);
    });
}

/// Sixteen consecutive elements: one i8x16 for byte types, four 4-lane vectors for 32-bit ones.
#[derive(Clone, Copy)]
pub(crate) enum Chunk {
    /// u8 or i8 elements.
    Bytes(Value),
    /// i32x4 or f32x4 vectors, in element order.
    Words([Value; 4]),
}

fn lane_type(d: DType) -> Type {
    if d == DType::F32 {
        F32X4
    } else {
        I32X4
    }
}

/// Loads 16 elements of dtype `d` at `p`.
pub(crate) fn load_chunk(b: &mut FunctionBuilder, d: DType, p: Value) -> Chunk {
    if elem_size(d) == 1 {
        Chunk::Bytes(b.ins().load(I8X16, mem(), p, 0))
    } else {
        let t = lane_type(d);
        Chunk::Words([0, 16, 32, 48].map(|o| b.ins().load(t, mem(), p, o)))
    }
}

/// Stores 16 elements at `p`.
pub(crate) fn store_chunk(b: &mut FunctionBuilder, p: Value, c: Chunk) {
    match c {
        Chunk::Bytes(v) => {
            b.ins().store(mem(), v, p, 0);
        }
        Chunk::Words(w) => {
            for (k, v) in w.into_iter().enumerate() {
                b.ins().store(mem(), v, p, 16 * k as i32);
            }
        }
    }
}

/// Sixteen bytes (u8 zero-extended, i8 sign-extended) as four i32x4.
pub(crate) fn widen_bytes(b: &mut FunctionBuilder, signed: bool, v: Value) -> [Value; 4] {
    let halves = if signed {
        [b.ins().swiden_low(v), b.ins().swiden_high(v)]
    } else {
        [b.ins().uwiden_low(v), b.ins().uwiden_high(v)]
    };
    let mut out = [halves[0]; 4];
    for (k, h) in halves.into_iter().enumerate() {
        // After widening to i16 a u8 value is non-negative, so both widen the same way.
        out[2 * k] = b.ins().swiden_low(h);
        out[2 * k + 1] = b.ins().swiden_high(h);
    }
    out
}

/// Packs four i32x4 whose lanes are already inside u8's or i8's range into sixteen bytes.
pub(crate) fn narrow_bytes(b: &mut FunctionBuilder, unsigned: bool, w: [Value; 4]) -> Value {
    let lo = b.ins().snarrow(w[0], w[1]);
    let hi = b.ins().snarrow(w[2], w[3]);
    if unsigned {
        b.ins().unarrow(lo, hi)
    } else {
        b.ins().snarrow(lo, hi)
    }
}

/// `f32(x − zp) · s` on four i32 lanes (wrapping subtraction, as lpc-ref's `as i32`): lpc-ref's
/// dequantize step.
pub(crate) fn dequantize_lanes(b: &mut FunctionBuilder, x: Value, zp: Value, s: Value) -> Value {
    let d = b.ins().isub(x, zp);
    let f = b.ins().fcvt_from_sint(F32X4, d);
    b.ins().fmul(f, s)
}

/// lpc-ref's quantize step on four lanes: `r = round_ties_even(v / s) + zp`, then NaN → 0,
/// else `clamp(r, lo, hi)`; the result as i32 lanes. `s`, `zp`, `lo`, `hi` are f32x4 splats
/// (`lo`, `hi` integers). Exact: `r` is integral (or ±inf); it is clamped in f32 (one `maxps`
/// and one `minps`: Cranelift lowers this compare-and-select shape to them), so the truncating
/// conversion only sees integers inside `[lo, hi]`; a NaN `r` comes out of the clamp as `lo`
/// and the ordered mask zeroes it, as the oracle does.
pub(crate) fn quantize_lanes(
    b: &mut FunctionBuilder,
    v: Value,
    s: Value,
    zp: Value,
    lo: Value,
    hi: Value,
) -> Value {
    let q = b.ins().fdiv(v, s);
    let r = b.ins().nearest(q);
    let r = b.ins().fadd(r, zp);
    clamp_to_i32(b, r, lo, hi)
}

/// Integral f32 lanes `r` (or ±inf, NaN) clamped to the integers `[lo, hi]` (f32x4 splats) and
/// converted to i32, NaN → 0: one `maxps`, one `minps` (Cranelift lowers this
/// compare-and-select shape to them), a plain `cvttps2dq` that only sees integers in range, and
/// the ordered mask. Exactly the saturating conversion plus integer clamp it replaces.
pub(crate) fn clamp_to_i32(b: &mut FunctionBuilder, r: Value, lo: Value, hi: Value) -> Value {
    let f = MemFlagsData::new();
    let above = b.ins().fcmp(FloatCC::LessThan, lo, r);
    let above = b.ins().bitcast(F32X4, f, above);
    let c = b.ins().bitselect(above, r, lo);
    let below = b.ins().fcmp(FloatCC::LessThan, c, hi);
    let below = b.ins().bitcast(F32X4, f, below);
    let c = b.ins().bitselect(below, c, hi);
    let i = b.ins().x86_cvtt2dq(I32X4, c);
    let ordered = b.ins().fcmp(FloatCC::Ordered, r, r);
    b.ins().band(i, ordered)
}
