//! QConv and QMatMul lowered to the JIT GEMM (im2col straight into the GEMM's u8 panels, or a
//! plain pack for 1×1 stride-1 convs and matrix products), and depthwise QConv to its kernel.

use crate::kernels::dwconv::{define_dwconv, DwConvKernel, DwConvSpec, DwOutput};
use crate::kernels::gemm::{
    define_gemm, fold_zero_point, gemm_tier, pack_a, packed_b_len, panel_len, panels, Dot,
    Epilogue, GemmInputs, GemmKernel, GemmOut, GemmSpec, GemmTier, PackedA,
};
use crate::runtime::memory::BufferPool;
use crate::{CodeModule, JitError};
use cranelift_module::FuncId;
use lpc_ir::{ConvAttrs, DType, Graph, NodeId, Tensor};
use rayon::prelude::*;

/// The constant tensor in `slot` of node `n`, if connected to a constant.
fn konst(g: &Graph, n: NodeId, slot: usize) -> Option<&Tensor> {
    g.node_input(n, slot)
        .and_then(|v| g.const_value(v))
        .map(|t| t.as_ref())
}

/// A one-element integer constant.
fn scalar_int(t: &Tensor) -> Option<i32> {
    (t.dtype().is_int() && t.len() == 1).then(|| t.to_i64_vec()[0] as i32)
}

/// The epilogue inputs shared by QConv and QMatMul (slots 3..=7), resolved for `m` channels.
struct Epi {
    bias: Vec<i32>,
    scale: Vec<f32>,
    epilogue: Epilogue,
    out: DType,
}

fn epilogue_of(g: &Graph, n: NodeId, m: usize) -> Option<Epi> {
    let bias = match g.node_input(n, 3) {
        None => vec![0; m],
        Some(_) => {
            let b = konst(g, n, 3)?;
            let v = b.as_i32().ok()?.to_vec();
            (v.len() == m).then_some(v)?
        }
    };
    let s = konst(g, n, 4)?;
    if s.dtype() != DType::F32 {
        return None;
    }
    let sv = s.to_f32_vec();
    let scale = match sv.len() {
        1 => vec![sv[0]; m],
        l if l == m => sv,
        _ => return None,
    };
    let (epilogue, out) = match g.node_input(n, 5) {
        None => (Epilogue::F32, DType::F32),
        Some(_) => {
            let z = konst(g, n, 5)?;
            let (signed, dlo, dhi) = match z.dtype() {
                DType::U8 => (false, 0, 255),
                DType::I8 => (true, -128, 127),
                _ => return None,
            };
            let zp = scalar_int(z)?;
            let bound = |slot: usize| -> Option<Option<i32>> {
                match g.node_input(n, slot) {
                    None => Some(None),
                    Some(_) => Some(Some(scalar_int(konst(g, n, slot)?)?)),
                }
            };
            let lo = bound(6)?.unwrap_or(dlo).max(dlo);
            let hi = bound(7)?.unwrap_or(dhi).min(dhi);
            if lo > hi {
                return None;
            }
            (
                Epilogue::Quant { zp, lo, hi, signed },
                if signed { DType::I8 } else { DType::U8 },
            )
        }
    };
    Some(Epi {
        bias,
        scale,
        epilogue,
        out,
    })
}

/// How the GEMM's B operand is built from the input.
#[derive(Clone, Debug)]
enum Packing {
    /// im2col of each image and group.
    Im2col { c_in: usize, geo: Im2colGeom },
    /// The input image of a group is already the `K × N` matrix (1×1, stride 1, no padding).
    Direct { c_in: usize },
    /// QMatMul: the input is `R × K` row-major; its transpose is packed and the `N × R` result
    /// transposed back.
    Transposed { rows: usize },
}

/// Where im2col reads. The taps read a copy of the group's planes padded with the input zero
/// point (`pad`: rows before/after, columns before/after), so no tap ever leaves its plane.
#[derive(Clone, Debug)]
struct Im2colGeom {
    hw: [usize; 2],
    out_hw: [usize; 2],
    strides: [usize; 2],
    pad: [[usize; 2]; 2],
    taps: Taps,
}

/// The k order of an im2col GEMM and where each k reads.
#[derive(Clone, Debug)]
enum Taps {
    /// k in the weights' order (channel, ky, kx); per k the channel within the group and the
    /// tap's (dy, dx) in the padded plane. Each k-group's 4 taps are gathered and interleaved.
    PerK(Vec<(usize, usize, usize)>),
    /// Channel counts that are a multiple of 4: k ordered (channel / 4, ky, kx, channel % 4),
    /// the weights permuted to match, and the planes copied channel-interleaved
    /// (`[C/4][H][W][4]`), so the 4 k of a k-group are the 4 bytes of one word and a panel's
    /// k-group is a copy of whole words (row runs of one `memcpy` at stride 1). Per k-group:
    /// the byte offset of its tap in the interleaved planes.
    Interleaved(Vec<usize>),
}

impl Im2colGeom {
    fn padded(&self) -> bool {
        self.pad.iter().flatten().any(|&p| p > 0)
    }

    fn padded_hw(&self) -> [usize; 2] {
        let [[t, b], [l, r]] = self.pad;
        [self.hw[0] + t + b, self.hw[1] + l + r]
    }

    /// Bytes of one image group's copied planes (`cg` channels; 0 when im2col reads the input
    /// itself).
    fn padded_len(&self, cg: usize) -> usize {
        let [hp, wp] = self.padded_hw();
        match self.taps {
            Taps::PerK(_) if !self.padded() => 0,
            Taps::PerK(_) => cg * hp * wp,
            Taps::Interleaved(_) => cg.next_multiple_of(4) * hp * wp,
        }
    }

    /// The planes im2col reads for one image group: `xg` itself, or its padded (and, for
    /// [`Taps::Interleaved`], channel-interleaved) copy in `buf`, padded with `value`.
    fn planes<'a>(&self, xg: &'a [u8], value: u8, buf: &'a mut Vec<u8>) -> Planes<'a> {
        match self.taps {
            Taps::Interleaved(_) => interleave_planes(xg, self.hw, self.pad, value, buf),
            Taps::PerK(_) if self.padded() => pad_planes(xg, self.hw, self.pad, value, buf),
            Taps::PerK(_) => Planes { x: xg, hw: self.hw },
        }
    }

    /// im2col of output pixels `pix0 .. pix0 + n` straight into panels.
    fn pack(&self, x: &Planes, pix0: usize, n: usize, out: &mut [u8], nr: usize, pl: usize) {
        match &self.taps {
            Taps::PerK(taps) => im2col(x, self, taps, pix0, n, out, nr, pl),
            Taps::Interleaved(offsets) => {
                im2col_interleaved(x, self, offsets, pix0, n, out, nr, pl)
            }
        }
    }
}

