//! The walk shared by the hash policies: from the key's point on the ring (or slot in the
//! table), take the first backend that is eligible, passes its slow-start coin and, with
//! bounded load, is not over-loaded.
//!
//! Walking on (rather than re-hashing) keeps the choice consistent: when a backend leaves,
//! only its keys move, each to the next owner along the ring, and they come back when it
//! returns.

use super::hash::{mix2, unit};
use super::sampler::clamp_factor;
use super::PickEnv;

/// The bounded-load cap: with `total` requests in flight across the pool before this one
/// and `eligible` eligible backends, a backend may hold at most
/// `ceil(factor x (total + 1) / eligible)` in flight, this request included.
pub fn load_cap(factor: f64, total: u64, eligible: usize) -> u64 {
    let avg = (total + 1) as f64 / eligible.max(1) as f64;
    // A tiny tolerance keeps exact products (1.25 x 4 = 5) from rounding up to 6.
    (factor * avg - 1e-9).ceil().max(1.0) as u64
}

pub(crate) struct Walk<'a> {
    pub(crate) owners: &'a [u32],
    /// Per-backend salt for the slow-start coin (the address hash).
    pub(crate) salts: &'a [u64],
    pub(crate) max_load_factor: Option<f64>,
}

/// Steps walked before checking, in O(n), whether anything is eligible at all.
fn quick_steps(n: usize) -> usize {
    4 * n + 64
}

impl Walk<'_> {
    pub(crate) fn pick(&self, start: usize, key: u64, env: &impl PickEnv) -> Option<usize> {
        let len = self.owners.len();
        let n = self.salts.len();
        if len == 0 {
            return None;
        }
        let cap = self.max_load_factor.map(|f| {
            let (total, eligible) = env.load_totals().unwrap_or_else(|| scan_totals(n, env));
            load_cap(f, total, eligible)
        });
        let mut fallback = None;
        let mut pos = start;
        for step in 0..len {
            if step == quick_steps(n) && fallback.is_none() && !(0..n).any(|i| env.eligible(i)) {
                return None;
            }
            let b = self.owners[pos] as usize;
            pos += 1;
            if pos == len {
                pos = 0;
            }
            if !env.eligible(b) {
                continue;
            }
            if fallback.is_none() {
                fallback = Some(b);
            }
            if !self.coin(key, b, env) {
                continue;
            }
            if let Some(cap) = cap {
                if env.in_flight(b) + 1 > cap {
                    continue;
                }
            }
            return Some(b);
        }
        // Every eligible owner was ramping or full: take the key's first eligible owner.
        fallback
    }

    /// Slow start for hash policies: the key is accepted by a ramping backend when a hash
    /// of (key, backend) falls below the factor, so as the factor grows the backend takes
    /// over a growing, stable set of its keys instead of a random one per request.
    fn coin(&self, key: u64, b: usize, env: &impl PickEnv) -> bool {
        let f = clamp_factor(env.weight_factor(b));
        f >= 1.0 || unit(mix2(key ^ self.salts[b], 2)) < f
    }
}

fn scan_totals(n: usize, env: &impl PickEnv) -> (u64, usize) {
    (0..n).fold((0, 0), |(t, e), i| {
        (t + env.in_flight(i), e + usize::from(env.eligible(i)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_formula() {
        assert_eq!(load_cap(1.25, 3, 1), 5);
        assert_eq!(load_cap(1.25, 0, 4), 1);
        assert_eq!(load_cap(1.0, 99, 10), 10);
        assert_eq!(load_cap(1.5, 10, 4), 5);
    }
}
