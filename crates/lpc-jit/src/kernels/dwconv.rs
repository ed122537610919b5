//! Depthwise QConv (group = C_in = C_out, i8 weights [C,1,kh,kw]) on u8/i8 NCHW planes compiled
//! with Cranelift, 16 output pixels per step, bit-exact to `lpc_ref`'s `qconv`.
//!
//! Per plane, the input is copied into a scratch plane padded with `x_zp`; the kernel computes
//! `acc = Σ x·w + (bias − x_zp·Σw)` (the same integer as `Σ (x − x_zp)·w + bias`, wrapping like
//! the oracle's bias add) into i32x4 accumulators, then the canonical requantize or the f32
//! scale. Two dot paths ([`DwPath`]):
//!
//! * **VNNI** (hosts with `vpdpbusd`): per kernel row and group of 4 output pixels, one 16-byte
//!   load and, per 4 taps of the row, a `pshufb` that gathers each pixel's 4 taps into one
//!   dword and a `vpdpbusd` against the 4 weights (zero beyond the kernel width): 16 exact
//!   u8·i8 products per instruction. i8 inputs are flipped to u8 in the register (`x ^ 0x80`,
//!   i.e. `x + 128`, with the zero point folded as `x_zp + 128`).
//! * **Exact i16** (any SSE4.1 host): per tap, the 16 pixels widened to i16, multiplied by the
//!   weight (|u8·i8| ≤ 32,640 fits) and widened into the accumulators.

use cranelift_codegen::ir::types::{F32, F32X4, I16X8, I32, I32X4, I64, I8X16};
use cranelift_codegen::ir::{ConstantData, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use cranelift_module::FuncId;
use lpc_ir::{ConvAttrs, DType};

use crate::kernels::emit::{
    byte_range, clamp_to_i32, emit_loop, input_err, mem, narrow_bytes, spec_err, unique_name,
    Chunk, Elem,
};
use crate::kernels::gemm::vnni_dot;
use crate::kernels::pool::{
    bytes_of, emit_row, load_cols, run_planes, window_geometry, PadLayout, WindowAttrs,
};
use crate::{CodeModule, JitError};

/// What the depthwise convolution produces.
#[derive(Clone, Debug, PartialEq)]
pub enum DwOutput {
    /// `clamp(round_ties_even(f32(acc)·scale) + zero_point, lo, hi)` in `dtype` (u8 or i8);
    /// `lo`/`hi` are intersected with the dtype's range (a fused ReLU/Clip).
    Quantized {
        /// u8 or i8.
        dtype: DType,
        /// Output zero point.
        zero_point: i32,
        /// Lower clamp.
        lo: i32,
        /// Upper clamp.
        hi: i32,
    },
    /// `f32(acc)·scale` (QConv without a y_zero_point).
    Float,
}

/// A depthwise QConv: every parameter is a compile-time constant, prepacked by
/// [`DwConvKernel::new`].
#[derive(Clone, Debug, PartialEq)]
pub struct DwConvSpec {
    /// Input dtype: u8 or i8.
    pub x_dtype: DType,
    /// Input zero point (padding reads it, so padded taps add 0).
    pub x_zero_point: i32,
    /// Input height and width.
    pub in_hw: [usize; 2],
    /// Convolution attributes; `group` must equal the channel count.
    pub attrs: ConvAttrs,
    /// Kernel height and width (the weights' last two dims).
    pub kernel_hw: [usize; 2],
    /// Weights `[C, 1, kh, kw]`, row-major.
    pub weights: Vec<i8>,
    /// Bias, one per channel (absent: 0).
    pub bias: Option<Vec<i32>>,
    /// Scale: one, or one per channel.
    pub scale: Vec<f32>,
    /// The epilogue.
    pub output: DwOutput,
}

/// Which dot-product sequence a depthwise kernel uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DwPath {
    /// `pshufb` + `vpdpbusd` (needs VNNI).
    Vnni,
    /// Widening i16 multiplies (any SSE4.1 host).
    ExactI16,
}

impl DwPath {
    /// The best path for the module's host.
    pub fn best(m: &CodeModule) -> DwPath {
        if m.features().vnni {
            DwPath::Vnni
        } else {
            DwPath::ExactI16
        }
    }
}

