//! The simulation's random numbers: SplitMix64 from the seed, so a run is reproducible
//! to the request. Interior mutability because `PickEnv::random` takes `&self`.

use std::cell::Cell;

#[derive(Debug)]
pub(super) struct Rng(Cell<u64>);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Rng(Cell::new(seed))
    }

    pub(super) fn next(&self) -> u64 {
        let s = self.0.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.0.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(super) fn unit(&self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n) by multiply-shift (bias below 2^-64 x n, irrelevant here).
    pub(super) fn below(&self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Exponentially distributed with the given mean.
    pub(super) fn exp(&self, mean: f64) -> f64 {
        -(1.0 - self.unit()).ln() * mean
    }
}
