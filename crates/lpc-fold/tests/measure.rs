//! Fold measurements (not run by default): for each model, the float compute ops before and
//! after folding, the integer kernels made, and the fold time; the folded graphs are written
//! to `$LPC_FOLD_OUT` (default: the system temp dir) for `lpc accuracy FOLDED --reference
//! UNFOLDED`. Extra models (e.g. a quantized PP-OCR cls `.lir`) come from `$LPC_FOLD_MODELS`
//! (comma-separated). Run:
//! `cargo test -p lpc-fold --release --test measure -- --ignored --nocapture`.

use lpc_fold::{fold, FoldOptions, Pipeline};
use lpc_ir::{Graph, Op};
use std::path::{Path, PathBuf};

/// (float compute ops, integer kernels): FakeQuantize/Quantize/Dequantize, constants and inputs
/// are not compute; QConv/QMatMul count as integer even with an f32 epilogue.
fn counts(g: &Graph) -> (usize, usize) {
    let (mut float, mut int) = (0, 0);
    for n in g.node_ids() {
        let node = g.node(n);
        match &node.op {
            Op::Input { .. }
            | Op::Const(_)
            | Op::FakeQuantize { .. }
            | Op::QuantizeLinear { .. }
            | Op::DequantizeLinear { .. } => {}
            Op::QConv(_) | Op::QMatMul | Op::QAdd | Op::Lut | Op::Requantize => int += 1,
            _ => {
                if node
                    .outputs
                    .iter()
                    .any(|o| o.ty.dtype.is_some_and(|d| d.is_float()))
                {
                    float += 1;
                }
            }
        }
    }
    (float, int)
}

#[test]
#[ignore = "measurement: prints a table and writes folded graphs"]
fn fold_measurements() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let peers = root.join("../../../shared/data/digits/quantized-by-peers");
    let mut models: Vec<PathBuf> = vec![
        root.join("tests/fixtures/digits_cnn.lpc-int8.lir"),
        root.join("tests/fixtures/digits_mbv.lpc-int8.lir"),
        peers.join("digits_cnn.ort-qdq.onnx"),
        peers.join("digits_mbv.ort-qdq.onnx"),
        peers.join("digits_cnn.nncf-int8.xml"),
        peers.join("digits_mbv.nncf-int8.xml"),
    ];
    if let Ok(extra) = std::env::var("LPC_FOLD_MODELS") {
        models.extend(
            extra
                .split(',')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        );
    }
    let out = std::env::var("LPC_FOLD_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    let pipeline = Pipeline::builtin().expect("builtin pipeline");
    println!("| model | float ops before | after | integer kernels | fold ms |");
    println!("|---|---|---|---|---|");
    for m in models {
        let g = lpc_load::load_model(&m).unwrap_or_else(|e| panic!("{}: {e}", m.display()));
        let t = std::time::Instant::now();
        let r = fold(&g, &pipeline, &FoldOptions::default()).expect("fold");
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let (before, _) = counts(&g);
        let (after, int) = counts(&r.graph);
        let name = m.file_name().and_then(|s| s.to_str()).unwrap_or("model");
        println!("| {name} | {before} | {after} | {int} | {ms:.1} |");
        eprintln!("{name}:\n{}", lpc_fold::stats_text(&r));
        let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
        lpc_ir::text::write_lir(&out.join(format!("{stem}.folded.lir")), &r.graph)
            .expect("write folded");
    }
}
