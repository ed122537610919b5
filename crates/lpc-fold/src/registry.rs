//! The named registry behind rule files: `where` conditions (monotone facts only) and `let`
//! helpers that compute constants (quantization parameters, i8 weights, i32 biases, tables).

use crate::analysis::{attr_of, const_of, is_absent, FGraph, FoldAnalysis};
use crate::lang::{ConstKey, FNode, Head, HeadKind};
use egg::{ENodeOrVar, Id, PatternAst, Subst};
use lpc_ir::{quant, DType, Op, OpKind, Tensor};
use std::sync::Arc;

/// A comparison in a condition (`levels ?a == 256`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>=`
    Ge,
    /// `<=`
    Le,
}

/// A condition of the `where` clause.
#[derive(Debug)]
pub struct CondSpec {
    /// Name in rule files.
    pub name: &'static str,
    /// Number of ?variable arguments.
    pub vars: usize,
    /// Takes a comparison and words after the variables (`dtype ?x == u8|i8`).
    pub compares: bool,
    /// One-line documentation.
    pub doc: &'static str,
    /// Validates the words after the comparison at parse time.
    pub check_words: fn(&[String]) -> Result<(), String>,
    /// Evaluates on e-classes.
    pub eval: CondEval,
}

/// How a condition is evaluated: on the e-graph, the classes of its variables and its
/// comparison with the words after it.
pub type CondEval = fn(&FGraph, &[Id], Option<&(Cmp, Vec<String>)>) -> bool;

/// An evaluated helper argument.
#[derive(Clone, Copy, Debug)]
pub enum HVal {
    /// An e-class.
    Class(Id),
    /// A number.
    Num(f64),
}

/// What a helper produces.
#[derive(Clone, Debug)]
pub enum HOut {
    /// A new constant.
    Tensor(Tensor),
    /// An absent input (`none`).
    Absent,
    /// An attribute leaf (the op carrying the attributes), for ops built from scratch.
    Attr(Op),
}

/// What a helper can see: the e-graph, the matched class and the match.
pub struct HelperCtx<'a> {
    /// The e-graph.
    pub eg: &'a FGraph,
    /// The class the left-hand side matched.
    pub root: Id,
    /// The left-hand side pattern.
    pub lhs: &'a PatternAst<FNode>,
    /// The match's bindings.
    pub subst: &'a Subst,
}

/// A `let` helper.
#[derive(Debug)]
pub struct HelperSpec {
    /// Name in rule files.
    pub name: &'static str,
    /// Number of arguments.
    pub args: usize,
    /// One-line documentation.
    pub doc: &'static str,
    /// Computes the value; `None` means "does not apply" and the rule is not applied.
    pub eval: fn(&HelperCtx, &[HVal]) -> Option<HOut>,
}

fn no_words(_: &[String]) -> Result<(), String> {
    Ok(())
}

fn dtype_words(w: &[String]) -> Result<(), String> {
    for x in w {
        if DType::from_name(x).is_none() {
            return Err(format!("unknown dtype '{x}'"));
        }
    }
    Ok(())
}

fn number_word(w: &[String]) -> Result<(), String> {
    match w {
        [x] if x.parse::<i64>().is_ok() => Ok(()),
        _ => Err("expected one integer".into()),
    }
}

fn compare_num(v: i64, cmp: Option<&(Cmp, Vec<String>)>) -> bool {
    let Some((c, w)) = cmp else { return false };
    let Some(n) = w.first().and_then(|x| x.parse::<i64>().ok()) else {
        return false;
    };
    match c {
        Cmp::Eq => v == n,
        Cmp::Ne => v != n,
        Cmp::Ge => v >= n,
        Cmp::Le => v <= n,
    }
}

fn all_vals(eg: &FGraph, id: Id, f: impl Fn(f64) -> bool) -> bool {
    const_of(eg, id).is_some_and(|t| t.to_f64_vec().into_iter().all(f))
}

