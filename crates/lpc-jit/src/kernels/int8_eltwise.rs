//! Elementwise INT8 kernels (QuantizeLinear, DequantizeLinear, Requantize, QAdd, Lut) compiled
//! with Cranelift on 128-bit vectors, bit-exact to `lpc-ref`; on AVX-512 hosts the first four
//! are hand-assembled 16-lane code instead (`int8_zmm.rs`, the same function).
//!
//! Every vector kernel here is one "blocked" function: it walks `n_blocks` runs of `inner`
//! elements, each run with the parameters of one channel (a row of a small table the kernel
//! object owns and passes by pointer), 16 elements per step, and finishes a run's tail by copying
//! it through a stack buffer so the tail computes with exactly the same instructions. Per-tensor
//! kernels are one run of all the elements. Parameters are therefore run-time data read from
//! memory; dtypes and the operation are compiled in.

pub use crate::kernels::emit::Elem;
use crate::kernels::emit::{
    byte_range, dequantize_lanes, elem_size, emit_copy, emit_loop, input_err, load_chunk, mem,
    narrow_bytes, quantize_lanes, spec_err, store_chunk, unique_name, widen_bytes, Chunk,
};

use cranelift_codegen::ir::types::{F32, F32X4, I32, I32X4, I64, I8, I8X16};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Value};
use cranelift_frontend::FunctionBuilder;
use cranelift_module::FuncId;
use lpc_ir::DType;

use crate::kernels::int8_zmm::{self, BlockedOp};
use crate::kernels::tier::VecTier;
use crate::{CodeModule, JitError};

/// Integer elements of a chunk as four i32x4.
fn chunk_i32(b: &mut FunctionBuilder, d: DType, c: Chunk) -> [Value; 4] {
    match c {
        Chunk::Bytes(v) => widen_bytes(b, d == DType::I8, v),
        Chunk::Words(w) => w,
    }
}

/// The per-channel parameters of one run, loaded at its start: 32-bit words, read as f32x4 or
/// i32x4 splats by the operation.
pub(crate) struct Params {
    words: Vec<Value>,
}

impl Params {
    fn f32x4(&self, b: &mut FunctionBuilder, k: usize) -> Value {
        let f = b.ins().bitcast(F32, MemFlagsData::new(), self.words[k]);
        b.ins().splat(F32X4, f)
    }
    fn i32x4(&self, b: &mut FunctionBuilder, k: usize) -> Value {
        b.ins().splat(I32X4, self.words[k])
    }
}

/// The operation of a blocked kernel on one chunk.
type ChunkOp<'a> = &'a dyn Fn(&mut FunctionBuilder, &Params, &[Chunk]) -> Chunk;

