//! Reference interpreter checks beyond the ONNX conformance suite: quantization edge cases,
//! fast conv paths against a naive convolution, integer ops, errors, constant folding.

use lpc_ir::*;
use lpc_ref::eval;

fn f32t(shape: &[usize], v: Vec<f32>) -> Tensor {
    Tensor::from_f32(shape, v).unwrap()
}

fn fq(x: Vec<f32>, il: f32, ih: f32, ol: f32, oh: f32, levels: u32) -> Vec<f32> {
    let n = x.len();
    let (a, b, c, d) = (
        Tensor::scalar_f32(il),
        Tensor::scalar_f32(ih),
        Tensor::scalar_f32(ol),
        Tensor::scalar_f32(oh),
    );
    let xt = f32t(&[n], x);
    eval(
        &Op::FakeQuantize { levels },
        &[Some(&xt), Some(&a), Some(&b), Some(&c), Some(&d)],
        1,
    )
    .unwrap()[0]
        .to_f32_vec()
}

#[test]
fn fake_quantize_edges() {
    // x on both boundaries: il maps to ol, ih stays inside and maps to oh.
    assert_eq!(
        fq(vec![-1.0, 1.0, -2.0, 2.0], -1.0, 1.0, -1.0, 1.0, 255),
        vec![-1.0, 1.0, -1.0, 1.0]
    );
    // levels 2: a step at the midpoint, ties to even (0.5 → 0).
    assert_eq!(
        fq(vec![0.0, 0.49, 0.5, 0.51, 1.0], 0.0, 1.0, 0.0, 1.0, 2),
        vec![0.0, 0.0, 0.0, 1.0, 1.0]
    );
    // levels 256 on [0, 255]: identity on integers, ties to even in between.
    assert_eq!(
        fq(vec![3.0, 2.5, 3.5, 254.5], 0.0, 255.0, 0.0, 255.0, 256),
        vec![3.0, 2.0, 4.0, 254.0]
    );
    // Output range differs from input range (scale and shift).
    assert_eq!(fq(vec![0.5], 0.0, 1.0, 10.0, 20.0, 3), vec![15.0]);
    // Inverted input range follows the same formula.
    let v = fq(vec![0.0, 0.25, 2.0, -2.0], 1.0, -1.0, -1.0, 1.0, 3);
    assert_eq!(v, vec![0.0, 0.0, 1.0, -1.0]);
    // levels < 2 and NaN bounds are errors.
    let x = f32t(&[1], vec![0.0]);
    let s = Tensor::scalar_f32(1.0);
    let nan = Tensor::scalar_f32(f32::NAN);
    assert!(eval(
        &Op::FakeQuantize { levels: 1 },
        &[Some(&x), Some(&s), Some(&s), Some(&s), Some(&s)],
        1
    )
    .is_err());
    let e = eval(
        &Op::FakeQuantize { levels: 255 },
        &[Some(&x), Some(&nan), Some(&s), Some(&s), Some(&s)],
        1,
    )
    .unwrap_err();
    assert!(e.to_string().contains("NaN"), "{e}");
}

#[test]
fn fake_quantize_per_channel_bounds_broadcast() {
    let x = f32t(&[1, 2, 1, 2], vec![0.3, 0.9, 0.3, 0.9]);
    let lo = f32t(&[1, 2, 1, 1], vec![0.0, 0.0]);
    let hi = f32t(&[1, 2, 1, 1], vec![1.0, 0.5]);
    let y = eval(
        &Op::FakeQuantize { levels: 3 },
        &[Some(&x), Some(&lo), Some(&hi), Some(&lo), Some(&hi)],
        1,
    )
    .unwrap();
    assert_eq!(y[0].to_f32_vec(), vec![0.5, 1.0, 0.25, 0.5]);
}

#[test]
fn quantize_linear_ties_and_saturation() {
    let x = f32t(&[6], vec![0.5, 1.5, 2.5, -0.5, 1000.0, -1000.0]);
    let s = Tensor::scalar_f32(1.0);
    let zp = Tensor::from_u8(&[], vec![10]).unwrap();
    let q = QuantAxis {
        axis: 1,
        block_size: 0,
    };
    let y = eval(
        &Op::QuantizeLinear {
            q: q.clone(),
            dtype: DType::U8,
        },
        &[Some(&x), Some(&s), Some(&zp)],
        1,
    )
    .unwrap();
    assert_eq!(y[0].as_u8().unwrap(), &[10, 12, 12, 10, 255, 0]);
    let zp8 = Tensor::from_i8(&[], vec![0]).unwrap();
    let y = eval(
        &Op::QuantizeLinear {
            q,
            dtype: DType::I8,
        },
        &[Some(&x), Some(&s), Some(&zp8)],
        1,
    )
    .unwrap();
    assert_eq!(y[0].as_i8().unwrap(), &[0, 2, 2, 0, 127, -128]);
}

