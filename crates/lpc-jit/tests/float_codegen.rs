//! The instructions the float chain kernels compile to: the hard-swish + quantize chain of
//! MobileNetV3-style models must stay free of blends and saturating-conversion fix-ups (each
//! `maxps`/`minps` has a compare-and-select shape Cranelift lowers to one instruction; a
//! change of shape silently doubles the chain's cost). Bit-exactness is tested in `float.rs`.

use lpc_ir::DType;
use lpc_jit::kernels::float::{
    define_chain, ChainSpec, FBinary, FNode, FUnary, Operand, QuantOut, QuantParams,
};
use lpc_jit::CodeModule;

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
    define_chain(&mut m, &spec).unwrap();
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
