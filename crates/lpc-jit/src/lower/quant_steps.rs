//! Plan steps for the elementwise and pooling kernels (u8/i8 MaxPool; QuantizeLinear,
//! DequantizeLinear, Requantize, QAdd and Lut), split over the threads.

use crate::kernels::int8_eltwise::{
    define_dequantize, define_lut, define_qadd, define_quantize, define_requantize,
    DequantizeKernel, DequantizeSpec, Elem, LutKernel, LutSpec, QAddKernel, QAddSpec,
    QuantizeKernel, QuantizeSpec, RequantizeKernel, RequantizeSpec,
};
use crate::kernels::pool::{define_max_pool, MaxPoolKernel, MaxPoolSpec};
use crate::kernels::tier::VecTier;
use crate::runtime::memory::BufferPool;
use crate::{CodeModule, JitError};
use cranelift_module::FuncId;
use lpc_ir::{DType, Graph, NodeId, PoolAttrs, QuantAxis, Tensor};
use rayon::prelude::*;

fn bad(e: lpc_ir::TensorError) -> JitError {
    JitError::Input {
        name: "x".into(),
        why: e.to_string(),
    }
}

fn known_shape(g: &Graph, v: lpc_ir::ValueRef) -> Option<Vec<usize>> {
    g.value_type(v).shape.as_ref()?.as_known()
}

/// A MaxPool over u8/i8 NCHW planes.
pub struct MaxPoolPlan {
    spec: MaxPoolSpec,
    func: FuncId,
    kernel: Option<MaxPoolKernel>,
    out_shape: Vec<usize>,
}

/// Lowers a MaxPool with one output, u8/i8 4-D input, to the pooling kernel.
pub fn lower_max_pool(
    g: &Graph,
    n: NodeId,
    attrs: &PoolAttrs,
    module: &mut CodeModule,
) -> Result<Option<MaxPoolPlan>, JitError> {
    let node = g.node(n);
    let Some(x) = g.node_input(n, 0) else {
        return Ok(None);
    };
    let (Some(dtype), Some(xs), Some(out_shape)) = (
        g.value_type(x).dtype,
        known_shape(g, x),
        node.outputs[0].ty.shape.as_ref().and_then(|s| s.as_known()),
    ) else {
        return Ok(None);
    };
    if node.outputs.len() != 1 || xs.len() != 4 || !matches!(dtype, DType::U8 | DType::I8) {
        return Ok(None);
    }
    let spec = MaxPoolSpec {
        dtype,
        in_hw: [xs[2], xs[3]],
        attrs: attrs.clone(),
    };
    // Unsupported geometries (dilations, wide strides) stay with lpc-ref.
    let Ok(func) = define_max_pool(module, &spec) else {
        return Ok(None);
    };
    Ok(Some(MaxPoolPlan {
        spec,
        func,
        kernel: None,
        out_shape,
    }))
}

impl MaxPoolPlan {
    /// Binds the compiled kernel (after the module is finalized).
    pub fn link(&mut self, m: &CodeModule) -> Result<(), JitError> {
        // SAFETY: `func` was defined by `define_max_pool` with `self.spec` on this module.
        self.kernel = Some(unsafe { MaxPoolKernel::new(m, self.func, &self.spec)? });
        Ok(())
    }

    /// Pools `x`, planes split over the threads.
    pub fn run(&self, x: &Tensor, pool: &mut BufferPool) -> Result<Tensor, JitError> {
        let k = self
            .kernel
            .as_ref()
            .ok_or_else(|| JitError::Codegen("max_pool kernel not linked".into()))?;
        let [oh, ow] = k.out_hw();
        let in_n = self.spec.in_hw[0] * self.spec.in_hw[1];
        let len: usize = self.out_shape.iter().product();
        fn planes<T: Elem>(
            k: &MaxPoolKernel,
            x: &[T],
            y: &mut [T],
            in_n: usize,
            on: usize,
        ) -> Result<(), JitError> {
            if in_n == 0 || on == 0 {
                return Ok(());
            }
            let threads = crate::runtime::par::threads();
            if threads == 1 {
                return k.run(x, y);
            }
            let per = (x.len() / in_n).div_ceil(threads).max(1);
            x.par_chunks(per * in_n)
                .zip(y.par_chunks_mut(per * on))
                .try_for_each(|(xs, ys)| k.run(xs, ys))
        }
        let t = match x.dtype() {
            DType::U8 => {
                let mut y = pool.take_u8(len);
                planes(k, x.as_u8().map_err(bad)?, &mut y, in_n, oh * ow)?;
                Tensor::from_u8(&self.out_shape, y)
            }
            _ => {
                let mut y = pool.take_i8(len);
                planes(k, x.as_i8().map_err(bad)?, &mut y, in_n, oh * ow)?;
                Tensor::from_i8(&self.out_shape, y)
            }
        };
        t.map_err(bad)
    }
}

