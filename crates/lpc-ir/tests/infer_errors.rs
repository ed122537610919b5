//! Inference rejects inputs an op cannot take, with errors naming the node and the problem.

use lpc_ir::*;

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

/// Runs inference, expects an error whose message names `node` and contains every `parts`.
fn expect_err(g: &mut Graph, node: &str, parts: &[&str]) {
    let e = match infer_types(g) {
        Ok(()) => panic!("inference accepted a graph with a bad '{node}'"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains(&format!("'{node}'")),
        "error does not name node '{node}': {e}"
    );
    for p in parts {
        assert!(e.contains(p), "error lacks '{p}': {e}");
    }
}

fn conv_graph(x_dtype: DType, x: &str, w_dims: &[usize], group: usize) -> Graph {
    let mut g = Graph::new("conv");
    let xv = input(&mut g, "x", x_dtype, x);
    let w = zeros(&mut g, "w", x_dtype, w_dims);
    node(
        &mut g,
        "the_conv",
        Op::Conv(ConvAttrs {
            group,
            ..ConvAttrs::default()
        }),
        &[Some(xv), Some(w)],
    );
    g
}

#[test]
fn conv_on_i64_is_rejected() {
    expect_err(
        &mut conv_graph(DType::I64, "1,3,8,8", &[4, 3, 3, 3], 1),
        "the_conv",
        &["conv", "dtype i64", "float"],
    );
}

#[test]
fn conv_rank_errors() {
    expect_err(
        &mut conv_graph(DType::F32, "1,3", &[4, 3, 3, 3], 1),
        "the_conv",
        &["rank >= 3"],
    );
    expect_err(
        &mut conv_graph(DType::F32, "1,3,8,8", &[4, 3, 3], 1),
        "the_conv",
        &["weights rank 3", "input rank 4"],
    );
}

#[test]
fn conv_channel_mismatch() {
    expect_err(
        &mut conv_graph(DType::F32, "N,3,8,8", &[4, 2, 3, 3], 1),
        "the_conv",
        &["3 channels", "2 x group 1"],
    );
    expect_err(
        &mut conv_graph(DType::F32, "N,4,8,8", &[8, 2, 3, 3], 4),
        "the_conv",
        &["4 channels", "2 x group 4 = 8"],
    );
    expect_err(
        &mut conv_graph(DType::F32, "N,4,8,8", &[5, 2, 3, 3], 2),
        "the_conv",
        &["5 output channels", "group 2"],
    );
}

#[test]
fn conv_kernel_larger_than_input() {
    expect_err(
        &mut conv_graph(DType::F32, "N,3,2,8", &[4, 3, 3, 3], 1),
        "the_conv",
        &["kernel size 3", "input size 2"],
    );
}

#[test]
fn conv_bias_length() {
    let mut g = Graph::new("bias");
    let x = input(&mut g, "x", DType::F32, "1,3,8,8");
    let w = zeros(&mut g, "w", DType::F32, &[4, 3, 3, 3]);
    let b = zeros(&mut g, "b", DType::F32, &[5]);
    node(
        &mut g,
        "cb",
        Op::Conv(ConvAttrs::default()),
        &[Some(x), Some(w), Some(b)],
    );
    expect_err(&mut g, "cb", &["bias has 5 values for 4 output channels"]);
}

#[test]
fn quantize_zero_point_dtype_must_match_output() {
    let mut g = Graph::new("q");
    let x = input(&mut g, "x", DType::F32, "N,3");
    let s = g.add_const("s", Tensor::scalar_f32(0.1));
    let z = g.add_const("z", Tensor::zeros(DType::I8, &[]));
    let op = Op::QuantizeLinear {
        q: QuantAxis {
            axis: 1,
            block_size: 0,
        },
        dtype: DType::U8,
    };
    node(&mut g, "quant", op, &[Some(x), Some(s), Some(z)]);
    expect_err(&mut g, "quant", &["zero point dtype i8", "output dtype u8"]);
}

#[test]
fn quantize_per_axis_scale_length() {
    let mut g = Graph::new("q");
    let x = input(&mut g, "x", DType::F32, "N,3,4");
    let s = zeros(&mut g, "s", DType::F32, &[4]);
    let op = Op::QuantizeLinear {
        q: QuantAxis {
            axis: 1,
            block_size: 0,
        },
        dtype: DType::I8,
    };
    node(&mut g, "quant", op, &[Some(x), Some(s), None]);
    expect_err(&mut g, "quant", &["scale has 4 values", "axis 1"]);
}

#[test]
fn dequantize_wrong_input_dtype() {
    let mut g = Graph::new("dq");
    let x = input(&mut g, "x", DType::F32, "3");
    let s = g.add_const("s", Tensor::scalar_f32(0.1));
    node(
        &mut g,
        "deq",
        Op::DequantizeLinear {
            q: QuantAxis {
                axis: 1,
                block_size: 0,
            },
        },
        &[Some(x), Some(s), None],
    );
    expect_err(&mut g, "deq", &["dtype f32", "u8, i8 or i32"]);
}

#[test]
fn non_broadcastable_add() {
    let mut g = Graph::new("add");
    let a = input(&mut g, "a", DType::F32, "N,3");
    let b = input(&mut g, "b", DType::F32, "4");
    node(
        &mut g,
        "plus",
        Op::Binary(BinaryOp::Add),
        &[Some(a), Some(b)],
    );
    expect_err(&mut g, "plus", &["[N,3] and [4] do not broadcast"]);
}

#[test]
fn mixed_dtype_add() {
    let mut g = Graph::new("add");
    let a = input(&mut g, "a", DType::F32, "3");
    let b = input(&mut g, "b", DType::I32, "3");
    node(
        &mut g,
        "plus",
        Op::Binary(BinaryOp::Add),
        &[Some(a), Some(b)],
    );
    expect_err(&mut g, "plus", &["f32", "i32"]);
}

fn fq_graph(lo: Tensor, levels: u32) -> Graph {
    let mut g = Graph::new("fq");
    let x = input(&mut g, "x", DType::F32, "N,3,8,8");
    let lo = g.add_const("lo", lo);
    let hi = g.add_const("hi", Tensor::scalar_f32(6.0));
    node(
        &mut g,
        "fakeq",
        Op::FakeQuantize { levels },
        &[Some(x), Some(lo), Some(hi), Some(lo), Some(hi)],
    );
    g
}

#[test]
fn fake_quantize_bounds_must_broadcast() {
    let lo = Tensor::zeros(DType::F32, &[1, 4, 1, 1]);
    expect_err(
        &mut fq_graph(lo, 256),
        "fakeq",
        &["input_low shape [1,4,1,1]", "does not broadcast"],
    );
}

#[test]
fn fake_quantize_nan_bounds() {
    let lo = Tensor::from_f32(&[3, 1, 1], vec![0.0, f32::NAN, 0.0]).unwrap();
    expect_err(&mut fq_graph(lo, 256), "fakeq", &["input_low contains NaN"]);
}

#[test]
fn fake_quantize_levels() {
    expect_err(
        &mut fq_graph(Tensor::scalar_f32(0.0), 1),
        "fakeq",
        &["levels 1"],
    );
    assert!(infer_types(&mut fq_graph(Tensor::scalar_f32(0.0), 2)).is_ok());
}

#[test]
fn matmul_and_gemm_inner_dims() {
    let mut g = Graph::new("mm");
    let a = input(&mut g, "a", DType::F32, "N,3,4");
    let b = zeros(&mut g, "b", DType::F32, &[5, 6]);
    node(&mut g, "mm", Op::MatMul, &[Some(a), Some(b)]);
    expect_err(&mut g, "mm", &["inner dimensions differ", "4 vs 5"]);

    let mut g = Graph::new("gemm");
    let a = input(&mut g, "a", DType::F32, "N,4");
    let b = zeros(&mut g, "b", DType::F32, &[5, 4]);
    node(
        &mut g,
        "fc",
        Op::Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: false,
        },
        &[Some(a), Some(b), None],
    );
    expect_err(&mut g, "fc", &["inner dimensions differ", "4 vs 5"]);

    let mut g = Graph::new("batch");
    let a = input(&mut g, "a", DType::F32, "2,3,4");
    let b = input(&mut g, "b", DType::F32, "3,4,5");
    node(&mut g, "bmm", Op::MatMul, &[Some(a), Some(b)]);
    expect_err(&mut g, "bmm", &["batch dimensions"]);
}

