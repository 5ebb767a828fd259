//! The latency-outlier test: one backend's slow requests against the pool's others.
//!
//! A per-tick p99 of a few dozen requests is the slowest request or two, and a short
//! stall of the whole machine (a CPU hog beside the proxy) puts a few of any backend's
//! requests there. So the test counts requests instead of comparing one quantile, and
//! asks for evidence that outlasts a stall:
//!
//! 1. On a window of at least `latency_min_ticks` ticks, the others' requests (pooled)
//!    give the reference `R`: the upper bound of the histogram bucket holding their
//!    `latency_quantile` (p90: a stall touches fewer requests than that, so it does not
//!    move the reference much). A request of this backend is *slow* when its bucket lies
//!    wholly above `max(R, latency_floor_ms)`; the others' share of requests that may be
//!    above it (any bucket reaching past it) is `q`, floored at 0.1%.
//! 2. This backend's ticks in the window with the most slow requests are set aside
//!    (`latency_drop_ticks`, default 2: a stall that straddles one tick boundary). On the
//!    rest, `x` slow out of `n` requests must satisfy all of: `x >= latency_min_slow`,
//!    `x / n >= latency_min_fraction` (25%), `x / n >= latency_ratio * q` (3x), and the
//!    binomial `z = (x - n q) / sqrt(n q (1 - q)) >= min_z` (4).
//! 3. As every alert, the condition must hold for `hold_ticks` consecutive ticks.
//!
//! Both sides need `latency_min_samples` requests in the window. The alert resolves when
//! the shortest qualifying window, nothing set aside, shows under half the fraction or a
//! `z` under `resolve_z`.

use super::window::{Sample, Windows, HIST_LEN};
use super::DetectorConfig;

/// One backend against the others on one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LatencyTest {
    /// This backend's and the others' p99 (bucket upper bounds, ms).
    pub mine_p99: f64,
    pub others_p99: f64,
    /// The slow threshold (ms) and the fractions of requests above it.
    pub threshold: f64,
    pub fraction: f64,
    pub others_fraction: f64,
    pub z: f64,
    /// This backend's requests in the window (all ticks).
    pub requests: u64,
    /// Whether the fire condition holds (worst ticks set aside).
    pub fires: bool,
    /// Whether the resolve condition holds (nothing set aside).
    pub resolved: bool,
}

/// Upper bound of bucket `i` (the last one has none).
fn upper(bounds: &[f64], i: usize) -> f64 {
    if i + 1 >= HIST_LEN {
        return f64::INFINITY;
    }
    bounds.get(i).copied().unwrap_or(f64::INFINITY)
}

fn lower(bounds: &[f64], i: usize) -> f64 {
    if i == 0 {
        0.0
    } else {
        upper(bounds, i - 1)
    }
}

/// Upper bound of the bucket holding quantile `q`; the last finite bound doubled when it
/// falls in the unbounded bucket.
pub(crate) fn quantile(bounds: &[f64], hist: &[u64; HIST_LEN], q: f64) -> Option<f64> {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return None;
    }
    let want = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in hist.iter().enumerate() {
        seen += n;
        if seen >= want {
            let u = upper(bounds, i);
            return Some(if u.is_finite() {
                u
            } else {
                bounds.last().copied().unwrap_or(0.0) * 2.0
            });
        }
    }
    None
}

/// Requests in buckets wholly above `t`, and in buckets reaching past it.
fn above(bounds: &[f64], hist: &[u64; HIST_LEN], t: f64) -> (u64, u64) {
    let (mut surely, mut maybe) = (0, 0);
    for (i, n) in hist.iter().enumerate() {
        if lower(bounds, i) >= t {
            surely += n;
        }
        if upper(bounds, i) > t {
            maybe += n;
        }
    }
    (surely, maybe)
}

