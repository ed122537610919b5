//! Fold time of real models (criterion): `cargo bench -p lpc-fold --bench fold`.
//!
//! Setup quantizes each FP32 model from `../shared/models` with lpc-quant on a few image crops
//! (the graph's structure, not its ranges, decides the fold's work), then times `fold` with the
//! built-in pipeline on one core (egg is single-threaded). Issue target: ppocr det 320×320 under
//! 1 s.

use criterion::{criterion_group, criterion_main, Criterion};
use lpc_data::{ImageOptions, LoadOptions, Samples};
use lpc_fold::{fold, FoldOptions, Pipeline};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// The model quantized on `n` crops of `../shared/data/images` (ppocr preprocessing).
fn quantized(model: &str, size: (usize, usize), n: usize) -> lpc_ir::Graph {
    let path = shared().join("models").join(model);
    let g = lpc_load::load_model(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let image = ImageOptions {
        size: Some(size),
        bgr: true,
        mean: vec![0.5],
        std: vec![0.5],
        crops_per_image: 2,
        ..Default::default()
    };
    let calib = Samples::open(
        &shared().join("data/images"),
        &g,
        &LoadOptions {
            subset: Some(n),
            seed: 1,
            image,
        },
    )
    .unwrap_or_else(|e| panic!("calibration images: {e}"));
    let cfg = lpc_quant::Config {
        report_samples: 0,
        ..lpc_quant::Config::default()
    };
    lpc_quant::quantize(&g, &calib, &cfg)
        .unwrap_or_else(|e| panic!("{model}: {e}"))
        .graph
}

fn bench(c: &mut Criterion) {
    let pipeline = Pipeline::builtin().expect("built-in pipeline");
    let mut group = c.benchmark_group("fold");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for (name, model, size) in [
        (
            "ppocr_cls",
            "ch_ppocr_mobile_v2.0_cls_infer.onnx",
            (48, 192),
        ),
        ("ppocr_det_320", "ch_PP-OCRv4_det_infer.onnx", (320, 320)),
    ] {
        let g = quantized(model, size, 4);
        group.bench_function(name, |b| {
            b.iter(|| fold(&g, &pipeline, &FoldOptions::default()).expect("fold"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