#[test]
fn reshape_wrong_element_count() {
    let mut g = Graph::new("r");
    let x = input(&mut g, "x", DType::F32, "2,3,4");
    let s = ints(&mut g, "s", &[5, -1]);
    node(
        &mut g,
        "resh",
        Op::Reshape { allowzero: false },
        &[Some(x), Some(s)],
    );
    expect_err(&mut g, "resh", &["5 does not divide 24"]);

    let mut g = Graph::new("r");
    let x = input(&mut g, "x", DType::F32, "N,3,4");
    let s = ints(&mut g, "s", &[0, 10]);
    node(
        &mut g,
        "resh",
        Op::Reshape { allowzero: false },
        &[Some(x), Some(s)],
    );
    expect_err(&mut g, "resh", &["cannot reshape"]);
}

#[test]
fn shape_op_argument_errors() {
    let mut g = Graph::new("sq");
    let x = input(&mut g, "x", DType::F32, "N,3");
    let a = ints(&mut g, "a", &[1]);
    node(&mut g, "squeeze", Op::Squeeze, &[Some(x), Some(a)]);
    expect_err(&mut g, "squeeze", &["cannot squeeze axis 1 of size 3"]);

    let mut g = Graph::new("tr");
    let x = input(&mut g, "x", DType::F32, "N,3");
    node(
        &mut g,
        "transp",
        Op::Transpose { perm: vec![0, 0] },
        &[Some(x)],
    );
    expect_err(&mut g, "transp", &["not a permutation"]);

    let mut g = Graph::new("cat");
    let a = input(&mut g, "a", DType::F32, "N,3");
    let b = input(&mut g, "b", DType::F32, "N,4");
    node(&mut g, "cat", Op::Concat { axis: 0 }, &[Some(a), Some(b)]);
    expect_err(&mut g, "cat", &["differ on axis 1"]);

    let mut g = Graph::new("split");
    let x = input(&mut g, "x", DType::F32, "N,10");
    let s = ints(&mut g, "s", &[3, 3]);
    node(
        &mut g,
        "split",
        Op::Split {
            axis: 1,
            num_outputs: 2,
        },
        &[Some(x), Some(s)],
    );
    expect_err(&mut g, "split", &["sums to 6", "size 10"]);

    let mut g = Graph::new("axis");
    let x = input(&mut g, "x", DType::F32, "N,10");
    node(
        &mut g,
        "smax",
        Op::Softmax {
            axis: 2,
            coerce_2d: false,
        },
        &[Some(x)],
    );
    expect_err(&mut g, "smax", &["axis 2 is out of range for rank 2"]);

    let mut g = Graph::new("slice");
    let x = input(&mut g, "x", DType::F32, "N,10");
    let st = ints(&mut g, "st", &[0]);
    let en = ints(&mut g, "en", &[4]);
    let ax = ints(&mut g, "ax", &[1]);
    let sp = ints(&mut g, "sp", &[0]);
    node(
        &mut g,
        "slc",
        Op::Slice,
        &[Some(x), Some(st), Some(en), Some(ax), Some(sp)],
    );
    expect_err(&mut g, "slc", &["step on axis 1 is 0"]);

    let mut g = Graph::new("pad");
    let x = input(&mut g, "x", DType::F32, "N,2");
    let p = ints(&mut g, "p", &[0, -2, 0, -1]);
    node(
        &mut g,
        "pad",
        Op::Pad {
            mode: PadMode::Constant,
        },
        &[Some(x), Some(p), None, None],
    );
    expect_err(&mut g, "pad", &["negative"]);

    let mut g = Graph::new("gather");
    let x = input(&mut g, "x", DType::F32, "5,2");
    let i = ints(&mut g, "i", &[5]);
    node(&mut g, "gath", Op::Gather { axis: 0 }, &[Some(x), Some(i)]);
    expect_err(&mut g, "gath", &["index 5 is out of range"]);
}

