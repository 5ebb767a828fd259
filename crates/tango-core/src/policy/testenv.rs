//! A `PickEnv` for tests: plain vectors for eligibility, factors, in-flight counts and
//! latencies, and a seeded SplitMix64 generator so every run draws the same numbers.

use super::PickEnv;
use std::cell::Cell;

#[derive(Debug, Clone)]
pub(crate) struct TestEnv {
    pub(crate) eligible: Vec<bool>,
    pub(crate) factor: Vec<f64>,
    pub(crate) in_flight: Vec<u64>,
    pub(crate) latency: Vec<f64>,
    state: Cell<u64>,
}

impl TestEnv {
    pub(crate) fn new(n: usize, seed: u64) -> Self {
        TestEnv {
            eligible: vec![true; n],
            factor: vec![1.0; n],
            in_flight: vec![0; n],
            latency: vec![0.010; n],
            state: Cell::new(seed),
        }
    }

    /// The next random number, for the test's own choices (keys, releases).
    pub(crate) fn next(&self) -> u64 {
        let s = self.state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
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
}
