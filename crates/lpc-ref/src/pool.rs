//! Max, average and global pooling.
use crate::EvalResult;
use lpc_ir::{PoolAttrs, Tensor};

pub fn max_pool(_p: &PoolAttrs, _storage_order: i64, _x: &Tensor, _n_outputs: usize) -> EvalResult<Vec<Tensor>> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn average_pool(_p: &PoolAttrs, _count_include_pad: bool, _x: &Tensor) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
pub fn global_pool(_max: bool, _x: &Tensor) -> EvalResult<Tensor> { Err(crate::EvalError::Unsupported("not implemented yet".into())) }
