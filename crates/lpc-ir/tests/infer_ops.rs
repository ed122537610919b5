//! Shape and dtype inference, op family by op family, with known and symbolic dims.

use lpc_ir::*;
use std::sync::Arc;

fn shape(s: &str) -> Shape {
    if s.is_empty() {
        return Shape(vec![]);
    }
    Shape(
        s.split(',')
            .map(|d| {
                d.trim()
                    .parse::<usize>()
                    .map(Dim::Known)
                    .unwrap_or_else(|_| Dim::Sym(d.trim().into()))
            })
            .collect(),
    )
}

fn input(g: &mut Graph, name: &str, dtype: DType, dims: &str) -> ValueRef {
    g.add_input(name, ValueType::new(dtype, shape(dims)))
}

fn zeros(g: &mut Graph, name: &str, dtype: DType, dims: &[usize]) -> ValueRef {
    g.add_const(name, Tensor::zeros(dtype, dims))
}

fn ints(g: &mut Graph, name: &str, v: &[i64]) -> ValueRef {
    g.add_const(name, Tensor::vec_i64(v))
}

fn node(g: &mut Graph, name: &str, op: Op, ins: &[Option<ValueRef>]) -> ValueRef {
    ValueRef::first(g.add_node(name, op, ins, vec![Output::named(name)]))
}

fn node_n(g: &mut Graph, name: &str, op: Op, ins: &[Option<ValueRef>], n: usize) -> Vec<ValueRef> {
    let outs = (0..n)
        .map(|i| Output::named(format!("{name}.{i}")))
        .collect();
    let id = g.add_node(name, op, ins, outs);
    (0..n).map(|output| ValueRef { node: id, output }).collect()
}

fn ty(g: &Graph, v: ValueRef) -> String {
    g.value_type(v).to_string()
}

fn run(g: &mut Graph) {
    if let Err(e) = infer_types(g) {
        panic!("inference failed: {e}");
    }
}

fn conv_attrs(pads: usize, strides: usize) -> ConvAttrs {
    ConvAttrs {
        pads: vec![pads; 4],
        strides: vec![strides; 2],
        ..ConvAttrs::default()
    }
}

fn pool_attrs(
    k: &[usize],
    s: &[usize],
    pads: &[usize],
    ceil_mode: bool,
    auto_pad: AutoPad,
) -> PoolAttrs {
    PoolAttrs {
        kernel: k.to_vec(),
        strides: s.to_vec(),
        pads: pads.to_vec(),
        dilations: vec![],
        ceil_mode,
        auto_pad,
    }
}

#[test]
fn digits_cnn_infers_logits() {
    let mut g = Graph::new("digits");
    let x = input(&mut g, "x", DType::F32, "N,1,16,16");
    let w1 = zeros(&mut g, "w1", DType::F32, &[8, 1, 3, 3]);
    let b1 = zeros(&mut g, "b1", DType::F32, &[8]);
    let c1 = node(
        &mut g,
        "conv1",
        Op::Conv(conv_attrs(1, 1)),
        &[Some(x), Some(w1), Some(b1)],
    );
    let r1 = node(&mut g, "relu1", Op::Unary(UnaryOp::Relu), &[Some(c1)]);
    let pool = || Op::MaxPool {
        pool: pool_attrs(&[2, 2], &[2, 2], &[], false, AutoPad::NotSet),
        storage_order: 0,
    };
    let p1 = node(&mut g, "pool1", pool(), &[Some(r1)]);
    let w2 = zeros(&mut g, "w2", DType::F32, &[16, 8, 3, 3]);
    let b2 = zeros(&mut g, "b2", DType::F32, &[16]);
    let c2 = node(
        &mut g,
        "conv2",
        Op::Conv(conv_attrs(1, 1)),
        &[Some(p1), Some(w2), Some(b2)],
    );
    let r2 = node(&mut g, "relu2", Op::Unary(UnaryOp::Relu), &[Some(c2)]);
    let p2 = node(&mut g, "pool2", pool(), &[Some(r2)]);
    let f = node(&mut g, "flatten", Op::Flatten { axis: 1 }, &[Some(p2)]);
    let w3 = zeros(&mut g, "w3", DType::F32, &[10, 256]);
    let b3 = zeros(&mut g, "b3", DType::F32, &[10]);
    let gemm = Op::Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: false,
        trans_b: true,
    };
    let logits = node(&mut g, "fc", gemm, &[Some(f), Some(w3), Some(b3)]);
    g.set_outputs(vec![logits]);
    run(&mut g);
    assert_eq!(ty(&g, c1), "f32[N,8,16,16]");
    assert_eq!(ty(&g, p1), "f32[N,8,8,8]");
    assert_eq!(ty(&g, p2), "f32[N,16,4,4]");
    assert_eq!(ty(&g, f), "f32[N,256]");
    assert_eq!(ty(&g, logits), "f32[N,10]");
    assert_eq!(verify(&g), Ok(()));
}

#[test]
fn broadcast_rules() {
    let s = |t: &str| shape(t).0;
    assert_eq!(broadcast_dims(&s("N,1,4"), &s("3,1")).unwrap(), s("N,3,4"));
    assert_eq!(broadcast_dims(&s("N"), &s("1")).unwrap(), s("N"));
    assert_eq!(broadcast_dims(&s("N"), &s("5")).unwrap(), s("5"));
    assert_eq!(broadcast_dims(&s("1"), &s("N")).unwrap(), s("N"));
    assert_eq!(
        broadcast_dims(&s("B,N"), &s("A,N")).unwrap(),
        s("max_A_B,N")
    );
    assert_eq!(broadcast_dims(&s(""), &s("2,3")).unwrap(), s("2,3"));
    let e = broadcast_dims(&s("2,3"), &s("4")).unwrap_err();
    assert!(e.to_string().contains("[2,3] and [4]"), "{e}");
    assert!(broadcasts_to(&s("3,1,1"), &s("N,3,8,8")));
    assert!(!broadcasts_to(&s("4,1,1"), &s("N,3,8,8")));
    assert!(!broadcasts_to(&s("1,N,3,8,8"), &s("N,3,8,8")));
}

#[test]
fn elementwise_dtypes_and_broadcasting() {
    let mut g = Graph::new("ew");
    let a = input(&mut g, "a", DType::F32, "N,3,1");
    let b = input(&mut g, "b", DType::F32, "4");
    let e = input(&mut g, "e", DType::I64, "");
    let c = input(&mut g, "c", DType::Bool, "N,1,4");
    let add = node(
        &mut g,
        "add",
        Op::Binary(BinaryOp::Add),
        &[Some(a), Some(b)],
    );
    let eq = node(
        &mut g,
        "eq",
        Op::Binary(BinaryOp::Equal),
        &[Some(a), Some(b)],
    );
    let pow = node(
        &mut g,
        "pow",
        Op::Binary(BinaryOp::Pow),
        &[Some(a), Some(e)],
    );
    let cast = node(
        &mut g,
        "cast",
        Op::Unary(UnaryOp::Cast { to: DType::I8 }),
        &[Some(add)],
    );
    let sig = node(&mut g, "sig", Op::Unary(UnaryOp::Sigmoid), &[Some(a)]);
    let wh = node(&mut g, "where", Op::Where, &[Some(c), Some(a), Some(b)]);
    let lo = g.add_const("lo", Tensor::scalar_f32(0.0));
    let clip = node(&mut g, "clip", Op::Clip, &[Some(a), Some(lo), None]);
    let slope = zeros(&mut g, "slope", DType::F32, &[3, 1]);
    let prelu = node(
        &mut g,
        "prelu",
        Op::Binary(BinaryOp::PRelu),
        &[Some(a), Some(slope)],
    );
    run(&mut g);
    assert_eq!(ty(&g, add), "f32[N,3,4]");
    assert_eq!(ty(&g, eq), "bool[N,3,4]");
    assert_eq!(ty(&g, pow), "f32[N,3,1]");
    assert_eq!(ty(&g, cast), "i8[N,3,4]");
    assert_eq!(ty(&g, sig), "f32[N,3,1]");
    assert_eq!(ty(&g, wh), "f32[N,3,4]");
    assert_eq!(ty(&g, clip), "f32[N,3,1]");
    assert_eq!(ty(&g, prelu), "f32[N,3,1]");
}

#[test]
fn comparison_logic_and_trig_types() {
    let mut g = Graph::new("logic");
    let a = input(&mut g, "a", DType::I32, "N,3,1");
    let b = input(&mut g, "b", DType::I32, "4");
    let x = input(&mut g, "x", DType::F32, "N,2");
    let p = input(&mut g, "p", DType::Bool, "N,1");
    let q = input(&mut g, "q", DType::Bool, "5");
    let mut cmps = vec![];
    for op in [
        BinaryOp::Greater,
        BinaryOp::Less,
        BinaryOp::GreaterOrEqual,
        BinaryOp::LessOrEqual,
    ] {
        cmps.push(node(
            &mut g,
            op_name(&op),
            Op::Binary(op),
            &[Some(a), Some(b)],
        ));
    }
    let mut logic = vec![];
    for op in [BinaryOp::And, BinaryOp::Or, BinaryOp::Xor] {
        logic.push(node(
            &mut g,
            op_name(&op),
            Op::Binary(op),
            &[Some(p), Some(q)],
        ));
    }
    let not = node(&mut g, "not", Op::Unary(UnaryOp::Not), &[Some(p)]);
    let nan = node(&mut g, "isnan", Op::Unary(UnaryOp::IsNaN), &[Some(x)]);
    let inf = node(
        &mut g,
        "isinf",
        Op::Unary(UnaryOp::IsInf {
            detect_positive: true,
            detect_negative: false,
        }),
        &[Some(x)],
    );
    let sin = node(&mut g, "sin", Op::Unary(UnaryOp::Sin), &[Some(x)]);
    let sign = node(&mut g, "sign", Op::Unary(UnaryOp::Sign), &[Some(a)]);
    run(&mut g);
    for c in cmps {
        assert_eq!(ty(&g, c), "bool[N,3,4]");
    }
    for l in logic {
        assert_eq!(ty(&g, l), "bool[N,5]");
    }
    assert_eq!(ty(&g, not), "bool[N,1]");
    assert_eq!(ty(&g, nan), "bool[N,2]");
    assert_eq!(ty(&g, inf), "bool[N,2]");
    assert_eq!(ty(&g, sin), "f32[N,2]");
    assert_eq!(ty(&g, sign), "i32[N,3,1]");
}

fn op_name(b: &BinaryOp) -> &'static str {
    Op::Binary(*b).name()
}

