//! The `.lir` text format: every op and attribute round-trips; errors carry line:col; the
//! parser and the weights reader never panic on mutated input.

use lpc_ir::text::{parse, parse_with_weights, print, print_with_weights, Weights};
use lpc_ir::*;
use std::sync::Arc;

/// One example of every `Op` variant (the match below fails to compile when one is added).
fn all_ops() -> Vec<Op> {
    let conv = ConvAttrs { kernel: vec![3, 3], strides: vec![2, 1], pads: vec![1, 0, 1, 2], dilations: vec![1, 2], group: 4, auto_pad: AutoPad::SameLower };
    let pool = PoolAttrs { kernel: vec![2], strides: vec![], pads: vec![], dilations: vec![3], ceil_mode: true, auto_pad: AutoPad::Valid };
    let resize = ResizeAttrs {
        mode: ResizeMode::Cubic,
        coord: CoordTransform::TfCropAndResize,
        nearest: NearestMode::RoundPreferCeil,
        cubic_a: -0.5,
        exclude_outside: true,
        extrapolation: -1.5e-9,
        antialias: true,
        axes: vec![-2, 3],
        policy: AspectPolicy::NotSmaller,
    };
    let ops = vec![
        Op::Input { index: 0 },
        Op::Const(Arc::new(Tensor::scalar_f32(1.0))),
        Op::Unary(UnaryOp::Elu { alpha: 0.1 }),
        Op::Unary(UnaryOp::LeakyRelu { alpha: -0.0 }),
        Op::Unary(UnaryOp::HardSigmoid { alpha: 1.0 / 6.0, beta: 0.5 }),
        Op::Unary(UnaryOp::Gelu { tanh: true }),
        Op::Unary(UnaryOp::Cast { to: DType::F16 }),
        Op::Unary(UnaryOp::Erf),
        Op::Binary(BinaryOp::PRelu),
        Op::Clip,
        Op::Where,
        Op::Conv(conv.clone()),
        Op::ConvTranspose { conv: conv.clone(), output_padding: vec![1, 0], output_shape: vec![] },
        Op::ConvInteger(conv.clone()),
        Op::QLinearConv(ConvAttrs::default()),
        Op::MatMul,
        Op::MatMulInteger,
        Op::QLinearMatMul,
        Op::Gemm { alpha: 1e-7, beta: f32::INFINITY, trans_a: true, trans_b: false },
        Op::MaxPool { pool: pool.clone(), storage_order: 1 },
        Op::AveragePool { pool, count_include_pad: true },
        Op::GlobalAveragePool,
        Op::GlobalMaxPool,
        Op::BatchNorm { epsilon: 1e-5, training: true, momentum: 0.9 },
        Op::LayerNorm { axis: -1, epsilon: 1e-12 },
        Op::Softmax { axis: 1, coerce_2d: true },
        Op::LogSoftmax { axis: -1, coerce_2d: false },
        Op::Reduce { op: ReduceOp::Mean, keepdims: false, noop_with_empty_axes: true },
        Op::Concat { axis: -3 },
        Op::Split { axis: 1, num_outputs: 3 },
        Op::Flatten { axis: 0 },
        Op::Reshape { allowzero: true },
        Op::Squeeze,
        Op::Unsqueeze,
        Op::Transpose { perm: vec![0, 2, 1] },
        Op::Expand,
        Op::Gather { axis: -1 },
        Op::ShapeOf { start: -2, end: Some(-1) },
        Op::ShapeOf { start: 0, end: None },
        Op::Slice,
        Op::Pad { mode: PadMode::Wrap },
        Op::Resize(resize),
        Op::Range,
        Op::ConstantOfShape { value: Arc::new(Tensor::from_bool(&[], vec![true]).unwrap()) },
        Op::QuantizeLinear { q: QuantAxis { axis: 0, block_size: 32 }, dtype: DType::I8 },
        Op::DequantizeLinear { q: QuantAxis { axis: 1, block_size: 0 } },
        Op::DynamicQuantizeLinear,
        Op::FakeQuantize { levels: 255 },
        Op::QConv(conv.clone()),
        Op::QMatMul,
        Op::Requantize,
        Op::QAdd,
        Op::Lut,
    ];
    // Compile-time completeness: every variant appears above.
    for op in &ops {
        match op {
            Op::Input { .. } | Op::Const(_) | Op::Unary(_) | Op::Binary(_) | Op::Clip | Op::Where => {}
            Op::Conv(_) | Op::ConvTranspose { .. } | Op::ConvInteger(_) | Op::QLinearConv(_) => {}
            Op::MatMul | Op::MatMulInteger | Op::QLinearMatMul | Op::Gemm { .. } => {}
            Op::MaxPool { .. } | Op::AveragePool { .. } | Op::GlobalAveragePool | Op::GlobalMaxPool => {}
            Op::BatchNorm { .. } | Op::LayerNorm { .. } | Op::Softmax { .. } | Op::LogSoftmax { .. } => {}
            Op::Reduce { .. } | Op::Concat { .. } | Op::Split { .. } | Op::Flatten { .. } | Op::Reshape { .. } => {}
            Op::Squeeze | Op::Unsqueeze | Op::Transpose { .. } | Op::Expand | Op::Gather { .. } => {}
            Op::ShapeOf { .. } | Op::Slice | Op::Pad { .. } | Op::Resize(_) | Op::Range => {}
            Op::ConstantOfShape { .. } | Op::QuantizeLinear { .. } | Op::DequantizeLinear { .. } => {}
            Op::DynamicQuantizeLinear | Op::FakeQuantize { .. } => {}
            Op::QConv(_) | Op::QMatMul | Op::Requantize | Op::QAdd | Op::Lut => {}
        }
    }
    ops
}

