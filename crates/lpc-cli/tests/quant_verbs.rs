//! The verb functions behind `lpc quantize`, `lpc calibrate` and `lpc accuracy`, driven through
//! their clap argument structs as `lpc` wires them (moved here from lpc-quant's tests).

use clap::Parser;
use lpc_cli::cmd::accuracy::{run as accuracy_cmd, AccuracyArgs};
use lpc_cli::cmd::calibrate::{run as calibrate_cmd, CalibrateArgs};
use lpc_cli::cmd::quantize::{run as quantize_cmd, QuantizeArgs};
use std::path::{Path, PathBuf};

#[derive(Parser)]
enum Lpc {
    Quantize(QuantizeArgs),
    Calibrate(CalibrateArgs),
    Accuracy(AccuracyArgs),
}

fn digits(f: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/digits")
        .join(f)
        .display()
        .to_string()
}

fn tmp(f: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lpc-quant-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(f)
}

#[test]
fn quantize_then_accuracy() {
    let out = tmp("cnn.int8.onnx");
    let report = tmp("report.json");
    let args = [
        "lpc",
        "quantize",
        &digits("digits_cnn.onnx"),
        "--calib",
        &digits("calib_x.npy"),
        "-o",
    ];
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    v.push(out.display().to_string());
    v.extend(["--report".to_string(), report.display().to_string()]);
    let Lpc::Quantize(q) = Lpc::parse_from(&v) else {
        panic!("parsed another verb")
    };
    let msg = quantize_cmd(&q, false).unwrap();
    assert!(msg.contains("quantized 3 layers"), "{msg}");
    let r = std::fs::read_to_string(&report).unwrap();
    assert!(r.contains("\"sqnr_db\"") && r.contains("\"activations\""));

    let v = [
        "lpc",
        "accuracy",
        &out.display().to_string(),
        "--data",
        &digits("test_x.npy"),
        "--labels",
        &digits("test_y.npy"),
        "--reference",
        &digits("digits_cnn.onnx"),
        "--per-layer",
    ]
    .map(String::from);
    let Lpc::Accuracy(a) = Lpc::parse_from(&v) else {
        panic!("parsed another verb")
    };
    let s = accuracy_cmd(&a, false).unwrap();
    assert!(s.contains("samples: 500"), "{s}");
    assert!(s.contains("(0 flips)") || s.contains("(1 flips)"), "{s}");
    assert!(s.contains("per-layer SQNR"), "{s}");

    // The .lir output and calibrate's JSON.
    let lir = tmp("cnn.lir");
    let v = [
        "lpc",
        "quantize",
        &digits("digits_cnn.onnx"),
        "--calib",
        &digits("calib_x.npy"),
        "--subset",
        "50",
        "-o",
        &lir.display().to_string(),
    ]
    .map(String::from);
    let Lpc::Quantize(q) = Lpc::parse_from(&v) else {
        panic!()
    };
    quantize_cmd(&q, false).unwrap();
    assert!(std::fs::read_to_string(&lir)
        .unwrap()
        .contains("fake_quantize"));
    let v = [
        "lpc",
        "calibrate",
        &digits("digits_cnn.onnx"),
        "--calib",
        &digits("calib_x.npy"),
        "--preset",
        "performance",
    ]
    .map(String::from);
    let Lpc::Calibrate(c) = Lpc::parse_from(&v) else {
        panic!()
    };
    let j = calibrate_cmd(&c, false).unwrap();
    assert!(j.contains("\"preset\": \"performance\""), "{j}");
    // Bad arguments are errors, not panics.
    let v = [
        "lpc",
        "quantize",
        &digits("digits_cnn.onnx"),
        "--calib",
        &digits("calib_x.npy"),
        "-o",
        "x.bin",
    ]
    .map(String::from);
    let Lpc::Quantize(q) = Lpc::parse_from(&v) else {
        panic!()
    };
    assert!(quantize_cmd(&q, false).is_err());
    let v = [
        "lpc",
        "quantize",
        &digits("digits_cnn.onnx"),
        "--calib",
        &digits("calib_x.npy"),
        "--estimator",
        "bogus",
        "-o",
        "x.onnx",
    ]
    .map(String::from);
    // A usage error naming the flag.
    let e = Lpc::try_parse_from(&v)
        .err()
        .expect("bad estimator")
        .to_string();
    assert!(
        e.contains("'--estimator <ESTIMATOR>'") && e.contains("unknown range estimator"),
        "{e}"
    );
}