/// Element types of the elementwise steps: typed access to tensors and pooled buffers.
trait Buf: Elem {
    /// The tensor's elements, if it has this type.
    fn slice(t: &Tensor) -> Result<&[Self], JitError>;
    /// A pooled buffer of `len` elements.
    fn take(pool: &mut BufferPool, len: usize) -> Vec<Self>;
    /// A tensor of `shape` owning `v`.
    fn tensor(shape: &[usize], v: Vec<Self>) -> Result<Tensor, JitError>;
}

macro_rules! buf_impl {
    ($t:ty, $as:ident, $take:ident, $from:ident) => {
        impl Buf for $t {
            fn slice(t: &Tensor) -> Result<&[Self], JitError> {
                t.$as().map_err(bad)
            }
            fn take(pool: &mut BufferPool, len: usize) -> Vec<Self> {
                pool.$take(len)
            }
            fn tensor(shape: &[usize], v: Vec<Self>) -> Result<Tensor, JitError> {
                Tensor::$from(shape, v).map_err(bad)
            }
        }
    };
}
buf_impl!(u8, as_u8, take_u8, from_u8);
buf_impl!(i8, as_i8, take_i8, from_i8);
buf_impl!(i32, as_i32, take_i32, from_i32);
buf_impl!(f32, as_f32, take_f32, from_f32);

/// Runs `$body` with the type alias `$T` bound to the element type of dtype `$d` (u8, i8, i32
/// or f32); other dtypes are an error (lowering never builds such a step).
macro_rules! with_elem {
    ($d:expr, $T:ident, $body:expr) => {
        match $d {
            DType::U8 => {
                type $T = u8;
                $body
            }
            DType::I8 => {
                type $T = i8;
                $body
            }
            DType::I32 => {
                type $T = i32;
                $body
            }
            DType::F32 => {
                type $T = f32;
                $body
            }
            d @ (DType::F16 | DType::F64 | DType::I64 | DType::Bool) => Err(JitError::Codegen(
                format!("elementwise step compiled for unsupported dtype {d}"),
            )),
        }
    };
}

/// Elements per parallel chunk of elementwise kernels.
const CHUNK: usize = 1 << 14;

/// `y = f(x)` elementwise into a pooled buffer, in chunks over the threads; `f` gets the flat
/// index of its chunk's first element.
fn unary<X: Buf, Y: Buf>(
    x: &Tensor,
    pool: &mut BufferPool,
    f: impl Fn(&[X], &mut [Y], usize) -> Result<(), JitError> + Sync,
) -> Result<Tensor, JitError> {
    let xv = X::slice(x)?;
    let mut y = Y::take(pool, xv.len());
    if crate::runtime::par::threads() > 1 {
        xv.par_chunks(CHUNK)
            .zip(y.par_chunks_mut(CHUNK))
            .enumerate()
            .try_for_each(|(j, (xs, ys))| f(xs, ys, j * CHUNK))?;
    } else {
        xv.chunks(CHUNK)
            .zip(y.chunks_mut(CHUNK))
            .enumerate()
            .try_for_each(|(j, (xs, ys))| f(xs, ys, j * CHUNK))?;
    }
    Y::tensor(x.shape(), y)
}