/// Defines a blocked elementwise function with the signature
/// `fn(a, b, out, n_blocks, inner, c0, channels, params)` (all i64/pointers): run `r` covers
/// elements `r·inner .. (r+1)·inner` of every buffer and uses parameter row
/// `(c0 + r) % channels` (`nparams` 32-bit words per row). `b` is ignored with one input.
///
/// On the zmm tier (`tier`, see `kernels/tier.rs`) the same function is `zmm_op` hand-assembled
/// (`int8_zmm.rs`); otherwise Cranelift compiles `op`.
#[allow(clippy::too_many_arguments)]
fn define_blocked(
    m: &mut CodeModule,
    prefix: &str,
    ins: &[DType],
    out: DType,
    nparams: usize,
    op: ChunkOp,
    zmm_op: BlockedOp,
    tier: VecTier,
) -> Result<FuncId, JitError> {
    let p = m.ptr();
    let params = [p, p, p, I64, I64, I64, I64, p];
    if tier.use_zmm(m, prefix)? {
        let code = int8_zmm::emit(zmm_op)?;
        return m.define_bytes(&unique_name(&format!("{prefix}_zmm")), &params, &code);
    }
    let name = unique_name(prefix);
    let ins = ins.to_vec();
    m.define(&name, &params, |b, args| {
        let (in_ptrs, out_ptr) = (&args[0..ins.len()], args[2]);
        let (n_blocks, inner, c0, channels, table) = (args[3], args[4], args[5], args[6], args[7]);
        let slots: Vec<_> = ins
            .iter()
            .chain([&out])
            .map(|_| {
                b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 64, 4))
            })
            .collect();
        let zero = b.ins().iconst(I64, 0);
        // Channel counter carried through the run loop in a variable-free way: recomputed.
        emit_loop(b, zero, n_blocks, 1, |b, r| {
            let c = b.ins().iadd(c0, r);
            let c = b.ins().urem(c, channels);
            let row = b.ins().imul_imm_s(c, 4 * nparams as i64);
            let row = b.ins().iadd(table, row);
            let params = Params {
                words: (0..nparams)
                    .map(|k| b.ins().load(I32, mem(), row, 4 * k as i32))
                    .collect(),
            };
            let base = b.ins().imul(r, inner);
            let addr = |b: &mut FunctionBuilder, ptr: Value, d: DType, i: Value| {
                let e = b.ins().iadd(base, i);
                let off = b.ins().imul_imm_s(e, elem_size(d) as i64);
                b.ins().iadd(ptr, off)
            };
            let full = b.ins().band_imm_s(inner, !15i64);
            let zero = b.ins().iconst(I64, 0);
            emit_loop(b, zero, full, 16, |b, i| {
                let chunks: Vec<Chunk> = ins
                    .iter()
                    .zip(in_ptrs)
                    .map(|(&d, &ptr)| {
                        let a = addr(b, ptr, d, i);
                        load_chunk(b, d, a)
                    })
                    .collect();
                let y = op(b, &params, &chunks);
                let a = addr(b, out_ptr, out, i);
                store_chunk(b, a, y);
            });
            // Tail: copy the remaining elements through stack buffers.
            let rem = b.ins().isub(inner, full);
            let tail = b.create_block();
            let done = b.create_block();
            b.ins().brif(rem, tail, &[], done, &[]);
            b.switch_to_block(tail);
            let mut chunks = vec![];
            for ((&d, &ptr), &slot) in ins.iter().zip(in_ptrs).zip(&slots) {
                let s = b.ins().stack_addr(p, slot, 0);
                let zv = b.ins().iconst(I8, 0);
                let zv = b.ins().splat(I8X16, zv);
                for k in 0..4 {
                    b.ins().store(mem(), zv, s, 16 * k);
                }
                let a = addr(b, ptr, d, full);
                let n = b.ins().imul_imm_s(rem, elem_size(d) as i64);
                emit_copy(b, s, a, n);
                chunks.push(load_chunk(b, d, s));
            }
            let y = op(b, &params, &chunks);
            let s = b.ins().stack_addr(p, slots[ins.len()], 0);
            store_chunk(b, s, y);
            let a = addr(b, out_ptr, out, full);
            let n = b.ins().imul_imm_s(rem, elem_size(out) as i64);
            emit_copy(b, a, s, n);
            b.ins().jump(done, &[]);
            b.switch_to_block(done);
        });
        b.ins().return_(&[]);
    })
}

/// The entry point of a blocked function.
type BlockedFn =
    unsafe extern "C" fn(*const u8, *const u8, *mut u8, i64, i64, i64, i64, *const u32);

/// A finalized blocked function with its parameter table.
#[derive(Debug)]
struct Blocked {
    f: BlockedFn,
    /// `channels` rows of `nparams` words.
    table: Vec<u32>,
    channels: usize,
    /// Elements per channel run; 0 for per-tensor parameters.
    inner: usize,
    sizes: [usize; 3],
}

impl Blocked {
    /// # Safety
    /// `id` must be a function of `m` defined by [`define_blocked`] with these element sizes.
    unsafe fn new(
        m: &CodeModule,
        id: FuncId,
        table: Vec<u32>,
        channels: usize,
        inner: usize,
        sizes: [usize; 3],
    ) -> Result<Self, JitError> {
        // The caller guarantees `id` has this signature (see `CodeModule::func`).
        let f: BlockedFn = m.func(id)?;
        Ok(Blocked {
            f,
            table,
            channels,
            inner,
            sizes,
        })
    }

