//! MaxPool on u8/i8 NCHW planes compiled with Cranelift (16 output columns per step), bit-exact
//! to `lpc-ref`, and the padded-plane machinery it shares with the depthwise convolution.
//!
//! lpc-ref defines no integer AveragePool or GlobalAveragePool (it rejects integer inputs), so
//! there is no integer average kernel here.

use cranelift_codegen::ir::types::{I64, I8, I8X16};
use cranelift_codegen::ir::{ConstantData, InstBuilder, StackSlotData, StackSlotKind, Value};
use cranelift_frontend::FunctionBuilder;
use cranelift_module::FuncId;
use lpc_ir::{DType, PoolAttrs};
use lpc_ref::geom::{geometry, Geom};

use crate::kernels::emit::{
    byte_range, emit_copy, emit_loop, input_err, mem, spec_err, store_chunk, unique_name, Chunk,
    Elem,
};
use crate::{CodeModule, JitError};

/// How one input plane is laid into a padded scratch plane, so kernels read every tap without
/// bounds checks: `hp × wp` bytes, the input at row `top`, column `left`, the rest a fill value.
/// The width leaves room for the 16-column steps (and their stride-2 second load) past the
/// last output column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PadLayout {
    pub h: usize,
    pub w: usize,
    pub top: usize,
    pub left: usize,
    pub hp: usize,
    pub wp: usize,
}

impl PadLayout {
    /// The layout for a 2-D geometry, read in 16-column steps with horizontal stride `sw`.
    pub fn new(g: &Geom) -> PadLayout {
        let (h, w) = (g.input[0], g.input[1]);
        let (top, left) = (g.pad_begin[0], g.pad_begin[1]);
        let (oh, ow) = (g.output[0], g.output[1]);
        let (kh, kw) = (g.kernel[0], g.kernel[1]);
        let (sh, sw) = (g.strides[0], g.strides[1]);
        let hp = (top + h).max((oh.max(1) - 1) * sh + kh);
        let wp = (left + w).max(ow.div_ceil(16) * 16 * sw + kw);
        PadLayout {
            h,
            w,
            top,
            left,
            hp,
            wp,
        }
    }

    /// A scratch plane of the fill byte.
    pub fn scratch(&self, fill: u8) -> Vec<u8> {
        vec![fill; self.hp * self.wp]
    }

    /// Copies one input plane (`h·w` bytes) into its place in `scratch`.
    pub fn copy_in(&self, scratch: &mut [u8], plane: &[u8]) {
        for (r, src) in plane.chunks_exact(self.w.max(1)).take(self.h).enumerate() {
            let d = (r + self.top) * self.wp + self.left;
            crate::runtime::memory::copy_run(&mut scratch[d..d + self.w], src);
        }
    }
}

/// The raw bytes of a slice of plain numbers.
pub(crate) fn bytes_of<T: Elem>(x: &[T]) -> &[u8] {
    // SAFETY: every `Elem` is a plain number type without padding or invalid bit patterns.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast(), std::mem::size_of_val(x)) }
}

/// The widest horizontal stride [`load_cols`] gathers (one shuffle per further 16 bytes).
pub(crate) const MAX_STRIDE_W: usize = 4;

