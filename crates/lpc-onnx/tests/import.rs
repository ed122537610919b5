//! The importer on real files: every ONNX conformance model, the shared real models and the
//! digits models (FP32 and quantized by ONNX Runtime), and bad input.

use std::path::{Path, PathBuf};

fn shared() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    assert!(
        p.join("DESIGN.md").exists(),
        "../shared is missing beside the project: {}",
        p.display()
    );
    p
}

/// The conformance cases lpc must import: those listed in the root manifest `tests/onnx-node.txt`
/// (the cases `tests/conformance.rs` runs). `../shared/onnx-node` holds the whole ONNX backend
/// suite; cases outside the manifest use operators lpc does not import yet.
fn manifest() -> Vec<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/onnx-node.txt");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn every_listed_conformance_model_imports() {
    let dir = shared().join("onnx-node");
    let listed = manifest();
    assert!(
        listed.len() >= 520,
        "tests/onnx-node.txt lists {} cases",
        listed.len()
    );
    let mut failures = vec![];
    for name in &listed {
        let model = dir.join(name).join("model.onnx");
        assert!(model.exists(), "{} is missing", model.display());
        if let Err(e) = lpc_onnx::import_file(&model) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} listed cases failed to import:\n{}",
        failures.len(),
        listed.len(),
        failures.join("\n")
    );
}

