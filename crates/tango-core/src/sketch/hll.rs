//! HyperLogLog (Flajolet et al. 2007) over keys that are already 64-bit hashes.
//!
//! `2^p` one-byte registers; each key is mixed once more (the proxy's key hash also places
//! keys on the ring, and the estimate should not depend on how well that hash spreads its
//! top bits), its top `p` bits pick a register and the position of the first set bit of
//! the rest is kept if larger. The estimate is the harmonic mean with the usual bias
//! constant, and linear counting (`m ln(m / zeros)`) below `2.5 m`, where the harmonic
//! mean is biased. With a 64-bit hash no large-range correction is needed. The relative
//! standard error is `1.04 / sqrt(m)`: 3.3% at `p = 10` (1 KiB).

/// A HyperLogLog sketch of `2^p` registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hll {
    p: u8,
    registers: Vec<u8>,
}

/// SplitMix64's finalizer: a bijection that spreads every input bit over the output.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Hll {
    /// `precision` is clamped to 4..=16 (16 registers to 64 KiB).
    pub fn new(precision: u8) -> Self {
        let p = precision.clamp(4, 16);
        Self {
            p,
            registers: vec![0; 1 << p],
        }
    }

    /// The precision in use, after clamping.
    pub fn precision(&self) -> u8 {
        self.p
    }

    /// Adds a key hash: O(1), no allocation.
    pub fn insert(&mut self, key: u64) {
        let h = mix(key);
        let idx = (h >> (64 - self.p)) as usize;
        // The remaining bits, with a guard bit so the rank is at most 64 - p + 1.
        let rest = (h << self.p) | (1 << (self.p - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if let Some(r) = self.registers.get_mut(idx) {
            *r = (*r).max(rank);
        }
    }

    /// Adds every key `other` has seen (register-wise max); sketches of another
    /// precision are ignored.
    pub fn merge(&mut self, other: &Hll) {
        if other.p != self.p {
            return;
        }
        for (a, b) in self.registers.iter_mut().zip(&other.registers) {
            *a = (*a).max(*b);
        }
    }

    /// Forgets every key.
    pub fn clear(&mut self) {
        self.registers.fill(0);
    }

    /// The estimated number of distinct keys inserted.
    pub fn estimate(&self) -> f64 {
        let m = self.registers.len() as f64;
        let mut sum = 0.0;
        let mut zeros = 0usize;
        for r in &self.registers {
            sum += 1.0 / (1u64 << r) as f64;
            zeros += usize::from(*r == 0);
        }
        let alpha = match self.registers.len() {
            16 => 0.673,
            32 => 0.697,
            64 => 0.709,
            _ => 0.7213 / (1.0 + 1.079 / m),
        };
        let raw = alpha * m * m / sum;
        if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        }
    }

    /// The relative standard error of [`estimate`](Self::estimate).
    pub fn standard_error(&self) -> f64 {
        1.04 / (self.registers.len() as f64).sqrt()
    }
}