    /// Runs over `n` elements whose first has flat index `offset` in the whole tensor.
    ///
    /// # Safety
    /// `a` (and `b` with two inputs) must be valid for reading, and `out` for writing, `n`
    /// elements of the sizes given at construction.
    unsafe fn call(&self, a: *const u8, b: *const u8, out: *mut u8, n: usize, offset: usize) {
        let [sa, sb, so] = self.sizes;
        let t = self.table.as_ptr();
        let go = |pos: usize, blocks: usize, len: usize, c: usize| {
            // SAFETY: the run covers elements pos .. pos + blocks·len < n of every buffer.
            unsafe {
                (self.f)(
                    a.add(pos * sa),
                    b.add(pos * sb),
                    out.add(pos * so),
                    blocks as i64,
                    len as i64,
                    c as i64,
                    self.channels as i64,
                    t,
                )
            }
        };
        if n == 0 {
            return;
        }
        if self.inner == 0 {
            go(0, 1, n, 0);
            return;
        }
        let mut pos = 0;
        while pos < n {
            let g = offset + pos;
            let (blk, within) = (g / self.inner, g % self.inner);
            let c = blk % self.channels;
            if within != 0 || n - pos < self.inner {
                let len = (self.inner - within).min(n - pos);
                go(pos, 1, len, c);
                pos += len;
            } else {
                let nb = (n - pos) / self.inner;
                go(pos, nb, self.inner, c);
                pos += nb * self.inner;
            }
        }
    }
}

/// Checks that a buffer has the expected dtype and length.
fn check_buf<T: Elem>(name: &str, want: DType, buf: &[T], len: usize) -> Result<(), JitError> {
    if T::DTYPE != want {
        return Err(input_err(
            name,
            format!("has dtype {}, the kernel was compiled for {want}", T::DTYPE),
        ));
    }
    if buf.len() != len {
        return Err(input_err(
            name,
            format!("has {} elements, expected {len}", buf.len()),
        ));
    }
    Ok(())
}

/// Per-tensor or per-axis parameters: one value, or one per channel of an axis, the channel of
/// flat element `i` being `(i / inner) % channels`.
fn check_axis(
    kernel: &str,
    scale: &[f32],
    zero_point: &[i32],
    inner: usize,
) -> Result<(usize, usize), JitError> {
    if scale.is_empty() {
        return Err(spec_err(kernel, "no scale".into()));
    }
    if zero_point.len() != scale.len() {
        return Err(spec_err(
            kernel,
            format!(
                "{} zero points for {} scales",
                zero_point.len(),
                scale.len()
            ),
        ));
    }
    if scale.len() == 1 {
        return Ok((1, 0));
    }
    if inner == 0 {
        return Err(spec_err(
            kernel,
            "per-axis parameters need an inner length of at least 1".into(),
        ));
    }
    Ok((scale.len(), inner))
}

/// QuantizeLinear from f32 to u8 or i8: `saturate(round_ties_even(x / scale) + zp)`, NaN → 0,
/// exactly `lpc_ref`'s `quantize_linear` (a true division, not a reciprocal multiply).
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizeSpec {
    /// Output dtype: u8 or i8.
    pub to: DType,
    /// One scale (per-tensor) or one per channel of the quantization axis.
    pub scale: Vec<f32>,
    /// Zero points, as many as scales, inside the output dtype's range.
    pub zero_point: Vec<i32>,
    /// Per-axis only: elements per channel run (the product of the dims after the axis).
    pub inner: usize,
}

/// Defines a QuantizeLinear kernel.
pub fn define_quantize(
    m: &mut CodeModule,
    spec: &QuantizeSpec,
    tier: VecTier,
) -> Result<FuncId, JitError> {
    quantize_table(spec)?;
    let unsigned = spec.to == DType::U8;
    let (lo, hi) = byte_range(spec.to).ok_or_else(|| {
        spec_err(
            "quantize",
            format!("output must be u8 or i8, got {}", spec.to),
        )
    })?;
    let op = move |b: &mut FunctionBuilder, p: &Params, c: &[Chunk]| {
        let (s, zp) = (p.f32x4(b, 0), p.f32x4(b, 1));
        let lo = b.ins().f32const(lo as f32);
        let lo = b.ins().splat(F32X4, lo);
        let hi = b.ins().f32const(hi as f32);
        let hi = b.ins().splat(F32X4, hi);
        let Chunk::Words(x) = c[0] else {
            unreachable!("f32 input loads as words")
        };
        let q = x.map(|v| quantize_lanes(b, v, s, zp, lo, hi));
        Chunk::Bytes(narrow_bytes(b, unsigned, q))
    };
    let zmm = BlockedOp::Quantize { to: spec.to };
    define_blocked(m, "quantize", &[DType::F32], spec.to, 2, &op, zmm, tier)
}