#[test]
fn pool_and_norm_errors() {
    let mut g = Graph::new("pool");
    let x = input(&mut g, "x", DType::F32, "N,3,8,8");
    let pool = PoolAttrs {
        kernel: vec![2],
        strides: vec![],
        pads: vec![],
        dilations: vec![],
        ceil_mode: false,
        auto_pad: AutoPad::NotSet,
    };
    node(
        &mut g,
        "mp",
        Op::MaxPool {
            pool,
            storage_order: 0,
        },
        &[Some(x)],
    );
    expect_err(&mut g, "mp", &["kernel [2] has 1 axes"]);

    let mut g = Graph::new("bn");
    let x = input(&mut g, "x", DType::F32, "N,3,8,8");
    let p = zeros(&mut g, "p", DType::F32, &[4]);
    let bn = Op::BatchNorm {
        epsilon: 1e-5,
        training: false,
        momentum: 0.9,
    };
    node(
        &mut g,
        "bn",
        bn,
        &[Some(x), Some(p), Some(p), Some(p), Some(p)],
    );
    expect_err(&mut g, "bn", &["scale has 4 values for 3 channels"]);

    let mut g = Graph::new("resize");
    let x = input(&mut g, "x", DType::F32, "N,3,8,8");
    let attrs = ResizeAttrs {
        mode: ResizeMode::Linear,
        coord: CoordTransform::HalfPixel,
        nearest: NearestMode::Floor,
        cubic_a: -0.75,
        exclude_outside: false,
        extrapolation: 0.0,
        antialias: false,
        axes: vec![],
        policy: AspectPolicy::Stretch,
    };
    node(
        &mut g,
        "rs",
        Op::Resize(attrs),
        &[Some(x), None, None, None],
    );
    expect_err(&mut g, "rs", &["needs scales or sizes"]);
}

