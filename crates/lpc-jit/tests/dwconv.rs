//! Differential tests of the window JIT kernels (depthwise QConv, MaxPool) against
//! `lpc_ref::eval`, bit for bit.

use lpc_ir::{AutoPad, ConvAttrs, DType, Op, PoolAttrs, Tensor};
use lpc_jit::kernels::dwconv::*;
use lpc_jit::kernels::pool::*;
use lpc_jit::{CodeModule, JitError};

mod common;
use common::Rng;

fn range(d: DType) -> (i64, i64) {
    match d {
        DType::U8 => (0, 255),
        DType::I8 => (-128, 127),
        other => panic!("no range for {other}"),
    }
}

fn bytes(r: &mut Rng, d: DType, shape: &[usize]) -> Tensor {
    let (lo, hi) = range(d);
    let n: usize = shape.iter().product();
    Tensor::from_i64(shape, (0..n).map(|_| r.int(lo, hi)).collect())
        .unwrap()
        .cast(d)
}

fn scalar(d: DType, v: i64) -> Tensor {
    Tensor::from_i64(&[], vec![v]).unwrap().cast(d)
}

fn width(r: &mut Rng) -> usize {
    r.pick(&[1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 20, 31, 32, 33, 40, 47])
}

/// Geometry: (kh, kw), strides, pads [t, l, b, r] each smaller than the kernel, and the input
/// big enough for the window.
fn window(r: &mut Rng, strides_w: &[usize]) -> ([usize; 2], [usize; 2], [usize; 4], [usize; 2]) {
    let k = r.pick(&[
        [3, 3],
        [3, 3],
        [5, 5],
        [1, 1],
        [3, 5],
        [2, 2],
        [7, 3],
        [3, 9],
        [1, 13],
    ]);
    let s = [r.pick(&[1, 1, 2, 3]), r.pick(strides_w)];
    let p = [r.below(k[0]), r.below(k[1]), r.below(k[0]), r.below(k[1])];
    let h = (1 + r.below(12)).max(k[0]);
    let w = width(r).max(k[1]);
    (k, s, p, [h, w])
}

/// Splits the planes at a random point and runs both halves.
fn split(r: &mut Rng, planes: usize) -> usize {
    r.below(planes + 1)
}

