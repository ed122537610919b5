//! The `.lir.weights` sidecar: large constants by content digest, in a small versioned binary file.
//!
//! Layout (all integers little-endian):
//! ```text
//! magic   "LPCW"            4 bytes
//! version u32 = 1
//! count   u64
//! count × { digest [32]     raw SHA-256 of Tensor::digest()
//!           dtype  u8       1 f32, 2 f16, 3 f64, 4 i8, 5 u8, 6 i32, 7 i64, 8 bool
//!           rank   u32
//!           dims   rank × u64
//!           nbytes u64      = product(dims) × dtype size
//!           data   nbytes   row-major little-endian elements (bool: one byte 0/1) }
//! ```
//! Reading checks every length against the file, the element count against the shape, and
//! each tensor's digest against its content; it never panics on a corrupt file.

use crate::{DType, Tensor};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const MAGIC: &[u8; 4] = b"LPCW";
const VERSION: u32 = 1;

/// Errors reading or writing a weights file.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// A file system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file does not start with `LPCW`.
    #[error("not an lpc weights file (bad magic)")]
    BadMagic,
    /// A version this build does not read.
    #[error("unsupported weights file version {0} (this build reads version {VERSION})")]
    Version(u32),
    /// The file ends in the middle of something.
    #[error("weights file truncated: {what} at byte {offset} needs {need} bytes, {left} left")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Byte offset.
        offset: usize,
        /// Bytes needed.
        need: u64,
        /// Bytes left in the file.
        left: usize,
    },
    /// An unknown dtype code.
    #[error("tensor {index}: unknown dtype code {code}")]
    DType {
        /// Tensor number in the file.
        index: u64,
        /// The code.
        code: u8,
    },
    /// The byte count does not match the dtype and shape.
    #[error("tensor {index}: {dtype} shape {shape:?} needs {expected} bytes, the file says {got}")]
    Size {
        /// Tensor number in the file.
        index: u64,
        /// Element type.
        dtype: DType,
        /// Shape.
        shape: Vec<u64>,
        /// Bytes the shape needs (in words when that overflows).
        expected: String,
        /// Bytes the file declares.
        got: u64,
    },
    /// The content does not match its digest.
    #[error("tensor {index}: content digest {got} does not match the recorded {expected} (corrupt file)")]
    Digest {
        /// Tensor number in the file.
        index: u64,
        /// Recorded digest.
        expected: String,
        /// Digest of the content.
        got: String,
    },
    /// The same digest twice.
    #[error("tensor {index}: digest {digest} appears twice")]
    Duplicate {
        /// Tensor number in the file.
        index: u64,
        /// The digest.
        digest: String,
    },
    /// Bytes after the last tensor.
    #[error("{0} unexpected bytes after the last tensor")]
    Trailing(usize),
}

/// Large constants keyed by [`Tensor::digest`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Weights {
    map: BTreeMap<String, Arc<Tensor>>,
}