#[test]
fn logic_and_trig_reject_wrong_dtypes() {
    let cases: [(Op, DType, &str); 4] = [
        (Op::Binary(BinaryOp::And), DType::F32, "bool"),
        (Op::Unary(UnaryOp::Not), DType::I8, "bool"),
        (Op::Unary(UnaryOp::Cos), DType::I64, "a float type"),
        (Op::Unary(UnaryOp::IsNaN), DType::I32, "a float type"),
    ];
    for (op, dtype, want) in cases {
        let mut g = Graph::new("bad");
        let x = input(&mut g, "x", dtype, "2");
        let ins: Vec<Option<ValueRef>> = (0..op.arity().0).map(|_| Some(x)).collect();
        node(&mut g, "n", op.clone(), &ins);
        let e = infer_types(&mut g).expect_err("wrong dtype must be rejected");
        assert!(e.to_string().contains(want), "{}: {e}", op.name());
    }
}

#[test]
fn unknown_rank_flows_as_unknown() {
    let mut g = Graph::new("u");
    let x = g.add_input(
        "x",
        ValueType {
            dtype: Some(DType::F32),
            shape: None,
        },
    );
    let r = node(&mut g, "relu", Op::Unary(UnaryOp::Relu), &[Some(x)]);
    let s = node(
        &mut g,
        "shape",
        Op::ShapeOf {
            start: 0,
            end: None,
        },
        &[Some(x)],
    );
    run(&mut g);
    assert_eq!(ty(&g, r), "f32[*]");
    assert_eq!(ty(&g, s), "i64[s0]");
}

#[test]
fn conv_padding_modes_dilation_groups() {
    let mut g = Graph::new("conv");
    let x = input(&mut g, "x", DType::F32, "N,4,7,10");
    let w = zeros(&mut g, "w", DType::F32, &[6, 4, 3, 3]);
    let same = ConvAttrs {
        strides: vec![2, 2],
        auto_pad: AutoPad::SameUpper,
        ..ConvAttrs::default()
    };
    let c_same = node(&mut g, "same", Op::Conv(same), &[Some(x), Some(w)]);
    let lower = ConvAttrs {
        strides: vec![2, 2],
        auto_pad: AutoPad::SameLower,
        ..ConvAttrs::default()
    };
    let c_lower = node(&mut g, "lower", Op::Conv(lower), &[Some(x), Some(w)]);
    let valid = ConvAttrs {
        strides: vec![2, 2],
        auto_pad: AutoPad::Valid,
        ..ConvAttrs::default()
    };
    let c_valid = node(&mut g, "valid", Op::Conv(valid), &[Some(x), Some(w)]);
    let dil = ConvAttrs {
        dilations: vec![2, 2],
        ..ConvAttrs::default()
    };
    let c_dil = node(&mut g, "dil", Op::Conv(dil), &[Some(x), Some(w)]);
    let asym = ConvAttrs {
        pads: vec![0, 1, 2, 3],
        strides: vec![1, 3],
        ..ConvAttrs::default()
    };
    let c_asym = node(&mut g, "asym", Op::Conv(asym), &[Some(x), Some(w)]);
    let dw = zeros(&mut g, "dw", DType::F32, &[8, 1, 3, 3]);
    let dwa = ConvAttrs {
        group: 4,
        pads: vec![1; 4],
        ..ConvAttrs::default()
    };
    let c_dw = node(&mut g, "depthwise", Op::Conv(dwa), &[Some(x), Some(dw)]);
    let x1 = input(&mut g, "x1", DType::F32, "N,2,L");
    let w1 = zeros(&mut g, "w1", DType::F32, &[5, 2, 1]);
    let c_1d = node(
        &mut g,
        "conv1d",
        Op::Conv(ConvAttrs::default()),
        &[Some(x1), Some(w1)],
    );
    let w1k = zeros(&mut g, "w1k", DType::F32, &[5, 2, 3]);
    let c_1dk = node(
        &mut g,
        "conv1d_k3",
        Op::Conv(ConvAttrs::default()),
        &[Some(x1), Some(w1k)],
    );
    run(&mut g);
    assert_eq!(ty(&g, c_same), "f32[N,6,4,5]");
    assert_eq!(ty(&g, c_lower), "f32[N,6,4,5]");
    assert_eq!(ty(&g, c_valid), "f32[N,6,3,4]");
    assert_eq!(ty(&g, c_dil), "f32[N,6,3,6]");
    // H: 7+0+2-3+1 = 7; W: (10+1+3-3)/3+1 = 4.
    assert_eq!(ty(&g, c_asym), "f32[N,6,7,4]");
    assert_eq!(ty(&g, c_dw), "f32[N,8,7,10]");
    // A 1x1 kernel keeps a symbolic length; a 3-wide one gives a fresh symbol.
    assert_eq!(ty(&g, c_1d), "f32[N,5,L]");
    assert_eq!(ty(&g, c_1dk), "f32[N,5,s0]");
}

#[test]
fn integer_and_qlinear_conv() {
    let mut g = Graph::new("qconv");
    let x = input(&mut g, "x", DType::U8, "1,3,8,8");
    let w = zeros(&mut g, "w", DType::I8, &[4, 3, 3, 3]);
    let xz = g.add_const("xz", Tensor::zeros(DType::U8, &[]));
    let wz = g.add_const("wz", Tensor::zeros(DType::I8, &[]));
    let ci = node(
        &mut g,
        "ci",
        Op::ConvInteger(ConvAttrs::default()),
        &[Some(x), Some(w), Some(xz), Some(wz)],
    );
    let s = g.add_const("s", Tensor::scalar_f32(0.1));
    let yz = g.add_const("yz", Tensor::zeros(DType::I8, &[]));
    let ws = zeros(&mut g, "ws", DType::F32, &[4]);
    let bias = zeros(&mut g, "bias", DType::I32, &[4]);
    let q = node(
        &mut g,
        "qc",
        Op::QLinearConv(conv_attrs(1, 2)),
        &[
            Some(x),
            Some(s),
            Some(xz),
            Some(w),
            Some(ws),
            Some(wz),
            Some(s),
            Some(yz),
            Some(bias),
        ],
    );
    run(&mut g);
    assert_eq!(ty(&g, ci), "i32[1,4,6,6]");
    assert_eq!(ty(&g, q), "i8[1,4,4,4]");
}

#[test]
fn conv_transpose_shapes() {
    let mut g = Graph::new("ct");
    let x = input(&mut g, "x", DType::F32, "N,1,3,3");
    let w = zeros(&mut g, "w", DType::F32, &[1, 2, 3, 3]);
    let ct = |pads: Vec<usize>, output_padding: Vec<usize>, output_shape: Vec<usize>| {
        Op::ConvTranspose {
            conv: ConvAttrs {
                strides: vec![3, 2],
                pads,
                ..ConvAttrs::default()
            },
            output_padding,
            output_shape,
        }
    };
    let p = node(
        &mut g,
        "pads",
        ct(vec![1, 2, 1, 2], vec![], vec![]),
        &[Some(x), Some(w)],
    );
    let op = node(
        &mut g,
        "out_pad",
        ct(vec![], vec![1, 1], vec![]),
        &[Some(x), Some(w)],
    );
    let os = node(
        &mut g,
        "out_shape",
        ct(vec![], vec![], vec![10, 8]),
        &[Some(x), Some(w)],
    );
    let same = Op::ConvTranspose {
        conv: ConvAttrs {
            strides: vec![2, 2],
            auto_pad: AutoPad::SameUpper,
            ..ConvAttrs::default()
        },
        output_padding: vec![],
        output_shape: vec![],
    };
    let sm = node(&mut g, "same", same, &[Some(x), Some(w)]);
    let xg = input(&mut g, "xg", DType::F32, "1,4,5,5");
    let wg = zeros(&mut g, "wg", DType::F32, &[4, 3, 3, 3]);
    let grouped = Op::ConvTranspose {
        conv: ConvAttrs {
            group: 2,
            ..ConvAttrs::default()
        },
        output_padding: vec![],
        output_shape: vec![],
    };
    let gr = node(&mut g, "grouped", grouped, &[Some(xg), Some(wg)]);
    run(&mut g);
    assert_eq!(ty(&g, p), "f32[N,2,7,3]");
    assert_eq!(ty(&g, op), "f32[N,2,10,8]");
    assert_eq!(ty(&g, os), "f32[N,2,10,8]");
    assert_eq!(ty(&g, sm), "f32[N,2,6,6]");
    assert_eq!(ty(&g, gr), "f32[1,6,7,7]");
}

#[test]
fn pooling_ceil_mode_and_indices() {
    let mut g = Graph::new("pool");
    let x = input(&mut g, "x", DType::F32, "N,3,32,5");
    let mp = |k: &[usize], s: &[usize], pads: &[usize], ceil: bool| Op::MaxPool {
        pool: pool_attrs(k, s, pads, ceil, AutoPad::NotSet),
        storage_order: 0,
    };
    let floor = node(
        &mut g,
        "floor",
        mp(&[3, 1], &[2, 1], &[], false),
        &[Some(x)],
    );
    let ceil = node(&mut g, "ceil", mp(&[3, 1], &[2, 1], &[], true), &[Some(x)]);
    // W = 5, k = 3, s = 3, pads end 2: ceil gives 3 windows, but the third would start in
    // the right padding, so ONNX (and ONNX Runtime) drop it: 2.
    let last = node(
        &mut g,
        "last",
        mp(&[1, 3], &[1, 3], &[0, 0, 0, 2], true),
        &[Some(x)],
    );
    let both = node_n(
        &mut g,
        "with_idx",
        mp(&[2, 2], &[2, 2], &[], false),
        &[Some(x)],
        2,
    );
    let avg = Op::AveragePool {
        pool: pool_attrs(&[3, 3], &[2, 2], &[], false, AutoPad::SameLower),
        count_include_pad: false,
    };
    let av = node(&mut g, "avg", avg, &[Some(x)]);
    let gap = node(&mut g, "gap", Op::GlobalAveragePool, &[Some(x)]);
    let x8 = input(&mut g, "x8", DType::U8, "1,2,4,4");
    let mp8 = node(&mut g, "mp8", mp(&[2, 2], &[], &[], false), &[Some(x8)]);
    run(&mut g);
    assert_eq!(ty(&g, floor), "f32[N,3,15,5]");
    assert_eq!(ty(&g, ceil), "f32[N,3,16,5]");
    assert_eq!(ty(&g, last), "f32[N,3,32,2]");
    assert_eq!(ty(&g, both[0]), "f32[N,3,16,2]");
    assert_eq!(ty(&g, both[1]), "i64[N,3,16,2]");
    assert_eq!(ty(&g, av), "f32[N,3,16,3]");
    assert_eq!(ty(&g, gap), "f32[N,3,1,1]");
    assert_eq!(ty(&g, mp8), "u8[1,2,3,3]");
}

