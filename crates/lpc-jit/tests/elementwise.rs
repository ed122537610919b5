//! Differential tests of the elementwise JIT kernels against `lpc_ref::eval`, bit for bit.

use lpc_ir::{DType, Op, QuantAxis, Tensor};
use lpc_jit::kernels::int8_eltwise::*;
use lpc_jit::{CodeModule, JitError, VecTier};

/// The kernel tiers of this host (xmm everywhere, zmm with AVX-512), case `k`'s the
/// `k % len`-th: the random cases alternate between them.
fn tier(case: usize) -> VecTier {
    static TIERS: std::sync::OnceLock<Vec<VecTier>> = std::sync::OnceLock::new();
    let t = TIERS.get_or_init(|| {
        let mut t = vec![VecTier::Xmm];
        if CodeModule::new().unwrap().features().zmm_f32 {
            t.push(VecTier::Zmm);
        } else {
            eprintln!("VecTier::Zmm not tested: this host lacks AVX-512");
        }
        t
    });
    t[case % t.len()]
}

mod common;
use common::Rng;

fn shape(r: &mut Rng) -> Vec<usize> {
    let rank = 1 + r.below(4);
    (0..rank)
        .map(|_| {
            if r.chance(0.3) {
                1 + r.below(40)
            } else {
                1 + r.below(7)
            }
        })
        .collect()
}

fn scale(r: &mut Rng) -> f32 {
    let s = match r.below(10) {
        0 => 1e30,
        1 => 1e-40,
        2 => 0.0,
        3 => 1.0,
        _ => 10f32.powf(r.unit() * 4.0 - 3.0),
    };
    if r.chance(0.2) {
        -s
    } else {
        s
    }
}

fn range(d: DType) -> (i64, i64) {
    match d {
        DType::U8 => (0, 255),
        DType::I8 => (-128, 127),
        DType::I32 => (i32::MIN as i64, i32::MAX as i64),
        other => panic!("no range for {other}"),
    }
}

fn int_tensor(r: &mut Rng, d: DType, shape: &[usize]) -> Tensor {
    let (lo, hi) = range(d);
    let n: usize = shape.iter().product();
    let v: Vec<i64> = (0..n)
        .map(|_| {
            if d == DType::I32 && r.chance(0.7) {
                r.int(-1000, 1000)
            } else {
                r.int(lo, hi)
            }
        })
        .collect();
    Tensor::from_i64(shape, v).unwrap().cast(d)
}

fn scalar(d: DType, v: i64) -> Tensor {
    Tensor::from_i64(&[], vec![v]).unwrap().cast(d)
}

fn eval(op: Op, ins: &[Option<&Tensor>]) -> Tensor {
    lpc_ref::eval(&op, ins, 1).unwrap().remove(0)
}

/// Runs `f` on a sub-range split: the kernel must give the same bytes on pieces.
fn split_point(r: &mut Rng, n: usize) -> usize {
    r.below(n + 1)
}

fn bytes_tensor(d: DType, shape: &[usize], v: &[u8]) -> Tensor {
    match d {
        DType::U8 => Tensor::from_u8(shape, v.to_vec()).unwrap(),
        DType::I8 => Tensor::from_i8(shape, v.iter().map(|&b| b as i8).collect()).unwrap(),
        other => panic!("not a byte dtype: {other}"),
    }
}

/// Runs a u8/i8-output closure through the right element type and returns a tensor.
macro_rules! run_bytes {
    ($d:expr, $n:expr, |$y:ident| $body:expr) => {{
        match $d {
            DType::U8 => {
                let mut $y = vec![0u8; $n];
                $body;
                $y
            }
            DType::I8 => {
                let mut $y = vec![0i8; $n];
                $body;
                $y.iter().map(|&v| v as u8).collect()
            }
            other => panic!("not a byte dtype: {other}"),
        }
    }};
}

fn x_values(r: &mut Rng, n: usize, s: f32) -> Vec<f32> {
    (0..n)
        .map(|_| match r.below(12) {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            3 => (r.int(-300, 300) as f32 + 0.5) * s,
            4 => 1e30 * if r.chance(0.5) { 1.0 } else { -1.0 },
            5 => -0.0,
            _ => (r.unit() * 600.0 - 300.0) * s.abs().max(1e-30),
        })
        .collect()
}

