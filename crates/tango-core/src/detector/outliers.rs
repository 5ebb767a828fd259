//! Latency and error-rate outliers: one backend against the pool's other backends.
//!
//! A backend alone cannot be judged "slow" or "failing" without a yardstick; the others in
//! its pool, serving the same requests, are that yardstick. Both tests need a minimum of
//! samples on each side, and an absolute floor (5% errors, 10 ms), so a backend at 0.2%
//! errors beside others at 0% does not fire.

use super::engine::PoolDetector;
use super::window::Sample;
use super::{AlertEvent, AlertKind, Basis, Cause, DetectorConfig, Evidence};

/// A computed comparison, whether or not it fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Comparison {
    pub observed: f64,
    pub expected: f64,
    pub ratio: f64,
    pub z: f64,
    pub requests: u64,
}

/// This backend's error rate against the others' pooled rate, if both sides have enough
/// requests. `pool` is the window's sum over every backend, this one included.
pub(crate) fn errors(cfg: &DetectorConfig, mine: &Sample, pool: &Sample) -> Option<Comparison> {
    let others_n = pool.n - mine.n;
    if mine.n < cfg.error_min_requests || others_n < cfg.error_min_requests {
        return None;
    }
    let rate = mine.errors as f64 / mine.n as f64;
    let others = (pool.errors - mine.errors) as f64 / others_n as f64;
    // A floor on the reference rate keeps z finite when the others have no errors.
    let q = others.max(1e-3);
    let n = mine.n as f64;
    Some(Comparison {
        observed: rate,
        expected: others,
        ratio: rate / q,
        z: (mine.errors as f64 - n * q) / (n * q * (1.0 - q)).sqrt(),
        requests: mine.n,
    })
}

pub(crate) fn errors_fire(cfg: &DetectorConfig, mine: &Sample, c: &Comparison) -> bool {
    mine.errors >= cfg.error_min_errors
        && c.observed >= cfg.error_min_rate
        && c.observed >= cfg.error_ratio * c.expected
}

pub(crate) fn errors_resolved(cfg: &DetectorConfig, c: &Comparison) -> bool {
    c.observed < cfg.error_min_rate / 2.0 || c.observed < cfg.error_ratio * 2.0 / 3.0 * c.expected
}

/// This backend's latency figure against the median of the others' (each with enough
/// samples). `others` holds the other backends' figures.
pub(crate) fn latency(cfg: &DetectorConfig, mine: &Sample, others: &[f64]) -> Option<Comparison> {
    if mine.lat_count < cfg.latency_min_samples || others.is_empty() {
        return None;
    }
    let fig = mine.latency_ms()?;
    let med = median(others);
    Some(Comparison {
        observed: fig,
        expected: med,
        ratio: if med > 0.0 { fig / med } else { f64::INFINITY },
        z: 0.0,
        requests: mine.n,
    })
}

pub(crate) fn latency_fire(cfg: &DetectorConfig, c: &Comparison) -> bool {
    c.ratio >= cfg.latency_ratio && c.observed - c.expected >= cfg.latency_floor_ms
}

