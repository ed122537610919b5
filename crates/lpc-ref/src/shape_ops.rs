//! Data movement and shape ops.
use crate::{EvalResult, Inputs};
use lpc_ir::{PadMode, Tensor};

pub fn concat(_axis: i64, _i: Inputs) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn split(_axis: i64, _num_outputs: usize, _x: &Tensor, _split: Option<&Tensor>) -> EvalResult<Vec<Tensor>> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn flatten(_axis: i64, _x: &Tensor) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn reshape(_allowzero: bool, _x: &Tensor, _shape: &Tensor) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn squeeze(_x: &Tensor, _axes: Option<&Tensor>) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn unsqueeze(_x: &Tensor, _axes: &Tensor) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn transpose(_perm: &[usize], _x: &Tensor) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn expand(_x: &Tensor, _shape: &Tensor) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn gather(_axis: i64, _data: &Tensor, _indices: &Tensor) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn shape_of(_start: i64, _end: Option<i64>, _x: &Tensor) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn slice(_i: Inputs) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn pad(_mode: PadMode, _i: Inputs) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn range(_start: &Tensor, _limit: &Tensor, _delta: &Tensor) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn constant_of_shape(_value: &Tensor, _shape: &Tensor) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