#[test]
fn quantize_matches_reference() {
    let mut r = Rng(0x9e3779b97f4a7c15);
    for case in 0..300 {
        let sh = shape(&mut r);
        let n: usize = sh.iter().product();
        let to = r.pick(&[DType::U8, DType::I8]);
        let per_axis = r.chance(0.5);
        let axis = r.below(sh.len());
        let c = if per_axis { sh[axis] } else { 1 };
        let inner: usize = if per_axis {
            sh[axis + 1..].iter().product()
        } else {
            0
        };
        let (lo, hi) = range(to);
        let scales: Vec<f32> = (0..c).map(|_| scale(&mut r)).collect();
        let zps: Vec<i64> = (0..c)
            .map(|_| if r.chance(0.3) { 0 } else { r.int(lo, hi) })
            .collect();
        let x = x_values(&mut r, n, scales[0]);
        let s = split_point(&mut r, n);
        let (got, want, spec) =
            quantize_both(to, &sh, &x, (&scales, &zps), (axis, inner), s, tier(case));
        assert_eq!(got, want, "case {case}: {spec:?} x={x:?}");
    }
}

/// QuantizeLinear of `x` (shape `sh`) by lpc-ref and by the kernel (run in two pieces split at
/// `split`): per tensor with one scale, else per axis `axis` with `inner` elements per channel run.
fn quantize_both(
    to: DType,
    sh: &[usize],
    x: &[f32],
    (scales, zps): (&[f32], &[i64]),
    (axis, inner): (usize, usize),
    split: usize,
    tier: VecTier,
) -> (Tensor, Tensor, QuantizeSpec) {
    let pshape: Vec<usize> = if scales.len() > 1 || inner > 0 {
        vec![scales.len()]
    } else {
        vec![]
    };
    let xt = Tensor::from_f32(sh, x.to_vec()).unwrap();
    let st = Tensor::from_f32(&pshape, scales.to_vec()).unwrap();
    let zt = Tensor::from_i64(&pshape, zps.to_vec()).unwrap().cast(to);
    let q = QuantAxis {
        axis: axis as i64,
        block_size: 0,
    };
    let want = eval(
        Op::QuantizeLinear { q, dtype: to },
        &[Some(&xt), Some(&st), Some(&zt)],
    );
    let spec = QuantizeSpec {
        to,
        scale: scales.to_vec(),
        zero_point: zps.iter().map(|&z| z as i32).collect(),
        inner,
    };
    let mut m = CodeModule::new().unwrap();
    let id = define_quantize(&mut m, &spec, tier).unwrap();
    m.finalize().unwrap();
    let k = unsafe { QuantizeKernel::new(&m, id, &spec) }.unwrap();
    let n = x.len();
    let got: Vec<u8> = run_bytes!(to, n, |y| {
        k.run(&x[..split], &mut y[..split], 0).unwrap();
        k.run(&x[split..], &mut y[split..], split).unwrap();
    });
    (bytes_tensor(to, sh, &got), want, spec)
}

#[test]
fn dequantize_matches_reference() {
    let mut r = Rng(0x1234_5678_9abc_def1);
    for case in 0..300 {
        let sh = shape(&mut r);
        let n: usize = sh.iter().product();
        let from = r.pick(&[DType::U8, DType::I8, DType::I32]);
        let per_axis = r.chance(0.5);
        let axis = r.below(sh.len());
        let c = if per_axis { sh[axis] } else { 1 };
        let inner: usize = if per_axis {
            sh[axis + 1..].iter().product()
        } else {
            0
        };
        let (lo, hi) = range(from);
        let scales: Vec<f32> = (0..c).map(|_| scale(&mut r)).collect();
        let zps: Vec<i64> = (0..c)
            .map(|_| if r.chance(0.3) { 0 } else { r.int(lo, hi) })
            .collect();
        let pshape: Vec<usize> = if per_axis { vec![c] } else { vec![] };
        let xt = int_tensor(&mut r, from, &sh);
        let st = Tensor::from_f32(&pshape, scales.clone()).unwrap();
        let zt = Tensor::from_i64(&pshape, zps.clone()).unwrap().cast(from);
        let q = QuantAxis {
            axis: axis as i64,
            block_size: 0,
        };
        let want = eval(
            Op::DequantizeLinear { q },
            &[Some(&xt), Some(&st), Some(&zt)],
        );
        let spec = DequantizeSpec {
            from,
            scale: scales,
            zero_point: zps.iter().map(|&z| z as i32).collect(),
            inner,
        };
        let mut m = CodeModule::new().unwrap();
        let id = define_dequantize(&mut m, &spec, tier(case)).unwrap();
        m.finalize().unwrap();
        let k = unsafe { DequantizeKernel::new(&m, id, &spec) }.unwrap();
        let s = split_point(&mut r, n);
        let mut y = vec![0f32; n];
        match from {
            DType::U8 => {
                let x = xt.as_u8().unwrap();
                k.run(&x[..s], &mut y[..s], 0).unwrap();
                k.run(&x[s..], &mut y[s..], s).unwrap();
            }
            DType::I8 => {
                let x = xt.as_i8().unwrap();
                k.run(&x[..s], &mut y[..s], 0).unwrap();
                k.run(&x[s..], &mut y[s..], s).unwrap();
            }
            _ => {
                let x = xt.as_i32().unwrap();
                k.run(&x[..s], &mut y[..s], 0).unwrap();
                k.run(&x[s..], &mut y[s..], s).unwrap();
            }
        }
        let got = Tensor::from_f32(&sh, y).unwrap();
        assert!(
            got.same_content(&want),
            "case {case}: {spec:?}\n{got:?}\n{want:?}"
        );
    }
}