/// `y = f(a, b)` elementwise over two same-shape tensors, in chunks over the threads.
fn binary<A: Buf, B: Buf, Y: Buf>(
    a: &Tensor,
    b: &Tensor,
    pool: &mut BufferPool,
    f: impl Fn(&[A], &[B], &mut [Y]) -> Result<(), JitError> + Sync,
) -> Result<Tensor, JitError> {
    if a.shape() != b.shape() {
        return Err(JitError::Input {
            name: "b".into(),
            why: format!(
                "shape {:?} differs from the first operand's {:?}",
                b.shape(),
                a.shape()
            ),
        });
    }
    let (av, bv) = (A::slice(a)?, B::slice(b)?);
    let mut y = Y::take(pool, av.len());
    if crate::runtime::par::threads() > 1 {
        av.par_chunks(CHUNK)
            .zip(bv.par_chunks(CHUNK))
            .zip(y.par_chunks_mut(CHUNK))
            .try_for_each(|((xa, xb), ys)| f(xa, xb, ys))?;
    } else {
        av.chunks(CHUNK)
            .zip(bv.chunks(CHUNK))
            .zip(y.chunks_mut(CHUNK))
            .try_for_each(|((xa, xb), ys)| f(xa, xb, ys))?;
    }
    Y::tensor(a.shape(), y)
}

/// The constant input in slot `k` of `n`, if connected and constant.
fn konst(g: &Graph, n: NodeId, k: usize) -> Option<&Tensor> {
    g.node_input(n, k)
        .and_then(|v| g.const_value(v))
        .map(|t| t.as_ref())
}

/// The scales, zero points and per-axis inner length of a Quantize/DequantizeLinear whose
/// scale (slot 1) and optional zero point (slot 2, of dtype `zp_dtype`) are constants, laid out
/// as lpc-ref's `param_index` reads them: one value (per-tensor), or one per channel of axis
/// `q.axis` of `x_shape`. `None` (fallback) for blocked parameters, non-constant or non-f32
/// scales, or shapes lpc-ref would refuse.
fn axis_params(
    g: &Graph,
    n: NodeId,
    q: &QuantAxis,
    x_shape: &[usize],
    zp_dtype: DType,
) -> Option<(Vec<f32>, Vec<i32>, usize)> {
    let s = konst(g, n, 1)?;
    if s.dtype() != DType::F32 || s.is_empty() || q.block_size != 0 {
        return None;
    }
    let zero_point = match g.node_input(n, 2) {
        None => vec![0; s.len()],
        Some(_) => {
            let z = konst(g, n, 2)?;
            if z.dtype() != zp_dtype || z.len() != s.len() {
                return None;
            }
            z.to_i64_vec().into_iter().map(|v| v as i32).collect()
        }
    };
    let inner = if s.len() == 1 {
        1
    } else {
        let r = x_shape.len() as i64;
        let ax = if q.axis < 0 { q.axis + r } else { q.axis };
        if ax < 0 || ax >= r {
            return None;
        }
        let ax = ax as usize;
        if s.shape() != [x_shape[ax]] {
            return None;
        }
        x_shape[ax + 1..].iter().product()
    };
    Some((s.to_f32_vec(), zero_point, inner))
}

/// A QuantizeLinear from f32 to u8/i8, per-tensor or per-axis.
pub struct QuantizePlan {
    spec: QuantizeSpec,
    func: FuncId,
    kernel: Option<QuantizeKernel>,
}

/// Lowers a QuantizeLinear of f32 with constant scale and zero point (per-tensor or per-axis).
pub fn lower_quantize(
    g: &Graph,
    n: NodeId,
    q: &QuantAxis,
    to: DType,
    module: &mut CodeModule,
    tier: VecTier,
) -> Result<Option<QuantizePlan>, JitError> {
    let Some(x) = g.node_input(n, 0) else {
        return Ok(None);
    };
    let Some(xs) = known_shape(g, x) else {
        return Ok(None);
    };
    if g.value_type(x).dtype != Some(DType::F32) || !matches!(to, DType::U8 | DType::I8) {
        return Ok(None);
    }
    let Some((scale, zero_point, inner)) = axis_params(g, n, q, &xs, to) else {
        return Ok(None);
    };
    let spec = QuantizeSpec {
        to,
        scale,
        zero_point,
        inner,
    };
    // Parameters the kernel refuses (a zero point outside the dtype) stay with lpc-ref.
    let Ok(func) = define_quantize(module, &spec, tier) else {
        return Ok(None);
    };
    Ok(Some(QuantizePlan {
        spec,
        func,
        kernel: None,
    }))
}