#[test]
fn dwconv_matches_reference() {
    let vnni = CodeModule::new().unwrap().features().vnni;
    if !vnni {
        eprintln!("dwconv_matches_reference: DwPath::Vnni skipped (no VNNI on this host)");
    }
    let mut r = Rng(0x2545_f491_4f6c_dd1d);
    for case in 0..600 {
        let path = if vnni && case % 3 != 0 {
            DwPath::Vnni
        } else {
            DwPath::ExactI16
        };
        let (k, s, p, hw) = window(&mut r, &[1, 2, 3, 4]);
        let (n, c) = (1 + r.below(2), 1 + r.below(5));
        let xd = r.pick(&[DType::U8, DType::I8]);
        let (xlo, xhi) = range(xd);
        let xz = if r.chance(0.3) { 0 } else { r.int(xlo, xhi) };
        let same = r.chance(0.2);
        let attrs = ConvAttrs {
            kernel: if r.chance(0.5) { k.to_vec() } else { vec![] },
            strides: s.to_vec(),
            pads: if same { vec![] } else { p.to_vec() },
            dilations: if r.chance(0.5) { vec![1, 1] } else { vec![] },
            group: c,
            auto_pad: if same {
                AutoPad::SameUpper
            } else {
                AutoPad::NotSet
            },
        };
        let xt = bytes(&mut r, xd, &[n, c, hw[0], hw[1]]);
        let wt = bytes(&mut r, DType::I8, &[c, 1, k[0], k[1]]);
        let bias: Option<Vec<i32>> = r.chance(0.7).then(|| {
            (0..c)
                .map(|_| match r.below(6) {
                    0 => i32::MAX - r.int(0, 1000) as i32,
                    1 => i32::MIN + r.int(0, 1000) as i32,
                    _ => r.int(-100_000, 100_000) as i32,
                })
                .collect()
        });
        let scale: Vec<f32> = (0..if r.chance(0.5) { c } else { 1 })
            .map(|_| match r.below(8) {
                0 => -0.003,
                1 => 1e9,
                2 => 1.0,
                _ => 10f32.powf(r.unit() * 3.0 - 5.0),
            })
            .collect();
        let float = r.chance(0.2);
        let yd = r.pick(&[DType::U8, DType::I8]);
        let (ylo, yhi) = range(yd);
        let yz = if r.chance(0.3) { 0 } else { r.int(ylo, yhi) };
        let clamp = r.chance(0.4);
        let (mut lo, mut hi) = (r.int(ylo, yhi), r.int(ylo, yhi));
        if lo > hi {
            std::mem::swap(&mut lo, &mut hi);
        }
        let (xzt, bt, st) = (
            scalar(xd, xz),
            bias.clone().map(|b| Tensor::from_i32(&[c], b).unwrap()),
            Tensor::from_f32(&[scale.len()], scale.clone()).unwrap(),
        );
        let (yzt, lt, ht) = (scalar(yd, yz), scalar(yd, lo), scalar(yd, hi));
        let ins = [
            Some(&xt),
            Some(&xzt),
            Some(&wt),
            bt.as_ref(),
            Some(&st),
            (!float).then_some(&yzt),
            (!float && clamp).then_some(&lt),
            (!float && clamp).then_some(&ht),
        ];
        let want = lpc_ref::eval(&Op::QConv(attrs.clone()), &ins, 1)
            .unwrap()
            .remove(0);
        let spec = DwConvSpec {
            x_dtype: xd,
            x_zero_point: xz as i32,
            in_hw: hw,
            attrs,
            kernel_hw: k,
            weights: wt.as_i8().unwrap().to_vec(),
            bias,
            scale,
            output: if float {
                DwOutput::Float
            } else {
                DwOutput::Quantized {
                    dtype: yd,
                    zero_point: yz as i32,
                    lo: if clamp { lo as i32 } else { -1000 },
                    hi: if clamp { hi as i32 } else { 1000 },
                }
            },
        };
        let mut m = CodeModule::new().unwrap();
        let id = define_dwconv_on(&mut m, &spec, path).unwrap();
        m.finalize().unwrap();
        let kern = unsafe { DwConvKernel::new_on(&m, id, &spec, path) }.unwrap();
        assert_eq!(kern.path(), path);
        let [oh, ow] = kern.out_hw();
        assert_eq!(&want.shape()[2..], &[oh, ow], "case {case}");
        let (in_n, on, planes) = (hw[0] * hw[1], oh * ow, n * c);
        let sp = split(&mut r, planes);
        macro_rules! go {
            ($x:expr, $y:expr) => {{
                let (x, y) = ($x, $y);
                let (xa, xb) = x.split_at(sp * in_n);
                let (ya, yb) = y.split_at_mut(sp * on);
                kern.run(xa, ya, 0).unwrap();
                kern.run(xb, yb, sp).unwrap();
            }};
        }
        let shape = want.shape().to_vec();
        let got = match (xd, &spec.output) {
            (_, DwOutput::Float) => {
                let mut y = vec![0f32; planes * on];
                match xd {
                    DType::U8 => go!(xt.as_u8().unwrap(), &mut y),
                    _ => go!(xt.as_i8().unwrap(), &mut y),
                }
                Tensor::from_f32(&shape, y).unwrap()
            }
            (
                _,
                DwOutput::Quantized {
                    dtype: DType::U8, ..
                },
            ) => {
                let mut y = vec![0u8; planes * on];
                match xd {
                    DType::U8 => go!(xt.as_u8().unwrap(), &mut y),
                    _ => go!(xt.as_i8().unwrap(), &mut y),
                }
                Tensor::from_u8(&shape, y).unwrap()
            }
            _ => {
                let mut y = vec![0i8; planes * on];
                match xd {
                    DType::U8 => go!(xt.as_u8().unwrap(), &mut y),
                    _ => go!(xt.as_i8().unwrap(), &mut y),
                }
                Tensor::from_i8(&shape, y).unwrap()
            }
        };
        assert!(
            got.same_content(&want),
            "case {case} ({path:?}): {spec:?}\ngot  {got:?}\nwant {want:?}"
        );
    }
}