fn quantize_table(spec: &QuantizeSpec) -> Result<(Vec<u32>, usize, usize), JitError> {
    let (lo, hi) = byte_range(spec.to).ok_or_else(|| {
        spec_err(
            "quantize",
            format!("output must be u8 or i8, got {}", spec.to),
        )
    })?;
    let (channels, inner) = check_axis("quantize", &spec.scale, &spec.zero_point, spec.inner)?;
    if let Some(z) = spec.zero_point.iter().find(|&&z| z < lo || z > hi) {
        return Err(spec_err(
            "quantize",
            format!("zero point {z} is outside {}", spec.to),
        ));
    }
    let table = spec
        .scale
        .iter()
        .zip(&spec.zero_point)
        .flat_map(|(&s, &z)| [s.to_bits(), (z as f32).to_bits()])
        .collect();
    Ok((table, channels, inner))
}

/// A finalized QuantizeLinear kernel. The [`CodeModule`] it came from must outlive it.
#[derive(Debug)]
pub struct QuantizeKernel {
    blk: Blocked,
    to: DType,
}

impl QuantizeKernel {
    /// The kernel `id` of the finalized module `m`.
    ///
    /// # Safety
    /// `id` must come from [`define_quantize`] on `m` with a spec equal to `spec`.
    pub unsafe fn new(m: &CodeModule, id: FuncId, spec: &QuantizeSpec) -> Result<Self, JitError> {
        let (table, channels, inner) = quantize_table(spec)?;
        // SAFETY: forwarded from the caller.
        let blk = unsafe { Blocked::new(m, id, table, channels, inner, [4, 0, 1])? };
        Ok(QuantizeKernel { blk, to: spec.to })
    }

    /// Quantizes `x` into `y` (same length). `offset` is the flat index of `x[0]` in the whole
    /// tensor (it selects the per-axis channels; any value for per-tensor parameters), so any
    /// sub-range of a tensor can run on its own thread.
    pub fn run<Y: Elem>(&self, x: &[f32], y: &mut [Y], offset: usize) -> Result<(), JitError> {
        check_buf("y", self.to, y, x.len())?;
        // SAFETY: both buffers hold x.len() elements of the compiled sizes.
        unsafe {
            self.blk.call(
                x.as_ptr().cast(),
                std::ptr::null(),
                y.as_mut_ptr().cast(),
                x.len(),
                offset,
            )
        };
        Ok(())
    }
}

/// DequantizeLinear from u8, i8 or i32 to f32: `f32(x − zp) · scale` (per-tensor or per-axis),
/// exactly `lpc_ref`'s `dequantize_linear` with an f32 scale.
#[derive(Clone, Debug, PartialEq)]
pub struct DequantizeSpec {
    /// Input dtype: u8, i8 or i32.
    pub from: DType,
    /// One scale (per-tensor) or one per channel of the quantization axis.
    pub scale: Vec<f32>,
    /// Zero points, as many as scales.
    pub zero_point: Vec<i32>,
    /// Per-axis only: elements per channel run (the product of the dims after the axis).
    pub inner: usize,
}

fn dequantize_table(spec: &DequantizeSpec) -> Result<(Vec<u32>, usize, usize), JitError> {
    if !matches!(spec.from, DType::U8 | DType::I8 | DType::I32) {
        return Err(spec_err(
            "dequantize",
            format!("input must be u8, i8 or i32, got {}", spec.from),
        ));
    }
    let (channels, inner) = check_axis("dequantize", &spec.scale, &spec.zero_point, spec.inner)?;
    let table = spec
        .scale
        .iter()
        .zip(&spec.zero_point)
        .flat_map(|(&s, &z)| [s.to_bits(), z as u32])
        .collect();
    Ok((table, channels, inner))
}

