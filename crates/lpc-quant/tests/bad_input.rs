//! Bad calibration data and options get clear errors (never a panic), and the FakeQuantize
//! graph is placed as documented and survives the `.lir` round trip.

use lpc_data::{DataError, InMemory, LoadOptions, SampleSource, Samples};
use lpc_ir::{Op, Tensor};
use lpc_quant::{quantize, Config, QuantError};
use std::path::{Path, PathBuf};

fn digits() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/digits")
}

fn mbv() -> lpc_ir::Graph {
    lpc_load::load_model(&digits().join("digits_mbv.onnx")).unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lpc-quant-bad-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn write_npy_f32(path: &Path, shape: &[u64], v: &[f32]) {
    use npyz::WriterBuilder;
    let f = std::fs::File::create(path).unwrap();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(f)
        .begin_nd()
        .unwrap();
    w.extend(v.iter()).unwrap();
    w.finish().unwrap();
}

fn data_err(r: Result<Samples, DataError>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(_) => panic!("expected a data error"),
    }
}

#[test]
fn calibration_data_errors() {
    let g = mbv();
    let all = LoadOptions {
        subset: None,
        ..Default::default()
    };
    // Wrong shape.
    let p = tmp("shape.npy");
    write_npy_f32(&p, &[4, 1, 8, 8], &[0.0; 256]);
    assert!(data_err(Samples::open(&p, &g, &all)).contains("does not fit model input"));
    // Wrong dtype.
    let p = tmp("dtype.npy");
    {
        use npyz::WriterBuilder;
        let f = std::fs::File::create(&p).unwrap();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[1, 1, 16, 16])
            .writer(f)
            .begin_nd()
            .unwrap();
        w.extend([0f64; 256].iter()).unwrap();
        w.finish().unwrap();
    }
    assert!(data_err(Samples::open(&p, &g, &all)).contains("dtype f64"));
    // Fewer samples than asked (the default subset of 300): all of them, in order.
    let p = tmp("few.npy");
    let two: Vec<f32> = (0..512).map(|i| (i / 256) as f32).collect();
    write_npy_f32(&p, &[2, 1, 16, 16], &two);
    let s = Samples::open(&p, &g, &LoadOptions::default()).unwrap();
    assert_eq!((s.len(), s.available), (2, 2));
    assert_eq!(s.get(1).unwrap()[0].to_f32_vec(), vec![1.0; 256]);
    // NaN.
    let p = tmp("nan.npy");
    let mut v = vec![0.5f32; 512];
    v[300] = f32::NAN;
    write_npy_f32(&p, &[2, 1, 16, 16], &v);
    assert!(data_err(Samples::open(&p, &g, &all)).contains("sample 1"));
    // Not a file format we read.
    assert!(data_err(Samples::open(&tmp("x.txt"), &g, &all)).contains("unknown data format"));
}

#[test]
fn ignore_that_matches_nothing_is_an_error() {
    let g = mbv();
    let data = InMemory(vec![vec![Tensor::from_f32(
        &[1, 1, 16, 16],
        vec![0.1; 256],
    )
    .unwrap()]]);
    let cfg = Config {
        ignore: vec!["no_such_layer".into()],
        ..Config::default()
    };
    match quantize(&g, &data, &cfg) {
        Err(QuantError::Ignore(m)) => assert!(m.contains("no_such_layer")),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("accepted an ignore pattern that matches nothing"),
    }
    // An op type keeps every layer of that type in float.
    let cfg = Config {
        ignore: vec!["Gemm".into()],
        report_samples: 0,
        ..Config::default()
    };
    let q = quantize(&g, &data, &cfg).unwrap();
    assert_eq!(q.report.layers.len(), 3);
    assert_eq!(q.report.ignored, vec!["fc".to_string()]);
}

#[test]
fn constant_calibration_data_falls_back_and_reports() {
    let g = mbv();
    // All-zero inputs: the input range is empty; the documented fallback is used and reported.
    let data = InMemory(vec![
        vec![
            Tensor::from_f32(&[1, 1, 16, 16], vec![0.0; 256]).unwrap()
        ];
        3
    ]);
    let q = quantize(
        &g,
        &data,
        &Config {
            report_samples: 0,
            ..Config::default()
        },
    )
    .unwrap();
    assert!(
        q.report
            .warnings
            .iter()
            .any(|w| w.contains("input") && w.contains("range [0, 1]")),
        "{:?}",
        q.report.warnings
    );
}