/// Loads the 16 bytes of columns `p, p+sw, …, p+15·sw` (`sw` 1 to [`MAX_STRIDE_W`]) at byte
/// offset `off`: `sw` 16-byte loads, the first two shuffled together, then each further one
/// shuffled into the lanes it holds.
pub(crate) fn load_cols(b: &mut FunctionBuilder, p: Value, off: i32, sw: usize) -> Value {
    debug_assert!((1..=MAX_STRIDE_W).contains(&sw));
    let a = b.ins().load(I8X16, mem(), p, off);
    if sw == 1 {
        return a;
    }
    let c = b.ins().load(I8X16, mem(), p, off + 16);
    // Lanes whose column lies in the first 32 bytes; the others are filled below.
    let first: Vec<u8> = (0..16).map(|k| ((k * sw) as u8).min(31)).collect();
    let imm = b.func.dfg.immediates.push(ConstantData::from(first));
    let mut acc = b.ins().shuffle(a, c, imm);
    for q in 2..sw {
        let d = b.ins().load(I8X16, mem(), p, off + 16 * q as i32);
        let lanes: Vec<u8> = (0..16)
            .map(|k| match k * sw {
                col if (16 * q..16 * (q + 1)).contains(&col) => (16 + col - 16 * q) as u8,
                _ => k as u8,
            })
            .collect();
        let imm = b.func.dfg.immediates.push(ConstantData::from(lanes));
        acc = b.ins().shuffle(acc, d, imm);
    }
    acc
}

/// Emits one output row of `ow` elements of `esize` bytes at `yrow`, 16 per step: `chunk(ox0)`
/// computes outputs `ox0..ox0+16`; the last partial step goes through the 64-byte stack slot.
pub(crate) fn emit_row(
    b: &mut FunctionBuilder,
    ow: usize,
    esize: usize,
    yrow: Value,
    chunk: &dyn Fn(&mut FunctionBuilder, Value) -> Chunk,
) {
    let full = ow / 16 * 16;
    if full > 0 {
        let zero = b.ins().iconst(I64, 0);
        let end = b.ins().iconst(I64, full as i64);
        emit_loop(b, zero, end, 16, |b, ox0| {
            let c = chunk(b, ox0);
            let off = b.ins().imul_imm_s(ox0, esize as i64);
            let a = b.ins().iadd(yrow, off);
            store_chunk(b, a, c);
        });
    }
    if ow > full {
        let slot =
            b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 64, 4));
        let ox0 = b.ins().iconst(I64, full as i64);
        let c = chunk(b, ox0);
        let s = b.ins().stack_addr(I64, slot, 0);
        store_chunk(b, s, c);
        let d = b.ins().iadd_imm_s(yrow, (full * esize) as i64);
        let n = b.ins().iconst(I64, ((ow - full) * esize) as i64);
        emit_copy(b, d, s, n);
    }
}

/// A 2-D window's attributes, as [`window_geometry`] takes them from a pool or a conv.
pub(crate) struct WindowAttrs<'a> {
    /// The window's (height, width): the weights' for a conv.
    pub kernel_hw: [usize; 2],
    /// The op's kernel attribute (empty: from `kernel_hw`).
    pub attrs_kernel: &'a [usize],
    /// Strides per spatial axis; empty means all 1.
    pub strides: &'a [usize],
    /// Dilations per spatial axis; empty means all 1.
    pub dilations: &'a [usize],
    /// Pads `[begin..., end...]`; empty means all 0.
    pub pads: &'a [usize],
    /// Padding mode.
    pub auto_pad: lpc_ir::AutoPad,
    /// Round output sizes up instead of down.
    pub ceil_mode: bool,
}