static CONDS: &[CondSpec] = &[
    CondSpec {
        name: "const",
        vars: 1,
        compares: false,
        doc: "the value is a known constant",
        check_words: no_words,
        eval: |eg, v, _| const_of(eg, v[0]).is_some(),
    },
    CondSpec {
        name: "dtype",
        vars: 1,
        compares: true,
        doc:
            "the value's dtype is (==) or is not (!=) one of the listed dtypes: `dtype ?x == u8|i8`",
        check_words: dtype_words,
        eval: |eg, v, c| {
            let Some(d) = eg[v[0]].data.ty.dtype else {
                return false;
            };
            let Some((cmp, w)) = c else { return false };
            let hit = w.iter().any(|x| DType::from_name(x) == Some(d));
            match cmp {
                Cmp::Eq => hit,
                Cmp::Ne => !hit,
                Cmp::Ge | Cmp::Le => false,
            }
        },
    },
    CondSpec {
        name: "float",
        vars: 1,
        compares: false,
        doc: "the value has a float dtype",
        check_words: no_words,
        eval: |eg, v, _| eg[v[0]].data.ty.dtype.is_some_and(DType::is_float),
    },
    CondSpec {
        name: "per-tensor",
        vars: 1,
        compares: false,
        doc: "a constant with a single element (a per-tensor quantization parameter)",
        check_words: no_words,
        eval: |eg, v, _| const_of(eg, v[0]).is_some_and(|t| t.len() == 1),
    },
    CondSpec {
        name: "zero",
        vars: 1,
        compares: false,
        doc: "a constant whose elements are all 0",
        check_words: no_words,
        eval: |eg, v, _| all_vals(eg, v[0], |x| x == 0.0),
    },
    CondSpec {
        name: "positive",
        vars: 1,
        compares: false,
        doc: "a constant whose elements are all finite and > 0 (a valid scale)",
        check_words: no_words,
        eval: |eg, v, _| all_vals(eg, v[0], |x| x.is_finite() && x > 0.0),
    },
    CondSpec {
        name: "equal",
        vars: 2,
        compares: false,
        doc: "two constants with equal elements (after broadcasting one-element tensors)",
        check_words: no_words,
        eval: |eg, v, _| {
            if eg.find(v[0]) == eg.find(v[1]) {
                return true;
            }
            let (Some(a), Some(b)) = (const_of(eg, v[0]), const_of(eg, v[1])) else {
                return false;
            };
            let (x, y) = (a.to_f64_vec(), b.to_f64_vec());
            a.shape() == b.shape() && x == y
        },
    },
    CondSpec {
        name: "levels",
        vars: 1,
        compares: true,
        doc: "the FakeQuantize levels of an attribute variable: `levels ?a == 256`",
        check_words: number_word,
        eval: |eg, v, c| match attr_of(eg, v[0]).as_deref() {
            Some(Op::FakeQuantize { levels }) => compare_num(*levels as i64, c),
            _ => false,
        },
    },
    CondSpec {
        name: "rank",
        vars: 1,
        compares: true,
        doc: "the value's rank: `rank ?x == 2`",
        check_words: number_word,
        eval: |eg, v, c| {
            eg[v[0]]
                .data
                .ty
                .shape
                .as_ref()
                .is_some_and(|s| compare_num(s.rank() as i64, c))
        },
    },
    CondSpec {
        name: "gemm-plain",
        vars: 1,
        compares: false,
        doc: "a Gemm attribute variable with alpha = beta = 1 and A not transposed",
        check_words: no_words,
        eval: |eg, v, _| matches!(attr_of(eg, v[0]).as_deref(), Some(Op::Gemm { alpha, beta, trans_a: false, .. }) if *alpha == 1.0 && *beta == 1.0),
    },
];

/// The condition of a name.
pub fn condition(name: &str) -> Option<&'static CondSpec> {
    CONDS.iter().find(|c| c.name == name)
}

/// Every condition name.
pub fn condition_names() -> Vec<&'static str> {
    CONDS.iter().map(|c| c.name).collect()
}

/// Every condition, for documentation.
pub fn conditions() -> &'static [CondSpec] {
    CONDS
}

fn class(v: &HVal) -> Option<Id> {
    match v {
        HVal::Class(c) => Some(*c),
        HVal::Num(_) => None,
    }
}

fn cval(ctx: &HelperCtx, v: &HVal) -> Option<Arc<Tensor>> {
    const_of(ctx.eg, class(v)?)
}

fn levels_of(ctx: &HelperCtx, v: &HVal) -> Option<u32> {
    match attr_of(ctx.eg, class(v)?).as_deref() {
        Some(Op::FakeQuantize { levels }) => Some(*levels),
        _ => None,
    }
}

