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

/// The bounded-load cap of a backend of `weight`: with `total` requests in flight across
/// the pool before this one and `eligible_weight` the summed weight of the eligible
/// backends, it may hold at most `ceil(factor x (total + 1) x weight / eligible_weight)`
/// in flight, this request included. With equal weights that is `factor` times the mean.
///
/// The cap is by weight because a cap by the mean alone pulls a weighted pool towards an
/// equal split: weights 1 and 3 at 1.25 came out 38 : 62 instead of 25 : 75.
pub fn load_cap(factor: f64, total: u64, weight: u32, eligible_weight: u64) -> u64 {
    if weight == 0 {
        return 0;
    }
    let share = f64::from(weight) / eligible_weight.max(u64::from(weight)) as f64;
    // A tiny tolerance keeps exact products (1.25 x 4 = 5) from rounding up to 6.
    (factor * (total + 1) as f64 * share - 1e-9).ceil().max(1.0) as u64
}

pub(crate) struct Walk<'a> {
    pub(crate) owners: &'a [u32],
    /// Configured weight per backend, for the bounded-load caps.
    pub(crate) weights: &'a [u32],
    /// Per-backend salt for the slow-start coin (the address hash).
    pub(crate) salts: &'a [u64],
    pub(crate) max_load_factor: Option<f64>,
}

/// Steps walked before checking, in O(n), whether anything is eligible at all.
fn quick_steps(n: usize) -> usize {
    4 * n + 64
}

impl Walk<'_> {
    /// The backend for the key whose walk starts at `start`, with the bounded-load cap
    /// it was held to (`None` without `max_load_factor`).
    pub(crate) fn pick(
        &self,
        start: usize,
        key: u64,
        env: &impl PickEnv,
    ) -> Option<(usize, Option<u64>)> {
        let len = self.owners.len();
        let n = self.salts.len();
        if len == 0 {
            return None;
        }
        let load = self.max_load_factor.map(|f| {
            let (total, weight) = env.load_totals().unwrap_or_else(|| self.scan_totals(env));
            (f, total, weight)
        });
        let cap_of = |b: usize| load.map(|(f, total, w)| load_cap(f, total, self.weights[b], w));
        // The key's first eligible owner, and its first one under its cap.
        let mut fallback = None;
        let mut spill = None;
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
            let cap = cap_of(b);
            fallback = fallback.or(Some((b, cap)));
            if cap.is_some_and(|c| env.in_flight(b) >= c) {
                continue;
            }
            if self.coin(key, b, env) {
                return Some((b, cap));
            }
            spill = spill.or(Some((b, cap)));
        }
        // Every eligible owner under its cap is ramping up: the cap is a promise and slow
        // start a preference, so the first of them takes it. When every one is full
        // (only when `max_load_factor` < 1 or the counts moved under us), the key's own,
        // with its cap: the proxy finds it full as it counts the request in, and picks
        // again with the counts as they are then.
        spill.or(fallback)
    }

    /// Slow start for hash policies: the key is accepted by a ramping backend when a hash
    /// of (key, backend) falls below the factor, so as the factor grows the backend takes
    /// over a growing, stable set of its keys instead of a random one per request.
    fn coin(&self, key: u64, b: usize, env: &impl PickEnv) -> bool {
        let f = clamp_factor(env.weight_factor(b));
        f >= 1.0 || unit(mix2(key ^ self.salts[b], 2)) < f
    }

    /// Requests in flight across the pool, and the summed weight of its eligible backends.
    fn scan_totals(&self, env: &impl PickEnv) -> (u64, u64) {
        (0..self.salts.len()).fold((0, 0), |(t, w), i| {
            let weight = match env.eligible(i) {
                true => u64::from(self.weights[i]),
                false => 0,
            };
            (t + env.in_flight(i), w + weight)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_formula() {
        assert_eq!(load_cap(1.25, 3, 1, 1), 5);
        assert_eq!(load_cap(1.25, 0, 1, 4), 1);
        assert_eq!(load_cap(1.0, 99, 1, 10), 10);
        assert_eq!(load_cap(1.5, 10, 2, 8), 5);
    }

    #[test]
    fn cap_follows_weight() {
        // 100 in flight (99 + this one) over weights 1 and 3: a quarter and three quarters.
        assert_eq!(load_cap(1.0, 99, 1, 4), 25);
        assert_eq!(load_cap(1.0, 99, 3, 4), 75);
        assert_eq!(load_cap(1.25, 99, 3, 4), 94);
        // Weight 0 is never placed; a backend no longer eligible caps at its own weight.
        assert_eq!(load_cap(1.25, 99, 0, 4), 0);
        assert_eq!(load_cap(1.25, 99, 2, 0), 125);
    }
}