/// Resolves and checks a 2-D window geometry for the vector kernels: dilation 1, horizontal
/// stride 1 to [`MAX_STRIDE_W`], every window touching the input, at most 1024 taps.
pub(crate) fn window_geometry(
    kernel: &str,
    in_hw: [usize; 2],
    w: &WindowAttrs,
) -> Result<Geom, JitError> {
    let &WindowAttrs {
        kernel_hw,
        attrs_kernel,
        strides,
        dilations,
        pads,
        auto_pad,
        ceil_mode,
    } = w;
    if !attrs_kernel.is_empty() && attrs_kernel != kernel_hw {
        return Err(spec_err(
            kernel,
            format!("kernel attribute {attrs_kernel:?} differs from the weights' {kernel_hw:?}"),
        ));
    }
    let g = geometry(
        &in_hw, &kernel_hw, strides, dilations, pads, auto_pad, ceil_mode,
    )
    .map_err(|e| spec_err(kernel, e.to_string()))?;
    if g.dilations.iter().any(|&d| d != 1) {
        return Err(spec_err(
            kernel,
            format!("unsupported: dilations {:?}", g.dilations),
        ));
    }
    if !(1..=MAX_STRIDE_W).contains(&g.strides[1]) {
        return Err(spec_err(
            kernel,
            format!("unsupported: horizontal stride {}", g.strides[1]),
        ));
    }
    if g.kernel[0] * g.kernel[1] > 1024 {
        return Err(spec_err(
            kernel,
            format!("unsupported: {:?} kernel is too large", g.kernel),
        ));
    }
    for (a, taps) in g.taps().iter().enumerate() {
        if (0..g.output[a]).any(|o| taps.iter().all(|t| t[o].is_none())) {
            return Err(spec_err(
                kernel,
                format!("unsupported: a window lies entirely in the padding on axis {a}"),
            ));
        }
    }
    Ok(g)
}

/// MaxPool over u8 or i8 NCHW planes. Padding never wins (it reads the dtype's minimum).
/// Kernel, strides, pads, auto_pad and ceil_mode follow `lpc_ref` exactly; dilations must be 1,
/// the horizontal stride 1 to [`MAX_STRIDE_W`], and every window must touch the input (lpc-ref outputs 0 for
/// an all-padding window), else `define_max_pool` returns an "unsupported" error.
#[derive(Clone, Debug, PartialEq)]
pub struct MaxPoolSpec {
    /// Element dtype: u8 or i8.
    pub dtype: DType,
    /// Input height and width.
    pub in_hw: [usize; 2],
    /// The pooling attributes (2 spatial axes).
    pub attrs: PoolAttrs,
}

fn max_pool_geometry(spec: &MaxPoolSpec) -> Result<Geom, JitError> {
    if byte_range(spec.dtype).is_none() {
        return Err(spec_err(
            "max_pool",
            format!("input must be u8 or i8, got {}", spec.dtype),
        ));
    }
    let a = &spec.attrs;
    if a.kernel.len() != 2 {
        return Err(spec_err(
            "max_pool",
            format!("unsupported: kernel {:?} (2-D only)", a.kernel),
        ));
    }
    let w = WindowAttrs {
        kernel_hw: [a.kernel[0], a.kernel[1]],
        attrs_kernel: &a.kernel,
        strides: &a.strides,
        dilations: &a.dilations,
        pads: &a.pads,
        auto_pad: a.auto_pad,
        ceil_mode: a.ceil_mode,
    };
    window_geometry("max_pool", spec.in_hw, &w)
}

/// Defines a MaxPool kernel `fn(padded_plane, y_plane)` for one plane.
pub fn define_max_pool(m: &mut CodeModule, spec: &MaxPoolSpec) -> Result<FuncId, JitError> {
    let g = max_pool_geometry(spec)?;
    let lay = PadLayout::new(&g);
    let signed = spec.dtype == DType::I8;
    let (oh, ow) = (g.output[0], g.output[1]);
    let (kh, kw) = (g.kernel[0], g.kernel[1]);
    let (sh, sw) = (g.strides[0], g.strides[1]);
    let p = m.ptr();
    m.define(&unique_name("max_pool"), &[p, p], |b, args| {
        let (x, y) = (args[0], args[1]);
        let zero = b.ins().iconst(I64, 0);
        let end = b.ins().iconst(I64, oh as i64);
        emit_loop(b, zero, end, 1, |b, oy| {
            let off = b.ins().imul_imm_s(oy, (sh * lay.wp) as i64);
            let rb = b.ins().iadd(x, off);
            let off = b.ins().imul_imm_s(oy, ow as i64);
            let yrow = b.ins().iadd(y, off);
            let chunk = |b: &mut FunctionBuilder, ox0: Value| {
                let off = b.ins().imul_imm_s(ox0, sw as i64);
                let p = b.ins().iadd(rb, off);
                let min = b.ins().iconst(I8, if signed { -128 } else { 0 });
                let mut acc = b.ins().splat(I8X16, min);
                for ky in 0..kh {
                    for kx in 0..kw {
                        let v = load_cols(b, p, (ky * lay.wp + kx) as i32, sw);
                        acc = if signed {
                            b.ins().smax(acc, v)
                        } else {
                            b.ins().umax(acc, v)
                        };
                    }
                }
                Chunk::Bytes(acc)
            };
            emit_row(b, ow, 1, yrow, &chunk);
        });
        b.ins().return_(&[]);
    })
}