#[test]
fn matmul_numpy_semantics() {
    let mut g = Graph::new("mm");
    let a = input(&mut g, "a", DType::F32, "N,3,4");
    let b = zeros(&mut g, "b", DType::F32, &[4, 5]);
    let v = input(&mut g, "v", DType::F32, "4");
    let bb = input(&mut g, "bb", DType::F32, "7,4,5");
    let a1 = input(&mut g, "a1", DType::F32, "1,3,4");
    let m1 = node(&mut g, "m1", Op::MatMul, &[Some(a), Some(b)]);
    let m2 = node(&mut g, "m2", Op::MatMul, &[Some(v), Some(bb)]);
    let m3 = node(&mut g, "m3", Op::MatMul, &[Some(a), Some(v)]);
    let m4 = node(&mut g, "m4", Op::MatMul, &[Some(a1), Some(bb)]);
    let m5 = node(&mut g, "m5", Op::MatMul, &[Some(v), Some(v)]);
    let qa = input(&mut g, "qa", DType::U8, "N,4");
    let qb = zeros(&mut g, "qb", DType::I8, &[4, 6]);
    let mi = node(
        &mut g,
        "mi",
        Op::MatMulInteger,
        &[Some(qa), Some(qb), None, None],
    );
    let s = g.add_const("s", Tensor::scalar_f32(0.5));
    let za = g.add_const("za", Tensor::zeros(DType::U8, &[]));
    let zb = g.add_const("zb", Tensor::zeros(DType::I8, &[]));
    let ql = node(
        &mut g,
        "ql",
        Op::QLinearMatMul,
        &[
            Some(qa),
            Some(s),
            Some(za),
            Some(qb),
            Some(s),
            Some(zb),
            Some(s),
            Some(za),
        ],
    );
    run(&mut g);
    assert_eq!(ty(&g, m1), "f32[N,3,5]");
    assert_eq!(ty(&g, m2), "f32[7,5]");
    assert_eq!(ty(&g, m3), "f32[N,3]");
    assert_eq!(ty(&g, m4), "f32[7,3,5]");
    assert_eq!(ty(&g, m5), "f32[]");
    assert_eq!(ty(&g, mi), "i32[N,6]");
    assert_eq!(ty(&g, ql), "u8[N,6]");
}

#[test]
fn gemm_transposes() {
    let mut g = Graph::new("gemm");
    let a = input(&mut g, "a", DType::F32, "4,N");
    let b = zeros(&mut g, "b", DType::F32, &[5, 4]);
    let c = zeros(&mut g, "c", DType::F32, &[5]);
    let op = Op::Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: true,
        trans_b: true,
    };
    let y = node(&mut g, "gemm", op, &[Some(a), Some(b), Some(c)]);
    let b2 = zeros(&mut g, "b2", DType::F32, &[4, 5]);
    let op2 = Op::Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: true,
        trans_b: false,
    };
    let y2 = node(&mut g, "gemm2", op2, &[Some(a), Some(b2), None]);
    run(&mut g);
    assert_eq!(ty(&g, y), "f32[N,5]");
    assert_eq!(ty(&g, y2), "f32[N,5]");
}

#[test]
fn normalisation_ops() {
    let mut g = Graph::new("norm");
    let x = input(&mut g, "x", DType::F32, "N,3,4,4");
    let p = zeros(&mut g, "p", DType::F32, &[3]);
    let bn = Op::BatchNorm {
        epsilon: 1e-5,
        training: true,
        momentum: 0.9,
    };
    let outs = node_n(
        &mut g,
        "bn",
        bn,
        &[Some(x), Some(p), Some(p), Some(p), Some(p)],
        3,
    );
    let s = zeros(&mut g, "s", DType::F32, &[4]);
    let ln = node_n(
        &mut g,
        "ln",
        Op::LayerNorm {
            axis: -2,
            epsilon: 1e-5,
        },
        &[Some(x), Some(s), None],
        3,
    );
    let sm = node(
        &mut g,
        "sm",
        Op::Softmax {
            axis: -1,
            coerce_2d: false,
        },
        &[Some(x)],
    );
    let lsm = node(
        &mut g,
        "lsm",
        Op::LogSoftmax {
            axis: 1,
            coerce_2d: true,
        },
        &[Some(x)],
    );
    run(&mut g);
    assert_eq!(ty(&g, outs[0]), "f32[N,3,4,4]");
    assert_eq!(ty(&g, outs[1]), "f32[3]");
    assert_eq!(ty(&g, outs[2]), "f32[3]");
    assert_eq!(ty(&g, ln[0]), "f32[N,3,4,4]");
    assert_eq!(ty(&g, ln[1]), "f32[N,3,1,1]");
    assert_eq!(ty(&g, sm), "f32[N,3,4,4]");
    assert_eq!(ty(&g, lsm), "f32[N,3,4,4]");
}

#[test]
fn losses_and_hardmax() {
    let mut g = Graph::new("loss");
    let x = input(&mut g, "x", DType::F32, "N,3,4");
    let t = input(&mut g, "t", DType::I64, "2,4");
    let w = zeros(&mut g, "w", DType::F32, &[3]);
    let nll = |reduction| Op::NegativeLogLikelihoodLoss {
        reduction,
        ignore_index: Some(-1),
    };
    let none = node(
        &mut g,
        "none",
        nll(LossReduction::None),
        &[Some(x), Some(t), None],
    );
    let sum = node(
        &mut g,
        "sum",
        nll(LossReduction::Sum),
        &[Some(x), Some(t), Some(w)],
    );
    let sce = Op::SoftmaxCrossEntropyLoss {
        reduction: LossReduction::Mean,
        ignore_index: None,
    };
    let sce = node_n(&mut g, "sce", sce, &[Some(x), Some(t), Some(w)], 2);
    let hm = Op::Hardmax {
        axis: 1,
        coerce_2d: false,
    };
    let hm = node(&mut g, "hm", hm, &[Some(x)]);
    run(&mut g);
    assert_eq!(ty(&g, none), "f32[2,4]");
    assert_eq!(ty(&g, sum), "f32[]");
    assert_eq!(ty(&g, sce[0]), "f32[]");
    assert_eq!(ty(&g, sce[1]), "f32[N,3,4]");
    assert_eq!(ty(&g, hm), "f32[N,3,4]");

    // Bad target dtype or shape, bad weight dtype or shape: errors.
    let bad = |t_dtype: DType, t_dims: &str, w_dtype: DType, w_dims: &[usize]| {
        let mut g = Graph::new("bad");
        let x = input(&mut g, "x", DType::F32, "2,3,4");
        let t = input(&mut g, "t", t_dtype, t_dims);
        let w = zeros(&mut g, "w", w_dtype, w_dims);
        node(
            &mut g,
            "l",
            nll(LossReduction::Mean),
            &[Some(x), Some(t), Some(w)],
        );
        infer_types(&mut g).is_err()
    };
    assert!(!bad(DType::I32, "2,4", DType::F32, &[3]));
    assert!(bad(DType::F32, "2,4", DType::F32, &[3]), "float target");
    assert!(bad(DType::I64, "2,5", DType::F32, &[3]), "target shape");
    assert!(bad(DType::I64, "2", DType::F32, &[3]), "target rank");
    assert!(bad(DType::I64, "2,4", DType::F64, &[3]), "weight dtype");
    assert!(bad(DType::I64, "2,4", DType::F32, &[4]), "weight shape");
}

#[test]
fn reductions() {
    let mut g = Graph::new("reduce");
    let x = input(&mut g, "x", DType::F32, "N,3,4");
    let ax = ints(&mut g, "ax", &[1]);
    let neg = ints(&mut g, "neg", &[-1, 0]);
    let empty = ints(&mut g, "empty", &[]);
    let axes_in = input(&mut g, "axes", DType::I64, "1");
    let r = |op, keepdims, noop| Op::Reduce {
        op,
        keepdims,
        noop_with_empty_axes: noop,
    };
    let k = node(
        &mut g,
        "keep",
        r(ReduceOp::Mean, true, false),
        &[Some(x), Some(ax)],
    );
    let d = node(
        &mut g,
        "drop",
        r(ReduceOp::Sum, false, false),
        &[Some(x), Some(ax)],
    );
    let n = node(
        &mut g,
        "neg",
        r(ReduceOp::Max, false, false),
        &[Some(x), Some(neg)],
    );
    let all = node(
        &mut g,
        "all",
        r(ReduceOp::Max, false, false),
        &[Some(x), None],
    );
    let all_k = node(
        &mut g,
        "all_k",
        r(ReduceOp::Max, true, false),
        &[Some(x), Some(empty)],
    );
    let noop = node(
        &mut g,
        "noop",
        r(ReduceOp::Sum, true, true),
        &[Some(x), Some(empty)],
    );
    let dynamic = node(
        &mut g,
        "dyn",
        r(ReduceOp::Sum, true, false),
        &[Some(x), Some(axes_in)],
    );
    run(&mut g);
    assert_eq!(ty(&g, k), "f32[N,1,4]");
    assert_eq!(ty(&g, d), "f32[N,4]");
    assert_eq!(ty(&g, n), "f32[3]");
    assert_eq!(ty(&g, all), "f32[]");
    assert_eq!(ty(&g, all_k), "f32[1,1,1]");
    assert_eq!(ty(&g, noop), "f32[N,3,4]");
    assert_eq!(ty(&g, dynamic), "f32[s0,s1,s2]");
}