/// Defines a DequantizeLinear kernel.
pub fn define_dequantize(
    m: &mut CodeModule,
    spec: &DequantizeSpec,
    tier: VecTier,
) -> Result<FuncId, JitError> {
    dequantize_table(spec)?;
    let from = spec.from;
    let op = move |b: &mut FunctionBuilder, p: &Params, c: &[Chunk]| {
        let (s, zp) = (p.f32x4(b, 0), p.i32x4(b, 1));
        let x = chunk_i32(b, from, c[0]);
        Chunk::Words(x.map(|v| dequantize_lanes(b, v, zp, s)))
    };
    let zmm = BlockedOp::Dequantize { from };
    define_blocked(m, "dequantize", &[from], DType::F32, 2, &op, zmm, tier)
}

/// A finalized DequantizeLinear kernel. The [`CodeModule`] it came from must outlive it.
#[derive(Debug)]
pub struct DequantizeKernel {
    blk: Blocked,
    from: DType,
}

impl DequantizeKernel {
    /// The kernel `id` of the finalized module `m`.
    ///
    /// # Safety
    /// `id` must come from [`define_dequantize`] on `m` with a spec equal to `spec`.
    pub unsafe fn new(m: &CodeModule, id: FuncId, spec: &DequantizeSpec) -> Result<Self, JitError> {
        let (table, channels, inner) = dequantize_table(spec)?;
        let s = elem_size(spec.from);
        // SAFETY: forwarded from the caller.
        let blk = unsafe { Blocked::new(m, id, table, channels, inner, [s, 0, 4])? };
        Ok(DequantizeKernel {
            blk,
            from: spec.from,
        })
    }

    /// Dequantizes `x` into `y` (same length); `offset` as in [`QuantizeKernel::run`].
    pub fn run<X: Elem>(&self, x: &[X], y: &mut [f32], offset: usize) -> Result<(), JitError> {
        check_buf("x", self.from, x, y.len())?;
        // SAFETY: both buffers hold y.len() elements of the compiled sizes.
        unsafe {
            self.blk.call(
                x.as_ptr().cast(),
                std::ptr::null(),
                y.as_mut_ptr().cast(),
                y.len(),
                offset,
            )
        };
        Ok(())
    }
}

/// Requantize with per-tensor parameters:
/// `saturate(round_ties_even(f32(x − x_zp)·x_scale / y_scale) + y_zp)`, f32 arithmetic in that
/// order, exactly `lpc_ref`'s `requantize_op`.
#[derive(Clone, Debug, PartialEq)]
pub struct RequantizeSpec {
    /// Input dtype: u8, i8 or i32.
    pub from: DType,
    /// Input scale.
    pub x_scale: f32,
    /// Input zero point.
    pub x_zero_point: i32,
    /// Output dtype: u8 or i8.
    pub to: DType,
    /// Output scale.
    pub y_scale: f32,
    /// Output zero point, inside the output dtype's range.
    pub y_zero_point: i32,
}

fn requantize_table(spec: &RequantizeSpec) -> Result<Vec<u32>, JitError> {
    if !matches!(spec.from, DType::U8 | DType::I8 | DType::I32) {
        return Err(spec_err(
            "requantize",
            format!("input must be u8, i8 or i32, got {}", spec.from),
        ));
    }
    let (lo, hi) = byte_range(spec.to).ok_or_else(|| {
        spec_err(
            "requantize",
            format!("output must be u8 or i8, got {}", spec.to),
        )
    })?;
    if spec.y_zero_point < lo || spec.y_zero_point > hi {
        return Err(spec_err(
            "requantize",
            format!("zero point {} is outside {}", spec.y_zero_point, spec.to),
        ));
    }
    Ok(vec![
        spec.x_scale.to_bits(),
        spec.x_zero_point as u32,
        spec.y_scale.to_bits(),
        (spec.y_zero_point as f32).to_bits(),
        (lo as f32).to_bits(),
        (hi as f32).to_bits(),
    ])
}

