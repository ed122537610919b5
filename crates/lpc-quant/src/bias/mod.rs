//! Bias correction: per-channel shifts that remove the mean error quantization adds to each
//! layer's output, computed fast (each layer on FP32 inputs, [`fast`]) or sequentially (on the
//! quantized model's own inputs, [`sequential`]), then added to the biases ([`shift`]) and
//! rounded onto the accumulator grid ([`snap`]).

pub(crate) mod fast;
pub(crate) mod sequential;
pub(crate) mod shift;
pub(crate) mod snap;
mod taps;

use crate::placement::LayerKind;
use lpc_data::SampleSource;
use lpc_ir::Tensor;

/// Output-channel axis of a layer's output.
fn out_axis(kind: LayerKind, rank: usize) -> usize {
    match kind {
        LayerKind::Conv | LayerKind::ConvTranspose | LayerKind::Gemm { .. } => {
            1.min(rank.saturating_sub(1))
        }
        LayerKind::MatMul => rank.saturating_sub(1),
    }
}

/// Every `len / n`-th sample of a source (all of it when `n >= len`): the bias-correction subset.
pub(crate) struct Spread<'a> {
    pub(crate) src: &'a dyn SampleSource,
    pub(crate) n: usize,
}

impl SampleSource for Spread<'_> {
    fn len(&self) -> usize {
        self.n.min(self.src.len())
    }
    fn get(&self, i: usize) -> Result<Vec<Tensor>, lpc_data::DataError> {
        self.src.get(i * self.src.len() / self.len().max(1))
    }
}
