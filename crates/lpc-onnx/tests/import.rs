//! The importer on real files: every ONNX conformance model, the shared real models and the
//! digits models (FP32 and quantized by ONNX Runtime), and bad input.

use std::path::{Path, PathBuf};

fn shared() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    assert!(p.join("DESIGN.md").exists(), "../shared is missing beside the project: {}", p.display());
    p
}

/// Conformance models lpc deliberately does not import (feature outside lpc's scope).
const NOT_IMPORTED: &[(&str, &str)] = &[];

#[test]
fn every_conformance_model_imports() {
    let dir = shared().join("onnx-node");
    let mut failures = vec![];
    let mut n = 0;
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    names.sort();
    for case in names {
        n += 1;
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        if let Err(e) = lpc_onnx::import_file(&case.join("model.onnx")) {
            if !NOT_IMPORTED.iter().any(|(c, _)| *c == name) {
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert_eq!(n, 520);
    assert!(failures.is_empty(), "{} of {n} failed to import:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn real_models_import() {
    let s = shared();
    let mut files = vec![];
    for sub in ["models", "data/digits", "data/digits/quantized-by-peers"] {
        for e in std::fs::read_dir(s.join(sub)).unwrap().filter_map(|e| e.ok()) {
            if e.path().extension().is_some_and(|x| x == "onnx") {
                files.push(e.path());
            }
        }
    }
    assert!(files.len() >= 8, "{files:?}");
    for f in files {
        let g = lpc_onnx::import_file(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(g.len() > 3 && !g.outputs().is_empty(), "{}", f.display());
    }
}

#[test]
fn reference_tensors_read() {
    let t = lpc_onnx::read_tensor_pb(&shared().join("models/reference/light_resnet50/input_0.pb")).unwrap();
    assert_eq!(t.shape(), &[1, 3, 224, 224]);
    assert_eq!(t.dtype(), lpc_ir::DType::F32);
}

/// Builds a one-node model by hand (protobuf), to check error messages.
fn model_with_node(op_type: &str, domain: &str, elem_type: i32) -> Vec<u8> {
    use lpc_onnx::proto::*;
    use prost::Message;
    let vi = |name: &str| ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor { elem_type: Some(elem_type), shape: None })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let m = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: vec![NodeProto {
                input: vec!["x".into()],
                output: vec!["y".into()],
                name: Some("the_node".into()),
                op_type: Some(op_type.into()),
                domain: Some(domain.into()),
                ..Default::default()
            }],
            input: vec![vi("x")],
            output: vec![vi("y")],
            ..Default::default()
        }),
        ..Default::default()
    };
    m.encode_to_vec()
}

#[test]
fn bad_input_errors_name_the_problem() {
    let e = lpc_onnx::import_bytes(&model_with_node("FrobnicateV2", "", 1), None).unwrap_err().to_string();
    assert!(e.contains("the_node") && e.contains("FrobnicateV2"), "{e}");
    let e = lpc_onnx::import_bytes(&model_with_node("Relu", "com.microsoft", 1), None).unwrap_err().to_string();
    assert!(e.contains("com.microsoft"), "{e}");
    let e = lpc_onnx::import_bytes(&model_with_node("Relu", "", 8), None).unwrap_err().to_string();
    assert!(e.contains("STRING"), "{e}");
    let bytes = std::fs::read(shared().join("data/digits/digits_cnn.onnx")).unwrap();
    assert!(lpc_onnx::import_bytes(&bytes[..bytes.len() / 2], None).is_err());
    let e = lpc_onnx::read_tensor_pb(Path::new("/nonexistent.pb")).unwrap_err().to_string();
    assert!(e.contains("/nonexistent.pb"), "{e}");
}