/// Bytes read past a scratch plane's end by the VNNI path's 16-byte loads.
const SLACK: usize = 32;

/// The checked shape of a spec.
struct Plan {
    channels: usize,
    taps: usize,
    lay: PadLayout,
    out_hw: [usize; 2],
    strides: [usize; 2],
    kernel: [usize; 2],
    /// Quantized output: (unsigned, zp, lo − zp, hi − zp); None for f32.
    quant: Option<(bool, i32, i32, i32)>,
}

fn plan(spec: &DwConvSpec) -> Result<Plan, JitError> {
    let k = "depthwise_qconv";
    if byte_range(spec.x_dtype).is_none() {
        return Err(spec_err(
            k,
            format!("input must be u8 or i8, got {}", spec.x_dtype),
        ));
    }
    let (xlo, xhi) = byte_range(spec.x_dtype).unwrap_or((0, 0));
    if spec.x_zero_point < xlo || spec.x_zero_point > xhi {
        return Err(spec_err(
            k,
            format!(
                "x zero point {} is outside {}",
                spec.x_zero_point, spec.x_dtype
            ),
        ));
    }
    let taps = spec.kernel_hw[0] * spec.kernel_hw[1];
    if taps == 0 || !spec.weights.len().is_multiple_of(taps) {
        return Err(spec_err(
            k,
            format!(
                "{} weights do not fit a {:?} kernel",
                spec.weights.len(),
                spec.kernel_hw
            ),
        ));
    }
    let channels = spec.weights.len() / taps;
    if channels == 0 || spec.attrs.group != channels {
        return Err(spec_err(
            k,
            format!(
                "group {} is not the channel count {channels} (not depthwise)",
                spec.attrs.group
            ),
        ));
    }
    if let Some(bias) = &spec.bias {
        if bias.len() != channels {
            return Err(spec_err(
                k,
                format!("bias has {} values, {channels} channels", bias.len()),
            ));
        }
    }
    if spec.scale.len() != 1 && spec.scale.len() != channels {
        return Err(spec_err(
            k,
            format!(
                "scale has {} values, expected 1 or {channels}",
                spec.scale.len()
            ),
        ));
    }
    let a = &spec.attrs;
    let w = WindowAttrs {
        kernel_hw: spec.kernel_hw,
        attrs_kernel: &a.kernel,
        strides: &a.strides,
        dilations: &a.dilations,
        pads: &a.pads,
        auto_pad: a.auto_pad,
        ceil_mode: false,
    };
    let g = window_geometry(k, spec.in_hw, &w)?;
    let quant = match &spec.output {
        DwOutput::Float => None,
        &DwOutput::Quantized {
            dtype,
            zero_point,
            lo,
            hi,
        } => {
            let (dlo, dhi) = byte_range(dtype)
                .ok_or_else(|| spec_err(k, format!("output must be u8 or i8, got {dtype}")))?;
            if zero_point < dlo || zero_point > dhi {
                return Err(spec_err(
                    k,
                    format!("output zero point {zero_point} is outside {dtype}"),
                ));
            }
            let (lo, hi) = (lo.max(dlo), hi.min(dhi));
            if lo > hi {
                return Err(spec_err(k, format!("empty clamp range [{lo}, {hi}]")));
            }
            Some((
                dtype == DType::U8,
                zero_point,
                lo - zero_point,
                hi - zero_point,
            ))
        }
    };
    Ok(Plan {
        channels,
        taps,
        lay: PadLayout::new(&g),
        out_hw: [g.output[0], g.output[1]],
        strides: [g.strides[0], g.strides[1]],
        kernel: [g.kernel[0], g.kernel[1]],
        quant,
    })
}

/// Groups of 4 taps per kernel row on the VNNI path.
fn quads(kw: usize) -> usize {
    kw.div_ceil(4)
}

/// 16-byte weight rows per channel record: one i16x8 splat per tap (exact i16), or per kernel
/// row one 4-weight dword repeated 4 times per group of 4 taps (VNNI).
fn weight_rows(p: &Plan, path: DwPath) -> usize {
    match path {
        DwPath::ExactI16 => p.taps,
        DwPath::Vnni => p.kernel[0] * quads(p.kernel[1]),
    }
}