#[test]
fn real_models_import() {
    let s = shared();
    let mut files = vec![];
    for sub in ["models", "data/digits", "data/digits/quantized-by-peers"] {
        for e in std::fs::read_dir(s.join(sub))
            .unwrap()
            .filter_map(|e| e.ok())
        {
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
    let t = lpc_onnx::read_tensor_pb(&shared().join("models/reference/light_resnet50/input_0.pb"))
        .unwrap();
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
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem_type),
                shape: None,
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let m = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
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
    let e = lpc_onnx::import_bytes(&model_with_node("FrobnicateV2", "", 1), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("the_node") && e.contains("FrobnicateV2"), "{e}");
    let e = lpc_onnx::import_bytes(&model_with_node("Relu", "com.microsoft", 1), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("com.microsoft"), "{e}");
    let e = lpc_onnx::import_bytes(&model_with_node("Relu", "", 8), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("STRING"), "{e}");
    let bytes = std::fs::read(shared().join("data/digits/digits_cnn.onnx")).unwrap();
    assert!(lpc_onnx::import_bytes(&bytes[..bytes.len() / 2], None).is_err());
    let e = lpc_onnx::read_tensor_pb(Path::new("/nonexistent.pb"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent.pb"), "{e}");
}

/// A one-node f32 model at `opset` whose node carries `attrs`.
fn model_with_attrs(
    op_type: &str,
    opset: i64,
    attrs: Vec<lpc_onnx::proto::AttributeProto>,
) -> Vec<u8> {
    use lpc_onnx::proto::*;
    use prost::Message;
    let mut m = ModelProto::decode(model_with_node(op_type, "", 1).as_slice()).unwrap();
    m.opset_import[0].version = Some(opset);
    m.graph.as_mut().unwrap().node[0].attribute = attrs;
    m.encode_to_vec()
}

#[test]
fn newer_opsets_and_mistyped_attributes_are_refused() {
    use lpc_onnx::proto::attribute_proto::AttributeType;
    use lpc_onnx::proto::AttributeProto;
    let e = lpc_onnx::import_bytes(&model_with_attrs("Relu", 99, vec![]), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("opset 99") && e.contains("28"), "{e}");
    assert!(lpc_onnx::import_bytes(
        &model_with_attrs("Relu", lpc_onnx::NEWEST_OPSET, vec![]),
        None
    )
    .is_ok());
    // A FLOAT where LeakyRelu's alpha is fine; an INT axis given as a FLOAT is not.
    let float = |name: &str, f: f32| AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(f),
        ..Default::default()
    };
    assert!(lpc_onnx::import_bytes(
        &model_with_attrs("LeakyRelu", 13, vec![float("alpha", 0.2)]),
        None
    )
    .is_ok());
    let e = lpc_onnx::import_bytes(
        &model_with_attrs("Softmax", 13, vec![float("axis", 1.0)]),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("the_node") && e.contains("'axis' is FLOAT, expected INT"),
        "{e}"
    );
    // A list of floats where ints are wanted used to read as an empty list.
    let floats = AttributeProto {
        name: Some("kernel_shape".into()),
        r#type: Some(AttributeType::Floats as i32),
        floats: vec![2.0, 2.0],
        ..Default::default()
    };
    let e = lpc_onnx::import_bytes(&model_with_attrs("MaxPool", 13, vec![floats.clone()]), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("'kernel_shape' is FLOATS, expected INTS"), "{e}");
    // The declared type must match too: INTS declared, floats filled (the ints are empty).
    let lying = AttributeProto {
        r#type: Some(AttributeType::Ints as i32),
        ..floats
    };
    let e = lpc_onnx::import_bytes(&model_with_attrs("MaxPool", 13, vec![lying]), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("declares type INTS but holds FLOATS"), "{e}");
}

/// A model whose initializer lives in an external data file, built by hand.
fn external_model(location: &str, offset: usize, length: usize) -> Vec<u8> {
    use lpc_onnx::proto::*;
    use prost::Message;
    let vi = |name: &str| ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(1),
                shape: Some(TensorShapeProto {
                    dim: vec![tensor_shape_proto::Dimension {
                        value: Some(tensor_shape_proto::dimension::Value::DimValue(4)),
                        ..Default::default()
                    }],
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let kv = |k: &str, v: String| StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v),
    };
    let w = TensorProto {
        dims: vec![4],
        data_type: Some(1),
        name: Some("w".into()),
        data_location: Some(1),
        external_data: vec![
            kv("location", location.into()),
            kv("offset", offset.to_string()),
            kv("length", length.to_string()),
        ],
        ..Default::default()
    };
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
        graph: Some(GraphProto {
            name: Some("ext".into()),
            node: vec![NodeProto {
                input: vec!["x".into(), "w".into()],
                output: vec!["y".into()],
                op_type: Some("Add".into()),
                ..Default::default()
            }],
            initializer: vec![w],
            input: vec![vi("x")],
            output: vec![vi("y")],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn external_data_is_read_relative_to_the_model() {
    let dir = std::env::temp_dir().join(format!("lpc-ext-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut bin = vec![0xEEu8; 8]; // 8 bytes of padding before the tensor
    for v in [1.0f32, 2.0, 3.0, 4.0] {
        bin.extend(v.to_le_bytes());
    }
    std::fs::write(dir.join("weights.bin"), &bin).unwrap();
    std::fs::write(dir.join("model.onnx"), external_model("weights.bin", 8, 16)).unwrap();
    let g = lpc_onnx::import_file(&dir.join("model.onnx")).unwrap();
    let w = g
        .find_value("w")
        .and_then(|v| g.const_value(v).cloned())
        .expect("w is a constant");
    assert_eq!(w.to_f32_vec(), vec![1.0, 2.0, 3.0, 4.0]);
    // Offset + length beyond the file, a missing file and an escaping path are errors naming it.
    std::fs::write(
        dir.join("short.onnx"),
        external_model("weights.bin", 16, 16),
    )
    .unwrap();
    let e = lpc_onnx::import_file(&dir.join("short.onnx"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("weights.bin"), "{e}");
    std::fs::write(dir.join("missing.onnx"), external_model("nope.bin", 0, 16)).unwrap();
    let e = lpc_onnx::import_file(&dir.join("missing.onnx"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope.bin"), "{e}");
    std::fs::write(
        dir.join("escape.onnx"),
        external_model("../weights.bin", 0, 16),
    )
    .unwrap();
    assert!(lpc_onnx::import_file(&dir.join("escape.onnx")).is_err());
    // A symbolic link in the folder that points outside it is refused like `../`; one that
    // stays inside is followed.
    let outside = dir.with_extension("outside.bin");
    std::fs::write(&outside, &bin).unwrap();
    let _ = std::fs::remove_file(dir.join("link.bin"));
    std::os::unix::fs::symlink(&outside, dir.join("link.bin")).unwrap();
    std::fs::write(dir.join("link.onnx"), external_model("link.bin", 8, 16)).unwrap();
    let e = lpc_onnx::import_file(&dir.join("link.onnx"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'link.bin' resolves to") && e.contains("outside the model's folder"),
        "{e}"
    );
    let _ = std::fs::remove_file(dir.join("link.bin"));
    std::os::unix::fs::symlink(dir.join("weights.bin"), dir.join("link.bin")).unwrap();
    assert!(lpc_onnx::import_file(&dir.join("link.onnx")).is_ok());
    let _ = std::fs::remove_file(&outside);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The shared `test_scan_sum` model (Scan opset 8: `state += x`, scan output the running
/// state) with a batch of 2, `sequence_lens` as a graph input and, with `reverse`, the scan
/// input read backwards.
fn scan8_with_lengths(reverse: bool) -> Vec<u8> {
    use lpc_onnx::proto::*;
    use prost::Message;
    let bytes = std::fs::read(shared().join("onnx-node/test_scan_sum/model.onnx")).unwrap();
    let mut m = ModelProto::decode(bytes.as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    g.node[0].input[0] = "lens".into();
    if reverse {
        g.node[0].attribute.push(AttributeProto {
            name: Some("directions".into()),
            r#type: Some(attribute_proto::AttributeType::Ints as i32),
            ints: vec![1],
            ..Default::default()
        });
    }
    for vi in g.input.iter_mut().chain(g.output.iter_mut()) {
        if let Some(type_proto::Value::TensorType(t)) =
            vi.r#type.as_mut().and_then(|t| t.value.as_mut())
        {
            t.shape.as_mut().unwrap().dim[0].value =
                Some(tensor_shape_proto::dimension::Value::DimValue(2));
        }
    }
    let mut lens = g.input[0].clone();
    lens.name = Some("lens".into());
    if let Some(type_proto::Value::TensorType(t)) =
        lens.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.elem_type = Some(tensor_proto::DataType::Int64 as i32);
        t.shape.as_mut().unwrap().dim.truncate(1);
    }
    g.input.insert(0, lens);
    m.encode_to_vec()
}

#[test]
fn scan8_sequence_lens_cut_and_zero_pad_each_batch() {
    use lpc_ir::Tensor;
    let lens = Tensor::from_i64(&[2], vec![3, 2]).unwrap();
    let init = Tensor::from_f32(&[2, 2], vec![0., 0., 10., 10.]).unwrap();
    let x = Tensor::from_f32(
        &[2, 3, 2],
        vec![1., 2., 3., 4., 5., 6., 1., 1., 2., 2., 3., 3.],
    )
    .unwrap();
    // The outputs of ONNX Runtime 1.32 on these models.
    let cases = [
        (false, [1., 2., 4., 6., 9., 12., 11., 11., 13., 13., 0., 0.]),
        (true, [5., 6., 8., 10., 9., 12., 12., 12., 13., 13., 0., 0.]),
    ];
    for (reverse, z) in cases {
        let g = lpc_onnx::import_bytes(&scan8_with_lengths(reverse), None).unwrap();
        let back = lpc_onnx::export::export_bytes(&g).unwrap();
        let back = lpc_onnx::import_bytes(&back, None).unwrap();
        for g in [g, back] {
            let outs = lpc_ref::run(&g, &[lens.clone(), init.clone(), x.clone()]).unwrap();
            assert_eq!(outs[0].to_f32_vec(), vec![9., 12., 13., 13.]);
            assert_eq!(outs[1].shape(), &[2, 3, 2]);
            assert_eq!(outs[1].to_f32_vec(), z.to_vec(), "reverse: {reverse}");
        }
    }
    // Lengths outside [0, 3] are clamped into it.
    let g = lpc_onnx::import_bytes(&scan8_with_lengths(false), None).unwrap();
    let odd = Tensor::from_i64(&[2], vec![7, -1]).unwrap();
    let outs = lpc_ref::run(&g, &[odd, init, x]).unwrap();
    assert_eq!(outs[0].to_f32_vec(), vec![9., 12., 10., 10.]);
    assert_eq!(outs[1].to_f32_vec()[6..], [0.; 6]);
}

/// ONNX Runtime's contrib ops refuse malformed nodes with an error naming the node and what
/// is wrong (their semantics are checked against ONNX Runtime by the root `tests/contrib.rs`).
#[test]
fn contrib_ops_refuse_malformed_nodes() {
    use lpc_onnx::proto::*;
    use prost::Message;
    let with = |op: &str, attrs: Vec<AttributeProto>| {
        let mut m = ModelProto::decode(model_with_node(op, "com.microsoft", 1).as_slice()).unwrap();
        m.graph.as_mut().unwrap().node[0].attribute = attrs;
        lpc_onnx::import_bytes(&m.encode_to_vec(), None)
            .unwrap_err()
            .to_string()
    };
    let int_attr = |name: &str, i: i64| AttributeProto {
        name: Some(name.into()),
        i: Some(i),
        r#type: Some(attribute_proto::AttributeType::Int as i32),
        ..Default::default()
    };
    for (op, attrs, want) in [
        ("QLinearAdd", vec![], "input 1 (A_scale) is required"),
        (
            "QLinearConcat",
            vec![int_attr("axis", 0)],
            "input 1 (Y_zero_point)",
        ),
        ("QLinearConcat", vec![], "attribute 'axis' is required"),
        ("QLinearSoftmax", vec![], "attribute 'opset'"),
        ("FusedConv", vec![], "input 1 (W) is required"),
        ("QGemm", vec![], "input 1 (a_scale) is required"),
        ("DynamicQuantizeLSTM", vec![], "input 1 (W) is required"),
        (
            "QAttention",
            vec![],
            "unsupported operator 'QAttention' of domain com.microsoft",
        ),
    ] {
        let e = with(op, attrs);
        assert!(e.contains("the_node") && e.contains(want), "{op}: {e}");
    }
}