/// Rank 0 for a single element, else unchanged.
fn canon(t: Tensor) -> Tensor {
    if t.len() == 1 && t.rank() > 0 {
        t.reshape(&[]).expect("one element")
    } else {
        t
    }
}

/// Elementwise combination of two f32 tensors with numpy broadcasting: the broadcast shape
/// and the values.
fn zip_map<T>(a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> T) -> Option<(Vec<usize>, Vec<T>)> {
    let shape = lpc_ref::util::broadcast_shapes(a.shape(), b.shape()).ok()?;
    let (ia, ib) = (
        lpc_ref::util::broadcast_index(a.shape(), &shape),
        lpc_ref::util::broadcast_index(b.shape(), &shape),
    );
    let (va, vb) = (a.to_f32_vec(), b.to_f32_vec());
    let out = ia.iter().zip(&ib).map(|(&i, &j)| f(va[i], vb[j])).collect();
    Some((shape, out))
}

/// Elementwise f32 combination with numpy broadcasting.
fn zip_f32(a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32) -> Option<Tensor> {
    let (shape, out) = zip_map(a, b, f)?;
    Tensor::from_f32(&shape, out).ok()
}

/// The per-output-channel values of a weight scale broadcast-shaped for a weight of rank r
/// whose output channel is `axis`: 1-D [M] (or [1] for per-tensor).
fn channel_vector(s: &Tensor, axis: usize) -> Option<Tensor> {
    if s.len() == 1 {
        return Tensor::from_f32(&[1], s.to_f32_vec()).ok();
    }
    let big: Vec<usize> = (0..s.rank()).filter(|&d| s.shape()[d] != 1).collect();
    if big != [axis] {
        return None;
    }
    Tensor::from_f32(&[s.len()], s.to_f32_vec()).ok()
}

fn fq_scale(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    let l = levels_of(ctx, &a[0])?;
    let (lo, hi) = (cval(ctx, &a[1])?, cval(ctx, &a[2])?);
    let s = zip_f32(&lo, &hi, |l0, h| quant::range_scale(l0, h, l))?;
    if !s.to_f32_vec().into_iter().all(quant::is_valid_scale) {
        return None;
    }
    Some(HOut::Tensor(canon(s)))
}

fn fq_zero(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    if levels_of(ctx, &a[0])? != 256 {
        return None;
    }
    let HOut::Tensor(s) = fq_scale(ctx, a)? else {
        return None;
    };
    let lo = cval(ctx, &a[1])?;
    let (shape, z) = zip_map(&lo, &s, |l, s| quant::zero_level(l, s, 256))?;
    let out = z
        .into_iter()
        .map(|z| z.map(|z| z as u8))
        .collect::<Option<_>>()?;
    Some(HOut::Tensor(canon(Tensor::from_u8(&shape, out).ok()?)))
}

fn quantize_weights(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    let v = const_of(ctx.eg, ctx.root)?;
    let s = cval(ctx, &a[0])?;
    let shape = lpc_ref::util::broadcast_shapes(v.shape(), s.shape()).ok()?;
    if shape != v.shape() {
        return None;
    }
    let si = lpc_ref::util::broadcast_index(s.shape(), &shape);
    let (vv, sv) = (v.to_f32_vec(), s.to_f32_vec());
    let mut out = Vec::with_capacity(vv.len());
    for (k, &x) in vv.iter().enumerate() {
        let sc = sv[si[k]];
        if !(sc > 0.0) {
            return None;
        }
        let q = (x / sc).round_ties_even();
        if (q * sc - x).abs() > 1e-3 * sc || !(-128.0..=127.0).contains(&q) {
            return None;
        }
        out.push(q as i8);
    }
    Some(HOut::Tensor(Tensor::from_i8(&shape, out).ok()?))
}

fn zeros_i8(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    let s = cval(ctx, &a[0])?;
    Some(HOut::Tensor(Tensor::zeros(DType::I8, s.shape())))
}

fn wscale(ctx: &HelperCtx, v: &HVal, axis: usize) -> Option<HOut> {
    Some(HOut::Tensor(channel_vector(cval(ctx, v)?.as_ref(), axis)?))
}