/// A QConv (any group count) or QMatMul as GEMM calls.
pub struct GemmPlan {
    spec: GemmSpec,
    /// The code tier of the kernel (its panel width is the packers' NR).
    tier: GemmTier,
    func: FuncId,
    kernel: Option<GemmKernel>,
    /// Per group: packed weights, bias with the zero point folded in, scales.
    groups: Vec<(PackedA, Vec<i32>, Vec<f32>)>,
    packing: Packing,
    /// Images in the batch (QConv) or 1 (QMatMul).
    batch: usize,
    /// Output columns per GEMM (pixels, or rows of a QMatMul).
    n: usize,
    x_dtype: DType,
    /// Padding value in the panels (the input zero point, shifted +128 for i8).
    pad: u8,
    out: DType,
    out_shape: Vec<usize>,
    /// A QMatMul whose input zero point or scale is a value computed at run time (a
    /// dynamically quantized matmul): the bias before the zero point is folded in.
    dynamic: Option<RuntimeEpi>,
}

/// The parts of a QMatMul's f32 epilogue known only at run time: the input zero point (step
/// input 1) unless `zero_point` holds it, the scale (step input 4) unless `scale` does.
struct RuntimeEpi {
    /// The i32 bias (slot 3), zero point not folded in.
    bias: Vec<i32>,
    zero_point: Option<i32>,
    scale: Option<Vec<f32>>,
}

/// A depthwise QConv.
pub struct DwPlan {
    spec: DwConvSpec,
    func: FuncId,
    kernel: Option<DwConvKernel>,
    out_shape: Vec<usize>,
    out: DType,
}

/// The dtype and shape of a node's input 0 and the shape of its output 0, when all are known.
fn known_io(g: &Graph, n: NodeId) -> Option<(DType, Vec<usize>, Vec<usize>)> {
    let xt = g.value_type(g.node_input(n, 0)?);
    let xs = xt.shape.as_ref()?.as_known()?;
    let out = g.node(n).outputs[0].ty.shape.as_ref()?.as_known()?;
    Some((xt.dtype?, xs, out))
}

/// A 1-D conv's attributes on two axes, the first of size 1 (stride 1, no padding, dilation 1;
/// `kernel`, when given, 1 × K); `None` when they are not a 1-D conv's (left to lpc-ref).
fn lift_1d(a: &ConvAttrs) -> Option<ConvAttrs> {
    let two = |v: &[usize]| -> Option<Vec<usize>> {
        match v {
            [] => Some(vec![]),
            [x] => Some(vec![1, *x]),
            _ => None,
        }
    };
    let pads = match a.pads.as_slice() {
        [] => vec![],
        [b, e] => vec![0, *b, 0, *e],
        _ => return None,
    };
    Some(ConvAttrs {
        kernel: two(&a.kernel)?,
        strides: two(&a.strides)?,
        dilations: two(&a.dilations)?,
        pads,
        group: a.group,
        auto_pad: a.auto_pad,
    })
}

/// What a QConv lowers to: per-group GEMMs or the depthwise kernel.
pub enum QConvPlan {
    /// Per-group GEMMs.
    Gemm(GemmPlan),
    /// The depthwise kernel.
    DwConv(DwPlan),
}

