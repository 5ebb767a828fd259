//! The simulation's random numbers: rand's `SmallRng` from the seed, so a run is
//! reproducible to the request with the same build (rand may change `SmallRng`'s
//! algorithm in a major version, which changes seeded results, not their statistics).
//! Interior mutability because `PickEnv::random` takes `&self`.

use rand::rngs::SmallRng;
use rand::{Rng as _, RngCore, SeedableRng};
use std::cell::RefCell;

#[derive(Debug)]
pub(super) struct Rng(RefCell<SmallRng>);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Rng(RefCell::new(SmallRng::seed_from_u64(seed)))
    }

    pub(super) fn next(&self) -> u64 {
        self.0.borrow_mut().next_u64()
    }

    /// Uniform in [0, 1).
    pub(super) fn unit(&self) -> f64 {
        self.0.borrow_mut().random::<f64>()
    }

    /// Uniform in [0, n); 0 when n is 0.
    pub(super) fn below(&self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        self.0.borrow_mut().random_range(0..n)
    }

    /// Exponentially distributed with the given mean (by inversion).
    pub(super) fn exp(&self, mean: f64) -> f64 {
        -(1.0 - self.unit()).ln() * mean
    }
}
