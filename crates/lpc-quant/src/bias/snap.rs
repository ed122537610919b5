//! Biases rounded onto the accumulator grid, as integer runtimes store them.

use crate::QuantError;
use lpc_ir::quant::{accumulator_scales, accumulator_units};
use lpc_ir::{Graph, NodeId, Tensor};

/// Rounds the constant bias of each quantized layer onto its accumulator grid
/// (`lpc_ir::quant::accumulator_scales`: input scale × weight scale per output channel),
/// as integer runtimes store it (i32 in those units). The FakeQuantize graph then computes
/// what the fused integer kernels and the QDQ export (i32 bias + DequantizeLinear) compute;
/// left in float, ONNX Runtime re-rounds the bias itself and the two drift apart. The change
/// is at most half a unit of the accumulator per channel.
pub(crate) fn snap_biases(g: &mut Graph, layers: &[NodeId]) -> Result<(), QuantError> {
    for &n in layers {
        let Some(scales) = accumulator_scales(g, n) else {
            continue;
        };
        let Some(bv) = g.node_input(n, 2) else {
            continue;
        };
        let Some(b) = g.const_value(bv) else { continue };
        if b.dtype() != lpc_ir::DType::F32 || b.len() != scales.len() {
            continue;
        }
        let shape = b.shape().to_vec();
        let snapped: Vec<f32> = b
            .to_f32_vec()
            .iter()
            .zip(&scales)
            .map(|(&v, &s)| accumulator_units(v, s).map_or(v, |k| k * s))
            .collect();
        let name = format!("{}__acc_bias", g.node(n).name);
        let t = Tensor::from_f32(&shape, snapped).map_err(QuantError::from)?;
        let v = g.add_const(name, t);
        g.set_node_input(n, 2, Some(v));
    }
    g.remove_dead();
    Ok(())
}
