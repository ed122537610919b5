//! Real models from `../shared`: FP32 outputs against ONNX Runtime's reference outputs, digits
//! accuracy on the 500 labelled test images, and models quantized by ONNX Runtime run by lpc-ref.

use lpc_data::read_npy;
use lpc_ir::Tensor;
use lpc_load::load_model as load;
use lpc_suite::{check_roundtrip, max_rel_err, root, shared};

fn argmax_rows(t: &Tensor) -> Vec<i64> {
    let v = t.to_f32_vec();
    let cols = *t.shape().last().expect("rank >= 1");
    v.chunks(cols)
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (i, &x)| if x > b.1 { (i, x) } else { b },
                )
                .0 as i64
        })
        .collect()
}

fn reference_case(model: &str) {
    let dir = shared().join("models");
    let g = load(&dir.join(format!("{model}.onnx"))).unwrap_or_else(|e| panic!("{model}: {e:#}"));
    check_roundtrip(&g).unwrap_or_else(|e| panic!("{model}: {e}"));
    let refdir = dir.join("reference").join(model);
    let input = lpc_onnx::read_tensor_pb(&refdir.join("input_0.pb")).expect("input_0.pb");
    let outs = lpc_ref::run(&g, &[input]).unwrap_or_else(|e| panic!("{model}: {e}"));
    for (k, out) in outs.iter().enumerate() {
        let expected =
            lpc_onnx::read_tensor_pb(&refdir.join(format!("output_{k}.pb"))).expect("output pb");
        assert_eq!(out.shape(), expected.shape(), "{model} output {k} shape");
        let err = max_rel_err(out, &expected);
        assert!(
            err <= 1e-4,
            "{model} output {k}: max |diff| / max |expected| = {err:e} > 1e-4"
        );
    }
}

#[test]
fn ppocr_cls_matches_onnxruntime() {
    reference_case("ch_ppocr_mobile_v2.0_cls_infer");
}

#[test]
fn ppocr_det_matches_onnxruntime() {
    reference_case("ch_PP-OCRv4_det_infer");
}

#[test]
fn light_resnet50_matches_onnxruntime() {
    reference_case("light_resnet50");
}

#[test]
fn light_squeezenet_matches_onnxruntime() {
    reference_case("light_squeezenet");
}

/// Top-1 of `model` on the 500 digits test images (one batch of 500) and its agreement with
/// ONNX Runtime's predictions saved by `tools/ort_reference.py`.
fn digits(model_path: &std::path::Path, ort_preds: &str) -> (f64, f64) {
    let d = shared().join("data").join("digits");
    let x = read_npy(&d.join("test_x.npy")).expect("test_x");
    let y = read_npy(&d.join("test_y.npy"))
        .expect("test_y")
        .to_i64_vec();
    let g = load(model_path).unwrap_or_else(|e| panic!("{}: {e:#}", model_path.display()));
    check_roundtrip(&g).unwrap_or_else(|e| panic!("{}: {e}", model_path.display()));
    let out = lpc_ref::run(&g, &[x]).expect("run");
    let pred = argmax_rows(&out[0]);
    let ort = read_npy(&root().join("tests/data/ort").join(ort_preds))
        .expect("ORT predictions")
        .to_i64_vec();
    assert_eq!(pred.len(), 500);
    let top1 = pred.iter().zip(&y).filter(|(a, b)| a == b).count() as f64 / 5.0;
    let agree = pred.iter().zip(&ort).filter(|(a, b)| a == b).count() as f64 / 5.0;
    (top1, agree)
}

#[test]
fn digits_fp32_accuracy_equals_onnxruntime() {
    let d = shared().join("data").join("digits");
    let (top1, agree) = digits(&d.join("digits_cnn.onnx"), "digits_cnn.top1.npy");
    assert_eq!((top1, agree), (99.0, 100.0), "digits_cnn");
    let (top1, agree) = digits(&d.join("digits_mbv.onnx"), "digits_mbv.top1.npy");
    assert_eq!((top1, agree), (97.8, 100.0), "digits_mbv");
}

#[test]
fn digits_quantized_by_onnxruntime_agree() {
    let d = shared()
        .join("data")
        .join("digits")
        .join("quantized-by-peers");
    for m in ["digits_cnn", "digits_mbv"] {
        let (_, agree) = digits(
            &d.join(format!("{m}.ort-qdq.onnx")),
            &format!("{m}.ort-qdq.top1.npy"),
        );
        assert!(
            agree >= 99.6,
            "{m}.ort-qdq: top-1 agreement with ONNX Runtime {agree}% < 99.6%"
        );
    }
}

/// A zoo model (`../shared/models/zoo/<folder>/<file>`) on the seeded random inputs saved
/// with ONNX Runtime 1.32's outputs by `tools/ort_zoo_reference.py`: lpc-ref within 1e-4 of
/// the largest |ORT output|, and the JIT (lpc-ref fallback for the recurrent ops) within 1e-5
/// of lpc-ref.
fn zoo_case(folder: &str, file: &str, inputs: &[&str], outputs: &[&str]) {
    let g = load(&shared().join("models/zoo").join(folder).join(file))
        .unwrap_or_else(|e| panic!("{folder}: {e:#}"));
    check_roundtrip(&g).unwrap_or_else(|e| panic!("{folder}: {e}"));
    let data = root().join("tests/data/ort").join(folder);
    let npy = |name: &str| {
        read_npy(&data.join(format!("{name}.npy")))
            .unwrap_or_else(|e| panic!("{folder}: {name}.npy: {e}"))
    };
    let xs: Vec<Tensor> = inputs.iter().map(|n| npy(n)).collect();
    let outs = lpc_ref::run(&g, &xs).unwrap_or_else(|e| panic!("{folder}: {e}"));
    assert_eq!(outs.len(), outputs.len());
    for (out, name) in outs.iter().zip(outputs) {
        let expected = npy(name);
        assert_eq!(out.shape(), expected.shape(), "{folder} {name} shape");
        let err = max_rel_err(out, &expected);
        assert!(
            err <= 1e-4,
            "{folder} {name}: max |diff| / max |ORT| = {err:e}"
        );
    }
    let shapes: Vec<Vec<usize>> = xs.iter().map(|x| x.shape().to_vec()).collect();
    let m = lpc_jit::CompiledModel::compile(&g, &shapes, &Default::default())
        .unwrap_or_else(|e| panic!("{folder}: jit compile: {e}"));
    let jit = m.run(&xs).unwrap_or_else(|e| panic!("{folder}: jit: {e}"));
    for ((a, b), name) in jit.iter().zip(&outs).zip(outputs) {
        let err = max_rel_err(a, b);
        assert!(err <= 1e-5, "{folder} {name}: jit vs ref {err:e}");
    }
}

#[test]
fn zoo_recurrent_models_match_onnxruntime() {
    // Conv1d front-end, two bidirectional LSTMs (time 64).
    zoo_case(
        "eeg_seizure_lstm",
        "modelA_paper.onnx",
        &["x"],
        &["logits", "probs"],
    );
    // Conv2d front-end, two bidirectional GRUs with linear_before_reset (100 frames).
    zoo_case(
        "plcmos_v2_gru",
        "plcmos_v2.onnx",
        &["degraded_audio", "rater_embed"],
        &["plcmos"],
    );
}