#[test]
fn concat_split_flatten() {
    let mut g = Graph::new("csf");
    let a = input(&mut g, "a", DType::F32, "N,2");
    let b = input(&mut g, "b", DType::F32, "N,3");
    let m = input(&mut g, "m", DType::F32, "M,2");
    let c = node(&mut g, "c", Op::Concat { axis: 1 }, &[Some(a), Some(b)]);
    let c0 = node(&mut g, "c0", Op::Concat { axis: 0 }, &[Some(a), Some(m)]);
    let x = input(&mut g, "x", DType::F32, "N,10,3,4");
    let sizes = ints(&mut g, "sizes", &[3, 7]);
    let sp = node_n(
        &mut g,
        "split",
        Op::Split {
            axis: 1,
            num_outputs: 2,
        },
        &[Some(x), Some(sizes)],
        2,
    );
    let eq = node_n(
        &mut g,
        "even",
        Op::Split {
            axis: -3,
            num_outputs: 3,
        },
        &[Some(x), None],
        3,
    );
    let f1 = node(&mut g, "f1", Op::Flatten { axis: 1 }, &[Some(x)]);
    let f3 = node(&mut g, "f3", Op::Flatten { axis: -1 }, &[Some(x)]);
    let f0 = node(&mut g, "f0", Op::Flatten { axis: 0 }, &[Some(x)]);
    let f4 = node(&mut g, "f4", Op::Flatten { axis: 4 }, &[Some(x)]);
    run(&mut g);
    assert_eq!(ty(&g, c), "f32[N,5]");
    assert_eq!(ty(&g, c0), "f32[s0,2]");
    assert_eq!(ty(&g, sp[0]), "f32[N,3,3,4]");
    assert_eq!(ty(&g, sp[1]), "f32[N,7,3,4]");
    assert_eq!(ty(&g, eq[0]), "f32[N,4,3,4]");
    assert_eq!(ty(&g, eq[2]), "f32[N,2,3,4]");
    assert_eq!(ty(&g, f1), "f32[N,120]");
    assert_eq!(ty(&g, f3), "f32[s1,4]");
    assert_eq!(ty(&g, f0), "f32[1,s2]");
    assert_eq!(ty(&g, f4), "f32[s3,1]");
}

#[test]
fn reshape_from_constants_and_shape_arithmetic() {
    let mut g = Graph::new("reshape");
    let x = input(&mut g, "x", DType::F32, "N,8,4,4");
    let s1 = ints(&mut g, "s1", &[0, -1]);
    let r1 = node(
        &mut g,
        "r1",
        Op::Reshape { allowzero: false },
        &[Some(x), Some(s1)],
    );
    let s2 = ints(&mut g, "s2", &[-1, 16]);
    let r2 = node(
        &mut g,
        "r2",
        Op::Reshape { allowzero: false },
        &[Some(x), Some(s2)],
    );
    let s3 = ints(&mut g, "s3", &[0, 2, -1, 4]);
    let r3 = node(
        &mut g,
        "r3",
        Op::Reshape { allowzero: false },
        &[Some(x), Some(s3)],
    );
    let k = input(&mut g, "k", DType::F32, "2,3,4");
    let s4 = ints(&mut g, "s4", &[4, -1]);
    let r4 = node(
        &mut g,
        "r4",
        Op::Reshape { allowzero: false },
        &[Some(k), Some(s4)],
    );
    let empty = input(&mut g, "empty", DType::F32, "0,3");
    let s5 = ints(&mut g, "s5", &[0, 5]);
    let r5 = node(
        &mut g,
        "r5",
        Op::Reshape { allowzero: true },
        &[Some(empty), Some(s5)],
    );
    // reshape(x, concat(unsqueeze(gather(shape_of(x), 0)), [-1])): the exporters' flatten.
    let sh = node(
        &mut g,
        "shape",
        Op::ShapeOf {
            start: 0,
            end: None,
        },
        &[Some(x)],
    );
    let zero = g.add_const("zero", Tensor::scalar_i64(0));
    let n = node(&mut g, "n", Op::Gather { axis: 0 }, &[Some(sh), Some(zero)]);
    let ax0 = ints(&mut g, "ax0", &[0]);
    let n1 = node(&mut g, "n1", Op::Unsqueeze, &[Some(n), Some(ax0)]);
    let m1 = ints(&mut g, "m1", &[-1]);
    let cat = node(&mut g, "cat", Op::Concat { axis: 0 }, &[Some(n1), Some(m1)]);
    let r6 = node(
        &mut g,
        "r6",
        Op::Reshape { allowzero: false },
        &[Some(x), Some(cat)],
    );
    // Arithmetic on known shape elements: [N, 2, 8*8].
    let hw = node(
        &mut g,
        "hw",
        Op::ShapeOf {
            start: 1,
            end: None,
        },
        &[Some(x)],
    );
    let half = ints(&mut g, "half", &[8, 1, 1]);
    let prod = node(
        &mut g,
        "prod",
        Op::Binary(BinaryOp::Mul),
        &[Some(hw), Some(half)],
    );
    let st = ints(&mut g, "st", &[0]);
    let en = ints(&mut g, "en", &[1]);
    let first = node(
        &mut g,
        "first",
        Op::Slice,
        &[Some(prod), Some(st), Some(en), None, None],
    );
    let two = ints(&mut g, "two", &[2]);
    let hcat = node(
        &mut g,
        "hcat",
        Op::Concat { axis: 0 },
        &[Some(n1), Some(two), Some(first)],
    );
    let r7 = node(
        &mut g,
        "r7",
        Op::Reshape { allowzero: false },
        &[Some(x), Some(hcat)],
    );
    let dynamic = input(&mut g, "dshape", DType::I64, "3");
    let r8 = node(
        &mut g,
        "r8",
        Op::Reshape { allowzero: false },
        &[Some(x), Some(dynamic)],
    );
    run(&mut g);
    assert_eq!(ty(&g, r1), "f32[N,128]");
    assert_eq!(ty(&g, r2), "f32[s0,16]");
    assert_eq!(ty(&g, r3), "f32[N,2,16,4]");
    assert_eq!(ty(&g, r4), "f32[4,6]");
    assert_eq!(ty(&g, r5), "f32[0,5]");
    assert_eq!(ty(&g, sh), "i64[4]");
    assert_eq!(ty(&g, r6), "f32[N,128]");
    assert_eq!(ty(&g, r7), "f32[N,2,64]");
    assert_eq!(ty(&g, r8), "f32[s1,s2,s3]");
}

#[test]
fn squeeze_unsqueeze_transpose_expand_gather() {
    let mut g = Graph::new("moves");
    let x = input(&mut g, "x", DType::F32, "N,1,3,1");
    let a13 = ints(&mut g, "a13", &[1, -1]);
    let sq = node(&mut g, "sq", Op::Squeeze, &[Some(x), Some(a13)]);
    let k = input(&mut g, "k", DType::F32, "1,3,1");
    let sq_all = node(&mut g, "sq_all", Op::Squeeze, &[Some(k), None]);
    let sq_sym = node(&mut g, "sq_sym", Op::Squeeze, &[Some(x), None]);
    let a0 = ints(&mut g, "a0", &[0, -1]);
    let us = node(&mut g, "us", Op::Unsqueeze, &[Some(k), Some(a0)]);
    let tr = node(
        &mut g,
        "tr",
        Op::Transpose {
            perm: vec![0, 2, 3, 1],
        },
        &[Some(x)],
    );
    let rev = node(&mut g, "rev", Op::Transpose { perm: vec![] }, &[Some(x)]);
    let e = input(&mut g, "e", DType::F32, "3,1");
    let shp = ints(&mut g, "shp", &[2, 1, 4]);
    let ex = node(&mut g, "ex", Op::Expand, &[Some(e), Some(shp)]);
    let d = input(&mut g, "d", DType::F32, "5,4,N");
    let idx = input(&mut g, "idx", DType::I64, "B,2");
    let ga = node(&mut g, "ga", Op::Gather { axis: 1 }, &[Some(d), Some(idx)]);
    let i0 = g.add_const("i0", Tensor::scalar_i64(-1));
    let gs = node(&mut g, "gs", Op::Gather { axis: 0 }, &[Some(d), Some(i0)]);
    run(&mut g);
    assert_eq!(ty(&g, sq), "f32[N,3]");
    assert_eq!(ty(&g, sq_all), "f32[3]");
    assert_eq!(ty(&g, sq_sym), "f32[*]");
    assert_eq!(ty(&g, us), "f32[1,1,3,1,1]");
    assert_eq!(ty(&g, tr), "f32[N,3,1,1]");
    assert_eq!(ty(&g, rev), "f32[1,3,1,N]");
    assert_eq!(ty(&g, ex), "f32[2,3,4]");
    assert_eq!(ty(&g, ga), "f32[5,B,2,N]");
    assert_eq!(ty(&g, gs), "f32[4,N]");
}

#[test]
fn shape_of_slice_pad() {
    let mut g = Graph::new("sps");
    let x = input(&mut g, "x", DType::F32, "N,10,20");
    let sh = node(
        &mut g,
        "sh",
        Op::ShapeOf {
            start: -2,
            end: None,
        },
        &[Some(x)],
    );
    let sh2 = node(
        &mut g,
        "sh2",
        Op::ShapeOf {
            start: 1,
            end: Some(-5),
        },
        &[Some(x)],
    );
    let st = ints(&mut g, "st", &[2, -1]);
    let en = ints(&mut g, "en", &[-1, -i64::MAX]);
    let ax = ints(&mut g, "ax", &[1, 2]);
    let sp = ints(&mut g, "sp", &[1, -1]);
    let s1 = node(
        &mut g,
        "s1",
        Op::Slice,
        &[Some(x), Some(st), Some(en), Some(ax), Some(sp)],
    );
    let z = ints(&mut g, "z", &[0, 1]);
    let big = ints(&mut g, "big", &[i64::MAX, 100]);
    let ax02 = ints(&mut g, "ax02", &[0, 2]);
    let two = ints(&mut g, "two3", &[1, 3]);
    let s2 = node(
        &mut g,
        "s2",
        Op::Slice,
        &[Some(x), Some(z), Some(big), Some(ax02), Some(two)],
    );
    let st3 = ints(&mut g, "st3", &[1]);
    let en3 = ints(&mut g, "en3", &[5]);
    let ax0 = ints(&mut g, "ax0", &[0]);
    let s3 = node(
        &mut g,
        "s3",
        Op::Slice,
        &[Some(x), Some(st3), Some(en3), Some(ax0), None],
    );
    let pads = ints(&mut g, "pads", &[0, 1, -2, 0, 1, 3]);
    let p = node(
        &mut g,
        "pad",
        Op::Pad {
            mode: PadMode::Constant,
        },
        &[Some(x), Some(pads), None, None],
    );
    let pads_ax = ints(&mut g, "pads_ax", &[2, 2]);
    let axes = ints(&mut g, "axes", &[-1]);
    let pa = node(
        &mut g,
        "pad_axes",
        Op::Pad {
            mode: PadMode::Reflect,
        },
        &[Some(x), Some(pads_ax), None, Some(axes)],
    );
    run(&mut g);
    assert_eq!(ty(&g, sh), "i64[2]");
    assert_eq!(ty(&g, sh2), "i64[0]");
    assert_eq!(ty(&g, s1), "f32[N,7,20]");
    assert_eq!(ty(&g, s2), "f32[N,10,7]");
    assert_eq!(ty(&g, s3), "f32[s0,10,20]");
    assert_eq!(ty(&g, p), "f32[N,12,21]");
    assert_eq!(ty(&g, pa), "f32[N,10,24]");
}