/// Lowers a QConv: depthwise → dwconv kernel, else per-group GEMMs; `None` when some input
/// is not constant or a shape is unknown (the node then falls back to lpc-ref).
pub fn lower_qconv(
    g: &Graph,
    n: NodeId,
    a: &ConvAttrs,
    module: &mut CodeModule,
    depthwise: bool,
    dot: Dot,
) -> Result<Option<QConvPlan>, JitError> {
    let Some((x_dtype, xs, out_shape)) = known_io(g, n) else {
        return Ok(None);
    };
    let (Some(xz), Some(w)) = (konst(g, n, 1), konst(g, n, 2)) else {
        return Ok(None);
    };
    let (Some(xzp), Ok(wv)) = (scalar_int(xz), w.as_i8()) else {
        return Ok(None);
    };
    if xz.dtype() != x_dtype {
        return Ok(None);
    }
    // A 1-D conv ([N, C, L], kernel [M, Cg, K]) is the 2-D one over [N, C, 1, L] with a 1×K
    // kernel: the same bytes, attributes lifted to two axes, the plan's output kept 3-D.
    let lifted;
    let (a, xs, w_shape, plan_shape) = match (xs.len(), w.rank(), out_shape.len()) {
        (4, 4, 4) => (a, xs, w.shape().to_vec(), out_shape.clone()),
        (3, 3, 3) => {
            let Some(l) = lift_1d(a) else {
                return Ok(None);
            };
            lifted = l;
            let ws = w.shape();
            (
                &lifted,
                vec![xs[0], xs[1], 1, xs[2]],
                vec![ws[0], ws[1], 1, ws[2]],
                vec![out_shape[0], out_shape[1], 1, out_shape[2]],
            )
        }
        _ => return Ok(None),
    };
    let pad = match x_dtype {
        DType::U8 => xzp as u8,
        DType::I8 => (xzp as i8 as u8) ^ 0x80,
        _ => return Ok(None),
    };
    let (batch, c, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (m, cg, kh, kw) = (w_shape[0], w_shape[1], w_shape[2], w_shape[3]);
    let group = a.group.max(1);
    if c % group != 0 || m % group != 0 || c / group != cg || out_shape[1] != m {
        return Ok(None);
    }
    let Some(epi) = epilogue_of(g, n, m) else {
        return Ok(None);
    };
    let geom = match lpc_ref::geom::geometry(
        &[h, wd],
        &[kh, kw],
        &a.strides,
        &a.dilations,
        &a.pads,
        a.auto_pad,
        false,
    ) {
        Ok(geom) => geom,
        Err(_) => return Ok(None),
    };
    let (oh, ow) = (geom.output[0], geom.output[1]);
    if plan_shape != [batch, m, oh, ow] {
        return Ok(None);
    }
    if depthwise && group == c && group == m && cg == 1 {
        let output = match epi.epilogue {
            Epilogue::Quant { zp, lo, hi, signed } => DwOutput::Quantized {
                dtype: if signed { DType::I8 } else { DType::U8 },
                zero_point: zp,
                lo,
                hi,
            },
            Epilogue::F32 | Epilogue::I32 => DwOutput::Float,
        };
        let spec = DwConvSpec {
            x_dtype,
            x_zero_point: xzp,
            in_hw: [h, wd],
            attrs: a.clone(),
            kernel_hw: [kh, kw],
            weights: wv.to_vec(),
            bias: Some(epi.bias.clone()),
            scale: epi.scale.clone(),
            output,
        };
        // Geometries the depthwise kernel does not take stay with the GEMM path below.
        if let Ok(func) = define_dwconv(module, &spec) {
            return Ok(Some(QConvPlan::DwConv(DwPlan {
                spec,
                func,
                kernel: None,
                out_shape,
                out: epi.out,
            })));
        }
    }
    let (mg, k) = (m / group, cg * kh * kw);
    let direct = kh == 1
        && kw == 1
        && geom.strides == [1, 1]
        && geom.pad_begin == [0, 0]
        && geom.pad_end == [0, 0];
    // im2col from channel-interleaved planes unless padding the channels to a multiple of 4
    // adds more than a third to K (1 or 2 channels: those convs gather per k).
    let interleaved = !direct && cg.next_multiple_of(4) * 3 <= cg * 4;
    let packing = if direct {
        Packing::Direct { c_in: c }
    } else {
        // Padded extent each axis needs: the last output's last tap, or the input itself.
        let pad_axis = |a: usize, size: usize, out: usize, kern: usize| {
            let need = (out.max(1) - 1) * geom.strides[a] + (kern - 1) * geom.dilations[a] + 1;
            let before = geom.pad_begin[a];
            [before, need.saturating_sub(size + before)]
        };
        let pad = [pad_axis(0, h, oh, kh), pad_axis(1, wd, ow, kw)];
        let (dly, dlx) = (geom.dilations[0], geom.dilations[1]);
        let taps = if interleaved {
            let (hp, wp) = (h + pad[0][0] + pad[0][1], wd + pad[1][0] + pad[1][1]);
            let mut offsets = Vec::with_capacity(cg.div_ceil(4) * kh * kw);
            for c4 in 0..cg.div_ceil(4) {
                for ky in 0..kh {
                    for kx in 0..kw {
                        offsets.push(((c4 * hp + ky * dly) * wp + kx * dlx) * 4);
                    }
                }
            }
            Taps::Interleaved(offsets)
        } else {
            let mut taps = Vec::with_capacity(k);
            for ci in 0..cg {
                for ky in 0..kh {
                    for kx in 0..kw {
                        taps.push((ci, ky * dly, kx * dlx));
                    }
                }
            }
            Taps::PerK(taps)
        };
        Packing::Im2col {
            c_in: c,
            geo: Im2colGeom {
                hw: [h, wd],
                out_hw: [oh, ow],
                strides: [geom.strides[0], geom.strides[1]],
                pad,
                taps,
            },
        }
    };
    // The weights in the k order of the packing (a permutation: the exact integer sums are
    // the same in any order). The GEMM's depth: K, or the channels padded to a multiple of 4 (zero weights).
    let taps_per_channel = kh * kw;
    let k_gemm = if interleaved {
        cg.next_multiple_of(4) * taps_per_channel
    } else {
        k
    };
    let zp_u = pad as i32;
    let mut groups = Vec::with_capacity(group);
    let mut w = vec![0i8; mg * k_gemm];
    for gi in 0..group {
        let wg = &wv[gi * mg * k..(gi + 1) * mg * k];
        let a_g = if interleaved {
            for (src, dst) in wg.chunks_exact(k).zip(w.chunks_exact_mut(k_gemm)) {
                for (ci, taps) in src.chunks_exact(taps_per_channel).enumerate() {
                    let base = (ci / 4) * taps_per_channel * 4 + ci % 4;
                    for (t, &v) in taps.iter().enumerate() {
                        dst[base + 4 * t] = v;
                    }
                }
            }
            pack_a(&w, mg, k_gemm)?
        } else {
            pack_a(wg, mg, k)?
        };
        let bias = fold_zero_point(&epi.bias[gi * mg..(gi + 1) * mg], &a_g, zp_u)?;
        groups.push((a_g, bias, epi.scale[gi * mg..(gi + 1) * mg].to_vec()));
    }
    let spec = GemmSpec {
        dot,
        ..GemmSpec::new(mg, k_gemm, epi.epilogue)
    };
    let tier = gemm_tier(module, &spec)?;
    let func = define_gemm(module, &spec)?;
    Ok(Some(QConvPlan::Gemm(GemmPlan {
        spec,
        tier,
        func,
        kernel: None,
        groups,
        packing,
        batch,
        n: oh * ow,
        x_dtype,
        pad,
        out: epi.out,
        out_shape,
        dynamic: None,
    })))
}

/// Lowers a QMatMul with a constant 2-D `b` to one GEMM (A = bᵀ, B = aᵀ).
pub fn lower_qmatmul(
    g: &Graph,
    n: NodeId,
    module: &mut CodeModule,
    dot: Dot,
) -> Result<Option<GemmPlan>, JitError> {
    let Some((x_dtype, xs, out_shape)) = known_io(g, n) else {
        return Ok(None);
    };
    let Some(b) = konst(g, n, 2) else {
        return Ok(None);
    };
    let Ok(bv) = b.as_i8() else {
        return Ok(None);
    };
    // The input zero point: a constant, or a rank-0 value of the input's dtype (run time).
    let xzp = match konst(g, n, 1) {
        Some(xz) => match scalar_int(xz) {
            Some(z) if xz.dtype() == x_dtype => Some(z),
            _ => return Ok(None),
        },
        None => {
            let Some(z) = g.node_input(n, 1) else {
                return Ok(None);
            };
            let t = g.value_type(z);
            let rank0 = t.shape.as_ref().is_some_and(|s| s.rank() == 0);
            if t.dtype != Some(x_dtype) || !rank0 {
                return Ok(None);
            }
            None
        }
    };
    if b.rank() != 2 || xs.is_empty() {
        return Ok(None);
    }
    let (k, nout) = (b.shape()[0], b.shape()[1]);
    if xs[xs.len() - 1] != k || out_shape.last() != Some(&nout) {
        return Ok(None);
    }
    let rows: usize = xs[..xs.len() - 1].iter().product();
    if rows == 0 || out_shape.iter().product::<usize>() != rows * nout {
        return Ok(None);
    }
    if !matches!(x_dtype, DType::U8 | DType::I8) {
        return Ok(None);
    }
    // The panels' padding is never read as data here (k padding meets zero weights, column
    // padding is dropped), so a run-time zero point needs no repacking.
    let pad = shifted(x_dtype, xzp.unwrap_or(0));
    let runtime_scale = konst(g, n, 4).is_none();
    let epi = if xzp.is_none() || runtime_scale {
        match runtime_epilogue(g, n, nout, xzp, runtime_scale) {
            Some(e) => e,
            None => return Ok(None),
        }
    } else {
        match epilogue_of(g, n, nout) {
            Some(e) => (e, None),
            None => return Ok(None),
        }
    };
    let (epi, dynamic) = epi;
    // A = bᵀ: one row per output column.
    let mut wt = vec![0i8; nout * k];
    for kk in 0..k {
        for j in 0..nout {
            wt[j * k + kk] = bv[kk * nout + j];
        }
    }
    let a_g = pack_a(&wt, nout, k)?;
    let bias = fold_zero_point(&epi.bias, &a_g, pad as i32)?;
    let spec = GemmSpec {
        dot,
        ..GemmSpec::new(nout, k, epi.epilogue)
    };
    let tier = gemm_tier(module, &spec)?;
    let func = define_gemm(module, &spec)?;
    Ok(Some(GemmPlan {
        spec,
        tier,
        func,
        kernel: None,
        groups: vec![(a_g, bias, epi.scale)],
        packing: Packing::Transposed { rows },
        batch: 1,
        n: rows,
        x_dtype,
        pad,
        out: epi.out,
        out_shape,
        dynamic,
    }))
}

/// The input zero point `z` as the GEMM's u8 panels hold it (i8 shifted by +128).
fn shifted(x_dtype: DType, z: i32) -> u8 {
    match x_dtype {
        DType::I8 => (z as i8 as u8) ^ 0x80,
        _ => z as u8,
    }
}

/// The epilogue of a QMatMul whose zero point (`xzp` is `None`) or scale (`runtime_scale`) is
/// computed at run time: f32 output only (no y_zero_point), the scale one value or `m`.
fn runtime_epilogue(
    g: &Graph,
    n: NodeId,
    m: usize,
    xzp: Option<i32>,
    runtime_scale: bool,
) -> Option<(Epi, Option<RuntimeEpi>)> {
    if g.node_input(n, 5).is_some() {
        return None;
    }
    let bias = match g.node_input(n, 3) {
        None => vec![0; m],
        Some(_) => {
            let v = konst(g, n, 3)?.as_i32().ok()?.to_vec();
            (v.len() == m).then_some(v)?
        }
    };
    let scale = if runtime_scale {
        let t = g.value_type(g.node_input(n, 4)?);
        let len = t.shape.as_ref()?.as_known()?.iter().product::<usize>();
        if t.dtype != Some(DType::F32) || (len != 1 && len != m) {
            return None;
        }
        None
    } else {
        let s = konst(g, n, 4)?;
        let v = s.to_f32_vec();
        if s.dtype() != DType::F32 || (v.len() != 1 && v.len() != m) {
            return None;
        }
        Some(if v.len() == 1 { vec![v[0]; m] } else { v })
    };
    let epi = Epi {
        bias: bias.clone(),
        scale: scale.clone().unwrap_or_else(|| vec![0.0; m]),
        epilogue: Epilogue::F32,
        out: DType::F32,
    };
    Some((
        epi,
        Some(RuntimeEpi {
            bias,
            zero_point: xzp,
            scale,
        }),
    ))
}

/// The activation bytes of `x` as the GEMM reads them (i8 shifted by +128).
fn as_u8(x: &Tensor) -> Result<std::borrow::Cow<'_, [u8]>, JitError> {
    match x.dtype() {
        DType::U8 => Ok(std::borrow::Cow::Borrowed(x.as_u8().map_err(bad_input)?)),
        DType::I8 => Ok(std::borrow::Cow::Owned(
            x.as_i8()
                .map_err(bad_input)?
                .iter()
                .map(|&v| (v as u8) ^ 0x80)
                .collect(),
        )),
        d => Err(JitError::Input {
            name: "x".into(),
            why: format!("dtype {d}, expected u8 or i8"),
        }),
    }
}