fn gemm_trans_b(ctx: &HelperCtx, v: &HVal) -> Option<bool> {
    match attr_of(ctx.eg, class(v)?).as_deref() {
        Some(Op::Gemm { trans_b, .. }) => Some(*trans_b),
        _ => None,
    }
}

fn gemm_weights(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    let w = cval(ctx, &a[1])?;
    if w.rank() != 2 || w.dtype() != DType::I8 {
        return None;
    }
    if !gemm_trans_b(ctx, &a[0])? {
        return Some(HOut::Tensor((*w).clone()));
    }
    let (n, k) = (w.shape()[0], w.shape()[1]);
    let v = w.as_i8().ok()?;
    let out = (0..k * n).map(|i| v[(i % n) * k + i / n]).collect();
    Some(HOut::Tensor(Tensor::from_i8(&[k, n], out).ok()?))
}

fn per_tensor_f32(t: &Tensor) -> Option<f32> {
    (t.len() == 1 && t.dtype() == DType::F32).then(|| t.to_f32_vec()[0])
}

fn requant_scale(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    let sx = per_tensor_f32(cval(ctx, &a[0])?.as_ref())?;
    let ws = cval(ctx, &a[1])?;
    let sy = per_tensor_f32(cval(ctx, &a[2])?.as_ref())?;
    let v: Vec<f32> = ws.to_f32_vec().iter().map(|&w| (sx * w) / sy).collect();
    Some(HOut::Tensor(Tensor::from_f32(&[v.len()], v).ok()?))
}

fn dequant_scale(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    let sx = per_tensor_f32(cval(ctx, &a[0])?.as_ref())?;
    let ws = cval(ctx, &a[1])?;
    let v: Vec<f32> = ws.to_f32_vec().iter().map(|&w| sx * w).collect();
    Some(HOut::Tensor(Tensor::from_f32(&[v.len()], v).ok()?))
}

fn bias_i32(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    if is_absent(ctx.eg, class(&a[0])?) {
        return Some(HOut::Absent);
    }
    let b = cval(ctx, &a[0])?;
    if !b.dtype().is_float() {
        return None;
    }
    let sx = per_tensor_f32(cval(ctx, &a[1])?.as_ref())?;
    let ws = cval(ctx, &a[2])?.to_f32_vec();
    let bv = b.to_f32_vec();
    let n = bv.len().max(ws.len());
    let lead_ones = b.shape().iter().rev().skip(1).all(|&d| d == 1);
    if (bv.len() != 1 && bv.len() != n) || (ws.len() != 1 && ws.len() != n) || !lead_ones {
        return None;
    }
    let out: Vec<i32> = (0..n)
        .map(|k| {
            let r = (bv[k % bv.len()] / (sx * ws[k % ws.len()])).round_ties_even();
            r.clamp(i32::MIN as f32, 2147483520.0) as i32
        })
        .collect();
    Some(HOut::Tensor(Tensor::from_i32(&[n], out).ok()?))
}

fn quantize_scalar(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    if is_absent(ctx.eg, class(&a[0])?) {
        return Some(HOut::Absent);
    }
    let v = cval(ctx, &a[0])?;
    let s = per_tensor_f32(cval(ctx, &a[1])?.as_ref())?;
    let z = cval(ctx, &a[2])?;
    if v.len() != 1 || z.len() != 1 {
        return None;
    }
    let (lo, hi) = match z.dtype() {
        DType::U8 => (0.0, 255.0),
        DType::I8 => (-128.0, 127.0),
        _ => return None,
    };
    let q = ((v.to_f32_vec()[0] / s).round_ties_even() + z.to_f32_vec()[0]).clamp(lo, hi);
    Some(HOut::Tensor(
        Tensor::from_f32(&[], vec![q]).ok()?.cast(z.dtype()),
    ))
}

/// The values of `t` along `axis` of a rank-`rank` operand it broadcasts against (numpy
/// alignment from the right): `n` values when every other dim is 1 and that dim is `n`, or
/// one value repeated `n` times when `t` has one element.
fn along_axis(t: &Tensor, rank: usize, axis: usize, n: usize) -> Option<Vec<f32>> {
    let (v, r) = (t.to_f32_vec(), t.rank());
    if r > rank {
        return None;
    }
    if v.len() == 1 {
        return Some(vec![v[0]; n]);
    }
    if axis + r < rank {
        return None;
    }
    let pos = axis + r - rank;
    let ok = t
        .shape()
        .iter()
        .enumerate()
        .all(|(d, &k)| if d == pos { k == n } else { k == 1 });
    ok.then_some(v)
}

