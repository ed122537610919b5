//! Dense tensors: a dtype, a known shape and row-major data.

use crate::DType;
use half::f16;
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;

/// The elements of a tensor, one variant per dtype. Equality is bitwise for floats (NaN equals
/// the same NaN, 0.0 differs from -0.0): two tensors are equal when their contents are.
#[derive(Clone, Debug)]
pub enum TensorData {
    /// f32 elements.
    F32(Vec<f32>),
    /// f16 elements.
    F16(Vec<f16>),
    /// f64 elements.
    F64(Vec<f64>),
    /// i8 elements.
    I8(Vec<i8>),
    /// u8 elements.
    U8(Vec<u8>),
    /// i32 elements.
    I32(Vec<i32>),
    /// i64 elements.
    I64(Vec<i64>),
    /// bool elements.
    Bool(Vec<bool>),
}

impl PartialEq for TensorData {
    fn eq(&self, other: &TensorData) -> bool {
        fn bits<T: Copy, B: PartialEq>(a: &[T], b: &[T], f: impl Fn(T) -> B) -> bool {
            a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| f(x) == f(y))
        }
        match (self, other) {
            (TensorData::F32(a), TensorData::F32(b)) => bits(a, b, f32::to_bits),
            (TensorData::F16(a), TensorData::F16(b)) => bits(a, b, half::f16::to_bits),
            (TensorData::F64(a), TensorData::F64(b)) => bits(a, b, f64::to_bits),
            (TensorData::I8(a), TensorData::I8(b)) => a == b,
            (TensorData::U8(a), TensorData::U8(b)) => a == b,
            (TensorData::I32(a), TensorData::I32(b)) => a == b,
            (TensorData::I64(a), TensorData::I64(b)) => a == b,
            (TensorData::Bool(a), TensorData::Bool(b)) => a == b,
            _ => false,
        }
    }
}

impl TensorData {
    /// The dtype of these elements.
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::F16(_) => DType::F16,
            TensorData::F64(_) => DType::F64,
            TensorData::I8(_) => DType::I8,
            TensorData::U8(_) => DType::U8,
            TensorData::I32(_) => DType::I32,
            TensorData::I64(_) => DType::I64,
            TensorData::Bool(_) => DType::Bool,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::F16(v) => v.len(),
            TensorData::F64(v) => v.len(),
            TensorData::I8(v) => v.len(),
            TensorData::U8(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::I64(v) => v.len(),
            TensorData::Bool(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Errors building or converting tensors.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TensorError {
    /// The element count does not match the shape.
    #[error("tensor of shape {shape:?} needs {expected} elements, got {got}")]
    Size {
        /// The shape asked for.
        shape: Vec<usize>,
        /// Elements the shape needs.
        expected: usize,
        /// Elements given.
        got: usize,
    },
    /// Raw bytes of the wrong length for the dtype and shape.
    #[error("{dtype} tensor of shape {shape:?} needs {expected} bytes, got {got}")]
    Bytes {
        /// Element type.
        dtype: DType,
        /// Shape.
        shape: Vec<usize>,
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// The tensor has another dtype than the one asked for.
    #[error("expected a {expected} tensor, got {got}")]
    DType {
        /// Wanted dtype.
        expected: DType,
        /// Actual dtype.
        got: DType,
    },
}

/// A dense row-major tensor with a known shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

macro_rules! typed_access {
    ($as:ident, $as_mut:ident, $into:ident, $from:ident, $variant:ident, $t:ty) => {
        /// The elements, if the dtype matches.
        pub fn $as(&self) -> Result<&[$t], TensorError> {
            match &self.data {
                TensorData::$variant(v) => Ok(v),
                other => Err(TensorError::DType {
                    expected: DType::$variant,
                    got: other.dtype(),
                }),
            }
        }
        /// The elements, mutably, if the dtype matches.
        pub fn $as_mut(&mut self) -> Result<&mut [$t], TensorError> {
            let got = self.data.dtype();
            match &mut self.data {
                TensorData::$variant(v) => Ok(v),
                _ => Err(TensorError::DType {
                    expected: DType::$variant,
                    got,
                }),
            }
        }
        /// Takes the elements, if the dtype matches.
        pub fn $into(self) -> Result<Vec<$t>, TensorError> {
            match self.data {
                TensorData::$variant(v) => Ok(v),
                other => Err(TensorError::DType {
                    expected: DType::$variant,
                    got: other.dtype(),
                }),
            }
        }
        /// Builds a tensor from a shape and elements.
        pub fn $from(shape: &[usize], data: Vec<$t>) -> Result<Tensor, TensorError> {
            Tensor::new(shape, TensorData::$variant(data))
        }
    };
}

impl Tensor {
    /// Builds a tensor; the element count must match the shape.
    pub fn new(shape: &[usize], data: TensorData) -> Result<Tensor, TensorError> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(TensorError::Size {
                shape: shape.to_vec(),
                expected,
                got: data.len(),
            });
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            data,
        })
    }

    /// A tensor of zeros.
    pub fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let data = match dtype {
            DType::F32 => TensorData::F32(vec![0.0; n]),
            DType::F16 => TensorData::F16(vec![f16::ZERO; n]),
            DType::F64 => TensorData::F64(vec![0.0; n]),
            DType::I8 => TensorData::I8(vec![0; n]),
            DType::U8 => TensorData::U8(vec![0; n]),
            DType::I32 => TensorData::I32(vec![0; n]),
            DType::I64 => TensorData::I64(vec![0; n]),
            DType::Bool => TensorData::Bool(vec![false; n]),
        };
        Tensor {
            shape: shape.to_vec(),
            data,
        }
    }

