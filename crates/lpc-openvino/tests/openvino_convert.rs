//! OpenVINO's conversions of the shared ONNX models (made by `tools/openvino_reference.py
//! --convert DIR`, not committed): lpc's FP32 run of each IR must match its run of the ONNX.
//! The test runs when `LPC_OV_IR_DIR` names that directory and says so when it does not.

use lpc_ir::{Graph, Tensor};
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

/// (IR stem, ONNX model, input): the shared models with their reference input, and the digits
/// models on the first 16 test images.
fn cases() -> Vec<(String, PathBuf, Tensor)> {
    let shared = root().join("../shared");
    let mut out = vec![];
    for stem in [
        "ch_ppocr_mobile_v2.0_cls_infer",
        "ch_PP-OCRv4_det_infer",
        "light_resnet50",
        "light_squeezenet",
    ] {
        let input =
            lpc_onnx::read_tensor_pb(&shared.join(format!("models/reference/{stem}/input_0.pb")))
                .expect("input_0.pb");
        out.push((
            stem.to_string(),
            shared.join(format!("models/{stem}.onnx")),
            input,
        ));
    }
    let bytes = std::fs::read(shared.join("data/digits/test_x.npy")).expect("test_x.npy");
    let x: Vec<f32> = npyz::NpyFile::new(&bytes[..])
        .expect("npy")
        .into_vec()
        .expect("f32");
    let input = Tensor::from_f32(&[16, 1, 16, 16], x[..16 * 256].to_vec()).expect("16 images");
    for stem in ["digits_cnn", "digits_mbv"] {
        out.push((
            stem.to_string(),
            shared.join(format!("data/digits/{stem}.onnx")),
            input.clone(),
        ));
    }
    out
}

/// Largest |a-b| over the outputs, relative to the largest |b| (at least 1).
fn rel_diff(a: &[Tensor], b: &[Tensor]) -> f64 {
    assert_eq!(a.len(), b.len(), "output count");
    let mut worst = 0f64;
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.shape(), y.shape(), "output shape");
        let (x, y) = (x.to_f64_vec(), y.to_f64_vec());
        let scale = y.iter().fold(1f64, |m, v| m.max(v.abs()));
        let d = x
            .iter()
            .zip(&y)
            .fold(0f64, |m, (p, q)| m.max((p - q).abs()));
        worst = worst.max(d / scale);
    }
    worst
}

fn run(g: &Graph, x: &Tensor) -> Vec<Tensor> {
    lpc_ref::run(g, std::slice::from_ref(x)).unwrap_or_else(|e| panic!("{}: {e}", g.name))
}

#[test]
#[ignore = "needs IRs converted by OpenVINO: python3 tools/openvino_reference.py --convert DIR, then LPC_OV_IR_DIR=DIR cargo test -- --ignored"]
fn converted_irs_match_onnx() {
    let Some(dir) = std::env::var_os("LPC_OV_IR_DIR") else {
        panic!("LPC_OV_IR_DIR is not set (see tools/openvino_reference.py --convert)");
    };
    let dir = PathBuf::from(dir);
    let mut n_checked = 0;
    for (stem, onnx, input) in cases() {
        let onnx_graph = lpc_onnx::import_file(&onnx).expect("ONNX import");
        let want = run(&onnx_graph, &input);
        // FP32 weights must agree to float rounding; FP16-compressed ones to f16 precision.
        for (suffix, tol) in [("", 1e-4), (".fp16", 2e-2)] {
            let xml = dir.join(format!("{stem}{suffix}.xml"));
            if !xml.exists() {
                eprintln!("{}: absent, skipped", xml.display());
                continue;
            }
            let g = lpc_openvino::import_openvino(&xml)
                .unwrap_or_else(|e| panic!("{}: {e}", xml.display()));
            let g = checked(g, &format!("{stem}{suffix}"));
            let got = run(&g, &input);
            let d = rel_diff(&got, &want);
            eprintln!("{stem}{suffix}: max |IR - ONNX| / max |ONNX| = {d:.3e}");
            assert!(
                d <= tol,
                "{stem}{suffix}: relative difference {d:.3e} > {tol:.0e}"
            );
            n_checked += 1;
        }
    }
    assert!(
        n_checked > 0,
        "LPC_OV_IR_DIR={} holds none of the converted models",
        dir.display()
    );
}

#[test]
#[ignore = "needs IRs converted by OpenVINO: python3 tools/openvino_reference.py --convert DIR, then LPC_OV_IR_DIR=DIR cargo test -- --ignored"]
fn converted_irs_import() {
    let Some(dir) = std::env::var_os("LPC_OV_IR_DIR") else {
        panic!("LPC_OV_IR_DIR is not set (see tools/openvino_reference.py --convert)");
    };
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("LPC_OV_IR_DIR readable") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "xml") {
            let g = lpc_openvino::import_openvino(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            eprintln!("{}: {} nodes", p.display(), g.len());
            n += 1;
        }
    }
    assert!(n > 0, "no .xml in LPC_OV_IR_DIR");
}