#[test]
fn resize_scales_and_sizes() {
    let mut g = Graph::new("resize");
    let attrs = |axes: Vec<i64>, policy| ResizeAttrs {
        mode: ResizeMode::Nearest,
        coord: CoordTransform::Asymmetric,
        nearest: NearestMode::Floor,
        cubic_a: -0.75,
        exclude_outside: false,
        extrapolation: 0.0,
        antialias: false,
        axes,
        policy,
    };
    let x = input(&mut g, "x", DType::F32, "N,3,5,5");
    let sc = g.add_const(
        "sc",
        Tensor::from_f32(&[4], vec![1.0, 1.0, 2.0, 0.6]).unwrap(),
    );
    let r1 = node(
        &mut g,
        "r1",
        Op::Resize(attrs(vec![], AspectPolicy::Stretch)),
        &[Some(x), None, Some(sc), None],
    );
    let empty = g.add_const("empty", Tensor::from_f32(&[0], vec![]).unwrap());
    let sizes = ints(&mut g, "sizes", &[8, 8]);
    let r2 = node(
        &mut g,
        "r2",
        Op::Resize(attrs(vec![2, 3], AspectPolicy::Stretch)),
        &[Some(x), Some(empty), Some(empty), Some(sizes)],
    );
    let y = input(&mut g, "y", DType::F32, "1,3,4,6");
    let r3 = node(
        &mut g,
        "r3",
        Op::Resize(attrs(vec![2, 3], AspectPolicy::NotLarger)),
        &[Some(y), None, None, Some(sizes)],
    );
    let r4 = node(
        &mut g,
        "r4",
        Op::Resize(attrs(vec![-2, -1], AspectPolicy::NotSmaller)),
        &[Some(y), None, None, Some(sizes)],
    );
    let sc2 = g.add_const("sc2", Tensor::from_f32(&[2], vec![2.0, 2.0]).unwrap());
    let s = input(&mut g, "s", DType::F32, "N,3,H,W");
    let r5 = node(
        &mut g,
        "r5",
        Op::Resize(attrs(vec![2, 3], AspectPolicy::Stretch)),
        &[Some(s), None, Some(sc2), None],
    );
    run(&mut g);
    assert_eq!(ty(&g, r1), "f32[N,3,10,3]");
    assert_eq!(ty(&g, r2), "f32[N,3,8,8]");
    // not_larger: scale min(8/4, 8/6) = 4/3: [round(5.33), 8].
    assert_eq!(ty(&g, r3), "f32[1,3,5,8]");
    // not_smaller: scale 2: [8, 12].
    assert_eq!(ty(&g, r4), "f32[1,3,8,12]");
    assert_eq!(ty(&g, r5), "f32[N,3,s0,s1]");
}

#[test]
fn range_and_constant_of_shape() {
    let mut g = Graph::new("range");
    let s = g.add_const("s", Tensor::scalar_i64(0));
    let l = g.add_const("l", Tensor::scalar_i64(10));
    let d = g.add_const("d", Tensor::scalar_i64(3));
    let r = node(&mut g, "r", Op::Range, &[Some(s), Some(l), Some(d)]);
    let nd = g.add_const("nd", Tensor::scalar_i64(-4));
    let rn = node(&mut g, "rn", Op::Range, &[Some(l), Some(s), Some(nd)]);
    let fs = g.add_const("fs", Tensor::scalar_f32(1.0));
    let fl = g.add_const("fl", Tensor::scalar_f32(2.0));
    let fd = g.add_const("fd", Tensor::scalar_f32(0.3));
    let rf = node(&mut g, "rf", Op::Range, &[Some(fs), Some(fl), Some(fd)]);
    let dl = input(&mut g, "dl", DType::I64, "");
    let rd = node(&mut g, "rd", Op::Range, &[Some(s), Some(dl), Some(d)]);
    let shp = ints(&mut g, "shp", &[2, 3]);
    let value = Arc::new(Tensor::from_i32(&[1], vec![7]).unwrap());
    let c = node(
        &mut g,
        "c",
        Op::ConstantOfShape {
            value: value.clone(),
        },
        &[Some(shp)],
    );
    let x = input(&mut g, "x", DType::F32, "N,4");
    let sx = node(
        &mut g,
        "sx",
        Op::ShapeOf {
            start: 0,
            end: None,
        },
        &[Some(x)],
    );
    let cx = node(&mut g, "cx", Op::ConstantOfShape { value }, &[Some(sx)]);
    run(&mut g);
    assert_eq!(ty(&g, r), "i64[4]");
    assert_eq!(ty(&g, rn), "i64[3]");
    assert_eq!(ty(&g, rf), "f32[4]");
    assert_eq!(ty(&g, rd), "i64[s0]");
    assert_eq!(ty(&g, c), "i32[2,3]");
    assert_eq!(ty(&g, cx), "i32[N,4]");
}

#[test]
fn quantization_ops() {
    let mut g = Graph::new("quant");
    let x = input(&mut g, "x", DType::F32, "N,3,8,8");
    let s = g.add_const("s", Tensor::scalar_f32(0.1));
    let z = g.add_const("z", Tensor::zeros(DType::U8, &[]));
    let qa = QuantAxis {
        axis: 1,
        block_size: 0,
    };
    let q = node(
        &mut g,
        "q",
        Op::QuantizeLinear {
            q: qa.clone(),
            dtype: DType::U8,
        },
        &[Some(x), Some(s), Some(z)],
    );
    let dq = node(
        &mut g,
        "dq",
        Op::DequantizeLinear { q: qa.clone() },
        &[Some(q), Some(s), Some(z)],
    );
    let pc = zeros(&mut g, "pc", DType::F32, &[3]);
    let pz = zeros(&mut g, "pz", DType::I8, &[3]);
    let qc = node(
        &mut g,
        "qc",
        Op::QuantizeLinear {
            q: qa.clone(),
            dtype: DType::I8,
        },
        &[Some(x), Some(pc), Some(pz)],
    );
    let bs = zeros(&mut g, "bs", DType::F32, &[1, 3, 2, 8]);
    let qb = Op::QuantizeLinear {
        q: QuantAxis {
            axis: 2,
            block_size: 4,
        },
        dtype: DType::I8,
    };
    let qbk = node(&mut g, "qb", qb, &[Some(x), Some(bs), None]);
    let dy = node_n(&mut g, "dyn", Op::DynamicQuantizeLinear, &[Some(x)], 3);
    let lo = zeros(&mut g, "lo", DType::F32, &[1, 3, 1, 1]);
    let hi = g.add_const("hi", Tensor::scalar_f32(6.0));
    let fq = node(
        &mut g,
        "fq",
        Op::FakeQuantize { levels: 256 },
        &[Some(x), Some(lo), Some(hi), Some(lo), Some(hi)],
    );
    run(&mut g);
    assert_eq!(ty(&g, q), "u8[N,3,8,8]");
    assert_eq!(ty(&g, dq), "f32[N,3,8,8]");
    assert_eq!(ty(&g, qc), "i8[N,3,8,8]");
    assert_eq!(ty(&g, qbk), "i8[N,3,8,8]");
    assert_eq!(ty(&g, dy[0]), "u8[N,3,8,8]");
    assert_eq!(ty(&g, dy[1]), "f32[]");
    assert_eq!(ty(&g, dy[2]), "u8[]");
    assert_eq!(ty(&g, fq), "f32[N,3,8,8]");
}

#[test]
fn declared_types_refine_and_are_kept() {
    let mut g = Graph::new("declared");
    let x = input(&mut g, "x", DType::F32, "N,3");
    let id = g.add_node(
        "relu",
        Op::Unary(UnaryOp::Relu),
        &[Some(x)],
        vec![Output {
            name: "r".into(),
            ty: ValueType::new(DType::F32, shape("4,3")),
        }],
    );
    let w = zeros(&mut g, "w", DType::F32, &[6, 3, 3]);
    let c = input(&mut g, "c", DType::F32, "N,3,L");
    let cid = g.add_node(
        "conv",
        Op::Conv(ConvAttrs::default()),
        &[Some(c), Some(w)],
        vec![Output {
            name: "cv".into(),
            ty: ValueType::new(DType::F32, shape("N,6,out_len")),
        }],
    );
    run(&mut g);
    assert_eq!(ty(&g, ValueRef::first(id)), "f32[4,3]");
    // The declared symbol is kept over a fresh one.
    assert_eq!(ty(&g, ValueRef::first(cid)), "f32[N,6,out_len]");
    // Running again changes nothing.
    let before = g.clone();
    run(&mut g);
    assert!(g == before);
}

#[test]
fn fresh_symbols_skip_names_in_use() {
    let mut g = Graph::new("fresh");
    let x = input(&mut g, "x", DType::F32, "s0,s2,4");
    let sh = input(&mut g, "sh", DType::I64, "2");
    let r = node(
        &mut g,
        "r",
        Op::Reshape { allowzero: false },
        &[Some(x), Some(sh)],
    );
    run(&mut g);
    assert_eq!(ty(&g, r), "f32[s1,s3]");
}

#[test]
fn zero_sized_dims() {
    let mut g = Graph::new("zero");
    let x = input(&mut g, "x", DType::F32, "0,3");
    let st = ints(&mut g, "st", &[-1]);
    let en = ints(&mut g, "en", &[-100]);
    let ax = ints(&mut g, "ax", &[0]);
    let sp = ints(&mut g, "sp", &[-1]);
    let s = node(
        &mut g,
        "s",
        Op::Slice,
        &[Some(x), Some(st), Some(en), Some(ax), Some(sp)],
    );
    let y = input(&mut g, "y", DType::F32, "N,3");
    let c = node(&mut g, "c", Op::Concat { axis: 0 }, &[Some(x), Some(y)]);
    let sh = node(
        &mut g,
        "sh",
        Op::ShapeOf {
            start: 0,
            end: None,
        },
        &[Some(x)],
    );
    let e = node(
        &mut g,
        "e",
        Op::Slice,
        &[Some(sh), Some(st), Some(en), Some(ax), Some(sp)],
    );
    let z = node(
        &mut g,
        "z",
        Op::ConstantOfShape {
            value: Arc::new(Tensor::scalar_f32(0.0)),
        },
        &[Some(e)],
    );
    run(&mut g);
    assert_eq!(ty(&g, s), "f32[0,3]");
    assert_eq!(ty(&g, c), "f32[N,3]");
    // shape_of(x)[-1::-1] = [3, 0].
    assert_eq!(ty(&g, z), "f32[3,0]");
}

