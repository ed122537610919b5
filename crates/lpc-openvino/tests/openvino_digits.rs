//! The NNCF-quantized digits IRs: import structure, and lpc-ref's run against OpenVINO's own
//! CPU inference of the same IR (predictions committed under tests/data/openvino/).

use lpc_ir::{BinaryOp, DType, Dim, Graph, Op, Tensor};
use lpc_openvino::import_openvino;
use std::path::{Path, PathBuf};

/// The checks every imported graph must pass: the verifier, type inference agreeing with the
/// types read from the IR ports, and `parse(print(g)) == g` through the `.lir` text format.
fn checked(mut g: Graph, what: &str) -> Graph {
    lpc_ir::verify(&g).unwrap_or_else(|e| panic!("{what}: {e}"));
    lpc_ir::infer_types(&mut g).unwrap_or_else(|e| panic!("{what}: {e}"));
    let (text, weights) = lpc_ir::text::print_with_weights(&g);
    let back = lpc_ir::text::parse_with_weights(&text, &weights)
        .unwrap_or_else(|e| panic!("{what}: re-parse: {e}"));
    assert!(back == g, "{what}: parse(print(g)) != g");
    g
}
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn peers(stem: &str) -> PathBuf {
    root()
        .join("../shared/data/digits/quantized-by-peers")
        .join(format!("{stem}.xml"))
}

fn read_npy_f32(p: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).expect("npy header");
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    (shape, npy.into_vec::<f32>().expect("f32 data"))
}

fn read_npy_i64(p: &Path) -> Vec<i64> {
    let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    npyz::NpyFile::new(&bytes[..])
        .expect("npy header")
        .into_vec::<i64>()
        .expect("i64 data")
}

fn count(g: &Graph, f: impl Fn(&Op) -> bool) -> usize {
    g.node_ids()
        .into_iter()
        .filter(|&n| f(&g.node(n).op))
        .count()
}

/// Every conv/matmul weight operand is a DequantizeLinear of an i8 constant.
fn weights_are_dequantized(g: &Graph) -> usize {
    let mut n = 0;
    for id in g.node_ids() {
        if matches!(g.node(id).op, Op::Conv(_) | Op::MatMul) {
            let w = g.node_input(id, 1).expect("weights connected");
            let wn = g.node(w.node);
            assert!(
                matches!(wn.op, Op::DequantizeLinear { .. }),
                "{}: weights come from {}",
                g.node(id).name,
                wn.op.name()
            );
            let q = g.node_input(w.node, 0).expect("q");
            assert_eq!(g.const_value(q).expect("constant q").dtype(), DType::I8);
            n += 1;
        }
    }
    n
}

#[test]
fn cnn_imports_with_dequantized_weights() {
    let g = checked(
        import_openvino(&peers("digits_cnn.nncf-int8")).expect("import"),
        "cnn",
    );
    assert_eq!(g.inputs().len(), 1);
    let ty = g.value_type(lpc_ir::ValueRef::first(g.inputs()[0]));
    assert_eq!(ty.dtype, Some(DType::F32));
    let shape = ty.shape.clone().expect("input shape");
    assert_eq!(
        shape.0,
        vec![
            Dim::Sym("N".into()),
            Dim::Known(1),
            Dim::Known(16),
            Dim::Known(16)
        ]
    );
    assert_eq!(g.outputs().len(), 1);
    // The IR's "-1" batch dims are left to inference (a Reshape to [-1, 256] makes a new symbol).
    let out = g
        .value_type(g.outputs()[0])
        .shape
        .clone()
        .expect("inferred output shape");
    assert!(
        matches!(out.0.as_slice(), [Dim::Sym(_), Dim::Known(10)]),
        "output shape {out}"
    );
    assert_eq!(
        count(&g, |o| matches!(o, Op::FakeQuantize { levels: 256 })),
        3
    );
    assert_eq!(
        count(&g, |o| matches!(o, Op::Unary(lpc_ir::UnaryOp::Cast { .. }))),
        0
    );
    assert_eq!(count(&g, |o| matches!(o, Op::MaxPool { .. })), 2);
    assert_eq!(weights_are_dequantized(&g), 3);
}

