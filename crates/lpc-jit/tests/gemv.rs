//! The one-pixel f32 convolution step (squeeze-and-excitation gates) against lpc-ref: random
//! channel counts (1 to 200, odd ones), batch 1–3, rank 3 and 4, strides 1–3, with and without
//! bias, values with NaN/±inf/−0/denormals — bit-identical outputs, and the step is the JIT's, not
//! a fallback. Empty channel counts and a kernel attribute that contradicts the weights stay with
//! lpc-ref.

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
    // Strides do not change a one-pixel conv (lpc-ref takes its one-pixel path for any stride);
    // an empty kernel attribute means "from the weights".
    let stride = 1 + r.below(3);
    let attrs = ConvAttrs {
        kernel: if r.chance(0.5) { px.clone() } else { vec![] },
        strides: vec![stride; rank - 2],
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
fn padded_or_grouped_convs_are_not_taken() {
    // Group 2 on one pixel, padding that makes a 2×2 output, and end padding under stride 2
    // (still one output pixel, but not the one-pixel path in lpc-ref either): all lpc-ref's.
    for (group, pads, strides) in [
        (2, vec![0; 4], vec![1, 1]),
        (1, vec![1, 1, 0, 0], vec![1, 1]),
        (1, vec![0, 0, 1, 1], vec![2, 2]),
    ] {
        let mut g = Graph::new("g2");
        let x = g.add_input("x", ValueType::new(DType::F32, Shape::known(&[1, 4, 1, 1])));
        let cg = 4 / group;
        let w = g.add_const(
            "w",
            Tensor::from_f32(&[4, cg, 1, 1], vec![1.0; 4 * cg]).unwrap(),
        );
        let attrs = ConvAttrs {
            kernel: vec![1, 1],
            strides,
            pads: pads.clone(),
            dilations: vec![1, 1],
            group,
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
        let m =
            CompiledModel::compile(&g, &[vec![1, 4, 1, 1]], &CompileOptions::default()).unwrap();
        let kinds: Vec<String> = m.plan().steps.iter().map(|s| s.kind()).collect();
        assert_eq!(kinds, ["fallback:conv"], "group {group} pads {pads:?}");
    }
}

/// A one-pixel conv graph `[n, c, 1, 1] → [n, m, 1, 1]` with the given kernel attribute (types
/// not inferred yet).
fn one_pixel_graph(n: usize, c: usize, m: usize, kernel: Vec<usize>) -> (Graph, Tensor) {
    let mut g = Graph::new("edge");
    let x = g.add_input("x", ValueType::new(DType::F32, Shape::known(&[n, c, 1, 1])));
    let wv = (0..m * c).map(|k| k as f32 * 0.25 - 1.0).collect();
    let w = g.add_const("w", Tensor::from_f32(&[m, c, 1, 1], wv).unwrap());
    let b = g.add_const("b", Tensor::from_f32(&[m], vec![0.5; m]).unwrap());
    let attrs = ConvAttrs {
        kernel,
        group: 1,
        ..Default::default()
    };
    let y = ValueRef::first(g.add_node(
        "conv",
        Op::Conv(attrs),
        &[Some(x), Some(w), Some(b)],
        vec![Output::named("y")],
    ));
    g.set_outputs(vec![y]);
    let xt = Tensor::from_f32(&[n, c, 1, 1], (0..n * c).map(|k| k as f32).collect()).unwrap();
    (g, xt)
}

#[test]
fn empty_channel_counts_fall_back_and_match_ref() {
    for (c, m) in [(0, 3), (3, 0), (0, 0)] {
        let (mut g, x) = one_pixel_graph(2, c, m, vec![]);
        lpc_ir::infer_types(&mut g).unwrap();
        let want = lpc_ref::run(&g, std::slice::from_ref(&x)).expect("ref");
        let model = CompiledModel::compile(&g, &[x.shape().to_vec()], &CompileOptions::default())
            .expect("compile");
        let kinds: Vec<String> = model.plan().steps.iter().map(|s| s.kind()).collect();
        assert_eq!(kinds, ["fallback:conv"], "c={c} m={m}");
        let got = model.run(std::slice::from_ref(&x)).expect("jit");
        assert_eq!(got[0].shape(), want[0].shape(), "c={c} m={m}");
        assert_eq!(
            got[0].as_f32().unwrap(),
            want[0].as_f32().unwrap(),
            "c={c} m={m}"
        );
    }
}

#[test]
fn a_kernel_attribute_contradicting_the_weights_is_not_taken() {
    // lpc-ref rejects it (so does type inference today); the JIT must not compute something
    // for it: compiling fails, or the node stays with lpc-ref.
    let (g, _) = one_pixel_graph(1, 4, 3, vec![3, 3]);
    match CompiledModel::compile(&g, &[vec![1, 4, 1, 1]], &CompileOptions::default()) {
        Ok(model) => {
            let kinds: Vec<String> = model.plan().steps.iter().map(|s| s.kind()).collect();
            assert_eq!(kinds, ["fallback:conv"]);
        }
        Err(e) => assert!(e.to_string().contains("kernel"), "{e}"),
    }
}