impl QuantizePlan {
    /// Binds the compiled kernel (after the module is finalized).
    pub fn link(&mut self, m: &CodeModule) -> Result<(), JitError> {
        // SAFETY: `func` was defined by `define_quantize` with `self.spec` on this module.
        self.kernel = Some(unsafe { QuantizeKernel::new(m, self.func, &self.spec)? });
        Ok(())
    }

    /// Quantizes `x`.
    pub fn run(&self, x: &Tensor, pool: &mut BufferPool) -> Result<Tensor, JitError> {
        let k = self
            .kernel
            .as_ref()
            .ok_or_else(|| JitError::Codegen("quantize kernel not linked".into()))?;
        with_elem!(
            self.spec.to,
            Y,
            unary::<f32, Y>(x, pool, |xs, ys, off| k.run(xs, ys, off))
        )
    }
}

/// A DequantizeLinear from u8/i8/i32 to f32, per-tensor or per-axis.
pub struct DequantizePlan {
    spec: DequantizeSpec,
    func: FuncId,
    kernel: Option<DequantizeKernel>,
}

/// Lowers a DequantizeLinear with a constant f32 scale and constant (or absent) zero point.
pub fn lower_dequantize(
    g: &Graph,
    n: NodeId,
    q: &QuantAxis,
    module: &mut CodeModule,
    tier: VecTier,
) -> Result<Option<DequantizePlan>, JitError> {
    let Some(x) = g.node_input(n, 0) else {
        return Ok(None);
    };
    let (Some(from), Some(xs)) = (g.value_type(x).dtype, known_shape(g, x)) else {
        return Ok(None);
    };
    if !matches!(from, DType::U8 | DType::I8 | DType::I32) {
        return Ok(None);
    }
    let Some((scale, zero_point, inner)) = axis_params(g, n, q, &xs, from) else {
        return Ok(None);
    };
    let spec = DequantizeSpec {
        from,
        scale,
        zero_point,
        inner,
    };
    let Ok(func) = define_dequantize(module, &spec, tier) else {
        return Ok(None);
    };
    Ok(Some(DequantizePlan {
        spec,
        func,
        kernel: None,
    }))
}

impl DequantizePlan {
    /// Binds the compiled kernel (after the module is finalized).
    pub fn link(&mut self, m: &CodeModule) -> Result<(), JitError> {
        // SAFETY: `func` was defined by `define_dequantize` with `self.spec` on this module.
        self.kernel = Some(unsafe { DequantizeKernel::new(m, self.func, &self.spec)? });
        Ok(())
    }

    /// Dequantizes `x`.
    pub fn run(&self, x: &Tensor, pool: &mut BufferPool) -> Result<Tensor, JitError> {
        let k = self
            .kernel
            .as_ref()
            .ok_or_else(|| JitError::Codegen("dequantize kernel not linked".into()))?;
        with_elem!(
            self.spec.from,
            X,
            unary::<X, f32>(x, pool, |xs, ys, off| k.run(xs, ys, off))
        )
    }
}

/// One constant per-tensor quantization parameter pair `(scale, zero point)` at slots `k`,
/// `k + 1`: an f32 scale and a zero point of dtype `zp_dtype`, one element each, of a rank
/// that broadcasts to a value of rank `rank` (lpc-ref refuses higher ranks).
fn scalar_params(
    g: &Graph,
    n: NodeId,
    k: usize,
    zp_dtype: DType,
    rank: usize,
) -> Option<(f32, i32)> {
    let (s, z) = (konst(g, n, k)?, konst(g, n, k + 1)?);
    if s.dtype() != DType::F32 || s.len() != 1 || z.dtype() != zp_dtype || z.len() != 1 {
        return None;
    }
    if s.rank() > rank || z.rank() > rank {
        return None;
    }
    Some((s.to_f32_vec()[0], z.to_i64_vec()[0] as i32))
}