#[test]
fn fake_quantize_placement_and_lir_round_trip() {
    let g = mbv();
    let calib = Samples::open(
        &digits().join("calib_x.npy"),
        &g,
        &LoadOptions {
            subset: Some(40),
            ..Default::default()
        },
    )
    .unwrap();
    let q = quantize(
        &g,
        &calib,
        &Config {
            report_samples: 0,
            ..Config::default()
        },
    )
    .unwrap();
    let fq: Vec<(String, u32)> = q
        .graph
        .node_ids()
        .into_iter()
        .filter_map(|n| match q.graph.node(n).op {
            Op::FakeQuantize { levels } => Some((q.graph.node(n).name.clone(), levels)),
            _ => None,
        })
        .collect();
    // 4 layers: 4 weight quantizers (255 levels) and 4 activation quantizers (256 levels).
    assert_eq!(fq.iter().filter(|f| f.1 == 255).count(), 4, "{fq:?}");
    assert_eq!(fq.iter().filter(|f| f.1 == 256).count(), 4, "{fq:?}");
    assert!(!q
        .graph
        .node_ids()
        .iter()
        .any(|&n| matches!(q.graph.node(n).op, Op::BatchNorm { .. })));
    // The depthwise input is per-channel (16 channels), the others per-tensor; u8 after Clip.
    let r: Vec<(&str, usize, bool)> = q
        .report
        .ranges
        .iter()
        .map(|r| (r.value.as_str(), r.channels, r.q.signed))
        .collect();
    assert_eq!(
        r,
        vec![
            ("input", 1, true),
            ("hswish1.out", 16, true),
            ("relu6_2.out", 1, false),
            ("gap.out", 1, false)
        ]
    );
    for r in &q.report.ranges {
        assert_eq!(r.q.apply(0.0), 0.0, "zero not exact for {}", r.value);
    }
    let p = tmp("mbv.lir");
    lpc_ir::text::write_lir(&p, &q.graph).unwrap();
    let back = lpc_ir::text::read_lir(&p).unwrap();
    assert!(
        back == q.graph,
        "parse(print(g)) != g for the FakeQuantize graph"
    );
}

#[test]
fn already_quantized_model_is_refused() {
    let g = mbv();
    let data = InMemory(vec![vec![Tensor::from_f32(
        &[1, 1, 16, 16],
        (0..256).map(|i| (i % 17) as f32 / 17.0).collect(),
    )
    .unwrap()]]);
    let cfg = Config {
        report_samples: 0,
        ..Config::default()
    };
    let q = quantize(&g, &data, &cfg).unwrap();
    // The FakeQuantize graph lpc wrote, and the digits model ONNX Runtime quantized (QDQ).
    let ort =
        lpc_load::load_model(&digits().join("quantized-by-peers/digits_mbv.ort-qdq.onnx")).unwrap();
    for (what, m) in [
        ("lpc FakeQuantize graph", q.graph),
        ("ONNX Runtime QDQ model", ort),
    ] {
        match quantize(&m, &data, &cfg) {
            Err(e @ QuantError::AlreadyQuantized { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("already quantized") && msg.contains("lpc fold"),
                    "{what}: {msg}"
                )
            }
            Err(e) => panic!("{what}: wrong error {e}"),
            Ok(_) => panic!("{what}: quantized an already quantized model"),
        }
    }
}

/// A conv whose weights are all subnormal (as exported by some trainers for pruned layers), a
/// conv whose weights are all zero (its output is its bias: a constant per channel) and the
/// subnormal activations the first one computes: the model quantizes, every quantizer has
/// integer parameters (the QDQ export checks them), and the export computes what the FP32
/// model computes up to 8-bit error. Numerically zero tensors are noted as such.
#[test]
fn zero_and_subnormal_weights_and_activations_quantize_and_export() {
    let s = "3.1e-39";
    let text = format!(
        r#"graph @dead(%x: f32[1,2,4,4]) -> (%z, %u) {{
  %w1 = const f32[3,2,1,1] [{s}, -{s}, {s}, {s}, -{s}, -{s}]
  %y = conv(%x, %w1) {{kernel=[1,1]}} : f32[1,3,4,4] @subnormal
  %w2 = const f32[2,3,1,1] [0.5, -1.0, 0.25, 1.0, 0.75, -0.5]
  %b2 = const f32[2] [0.125, -0.375]
  %z = conv(%y, %w2, %b2) {{kernel=[1,1]}} : f32[1,2,4,4] @after_subnormal
  %w0 = const f32[2,2,1,1] [0.0, 0.0, 0.0, 0.0]
  %b0 = const f32[2] [0.5, -0.25]
  %c = conv(%x, %w0, %b0) {{kernel=[1,1]}} : f32[1,2,4,4] @zero
  %w3 = const f32[2,2,1,1] [1.0, -0.5, 0.25, 2.0]
  %u = conv(%c, %w3) {{kernel=[1,1]}} : f32[1,2,4,4] @after_constant
  return %z, %u
}}"#
    );
    let g = lpc_ir::text::parse(&text).unwrap();
    let data = InMemory(
        (0..6)
            .map(|k| {
                let x = (0..32)
                    .map(|i| ((k * 32 + i) as f32 * 0.37).sin())
                    .collect();
                vec![Tensor::from_f32(&[1, 2, 4, 4], x).unwrap()]
            })
            .collect(),
    );
    for preset in ["mixed", "performance"] {
        let cfg = Config {
            preset: preset.parse().unwrap(),
            report_samples: 0,
            ..Config::default()
        };
        let q = quantize(&g, &data, &cfg).unwrap();
        let m = match lpc_onnx::export::export_bytes(&q.graph) {
            Ok(m) => m,
            Err(e) => panic!("{preset}: {e}"),
        };
        let w = &q.report.warnings;
        assert!(
            w.iter().any(|w| w.starts_with("y: numerically zero")),
            "{w:?}"
        );
        let back = lpc_onnx::import_bytes(&m, None).unwrap();
        for x in &data.0 {
            let want = lpc_ref::run(&q.reference, x).unwrap();
            for got in [
                lpc_ref::run(&q.graph, x).unwrap(),
                lpc_ref::run(&back, x).unwrap(),
            ] {
                for (a, b) in want.iter().zip(&got) {
                    for (p, r) in a.to_f32_vec().iter().zip(b.to_f32_vec()) {
                        assert!((p - r).abs() < 0.02, "{preset}: {p} vs {r}");
                    }
                }
            }
        }
    }
}
