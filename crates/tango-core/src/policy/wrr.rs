//! Smooth weighted round robin (nginx's algorithm), made safe for many threads by
//! computing one whole period of the sequence when the selector is built and handing out
//! its slots with a single atomic counter.
//!
//! nginx's per-pick state update needs a lock; the sequence it produces is periodic with
//! period sum(w)/gcd(w), so precomputing it gives the same interleaving (no bursts to one
//! backend) with a lock-free `fetch_add` per pick.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Longest period kept. Larger weight sums are scaled down to about this length, which
/// moves any share by at most 0.5 / (its scaled weight): under 0.1% for 100 backends.
pub(crate) const MAX_PERIOD: u64 = 1 << 16;

#[derive(Debug)]
pub(crate) struct Wrr {
    seq: Box<[u32]>,
    next: AtomicUsize,
}

impl Wrr {
    pub(crate) fn new(weights: &[u32]) -> Self {
        let w = reduce(weights);
        let n = w.len();
        let total: i64 = w.iter().map(|&x| i64::from(x)).sum();
        let mut current = vec![0i64; n];
        let mut seq = Vec::with_capacity(total as usize);
        for _ in 0..total {
            let mut best = 0;
            for i in 0..n {
                current[i] += i64::from(w[i]);
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            seq.push(best as u32);
        }
        Wrr {
            seq: seq.into(),
            next: AtomicUsize::new(0),
        }
    }

    /// The backend of the next slot (`None` when every weight is zero). Each call takes
    /// its own slot, so a caller that skips a backend simply asks again.
    pub(crate) fn next(&self) -> Option<usize> {
        if self.seq.is_empty() {
            return None;
        }
        // Relaxed is enough: only the uniqueness of the ticket matters, not ordering.
        let t = self.next.fetch_add(1, Ordering::Relaxed);
        Some(self.seq[t % self.seq.len()] as usize)
    }

    #[cfg(test)]
    pub(crate) fn period(&self) -> &[u32] {
        &self.seq
    }
}

/// Divide by the gcd, then scale down (keeping every non-zero weight at least 1) if the
/// period would still be too long.
fn reduce(weights: &[u32]) -> Vec<u32> {
    let g = weights.iter().fold(0u32, |g, &w| gcd(g, w)).max(1);
    let mut w: Vec<u32> = weights.iter().map(|&x| x / g).collect();
    let total: u64 = w.iter().map(|&x| u64::from(x)).sum();
    if total > MAX_PERIOD {
        let scale = MAX_PERIOD as f64 / total as f64;
        for x in &mut w {
            if *x > 0 {
                *x = ((f64::from(*x) * scale).round() as u32).max(1);
            }
        }
    }
    w
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_nginx_for_5_1_1() {
        // nginx's documented example: weights 5,1,1 give a a b a c a a.
        let w = Wrr::new(&[5, 1, 1]);
        assert_eq!(w.period(), &[0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn period_is_reduced_by_gcd() {
        assert_eq!(Wrr::new(&[20, 10]).period(), &[0, 1, 0]);
    }

    #[test]
    fn zero_weights_get_no_slot() {
        let w = Wrr::new(&[0, 2, 0]);
        assert_eq!(w.period(), &[1]);
        assert_eq!(Wrr::new(&[0, 0]).next(), None);
    }

    #[test]
    fn long_periods_are_capped_but_keep_shares() {
        let w = Wrr::new(&[10_000, 9_999, 1]);
        let p = w.period();
        assert!(p.len() as u64 <= MAX_PERIOD + 3);
        let ones = p.iter().filter(|&&b| b == 2).count();
        assert!(ones >= 1);
        let share0 = p.iter().filter(|&&b| b == 0).count() as f64 / p.len() as f64;
        assert!((share0 - 0.5).abs() < 0.001);
    }
}
