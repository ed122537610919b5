//! Unit tests of the QDQ export: stored zero-point types, and values after a round trip.

use super::*;
use crate::proto::tensor_proto::DataType;
use crate::proto::TensorProto;

/// Exports `y = FakeQuantize(x)` with ranges `lo`/`hi` (given as `.lir` constants) and
/// returns the model and the zero point initializer of its QuantizeLinear.
fn export_fq(shape: &str, range_ty: &str, lo: &str, hi: &str) -> (Graph, ModelProto, TensorProto) {
    let text = format!(
        "graph @t(%x: f32{shape}) -> (%y) {{\n  %lo = const f32{range_ty} [{lo}]\n  \
         %hi = const f32{range_ty} [{hi}]\n  \
         %y = fake_quantize(%x, %lo, %hi, %lo, %hi) {{levels=256}} : f32{shape}\n  return %y\n}}\n"
    );
    let mut g = lpc_ir::text::parse(&text).unwrap();
    lpc_ir::infer_types(&mut g).unwrap();
    let m = export(&g).unwrap();
    let gr = m.graph.as_ref().unwrap();
    let q = gr
        .node
        .iter()
        .find(|n| n.op_type.as_deref() == Some("QuantizeLinear"))
        .unwrap();
    let zp = gr
        .initializer
        .iter()
        .find(|t| t.name.as_deref() == Some(q.input[2].as_str()))
        .unwrap()
        .clone();
    (g, m, zp)
}

/// The QDQ export computes what the FakeQuantize graph computes (lpc-ref, both forms).
fn same_values(g: &Graph, m: &ModelProto, n: usize) {
    let back = crate::import_bytes(&m.encode_to_vec(), None).unwrap();
    let xs: Vec<f32> = (0..n).map(|i| -2.0 + 4.0 * i as f32 / n as f32).collect();
    let shape = [1, n];
    let x = Tensor::from_f32(&shape, xs).unwrap();
    let a = lpc_ref::run(g, std::slice::from_ref(&x)).unwrap()[0].to_f32_vec();
    let b = lpc_ref::run(&back, &[x]).unwrap()[0].to_f32_vec();
    // Both forms round half-way values to even, of `(x−lo)/s` and of `x/s`, and compute
    // the output as `q/255·(hi−lo)+lo` and `(q−zp)·s`: an ulp apart, and a step apart
    // where `x` lies within an ulp of a half-way value.
    let far: Vec<usize> = (0..n).filter(|&i| (a[i] - b[i]).abs() > 1e-5).collect();
    let close = a.iter().zip(&b).all(|(p, q)| (p - q).abs() <= 0.0118);
    assert!(close && far.len() * 100 <= n, "{far:?}");
}

#[test]
fn asymmetric_per_tensor_activations_are_u8() {
    // s = 3/255, zero point 85: stored as u8 85 (as i8 −43, OpenVINO miscomputed it).
    let (g, m, zp) = export_fq("[1,1000]", "[]", "-1.0", "2.0");
    assert_eq!(zp.data_type, Some(DataType::Uint8 as i32));
    assert_eq!(zp.raw_data.as_deref(), Some(&[85u8][..]));
    same_values(&g, &m, 1000);
}

#[test]
fn symmetric_per_tensor_activations_are_u8_too() {
    let (g, m, zp) = export_fq("[1,1000]", "[]", "-1.28", "1.27");
    assert_eq!(zp.data_type, Some(DataType::Uint8 as i32));
    assert_eq!(zp.raw_data.as_deref(), Some(&[128u8][..]));
    same_values(&g, &m, 1000);
}

#[test]
fn activations_from_zero_are_u8() {
    let (_, _, zp) = export_fq("[1,1000]", "[]", "0.0", "2.55");
    assert_eq!(zp.data_type, Some(DataType::Uint8 as i32));
    assert_eq!(zp.raw_data.as_deref(), Some(&[0u8][..]));
}

/// Opset-9 Softmax over axis 1 of a rank-3 input normalizes each sample's 2×3 values
/// together; the export (opset 21) spells that out and computes the same values.
#[test]
fn coerced_softmax_exports_as_flatten_softmax_reshape() {
    let text = "graph @t(%x: f32[2,2,3]) -> (%y) {\n  \
                %y = softmax(%x) {axis=1, coerce_2d=true} : f32[2,2,3]\n  return %y\n}\n";
    let mut g = lpc_ir::text::parse(text).unwrap();
    lpc_ir::infer_types(&mut g).unwrap();
    let m = export(&g).unwrap();
    let ops: Vec<_> = m
        .graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .map(|n| n.op_type.clone().unwrap())
        .collect();
    assert_eq!(ops, ["Shape", "Flatten", "Softmax", "Reshape"]);
    let back = crate::import_bytes(&m.encode_to_vec(), None).unwrap();
    let xs: Vec<f32> = (0..12).map(|i| (i as f32 * 0.7).sin()).collect();
    let x = Tensor::from_f32(&[2, 2, 3], xs).unwrap();
    let a = lpc_ref::run(&g, std::slice::from_ref(&x)).unwrap()[0].to_f32_vec();
    let b = lpc_ref::run(&back, &[x]).unwrap()[0].to_f32_vec();
    assert_eq!(a, b);
    let row: f32 = a[..6].iter().sum();
    assert!((row - 1.0).abs() < 1e-6, "{row}");
}