#[test]
fn mbv_imports_with_grouped_conv() {
    let g = checked(
        import_openvino(&peers("digits_mbv.nncf-int8")).expect("import"),
        "mbv",
    );
    assert_eq!(
        count(&g, |o| matches!(o, Op::FakeQuantize { levels: 256 })),
        5
    );
    assert_eq!(count(&g, |o| matches!(o, Op::Conv(a) if a.group == 16)), 1);
    assert_eq!(
        count(&g, |o| matches!(o, Op::Reshape { .. })),
        1,
        "only the flatten before the classifier"
    );
    assert_eq!(
        count(&g, |o| matches!(o, Op::Binary(BinaryOp::Mul))),
        2,
        "the two HardSwish products"
    );
    assert_eq!(weights_are_dequantized(&g), 4);
    // The depthwise weights became [16, 1, 3, 3] with per-output-channel scales on axis 0.
    for id in g.node_ids() {
        if let Op::Conv(a) = &g.node(id).op {
            if a.group == 16 {
                let dq = g.node_input(id, 1).expect("w").node;
                let q = g
                    .const_value(g.node_input(dq, 0).expect("q"))
                    .expect("const");
                let s = g
                    .const_value(g.node_input(dq, 1).expect("s"))
                    .expect("const");
                assert_eq!(q.shape(), &[16, 1, 3, 3]);
                assert_eq!(s.shape(), &[16]);
                assert_eq!(
                    g.node(dq).op,
                    Op::DequantizeLinear {
                        q: lpc_ir::QuantAxis {
                            axis: 0,
                            block_size: 0
                        }
                    }
                );
            }
        }
    }
}

fn agreement(stem: &str) {
    let g = checked(import_openvino(&peers(stem)).expect("import"), stem);
    let (shape, x) = read_npy_f32(&root().join("../shared/data/digits/test_x.npy"));
    let input = Tensor::from_f32(&shape, x).expect("test_x");
    let out = lpc_ref::run(&g, &[input]).expect("lpc-ref run");
    let logits = out[0].as_f32().expect("f32 logits");
    let ov_top1 = read_npy_i64(&root().join(format!("tests/data/openvino/{stem}.top1.npy")));
    let (_, ov_logits) =
        read_npy_f32(&root().join(format!("tests/data/openvino/{stem}.logits.npy")));
    assert_eq!(out[0].shape(), &[500, 10]);
    let mut agree = 0;
    let mut max_diff = 0f32;
    for i in 0..500 {
        let row = &logits[i * 10..i * 10 + 10];
        let top = (0..10).fold(0, |b, k| if row[k] > row[b] { k } else { b });
        agree += (top as i64 == ov_top1[i]) as usize;
        for k in 0..10 {
            max_diff = max_diff.max((row[k] - ov_logits[i * 10 + k]).abs());
        }
    }
    let pct = agree as f64 / 5.0;
    eprintln!(
        "{stem}: top-1 agreement with OpenVINO {pct:.1}% ({agree}/500), max |Δlogit| {max_diff:.4}"
    );
    assert!(agree >= 499, "{stem}: top-1 agreement {pct:.1}% < 99.8%");
}

#[test]
fn cnn_agrees_with_openvino() {
    agreement("digits_cnn.nncf-int8");
}

#[test]
fn mbv_agrees_with_openvino() {
    agreement("digits_mbv.nncf-int8");
}

#[test]
fn ir_v10_reads_like_v11() {
    // v10 files differ in the version number and carry no tensor `names` on ports.
    let xml = std::fs::read_to_string(peers("digits_mbv.nncf-int8")).expect("xml");
    let bin = std::fs::read(peers("digits_mbv.nncf-int8").with_extension("bin")).expect("bin");
    let v10 = xml
        .replacen("version=\"11\"", "version=\"10\"", 1)
        .replace(" names=\"input\"", "")
        .replace(" names=\"logits\"", "");
    assert_ne!(v10, xml);
    let a = checked(
        lpc_openvino::import_openvino_parts(&xml, Some(&bin)).expect("v11"),
        "v11",
    );
    let b = checked(
        lpc_openvino::import_openvino_parts(&v10, Some(&bin)).expect("v10"),
        "v10",
    );
    let (shape, x) = read_npy_f32(&root().join("../shared/data/digits/test_x.npy"));
    let input = Tensor::from_f32(&[20, shape[1], shape[2], shape[3]], x[..20 * 256].to_vec())
        .expect("20 images");
    let ya = lpc_ref::run(&a, std::slice::from_ref(&input)).expect("run v11");
    let yb = lpc_ref::run(&b, &[input]).expect("run v10");
    assert!(ya[0].same_content(&yb[0]));
    assert_eq!(a.value_name(a.outputs()[0]), "logits");
}
