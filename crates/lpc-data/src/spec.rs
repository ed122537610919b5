//! What a model expects of each input, and the checks of one sample against it.

use crate::error::DataError;
use lpc_ir::{DType, Dim, Graph, Tensor, TensorData};

/// What the model expects of one input.
#[derive(Clone, Debug)]
pub struct InputSpec {
    /// Input name.
    pub name: String,
    /// Expected dtype, if declared.
    pub dtype: Option<DType>,
    /// Declared dims (None = unknown rank).
    pub dims: Option<Vec<Dim>>,
}

impl InputSpec {
    /// The specs of every input of `g`.
    pub fn of(g: &Graph) -> Vec<InputSpec> {
        g.inputs()
            .iter()
            .map(|&n| {
                let o = &g.node(n).outputs[0];
                InputSpec {
                    name: o.name.clone(),
                    dtype: o.ty.dtype,
                    dims: o.ty.shape.as_ref().map(|s| s.0.clone()),
                }
            })
            .collect()
    }

    /// Rows per sample along axis 0: the known leading dim, or 1 when it is symbolic.
    pub(crate) fn rows(&self) -> usize {
        match self.dims.as_ref().and_then(|d| d.first()) {
            Some(Dim::Known(k)) => *k,
            _ => 1,
        }
    }

    /// True when the leading dimension is symbolic, so samples can be batched.
    pub fn batchable(&self) -> bool {
        matches!(
            self.dims.as_ref().and_then(|d| d.first()),
            Some(Dim::Sym(_))
        )
    }

    /// Checks one sample tensor (rows along axis 0 already included) against the spec.
    pub(crate) fn check(&self, t: &Tensor, what: &str) -> Result<(), DataError> {
        if let Some(d) = self.dtype {
            if d != t.dtype() {
                return Err(DataError::Mismatch {
                    what: what.to_string(),
                    msg: format!(
                        "dtype {} but model input '{}' takes {d}",
                        t.dtype(),
                        self.name
                    ),
                });
            }
        }
        if let Some(dims) = &self.dims {
            let ok = dims.len() == t.rank()
                && dims
                    .iter()
                    .zip(t.shape())
                    .enumerate()
                    .all(|(i, (d, &n))| match d {
                        Dim::Known(k) => *k == n,
                        Dim::Sym(_) => i == 0 || n > 0,
                    });
            if !ok {
                let want: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
                return Err(DataError::Mismatch {
                    what: what.to_string(),
                    msg: format!(
                        "shape {:?} does not fit model input '{}' [{}]",
                        t.shape(),
                        self.name,
                        want.join(",")
                    ),
                });
            }
        }
        check_finite(t, what)
    }
}

/// Checks that a float tensor holds no NaN or Inf.
pub(crate) fn check_finite(t: &Tensor, what: &str) -> Result<(), DataError> {
    let bad = match t.data() {
        TensorData::F32(v) => v
            .iter()
            .position(|x| !x.is_finite())
            .map(|i| (i, v[i] as f64)),
        TensorData::F64(v) => v.iter().position(|x| !x.is_finite()).map(|i| (i, v[i])),
        TensorData::F16(v) => v
            .iter()
            .position(|x| !x.is_finite())
            .map(|i| (i, v[i].to_f64())),
        TensorData::I8(_)
        | TensorData::U8(_)
        | TensorData::I32(_)
        | TensorData::I64(_)
        | TensorData::Bool(_) => None,
    };
    match bad {
        Some((index, value)) => Err(DataError::NonFinite {
            what: what.to_string(),
            index,
            value,
        }),
        None => Ok(()),
    }
}
