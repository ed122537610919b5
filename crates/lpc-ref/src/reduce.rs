//! ReduceMax, ReduceMean, ReduceSum.
use crate::EvalResult;
use lpc_ir::{ReduceOp, Tensor};

pub fn reduce(_op: ReduceOp, _keepdims: bool, _noop_with_empty_axes: bool, _x: &Tensor, _axes: Option<&Tensor>) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