/// `b + round(c / d)` as i32 per channel: a float per-channel constant `c` added after an f32
/// epilogue of scale `d` moved into the i32 bias `b` (absent: 0). The channel is `axis` of the
/// matched result (`None`: its last axis).
fn bias_add(ctx: &HelperCtx, a: &[HVal], axis: Option<usize>) -> Option<HOut> {
    // The batch may be symbolic: only the rank and the channel dim must be known.
    let dims = &ctx.eg[ctx.root].data.ty.shape.as_ref()?.0;
    let ax = match axis {
        Some(k) => k,
        None => dims.len().checked_sub(1)?,
    };
    let m = dims.get(ax)?.known()?;
    let c = cval(ctx, &a[1])?;
    if !c.dtype().is_float() {
        return None;
    }
    let cv = along_axis(&c, dims.len(), ax, m)?;
    let d = cval(ctx, &a[2])?.to_f32_vec();
    if d.len() != 1 && d.len() != m {
        return None;
    }
    let b: Vec<i32> = if is_absent(ctx.eg, class(&a[0])?) {
        vec![0; m]
    } else {
        let b = cval(ctx, &a[0])?;
        if b.dtype() != DType::I32 || b.len() != m {
            return None;
        }
        b.as_i32().ok()?.to_vec()
    };
    let mut out = Vec::with_capacity(m);
    for k in 0..m {
        let dk = d[k % d.len()];
        if !(dk.is_finite() && dk > 0.0) {
            return None;
        }
        let r = (cv[k] / dk).round_ties_even() as f64 + b[k] as f64;
        if !(i32::MIN as f64..=i32::MAX as f64).contains(&r) {
            return None;
        }
        out.push(r as i32);
    }
    Some(HOut::Tensor(Tensor::from_i32(&[m], out).ok()?))
}

/// `d / sy` per channel (an f32 epilogue scale turned into a requantize multiplier; the same
/// f32 operations as `requant-scale`, since `d` is the product `sx·ws`).
fn div_scale(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    let d = cval(ctx, &a[0])?;
    let sy = per_tensor_f32(cval(ctx, &a[1])?.as_ref())?;
    if d.dtype() != DType::F32 || !(sy > 0.0) {
        return None;
    }
    let v: Vec<f32> = d.to_f32_vec().iter().map(|&x| x / sy).collect();
    Some(HOut::Tensor(Tensor::from_f32(&[v.len()], v).ok()?))
}

/// The single value of a zero-point tensor whose elements are all equal, as a rank-0 tensor.
fn common_zero(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    let z = cval(ctx, &a[0])?;
    let v = z.to_i64_vec();
    let first = *v.first()?;
    if !z.dtype().is_int() || v.iter().any(|&x| x != first) {
        return None;
    }
    Some(HOut::Tensor(
        Tensor::from_i64(&[], vec![first]).ok()?.cast(z.dtype()),
    ))
}

/// The accumulator scale of a depthwise conv (every group reads one input channel) whose input
/// scale `sx` is per input channel: output channel `o` reads input channel `o / (M / group)`,
/// so its scale is `sx[o / (M / group)]·ws[o]`, f32 as `dequant-scale` computes it.
fn dw_scale(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    let group = match attr_of(ctx.eg, class(&a[0])?).as_deref() {
        Some(Op::Conv(c)) => c.group,
        _ => return None,
    };
    let w = cval(ctx, &a[1])?;
    let (m, cin) = (*w.shape().first()?, *w.shape().get(1)?);
    if cin != 1 || group == 0 || m % group != 0 {
        return None;
    }
    let sx = along_axis(&*cval(ctx, &a[2])?, w.rank(), 1, group)?;
    let ws = cval(ctx, &a[3])?.to_f32_vec();
    if ws.len() != 1 && ws.len() != m {
        return None;
    }
    let per = m / group;
    let v: Vec<f32> = (0..m).map(|o| sx[o / per] * ws[o % ws.len()]).collect();
    Some(HOut::Tensor(Tensor::from_f32(&[m], v).ok()?))
}