/// Bytes of one channel's record: the weight rows, then bias' (i32) and scale (f32) in a last
/// 16-byte row.
fn record_bytes(p: &Plan, path: DwPath) -> usize {
    (weight_rows(p, path) + 1) * 16
}

/// Prepacks the per-channel records.
fn pack(spec: &DwConvSpec, p: &Plan, path: DwPath) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.channels * record_bytes(p, path));
    let [kh, kw] = p.kernel;
    // The VNNI path reads i8 inputs as u8 (x + 128): its zero point moves along.
    let zp = match path {
        DwPath::Vnni if spec.x_dtype == DType::I8 => spec.x_zero_point + 128,
        _ => spec.x_zero_point,
    };
    for c in 0..p.channels {
        let w = &spec.weights[c * p.taps..(c + 1) * p.taps];
        match path {
            DwPath::ExactI16 => {
                for &v in w {
                    for _ in 0..8 {
                        out.extend_from_slice(&(v as i16).to_le_bytes());
                    }
                }
            }
            DwPath::Vnni => {
                for ky in 0..kh {
                    for q in 0..quads(kw) {
                        let dword: Vec<u8> = (4 * q..4 * q + 4)
                            .map(|kx| if kx < kw { w[ky * kw + kx] as u8 } else { 0 })
                            .collect();
                        for _ in 0..4 {
                            out.extend_from_slice(&dword);
                        }
                    }
                }
            }
        }
        let sum: i32 = w.iter().map(|&v| v as i32).sum();
        let bias = spec.bias.as_ref().map_or(0, |b| b[c]);
        let folded = bias.wrapping_sub(zp.wrapping_mul(sum));
        let scale = spec.scale[if spec.scale.len() == 1 { 0 } else { c }];
        out.extend_from_slice(&folded.to_le_bytes());
        out.extend_from_slice(&scale.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
    }
    out
}

/// A constant 16-byte shuffle of `v` (`pshufb`).
fn shuffle_bytes(b: &mut FunctionBuilder, v: Value, idx: [u8; 16]) -> Value {
    let imm = b.func.dfg.immediates.push(ConstantData::from(idx.to_vec()));
    b.ins().shuffle(v, v, imm)
}

/// Defines a depthwise QConv kernel `fn(padded_plane, y_plane, channel_record)` on the host's
/// best path ([`DwPath::best`]).
pub fn define_dwconv(m: &mut CodeModule, spec: &DwConvSpec) -> Result<FuncId, JitError> {
    let path = DwPath::best(m);
    define_dwconv_on(m, spec, path)
}

