//! PaddleOCR measurements (not run by default; they take a while in debug builds):
//! `cargo test -p lpc-quant --release --test ppocr -- --ignored --nocapture`.
//! Calibration: 300 seeded random crops of astronaut/coffee/camera/page; evaluation: 100 crops
//! of brick/grass (other photos); SQNR of the INT8 (FakeQuantize) outputs against FP32.
//! For diagnosis: `LPC_PPOCR_PER_LAYER=1` also prints the per-layer SQNR ranking on the
//! evaluation data, `LPC_PPOCR_CALIB=N` / `LPC_PPOCR_EVAL=N` change the sample counts, and
//! `LPC_PPOCR_IGNORE=a,b` passes `--ignore` patterns.

use lpc_data::{ImageOptions, LoadOptions, Samples};
use lpc_quant::accuracy::evaluate;
use lpc_quant::{quantize, Config};
use std::path::{Path, PathBuf};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn folder(name: &str, files: &[&str]) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lpc-ppocr-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    for f in files {
        let _ = std::fs::copy(shared().join("data/images").join(f), d.join(f));
    }
    d
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn measure(model: &str, size: Option<(usize, usize)>) {
    let n_calib = env_usize("LPC_PPOCR_CALIB", 300);
    let n_eval = env_usize("LPC_PPOCR_EVAL", 100);
    let per_layer = std::env::var("LPC_PPOCR_PER_LAYER").is_ok_and(|v| v == "1");
    let ignore: Vec<String> = std::env::var("LPC_PPOCR_IGNORE")
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let g = lpc_load::load_model(&shared().join("models").join(model)).unwrap();
    let image = ImageOptions {
        size,
        bgr: true,
        mean: vec![0.5],
        std: vec![0.5],
        crops_per_image: 75,
        ..Default::default()
    };
    let calib_dir = folder(
        "calib",
        &["astronaut.png", "coffee.png", "camera.png", "page.png"],
    );
    let eval_dir = folder("eval", &["brick.png", "grass.png"]);
    let calib = Samples::open(
        &calib_dir,
        &g,
        &LoadOptions {
            subset: Some(n_calib),
            seed: 1,
            image: image.clone(),
        },
    )
    .unwrap();
    let t = std::time::Instant::now();
    let q = quantize(
        &g,
        &calib,
        &Config {
            progress: true,
            report_samples: 0,
            ignore,
            ..Config::default()
        },
    )
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let eval = Samples::open(
        &eval_dir,
        &g,
        &LoadOptions {
            subset: Some(n_eval),
            seed: 2,
            image: ImageOptions {
                crops_per_image: 50,
                ..image
            },
        },
    )
    .unwrap();
    let acc = evaluate(&q.graph, Some(&g), &eval, None, per_layer, 8, true).unwrap();
    let stages: Vec<String> = q
        .report
        .times
        .iter()
        .map(|(k, v)| format!("{k} {v:.1}"))
        .collect();
    println!(
        "PPOCR {model}: {n_calib} calibration samples quantized in {secs:.1} s ({}); warnings {:?}\n{}",
        stages.join(", "),
        q.report.warnings,
        acc.summary()
    );
}

#[test]
#[ignore = "measurement, prints figures (no floor yet): cargo test -p lpc-quant --test ppocr ppocr_cls -- --ignored --nocapture"]
fn ppocr_cls() {
    measure("ch_ppocr_mobile_v2.0_cls_infer.onnx", Some((48, 192)));
}

#[test]
#[ignore = "measurement, prints figures (no floor yet): cargo test -p lpc-quant --test ppocr ppocr_det -- --ignored --nocapture"]
fn ppocr_det() {
    measure("ch_PP-OCRv4_det_infer.onnx", Some((320, 320)));
}
