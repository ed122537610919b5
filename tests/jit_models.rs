//! Whole models under the JIT (moved here from `crates/lpc-jit/tests/models.rs`: they cross the
//! pipeline: onnx, quant, fold) give the same outputs as lpc-ref: bit-identical for integer
//! graphs (lpc-quantized and folded, ORT QDQ and NNCF IR folded, and a synthetic graph of every
//! elementwise quantized op), within 1e-5 for FP32 ones.

use lpc_ir::{Graph, Tensor};
use lpc_jit::{CompileOptions, CompiledModel, JitError, LowerOptions};
use std::path::PathBuf;

fn shared(f: &str) -> PathBuf {
    lpc_suite::shared().join("data").join("digits").join(f)
}

/// The first `n` test images.
fn images(n: usize) -> Tensor {
    let x = lpc_data::read_npy(&shared("test_x.npy")).expect("test_x.npy");
    let per = 16 * 16;
    Tensor::from_f32(&[n, 1, 16, 16], x.as_f32().unwrap()[..n * per].to_vec()).unwrap()
}

fn fold(g: &Graph) -> Graph {
    lpc_fold::fold_graph(g, &[], None, None)
        .expect("fold")
        .graph
}

/// lpc's own pipeline: quantize (min-max, 64 calibration samples) then fold.
fn lpc_int8(model: &str) -> Graph {
    let g = lpc_load::load_model(&shared(model)).expect("load");
    let data = lpc_data::Samples::open(
        &shared("calib_x.npy"),
        &g,
        &lpc_data::LoadOptions {
            subset: Some(64),
            ..Default::default()
        },
    )
    .expect("calib");
    let q = lpc_quant::quantize(
        &g,
        &data,
        &lpc_quant::Config {
            estimator: lpc_quant::Estimator::MinMax,
            report_samples: 0,
            ..Default::default()
        },
    )
    .expect("quantize");
    fold(&q.graph)
}

fn peer_int8(file: &str) -> Graph {
    fold(&lpc_load::load_model(&shared(&format!("quantized-by-peers/{file}"))).expect("load"))
}

fn compile(g: &Graph, x: &Tensor, threads: usize) -> CompiledModel {
    CompiledModel::compile(
        g,
        &[x.shape().to_vec()],
        &CompileOptions {
            threads: Some(threads),
            ..Default::default()
        },
    )
    .expect("compile")
}

/// Runs `g` under both backends at batch 1 and 8 and demands identical outputs; returns the
/// number of JIT kernel steps (not fallback or view) of the batch-8 plan. One thread runs on
/// the caller (every kernel's serial path), two on the model's pool.
fn same_as_ref(g: &Graph) -> usize {
    let mut kernels = 0;
    for (n, threads) in [(1, 1), (8, 1), (8, 2)] {
        let x = images(n);
        let want = lpc_ref::run(g, std::slice::from_ref(&x)).expect("ref");
        let m = compile(g, &x, threads);
        let got = m.run(std::slice::from_ref(&x)).expect("jit");
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!(
                a.same_content(b),
                "batch {n}: jit {a} vs ref {b}\n{}",
                m.stats()
            );
        }
        // A second run reuses the pooled buffers and must give the same answer.
        let again = m.run(std::slice::from_ref(&x)).expect("jit again");
        assert!(again.iter().zip(&want).all(|(a, b)| a.same_content(b)));
        kernels = m
            .plan()
            .steps
            .iter()
            .filter(|s| s.kind().starts_with("jit"))
            .count();
    }
    kernels
}

#[test]
fn digits_cnn_lpc_int8_is_bit_exact() {
    let g = lpc_int8("digits_cnn.onnx");
    let k = same_as_ref(&g);
    assert!(
        k >= 3,
        "expected the convs and the matmul on JIT kernels, got {k}"
    );
}