type PlaneFn = unsafe extern "C" fn(*const u8, *mut u8);

/// A finalized MaxPool kernel. The [`CodeModule`] it came from must outlive it.
#[derive(Debug)]
pub struct MaxPoolKernel {
    f: PlaneFn,
    dtype: DType,
    lay: PadLayout,
    out_hw: [usize; 2],
}

impl MaxPoolKernel {
    /// The kernel `id` of the finalized module `m`.
    ///
    /// # Safety
    /// `id` must come from [`define_max_pool`] on `m` with a spec equal to `spec`.
    pub unsafe fn new(m: &CodeModule, id: FuncId, spec: &MaxPoolSpec) -> Result<Self, JitError> {
        let g = max_pool_geometry(spec)?;
        // The caller guarantees `id` has this signature (see `CodeModule::func`).
        let f: PlaneFn = m.func(id)?;
        Ok(MaxPoolKernel {
            f,
            dtype: spec.dtype,
            lay: PadLayout::new(&g),
            out_hw: [g.output[0], g.output[1]],
        })
    }

    /// Output height and width.
    pub fn out_hw(&self) -> [usize; 2] {
        self.out_hw
    }

    /// Pools whole planes: `x` holds `P·H·W` elements, `y` `P·OH·OW` (any `P`, so a batch or a
    /// range of channels can run on its own thread).
    pub fn run<T: Elem>(&self, x: &[T], y: &mut [T]) -> Result<(), JitError> {
        if T::DTYPE != self.dtype {
            return Err(input_err(
                "x",
                format!(
                    "has dtype {}, the kernel was compiled for {}",
                    T::DTYPE,
                    self.dtype
                ),
            ));
        }
        let (in_n, on) = (self.lay.h * self.lay.w, self.out_hw[0] * self.out_hw[1]);
        let planes = run_planes(x.len(), y.len(), in_n, on)?;
        let fill = if self.dtype == DType::I8 { 0x80 } else { 0 };
        let mut scratch = self.lay.scratch(fill);
        let xb = bytes_of(x);
        let yp = y.as_mut_ptr().cast::<u8>();
        for k in 0..planes {
            self.lay
                .copy_in(&mut scratch, &xb[k * in_n..(k + 1) * in_n]);
            // SAFETY: the scratch is the compiled layout; the output plane is in bounds.
            unsafe { (self.f)(scratch.as_ptr(), yp.add(k * on)) };
        }
        Ok(())
    }
}

/// The number of planes of matching input and output buffers.
pub(crate) fn run_planes(
    x_len: usize,
    y_len: usize,
    in_n: usize,
    on: usize,
) -> Result<usize, JitError> {
    if in_n == 0 || on == 0 {
        return Err(input_err("x", "empty planes".into()));
    }
    if !x_len.is_multiple_of(in_n) {
        return Err(input_err(
            "x",
            format!("has {x_len} elements, not a whole number of {in_n}-element planes"),
        ));
    }
    let planes = x_len / in_n;
    if y_len != planes * on {
        return Err(input_err(
            "y",
            format!(
                "has {y_len} elements, expected {} for {planes} planes",
                planes * on
            ),
        ));
    }
    Ok(planes)
}
