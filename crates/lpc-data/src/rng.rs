//! A small seeded generator (splitmix64) and seeded subset choice.

/// splitmix64: a small, good, seedable generator.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }
}

/// `k` of `n` indices, sampled without replacement with a seeded shuffle, ascending.
pub fn choose(n: usize, k: usize, seed: u64) -> Vec<usize> {
    if k >= n {
        return (0..n).collect();
    }
    let mut v: Vec<usize> = (0..n).collect();
    let mut r = Rng::new(seed);
    for i in 0..k {
        let j = i + r.below(n - i);
        v.swap(i, j);
    }
    let mut out = v[..k].to_vec();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_choice() {
        let a = choose(1000, 300, 7);
        assert_eq!(a.len(), 300);
        assert_eq!(a, choose(1000, 300, 7));
        assert_ne!(a, choose(1000, 300, 8));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(choose(5, 10, 1), vec![0, 1, 2, 3, 4]);
    }
}
