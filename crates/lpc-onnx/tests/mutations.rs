//! Hostile input: truncated and byte-flipped copies of every shared model must import to Ok or
//! Err — never panic, never abort. Deterministic (fixed-seed xorshift).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn shared() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    assert!(
        p.join("DESIGN.md").exists(),
        "../shared is missing beside the project: {}",
        p.display()
    );
    p
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Imports `bytes`; returns a description if it panicked.
fn try_import(bytes: &[u8]) -> Option<String> {
    match catch_unwind(AssertUnwindSafe(|| {
        let r = lpc_onnx::import_bytes(bytes, None);
        // Whatever imports must also survive type inference and verification without panicking.
        if let Ok(mut g) = r {
            let _ = lpc_ir::infer_types(&mut g);
            let _ = lpc_ir::verify(&g);
        }
    })) {
        Ok(()) => None,
        Err(e) => Some(
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default(),
        ),
    }
}

#[test]
fn mutated_models_never_panic() {
    let s = shared();
    let files = [
        (s.join("data/digits/digits_cnn.onnx"), 1500),
        (s.join("data/digits/digits_mbv.onnx"), 1500),
        (
            s.join("data/digits/quantized-by-peers/digits_cnn.ort-qdq.onnx"),
            800,
        ),
        (
            s.join("data/digits/quantized-by-peers/digits_mbv.ort-qdq.onnx"),
            800,
        ),
        (s.join("models/ch_ppocr_mobile_v2.0_cls_infer.onnx"), 150),
        (s.join("models/light_squeezenet.onnx"), 60),
        (s.join("models/ch_PP-OCRv4_det_infer.onnx"), 40),
        (s.join("models/light_resnet50.onnx"), 20),
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut panics = vec![];
    let mut total = 0;
    let mut errors = 0;
    std::panic::set_hook(Box::new(|_| {}));
    for (path, n) in files {
        let orig = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for k in 0..n {
            let mut b = orig.clone();
            match k % 4 {
                0 => b.truncate(rng.below(orig.len())),
                1 => {
                    for _ in 0..1 + rng.below(8) {
                        let i = rng.below(b.len());
                        b[i] ^= 1 << rng.below(8);
                    }
                }
                2 => {
                    for _ in 0..1 + rng.below(4) {
                        let i = rng.below(b.len());
                        b[i] = rng.next() as u8;
                    }
                }
                _ => {
                    // Overwrite a run with 0xff (huge varints, lengths and dims).
                    let i = rng.below(b.len());
                    let len = 1 + rng.below(10);
                    for x in b.iter_mut().skip(i).take(len) {
                        *x = 0xff;
                    }
                }
            }
            total += 1;
            if let Some(msg) = try_import(&b) {
                panics.push(format!("{} mutation {k}: {msg}", path.display()));
            } else if lpc_onnx::import_bytes(&b, None).is_err() {
                errors += 1;
            }
        }
    }
    let _ = std::panic::take_hook();
    assert!(total >= 4000, "only {total} mutations");
    assert!(
        errors > total / 10,
        "suspiciously few errors: {errors} of {total}"
    );
    assert!(
        panics.is_empty(),
        "{} of {total} mutations panicked:\n{}",
        panics.len(),
        panics.join("\n")
    );
}