fn bad_input(e: lpc_ir::TensorError) -> JitError {
    JitError::Input {
        name: "x".into(),
        why: e.to_string(),
    }
}

impl GemmPlan {
    /// The code tier of the kernel.
    pub fn tier(&self) -> GemmTier {
        self.tier
    }

    /// The step kind for `--stats`: `jit gemm (<packing>, <tier>)`.
    pub fn kind(&self) -> String {
        let packing = match self.packing {
            Packing::Im2col { .. } => "im2col",
            Packing::Direct { .. } => "1x1",
            Packing::Transposed { .. } => "matmul",
        };
        format!("jit gemm ({packing}, {})", self.tier.name())
    }

    /// Binds the compiled kernel (after the module is finalized).
    pub fn link(&mut self, m: &CodeModule) -> Result<(), JitError> {
        // SAFETY: `func` was defined by `define_gemm` with `self.spec` on this module.
        self.kernel = Some(unsafe { GemmKernel::new(m, self.func, &self.spec)? });
        Ok(())
    }

    /// Whether the step reads its zero point (input 1) or scale (input 4) at run time.
    pub fn is_dynamic(&self) -> bool {
        self.dynamic.is_some()
    }

    /// The bias (zero point folded in) and scale of a dynamic QMatMul for this run's zero
    /// point `zx` and scale `s` (step inputs 1 and 4; used only where not constant).
    fn runtime_epi(
        &self,
        d: &RuntimeEpi,
        zx: Option<&Tensor>,
        s: Option<&Tensor>,
    ) -> Result<(Vec<i32>, Vec<f32>), JitError> {
        let m = self.spec.m;
        let z = match (d.zero_point, zx) {
            (Some(z), _) => z,
            (None, Some(t)) if t.dtype() == self.x_dtype && t.len() == 1 => {
                t.to_i64_vec()[0] as i32
            }
            (None, t) => {
                return Err(JitError::Input {
                    name: "x_zero_point".into(),
                    why: match t {
                        Some(t) => format!("{t}, expected one {} value", self.x_dtype),
                        None => "not given".into(),
                    },
                })
            }
        };
        let scale = match (&d.scale, s) {
            (Some(v), _) => v.clone(),
            (None, Some(t)) if t.dtype() == DType::F32 && (t.len() == 1 || t.len() == m) => {
                let v = t.as_f32().map_err(bad_input)?;
                if v.len() == 1 {
                    vec![v[0]; m]
                } else {
                    v.to_vec()
                }
            }
            (None, t) => {
                return Err(JitError::Input {
                    name: "scale".into(),
                    why: match t {
                        Some(t) => format!("{t}, expected f32 with 1 or {m} values"),
                        None => "not given".into(),
                    },
                })
            }
        };
        let bias = fold_zero_point(&d.bias, &self.groups[0].0, shifted(self.x_dtype, z) as i32)?;
        Ok((bias, scale))
    }

    /// Runs a matmul whose zero point or scale is computed at run time (see
    /// [`GemmPlan::is_dynamic`]) on `x` with this run's `zx` and `scale`.
    pub fn run_dynamic(
        &self,
        x: &Tensor,
        zx: Option<&Tensor>,
        scale: Option<&Tensor>,
        pool: &mut BufferPool,
    ) -> Result<Tensor, JitError> {
        let Some(d) = &self.dynamic else {
            return self.run(x, pool);
        };
        let epi = self.runtime_epi(d, zx, scale)?;
        self.check_input(x)?;
        let len: usize = self.out_shape.iter().product();
        let mut y = pool.take_f32(len);
        self.compute(x, &mut y, pool, Some(&epi))?;
        Tensor::from_f32(&self.out_shape, y).map_err(bad_input)
    }

    fn check_input(&self, x: &Tensor) -> Result<(), JitError> {
        if x.dtype() != self.x_dtype {
            return Err(JitError::Input {
                name: "x".into(),
                why: format!("dtype {}, compiled for {}", x.dtype(), self.x_dtype),
            });
        }
        Ok(())
    }