pub(crate) fn latency_resolved(cfg: &DetectorConfig, c: &Comparison) -> bool {
    c.ratio < cfg.latency_ratio * 2.0 / 3.0 || c.observed - c.expected < cfg.latency_floor_ms / 2.0
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

impl PoolDetector {
    /// Latency and error outliers of every backend for this tick.
    pub(super) fn step_outliers(&mut self, now: u64, events: &mut Vec<AlertEvent>) {
        let n_windows = self.cfg.windows.len();
        let mut pool = vec![Sample::default(); n_windows];
        let mut any_latency = false;
        for st in &self.backends {
            for (j, (_, s)) in st.windows.iter().enumerate() {
                pool[j].n += s.n;
                pool[j].errors += s.errors;
                any_latency |= s.lat_count > 0;
            }
        }
        for i in 0..self.backends.len() {
            // Per window: (ticks, comparison) for errors and latency.
            let mut errs: Vec<(u32, Comparison, bool)> = Vec::new();
            let mut lats: Vec<(u32, Comparison, bool)> = Vec::new();
            for (j, (len, mine)) in self.backends[i].windows.iter().enumerate() {
                if let Some(c) = errors(&self.cfg, mine, &pool[j]) {
                    errs.push((len, c, errors_fire(&self.cfg, mine, &c)));
                }
                if any_latency {
                    let others: Vec<f64> = self
                        .backends
                        .iter()
                        .enumerate()
                        .filter(|(o, _)| *o != i)
                        .filter_map(|(_, b)| b.windows.iter().nth(j).map(|(_, s)| *s))
                        .filter(|s| s.lat_count >= self.cfg.latency_min_samples)
                        .filter_map(|s| s.latency_ms())
                        .collect();
                    if let Some(c) = latency(&self.cfg, mine, &others) {
                        lats.push((len, c, latency_fire(&self.cfg, &c)));
                    }
                }
            }
            for (kind, list) in [(AlertKind::Errors, errs), (AlertKind::Latency, lats)] {
                if let Some(ev) = self.step_outlier(i, kind, &list, now) {
                    events.push(ev);
                }
            }
        }
    }

    fn step_outlier(
        &mut self,
        i: usize,
        kind: AlertKind,
        list: &[(u32, Comparison, bool)],
        now: u64,
    ) -> Option<AlertEvent> {
        let k = kind.index();
        if self.backends[i].active[k].is_some() {
            let done = match list.first() {
                None => true,
                Some((_, c, _)) => match kind {
                    AlertKind::Errors => errors_resolved(&self.cfg, c),
                    _ => latency_resolved(&self.cfg, c),
                },
            };
            return self.count_resolve(i, kind, done, now);
        }
        let since = self.backends[i].resolved_tick[k].map(|t| self.tick - t);
        let hit = list
            .iter()
            .filter(|(len, _, fire)| *fire && since.is_none_or(|t| u64::from(*len) <= t))
            .max_by(|a, b| a.1.ratio.total_cmp(&b.1.ratio))
            .copied();
        let st = &mut self.backends[i];
        let Some((len, c, _)) = hit else {
            st.pending[k] = 0;
            return None;
        };
        st.pending[k] += 1;
        if st.pending[k] == 1 {
            st.pending_since[k] = now;
        }
        if st.pending[k] < self.cfg.hold_ticks {
            return None;
        }
        let tick_ms = self.cfg.tick_ms;
        let ev = Evidence {
            pool: self.pool.clone(),
            backend: st.name.clone(),
            kind,
            basis: Basis::Effective,
            observed: c.observed,
            expected: c.expected,
            ratio: c.ratio,
            z: c.z,
            window_ms: u64::from(len) * tick_ms,
            requests: c.requests,
            pool_requests: 0,
            phi: self.phi,
            onset_ms: st.pending_since[k].saturating_sub(tick_ms),
            at_ms: now,
            cause: Cause::Unknown,
            detail: None,
        };
        st.active[k] = Some(ev.clone());
        st.pending[k] = 0;
        st.resolving[k] = 0;
        Some(AlertEvent::Fired(ev))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn errors_need_both_the_ratio_and_the_floor() {
        let cfg = DetectorConfig::default();
        let mine = Sample {
            n: 1000,
            errors: 3,
            ..Sample::default()
        };
        let pool = Sample {
            n: 3000,
            errors: 3,
            ..Sample::default()
        };
        let c = errors(&cfg, &mine, &pool).unwrap();
        assert!(!errors_fire(&cfg, &mine, &c), "0.3% is under the 5% floor");
        let mine = Sample {
            n: 1000,
            errors: 100,
            ..Sample::default()
        };
        let pool = Sample {
            n: 3000,
            errors: 110,
            ..Sample::default()
        };
        let c = errors(&cfg, &mine, &pool).unwrap();
        assert!(errors_fire(&cfg, &mine, &c));
        assert!((c.expected - 0.005).abs() < 1e-12);
    }
}