/// Defines a Requantize kernel.
pub fn define_requantize(
    m: &mut CodeModule,
    spec: &RequantizeSpec,
    tier: VecTier,
) -> Result<FuncId, JitError> {
    requantize_table(spec)?;
    let (from, unsigned) = (spec.from, spec.to == DType::U8);
    let op = move |b: &mut FunctionBuilder, p: &Params, c: &[Chunk]| {
        let (xs, xz, ys, yz) = (p.f32x4(b, 0), p.i32x4(b, 1), p.f32x4(b, 2), p.f32x4(b, 3));
        let (lo, hi) = (p.f32x4(b, 4), p.f32x4(b, 5));
        let x = chunk_i32(b, from, c[0]);
        let q = x.map(|v| {
            let d = dequantize_lanes(b, v, xz, xs);
            quantize_lanes(b, d, ys, yz, lo, hi)
        });
        Chunk::Bytes(narrow_bytes(b, unsigned, q))
    };
    let zmm = BlockedOp::Requantize { from, to: spec.to };
    define_blocked(m, "requantize", &[from], spec.to, 6, &op, zmm, tier)
}

/// A finalized Requantize kernel. The [`CodeModule`] it came from must outlive it.
#[derive(Debug)]
pub struct RequantizeKernel {
    blk: Blocked,
    from: DType,
    to: DType,
}

impl RequantizeKernel {
    /// The kernel `id` of the finalized module `m`.
    ///
    /// # Safety
    /// `id` must come from [`define_requantize`] on `m` with a spec equal to `spec`.
    pub unsafe fn new(m: &CodeModule, id: FuncId, spec: &RequantizeSpec) -> Result<Self, JitError> {
        let table = requantize_table(spec)?;
        let s = elem_size(spec.from);
        // SAFETY: forwarded from the caller.
        let blk = unsafe { Blocked::new(m, id, table, 1, 0, [s, 0, 1])? };
        Ok(RequantizeKernel {
            blk,
            from: spec.from,
            to: spec.to,
        })
    }

    /// Requantizes `x` into `y` (same length; any sub-range of a tensor).
    pub fn run<X: Elem, Y: Elem>(&self, x: &[X], y: &mut [Y]) -> Result<(), JitError> {
        check_buf("x", self.from, x, y.len())?;
        check_buf("y", self.to, y, x.len())?;
        // SAFETY: both buffers hold y.len() elements of the compiled sizes.
        unsafe {
            self.blk.call(
                x.as_ptr().cast(),
                std::ptr::null(),
                y.as_mut_ptr().cast(),
                y.len(),
                0,
            )
        };
        Ok(())
    }
}

/// QAdd of two same-shape tensors with per-tensor parameters:
/// `clamp(round_ties_even((f32(a − a_zp)·a_scale + f32(b − b_zp)·b_scale) / y_scale) + y_zp,
/// lo, hi)` in f32, NaN → 0, exactly `lpc_ref`'s `qadd`.
#[derive(Clone, Debug, PartialEq)]
pub struct QAddSpec {
    /// First operand's dtype: u8, i8 or i32.
    pub a: DType,
    /// First operand's scale.
    pub a_scale: f32,
    /// First operand's zero point.
    pub a_zero_point: i32,
    /// Second operand's dtype: u8, i8 or i32.
    pub b: DType,
    /// Second operand's scale.
    pub b_scale: f32,
    /// Second operand's zero point.
    pub b_zero_point: i32,
    /// Output dtype: u8 or i8.
    pub to: DType,
    /// Output scale.
    pub y_scale: f32,
    /// Output zero point, inside the output dtype's range.
    pub y_zero_point: i32,
    /// Lower clamp (a fused activation); intersected with the dtype's range.
    pub lo: i32,
    /// Upper clamp; intersected with the dtype's range.
    pub hi: i32,
}