    /// Runs the conv or matmul on `x`.
    pub fn run(&self, x: &Tensor, pool: &mut BufferPool) -> Result<Tensor, JitError> {
        if self.dynamic.is_some() {
            return Err(JitError::Codegen(
                "a dynamic matmul runs with its zero point and scale (run_dynamic)".into(),
            ));
        }
        self.check_input(x)?;
        let len: usize = self.out_shape.iter().product();
        let t = match self.out {
            DType::U8 => {
                let mut y = pool.take_u8(len);
                self.compute(x, &mut y, pool, None)?;
                Tensor::from_u8(&self.out_shape, y)
            }
            DType::I8 => {
                let mut y = pool.take_i8(len);
                self.compute(x, &mut y, pool, None)?;
                Tensor::from_i8(&self.out_shape, y)
            }
            _ => {
                let mut y = pool.take_f32(len);
                self.compute(x, &mut y, pool, None)?;
                Tensor::from_f32(&self.out_shape, y)
            }
        };
        t.map_err(bad_input)
    }

    /// Computes into `y`; `epi` replaces the matmul's bias and scale (a dynamic QMatMul).
    fn compute<T: GemmOut + Send + Sync + Default>(
        &self,
        x: &Tensor,
        y: &mut [T],
        pool: &mut BufferPool,
        epi: Option<&(Vec<i32>, Vec<f32>)>,
    ) -> Result<(), JitError> {
        let kernel = self
            .kernel
            .as_ref()
            .ok_or_else(|| JitError::Codegen("gemm kernel not linked".into()))?;
        let xb = as_u8(x)?;
        let (k, n, m) = (self.spec.k, self.n, self.spec.m);
        let nr = kernel.nr();
        let pl = panel_len(nr, k);
        let mut b = pool.take_u8(match &self.packing {
            Packing::Im2col { .. } => packed_b_len(nr, k, block_cols(nr, k).min(n)),
            Packing::Direct { .. } | Packing::Transposed { .. } => packed_b_len(nr, k, n),
        });
        match &self.packing {
            Packing::Transposed { rows } => {
                b.resize(packed_b_len(nr, k, n), 0);
                pack_transposed(&xb, *rows, k, &mut b, nr, pl);
                let mut c = vec![T::default(); m * n];
                let (a, bias, scale) = &self.groups[0];
                let (bias, scale) = match epi {
                    Some((b, s)) => (b, s),
                    None => (bias, scale),
                };
                kernel.run_par(
                    &GemmInputs {
                        a,
                        b_panels: &b,
                        n,
                        bias,
                        scale,
                    },
                    &mut c,
                    n,
                )?;
                // C is [N_out × R]; the result is [R × N_out].
                transpose_into(&c, m, n, y);
            }
            Packing::Direct { c_in } | Packing::Im2col { c_in, .. } => {
                let groups = self.groups.len();
                let cg = c_in / groups;
                let plane = match &self.packing {
                    Packing::Im2col { geo, .. } => geo.hw[0] * geo.hw[1],
                    Packing::Direct { .. } | Packing::Transposed { .. } => n,
                };
                // One image group: its slice of x, its (a, bias, scale), and its output.
                let one = |img: usize,
                           gi: usize,
                           yg: &mut [T],
                           b: &mut Vec<u8>,
                           padded: &mut Vec<u8>,
                           par: bool|
                 -> Result<(), JitError> {
                    let x0 = (img * c_in + gi * cg) * plane;
                    let xg = &xb[x0..x0 + cg * plane];
                    let (a, bias, scale) = &self.groups[gi];
                    match &self.packing {
                        Packing::Im2col { geo, .. } => {
                            let planes = geo.planes(xg, self.pad, padded);
                            let ops = GroupOperands {
                                kernel,
                                geo,
                                x: &planes,
                                a,
                                bias,
                                scale,
                            };
                            self.im2col_gemm(&ops, yg, b, par)
                        }
                        Packing::Direct { .. } | Packing::Transposed { .. } => {
                            b.resize(packed_b_len(nr, k, n), 0);
                            pack_direct(xg, k, n, b, nr, pl);
                            if par {
                                kernel.run_par(
                                    &GemmInputs {
                                        a,
                                        b_panels: b,
                                        n,
                                        bias,
                                        scale,
                                    },
                                    yg,
                                    n,
                                )
                            } else {
                                kernel.run(
                                    &GemmInputs {
                                        a,
                                        b_panels: b,
                                        n,
                                        bias,
                                        scale,
                                    },
                                    yg,
                                    n,
                                )
                            }
                        }
                    }
                };
                let per_img = groups * m * n;
                let threads = crate::runtime::par::threads();
                if self.batch > 1 && threads > 1 {
                    // Whole images per thread: each thread packs into its own buffers and runs
                    // the kernel itself, which scales where one image's GEMMs are small.
                    let imgs = self.batch.div_ceil(threads);
                    y.par_chunks_mut(per_img * imgs).enumerate().try_for_each(
                        |(t, ys)| -> Result<(), JitError> {
                            let (mut b, mut padded) = (vec![], vec![]);
                            for (i, yi) in ys.chunks_mut(per_img).enumerate() {
                                for (gi, yg) in yi.chunks_mut(m * n).enumerate() {
                                    one(t * imgs + i, gi, yg, &mut b, &mut padded, false)?;
                                }
                            }
                            Ok(())
                        },
                    )?;
                } else {
                    let mut padded = pool.take_u8(match &self.packing {
                        Packing::Im2col { geo, .. } => geo.padded_len(cg),
                        Packing::Direct { .. } | Packing::Transposed { .. } => 0,
                    });
                    for (img, yi) in y.chunks_mut(per_img).enumerate() {
                        for (gi, yg) in yi.chunks_mut(m * n).enumerate() {
                            one(img, gi, yg, &mut b, &mut padded, true)?;
                        }
                    }
                    pool.give_u8(padded);
                }
            }
        }
        pool.give_u8(b);
        Ok(())
    }
}

impl GemmPlan {
    /// The conv of one image group as im2col + GEMM over blocks of output pixels whose packed
    /// columns stay in cache (~96 KiB): each block is packed, then multiplied by every output
    /// channel, instead of packing the whole image first (5.5 MB for a 3×3 conv of 96 channels
    /// at 80×80) and streaming it from memory once per row tile. With `par`, blocks are shared
    /// out over the threads, each writing its own C block that is copied into place after.
    fn im2col_gemm<T: GemmOut + Send + Sync + Default>(
        &self,
        ops: &GroupOperands,
        y: &mut [T],
        b: &mut Vec<u8>,
        par: bool,
    ) -> Result<(), JitError> {
        let &GroupOperands {
            kernel,
            geo,
            x,
            a,
            bias,
            scale,
        } = ops;
        let (k, n, m) = (self.spec.k, self.n, self.spec.m);
        let (nr, pl) = (kernel.nr(), panel_len(kernel.nr(), k));
        let nb = block_cols(nr, k);
        let blocks = n.div_ceil(nb);
        let pack = |b: &mut Vec<u8>, c0: usize, cols: usize| {
            b.resize(packed_b_len(nr, k, cols), 0);
            geo.pack(x, c0, cols, b, nr, pl);
        };
        if !par || blocks == 1 || crate::runtime::par::threads() == 1 {
            for c0 in (0..n).step_by(nb) {
                let cols = nb.min(n - c0);
                pack(b, c0, cols);
                kernel.run(
                    &GemmInputs {
                        a,
                        b_panels: b,
                        n: cols,
                        bias,
                        scale,
                    },
                    &mut y[c0..],
                    n,
                )?;
            }
            return Ok(());
        }
        let parts: Vec<(usize, Vec<T>)> = (0..blocks)
            .into_par_iter()
            .map_init(Vec::new, |b, bi| {
                let (c0, cols) = (bi * nb, nb.min(n - bi * nb));
                pack(b, c0, cols);
                let mut c = vec![T::default(); m * cols];
                kernel.run(
                    &GemmInputs {
                        a,
                        b_panels: b,
                        n: cols,
                        bias,
                        scale,
                    },
                    &mut c,
                    cols,
                )?;
                Ok((c0, c))
            })
            .collect::<Result<_, JitError>>()?;
        for (c0, c) in parts {
            let cols = c.len() / m;
            for (row, src) in y.chunks_exact_mut(n).zip(c.chunks_exact(cols)) {
                row[c0..c0 + cols].copy_from_slice(src);
            }
        }
        Ok(())
    }
}

