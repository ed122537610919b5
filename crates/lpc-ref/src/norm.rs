//! BatchNormalization, LayerNormalization, Softmax and LogSoftmax.
use crate::{EvalResult, Inputs};
use lpc_ir::Tensor;

pub fn batch_norm(_eps: f32, _training: bool, _momentum: f32, _i: Inputs, _n_outputs: usize) -> EvalResult<Vec<Tensor>> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn layer_norm(_axis: i64, _eps: f32, _i: Inputs, _n_outputs: usize) -> EvalResult<Vec<Tensor>> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn softmax(_axis: i64, _coerce_2d: bool, _log: bool, _x: &Tensor) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