fn dtype_code(d: DType) -> u8 {
    match d {
        DType::F32 => 1,
        DType::F16 => 2,
        DType::F64 => 3,
        DType::I8 => 4,
        DType::U8 => 5,
        DType::I32 => 6,
        DType::I64 => 7,
        DType::Bool => 8,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Raw bytes of a 64-digit hex digest.
fn unhex(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let pair = std::str::from_utf8(&b[2 * i..2 * i + 2]).ok()?;
        *o = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], WeightsError> {
        let left = self.b.len() - self.pos;
        match usize::try_from(n) {
            Ok(n) if n <= left => {
                let s = &self.b[self.pos..self.pos + n];
                self.pos += n;
                Ok(s)
            }
            _ => Err(WeightsError::Truncated {
                what,
                offset: self.pos,
                need: n,
                left,
            }),
        }
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, WeightsError> {
        Ok(self.take(1, what)?[0])
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, WeightsError> {
        let s = self.take(4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, WeightsError> {
        let s = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
}

impl Weights {
    /// No weights.
    pub fn new() -> Weights {
        Weights::default()
    }

    /// Adds a tensor and returns its digest.
    pub fn insert(&mut self, t: Arc<Tensor>) -> String {
        let d = t.digest();
        self.map.entry(d.clone()).or_insert(t);
        d
    }

    /// The tensor of a digest.
    pub fn get(&self, digest: &str) -> Option<&Arc<Tensor>> {
        self.map.get(digest)
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// `(digest, tensor)` pairs in digest order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<Tensor>)> {
        self.map.iter().map(|(d, t)| (d.as_str(), t))
    }

    /// The file contents (see the module documentation for the layout).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut o = Vec::new();
        o.extend_from_slice(MAGIC);
        o.extend_from_slice(&VERSION.to_le_bytes());
        o.extend_from_slice(&(self.map.len() as u64).to_le_bytes());
        for (d, t) in &self.map {
            // Keys come from Tensor::digest, always 64 hex digits.
            o.extend_from_slice(&unhex(d).unwrap_or([0; 32]));
            o.push(dtype_code(t.dtype()));
            o.extend_from_slice(&(t.rank() as u32).to_le_bytes());
            for &s in t.shape() {
                o.extend_from_slice(&(s as u64).to_le_bytes());
            }
            let bytes = t.to_le_bytes();
            o.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            o.extend_from_slice(&bytes);
        }
        o
    }

    /// Reads file contents, checking lengths and digests.
    pub fn from_bytes(b: &[u8]) -> Result<Weights, WeightsError> {
        let mut r = Reader { b, pos: 0 };
        if r.take(4, "magic").map_err(|_| WeightsError::BadMagic)? != MAGIC {
            return Err(WeightsError::BadMagic);
        }
        let version = r.u32("version")?;
        if version != VERSION {
            return Err(WeightsError::Version(version));
        }
        let count = r.u64("tensor count")?;
        let mut map = BTreeMap::new();
        for index in 0..count {
            let expected = hex(r.take(32, "digest")?);
            let code = r.u8("dtype")?;
            let dtype = DType::ALL
                .iter()
                .copied()
                .find(|&d| dtype_code(d) == code)
                .ok_or(WeightsError::DType { index, code })?;
            let rank = r.u32("rank")?;
            // Checks that all dims are in the file before reading them one by one.
            let dims_len = u64::from(rank) * 8;
            let dims_bytes = r.take(dims_len, "dims")?;
            let dims: Vec<u64> = dims_bytes
                .chunks_exact(8)
                .map(|c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    u64::from_le_bytes(a)
                })
                .collect();
            let got = r.u64("byte count")?;
            let need = dims
                .iter()
                .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d));
            let shape: Option<Vec<usize>> = dims.iter().map(|&d| usize::try_from(d).ok()).collect();
            let (Some(need), Some(shape)) = (need, shape) else {
                return Err(WeightsError::Size {
                    index,
                    dtype,
                    shape: dims,
                    expected: "more than 2^64".into(),
                    got,
                });
            };
            if need != got {
                return Err(WeightsError::Size {
                    index,
                    dtype,
                    shape: dims,
                    expected: need.to_string(),
                    got,
                });
            }
            let data = r.take(got, "tensor data")?;
            let t = Tensor::from_le_bytes(dtype, &shape, data).map_err(|_| WeightsError::Size {
                index,
                dtype,
                shape: dims.clone(),
                expected: need.to_string(),
                got,
            })?;
            let digest = t.digest();
            if digest != expected {
                return Err(WeightsError::Digest {
                    index,
                    expected,
                    got: digest,
                });
            }
            if map.insert(digest.clone(), Arc::new(t)).is_some() {
                return Err(WeightsError::Duplicate { index, digest });
            }
        }
        if r.pos != b.len() {
            return Err(WeightsError::Trailing(b.len() - r.pos));
        }
        Ok(Weights { map })
    }

    /// Writes the file (atomically).
    pub fn write(&self, path: &Path) -> Result<(), WeightsError> {
        crate::host::write_atomic(path, &self.to_bytes()).map_err(|e| WeightsError::Io {
            path: e.path.display().to_string(),
            source: e.source,
        })
    }

    /// Reads a file.
    pub fn read(path: &Path) -> Result<Weights, WeightsError> {
        let b = std::fs::read(path).map_err(|source| WeightsError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Weights::from_bytes(&b)
    }
}
