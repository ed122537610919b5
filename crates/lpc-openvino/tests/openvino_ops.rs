//! Small operator-coverage IRs built with OpenVINO's opset API (tools/openvino_reference.py):
//! import each and compare lpc-ref's outputs with OpenVINO's FP32 CPU outputs.

use lpc_ir::{Graph, Op, Tensor};
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
fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/openvino/ops")
}

fn npy(p: &Path) -> Tensor {
    let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let f = npyz::NpyFile::new(&bytes[..]).expect("npy header");
    let shape: Vec<usize> = f.shape().iter().map(|&d| d as usize).collect();
    Tensor::from_f32(&shape, f.into_vec::<f32>().expect("f32")).expect("tensor")
}

fn import(case: &str) -> Graph {
    checked(
        import_openvino(&dir().join(format!("{case}.xml")))
            .unwrap_or_else(|e| panic!("{case}: {e}")),
        case,
    )
}

/// Runs a case and checks every output against OpenVINO within `tol` (absolute, plus the same
/// relative to the output's magnitude).
fn check(case: &str, tol: f32) {
    let g = import(case);
    let x = npy(&dir().join(format!("{case}.input.npy")));
    let outs = lpc_ref::run(&g, &[x]).unwrap_or_else(|e| panic!("{case}: {e}"));
    for (k, got) in outs.iter().enumerate() {
        let want = npy(&dir().join(format!("{case}.output_{k}.npy")));
        assert_eq!(got.shape(), want.shape(), "{case} output {k} shape");
        let got = got.to_f32_vec();
        let want = want.as_f32().expect("f32");
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        let diff = got
            .iter()
            .zip(want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        eprintln!("{case} output {k}: max |lpc - OpenVINO| = {diff:.2e}");
        assert!(
            diff <= tol * scale,
            "{case} output {k}: max difference {diff} > {tol} × {scale}"
        );
    }
}

fn count(g: &Graph, f: impl Fn(&Op) -> bool) -> usize {
    g.node_ids()
        .into_iter()
        .filter(|&n| f(&g.node(n).op))
        .count()
}

#[test]
fn grouped_conv_with_u8_zero_points_imports_as_dequantize() {
    let g = import("group_conv_u8");
    // Both weight chains (grouped u8 with zero point, 1x1 i8 without) became DequantizeLinear
    // of an integer constant in lpc's Conv layout; no Reshape, Cast, Sub or Mul is left.
    assert_eq!(count(&g, |o| matches!(o, Op::DequantizeLinear { .. })), 2);
    assert_eq!(
        count(&g, |o| matches!(
            o,
            Op::Reshape { .. } | Op::Unary(lpc_ir::UnaryOp::Cast { .. }) | Op::Binary(_)
        )),
        0
    );
    for id in g.node_ids() {
        if let Op::Conv(a) = &g.node(id).op {
            let dq = g.node_input(id, 1).expect("weights").node;
            let q = g
                .const_value(g.node_input(dq, 0).expect("q"))
                .expect("const q");
            if a.group == 2 {
                assert_eq!(q.shape(), &[6, 2, 3, 3]);
                let zp = g
                    .const_value(g.node_input(dq, 2).expect("zero point"))
                    .expect("const zp");
                assert_eq!((zp.dtype(), zp.shape()), (lpc_ir::DType::U8, &[6][..]));
            }
        }
    }
}

#[test]
fn matmul_transpose_b_is_pushed_into_the_weights() {
    let g = import("matmul_transposes");
    assert_eq!(
        count(
            &g,
            |o| matches!(o, Op::DequantizeLinear { q } if q.axis == 1)
        ),
        1
    );
    assert_eq!(
        count(&g, |o| matches!(o, Op::Transpose { .. })),
        1,
        "only transpose_a's"
    );
}

#[test]
fn group_conv_u8() {
    check("group_conv_u8", 1e-4);
}

#[test]
fn group_conv_same_fp16_weights() {
    check("group_conv_same", 1e-5);
}

#[test]
fn matmul_transposes() {
    check("matmul_transposes", 1e-5);
}

#[test]
fn pools() {
    check("pools", 1e-6);
}

#[test]
fn interpolate() {
    check("interpolate", 1e-5);
}

#[test]
fn shape_ops() {
    check("shape_ops", 1e-5);
}

#[test]
fn deconv() {
    check("deconv", 1e-5);
}

#[test]
fn fq_weights_stay_fake_quantize_of_constants_in_lpc_layout() {
    let g = import("fq_weights");
    assert_eq!(count(&g, |o| matches!(o, Op::Transpose { .. })), 0);
    for id in g.node_ids() {
        let want: &[usize] = match g.node(id).op {
            Op::Conv(_) => &[6, 2, 3, 3],
            Op::MatMul => &[16, 7],
            _ => continue,
        };
        let fq = g.node_input(id, 1).expect("weights").node;
        assert!(
            matches!(g.node(fq).op, Op::FakeQuantize { levels: 255 }),
            "weights of {}",
            g.node(id).name
        );
        let w = g
            .const_value(g.node_input(fq, 0).expect("x"))
            .expect("constant weights");
        assert_eq!(w.shape(), want);
    }
}

#[test]
fn fq_weights() {
    check("fq_weights", 1e-5);
}
