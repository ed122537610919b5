//! QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear and FakeQuantize, exactly.
use crate::{EvalResult, Inputs};
use lpc_ir::{DType, QuantAxis, Tensor};

pub fn quantize_linear(_q: &QuantAxis, _dtype: DType, _i: Inputs) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn dequantize_linear(_q: &QuantAxis, _i: Inputs) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn dynamic_quantize_linear(_x: &Tensor) -> EvalResult<Vec<Tensor>> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn fake_quantize(_levels: u32, _i: Inputs) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
