//! The verifier accepts well-formed graphs and names the node of each broken invariant.

use lpc_ir::*;

fn f32_input(g: &mut Graph, name: &str, dims: &[usize]) -> ValueRef {
    g.add_input(name, ValueType::new(DType::F32, Shape::known(dims)))
}

fn node(g: &mut Graph, name: &str, op: Op, ins: &[Option<ValueRef>], n_out: usize) -> NodeId {
    let outs = (0..n_out)
        .map(|i| {
            Output::named(if i == 0 {
                name.to_string()
            } else {
                format!("{name}.{i}")
            })
        })
        .collect();
    g.add_node(name, op, ins, outs)
}

/// x -> relu -> add(relu, x) -> output.
fn small() -> (Graph, NodeId, NodeId) {
    let mut g = Graph::new("small");
    let x = f32_input(&mut g, "x", &[2, 3]);
    let r = node(&mut g, "relu", Op::Unary(UnaryOp::Relu), &[Some(x)], 1);
    let a = node(
        &mut g,
        "add",
        Op::Binary(BinaryOp::Add),
        &[Some(ValueRef::first(r)), Some(x)],
        1,
    );
    g.set_outputs(vec![ValueRef::first(a)]);
    (g, r, a)
}

fn expect(g: &Graph, node: &str, part: &str) {
    let e = match verify(g) {
        Ok(()) => panic!("verify accepted a graph with a bad '{node}'"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains(node), "error does not name '{node}': {e}");
    assert!(e.contains(part), "error lacks '{part}': {e}");
}

#[test]
fn well_formed_graphs_pass() {
    let (mut g, _, _) = small();
    assert_eq!(verify(&g), Ok(()));
    infer_types(&mut g).unwrap();
    assert_eq!(verify(&g), Ok(()));
    assert_eq!(g.value_type(g.outputs()[0]).to_string(), "f32[2,3]");
}

#[test]
fn cycle() {
    let (mut g, r, a) = small();
    g.set_node_input(r, 0, Some(ValueRef::first(a)));
    assert!(matches!(verify(&g), Err(VerifyError::Cycle(_))));
}

#[test]
fn edge_reads_missing_output() {
    let (mut g, r, a) = small();
    g.set_node_input(a, 0, Some(ValueRef { node: r, output: 3 }));
    expect(&g, "add", "reads output 3 of 'relu', which has 1 outputs");
    // Inference reports it too instead of panicking.
    let e = infer_types(&mut g).unwrap_err().to_string();
    assert!(e.contains("'add'") && e.contains("reads output 3"), "{e}");
}

#[test]
fn edge_into_missing_slot() {
    let (mut g, _, a) = small();
    g.node_mut(a).num_inputs = 1;
    expect(&g, "add", "feeds input slot 1, but the node has 1 slots");
}

#[test]
fn input_counts() {
    let (mut g, _, a) = small();
    g.set_node_input(a, 1, None);
    expect(&g, "add", "required input 1 is not connected");

    let mut g = Graph::new("g");
    let x = f32_input(&mut g, "x", &[2]);
    node(
        &mut g,
        "relu",
        Op::Unary(UnaryOp::Relu),
        &[Some(x), Some(x)],
        1,
    );
    expect(&g, "relu", "has 2 input slots, the op takes at most 1");

    let mut g = Graph::new("g");
    let x = f32_input(&mut g, "x", &[2]);
    node(&mut g, "add", Op::Binary(BinaryOp::Add), &[Some(x)], 1);
    expect(&g, "add", "needs at least 2");

    let mut g = Graph::new("g");
    let x = f32_input(&mut g, "x", &[2]);
    node(
        &mut g,
        "cat",
        Op::Concat { axis: 0 },
        &[Some(x), None, Some(x)],
        1,
    );
    expect(&g, "cat", "required input 1 is not connected");
}

#[test]
fn output_counts() {
    let pool = PoolAttrs {
        kernel: vec![2],
        strides: vec![],
        pads: vec![],
        dilations: vec![],
        ceil_mode: false,
        auto_pad: AutoPad::NotSet,
    };
    let cases: Vec<(Op, usize, bool)> = vec![
        (
            Op::MaxPool {
                pool: pool.clone(),
                storage_order: 0,
            },
            1,
            true,
        ),
        (
            Op::MaxPool {
                pool: pool.clone(),
                storage_order: 0,
            },
            2,
            true,
        ),
        (
            Op::MaxPool {
                pool,
                storage_order: 0,
            },
            3,
            false,
        ),
        (
            Op::Split {
                axis: 2,
                num_outputs: 2,
            },
            2,
            true,
        ),
        (
            Op::Split {
                axis: 2,
                num_outputs: 2,
            },
            3,
            false,
        ),
        (Op::DynamicQuantizeLinear, 3, true),
        (Op::DynamicQuantizeLinear, 1, false),
        (Op::Unary(UnaryOp::Relu), 2, false),
        (Op::Unary(UnaryOp::Relu), 0, false),
    ];
    for (op, n, ok) in cases {
        let mut g = Graph::new("g");
        let x = f32_input(&mut g, "x", &[1, 2, 4]);
        let name = op.name();
        node(&mut g, "n", op, &[Some(x)], n);
        match (verify(&g), ok) {
            (Ok(()), true) => {}
            (Err(e), false) => assert!(e.to_string().contains("outputs, the op allows"), "{e}"),
            (r, _) => panic!("{name} with {n} outputs: {r:?}"),
        }
    }
    for (n, ok) in [(1, true), (2, false), (3, true)] {
        let mut g = Graph::new("g");
        let x = f32_input(&mut g, "x", &[1, 2, 4]);
        let p = g.add_const("p", Tensor::zeros(DType::F32, &[2]));
        let bn = Op::BatchNorm {
            epsilon: 1e-5,
            training: n == 3,
            momentum: 0.9,
        };
        node(
            &mut g,
            "bn",
            bn,
            &[Some(x), Some(p), Some(p), Some(p), Some(p)],
            n,
        );
        assert_eq!(verify(&g).is_ok(), ok, "batch_norm with {n} outputs");
    }
    for (n, ok) in [(1, true), (3, true), (4, false)] {
        let mut g = Graph::new("g");
        let x = f32_input(&mut g, "x", &[1, 2, 4]);
        let s = g.add_const("s", Tensor::zeros(DType::F32, &[4]));
        node(
            &mut g,
            "ln",
            Op::LayerNorm {
                axis: -1,
                epsilon: 1e-5,
            },
            &[Some(x), Some(s), None],
            n,
        );
        assert_eq!(verify(&g).is_ok(), ok, "layer_norm with {n} outputs");
    }
}

#[test]
fn value_names() {
    let (mut g, r, _) = small();
    g.node_mut(r).outputs[0].name = "x".into();
    expect(&g, "relu", "output name 'x' is also used by node 'x'");

    let (mut g, r, _) = small();
    g.node_mut(r).outputs[0].name = String::new();
    expect(&g, "relu", "empty name");
}

#[test]
fn graph_inputs_and_outputs() {
    let (mut g, _, _) = small();
    let x = g.inputs()[0];
    g.node_mut(x).op = Op::Input { index: 1 };
    expect(&g, "'x'", "is input 1, but graph input 1 is another node");

    let (mut g, _, a) = small();
    g.set_outputs(vec![ValueRef { node: a, output: 1 }]);
    expect(
        &g,
        "graph 'small'",
        "graph output 0 is output 1 of node 'add', which has 1 outputs",
    );

    let (mut g, r, _) = small();
    g.set_outputs(vec![ValueRef::first(r)]);
    let dead = g.remove_dead();
    assert_eq!(dead, 1);
    assert_eq!(verify(&g), Ok(()));
}

#[test]
fn constant_declared_type_must_match_tensor() {
    let mut g = Graph::new("c");
    let x = f32_input(&mut g, "x", &[3]);
    let c = g.add_const("c", Tensor::zeros(DType::F32, &[3]));
    let a = node(
        &mut g,
        "add",
        Op::Binary(BinaryOp::Add),
        &[Some(x), Some(c)],
        1,
    );
    g.set_outputs(vec![ValueRef::first(a)]);
    assert_eq!(verify(&g), Ok(()));
    g.output_mut(c).ty = ValueType::new(DType::F32, Shape::known(&[4]));
    expect(&g, "'c'", "declared f32[4] but its tensor is f32[3]");
    g.output_mut(c).ty = ValueType::new(DType::I8, Shape::known(&[3]));
    expect(&g, "'c'", "declared i8[3] but its tensor is f32[3]");
}

#[test]
fn types_must_agree_with_inference() {
    let (mut g, r, _) = small();
    g.node_mut(r).outputs[0].ty = ValueType::new(DType::F32, Shape::known(&[3, 2]));
    let e = verify(&g).unwrap_err();
    assert!(
        matches!(e, VerifyError::Types(InferError::Conflict { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("'relu'"), "{e}");

    // An op whose inputs it cannot take is reported through inference.
    let mut g = Graph::new("g");
    let x = g.add_input("x", ValueType::new(DType::I64, Shape::known(&[1, 1, 4, 4])));
    let w = g.add_const("w", Tensor::zeros(DType::I64, &[1, 1, 3, 3]));
    node(
        &mut g,
        "conv",
        Op::Conv(ConvAttrs::default()),
        &[Some(x), Some(w)],
        1,
    );
    expect(&g, "'conv'", "dtype i64");

    // A verified graph is not modified by verification.
    let (g, _, _) = small();
    let before = g.clone();
    verify(&g).unwrap();
    assert!(g == before);
}