/// `round(b / d)` as i32 per output channel (`none` stays none): a float bias at an
/// accumulator scale vector `d`.
fn bias_at(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    if is_absent(ctx.eg, class(&a[0])?) {
        return Some(HOut::Absent);
    }
    let b = cval(ctx, &a[0])?;
    let d = cval(ctx, &a[1])?.to_f32_vec();
    let bv = b.to_f32_vec();
    if !b.dtype().is_float() || b.rank() > 1 || (bv.len() != d.len() && d.len() != 1) {
        return None;
    }
    let out: Vec<i32> = (0..bv.len())
        .map(|k| {
            let r = (bv[k] / d[k % d.len()]).round_ties_even();
            r.clamp(i32::MIN as f32, 2147483520.0) as i32
        })
        .collect();
    Some(HOut::Tensor(Tensor::from_i32(&[bv.len()], out).ok()?))
}

/// Global average pooling as a depthwise conv: the input's static [N, C, H, W] gives a kernel
/// of H×W, group C, no padding.
fn pool_conv(ctx: &HelperCtx, x: Id) -> Option<(usize, Vec<usize>)> {
    // The batch may be symbolic; channels and spatial dims must be known.
    let s = &ctx.eg[x].data.ty.shape.as_ref()?.0;
    if s.len() < 3 {
        return None;
    }
    let dims: Vec<usize> = s[1..].iter().map(|d| d.known()).collect::<Option<_>>()?;
    Some((dims[0], dims[1..].to_vec()))
}

fn gap_attrs(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    let (c, k) = pool_conv(ctx, class(&a[0])?)?;
    Some(HOut::Attr(Op::Conv(lpc_ir::ConvAttrs {
        kernel: k,
        group: c,
        ..Default::default()
    })))
}

/// The attributes of a ReduceMean over every spatial axis with keepdims, as a depthwise conv.
fn mean_attrs(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    let keep = match attr_of(ctx.eg, class(&a[0])?).as_deref() {
        Some(Op::Reduce {
            op: lpc_ir::ReduceOp::Mean,
            keepdims,
            ..
        }) => *keepdims,
        _ => return None,
    };
    let x = class(&a[1])?;
    let (c, k) = pool_conv(ctx, x)?;
    let rank = k.len() as i64 + 2;
    let mut axes: Vec<i64> = cval(ctx, &a[2])?
        .to_i64_vec()
        .iter()
        .map(|&d| if d < 0 { d + rank } else { d })
        .collect();
    axes.sort_unstable();
    if !keep || axes != (2..rank).collect::<Vec<i64>>() {
        return None;
    }
    Some(HOut::Attr(Op::Conv(lpc_ir::ConvAttrs {
        kernel: k,
        group: c,
        ..Default::default()
    })))
}

/// i8 ones shaped [C, 1, kh, kw] for the pooling conv of `?x`.
fn pool_ones(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    let (c, k) = pool_conv(ctx, class(&a[0])?)?;
    let mut shape = vec![c, 1];
    shape.extend(&k);
    let n: usize = shape.iter().product();
    Some(HOut::Tensor(Tensor::from_i8(&shape, vec![1; n]).ok()?))
}

/// The requantize multiplier of a mean over the pooling window: `sx / (sy · n)` (f32), with
/// `n` the window size of `?x`.
fn pool_scale(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    let (_, k) = pool_conv(ctx, class(&a[0])?)?;
    let n: usize = k.iter().product();
    let sx = per_tensor_f32(cval(ctx, &a[1])?.as_ref())?;
    let sy = per_tensor_f32(cval(ctx, &a[2])?.as_ref())?;
    if n == 0 || n > (1 << 23) / 256 || !(sx > 0.0 && sy > 0.0) {
        return None;
    }
    Some(HOut::Tensor(
        Tensor::from_f32(&[1], vec![sx / (sy * n as f32)]).ok()?,
    ))
}