#[test]
fn digits_mbv_lpc_int8_is_bit_exact() {
    let g = lpc_int8("digits_mbv.onnx");
    let k = same_as_ref(&g);
    assert!(k >= 3, "expected JIT kernels, got {k}");
}

/// The fallback steps of `g`'s plan at batch 1, by op.
fn fallbacks(g: &Graph) -> Vec<String> {
    let m = compile(g, &images(1), 1);
    m.plan()
        .steps
        .iter()
        .map(|s| s.kind())
        .filter(|k| k.starts_with("fallback"))
        .collect()
}

#[test]
fn ort_qdq_models_are_bit_exact_after_fold() {
    for f in ["digits_cnn.ort-qdq.onnx", "digits_mbv.ort-qdq.onnx"] {
        same_as_ref(&peer_int8(f));
    }
    // The activation DequantizeLinear and the hard-swish Lut of mbv run on JIT kernels.
    let fb = fallbacks(&peer_int8("digits_mbv.ort-qdq.onnx"));
    assert!(
        !fb.iter()
            .any(|k| k == "fallback:dequantize_linear" || k == "fallback:lut"),
        "{fb:?}"
    );
}

#[test]
fn nncf_ir_models_are_bit_exact_after_fold() {
    for f in ["digits_cnn.nncf-int8.xml", "digits_mbv.nncf-int8.xml"] {
        same_as_ref(&peer_int8(f));
    }
    // mbv's per-channel activation QuantizeLinear runs on the JIT kernel.
    let fb = fallbacks(&peer_int8("digits_mbv.nncf-int8.xml"));
    assert!(
        !fb.iter().any(|k| k == "fallback:quantize_linear"),
        "{fb:?}"
    );
}

/// `n` values of a 256-entry table as `.lir` text.
fn table(f: impl Fn(i64) -> String) -> String {
    (0..256).map(f).collect::<Vec<_>>().join(", ")
}