fn rnn_attrs(direction: RnnDirection, hidden: usize, gates: usize, batch_first: bool) -> RnnAttrs {
    RnnAttrs {
        direction,
        hidden_size: hidden,
        activations: rnn_default_activations(gates, direction.count()),
        clip: None,
        batch_first,
    }
}

#[test]
fn recurrent_output_shapes_with_symbolic_batch_and_sequence() {
    let mut g = Graph::new("rnn");
    let x = input(&mut g, "x", DType::F32, "T,N,10");
    let w = zeros(&mut g, "w", DType::F32, &[2, 28, 10]);
    let r = zeros(&mut g, "r", DType::F32, &[2, 28, 7]);
    let b = zeros(&mut g, "b", DType::F32, &[2, 56]);
    let h0 = input(&mut g, "h0", DType::F32, "2,N,7");
    let lstm = Op::Lstm {
        rnn: rnn_attrs(RnnDirection::Bidirectional, 7, 3, false),
        input_forget: false,
    };
    let ins = [Some(x), Some(w), Some(r), Some(b), None, Some(h0)];
    let y = node_n(&mut g, "lstm", lstm, &ins, 3);

    // GRU, batch-first: X [N, T, 10], Y [N, T, 1, 5], Y_h [N, 1, 5].
    let xb = input(&mut g, "xb", DType::F32, "N,T,10");
    let wg = zeros(&mut g, "wg", DType::F32, &[1, 15, 10]);
    let rg = zeros(&mut g, "rg", DType::F32, &[1, 15, 5]);
    let lens = input(&mut g, "lens", DType::I32, "N");
    let gru = Op::Gru {
        rnn: rnn_attrs(RnnDirection::Reverse, 5, 2, true),
        linear_before_reset: true,
    };
    let yg = node_n(
        &mut g,
        "gru",
        gru,
        &[Some(xb), Some(wg), Some(rg), None, Some(lens)],
        2,
    );

    // RNN with only Y_h wanted (two outputs, the first unused).
    let wr = zeros(&mut g, "wr", DType::F32, &[1, 4, 10]);
    let rr = zeros(&mut g, "rr", DType::F32, &[1, 4, 4]);
    let rnn = Op::Rnn(rnn_attrs(RnnDirection::Forward, 4, 1, false));
    let yr = node_n(&mut g, "rnn", rnn, &[Some(x), Some(wr), Some(rr)], 2);
    run(&mut g);
    assert_eq!(ty(&g, y[0]), "f32[T,2,N,7]");
    assert_eq!(ty(&g, y[1]), "f32[2,N,7]");
    assert_eq!(ty(&g, y[2]), "f32[2,N,7]");
    assert_eq!(ty(&g, yg[0]), "f32[N,T,1,5]");
    assert_eq!(ty(&g, yg[1]), "f32[N,1,5]");
    assert_eq!(ty(&g, yr[0]), "f32[T,1,N,4]");
    assert_eq!(ty(&g, yr[1]), "f32[1,N,4]");
}

#[test]
fn recurrent_rejects_wrong_operands() {
    let check = |w_dims: &[usize], lens: DType, acts: usize, want: &str| {
        let mut g = Graph::new("rnn");
        let x = input(&mut g, "x", DType::F32, "T,2,3");
        let w = zeros(&mut g, "w", DType::F32, w_dims);
        let r = zeros(&mut g, "r", DType::F32, &[1, 16, 4]);
        let l = input(&mut g, "lens", lens, "2");
        let mut a = rnn_attrs(RnnDirection::Forward, 4, 3, false);
        a.activations.truncate(acts);
        let op = Op::Lstm {
            rnn: a,
            input_forget: false,
        };
        node_n(
            &mut g,
            "lstm",
            op,
            &[Some(x), Some(w), Some(r), None, Some(l)],
            2,
        );
        let e = infer_types(&mut g).expect_err(want).to_string();
        assert!(e.contains(want), "{e}");
    };
    check(
        &[1, 12, 3],
        DType::I32,
        3,
        "w has shape [1,12,3], expected [1,16,3]",
    );
    check(
        &[1, 16, 5],
        DType::I32,
        3,
        "w has shape [1,16,5], expected [1,16,3]",
    );
    check(
        &[1, 16, 3],
        DType::I64,
        3,
        "sequence_lens) has dtype i64, expected i32",
    );
    check(
        &[1, 16, 3],
        DType::I32,
        2,
        "activations: 2 given, the op takes 3",
    );
}

#[test]
fn bit_and_misc_op_types() {
    let mut g = Graph::new("misc");
    let a = input(&mut g, "a", DType::U8, "N,3,1");
    let b = input(&mut g, "b", DType::U8, "4");
    let x = input(&mut g, "x", DType::F32, "2,3");
    let shl = node(
        &mut g,
        "shl",
        Op::Binary(BinaryOp::BitShiftLeft),
        &[Some(a), Some(b)],
    );
    let not = node(&mut g, "not", Op::Unary(UnaryOp::BitwiseNot), &[Some(a)]);
    let cast = node(
        &mut g,
        "cast",
        Op::Unary(UnaryOp::BitCast { to: DType::I32 }),
        &[Some(x)],
    );
    let ax = ints(&mut g, "ax", &[-1]);
    let cum = node(
        &mut g,
        "cum",
        Op::CumSum {
            exclusive: true,
            reverse: false,
        },
        &[Some(x), Some(ax)],
    );
    let idx = input(&mut g, "idx", DType::I64, "N,2");
    let depth = ints(&mut g, "depth", &[5]);
    let values = zeros(&mut g, "values", DType::F16, &[2]);
    let hot = node(
        &mut g,
        "hot",
        Op::OneHot { axis: 1 },
        &[Some(idx), Some(depth), Some(values)],
    );
    let eye = node(&mut g, "eye", Op::EyeLike { k: 1 }, &[Some(x)]);
    let cond = g.add_const(
        "cond",
        Tensor::from_bool(&[2], vec![true, false]).expect("size"),
    );
    let comp = node(
        &mut g,
        "comp",
        Op::Compress { axis: Some(0) },
        &[Some(x), Some(cond)],
    );
    let nz = node(&mut g, "nz", Op::NonZero, &[Some(x)]);
    let uq = node_n(
        &mut g,
        "uq",
        Op::Unique {
            sorted: true,
            axis: Some(1),
        },
        &[Some(x)],
        4,
    );
    let shape = ints(&mut g, "shape", &[4]);
    let ccp = node(
        &mut g,
        "ccp",
        Op::CenterCropPad { axes: vec![-1] },
        &[Some(x), Some(shape)],
    );
    let m = input(&mut g, "m", DType::F64, "N,3,3");
    let det = node(&mut g, "det", Op::Det, &[Some(m)]);
    run(&mut g);
    assert_eq!(ty(&g, shl), "u8[N,3,4]");
    assert_eq!(ty(&g, not), "u8[N,3,1]");
    assert_eq!(ty(&g, cast), "i32[2,3]");
    assert_eq!(ty(&g, cum), "f32[2,3]");
    assert_eq!(ty(&g, hot), "f16[N,5,2]");
    assert_eq!(ty(&g, eye), "f32[2,3]");
    assert_eq!(ty(&g, comp), "f32[1,3]");
    assert!(ty(&g, nz).starts_with("i64[2,"), "{}", ty(&g, nz));
    assert!(ty(&g, uq[0]).starts_with("f32[2,"), "{}", ty(&g, uq[0]));
    assert_eq!(ty(&g, uq[2]), "i64[3]");
    assert_eq!(ty(&g, ccp), "f32[2,4]");
    assert_eq!(ty(&g, det), "f64[N]");
}

#[test]
fn bit_and_misc_ops_reject_bad_inputs() {
    let unary = |op: Op, dtype: DType, dims: &str, want: &str| {
        let mut g = Graph::new("bad");
        let x = input(&mut g, "x", dtype, dims);
        let ins: Vec<Option<ValueRef>> = (0..op.arity().0).map(|_| Some(x)).collect();
        node(&mut g, "n", op.clone(), &ins);
        let e = infer_types(&mut g).expect_err("bad input must be rejected");
        assert!(e.to_string().contains(want), "{}: {e}", op.name());
    };
    unary(
        Op::Binary(BinaryOp::BitwiseAnd),
        DType::F32,
        "2",
        "an integer type",
    );
    unary(
        Op::Unary(UnaryOp::BitwiseNot),
        DType::Bool,
        "2",
        "an integer type",
    );
    unary(
        Op::Unary(UnaryOp::BitCast { to: DType::I64 }),
        DType::F32,
        "2",
        "cannot bit-cast",
    );
    unary(Op::Det, DType::I32, "2,2", "a float type");
    unary(Op::Det, DType::F32, "2,3", "square");
    unary(Op::EyeLike { k: 0 }, DType::F32, "2", "rank 2");
}

#[test]
fn col2im_types_and_checks() {
    let build = |x_dims: &str, strides: Vec<usize>| {
        let mut g = Graph::new("col2im");
        let x = input(&mut g, "x", DType::F32, x_dims);
        let image = ints(&mut g, "image", &[3, 4]);
        let block = ints(&mut g, "block", &[2, 2]);
        let y = node(
            &mut g,
            "y",
            Op::Col2Im {
                dilations: vec![],
                pads: vec![],
                strides,
            },
            &[Some(x), Some(image), Some(block)],
        );
        (g, y)
    };
    let (mut g, y) = build("N,8,6", vec![]);
    run(&mut g);
    assert_eq!(ty(&g, y), "f32[N,2,3,4]");
    let (mut g, _) = build("N,8,5", vec![]);
    let e = infer_types(&mut g).expect_err("L mismatch");
    assert!(e.to_string().contains("block positions"), "{e}");
    let (mut g, _) = build("N,6,6", vec![]);
    let e = infer_types(&mut g).expect_err("channels");
    assert!(e.to_string().contains("multiple"), "{e}");
    let (mut g, _) = build("N,8,6", vec![1]);
    let e = infer_types(&mut g).expect_err("strides");
    assert!(e.to_string().contains("'strides'"), "{e}");
}

