//! Dynamic INT8 (`lpc quantize --mode dynamic`, as ONNX Runtime's `quantize_dynamic`): the
//! weights of every MatMul/Gemm with a constant 2-D weight become per-output-channel symmetric
//! i8 (the same [`WeightQuant`] as static quantization); the activation feeding them is
//! quantized per tensor at run time by `DynamicQuantizeLinear` (u8, range from the tensor's own
//! min and max, 0 included). Nothing about activations is fixed ahead, so no calibration data
//! is needed; given some, it finds each matmul input's outlier channels (see
//! `crate::outliers`), which then go through a float layer beside the INT8 one.
//!
//! Each layer `y = x·W (+ C)` becomes the standard ONNX form that ONNX Runtime, OpenVINO and
//! lpc's fold all read:
//!
//! ```text
//! (xq, sx, zx) = DynamicQuantizeLinear(x)        one per activation, shared by its layers
//! y = Cast<f32>(MatMulInteger(xq, Wq, zx)) · (sx · sw)  (+ C)
//! ```
//!
//! Layers stay in float when `--ignore` names them, when their weights are not finite, or when
//! the activation is not f32. Everything else (attention's activation×activation products,
//! normalisations, recurrent cells) stays in float.

use crate::fq::WeightQuant;
use crate::outliers::split_outliers;
use crate::pipeline::{check_not_quantized, prepare, Quantized};
use crate::placement::resolve_ignore;
use crate::report::{LayerInfo, Report};
use crate::{Config, QuantError};
use lpc_data::{InputSpec, SampleSource};
use lpc_ir::{BinaryOp, DType, Graph, NodeId, Op, Output, Tensor, ValueRef, ValueType};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// A layer to quantize: its node, activation, weight `[K, N]` (a Gemm's B transposed when
/// `trans_b`, alpha applied) and the optional addend C (scaled by beta when not 1).
struct Layer {
    node: NodeId,
    x: ValueRef,
    w: Tensor,
    c: Option<ValueRef>,
    beta: f32,
}

/// The layers with a constant 2-D f32 weight and an f32 activation.
fn layers(g: &Graph, ignore: &BTreeSet<NodeId>, notes: &mut Vec<String>) -> Vec<Layer> {
    let mut out = vec![];
    for n in g.node_ids() {
        if ignore.contains(&n) {
            continue;
        }
        let (alpha, beta, trans_b) = match g.node(n).op {
            Op::MatMul => (1.0, 1.0, false),
            Op::Gemm {
                alpha,
                beta,
                trans_a: false,
                trans_b,
            } => (alpha, beta, trans_b),
            _ => continue,
        };
        let (Some(x), Some(wv)) = (g.node_input(n, 0), g.node_input(n, 1)) else {
            continue;
        };
        let Some(wt) = g.const_value(wv) else {
            continue;
        };
        let xt = g.value_type(x);
        if g.const_value(x).is_some()
            || wt.dtype() != DType::F32
            || wt.rank() != 2
            || xt.dtype != Some(DType::F32)
            || xt.shape.as_ref().is_none_or(|s| s.rank() == 0)
        {
            continue;
        }
        let Ok(v) = wt.as_f32() else { continue };
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            notes.push(format!(
                "{}: weight {i} is {}; the layer stays in float",
                g.node(n).name,
                v[i]
            ));
            continue;
        }
        let (r, c) = (wt.shape()[0], wt.shape()[1]);
        let (k, nn) = if trans_b { (c, r) } else { (r, c) };
        let mut w = vec![0f32; k * nn];
        for kk in 0..k {
            for j in 0..nn {
                let s = if trans_b {
                    v[j * c + kk]
                } else {
                    v[kk * nn + j]
                };
                w[kk * nn + j] = if alpha == 1.0 { s } else { alpha * s };
            }
        }
        let Ok(w) = Tensor::from_f32(&[k, nn], w) else {
            continue;
        };
        out.push(Layer {
            node: n,
            x,
            w,
            c: g.node_input(n, 2),
            beta,
        });
    }
    out
}

/// An output named `name` whose type shape inference fills in.
fn output(name: String) -> Output {
    Output {
        name,
        ty: ValueType {
            dtype: None,
            shape: None,
        },
    }
}