/// Every elementwise quantized op the JIT lowers (per-axis Quantize/DequantizeLinear, i32
/// DequantizeLinear, Requantize, QAdd with a clamp, Lut to u8/i8/i32/f32) and two it does not
/// (QAdds with per-channel parameters and with a broadcast operand), on inputs with out-of-range values, NaN and infinities, over more
/// elements than one parallel chunk (the chunk edge falls inside a per-axis channel run).
#[test]
fn elementwise_quantized_ops_are_bit_exact() {
    let text = format!(
        r#"graph @ew(%x: f32[N,4,5,7]) -> (%d1, %lf, %li, %d32, %ac) {{
  %s4 = const f32[4] [0.05, 0.1, 0.0123, 0.7]
  %z4 = const u8[4] [0, 17, 128, 255]
  %q1 = quantize_linear(%x, %s4, %z4) {{dtype=u8}} : u8[N,4,5,7]
  %d1 = dequantize_linear(%q1, %s4, %z4) : f32[N,4,5,7]
  %s = const f32[] [0.037]
  %zi = const i8[] [-5]
  %q2 = quantize_linear(%x, %s, %zi) {{dtype=i8}} : i8[N,4,5,7]
  %s2 = const f32[] [0.011]
  %zu = const u8[] [131]
  %r = requantize(%q2, %s, %zi, %s2, %zu) : u8[N,4,5,7]
  %sy = const f32[] [0.02]
  %zy = const u8[] [100]
  %lo = const i32[] [105]
  %hi = const i32[] [240]
  %a = qadd(%r, %s2, %zu, %q2, %s, %zi, %sy, %zy, %lo, %hi) : u8[N,4,5,7]
  %tf = const f32[256] [{tf}]
  %lf = lut(%a, %tf) : f32[N,4,5,7]
  %ti = const i8[256] [{ti}]
  %li = lut(%q2, %ti) : i8[N,4,5,7]
  %t32 = const i32[256] [{t32}]
  %l32 = lut(%li, %t32) : i32[N,4,5,7]
  %z32 = const i32[] [-70000]
  %d32 = dequantize_linear(%l32, %s2, %z32) : f32[N,4,5,7]
  %q3 = quantize_linear(%x, %s4, %z4) {{dtype=u8, axis=-3}} : u8[N,4,5,7]
  %sb = const f32[4,1,1] [0.1, 0.2, 0.3, 0.4]
  %zb = const u8[4,1,1] [1, 2, 3, 4]
  %ab = qadd(%q3, %sb, %zb, %a, %sy, %zy, %s2, %zu) : u8[N,4,5,7]
  %c7 = const u8[7] [0, 50, 100, 150, 200, 250, 255]
  %ac = qadd(%ab, %s2, %zu, %c7, %sy, %zy, %s, %zu) : u8[N,4,5,7]
  return %d1, %lf, %li, %d32, %ac
}}
"#,
        tf = table(|k| format!("{}", (k as f32 - 100.0) * 0.25)),
        ti = table(|k| format!("{}", (k * 37 % 256) - 128)),
        t32 = table(|k| format!("{}", (k - 128) * 1_000_003)),
    );
    let g = lpc_ir::text::parse(&text).expect("parse");
    // 200 images of 140 elements: 28000 elements, two chunks of 16384.
    let n = 200;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let x: Vec<f32> = (0..n * 140)
        .map(|i| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (state >> 40) as f32 / (1u64 << 24) as f32;
            match i % 97 {
                0 => f32::NAN,
                1 => f32::INFINITY,
                2 => f32::NEG_INFINITY,
                _ => (u - 0.5) * 30.0,
            }
        })
        .collect();
    let x = Tensor::from_f32(&[n, 4, 5, 7], x).unwrap();
    let want = lpc_ref::run(&g, std::slice::from_ref(&x)).expect("ref");
    for threads in [1, 2] {
        let m = compile(&g, &x, threads);
        let kinds: Vec<String> = m.plan().steps.iter().map(|s| s.kind()).collect();
        for k in ["quantize", "dequantize", "requantize", "qadd", "lut"] {
            assert!(
                kinds.contains(&format!("jit elementwise ({k})")),
                "no {k} kernel: {kinds:?}"
            );
        }
        let fb: Vec<&String> = kinds.iter().filter(|k| k.starts_with("fallback")).collect();
        assert_eq!(
            fb, ["fallback:qadd"; 2],
            "only the broadcasting QAdds fall back"
        );
        let got = m.run(std::slice::from_ref(&x)).expect("jit");
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!(a.same_content(b), "threads {threads}: jit {a} vs ref {b}");
        }
    }
}

#[test]
fn fp32_model_runs_through_the_fallback() {
    let g = lpc_load::load_model(&shared("digits_mbv.onnx")).expect("load");
    for (n, threads) in [(1, 1), (8, 1), (8, 2)] {
        let x = images(n);
        let want = lpc_ref::run(&g, std::slice::from_ref(&x)).expect("ref");
        let got = compile(&g, &x, threads)
            .run(std::slice::from_ref(&x))
            .expect("jit");
        for (a, b) in got.iter().zip(&want) {
            assert_eq!(a.shape(), b.shape());
            for (p, q) in a.to_f32_vec().iter().zip(b.to_f32_vec()) {
                assert!((p - q).abs() <= 1e-5 * q.abs().max(1.0), "{p} vs {q}");
            }
        }
    }
}

#[test]
fn kernels_off_gives_the_same_answer_as_kernels_on() {
    let g = lpc_int8("digits_cnn.onnx");
    let x = images(3);
    let on = compile(&g, &x, 2).run(std::slice::from_ref(&x)).unwrap();
    let off = CompiledModel::compile(
        &g,
        &[x.shape().to_vec()],
        &CompileOptions {
            threads: Some(1),
            lower: LowerOptions {
                gemm: false,
                views: false,
                elementwise: false,
                float: false,
                ..Default::default()
            },
        },
    )
    .unwrap();
    assert!(off
        .plan()
        .steps
        .iter()
        .all(|s| s.kind().starts_with("fallback")));
    let off = off.run(std::slice::from_ref(&x)).unwrap();
    assert!(on.iter().zip(&off).all(|(a, b)| a.same_content(b)));
}