/// A graph holding one node per op (inputs wired to graph inputs; types unknown or odd).
fn graph_of_all_ops() -> Graph {
    let mut g = Graph::new("all ops \"quoted\"");
    let x = g.add_input("x", ValueType { dtype: Some(DType::F32), shape: Some(Shape(vec![Dim::Sym("N".into()), Dim::Known(3), Dim::Sym("weird dim".into())])) });
    let y = g.add_input("gpu_0/y:0", ValueType::unknown());
    let big = g.add_const("big", Tensor::from_f32(&[5, 4], (0..20).map(|i| i as f32 * 0.1).collect()).unwrap());
    let special = g.add_const("special", Tensor::from_f32(&[4], vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0]).unwrap());
    let mut outs = vec![];
    for (k, op) in all_ops().into_iter().enumerate() {
        if matches!(op, Op::Input { .. } | Op::Const(_)) {
            continue;
        }
        let (req, max) = op.arity();
        let n = max.unwrap_or(req + 1).min(req + 1);
        let ins: Vec<Option<ValueRef>> = (0..n).map(|i| match i % 4 {
            0 => Some(x),
            1 if i == n - 1 && n > req => None,
            1 => Some(y),
            2 => Some(big),
            _ => Some(special),
        }).collect();
        let nout = match &op {
            Op::Split { num_outputs, .. } => *num_outputs,
            Op::DynamicQuantizeLinear | Op::BatchNorm { training: true, .. } => 3,
            Op::MaxPool { .. } => 2,
            _ => 1,
        };
        let outputs = (0..nout).map(|o| Output { name: format!("v{k}_{o} odd\\name"), ty: ValueType::unknown() }).collect();
        let id = g.add_node(format!("node {k}"), op, &ins, outputs);
        outs.push(ValueRef::first(id));
    }
    g.set_outputs(outs);
    g
}

#[test]
fn every_op_round_trips() {
    let g = graph_of_all_ops();
    let (text, w) = print_with_weights(&g);
    assert_eq!(w.len(), 1, "one large constant goes to the weights");
    let back = parse_with_weights(&text, &w).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(back == g, "round trip differs:\n{text}\n---\n{}", print(&back));
    assert_eq!(print(&back), print(&g));
    // Weights survive serialisation.
    let w2 = Weights::from_bytes(&w.to_bytes()).unwrap();
    assert!(parse_with_weights(&text, &w2).unwrap() == g);
    // Without weights the digest constant is a clear error.
    let e = parse(&text).unwrap_err();
    assert!(e.msg.contains("weights"), "{e}");
}

#[test]
fn errors_carry_line_and_column() {
    let ok = "graph \"g\" {\n  %x = input() {index=0} : f32[1]\n  %y = relu(%x) : f32[1]\n  return %y\n}\n";
    assert!(parse(ok).is_ok());
    let cases = [
        (ok.replace("relu(%x)", "frob(%x)"), 3, "unknown op 'frob'"),
        (ok.replace("relu(%x)", "relu(%z)"), 3, "undefined value %z"),
        (ok.replace("f32[1]\n  return", "q32[1]\n  return"), 3, "unknown dtype"),
        (ok.replace("relu(%x) :", "relu(%x) {alpha=1.0} :"), 3, "unknown attribute 'alpha'"),
        (ok.replace("%y = relu", "%x = relu"), 3, "defined twice"),
        (ok.replace("\n}\n", "\n"), 4, "missing closing"),
        (ok.replace("{index=0}", "{index=1}"), 2, "input index 1"),
        (ok.replace("relu(%x)", "gemm(%x, %x)"), 3, "missing attribute"),
    ];
    for (text, line, want) in cases {
        let e = parse(&text).unwrap_err();
        assert_eq!(e.line, line, "{e} for\n{text}");
        assert!(e.col >= 1 && e.msg.contains(want), "{e} does not mention '{want}'");
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }
}

#[test]
fn mutated_text_and_weights_never_panic() {
    let g = graph_of_all_ops();
    let (text, w) = print_with_weights(&g);
    let wb = w.to_bytes();
    let mut rng = Rng(42);
    let chars: Vec<char> = text.chars().collect();
    for k in 0..3000 {
        let mut c = chars.clone();
        match k % 3 {
            0 => c.truncate(rng.next() % c.len()),
            1 => {
                let i = rng.next() % c.len();
                c[i] = ['%', '"', '[', ']', '{', '}', '(', ')', ',', '_', '9', 'x', '\n', ':', '@', '-'][rng.next() % 16];
            }
            _ => {
                let i = rng.next() % c.len();
                c.remove(i);
            }
        }
        let s: String = c.into_iter().collect();
        let r = std::panic::catch_unwind(|| parse_with_weights(&s, &w).map(|_| ()));
        assert!(r.is_ok(), "parser panicked on mutation {k}");
        let mut b = wb.clone();
        let i = rng.next() % b.len();
        if k % 2 == 0 {
            b.truncate(i);
        } else {
            b[i] ^= 0xff;
        }
        let r = std::panic::catch_unwind(|| Weights::from_bytes(&b).map(|_| ()));
        assert!(matches!(r, Ok(Err(_))), "weights mutation {k} was accepted or panicked");
    }
}