#[test]
fn declared_type_conflicts() {
    let mut g = Graph::new("c");
    let x = input(&mut g, "x", DType::F32, "N,3");
    g.add_node(
        "relu",
        Op::Unary(UnaryOp::Relu),
        &[Some(x)],
        vec![Output {
            name: "r".into(),
            ty: ValueType::new(DType::F32, shape("N,5")),
        }],
    );
    expect_err(
        &mut g,
        "relu",
        &["relu", "'r'", "declared f32[N,5]", "inferred f32[N,3]"],
    );

    let mut g = Graph::new("c");
    let x = input(&mut g, "x", DType::F32, "N,3");
    g.add_node(
        "relu",
        Op::Unary(UnaryOp::Relu),
        &[Some(x)],
        vec![Output {
            name: "r".into(),
            ty: ValueType {
                dtype: Some(DType::F16),
                shape: None,
            },
        }],
    );
    expect_err(&mut g, "relu", &["declared f16[*]", "inferred f32[N,3]"]);

    let mut g = Graph::new("c");
    let x = input(&mut g, "x", DType::F32, "N,3");
    g.add_node(
        "relu",
        Op::Unary(UnaryOp::Relu),
        &[Some(x)],
        vec![Output {
            name: "r".into(),
            ty: ValueType::new(DType::F32, shape("N,3,1")),
        }],
    );
    let e = infer_types(&mut g).unwrap_err();
    assert!(
        matches!(e, InferError::Conflict { ref node, output: 0, .. } if node == "relu"),
        "{e}"
    );
}

#[test]
fn missing_required_input() {
    let mut g = Graph::new("m");
    let x = input(&mut g, "x", DType::F32, "N,3");
    node(&mut g, "plus", Op::Binary(BinaryOp::Add), &[Some(x), None]);
    expect_err(&mut g, "plus", &["missing required input 1"]);
}