#[test]
fn dequantize_per_axis() {
    let x = Tensor::from_i8(&[2, 2], vec![1, -1, 4, 8]).unwrap();
    let s = f32t(&[2], vec![0.5, 0.25]);
    let zp = Tensor::from_i8(&[2], vec![1, 0]).unwrap();
    let y = eval(
        &Op::DequantizeLinear {
            q: QuantAxis {
                axis: 0,
                block_size: 0,
            },
        },
        &[Some(&x), Some(&s), Some(&zp)],
        1,
    )
    .unwrap();
    assert_eq!(y[0].to_f32_vec(), vec![0.0, -1.0, 1.0, 2.0]);
}

struct Rng(u64);
impl Rng {
    fn f(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn u(&mut self, n: usize) -> usize {
        ((self.f() + 1.0) * 0.5 * n as f32) as usize % n
    }
}

/// Direct 2-D convolution, the definition.
#[allow(clippy::too_many_arguments)]
fn naive_conv(
    x: &[f32],
    xs: [usize; 4],
    w: &[f32],
    ws: [usize; 4],
    b: &[f32],
    g: usize,
    s: [usize; 2],
    p: [usize; 4],
    d: [usize; 2],
) -> (Vec<f32>, [usize; 4]) {
    let [n, c, h, wd] = xs;
    let [m, cg, kh, kw] = ws;
    let oh = (h + p[0] + p[2] - ((kh - 1) * d[0] + 1)) / s[0] + 1;
    let ow = (wd + p[1] + p[3] - ((kw - 1) * d[1] + 1)) / s[1] + 1;
    let mg = m / g;
    let mut out = vec![0f32; n * m * oh * ow];
    for bn in 0..n {
        for om in 0..m {
            let gi = om / mg;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = b[om] as f64;
                    for ci in 0..cg {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * s[0] + ky * d[0]) as i64 - p[0] as i64;
                                let ix = (ox * s[1] + kx * d[1]) as i64 - p[1] as i64;
                                if iy < 0 || ix < 0 || iy >= h as i64 || ix >= wd as i64 {
                                    continue;
                                }
                                let xc = gi * cg + ci;
                                acc += x[((bn * c + xc) * h + iy as usize) * wd + ix as usize]
                                    as f64
                                    * w[((om * cg + ci) * kh + ky) * kw + kx] as f64;
                            }
                        }
                    }
                    out[((bn * m + om) * oh + oy) * ow + ox] = acc as f32;
                }
            }
        }
    }
    (out, [n, m, oh, ow])
}

#[test]
fn conv_paths_match_naive_convolution() {
    let mut r = Rng(7);
    for case in 0..60 {
        let g = [1, 1, 2, 3][case % 4];
        let depthwise = case % 5 == 0;
        let (c, m, g) = if depthwise {
            let c = 1 + r.u(5);
            (c, c, c)
        } else {
            (g * (1 + r.u(3)), g * (1 + r.u(3)), g)
        };
        let (kh, kw) = if case % 3 == 0 {
            (1, 1)
        } else {
            (1 + r.u(3), 1 + r.u(3))
        };
        let s = [1 + r.u(2), 1 + r.u(2)];
        let d = [1 + r.u(2), 1 + r.u(2)];
        let p = if case % 3 == 0 && case % 2 == 0 {
            [0; 4]
        } else {
            [r.u(2), r.u(2), r.u(2), r.u(2)]
        };
        let (h, wd) = (
            ((kh - 1) * d[0] + 1) + r.u(6),
            ((kw - 1) * d[1] + 1) + r.u(6),
        );
        let n = 1 + r.u(2);
        let x: Vec<f32> = (0..n * c * h * wd).map(|_| r.f()).collect();
        let w: Vec<f32> = (0..m * (c / g) * kh * kw).map(|_| r.f()).collect();
        let b: Vec<f32> = (0..m).map(|_| r.f()).collect();
        let (want, os) = naive_conv(&x, [n, c, h, wd], &w, [m, c / g, kh, kw], &b, g, s, p, d);
        let attrs = ConvAttrs {
            kernel: vec![],
            strides: s.to_vec(),
            pads: p.to_vec(),
            dilations: d.to_vec(),
            group: g,
            auto_pad: AutoPad::NotSet,
        };
        let (xt, wt, bt) = (
            f32t(&[n, c, h, wd], x),
            f32t(&[m, c / g, kh, kw], w),
            f32t(&[m], b),
        );
        let got = eval(&Op::Conv(attrs), &[Some(&xt), Some(&wt), Some(&bt)], 1).unwrap();
        assert_eq!(got[0].shape(), &os, "case {case}");
        for (a, e) in got[0].to_f32_vec().iter().zip(&want) {
            assert!(
                (a - e).abs() <= 1e-4 * (1.0 + e.abs()),
                "case {case}: {a} vs {e}"
            );
        }
    }
}

