//! A bias shift added to a layer's bias (a new bias constant, or an Add after a MatMul).

use crate::placement::LayerKind;
use crate::QuantError;
use lpc_ir::{BinaryOp, Graph, NodeId, Op, Tensor, ValueRef};

/// Adds `shift` (per output channel) to a layer's bias; returns a note when it cannot.
pub(crate) fn apply_bias_shift(
    g: &mut Graph,
    n: NodeId,
    kind: LayerKind,
    shift: &[f32],
) -> Result<Option<String>, QuantError> {
    if shift.iter().all(|&x| x == 0.0) {
        return Ok(None);
    }
    if shift.iter().any(|x| !x.is_finite()) {
        return Ok(Some(format!(
            "layer '{}': non-finite bias correction skipped",
            g.node(n).name
        )));
    }
    let name = g.node(n).name.clone();
    let c = shift.len();
    let mk = |v: Vec<f32>, shape: &[usize]| Tensor::from_f32(shape, v).map_err(QuantError::from);
    match kind {
        LayerKind::Conv | LayerKind::ConvTranspose => {
            let b = match g.node_input(n, 2) {
                Some(v) => match g.const_value(v) {
                    Some(t) if t.len() == c => t.as_f32().map_err(QuantError::from)?.to_vec(),
                    _ => {
                        return Ok(Some(format!(
                            "layer '{name}': bias is not a constant [C]; no bias correction"
                        )))
                    }
                },
                None => vec![0.0; c],
            };
            let nb: Vec<f32> = b.iter().zip(shift).map(|(a, s)| a + s).collect();
            let v = g.add_const(format!("{name}__bias"), mk(nb, &[c])?);
            g.set_node_input(n, 2, Some(v));
        }
        LayerKind::Gemm { .. } => {
            let Op::Gemm { beta, .. } = g.node(n).op else {
                return Ok(None);
            };
            match g.node_input(n, 2) {
                None => {
                    if beta == 0.0 {
                        return Ok(Some(format!(
                            "layer '{name}': Gemm beta is 0; no bias correction"
                        )));
                    }
                    let v = g.add_const(
                        format!("{name}__bias"),
                        mk(shift.iter().map(|s| s / beta).collect(), &[c])?,
                    );
                    g.set_node_input(n, 2, Some(v));
                }
                Some(v) => {
                    let Some(t) = g.const_value(v).cloned() else {
                        return Ok(Some(format!(
                            "layer '{name}': Gemm C is not constant; no bias correction"
                        )));
                    };
                    let Ok(cv) = t.as_f32() else { return Ok(None) };
                    if beta == 0.0 {
                        return Ok(Some(format!(
                            "layer '{name}': Gemm beta is 0; no bias correction"
                        )));
                    }
                    let (shape, nb): (Vec<usize>, Vec<f32>) = if t.len() == 1 {
                        (vec![c], shift.iter().map(|s| cv[0] + s / beta).collect())
                    } else if t.shape().last() == Some(&c) {
                        (
                            t.shape().to_vec(),
                            cv.iter()
                                .enumerate()
                                .map(|(i, x)| x + shift[i % c] / beta)
                                .collect(),
                        )
                    } else {
                        return Ok(Some(format!(
                            "layer '{name}': Gemm C shape {:?} not per-column; no bias correction",
                            t.shape()
                        )));
                    };
                    let v = g.add_const(format!("{name}__bias"), mk(nb, &shape)?);
                    g.set_node_input(n, 2, Some(v));
                }
            }
        }
        LayerKind::MatMul => {
            // y' = MatMul(...) + shift, as a new Add that takes over the output's name.
            let y = ValueRef::first(n);
            let out = g.output(y).clone();
            let users = g.users(y);
            let s = g.add_const(format!("{name}__bias"), mk(shift.to_vec(), &[c])?);
            let add = g.add_node(
                format!("{name}__bias_add"),
                Op::Binary(BinaryOp::Add),
                &[Some(y), Some(s)],
                vec![out.clone()],
            );
            g.output_mut(y).name = format!("{}__pre_bias", out.name);
            for (u, slot) in users {
                g.set_node_input(u, slot, Some(ValueRef::first(add)));
            }
            let outs: Vec<ValueRef> = g
                .outputs()
                .iter()
                .map(|&o| if o == y { ValueRef::first(add) } else { o })
                .collect();
            g.set_outputs(outs);
        }
    }
    Ok(None)
}
