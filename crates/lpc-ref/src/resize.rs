//! Resize: nearest, linear and cubic, every coordinate transformation.
use crate::{EvalResult, Inputs};
use lpc_ir::{ResizeAttrs, Tensor};

pub fn resize(_a: &ResizeAttrs, _i: Inputs) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