#[test]
fn qlinear_conv_requantizes_exactly() {
    // 1x1 conv, one channel: acc = (x - 2) * (w - 0) + bias; y = round_even(acc * 0.5 * 0.5 / 0.25) + 3.
    let x = Tensor::from_u8(&[1, 1, 1, 4], vec![2, 3, 4, 255]).unwrap();
    let w = Tensor::from_i8(&[1, 1, 1, 1], vec![3]).unwrap();
    let b = Tensor::from_i32(&[1], vec![-1]).unwrap();
    let (xs, ws, ys) = (
        Tensor::scalar_f32(0.5),
        Tensor::scalar_f32(0.5),
        Tensor::scalar_f32(0.5),
    );
    let xz = Tensor::from_u8(&[], vec![2]).unwrap();
    let wz = Tensor::from_i8(&[], vec![0]).unwrap();
    let yz = Tensor::from_u8(&[], vec![3]).unwrap();
    let ins = [
        Some(&x),
        Some(&xs),
        Some(&xz),
        Some(&w),
        Some(&ws),
        Some(&wz),
        Some(&ys),
        Some(&yz),
        Some(&b),
    ];
    let y = eval(&Op::QLinearConv(ConvAttrs::default()), &ins, 1).unwrap();
    // acc = -1, 2, 5, 758 → ×0.5 = -0.5, 1, 2.5, 379 → round_even -0, 1, 2, 379 → +3, clamp 255.
    assert_eq!(y[0].as_u8().unwrap(), &[3, 4, 5, 255]);
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let x = f32t(&[1, 3, 4, 4], vec![0.0; 48]);
    let w = f32t(&[2, 2, 3, 3], vec![0.0; 36]);
    let e = eval(&Op::Conv(ConvAttrs::default()), &[Some(&x), Some(&w)], 1).unwrap_err();
    assert!(e.to_string().contains("channels"), "{e}");
    let a = f32t(&[2, 3], vec![0.0; 6]);
    let b = f32t(&[4, 2], vec![0.0; 8]);
    assert!(eval(&Op::MatMul, &[Some(&a), Some(&b)], 1).is_err());
    assert!(eval(&Op::Binary(BinaryOp::Add), &[Some(&a), Some(&b)], 1).is_err());
    let i = Tensor::from_i32(&[2], vec![1, 2]).unwrap();
    let z = Tensor::from_i32(&[2], vec![1, 0]).unwrap();
    assert!(eval(&Op::Binary(BinaryOp::Div), &[Some(&i), Some(&z)], 1).is_err());
    let huge = Tensor::vec_i64(&[1 << 20, 1 << 20]);
    let v = Tensor::scalar_f32(0.0);
    assert!(eval(
        &Op::ConstantOfShape {
            value: v.into_arc()
        },
        &[Some(&huge)],
        1
    )
    .is_err());
    let e = eval(&Op::Conv(ConvAttrs::default()), &[Some(&x)], 1).unwrap_err();
    assert!(matches!(
        e,
        lpc_ref::EvalError::MissingInput { slot: 1, .. }
    ));
}