/// A Requantize with per-tensor constant parameters.
pub struct RequantizePlan {
    spec: RequantizeSpec,
    func: FuncId,
    kernel: Option<RequantizeKernel>,
}

/// Lowers a Requantize (x, x_scale, x_zp, y_scale, y_zp) whose parameters are one-element
/// constants and whose output is u8/i8.
pub fn lower_requantize(
    g: &Graph,
    n: NodeId,
    module: &mut CodeModule,
    tier: VecTier,
) -> Result<Option<RequantizePlan>, JitError> {
    let Some(x) = g.node_input(n, 0) else {
        return Ok(None);
    };
    let (Some(from), Some(xs)) = (g.value_type(x).dtype, known_shape(g, x)) else {
        return Ok(None);
    };
    let Some(to) = konst(g, n, 4).map(Tensor::dtype) else {
        return Ok(None);
    };
    let r = xs.len();
    let (Some((x_scale, x_zero_point)), Some((y_scale, y_zero_point))) = (
        scalar_params(g, n, 1, from, r),
        scalar_params(g, n, 3, to, r),
    ) else {
        return Ok(None);
    };
    let spec = RequantizeSpec {
        from,
        x_scale,
        x_zero_point,
        to,
        y_scale,
        y_zero_point,
    };
    // Dtypes the kernel does not take (an i32 output) stay with lpc-ref.
    let Ok(func) = define_requantize(module, &spec, tier) else {
        return Ok(None);
    };
    Ok(Some(RequantizePlan {
        spec,
        func,
        kernel: None,
    }))
}

impl RequantizePlan {
    /// Binds the compiled kernel (after the module is finalized).
    pub fn link(&mut self, m: &CodeModule) -> Result<(), JitError> {
        // SAFETY: `func` was defined by `define_requantize` with `self.spec` on this module.
        self.kernel = Some(unsafe { RequantizeKernel::new(m, self.func, &self.spec)? });
        Ok(())
    }

    /// Requantizes `x`.
    pub fn run(&self, x: &Tensor, pool: &mut BufferPool) -> Result<Tensor, JitError> {
        let k = self
            .kernel
            .as_ref()
            .ok_or_else(|| JitError::Codegen("requantize kernel not linked".into()))?;
        with_elem!(
            self.spec.from,
            X,
            with_elem!(
                self.spec.to,
                Y,
                unary::<X, Y>(x, pool, |xs, ys, _| k.run(xs, ys))
            )
        )
    }
}

/// A QAdd of two same-shape operands with per-tensor constant parameters.
pub struct QAddPlan {
    spec: QAddSpec,
    func: FuncId,
    kernel: Option<QAddKernel>,
}

