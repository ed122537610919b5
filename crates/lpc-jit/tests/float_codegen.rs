//! The instructions the float chain kernels compile to: the hard-swish + quantize chain of
//! MobileNetV3-style models must stay free of blends and saturating-conversion fix-ups (each
//! `maxps`/`minps` has a compare-and-select shape Cranelift lowers to one instruction; a
//! change of shape silently doubles the chain's cost). Bit-exactness is tested in `float.rs`.

use lpc_ir::DType;
use lpc_jit::kernels::float::{
    define_chain, ChainSpec, FBinary, FNode, FUnary, Operand, QuantOut, QuantParams,
};
use lpc_jit::{CodeModule, VecCode, VecTier};

fn listing(prog: Vec<FNode>, quant: bool) -> String {
    let mut m = CodeModule::new().unwrap();
    if !m.features().sse41 {
        panic!("the float chain kernels need SSE4.1; this host lacks it");
    }
    m.set_disasm(true);
    let spec = ChainSpec {
        prog,
        operands: vec![
            Operand::Full,
            Operand::Row { period: 8 },
            Operand::Row { period: 8 },
        ],
        dequant: vec![None; 3],
        outer: 8,
        inner: 37,
        quant: quant.then_some(QuantOut {
            to: DType::U8,
            params: QuantParams::Rows {
                scale: 1,
                zero_point: 2,
            },
        }),
    };
    define_chain(&mut m, &spec, VecTier::Xmm).unwrap();
    m.last_disasm().unwrap().to_string()
}

fn count(text: &str, ins: &str) -> usize {
    text.lines()
        .filter(|l| l.split_whitespace().next() == Some(ins))
        .count()
}

#[test]
fn hard_swish_quantize_chain_is_min_max_without_blends() {
    // x · clip(x + 3, 0, 6) / 6, quantized per channel to u8: 16 elements per iteration.
    let text = listing(
        vec![
            FNode::Input(0),
            FNode::Imm(3.0),
            FNode::Binary(FBinary::Add, 0, 1),
            FNode::Unary(FUnary::Clip(0.0, 6.0), 2),
            FNode::Binary(FBinary::Mul, 0, 3),
            FNode::Imm(6.0),
            FNode::Binary(FBinary::Div, 4, 5),
        ],
        true,
    );
    // Clip and the quantize clamp: one maxps and one minps each per vector, in the main loop
    // and in the tail (both run the same 16-element body).
    assert!(count(&text, "vmaxps") >= 8, "{text}");
    assert!(count(&text, "vminps") >= 8, "{text}");
    assert_eq!(count(&text, "vpblendvb"), 0, "{text}");
    assert_eq!(count(&text, "vblendvps"), 0, "{text}");
    // The clamped conversion: no NaN/overflow fix-up around cvttps2dq.
    assert!(count(&text, "vcvttps2dq") >= 4, "{text}");
    assert_eq!(count(&text, "vpsrad"), 0, "{text}");
}

#[test]
fn relu_and_hard_sigmoid_are_min_max() {
    let text = listing(
        vec![
            FNode::Input(0),
            FNode::Unary(FUnary::Relu, 0),
            FNode::Unary(FUnary::HardSigmoid(0.2, 0.5), 1),
        ],
        false,
    );
    assert_eq!(count(&text, "vpblendvb"), 0, "{text}");
    assert!(
        count(&text, "vmaxps") >= 8 && count(&text, "vminps") >= 4,
        "{text}"
    );
}

/// A program with more full operands than the zmm tier has base registers compiles on the
/// xmm tier, even when zmm is asked for (`VecTier::Zmm` means "where it fits").
#[test]
fn chain_too_wide_for_zmm_falls_back_to_xmm() {
    let mut m = CodeModule::new().unwrap();
    if !m.features().zmm_f32 {
        eprintln!("chain_too_wide_for_zmm_falls_back_to_xmm: no AVX512F on this host");
        return;
    }
    let n = 12;
    let mut prog: Vec<FNode> = (0..n).map(FNode::Input).collect();
    let mut acc = 0;
    for k in 1..n {
        prog.push(FNode::Binary(FBinary::Add, acc, k));
        acc = prog.len() - 1;
    }
    let spec = ChainSpec {
        prog,
        operands: vec![Operand::Full; n],
        dequant: vec![None; n],
        outer: 2,
        inner: 40,
        quant: None,
    };
    let (_, tier) = define_chain(&mut m, &spec, VecTier::Zmm).unwrap();
    assert_eq!(tier, VecCode::Xmm);
    let small = ChainSpec {
        prog: vec![FNode::Input(0), FNode::Unary(FUnary::Gelu, 0)],
        operands: vec![Operand::Full],
        dequant: vec![None],
        ..spec
    };
    let (_, tier) = define_chain(&mut m, &small, VecTier::Auto).unwrap();
    assert_eq!(tier, VecCode::Zmm);
}
