//! End to end: folding the digits models quantized by ONNX Runtime (QDQ) and NNCF (OpenVINO IR)
//! leaves no float conv or gemm, and lpc-ref on the folded graph agrees with lpc-ref on the unfolded one on the 500
//! test images (top-1 and per-output error in quantization steps).

use lpc_fold::{fold, FoldOptions, Pipeline};
use lpc_ir::{Graph, Op, Tensor};
use std::path::PathBuf;

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/digits")
}

fn load(path: &std::path::Path) -> Graph {
    lpc_load::load_model(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn test_images() -> Tensor {
    let f = std::fs::File::open(data().join("test_x.npy")).expect("test_x.npy");
    let npy = npyz::NpyFile::new(std::io::BufReader::new(f)).expect("npy");
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    Tensor::from_f32(&shape, npy.into_vec::<f32>().expect("f32 data")).expect("shape")
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Folds `model`, checks the ops left, and returns (top-1 agreement, max |diff| in steps).
fn check_model(name: &str, step: f32) -> (f64, f32) {
    let g = load(&data().join("quantized-by-peers").join(name));
    let r = fold(
        &g,
        &Pipeline::builtin().expect("builtin pipeline"),
        &FoldOptions::default(),
    )
    .expect("fold");
    eprintln!("{name}:\n{}", lpc_fold::stats_text(&r));
    let folded = &r.graph;
    lpc_ir::verify(folded).expect("verify");
    let (text, weights) = lpc_ir::text::print_with_weights(folded);
    let reparsed = lpc_ir::text::parse_with_weights(&text, &weights).expect("reparse");
    assert!(reparsed == *folded, "parse(print(g)) != g");
    for n in folded.node_ids() {
        let op = &folded.node(n).op;
        assert!(
            !matches!(
                op,
                Op::Conv(_) | Op::Gemm { .. } | Op::MatMul | Op::FakeQuantize { .. }
            ),
            "{name}: {} left:\n{text}",
            op.name()
        );
    }
    let x = test_images();
    let (before, after) = (
        lpc_ref::run(&g, std::slice::from_ref(&x)).expect("run unfolded"),
        lpc_ref::run(folded, &[x]).expect("run folded"),
    );
    let (a, b) = (before[0].to_f32_vec(), after[0].to_f32_vec());
    let classes = before[0].shape()[1];
    let mut agree = 0;
    let mut worst = 0f32;
    for i in 0..before[0].shape()[0] {
        let (ra, rb) = (
            &a[i * classes..(i + 1) * classes],
            &b[i * classes..(i + 1) * classes],
        );
        agree += usize::from(argmax(ra) == argmax(rb));
        for (p, q) in ra.iter().zip(rb) {
            worst = worst.max((p - q).abs() / step);
        }
    }
    (agree as f64 / before[0].shape()[0] as f64, worst)
}

fn logits_step(name: &str) -> f32 {
    let g = load(&data().join("quantized-by-peers").join(name));
    let out = g.outputs()[0];
    let n = out.node;
    let s = g
        .node_input(n, 1)
        .and_then(|v| g.const_value(v).cloned())
        .expect("logits dequantize scale");
    s.to_f32_vec()[0]
}

#[test]
fn digits_cnn_ort_qdq_folds_to_integer() {
    let step = logits_step("digits_cnn.ort-qdq.onnx");
    let (agree, worst) = check_model("digits_cnn.ort-qdq.onnx", step);
    eprintln!("digits_cnn ORT QDQ: top-1 agreement {agree:.4}, max error {worst} steps");
    assert!(agree >= 0.998, "top-1 agreement {agree}");
    assert!(worst <= 1.0 + 1e-3, "max error {worst} steps");
}

#[test]
fn digits_mbv_ort_qdq_folds_to_integer() {
    let step = logits_step("digits_mbv.ort-qdq.onnx");
    let (agree, worst) = check_model("digits_mbv.ort-qdq.onnx", step);
    eprintln!("digits_mbv ORT QDQ: top-1 agreement {agree:.4}, max error {worst} steps");
    assert!(agree >= 0.998, "top-1 agreement {agree}");
    assert!(worst <= 1.0 + 1e-3, "max error {worst} steps");
}

/// NNCF's OpenVINO IR: every conv (the depthwise one with its per-channel input scale too) and
/// the classifier become integer kernels, with the bias Adds, ReLUs and Clips folded into them.
/// The logits are an f32 epilogue (no Dequantize to read a step from): top-1 agreement only.
#[test]
fn digits_nncf_ir_fold_to_integer() {
    for name in ["digits_cnn.nncf-int8.xml", "digits_mbv.nncf-int8.xml"] {
        let (agree, _) = check_model(name, 1.0);
        eprintln!("{name}: top-1 agreement {agree:.4}");
        assert!(agree >= 0.998, "{name}: top-1 agreement {agree}");
    }
}