/// One image group's operands of [`GemmPlan::im2col_gemm`]: the kernel, the im2col
/// geometry and input planes (B), and the group's packed weights (A), bias and scales.
struct GroupOperands<'a> {
    kernel: &'a crate::kernels::gemm::GemmKernel,
    geo: &'a Im2colGeom,
    x: &'a Planes<'a>,
    a: &'a crate::kernels::gemm::PackedA,
    bias: &'a [i32],
    scale: &'a [f32],
}

/// Output pixels per im2col block: whole panels, ~96 KiB of packed columns.
fn block_cols(nr: usize, k: usize) -> usize {
    ((96 << 10) / panel_len(nr, k)).max(1) * nr
}

/// An image group's input planes (`hw` each, row-major) as im2col reads them.
struct Planes<'a> {
    x: &'a [u8],
    hw: [usize; 2],
}

/// Copies the planes of `x` (`hw` each) into `buf` with `pad` rows and columns of `value`
/// around them (`[[top, bottom], [left, right]]`).
fn pad_planes<'a>(
    x: &[u8],
    hw: [usize; 2],
    pad: [[usize; 2]; 2],
    value: u8,
    buf: &'a mut Vec<u8>,
) -> Planes<'a> {
    let [h, w] = hw;
    let (hp, wp) = (h + pad[0][0] + pad[0][1], w + pad[1][0] + pad[1][1]);
    let planes = x.len() / (h * w);
    buf.clear();
    buf.resize(planes * hp * wp, value);
    for (src, dst) in x.chunks_exact(h * w).zip(buf.chunks_exact_mut(hp * wp)) {
        for (y, row) in src.chunks_exact(w).enumerate() {
            let d0 = (y + pad[0][0]) * wp + pad[1][0];
            crate::runtime::memory::copy_run(&mut dst[d0..d0 + w], row);
        }
    }
    Planes {
        x: buf,
        hw: [hp, wp],
    }
}

/// Packs a row-major `k × n` matrix into panels of `nr` columns (extra columns and k entries
/// left as they are: the kernel never stores them and their weights are 0).
fn pack_direct(x: &[u8], k: usize, n: usize, out: &mut [u8], nr: usize, pl: usize) {
    let one = |(p, panel): (usize, &mut [u8])| {
        let c0 = p * nr;
        let cols = nr.min(n - c0);
        for (g, dst) in panel.chunks_exact_mut(nr * 4).enumerate() {
            let row = |r: usize| {
                let kk = (4 * g + r).min(k - 1); // rows past k: any bytes (weights 0)
                &x[kk * n + c0..kk * n + c0 + cols]
            };
            interleave4([row(0), row(1), row(2), row(3)], &mut dst[..cols * 4]);
        }
    };
    let out = &mut out[..panels(nr, n) * pl];
    if crate::runtime::par::threads() > 1 {
        out.par_chunks_mut(pl).enumerate().for_each(one);
    } else {
        out.chunks_mut(pl).enumerate().for_each(one);
    }
}

/// Writes 4 rows of `c` bytes as `c` 4-byte words (`dst[4j + r] = rows[r][j]`): one k-group of
/// a panel. 16 columns per step with SSE2 byte/word unpacks on x86-64.
fn interleave4(rows: [&[u8]; 4], dst: &mut [u8]) {
    let c = dst.len() / 4;
    let mut j = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        while j + 16 <= c {
            // SAFETY: SSE2 is part of x86-64; the loads read rows[r][j..j+16] and the stores
            // write dst[4j..4j+64], all in bounds (c <= every row's length, dst.len() = 4c).
            unsafe {
                let ld = |r: &[u8]| _mm_loadu_si128(r.as_ptr().add(j).cast());
                let (r0, r1, r2, r3) = (ld(rows[0]), ld(rows[1]), ld(rows[2]), ld(rows[3]));
                let (a_lo, a_hi) = (_mm_unpacklo_epi8(r0, r1), _mm_unpackhi_epi8(r0, r1));
                let (b_lo, b_hi) = (_mm_unpacklo_epi8(r2, r3), _mm_unpackhi_epi8(r2, r3));
                let o = dst.as_mut_ptr().add(4 * j).cast::<__m128i>();
                _mm_storeu_si128(o, _mm_unpacklo_epi16(a_lo, b_lo));
                _mm_storeu_si128(o.add(1), _mm_unpackhi_epi16(a_lo, b_lo));
                _mm_storeu_si128(o.add(2), _mm_unpacklo_epi16(a_hi, b_hi));
                _mm_storeu_si128(o.add(3), _mm_unpackhi_epi16(a_hi, b_hi));
            }
            j += 16;
        }
    }
    for jj in j..c {
        for (r, row) in rows.iter().enumerate() {
            dst[4 * jj + r] = row[jj];
        }
    }
}

/// Tap `(ci, dy, dx)` of output pixels `pix0 .. pix0 + dst.len()` (row-major over `out_w`
/// columns) from padded planes: whole runs of one output row at a time, copied when the
/// horizontal stride is 1.
fn gather_tap(
    p: &Planes,
    out_w: usize,
    strides: [usize; 2],
    (ci, dy, dx): (usize, usize, usize),
    pix0: usize,
    dst: &mut [u8],
) {
    let w = p.hw[1];
    let plane = &p.x[ci * p.hw[0] * w..(ci + 1) * p.hw[0] * w];
    let (mut i, mut oy, mut ox0) = (0, pix0 / out_w, pix0 % out_w);
    while i < dst.len() {
        let run = (out_w - ox0).min(dst.len() - i);
        let seg = &mut dst[i..i + run];
        let row = &plane[(oy * strides[0] + dy) * w..][..w];
        let x0 = ox0 * strides[1] + dx;
        if strides[1] == 1 {
            crate::runtime::memory::copy_run(seg, &row[x0..x0 + run]);
        } else {
            for (v, &s) in seg.iter_mut().zip(row[x0..].iter().step_by(strides[1])) {
                *v = s;
            }
        }
        (i, oy, ox0) = (i + run, oy + 1, 0);
    }
}

