//! Accuracy-aware quantization (`lpc quantize --max-drop/--min-sqnr`): half-image data, the
//! ppocr det measurement (ignored; release build) and the gain-per-MAC order. The tests that go
//! through the `lpc quantize`/`lpc accuracy` argument structs are in lpc-cli's
//! `tests/budget_verbs.rs`.

use lpc_data::SampleSource;
use lpc_data::{ImageOptions, LoadOptions, Samples};
use lpc_quant::aaq::{
    quantize_within_budget, BudgetJob, Evaluator, Metric, Order, SearchConfig, SearchOptions,
    Target,
};
use lpc_quant::BiasCorrectionMode;
use lpc_quant::Config;
use std::path::{Path, PathBuf};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn tmp(f: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lpc-quant-budget-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(f)
}

/// Writes the left or right half (by width, as `benches/quantize_vs_ort.py` cuts it) of a PNG
/// from the shared images as an 8-bit PNG of the same colour type into `dir`.
fn half_png(file: &str, right: bool, dir: &Path) -> PathBuf {
    let f = std::fs::File::open(shared().join("data/images").join(file)).unwrap();
    let mut dec = png::Decoder::new(std::io::BufReader::new(f));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0u8; r.output_buffer_size()];
    let info = r.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let ch = info.color_type.samples();
    let (x0, x1) = if right { (w / 2, w) } else { (0, w / 2) };
    let mut out = Vec::with_capacity((x1 - x0) * h * ch);
    for y in 0..h {
        out.extend_from_slice(&buf[(y * w + x0) * ch..(y * w + x1) * ch]);
    }
    let stem = file.trim_end_matches(".png");
    let path = dir.join(format!(
        "{stem}_{}.png",
        if right { "right" } else { "left" }
    ));
    let mut enc = png::Encoder::new(
        std::io::BufWriter::new(std::fs::File::create(&path).unwrap()),
        (x1 - x0) as u32,
        h as u32,
    );
    enc.set_color(info.color_type);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(&out).unwrap();
    path
}

#[test]
fn half_png_cuts_by_width() {
    let d = tmp("halves");
    std::fs::create_dir_all(&d).unwrap();
    let (l, r) = (
        half_png("page.png", false, &d),
        half_png("page.png", true, &d),
    );
    let dims = |p: &Path| {
        let r = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(p).unwrap()))
            .read_info()
            .unwrap();
        (r.info().width, r.info().height)
    };
    let (w, h) = dims(&shared().join("data/images/page.png"));
    assert_eq!(dims(&l), (w / 2, h));
    assert_eq!(dims(&r), (w - w / 2, h));
}