    /// A rank-0 f32 tensor.
    pub fn scalar_f32(v: f32) -> Tensor {
        Tensor {
            shape: vec![],
            data: TensorData::F32(vec![v]),
        }
    }

    /// A rank-0 i64 tensor.
    pub fn scalar_i64(v: i64) -> Tensor {
        Tensor {
            shape: vec![],
            data: TensorData::I64(vec![v]),
        }
    }

    /// A rank-1 i64 tensor.
    pub fn vec_i64(v: &[i64]) -> Tensor {
        Tensor {
            shape: vec![v.len()],
            data: TensorData::I64(v.to_vec()),
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The rank.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// Takes the elements.
    pub fn into_data(self) -> TensorData {
        self.data
    }

    /// The same elements under another shape with the same element count.
    pub fn reshape(mut self, shape: &[usize]) -> Result<Tensor, TensorError> {
        let expected: usize = shape.iter().product();
        if expected != self.len() {
            return Err(TensorError::Size {
                shape: shape.to_vec(),
                expected,
                got: self.len(),
            });
        }
        self.shape = shape.to_vec();
        Ok(self)
    }

    typed_access!(as_f32, as_f32_mut, into_f32, from_f32, F32, f32);
    typed_access!(as_f16, as_f16_mut, into_f16, from_f16, F16, f16);
    typed_access!(as_f64, as_f64_mut, into_f64, from_f64, F64, f64);
    typed_access!(as_i8, as_i8_mut, into_i8, from_i8, I8, i8);
    typed_access!(as_u8, as_u8_mut, into_u8, from_u8, U8, u8);
    typed_access!(as_i32, as_i32_mut, into_i32, from_i32, I32, i32);
    typed_access!(as_i64, as_i64_mut, into_i64, from_i64, I64, i64);
    typed_access!(as_bool, as_bool_mut, into_bool, from_bool, Bool, bool);

    /// Every element converted to f64 (exact for all dtypes but large i64).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match &self.data {
            TensorData::F32(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::F16(v) => v.iter().map(|&x| x.to_f64()).collect(),
            TensorData::F64(v) => v.clone(),
            TensorData::I8(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::U8(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| x as u8 as f64).collect(),
        }
    }

    /// Every element converted to f32.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match &self.data {
            TensorData::F32(v) => v.clone(),
            TensorData::F16(v) => v.iter().map(|&x| x.to_f32()).collect(),
            TensorData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I8(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::U8(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| x as u8 as f32).collect(),
        }
    }

    /// Every element converted to i64 (floats truncate toward zero, saturating; NaN gives 0).
    pub fn to_i64_vec(&self) -> Vec<i64> {
        match &self.data {
            TensorData::F32(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::F16(v) => v.iter().map(|&x| x.to_f32() as i64).collect(),
            TensorData::F64(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::I8(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::U8(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::I64(v) => v.clone(),
            TensorData::Bool(v) => v.iter().map(|&x| x as i64).collect(),
        }
    }

    /// The raw little-endian bytes of the elements (bool as one byte 0/1).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * self.dtype().size());
        match &self.data {
            TensorData::F32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::F16(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::F64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::I8(v) => v.iter().for_each(|x| out.push(*x as u8)),
            TensorData::U8(v) => out.extend_from_slice(v),
            TensorData::I32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::I64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::Bool(v) => v.iter().for_each(|x| out.push(*x as u8)),
        }
        out
    }

    /// Builds a tensor from raw little-endian bytes.
    pub fn from_le_bytes(
        dtype: DType,
        shape: &[usize],
        bytes: &[u8],
    ) -> Result<Tensor, TensorError> {
        let n: usize = shape.iter().product();
        let expected = n.saturating_mul(dtype.size());
        if bytes.len() != expected {
            return Err(TensorError::Bytes {
                dtype,
                shape: shape.to_vec(),
                expected,
                got: bytes.len(),
            });
        }
        fn chunks<const W: usize, T>(b: &[u8], f: impl Fn([u8; W]) -> T) -> Vec<T> {
            b.chunks_exact(W)
                .map(|c| f(c.try_into().expect("exact chunk")))
                .collect()
        }
        let data = match dtype {
            DType::F32 => TensorData::F32(chunks(bytes, f32::from_le_bytes)),
            DType::F16 => TensorData::F16(chunks(bytes, f16::from_le_bytes)),
            DType::F64 => TensorData::F64(chunks(bytes, f64::from_le_bytes)),
            DType::I8 => TensorData::I8(bytes.iter().map(|&b| b as i8).collect()),
            DType::U8 => TensorData::U8(bytes.to_vec()),
            DType::I32 => TensorData::I32(chunks(bytes, i32::from_le_bytes)),
            DType::I64 => TensorData::I64(chunks(bytes, i64::from_le_bytes)),
            DType::Bool => TensorData::Bool(bytes.iter().map(|&b| b != 0).collect()),
        };
        Tensor::new(shape, data)
    }

    /// Content digest: SHA-256 over dtype, shape and bytes, as lowercase hex.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.dtype().name().as_bytes());
        for d in &self.shape {
            h.update((*d as u64).to_le_bytes());
        }
        h.update(self.to_le_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Converts every element to another dtype with ONNX `Cast` semantics
    /// (float→int truncates toward zero and wraps like a C cast of the i64 value; NaN→0).
    pub fn cast(&self, to: DType) -> Tensor {
        let data = match to {
            DType::F32 => TensorData::F32(self.to_f32_vec()),
            DType::F64 => TensorData::F64(self.to_f64_vec()),
            DType::F16 => match &self.data {
                TensorData::F64(v) => {
                    TensorData::F16(v.iter().map(|&x| f16::from_f64(x)).collect())
                }
                _ => TensorData::F16(self.to_f32_vec().into_iter().map(f16::from_f32).collect()),
            },
            DType::Bool => {
                TensorData::Bool(self.to_f64_vec().into_iter().map(|x| x != 0.0).collect())
            }
            DType::I8 => TensorData::I8(self.to_i64_vec().into_iter().map(|x| x as i8).collect()),
            DType::U8 => TensorData::U8(self.to_i64_vec().into_iter().map(|x| x as u8).collect()),
            DType::I32 => {
                TensorData::I32(self.to_i64_vec().into_iter().map(|x| x as i32).collect())
            }
            DType::I64 => TensorData::I64(self.to_i64_vec()),
        };
        Tensor {
            shape: self.shape.clone(),
            data,
        }
    }

    /// Converts to `to` like [`Tensor::cast`], without copying when the dtype already matches.
    pub fn into_dtype(self, to: DType) -> Tensor {
        if self.dtype() == to {
            self
        } else {
            self.cast(to)
        }
    }

    /// Wraps in an `Arc` for sharing as a constant.
    pub fn into_arc(self) -> Arc<Tensor> {
        Arc::new(self)
    }

    /// Same dtype, shape and bytes (floats bitwise: a NaN equals the same NaN, 0.0 is not -0.0).
    pub fn same_content(&self, other: &Tensor) -> bool {
        // `PartialEq` compares floats bitwise: exactly "same bytes", without copying them.
        self == other
    }
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:?}", self.dtype(), self.shape)
    }
}
