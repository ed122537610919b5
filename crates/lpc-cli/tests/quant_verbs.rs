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