/// The matched expression evaluated as a 256-entry table over every value of `?x`.
fn lut256(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    let x = class(&a[0])?;
    let xd = ctx.eg[x].data.ty.dtype?;
    let all: Tensor = match xd {
        DType::U8 => Tensor::from_u8(&[256], (0..=255).collect()).ok()?,
        DType::I8 => Tensor::from_i8(&[256], (-128..=127).collect()).ok()?,
        _ => return None,
    };
    // Variables that are the table of a `lut` in the pattern: whole constants, not broadcast.
    let nodes = ctx.lhs.as_ref();
    let tables: Vec<egg::Var> = nodes
        .iter()
        .filter_map(|n| match n {
            ENodeOrVar::ENode(FNode {
                head:
                    Head::Op {
                        kind: HeadKind::Op(OpKind::Lut),
                        ..
                    },
                children,
            }) => match nodes.get(usize::from(*children.get(1)?)) {
                Some(ENodeOrVar::Var(v)) => Some(*v),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let mut tmp = FGraph::new(FoldAnalysis::default());
    let mut subst = Subst::default();
    for node in nodes {
        let ENodeOrVar::Var(v) = node else { continue };
        let c = *ctx.subst.get(*v)?;
        let head = if ctx.eg.find(c) == ctx.eg.find(x) {
            Head::Const(ConstKey::new(Arc::new(all.clone())))
        } else if is_absent(ctx.eg, c) {
            Head::Absent
        } else if let Some(op) = attr_of(ctx.eg, c) {
            Head::Attr(crate::lang::AttrKey::new((*op).clone()))
        } else {
            let t = const_of(ctx.eg, c)?;
            if t.len() != 1 && !tables.contains(v) {
                return None;
            }
            Head::Const(ConstKey::new(t))
        };
        let id = tmp.add(FNode {
            head,
            children: vec![],
        });
        subst.insert(*v, id);
    }
    let root = tmp.add_instantiation(ctx.lhs, &subst);
    tmp.rebuild();
    let t = tmp[root].data.value.clone()?;
    if t.len() != 256 || !tmp.analysis.conflicts.is_empty() {
        return None;
    }
    Some(HOut::Tensor((*t).clone().reshape(&[256]).ok()?))
}

static HELPERS: &[HelperSpec] = &[
    HelperSpec {
        name: "fq-scale",
        args: 3,
        doc: "fq-scale(?a, ?lo, ?hi): (hi − lo)/(levels − 1) of a FakeQuantize range, all > 0",
        eval: fq_scale,
    },
    HelperSpec {
        name: "fq-zero",
        args: 3,
        doc: "fq-zero(?a, ?lo, ?hi): the u8 zero point −lo/scale of a 256-level range; no value unless it is an integer in [0, 255] (zero exactly representable)",
        eval: fq_zero,
    },
    HelperSpec {
        name: "quantize-weights",
        args: 1,
        doc: "quantize-weights(?s): the matched constant divided by ?s as exact i8 values (no value unless every element is on the i8 grid)",
        eval: quantize_weights,
    },
    HelperSpec { name: "zeros-i8", args: 1, doc: "zeros-i8(?s): i8 zeros shaped like ?s", eval: zeros_i8 },
    HelperSpec {
        name: "conv-wscale",
        args: 1,
        doc: "conv-wscale(?sw): a conv weight scale as a per-output-channel vector (axis 0)",
        eval: |c, a| wscale(c, &a[0], 0),
    },
    HelperSpec {
        name: "qop-wscale",
        args: 1,
        doc: "qop-wscale(?sw): a QLinearConv/QLinearMatMul weight scale (1-D per output channel, or one element) as a per-channel vector",
        eval: |c, a| {
            let s = cval(c, &a[0])?;
            if s.rank() > 1 {
                return None;
            }
            Some(HOut::Tensor(channel_vector(s.as_ref(), 0)?))
        },
    },
    HelperSpec {
        name: "matmul-wscale",
        args: 1,
        doc: "matmul-wscale(?sw): a [K, N] weight scale as a per-column vector (axis 1)",
        eval: |c, a| wscale(c, &a[0], 1),
    },
    HelperSpec {
        name: "gemm-wscale",
        args: 2,
        doc: "gemm-wscale(?a, ?sw): a Gemm B scale as a per-output-column vector (axis 0 when trans_b)",
        eval: |c, a| {
            let tb = gemm_trans_b(c, &a[0])?;
            wscale(c, &a[1], if tb { 0 } else { 1 })
        },
    },
    HelperSpec {
        name: "gemm-weights",
        args: 2,
        doc: "gemm-weights(?a, ?w): the i8 B operand of a Gemm as [K, N] (transposed when trans_b)",
        eval: gemm_weights,
    },
    HelperSpec {
        name: "requant-scale",
        args: 3,
        doc: "requant-scale(?sx, ?ws, ?sy): the requantize multiplier (sx·ws)/sy per channel, f32 as ONNX Runtime computes it",
        eval: requant_scale,
    },
    HelperSpec {
        name: "dequant-scale",
        args: 2,
        doc: "dequant-scale(?sx, ?ws): sx·ws per channel (the scale of an f32 epilogue)",
        eval: dequant_scale,
    },
    HelperSpec {
        name: "bias-i32",
        args: 3,
        doc: "bias-i32(?b, ?sx, ?ws): a float bias as i32 at the accumulator scale sx·ws (none stays none)",
        eval: bias_i32,
    },
    HelperSpec {
        name: "quantize",
        args: 3,
        doc: "quantize(?v, ?s, ?z): a one-element constant quantized with scale ?s and zero point ?z (none stays none)",
        eval: quantize_scalar,
    },
    HelperSpec {
        name: "conv-bias-add",
        args: 3,
        doc: "conv-bias-add(?b, ?c, ?d): the i32 bias ?b (or none) plus round(?c / ?d), ?c a float constant per channel (axis 1) of the matched result, ?d an f32 epilogue scale",
        eval: |c, a| bias_add(c, a, Some(1)),
    },
    HelperSpec {
        name: "matmul-bias-add",
        args: 3,
        doc: "matmul-bias-add(?b, ?c, ?d): as conv-bias-add with the channel on the last axis",
        eval: |c, a| bias_add(c, a, None),
    },
    HelperSpec {
        name: "div-scale",
        args: 2,
        doc: "div-scale(?d, ?sy): an f32 epilogue scale divided by a per-tensor output scale (a requantize multiplier)",
        eval: div_scale,
    },
    HelperSpec {
        name: "common-zero",
        args: 1,
        doc: "common-zero(?z): the one value of a zero point whose elements are all equal (rank 0); no value otherwise",
        eval: common_zero,
    },
    HelperSpec {
        name: "dw-scale",
        args: 4,
        doc: "dw-scale(?a, ?w, ?sx, ?ws): the accumulator scale per output channel of a depthwise conv (one input channel per group) with a per-channel input scale ?sx",
        eval: dw_scale,
    },
    HelperSpec {
        name: "bias-at",
        args: 2,
        doc: "bias-at(?b, ?d): a float bias [M] as i32 at the accumulator scale vector ?d (none stays none)",
        eval: bias_at,
    },
    HelperSpec {
        name: "gap-attrs",
        args: 1,
        doc: "gap-attrs(?x): conv attributes of global average pooling over ?x (static C, H, W) as a depthwise conv",
        eval: gap_attrs,
    },
    HelperSpec {
        name: "mean-attrs",
        args: 3,
        doc: "mean-attrs(?a, ?x, ?axes): the same for a ReduceMean with keepdims over every spatial axis of ?x; no value otherwise",
        eval: mean_attrs,
    },
    HelperSpec {
        name: "pool-ones",
        args: 1,
        doc: "pool-ones(?x): i8 ones [C, 1, H, W], the weights of the pooling conv of ?x",
        eval: pool_ones,
    },
    HelperSpec {
        name: "pool-scale",
        args: 3,
        doc: "pool-scale(?x, ?sx, ?sy): the multiplier sx / (sy·H·W) of a mean over the spatial window of ?x",
        eval: pool_scale,
    },
    HelperSpec {
        name: "lut256",
        args: 1,
        doc: "lut256(?x): the whole matched expression evaluated by lpc-ref for each of the 256 values of the u8/i8 ?x (every other variable must be a one-element constant or the table of a lut)",
        eval: lut256,
    },
];

/// The helper of a name.
pub fn helper(name: &str) -> Option<&'static HelperSpec> {
    HELPERS.iter().find(|h| h.name == name)
}

/// Every helper name.
pub fn helper_names() -> Vec<&'static str> {
    HELPERS.iter().map(|h| h.name).collect()
}

/// Every helper, for documentation.
pub fn helpers() -> &'static [HelperSpec] {
    HELPERS
}
