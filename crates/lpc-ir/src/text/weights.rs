//! The `.lir.weights` sidecar: large constants keyed by content digest.
//!
//! Layout (little-endian): magic `LPCW` + u32 version 1 + u32 count; per tensor: 64 ASCII hex
//! digest bytes, u8 dtype code (index in `DType::ALL`), u32 rank, u64 dims, u64 byte length, bytes.

use crate::{DType, Tensor};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Large constants by digest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Weights {
    map: BTreeMap<String, Arc<Tensor>>,
}

/// A corrupt weights file.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("corrupt weights file: {0}")]
pub struct WeightsError(pub String);

impl Weights {
    /// Adds a tensor under its digest.
    pub fn insert(&mut self, t: Arc<Tensor>) {
        self.map.insert(t.digest(), t);
    }
    /// The tensor with this digest.
    pub fn get(&self, digest: &str) -> Option<&Arc<Tensor>> {
        self.map.get(digest)
    }
    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Serialises.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = b"LPCW".to_vec();
        b.extend(1u32.to_le_bytes());
        b.extend((self.map.len() as u32).to_le_bytes());
        for (d, t) in &self.map {
            b.extend(d.as_bytes());
            b.push(DType::ALL.iter().position(|&x| x == t.dtype()).expect("listed") as u8);
            b.extend((t.rank() as u32).to_le_bytes());
            for &s in t.shape() {
                b.extend((s as u64).to_le_bytes());
            }
            let raw = t.to_le_bytes();
            b.extend((raw.len() as u64).to_le_bytes());
            b.extend(raw);
        }
        b
    }
    /// Parses, checking every length and every digest.
    pub fn from_bytes(b: &[u8]) -> Result<Weights, WeightsError> {
        let mut pos = 0usize;
        let mut take = |n: usize| -> Result<&[u8], WeightsError> {
            let end = pos.checked_add(n).filter(|&e| e <= b.len()).ok_or_else(|| WeightsError("truncated".into()))?;
            let s = &b[pos..end];
            pos = end;
            Ok(s)
        };
        if take(4)? != b"LPCW" {
            return Err(WeightsError("bad magic".into()));
        }
        let u32_ = |s: &[u8]| u32::from_le_bytes(s.try_into().expect("4 bytes"));
        let u64_ = |s: &[u8]| u64::from_le_bytes(s.try_into().expect("8 bytes"));
        let version = u32_(take(4)?);
        if version != 1 {
            return Err(WeightsError(format!("unsupported version {version}")));
        }
        let count = u32_(take(4)?);
        let mut w = Weights::default();
        for _ in 0..count {
            let digest = String::from_utf8(take(64)?.to_vec()).map_err(|_| WeightsError("bad digest".into()))?;
            let code = take(1)?[0] as usize;
            let dtype = *DType::ALL.get(code).ok_or_else(|| WeightsError(format!("bad dtype code {code}")))?;
            let rank = u32_(take(4)?) as usize;
            if rank > 64 {
                return Err(WeightsError(format!("rank {rank}")));
            }
            let mut shape = vec![];
            let mut n: u64 = 1;
            for _ in 0..rank {
                let d = u64_(take(8)?);
                n = n.saturating_mul(d);
                shape.push(d as usize);
            }
            let len = u64_(take(8)?);
            if n.saturating_mul(dtype.size() as u64) != len || len > b.len() as u64 {
                return Err(WeightsError(format!("tensor {digest}: {len} bytes do not fit {dtype}{shape:?}")));
            }
            let t = Tensor::from_le_bytes(dtype, &shape, take(len as usize)?).map_err(|e| WeightsError(e.to_string()))?;
            if t.digest() != digest {
                return Err(WeightsError(format!("tensor {digest}: content does not match its digest")));
            }
            w.map.insert(digest, Arc::new(t));
        }
        if pos != b.len() {
            return Err(WeightsError("trailing bytes".into()));
        }
        Ok(w)
    }
}
