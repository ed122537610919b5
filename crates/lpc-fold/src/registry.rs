//! The named registry behind rule files: `where` conditions (monotone facts only) and `let`
//! helpers that compute constants (quantization parameters, i8 weights, i32 biases, tables).

use crate::analysis::{attr_of, const_of, is_absent, FGraph, FoldAnalysis};
use crate::lang::{ConstKey, FNode, Head};
use crate::rules::Cmp;
use egg::{ENodeOrVar, Id, PatternAst, Subst};
use lpc_ir::{DType, Op, Tensor};
use std::sync::Arc;

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
    pub eval: fn(&FGraph, &[Id], Option<&(Cmp, Vec<String>)>) -> bool,
}

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

/// Elementwise f32 combination with numpy broadcasting.
fn zip_f32(a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32) -> Option<Tensor> {
    let shape = lpc_ref::util::broadcast_shapes(a.shape(), b.shape()).ok()?;
    let (ia, ib) = (
        lpc_ref::util::broadcast_index(a.shape(), &shape),
        lpc_ref::util::broadcast_index(b.shape(), &shape),
    );
    let (va, vb) = (a.to_f32_vec(), b.to_f32_vec());
    let out = ia.iter().zip(&ib).map(|(&i, &j)| f(va[i], vb[j])).collect();
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
    let s = zip_f32(&lo, &hi, |l0, h| (h - l0) / (l - 1) as f32)?;
    if !s.to_f32_vec().iter().all(|x| x.is_finite() && *x > 0.0) {
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
    let z = zip_f32(&lo, &s, |l, s| -l / s)?;
    let zv = z.to_f32_vec();
    let mut out = vec![];
    for x in zv {
        let r = x.round_ties_even();
        if (x - r).abs() > 1e-3 || !(0.0..=255.0).contains(&r) {
            return None;
        }
        out.push(r as u8);
    }
    Some(HOut::Tensor(canon(Tensor::from_u8(z.shape(), out).ok()?)))
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

/// The matched expression evaluated as a 256-entry table over every value of `?x`.
fn lut256(ctx: &HelperCtx, a: &[HVal]) -> Option<HOut> {
    let x = class(&a[0])?;
    let xd = ctx.eg[x].data.ty.dtype?;
    let all: Tensor = match xd {
        DType::U8 => Tensor::from_u8(&[256], (0..=255).collect()).ok()?,
        DType::I8 => Tensor::from_i8(&[256], (-128..=127).collect()).ok()?,
        _ => return None,
    };
    let mut tmp = FGraph::new(FoldAnalysis::default());
    let mut subst = Subst::default();
    for node in ctx.lhs.as_ref() {
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
            if t.len() != 1 {
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
        name: "lut256",
        args: 1,
        doc: "lut256(?x): the whole matched expression evaluated by lpc-ref for each of the 256 values of the u8/i8 ?x (every other variable must be a one-element constant)",
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
