//! PaddleOCR measurements (not run by default; they take a while in debug builds):
//! `cargo test -p lpc-quant --release --test ppocr -- --ignored --nocapture`.
//! Calibration: 300 seeded random crops of astronaut/coffee/camera/page; evaluation: 100 crops
//! of brick/grass (other photos); SQNR of the INT8 (FakeQuantize) outputs against FP32.

use lpc_quant::accuracy::evaluate;
use lpc_quant::calib::{ImageOptions, LoadOptions, Samples};
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

fn measure(model: &str, size: Option<(usize, usize)>) {
    let g = lpc_onnx::load_model(&shared().join("models").join(model)).unwrap();
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
            subset: Some(300),
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
            ..Config::default()
        },
    )
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let eval = Samples::open(
        &eval_dir,
        &g,
        &LoadOptions {
            subset: Some(100),
            seed: 2,
            image: ImageOptions {
                crops_per_image: 50,
                ..image
            },
        },
    )
    .unwrap();
    let acc = evaluate(&q.graph, Some(&g), &eval, None, false, 8, true).unwrap();
    println!("PPOCR {model}: quantized in {secs:.1} s; {}", acc.summary());
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