#[test]
fn max_pool_matches_reference() {
    let mut r = Rng(0x7f4a_7c15_9e37_79b9);
    for case in 0..300 {
        let (k, s, p, hw) = window(&mut r, &[1, 2, 3, 4]);
        let (n, c) = (1 + r.below(2), 1 + r.below(3));
        let d = r.pick(&[DType::U8, DType::I8]);
        let same = r.chance(0.2);
        let attrs = PoolAttrs {
            kernel: k.to_vec(),
            strides: s.to_vec(),
            pads: if same { vec![] } else { p.to_vec() },
            dilations: vec![],
            ceil_mode: !same && r.chance(0.4),
            auto_pad: if same {
                AutoPad::SameLower
            } else {
                AutoPad::NotSet
            },
        };
        let xt = bytes(&mut r, d, &[n, c, hw[0], hw[1]]);
        let op = Op::MaxPool {
            pool: attrs.clone(),
            storage_order: 0,
        };
        let want = lpc_ref::eval(&op, &[Some(&xt)], 1).unwrap().remove(0);
        let spec = MaxPoolSpec {
            dtype: d,
            in_hw: hw,
            attrs,
        };
        let mut m = CodeModule::new().unwrap();
        let id = define_max_pool(&mut m, &spec).unwrap();
        m.finalize().unwrap();
        let kern = unsafe { MaxPoolKernel::new(&m, id, &spec) }.unwrap();
        let [oh, ow] = kern.out_hw();
        assert_eq!(&want.shape()[2..], &[oh, ow], "case {case}");
        let (in_n, on, planes) = (hw[0] * hw[1], oh * ow, n * c);
        let sp = split(&mut r, planes);
        let shape = want.shape().to_vec();
        let got = match d {
            DType::U8 => {
                let x = xt.as_u8().unwrap();
                let mut y = vec![0u8; planes * on];
                let (ya, yb) = y.split_at_mut(sp * on);
                kern.run(&x[..sp * in_n], ya).unwrap();
                kern.run(&x[sp * in_n..], yb).unwrap();
                Tensor::from_u8(&shape, y).unwrap()
            }
            _ => {
                let x = xt.as_i8().unwrap();
                let mut y = vec![0i8; planes * on];
                let (ya, yb) = y.split_at_mut(sp * on);
                kern.run(&x[..sp * in_n], ya).unwrap();
                kern.run(&x[sp * in_n..], yb).unwrap();
                Tensor::from_i8(&shape, y).unwrap()
            }
        };
        assert_eq!(got, want, "case {case}: {spec:?}");
    }
}

fn dw_spec() -> DwConvSpec {
    DwConvSpec {
        x_dtype: DType::U8,
        x_zero_point: 3,
        in_hw: [5, 6],
        attrs: ConvAttrs {
            group: 2,
            pads: vec![1, 1, 1, 1],
            ..ConvAttrs::default()
        },
        kernel_hw: [3, 3],
        weights: vec![1; 18],
        bias: None,
        scale: vec![0.5],
        output: DwOutput::Quantized {
            dtype: DType::U8,
            zero_point: 0,
            lo: 0,
            hi: 255,
        },
    }
}

#[test]
fn unsupported_specs_are_errors() {
    let mut m = CodeModule::new().unwrap();
    let base = dw_spec();
    let mut dilated = base.clone();
    dilated.attrs.dilations = vec![2, 2];
    let mut stride5 = base.clone();
    stride5.attrs.strides = vec![1, 5];
    let mut not_dw = base.clone();
    not_dw.attrs.group = 1;
    let mut bad_bias = base.clone();
    bad_bias.bias = Some(vec![0; 3]);
    let mut all_pad = base.clone();
    all_pad.attrs.pads = vec![3, 0, 0, 0];
    let mut bad_scale = base.clone();
    bad_scale.scale = vec![1.0; 3];
    for s in [dilated, stride5, not_dw, bad_bias, all_pad, bad_scale] {
        assert!(define_dwconv(&mut m, &s).is_err(), "{s:?}");
    }
    let pool = MaxPoolSpec {
        dtype: DType::I32,
        in_hw: [4, 4],
        attrs: PoolAttrs {
            kernel: vec![2, 2],
            strides: vec![],
            pads: vec![],
            dilations: vec![],
            ceil_mode: false,
            auto_pad: AutoPad::NotSet,
        },
    };
    assert!(define_max_pool(&mut m, &pool).is_err());
}

#[test]
fn bad_buffers_are_errors() {
    let mut m = CodeModule::new().unwrap();
    let spec = dw_spec();
    let id = define_dwconv(&mut m, &spec).unwrap();
    let pspec = MaxPoolSpec {
        dtype: DType::I8,
        in_hw: [4, 4],
        attrs: PoolAttrs {
            kernel: vec![2, 2],
            strides: vec![2, 2],
            pads: vec![],
            dilations: vec![],
            ceil_mode: false,
            auto_pad: AutoPad::NotSet,
        },
    };
    let pid = define_max_pool(&mut m, &pspec).unwrap();
    m.finalize().unwrap();
    let k = unsafe { DwConvKernel::new(&m, id, &spec) }.unwrap();
    let p = unsafe { MaxPoolKernel::new(&m, pid, &pspec) }.unwrap();
    let input = |e: Result<(), JitError>| matches!(e, Err(JitError::Input { .. }));
    assert!(input(k.run(&[0u8; 31], &mut [0u8; 30], 0)));
    assert!(input(k.run(&[0u8; 60], &mut [0u8; 31], 0)));
    assert!(input(k.run(&[0i8; 30], &mut [0u8; 30], 0)));
    assert!(input(k.run(&[0u8; 30], &mut [0f32; 30], 0)));
    assert!(k.run(&[0u8; 60], &mut [0u8; 60], 1).is_ok());
    assert!(input(p.run(&[0i8; 16], &mut [0i8; 5])));
    assert!(input(p.run(&[0u8; 16], &mut [0u8; 4])));
    assert!(p.run(&[0i8; 32], &mut [0i8; 8]).is_ok());
}
