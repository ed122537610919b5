//! The run-time buffer pool: buffers of freed values are kept and handed to later kernels that
//! need one of the same element type, so a run allocates little after the first. Also the short
//! row copy the packing code uses.

use lpc_ir::{Tensor, TensorData};

/// Buffers kept per element type (more are dropped: the pool never grows without bound).
const KEEP: usize = 32;

/// Free buffers by element type, and counts of how often a request was served from them.
#[derive(Default)]
pub struct BufferPool {
    u8s: Vec<Vec<u8>>,
    i8s: Vec<Vec<i8>>,
    i32s: Vec<Vec<i32>>,
    f32s: Vec<Vec<f32>>,
    /// Requests served by a kept buffer.
    pub reused: usize,
    /// Requests that needed a new allocation.
    pub allocated: usize,
}

fn keep<T>(list: &mut Vec<Vec<T>>, v: Vec<T>) {
    if v.capacity() > 0 && list.len() < KEEP {
        list.push(v);
    }
}

/// The smallest kept buffer holding `len` elements, resized to `len` (contents unspecified but
/// initialised), or a new one.
fn take<T: Copy + Default>(
    list: &mut Vec<Vec<T>>,
    len: usize,
    reused: &mut usize,
    allocated: &mut usize,
) -> Vec<T> {
    let best = list
        .iter()
        .enumerate()
        .filter(|(_, v)| v.capacity() >= len)
        .min_by_key(|(_, v)| v.capacity())
        .map(|(k, _)| k);
    match best {
        Some(k) => {
            *reused += 1;
            let mut v = list.swap_remove(k);
            // Elements past the old length are written once; kernels overwrite everything.
            v.resize(len, T::default());
            v.truncate(len);
            v
        }
        None => {
            *allocated += 1;
            vec![T::default(); len]
        }
    }
}

impl BufferPool {
    /// Keeps the storage of a value that is no longer needed.
    pub fn give(&mut self, t: Tensor) {
        match t.into_data() {
            TensorData::U8(v) => keep(&mut self.u8s, v),
            TensorData::I8(v) => keep(&mut self.i8s, v),
            TensorData::I32(v) => keep(&mut self.i32s, v),
            TensorData::F32(v) => keep(&mut self.f32s, v),
            TensorData::F16(_) | TensorData::F64(_) | TensorData::I64(_) | TensorData::Bool(_) => {}
        }
    }

    /// Keeps a u8 scratch buffer.
    pub fn give_u8(&mut self, v: Vec<u8>) {
        keep(&mut self.u8s, v);
    }

    /// A u8 buffer of `len` elements.
    pub fn take_u8(&mut self, len: usize) -> Vec<u8> {
        take(&mut self.u8s, len, &mut self.reused, &mut self.allocated)
    }

    /// An i8 buffer of `len` elements.
    pub fn take_i8(&mut self, len: usize) -> Vec<i8> {
        take(&mut self.i8s, len, &mut self.reused, &mut self.allocated)
    }

    /// An i32 buffer of `len` elements.
    pub fn take_i32(&mut self, len: usize) -> Vec<i32> {
        take(&mut self.i32s, len, &mut self.reused, &mut self.allocated)
    }

    /// An f32 buffer of `len` elements.
    pub fn take_f32(&mut self, len: usize) -> Vec<f32> {
        take(&mut self.f32s, len, &mut self.reused, &mut self.allocated)
    }
}

/// `dst.copy_from_slice(&src[..dst.len()])`, with runs of 4 to 16 bytes (small images' rows)
/// as two overlapping fixed-size moves where a `memcpy` call would cost more than the copy.
#[inline]
pub(crate) fn copy_run(dst: &mut [u8], src: &[u8]) {
    /// The first and last `W` bytes (`W <= n <= 2W`): together, all of them.
    fn ends<const W: usize>(dst: &mut [u8], src: &[u8]) {
        let n = dst.len();
        let (mut head, mut tail) = ([0u8; W], [0u8; W]);
        head.copy_from_slice(&src[..W]);
        tail.copy_from_slice(&src[n - W..n]);
        dst[..W].copy_from_slice(&head);
        dst[n - W..].copy_from_slice(&tail);
    }
    match dst.len() {
        4..8 => ends::<4>(dst, src),
        8..=16 => ends::<8>(dst, src),
        n => dst.copy_from_slice(&src[..n]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_buffers_are_reused_best_fit() {
        let mut p = BufferPool::default();
        p.give(Tensor::from_u8(&[100], vec![1; 100]).unwrap());
        p.give(Tensor::from_u8(&[10], vec![2; 10]).unwrap());
        let a = p.take_u8(8);
        assert_eq!(a.len(), 8);
        assert!(a.capacity() < 100, "best fit takes the small buffer");
        let b = p.take_u8(50);
        assert_eq!((b.len(), p.reused, p.allocated), (50, 2, 0));
        let c = p.take_u8(5);
        assert_eq!((c.len(), p.allocated), (5, 1));
        assert!(p.take_f32(3).iter().all(|&x| x == 0.0));
    }
}