/// `dst` (`cols × rows`) = the transpose of row-major `src` (`rows × cols`), in 16 × 16 tiles
/// so that each tile's reads and writes share their cache lines; tile rows split over the
/// threads.
fn transpose_into<T: Copy + Send + Sync>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
    const TILE: usize = 16;
    let band = |(b, out): (usize, &mut [T])| {
        // Output rows b·TILE .. : source columns.
        let j0 = b * TILE;
        let jn = out.len() / rows;
        for i0 in (0..rows).step_by(TILE) {
            let i1 = (i0 + TILE).min(rows);
            // 4 × 4 blocks of 4-byte values in SSE registers, the rest one by one.
            let (mut i4, mut j4) = (i0, 0);
            if std::mem::size_of::<T>() == 4 && cfg!(target_arch = "x86_64") {
                i4 = i0 + (i1 - i0) / 4 * 4;
                j4 = jn / 4 * 4;
                for i in (i0..i4).step_by(4) {
                    for jj in (0..j4).step_by(4) {
                        let from = i * cols + j0 + jj;
                        let to = jj * rows + i;
                        assert!(from + 3 * cols + 4 <= src.len() && to + 3 * rows + 4 <= out.len());
                        // SAFETY: T is 4 bytes (moved as raw bits, no arithmetic), and both
                        // 4 × 4 blocks are in bounds (checked above).
                        unsafe {
                            transpose4x4(
                                src.as_ptr().add(from).cast(),
                                cols,
                                out.as_mut_ptr().add(to).cast(),
                                rows,
                            )
                        };
                    }
                }
            }
            for i in i0..i1 {
                let srow = &src[i * cols + j0..i * cols + j0 + jn];
                let first = if i < i4 { j4 } else { 0 };
                for (jj, &v) in srow.iter().enumerate().skip(first) {
                    out[jj * rows + i] = v;
                }
            }
        }
    };
    let dst = &mut dst[..rows * cols];
    if crate::runtime::par::threads() > 1 && rows * cols >= 1 << 14 {
        dst.par_chunks_mut(TILE * rows).enumerate().for_each(band);
    } else {
        dst.chunks_mut(TILE * rows).enumerate().for_each(band);
    }
}

