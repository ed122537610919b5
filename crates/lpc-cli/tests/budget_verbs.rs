//! Accuracy-aware quantization through the `lpc quantize`/`lpc accuracy` argument structs
//! (moved here from lpc-quant's `tests/budget.rs`): digits_mbv reaches 0 flips within budget, an
//! unreachable budget ends with the best model and a clear message, and bad flag combinations
//! are refused.

use clap::Parser;
use lpc_cli::cmd::accuracy::{run as accuracy_cmd, AccuracyArgs};
use lpc_cli::cmd::quantize::{run as quantize_cmd, QuantizeArgs};
use lpc_data::{read_npy, LoadOptions, Samples};
use lpc_quant::aaq::{search, Evaluator, Metric, SearchConfig, Target};
use lpc_quant::{quantize, Config};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[allow(clippy::large_enum_variant)] // parsed once per test
enum Lpc {
    Quantize(QuantizeArgs),
    Accuracy(AccuracyArgs),
}

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn digits(f: &str) -> String {
    shared().join("data/digits").join(f).display().to_string()
}

fn tmp(f: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lpc-quant-budget-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(f)
}

fn parse(args: &[&str]) -> QuantizeArgs {
    let Lpc::Quantize(q) = Lpc::parse_from(args) else {
        panic!("parsed another verb")
    };
    q
}

#[test]
fn digits_mbv_budget_zero_reaches_zero_flips() {
    let out = tmp("mbv.aaq.onnx");
    let report = tmp("mbv.aaq.json");
    let (model, calib, x, y) = (
        digits("digits_mbv.onnx"),
        digits("calib_x.npy"),
        digits("test_x.npy"),
        digits("test_y.npy"),
    );
    let (o, r) = (out.display().to_string(), report.display().to_string());
    let a = parse(&[
        "lpc",
        "quantize",
        &model,
        "--calib",
        &calib,
        "--max-drop",
        "0",
        "--metric",
        "agreement",
        "--data",
        &x,
        "--labels",
        &y,
        "-o",
        &o,
        "--report",
        &r,
    ]);
    let msg = quantize_cmd(&a, false).expect("budget 0 is reachable");
    eprintln!("{msg}");
    assert!(msg.contains("budget met"), "{msg}");
    let j = std::fs::read_to_string(&report).unwrap();
    assert!(j.contains("\"accuracy_aware\"") && j.contains("\"int8_mac_fraction\""));

    // The written model, measured independently by `lpc accuracy`: 0 flips.
    let Lpc::Accuracy(acc) = Lpc::parse_from([
        "lpc",
        "accuracy",
        &o,
        "--data",
        &x,
        "--labels",
        &y,
        "--reference",
        &model,
    ]) else {
        panic!("parsed another verb")
    };
    let s = accuracy_cmd(&acc, false).unwrap();
    assert!(s.contains("(0 flips)"), "{s}");

    // And ≥ 90% of MACs INT8, through the library.
    let g = lpc_load::load_model(Path::new(&model)).unwrap();
    let cal = Samples::open(Path::new(&calib), &g, &LoadOptions::default()).unwrap();
    let q = quantize(&g, &cal, &Config::default()).unwrap();
    let test = Samples::open(
        Path::new(&x),
        &g,
        &LoadOptions {
            subset: None,
            ..Default::default()
        },
    )
    .unwrap();
    let labels = read_npy(Path::new(&y)).unwrap().to_i64_vec();
    let ev = Evaluator::new(&q.reference, &test, Some(&labels), 50, false).unwrap();
    let cfg = SearchConfig {
        target: Target::new(Metric::Agreement, 0.0).unwrap(),
        rank_samples: 100,
        min_int8_macs: 0.0,
        batch: 50,
        progress: false,
    };
    let o = search(
        &q.graph,
        Some(&q.report.ranges),
        &q.reference,
        &ev,
        &test,
        &cfg,
        |l| eprintln!("{l}"),
    )
    .unwrap();
    eprintln!("{}", o.table());
    assert!(o.reached);
    assert_eq!(o.fin.flips, 0);
    assert!(o.int8_macs >= 0.90, "{}", o.int8_macs);
    // Cross-check the returned graph on its own.
    assert_eq!(ev.measure(&o.graph).unwrap().flips, 0);

    // Without the min/max step, layers go to FP32 (most sensitive first) until 0 flips, if the
    // default ranges flip any; the returned graph, measured on its own, agrees.
    let plain = ev.measure(&q.graph).unwrap().flips;
    let o = search(&q.graph, None, &q.reference, &ev, &test, &cfg, |l| {
        eprintln!("{l}")
    })
    .unwrap();
    eprintln!("{}", o.table());
    assert!(o.reached);
    assert_eq!(o.fin.flips, 0);
    assert_eq!(ev.measure(&o.graph).unwrap().flips, 0);
    assert_eq!(
        o.fp32.is_empty(),
        plain == 0,
        "FP32 layers only when needed"
    );
    assert_eq!(o.int8_macs < 1.0, plain > 0);
}