/// Lowers a QAdd (a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp, lo?, hi?) whose operands
/// have the same known shape and whose parameters are one-element constants (lo/hi constant
/// integers when present). Broadcasting QAdds stay with lpc-ref.
pub fn lower_qadd(
    g: &Graph,
    n: NodeId,
    module: &mut CodeModule,
    tier: VecTier,
) -> Result<Option<QAddPlan>, JitError> {
    let (Some(a), Some(b)) = (g.node_input(n, 0), g.node_input(n, 3)) else {
        return Ok(None);
    };
    let (ta, tb) = (g.value_type(a), g.value_type(b));
    let (Some(da), Some(db), Some(sa), Some(sb)) =
        (ta.dtype, tb.dtype, known_shape(g, a), known_shape(g, b))
    else {
        return Ok(None);
    };
    let Some(to) = konst(g, n, 7).map(Tensor::dtype) else {
        return Ok(None);
    };
    if sa != sb {
        return Ok(None);
    }
    let (Some(pa), Some(pb), Some(py)) = (
        scalar_params(g, n, 1, da, sa.len()),
        scalar_params(g, n, 4, db, sa.len()),
        scalar_params(g, n, 6, to, sa.len()),
    ) else {
        return Ok(None);
    };
    // Optional fused clamp bounds: one-element integer constants, as lpc-ref's `scalar_int`.
    let bound = |k: usize, default: i32| -> Option<i32> {
        match g.node_input(n, k) {
            None => Some(default),
            Some(_) => {
                let t = konst(g, n, k)?;
                (t.dtype().is_int() && t.len() == 1).then(|| t.to_i64_vec()[0] as i32)
            }
        }
    };
    let (Some(lo), Some(hi)) = (bound(8, i32::MIN), bound(9, i32::MAX)) else {
        return Ok(None);
    };
    let spec = QAddSpec {
        a: da,
        a_scale: pa.0,
        a_zero_point: pa.1,
        b: db,
        b_scale: pb.0,
        b_zero_point: pb.1,
        to,
        y_scale: py.0,
        y_zero_point: py.1,
        lo,
        hi,
    };
    // An i32 output or an empty clamp range stays with lpc-ref.
    let Ok(func) = define_qadd(module, &spec, tier) else {
        return Ok(None);
    };
    Ok(Some(QAddPlan {
        spec,
        func,
        kernel: None,
    }))
}

impl QAddPlan {
    /// Binds the compiled kernel (after the module is finalized).
    pub fn link(&mut self, m: &CodeModule) -> Result<(), JitError> {
        // SAFETY: `func` was defined by `define_qadd` with `self.spec` on this module.
        self.kernel = Some(unsafe { QAddKernel::new(m, self.func, &self.spec)? });
        Ok(())
    }

    /// `a ⊕ b`.
    pub fn run(&self, a: &Tensor, b: &Tensor, pool: &mut BufferPool) -> Result<Tensor, JitError> {
        let k = self
            .kernel
            .as_ref()
            .ok_or_else(|| JitError::Codegen("qadd kernel not linked".into()))?;
        with_elem!(
            self.spec.a,
            A,
            with_elem!(
                self.spec.b,
                B,
                with_elem!(
                    self.spec.to,
                    Y,
                    binary::<A, B, Y>(a, b, pool, |xa, xb, ys| k.run(xa, xb, ys))
                )
            )
        )
    }
}

/// A Lut with a constant 256-entry table.
pub struct LutPlan {
    spec: LutSpec,
    func: FuncId,
    kernel: Option<LutKernel>,
}

/// Lowers a Lut of u8/i8 whose table is a constant of 256 u8/i8/i32/f32 entries.
pub fn lower_lut(
    g: &Graph,
    n: NodeId,
    module: &mut CodeModule,
) -> Result<Option<LutPlan>, JitError> {
    let (Some(from), Some(t)) = (
        g.node_input(n, 0).and_then(|x| g.value_type(x).dtype),
        konst(g, n, 1),
    ) else {
        return Ok(None);
    };
    let spec = LutSpec {
        from,
        to: t.dtype(),
        table: t.to_le_bytes(),
    };
    // Other dtypes or table sizes stay with lpc-ref.
    let Ok(func) = define_lut(module, &spec) else {
        return Ok(None);
    };
    Ok(Some(LutPlan {
        spec,
        func,
        kernel: None,
    }))
}

impl LutPlan {
    /// Binds the compiled kernel (after the module is finalized).
    pub fn link(&mut self, m: &CodeModule) -> Result<(), JitError> {
        // SAFETY: `func` was defined by `define_lut` with `self.spec` on this module.
        self.kernel = Some(unsafe { LutKernel::new(m, self.func, &self.spec)? });
        Ok(())
    }

    /// Looks `x` up in the table.
    pub fn run(&self, x: &Tensor, pool: &mut BufferPool) -> Result<Tensor, JitError> {
        let k = self
            .kernel
            .as_ref()
            .ok_or_else(|| JitError::Codegen("lut kernel not linked".into()))?;
        with_elem!(
            self.spec.from,
            X,
            with_elem!(
                self.spec.to,
                Y,
                unary::<X, Y>(x, pool, |xs, ys, _| k.run(xs, ys))
            )
        )
    }
}
