//! Comparison, logical and trigonometric OpenVINO layers import to the lpc ops and compute
//! the expected values (hand-made IRs: two parameters into one layer).

use lpc_ir::{BinaryOp, Op, Tensor, UnaryOp};
use lpc_openvino::import_openvino_parts;

/// An IR with parameters `x` (and `y` when `binary`) of `elem` [4] into one `ty` layer.
fn ir(ty: &str, data: &str, elem: &str, prec: &str, out_prec: &str, binary: bool) -> String {
    let port =
        |id: usize, p: &str| format!(r#"<port id="{id}" precision="{p}"><dim>4</dim></port>"#);
    let param = |id: usize, name: &str| {
        format!(
            r#"<layer id="{id}" name="{name}" type="Parameter" version="opset1">
      <data shape="4" element_type="{elem}"/>
      <output><port id="0" precision="{prec}" names="{name}"><dim>4</dim></port></output>
    </layer>"#
        )
    };
    let (second, ins, edge) = if binary {
        (
            param(1, "y"),
            format!("{}{}", port(0, prec), port(1, prec)),
            r#"<edge from-layer="1" from-port="0" to-layer="2" to-port="1"/>"#,
        )
    } else {
        (String::new(), port(0, prec), "")
    };
    let out = if binary { 2 } else { 1 };
    format!(
        r#"<?xml version="1.0"?>
<net name="t" version="11">
  <layers>
    {x}
    {second}
    <layer id="2" name="op" type="{ty}" version="opset10">
      <data {data}/>
      <input>{ins}</input>
      <output><port id="{out}" precision="{out_prec}" names="z"><dim>4</dim></port></output>
    </layer>
    <layer id="3" name="out" type="Result" version="opset1">
      <input>{res}</input>
    </layer>
  </layers>
  <edges>
    <edge from-layer="0" from-port="0" to-layer="2" to-port="0"/>
    {edge}
    <edge from-layer="2" from-port="{out}" to-layer="3" to-port="0"/>
  </edges>
</net>
"#,
        x = param(0, "x"),
        res = port(0, out_prec),
    )
}

fn run(xml: &str, inputs: &[Tensor]) -> (Op, Tensor) {
    let mut g = import_openvino_parts(xml, None).expect("import");
    lpc_ir::infer_types(&mut g).expect("infer");
    let op = g.node(g.outputs()[0].node).op.clone();
    let mut outs = lpc_ref::run(&g, inputs).expect("run");
    (op, outs.remove(0))
}

fn f32s(v: &[f32]) -> Tensor {
    Tensor::from_f32(&[4], v.to_vec()).expect("size")
}

fn bools(v: [bool; 4]) -> Tensor {
    Tensor::from_bool(&[4], v.to_vec()).expect("size")
}

#[test]
fn comparisons() {
    let (x, y) = (
        f32s(&[1.0, 2.0, 3.0, f32::NAN]),
        f32s(&[2.0, 2.0, 2.0, 2.0]),
    );
    for (ty, op, want) in [
        ("Greater", BinaryOp::Greater, [false, false, true, false]),
        ("Less", BinaryOp::Less, [true, false, false, false]),
        (
            "GreaterEqual",
            BinaryOp::GreaterOrEqual,
            [false, true, true, false],
        ),
        (
            "LessEqual",
            BinaryOp::LessOrEqual,
            [true, true, false, false],
        ),
    ] {
        let xml = ir(ty, r#"auto_broadcast="numpy""#, "f32", "FP32", "BOOL", true);
        let (got_op, z) = run(&xml, &[x.clone(), y.clone()]);
        assert_eq!(got_op, Op::Binary(op), "{ty}");
        assert_eq!(z, bools(want), "{ty}");
    }
}

#[test]
fn logical_ops() {
    let (p, q) = (
        bools([false, false, true, true]),
        bools([false, true, false, true]),
    );
    for (ty, want) in [
        ("LogicalAnd", [false, false, false, true]),
        ("LogicalOr", [false, true, true, true]),
        ("LogicalXor", [false, true, true, false]),
    ] {
        let xml = ir(
            ty,
            r#"auto_broadcast="numpy""#,
            "boolean",
            "BOOL",
            "BOOL",
            true,
        );
        assert_eq!(run(&xml, &[p.clone(), q.clone()]).1, bools(want), "{ty}");
    }
    let xml = ir("LogicalNot", "", "boolean", "BOOL", "BOOL", false);
    assert_eq!(run(&xml, &[p]).1, bools([true, true, false, false]));
}

#[test]
fn float_tests_and_trigonometry() {
    let x = f32s(&[f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -0.5]);
    let xml = ir(
        "IsInf",
        r#"detect_negative="false""#,
        "f32",
        "FP32",
        "BOOL",
        false,
    );
    let (op, z) = run(&xml, std::slice::from_ref(&x));
    assert_eq!(
        op,
        Op::Unary(UnaryOp::IsInf {
            detect_positive: true,
            detect_negative: false
        })
    );
    assert_eq!(z, bools([true, false, false, false]));
    let xml = ir("IsNaN", "", "f32", "FP32", "BOOL", false);
    assert_eq!(run(&xml, &[x]).1, bools([false, false, true, false]));
    let x = f32s(&[-0.5, 0.0, 0.25, 0.75]);
    for (ty, f) in [
        ("Sin", f32::sin as fn(f32) -> f32),
        ("Cos", f32::cos),
        ("Atan", f32::atan),
        ("Asinh", f32::asinh),
        ("Atanh", f32::atanh),
    ] {
        let xml = ir(ty, "", "f32", "FP32", "FP32", false);
        let want: Vec<f32> = x.as_f32().expect("f32").iter().map(|&v| f(v)).collect();
        assert_eq!(run(&xml, std::slice::from_ref(&x)).1, f32s(&want), "{ty}");
    }
    let xml = ir("Sign", "", "f32", "FP32", "FP32", false);
    assert_eq!(run(&xml, &[x]).1, f32s(&[-1.0, 0.0, 1.0, 1.0]));
}
