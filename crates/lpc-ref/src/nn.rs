//! Convolutions and matrix products, float and integer.
use crate::{EvalResult, Inputs};
use lpc_ir::{ConvAttrs, Tensor};

pub fn conv(_a: &ConvAttrs, _i: Inputs) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn conv_transpose(_a: &ConvAttrs, _output_padding: &[usize], _output_shape: &[usize], _i: Inputs) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn conv_integer(_a: &ConvAttrs, _i: Inputs) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn qlinear_conv(_a: &ConvAttrs, _i: Inputs) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn matmul(_a: &Tensor, _b: &Tensor) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn matmul_integer(_i: Inputs) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn qlinear_matmul(_i: Inputs) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn gemm(_alpha: f32, _beta: f32, _ta: bool, _tb: bool, _i: Inputs) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