/// Rewrites `model` to dynamic INT8 (see the module docs). The report lists the quantized
/// layers; `reference` is the FP32 graph after the same preparation.
pub fn quantize_dynamic(
    model: &Graph,
    data: Option<&dyn SampleSource>,
    cfg: &Config,
) -> Result<Quantized, QuantError> {
    let t0 = Instant::now();
    check_not_quantized(model)?;
    let mut g = model.clone();
    let mut report = Report {
        preset: "dynamic".into(),
        estimator: "minmax at run time".into(),
        bias_correction_mode: "off".into(),
        ..Report::default()
    };
    report.folded_batchnorm = prepare(&mut g)?;
    let reference = g.clone();
    let mut ignore = resolve_ignore(&g, &cfg.ignore)?;
    report.ignored = ignore.iter().map(|&n| g.node(n).name.clone()).collect();
    // With data: the few outlier channels of each matmul input go through float beside the
    // INT8 layer (as in static mode), so the run-time range is set by the ordinary channels.
    if let Some(data) = data.filter(|d| !d.is_empty() && cfg.split_outliers) {
        report.samples = data.len();
        let batchable = InputSpec::of(&g).iter().all(|s| s.batchable());
        let batch = if batchable { cfg.batch } else { 1 };
        let (float, notes) = split_outliers(&mut g, data, batch, cfg.progress, &ignore)?;
        ignore.extend(float);
        report.warnings.extend(notes);
    }
    let found = layers(&g, &ignore, &mut report.warnings);
    let mut dq: BTreeMap<ValueRef, [ValueRef; 3]> = BTreeMap::new();
    for l in found {
        let name = g.node(l.node).name.clone();
        let wq = WeightQuant::from_weights(&l.w, 1, &name)?;
        let (lo, hi) = wq
            .max_abs
            .iter()
            .fold((f32::MAX, 0f32), |(a, b), &m| (a.min(m), b.max(m)));
        let ints = wq.integers(&l.w)?;
        let nn = l.w.shape()[1];
        let [xq, sx, zx] = *dq.entry(l.x).or_insert_with(|| {
            let xname = g.value_name(l.x).to_string();
            let d = g.add_node(
                format!("{xname}__dynamic_quantize"),
                Op::DynamicQuantizeLinear,
                &[Some(l.x)],
                vec![
                    output(format!("{xname}__q")),
                    output(format!("{xname}__scale")),
                    output(format!("{xname}__zero_point")),
                ],
            );
            [0, 1, 2].map(|k| ValueRef { node: d, output: k })
        });
        let w = g.add_const(format!("{name}__weight_q"), ints);
        let sw = g.add_const(
            format!("{name}__weight_scale"),
            Tensor::from_f32(&[nn], wq.scales())?,
        );
        let s = g.add_node(
            format!("{name}__scale"),
            Op::Binary(BinaryOp::Mul),
            &[Some(sx), Some(sw)],
            vec![output(format!("{name}__scale"))],
        );
        let acc = g.add_node(
            format!("{name}__matmul_integer"),
            Op::MatMulInteger,
            &[Some(xq), Some(w), Some(zx)],
            vec![output(format!("{name}__acc"))],
        );
        let accf = g.add_node(
            format!("{name}__acc_f32"),
            Op::Unary(lpc_ir::UnaryOp::Cast { to: DType::F32 }),
            &[Some(ValueRef::first(acc))],
            vec![output(format!("{name}__acc_f32"))],
        );
        let y = ValueRef::first(l.node);
        let yname = g.value_name(y).to_string();
        let prod_name = match l.c {
            Some(_) => format!("{name}__product"),
            None => yname.clone(),
        };
        let prod = g.add_node(
            prod_name.clone(),
            Op::Binary(BinaryOp::Mul),
            &[Some(ValueRef::first(accf)), Some(ValueRef::first(s))],
            vec![output(prod_name)],
        );
        let mut new_y = ValueRef::first(prod);
        if let Some(c) = l.c {
            let c = match (l.beta, g.const_value(c)) {
                (1.0, _) => c,
                (b, Some(t)) => {
                    let v: Vec<f32> = t.as_f32()?.iter().map(|x| b * x).collect();
                    let t = Tensor::from_f32(t.shape(), v)?;
                    g.add_const(format!("{name}__c_scaled"), t)
                }
                (b, None) => {
                    let beta =
                        g.add_const(format!("{name}__beta"), Tensor::from_f32(&[], vec![b])?);
                    let m = g.add_node(
                        format!("{name}__c_scaled"),
                        Op::Binary(BinaryOp::Mul),
                        &[Some(c), Some(beta)],
                        vec![output(format!("{name}__c_scaled"))],
                    );
                    ValueRef::first(m)
                }
            };
            let add = g.add_node(
                format!("{name}__bias"),
                Op::Binary(BinaryOp::Add),
                &[Some(new_y), Some(c)],
                vec![output(yname.clone())],
            );
            new_y = ValueRef::first(add);
        }
        g.replace_uses(y, new_y);
        g.remove_node(l.node);
        report.layers.push(LayerInfo {
            name,
            op: "MatMulInteger",
            weight_range: Some((lo, hi)),
            bias_shift: None,
            sqnr_db: None,
        });
    }
    g.remove_dead();
    lpc_ir::infer_types(&mut g).map_err(|e| QuantError::Internal(e.to_string()))?;
    lpc_ir::verify(&g).map_err(|e| QuantError::Internal(e.to_string()))?;
    if report.layers.is_empty() {
        report
            .warnings
            .push("no MatMul or Gemm with constant 2-D f32 weights: nothing was quantized".into());
    }
    report
        .times
        .push(("total".into(), t0.elapsed().as_secs_f64()));
    Ok(Quantized {
        graph: g,
        reference,
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `y = x·W` (MatMul, 3-D input) and `z = 0.5·x2·Bᵀ + 2·c` (Gemm, transposed B, alpha and
    /// beta not 1), sharing one input.
    fn model() -> Graph {
        model_with(None)
    }

    /// [`model`], the MatMul's first weight `first` when given.
    fn model_with(first: Option<&str>) -> Graph {
        let mut w: Vec<String> = (0..16 * 8)
            .map(|i| format!("{:.3}", ((i as f32) * 0.37).sin() * 0.5))
            .collect();
        let b = w.join(", ");
        if let Some(f) = first {
            w[0] = f.to_string();
        }
        let c: Vec<String> = (0..8)
            .map(|i| format!("{}", i as f32 * 0.1 - 0.3))
            .collect();
        let text = format!(
            r#"graph @mm(%x: f32[1,6,16]) -> (%y, %z) {{
  %w = const f32[16,8] [{w}]
  %b = const f32[8,16] [{b}]
  %c = const f32[8] [{c}]
  %y = matmul(%x, %w) : f32[1,6,8] @mm
  %s = const i64[2] [6, 16]
  %x2 = reshape(%x, %s) : f32[6,16]
  %z = gemm(%x2, %b, %c) {{alpha=0.5, beta=2.0, trans_a=false, trans_b=true}} : f32[6,8] @gemm
  return %y, %z
}}"#,
            w = w.join(", "),
            c = c.join(", ")
        );
        lpc_ir::text::parse(&text).unwrap()
    }

    fn input(seed: usize) -> Vec<Tensor> {
        let x: Vec<f32> = (0..6 * 16)
            .map(|i| ((seed * 96 + i) as f32 * 0.713).sin() * 2.0 + 0.5)
            .collect();
        vec![Tensor::from_f32(&[1, 6, 16], x).unwrap()]
    }

    #[test]
    fn matmul_and_gemm_become_matmul_integer_close_to_fp32() {
        let g = model();
        let q = quantize_dynamic(&g, None, &Config::default()).unwrap();
        let ops: Vec<&str> = q
            .graph
            .node_ids()
            .into_iter()
            .map(|n| q.graph.node(n).op.name())
            .collect();
        let count = |name: &str| ops.iter().filter(|&&o| o == name).count();
        assert_eq!(count("matmul_integer"), 2, "{ops:?}");
        assert_eq!(count("dynamic_quantize_linear"), 2, "{ops:?}");
        assert_eq!(count("matmul") + count("gemm"), 0, "{ops:?}");
        assert_eq!(q.report.layers.len(), 2);
        // The outputs keep their names and stay close to FP32 on several inputs.
        let names: Vec<String> = q
            .graph
            .outputs()
            .iter()
            .map(|&v| q.graph.value_name(v).to_string())
            .collect();
        assert_eq!(names, ["y", "z"]);
        for s in 0..4 {
            let a = lpc_ref::run(&g, &input(s)).unwrap();
            let b = lpc_ref::run(&q.graph, &input(s)).unwrap();
            for (p, r) in a.iter().zip(&b) {
                let (p, r) = (p.as_f32().unwrap(), r.as_f32().unwrap());
                let d = crate::compare::sqnr_of(p, r);
                assert!(d > 30.0, "sample {s}: {d:.1} dB");
            }
        }
        // A second quantization is refused.
        assert!(matches!(
            quantize_dynamic(&q.graph, None, &Config::default()),
            Err(QuantError::AlreadyQuantized { .. })
        ));
    }

    #[test]
    fn ignored_and_non_finite_layers_stay_float() {
        let g = model();
        let cfg = Config {
            ignore: vec!["gemm".into()],
            ..Config::default()
        };
        let q = quantize_dynamic(&g, None, &cfg).unwrap();
        assert_eq!(q.report.layers.len(), 1);
        assert_eq!(q.report.layers[0].name, "mm");
        let bad = model_with(Some("nan"));
        let q = quantize_dynamic(&bad, None, &Config::default()).unwrap();
        assert!(
            q.report.warnings.iter().any(|w| w.contains("NaN")),
            "{:?}",
            q.report.warnings
        );
    }
}
