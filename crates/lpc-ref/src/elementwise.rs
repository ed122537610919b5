//! Elementwise ops: unary, binary with numpy broadcasting, Clip, Where.
use crate::EvalResult;
use lpc_ir::{BinaryOp, Tensor, UnaryOp};

pub fn unary(_op: &UnaryOp, _x: &Tensor) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn binary(_op: BinaryOp, _a: &Tensor, _b: &Tensor) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn clip(_x: &Tensor, _min: Option<&Tensor>, _max: Option<&Tensor>) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn where_(_c: &Tensor, _a: &Tensor, _b: &Tensor) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