/// [`define_dwconv`] on a given path (an error when the host lacks it).
pub fn define_dwconv_on(
    m: &mut CodeModule,
    spec: &DwConvSpec,
    path: DwPath,
) -> Result<FuncId, JitError> {
    let p = plan(spec)?;
    if !m.features().sse41 {
        return Err(JitError::Codegen(
            "the depthwise kernel needs SSE4.1 on the host".into(),
        ));
    }
    if path == DwPath::Vnni && !m.features().vnni {
        return Err(JitError::Codegen(
            "DwPath::Vnni requested but the host has no VNNI".into(),
        ));
    }
    let signed = spec.x_dtype == DType::I8;
    let (oh, ow) = (p.out_hw[0], p.out_hw[1]);
    let (kh, kw) = (p.kernel[0], p.kernel[1]);
    let (sh, sw) = (p.strides[0], p.strides[1]);
    let (wp, quant) = (p.lay.wp, p.quant);
    let rows = weight_rows(&p, path);
    let esize = if quant.is_some() { 1 } else { 4 };
    let ptr = m.ptr();
    m.define(&unique_name("dwconv"), &[ptr, ptr, ptr], |b, args| {
        let (x, y, rec) = (args[0], args[1], args[2]);
        let bias = b.ins().load(I32, mem(), rec, (rows * 16) as i32);
        let bias = b.ins().splat(I32X4, bias);
        let scale = b.ins().load(F32, mem(), rec, (rows * 16 + 4) as i32);
        let scale = b.ins().splat(F32X4, scale);
        let consts = quant.map(|(_, zp, lo, hi)| {
            let zp = b.ins().iconst(I32, zp as i64);
            let zp = b.ins().splat(I32X4, zp);
            let mut f = |v: i32| {
                let c = b.ins().f32const(v as f32);
                b.ins().splat(F32X4, c)
            };
            (zp, f(lo), f(hi))
        });
        let zero = b.ins().iconst(I64, 0);
        let end = b.ins().iconst(I64, oh as i64);
        emit_loop(b, zero, end, 1, |b, oy| {
            let off = b.ins().imul_imm_s(oy, (sh * wp) as i64);
            let rb = b.ins().iadd(x, off);
            let off = b.ins().imul_imm_s(oy, (ow * esize) as i64);
            let yrow = b.ins().iadd(y, off);
            let chunk = |b: &mut FunctionBuilder, ox0: Value| {
                let off = b.ins().imul_imm_s(ox0, sw as i64);
                let px = b.ins().iadd(rb, off);
                let mut acc = [bias; 4];
                match path {
                    DwPath::ExactI16 => {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let t = ky * kw + kx;
                                let v = load_cols(b, px, (ky * wp + kx) as i32, sw);
                                let w = b.ins().load(I16X8, mem(), rec, (t * 16) as i32);
                                let halves = if signed {
                                    [b.ins().swiden_low(v), b.ins().swiden_high(v)]
                                } else {
                                    [b.ins().uwiden_low(v), b.ins().uwiden_high(v)]
                                };
                                for (h, xv) in halves.into_iter().enumerate() {
                                    let prod = b.ins().imul(xv, w);
                                    let lo = b.ins().swiden_low(prod);
                                    let hi = b.ins().swiden_high(prod);
                                    acc[2 * h] = b.ins().iadd(acc[2 * h], lo);
                                    acc[2 * h + 1] = b.ins().iadd(acc[2 * h + 1], hi);
                                }
                            }
                        }
                    }
                    DwPath::Vnni => {
                        let flip = signed.then(|| {
                            let c = b.ins().iconst(cranelift_codegen::ir::types::I8, -128);
                            b.ins().splat(I8X16, c)
                        });
                        for ky in 0..kh {
                            let ws: Vec<Value> = (0..quads(kw))
                                .map(|q| {
                                    let off = ((ky * quads(kw) + q) * 16) as i32;
                                    b.ins().load(I8X16, mem(), rec, off)
                                })
                                .collect();
                            for (g, a) in acc.iter_mut().enumerate() {
                                // Pixel p of the group, tap 4q+t: byte p·sw + 4q + t of a load
                                // at the group's first pixel, or of a second load at +4q when
                                // that would pass the 16 bytes.
                                let base = (ky * wp + 4 * g * sw) as i32;
                                let load = |b: &mut FunctionBuilder, off: i32| {
                                    let v = b.ins().load(I8X16, mem(), px, off);
                                    match flip {
                                        Some(f) => b.ins().bxor(v, f),
                                        None => v,
                                    }
                                };
                                let mut shared = None;
                                for (q, &w) in ws.iter().enumerate() {
                                    let (v, shift) = if 3 * sw + 4 * q + 3 < 16 {
                                        let v = match shared {
                                            Some(v) => v,
                                            None => *shared.insert(load(b, base)),
                                        };
                                        (v, 4 * q)
                                    } else {
                                        (load(b, base + (4 * q) as i32), 0)
                                    };
                                    let mut idx = [0u8; 16];
                                    for (k, i) in idx.iter_mut().enumerate() {
                                        *i = ((k / 4) * sw + shift + k % 4) as u8;
                                    }
                                    let xs = shuffle_bytes(b, v, idx);
                                    *a = vnni_dot(b, *a, w, xs);
                                }
                            }
                        }
                    }
                }
                let f = acc.map(|a| {
                    let f = b.ins().fcvt_from_sint(F32X4, a);
                    b.ins().fmul(f, scale)
                });
                match (quant, consts) {
                    (Some((unsigned, ..)), Some((zp, lo, hi))) => {
                        // round, clamp and convert (NaN → 0 as lpc-ref's saturating cast),
                        // then the zero point.
                        let q = f.map(|v| {
                            let r = b.ins().nearest(v);
                            let i = clamp_to_i32(b, r, lo, hi);
                            b.ins().iadd(i, zp)
                        });
                        Chunk::Bytes(narrow_bytes(b, unsigned, q))
                    }
                    _ => Chunk::Words(f),
                }
            };
            emit_row(b, ow, esize, yrow, &chunk);
        });
        b.ins().return_(&[]);
    })
}