/// `--calib NAME=PATH`, repeated: one stacked `.npy` per input of a two-input model (the zoo's
/// GRU, audio features and an embedding) quantizes as the same arrays in one `.npz` do; an
/// input left out, named twice or not an input of the model is an error naming it.
#[test]
fn calib_per_input_name() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/models/zoo/plcmos_v2_gru/plcmos_v2.onnx");
    assert!(model.exists(), "{} is missing", model.display());
    let mut rng = 1u64;
    let mut uniform = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (rng >> 40) as f32 / (1u64 << 24) as f32
            })
            .collect()
    };
    let audio = lpc_ir::Tensor::from_f32(&[4, 1, 20, 257], uniform(4 * 20 * 257)).unwrap();
    let embed = lpc_ir::Tensor::from_f32(&[4, 64], uniform(4 * 64)).unwrap();
    let (a, e) = (tmp("degraded_audio.npy"), tmp("rater_embed.npy"));
    lpc_data::write_npy(&a, &audio).unwrap();
    lpc_data::write_npy(&e, &embed).unwrap();
    let run = |calib: &[String], out: &str| {
        let mut v: Vec<String> = ["lpc", "quantize", &model.display().to_string()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for c in calib {
            v.extend(["--calib".to_string(), c.clone()]);
        }
        v.extend(
            ["--bias-correction", "off", "-o"]
                .iter()
                .map(|s| s.to_string()),
        );
        v.push(tmp(out).display().to_string());
        let Lpc::Quantize(q) = Lpc::parse_from(&v) else {
            panic!("parsed another verb")
        };
        quantize_cmd(&q, false).map_err(|e| format!("{e:#}"))
    };
    let named = [
        format!("degraded_audio={}", a.display()),
        format!("rater_embed={}", e.display()),
    ];
    let msg = run(&named, "named.lir").unwrap();
    assert!(msg.contains("(4 samples"), "{msg}");
    let err = run(&named[..1], "x.lir").unwrap_err();
    assert!(err.contains("no data for input 'rater_embed'"), "{err}");
    let twice = [named[0].clone(), named[0].clone()];
    let err = run(&twice, "x.lir").unwrap_err();
    assert!(err.contains("'degraded_audio' is given twice"), "{err}");
    let stray = [named[0].clone(), format!("mask={}", e.display())];
    let err = run(&stray, "x.lir").unwrap_err();
    assert!(err.contains("is not NAME=PATH for an input"), "{err}");
    let lir = |f: &str| std::fs::read_to_string(tmp(f)).unwrap();
    let npz = tmp("both.npz");
    {
        // The same arrays as one .npz keyed by input name give the same quantized model.
        let f = std::fs::File::create(&npz).unwrap();
        let mut z = zip::ZipWriter::new(f);
        for (name, p) in [("degraded_audio", &a), ("rater_embed", &e)] {
            z.start_file(
                format!("{name}.npy"),
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            std::io::Write::write_all(&mut z, &std::fs::read(p).unwrap()).unwrap();
        }
        z.finish().unwrap();
    }
    run(&[npz.display().to_string()], "npz.lir").unwrap();
    assert_eq!(lir("named.lir"), lir("npz.lir"));
}

/// `lpc quantize --mode dynamic`: no calibration data needed; `--data`/`--labels` measure the
/// result; the output is standard ONNX (DynamicQuantizeLinear + MatMulInteger) that lpc folds.
#[test]
fn quantize_dynamic_mode() {
    let out = tmp("cnn.dynamic.onnx");
    let o = out.display().to_string();
    let parse = |extra: &[&str]| {
        let mut v: Vec<String> = [
            "lpc",
            "quantize",
            &digits("digits_cnn.onnx"),
            "--mode",
            "dynamic",
            "-o",
            &o,
        ]
        .map(String::from)
        .to_vec();
        v.extend(extra.iter().map(|s| s.to_string()));
        let Lpc::Quantize(q) = Lpc::parse_from(&v) else {
            panic!("parsed another verb")
        };
        q
    };
    let msg = quantize_cmd(
        &parse(&[
            "--data",
            &digits("test_x.npy"),
            "--labels",
            &digits("test_y.npy"),
        ]),
        false,
    )
    .unwrap();
    assert!(msg.contains("dynamic INT8: 1 MatMul/Gemm layers"), "{msg}");
    assert!(msg.contains("top-1 agreement with FP32: "), "{msg}");
    assert!(msg.contains("on 500 samples"), "{msg}");
    assert!(msg.contains("top-1 against labels"), "{msg}");
    let g = lpc_load::load_model(&out).unwrap();
    let ops: Vec<&str> = g
        .node_ids()
        .into_iter()
        .map(|n| g.node(n).op.name())
        .collect();
    assert!(
        ops.contains(&"dynamic_quantize_linear") && ops.contains(&"matmul_integer"),
        "{ops:?}"
    );
    let f = lpc_fold::fold_graph(&g, &[], None, None).unwrap().graph;
    let fops: Vec<&str> = f
        .node_ids()
        .into_iter()
        .map(|n| f.node(n).op.name())
        .collect();
    assert!(
        fops.contains(&"qmatmul") && !fops.contains(&"matmul_integer"),
        "{fops:?}"
    );

    // Labels need the evaluation set they label, and cannot follow a shuffled subset of it.
    let e = quantize_cmd(&parse(&["--labels", &digits("test_y.npy")]), false).unwrap_err();
    assert!(
        format!("{e:#}").contains("--labels go with --data"),
        "{e:#}"
    );
    let e = quantize_cmd(
        &parse(&[
            "--data",
            &digits("test_x.npy"),
            "--labels",
            &digits("test_y.npy"),
            "--eval-subset",
            "50",
        ]),
        false,
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("--eval-subset"), "{e:#}");
    // A budget searches static quantizers: refused, naming the way to keep layers float.
    let e = quantize_cmd(&parse(&["--max-drop", "1"]), false).unwrap_err();
    assert!(format!("{e:#}").contains("--ignore"), "{e:#}");
    // Static mode without --calib says what it needs.
    let v = ["lpc", "quantize", &digits("digits_cnn.onnx"), "-o", &o].map(String::from);
    let Lpc::Quantize(q) = Lpc::parse_from(&v) else {
        panic!("parsed another verb")
    };
    let e = quantize_cmd(&q, false).unwrap_err();
    assert!(
        format!("{e:#}").contains("--calib DATA is required"),
        "{e:#}"
    );
}
