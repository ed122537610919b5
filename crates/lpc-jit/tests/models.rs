//! Whole models under the JIT give the same outputs as lpc-ref: bit-identical for integer
//! graphs (lpc-quantized and folded, ORT QDQ and NNCF IR folded), within 1e-5 for FP32 ones.

use lpc_ir::{Graph, Tensor};
use lpc_jit::{CompileOptions, CompiledModel, JitError, LowerOptions};
use std::path::{Path, PathBuf};

fn shared(f: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/digits")
        .join(f)
}

/// The first `n` test images.
fn images(n: usize) -> Tensor {
    let x = lpc_quant::calib::read_npy(&shared("test_x.npy")).expect("test_x.npy");
    let per = 16 * 16;
    Tensor::from_f32(&[n, 1, 16, 16], x.as_f32().unwrap()[..n * per].to_vec()).unwrap()
}

fn fold(g: &Graph) -> Graph {
    lpc_fold::cli::fold_graph(g, &[], None, None)
        .expect("fold")
        .graph
}

/// lpc's own pipeline: quantize (min-max, 64 calibration samples) then fold.
fn lpc_int8(model: &str) -> Graph {
    let g = lpc_onnx::load_model(&shared(model)).expect("load");
    let data = lpc_quant::Samples::open(
        &shared("calib_x.npy"),
        &g,
        &lpc_quant::calib::LoadOptions {
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
    fold(&lpc_onnx::load_model(&shared(&format!("quantized-by-peers/{file}"))).expect("load"))
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
/// number of JIT kernel steps (not fallback or view) of the batch-8 plan.
fn same_as_ref(g: &Graph) -> usize {
    let mut kernels = 0;
    for (n, threads) in [(1, 1), (8, 2)] {
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

#[test]
fn ort_qdq_models_are_bit_exact_after_fold() {
    for f in ["digits_cnn.ort-qdq.onnx", "digits_mbv.ort-qdq.onnx"] {
        same_as_ref(&peer_int8(f));
    }
}

#[test]
fn nncf_ir_models_are_bit_exact_after_fold() {
    for f in ["digits_cnn.nncf-int8.xml", "digits_mbv.nncf-int8.xml"] {
        same_as_ref(&peer_int8(f));
    }
}

#[test]
fn fp32_model_runs_through_the_fallback() {
    let g = lpc_onnx::load_model(&shared("digits_mbv.onnx")).expect("load");
    for n in [1, 8] {
        let x = images(n);
        let want = lpc_ref::run(&g, std::slice::from_ref(&x)).expect("ref");
        let got = compile(&g, &x, 2)
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
    let g = lpc_onnx::load_model(&shared("digits_cnn.onnx")).expect("load");
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
        if matches!(slot.source, lpc_jit::plan::SlotSource::Step) && !p.outputs.contains(&s) {
            let n = p.steps.iter().filter(|st| st.frees.contains(&s)).count();
            assert_eq!(n, 1, "{} freed {n} times", slot.name);
        }
    }
}