fn qadd_table(spec: &QAddSpec) -> Result<Vec<u32>, JitError> {
    for d in [spec.a, spec.b] {
        if !matches!(d, DType::U8 | DType::I8 | DType::I32) {
            return Err(spec_err(
                "qadd",
                format!("operands must be u8, i8 or i32, got {d}"),
            ));
        }
    }
    let (dlo, dhi) = byte_range(spec.to)
        .ok_or_else(|| spec_err("qadd", format!("output must be u8 or i8, got {}", spec.to)))?;
    if spec.y_zero_point < dlo || spec.y_zero_point > dhi {
        return Err(spec_err(
            "qadd",
            format!("zero point {} is outside {}", spec.y_zero_point, spec.to),
        ));
    }
    let (lo, hi) = (spec.lo.max(dlo), spec.hi.min(dhi));
    if lo > hi {
        return Err(spec_err(
            "qadd",
            format!("empty clamp range [{}, {}]", spec.lo, spec.hi),
        ));
    }
    Ok(vec![
        spec.a_scale.to_bits(),
        spec.a_zero_point as u32,
        spec.b_scale.to_bits(),
        spec.b_zero_point as u32,
        spec.y_scale.to_bits(),
        (spec.y_zero_point as f32).to_bits(),
        (lo as f32).to_bits(),
        (hi as f32).to_bits(),
    ])
}

/// Defines a QAdd kernel.
pub fn define_qadd(m: &mut CodeModule, spec: &QAddSpec, tier: VecTier) -> Result<FuncId, JitError> {
    qadd_table(spec)?;
    let (da, db, unsigned) = (spec.a, spec.b, spec.to == DType::U8);
    let op = move |b: &mut FunctionBuilder, p: &Params, c: &[Chunk]| {
        let (sa, za, sb, zb) = (p.f32x4(b, 0), p.i32x4(b, 1), p.f32x4(b, 2), p.i32x4(b, 3));
        let (ys, yz, lo, hi) = (p.f32x4(b, 4), p.f32x4(b, 5), p.f32x4(b, 6), p.f32x4(b, 7));
        let xa = chunk_i32(b, da, c[0]);
        let xb = chunk_i32(b, db, c[1]);
        let mut q = xa;
        for k in 0..4 {
            let fa = dequantize_lanes(b, xa[k], za, sa);
            let fb = dequantize_lanes(b, xb[k], zb, sb);
            let sum = b.ins().fadd(fa, fb);
            q[k] = quantize_lanes(b, sum, ys, yz, lo, hi);
        }
        Chunk::Bytes(narrow_bytes(b, unsigned, q))
    };
    let zmm = BlockedOp::QAdd {
        a: da,
        b: db,
        to: spec.to,
    };
    define_blocked(m, "qadd", &[da, db], spec.to, 8, &op, zmm, tier)
}

/// A finalized QAdd kernel. The [`CodeModule`] it came from must outlive it.
#[derive(Debug)]
pub struct QAddKernel {
    blk: Blocked,
    a: DType,
    b: DType,
    to: DType,
}

impl QAddKernel {
    /// The kernel `id` of the finalized module `m`.
    ///
    /// # Safety
    /// `id` must come from [`define_qadd`] on `m` with a spec equal to `spec`.
    pub unsafe fn new(m: &CodeModule, id: FuncId, spec: &QAddSpec) -> Result<Self, JitError> {
        let table = qadd_table(spec)?;
        let sizes = [elem_size(spec.a), elem_size(spec.b), 1];
        // SAFETY: forwarded from the caller.
        let blk = unsafe { Blocked::new(m, id, table, 1, 0, sizes)? };
        Ok(QAddKernel {
            blk,
            a: spec.a,
            b: spec.b,
            to: spec.to,
        })
    }

    /// `y = a ⊕ b` elementwise (all three the same length; any sub-range of a tensor).
    pub fn run<A: Elem, B: Elem, Y: Elem>(
        &self,
        a: &[A],
        b: &[B],
        y: &mut [Y],
    ) -> Result<(), JitError> {
        check_buf("a", self.a, a, y.len())?;
        check_buf("b", self.b, b, y.len())?;
        check_buf("y", self.to, y, y.len())?;
        // SAFETY: the three buffers hold y.len() elements of the compiled sizes.
        unsafe {
            self.blk.call(
                a.as_ptr().cast(),
                b.as_ptr().cast(),
                y.as_mut_ptr().cast(),
                y.len(),
                0,
            )
        };
        Ok(())
    }
}

