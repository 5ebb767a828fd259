//! Time-dependent weight and latency inputs: the peak-EWMA latency estimate that
//! `peak_ewma` balances on, and the slow-start ramp. Pure functions of an injected
//! `now` (nanoseconds on any monotonic clock), plus a lock-free cell for the hot path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The weight factor a backend starts at when slow start begins: small but not zero, so
/// it receives some traffic to prove itself (and to warm caches) from the first second.
pub const SLOW_START_FLOOR: f64 = 0.1;

/// Peak-EWMA update. A sample above the current estimate replaces it at once (a backend
/// that got slow is avoided immediately); a lower one pulls the estimate towards it with
/// weight `1 - exp(-elapsed / decay)`, so recovery is believed only gradually.
pub fn peak_ewma(prev: f64, prev_at_ns: u64, sample: f64, now_ns: u64, decay: Duration) -> f64 {
    if sample > prev || !prev.is_finite() {
        return sample;
    }
    let tau = decay.as_nanos() as f64;
    if tau <= 0.0 {
        return sample;
    }
    let elapsed = now_ns.saturating_sub(prev_at_ns) as f64;
    let keep = (-elapsed / tau).exp();
    prev * keep + sample * (1.0 - keep)
}

/// The estimate as seen at `now` without a new sample: decayed towards zero, as in
/// Finagle and tower. A backend that has not answered for a while looks cheaper and gets
/// probed again instead of being shunned forever on one old slow sample.
pub fn ewma_at(prev: f64, prev_at_ns: u64, now_ns: u64, decay: Duration) -> f64 {
    peak_ewma(prev, prev_at_ns, 0.0, now_ns, decay)
}

/// Linear slow-start ramp from `SLOW_START_FLOOR` to 1 over `window`, `since` being the
/// time the backend has been eligible.
pub fn slow_start_factor(since: Duration, window: Duration) -> f64 {
    if window.is_zero() || since >= window {
        return 1.0;
    }
    let t = since.as_secs_f64() / window.as_secs_f64();
    SLOW_START_FLOOR + (1.0 - SLOW_START_FLOOR) * t
}

/// The slow-start factor's mean between `from` and `to` since the backend became
/// eligible: what a span of requests saw, where [`slow_start_factor`] is one moment's.
/// The ramp is linear up to `window` and 1 after it, so the mean is the exact integral.
/// An empty span is its moment's factor.
pub fn slow_start_mean(from: Duration, to: Duration, window: Duration) -> f64 {
    if to <= from {
        return slow_start_factor(to, window);
    }
    let (a, b) = (from.as_secs_f64(), to.as_secs_f64());
    let w = window.as_secs_f64();
    // Up to `w` the factor is linear, so its mean there is its value at the midpoint.
    let ramp_end = b.min(w).max(a);
    let ramping = ramp_end - a;
    let mid = Duration::from_secs_f64((a + ramp_end) / 2.0);
    (ramping * slow_start_factor(mid, window) + (b - ramp_end)) / (b - a)
}

/// A peak-EWMA estimate shared by every worker: value (f64 bits) and time of the last
/// sample in two atomics. Updates use compare-and-swap on the value; a racing update may
/// stamp a slightly different time, which only shifts the next decay by that race window.
#[derive(Debug)]
pub struct EwmaCell {
    value: AtomicU64,
    at_ns: AtomicU64,
}

impl EwmaCell {
    /// A cell starting at `initial` seconds (a default RTT, so a new backend is neither
    /// flooded as "free" nor shunned).
    pub fn new(initial: f64, now_ns: u64) -> Self {
        EwmaCell {
            value: AtomicU64::new(initial.to_bits()),
            at_ns: AtomicU64::new(now_ns),
        }
    }

    /// Fold in a latency sample (seconds) observed at `now_ns`.
    pub fn observe(&self, sample: f64, now_ns: u64, decay: Duration) {
        let at = self.at_ns.load(Ordering::Relaxed);
        let _ = self
            .value
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some(peak_ewma(f64::from_bits(bits), at, sample, now_ns, decay).to_bits())
            });
        self.at_ns.fetch_max(now_ns, Ordering::Relaxed);
    }

    /// The estimate decayed to `now_ns` (what `PickEnv::latency` should return).
    pub fn get(&self, now_ns: u64, decay: Duration) -> f64 {
        let v = f64::from_bits(self.value.load(Ordering::Relaxed));
        ewma_at(v, self.at_ns.load(Ordering::Relaxed), now_ns, decay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const TAU: Duration = Duration::from_secs(10);

    #[test]
    fn the_ramps_mean_over_a_span_is_its_integral() {
        let ms = Duration::from_millis;
        let w = ms(3000);
        // Half a second to a second and a half in: 0.25 to 0.55, 0.4 on average, where
        // the span's end alone says 0.55.
        assert!((slow_start_mean(ms(500), ms(1500), w) - 0.4).abs() < 1e-12);
        // Over the ramp's end: half a second from 0.85 to 1 (mean 0.925), half at 1.
        assert!((slow_start_mean(ms(2500), ms(3500), w) - 0.9625).abs() < 1e-12);
        assert_eq!(slow_start_mean(ms(4000), ms(5000), w), 1.0);
        assert_eq!(slow_start_mean(ms(1500), ms(1500), w), 0.55);
        assert_eq!(slow_start_mean(ms(0), ms(1000), Duration::ZERO), 1.0);
    }

    #[test]
    fn a_peak_replaces_at_once() {
        assert_eq!(peak_ewma(0.010, 0, 0.500, 1, TAU), 0.500);
    }

    #[test]
    fn a_drop_decays_with_the_time_constant() {
        // After one time constant, 1/e of the old value is left.
        let v = peak_ewma(1.0, 0, 0.0, 10 * S, TAU);
        assert!((v - (-1f64).exp()).abs() < 1e-12);
        // No time elapsed: nothing moves.
        assert_eq!(peak_ewma(1.0, 5 * S, 0.2, 5 * S, TAU), 1.0);
        // A clock that went backwards counts as no time.
        assert_eq!(peak_ewma(1.0, 5 * S, 0.2, 4 * S, TAU), 1.0);
    }

    #[test]
    fn reading_decays_towards_zero() {
        let v = ewma_at(0.3, 0, 20 * S, TAU);
        assert!((v - 0.3 * (-2f64).exp()).abs() < 1e-12);
    }

    #[test]
    fn cell_follows_the_math() {
        let c = EwmaCell::new(0.05, 0);
        c.observe(0.2, S, TAU);
        assert_eq!(c.get(S, TAU), 0.2);
        c.observe(0.1, 11 * S, TAU);
        let want = 0.2 * (-1f64).exp() + 0.1 * (1.0 - (-1f64).exp());
        assert!((c.get(11 * S, TAU) - want).abs() < 1e-12);
    }

    #[test]
    fn slow_start_ramps_linearly_from_the_floor() {
        let w = Duration::from_secs(30);
        assert_eq!(slow_start_factor(Duration::ZERO, w), SLOW_START_FLOOR);
        assert!((slow_start_factor(Duration::from_secs(15), w) - 0.55).abs() < 1e-12);
        assert_eq!(slow_start_factor(Duration::from_secs(30), w), 1.0);
        assert_eq!(slow_start_factor(Duration::from_secs(99), w), 1.0);
        assert_eq!(slow_start_factor(Duration::ZERO, Duration::ZERO), 1.0);
    }
}