#[test]
fn unreachable_budget_ends_with_best_model_and_message() {
    let out = tmp("mbv.unreachable.lir");
    let o = out.display().to_string();
    // Top-1 must beat FP32 by 50 points: impossible, even with every layer in FP32.
    let a = parse(&[
        "lpc",
        "quantize",
        &digits("digits_mbv.onnx"),
        "--calib",
        &digits("calib_x.npy"),
        "--subset",
        "100",
        "--metric",
        "top1",
        "--max-drop",
        "-50",
        "--data",
        &digits("test_x.npy"),
        "--labels",
        &digits("test_y.npy"),
        "-o",
        &o,
    ]);
    let e = quantize_cmd(&a, false)
        .expect_err("unreachable")
        .to_string();
    assert!(e.contains("budget NOT met"), "{e}");
    assert!(e.contains("best model found"), "{e}");
    assert!(out.exists(), "the best model is written");

    // A MAC floor that forbids any FP32 layer: stops at once with the quantized model.
    let a = parse(&[
        "lpc",
        "quantize",
        &digits("digits_mbv.onnx"),
        "--calib",
        &digits("calib_x.npy"),
        "--subset",
        "100",
        "--min-sqnr",
        "200",
        "--min-int8-macs",
        "1",
        "--data",
        &digits("test_x.npy"),
        "-o",
        &o,
    ]);
    let e = quantize_cmd(&a, false)
        .expect_err("unreachable")
        .to_string();
    assert!(e.contains("budget NOT met"), "{e}");
    assert!(e.contains("less than 100.0% of MACs INT8"), "{e}");
}

#[test]
fn bad_budget_flags_are_refused() {
    let o = tmp("bad.onnx").display().to_string();
    let (m, c, x) = (
        digits("digits_mbv.onnx"),
        digits("calib_x.npy"),
        digits("test_x.npy"),
    );
    let base = ["lpc", "quantize", &m, "--calib", &c, "-o", &o];
    let cases: &[(&[&str], &str)] = &[
        (
            &["--metric", "top1", "--max-drop", "1", "--data", &x],
            "--metric top1 needs --labels",
        ),
        (&["--metric", "sqnr", "--max-drop", "1"], "--min-sqnr DB"),
        (&["--metric", "agreement"], "needs a budget"),
        (&["--max-drop", "1", "--min-sqnr", "20"], "not both"),
        (&["--max-drop", "-1"], "cannot be negative"),
        (
            &["--min-sqnr", "20", "--metric", "top1"],
            "takes --max-drop",
        ),
        (&["--data", &x], "need a budget"),
        (
            &["--max-drop", "0", "--min-int8-macs", "1.5"],
            "fraction in [0, 1]",
        ),
    ];
    for (extra, want) in cases {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(extra);
        let e = quantize_cmd(&parse(&v), false)
            .expect_err("bad flags")
            .to_string();
        assert!(e.contains(want), "{extra:?}: {e}");
    }
    // An unknown metric is a usage error, naming the flag.
    let mut v: Vec<&str> = base.to_vec();
    v.extend_from_slice(&["--metric", "bleu", "--max-drop", "1"]);
    let e = Lpc::try_parse_from(&v)
        .err()
        .expect("unknown metric")
        .to_string();
    assert!(
        e.contains("'--metric <METRIC>'") && e.contains("unknown metric"),
        "{e}"
    );
    // Labels that do not match the evaluation data.
    let v = [
        "lpc",
        "quantize",
        &m,
        "--calib",
        &c,
        "-o",
        &o,
        "--max-drop",
        "0",
        "--metric",
        "top1",
        "--labels",
        &digits("test_y.npy"),
    ];
    let e = quantize_cmd(&parse(&v), false)
        .expect_err("300 calibration samples, 500 labels")
        .to_string();
    assert!(e.contains("500 labels for 300"), "{e}");
}