type DwFn = unsafe extern "C" fn(*const u8, *mut u8, *const u8);

/// A finalized depthwise QConv kernel with its prepacked weights. The [`CodeModule`] it came
/// from must outlive it.
#[derive(Debug)]
pub struct DwConvKernel {
    f: DwFn,
    x_dtype: DType,
    y_dtype: DType,
    pad: u8,
    channels: usize,
    lay: PadLayout,
    out_hw: [usize; 2],
    records: Vec<u8>,
    record_bytes: usize,
    path: DwPath,
}

impl DwConvKernel {
    /// The kernel `id` of the finalized module `m`; prepacks the weights, folded bias and scales.
    ///
    /// # Safety
    /// `id` must come from [`define_dwconv`] on `m` with a spec equal to `spec`.
    pub unsafe fn new(m: &CodeModule, id: FuncId, spec: &DwConvSpec) -> Result<Self, JitError> {
        // SAFETY: forwarded; define_dwconv used this path.
        unsafe { Self::new_on(m, id, spec, DwPath::best(m)) }
    }

    /// [`DwConvKernel::new`] for a kernel from [`define_dwconv_on`].
    ///
    /// # Safety
    /// `id` must come from [`define_dwconv_on`] on `m` with a spec equal to `spec` and `path`.
    pub unsafe fn new_on(
        m: &CodeModule,
        id: FuncId,
        spec: &DwConvSpec,
        path: DwPath,
    ) -> Result<Self, JitError> {
        let p = plan(spec)?;
        // The caller guarantees `id` has this signature (see `CodeModule::func`).
        let f: DwFn = m.func(id)?;
        let y_dtype = match spec.output {
            DwOutput::Quantized { dtype, .. } => dtype,
            DwOutput::Float => DType::F32,
        };
        Ok(DwConvKernel {
            f,
            x_dtype: spec.x_dtype,
            y_dtype,
            pad: spec.x_zero_point as u8,
            channels: p.channels,
            records: pack(spec, &p, path),
            record_bytes: record_bytes(&p, path),
            path,
            lay: p.lay,
            out_hw: p.out_hw,
        })
    }

    /// Output height and width.
    pub fn out_hw(&self) -> [usize; 2] {
        self.out_hw
    }

    /// The channel count.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The dot path it was compiled for.
    pub fn path(&self) -> DwPath {
        self.path
    }

    /// Convolves whole planes: `x` holds `P·H·W` elements, `y` `P·OH·OW`; plane `k` has channel
    /// `(first_plane + k) % C`, so a batch or any range of planes can run on its own thread.
    pub fn run<X: Elem, Y: Elem>(
        &self,
        x: &[X],
        y: &mut [Y],
        first_plane: usize,
    ) -> Result<(), JitError> {
        if X::DTYPE != self.x_dtype {
            return Err(input_err(
                "x",
                format!(
                    "has dtype {}, the kernel was compiled for {}",
                    X::DTYPE,
                    self.x_dtype
                ),
            ));
        }
        if Y::DTYPE != self.y_dtype {
            return Err(input_err(
                "y",
                format!(
                    "has dtype {}, the kernel was compiled for {}",
                    Y::DTYPE,
                    self.y_dtype
                ),
            ));
        }
        let (in_n, on) = (self.lay.h * self.lay.w, self.out_hw[0] * self.out_hw[1]);
        let planes = run_planes(x.len(), y.len(), in_n, on)?;
        let mut scratch = self.lay.scratch(self.pad);
        scratch.resize(scratch.len() + SLACK, self.pad);
        let xb = bytes_of(x);
        let yp = y.as_mut_ptr().cast::<u8>();
        let ys = std::mem::size_of::<Y>();
        let rb = self.record_bytes;
        for k in 0..planes {
            let c = (first_plane + k) % self.channels;
            self.lay
                .copy_in(&mut scratch, &xb[k * in_n..(k + 1) * in_n]);
            // SAFETY: the scratch is the compiled layout, the output plane and the record are
            // in bounds.
            unsafe {
                (self.f)(
                    scratch.as_ptr(),
                    yp.add(k * on * ys),
                    self.records.as_ptr().add(c * rb),
                )
            };
        }
        Ok(())
    }
}
