//! The one-pixel f32 convolution step (squeeze-and-excitation gates) against lpc-ref: random
//! channel counts (1 to 200, odd ones), batch 1–3, rank 3 and 4, with and without bias, values
//! with NaN/±inf/−0/denormals — bit-identical outputs, and the step is the JIT's, not a fallback.

use lpc_ir::{ConvAttrs, DType, Graph, Op, Output, Shape, Tensor, ValueRef, ValueType};
use lpc_jit::{CompileOptions, CompiledModel};

mod common;
use common::Rng;

fn value(r: &mut Rng) -> f32 {
    match r.below(60) {
        0 => f32::NAN,
        1 => f32::INFINITY,
        2 => -0.0,
        3 => 1e-40,
        _ => (r.unit() - 0.5) * 4.0,
    }
}

fn random_case(r: &mut Rng) -> (Graph, Tensor) {
    let (n, c, m) = (1 + r.below(3), 1 + r.below(200), 1 + r.below(200));
    let rank = if r.chance(0.5) { 4 } else { 3 };
    let px = vec![1usize; rank - 2];
    let mut g = Graph::new("gemv");
    let xs: Vec<usize> = [n, c].into_iter().chain(px.clone()).collect();
    let x = g.add_input("x", ValueType::new(DType::F32, Shape::known(&xs)));
    let ws: Vec<usize> = [m, c].into_iter().chain(px.clone()).collect();
    let wv = (0..m * c).map(|_| value(r)).collect();
    let w = g.add_const("w", Tensor::from_f32(&ws, wv).unwrap());
    let mut ins = vec![Some(x), Some(w)];
    if r.chance(0.7) {
        let bv = (0..m).map(|_| value(r)).collect();
        ins.push(Some(g.add_const("b", Tensor::from_f32(&[m], bv).unwrap())));
    }
    let attrs = ConvAttrs {
        kernel: px.clone(),
        strides: vec![1; rank - 2],
        pads: vec![0; 2 * (rank - 2)],
        dilations: vec![1; rank - 2],
        group: 1,
        ..Default::default()
    };
    let y = ValueRef::first(g.add_node("conv", Op::Conv(attrs), &ins, vec![Output::named("y")]));
    g.set_outputs(vec![y]);
    lpc_ir::infer_types(&mut g).unwrap();
    let xt = Tensor::from_f32(&xs, (0..n * c).map(|_| value(r)).collect()).unwrap();
    (g, xt)
}

#[test]
fn one_pixel_convs_are_bit_exact() {
    let mut r = Rng(0x5eed_9e37);
    for case in 0..120 {
        let (g, x) = random_case(&mut r);
        let want = lpc_ref::run(&g, std::slice::from_ref(&x)).expect("ref");
        let m = CompiledModel::compile(
            &g,
            &[x.shape().to_vec()],
            &CompileOptions {
                threads: Some(1 + case % 2),
                ..Default::default()
            },
        )
        .expect("compile");
        let kinds: Vec<String> = m.plan().steps.iter().map(|s| s.kind()).collect();
        assert_eq!(kinds, ["jit float (one-pixel conv)"], "case {case}");
        let got = m.run(std::slice::from_ref(&x)).expect("jit");
        let (a, b) = (got[0].as_f32().unwrap(), want[0].as_f32().unwrap());
        assert_eq!(got[0].shape(), want[0].shape());
        for (i, (p, q)) in a.iter().zip(b).enumerate() {
            assert!(
                p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()),
                "case {case} ({:?}), element {i}: jit {p:?} vs ref {q:?}",
                x.shape()
            );
        }
    }
}

#[test]
fn strided_padded_or_grouped_convs_are_not_taken() {
    // Group 2 on one pixel: lpc-ref's path, not this step.
    let mut g = Graph::new("g2");
    let x = g.add_input("x", ValueType::new(DType::F32, Shape::known(&[1, 4, 1, 1])));
    let w = g.add_const("w", Tensor::from_f32(&[4, 2, 1, 1], vec![1.0; 8]).unwrap());
    let attrs = ConvAttrs {
        kernel: vec![1, 1],
        strides: vec![1, 1],
        pads: vec![0; 4],
        dilations: vec![1, 1],
        group: 2,
        ..Default::default()
    };
    let y = ValueRef::first(g.add_node(
        "conv",
        Op::Conv(attrs),
        &[Some(x), Some(w)],
        vec![Output::named("y")],
    ));
    g.set_outputs(vec![y]);
    lpc_ir::infer_types(&mut g).unwrap();
    let m = CompiledModel::compile(&g, &[vec![1, 4, 1, 1]], &CompileOptions::default()).unwrap();
    let kinds: Vec<String> = m.plan().steps.iter().map(|s| s.kind()).collect();
    assert_eq!(kinds, ["fallback:conv"]);
}