/// Runs a kernel whose input is u8, i8 or i32 given as a tensor.
macro_rules! with_int {
    ($t:expr, |$x:ident| $body:expr) => {{
        match $t.dtype() {
            DType::U8 => {
                let $x = $t.as_u8().unwrap();
                $body
            }
            DType::I8 => {
                let $x = $t.as_i8().unwrap();
                $body
            }
            _ => {
                let $x = $t.as_i32().unwrap();
                $body
            }
        }
    }};
}

#[test]
fn requantize_matches_reference() {
    let mut r = Rng(0xdead_beef_cafe_f00d);
    for case in 0..300 {
        let sh = shape(&mut r);
        let n: usize = sh.iter().product();
        let from = r.pick(&[DType::U8, DType::I8, DType::I32]);
        let to = r.pick(&[DType::U8, DType::I8]);
        let (flo, fhi) = range(from);
        let (tlo, thi) = range(to);
        let spec = RequantizeSpec {
            from,
            x_scale: scale(&mut r),
            x_zero_point: if r.chance(0.3) {
                0
            } else {
                r.int(flo, fhi) as i32
            },
            to,
            y_scale: scale(&mut r),
            y_zero_point: if r.chance(0.3) {
                0
            } else {
                r.int(tlo, thi) as i32
            },
        };
        let xt = int_tensor(&mut r, from, &sh);
        let want = eval(
            Op::Requantize,
            &[
                Some(&xt),
                Some(&Tensor::scalar_f32(spec.x_scale)),
                Some(&scalar(from, spec.x_zero_point as i64)),
                Some(&Tensor::scalar_f32(spec.y_scale)),
                Some(&scalar(to, spec.y_zero_point as i64)),
            ],
        );
        let mut m = CodeModule::new().unwrap();
        let id = define_requantize(&mut m, &spec, tier(case)).unwrap();
        m.finalize().unwrap();
        let k = unsafe { RequantizeKernel::new(&m, id, &spec) }.unwrap();
        let s = split_point(&mut r, n);
        let got: Vec<u8> = run_bytes!(to, n, |y| with_int!(xt, |x| {
            k.run(&x[..s], &mut y[..s]).unwrap();
            k.run(&x[s..], &mut y[s..]).unwrap();
        }));
        assert_eq!(bytes_tensor(to, &sh, &got), want, "case {case}: {spec:?}");
    }
}