/// Lut: `y = table[x − min(dtype)]` for u8/i8 `x` and a 256-entry table of u8, i8, i32 or f32
/// (the output has the table's dtype), exactly `lpc_ref`'s `lut`.
#[derive(Clone, Debug, PartialEq)]
pub struct LutSpec {
    /// Input dtype: u8 or i8.
    pub from: DType,
    /// The table's dtype: u8, i8, i32 or f32.
    pub to: DType,
    /// The 256 entries as little-endian bytes (256 × the element size).
    pub table: Vec<u8>,
}

fn check_lut(spec: &LutSpec) -> Result<(), JitError> {
    if byte_range(spec.from).is_none() {
        return Err(spec_err(
            "lut",
            format!("input must be u8 or i8, got {}", spec.from),
        ));
    }
    let s = elem_size(spec.to);
    if s == 0 {
        return Err(spec_err(
            "lut",
            format!("table must be u8, i8, i32 or f32, got {}", spec.to),
        ));
    }
    if spec.table.len() != 256 * s {
        return Err(spec_err(
            "lut",
            format!(
                "table has {} bytes, expected 256 entries of {s}",
                spec.table.len()
            ),
        ));
    }
    Ok(())
}

/// Defines a Lut kernel: a scalar loop `fn(x, y, n, table)`.
pub fn define_lut(m: &mut CodeModule, spec: &LutSpec) -> Result<FuncId, JitError> {
    check_lut(spec)?;
    let p = m.ptr();
    let (signed, s) = (spec.from == DType::I8, elem_size(spec.to));
    let t = if s == 1 { I8 } else { I32 };
    m.define(&unique_name("lut"), &[p, p, I64, p], |b, args| {
        let (x, y, n, table) = (args[0], args[1], args[2], args[3]);
        let zero = b.ins().iconst(I64, 0);
        emit_loop(b, zero, n, 1, |b, i| {
            let a = b.ins().iadd(x, i);
            let idx = if signed {
                let v = b.ins().sload8(I64, mem(), a, 0);
                b.ins().iadd_imm_s(v, 128)
            } else {
                b.ins().uload8(I64, mem(), a, 0)
            };
            let off = b.ins().imul_imm_s(idx, s as i64);
            let e = b.ins().iadd(table, off);
            let v = b.ins().load(t, mem(), e, 0);
            let off = b.ins().imul_imm_s(i, s as i64);
            let d = b.ins().iadd(y, off);
            b.ins().store(mem(), v, d, 0);
        });
        b.ins().return_(&[]);
    })
}

type LutFn = unsafe extern "C" fn(*const u8, *mut u8, i64, *const u8);

/// A finalized Lut kernel (owns its table). The [`CodeModule`] it came from must outlive it.
#[derive(Debug)]
pub struct LutKernel {
    f: LutFn,
    from: DType,
    to: DType,
    table: Vec<u8>,
}

impl LutKernel {
    /// The kernel `id` of the finalized module `m`.
    ///
    /// # Safety
    /// `id` must come from [`define_lut`] on `m` with a spec equal to `spec`.
    pub unsafe fn new(m: &CodeModule, id: FuncId, spec: &LutSpec) -> Result<Self, JitError> {
        check_lut(spec)?;
        // The caller guarantees `id` has this signature (see `CodeModule::func`).
        let f: LutFn = m.func(id)?;
        Ok(LutKernel {
            f,
            from: spec.from,
            to: spec.to,
            table: spec.table.clone(),
        })
    }

    /// Looks every element of `x` up into `y` (same length; any sub-range).
    pub fn run<X: Elem, Y: Elem>(&self, x: &[X], y: &mut [Y]) -> Result<(), JitError> {
        check_buf("x", self.from, x, y.len())?;
        check_buf("y", self.to, y, x.len())?;
        // SAFETY: both buffers hold y.len() elements; every index is < 256.
        unsafe {
            (self.f)(
                x.as_ptr().cast(),
                y.as_mut_ptr().cast(),
                y.len() as i64,
                self.table.as_ptr(),
            )
        };
        Ok(())
    }
}