/// PaddleOCR det at 320×320 with an SQNR budget (measurement; release build):
/// `cargo test -p lpc-quant --release --test budget ppocr_det -- --ignored --nocapture`.
/// Calibration: 300 crops of astronaut/coffee/camera and the LEFT half of page.png; evaluation
/// sets as in `benches/quantize_vs_ort.py`: `text`, 100 crops of the RIGHT half of page.png
/// (held-out text, what a text detector is for), and `photos`, 100 crops of brick/grass (no
/// text: det's output is ~0 there, see docs/quantization.md). The search runs on `LPC_EVAL`
/// (`text`, default, or `photos`); the other set measures the fully quantized and the returned
/// model (`LPC_OTHER=0` skips it). `LPC_MIN_SQNR` (25), `LPC_ORDER` (`gain`, default, or
/// `sensitivity`), `LPC_TRIM` (0; 1 runs the trim pass), `LPC_REFINE` (8), `LPC_RANK` (8
/// ranking samples), `LPC_MIN_INT8` (0), `LPC_RERANK` (1; 0 turns the boundary re-rank off).
#[test]
#[ignore = "measurement (minutes): cargo test -p lpc-quant --release --test budget ppocr_det -- --ignored --nocapture"]
fn ppocr_det_sqnr_25() {
    let env = |k: &str, d: f64| -> f64 {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let db = env("LPC_MIN_SQNR", 25.0);
    let on = std::env::var("LPC_EVAL").unwrap_or_else(|_| "text".into());
    assert!(
        on == "text" || on == "photos",
        "LPC_EVAL={on}: text or photos"
    );
    let order = match std::env::var("LPC_ORDER").as_deref() {
        Ok("sensitivity") => Order::Sensitivity,
        Ok("gain") | Err(_) => Order::GainPerMac,
        Ok(o) => panic!("LPC_ORDER={o}: gain or sensitivity"),
    };
    let opts = SearchOptions {
        order,
        trim: std::env::var("LPC_TRIM").as_deref() == Ok("1"),
        refine: env("LPC_REFINE", 8.0) as usize,
        rerank: std::env::var("LPC_RERANK").as_deref() != Ok("0"),
    };
    let g = lpc_load::load_model(&shared().join("models/ch_PP-OCRv4_det_infer.onnx")).unwrap();
    let folder = |name: &str, files: &[&str], halves: &[(&str, bool)]| {
        let d = tmp(name);
        std::fs::create_dir_all(&d).unwrap();
        for f in files {
            std::fs::copy(shared().join("data/images").join(f), d.join(f)).unwrap();
        }
        for (f, right) in halves {
            half_png(f, *right, &d);
        }
        d
    };
    let image = ImageOptions {
        size: Some((320, 320)),
        bgr: true,
        mean: vec![0.5],
        std: vec![0.5],
        crops_per_image: 75,
        ..Default::default()
    };
    let calib = Samples::open(
        &folder(
            "calib",
            &["astronaut.png", "coffee.png", "camera.png"],
            &[("page.png", false)],
        ),
        &g,
        &LoadOptions {
            subset: Some(300),
            seed: 1,
            image: image.clone(),
        },
    )
    .unwrap();
    let open_eval = |set: &str| {
        let (dir, crops) = if set == "text" {
            (folder("eval_text", &[], &[("page.png", true)]), 100)
        } else {
            (folder("eval_photos", &["brick.png", "grass.png"], &[]), 50)
        };
        Samples::open(
            &dir,
            &g,
            &LoadOptions {
                subset: Some(100),
                seed: 2,
                image: ImageOptions {
                    crops_per_image: crops,
                    ..image.clone()
                },
            },
        )
        .unwrap()
    };
    let eval = open_eval(&on);
    // As `lpc quantize --min-sqnr` (`LPC_BC=fast` for fast bias corrections throughout).
    let seq = std::env::var("LPC_BC").as_deref() != Ok("fast");
    let qcfg = Config {
        progress: true,
        report_samples: 0,
        bias_correction_mode: if seq {
            BiasCorrectionMode::Sequential
        } else {
            BiasCorrectionMode::Fast
        },
        ..Config::default()
    };
    let cfg = SearchConfig {
        target: Target::new(Metric::Sqnr, db).unwrap(),
        rank_samples: env("LPC_RANK", 8.0) as usize,
        min_int8_macs: env("LPC_MIN_INT8", 0.0),
        batch: 4,
        progress: true,
    };
    let ts = std::time::Instant::now();
    let job = BudgetJob {
        graph: &g,
        calib: &calib,
        config: &qcfg,
        eval: &eval,
        labels: None,
    };
    let (q, o) = quantize_within_budget(&job, &cfg, &opts, |l| println!("  {l}")).unwrap();
    let tq = o
        .times
        .iter()
        .find(|t| t.0 == "quantize")
        .map_or(0.0, |t| t.1);
    let ev = Evaluator::new(&q.reference, &eval, None, 4, true).unwrap();
    let search_s = ts.elapsed().as_secs_f64();
    println!("{}", o.table());
    // The returned graph, measured on its own, is what the search reported.
    let again = ev.measure(&o.graph).unwrap();
    // (Both are +inf when every unit ended in FP32.)
    assert!(again.sqnr_db == o.fin.sqnr_db || (again.sqnr_db - o.fin.sqnr_db).abs() < 1e-6);
    assert_eq!(o.reached, cfg.target.met(&again));
    // The floor for the default settings on held-out text: 25 dB with >= 70% of the
    // MACs in INT8 (measured 2026-11-28: 25.26 dB, 76.9%; with sequential bias correction
    // measured first and re-applied after the search: 25.34 dB, 77.2%).
    if on == "text" && db == 25.0 && opts == SearchOptions::default() && seq {
        assert!(
            o.reached && o.int8_macs >= 0.70,
            "{:.1}% INT8",
            o.int8_macs * 100.0
        );
    }
    println!(
        "PPOCR-DET-AAQ on {on}: {opts:?}, quantize {tq:.1} s, quantize + search {search_s:.1} s, fully quantized {:.2} dB, final {:.2} dB, INT8 MACs {:.1}%, {} units in FP32 of {}, {} samples",
        o.initial.sqnr_db,
        o.fin.sqnr_db,
        o.int8_macs * 100.0,
        o.fp32.len(),
        o.units.len(),
        eval.len()
    );
    if std::env::var("LPC_OTHER").as_deref() != Ok("0") {
        let other = if on == "text" { "photos" } else { "text" };
        let data = open_eval(other);
        let ev2 = Evaluator::new(&q.reference, &data, None, 4, true).unwrap();
        println!(
            "PPOCR-DET-AAQ on {other} (held out from the search): fully quantized {:.2} dB, returned model {:.2} dB",
            ev2.measure(&q.graph).unwrap().sqnr_db,
            ev2.measure(&o.graph).unwrap().sqnr_db
        );
    }
    std::fs::write(
        tmp(&format!("ppocr_det_aaq_{on}.json")),
        o.to_json().to_string_pretty(),
    )
    .unwrap();
    println!(
        "report: {}",
        tmp(&format!("ppocr_det_aaq_{on}.json")).display()
    );
}

#[test]
fn gain_per_mac_order_puts_cheap_sensitive_units_first() {
    use lpc_quant::aaq::{search_order, Measure, Sensitivity, Unit, UnitKind};
    let unit = |name: &str, kind: UnitKind, macs: u64| Unit {
        name: name.into(),
        op: "conv",
        kind,
        macs,
        int8: kind == UnitKind::Layer,
    };
    // big: +1.0 dB for 900 MACs; small: +0.5 dB for 10 MACs; join: +0.1 dB for free;
    // useless: -0.2 dB (returning it alone makes the subset worse).
    let units = vec![
        unit("big", UnitKind::Layer, 900),
        unit("small", UnitKind::Layer, 10),
        unit("join", UnitKind::Join, 0),
        unit("useless", UnitKind::Layer, 90),
    ];
    let m = |db: f64| Measure {
        samples: 8,
        sqnr_db: db,
        ..Default::default()
    };
    let base = m(16.0);
    let ranking: Vec<Sensitivity> = [(0, 17.0), (1, 16.5), (2, 16.1), (3, 15.8)]
        .into_iter()
        .map(|(unit, db)| Sensitivity {
            unit,
            measure: m(db),
        })
        .collect();
    let t = Target::new(Metric::Sqnr, 25.0).unwrap();
    assert_eq!(
        search_order(&ranking, &base, &units, &t, 1000, Order::Sensitivity),
        vec![0, 1, 2, 3]
    );
    assert_eq!(
        search_order(&ranking, &base, &units, &t, 1000, Order::GainPerMac),
        vec![2, 1, 0, 3]
    );
    // Drop metrics: points first, SQNR per MAC among equal points.
    let t = Target::new(Metric::Agreement, 0.0).unwrap();
    let flips = |f: usize, db: f64| Measure { flips: f, ..m(db) };
    let base = flips(2, 16.0);
    let ranking: Vec<Sensitivity> = [(0, 0, 17.0), (1, 2, 16.5), (2, 2, 16.1), (3, 1, 15.0)]
        .into_iter()
        .map(|(unit, f, db)| Sensitivity {
            unit,
            measure: flips(f, db),
        })
        .collect();
    // big: 2 flips fixed per 900 MACs; useless: 1 per 90 (better per MAC); then the SQNR-only
    // gains, free join first.
    assert_eq!(
        search_order(&ranking, &base, &units, &t, 1000, Order::GainPerMac),
        vec![3, 0, 2, 1]
    );
}