#[test]
fn qadd_matches_reference() {
    let mut r = Rng(0x0bad_c0de_1234_5678);
    for case in 0..300 {
        let sh = shape(&mut r);
        let n: usize = sh.iter().product();
        let da = r.pick(&[DType::U8, DType::I8, DType::I8, DType::U8, DType::I32]);
        let db = r.pick(&[DType::U8, DType::I8, DType::I8, DType::U8, DType::I32]);
        let to = r.pick(&[DType::U8, DType::I8]);
        let (alo, ahi) = range(da);
        let (blo, bhi) = range(db);
        let (tlo, thi) = range(to);
        let clamp = r.chance(0.5);
        let (mut lo, mut hi) = (r.int(tlo, thi), r.int(tlo, thi));
        if lo > hi {
            std::mem::swap(&mut lo, &mut hi);
        }
        let spec = QAddSpec {
            a: da,
            a_scale: scale(&mut r),
            a_zero_point: if r.chance(0.3) {
                0
            } else {
                r.int(alo.max(-5000), ahi.min(5000)) as i32
            },
            b: db,
            b_scale: scale(&mut r),
            b_zero_point: if r.chance(0.3) {
                0
            } else {
                r.int(blo.max(-5000), bhi.min(5000)) as i32
            },
            to,
            y_scale: scale(&mut r),
            y_zero_point: if r.chance(0.3) {
                0
            } else {
                r.int(tlo, thi) as i32
            },
            lo: if clamp { lo as i32 } else { i32::MIN },
            hi: if clamp { hi as i32 } else { i32::MAX },
        };
        let (at, bt) = (int_tensor(&mut r, da, &sh), int_tensor(&mut r, db, &sh));
        let (lt, ht) = (scalar(to, lo), scalar(to, hi));
        let mut ins = vec![
            Some(&at),
            None,
            None,
            Some(&bt),
            None,
            None,
            None,
            None,
            clamp.then_some(&lt),
            clamp.then_some(&ht),
        ];
        let params = [
            Tensor::scalar_f32(spec.a_scale),
            scalar(da, spec.a_zero_point as i64),
            Tensor::scalar_f32(spec.b_scale),
            scalar(db, spec.b_zero_point as i64),
            Tensor::scalar_f32(spec.y_scale),
            scalar(to, spec.y_zero_point as i64),
        ];
        for (slot, t) in [1, 2, 4, 5, 6, 7].into_iter().zip(&params) {
            ins[slot] = Some(t);
        }
        let want = eval(Op::QAdd, &ins);
        let mut m = CodeModule::new().unwrap();
        let id = define_qadd(&mut m, &spec, tier(case)).unwrap();
        m.finalize().unwrap();
        let k = unsafe { QAddKernel::new(&m, id, &spec) }.unwrap();
        let s = split_point(&mut r, n);
        let got: Vec<u8> = run_bytes!(to, n, |y| with_int!(at, |a| with_int!(bt, |b| {
            k.run(&a[..s], &b[..s], &mut y[..s]).unwrap();
            k.run(&a[s..], &b[s..], &mut y[s..]).unwrap();
        })));
        assert_eq!(bytes_tensor(to, &sh, &got), want, "case {case}: {spec:?}");
    }
}

#[test]
fn lut_matches_reference() {
    let mut r = Rng(0x5555_aaaa_3333_cccc);
    for case in 0..60 {
        let sh = shape(&mut r);
        let n: usize = sh.iter().product();
        let from = r.pick(&[DType::U8, DType::I8]);
        let to = r.pick(&[DType::U8, DType::I8, DType::I32, DType::F32]);
        let table = match to {
            DType::F32 => {
                Tensor::from_f32(&[256], (0..256).map(|_| r.unit() * 100.0 - 50.0).collect())
                    .unwrap()
            }
            d => int_tensor(&mut r, d, &[256]),
        };
        let xt = int_tensor(&mut r, from, &sh);
        let want = eval(Op::Lut, &[Some(&xt), Some(&table)]);
        let spec = LutSpec {
            from,
            to,
            table: table.to_le_bytes(),
        };
        let mut m = CodeModule::new().unwrap();
        let id = define_lut(&mut m, &spec).unwrap();
        m.finalize().unwrap();
        let k = unsafe { LutKernel::new(&m, id, &spec) }.unwrap();
        let got = with_int!(xt, |x| match to {
            DType::F32 => {
                let mut y = vec![0f32; n];
                k.run(x, &mut y).unwrap();
                Tensor::from_f32(&sh, y).unwrap()
            }
            DType::I32 => {
                let mut y = vec![0i32; n];
                k.run(x, &mut y).unwrap();
                Tensor::from_i32(&sh, y).unwrap()
            }
            DType::U8 => {
                let mut y = vec![0u8; n];
                k.run(x, &mut y).unwrap();
                Tensor::from_u8(&sh, y).unwrap()
            }
            _ => {
                let mut y = vec![0i8; n];
                k.run(x, &mut y).unwrap();
                Tensor::from_i8(&sh, y).unwrap()
            }
        });
        assert!(got.same_content(&want), "case {case}: {from} -> {to}");
    }
}

fn is_input_err(e: Result<(), JitError>) -> bool {
    matches!(e, Err(JitError::Input { .. }))
}