#[test]
fn other_shapes_are_refused_naming_the_input() {
    let g = lpc_load::load_model(&shared("digits_cnn.onnx")).expect("load");
    let m = compile(&g, &images(2), 1);
    let e = m.run(&[images(3)]).unwrap_err();
    assert!(
        matches!(&e, JitError::Input { name, .. } if name == "input"),
        "{e}"
    );
    assert!(
        e.to_string().contains("compiled for shape [2, 1, 16, 16]"),
        "{e}"
    );
    let e = m.run(&[]).unwrap_err();
    assert!(e.to_string().contains("1 inputs, 0 given"), "{e}");
    let bad = Tensor::zeros(lpc_ir::DType::U8, &[2, 1, 16, 16]);
    assert!(m.run(&[bad]).unwrap_err().to_string().contains("dtype"));
    // Binding a declared dimension to another size fails at compile time.
    let e = CompiledModel::compile(&g, &[vec![2, 3, 16, 16]], &CompileOptions::default())
        .err()
        .expect("wrong channel count");
    assert!(e.to_string().contains("input"), "{e}");
}

#[test]
fn buffers_are_freed_and_reused() {
    let g = lpc_int8("digits_cnn.onnx");
    let m = compile(&g, &images(4), 1);
    let mem = m.plan().memory();
    assert!(mem.peak_bytes < mem.total_bytes, "{mem:?}");
    // Every computed value except the outputs is freed by exactly one step.
    let p = m.plan();
    for (s, slot) in p.slots.iter().enumerate() {
        if matches!(slot.source, lpc_jit::SlotSource::Step) && !p.outputs.contains(&s) {
            let n = p.steps.iter().filter(|st| st.frees.contains(&s)).count();
            assert_eq!(n, 1, "{} freed {n} times", slot.name);
        }
    }
}

/// ppocr cls in FP32 (HardSwish, HardSigmoid, squeeze-excite scales, GlobalAveragePool): the
/// JIT runs its float ops as fused chains and pools and agrees with lpc-ref within 1e-5.
#[test]
fn ppocr_cls_fp32_float_kernels_match_ref() {
    let path = lpc_suite::shared()
        .join("models")
        .join("ch_ppocr_mobile_v2.0_cls_infer.onnx");
    let g = lpc_load::load_model(&path).expect("load");
    let shape = [1usize, 3, 48, 192];
    let n: usize = shape.iter().product();
    // A deterministic image-like input in [-1, 1].
    let v: Vec<f32> = (0..n)
        .map(|i| ((i as u64 * 2654435761) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    let x = Tensor::from_f32(&shape, v).unwrap();
    let want = lpc_ref::run(&g, std::slice::from_ref(&x)).expect("ref");
    let m = compile(&g, &x, 2);
    let kinds: Vec<String> = m.plan().steps.iter().map(|s| s.kind()).collect();
    assert!(
        kinds.iter().any(|k| k.starts_with("jit float (chain of")),
        "no fused chain in {kinds:?}"
    );
    assert!(kinds.iter().any(|k| k == "jit float (global_average_pool)"));
    let got = m.run(std::slice::from_ref(&x)).expect("jit");
    assert_eq!(got.len(), want.len());
    for (a, b) in got.iter().zip(&want) {
        assert_eq!(a.shape(), b.shape());
        for (p, q) in a.to_f32_vec().iter().zip(b.to_f32_vec()) {
            assert!((p - q).abs() <= 1e-5 * q.abs().max(1.0), "{p} vs {q}");
        }
    }
}
