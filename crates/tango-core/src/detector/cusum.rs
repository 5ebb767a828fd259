//! Bernoulli CUSUM per backend and direction: the fast path, and the onset estimate.

/// Requests since the statistic was last zero: the adaptive window a crossing is judged on.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Segment {
    pub total: u64,
    pub n: u64,
    pub e: f64,
    pub v: f64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Cusum {
    pub s: f64,
    /// The last tick at which the statistic was zero: the shift began after it.
    pub last_zero_ms: u64,
    pub segment: Segment,
    pub segment_ticks: u32,
}

impl Cusum {
    pub(crate) fn new(now_ms: u64) -> Self {
        Self {
            last_zero_ms: now_ms,
            ..Self::default()
        }
    }

    /// Adds one tick: `n` of the pool's `total` requests went to this backend whose
    /// expected share is `p0`; `factor` is the alternative (`p1 = factor * p0`).
    pub(crate) fn update(&mut self, now_ms: u64, total: u64, n: u64, p0: f64, factor: f64) {
        if total == 0 {
            return;
        }
        if !(p0 > 0.0 && p0 < 1.0) {
            // A lone or ineligible backend has no share to deviate from.
            self.reset(now_ms);
            return;
        }
        // Keep p1 a probability when 1.5 p0 would exceed 1.
        let p1 = (factor * p0).min((1.0 + p0) / 2.0);
        let n_f = n as f64;
        let rest = (total - n.min(total)) as f64;
        let llr = n_f * (p1 / p0).ln() + rest * ((1.0 - p1) / (1.0 - p0)).ln();
        self.s = (self.s + llr).max(0.0);
        if self.s == 0.0 {
            self.reset(now_ms);
        } else {
            let t = total as f64;
            self.segment.total += total;
            self.segment.n += n;
            self.segment.e += t * p0;
            self.segment.v += t * p0 * (1.0 - p0);
            self.segment_ticks += 1;
        }
    }

    pub(crate) fn reset(&mut self, now_ms: u64) {
        *self = Self::new(now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_traffic_keeps_the_statistic_at_zero() {
        let mut c = Cusum::new(0);
        for t in 1..=100 {
            c.update(t * 1000, 1000, 100, 0.1, 1.5);
        }
        assert_eq!(c.s, 0.0);
        assert_eq!(c.last_zero_ms, 100_000);
    }

    #[test]
    fn a_doubling_crosses_the_threshold_in_one_tick_at_100_expected() {
        let mut c = Cusum::new(0);
        c.update(1000, 1000, 100, 0.1, 1.5);
        c.update(2000, 1000, 200, 0.1, 1.5);
        assert!(c.s > 16.0, "{}", c.s);
        assert_eq!(c.last_zero_ms, 1000, "onset is the last tick at zero");
        assert_eq!(c.segment.n, 200);
        assert!((c.segment.e - 100.0).abs() < 1e-9);
    }

    #[test]
    fn under_share_mirror_accumulates_on_a_drop() {
        let mut c = Cusum::new(0);
        c.update(1000, 1000, 20, 0.1, 0.5);
        assert!(c.s > 16.0, "{}", c.s);
        c.update(2000, 1000, 0, 0.0, 0.5);
        assert_eq!(c.s, 0.0, "an ineligible backend resets");
    }
}