#[test]
fn grid_sample_and_affine_grid_types() {
    let mut g = Graph::new("grid");
    let x = input(&mut g, "x", DType::F32, "N,3,4,5");
    let grid = input(&mut g, "grid", DType::F32, "N,6,7,2");
    let op = Op::GridSample {
        mode: ResizeMode::Linear,
        padding: GridPadding::Zeros,
        align_corners: false,
    };
    let y = node(&mut g, "y", op.clone(), &[Some(x), Some(grid)]);
    run(&mut g);
    assert_eq!(ty(&g, y), "f32[N,3,6,7]");
    let mut g = Graph::new("grid");
    let x = input(&mut g, "x", DType::F32, "N,3,4,5");
    let grid = input(&mut g, "grid", DType::F32, "N,6,7,3");
    node(&mut g, "y", op, &[Some(x), Some(grid)]);
    let e = infer_types(&mut g).expect_err("coordinates");
    assert!(e.to_string().contains("coordinates"), "{e}");

    let mut g = Graph::new("affine");
    let theta = input(&mut g, "theta", DType::F32, "2,2,3");
    let size = ints(&mut g, "size", &[2, 3, 4, 5]);
    let op = Op::AffineGrid {
        align_corners: false,
    };
    let y = node(&mut g, "y", op.clone(), &[Some(theta), Some(size)]);
    run(&mut g);
    assert_eq!(ty(&g, y), "f32[2,4,5,2]");
    let mut g = Graph::new("affine");
    let theta = input(&mut g, "theta", DType::F32, "2,3,4");
    let size = ints(&mut g, "size", &[2, 3, 4, 5]);
    node(&mut g, "y", op, &[Some(theta), Some(size)]);
    let e = infer_types(&mut g).expect_err("theta");
    assert!(e.to_string().contains("theta"), "{e}");
}

#[test]
fn einsum_rotary_tensor_scatter_and_nms_types() {
    let mut g = Graph::new("g");
    let a = input(&mut g, "a", DType::F32, "N,3,3");
    let b = input(&mut g, "b", DType::F32, "1,3,4");
    let e = |s: &str| Op::Einsum { equation: s.into() };
    // Batch matmul with a broadcast ellipsis axis; a diagonal; an implicit-output trace.
    let mm = node(&mut g, "mm", e("...ij,...jk->...ik"), &[Some(a), Some(b)]);
    let diag = node(&mut g, "diag", e("...ii->...i"), &[Some(a)]);
    let tr = node(&mut g, "tr", e("bii"), &[Some(a)]);
    let x = input(&mut g, "x", DType::F32, "2,4,3,8");
    let cache = input(&mut g, "cos", DType::F32, "50,4");
    let pos = input(&mut g, "pos", DType::I64, "2,3");
    let rot = node(
        &mut g,
        "rot",
        OpKind::RotaryEmbedding.template(),
        &[Some(x), Some(cache), Some(cache), Some(pos)],
    );
    let past = input(&mut g, "past", DType::F32, "2,1,4,5");
    let upd = input(&mut g, "upd", DType::F32, "2,1,1,5");
    let ts = node(
        &mut g,
        "ts",
        OpKind::TensorScatter.template(),
        &[Some(past), Some(upd)],
    );
    let boxes = input(&mut g, "boxes", DType::F32, "1,6,4");
    let scores = input(&mut g, "scores", DType::F32, "1,2,6");
    let nms = node(
        &mut g,
        "nms",
        OpKind::NonMaxSuppression.template(),
        &[Some(boxes), Some(scores)],
    );
    run(&mut g);
    assert_eq!(ty(&g, mm), "f32[N,3,4]");
    assert_eq!(ty(&g, diag), "f32[N,3]");
    assert_eq!(ty(&g, tr), "f32[N]");
    assert_eq!(ty(&g, rot), "f32[2,4,3,8]");
    assert_eq!(ty(&g, ts), "f32[2,1,4,5]");
    let t = ty(&g, nms);
    assert!(t.starts_with("i64[") && t.ends_with(",3]"), "{t}");

    // Mismatched label sizes, a term of the wrong rank, an output label in no input, a 3-D
    // rotary input without num_heads, the batch axis for TensorScatter: errors.
    let c = input(&mut g, "c", DType::F32, "2,3");
    let d = input(&mut g, "d", DType::F32, "4,5");
    for (op, ins) in [
        (e("ij,jk->ik"), vec![Some(c), Some(d)]),
        (e("ij->i"), vec![Some(a)]),
        (e("ij->k"), vec![Some(c)]),
    ] {
        let mut h = g.clone();
        node(&mut h, "bad", op, &ins);
        assert!(infer_types(&mut h).is_err());
    }
    let x3 = input(&mut g, "x3", DType::F32, "2,3,32");
    let mut h = g.clone();
    node(
        &mut h,
        "bad",
        OpKind::RotaryEmbedding.template(),
        &[Some(x3), Some(cache), Some(cache), Some(pos)],
    );
    assert!(infer_types(&mut h).is_err());
    let mut h = g.clone();
    node(
        &mut h,
        "bad",
        Op::TensorScatter {
            axis: 0,
            circular: false,
        },
        &[Some(past), Some(upd)],
    );
    assert!(infer_types(&mut h).is_err());
}

/// Adds node `bad` to a copy of `g` and returns its inference error, which must name it.
fn bad_node(g: &Graph, op: Op, ins: &[Option<ValueRef>], n_out: usize) -> String {
    let mut h = g.clone();
    node_n(&mut h, "bad", op, ins, n_out);
    match infer_types(&mut h) {
        Ok(()) => panic!("inference accepted a bad node"),
        Err(e) => {
            let m = e.to_string();
            assert!(m.contains("node 'bad'"), "{m}");
            m
        }
    }
}

fn linear_attention(q: usize, kv: usize, gated: bool, delta: bool) -> Op {
    Op::LinearAttention {
        q_num_heads: q,
        kv_num_heads: kv,
        scale: 0.0,
        gated,
        delta,
    }
}

#[test]
fn linear_attention_types_and_errors() {
    let mut g = Graph::new("g");
    // GQA: 8 query heads of 8, 2 kv heads, d_v 4; symbolic batch and sequence.
    let q = input(&mut g, "q", DType::F32, "B,T,64");
    let k = input(&mut g, "k", DType::F32, "B,T,16");
    let v = input(&mut g, "v", DType::F32, "B,T,8");
    let decay = input(&mut g, "decay", DType::F32, "B,T,2");
    let beta = input(&mut g, "beta", DType::F32, "B,T,1");
    let past = input(&mut g, "past", DType::F32, "B,2,8,4");
    let la = node_n(
        &mut g,
        "la",
        linear_attention(8, 2, true, true),
        &[
            Some(q),
            Some(k),
            Some(v),
            Some(past),
            Some(decay),
            Some(beta),
        ],
        2,
    );
    let lin = node_n(
        &mut g,
        "lin",
        linear_attention(8, 2, false, false),
        &[Some(q), Some(k), Some(v)],
        2,
    );
    let h16 = input(&mut g, "h16", DType::F16, "1,3,8");
    let p32 = input(&mut g, "p32", DType::F32, "1,2,4,4");
    let mixed = node_n(
        &mut g,
        "mixed",
        linear_attention(2, 2, false, false),
        &[Some(h16), Some(h16), Some(h16), Some(p32)],
        2,
    );
    run(&mut g);
    assert_eq!(ty(&g, la[0]), "f32[B,T,32]");
    assert_eq!(ty(&g, la[1]), "f32[B,2,8,4]");
    assert_eq!(ty(&g, lin[0]), "f32[B,T,32]");
    assert_eq!(ty(&g, lin[1]), "f32[B,2,8,4]");
    // The state keeps past_state's dtype.
    assert_eq!(ty(&g, mixed[0]), "f16[1,3,8]");
    assert_eq!(ty(&g, mixed[1]), "f32[1,2,4,4]");

    let gd = linear_attention(8, 2, true, true);
    let all = |q, k, v, p, d, b| [Some(q), Some(k), Some(v), p, Some(d), Some(b)];
    let q2 = input(&mut g, "q2", DType::F32, "B,64");
    let k_bad = input(&mut g, "k_bad", DType::F32, "B,T,12");
    let v_bad = input(&mut g, "v_bad", DType::F32, "B,T,7");
    let d_bad = input(&mut g, "d_bad", DType::F32, "B,T,3");
    let b_bad = input(&mut g, "b_bad", DType::F32, "B,T,2,1");
    let p_bad = input(&mut g, "p_bad", DType::F32, "B,2,8,5");
    let q_other_batch = input(&mut g, "q3", DType::F32, "4,T,64");
    let k_batch = input(&mut g, "k3", DType::F32, "5,T,16");
    let i64s = input(&mut g, "i", DType::I64, "B,T,64");
    for (op, ins, what) in [
        (gd.clone(), all(q2, k, v, None, decay, beta), "must be 3-D"),
        (gd.clone(), all(q, k_bad, v, None, decay, beta), "head size"),
        (
            gd.clone(),
            all(q, k, v_bad, None, decay, beta),
            "not a multiple",
        ),
        (
            gd.clone(),
            all(q, k, v, None, d_bad, beta),
            "decay's last axis",
        ),
        (gd.clone(), all(q, k, v, None, decay, b_bad), "must be 3-D"),
        (gd.clone(), all(q, k, v, Some(p_bad), decay, beta), "d_v"),
        (
            gd.clone(),
            all(q_other_batch, k_batch, v, None, decay, beta),
            "batch",
        ),
        (gd.clone(), all(i64s, k, v, None, decay, beta), "float"),
        (
            linear_attention(3, 2, true, true),
            all(q, k, v, None, decay, beta),
            "multiple",
        ),
        (
            linear_attention(8, 0, true, true),
            all(q, k, v, None, decay, beta),
            "multiple",
        ),
    ] {
        let m = bad_node(&g, op, &ins, 2);
        assert!(m.contains(what), "{m}");
    }
    // decay exactly when gated, beta exactly when delta.
    let m = bad_node(&g, gd, &[Some(q), Some(k), Some(v), None, Some(decay)], 2);
    assert!(m.contains("needs beta"), "{m}");
    let m = bad_node(
        &g,
        linear_attention(8, 2, false, true),
        &[Some(q), Some(k), Some(v), None, Some(decay), Some(beta)],
        2,
    );
    assert!(m.contains("decay is given"), "{m}");
    let m = bad_node(
        &g,
        OpKind::LinearAttention.template(),
        &[Some(q), Some(k)],
        2,
    );
    assert!(m.contains("value"), "{m}");
}