#[test]
fn asymmetric_per_axis_activations_stay_i8() {
    // ONNX Runtime cannot run a u8 per-axis QuantizeLinear that it fuses into QLinearConv.
    let (_, _, zp) = export_fq("[1,2,4,4]", "[1,2,1,1]", "-1.0, 0.0", "2.0, 2.55");
    assert_eq!(zp.data_type, Some(DataType::Int8 as i32));
    assert_eq!(
        zp.raw_data.as_deref(),
        Some(&[(85 - 128) as i8 as u8, -128i8 as u8][..])
    );
}

/// ConstantOfShape's `value` goes out as a 1-D tensor of one element (dims [1], what ONNX
/// Runtime requires; lpc holds it as a scalar) and comes back as the same op.
#[test]
fn constant_of_shape_value_has_dims_1() {
    let mut g = Graph::new("cos");
    let ty = ValueType::new(DType::I64, Shape::known(&[2]));
    let shape = g.add_input("shape", ty);
    let value = std::sync::Arc::new(Tensor::scalar_f32(2.5));
    let out = Output {
        name: "y".into(),
        ty: ValueType::unknown(),
    };
    let c = g.add_node(
        "c",
        Op::ConstantOfShape { value },
        &[Some(shape)],
        vec![out],
    );
    g.set_outputs(vec![ValueRef::first(c)]);
    lpc_ir::infer_types(&mut g).unwrap();
    let m = export(&g).unwrap();
    let node = &m.graph.as_ref().unwrap().node[0];
    assert_eq!(node.op_type.as_deref(), Some("ConstantOfShape"));
    let t = node.attribute[0].t.as_ref().unwrap();
    assert_eq!(t.dims, vec![1]);
    let back = crate::import_bytes(&m.encode_to_vec(), None).unwrap();
    let shape = Tensor::from_i64(&[2], vec![2, 3]).unwrap();
    let y = lpc_ref::run(&back, &[shape]).unwrap();
    assert_eq!(y[0].shape(), &[2, 3]);
    assert_eq!(y[0].to_f32_vec(), vec![2.5; 6]);
}

/// A bias on the accumulator grid goes out as i32 + DequantizeLinear, and its f32 constant is
/// not written too: every initializer is read by a node (ONNX Runtime warns about and drops
/// unused ones).
#[test]
fn integer_bias_leaves_no_unused_initializer() {
    let text = "graph @t(%x: f32[2,3]) -> (%y) {\n  \
        %xl = const f32[] [0.0]\n  %xh = const f32[] [255.0]\n  \
        %x_fq = fake_quantize(%x, %xl, %xh, %xl, %xh) {levels=256} : f32[2,3]\n  \
        %w = const f32[2,3] [0.5, -1.0, 0.25, 1.0, 0.0, 2.0]\n  \
        %wl = const f32[2,1] [-127.0, -254.0]\n  %wh = const f32[2,1] [127.0, 254.0]\n  \
        %w_fq = fake_quantize(%w, %wl, %wh, %wl, %wh) {levels=255} : f32[2,3]\n  \
        %b = const f32[2] [3.0, -6.0]\n  \
        %y = gemm(%x_fq, %w_fq, %b) {trans_b=true} : f32[2,2]\n  return %y\n}\n";
    let mut g = lpc_ir::text::parse(text).unwrap();
    lpc_ir::infer_types(&mut g).unwrap();
    let m = export(&g).unwrap();
    let gr = m.graph.as_ref().unwrap();
    let read: std::collections::HashSet<&str> = gr
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .collect();
    for t in &gr.initializer {
        let name = t.name.as_deref().unwrap();
        assert!(
            read.contains(name),
            "initializer '{name}' is read by no node"
        );
    }
    let bias = gr
        .initializer
        .iter()
        .find(|t| t.name.as_deref() == Some("y_bias_quantized"))
        .unwrap();
    assert_eq!(bias.data_type, Some(DataType::Int32 as i32));
}