/// Whether one tick of a backend, alone, shows what a window fired on: of its requests
/// (`None`: it had none), the slow ones (wholly above `threshold`) are at least the
/// least fraction and the ratio times the others' fraction `others`. No z and no ticks
/// set aside: this dates an alert the window has already established, it fires none.
pub(crate) fn tick_stands_out(
    cfg: &DetectorConfig,
    s: &Sample,
    threshold: f64,
    others: f64,
) -> Option<bool> {
    let n: u64 = s.hist.iter().sum();
    if n == 0 {
        return None;
    }
    let x = above(&cfg.latency_bounds_ms, &s.hist, threshold).0;
    let f = x as f64 / n as f64;
    Some(x > 0 && f >= cfg.latency_min_fraction && f >= cfg.latency_ratio * others)
}

fn binomial_z(x: u64, n: u64, q: f64) -> f64 {
    let n = n as f64;
    (x as f64 - n * q) / (n * q * (1.0 - q)).sqrt()
}

/// The test for the backend whose windows are `mine` on the window of `len` ticks, the
/// others' summed histogram being `others`.
pub(crate) fn test(
    cfg: &DetectorConfig,
    mine: &Windows,
    mine_sum: &Sample,
    len: u32,
    others: &[u64; HIST_LEN],
) -> Option<LatencyTest> {
    let bounds = &cfg.latency_bounds_ms;
    let n_others: u64 = others.iter().sum();
    let n: u64 = mine_sum.hist.iter().sum();
    if len < cfg.latency_min_ticks
        || n < cfg.latency_min_samples
        || n_others < cfg.latency_min_samples
    {
        return None;
    }
    let r = quantile(bounds, others, cfg.latency_quantile)?;
    let mine_p99 = quantile(bounds, &mine_sum.hist, cfg.latency_quantile)?;
    let t = r.max(cfg.latency_floor_ms);
    let q = (above(bounds, others, t).1 as f64 / n_others as f64).max(1e-3);
    // Set the worst ticks aside.
    let mut per_tick: Vec<(u64, u64)> = mine
        .recent(len)
        .map(|s| (above(bounds, &s.hist, t).0, s.hist.iter().sum()))
        .collect();
    per_tick.sort_unstable_by_key(|t| std::cmp::Reverse(t.0));
    let drop = (cfg.latency_drop_ticks as usize).min(per_tick.len());
    let (x, n_kept) = per_tick[drop..]
        .iter()
        .fold((0, 0), |(x, m), (s, t)| (x + s, m + t));
    let fires = n_kept >= cfg.latency_min_samples && {
        let f = x as f64 / n_kept as f64;
        x >= cfg.latency_min_slow
            && f >= cfg.latency_min_fraction
            && f >= cfg.latency_ratio * q
            && binomial_z(x, n_kept, q) >= cfg.min_z
    };
    let x_all = above(bounds, &mine_sum.hist, t).0;
    let fraction = x_all as f64 / n as f64;
    let z = binomial_z(x_all, n, q);
    let resolved = fraction < cfg.latency_min_fraction / 2.0 || z < cfg.resolve_z;
    Some(LatencyTest {
        mine_p99,
        others_p99: r,
        threshold: t,
        fraction,
        others_fraction: q,
        z,
        requests: n,
        fires,
        resolved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::LATENCY_BOUNDS_MS;

    fn hist(pairs: &[(usize, u64)]) -> [u64; HIST_LEN] {
        let mut h = [0; HIST_LEN];
        for (i, n) in pairs {
            h[*i] = *n;
        }
        h
    }

    #[test]
    fn quantiles_are_bucket_upper_bounds() {
        let b = LATENCY_BOUNDS_MS;
        let h = hist(&[(2, 98), (6, 2)]);
        assert_eq!(quantile(&b, &h, 0.99), Some(50.0));
        assert_eq!(quantile(&b, &h, 0.5), Some(2.5));
        assert_eq!(quantile(&b, &[0; HIST_LEN], 0.99), None);
        assert_eq!(quantile(&b, &hist(&[(14, 1)]), 0.99), Some(20_000.0));
    }

    #[test]
    fn slow_means_wholly_above_and_the_null_counts_what_may_be() {
        let b = LATENCY_BOUNDS_MS;
        // Buckets: 5 = (10, 25], 6 = (25, 50], 7 = (50, 100].
        let h = hist(&[(5, 10), (6, 20), (7, 30)]);
        assert_eq!(above(&b, &h, 25.0), (50, 50));
        assert_eq!(above(&b, &h, 30.0), (30, 50));
    }
}