#[test]
fn shape_subgraphs_fold_to_constants() {
    // x: f32[N,3,4] → Shape → Gather(1) → Unsqueeze → Concat([-1], .) → Reshape(x, .)
    let mut g = Graph::new("fold");
    let x = g.add_input(
        "x",
        ValueType::new(
            DType::F32,
            Shape(vec![Dim::Sym("N".into()), Dim::Known(3), Dim::Known(4)]),
        ),
    );
    let sh = g.add_node(
        "shape",
        Op::ShapeOf {
            start: 0,
            end: None,
        },
        &[Some(x)],
        vec![Output::named("s")],
    );
    let one = g.add_const("one", Tensor::scalar_i64(1));
    let ga = g.add_node(
        "gather",
        Op::Gather { axis: 0 },
        &[Some(ValueRef::first(sh)), Some(one)],
        vec![Output::named("c")],
    );
    let ax = g.add_const("ax", Tensor::vec_i64(&[0]));
    let un = g.add_node(
        "unsq",
        Op::Unsqueeze,
        &[Some(ValueRef::first(ga)), Some(ax)],
        vec![Output::named("c1")],
    );
    let m1 = g.add_const("m1", Tensor::vec_i64(&[-1]));
    let cat = g.add_node(
        "cat",
        Op::Concat { axis: 0 },
        &[Some(m1), Some(ValueRef::first(un))],
        vec![Output::named("spec")],
    );
    let rs = g.add_node(
        "reshape",
        Op::Reshape { allowzero: false },
        &[Some(x), Some(ValueRef::first(cat))],
        vec![Output::named("y")],
    );
    g.set_outputs(vec![ValueRef::first(rs)]);
    infer_types(&mut g).unwrap();
    let st = lpc_ref::fold_constants(&mut g).unwrap();
    assert_eq!(st.folded, 3, "gather, unsqueeze and concat fold");
    let spec = g.node_input(rs, 1).unwrap();
    assert_eq!(g.const_value(spec).unwrap().to_i64_vec(), vec![-1, 3]);
    verify(&g).unwrap();
    let input = f32t(&[2, 3, 4], (0..24).map(|v| v as f32).collect());
    let out = lpc_ref::run(&g, &[input]).unwrap();
    assert_eq!(out[0].shape(), &[8, 3]);
}

/// NaN in gives NaN out where ONNX Runtime gives it: Relu (which also keeps −0), Max/Min,
/// MaxPool and GlobalMaxPool windows, Clip, Softmax.
#[test]
fn nan_propagates_through_activations_pools_and_softmax() {
    let nan = f32::NAN;
    let x = f32t(&[1, 1, 2, 2], vec![nan, -0.0, -2.0, 3.0]);
    let run = |op: Op, extra: &[&Tensor]| -> Vec<f32> {
        let mut ins = vec![Some(&x)];
        ins.extend(extra.iter().map(|t| Some(*t)));
        eval(&op, &ins, 1).unwrap()[0].to_f32_vec()
    };
    let relu = run(Op::Unary(UnaryOp::Relu), &[]);
    assert!(relu[0].is_nan());
    assert_eq!(relu[1].to_bits(), (-0.0f32).to_bits(), "Relu(−0) is −0");
    assert_eq!(relu[2..], [0.0, 3.0]);
    let x64 = x.clone().into_dtype(DType::F64);
    let relu64 = eval(&Op::Unary(UnaryOp::Relu), &[Some(&x64)], 1).unwrap()[0].to_f32_vec();
    assert!(relu64[0].is_nan() && relu64[2] == 0.0);
    let zero = Tensor::scalar_f32(0.0);
    for op in [BinaryOp::Max, BinaryOp::Min] {
        assert!(run(Op::Binary(op), &[&zero])[0].is_nan());
    }
    let gmax = run(Op::GlobalMaxPool, &[]);
    assert!(gmax[0].is_nan(), "GlobalMaxPool {gmax:?}");
    let pool = PoolAttrs {
        kernel: vec![2, 2],
        strides: vec![],
        pads: vec![],
        dilations: vec![],
        ceil_mode: false,
        auto_pad: AutoPad::NotSet,
    };
    let max_pool = Op::MaxPool {
        pool,
        storage_order: 0,
    };
    assert!(run(max_pool, &[])[0].is_nan());
    let (lo, hi) = (Tensor::scalar_f32(-1.0), Tensor::scalar_f32(1.0));
    assert!(run(Op::Clip, &[&lo, &hi])[0].is_nan());
    let soft = run(
        Op::Softmax {
            axis: -1,
            coerce_2d: false,
        },
        &[],
    );
    assert!(
        soft[0].is_nan() && soft[1].is_nan(),
        "the NaN's row: {soft:?}"
    );
    assert!(
        soft[2].is_finite() && soft[3].is_finite(),
        "the other row: {soft:?}"
    );
}