#[test]
fn bad_lengths_and_dtypes_are_errors() {
    let mut m = CodeModule::new().unwrap();
    let qs = QuantizeSpec {
        to: DType::U8,
        scale: vec![0.5],
        zero_point: vec![3],
        inner: 0,
    };
    let rs = RequantizeSpec {
        from: DType::I8,
        x_scale: 0.1,
        x_zero_point: 0,
        to: DType::U8,
        y_scale: 0.2,
        y_zero_point: 128,
    };
    let ls = LutSpec {
        from: DType::U8,
        to: DType::U8,
        table: (0..=255).collect(),
    };
    let (qi, ri, li) = (
        define_quantize(&mut m, &qs, VecTier::Auto).unwrap(),
        define_requantize(&mut m, &rs, VecTier::Auto).unwrap(),
        define_lut(&mut m, &ls).unwrap(),
    );
    m.finalize().unwrap();
    let q = unsafe { QuantizeKernel::new(&m, qi, &qs) }.unwrap();
    let rq = unsafe { RequantizeKernel::new(&m, ri, &rs) }.unwrap();
    let l = unsafe { LutKernel::new(&m, li, &ls) }.unwrap();
    assert!(is_input_err(q.run(&[1.0; 5], &mut [0u8; 4], 0)));
    assert!(is_input_err(q.run(&[1.0; 5], &mut [0i8; 5], 0)));
    assert!(q.run(&[1.0; 5], &mut [0u8; 5], 0).is_ok());
    assert!(is_input_err(rq.run(&[1i8; 3], &mut [0u8; 2])));
    assert!(is_input_err(rq.run(&[1u8; 3], &mut [0u8; 3])));
    assert!(is_input_err(l.run(&[1u8; 3], &mut [0u8; 30])));
    assert!(is_input_err(l.run(&[1u8; 3], &mut [0f32; 3])));

    // Specs the kernels cannot compile are errors, not panics.
    let mut m = CodeModule::new().unwrap();
    let bad_q = [
        QuantizeSpec {
            to: DType::I32,
            ..qs.clone()
        },
        QuantizeSpec {
            zero_point: vec![300],
            ..qs.clone()
        },
        QuantizeSpec {
            scale: vec![1.0, 2.0],
            zero_point: vec![0, 0],
            inner: 0,
            ..qs.clone()
        },
        QuantizeSpec {
            scale: vec![1.0, 2.0],
            ..qs.clone()
        },
    ];
    for s in &bad_q {
        for t in [VecTier::Xmm, VecTier::Auto] {
            assert!(define_quantize(&mut m, s, t).is_err(), "{s:?}");
        }
    }
    assert!(define_lut(
        &mut m,
        &LutSpec {
            table: vec![0; 255],
            ..ls.clone()
        }
    )
    .is_err());
    let qa = QAddSpec {
        a: DType::U8,
        a_scale: 1.0,
        a_zero_point: 0,
        b: DType::U8,
        b_scale: 1.0,
        b_zero_point: 0,
        to: DType::U8,
        y_scale: 1.0,
        y_zero_point: 0,
        lo: 200,
        hi: 100,
    };
    assert!(define_qadd(&mut m, &qa, VecTier::Auto).is_err());
}

#[test]
fn qadd_nan_gives_zero_even_below_lo() {
    // 0/0 is NaN: lpc-ref writes 0 without clamping to lo.
    let spec = QAddSpec {
        a: DType::U8,
        a_scale: 0.5,
        a_zero_point: 7,
        b: DType::U8,
        b_scale: 0.0,
        b_zero_point: 0,
        to: DType::U8,
        y_scale: 0.0,
        y_zero_point: 20,
        lo: 20,
        hi: 255,
    };
    let a: Vec<u8> = (0..37)
        .map(|k| if k % 3 == 0 { 7 } else { k as u8 })
        .collect();
    let b = vec![9u8; 37];
    let t = |v: &[u8]| Tensor::from_u8(&[37], v.to_vec()).unwrap();
    let (at, bt) = (t(&a), t(&b));
    let p = [
        Tensor::scalar_f32(0.5),
        scalar(DType::U8, 7),
        Tensor::scalar_f32(0.0),
        scalar(DType::U8, 0),
        Tensor::scalar_f32(0.0),
        scalar(DType::U8, 20),
        scalar(DType::U8, 20),
        scalar(DType::U8, 255),
    ];
    let ins = [
        Some(&at),
        Some(&p[0]),
        Some(&p[1]),
        Some(&bt),
        Some(&p[2]),
        Some(&p[3]),
        Some(&p[4]),
        Some(&p[5]),
        Some(&p[6]),
        Some(&p[7]),
    ];
    let want = eval(Op::QAdd, &ins);
    assert!(want.as_u8().unwrap().contains(&0));
    for case in 0..2 {
        let mut m = CodeModule::new().unwrap();
        let id = define_qadd(&mut m, &spec, tier(case)).unwrap();
        m.finalize().unwrap();
        let k = unsafe { QAddKernel::new(&m, id, &spec) }.unwrap();
        let mut y = vec![0u8; 37];
        k.run(&a, &b, &mut y).unwrap();
        assert_eq!(t(&y), want, "{:?}", tier(case));
    }
}
