//! BatchNorm folding into the preceding Conv/Gemm, before calibration.

use crate::QuantError;
use lpc_ir::{Graph, NodeId, Op, Tensor, ValueRef};
use std::sync::Arc;

fn f32s(t: &Tensor, what: &str) -> Result<Vec<f32>, QuantError> {
    t.as_f32()
        .map(|v| v.to_vec())
        .map_err(|_| QuantError::NotF32 {
            what: what.to_string(),
            dtype: t.dtype(),
        })
}

fn const_input(g: &Graph, n: NodeId, slot: usize) -> Option<Arc<Tensor>> {
    g.node_input(n, slot)
        .and_then(|v| g.const_value(v).cloned())
}

/// Folds every inference BatchNorm whose input is the only use of a Conv or Gemm output with
/// constant weights (and constant or absent bias) into that layer. Returns the names of the
/// folded BatchNorm nodes. BatchNorms that cannot be folded stay (they run in float).
pub fn fold_batchnorm(g: &mut Graph) -> Result<Vec<String>, QuantError> {
    let mut folded = vec![];
    let order = g.topo_order().map_err(QuantError::from)?;
    for bn in order {
        let (eps, training) = match &g.node(bn).op {
            Op::BatchNorm {
                epsilon, training, ..
            } => (*epsilon, *training),
            _ => continue,
        };
        if training || g.node(bn).outputs.len() != 1 {
            continue;
        }
        let Some(x) = g.node_input(bn, 0) else {
            continue;
        };
        let layer = x.node;
        if g.users(x).len() != 1 || g.outputs().contains(&x) {
            continue;
        }
        // Output-channel axis of the weights, and the bias slot.
        let w_axis = match &g.node(layer).op {
            Op::Conv(a) if a.group >= 1 => 0,
            Op::Gemm { trans_b, .. } => usize::from(!*trans_b),
            _ => continue,
        };
        let params: Option<Vec<Arc<Tensor>>> = (1..5).map(|s| const_input(g, bn, s)).collect();
        let Some(params) = params else { continue };
        let Some(w) = const_input(g, layer, 1) else {
            continue;
        };
        let bias_in = g.node_input(layer, 2);
        let bias = match bias_in {
            Some(b) => match g.const_value(b) {
                Some(t) => Some(t.clone()),
                None => continue,
            },
            None => None,
        };
        let name = g.node(bn).name.clone();
        let what = |p: &str| format!("BatchNorm '{name}' {p}");
        let (scale, beta, mean, var) = (
            f32s(&params[0], &what("scale"))?,
            f32s(&params[1], &what("bias"))?,
            f32s(&params[2], &what("mean"))?,
            f32s(&params[3], &what("var"))?,
        );
        let c = scale.len();
        if [beta.len(), mean.len(), var.len()].iter().any(|&l| l != c)
            || w.shape().get(w_axis) != Some(&c)
        {
            continue;
        }
        let beta_g = match g.node(layer).op {
            Op::Gemm { beta, .. } => beta,
            _ => 1.0,
        };
        if let Op::Gemm { .. } = g.node(layer).op {
            // Gemm output [M, N]: BatchNorm over axis 1 = N. Only a [N] or absent C folds simply.
            if bias.as_ref().is_some_and(|b| b.len() != c) || beta_g == 0.0 {
                continue;
            }
        }
        let k: Vec<f32> = (0..c).map(|i| scale[i] / (var[i] + eps).sqrt()).collect();
        let wv = f32s(&w, &what("weights"))?;
        let inner: usize = w.shape()[w_axis + 1..].iter().product();
        let nw: Vec<f32> = wv
            .iter()
            .enumerate()
            .map(|(i, &x)| x * k[(i / inner.max(1)) % c])
            .collect();
        // y = k·(alpha·W·x + beta·b - mean) + beta_bn = alpha·(kW)·x + beta·b'
        // with b' = (k·(beta·b - mean) + beta_bn) / beta.
        let b_orig: Vec<f32> = match &bias {
            Some(b) => f32s(b, &what("layer bias"))?,
            None => vec![0.0; c],
        };
        let nb: Vec<f32> = (0..c)
            .map(|i| (k[i] * (beta_g * b_orig[i] - mean[i]) + beta[i]) / beta_g)
            .collect();
        let wname = format!("{}__bnfold_w", g.node(layer).name);
        let bname = format!("{}__bnfold_b", g.node(layer).name);
        let nw = Tensor::from_f32(w.shape(), nw).map_err(QuantError::from)?;
        let nb = Tensor::from_f32(&[c], nb).map_err(QuantError::from)?;
        let wv = g.add_const(wname, nw);
        let bv = g.add_const(bname, nb);
        g.set_node_input(layer, 1, Some(wv));
        g.set_node_input(layer, 2, Some(bv));
        // The layer output takes the BatchNorm output's name and type.
        let y = ValueRef::first(bn);
        let out = g.output(y).clone();
        g.replace_uses(y, x);
        g.remove_node(bn);
        *g.output_mut(x) = out;
        folded.push(name);
    }
    g.remove_dead();
    Ok(folded)
}