#[test]
fn swiglu_roi_align_and_deform_conv_types() {
    let mut g = Graph::new("g");
    let a = input(&mut g, "a", DType::F16, "N,8");
    let b = input(&mut g, "b", DType::F16, "2,8");
    let sw = node(&mut g, "sw", Op::SwiGlu { alpha: 0.5 }, &[Some(a), Some(b)]);
    let x = input(&mut g, "x", DType::F32, "N,3,10,10");
    let rois = input(&mut g, "rois", DType::F32, "R,4");
    let bi = input(&mut g, "bi", DType::I64, "R");
    let roi = Op::RoiAlign {
        output_height: 5,
        output_width: 7,
        sampling_ratio: 2,
        spatial_scale: 0.5,
        max: true,
        half_pixel: false,
    };
    let ra = node(&mut g, "ra", roi.clone(), &[Some(x), Some(rois), Some(bi)]);
    let w = input(&mut g, "w", DType::F32, "4,3,3,3");
    let off = input(&mut g, "off", DType::F32, "N,18,5,5");
    let mask = input(&mut g, "mask", DType::F32, "N,9,5,5");
    let bias = input(&mut g, "bias", DType::F32, "4");
    let strided = |offset_group| Op::DeformConv {
        conv: ConvAttrs {
            strides: vec![2, 2],
            pads: vec![1, 1, 1, 1],
            ..ConvAttrs::default()
        },
        offset_group,
    };
    let dc = node(
        &mut g,
        "dc",
        strided(1),
        &[Some(x), Some(w), Some(off), Some(bias), Some(mask)],
    );
    run(&mut g);
    assert_eq!(ty(&g, sw), "f16[2,8]");
    assert_eq!(ty(&g, ra), "f32[R,3,5,7]");
    assert_eq!(ty(&g, dc), "f32[N,4,5,5]");

    // SwiGLU: no broadcasting, one dtype, floats only.
    let c = input(&mut g, "c", DType::F16, "1,8");
    let f = input(&mut g, "f", DType::F32, "2,8");
    let i = input(&mut g, "i", DType::I32, "2,8");
    for (ins, what) in [
        ([Some(b), Some(c)], "one shape"),
        ([Some(b), Some(f)], "f16"),
        ([Some(i), Some(i)], "float"),
    ] {
        let m = bad_node(&g, Op::SwiGlu { alpha: 1.0 }, &ins, 1);
        assert!(m.contains(what), "{m}");
    }
    // RoiAlign: x 4-D, rois [R, 4], batch_indices integer and as long as rois.
    let x3 = input(&mut g, "x3", DType::F32, "3,10,10");
    let rois5 = input(&mut g, "rois5", DType::F32, "R,5");
    let bi3 = input(&mut g, "bi3", DType::I64, "3");
    let rois2 = input(&mut g, "rois2", DType::F32, "2,4");
    let bif = input(&mut g, "bif", DType::F32, "R");
    for (ins, what) in [
        ([Some(x3), Some(rois), Some(bi)], "4-D"),
        ([Some(x), Some(rois5), Some(bi)], "[num_rois, 4]"),
        ([Some(x), Some(rois2), Some(bi3)], "regions"),
        ([Some(x), Some(rois), Some(bif)], "integer"),
    ] {
        let m = bad_node(&g, roi.clone(), &ins, 1);
        assert!(m.contains(what), "{m}");
    }
    let m = bad_node(
        &g,
        Op::RoiAlign {
            output_height: 0,
            output_width: 1,
            sampling_ratio: 0,
            spatial_scale: 1.0,
            max: false,
            half_pixel: true,
        },
        &[Some(x), Some(rois), Some(bi)],
        1,
    );
    assert!(m.contains("at least 1"), "{m}");
    // DeformConv: offset and mask channels and sizes, offset_group dividing C, no auto_pad.
    let off_ch = input(&mut g, "off_ch", DType::F32, "N,9,5,5");
    let off_sz = input(&mut g, "off_sz", DType::F32, "N,18,4,5");
    let mask_ch = input(&mut g, "mask_ch", DType::F32, "N,18,5,5");
    let off_r3 = input(&mut g, "off_r3", DType::F32, "N,18,25");
    for (op, ins, what) in [
        (
            strided(1),
            vec![Some(x), Some(w), Some(off_ch)],
            "offset has 9 channels",
        ),
        (
            strided(1),
            vec![Some(x), Some(w), Some(off_sz)],
            "does not match",
        ),
        (strided(1), vec![Some(x), Some(w), Some(off_r3)], "rank 4"),
        (
            strided(1),
            vec![Some(x), Some(w), Some(off), None, Some(mask_ch)],
            "mask has 18 channels",
        ),
        (
            strided(2),
            vec![Some(x), Some(w), Some(off)],
            "offset_group",
        ),
        (
            strided(0),
            vec![Some(x), Some(w), Some(off)],
            "offset_group",
        ),
        (strided(1), vec![Some(x), Some(w)], "offset"),
        (
            Op::DeformConv {
                conv: ConvAttrs {
                    auto_pad: AutoPad::SameUpper,
                    ..ConvAttrs::default()
                },
                offset_group: 1,
            },
            vec![Some(x), Some(w), Some(off)],
            "auto_pad",
        ),
    ] {
        let m = bad_node(&g, op, &ins, 1);
        assert!(m.contains(what), "{m}");
    }
}

fn tfidf(counts: Vec<usize>, indexes: Vec<usize>, pool: Vec<i64>, weights: Vec<f32>) -> Op {
    Op::TfIdfVectorizer(TfIdfAttrs {
        mode: TfIdfMode::TfIdf,
        min_gram_length: 1,
        max_gram_length: 2,
        max_skip_count: 1,
        ngram_counts: counts,
        ngram_indexes: indexes,
        pool,
        weights: Tensor::from_f32(&[weights.len()], weights)
            .unwrap()
            .into_arc(),
    })
}

#[test]
fn image_decoder_tfidf_and_mel_types() {
    let mut g = Graph::new("m");
    let bytes = input(&mut g, "bytes", DType::U8, "n");
    let rgb = node(
        &mut g,
        "rgb",
        OpKind::ImageDecoder.template(),
        &[Some(bytes)],
    );
    let gray = node(
        &mut g,
        "gray",
        Op::ImageDecoder {
            pixel_format: PixelFormat::Grayscale,
        },
        &[Some(bytes)],
    );
    let x = input(&mut g, "x", DType::I32, "B,6");
    let x1 = input(&mut g, "x1", DType::I64, "6");
    let op = tfidf(vec![0, 2], vec![0, 3, 1, 2], vec![5, 6, 5, 6, 6, 5], vec![]);
    let t2 = node(&mut g, "t2", op.clone(), &[Some(x)]);
    let t1 = node(&mut g, "t1", op, &[Some(x1)]);
    let k = |g: &mut Graph, n: &str, v: i64| {
        g.add_const(n, Tensor::from_i32(&[], vec![v as i32]).unwrap())
    };
    let (mels, dft, rate) = (
        k(&mut g, "mels", 8),
        k(&mut g, "dft", 16),
        k(&mut g, "rate", 8000),
    );
    let lo = g.add_const("lo", Tensor::scalar_f32(0.0));
    let hi = g.add_const("hi", Tensor::scalar_f32(4000.0));
    let mel_ins = [Some(mels), Some(dft), Some(rate), Some(lo), Some(hi)];
    let mel = node(
        &mut g,
        "mel",
        Op::MelWeightMatrix { dtype: DType::F64 },
        &mel_ins,
    );
    let n = input(&mut g, "n", DType::I64, "");
    let mel_sym = node(
        &mut g,
        "mel_sym",
        OpKind::MelWeightMatrix.template(),
        &[Some(n), Some(n), Some(rate), Some(lo), Some(hi)],
    );
    run(&mut g);
    let t = ty(&g, rgb);
    assert!(t.starts_with("u8[") && t.ends_with(",3]"), "{t}");
    assert!(ty(&g, gray).ends_with(",1]"));
    assert_eq!(ty(&g, t2), "f32[B,4]");
    assert_eq!(ty(&g, t1), "f32[4]");
    assert_eq!(ty(&g, mel), "f64[9,8]");
    let t = ty(&g, mel_sym);
    assert!(t.starts_with("f32[") && t.matches(',').count() == 1, "{t}");
}

#[test]
fn image_decoder_tfidf_and_mel_reject_bad_inputs() {
    let mut g = Graph::new("m");
    let f = input(&mut g, "f", DType::F32, "n");
    let b2 = input(&mut g, "b2", DType::U8, "2,n");
    let x3 = input(&mut g, "x3", DType::I64, "1,2,3");
    let x = input(&mut g, "x", DType::I64, "3");
    let i = ints(&mut g, "i", &[8]);
    let fl = g.add_const("fl", Tensor::scalar_f32(1.0));
    let neg = g.add_const("neg", Tensor::scalar_i64(-4));
    let good = tfidf(vec![0, 2], vec![0, 3, 1, 2], vec![5, 6, 5, 6, 6, 5], vec![]);
    let cases: Vec<(Op, Vec<Option<ValueRef>>, &str)> = vec![
        (OpKind::ImageDecoder.template(), vec![Some(f)], "u8"),
        (OpKind::ImageDecoder.template(), vec![Some(b2)], "rank 1"),
        (good.clone(), vec![Some(f)], "i32 or i64"),
        (good.clone(), vec![Some(x3)], "[C] or [B, C]"),
        // Three unigrams and one bigram take 5 pool items, not 6.
        (
            tfidf(vec![0, 3], vec![0, 1, 2, 3], vec![5, 6, 5, 6, 6, 5], vec![]),
            vec![Some(x)],
            "multiple of 2",
        ),
        (
            tfidf(vec![0, 2], vec![0, 1], vec![5, 6, 5, 6, 6, 5], vec![]),
            vec![Some(x)],
            "ngram_indexes",
        ),
        (
            tfidf(
                vec![0, 2],
                vec![0, 3, 1, 2],
                vec![5, 6, 5, 6, 6, 5],
                vec![1.0],
            ),
            vec![Some(x)],
            "weights",
        ),
        (
            tfidf(vec![1, 2], vec![0, 3, 1, 2], vec![5, 6, 5, 6, 6, 5], vec![]),
            vec![Some(x)],
            "start with 0",
        ),
        (
            OpKind::MelWeightMatrix.template(),
            vec![Some(fl), Some(i), Some(i), Some(fl), Some(fl)],
            "i32 or i64",
        ),
        (
            OpKind::MelWeightMatrix.template(),
            vec![Some(i), Some(i), Some(i), Some(i), Some(fl)],
            "a float type",
        ),
        (
            OpKind::MelWeightMatrix.template(),
            vec![Some(neg), Some(i), Some(i), Some(fl), Some(fl)],
            "positive",
        ),
        (
            Op::MelWeightMatrix { dtype: DType::Bool },
            vec![Some(i), Some(i), Some(i), Some(fl), Some(fl)],
            "numeric",
        ),
    ];
    for (op, ins, want) in cases {
        let mut h = g.clone();
        node(&mut h, "bad", op, &ins);
        let e = infer_types(&mut h).unwrap_err().to_string();
        assert!(e.contains("bad") && e.contains(want), "{e} (wanted {want})");
    }
}
