//! Layers kept in float by rule: those feeding a sigmoid output map and the layers of
//! squeeze-and-excitation gates.

use lpc_ir::{BinaryOp, Graph, NodeId, Op, UnaryOp, ValueRef};

/// Layers whose output reaches a graph output through elementwise ops only (bias Add,
/// BatchNorm, Clip, unary functions), one of which is a Sigmoid or HardSigmoid: a near-saturated
/// probability map (DBNet's text mask), where a logit error of a fraction of one quantization
/// step changes the small probabilities by a large relative amount. They keep float inputs and
/// weights; all other layers stay integer.
pub(crate) fn sigmoid_output_layers(g: &Graph) -> Vec<NodeId> {
    let mut out = vec![];
    for n in g.node_ids() {
        if !matches!(
            g.node(n).op,
            Op::Conv(_) | Op::ConvTranspose { .. } | Op::Gemm { .. } | Op::MatMul
        ) {
            continue;
        }
        let mut v = ValueRef::first(n);
        let mut sigmoid = false;
        for _ in 0..8 {
            if g.outputs().contains(&v) {
                break;
            }
            let users = g.users(v);
            let [(u, _)] = users.as_slice() else { break };
            let elementwise = match &g.node(*u).op {
                Op::Unary(op) => {
                    sigmoid |= matches!(op, UnaryOp::Sigmoid | UnaryOp::HardSigmoid { .. });
                    true
                }
                Op::Binary(_) => g
                    .node_inputs(*u)
                    .iter()
                    .flatten()
                    .all(|&x| x == v || g.const_value(x).is_some()),
                Op::BatchNorm { .. } | Op::Clip => g
                    .node_inputs(*u)
                    .iter()
                    .skip(1)
                    .flatten()
                    .all(|&x| g.const_value(x).is_some()),
                _ => false,
            };
            if !elementwise {
                break;
            }
            v = ValueRef::first(*u);
        }
        if sigmoid && g.outputs().contains(&v) {
            out.push(n);
        }
    }
    out
}

/// True when every dimension after the first two (batch, channels) is known to be 1 and there
/// is at least one such dimension: one value per channel.
fn one_pixel(g: &Graph, v: ValueRef) -> bool {
    g.value_type(v)
        .shape
        .as_ref()
        .is_some_and(|s| s.rank() >= 3 && s.0[2..].iter().all(|d| d.known() == Some(1)))
}

/// Layers of squeeze-and-excitation gates (`Config::float_gates`): a Conv/Gemm/MatMul whose
/// output has one pixel per channel and reaches, through single-reader elementwise ops (unary,
/// binary with a constant, Clip) and further such layers only, one input of a Mul whose other
/// input is an activation with more than one pixel. Measured on PP-OCR cls: with the gates
/// quantized, one rounding tie decided differently upstream (e.g. by another runtime's
/// summation order) moves a gate by a fraction of a step, which moves every element of its
/// channel, so two faithful INT8 runtimes drift apart; the gate layers hold < 1% of the MACs.
pub(crate) fn gate_layers(g: &Graph) -> Vec<NodeId> {
    let layer = |op: &Op| matches!(op, Op::Conv(_) | Op::Gemm { .. } | Op::MatMul);
    let mut out = vec![];
    for n in g.node_ids() {
        if !layer(&g.node(n).op) || !one_pixel(g, ValueRef::first(n)) {
            continue;
        }
        let mut v = ValueRef::first(n);
        for _ in 0..12 {
            if g.outputs().contains(&v) {
                break;
            }
            let users = g.users(v);
            let [(u, _)] = users.as_slice() else { break };
            let ins: Vec<ValueRef> = g.node_inputs(*u).into_iter().flatten().collect();
            let others_const = |skip: usize| {
                ins.iter()
                    .skip(skip)
                    .filter(|&&x| x != v)
                    .all(|&x| g.const_value(x).is_some())
            };
            let through = match &g.node(*u).op {
                Op::Binary(BinaryOp::Mul) => {
                    let other = ins.iter().find(|&&x| x != v);
                    if let Some(&o) = other {
                        if g.const_value(o).is_none() && !one_pixel(g, o) {
                            out.push(n);
                            break;
                        }
                    }
                    others_const(0)
                }
                Op::Unary(_) | Op::Binary(_) => others_const(0),
                Op::Clip => others_const(1),
                op if layer(op) => one_pixel(g, ValueRef::first(*u)) && others_const(1),
                _ => false,
            };
            if !through {
                break;
            }
            v = ValueRef::first(*u);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_layers_are_the_squeeze_excitation_convs() {
        // x → conv a → [GAP → conv se1 → relu → conv se2 → hard_sigmoid] → mul → conv b;
        // a 1-pixel conv c feeding an output (a classifier head) is no gate.
        let g = lpc_ir::text::parse(
            r#"graph @se(%x: f32[1,4,6,6]) -> (%y, %z) {
  %w = const f32[4,4,1,1] [1,0,0,0, 0,1,0,0, 0,0,1,0, 0,0,0,1]
  %w1 = const f32[2,4,1,1] [1,1,1,1, 1,1,1,1]
  %w2 = const f32[4,2,1,1] [1,1, 1,1, 1,1, 1,1]
  %a = conv(%x, %w) {kernel=[1,1]} : f32[1,4,6,6] @a
  %p = global_average_pool(%a) : f32[1,4,1,1]
  %s1 = conv(%p, %w1) {kernel=[1,1]} : f32[1,2,1,1] @se1
  %r = relu(%s1) : f32[1,2,1,1]
  %s2 = conv(%r, %w2) {kernel=[1,1]} : f32[1,4,1,1] @se2
  %h = hard_sigmoid(%s2) {alpha=0.16666667, beta=0.5} : f32[1,4,1,1]
  %m = mul(%a, %h) : f32[1,4,6,6]
  %y = conv(%m, %w) {kernel=[1,1]} : f32[1,4,6,6] @b
  %z = conv(%p, %w) {kernel=[1,1]} : f32[1,4,1,1] @c
  return %y, %z
}"#,
        )
        .unwrap();
        let mut names: Vec<&str> = gate_layers(&g)
            .into_iter()
            .map(|n| g.node(n).name.as_str())
            .collect();
        names.sort();
        assert_eq!(names, ["se1", "se2"]);
    }
}
