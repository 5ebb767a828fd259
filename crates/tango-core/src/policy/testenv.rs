//! A `PickEnv` for tests: plain vectors for eligibility, factors, in-flight counts and
//! latencies, and a seeded `SmallRng` so every run draws the same numbers.

use super::PickEnv;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use std::cell::RefCell;

#[derive(Debug, Clone)]
pub(crate) struct TestEnv {
    pub(crate) eligible: Vec<bool>,
    pub(crate) factor: Vec<f64>,
    pub(crate) in_flight: Vec<u64>,
    pub(crate) latency: Vec<f64>,
    pub(crate) retrying: bool,
    rng: RefCell<SmallRng>,
}

impl TestEnv {
    pub(crate) fn new(n: usize, seed: u64) -> Self {
        TestEnv {
            eligible: vec![true; n],
            factor: vec![1.0; n],
            in_flight: vec![0; n],
            latency: vec![0.010; n],
            retrying: false,
            rng: RefCell::new(SmallRng::seed_from_u64(seed)),
        }
    }

    /// The next random number, for the test's own choices (keys, releases).
    pub(crate) fn next(&self) -> u64 {
        self.rng.borrow_mut().next_u64()
    }
}

impl PickEnv for TestEnv {
    fn eligible(&self, i: usize) -> bool {
        self.eligible[i]
    }
    fn weight_factor(&self, i: usize) -> f64 {
        self.factor[i]
    }
    fn in_flight(&self, i: usize) -> u64 {
        self.in_flight[i]
    }
    fn latency(&self, i: usize) -> f64 {
        self.latency[i]
    }
    fn random(&self) -> u64 {
        self.next()
    }
    fn retrying(&self) -> bool {
        self.retrying
    }
}
