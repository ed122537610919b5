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

/// Mutation `k` of `orig`: truncation, bit flips, random bytes or a run of 0xff, in turn.
fn mutate(rng: &mut Rng, orig: &[u8], k: usize) -> Vec<u8> {
    let mut b = orig.to_vec();
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
    b
}

/// The panic message of a caught panic.
fn message(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
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
        Err(e) => Some(message(e)),
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
            let b = mutate(&mut rng, &orig, k);
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

/// The recurrent ops' attributes and operands, mutated: whatever imports, infers and verifies
/// is also run by lpc-ref on the case's inputs, which must give outputs or an error.
#[test]
fn mutated_recurrent_models_never_panic() {
    mutated_cases_never_panic(
        &[
            "test_lstm_with_peepholes",
            "test_gru_seq_length",
            "test_simple_rnn_bidirectional",
        ],
        1200,
        40,
        0x5eed_0018_0018_0001,
    );
}

/// The same for the ops with subgraphs (If, Loop, Scan in both forms) and the newer standard
/// ops (Einsum's equation, RotaryEmbedding, TensorScatter, NonMaxSuppression, LinearAttention,
/// SwiGLU, RoiAlign, DeformConv, ImageDecoder, TfIdfVectorizer, MelWeightMatrix).
#[test]
fn mutated_control_flow_and_new_op_models_never_panic() {
    mutated_cases_never_panic(
        &[
            "test_if",
            "test_loop11",
            "test_scan9_sum",
            "test_scan_sum",
            "test_einsum_batch_matmul",
            "test_rotary_embedding",
            "test_tensorscatter",
            "test_nonmaxsuppression_center_point_box_format",
            "test_linear_attention_gated_delta",
            "test_swiglu",
            "test_roialign_aligned_true",
            "test_basic_deform_conv_with_padding",
            "test_image_decoder_decode_png_rgb",
            "test_tfidfvectorizer_tf_batch_uniandbigrams_skip5",
            "test_melweightmatrix",
        ],
        1000,
        200,
        0x5eed_0018_0018_0002,
    );
}

/// Mutates each case's model `n` times; every mutation that imports, infers and verifies is
/// run by lpc-ref on the case's inputs; none may panic, and at least `min_ran` must run.
fn mutated_cases_never_panic(cases: &[&str], n: usize, min_ran: usize, seed: u64) {
    let mut rng = Rng(seed);
    let mut panics = vec![];
    let mut ran = 0;
    std::panic::set_hook(Box::new(|_| {}));
    for case in cases {
        let dir = shared().join("onnx-node").join(case);
        let orig = std::fs::read(dir.join("model.onnx")).expect("model.onnx");
        let inputs: Vec<lpc_ir::Tensor> = (0..)
            .map(|k| dir.join(format!("test_data_set_0/input_{k}.pb")))
            .take_while(|p| p.exists())
            .map(|p| lpc_onnx::read_tensor_pb(&p).expect("input pb"))
            .collect();
        for k in 0..n {
            let b = mutate(&mut rng, &orig, k);
            let r = catch_unwind(AssertUnwindSafe(|| {
                let Ok(mut g) = lpc_onnx::import_bytes(&b, None) else {
                    return false;
                };
                if lpc_ir::infer_types(&mut g).is_err() || lpc_ir::verify(&g).is_err() {
                    return false;
                }
                let _ = lpc_ref::run(&g, &inputs);
                true
            }));
            match r {
                Ok(r) => ran += usize::from(r),
                Err(e) => panics.push(format!("{case} mutation {k}: {}", message(e))),
            }
        }
    }
    let _ = std::panic::take_hook();
    assert!(ran > min_ran, "only {ran} mutated models reached lpc-ref");
    assert!(
        panics.is_empty(),
        "{} panicked:\n{}",
        panics.len(),
        panics.join("\n")
    );
}
