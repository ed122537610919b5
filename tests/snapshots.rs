//! Insta snapshots of folded graphs in `<workspace>/snapshots/`: lpc's own quantized digits and
//! ppocr cls models (checked-in `.lir` fixtures made once with `lpc quantize`), the ONNX Runtime QDQ and
//! the NNCF OpenVINO IR digits models. Each snapshot is the ops left in float (with reasons)
//! followed by the folded `.lir` text (large constants by digest). A mismatch fails the test;
//! bless new output with `cargo insta review` or `INSTA_UPDATE=always cargo test -p lpc-suite
//! --test snapshots` (see docs/rule-language.md).

use lpc_fold::{fold, report, FoldOptions, Pipeline};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn peers() -> PathBuf {
    root().join("../shared/data/digits/quantized-by-peers")
}

fn fixtures() -> PathBuf {
    root().join("crates/lpc-fold/tests/fixtures")
}

/// The snapshot text of one folded model.
fn folded_text(model: &Path) -> String {
    let g = lpc_load::load_model(model).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let pipeline = Pipeline::builtin().expect("builtin pipeline");
    let r = fold(&g, &pipeline, &FoldOptions::default()).expect("fold");
    lpc_ir::verify(&r.graph).expect("folded graph verifies");
    let mut s = String::from("# float ops left:");
    let left = report::float_ops(&r.graph);
    if left.is_empty() {
        s += " none\n";
    } else {
        s += "\n";
        for (op, why, n) in left {
            s += &format!("#   {n} × {op}: {why}\n");
        }
    }
    s + &lpc_ir::text::print(&r.graph)
}

fn snapshot(name: &str, model: &Path) {
    let text = folded_text(model);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    // Shown above the diff of a failing snapshot.
    settings.set_description(
        "bless an intended change: cargo insta review, or INSTA_UPDATE=always cargo test -p lpc-suite --test snapshots",
    );
    settings.bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn digits_cnn_lpc() {
    snapshot(
        "digits_cnn.lpc-int8",
        &fixtures().join("digits_cnn.lpc-int8.lir"),
    );
}

#[test]
fn digits_mbv_lpc() {
    snapshot(
        "digits_mbv.lpc-int8",
        &fixtures().join("digits_mbv.lpc-int8.lir"),
    );
}

/// The fixture: `lpc quantize ../shared/models/ch_ppocr_mobile_v2.0_cls_infer.onnx --calib DIR
/// --size 48x192 --bgr --mean 0.5 --std 0.5 --crops 75 --subset 300 --seed 1 -o
/// ppocr_cls.lpc-int8.lir`, DIR holding astronaut, coffee, camera and page.png of
/// `../shared/data/images`.
#[test]
fn ppocr_cls_lpc() {
    snapshot(
        "ppocr_cls.lpc-int8",
        &fixtures().join("ppocr_cls.lpc-int8.lir"),
    );
}

#[test]
fn digits_cnn_ort_qdq() {
    snapshot(
        "digits_cnn.ort-qdq",
        &peers().join("digits_cnn.ort-qdq.onnx"),
    );
}

#[test]
fn digits_mbv_ort_qdq() {
    snapshot(
        "digits_mbv.ort-qdq",
        &peers().join("digits_mbv.ort-qdq.onnx"),
    );
}

#[test]
fn digits_cnn_nncf() {
    snapshot(
        "digits_cnn.nncf-int8",
        &peers().join("digits_cnn.nncf-int8.xml"),
    );
}

#[test]
fn digits_mbv_nncf() {
    snapshot(
        "digits_mbv.nncf-int8",
        &peers().join("digits_mbv.nncf-int8.xml"),
    );
}

/// Folding is deterministic: the same model folds to the same text twice.
#[test]
fn fold_is_deterministic() {
    let m = peers().join("digits_mbv.nncf-int8.xml");
    assert_eq!(folded_text(&m), folded_text(&m));
}