/// Transposes the 4 × 4 block of 4-byte values at `src` (row stride `ls` values) into `dst`
/// (row stride `ld`).
///
/// # Safety
/// Both blocks must be in bounds of their allocations.
#[cfg(target_arch = "x86_64")]
unsafe fn transpose4x4(src: *const f32, ls: usize, dst: *mut f32, ld: usize) {
    use std::arch::x86_64::*;
    // SAFETY: the caller guarantees both blocks are in bounds; SSE is baseline on x86_64.
    unsafe {
        let r0 = _mm_loadu_ps(src);
        let r1 = _mm_loadu_ps(src.add(ls));
        let r2 = _mm_loadu_ps(src.add(2 * ls));
        let r3 = _mm_loadu_ps(src.add(3 * ls));
        let t0 = _mm_unpacklo_ps(r0, r1);
        let t1 = _mm_unpacklo_ps(r2, r3);
        let t2 = _mm_unpackhi_ps(r0, r1);
        let t3 = _mm_unpackhi_ps(r2, r3);
        _mm_storeu_ps(dst, _mm_movelh_ps(t0, t1));
        _mm_storeu_ps(dst.add(ld), _mm_movehl_ps(t1, t0));
        _mm_storeu_ps(dst.add(2 * ld), _mm_movelh_ps(t2, t3));
        _mm_storeu_ps(dst.add(3 * ld), _mm_movehl_ps(t3, t2));
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn transpose4x4(_: *const f32, _: usize, _: *mut f32, _: usize) {
    unreachable!("only called on x86_64")
}

/// Packs the transpose of a row-major `rows × k` matrix (column r of B = row r of x).
fn pack_transposed(x: &[u8], rows: usize, k: usize, out: &mut [u8], nr: usize, pl: usize) {
    let one = |(p, panel): (usize, &mut [u8])| {
        for c in 0..nr.min(rows - p * nr) {
            let src = &x[(p * nr + c) * k..(p * nr + c + 1) * k];
            // Each k-group of the column is one 4-byte word of the panel.
            let mut groups = src.chunks_exact(4);
            for (g, word) in (&mut groups).enumerate() {
                panel[g * nr * 4 + c * 4..g * nr * 4 + c * 4 + 4].copy_from_slice(word);
            }
            let (g, rest) = (k / 4, groups.remainder());
            if !rest.is_empty() {
                panel[g * nr * 4 + c * 4..g * nr * 4 + c * 4 + rest.len()].copy_from_slice(rest);
            }
        }
    };
    let out = &mut out[..panels(nr, rows) * pl];
    if crate::runtime::par::threads() > 1 {
        out.par_chunks_mut(pl).enumerate().for_each(one);
    } else {
        out.chunks_mut(pl).enumerate().for_each(one);
    }
}

/// im2col of output pixels `pix0 .. pix0 + n` of one image group's (padded) planes straight
/// into panels. Per block of panels (at least 32 pixels, so narrow 8-column panels do not pay
/// the per-run cost 4 times) and k-group, each of the 4 taps is gathered for the block's
/// pixels (row runs copied), then the 4 rows are interleaved into each panel's words.
#[allow(clippy::too_many_arguments)]
fn im2col(
    x: &Planes,
    geo: &Im2colGeom,
    taps: &[(usize, usize, usize)],
    pix0: usize,
    n: usize,
    out: &mut [u8],
    nr: usize,
    pl: usize,
) {
    let (out_hw, strides) = (geo.out_hw, geo.strides);
    let k = taps.len();
    let per_block = 32usize.div_ceil(nr).max(1);
    assert!(
        per_block * nr <= 64,
        "panel width {nr} too wide for im2col's block buffer"
    );
    for (blk, block) in out[..panels(nr, n) * pl]
        .chunks_mut(pl * per_block)
        .enumerate()
    {
        let c0 = blk * per_block * nr;
        let cols = (per_block * nr).min(n - c0);
        // At most 32 + nr - 1 < 64 pixels per block (nr is 8 or 32).
        let mut buf = [0u8; 4 * 64];
        let rows = &mut buf[..4 * cols];
        for g in 0..pl / (nr * 4) {
            for (r, row) in rows.chunks_exact_mut(cols).enumerate() {
                // k entries past the taps: any bytes (their weights are 0).
                let tap = taps[(4 * g + r).min(k - 1)];
                gather_tap(x, out_hw[1], strides, tap, pix0 + c0, row);
            }
            for (j, panel) in block.chunks_exact_mut(pl).enumerate() {
                let (a, b) = (j * nr, ((j + 1) * nr).min(cols));
                if a >= b {
                    break;
                }
                let part = |r: usize| &rows[r * cols + a..r * cols + b];
                let dst = &mut panel[g * nr * 4..g * nr * 4 + (b - a) * 4];
                interleave4([part(0), part(1), part(2), part(3)], dst);
            }
        }
    }
}

/// im2col of output pixels `pix0 .. pix0 + n` from channel-interleaved planes
/// ([`Taps::Interleaved`]): per panel, its pixels' row runs are found once; per k-group each
/// run is one copy of `4 × run` bytes (stride 1) or a word gather (larger strides).
#[allow(clippy::too_many_arguments)]
fn im2col_interleaved(
    x: &Planes,
    geo: &Im2colGeom,
    offsets: &[usize],
    pix0: usize,
    n: usize,
    out: &mut [u8],
    nr: usize,
    pl: usize,
) {
    let ow = geo.out_hw[1];
    let [sy, sx] = geo.strides;
    let wp = x.hw[1];
    debug_assert_eq!(pl, offsets.len() * nr * 4);
    // (source byte of the run's first pixel at tap 0, destination byte in a k-group, pixels)
    let mut runs: Vec<(usize, usize, usize)> = Vec::with_capacity(nr);
    for (p, panel) in out[..panels(nr, n) * pl].chunks_exact_mut(pl).enumerate() {
        let (c0, cols) = (pix0 + p * nr, nr.min(n - p * nr));
        runs.clear();
        let mut i = 0;
        while i < cols {
            let (oy, ox) = ((c0 + i) / ow, (c0 + i) % ow);
            let run = (ow - ox).min(cols - i);
            runs.push(((oy * sy * wp + ox * sx) * 4, i * 4, run));
            i += run;
        }
        for (dst, &t) in panel.chunks_exact_mut(nr * 4).zip(offsets) {
            for &(s, d, run) in &runs {
                let src = &x.x[s + t..];
                let dst = &mut dst[d..d + 4 * run];
                if sx == 1 {
                    copy_words(dst, &src[..4 * run]);
                } else {
                    for (j, w) in dst.chunks_exact_mut(4).enumerate() {
                        w.copy_from_slice(&src[4 * j * sx..4 * j * sx + 4]);
                    }
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` with the full 32-word panel row (128 bytes) as a fixed-size copy.
fn copy_words(dst: &mut [u8], src: &[u8]) {
    match (
        <&mut [u8; 128]>::try_from(&mut *dst),
        <&[u8; 128]>::try_from(src),
    ) {
        (Ok(d), Ok(s)) => *d = *s,
        _ => crate::runtime::memory::copy_run(dst, src),
    }
}

/// Copies the planes of `x` (`hw` each) channel-interleaved into `buf`: `[ceil(planes / 4)][H']
/// [W'][4]`, with `pad` rows and columns of `value` around each (`[[top, bottom], [left,
/// right]]`) and the missing planes of the last group all `value`.
fn interleave_planes<'a>(
    x: &[u8],
    hw: [usize; 2],
    pad: [[usize; 2]; 2],
    value: u8,
    buf: &'a mut Vec<u8>,
) -> Planes<'a> {
    let [h, w] = hw;
    let (hp, wp) = (h + pad[0][0] + pad[0][1], w + pad[1][0] + pad[1][1]);
    let planes = x.len() / (h * w);
    buf.clear();
    buf.resize(planes.next_multiple_of(4) * hp * wp, value);
    let blank = vec![value; w];
    for (src, dst) in x.chunks(4 * h * w).zip(buf.chunks_exact_mut(4 * hp * wp)) {
        for y in 0..h {
            let row = |c: usize| match src.get((c * h + y) * w..(c * h + y + 1) * w) {
                Some(r) => r,
                None => &blank[..],
            };
            let d0 = ((y + pad[0][0]) * wp + pad[1][0]) * 4;
            interleave4([row(0), row(1), row(2), row(3)], &mut dst[d0..d0 + 4 * w]);
        }
    }
    Planes {
        x: buf,
        hw: [hp, wp],
    }
}

impl DwPlan {
    /// Binds the compiled kernel (after the module is finalized).
    pub fn link(&mut self, m: &CodeModule) -> Result<(), JitError> {
        // SAFETY: `func` was defined by `define_dwconv` with `self.spec` on this module.
        self.kernel = Some(unsafe { DwConvKernel::new(m, self.func, &self.spec)? });
        Ok(())
    }

    /// Runs the depthwise conv on `x`, planes split over the threads.
    pub fn run(&self, x: &Tensor, pool: &mut BufferPool) -> Result<Tensor, JitError> {
        let kernel = self
            .kernel
            .as_ref()
            .ok_or_else(|| JitError::Codegen("dwconv kernel not linked".into()))?;
        let len: usize = self.out_shape.iter().product();
        let t = match self.out {
            DType::U8 => {
                let mut y = pool.take_u8(len);
                self.planes_into(kernel, x, &mut y)?;
                Tensor::from_u8(&self.out_shape, y)
            }
            DType::I8 => {
                let mut y = pool.take_i8(len);
                self.planes_into(kernel, x, &mut y)?;
                Tensor::from_i8(&self.out_shape, y)
            }
            _ => {
                let mut y = pool.take_f32(len);
                self.planes_into(kernel, x, &mut y)?;
                Tensor::from_f32(&self.out_shape, y)
            }
        };
        t.map_err(bad_input)
    }

    /// The kernel over every plane of `x` (u8 or i8) into `y`.
    fn planes_into<Y: crate::kernels::emit::Elem>(
        &self,
        kernel: &DwConvKernel,
        x: &Tensor,
        y: &mut [Y],
    ) -> Result<(), JitError> {
        let hw = self.spec.in_hw;
        match x.dtype() {
            DType::U8 => dw_planes(kernel, hw, x.as_u8().map_err(bad_input)?, y),
            DType::I8 => dw_planes(kernel, hw, x.as_i8().map_err(bad_input)?, y),
            d => Err(JitError::Input {
                name: "x".into(),
                why: format!("dtype {d}, expected u8 or i8"),
            }),
        }
    }
}

/// Runs a plane kernel over all planes, split into contiguous ranges per thread.
fn dw_planes<X: crate::kernels::emit::Elem, Y: crate::kernels::emit::Elem>(
    k: &DwConvKernel,
    [h, w]: [usize; 2],
    x: &[X],
    y: &mut [Y],
) -> Result<(), JitError> {
    let [oh, ow] = k.out_hw();
    let (in_n, on) = (h * w, oh * ow);
    if in_n == 0 || on == 0 {
        return Ok(());
    }
    let planes = x.len() / in_n;
    let threads = crate::runtime::par::threads();
    if threads == 1 {
        return k.run(x, y, 0);
    }
    let per = planes.div_ceil(threads).max(1);
    x.par_chunks(per * in_n)
        .zip(y.par_chunks_mut(per * on))
        .enumerate()
        .try_for_each(|(j, (xs, ys))| k.run(xs, ys, j * per))
}
